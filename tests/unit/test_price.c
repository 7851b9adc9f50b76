/* fcgi/price.c: what a request costs. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/price.c"
#include "util.h"

/* Prices: ModelPrice x QuotaPerUnit x GroupRatio, else flat; then rules. */
static void
test_price(void)
{
	struct price_rule r[] = {
		{ 1, "kling", "", "duration", "10", 20000, 0, "", 0 },
		{ 2, "kling", "", "mode", "pro", 35000, 0, "", 0 },
		{ 3, "kling", "kling-v2", "mode", "pro", 50000, 0, "", 0 },
		{ 4, "kling", "", "opts.n", "2", 10000, 250, "", 0 },
		{ 5, "suno", "", "", "", 10000, 7, "", 0 },
	};
	struct price_model_field mf[] = { { "kling", "model_name" } };
	struct prices	 p;
	struct price_out o;
	char		 why[64];
#define BODY(s)	s, sizeof(s) - 1

	memset(&p, 0, sizeof(p));
	p.quota_per_unit = QUOTA_PER_UNIT;
	p.rules = r;
	p.nrules = sizeof(r) / sizeof(r[0]);
	p.model_fields = mf;
	p.nmodel_fields = 1;
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"duration\":5}"), 0,
	    &o) == PRICE_OK);
	T_OK(o.quota == 1000 && strcmp(o.model, "kling") == 0 && !o.from_model_price);
	price_of(&p, "kling", "default", 1000,
	    BODY("{\"duration\":10,\"mode\":\"pro\"}"), 0, &o);
	T_INT(o.quota, 7000);
	{
		char	 text[256];

		price_applied_text(&o, text, sizeof(text));
		T_STR(text, "duration=10 x2, mode=pro x3.5");
	}
	price_of(&p, "kling", "default", 1000, BODY("{\"duration\":\"10\","
	    "\"mode\":\"pro\",\"model_name\":\"kling-v2\"}"), 0, &o);
	T_OK(o.quota == 10000 && strcmp(o.model, "kling-v2") == 0);
	price_of(&p, "kling", "default", 1000, BODY("{\"duration\":10.0,"
	    "\"opts\":{\"n\":2}}"), 0, &o);
	T_INT(o.quota, 2250);
	price_of(&p, "kling", "default", 1000,
	    BODY("{\"Duration\":5,\"duration\":10,\"MODE\":\"PRO\"}"), 0, &o);
	T_INT(o.quota, 7000);		/* Go's reading: no case, the last */
	price_of(&p, "kling", "default", 1000, BODY("{\"duration\":10,"
	    "\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]"
	    "]]]]]]]]]]]]]]]]]]]]]]],\"mode\":\"pro\"}"), 0, &o);
	T_INT(o.quota, 7000);		/* no depth hides a field */
	/* an honest Kling body: numbers and literals hide nothing */
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"model_name\":"
	    "\"kling-v1\",\"prompt\":\"a cat\",\"seed\":42,\"cfg_scale\":0.5,"
	    "\"watermark\":false,\"x\":null,\"duration\":10,\"mode\":\"pro\"}"),
	    0, &o) == PRICE_OK && o.quota == 7000);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"duration\":10,"
	    "\"duration\":null,\"mode\":\"pro\"}"), 0, &o) == PRICE_OK &&
	    o.quota == 7000);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"duration\\u0000\":"
	    "10}"), 0, &o) == PRICE_OK && o.quota == 1000);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"\\u004dOD\\u0045\":"
	    "\"pro\",\"duration\":10}"), 0, &o) == PRICE_OK && o.quota == 7000);
	/* a body Go would refuse is refused where the price reads it */
	T_OK(price_of(&p, "kling", "default", 1000, BODY("not json"), 0, &o) ==
	    PRICE_BAD_BODY);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"duration\":10} x"),
	    0, &o) == PRICE_BAD_BODY);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("[1]"), 0, &o) ==
	    PRICE_BAD_BODY);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"duration\":10}"),
	    PRICE_FORM, &o) == PRICE_BAD_BODY);
	T_OK(price_of(&p, "kling", "default", 1000, NULL, 0, 0, &o) ==
	    PRICE_OK && o.quota == 1000);	/* empty: names nothing */
	T_OK(price_of(&p, "kling", "default", 1000, BODY("null"), 0, &o) ==
	    PRICE_OK && o.quota == 1000);
	/* ... and is priced at the base where it does not */
	T_OK(price_of(&p, "pika", "default", 1000, BODY("not json"), 0, &o) ==
	    PRICE_OK && o.quota == 1000);
	T_OK(price_of(&p, "suno", "default", 0, BODY("a=b"), PRICE_FORM, &o) ==
	    PRICE_OK && o.quota == 7);
	price_of(&p, "suno", "default", 0, NULL, 0, 0, &o);
	T_INT(o.quota, 7);		/* a surcharge on a free base */
	price_of(&p, "pika", "default", 1000, BODY("{\"duration\":10}"), 0, &o);
	T_OK(o.quota == 1000 && o.napplied == 0);

	/* new-api: int(0.0213 * 500000 * 1.5) = 15975 */
	T_OK(price_map_parse(&p.model_price, "{\"kling-v1\":0.0213,\"x\":\"y\"}",
	    why, sizeof(why)) == 1 && strcmp(why, "x") == 0);
	T_INT(p.model_price.n, 1);
	T_INT(price_map_parse(&p.group_ratio, "{\"vip\":1.5}", NULL, 0), 0);
	price_of(&p, "kling", "vip", 1000, BODY("{\"model\":\"kling-v1\"}"), 0, &o);
	T_OK(o.quota == 15975 && o.base == 15975 && o.from_model_price);
	price_of(&p, "kling", "other", 1000, BODY("{\"model\":\"kling-v1\"}"), 0,
	    &o);
	T_INT(o.quota, 10650);	/* a group without a ratio: 1 */
	/* ModelPrice has entries: every model matters, the body is read */
	T_OK(price_of(&p, "pika", "default", 1000, BODY("{} x"), 0, &o) ==
	    PRICE_BAD_BODY);
	p.rules = NULL;
	p.nrules = 0;
	p.model_fields = NULL;
	p.nmodel_fields = 0;
	prices_free(&p);

	/* model and model_name differ: the dearer, whichever field */
	T_OK(price_option(&p, "ModelPrice", "{\"kling-v1\":0.1,"
	    "\"kling-v2-master\":1}", why, sizeof(why)) == 0);
	p.rules = r;
	p.nrules = sizeof(r) / sizeof(r[0]);
	p.model_fields = mf;
	p.nmodel_fields = 1;
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"model\":"
	    "\"kling-v1\",\"model_name\":\"kling-v2-master\"}"), 0, &o) ==
	    PRICE_OK && o.quota == 500000 && strcmp(o.model, "kling-v2-master") == 0);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"model_name\":"
	    "\"kling-v1\",\"model\":\"kling-v2-master\"}"), 0, &o) ==
	    PRICE_OK && o.quota == 500000 && strcmp(o.model, "kling-v2-master") == 0);
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"model_name\":"
	    "\"kling-v1\",\"model\":\"nosuch\"}"), 0, &o) == PRICE_OK &&
	    o.quota == 50000 && strcmp(o.model, "kling-v1") == 0);
	T_OK(price_of(&p, "kling", "default", 100000, BODY("{\"model_name\":"
	    "\"kling-v1\",\"model\":\"nosuch\"}"), 0, &o) == PRICE_OK &&
	    o.quota == 100000 && strcmp(o.model, "nosuch") == 0);
	/* a rule for one model: the dearer with its rules */
	T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"model_name\":"
	    "\"kling-v2\",\"model\":\"kling-v1\",\"mode\":\"pro\"}"), 0, &o) ==
	    PRICE_OK && o.quota == 175000 && strcmp(o.model, "kling-v1") == 0);
	p.rules = NULL;
	p.nrules = 0;
	p.model_fields = NULL;
	p.nmodel_fields = 0;
	prices_free(&p);

	/* a price above PRICE_MAX is refused, never cut */
	{
		struct price_rule big[] = {
			{ 1, "x", "", "a", "1", MULT_MAX, 0, "", 0 },
			{ 2, "x", "", "b", "1", 0, 0, "", 0 },
			{ 3, "x", "", "c", "1", 10000, SURCHARGE_MAX, "", 0 },
			{ 4, "x", "", "d", "1", 1, 0, "", 0 },
		};

		p.quota_per_unit = QUOTA_PER_UNIT;
		p.rules = big;
		p.nrules = 4;
		T_OK(price_of(&p, "x", "default", PRICE_MAX, BODY("{}"), 0, &o) ==
		    PRICE_OK && o.quota == PRICE_MAX);
		T_OK(price_of(&p, "x", "default", PRICE_MAX + 1, BODY("{}"), 0,
		    &o) == PRICE_TOO_HIGH);
		T_OK(price_of(&p, "x", "default", INT64_MAX, BODY("{}"), 0, &o) ==
		    PRICE_TOO_HIGH);
		T_OK(price_of(&p, "x", "default", PRICE_MAX / 1000 + 1,
		    BODY("{\"a\":1}"), 0, &o) == PRICE_TOO_HIGH);
		T_OK(price_of(&p, "x", "default", PRICE_MAX / 1000,
		    BODY("{\"a\":1}"), 0, &o) == PRICE_OK && o.quota == PRICE_MAX);
		/* x1000 and x0.0001 and x0: exact arithmetic's answer */
		T_OK(price_of(&p, "x", "default", PRICE_MAX,
		    BODY("{\"a\":1,\"d\":1}"), 0, &o) == PRICE_OK &&
		    o.quota == PRICE_MAX / 10);
		T_OK(price_of(&p, "x", "default", PRICE_MAX,
		    BODY("{\"a\":1,\"b\":1,\"c\":1}"), 0, &o) == PRICE_OK &&
		    o.quota == SURCHARGE_MAX);
		T_OK(price_of(&p, "x", "default", PRICE_MAX - SURCHARGE_MAX + 1,
		    BODY("{\"c\":1}"), 0, &o) == PRICE_TOO_HIGH);
		T_OK(price_option(&p, "ModelPrice", "{\"x\":2000000000,"
		    "\"y\":1e300}", why, sizeof(why)) == 0);
		T_OK(price_option(&p, "GroupRatio", "{\"g\":1e300}", why,
		    sizeof(why)) == 0);
		T_OK(price_of(&p, "x", "default", 0, BODY("{}"), 0, &o) ==
		    PRICE_OK && o.quota == PRICE_MAX);
		T_OK(price_of(&p, "x", "g", 0, BODY("{}"), 0, &o) ==
		    PRICE_TOO_HIGH);
		T_OK(price_of(&p, "x", "default", 0, BODY("{\"model\":\"y\"}"), 0,
		    &o) == PRICE_TOO_HIGH);
		p.rules = NULL;
		p.nrules = 0;
		prices_free(&p);
	}

	T_OK(printable_ascii("pro", 3) && !printable_ascii("pro", 2) &&
	    !printable_ascii("", 3) && !printable_ascii("a\tb", 8) &&
	    !printable_ascii("\xc3\xa9", 8) && printable_ascii(" ~", 2));
	T_OK(price_option(&p, "QuotaPerUnit", "1e6", why, sizeof(why)) == 0 &&
	    p.quota_per_unit == 1e6);
	T_OK(price_option(&p, "QuotaPerUnit", "-1", why, sizeof(why)) == -1 &&
	    p.quota_per_unit == 1e6);
	T_INT(price_option(&p, "QuotaPerUnit", "5x", why, sizeof(why)), -1);
	/* json-c and strtod take NaN and infinity; a price does not */
	T_OK(price_option(&p, "QuotaPerUnit", "nan", why, sizeof(why)) == -1 &&
	    price_option(&p, "QuotaPerUnit", "inf", why, sizeof(why)) == -1 &&
	    price_option(&p, "QuotaPerUnit", "1e999", why, sizeof(why)) == -1 &&
	    p.quota_per_unit == 1e6);
	T_INT(price_option(&p, "ModelRatio", "{", why, sizeof(why)), 0);
	T_OK(price_option(&p, "GroupRatio", "{\"vip\":2}", why, sizeof(why)) == 0 &&
	    p.group_ratio.n == 1 && p.group_ratio.v[0] == 2);
	T_OK(price_option(&p, "GroupRatio", "{\"a\":NaN,\"b\":-1,\"c\":"
	    "Infinity,\"d\":-Infinity,\"vip\":0}", why, sizeof(why)) == 1 &&
	    strcmp(why, "a") == 0 && p.group_ratio.n == 1 &&
	    p.group_ratio.v[0] == 0);
	T_OK(price_option(&p, "ModelPrice", "{\"kling\":NaN,\"k2\":-0.5,"
	    "\"k3\":0.5}", why, sizeof(why)) == 1 && p.model_price.n == 1 &&
	    strcmp(p.model_price.name[0], "k3") == 0);
	T_OK(price_option(&p, "ModelPrice", "[1]", why, sizeof(why)) == -1 &&
	    p.model_price.n == 1);	/* it keeps what it had */
	{
		struct price_rule nr[] = {
			{ 1, "kling", "", "", "", 20000, 0, "", 0 },
		};

		p.rules = nr;
		p.nrules = 1;
		/* a NaN price is no price: the channel's amount */
		T_OK(price_of(&p, "kling", "a", 1000, BODY("{}"), 0, &o) ==
		    PRICE_OK && o.quota == 2000 && !o.from_model_price);
		p.rules = NULL;
		p.nrules = 0;
	}
	prices_free(&p);
	T_INT(price_map_parse(&p.model_price, "[1]", why, sizeof(why)), -1);
	T_INT(price_map_parse(&p.model_price, "{", why, sizeof(why)), -1);
	prices_free(&p);

	/* rules on more than PRICE_FIELDS_MAX fields: those past never apply */
	{
		struct price_rule	*many;
		char			 body[64];
		size_t			 i;

		if ((many = calloc(PRICE_FIELDS_MAX + 3, sizeof(*many))) == NULL)
			return;
		for (i = 0; i < PRICE_FIELDS_MAX + 2; i++) {
			many[i].id = (long long)i + 1;
			strlcpy_(many[i].service, "kling", sizeof(many[i].service));
			snprintf(many[i].field, sizeof(many[i].field), "f%zu", i);
			strlcpy_(many[i].value, "1", sizeof(many[i].value));
			many[i].mult_e4 = 20000;
		}
		/* the first field again, in another case: no new field */
		many[i] = many[0];
		many[i].id = (long long)i + 1;
		strlcpy_(many[i].field, "F0", sizeof(many[i].field));
		strlcpy_(many[i].value, "2", sizeof(many[i].value));
		p.rules = many;
		p.nrules = PRICE_FIELDS_MAX + 3;
		prices_loaded(&p);
		T_OK(!many[PRICE_FIELDS_MAX - 1].skipped &&
		    many[PRICE_FIELDS_MAX].skipped &&
		    many[PRICE_FIELDS_MAX + 1].skipped &&
		    !many[PRICE_FIELDS_MAX + 2].skipped);
		snprintf(body, sizeof(body), "{\"f%d\":1,\"f%d\":1}",
		    PRICE_FIELDS_MAX - 1, PRICE_FIELDS_MAX);
		T_OK(price_of(&p, "kling", "default", 1000, body, strlen(body), 0,
		    &o) == PRICE_OK && o.quota == 2000);
		T_OK(price_of(&p, "kling", "default", 1000, BODY("{\"F0\":2}"), 0,
		    &o) == PRICE_OK && o.quota == 2000);
		p.rules = NULL;
		p.nrules = 0;
		free(many);
	}
#undef BODY
}

/* a rule on field f (value "1") of service "x" */
static void
rule(struct price_rule *r, long long id, const char *f, long long mult_e4,
    long long surcharge)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	strlcpy_(r->service, "x", sizeof(r->service));
	strlcpy_(r->field, f, sizeof(r->field));
	strlcpy_(r->value, f[0] ? "1" : "", sizeof(r->value));
	r->mult_e4 = mult_e4;
	r->surcharge = surcharge;
}

/*
 * At PRICE_MAX: the base, surcharges summed, multipliers in a row and
 * new-api's float product reach it exactly and not one unit past.
 */
static void
test_price_overflow(void)
{
	struct price_rule	*r;
	struct prices		 p;
	struct price_out	 o;
	char			 why[64], m[32];
	size_t			 i, n = PRICE_MAX / SURCHARGE_MAX;
#define BODY(s)	s, sizeof(s) - 1

	memset(&p, 0, sizeof(p));
	p.quota_per_unit = QUOTA_PER_UNIT;
	if ((r = calloc(n + 1, sizeof(*r))) == NULL) {
		T_OK(r != NULL);
		return;
	}
	/* 1000 surcharges of SURCHARGE_MAX on every request: PRICE_MAX */
	for (i = 0; i < n; i++)
		rule(&r[i], (long long)i + 1, "", MULT_ONE, SURCHARGE_MAX);
	p.rules = r;
	p.nrules = n;
	T_INT(price_of(&p, "x", "default", 0, BODY("{}"), 0, &o), PRICE_OK);
	T_INT(o.quota, PRICE_MAX);
	T_INT(price_of(&p, "x", "default", 1, BODY("{}"), 0, &o),
	    PRICE_TOO_HIGH);
	rule(&r[n], (long long)n + 1, "", MULT_ONE, 1);
	p.nrules = n + 1;
	T_INT(price_of(&p, "x", "default", 0, BODY("{}"), 0, &o),
	    PRICE_TOO_HIGH);
	/* a surcharge is added after the multipliers, not multiplied */
	rule(&r[0], 1, "", MULT_MAX, SURCHARGE_MAX);
	rule(&r[1], 2, "", MULT_MAX, 0);
	p.nrules = 2;
	T_INT(price_of(&p, "x", "default", PRICE_MAX / 1000000 -
	    SURCHARGE_MAX / 1000000, BODY("{}"), 0, &o), PRICE_OK);
	T_INT(o.quota, PRICE_MAX);
	T_INT(price_of(&p, "x", "default", PRICE_MAX / 1000000 -
	    SURCHARGE_MAX / 1000000 + 1, BODY("{}"), 0, &o), PRICE_TOO_HIGH);

	/* x1000 five times from 1: 1e15 is the last that is priced */
	for (i = 0; i < 5; i++) {
		char	 f[2] = { (char)('a' + i), '\0' };

		rule(&r[i], (long long)i + 1, f, MULT_MAX, 0);
	}
	p.nrules = 5;
	T_INT(price_of(&p, "x", "default", 1,
	    BODY("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1}"), 0, &o), PRICE_OK);
	T_INT(o.quota, PRICE_MAX);
	T_INT(price_of(&p, "x", "default", 2,
	    BODY("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1}"), 0, &o),
	    PRICE_TOO_HIGH);
	/* shrinking first, whatever the order of the rules: 1e15 / 1e4^2 x 1e6 */
	rule(&r[5], 6, "f", 1, 0);
	rule(&r[6], 7, "g", 1, 0);
	p.nrules = 7;
	T_INT(price_of(&p, "x", "default", PRICE_MAX,
	    BODY("{\"a\":1,\"b\":1,\"f\":1,\"g\":1}"), 0, &o), PRICE_OK);
	T_INT(o.quota, 10000000000000LL);
	/* a x0 anywhere is 0, even past the bound */
	rule(&r[5], 6, "f", 0, 0);
	T_INT(price_of(&p, "x", "default", PRICE_MAX,
	    BODY("{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1}"), 0, &o),
	    PRICE_OK);
	T_INT(o.quota, 0);
	p.rules = NULL;
	p.nrules = 0;
	free(r);

	/* new-api's product in float64: 2e9 x 500000 is PRICE_MAX exactly */
	T_INT(price_option(&p, "ModelPrice", "{\"m\":2000000000,"
	    "\"n\":2000000000.001}", why, sizeof(why)), 0);
	T_INT(price_of(&p, "x", "default", 0, BODY("{\"model\":\"m\"}"), 0, &o),
	    PRICE_OK);
	T_INT(o.quota, PRICE_MAX);
	T_INT(price_of(&p, "x", "default", 0, BODY("{\"model\":\"n\"}"), 0, &o),
	    PRICE_TOO_HIGH);
	T_INT(price_option(&p, "GroupRatio", "{\"half\":0.5,\"twice\":2}", why,
	    sizeof(why)), 0);
	T_INT(price_of(&p, "x", "twice", 0, BODY("{\"model\":\"m\"}"), 0, &o),
	    PRICE_TOO_HIGH);
	T_INT(price_of(&p, "x", "half", 0, BODY("{\"model\":\"n\"}"), 0, &o),
	    PRICE_OK);
	T_INT(o.quota, PRICE_MAX / 2 + 250);	/* int() of the product */
	T_INT(price_option(&p, "QuotaPerUnit", "1e300", why, sizeof(why)), 0);
	T_INT(price_of(&p, "x", "half", 0, BODY("{\"model\":\"m\"}"), 0, &o),
	    PRICE_TOO_HIGH);
	prices_free(&p);
	/* the flat amount: at the bound, past it, below 0 */
	T_INT(price_of(&p, "x", "default", PRICE_MAX, NULL, 0, 0, &o), PRICE_OK);
	T_INT(o.quota, PRICE_MAX);
	T_INT(price_of(&p, "x", "default", LLONG_MAX, NULL, 0, 0, &o),
	    PRICE_TOO_HIGH);
	T_INT(price_of(&p, "x", "default", LLONG_MIN, NULL, 0, 0, &o), PRICE_OK);
	T_INT(o.quota, 0);
	/* multipliers as text at the ends of their range */
	price_mult_text(MULT_MAX - 1, m, sizeof(m));
	T_STR(m, "999.9999");
	price_mult_text(MULT_ONE + 1, m, sizeof(m));
	T_STR(m, "1.0001");
#undef BODY
}

UNIT_MAIN("price", test_price, test_price_overflow)
