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

/* Automatic<name> */
static int
ban_option(struct ban_options *b, const char *name, const char *value,
    char *why, size_t whysz)
{
	(void)b; (void)name; (void)value; (void)why; (void)whysz;
	return 0;
}
