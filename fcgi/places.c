#include <sys/syscall.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "channels.h"
#include "crypto.h"
#include "db.h"
#include "log.h"
#include "meter.h"
#include "places.h"
#include "shared.h"
#include "sql.h"
#include "util.h"

/*
 * Open-job caps. The database keeps, per capped scope, the open jobs
 * (tasks recorded, unfinished, holding a place) and the places granted
 * to hosts; a take (bltcy_place_take) never lets the two pass the cap.
 * A host takes places in small batches into shared memory, where a
 * submit takes one with a compare-and-swap: no round trip while the
 * host has a spare one. A request that made no task gives its place
 * back to spare; one that made a task hands it to the task, whose row
 * (written by the usage writer, or at once for an uncharged request)
 * counts it as open while the host's grant shrinks by it in the same
 * transaction. A task that finishes frees its places in the database
 * (a trigger), so the next take sees the room. The master gives spare
 * places idle for IDLE_MS back, and at start what an earlier run of
 * this host held.
 *
 * What a crash can cost: a worker that dies between taking a place and
 * recording it under its charge slot, or between handing it to a task
 * and the task's record reaching the usage ring, leaves one place
 * granted to this host and unused until the host's next start gives its
 * grant back. That errs toward refusing a job, never toward one more.
 */

#define PLACES		16384		/* scopes a host can know at once */
#define PROBE		64		/* entries looked at for one scope */
#define GROW_MAX	256		/* places one take asks for, at most */
#define FAST_MS		1000		/* the last take went quicker: double */
#define IDLE_MS		1000		/* a spare place unused this long goes back */

/* A scope's places on this host. state: 0 free, 1 being named, 2 named. */
struct place {
	int		 state;
	char		 scope;		/* 't', 'u', 'k' */
	char		 key[17];	/* the key's hash, or "" */
	long long	 id;
	int		 lock;		/* thread id taking more, or 0 */
	int		 cap;		/* what the last take was made under */
	int64_t		 spare;		/* held here, in no request */
	int64_t		 busy;		/* held by requests in flight */
	int64_t		 last_use;	/* mono ms */
	int64_t		 taken_at;	/* mono ms of the last take */
	int64_t		 grow;		/* places the next take asks for */
	int64_t		 gen;		/* takes made */
	int64_t		 last_n;	/* what the last take got */
	int64_t		 open, granted;	/* as the last take saw them */
};

/* What the request thread of a charge slot holds: entry + 1 per scope. */
struct place_hold {
	int		 e[PS__MAX];
};

static struct place	*places;	/* PLACES of them; never unmapped */
static struct place_hold *holds;	/* one per charge slot */
static size_t		 nholds;
static const char	*pool_host;

static const char scope_char[PS__MAX] = { 't', 'u', 'k' };

void
place_key_hash(const char *key, char out[17])
{
	char	 hex[65];

	sha256_hex(key, strlen(key), hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

static int
named(const struct place *p, char scope, long long id, const char *key)
{
	return p->scope == scope && p->id == id && strcmp(p->key, key) == 0;
}

/*
 * The entry of (scope, id, key); with claim, a free one is named for it.
 * Entries are never freed: a host knows the capped tokens, users and
 * keys it served, which the operator's caps bound. NULL when none is
 * (or, with claim, PROBE entries from its place are all others').
 */
static struct place *
find(char scope, long long id, const char *key, int claim)
{
	unsigned long long h = (unsigned long long)id * 2654435761ULL;
	size_t		 i, k;
	int		 st, zero, spins;

	for (k = 0; key[k] != '\0'; k++)
		h = h * 31 + (unsigned char)key[k];
	h = h * 31 + (unsigned char)scope;
	for (i = 0; i < PROBE; i++) {
		struct place *p = &places[(h + i) % PLACES];

		for (spins = 0; (st = LOAD(&p->state)) == 1 && spins < 1000;
		    spins++)
			usleep(10);	/* being named: nearly done */
		if (st == 2) {
			if (named(p, scope, id, key))
				return p;
			continue;
		}
		if (st == 1 || !claim)
			continue;
		zero = 0;
		if (!CAS(&p->state, &zero, 1)) {
			i--;		/* taken meanwhile: look at it again */
			continue;
		}
		p->scope = scope;
		p->id = id;
		strlcpy_(p->key, key, sizeof(p->key));
		STORE(&p->state, 2);
		return p;
	}
	return NULL;
}

static int
spare_take(struct place *p)
{
	int64_t	 a = LOAD(&p->spare);

	while (a > 0)
		if (CAS(&p->spare, &a, a - 1))
			return 1;
	return 0;
}

static void
hold(int slot, enum place_scope s, struct place *p)
{
	ADD(&p->busy, 1);
	STORE(&holds[slot].e[s], (int)(p - places) + 1);
	STORE(&p->last_use, mono_ms());
}

/* The three numbers of ST_PLACE_GOT's row. */
static int
place_row_3(void *arg, const struct dbv *c, size_t n)
{
	long long	*v = arg;
	size_t		 i;

	for (i = 0; i < 3 && i < n; i++)
		v[i] = c[i].t == DBV_INT ? c[i].i : 0;
	return 1;
}

/*
 * Ask the database for places of p, under cap: the number got (0 when
 * none is left), or -1. The caller holds p's lock.
 */
static long long
take_more(struct db *db, struct place *p, const char *rid, int tries, int cap)
{
	struct dbv	 a[8];
	long long	 got[3] = { 0, 0, 0 };
	char		 op[80], sc[2] = { p->scope, '\0' };
	int64_t		 grow;

	/* a busy scope takes a batch about once a second */
	grow = shm_batch_grow(&p->grow, &p->taken_at, mono_ms(), FAST_MS,
	    GROW_MAX);
	/* one name per request, scope and try: a request may ask for several */
	snprintf(op, sizeof(op), "place:%s:%zu:%d", rid, (size_t)(p - places),
	    tries);
	a[0] = DBS(pool_host);
	a[1] = DBS(sc);
	a[2] = DBI(p->id);
	a[3] = DBS(p->key);
	a[4] = DBI(cap);
	a[5] = DBI(grow);
	a[6] = DBI(now_s());
	a[7] = DBS(op);
	if (db_run(db, ST_PLACE_TAKE, a, 8, NULL, NULL, NULL) != DB_OK)
		return -1;
	a[4] = DBS(op);
	if (db_run(db, ST_PLACE_GOT, a, 5, place_row_3, got, NULL) != DB_OK)
		return -1;
	STORE(&p->open, got[1]);
	STORE(&p->granted, got[2]);
	STORE(&p->cap, cap);
	return got[0] > 0 ? got[0] : 0;
}

/*
 * Spare places of p given back on db (st: the connection's statement),
 * all of them. The caller holds p's lock. -1 when the database failed:
 * they are spare again.
 */
static int
give_back(struct db *db, size_t st, struct place *p)
{
	struct dbv	 a[6];
	char		 sc[2] = { p->scope, '\0' };
	int64_t		 n = __atomic_exchange_n(&p->spare, 0, __ATOMIC_ACQ_REL);

	if (n <= 0 || db == NULL)
		return 0;
	a[0] = DBS(pool_host);
	a[1] = DBS(sc);
	a[2] = DBI(p->id);
	a[3] = DBS(p->key);
	a[4] = DBI(n);
	a[5] = DBI(now_s());
	if (db_run(db, st, a, 6, NULL, NULL, NULL) != DB_OK) {
		log_err("returning %lld places of %c %lld: %s", (long long)n,
		    p->scope, p->id, db_error(db));
		ADD(&p->spare, n);
		return -1;
	}
	return 0;
}

/*
 * One place of p under cap for the thread of slot: a spare one, or a
 * batch from the database, one thread at a time per scope; the threads
 * that waited for a take that found no room are refused with it rather
 * than each asking again.
 */
static enum place_rc
take(struct db *db, int slot, const char *rid, enum place_scope s,
    struct place *p, int cap)
{
	int64_t		 gen0 = LOAD(&p->gen);
	long long	 got;
	int64_t		 start = mono_ms();
	int		 tries, zero, waited = 0, tid = (int)syscall(SYS_gettid);

	for (tries = 0; mono_ms() - start < 30000; tries++) {
		/* a cap lowered: what is spare here was granted under the old */
		if (cap >= LOAD(&p->cap) && spare_take(p)) {
			hold(slot, s, p);
			return PLACE_OK;
		}
		if (waited && LOAD(&p->gen) != gen0 && LOAD(&p->last_n) == 0)
			return PLACE_FULL;
		zero = 0;
		if (!CAS(&p->lock, &zero, tid)) {
			/* another thread is taking: wait for it, or take over
			 * from one that died holding the lock */
			if (zero != 0 && zero != tid && kill(zero, 0) == -1 &&
			    errno == ESRCH)
				CAS(&p->lock, &zero, 0);
			else if (zero != 0)
				shm_wait(&p->lock, zero, 100);
			waited = 1;
			continue;
		}
		if (cap < LOAD(&p->cap) && give_back(db, ST_PLACE_RETURN, p) == 0)
			STORE(&p->cap, cap);
		if (cap >= LOAD(&p->cap) && spare_take(p)) {
			STORE(&p->lock, 0);
			shm_wake(&p->lock);
			hold(slot, s, p);
			return PLACE_OK;
		}
		got = take_more(db, p, rid, tries, cap);
		if (got > 0)
			ADD(&p->spare, got);
		STORE(&p->last_n, got > 0 ? got : 0);
		ADD(&p->gen, 1);
		STORE(&p->lock, 0);
		shm_wake(&p->lock);
		if (got == -1) {
			log_err("req=%s places of %c %lld: %s", rid, p->scope,
			    p->id, db_error(db));
			return PLACE_DB;
		}
		if (got == 0)
			return PLACE_FULL;
	}
	return PLACE_DB;
}

enum place_rc
places_take(struct db *db, int slot, const char *rid, enum place_scope s,
    long long id, const char *key, int cap)
{
	struct place	*p;
	int		 e;

	if (places == NULL || slot < 0 || (size_t)slot >= nholds)
		return PLACE_DB;
	if ((e = LOAD(&holds[slot].e[s])) != 0) {
		p = &places[e - 1];
		if (named(p, scope_char[s], id, key))
			return PLACE_OK;
		places_give(slot, s);
	}
	if ((p = find(scope_char[s], id, key, 1)) == NULL) {
		log_err("req=%s no room for the places of %c %lld: %d scopes "
		    "known", rid, scope_char[s], id, PLACES);
		return PLACE_DB;
	}
	return take(db, slot, rid, s, p, cap);
}

enum place_rc
places_key(struct db *db, int slot, const char *rid, const struct channel *ch,
    int cap, const unsigned char *skip, size_t *ki)
{
	char		 h[17];
	long long	 room, best_room;
	size_t		 i, best, left;
	unsigned char	 seen[256];
	enum place_rc	 rc;

	memset(seen, 0, sizeof(seen));
	places_give(slot, PS_KEY);
	for (left = ch->nkeys; left > 0; left--) {
		best = ch->nkeys;
		best_room = -1;
		for (i = 0; i < ch->nkeys && i < sizeof(seen); i++) {
			struct place *p;

			if (seen[i] || (skip != NULL && skip[i]) ||
			    !chan_key_usable(ch, i))
				continue;
			place_key_hash(ch->keys[i], h);
			/* a key not asked about yet: room as far as we know */
			if ((p = find('k', ch->id, h, 0)) == NULL)
				room = cap;
			else if (LOAD(&p->spare) > 0 && cap >= LOAD(&p->cap))
				room = (long long)cap + 1 + LOAD(&p->spare);
			else
				room = cap - LOAD(&p->open) - LOAD(&p->granted);
			if (room > best_room) {
				best_room = room;
				best = i;
			}
		}
		if (best == ch->nkeys)
			break;
		seen[best] = 1;
		place_key_hash(ch->keys[best], h);
		rc = places_take(db, slot, rid, PS_KEY, ch->id, h, cap);
		if (rc == PLACE_OK)
			*ki = best;
		if (rc != PLACE_FULL)
			return rc;
	}
	return PLACE_FULL;
}

void
places_give(int slot, enum place_scope s)
{
	struct place	*p;
	int		 e;

	if (holds == NULL || slot < 0 || (size_t)slot >= nholds ||
	    (e = __atomic_exchange_n(&holds[slot].e[s], 0, __ATOMIC_ACQ_REL)) == 0)
		return;
	p = &places[e - 1];
	ADD(&p->busy, -1);
	ADD(&p->spare, 1);
	STORE(&p->last_use, mono_ms());
}

void
places_give_all(int slot)
{
	int	 s;

	for (s = 0; s < PS__MAX; s++)
		places_give(slot, (enum place_scope)s);
}

int
places_hand(int slot)
{
	static const int bit[PS__MAX] = { PLACE_TOKEN, PLACE_USER, PLACE_KEY };
	int		 s, e, bits = 0;

	if (holds == NULL || slot < 0 || (size_t)slot >= nholds)
		return 0;
	for (s = 0; s < PS__MAX; s++)
		if ((e = __atomic_exchange_n(&holds[slot].e[s], 0,
		    __ATOMIC_ACQ_REL)) != 0) {
			ADD(&places[e - 1].busy, -1);
			bits |= bit[s];
		}
	return bits;
}

/* ---- the master ---- */

int
places_init(const char *host, size_t nslots)
{
	pool_host = host;
	nholds = nslots;
	if ((places = shm_map(PLACES * sizeof(*places))) == NULL ||
	    (holds = shm_map(nslots * sizeof(*holds))) == NULL)
		return -1;
	return 0;
}

void
places_reconcile(struct db *db)
{
	struct dbv	 a[2];

	if (db == NULL)
		return;
	a[0] = DBS(pool_host);
	a[1] = DBI(now_s());
	if (db_run(db, MS_PLACE_RECONCILE, a, 2, NULL, NULL, NULL) != DB_OK)
		log_err("giving back the places of an earlier run: %s",
		    db_error(db));
}

void
places_dead(int slot)
{
	places_give_all(slot);
}

/* Spare places unused for IDLE_MS (all: every one) given back. */
static void
return_idle(struct db *db, int all)
{
	int64_t	 now = mono_ms();
	size_t	 i;
	int	 zero;

	for (i = 0; i < PLACES; i++) {
		struct place *p = &places[i];

		if (LOAD(&p->state) != 2 || LOAD(&p->spare) <= 0)
			continue;
		if (!all && (now - LOAD(&p->last_use) < IDLE_MS ||
		    now - LOAD(&p->taken_at) < IDLE_MS))
			continue;
		zero = 0;
		if (!CAS(&p->lock, &zero, (int)getpid()))
			continue;
		give_back(db, MS_PLACE_RETURN, p);
		STORE(&p->lock, 0);
		shm_wake(&p->lock);
	}
}

void
places_tick(struct db *db)
{
	static int64_t	 last;

	if (places == NULL || mono_ms() - last < IDLE_MS / 2)
		return;
	last = mono_ms();
	return_idle(db, 0);
}

void
places_shutdown(struct db *db)
{
	if (places != NULL)
		return_idle(db, 1);
}

/* The places of one batch, by scope, id and key. */
struct moved {
	char		 scope;
	long long	 id;
	const char	*key;
	long long	 n;
	long long	 open;		/* of n, their rows inserted */
};

enum db_rc
places_written(struct db *db, struct usage *const *r, size_t n,
    const unsigned char *written)
{
	static struct moved m[3 * 1024];
	struct dbv	 a[7];
	char		 sc[2] = { 0, 0 };
	size_t		 nm = 0, i, k;
	enum db_rc	 rc = DB_OK;
	int		 s;

	for (i = 0; i < n; i++)
		for (s = 0; s < PS__MAX; s++) {
			char		 c = scope_char[s];
			long long	 id;
			const char	*key = "";

			if (!(r[i]->places & (1 << s)))
				continue;
			id = s == PS_TOKEN ? r[i]->token_id : s == PS_USER ?
			    r[i]->user_id : r[i]->channel_id;
			if (s == PS_KEY)
				key = r[i]->key_hash;
			for (k = 0; k < nm; k++)
				if (m[k].scope == c && m[k].id == id &&
				    strcmp(m[k].key, key) == 0)
					break;
			if (k == nm) {
				if (nm == sizeof(m) / sizeof(m[0]))
					continue;	/* not reached: 3 a record */
				m[nm].scope = c;
				m[nm].id = id;
				m[nm].key = key;
				m[nm].open = 0;
				m[nm++].n = 0;
			}
			m[k].n++;
			if (written != NULL && written[i])
				m[k].open++;
		}
	for (k = 0; rc == DB_OK && k < nm; k++) {
		sc[0] = m[k].scope;
		a[0] = DBS(pool_host);
		a[1] = DBI(m[k].n);
		a[2] = DBI(m[k].open);
		a[3] = DBI(m[k].n);
		a[4] = DBS(sc);
		a[5] = DBI(m[k].id);
		a[6] = DBS(m[k].key);
		rc = db_run(db, MS_PLACES_WRITTEN, a, 7, NULL, NULL, NULL);
	}
	return rc;
}

int
places_render(struct buf *o)
{
	size_t	 i;

	if (places == NULL)
		return 0;
	if (buf_adds(o, "# HELP bltcy_key_open_jobs Open jobs of a channel key "
	    "with MaxTasks, as this host last read them\n"
	    "# TYPE bltcy_key_open_jobs gauge\n") == -1)
		return -1;
	for (i = 0; i < PLACES; i++) {
		const struct place *p = &places[i];

		if (LOAD(&p->state) != 2 || p->scope != 'k')
			continue;
		if (buf_printf(o, "bltcy_key_open_jobs{channel=\"%lld\",key=\"%s\"} "
		    "%lld\n", p->id, p->key, (long long)LOAD(&p->open)) == -1)
			return -1;
	}
	return 0;
}
