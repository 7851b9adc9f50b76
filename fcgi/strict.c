#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "meter.h"
#include "shared.h"
#include "sql.h"
#include "util.h"

/*
 * METERING=strict. A request's charge is one statement, made before the
 * request is forwarded: it takes the quota from the token's remain_quota
 * (unless unlimited) and the user's quota, adds it to their used
 * counters, and names the request in the thread's row of bltcy_slots
 * (host, charge slot), which is what tells later whether it applied; it
 * applies only while the token's and the channels' change counters are
 * those the request was checked at. The charger (charger.c) makes it,
 * with the charges other threads make at the same moment; it is durable
 * before the answer. Giving it back is one statement that applies only
 * while that row names the request. The charge slot (ledger.c) says
 * where the statements stand, so that the master can tell whether a
 * worker that died with one in flight was charged; a refund the database
 * could not take waits in owed.c until it is done.
 */

#define REFUND_RETRY_MS	100		/* waiting refunds are tried this often */

/* What strict metering keeps of a charge slot, in shared memory. */
struct strict_slot {
	int		 row_made;	/* its bltcy_slots row is */
};

static struct strict_slot *strict_slots;	/* never unmapped */
static const char	*pool_host;	/* this pool's instance name */
static int		 rows_made;	/* every thread's bltcy_slots row is */
static const int	*proc_slots;	/* this process's charge slots */
static size_t		 nproc_slots;
static int64_t		 refunds_at;	/* atomic: the last retry of waiting refunds */

struct slot_q {
	const char	*rid;
	int		 found;
};

static int
slot_row(void *arg, const struct dbv *c, size_t n)
{
	struct slot_q	*q = arg;

	q->found = c[0].t == DBV_STR && strcmp(c[0].s, q->rid) == 0 &&
	    c[1].t == DBV_INT && c[1].i == 0;
	return 1;
}

/*
 * Does the bltcy_slots row of charge slot slot name request rid, not
 * fenced, i.e. was its charge applied and not refunded? db is the
 * master's. 1, 0, or -1.
 */
static int
slot_names(struct db *db, int slot, const char *rid)
{
	struct dbv	 a[2];
	struct slot_q	 q = { rid, 0 };

	a[0] = DBS(pool_host);
	a[1] = DBI(slot);
	if (db_run(db, MS_SLOT, a, 2, slot_row, &q, NULL) != DB_OK)
		return -1;
	return q.found;
}

/* ---- the request path ---- */

static int64_t
strict_available(long long token_id)
{
	return 0;		/* the token's row holds all it has */
}

/*
 * The charge statement, through the charger, under this thread's
 * bltcy_slots row (made first if the worker could not make it at start).
 * DB_OK with *paid 1 or 0, or the charge may have applied.
 */
static enum db_rc
charge(struct db *db, struct charge *c, int *paid)
{
	struct strict_slot	*ss = &strict_slots[c->slot];
	struct dbv		 a[3];
	enum db_rc		 rc;

	if (!rows_made && !ss->row_made) {
		a[0] = DBS(pool_host);
		a[1] = DBI(c->slot);
		a[2] = DBI(now_s());
		if ((rc = db_run(db, ST_SLOT_INIT, a, 3, NULL, NULL, NULL)) != DB_OK)
			return rc;
		ss->row_made = 1;
	}
	charge_open(c, CH_CHARGING);
	rc = charger_charge(c, paid);
	/* an applied charge stays CH_CHARGING until it is durable */
	if (rc != DB_OK || !*paid)
		charge_mark(c, CH_IDLE);
	return rc;
}

static void
refund_of(struct refund *r, const struct charge *c)
{
	memset(r, 0, sizeof(*r));
	strlcpy_(r->rid, c->rec.rid, sizeof(r->rid));
	r->token = c->rec.token_id;
	r->user = c->rec.user_id;
	r->quota = c->rec.quota;
	r->unlimited = c->unlimited;
}

/*
 * A refund the database could not take waits under this thread's charge
 * slot (owed.c); the charge stands until it is done. The slot takes no
 * new charge meanwhile (its row must keep naming the request), and any
 * thread of the process, the process's main thread every second, or the
 * master once the process is gone, does it.
 */
static void
uncharge_later(int slot, const struct refund *r, const char *why)
{
	log_err("req=%s %s: its charge of %lld to token %lld is given back "
	    "once the database takes it", r->rid, why, r->quota, r->token);
	owed_put(slot, r);
}

/*
 * The refund waiting under charge slot slot, if one does, tried now:
 * DB_OK once none waits there (done, or given up on an error of its
 * own), DB_DOWN while the database is away.
 */
static enum db_rc
retry_refund(struct db *db, int slot)
{
	struct refund	 r;
	enum db_rc	 rc;

	if (owed_get(slot, &r) == 0)
		return DB_OK;
	rc = refund_run(db, slot, &r, 1);
	if (rc == DB_DOWN || rc == DB_CONFLICT)
		return DB_DOWN;		/* it waits on */
	/* it applies once, whichever thread tries it: one says so */
	if (owed_done(slot, r.rid)) {
		if (rc != DB_OK)
			log_err("req=%s refund failed for good: %s; its charge "
			    "of %lld to token %lld stands", r.rid, db_error(db),
			    r.quota, r.token);
		else
			log_info("req=%s delayed refund done", r.rid);
	}
	return DB_OK;
}

static enum meter_rc
strict_reserve(struct db *db, struct charge *c)
{
	struct refund	 r;
	enum db_rc	 rc;
	int		 paid = 0;

	/*
	 * A refund still waiting for the database needs this thread's slot
	 * row to keep naming its request: it is tried first, and no new
	 * charge is made until it is done.
	 */
	if (retry_refund(db, c->slot) != DB_OK)
		return METER_DB;
	if ((rc = charge(db, c, &paid)) != DB_OK) {
		/* it may have applied before the connection broke */
		if (rc == DB_DOWN) {
			refund_of(&r, c);
			uncharge_later(c->slot, &r, "the charge's outcome is "
			    "unknown");
		} else
			log_err("req=%s not charged: the charger did not apply "
			    "it", c->rec.rid);
		return METER_DB;
	}
	return paid ? METER_OK : METER_RECHECK;
}

/*
 * Before the answer: the charge's transaction committed. If the commit
 * failed it may or may not have applied: it is given back later, under
 * the slot row that names it if it did, and no charge is held.
 */
static enum meter_rc
strict_durable(struct db *db, struct charge *c)
{
	struct refund	 r;

	if (charge_slot_state(c->slot) != CH_CHARGING)
		return METER_OK;
	if (charger_durable(c->slot) == DB_OK) {
		charge_mark(c, CH_CHARGED);
		return METER_OK;
	}
	refund_of(&r, c);
	uncharge_later(c->slot, &r, "the charge's commit failed");
	charge_mark(c, CH_IDLE);
	return METER_DB;
}

/*
 * Keeping the charge, once durable, is its usage into the ring (logs
 * row, channel, task ids); giving it back is one statement.
 */
static void
strict_settle(struct db *db, struct charge *c, int keep,
    const struct usage_end *e)
{
	struct refund	 r;

	if (strict_durable(db, c) != METER_OK)
		return;		/* given back */
	if (keep) {
		if (charge_slot_state(c->slot) != CH_CHARGED)
			return;
		charge_keep(c, e, 1);
		charge_mark(c, CH_IDLE);
		return;
	}
	refund_of(&r, c);
	/* the master looks at this request if we die now */
	charge_mark(c, CH_REFUNDING);
	if (refund_run(db, c->slot, &r, 0) != DB_OK)
		uncharge_later(c->slot, &r, "the refund failed");
	charge_mark(c, CH_IDLE);
}

/* ---- a worker process ---- */

/*
 * The bltcy_slots row of every thread's charge slot, made in one
 * transaction before the threads start, so that no first charge waits
 * for a durable insert of its own. A thread whose row this could not
 * make makes it before its first charge (charge()).
 */
static void
strict_worker_start(struct db *db, const int *slots, size_t n)
{
	struct dbv	 a[3];
	size_t		 i;

	proc_slots = slots;
	nproc_slots = n;
	if (db_begin(db) != DB_OK)
		return;
	a[0] = DBS(pool_host);
	a[2] = DBI(now_s());
	for (i = 0; i < n; i++) {
		a[1] = DBI(slots[i]);
		if (db_run(db, ST_SLOT_INIT, a, 3, NULL, NULL, NULL) != DB_OK) {
			db_rollback(db);
			return;
		}
	}
	if (db_commit(db) != DB_OK)
		return;
	rows_made = 1;
}

/* Try the refunds waiting in this process's charge slots. */
static void
strict_retry(struct db *db, int force)
{
	int64_t		 now = mono_ms(), last;
	size_t		 i;

	last = __atomic_load_n(&refunds_at, __ATOMIC_RELAXED);
	if (!force && now - last < REFUND_RETRY_MS)
		return;
	if (!__atomic_compare_exchange_n(&refunds_at, &last, now, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED) && !force)
		return;		/* another thread is at it */
	for (i = 0; i < nproc_slots; i++)
		if (retry_refund(db, proc_slots[i]) == DB_DOWN)
			return;
}

/* ---- the master's side ---- */

/* Before fork: strict metering's words and the charger's. */
static int
strict_start(const char *host, size_t nslots, struct db *db)
{
	pool_host = host;
	if ((strict_slots = shm_map(nslots * sizeof(*strict_slots))) == NULL)
		return -1;
	return charger_init(host, nslots);
}

/*
 * A worker died with a charge or its refund perhaps in flight, or the
 * charger lost a commit's reply: the slot row is fenced, so that nothing
 * in flight can apply any more on any node, and then tells whether the
 * request is charged. db is the master's. 1 charged, 0 not, -1 unknown
 * (the database is unreachable).
 */
static int
fenced_charged(struct db *db, int slot, const char *rid)
{
	if (slot_fence(db, MS_SLOT_FENCE, slot, rid) != DB_OK)
		return -1;
	return slot_names(db, slot, rid);
}

/*
 * A worker died with a charge in its slot: the charger says what became
 * of one it had queued; a statement perhaps in flight, the database. A
 * charge nobody can tell of is taken as not made.
 */
static int
strict_dead_charge(struct db *db, int slot)
{
	const char		*rid = charge_slot_rec(slot)->rid;
	enum charge_state	 st = charge_slot_state(slot);

	if (st == CH_CHARGING)
		st = charger_outcome(slot);
	if (st != CH_CHARGING && st != CH_REFUNDING)
		return st == CH_CHARGED;
	switch (db != NULL ? fenced_charged(db, slot, rid) : -1) {
	case 1:
		return 1;
	case 0:
		return 0;
	default:
		log_err("req=%s: a worker died charging and the database "
		    "cannot say whether it was charged: %s", rid,
		    db ? db_error(db) : "no connection");
		return 0;
	}
}

const struct meter meter_strict = {
	.name = "strict",
	.prepaid = 1,
	.token_keep_ms = TOKEN_KEEP_CHECKED_MS,
	.available = strict_available,
	.reserve = strict_reserve,
	.durable = strict_durable,
	.settle = strict_settle,
	.worker_start = strict_worker_start,
	.retry = strict_retry,
	.process_main = charger_main,
	.start = strict_start,
	.dead_charge = strict_dead_charge,
};
