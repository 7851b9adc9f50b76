#ifndef BLTCY_REQUEST_H
#define BLTCY_REQUEST_H

/*
 * Reading one CGI request (request.c): the environment and the body into
 * a struct req, and its form fields, by the allow-list of form.h.
 */
#include "admin.h"

#define BODY_MAX	(64 * 1024)	/* urlencoded form bodies */
#define QUERY_MAX	8192
#define ERRS_MAX	4096		/* the problems of one saved form */

/* Where the request is, who sent it, the language: nothing fails. */
void	 request_init(struct req *);
/*
 * The method, query string and body. -1 when the method is neither GET,
 * HEAD nor POST; a query or body that cannot be read sets body_bad to
 * the status that refuses it.
 */
int	 request_read(struct req *);
/* Everything the request holds: forms, database handles, output. */
void	 request_free(struct req *);

/* Value of field f: POST body, else query string; NULL when absent. */
const char *fv(const struct req *, enum field);
/* BAD_LONG or BAD_FORMAT when the field was sent and refused, else 0. */
int	 fbad(const struct req *, enum field);
/* Integer field: def when absent; -1 when bad or out of range. */
int	 fint(const struct req *, enum field, long long def, long long min,
	    long long max, long long *out);

/*
 * Read a field for a form being saved; problems are appended to errs as
 * lines naming the field's label ("格式无效：优先级").
 */
const char *field_text(const struct req *, struct buf *errs, enum field,
	    enum label, int required);
long long field_int(const struct req *, struct buf *errs, enum field,
	    enum label, long long def, long long min, long long max);
/* "Too long: <label> (at most <bytes> bytes)" into errs. */
void	 too_long(const struct req *, struct buf *errs, enum label,
	    size_t bytes);

/* "YYYY-MM-DDTHH:MM[:SS]" (server time). 1 empty, 0 ok, -1 bad. */
int	 parse_datetime(const char *s, long long *out);
/*
 * "YYYY-MM-DD": the first second (server time) of that day plus days
 * (1: the end of the day, for a range's end). 1 empty, 0 ok, -1 bad.
 */
int	 parse_date(const char *s, int days, long long *out);

#endif
