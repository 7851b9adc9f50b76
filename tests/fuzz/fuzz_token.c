/* libFuzzer: token header parsing, IP allow lists, DSNs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.c"
#include "../../common/auth.c"
#include "../../common/dsn.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		*s, key[TOKEN_KEY_MAX], err[256];
	long long	 ch;
	struct dsn	 d;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	token_parse(s, key, &ch);
	ip_allowed(s, "192.168.1.7");
	ip_allowed("10.0.0.0/8\n::1", s);
	dsn_parse(s, &d, err, sizeof(err));
	free(s);
	return 0;
}
