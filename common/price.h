#ifndef BLTCY_PRICE_H
#define BLTCY_PRICE_H

#include <stddef.h>

/*
 * What a request costs. The base is new-api's: where the ModelPrice
 * option names the request's model (the service's model field, see
 * bltcy_model_fields, else the service), price x QuotaPerUnit x
 * GroupRatio[group], truncated as new-api does; otherwise the channel's
 * PassthroughQuota. Then our rules (bltcy_price_rules): each rule of the
 * service whose field has the value given multiplies the base and adds its
 * surcharge; for one field, rules naming the model win over those for any
 * model. A price above PRICE_MAX is refused, never cut.
 */

#define PRICE_FIELD_MAX	64

/* One row of bltcy_price_rules. The multiplier is in ten-thousandths. */
struct price_rule {
	long long	 id;
	char		 service[32];
	char		 model[64];	/* "" any */
	char		 field[PRICE_FIELD_MAX + 1];	/* "" every request */
	char		 value[PRICE_FIELD_MAX + 1];
	long long	 mult_e4;	/* 10000 = x1 */
	long long	 surcharge;	/* quota units */
	char		 note[256];
	int		 skipped;	/* its field is past PRICE_FIELDS_MAX */
};

#define PRICE_MAX	1000000000000000LL	/* 1e15 quota units */

#define MULT_ONE	10000LL
#define MULT_MAX	(1000 * MULT_ONE)
#define SURCHARGE_MAX	1000000000000LL

/* A name -> number map of an option's JSON object. */
struct price_map {
	char		**name;
	double		 *v;
	size_t		  n;
};

/* One row of bltcy_model_fields: where a service's body names its model. */
struct price_model_field {
	char		 service[32];
	char		 field[PRICE_FIELD_MAX + 1];
};

struct prices {
	struct price_map	 model_price;	/* ModelPrice: USD per call */
	struct price_map	 group_ratio;	/* GroupRatio */
	double			 quota_per_unit;	/* QuotaPerUnit, 500000 */
	struct price_rule	*rules;
	size_t			 nrules;
	struct price_model_field *model_fields;	/* bltcy_model_fields */
	size_t			 nmodel_fields;
};

#define QUOTA_PER_UNIT	500000.0	/* new-api's default */

/*
 * Fill a map from an option's JSON text ("" or NULL: empty): its entries
 * that are finite numbers of at least 0; others are left out, and the
 * first such name goes to why (whysz bytes, may be 0). 0, 1 when an entry
 * was left out, or -1 when the text is no JSON object (the map is empty).
 */
int	 price_map_parse(struct price_map *, const char *json, char *why,
	    size_t whysz);
/*
 * One row of the options table into p: ModelPrice, GroupRatio or
 * QuotaPerUnit, another key ignored. 0; 1 when entries of a map were left
 * out (not finite, or below 0: why names the first); -1 when the value is
 * not what the option holds (a JSON object; QuotaPerUnit a finite number
 * above 0): p keeps what it had for it.
 */
int	 price_option(struct prices *, const char *key, const char *value,
	    char *why, size_t whysz);
void	 prices_free(struct prices *);

/* ---- the relay's (fcgi/price.c) ---- */

#define PRICE_APPLIED_MAX 32

/* How a price came about, for the quote endpoint and the logs. */
struct price_out {
	long long	 quota;
	long long	 base;
	int		 from_model_price;	/* base from ModelPrice */
	double		 group_ratio;
	char		 model[64];
	const struct price_rule *applied[PRICE_APPLIED_MAX];	/* in order */
	size_t		 napplied;
};

enum price_verdict {
	PRICE_OK,
	PRICE_BAD_BODY,		/* the price reads the body, and Go would not */
	PRICE_TOO_HIGH		/* above PRICE_MAX */
};

#define PRICE_FORM	0x1	/* the body is a form (its Content-Type) */

/*
 * Price a request to service with this body for a user of group, where
 * the channel asks flat quota. Where the price depends on the body (the
 * service has a rule on a field or for a model, or ModelPrice has any
 * entry), a body json.Unmarshal would refuse, or a form (flags), is
 * PRICE_BAD_BODY; an empty body names nothing. The model is the service's
 * model field (bltcy_model_fields, else "model"); where "model" or
 * "model_name" names another, the dearer prices it. PRICE_OK with out
 * filled (0 to PRICE_MAX), or why not.
 */
enum price_verdict price_of(const struct prices *, const char *service,
	    const char *group, long long flat, const char *body, size_t len,
	    int flags, struct price_out *);

/*
 * After a load of the rules: marks (skipped) and logs the rules that can
 * never apply, those on fields past the first PRICE_FIELDS_MAX distinct
 * ones of their service; logs model fields that are no dotted names.
 */
#define PRICE_FIELDS_MAX 32	/* distinct fields a service's rules read */
#define PRICE_RULES_MAX	4096	/* rules loaded */
void	 prices_loaded(struct prices *);

/*
 * The rules a price applied, as the quote shows them: "duration=10 x2,
 * mode=pro x3.5 +30"; cut to outsz.
 */
void	 price_applied_text(const struct price_out *, char *out, size_t outsz);

/* ---- the admin's and bltcy-ctl's ---- */

/*
 * A rule as an operator types it (the admin form, bltcy-ctl): service a
 * configured one; model "" or [A-Za-z0-9._:/-]{1,64}; field "" or dotted
 * names of [A-Za-z0-9_] (at most 64 bytes), value then "" too, else 1..64
 * printable characters; multiplier a decimal 0..1000 with at most four
 * places ("" = 1); surcharge an integer 0..SURCHARGE_MAX ("" = 0); a rule
 * must change something. 0 with out filled, or -1 with a message.
 */
int	 price_rule_check(const char *service, const char *model,
	    const char *field, const char *value, const char *multiplier,
	    const char *surcharge, const char *note, struct price_rule *out,
	    char *msg, size_t msgsz);

/* "1.5" for 15000: the multiplier as the form shows it. */
void	 price_mult_text(long long mult_e4, char *out, size_t outsz);

#endif
