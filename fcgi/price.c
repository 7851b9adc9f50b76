#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jsonread.h"
#include "log.h"
#include "price.h"
#include "util.h"

/*
 * The price of one request, as price.h says: new-api's ModelPrice base or
 * the channel's flat amount, then our rules on the body's fields. The body
 * is read once, for the model and the fields the service's rules name, by
 * json_fields (jsonread.h), as the old gateway's Go will read it for the
 * job. A body that reader refuses is refused where the price depends on
 * the body: pricing it at the base would let any client choose its price.
 */

#define MODEL_PATHS	3	/* the service's model field, model, model_name */

struct fields {
	const char	*path[MODEL_PATHS + PRICE_FIELDS_MAX];
	char		 val[MODEL_PATHS + PRICE_FIELDS_MAX][JSON_SCALAR_MAX + 1];
	int		 found[MODEL_PATHS + PRICE_FIELDS_MAX];
	size_t		 n, nmodel;
	int		 bad;		/* json_fields refused the body */
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

/* The text of a field read, or NULL; fields equal without case are one. */
static const char *
field(const struct fields *f, const char *path)
{
	size_t	 i;

	for (i = 0; i < f->n; i++)
		if (strcasecmp(f->path[i], path) == 0)
			return f->found[i] == JF_VALUE ? f->val[i] : NULL;
	return NULL;
}

static const char *
model_field(const struct prices *p, const char *service)
{
	size_t	 i;

	for (i = 0; i < p->nmodel_fields; i++)
		if (strcmp(p->model_fields[i].service, service) == 0)
			return p->model_fields[i].field;
	return "model";
}

static int
has_path(const struct fields *f, const char *path)
{
	size_t	 i;

	for (i = 0; i < f->n; i++)
		if (strcasecmp(f->path[i], path) == 0)
			return 1;
	return 0;
}

/*
 * The model fields and every field a rule of service names (at most
 * PRICE_FIELDS_MAX distinct ones: prices_loaded marks the rest skipped),
 * read at once.
 */
static void
read_fields(const struct prices *p, const char *service, const char *body,
    size_t len, struct fields *f)
{
	static const char *const names[] = { "model", "model_name" };
	const char	*rf[PRICE_FIELDS_MAX];
	size_t		 i, k, nrf = 0;

	f->n = 0;
	f->path[f->n++] = model_field(p, service);
	for (i = 0; i < 2; i++)
		if (!has_path(f, names[i]))
			f->path[f->n++] = names[i];
	f->nmodel = f->n;
	for (i = 0; i < p->nrules; i++) {
		const struct price_rule *r = &p->rules[i];

		if (r->field[0] == '\0' || r->skipped ||
		    strcmp(r->service, service) != 0)
			continue;
		for (k = 0; k < nrf && strcasecmp(rf[k], r->field) != 0; k++)
			;
		if (k < nrf || nrf == PRICE_FIELDS_MAX)
			continue;
		rf[nrf++] = r->field;
		/* a rule on a model field reads the same path */
		if (!has_path(f, r->field))
			f->path[f->n++] = r->field;
	}
	f->bad = json_fields(body, len, f->path, f->n, f->val, f->found) == -1;
}

/*
 * Does the price of service depend on the body: a rule on a field or for
 * a model, or any ModelPrice entry (the model then decides the base)?
 */
static int
reads_body(const struct prices *p, const char *service)
{
	size_t	 i;

	if (p->model_price.n > 0)
		return 1;
	for (i = 0; i < p->nrules; i++)
		if (!p->rules[i].skipped &&
		    strcmp(p->rules[i].service, service) == 0 &&
		    (p->rules[i].field[0] != '\0' || p->rules[i].model[0] != '\0'))
			return 1;
	return 0;
}

/* Does rule r (of the request's service) apply to this model and body? */
static int
rule_matches(const struct price_rule *r, const char *model,
    const struct fields *f)
{
	const char	*v;

	if (r->skipped || (r->model[0] != '\0' && strcmp(r->model, model) != 0))
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
		    strcasecmp(x->field, r->field) == 0 &&
		    rule_matches(x, model, f))
			return 1;
	}
	return 0;
}

static int
applies(const struct prices *p, const struct price_rule *r,
    const char *service, const char *model, const struct fields *f)
{
	return strcmp(r->service, service) == 0 && rule_matches(r, model, f) &&
	    !overridden(p, r, service, model, f);
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

/*
 * The price of the request as if model were its model. The multipliers
 * go smallest first: the product then never leaves the range between 0
 * and PRICE_MAX until it is known to end above it, whatever the rules
 * (a x0 makes it 0, as it does in exact arithmetic).
 */
static enum price_verdict
price_model(const struct prices *p, const char *service, const char *group,
    long long flat, const struct fields *f, const char *model,
    struct price_out *out)
{
	long double	 q;
	double		 usd, ratio = 1, d;
	long long	 add = 0, qi;
	size_t		 i;
	int		 zero = 0, pass;

	memset(out, 0, sizeof(*out));
	strlcpy_(out->model, model, sizeof(out->model));
	out->group_ratio = 1;
	if (map_get(&p->model_price, model, &usd)) {
		/* options were loaded finite and >= 0 (price_option) */
		if (!map_get(&p->group_ratio, group, &ratio))
			ratio = 1;
		/*
		 * new-api: int(modelPrice * QuotaPerUnit * groupRatio), in
		 * float64 and in that order, so the truncation agrees
		 */
		d = usd * (p->quota_per_unit > 0 ? p->quota_per_unit :
		    QUOTA_PER_UNIT);
		d = d * ratio;
		if (!(d <= (double)PRICE_MAX))	/* NaN and infinity too */
			return PRICE_TOO_HIGH;
		out->base = d > 0 ? (long long)d : 0;
		out->from_model_price = 1;
		out->group_ratio = ratio;
	} else {
		if (flat > PRICE_MAX)
			return PRICE_TOO_HIGH;
		out->base = flat > 0 ? flat : 0;
	}

	for (i = 0; i < p->nrules; i++) {
		const struct price_rule *r = &p->rules[i];

		if (!applies(p, r, service, model, f))
			continue;
		if (r->mult_e4 == 0)
			zero = 1;
		if (r->surcharge > PRICE_MAX - add)	/* each 0..SURCHARGE_MAX */
			return PRICE_TOO_HIGH;
		add += r->surcharge;
		if (out->napplied < PRICE_APPLIED_MAX)
			out->applied[out->napplied++] = r;
	}
	q = zero ? 0 : (long double)out->base;
	for (pass = 0; pass < 2 && q > 0; pass++)
		for (i = 0; i < p->nrules; i++) {
			const struct price_rule *r = &p->rules[i];

			if ((pass == 0) != (r->mult_e4 < MULT_ONE) ||
			    r->mult_e4 == MULT_ONE ||
			    !applies(p, r, service, model, f))
				continue;
			q = q * (long double)r->mult_e4 / (long double)MULT_ONE;
			if (q > (long double)PRICE_MAX)	/* only grows now */
				return PRICE_TOO_HIGH;
		}
	qi = (long long)(q + 0.5L);	/* to the nearest unit */
	if (add > PRICE_MAX - qi)
		return PRICE_TOO_HIGH;
	out->quota = qi + add;
	return PRICE_OK;
}

enum price_verdict
price_of(const struct prices *p, const char *service, const char *group,
    long long flat, const char *body, size_t len, int flags,
    struct price_out *out)
{
	struct fields		 f;
	struct price_out	 o;
	enum price_verdict	 v;
	const char		*cand[MODEL_PATHS + 1];
	size_t			 i, k, n = 0;
	int			 have = 0;

	memset(out, 0, sizeof(*out));
	strlcpy_(out->model, service, sizeof(out->model));
	read_fields(p, service, body, len, &f);
	if (len > 0 && (f.bad || (flags & PRICE_FORM))) {
		if (reads_body(p, service))
			return PRICE_BAD_BODY;
		for (i = 0; i < f.n; i++)	/* it names nothing */
			f.found[i] = JF_ABSENT;
	}
	/* every model the body names; where they differ, the dearest */
	for (i = 0; i < f.nmodel; i++) {
		if (f.found[i] != JF_VALUE || f.val[i][0] == '\0' ||
		    strlen(f.val[i]) >= sizeof(out->model))
			continue;
		for (k = 0; k < n && strcmp(cand[k], f.val[i]) != 0; k++)
			;
		if (k == n)
			cand[n++] = f.val[i];
	}
	if (n == 0)
		cand[n++] = service;
	for (i = 0; i < n; i++) {
		if ((v = price_model(p, service, group, flat, &f, cand[i],
		    &o)) != PRICE_OK)
			return v;
		if (!have || o.quota > out->quota) {
			*out = o;
			have = 1;
		}
	}
	return PRICE_OK;
}

/*
 * Rules whose field is past the first PRICE_FIELDS_MAX distinct fields
 * of their service (in id order, without case) are never read: they are
 * marked and named in the log, once for each load.
 */
void
prices_loaded(struct prices *p)
{
	struct svc_fields {
		const char	*service;
		const char	*seen[PRICE_FIELDS_MAX];
		size_t		 n;
	}		*t;
	size_t		 i, k, ns = 0;

	if (p->nrules == 0)
		return;
	if ((t = calloc(p->nrules, sizeof(*t))) == NULL) {
		log_err("price rules: out of memory checking their fields");
		return;
	}
	for (i = 0; i < p->nrules; i++) {
		struct price_rule	*r = &p->rules[i];
		struct svc_fields	*s;

		if (r->field[0] == '\0')
			continue;
		for (k = 0; k < ns && strcmp(t[k].service, r->service) != 0; k++)
			;
		s = &t[k];
		if (k == ns) {
			s->service = r->service;
			ns++;
		}
		for (k = 0; k < s->n && strcasecmp(s->seen[k], r->field) != 0; k++)
			;
		if (k < s->n)
			continue;
		if (s->n < PRICE_FIELDS_MAX) {
			s->seen[s->n++] = r->field;
			continue;
		}
		r->skipped = 1;
		log_warn("price rule %lld (%s %s=%s) never applies: service %s "
		    "has rules on more than %d fields", r->id, r->service,
		    r->field, r->value, r->service, PRICE_FIELDS_MAX);
	}
	free(t);
}
