/*
 * Sessions, CSRF tokens and login throttling.
 *
 * Cookie: base64url("uid|expiry|nonce|stamp") "." base64url(HMAC-SHA256(K,
 * first part)), K = derive_key("admin-session"). Nothing is stored for a
 * live session; on every request the user is read again (still there,
 * role >= 10, status 1), the nonce is looked up among logged-out sessions,
 * and the stamp must still be the user's: it is an HMAC of the stored
 * password hash, role, status and session generation (user_stamp), so a
 * password change, a disable or a role change ends every session of the
 * user, also when the change is made by new-api's admin or by plain SQL
 * (a trigger counts the generation up, schema/008_admin_sessions.sql).
 *
 * CSRF token: base64url(HMAC-SHA256(derive_key("admin-csrf"), binding)),
 * binding = the session's payload, or for the login form "pre|<nonce>" of
 * a short cookie set with the form. Compared in constant time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "config.h"
#include "crypto.h"
#include "fieldlimits.h"
#include "log.h"
#include "reply.h"
#include "request.h"
#include "session.h"
#include "sql.h"
#include "store.h"

#define PAYLOAD_MAX	128
#define NONCE_LEN	24

static int
sign(const char *purpose, const char *msg, char out[48])
{
	unsigned char	 key[32], mac[32];

	if (derive_key(purpose, key) == -1)
		return -1;
	hmac_sha256(key, sizeof(key), msg, strlen(msg), mac);
	wipe(key, sizeof(key));
	return b64url_encode(mac, sizeof(mac), out, 48) < 0 ? -1 : 0;
}

/*
 * What binds a session to the state of its user: the first STAMP_LEN
 * characters of base64url(HMAC(derive_key("admin-stamp"),
 * "<password hash>|<role>|<status>|<generation>")). -1 without a secret.
 */
int
user_stamp(const char *hash, long long role, long long status,
    long long gen, char out[STAMP_LEN + 1])
{
	char	 msg[320], mac[48];
	int	 n;

	n = snprintf(msg, sizeof(msg), "%s|%lld|%lld|%lld", hash, role, status,
	    gen);
	if (n < 0 || (size_t)n >= sizeof(msg) || sign("admin-stamp", msg,
	    mac) == -1) {
		wipe(msg, sizeof(msg));
		return -1;
	}
	wipe(msg, sizeof(msg));
	memcpy(out, mac, STAMP_LEN);
	out[STAMP_LEN] = '\0';
	return 0;
}

int
session_make(long long uid, const char *stamp, char *out, size_t outsz)
{
	char	 nonce[NONCE_LEN + 1], raw[PAYLOAD_MAX], enc[PAYLOAD_MAX * 2];
	char	 mac[48];
	int	 n;

	if (random_alnum(nonce, NONCE_LEN) == -1)
		return -1;
	n = snprintf(raw, sizeof(raw), "%lld|%lld|%s|%s", uid,
	    (long long)now_s() + cfg_i(CFG_ADMIN_SESSION_TTL), nonce, stamp);
	if (n < 0 || (size_t)n >= sizeof(raw) ||
	    b64url_encode((unsigned char *)raw, (size_t)n, enc, sizeof(enc)) < 0 ||
	    sign("admin-session", enc, mac) == -1)
		return -1;
	n = snprintf(out, outsz, "%s.%s", enc, mac);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

int
session_parse(const char *cookie, long long now, long long *uid,
    char *payload, size_t payloadsz)
{
	char		 enc[PAYLOAD_MAX * 2], mac[48], raw[PAYLOAD_MAX];
	const char	*dot = strchr(cookie, '.'), *p;
	long long	 id, exp;
	size_t		 el;
	int		 n;

	if (dot == NULL || (el = (size_t)(dot - cookie)) == 0 ||
	    el >= sizeof(enc) || strlen(dot + 1) != 43)
		return -1;
	memcpy(enc, cookie, el);
	enc[el] = '\0';
	if (sign("admin-session", enc, mac) == -1 || !ct_memeq(mac, dot + 1, 43))
		return -1;
	if ((n = b64url_decode(enc, el, (unsigned char *)raw,
	    sizeof(raw) - 1)) < 0)
		return -1;
	raw[n] = '\0';
	/* uid|expiry|nonce|stamp */
	if ((p = strchr(raw, '|')) == NULL)
		return -1;
	raw[p - raw] = '\0';
	if (parse_ll(raw, 1, INT64_MAX, &id) == -1)
		return -1;
	dot = strchr(p + 1, '|');
	if (dot == NULL)
		return -1;
	raw[dot - raw] = '\0';
	if (parse_ll(p + 1, 0, INT64_MAX, &exp) == -1 || exp <= now ||
	    strlen(dot + 1) != NONCE_LEN + 1 + STAMP_LEN ||
	    dot[1 + NONCE_LEN] != '|')
		return -1;
	if (strlen(enc) >= payloadsz)
		return -1;
	strlcpy_(payload, enc, payloadsz);
	*uid = id;
	return 0;
}

/* The nonce, stamp and expiry of a payload that session_parse accepted. */
static int
payload_fields(const char *enc, char nonce[NONCE_LEN + 1],
    char stamp[STAMP_LEN + 1], long long *exp)
{
	char		 raw[PAYLOAD_MAX];
	const char	*a, *b;
	int		 n;

	if ((n = b64url_decode(enc, strlen(enc), (unsigned char *)raw,
	    sizeof(raw) - 1)) < 0)
		return -1;
	raw[n] = '\0';
	if ((a = strchr(raw, '|')) == NULL || (b = strchr(a + 1, '|')) == NULL ||
	    strlen(b + 1) != NONCE_LEN + 1 + STAMP_LEN ||
	    b[1 + NONCE_LEN] != '|')
		return -1;
	memcpy(nonce, b + 1, NONCE_LEN);
	nonce[NONCE_LEN] = '\0';
	memcpy(stamp, b + 2 + NONCE_LEN, STAMP_LEN);
	stamp[STAMP_LEN] = '\0';
	raw[b - raw] = '\0';
	return parse_ll(a + 1, 0, INT64_MAX, exp);
}

void
csrf_for(const char *binding, char out[64])
{
	char	 mac[48];

	out[0] = '\0';
	if (sign("admin-csrf", binding, mac) == 0)
		strlcpy_(out, mac, 64);
}

struct sess_row {
	int		 found;
	long long	 id, role, status, revoked;
	char		 username[LIM_BYTES(LIM_USERNAME)];
	char		 stamp[STAMP_LEN + 1];
	int		 stamp_ok;
};

static int
sess_row(void *arg, const struct dbv *c, size_t n)
{
	struct sess_row	*r = arg;

	r->found = 1;
	r->id = col_i(&c[0]);
	strlcpy_(r->username, col_s(&c[1]), sizeof(r->username));
	r->role = col_i(&c[2]);
	r->status = col_i(&c[3]);
	r->revoked = col_i(&c[4]);
	r->stamp_ok = user_stamp(col_s(&c[5]), r->role, r->status,
	    col_i(&c[6]), r->stamp) == 0;
	return 1;
}

/*
 * Who is logged in, and the CSRF token this request's forms carry. A
 * request without a valid session gets the login form's token when it
 * has the pre-login cookie. -1 when the database cannot be asked.
 */
int
session_load(struct req *r)
{
	char		 c[320], payload[PAYLOAD_MAX * 2], nonce[NONCE_LEN + 1];
	char		 stamp[STAMP_LEN + 1], bind[64];
	long long	 uid, exp;
	struct sess_row	 row;
	struct dbv	 a[2];

	memset(&r->me, 0, sizeof(r->me));
	r->csrf[0] = '\0';
	if (r->cookie != NULL &&
	    cookie_get(r->cookie, SESSION_COOKIE, c, sizeof(c)) == 0 &&
	    session_parse(c, now_s(), &uid, payload, sizeof(payload)) == 0 &&
	    payload_fields(payload, nonce, stamp, &exp) == 0) {
		memset(&row, 0, sizeof(row));
		a[0] = DBS(nonce);
		a[1] = DBI(uid);
		if (db_run(r->db, AS_USER_SESSION, a, 2, sess_row, &row,
		    NULL) != DB_OK)
			return -1;
		if (row.found && row.role >= 10 && row.status == 1 &&
		    row.revoked == 0 && row.stamp_ok &&
		    ct_memeq(row.stamp, stamp, STAMP_LEN)) {
			r->me.id = row.id;
			r->me.role = row.role;
			strlcpy_(r->me.username, row.username,
			    sizeof(r->me.username));
			csrf_for(payload, r->csrf);
			return 0;
		}
	}
	if (r->cookie != NULL &&
	    cookie_get(r->cookie, PRE_COOKIE, c, sizeof(c)) == 0 &&
	    strlen(c) == NONCE_LEN && strspn(c, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") == NONCE_LEN) {
		snprintf(bind, sizeof(bind), "pre|%.*s", NONCE_LEN, c);
		csrf_for(bind, r->csrf);
	}
	return 0;
}

/* Give a login form its own pre-login cookie and token. */
int
pre_session(struct req *r)
{
	char	 nonce[NONCE_LEN + 1], bind[64], cookie[160];

	if (r->csrf[0] != '\0')
		return 0;
	if (random_alnum(nonce, NONCE_LEN) == -1)
		return -1;
	snprintf(bind, sizeof(bind), "pre|%s", nonce);
	csrf_for(bind, r->csrf);
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=%s; HttpOnly; "
	    "SameSite=Strict%s", PRE_COOKIE, nonce, COOKIE_PATH(r),
	    r->https ? "; Secure" : "");
	add_header(r, "Set-Cookie", cookie);
	return 0;
}

int
csrf_ok(struct req *r)
{
	const char	*t = fv(r, F_CSRF);
	size_t		 n = strlen(r->csrf);

	return n > 0 && t != NULL && strlen(t) == n && ct_memeq(t, r->csrf, n);
}

/* Revoke the session of this request's cookie (log out). */
int
session_revoke(struct req *r)
{
	char		 c[320], payload[PAYLOAD_MAX * 2], nonce[NONCE_LEN + 1];
	char		 stamp[STAMP_LEN + 1];
	long long	 uid, exp;

	if (r->cookie == NULL ||
	    cookie_get(r->cookie, SESSION_COOKIE, c, sizeof(c)) == -1 ||
	    session_parse(c, now_s(), &uid, payload, sizeof(payload)) == -1 ||
	    payload_fields(payload, nonce, stamp, &exp) == -1)
		return 0;
	return session_nonce_revoke(r->store, nonce, exp, now_s());
}

/* Set the session cookie of a new session of uid. -1 on failure. */
int
session_start(struct req *r, long long uid, const char *stamp)
{
	char	 sess[256], cookie[512];
	int	 n;

	if (session_make(uid, stamp, sess, sizeof(sess)) == -1)
		return -1;
	n = snprintf(cookie, sizeof(cookie), "%s=%s; Path=%s; Max-Age=%lld; "
	    "HttpOnly; SameSite=Strict%s", SESSION_COOKIE, sess, COOKIE_PATH(r),
	    cfg_i(CFG_ADMIN_SESSION_TTL), r->https ? "; Secure" : "");
	if (n < 0 || (size_t)n >= sizeof(cookie))
		return -1;
	add_header(r, "Set-Cookie", cookie);
	return 0;
}

int
session_renew(struct req *r)
{
	char		 nonce[NONCE_LEN + 1];
	struct sess_row	 row;
	struct dbv	 a[2];

	/* no nonce is ever revoked under this name: it only reads the user */
	memset(nonce, '-', NONCE_LEN);
	nonce[NONCE_LEN] = '\0';
	memset(&row, 0, sizeof(row));
	a[0] = DBS(nonce);
	a[1] = DBI(r->me.id);
	if (db_run(r->db, AS_USER_SESSION, a, 2, sess_row, &row, NULL) != DB_OK)
		return -1;
	if (session_revoke(r) == -1)
		return -1;
	if (!row.found || row.role < 10 || row.status != 1 || !row.stamp_ok)
		return 0;
	return session_start(r, row.id, row.stamp);
}

/* ---- login throttling ---- */

/*
 * Two counts per login attempt, each kept for THROTTLE_WINDOW seconds
 * from its first attempt: the user name from this address (PAIR_MAX
 * attempts, then that name is locked from that address for
 * THROTTLE_LOCK seconds) and the address across all names (ADDR_MAX,
 * then the address is locked). A name is never locked from an address
 * that has not failed, so nobody can keep an admin out by failing that
 * admin's name from elsewhere; an address that guesses many names is
 * stopped all the same. Attempts are counted before the password is
 * checked; a correct password takes its attempt back.
 */
#define PAIR_MAX	5
#define ADDR_MAX	20
#define THROTTLE_WINDOW	900
#define THROTTLE_LOCK	900

/* The keys of the two counts: 'ip:<address>', 'pair:<address>|<name>'. */
static void
throttle_keys(const struct req *r, const char *user, char ik[64],
    char pk[PAIR_KEY_MAX])
{
	snprintf(ik, 64, "ip:%.48s", r->ip);
	snprintf(pk, PAIR_KEY_MAX, "pair:%.48s|%s", r->ip, user);
}

struct th_row {
	const char	*ik;
	int		 seen[2];	/* [0] the address, [1] the pair */
	long long	 failures[2], first_at[2], locked_until[2];
};

static int
th_row(void *arg, const struct dbv *c, size_t n)
{
	struct th_row	*t = arg;
	int		 i = strcmp(col_s(&c[0]), t->ik) == 0 ? 0 : 1;

	t->seen[i] = 1;
	t->failures[i] = col_i(&c[1]);
	t->first_at[i] = col_i(&c[2]);
	t->locked_until[i] = col_i(&c[3]);
	return 0;
}

/*
 * Count this login attempt, before any password is checked: both rows
 * are locked while they are read and counted, so attempts sent in
 * parallel are counted like attempts sent one by one, and one refused by
 * either count is counted by neither. Returns 1: this attempt may check
 * a password; 0: locked, *addr_locked says whether for the whole address
 * and *retry_s for how long; -1: database error.
 */
int
throttle_take(struct req *r, const char *user, int *addr_locked,
    long long *retry_s)
{
	static const long long	 max[2] = { ADDR_MAX, PAIR_MAX };
	char			 ik[64], pk[PAIR_KEY_MAX];
	long long		 now = now_s(), wait;
	struct th_row		 t;
	int			 i, ok = 1;

	*addr_locked = 0;
	*retry_s = 0;
	throttle_keys(r, user, ik, pk);
	if (login_throttle_seed(r->store, ik, pk, now) == -1)
		return -1;
	memset(&t, 0, sizeof(t));
	t.ik = ik;
	if (db_begin(r->store) != DB_OK)
		return -1;
	if (login_throttle_read(r->store, ik, pk, th_row, &t) == -1)
		goto fail;
	for (i = 0; i < 2; i++) {
		/* purged since it was seeded (its window was over): allowed */
		if (!t.seen[i])
			continue;
		if (t.locked_until[i] > now)
			wait = t.locked_until[i] - now;
		else if (t.first_at[i] >= now - THROTTLE_WINDOW &&
		    t.failures[i] >= max[i])
			wait = t.first_at[i] + THROTTLE_WINDOW - now + 1;
		else
			continue;
		ok = 0;
		if (i == 0)
			*addr_locked = 1;
		if (wait > *retry_s)
			*retry_s = wait;
	}
	for (i = 0; ok && i < 2; i++)
		if (login_throttle_count(r->store, i == 0 ? ik : pk,
		    now - THROTTLE_WINDOW, now, max[i],
		    now + THROTTLE_LOCK) == -1)
			goto fail;
	if (db_commit(r->store) != DB_OK)
		return -1;
	/* rows whose window and lock are over say nothing any more */
	login_throttle_purge(r->store, now - THROTTLE_WINDOW, now);
	return ok;
fail:
	db_rollback(r->store);
	return -1;
}

/*
 * The password was right: the name is free again from this address, and
 * the address's count takes this attempt back (other names' failures
 * from it still count).
 */
void
throttle_clear(struct req *r, const char *user)
{
	char		 ik[64], pk[PAIR_KEY_MAX];

	throttle_keys(r, user, ik, pk);
	login_throttle_give_back(r->store, ik, ADDR_MAX);
	login_throttle_clear(r->store, pk, ik);
}
