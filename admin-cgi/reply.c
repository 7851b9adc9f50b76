/*
 * What a request answers: the frame of every page (head, navigation,
 * flash message), the pieces pages share (forms' hidden fields, row
 * buttons, tables, pagers), the one way to fail a page, and sending it
 * all with the security headers.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "reply.h"
#include "request.h"
#include "route.h"

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

int
page_fail(struct req *r, int status, enum label title, const char *detail)
{
	html_free(&r->out);
	html_init(&r->out, PAGE_MAX);
	page_begin(r, title);
	if (detail != NULL)
		h(&r->out, "<p>%s</p>", detail);
	h(&r->out, "<p><a href=\"%s/\">%s</a></p>", r->base,
	    T(r, r->me.id > 0 ? L_DASHBOARD : L_LOGIN));
	page_end(r);
	return status;
}

void
reply_send(struct req *r, int status)
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
