#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "price.h"
#include "relay.h"

/*
 * The price of one request, as price.h says: new-api's ModelPrice base or
 * the channel's flat amount, then our rules on the body's fields. The body
 * is read once, for the model and the fields the service's rules name,
 * by json_scalars (affinity.c): no allocation, any length, any depth.
 */

#define QUOTA_CAP	(INT64_MAX / 2)
#define FIELDS_MAX	32	/* distinct fields read for one request */

struct fields {
	const char	*path[FIELDS_MAX + 2];
	char		 val[FIELDS_MAX + 2][JSON_SCALAR_MAX + 1];
	int		 found[FIELDS_MAX + 2];
	size_t		 n;
};

static int
map_get(const struct price_map *m, const char *name, double *out)
{
	size_t	 i;

	for (i = 0; i < m->n; i++)
		if (strcmp(m->name[i], name) == 0) {
			*out = m->v[i];
			return 1;
		}
	return 0;
}

/* The text of a field read, or NULL. */
static const char *
field(const struct fields *f, const char *path)
{
	size_t	 i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->path[i], path) == 0)
			return f->found[i] ? f->val[i] : NULL;
	return NULL;
}

/* The model and every field a rule of service names, read at once. */
static void
read_fields(const struct prices *p, const char *service, const char *body,
    size_t len, struct fields *f)
{
	size_t	 i, k;

	f->n = 0;
	f->path[f->n++] = "model";
	f->path[f->n++] = "model_name";
	for (i = 0; i < p->nrules; i++) {
		const struct price_rule *r = &p->rules[i];

		if (r->field[0] == '\0' || strcmp(r->service, service) != 0)
			continue;
		for (k = 0; k < f->n && strcmp(f->path[k], r->field) != 0; k++)
			;
		if (k == f->n && f->n < FIELDS_MAX + 2)
			f->path[f->n++] = r->field;
	}
	json_scalars(body, len, f->path, f->n, f->val, f->found);
}

static void
model_of(const struct fields *f, const char *service, char *out, size_t outsz)
{
	const char	*m;

	if (((m = field(f, "model")) != NULL && *m != '\0') ||
	    ((m = field(f, "model_name")) != NULL && *m != '\0'))
		if (strlen(m) < outsz && memchr(m, 0x80, strlen(m)) == NULL) {
			memcpy(out, m, strlen(m) + 1);
			return;
		}
	strlcpy_(out, service, outsz);
}

/* Does rule r (of the request's service) apply to this model and body? */
static int
rule_matches(const struct price_rule *r, const char *model,
    const struct fields *f)
{
	const char	*v;

	if (r->model[0] != '\0' && strcmp(r->model, model) != 0)
		return 0;
	if (r->field[0] == '\0')
		return 1;
	/* without case, as the old gateway's Go reads keys: "PRO" is pro */
	return (v = field(f, r->field)) != NULL && strcasecmp(v, r->value) == 0;
}

/* A rule for the model on the same field that matches: r gives way. */
static int
overridden(const struct prices *p, const struct price_rule *r,
    const char *service, const char *model, const struct fields *f)
{
	size_t	 i;

	if (r->model[0] != '\0')
		return 0;
	for (i = 0; i < p->nrules; i++) {
		const struct price_rule *x = &p->rules[i];
		if (x->model[0] != '\0' && strcmp(x->service, service) == 0 &&
		    strcmp(x->field, r->field) == 0 && rule_matches(x, model, f))
			return 1;
	}
	return 0;
}

void
price_applied_text(const struct price_out *p, char *out, size_t outsz)
{
	const struct price_rule	*r;
	size_t			 i, len;
	char			 m[32];

	out[0] = '\0';
	for (i = 0; i < p->napplied; i++) {
		r = p->applied[i];
		len = strlen(out);
		snprintf(out + len, outsz - len, "%s%s%s%s", i ? ", " : "",
		    r->field[0] ? r->field : "*", r->field[0] ? "=" : "",
		    r->field[0] ? r->value : "");
		if (r->mult_e4 != MULT_ONE) {
			price_mult_text(r->mult_e4, m, sizeof(m));
			len = strlen(out);
			snprintf(out + len, outsz - len, " x%s", m);
		}
		if (r->surcharge != 0) {
			len = strlen(out);
			snprintf(out + len, outsz - len, " +%lld", r->surcharge);
		}
	}
}

void
price_of(const struct prices *p, const char *service, const char *group,
    long long flat, const char *body, size_t len, struct price_out *out)
{
	struct fields	 f;
	long double	 q;
	double		 usd, ratio = 1, d;
	long long	 add = 0;
	size_t		 i;

	memset(out, 0, sizeof(*out));
	read_fields(p, service, body, len, &f);
	model_of(&f, service, out->model, sizeof(out->model));
	out->group_ratio = 1;
	if (map_get(&p->model_price, out->model, &usd) && usd >= 0) {
		if (!map_get(&p->group_ratio, group, &ratio) || ratio < 0)
			ratio = 1;
		/*
		 * new-api: int(modelPrice * QuotaPerUnit * groupRatio), in
		 * float64 and in that order, so the truncation agrees
		 */
		d = usd * (p->quota_per_unit > 0 ? p->quota_per_unit :
		    QUOTA_PER_UNIT);
		d = d * ratio;
		out->base = d >= (double)QUOTA_CAP ? QUOTA_CAP : (long long)d;
		out->from_model_price = 1;
		out->group_ratio = ratio;
	} else
		out->base = flat > 0 ? flat : 0;

	q = (long double)out->base;
	for (i = 0; i < p->nrules; i++) {
		const struct price_rule *r = &p->rules[i];

		if (strcmp(r->service, service) != 0 ||
		    !rule_matches(r, out->model, &f) ||
		    overridden(p, r, service, out->model, &f))
			continue;
		q = q * (long double)r->mult_e4 / (long double)MULT_ONE;
		if (q > (long double)QUOTA_CAP)
			q = (long double)QUOTA_CAP;
		add += r->surcharge;
		if (add > QUOTA_CAP)
			add = QUOTA_CAP;
		if (out->napplied < PRICE_APPLIED_MAX)
			out->applied[out->napplied++] = r;
	}
	q = q + 0.5L + (long double)add;	/* to the nearest unit */
	out->quota = q >= (long double)QUOTA_CAP ? QUOTA_CAP : (long long)q;
}
