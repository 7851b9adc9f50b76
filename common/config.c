#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "util.h"

enum cfg_type { T_STR, T_INT, T_ENUM };

struct cfg_def {
	const char	*name;
	enum cfg_type	 type;
	const char	*def;		/* NULL: required */
	long long	 min, max;	/* T_INT */
	const char	*choices;	/* T_ENUM: "a|b|c" */
};

static const struct cfg_def defs[CFG__MAX] = {
	[CFG_SQL_DSN] =		{ "SQL_DSN", T_STR, NULL, 0, 0, NULL },
	[CFG_SESSION_SECRET] =	{ "SESSION_SECRET", T_STR, NULL, 0, 0, NULL },
	[CFG_CRYPTO_SECRET] =	{ "CRYPTO_SECRET", T_STR, "", 0, 0, NULL },
	[CFG_PORT] =		{ "PORT", T_INT, "3000", 1, 65535, NULL },
	[CFG_REDIS_CONN_STRING] = { "REDIS_CONN_STRING", T_STR, "", 0, 0, NULL },
	[CFG_RELAY_WORKERS] =	{ "RELAY_WORKERS", T_INT, "0", 0, 1024, NULL },
	/*
	 * Requests a worker holds at once: with the default workers (2 x
	 * cores), 4,096 on 2 cores. Limits, not the pool's size, protect
	 * the upstream.
	 */
	[CFG_RELAY_THREADS] =	{ "RELAY_THREADS", T_INT, "1024", 1, 16384, NULL },
	[CFG_RELAY_MAX_BODY] =	{ "RELAY_MAX_BODY", T_INT, "67108864", 0, 1LL << 40, NULL },
	[CFG_RELAY_TIMEOUT] =	{ "RELAY_TIMEOUT", T_INT, "300", 1, 86400, NULL },
	[CFG_RELAY_CONNECT_TIMEOUT] = { "RELAY_CONNECT_TIMEOUT", T_INT, "60", 1, 3600, NULL },
	[CFG_RELAY_HEADER_TIMEOUT] = { "RELAY_HEADER_TIMEOUT", T_INT, "60", 1, 86400, NULL },
	[CFG_RELAY_PROXY] =	{ "RELAY_PROXY", T_STR, "", 0, 0, NULL },
	[CFG_RELAY_SERVICES] =	{ "RELAY_SERVICES", T_STR, "", 0, 0, NULL },
	[CFG_RELAY_FAILOVER_MAX] = { "RELAY_FAILOVER_MAX", T_INT, "3", 1, 16, NULL },
	[CFG_BREAKER_THRESHOLD] = { "BREAKER_THRESHOLD", T_INT, "5", 1, 1000000, NULL },
	[CFG_BREAKER_COOLDOWN] = { "BREAKER_COOLDOWN", T_INT, "30", 1, 86400, NULL },
	[CFG_METERING] =	{ "METERING", T_ENUM, "strict", 0, 0, "strict|lease" },
	[CFG_LOG_LEVEL] =	{ "LOG_LEVEL", T_ENUM, "info", 0, 0, "debug|info|warn|error" },
	[CFG_LOG_FILE] =	{ "LOG_FILE", T_STR, "", 0, 0, NULL },
	[CFG_ADMIN_SESSION_TTL] = { "ADMIN_SESSION_TTL", T_INT, "43200", 60, 2592000, NULL },
	[CFG_RELAY_SPOOL_DIR] =	{ "RELAY_SPOOL_DIR", T_STR, "/tmp", 0, 0, NULL },
	[CFG_LEASE_SLOTS] =	{ "LEASE_SLOTS", T_INT, "16384", 64, 1048576, NULL },
	/* seconds; new-api's 24 h */
	[CFG_TASK_TIMEOUT] =	{ "TASK_TIMEOUT", T_INT, "86400", 1, 30 * 86400LL, NULL },
	/* a task no poll answer was seen of for this long is polled */
	[CFG_TASK_POLL_INTERVAL] = { "TASK_POLL_INTERVAL", T_INT, "60", 1, 86400, NULL },
	/* the relay's own polls a minute, per host; 0: none */
	[CFG_TASK_POLL_RATE] =	{ "TASK_POLL_RATE", T_INT, "120", 0, 600000, NULL },
	/* seconds a repeat waits for the first of its Idempotency-Key */
	[CFG_IDEMPOTENCY_WAIT] = { "IDEMPOTENCY_WAIT", T_INT, "60", 0, 3600, NULL },
	/* failed token checks an address may make at once; 0: no limit */
	[CFG_RELAY_AUTH_FAIL_BURST] = { "RELAY_AUTH_FAIL_BURST", T_INT, "100", 0,
	    1000000, NULL },
	/* and then a second, per host */
	[CFG_RELAY_AUTH_FAIL_RATE] = { "RELAY_AUTH_FAIL_RATE", T_INT, "10", 1,
	    1000000, NULL },
	/* how long the 429 past them waits (RELAY_THREADS / 2 of them at most) */
	[CFG_RELAY_AUTH_FAIL_DELAY_MS] = { "RELAY_AUTH_FAIL_DELAY_MS", T_INT, "500",
	    0, 10000, NULL },
	/* seconds between probes of disabled keys, of all hosts together */
	[CFG_KEY_PROBE_INTERVAL] = { "KEY_PROBE_INTERVAL", T_INT, "300", 1, 86400,
	    NULL },
};

/* A whole configuration: the one in force, one being read, the last one. */
struct cfgset {
	char		*vals[CFG__MAX];
	long long	 nums[CFG__MAX];
};

static struct cfgset	 sets[3];
static struct cfgset	*cur = &sets[0], *next = &sets[1], *prev = &sets[2];

static int
find(const char *name, size_t n)
{
	int	 i;

	for (i = 0; i < CFG__MAX; i++)
		if (strlen(defs[i].name) == n && memcmp(defs[i].name, name, n) == 0)
			return i;
	return -1;
}

static int
check(enum cfg k, const char *v, long long *num, char *err, size_t errsz)
{
	const struct cfg_def	*d = &defs[k];

	*num = 0;
	switch (d->type) {
	case T_INT:
		if (parse_ll(v, d->min, d->max, num) == -1) {
			snprintf(err, errsz, "%s: expected an integer from %lld "
			    "to %lld, got \"%s\"", d->name, d->min, d->max, v);
			return -1;
		}
		break;
	case T_ENUM:
		if (!list_has(d->choices, '|', v, strlen(v))) {
			snprintf(err, errsz, "%s: expected one of %s, got \"%s\"",
			    d->name, d->choices, v);
			return -1;
		}
		break;
	case T_STR:
		break;
	}
	return 0;
}

static void
set_clear(struct cfgset *c)
{
	int	 i;

	for (i = 0; i < CFG__MAX; i++) {
		if (c->vals[i] != NULL) {
			wipe(c->vals[i], strlen(c->vals[i]));
			free(c->vals[i]);
		}
		c->vals[i] = NULL;
		c->nums[i] = 0;
	}
}

static int
set_value(struct cfgset *c, enum cfg k, const char *v, char *err, size_t errsz)
{
	long long	 num;
	char		*copy;

	if (check(k, v, &num, err, errsz) == -1)
		return -1;
	if ((copy = strdup(v)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (c->vals[k] != NULL) {
		wipe(c->vals[k], strlen(c->vals[k]));
		free(c->vals[k]);
	}
	c->vals[k] = copy;
	c->nums[k] = num;
	return 0;
}

int
cfg_set(enum cfg k, const char *v, char *err, size_t errsz)
{
	return set_value(cur, k, v, err, errsz);
}

/* Strip blanks and one pair of matching quotes, in place. */
static char *
unquote(char *s)
{
	size_t	 n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
	    s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
		s[n - 1] = '\0';
		s++;
	}
	return s;
}

static int
load_file(const char *path, int must_exist, char *err, size_t errsz)
{
	FILE	*f;
	char	*line = NULL;
	size_t	 cap = 0;
	ssize_t	 len;
	int	 lineno = 0, rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		char	*p = line, *eq, *key;
		int	 k;

		lineno++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
			continue;
		if (strncmp(p, "export ", 7) == 0)
			p += 7;
		if ((eq = strchr(p, '=')) == NULL) {
			snprintf(err, errsz, "%s:%d: expected KEY=VALUE",
			    path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		key = unquote(p);
		if ((k = find(key, strlen(key))) == -1) {
			fprintf(stderr, "bltcy: %s:%d: unknown key %s ignored\n",
			    path, lineno, key);
			continue;
		}
		if (set_value(next, (enum cfg)k, unquote(eq + 1), err, errsz) == -1) {
			rc = -1;
			break;
		}
	}
	if (line != NULL) {
		wipe(line, cap);
		free(line);
	}
	fclose(f);
	return rc;
}

int
config_load(const char *path, char *err, size_t errsz)
{
	struct cfgset	*t;
	int		 i, must_exist = 1;
	const char	*env;

	set_clear(next);
	if (path == NULL && (path = getenv("BLTCY_CONFIG")) == NULL) {
		path = CONFIG_DEFAULT_PATH;
		must_exist = 0;
	}
	if (load_file(path, must_exist, err, errsz) == -1)
		goto fail;
	for (i = 0; i < CFG__MAX; i++) {
		if ((env = getenv(defs[i].name)) != NULL &&
		    set_value(next, (enum cfg)i, env, err, errsz) == -1)
			goto fail;
		if (next->vals[i] != NULL)
			continue;
		if (defs[i].def == NULL) {
			snprintf(err, errsz, "%s is required (in %s or the "
			    "environment)", defs[i].name, path);
			goto fail;
		}
		if (set_value(next, (enum cfg)i, defs[i].def, err, errsz) == -1)
			goto fail;
	}
	/* whole: it is the one in force, and the old one is kept once */
	set_clear(prev);
	t = prev;
	prev = cur;
	cur = next;
	next = t;
	return 0;
fail:
	set_clear(next);
	return -1;
}

void
config_revert(void)
{
	struct cfgset	*t;
	int		 i, any = 0;

	for (i = 0; i < CFG__MAX; i++)
		any |= prev->vals[i] != NULL;
	if (!any)
		return;
	set_clear(cur);
	t = cur;
	cur = prev;
	prev = t;
}

const char *
cfg_s(enum cfg k)
{
	return cur->vals[k] != NULL ? cur->vals[k] : "";
}

long long
cfg_i(enum cfg k)
{
	return cur->nums[k];
}

const char *
cfg_name(enum cfg k)
{
	return defs[k].name;
}
