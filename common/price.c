#include <json-c/json.h>

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

int
price_option(struct prices *p, const char *key, const char *value)
{
	struct price_map	*m;
	char			*end;
	double			 d;

	if (strcmp(key, "QuotaPerUnit") == 0) {
		d = strtod(value, &end);
		if (end == value || *end != '\0' || !(d > 0))
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
	return price_map_parse(m, value);
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

