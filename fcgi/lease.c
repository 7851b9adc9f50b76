#include <sys/syscall.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "meter.h"
#include "shared.h"
#include "sql.h"
#include "util.h"

/*
 * METERING=lease. Quota is leased from the database in blocks (one CALL,
 * recorded in bltcy_leases) and spent from shared memory with atomic
 * compare-and-swap, so a charge costs no database round trip. A kept
 * charge goes through the usage ring (usage.c), whose writer also takes
 * the spent part from the lease; the master gives idle leases back. A
 * thread's charge in flight sits in its charge slot (ledger.c), so the
 * master settles it if the worker dies, as in strict mode.
 *
 * What a power loss of the host can lose: the ring not yet written (at
 * most LEASE_FLUSH_MS of settled requests); those charges are refunded
 * by the reconciliation at the next start, never charged twice, and the
 * leases keep every host within what the database granted.
 */

#define LEASE_BLOCKS	100		/* a lease is worth this many requests, */
#define LEASE_GROW	64		/* times up to this for a busy token */
#define LEASE_FAST_MS	1000		/* the last lease went quicker: double */
#define IDLE_MS		10000		/* an unused lease goes back after this */
#define DRY_MS		1000		/* a token the DB had too little for is
					   not asked again for this long */
#define LEASES		16384		/* tokens with a lease on this host, */
#define LEASES_MIN	64		/* by default; LEASE_SLOTS in this range */
#define LEASES_MAX	(1 << 20)

/*
 * A token's lease on this host. token_id 0 is a place never used,
 * LEASE_GONE one given up (the token's lookups probe on past it, a new
 * token may take it), LEASE_CLOSING one the master is giving up. A worker
 * counts itself in inflight before it looks at a lease's avail, and the
 * master gives a lease up only while none is counted there.
 */
#define LEASE_GONE	(-1)
#define LEASE_CLOSING	(-2)

struct token_lease {
	long long	 token_id;	/* or 0, LEASE_GONE, LEASE_CLOSING */
	int		 lock;		/* thread id leasing more, or 0 */
	int64_t		 avail;
	int64_t		 inflight;
	int64_t		 last_use;	/* mono ms */
	int64_t		 leased_at;	/* mono ms of the last lease */
	int64_t		 grow;		/* blocks per lease, 1..LEASE_GROW */
	int64_t		 dry_at;	/* mono ms the database last had too little */
};

/* What lease metering keeps of a charge slot, for the master. */
struct lease_hold {
	int		 charged;	/* the lease its charge was spent from */
	int		 counted;	/* lease + 1 it counts in, spending */
};

static struct token_lease *leases;	/* nleases of them; never unmapped */
static size_t		 nleases;
static struct lease_hold *holds;	/* one per charge slot */
static const char	*pool_host;	/* this pool's instance name */

/*
 * The token's lease; with claim, a free place becomes its lease: the
 * first given up on its probe path, or else the first never used. NULL
 * when the token has none (or, with claim, every place is taken).
 *
 * NOTE: two workers claiming for one token while the master gives up a
 * lease earlier on its path may end up with a lease each. That costs a
 * place, not quota: each is the host's, counted in the database per
 * token, and the later one is given up when idle.
 */
static struct token_lease *
find_lease(long long token_id, int claim)
{
	size_t		 n = nleases, i, tries;
	size_t		 h = (size_t)((unsigned long long)token_id * 2654435761ULL) % n;
	struct token_lease *gone;

	for (tries = 0; tries < 8; tries++) {
		gone = NULL;
		for (i = 0; i < n; i++) {
			struct token_lease *s = &leases[(h + i) % n];
			long long	 id = LOAD(&s->token_id);

			if (id == token_id)
				return s;
			if (id == LEASE_GONE && gone == NULL)
				gone = s;
			if (id == 0)
				break;
		}
		if (!claim)
			return NULL;
		if (i == n && gone == NULL)
			break;		/* all taken */
		{
			struct token_lease *s = gone ? gone : &leases[(h + i) % n];
			long long	 old = gone ? LEASE_GONE : 0;

			if (CAS(&s->token_id, &old, token_id) || old == token_id)
				return s;
		}
		/* taken by another token meanwhile: look again */
	}
	return NULL;
}

/*
 * Count charge slot slot in s (as spending from it) if s is still the
 * token's: the master gives a lease up only with none counted there, and
 * checks that after it marked it LEASE_CLOSING; both sides use
 * sequentially consistent operations, so one of them sees the other.
 */
static int
lease_pin(struct token_lease *s, long long token_id, int slot)
{
	__atomic_fetch_add(&s->inflight, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->token_id, __ATOMIC_SEQ_CST) != token_id) {
		ADD(&s->inflight, -1);
		return -1;
	}
	STORE(&holds[slot].counted, (int)(s - leases) + 1);
	return 0;
}

static void
lease_unpin(struct token_lease *s, int slot)
{
	ADD(&s->inflight, -1);
	STORE(&holds[slot].counted, 0);
}

static int64_t
lease_available(long long token_id)
{
	struct token_lease *s;
	int64_t		 until;
	int		 held;

	if (leases == NULL || (s = find_lease(token_id, 0)) == NULL)
		return 0;
	/*
	 * While a lease is being taken, its quota is neither in the token's
	 * row nor in the slot yet: wait for it (bounded), or the token would
	 * look exhausted to the requests that arrive meanwhile.
	 */
	until = mono_ms() + 2000;
	while ((held = LOAD(&s->lock)) != 0 && mono_ms() < until)
		shm_wait(&s->lock, held, 100);
	return LOAD(&s->avail);
}

/* Spend q (>= 0) from the slot's lease: 1, or 0 when it holds less. */
static int
avail_take(struct token_lease *s, long long q)
{
	int64_t	 a = LOAD(&s->avail);

	while (a >= q)
		if (CAS(&s->avail, &a, a - q))
			return 1;
	return 0;
}

/*
 * Put q back into (or newly into) the slot's lease. 0, or -1 when the sum
 * would pass the largest BIGINT: the slot then holds that much, and the
 * rest stays leased in bltcy_leases until the next start gives it back
 * (a host cannot hold that much of one token in a lease it sizes itself:
 * see lease_want).
 */
static int
avail_add(struct token_lease *s, long long q)
{
	int64_t		 a = LOAD(&s->avail);
	long long	 sum;

	for (;;) {
		sum = a;
		if (quota_add(&sum, q) == -1) {
			if (CAS(&s->avail, &a, (int64_t)INT64_MAX))
				return -1;
			continue;
		}
		if (CAS(&s->avail, &a, (int64_t)sum))
			return 0;
	}
}

/*
 * How much to lease for a charge of q: grow blocks of LEASE_BLOCKS
 * charges, but never more than LEASE_WANT_MAX, so that a slot's lease and
 * the charges put back into it stay far from the largest BIGINT.
 */
#define LEASE_WANT_MAX	(INT64_MAX / 4)

static long long
lease_want(long long q, long long grow)
{
	long long	 w;

	if (quota_mul(&w, q, LEASE_BLOCKS) == -1 ||
	    quota_mul(&w, w, grow) == -1 || w > LEASE_WANT_MAX)
		return q > LEASE_WANT_MAX ? q : LEASE_WANT_MAX;
	return w;
}

/*
 * Spend c's quota from the token's lease, leasing a new block when it is
 * short. METER_QUOTA when token or user cannot pay.
 */
static enum meter_rc
lease_reserve(struct db *db, struct charge *c)
{
	const struct usage *rec = &c->rec;
	long long	 q = rec->quota, token = rec->token_id;
	struct token_lease *s;
	struct dbv	 a[8];
	char		 op[64];
	long long	 grant = 0;
	int64_t		 grow, start = mono_ms();
	int		 zero, tries, tid = (int)syscall(SYS_gettid);

	for (tries = 0;; tries++) {
		if (tries == 8 || (s = find_lease(token, 1)) == NULL) {
			log_err("no lease slot for token %lld: %zu slots, "
			    "all taken (LEASE_SLOTS)", token, nleases);
			return METER_DB;
		}
		if (lease_pin(s, token, c->slot) == 0)
			break;
	}
	for (tries = 0; !avail_take(s, q); tries++) {
		int64_t dry = LOAD(&s->dry_at);

		/*
		 * The database had too little for this token a moment ago: the
		 * requests that queued behind that lease are refused at once,
		 * not each asking again (a top-up counts after DRY_MS).
		 */
		if ((tries > 0 && grant < q) ||
		    (dry != 0 && mono_ms() - dry < DRY_MS)) {
			lease_unpin(s, c->slot);
			return METER_QUOTA;
		}
		zero = 0;
		if (!CAS(&s->lock, &zero, tid)) {
			/* another worker is leasing: wait for it, or take over
			 * from one that died holding the lock */
			if (zero != 0 && kill(zero, 0) == -1 && errno == ESRCH)
				CAS(&s->lock, &zero, 0);
			else if (zero != 0)
				shm_wait(&s->lock, zero, 100);
			grant = q;
			if (mono_ms() - start > 30000) {	/* 30 s and more */
				lease_unpin(s, c->slot);
				return METER_DB;
			}
			continue;
		}
		if (avail_take(s, q)) {
			STORE(&s->lock, 0);
			shm_wake(&s->lock);
			break;
		}
		a[0] = DBS(pool_host);
		a[1] = DBI(token);
		a[2] = DBI(rec->user_id);
		a[3] = DBI(c->unlimited);
		/*
		 * A token spending a lease within a second gets twice as much
		 * next time, so a busy token leases about once a second; one
		 * that slows down gets back to a single block.
		 */
		grow = shm_batch_grow(&s->grow, &s->leased_at, mono_ms(),
		    LEASE_FAST_MS, LEASE_GROW);
		a[4] = DBI(q);
		a[5] = DBI(lease_want(q, grow));
		a[6] = DBI(now_s());
		snprintf(op, sizeof(op), "lease:%s:%d", rec->rid, tries);
		a[7] = DBS(op);
		grant = 0;
		if (db_run(db, ST_LEASE, a, 8, NULL, NULL, NULL) != DB_OK ||
		    db_run(db, ST_LEASE_GRANT, a, 2, db_int_row, &grant, NULL) != DB_OK) {
			STORE(&s->lock, 0);
			shm_wake(&s->lock);
			lease_unpin(s, c->slot);
			log_err("lease for token %lld: %s", token, db_error(db));
			return METER_DB;
		}
		if (grant > 0 && avail_add(s, grant) == -1)
			log_err("lease of %lld for token %lld: the slot holds "
			    "all a BIGINT can; the rest goes back at the next "
			    "start", grant, token);
		STORE(&s->dry_at, grant < q ? mono_ms() : 0);
		STORE(&s->lock, 0);
		shm_wake(&s->lock);
		log_debug("DEBUG Bltcy leased %lld for token %lld", grant, token);
	}
	/* counted in inflight since lease_pin, until lease_settle */
	STORE(&s->last_use, mono_ms());
	c->lease = (int)(s - leases);
	holds[c->slot].charged = c->lease;
	charge_open(c, CH_CHARGED);
	STORE(&holds[c->slot].counted, 0);
	return METER_OK;
}

/* The request is over: usage into the ring (keep) or the lease back. */
static void
lease_settle(struct db *db, struct charge *c, int keep,
    const struct usage_end *e)
{
	struct token_lease *s;

	if (charge_slot_state(c->slot) != CH_CHARGED)
		return;
	if (keep)
		charge_keep(c, e, 0);
	s = &leases[c->lease];
	if (!keep && avail_add(s, c->rec.quota) == -1)
		log_err("req=%s refund of %lld into the lease of token %lld: "
		    "the slot holds all a BIGINT can; the rest goes back at the "
		    "next start", c->rec.rid, c->rec.quota, c->rec.token_id);
	ADD(&s->inflight, -1);
	charge_mark(c, CH_IDLE);
}

/* Lease metering owes the database nothing outside a request. */
static void
lease_worker_start(struct db *db, const int *slots, size_t n)
{
}

static void
lease_retry(struct db *db, int force)
{
}

/* ---- master side ---- */

/*
 * The leases (LEASE_SLOTS of them), and what an earlier run of this host
 * left leased given back.
 */
static int
lease_start(const char *host, size_t nslots, struct db *db)
{
	long long	 n = cfg_i(CFG_LEASE_SLOTS);
	struct dbv	 a[2];

	pool_host = host;
	nleases = n >= LEASES_MIN && n <= LEASES_MAX ? (size_t)n : LEASES;
	if ((leases = shm_map(nleases * sizeof(*leases))) == NULL ||
	    (holds = shm_map(nslots * sizeof(*holds))) == NULL)
		return -1;
	if (db == NULL)
		return 0;
	a[0] = DBS(pool_host);
	a[1] = DBI(now_s());
	if (db_run(db, MS_RECONCILE, a, 2, NULL, NULL, NULL) != DB_OK)
		log_err("reconciling leases: %s", db_error(db));
	return 0;
}

/*
 * A worker died: the lease it was counted in is let go. Its charge stands
 * if it had one; the master keeps it, and the usage writer takes it from
 * the lease.
 */
static int
lease_dead_charge(struct db *db, int slot)
{
	struct lease_hold	*h = &holds[slot];
	enum charge_state	 st = charge_slot_state(slot);
	int			 counted = LOAD(&h->counted);

	/* it died in lease_reserve, counted in a lease it had not spent from */
	if (counted > 0 && st != CH_CHARGED)
		ADD(&leases[counted - 1].inflight, -1);
	STORE(&h->counted, 0);
	if (st != CH_CHARGED)
		return 0;
	ADD(&leases[h->charged].inflight, -1);
	return 1;
}

/* Leases not used for IDLE_MS (all: every lease) given back on db. */
static void
return_idle(struct db *db, int all)
{
	int64_t	 now = mono_ms();
	size_t	 i;

	for (i = 0; i < nleases; i++) {
		struct token_lease *s = &leases[i];
		struct dbv	 a[5];
		uint64_t	 nonce[2];
		char		 op[64];
		int64_t		 give;
		int		 zero = 0;

		if (LOAD(&s->token_id) <= 0 || LOAD(&s->avail) <= 0)
			continue;
		/* idle: nothing in flight, no use and no new lease for a while
		 * (a lease just granted has not been used yet) */
		if (!all && (LOAD(&s->inflight) > 0 ||
		    now - LOAD(&s->last_use) < IDLE_MS ||
		    now - LOAD(&s->leased_at) < IDLE_MS))
			continue;
		if (!CAS(&s->lock, &zero, (int)getpid()))
			continue;
		give = __atomic_exchange_n(&s->avail, 0, __ATOMIC_ACQ_REL);
		STORE(&s->lock, 0);
		shm_wake(&s->lock);
		if (give <= 0 || db == NULL)
			continue;
		if (random_bytes(nonce, sizeof(nonce)) == -1)
			nonce[0] = nonce[1] = (uint64_t)mono_ms();
		snprintf(op, sizeof(op), "return:%016llx%016llx",
		    (unsigned long long)nonce[0], (unsigned long long)nonce[1]);
		a[0] = DBS(pool_host);
		a[1] = DBI(s->token_id);
		a[2] = DBI(give);
		a[3] = DBI(now_s());
		a[4] = DBS(op);
		if (db_run(db, MS_RETURN, a, 5, NULL, NULL, NULL) != DB_OK) {
			log_err("returning lease of token %lld: %s",
			    s->token_id, db_error(db));
			/* keep it; try again later */
			if (avail_add(s, give) == -1)
				log_err("lease of token %lld: the slot holds "
				    "all a BIGINT can; the rest goes back at "
				    "the next start", s->token_id);
		}
	}
}

/*
 * Give up the places of tokens that hold nothing here (no lease, nothing
 * in flight, no worker leasing) and were not used for IDLE_MS: a host
 * sees more tokens over its life than it has places. That costs its token
 * nothing: its next request leases anew, as it would have to anyway.
 */
static void
reclaim_idle(void)
{
	int64_t	 now = mono_ms();
	size_t	 i;

	for (i = 0; i < nleases; i++) {
		struct token_lease *s = &leases[i];
		long long	 id = LOAD(&s->token_id), old = id;
		int		 zero = 0;

		if (id <= 0 || LOAD(&s->avail) != 0 || LOAD(&s->inflight) != 0 ||
		    LOAD(&s->lock) != 0 || now - LOAD(&s->last_use) < IDLE_MS ||
		    now - LOAD(&s->leased_at) < IDLE_MS)
			continue;
		if (!CAS(&s->lock, &zero, (int)getpid()))
			continue;
		/* see lease_pin: a worker counted there now keeps the lease */
		if (__atomic_compare_exchange_n(&s->token_id, &old, LEASE_CLOSING,
		    0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
			if (__atomic_load_n(&s->inflight, __ATOMIC_SEQ_CST) != 0 ||
			    LOAD(&s->avail) != 0)
				STORE(&s->token_id, id);
			else {
				STORE(&s->grow, 0);
				STORE(&s->last_use, 0);
				STORE(&s->leased_at, 0);
				STORE(&s->dry_at, 0);
				STORE(&s->token_id, LEASE_GONE);
			}
		}
		STORE(&s->lock, 0);
		shm_wake(&s->lock);
	}
}

static void
lease_tick(struct db *db)
{
	static int64_t	 last_idle;

	if (mono_ms() - last_idle > 1000) {
		last_idle = mono_ms();
		return_idle(db, 0);
		reclaim_idle();
	}
}

/* At stop: every lease given back. */
static void
lease_shutdown(struct db *db)
{
	return_idle(db, 1);
}

const struct meter meter_lease = {
	.name = "lease",
	.prepaid = 0,
	.token_keep_ms = TOKEN_KEEP_MS,
	.available = lease_available,
	.reserve = lease_reserve,
	.durable = NULL,
	.settle = lease_settle,
	.worker_start = lease_worker_start,
	.retry = lease_retry,
	.start = lease_start,
	.dead_charge = lease_dead_charge,
	.tick = lease_tick,
	.shutdown = lease_shutdown,
};
