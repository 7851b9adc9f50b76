#ifndef BLTCY_STORE_H
#define BLTCY_STORE_H

#include <stddef.h>

#include "db.h"

/*
 * Writes operators make: channels (with their abilities, in one
 * transaction), users, tokens; and the checks the channel form applies at
 * entry (the seed's troubleshooting pitfalls). Used by bltcy-ctl and the
 * admin pages. Open the handle with db_new(dsn, store_sql, STORE__MAX, 0).
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
	SS_RECOVER,
	SS_CHANNEL_STATUS,
	SS_ABILITIES_ENABLE,
	STORE__MAX
};
extern const char *const store_sql[STORE__MAX];

#define MSG_SZ	512

struct channel_form {
	char		 name[192];
	char		 base_url[192];
	const char	*key;		/* NULL on edit: keep the stored key */
	char		 models[1024];	/* normalised: "kling,runway" */
	char		 group[256];	/* comma-separated groups */
	long long	 status;	/* 1 enabled, 2 disabled */
	long long	 priority;
	long long	 weight;
	long long	 auto_ban;
	char		 setting[4096];
	char		 tag[192];
	char		 remark[256];
};

/*
 * Base URL: http(s), a host, an optional port; no path, query, fragment
 * or user info. One trailing '/' is removed and *notice set. Returns 0
 * with the clean URL in out, or -1 with the seed's examples in msg.
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

/* Setting JSON: empty, or an object with an integer PassthroughQuota. */
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

#endif
