/*
 * Reading one CGI request: where it is and who sent it (the
 * environment), its method, query string and urlencoded body, and the
 * values of its fields through the allow-list of form.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "request.h"

/* SCRIPT_NAME when it is a plain path, else "/admin". */
static const char *
base_path(void)
{
	const char	*s = getenv("SCRIPT_NAME");
	size_t		 n;

	if (s == NULL || *s != '/' || (n = strlen(s)) > 64 ||
	    strspn(s, "/abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789-_.") != n || strstr(s, "..") != NULL)
		return "/admin";
	if (n == 1)
		return "";
	return s[n - 1] == '/' ? "/admin" : s;
}

void
request_init(struct req *r)
{
	const char	*pi = getenv("PATH_INFO"), *https = getenv("HTTPS");

	memset(r, 0, sizeof(*r));
	buf_init(&r->hdrs, HDRS_MAX);
	html_init(&r->out, PAGE_MAX);
	r->base = base_path();
	r->path = pi != NULL && *pi != '\0' ? pi : "/";
	r->ip = getenv("REMOTE_ADDR") ? getenv("REMOTE_ADDR") : "-";
	r->https = https != NULL && (strcmp(https, "on") == 0 ||
	    strcmp(https, "1") == 0);
	r->lang = lang_pick(getenv("HTTP_ACCEPT_LANGUAGE"));
	r->cookie = getenv("HTTP_COOKIE");
}

/* A request body: urlencoded only, at most BODY_MAX bytes. */
static int
read_body(struct req *r)
{
	const char	*ct = getenv("CONTENT_TYPE"), *cl = getenv("CONTENT_LENGTH");
	long long	 want = -1;
	char		*b;
	size_t		 got = 0;
	ssize_t		 n;
	int		 rc;

	if (cl != NULL && *cl != '\0' && parse_ll(cl, 0, INT64_MAX, &want) == -1)
		return 400;
	if (want > BODY_MAX)
		return 413;
	if (want == 0)
		return form_parse(&r->f, "", 0) == 0 ? 0 : 500;
	if (ct == NULL || strncmp(ct, "application/x-www-form-urlencoded", 33) != 0)
		return 415;
	if ((b = malloc(BODY_MAX + 1)) == NULL)
		return 500;
	while (got <= BODY_MAX && (want < 0 || got < (size_t)want)) {
		n = read(STDIN_FILENO, b + got, BODY_MAX + 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got > BODY_MAX) {
		free(b);
		return 413;
	}
	rc = form_parse(&r->f, b, got) == 0 ? 0 : 400;
	wipe(b, got);
	free(b);
	return rc;
}

int
request_read(struct req *r)
{
	const char	*m = getenv("REQUEST_METHOD"), *qs = getenv("QUERY_STRING");

	if (m != NULL && strcmp(m, "POST") == 0)
		r->method = M_POST;
	else if (m != NULL && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0))
		r->method = M_GET;
	else
		return -1;
	if (qs != NULL && strlen(qs) > QUERY_MAX)
		r->body_bad = 414;
	else if (form_parse(&r->q, qs ? qs : "", qs ? strlen(qs) : 0) == -1)
		r->body_bad = 400;
	if (r->method == M_POST && r->body_bad == 0)
		r->body_bad = read_body(r);
	return 0;
}

void
request_free(struct req *r)
{
	db_free(r->db);
	db_free(r->store);
	form_free(&r->q);
	form_free(&r->f);
	html_free(&r->out);
	buf_free(&r->hdrs);
	memset(r, 0, sizeof(*r));
}

const char *
fv(const struct req *r, enum field f)
{
	const char	*v = r->method == M_POST ? r->f.v[f] : NULL;

	if (v == NULL)
		v = r->q.v[f];
	return v != NULL && *v != '\0' ? v : NULL;
}

int
fbad(const struct req *r, enum field f)
{
	return r->f.bad[f] ? r->f.bad[f] : r->q.bad[f];
}

int
fint(const struct req *r, enum field f, long long def, long long min,
    long long max, long long *out)
{
	const char	*v = fv(r, f);

	if (fbad(r, f))
		return -1;
	if (v == NULL) {
		*out = def;
		return 0;
	}
	return parse_ll(v, min, max, out);
}

const char *
field_text(const struct req *r, struct buf *errs, enum field f,
    enum label name, int required)
{
	const char	*v = fv(r, f);
	int		 bad = fbad(r, f);

	if (bad == BAD_LONG && fields[f].chars > 0)
		buf_printf(errs, "%s%s (%s %zu %s)\n", T(r, L_TOO_LONG), T(r, name),
		    T(r, L_AT_MOST), fields[f].chars, T(r, L_CHARS));
	else if (bad == BAD_LONG)
		too_long(r, errs, name, fields[f].max);
	else if (bad)
		buf_printf(errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, name));
	else if (v == NULL && required)
		buf_printf(errs, "%s%s\n", T(r, L_REQUIRED), T(r, name));
	return v;
}

void
too_long(const struct req *r, struct buf *errs, enum label name,
    size_t bytes)
{
	buf_printf(errs, "%s%s (%s %zu %s)\n", T(r, L_TOO_LONG), T(r, name),
	    T(r, L_AT_MOST), bytes, T(r, L_BYTES));
}

long long
field_int(const struct req *r, struct buf *errs, enum field f,
    enum label name, long long def, long long min, long long max)
{
	long long	 v;

	if (fint(r, f, def, min, max, &v) == -1) {
		buf_printf(errs, "%s%s (%lld … %lld)\n", T(r, L_FIELD_BAD),
		    T(r, name), min, max);
		return def;
	}
	return v;
}

/* n decimal digits at s, a number from lo to hi, into *v: 0, or -1. */
static int
digits(const char *s, size_t n, int lo, int hi, int *v)
{
	size_t	 i;

	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return *v < lo || *v > hi ? -1 : 0;
}

/* "YYYY-MM-DD" at s (at least 10 bytes): 0, or -1. */
static int
ymd(const char *s, int *y, int *mo, int *d)
{
	return s[4] != '-' || s[7] != '-' || digits(s, 4, 1970, 9999, y) == -1 ||
	    digits(s + 5, 2, 1, 12, mo) == -1 ||
	    digits(s + 8, 2, 1, 31, d) == -1 ? -1 : 0;
}

/* That moment in server time (mktime carries a day past the month's). */
static int
local_time(int y, int mo, int d, int hh, int mm, int ss, long long *out)
{
	struct tm	 tm;
	time_t		 t;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	tm.tm_isdst = -1;
	if ((t = mktime(&tm)) == (time_t)-1)
		return -1;
	*out = (long long)t;
	return 0;
}

/* "YYYY-MM-DDTHH:MM[:SS]" (server time). 1 empty, 0 ok, -1 bad. */
int
parse_datetime(const char *s, long long *out)
{
	int	 y, mo, d, hh, mm, ss = 0;
	size_t	 len;

	if (s == NULL || *s == '\0')
		return 1;
	len = strlen(s);
	if ((len != 16 && len != 19) || ymd(s, &y, &mo, &d) == -1 ||
	    (s[10] != 'T' && s[10] != ' ') || digits(s + 11, 2, 0, 23, &hh) == -1 ||
	    s[13] != ':' || digits(s + 14, 2, 0, 59, &mm) == -1 ||
	    (len == 19 && (s[16] != ':' || digits(s + 17, 2, 0, 59, &ss) == -1)))
		return -1;
	return local_time(y, mo, d, hh, mm, ss, out);
}

int
parse_date(const char *s, int days, long long *out)
{
	int	 y, mo, d;

	if (s == NULL || *s == '\0')
		return 1;
	if (strlen(s) != 10 || ymd(s, &y, &mo, &d) == -1)
		return -1;
	return local_time(y, mo, d + days, 0, 0, 0, out);
}
