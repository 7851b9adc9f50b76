#ifndef BLTCY_CONFIG_H
#define BLTCY_CONFIG_H

#include <stddef.h>

/*
 * Every configuration key, declared once in config.c's table with its type,
 * default and range. Both programs read the same file; environment
 * variables override it.
 */
enum cfg {
	CFG_SQL_DSN,
	CFG_SESSION_SECRET,
	CFG_CRYPTO_SECRET,
	CFG_PORT,
	CFG_REDIS_CONN_STRING,
	CFG_RELAY_WORKERS,
	CFG_RELAY_THREADS,
	CFG_RELAY_MAX_BODY,
	CFG_RELAY_TIMEOUT,
	CFG_RELAY_CONNECT_TIMEOUT,
	CFG_RELAY_HEADER_TIMEOUT,
	CFG_RELAY_PROXY,
	CFG_RELAY_SERVICES,
	CFG_RELAY_FAILOVER_MAX,
	CFG_BREAKER_THRESHOLD,
	CFG_BREAKER_COOLDOWN,
	CFG_METERING,
	CFG_LOG_LEVEL,
	CFG_LOG_FILE,
	CFG_ADMIN_SESSION_TTL,
	CFG_RELAY_SPOOL_DIR,
	CFG_LEASE_SLOTS,
	CFG_TASK_TIMEOUT,
	CFG_TASK_POLL_INTERVAL,
	CFG_TASK_POLL_RATE,
	CFG_IDEMPOTENCY_WAIT,
	CFG_RELAY_AUTH_FAIL_BURST,
	CFG_RELAY_AUTH_FAIL_RATE,
	CFG_RELAY_AUTH_FAIL_DELAY_MS,
	CFG_KEY_PROBE_INTERVAL,
	CFG__MAX
};

#define CONFIG_DEFAULT_PATH "/etc/bltcy-relay/bltcy.env"

/*
 * Load path (NULL: $BLTCY_CONFIG, else the default path, which may be
 * missing) then the environment. Returns 0, or -1 with a message naming the
 * key in err. Unknown keys in the file are warned about on stderr.
 * May be called again (SIGHUP): the new values replace the old ones only
 * when the whole file and environment were read without an error; until
 * then, and on an error, the old ones stay as they were. config_revert()
 * brings back the values before the last successful load (once), for a
 * caller whose own checks of the new values fail.
 */
int		 config_load(const char *path, char *err, size_t errsz);
void		 config_revert(void);

const char	*cfg_s(enum cfg);	/* "" when unset */
long long	 cfg_i(enum cfg);
const char	*cfg_name(enum cfg);

/* Replace one value (tests, command-line flags). 0 ok, -1 invalid. */
int		 cfg_set(enum cfg, const char *value, char *err, size_t errsz);

#endif
