/* Placeholder: the admin pages are served by this program (CGI). */
#include <stdio.h>

int
main(void)
{
	fputs("Status: 503\r\nContent-Type: text/plain\r\n\r\nadmin pages not "
	    "built yet\n", stdout);
	return 0;
}
