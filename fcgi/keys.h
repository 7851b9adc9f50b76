#ifndef BLTCY_KEYS_H
#define BLTCY_KEYS_H

/*
 * Keys the upstream refuses leave rotation, and come back (keys.c):
 * new-api's AutomaticDisable* and AutomaticEnableChannelEnabled, per key
 * of a channel. The state is the database's (schema/019_keys.sql), where
 * new-api keeps it; every worker of every host reads it with the
 * channels.
 */

#include <stddef.h>

#include "channels.h"
#include "options.h"

struct db;
struct dsn;
struct up_result;

#define KEY_WHY_MAX	256	/* bytes of a reason, the NUL included */

/*
 * Whether an upstream's error answer (its status, 400 to 599, and the
 * first len bytes of its body) disables the key it went with, by
 * new-api's rules: the disabling is on, the status is one of
 * AutomaticDisableStatusCodes or the body holds one of
 * AutomaticDisableKeywords (ASCII letters without case; new-api's list
 * when the option is not set). A 429 never does:
 * an account at its limit is full, not refused. 1 with why (for people:
 * the status, and the keyword or the start of the body), else 0.
 */
int	 key_ban_reason(const struct ban_options *, int status,
	    const char *body, size_t len, char *why, size_t whysz);

/* The first keyword the body holds, or NULL. */
const char *key_keyword(const struct ban_options *, const char *body,
	    size_t len, char *kw, size_t kwsz);

/*
 * After a transfer with key ki of ch: an upstream answer that disables
 * the key (key_ban_reason; never the relay's own answers, which are not
 * transfers) disables it in the database, unless the channel's auto_ban
 * is off or the key already is. 1 when it did: the channels are to be
 * read again. db is a handle made with relay_sql (ST_AUTO_BAN).
 */
int	 keys_answered(struct db *, const struct relay_options *,
	    const struct channel *, size_t ki, const struct up_result *,
	    const char *request_id);

/*
 * The probe of disabled keys: once in KEY_PROBE_INTERVAL seconds of all
 * hosts together (the one that claims bltcy_meta 'key_probe'), while
 * AutomaticEnableChannelEnabled is on, each key disabled automatically
 * (of a channel not disabled by hand) gets its service's probe
 * (bltcy_task_kinds' probe_*), and one that passes is enabled again.
 * Blocking: it runs in the task poller, between its passes.
 */
struct key_probe;
struct key_probe *keys_probe_new(const struct dsn *);
void	 keys_probe_free(struct key_probe *);
void	 keys_probe(struct key_probe *, const struct chcache *, long long now);

#endif
