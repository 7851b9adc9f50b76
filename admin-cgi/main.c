/*
 * bltcy-admin.cgi: reads one CGI request, finds its page in the page
 * table, checks the session and (for every POST) the CSRF token, runs the
 * page and sends what it rendered with the security headers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "admin.h"
#include "config.h"
#include "dsn.h"
#include "log.h"
#include "route.h"
#include "store.h"

#define QUERY_MAX	8192

static const struct page {
	const char	*path;
	enum method	 method;
	int		(*fn)(struct req *);
	int		 login;		/* needs a logged-in admin */
} pages[] = {
	{ "/", M_GET, pg_dashboard, 1 },
	{ "/login", M_GET, pg_login, 0 },
	{ "/login", M_POST, pg_login_post, 0 },
	{ "/logout", M_POST, pg_logout, 0 },
	{ "/static/admin.css", M_GET, pg_css, 0 },
	{ "/static/favicon.svg", M_GET, pg_favicon, 0 },
	{ "/channels", M_GET, pg_channels, 1 },
	{ "/channels/new", M_GET, pg_channel_form, 1 },
	{ "/channels/new", M_POST, pg_channel_save, 1 },
	{ "/channels/edit", M_GET, pg_channel_form, 1 },
	{ "/channels/edit", M_POST, pg_channel_save, 1 },
	{ "/channels/toggle", M_POST, pg_channel_toggle, 1 },
	{ "/channels/delete", M_POST, pg_channel_delete, 1 },
	{ "/channels/test", M_POST, pg_channel_test, 1 },
	{ "/tokens", M_GET, pg_tokens, 1 },
	{ "/tokens/new", M_GET, pg_token_form, 1 },
	{ "/tokens/new", M_POST, pg_token_save, 1 },
	{ "/tokens/edit", M_GET, pg_token_form, 1 },
	{ "/tokens/edit", M_POST, pg_token_save, 1 },
	{ "/tokens/toggle", M_POST, pg_token_toggle, 1 },
	{ "/tokens/delete", M_POST, pg_token_delete, 1 },
	{ "/users", M_GET, pg_users, 1 },
	{ "/users/new", M_GET, pg_user_form, 1 },
	{ "/users/new", M_POST, pg_user_save, 1 },
	{ "/users/edit", M_GET, pg_user_form, 1 },
	{ "/users/edit", M_POST, pg_user_save, 1 },
	{ "/logs", M_GET, pg_logs, 1 },
	{ "/tasks", M_GET, pg_tasks, 1 },
	{ "/prices", M_GET, pg_prices, 1 },
	{ "/prices/new", M_POST, pg_price_add, 1 },
	{ "/prices/delete", M_POST, pg_price_delete, 1 },
};

/* The navigation bar: page path and label. */
static const struct nav {
	const char	*path;
	enum label	 label;
} navs[] = {
	{ "/", L_DASHBOARD },
	{ "/channels", L_CHANNELS },
	{ "/tokens", L_TOKENS },
	{ "/users", L_USERS },
	{ "/logs", L_LOGS },
	{ "/tasks", L_TASKS },
	{ "/prices", L_PRICES },
};

/* What ?ok=N after a redirect says. */
static const enum label flashes[FL__MAX] = {
	[FL_NONE] = L__MAX,
	[FL_SAVED] = L_SAVED,
	[FL_DELETED] = L_DELETED,
	[FL_STATUS] = L_STATUS_CHANGED,
	[FL_SLASH] = L_SLASH_REMOVED,
};

static const char *const methods[M__MAX] = { "GET", "POST" };

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

void
add_header(struct req *r, const char *name, const char *value)
{
	if (strpbrk(value, "\r\n") != NULL)
		return;
	buf_printf(&r->hdrs, "%s: %s\r\n", name, value);
}

void
redirect(struct req *r, const char *path, int flash)
{
	char	 loc[512];

	if (flash > FL_NONE && flash < FL__MAX)
		snprintf(loc, sizeof(loc), "%s%s?ok=%d", r->base, path, flash);
	else
		snprintf(loc, sizeof(loc), "%s%s", r->base, path);
	add_header(r, "Location", loc);
}

void
list_lines(const char *list, char *out, size_t outsz)
{
	size_t	 i;

	strlcpy_(out, list, outsz);
	for (i = 0; out[i] != '\0'; i++)
		if (out[i] == ',')
			out[i] = '\n';
}

void
fmt_time(long long t, char *out, size_t outsz)
{
	struct tm	 tm;
	time_t		 tt = (time_t)t;

	if (t <= 0 || localtime_r(&tt, &tm) == NULL ||
	    strftime(out, outsz, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		strlcpy_(out, "-", outsz);
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

void
csrf_field(struct req *r)
{
	h(&r->out, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", r->csrf);
}

void
pager(struct req *r, const char *path, const char *query, long long page,
    long long last)
{
	h(&r->out, "<div class=\"pager\">");
	if (page > 1)
		h(&r->out, "<a class=\"btn ghost small\" href=\"%s%s?%s&amp;page=%L\">"
		    "%s</a>", r->base, path, query, page - 1, T(r, L_PREV));
	if (page < last)
		h(&r->out, "<a class=\"btn ghost small\" href=\"%s%s?%s&amp;page=%L\">"
		    "%s</a>", r->base, path, query, page + 1, T(r, L_NEXT));
	h(&r->out, "</div>");
}

void
service_options(struct req *r, const char *selected)
{
	const char	*p = service_list();

	while (*p != '\0') {
		size_t	 n = strcspn(p, ",");
		char	 one[SERVICE_NAME_MAX];

		if (n > 0 && n < sizeof(one)) {
			memcpy(one, p, n);
			one[n] = '\0';
			h(&r->out, selected && strcmp(selected, one) == 0 ?
			    "<option value=\"%s\" selected>%s</option>" :
			    "<option value=\"%s\">%s</option>", one, one);
		}
		p += n;
		p += *p == ',';
	}
}

void
msg_box(struct req *r, int ok, const char *text)
{
	h(&r->out, "<div class=\"msg %s\" role=\"%s\">%s</div>",
	    ok ? "ok" : "err", ok ? "status" : "alert", text);
}

void
post_button(struct req *r, const char *action, long long id, int status,
    enum label label, int danger)
{
	h(&r->out, "<form method=\"post\" action=\"%s%s\">"
	    "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
	    "<input type=\"hidden\" name=\"id\" value=\"%L\">", r->base, action,
	    r->csrf, id);
	if (status > 0)
		h(&r->out, "<input type=\"hidden\" name=\"status\" value=\"%d\">",
		    status);
	h(&r->out, danger ? "<button class=\"danger small\">%s</button></form> " :
	    "<button class=\"ghost small\">%s</button></form> ", T(r, label));
}

int
table_rows(struct req *r, int stmt, const struct dbv *args, size_t nargs,
    db_row_fn fn, int cols, enum label empty)
{
	size_t	 mark = r->out.b.len;

	if (db_run(r->db, (size_t)stmt, args, nargs, fn, r, NULL) != DB_OK)
		return -1;
	if (r->out.b.len == mark)
		h(&r->out, "<tr><td colspan=\"%d\" class=\"muted\">%s</td></tr>",
		    cols, T(r, empty));
	h(&r->out, "</tbody></table>");
	return 0;
}

void
page_begin(struct req *r, enum label title)
{
	size_t		 i;
	long long	 flash;

	h(&r->out, "<!doctype html><html lang=\"%s\"><head><meta charset=\"utf-8\">"
	    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	    "<title>%s · %s</title><link rel=\"stylesheet\" href=\"%s/static/admin.css\">"
	    "<link rel=\"icon\" href=\"%s/static/favicon.svg\" type=\"image/svg+xml\">"
	    "</head><body>", r->lang == LANG_EN ? "en" : "zh-CN", T(r, title),
	    T(r, L_APP), r->base, r->base);
	h(&r->out, "<header class=\"top\"><a class=\"brand\" href=\"%s/\">%s</a>",
	    r->base, T(r, L_APP));
	if (r->me.id > 0) {
		h(&r->out, "<nav>");
		for (i = 0; i < sizeof(navs) / sizeof(navs[0]); i++) {
			size_t	 n = strlen(navs[i].path);
			int	 on = strcmp(navs[i].path, "/") == 0 ?
			    strcmp(r->path, "/") == 0 :
			    strncmp(r->path, navs[i].path, n) == 0;
			h(&r->out, on ? "<a href=\"%s%s\" class=\"on\">%s</a>" :
			    "<a href=\"%s%s\">%s</a>", r->base, navs[i].path,
			    T(r, navs[i].label));
		}
		h(&r->out, "</nav><form class=\"who\" method=\"post\" action=\"%s/logout\">"
		    "<span>%s<b>%s</b></span>", r->base, T(r, L_SIGNED_IN),
		    r->me.username);
		csrf_field(r);
		h(&r->out, "<button type=\"submit\" class=\"link\">%s</button></form>",
		    T(r, L_LOGOUT));
	}
	h(&r->out, "</header><main><h1>%s</h1>", T(r, title));
	if (r->method == M_GET && fint(r, F_FLASH, 0, 0, FL__MAX - 1, &flash) == 0 &&
	    flash > 0)
		msg_box(r, 1, T(r, flashes[flash]));
}

void
page_end(struct req *r)
{
	h(&r->out, "</main></body></html>\n");
}

void
error_page(struct req *r, int status, enum label title, const char *detail)
{
	html_free(&r->out);
	html_init(&r->out, PAGE_MAX);
	page_begin(r, title);
	if (detail != NULL)
		h(&r->out, "<p>%s</p>", detail);
	h(&r->out, "<p><a href=\"%s/\">%s</a></p>", r->base,
	    T(r, r->me.id > 0 ? L_DASHBOARD : L_LOGIN));
	page_end(r);
	r->status = status;
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

static const struct page *
find_page(const char *path, enum method m, int *path_known)
{
	size_t	 i;

	*path_known = 0;
	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		if (strcmp(pages[i].path, path) != 0)
			continue;
		*path_known = 1;
		if (pages[i].method == m)
			return &pages[i];
	}
	return NULL;
}

static int
dispatch(struct req *r)
{
	const struct page	*pg;
	int			 known, rc;

	if ((pg = find_page(r->path, r->method, &known)) == NULL) {
		error_page(r, known ? 405 : 404, known ? L_METHOD : L_NOT_FOUND,
		    NULL);
		if (known)
			add_header(r, "Allow", r->method == M_GET ? "POST" : "GET");
		return r->status;
	}
	if (pg->fn == pg_css || pg->fn == pg_favicon)
		return pg->fn(r);	/* static: no session, no database */
	if (session_load(r) == -1) {
		error_page(r, 503, L_DB_ERROR, NULL);
		return 503;
	}
	if (r->method == M_POST) {
		if (r->body_bad) {
			error_page(r, r->body_bad, L_BAD_REQUEST, NULL);
			return r->body_bad;
		}
		if (!csrf_ok(r)) {
			log_warn("admin: CSRF check failed: %s %s from %s",
			    methods[r->method], r->path, r->ip);
			error_page(r, 403, L_CSRF_FAILED, NULL);
			return 403;
		}
	}
	if (pg->login && r->me.id == 0) {
		redirect(r, "/login", 0);
		return 303;
	}
	rc = pg->fn(r);
	return rc;
}

static void
send(struct req *r, int status)
{
	static const char	 csp[] = "default-src 'none'; style-src 'self'; "
	    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; "
	    "base-uri 'none'";
	const char		*body = r->out.b.p ? r->out.b.p : "";
	size_t			 len = r->out.b.len;

	if (r->out.err) {
		status = 500;
		body = "page too large\n";
		len = strlen(body);
		r->ctype = "text/plain; charset=utf-8";
	}
	printf("Status: %d\r\nContent-Type: %s\r\nX-Frame-Options: DENY\r\n"
	    "X-Content-Type-Options: nosniff\r\nContent-Security-Policy: %s\r\n"
	    "Referrer-Policy: same-origin\r\n", status,
	    r->ctype ? r->ctype : "text/html; charset=utf-8", csp);
	if (r->hdrs.p != NULL)
		fputs(r->hdrs.p, stdout);
	if (r->ctype == NULL)
		fputs("Cache-Control: no-store\r\n", stdout);
	printf("Content-Length: %zu\r\n\r\n", len);
	fwrite(body, 1, len, stdout);
	fflush(stdout);
}

int
main(void)
{
	struct req	 r;
	struct dsn	 dsn;
	char		 err[512];
	const char	*m = getenv("REQUEST_METHOD"), *qs = getenv("QUERY_STRING");
	const char	*pi = getenv("PATH_INFO"), *https = getenv("HTTPS");
	int		 status;

	memset(&r, 0, sizeof(r));
	buf_init(&r.hdrs, HDRS_MAX);
	html_init(&r.out, PAGE_MAX);
	r.base = base_path();
	r.path = pi != NULL && *pi != '\0' ? pi : "/";
	r.ip = getenv("REMOTE_ADDR") ? getenv("REMOTE_ADDR") : "-";
	r.https = https != NULL && (strcmp(https, "on") == 0 ||
	    strcmp(https, "1") == 0);
	r.lang = lang_pick(getenv("HTTP_ACCEPT_LANGUAGE"));
	r.cookie = getenv("HTTP_COOKIE");
	log_open(NULL, "info");

	if (config_load(NULL, err, sizeof(err)) == -1 ||
	    services_init(cfg_s(CFG_RELAY_SERVICES), err, sizeof(err)) == -1 ||
	    dsn_parse(cfg_s(CFG_SQL_DSN), &dsn, err, sizeof(err)) == -1) {
		log_err("admin: config: %s", err);
		error_page(&r, 500, L_SERVER_ERROR, "configuration error (see the server log)");
		send(&r, 500);
		return 0;
	}
	log_open(NULL, cfg_s(CFG_LOG_LEVEL));
	if (m != NULL && strcmp(m, "POST") == 0)
		r.method = M_POST;
	else if (m != NULL && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0))
		r.method = M_GET;
	else {
		error_page(&r, 405, L_METHOD, NULL);
		send(&r, 405);
		return 0;
	}
	if (qs != NULL && strlen(qs) > QUERY_MAX)
		r.body_bad = 414;
	else if (form_parse(&r.q, qs ? qs : "", qs ? strlen(qs) : 0) == -1)
		r.body_bad = 400;
	if (r.method == M_POST && r.body_bad == 0)
		r.body_bad = read_body(&r);
	r.db = db_new(&dsn, admin_sql, AS__MAX, 0);
	r.store = db_new(&dsn, store_sql, STORE__MAX, 0);
	if (r.db == NULL || r.store == NULL) {
		error_page(&r, 500, L_SERVER_ERROR, NULL);
		status = 500;
	} else if (r.method == M_GET && r.body_bad) {
		error_page(&r, r.body_bad, L_BAD_REQUEST, NULL);
		status = r.body_bad;
	} else
		status = dispatch(&r);
	send(&r, status);
	db_free(r.db);
	db_free(r.store);
	form_free(&r.q);
	form_free(&r.f);
	html_free(&r.out);
	buf_free(&r.hdrs);
	wipe(&dsn, sizeof(dsn));
	return 0;
}
