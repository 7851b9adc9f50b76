#include <stdlib.h>
#include <string.h>

#include "options.h"

static int	 rate_option(struct rate_options *, const char *,
		    const char *, char *, size_t);
static int	 ban_option(struct ban_options *, const char *, const char *,
		    char *, size_t);

void
options_init(struct relay_options *o)
{
	memset(o, 0, sizeof(*o));
	o->rate.minutes = 1;
	o->rate.success = 1000;
	o->ban.codes[0].lo = o->ban.codes[0].hi = 401;
	o->ban.ncodes = 1;
}

void
options_free(struct relay_options *o)
{
	free(o->ban.keywords);
	o->ban.keywords = NULL;
}

int
options_set(struct relay_options *o, const char *key, const char *value,
    char *why, size_t whysz)
{
	if (whysz > 0)
		why[0] = '\0';
	if (strncmp(key, "ModelRequestRateLimit", 21) == 0)
		return rate_option(&o->rate, key + 21, value, why, whysz);
	if (strncmp(key, "Automatic", 9) == 0)
		return ban_option(&o->ban, key + 9, value, why, whysz);
	return 0;
}

/* ModelRequestRateLimit<name> */
static int
rate_option(struct rate_options *r, const char *name, const char *value,
    char *why, size_t whysz)
{
	(void)r; (void)name; (void)value; (void)why; (void)whysz;
	return 0;
}

/* Automatic<name> */
static int
ban_option(struct ban_options *b, const char *name, const char *value,
    char *why, size_t whysz)
{
	(void)b; (void)name; (void)value; (void)why; (void)whysz;
	return 0;
}
