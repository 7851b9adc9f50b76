#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonread.h"
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

/* new-api's bounds for the counts and the window (its option checks). */
#define RATE_COUNT_MAX		1000000000
#define RATE_MINUTES_MAX	10080		/* a week */

/* A whole decimal number in [min, max]: 0, or -1 with why said. */
static int
rate_number(const char *value, long long min, long long max, int *out,
    char *why, size_t whysz)
{
	long long	 v;

	if (parse_ll(value, min, max, &v) == -1) {
		snprintf(why, whysz, "a whole number from %lld to %lld", min,
		    max);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* One member of ModelRequestRateLimitGroup: "group": [total, success]. */
struct group_read {
	struct rate_options	*r;
	char			*why;
	size_t			 whysz;
	int			 vals[2];
	size_t			 nvals;
};

static int
group_count(void *arg, const char *key, size_t keylen,
    const struct json_value *v)
{
	struct group_read	*g = arg;
	char			 num[24];
	long long		 n;

	(void)key; (void)keylen;
	if (g->nvals == 2 || v->kind != JSON_NUMBER || v->n >= sizeof(num))
		return -1;
	memcpy(num, v->p, v->n);
	num[v->n] = '\0';
	if (parse_ll(num, g->nvals == 0 ? 0 : 1, INT_MAX, &n) == -1)
		return -1;
	g->vals[g->nvals++] = (int)n;
	return 0;
}

static int
group_member(void *arg, const char *key, size_t keylen,
    const struct json_value *v)
{
	struct group_read	*g = arg;
	struct rate_group	*rg;

	if (keylen >= sizeof(rg->name)) {
		snprintf(g->why, g->whysz, "a group name longer than %zu bytes",
		    sizeof(rg->name) - 1);
		return -1;
	}
	if (g->r->ngroups == RATE_GROUPS_MAX) {
		snprintf(g->why, g->whysz, "more than %d groups",
		    RATE_GROUPS_MAX);
		return -1;
	}
	g->nvals = 0;
	if (v->kind != JSON_ARRAY || json_each(v, group_count, g) == -1 ||
	    g->nvals != 2) {
		snprintf(g->why, g->whysz, "group \"%.64s\": [total from 0, "
		    "success from 1] is what a group holds", key);
		return -1;
	}
	rg = &g->r->groups[g->r->ngroups++];
	memcpy(rg->name, key, keylen);
	rg->name[keylen] = '\0';
	rg->total = g->vals[0];
	rg->success = g->vals[1];
	return 0;
}

/*
 * ModelRequestRateLimitGroup: {"group": [total, success], ...}, as
 * new-api checks it (total from 0, success from 1); a group named twice
 * counts as JSON's last. All or nothing: a value with anything wrong
 * leaves the groups as they were.
 */
static int
rate_groups(struct rate_options *r, const char *value, char *why,
    size_t whysz)
{
	struct rate_options	 fresh;
	struct json_value	 top;
	struct group_read	 g;
	size_t			 i, k;

	memset(&fresh, 0, sizeof(fresh));
	if (json_parse(value, strlen(value), &top) == -1 ||
	    (top.kind != JSON_OBJECT && top.kind != JSON_NULL)) {
		snprintf(why, whysz, "a JSON object of groups");
		return -1;
	}
	memset(&g, 0, sizeof(g));
	g.r = &fresh;
	g.why = why;
	g.whysz = whysz;
	if (top.kind == JSON_OBJECT && json_each(&top, group_member, &g) == -1)
		return -1;
	/* the last of a name given twice */
	for (i = 0; i < fresh.ngroups; i++)
		for (k = i + 1; k < fresh.ngroups; k++)
			if (strcmp(fresh.groups[i].name,
			    fresh.groups[k].name) == 0) {
				fresh.groups[i] = fresh.groups[k];
				fresh.groups[k].name[0] = '\0';
			}
	r->ngroups = 0;
	for (i = 0; i < fresh.ngroups; i++)
		if (fresh.groups[i].name[0] != '\0')
			r->groups[r->ngroups++] = fresh.groups[i];
	return 0;
}

/*
 * ModelRequestRateLimit<name>, read as new-api reads it: Enabled "true"
 * or "false", DurationMinutes 1 to a week, Count from 0 (none),
 * SuccessCount from 1, Group a JSON object.
 */
static int
rate_option(struct rate_options *r, const char *name, const char *value,
    char *why, size_t whysz)
{
	if (strcmp(name, "Enabled") == 0) {
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0) {
			snprintf(why, whysz, "true or false");
			return -1;
		}
		r->enabled = value[0] == 't';
		return 0;
	}
	if (strcmp(name, "DurationMinutes") == 0)
		return rate_number(value, 1, RATE_MINUTES_MAX, &r->minutes,
		    why, whysz);
	if (strcmp(name, "Count") == 0)
		return rate_number(value, 0, RATE_COUNT_MAX, &r->total, why,
		    whysz);
	if (strcmp(name, "SuccessCount") == 0)
		return rate_number(value, 1, RATE_COUNT_MAX, &r->success, why,
		    whysz);
	if (strcmp(name, "Group") == 0)
		return rate_groups(r, value, why, whysz);
	return 0;
}

/*
 * The caps that apply to a user of group (the token's, else the user's:
 * token_group): the group's own when ModelRequestRateLimitGroup names it,
 * as new-api overrides both.
 */
void
rate_caps(const struct rate_options *r, const char *group, int *total,
    int *success)
{
	size_t	 i;

	*total = r->total;
	*success = r->success;
	for (i = 0; i < r->ngroups; i++)
		if (strcmp(r->groups[i].name, group) == 0) {
			*total = r->groups[i].total;
			*success = r->groups[i].success;
			return;
		}
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
