#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"
#include "util.h"

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

/* new-api's booleans are stored as "true" and "false". */
static int
bool_option(int *out, const char *value, char *why, size_t whysz)
{
	if (strcmp(value, "true") == 0)
		*out = 1;
	else if (strcmp(value, "false") == 0)
		*out = 0;
	else {
		snprintf(why, whysz, "neither true nor false");
		return -1;
	}
	return 0;
}

/* One status or a range of them, "401" or "500-599", spaces allowed. */
static int
code_token(const char *s, size_t n, struct code_range *r)
{
	char		 t[32];
	char		*dash;
	long long	 lo, hi;
	size_t		 i, o = 0;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t') {
			if (o + 1 >= sizeof(t))
				return -1;
			t[o++] = s[i];
		}
	t[o] = '\0';
	if ((dash = strchr(t, '-')) != NULL) {
		*dash = '\0';
		if (strchr(dash + 1, '-') != NULL ||
		    parse_ll(t, 100, 599, &lo) == -1 ||
		    parse_ll(dash + 1, 100, 599, &hi) == -1 || lo > hi)
			return -1;
	} else if (parse_ll(t, 100, 599, &lo) == -1)
		return -1;
	else
		hi = lo;
	r->lo = (int)lo;
	r->hi = (int)hi;
	return 0;
}

int
codes_parse(const char *value, struct code_range *out, size_t max, size_t *n,
    char *why, size_t whysz)
{
	const char	*p = value;
	size_t		 k = 0, len;

	/* new-api also takes the full-width comma (U+FF0C) */
	while (*p != '\0') {
		for (len = 0; p[len] != '\0' && p[len] != ',' &&
		    strncmp(p + len, "\xef\xbc\x8c", 3) != 0; len++)
			;
		if (strspn(p, " \t\r\n") < len) {
			if (k == max) {
				snprintf(why, whysz, "more than %zu ranges", max);
				return -1;
			}
			if (code_token(p, len, &out[k]) == -1) {
				snprintf(why, whysz, "\"%.*s\" is no status "
				    "100-599 nor a range of them", (int)(len > 16 ?
				    16 : len), p);
				return -1;
			}
			k++;
		}
		p += len;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			p += 3;
	}
	*n = k;
	return 0;
}

int
codes_match(const struct code_range *r, size_t n, int status)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (status >= r[i].lo && status <= r[i].hi)
			return 1;
	return 0;
}

/*
 * AutomaticDisableKeywords: one a line, trimmed and in lower case, as
 * new-api keeps them; kept as lines joined by '\n'.
 */
static int
keywords_option(struct ban_options *b, const char *value)
{
	char		*k, *o;
	const char	*p = value;
	size_t		 n;

	if ((k = malloc(strlen(value) + 1)) == NULL)
		return -1;
	o = k;
	while (*p != '\0') {
		n = strcspn(p, "\n");
		while (n > 0 && strchr(" \t\r", *p) != NULL)
			p++, n--;
		while (n > 0 && strchr(" \t\r", p[n - 1]) != NULL)
			n--;
		if (n > 0) {
			if (o != k)
				*o++ = '\n';
			for (; n > 0; n--, p++)
				*o++ = *p >= 'A' && *p <= 'Z' ? *p + 32 : *p;
		}
		p += strcspn(p, "\n");
		p += *p == '\n';
	}
	*o = '\0';
	free(b->keywords);
	b->keywords = k;
	return 0;
}

/*
 * Automatic<name>. A status list that is not what it holds keeps the one
 * before, as new-api does; an empty one disables by no status.
 */
static int
ban_option(struct ban_options *b, const char *name, const char *value,
    char *why, size_t whysz)
{
	struct code_range	 r[BAN_CODES_MAX];
	size_t			 n;

	if (strcmp(name, "DisableChannelEnabled") == 0)
		return bool_option(&b->disable, value, why, whysz);
	if (strcmp(name, "EnableChannelEnabled") == 0)
		return bool_option(&b->enable, value, why, whysz);
	if (strcmp(name, "DisableStatusCodes") == 0) {
		if (codes_parse(value, r, BAN_CODES_MAX, &n, why, whysz) == -1)
			return -1;
		memcpy(b->codes, r, n * sizeof(r[0]));
		b->ncodes = n;
		return 0;
	}
	if (strcmp(name, "DisableKeywords") == 0 &&
	    keywords_option(b, value) == -1) {
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	return 0;
}
