/*
 * bltcy-admin.cgi: reads one CGI request, finds its page in the page
 * table, checks the session and (for every POST) the CSRF token, runs the
 * page and sends what it rendered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "dsn.h"
#include "log.h"
#include "reply.h"
#include "request.h"
#include "route.h"
#include "session.h"
#include "sql.h"
#include "store.h"

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

static const char *const methods[M__MAX] = { "GET", "POST" };

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
	int			 known, status;

	if ((pg = find_page(r->path, r->method, &known)) == NULL) {
		status = page_fail(r, known ? 405 : 404, known ? L_METHOD :
		    L_NOT_FOUND, NULL);
		if (known)
			add_header(r, "Allow", r->method == M_GET ? "POST" : "GET");
		return status;
	}
	if (pg->fn == pg_css || pg->fn == pg_favicon)
		return pg->fn(r);	/* static: no session, no database */
	if (session_load(r) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	if (r->method == M_POST) {
		if (r->body_bad)
			return page_fail(r, r->body_bad, L_BAD_REQUEST, NULL);
		if (!csrf_ok(r)) {
			log_warn("admin: CSRF check failed: %s %s from %s",
			    methods[r->method], r->path, r->ip);
			return page_fail(r, 403, L_CSRF_FAILED, NULL);
		}
	}
	if (pg->login && r->me.id == 0) {
		redirect(r, "/login", 0);
		return 303;
	}
	return pg->fn(r);
}

/* The request, its databases, then its page: the status to send. */
static int
run(struct req *r, const struct dsn *dsn)
{
	if (request_read(r) == -1)
		return page_fail(r, 405, L_METHOD, NULL);
	r->db = db_new(dsn, admin_sql, AS__MAX, 0);
	r->store = db_new(dsn, store_sql, STORE__MAX, 0);
	if (r->db == NULL || r->store == NULL)
		return page_fail(r, 500, L_SERVER_ERROR, NULL);
	if (r->method == M_GET && r->body_bad)
		return page_fail(r, r->body_bad, L_BAD_REQUEST, NULL);
	return dispatch(r);
}

int
main(void)
{
	struct req	 r;
	struct dsn	 dsn;
	char		 err[512];
	int		 status;

	memset(&dsn, 0, sizeof(dsn));
	request_init(&r);
	log_open(NULL, "info");
	if (config_load(NULL, err, sizeof(err)) == -1 ||
	    services_init(cfg_s(CFG_RELAY_SERVICES), err, sizeof(err)) == -1 ||
	    dsn_parse(cfg_s(CFG_SQL_DSN), &dsn, err, sizeof(err)) == -1) {
		log_err("admin: config: %s", err);
		status = page_fail(&r, 500, L_SERVER_ERROR,
		    "configuration error (see the server log)");
	} else {
		log_open(NULL, cfg_s(CFG_LOG_LEVEL));
		status = run(&r, &dsn);
	}
	reply_send(&r, status);
	request_free(&r);
	wipe(&dsn, sizeof(dsn));
	return 0;
}
