/*
 * The price's field reader (json_fields, common/jsonread.c) behind the same
 * protocol as the Go reference (tests/goref/main.go), for the
 * differential test and its fuzz: cases on stdin, one answer a line, the
 * answers so far written out at a line "F".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonread.h"

#define LINE_MAX_	4096

static int
read_line(char *buf, size_t sz)
{
	size_t	 n;

	if (fgets(buf, (int)sz, stdin) == NULL)
		return -1;
	n = strlen(buf);
	if (n == 0 || buf[n - 1] != '\n')
		return -1;
	buf[n - 1] = '\0';
	return 0;
}

/* "P 12" and the like: the number after the letter, or -1. */
static long
header(const char *line, char letter)
{
	char	*end;
	long	 v;

	if (line[0] != letter || line[1] != ' ')
		return -1;
	v = strtol(line + 2, &end, 10);
	return *end == '\0' && v >= 0 ? v : -1;
}

int
main(void)
{
	char	 line[LINE_MAX_], *paths[JSON_PATHS_MAX], *body;
	char	 out[JSON_PATHS_MAX][JSON_SCALAR_MAX + 1];
	int	 found[JSON_PATHS_MAX];
	long	 n, len, i, k;

	while (read_line(line, sizeof(line)) == 0) {
		if (strcmp(line, "F") == 0) {
			fflush(stdout);
			continue;
		}
		if ((n = header(line, 'P')) < 0 || n > JSON_PATHS_MAX) {
			fprintf(stderr, "scan: bad case header\n");
			return 2;
		}
		for (i = 0; i < n; i++)
			if (read_line(line, sizeof(line)) == -1 ||
			    (paths[i] = strdup(line)) == NULL) {
				fprintf(stderr, "scan: bad path\n");
				return 2;
			}
		if (read_line(line, sizeof(line)) == -1 ||
		    (len = header(line, 'B')) < 0 ||
		    (body = malloc((size_t)len + 1)) == NULL ||
		    fread(body, 1, (size_t)len + 1, stdin) != (size_t)len + 1) {
			fprintf(stderr, "scan: bad body\n");
			return 2;
		}
		if (json_fields(body, (size_t)len, (const char *const *)paths,
		    (size_t)n, out, found) == -1)
			fputs("error", stdout);
		else {
			fputs("ok", stdout);
			for (i = 0; i < n; i++) {
				if (found[i] == JF_ABSENT)
					fputs(" -", stdout);
				else if (found[i] == JF_OTHER)
					fputs(" L", stdout);
				else {
					fputs(" =", stdout);
					for (k = 0; out[i][k] != '\0'; k++)
						printf("%02x", (unsigned char)out[i][k]);
				}
			}
		}
		putchar('\n');
		free(body);
		for (i = 0; i < n; i++)
			free(paths[i]);
	}
	return 0;
}
