#ifndef BLTCY_FORM_H
#define BLTCY_FORM_H

/*
 * Untrusted bytes in (form.c): urlencoded query strings and bodies read
 * through an allow-list of fields, and the Cookie header.
 */
#include <stddef.h>

enum field {
	F_CSRF, F_USERNAME, F_PASSWORD, F_ID, F_NAME, F_TYPE, F_BASE_URL,
	F_KEY, F_STATUS, F_PRIORITY, F_WEIGHT, F_GROUP, F_MODELS, F_SETTING,
	F_REMARK, F_AUTO_BAN, F_QUOTA, F_UNLIMITED, F_EXPIRES, F_MODEL_LIMITS,
	F_ALLOW_IPS, F_ROLE, F_DISPLAY, F_USER, F_TOKEN, F_SERVICE, F_CHANNEL,
	F_FROM, F_TO, F_PAGE, F_FLASH, F_MODEL, F_FIELD, F_VALUE, F_MULTIPLIER,
	F_SURCHARGE, F_NOTE, F_STATE, F_DAY_FROM, F_DAY_TO, F_IN_FLIGHT, F_TASKS,
	F_RPM,
	F__MAX
};

enum validator {
	V_LINE,		/* one line of UTF-8 text, no control bytes */
	V_TEXT,		/* several lines: V_LINE plus \r \n \t */
	V_INT,		/* optional '-' and up to 18 digits */
	V_DATETIME,	/* YYYY-MM-DDTHH:MM[:SS] (datetime-local) */
	V_DATE,		/* YYYY-MM-DD (date) */
	V__MAX
};

struct field_def {
	const char	*name;
	enum validator	 v;
	size_t		 max;	/* longest value in bytes */
	size_t		 chars;	/* and in characters of UTF-8 (0: max only) */
};
extern const struct field_def fields[F__MAX];

/*
 * Decoded values of the allowed fields of one urlencoded string. Values
 * live in arena; a field sent twice keeps its first value; fields not in
 * the table are dropped. bad[f] is set when a value was too long
 * (BAD_LONG) or failed its validator (BAD_FORMAT); v[f] is then NULL.
 * Nothing is ever cut to fit.
 */
#define BAD_FORMAT	1
#define BAD_LONG	2
struct form {
	char		*arena;
	size_t		 arenasz;
	const char	*v[F__MAX];
	unsigned char	 bad[F__MAX];
};

/* 0 ok, -1 malformed (bad %-escape) or out of memory. */
int	 form_parse(struct form *, const char *in, size_t len);
void	 form_free(struct form *);
int	 valid(enum validator, const char *s, size_t len);
/* Characters of UTF-8 in n bytes of valid UTF-8. */
size_t	 utf8_chars(const char *s, size_t n);

/* Value of cookie name in a Cookie header into out. 0 found, -1 not. */
int	 cookie_get(const char *header, const char *name, char *out,
	    size_t outsz);

#endif
