#include <json-c/json.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "price.h"
#include "util.h"

/*
 * Prices, as price.h says: new-api's ModelPrice base, or the channel's
 * flat amount, then our rules on the body's fields. The body is parsed
 * once with json-c, with a depth limit; anything but an object matches
 * only the rules without a field.
 */

#define JSON_DEPTH	16
#define QUOTA_CAP	(INT64_MAX / 2)

void
prices_free(struct prices *p)
{
	struct price_map	*m[2] = { &p->model_price, &p->group_ratio };
	size_t			 i, k;

	for (k = 0; k < 2; k++) {
		for (i = 0; i < m[k]->n; i++)
			free(m[k]->name[i]);
		free(m[k]->name);
		free(m[k]->v);
		memset(m[k], 0, sizeof(*m[k]));
	}
	free(p->rules);
	p->rules = NULL;
	p->nrules = 0;
}

static json_object *
parse(const char *s, size_t len)
{
	json_tokener	*tok;
	json_object	*o;

	if (s == NULL || len == 0 || len > INT32_MAX ||
	    (tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) < len)) {
		/* trailing bytes after the value: only blanks are fine */
		size_t	 e = json_tokener_get_parse_end(tok);
		while (e < len && (s[e] == ' ' || s[e] == '\t' || s[e] == '\r' ||
		    s[e] == '\n'))
			e++;
		if (e < len) {
			json_object_put(o);
			o = NULL;
		}
	}
	json_tokener_free(tok);
	return o;
}

int
price_map_parse(struct price_map *m, const char *json)
{
	json_object	*o;
	size_t		 n = 0;

	memset(m, 0, sizeof(*m));
	if (json == NULL || *json == '\0')
		return 0;
	if ((o = parse(json, strlen(json))) == NULL ||
	    !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -1;
	}
	n = (size_t)json_object_object_length(o);
	if (n > 0 && ((m->name = calloc(n, sizeof(*m->name))) == NULL ||
	    (m->v = calloc(n, sizeof(*m->v))) == NULL)) {
		free(m->name);
		m->name = NULL;
		json_object_put(o);
		return -1;
	}
	json_object_object_foreach(o, k, v) {
		if (!json_object_is_type(v, json_type_double) &&
		    !json_object_is_type(v, json_type_int))
			continue;
		if ((m->name[m->n] = strdup(k)) == NULL)
			break;
		m->v[m->n++] = json_object_get_double(v);
	}
	json_object_put(o);
	return 0;
}

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

static void
model_of(json_object *o, const char *service, char *out, size_t outsz)
{
	json_object	*v;

	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    ((json_object_object_get_ex(o, "model", &v) &&
	    json_object_is_type(v, json_type_string)) ||
	    (json_object_object_get_ex(o, "model_name", &v) &&
	    json_object_is_type(v, json_type_string))) &&
	    json_object_get_string_len(v) > 0 &&
	    (size_t)json_object_get_string_len(v) < outsz) {
		memcpy(out, json_object_get_string(v),
		    (size_t)json_object_get_string_len(v) + 1);
		return;
	}
	strlcpy_(out, service, outsz);
}

void
price_model(const char *body, size_t len, const char *service, char *out,
    size_t outsz)
{
	json_object	*o = parse(body, len);

	model_of(o, service, out, outsz);
	json_object_put(o);
}

/*
 * The text of a dotted field of o, as a rule's value reads: a string as
 * it is, a number or a boolean as JSON writes it. 0 when it is none.
 */
static int
field_text(json_object *o, const char *field, char *out, size_t outsz)
{
	char		 name[PRICE_FIELD_MAX + 1];
	const char	*p = field, *dot;
	json_object	*v = o;
	size_t		 n;

	for (;;) {
		dot = strchr(p, '.');
		n = dot ? (size_t)(dot - p) : strlen(p);
		if (n == 0 || n >= sizeof(name) ||
		    !json_object_is_type(v, json_type_object))
			return 0;
		memcpy(name, p, n);
		name[n] = '\0';
		if (!json_object_object_get_ex(v, name, &v))
			return 0;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	switch (json_object_get_type(v)) {
	case json_type_string:
		strlcpy_(out, json_object_get_string(v), outsz);
		return 1;
	case json_type_int:
		snprintf(out, outsz, "%lld", (long long)json_object_get_int64(v));
		return 1;
	case json_type_double: {
		double d = json_object_get_double(v);
		/* 10.0 reads as 10: a duration may come either way */
		if (d == floor(d) && fabs(d) < 1e15)
			snprintf(out, outsz, "%.0f", d);
		else
			snprintf(out, outsz, "%.15g", d);
		return 1;
	}
	case json_type_boolean:
		strlcpy_(out, json_object_get_boolean(v) ? "true" : "false",
		    outsz);
		return 1;
	default:
		return 0;
	}
}

void
price_mult_text(long long e4, char *out, size_t outsz)
{
	int	 n;

	n = snprintf(out, outsz, "%lld.%04lld", e4 / MULT_ONE, e4 % MULT_ONE);
	/* 1.5000 -> 1.5, 2.0000 -> 2 */
	while (n > 0 && (size_t)n < outsz && out[n - 1] == '0')
		out[--n] = '\0';
	if (n > 0 && (size_t)n < outsz && out[n - 1] == '.')
		out[--n] = '\0';
}

/* Does rule r (of the request's service) apply to this model and body? */
static int
rule_matches(const struct price_rule *r, const char *model, json_object *o)
{
	char	 v[PRICE_FIELD_MAX * 4 + 1];

	if (r->model[0] != '\0' && strcmp(r->model, model) != 0)
		return 0;
	if (r->field[0] == '\0')
		return 1;
	return o != NULL && field_text(o, r->field, v, sizeof(v)) &&
	    strcmp(v, r->value) == 0;
}

/* A rule for the model on the same field that matches: r gives way. */
static int
overridden(const struct prices *p, const struct price_rule *r,
    const char *service, const char *model, json_object *o)
{
	size_t	 i;

	if (r->model[0] != '\0')
		return 0;
	for (i = 0; i < p->nrules; i++) {
		const struct price_rule *x = &p->rules[i];
		if (x->model[0] != '\0' && strcmp(x->service, service) == 0 &&
		    strcmp(x->field, r->field) == 0 && rule_matches(x, model, o))
			return 1;
	}
	return 0;
}

static void
note_applied(struct price_out *out, const struct price_rule *r)
{
	size_t	 len = strlen(out->applied);
	char	 m[32];

	price_mult_text(r->mult_e4, m, sizeof(m));
	snprintf(out->applied + len, sizeof(out->applied) - len,
	    "%s%s%s%s", len ? ", " : "", r->field[0] ? r->field : "*",
	    r->field[0] ? "=" : "", r->field[0] ? r->value : "");
	len = strlen(out->applied);
	if (r->mult_e4 != MULT_ONE)
		snprintf(out->applied + len, sizeof(out->applied) - len,
		    " x%s", m);
	len = strlen(out->applied);
	if (r->surcharge != 0)
		snprintf(out->applied + len, sizeof(out->applied) - len,
		    " +%lld", r->surcharge);
}

void
price_of(const struct prices *p, const char *service, const char *group,
    long long flat, const char *body, size_t len, struct price_out *out)
{
	json_object	*o = parse(body, len);
	long double	 q;
	double		 usd, ratio = 1, d;
	long long	 add = 0;
	size_t		 i;

	memset(out, 0, sizeof(*out));
	model_of(o, service, out->model, sizeof(out->model));
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
		    !rule_matches(r, out->model, o) ||
		    overridden(p, r, service, out->model, o))
			continue;
		q = q * (long double)r->mult_e4 / (long double)MULT_ONE;
		if (q > (long double)QUOTA_CAP)
			q = (long double)QUOTA_CAP;
		add += r->surcharge;
		if (add > QUOTA_CAP)
			add = QUOTA_CAP;
		note_applied(out, r);
	}
	q = roundl(q) + (long double)add;
	out->quota = q >= (long double)QUOTA_CAP ? QUOTA_CAP : (long long)q;
	json_object_put(o);
}
