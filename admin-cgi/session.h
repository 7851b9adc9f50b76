#ifndef BLTCY_SESSION_H
#define BLTCY_SESSION_H

/* Sessions, CSRF tokens and login throttling (session.c). */
#include "admin.h"

#define SESSION_COOKIE	"bltcy_session"
#define PRE_COOKIE	"bltcy_pre"
#define COOKIE_PATH(r)	((r)->base[0] ? (r)->base : "/")

#define STAMP_LEN	22	/* characters of the user stamp in a session */

int	 user_stamp(const char *hash, long long role, long long status,
	    long long gen, char out[STAMP_LEN + 1]);
int	 session_make(long long uid, const char *stamp, char *out,
	    size_t outsz);
/*
 * After this session's own user was changed (password, role): a new
 * session cookie bound to the user's new state, and the old one revoked.
 * Nothing when the user may no longer log in. -1 db error.
 */
int	 session_renew(struct req *);
int	 session_start(struct req *, long long uid, const char *stamp);
/* 0 with uid and the payload (the CSRF binding), -1 bad or expired. */
int	 session_parse(const char *cookie, long long now, long long *uid,
	    char *payload, size_t payloadsz);
void	 csrf_for(const char *binding, char out[64]);
int	 session_load(struct req *);
int	 pre_session(struct req *);
int	 csrf_ok(struct req *);
int	 session_revoke(struct req *);
/* 'pair:', an address of at most 48 bytes, '|' and a user name */
#define PAIR_KEY_MAX	(5 + 48 + 1 + LIM_BYTES(LIM_USERNAME) + 1)
int	 throttle_take(struct req *, const char *user, int *addr_locked,
	    long long *retry_s);
void	 throttle_clear(struct req *, const char *user);

#endif
