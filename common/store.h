#ifndef BLTCY_STORE_H
#define BLTCY_STORE_H

#include <stddef.h>

#include "db.h"
#include "fieldlimits.h"
#include "price.h"

#define PASSWORD_MAX	72	/* bytes bcrypt reads */

/*
 * Every write of bltcy-ctl and the admin pages: channels (with their
 * abilities, in one transaction), users, tokens, price rules, and the
 * admin's session revocations and login counts; and the checks the
 * channel form applies at entry (the seed's troubleshooting pitfalls).
 * Open the handle with db_new(dsn, store_sql, STORE__MAX, 0).
 */
enum store_stmt {
	SS_CHANNEL_INSERT,
	SS_CHANNEL_UPDATE,
	SS_CHANNEL_KEEPKEY_UPDATE,
	SS_CHANNEL_DELETE,
	SS_ABILITIES_DELETE,
	SS_ABILITY_INSERT,
	SS_USER_INSERT,
	SS_USER_BY_NAME,
	SS_TOKEN_INSERT,
	SS_TOKEN_BY_KEY,
	SS_CHANNEL_STATUS,
	SS_ABILITIES_ENABLE,
	SS_PRICE_RULE_INSERT,
	SS_PRICE_RULE_DELETE,
	SS_PRICE_RULE_LIST,
	SS_PRICE_RULE_ROOM,
	SS_TOKEN_UPDATE,
	SS_TOKEN_STATUS,
	SS_TOKEN_DELETE,
	SS_USER_UPDATE,
	SS_USER_PASSWORD,
	SS_CHANNEL_TESTED,
	SS_SESSION_REVOKE,
	SS_SESSION_REVOKED_PURGE,
	SS_THROTTLE_SEED,
	SS_THROTTLE_READ,
	SS_THROTTLE_COUNT,
	SS_THROTTLE_CLEAR,
	SS_THROTTLE_GIVE_BACK,
	SS_THROTTLE_PURGE,
	SS_LIMITS_SET,
	SS_LIMITS_PRUNE,
	SS_LIMITS_DELETE,
	SS_LIMITS_LIST,
	SS_TOKEN_WHO,
	STORE__MAX
};
extern const char *const store_sql[STORE__MAX];

#define MSG_SZ	512

struct channel_form {
	char		 name[LIM_BYTES(LIM_CHANNEL_NAME)];
	char		 base_url[LIM_BASE_URL + 1];
	const char	*key;		/* NULL on edit: keep the stored key */
	char		 models[1024];	/* normalised: "kling,runway" */
	char		 group[LIM_CHANNEL_GROUP + 1];	/* comma-separated */
	long long	 status;	/* 1 enabled, 2 disabled */
	long long	 priority;
	long long	 weight;
	long long	 auto_ban;
	char		 setting[4096];
	char		 tag[LIM_BYTES(LIM_CHANNEL_TAG)];
	char		 remark[LIM_BYTES(LIM_CHANNEL_REMARK)];
};

/*
 * Length of s against a column's limit: chars > 0 counts characters of
 * UTF-8, else bytes. 0 fits, -1 with a message naming what.
 */
int	 check_len(const char *what, const char *s, size_t limit, int chars,
	    char *msg, size_t msgsz);

/*
 * One line of text for a text column: valid UTF-8 without control bytes,
 * at most limit characters. 0 ok, -1 with a message naming what.
 */
int	 check_line(const char *what, const char *s, size_t limit, char *msg,
	    size_t msgsz);

/*
 * Allowed IPs: addresses or CIDRs, one per line (commas too). out gets
 * them newline-separated, at most LIM_ALLOW_IPS bytes. 0 ok; -1 with the
 * bad entry in bad; -2 when the list is longer than LIM_ALLOW_IPS.
 */
int	 check_ips(const char *in, char out[LIM_ALLOW_IPS + 1], char *bad,
	    size_t badsz);

/* Where a URL's bytes go: scheme, host (lower case, no brackets), port. */
struct endpoint {
	char	 scheme[16];
	char	 host[256];
	int	 port;		/* the scheme's default when none is given */
};

/* Endpoint of a URL that check_base_url or check_proxy accepted. 0 or -1. */
int	 url_endpoint(const char *url, struct endpoint *);

/*
 * Refuse a host that is, or resolves to, a link-local, metadata or
 * unspecified address (netaddr.h ADDR_FORBIDDEN). A name that does not
 * resolve passes: the connect-time check holds then. 0 ok, -1 with msg.
 */
int	 check_upstream_host(const char *what, const char *host, char *msg,
	    size_t msgsz);

/*
 * A channel's proxy: http, https, socks5 or socks5h, optional user info,
 * a host, an optional port; no path; the host as for a Base URL.
 */
int	 check_proxy(const char *in, char *msg, size_t msgsz);

/*
 * Base URL: http(s), a host, an optional port; no path, query, fragment
 * or user info; not a forbidden address (check_upstream_host). One
 * trailing '/' is removed and *notice set. Returns 0 with the clean URL
 * in out, or -1 with the seed's examples in msg.
 */
int	 check_base_url(const char *in, char *out, size_t outsz, int *notice,
	    char *msg, size_t msgsz);

/*
 * Models, one per line (or comma-separated): lower-cased, blanks dropped,
 * each a configured service; "runwayml" and versioned names refused with
 * the base name suggested. out gets "a,b". 0 ok, -1 with msg.
 */
int	 check_models(const char *in, char *out, size_t outsz, char *msg,
	    size_t msgsz);

/*
 * Setting JSON: empty, or an object with an integer PassthroughQuota; a
 * proxy in it as check_proxy.
 */
int	 check_setting(const char *in, char *msg, size_t msgsz);

/* Groups: comma-separated names of [A-Za-z0-9_-]; empty means "default". */
int	 check_groups(const char *in, char *out, size_t outsz, char *msg,
	    size_t msgsz);

/*
 * Insert (id 0) or update a channel and replace its abilities, in one
 * transaction; the key is sealed (enc:v1) before it is stored. Returns
 * the channel id, or -1 with msg.
 */
long long channel_save(struct db *, const struct channel_form *, long long id,
	    char *msg, size_t msgsz);
int	 channel_delete(struct db *, long long id, char *msg, size_t msgsz);

/* Enable (1) or disable (2) a channel and its abilities, in one transaction. */
int	 channel_set_status(struct db *, long long id, long long status,
	    char *msg, size_t msgsz);

/* New user with a bcrypt password; returns id or -1. */
long long user_create(struct db *, const char *username, const char *password,
	    long long role, long long quota, const char *group, char *msg,
	    size_t msgsz);
long long user_id_by_name(struct db *, const char *username);

/*
 * New token for user_id; key_out gets the 48-character key (stored
 * without "sk-"). quota < 0 means unlimited. Returns id or -1.
 */
long long token_create(struct db *, long long user_id, const char *name,
	    long long quota, long long expires, const char *model_limits,
	    const char *allow_ips, char key_out[49], char *msg, size_t msgsz);

/*
 * What the admin pages change of a token or user that exists (not
 * deleted): 0, or -1 on a database error. The password is stored as
 * given: a hash of password_hash. A channel's test time and response
 * time: the result is of no consequence to the page.
 */
int	 token_update(struct db *, long long id, const char *name,
	    long long quota, long long unlimited, long long expires,
	    const char *model_limits, const char *allow_ips);
int	 token_set_status(struct db *, long long id, long long status);
int	 token_delete(struct db *, long long id);
int	 user_update(struct db *, long long id, const char *display_name,
	    long long role, long long quota, const char *group,
	    long long status);
int	 user_set_password(struct db *, long long id, const char *hash);
void	 channel_tested(struct db *, long long id, long long at,
	    long long ms);

/*
 * A logged-out admin session: its nonce is refused until it expires;
 * nonces already expired are dropped. 0, or -1 on a database error.
 */
int	 session_nonce_revoke(struct db *, const char *nonce,
	    long long expires, long long now);

/*
 * The admin's login counts (admin-cgi/session.c holds the rules): a row
 * per key, each with failures, first_at and locked_until. Seed both keys'
 * rows; read them locked, in key order (inside a transaction), through
 * fn with columns k, failures, first_at, locked_until; count one attempt
 * of a key (1 again when its first is older than window_start, locked
 * until lock_until from max failures on). Give one attempt of a key back
 * (its lock too when under max); clear the pair's key and the address's
 * once it counts nothing; purge rows whose window and lock are over.
 * 0, or -1 on a database error.
 */
int	 login_throttle_seed(struct db *, const char *addr_key,
	    const char *pair_key, long long now);
int	 login_throttle_read(struct db *, const char *addr_key,
	    const char *pair_key, db_row_fn fn, void *arg);
int	 login_throttle_count(struct db *, const char *key,
	    long long window_start, long long now, long long max,
	    long long lock_until);
int	 login_throttle_give_back(struct db *, const char *key, long long max);
int	 login_throttle_clear(struct db *, const char *pair_key,
	    const char *addr_key);
int	 login_throttle_purge(struct db *, long long window_start,
	    long long now);

/*
 * Price rules (pricerule.c), checked first with price_rule_check. Insert
 * returns the new id, or -1 with msg (a rule with the same service,
 * model, field and value: a message saying so). Delete returns 0, 1 when
 * there is no such rule, -1 on a database error, with msg. List calls fn
 * for each rule by id (non-zero stops); 0, or -1 on a database error.
 */
long long price_rule_insert(struct db *, const struct price_rule *, char *msg,
	    size_t msgsz);
int	 price_rule_delete(struct db *, long long id, char *msg, size_t msgsz);
typedef int (*price_rule_fn)(void *arg, const struct price_rule *);
int	 price_rule_list(struct db *, price_rule_fn, void *arg);

/*
 * Limits of a token (LIMIT_TOKEN, id tokens.id) or a user (LIMIT_USER,
 * id users.id) in bltcy_limits: requests in flight, open jobs, requests a
 * minute; 0 is none, at most LIMIT_MAX (the columns are int).
 *
 * limits_set writes the three, a value below 0 keeping what the row has
 * (none for a new row); a row left with no limit is removed, so a row
 * always limits something. limits_delete: 0, 1 when there was no row.
 * limits_list calls fn for every row (scope and id 0: all of them) with
 * columns scope, id, in_flight, tasks, rpm, name (the token's or the
 * user's), the token's user's name ('' for a user), and 1 when the token
 * or user is deleted or gone. All: -1 on a database error.
 */
#define LIMIT_TOKEN	't'
#define LIMIT_USER	'u'
#define LIMIT_MAX	2147483647LL

int	 limits_set(struct db *, int scope, long long id, long long in_flight,
	    long long tasks, long long rpm);
int	 limits_delete(struct db *, int scope, long long id);
int	 limits_list(struct db *, int scope, long long id, db_row_fn fn,
	    void *arg);

/*
 * A token named by its key (with or without "sk-"), not deleted: its id
 * (0 when there is none, -1 on a database error), its name and its
 * user's name.
 */
long long token_who(struct db *, const char *key, char *name, size_t namesz,
	    char *user, size_t usersz);

#endif
