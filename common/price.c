#include <json-c/json.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "price.h"
#include "util.h"

/*
 * What prices are made of, for the relay and the admin: new-api's price
 * options (read with json-c: once per reload, not per request) and the
 * multiplier as text. Pricing a request is the relay's (fcgi/price.c).
 */

#define OPTION_DEPTH	16

static void
map_free(struct price_map *m)
{
	size_t	 i;

	for (i = 0; i < m->n; i++)
		free(m->name[i]);
	free(m->name);
	free(m->v);
	memset(m, 0, sizeof(*m));
}

void
prices_free(struct prices *p)
{
	map_free(&p->model_price);
	map_free(&p->group_ratio);
	free(p->rules);
	p->rules = NULL;
	p->nrules = 0;
	free(p->model_fields);
	p->model_fields = NULL;
	p->nmodel_fields = 0;
}

static json_object *
parse(const char *s, size_t len)
{
	json_tokener	*tok;
	json_object	*o;

	if (s == NULL || len == 0 || len > INT32_MAX ||
	    (tok = json_tokener_new_ex(OPTION_DEPTH)) == NULL)
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

/*
 * json-c takes NaN and Infinity, and new-api's Go would not have them in
 * a price: a price is a finite number of at least 0, or it is left out (a
 * NaN or negative one made a price negative, that is free, and the quote
 * no JSON).
 */
int
price_map_parse(struct price_map *m, const char *json, char *why,
    size_t whysz)
{
	json_object	*o;
	size_t		 n = 0;
	double		 d;
	int		 rc = 0;

	memset(m, 0, sizeof(*m));
	if (whysz > 0)
		why[0] = '\0';
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
		if ((!json_object_is_type(v, json_type_double) &&
		    !json_object_is_type(v, json_type_int)) ||
		    !isfinite(d = json_object_get_double(v)) || d < 0) {
			if (rc == 0 && whysz > 0)
				snprintf(why, whysz, "%s", k);
			rc = 1;
			continue;
		}
		if ((m->name[m->n] = strdup(k)) == NULL)
			break;
		m->v[m->n++] = d;
	}
	json_object_put(o);
	return rc;
}

int
price_option(struct prices *p, const char *key, const char *value, char *why,
    size_t whysz)
{
	struct price_map	*m, fresh;
	char			*end;
	double			 d;
	int			 rc;

	if (whysz > 0)
		why[0] = '\0';
	if (strcmp(key, "QuotaPerUnit") == 0) {
		d = strtod(value, &end);
		if (end == value || *end != '\0' || !isfinite(d) || !(d > 0))
			return -1;
		p->quota_per_unit = d;
		return 0;
	}
	if (strcmp(key, "ModelPrice") == 0)
		m = &p->model_price;
	else if (strcmp(key, "GroupRatio") == 0)
		m = &p->group_ratio;
	else
		return 0;
	if ((rc = price_map_parse(&fresh, value, why, whysz)) == -1)
		return -1;
	map_free(m);
	*m = fresh;
	return rc;
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

