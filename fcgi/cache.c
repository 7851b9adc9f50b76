#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "log.h"
#include "sql.h"
#include "util.h"
#include "worker.h"

/*
 * What the request threads of a worker process keep between requests and
 * share: token rows, keys no token has, the change counters, the channel
 * table, ids known to be nobody's task, and idle curl handles. Each has
 * its lock (worker.h).
 */

/*
 * Each worker process keeps token rows, so that most requests make no
 * lookup.
 * A kept row is used only while the change counters (bltcy_meta 'auth'
 * and 'channels', moved by triggers on every edit of a token, a user, a
 * channel or an ability) are as they were when it was read, and the
 * worker reads the counters at least every COUNTERS_MS: a disabled or
 * deleted token, a banned user or a disabled channel is refused within
 * that time, free requests included. A row is kept for the lifetime
 * tokcache_init was given (the metering mode's: meter.h). A row that
 * fails the token check is always looked up again first.
 */
#define AUTH_CACHE	1024
#define COUNTERS_MS	1000

struct auth_entry {
	char			 key[TOKEN_KEY_MAX];
	struct token_row	 row;
	long long		 version;	/* channel counter seen with it */
	long long		 auth_version;	/* and the token counter */
	int64_t			 at;
	int			 loading;	/* a thread reads loading_key now */
	char			 loading_key[TOKEN_KEY_MAX];
};
static struct auth_entry	*acache;
static int64_t			 row_lifetime_ms;	/* a kept row is used this long */
#define AUTH_STRIPES	64
static pthread_mutex_t		 acache_mu[AUTH_STRIPES];
static pthread_cond_t		 acache_cv[AUTH_STRIPES];	/* a load ended */
#define LOAD_WAIT_MS	2000	/* waiting for another thread's read, at most */

static struct auth_entry *
acache_slot(const char *key)
{
	return &acache[fnv1a(FNV1A_INIT, key) % AUTH_CACHE];
}

/* The lock and wake-up of an entry's stripe. */
static size_t
acache_stripe(const struct auth_entry *e)
{
	return (size_t)(e - acache) % AUTH_STRIPES;
}

static int
counters_row(void *arg, const struct dbv *c, size_t n)
{
	long long	*v = arg;

	v[0] = c[0].t == DBV_INT ? c[0].i : 0;
	v[1] = c[1].t == DBV_INT ? c[1].i : 0;
	return 1;
}

/* Take counters read at t0, unless newer ones are there already. */
void
counters_seen(struct proc *p, long long chan, long long auth, int64_t t0)
{
	pthread_mutex_lock(&p->meta_mu);
	if (t0 >= p->meta_at) {
		p->meta_chan = chan;
		p->meta_auth = auth;
		p->meta_at = t0;
	}
	pthread_mutex_unlock(&p->meta_mu);
}

/*
 * The change counters (channels, auth), read again when the last reading
 * is max_ms old. -1 when the database cannot say: kept rows are then
 * not used.
 */
static int
counters_fresh(struct proc *p, int64_t max_ms, long long *chan,
    long long *auth)
{
	long long	 v[2];
	int64_t		 now = mono_ms();
	struct timespec	 ts;
	enum db_rc	 rc;
	int		 fresh, reader = 0;

	pthread_mutex_lock(&p->meta_mu);
	for (;;) {
		fresh = p->meta_at != 0 && now - p->meta_at < max_ms;
		/*
		 * Another thread is reading them: its reading is as good,
		 * and a reading up to twice as old is still good while it
		 * comes.
		 */
		if (!fresh && p->meta_reading && p->meta_at != 0 &&
		    now - p->meta_at < 2 * max_ms)
			fresh = 1;
		if (fresh || !p->meta_reading)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		if (pthread_cond_timedwait(&p->meta_cv, &p->meta_mu, &ts) != 0)
			break;
	}
	*chan = p->meta_chan;
	*auth = p->meta_auth;
	if (!fresh && !p->meta_reading)
		reader = p->meta_reading = 1;
	pthread_mutex_unlock(&p->meta_mu);
	if (fresh)
		return 0;
	rc = db_run(p->db, ST_COUNTERS, NULL, 0, counters_row, v, NULL);
	if (rc == DB_OK)
		counters_seen(p, v[0], v[1], now);
	if (reader) {
		pthread_mutex_lock(&p->meta_mu);
		p->meta_reading = 0;
		pthread_cond_broadcast(&p->meta_cv);
		pthread_mutex_unlock(&p->meta_mu);
	}
	if (rc != DB_OK)
		return -1;
	*chan = v[0];
	*auth = v[1];
	return 0;
}

/*
 * A kept row for key that may be used now: 1, with *row and the counters
 * it stands at (*auth_version, and the channels counter in *chan), read
 * less than row_lifetime_ms ago.
 */
int
tokcache_get(struct proc *p, const char *key, struct token_row *row,
    long long *auth_version, long long *chan)
{
	struct auth_entry	*e;
	pthread_mutex_t		*mu;
	long long		 auth;
	int64_t			 now = mono_ms();
	size_t			 klen = strlen(key);
	int			 hit = 0;

	if (acache == NULL || counters_fresh(p, COUNTERS_MS, chan, &auth) == -1)
		return 0;
	e = acache_slot(key);
	mu = &acache_mu[acache_stripe(e)];
	pthread_mutex_lock(mu);
	if (e->at != 0 && now - e->at < row_lifetime_ms &&
	    strlen(e->key) == klen && ct_memeq(e->key, key, klen) &&
	    e->auth_version == auth) {
		*row = e->row;
		*auth_version = e->auth_version;
		hit = 1;
	}
	pthread_mutex_unlock(mu);
	return hit;
}

/* Keep row for key, read at t0 with the counters given. */
void
tokcache_put(const char *key, const struct token_row *row, long long chan,
    long long auth_version, int64_t t0)
{
	struct auth_entry	*e;
	pthread_mutex_t		*mu;
	size_t			 klen = strlen(key);

	if (acache == NULL || klen >= sizeof(e->key))
		return;
	e = acache_slot(key);
	mu = &acache_mu[acache_stripe(e)];
	pthread_mutex_lock(mu);
	memcpy(e->key, key, klen + 1);
	e->row = *row;
	e->version = chan;
	e->auth_version = auth_version;
	e->at = t0;
	pthread_mutex_unlock(mu);
}

/*
 * A miss: when another thread is reading the same token, wait for it
 * (at most LOAD_WAIT_MS) and return 0, to look in the cache again;
 * otherwise 1: this thread reads it, and calls tokcache_done after.
 * A burst of one token's requests thus costs one read, not one each.
 */
int
tokcache_claim(const char *key)
{
	struct auth_entry	*e;
	struct timespec		 ts;
	size_t			 st;
	int			 mine = 1;

	if (acache == NULL || strlen(key) >= sizeof(e->key))
		return 1;
	e = acache_slot(key);
	st = acache_stripe(e);
	pthread_mutex_lock(&acache_mu[st]);
	if (e->loading && strcmp(e->loading_key, key) == 0) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += LOAD_WAIT_MS / 1000;
		while (e->loading && strcmp(e->loading_key, key) == 0 &&
		    pthread_cond_timedwait(&acache_cv[st], &acache_mu[st],
		    &ts) == 0)
			;
		mine = 0;
	} else if (!e->loading) {	/* another key's load: no waiting */
		e->loading = 1;
		strlcpy_(e->loading_key, key, sizeof(e->loading_key));
	}
	pthread_mutex_unlock(&acache_mu[st]);
	return mine;
}

void
tokcache_done(const char *key)
{
	struct auth_entry	*e;
	size_t			 st;

	if (acache == NULL || strlen(key) >= sizeof(e->key))
		return;
	e = acache_slot(key);
	st = acache_stripe(e);
	pthread_mutex_lock(&acache_mu[st]);
	if (e->loading && strcmp(e->loading_key, key) == 0) {
		e->loading = 0;
		pthread_cond_broadcast(&acache_cv[st]);
	}
	pthread_mutex_unlock(&acache_mu[st]);
}

/*
 * Keys the database did not know, each with the auth counter read before
 * its lookup. While the counter stands there, nothing that could make
 * the key a token has happened (creating, restoring or editing a token
 * moves it: migrations 007 and 013), so a request with the key is
 * refused again without a lookup: a flood of one unknown token costs a
 * lookup per worker, not one per request. The counter must have been
 * read at most REFUSED_FRESH_MS before (one statement for all threads),
 * so a token created after its key was refused works within that time.
 */
#define REFUSED		1024
#define REFUSED_FRESH_MS 100

struct refused_entry {
	char		 key[TOKEN_KEY_MAX];	/* "" unused */
	long long	 auth;
};
static struct refused_entry	*rcache;
static pthread_mutex_t		 rcache_mu = PTHREAD_MUTEX_INITIALIZER;

/* key's entry, or NULL when there is no table or key cannot be kept */
static struct refused_entry *
rcache_slot(const char *key, size_t klen)
{
	if (rcache == NULL || klen >= sizeof(rcache->key) || klen == 0)
		return NULL;
	return &rcache[fnv1a(FNV1A_INIT, key) % REFUSED];
}

/*
 * The auth counter as this process last read it (with the counters or a
 * token row), into *auth: 0, or -1 when it has not read it yet.
 */
int
counters_auth(struct proc *p, long long *auth)
{
	int	 known;

	pthread_mutex_lock(&p->meta_mu);
	known = p->meta_at != 0;
	*auth = p->meta_auth;
	pthread_mutex_unlock(&p->meta_mu);
	return known ? 0 : -1;
}

/* 1: key was refused, and the auth counter is still what it was then. */
int
refused_get(struct proc *p, const char *key)
{
	struct refused_entry	*e;
	long long		 was = 0, chan, auth;
	size_t			 klen = strlen(key);
	int			 found;

	if ((e = rcache_slot(key, klen)) == NULL)
		return 0;
	pthread_mutex_lock(&rcache_mu);
	found = strlen(e->key) == klen && ct_memeq(e->key, key, klen);
	was = e->auth;
	pthread_mutex_unlock(&rcache_mu);
	return found && counters_fresh(p, REFUSED_FRESH_MS, &chan, &auth) == 0 &&
	    auth == was;
}

/* The database did not know key; auth: the counter read before it looked. */
void
refused_put(const char *key, long long auth)
{
	struct refused_entry	*e;
	size_t			 klen = strlen(key);

	if ((e = rcache_slot(key, klen)) == NULL)
		return;
	pthread_mutex_lock(&rcache_mu);
	memcpy(e->key, key, klen + 1);
	e->auth = auth;
	pthread_mutex_unlock(&rcache_mu);
}

/* The database knows key now: it is refused no more from memory. */
void
refused_drop(const char *key)
{
	struct refused_entry	*e;
	size_t			 klen = strlen(key);

	if ((e = rcache_slot(key, klen)) == NULL)
		return;
	pthread_mutex_lock(&rcache_mu);
	if (strlen(e->key) == klen && ct_memeq(e->key, key, klen))
		wipe(e->key, sizeof(e->key));
	pthread_mutex_unlock(&rcache_mu);
}

int
tokcache_init(int64_t lifetime_ms)
{
	size_t	 i;

	row_lifetime_ms = lifetime_ms;
	for (i = 0; i < AUTH_STRIPES; i++) {
		pthread_mutex_init(&acache_mu[i], NULL);
		pthread_cond_init(&acache_cv[i], NULL);
	}
	if ((rcache = calloc(REFUSED, sizeof(*rcache))) == NULL)
		return -1;
	return (acache = calloc(AUTH_CACHE, sizeof(*acache))) == NULL ? -1 : 0;
}

/*
 * The channel table at least as new as version (the counter a token was
 * read with), loaded by one thread at a time; held until chan_put. NULL
 * when the database cannot give it.
 */
struct chsnap *
chan_get(struct proc *p, long long version)
{
	struct chsnap	*s, *old;

	pthread_mutex_lock(&p->chan_mu);
	if ((s = p->chan) != NULL && s->c.version >= version && !p->chan_stale) {
		s->refs++;
		pthread_mutex_unlock(&p->chan_mu);
		return s;
	}
	pthread_mutex_unlock(&p->chan_mu);
	pthread_mutex_lock(&p->load_mu);
	pthread_mutex_lock(&p->chan_mu);
	if ((s = p->chan) != NULL && s->c.version >= version && !p->chan_stale) {
		s->refs++;
		pthread_mutex_unlock(&p->chan_mu);
		pthread_mutex_unlock(&p->load_mu);
		return s;
	}
	p->chan_stale = 0;	/* a change after this load marks it again */
	pthread_mutex_unlock(&p->chan_mu);
	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    (s->c.version = -1, chcache_load(&s->c, p->db, version)) == -1) {
		free(s);
		pthread_mutex_lock(&p->chan_mu);
		p->chan_stale = 1;
		pthread_mutex_unlock(&p->chan_mu);
		pthread_mutex_unlock(&p->load_mu);
		return NULL;
	}
	s->refs = 2;		/* the process's and the caller's */
	pthread_mutex_lock(&p->chan_mu);
	old = p->chan;
	p->chan = s;
	pthread_mutex_unlock(&p->chan_mu);
	pthread_mutex_unlock(&p->load_mu);
	chan_put(p, old);
	return s;
}

void
chan_put(struct proc *p, struct chsnap *s)
{
	int	 last;

	if (s == NULL)
		return;
	pthread_mutex_lock(&p->chan_mu);
	last = --s->refs == 0;
	pthread_mutex_unlock(&p->chan_mu);
	if (last) {
		chcache_free(&s->c);
		free(s);
	}
}

/* The channel table is to be read again (a channel was disabled). */
void
chan_stale(struct proc *p)
{
	pthread_mutex_lock(&p->chan_mu);
	p->chan_stale = 1;
	pthread_mutex_unlock(&p->chan_mu);
}

/* The entry for (service, id): compared whole, as ids are the client's. */
static struct no_task *
no_task_slot(struct proc *p, const char *service, const char *id)
{
	return &p->no_task[fnv1a(fnv1a(fnv1a(FNV1A_INIT, service), "/"), id) %
	    NO_TASK];
}

/* Is every id of cand known to be nobody's task? */
int
known_no_tasks(struct proc *p, const char *service,
    const struct task_ids *cand)
{
	int64_t	 now = mono_ms();
	size_t	 i;
	int	 all = 1;

	pthread_mutex_lock(&p->no_task_mu);
	for (i = 0; i < cand->n && all; i++) {
		struct no_task	*e = no_task_slot(p, service, cand->id[i]);

		all = e->until > now && strcmp(e->id, cand->id[i]) == 0 &&
		    strcmp(e->service, service) == 0;
	}
	pthread_mutex_unlock(&p->no_task_mu);
	return all;
}

void
remember_no_tasks(struct proc *p, const char *service,
    const struct task_ids *cand)
{
	int64_t	 until = mono_ms() + NO_TASK_MS;
	size_t	 i;

	if (strlen(service) >= SERVICE_SLOT)
		return;
	pthread_mutex_lock(&p->no_task_mu);
	for (i = 0; i < cand->n; i++) {
		struct no_task	*e = no_task_slot(p, service, cand->id[i]);

		strlcpy_(e->service, service, sizeof(e->service));
		strlcpy_(e->id, cand->id[i], sizeof(e->id));
		e->until = until;
	}
	pthread_mutex_unlock(&p->no_task_mu);
}

/* The easy handle given back last (a new one when none is free). */
CURL *
curl_get(struct proc *p)
{
	CURL	*c = NULL;

	pthread_mutex_lock(&p->curl_mu);
	if (p->ncurls > 0)
		c = p->curls[--p->ncurls];
	pthread_mutex_unlock(&p->curl_mu);
	return c != NULL ? c : curl_easy_init();
}

void
curl_put(struct proc *p, CURL *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&p->curl_mu);
	p->curls[p->ncurls++] = c;	/* at most one per thread */
	pthread_mutex_unlock(&p->curl_mu);
}
