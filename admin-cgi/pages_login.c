/*
 * Login and logout. A login form carries the CSRF token of a pre-login
 * cookie. Every attempt is counted before its password is checked
 * (session.c): the fifth attempt in 15 minutes for a user name from one
 * address locks that name from that address, the twentieth from one
 * address locks the address, each for 15 minutes (429); a successful
 * login frees its name from its address.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "crypto.h"
#include "log.h"
#include "reply.h"
#include "request.h"
#include "session.h"
#include "sql.h"

/* bcrypt of nothing anyone knows: unknown users cost as much as known. */
static const char dummy_hash[] =
    "$2b$10$A9RetLrpxckkMx5UGw8Y1euHGCCYePzkS2R/m9C2eH72WNj1fmEKq";

static void
login_form(struct req *r, const char *error, const char *username)
{
	page_begin(r, L_LOGIN);
	if (error != NULL)
		msg_box(r, 0, error);
	h(&r->out, "<form method=\"post\" action=\"%s/login\" class=\"card narrow\">",
	    r->base);
	csrf_field(r);
	h(&r->out, "<label>%s<input name=\"username\" autocomplete=\"username\" "
	    "required maxlength=\"191\" value=\"%s\" autofocus></label>"
	    "<label>%s<input type=\"password\" name=\"password\" "
	    "autocomplete=\"current-password\" required maxlength=\"128\"></label>"
	    "<div class=\"actions\"><button type=\"submit\">%s</button></div></form>",
	    T(r, L_USERNAME), username, T(r, L_PASSWORD), T(r, L_LOGIN));
	page_end(r);
}

int
pg_login(struct req *r)
{
	if (r->me.id > 0) {
		redirect(r, "/", 0);
		return 303;
	}
	if (pre_session(r) == -1)
		return page_fail(r, 500, L_SERVER_ERROR, NULL);
	login_form(r, NULL, "");
	return 200;
}

struct auth_row {
	int		 found;
	long long	 id, role, status, gen;
	char		 hash[256];
};

static int
auth_row(void *arg, const struct dbv *c, size_t n)
{
	struct auth_row	*a = arg;

	a->found = 1;
	a->id = col_i(&c[0]);
	strlcpy_(a->hash, col_s(&c[1]), sizeof(a->hash));
	a->role = col_i(&c[2]);
	a->status = col_i(&c[3]);
	a->gen = col_i(&c[4]);
	return 1;
}

int
pg_login_post(struct req *r)
{
	const char	*user = fv(r, F_USERNAME), *pw = fv(r, F_PASSWORD);
	struct auth_row	 a;
	struct dbv	 arg;
	char		 cookie[512], stamp[STAMP_LEN + 1], secs[24];
	int		 ok, allowed, addr_locked;
	long long	 retry;

	if (user == NULL || pw == NULL) {
		login_form(r, T(r, L_LOGIN_FAILED), user ? user : "");
		return 401;
	}
	if ((allowed = throttle_take(r, user, &addr_locked, &retry)) != 1) {
		if (allowed < 0)
			return page_fail(r, 503, L_DB_ERROR, NULL);
		log_warn("admin: login locked for %s%s", r->ip,
		    addr_locked ? " (every user name)" : " (this user name)");
		login_form(r, T(r, addr_locked ? L_LOGIN_ADDR_LOCKED :
		    L_LOGIN_LOCKED), user);
		snprintf(secs, sizeof(secs), "%lld", retry > 0 ? retry : 1);
		add_header(r, "Retry-After", secs);
		return 429;
	}
	memset(&a, 0, sizeof(a));
	arg = DBS(user);
	if (db_run(r->db, AS_USER_AUTH, &arg, 1, auth_row, &a, NULL) != DB_OK)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	ok = password_verify(pw, a.found ? a.hash : dummy_hash);
	if (!ok || !a.found || a.role < 10 || a.status != 1) {
		wipe(a.hash, sizeof(a.hash));
		log_warn("admin: failed login from %s", r->ip);
		login_form(r, T(r, L_LOGIN_FAILED), user);
		return 401;
	}
	throttle_clear(r, user);
	if (user_stamp(a.hash, a.role, a.status, a.gen, stamp) == -1 ||
	    session_start(r, a.id, stamp) == -1) {
		wipe(a.hash, sizeof(a.hash));
		return page_fail(r, 500, L_SERVER_ERROR, NULL);
	}
	wipe(a.hash, sizeof(a.hash));
	snprintf(cookie, sizeof(cookie), "%s=; Path=%s; Max-Age=0; HttpOnly; "
	    "SameSite=Strict%s", PRE_COOKIE, COOKIE_PATH(r), r->https ? "; Secure" : "");
	add_header(r, "Set-Cookie", cookie);
	log_info("admin: user %lld logged in from %s", a.id, r->ip);
	redirect(r, "/", 0);
	return 303;
}

int
pg_logout(struct req *r)
{
	char	 cookie[256];

	if (session_revoke(r) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	snprintf(cookie, sizeof(cookie), "%s=; Path=%s; Max-Age=0; HttpOnly; "
	    "SameSite=Strict%s", SESSION_COOKIE, COOKIE_PATH(r),
	    r->https ? "; Secure" : "");
	add_header(r, "Set-Cookie", cookie);
	redirect(r, "/login", 0);
	return 303;
}
