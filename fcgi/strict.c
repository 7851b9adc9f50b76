#include <linux/futex.h>
#include <sys/syscall.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "log.h"
#include "relay.h"
#include "shm.h"

/*
 * METERING=strict. A request's charge is one durable statement, made
 * before the request is forwarded: it takes the quota from the token's
 * remain_quota (unless unlimited) and the user's quota, adds it to their
 * used counters, and names the request in the thread's row of bltcy_slots
 * (host, charge slot), which is what tells later whether it applied; it
 * applies only while the token's and the channels' change counters are
 * those the request was checked at. Giving it back is one statement that
 * applies only while that row names the request. The charge slot in
 * shared memory (ledger.c) says where the statements stand, so that the
 * master can tell whether a worker that died with one in flight was
 * charged, and holds a refund the database could not take until it is
 * done.
 */

#define GROUP_MAX	256		/* strict charges per batch */
#define GROUP_STMT	32		/* of one token in one statement (sql.c) */
#define REFUND_RETRY_MS	100		/* waiting refunds are tried this often */

static int		 slots_made;	/* every thread's bltcy_slots row is */
static __thread int	 slot_ready;	/* this thread's is */
static const int	*pwslots;	/* this process's charge slots */
static size_t		 npwslots;
static int64_t		 refunds_at;	/* atomic: the last retry of waiting refunds */

/* Where a worker's charge is in the group commit (struct wslot's gc). */
enum { GC_NONE, GC_QUEUED, GC_TAKEN, GC_PAID, GC_REFUSED, GC_FAILED };

/*
 * Strict metering's group commit. A worker puts its charge in its slot;
 * whichever worker holds gc_lock applies every charge waiting there, and
 * the others sleep until it is done with theirs, or hands the lock on.
 * Charges to one token at the same change counters go in one statement
 * (ST_CHARGE_GROUP, up to GROUP_STMT of them): the token's and user's
 * rows are updated once for all, and each worker's slot row names its own
 * request, so what tells whether a charge applied stays the same as for
 * a single charge. A busy token's row is thus locked, and a commit made
 * durable, once per batch instead of once per request.
 */
static void
gc_wake(struct wslot *w)
{
	ADD(&w->wake, 1);
	syscall(SYS_futex, &w->wake, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Sleep until woken; 1 if 10 ms passed without a wake. */
static int
gc_sleep(int *word, int val)
{
	struct timespec	 ts = { 0, 10 * 1000 * 1000 };

	return syscall(SYS_futex, word, FUTEX_WAIT, val, &ts, NULL, 0) == -1 &&
	    errno == ETIMEDOUT;
}

static int
gone(int pid)
{
	return pid != 0 && kill(pid, 0) == -1 && errno == ESRCH;
}

static int
same_charge(const struct wslot *a, const struct wslot *b)
{
	return a->rec.token_id == b->rec.token_id && a->rec.user_id == b->rec.user_id &&
	    a->unlimited == b->unlimited && a->cv == b->cv && a->av == b->av;
}

static int
before(const struct wslot *a, const struct wslot *b)
{
	if (a->rec.token_id != b->rec.token_id)
		return a->rec.token_id < b->rec.token_id;
	if (a->rec.user_id != b->rec.user_id)
		return a->rec.user_id < b->rec.user_id;
	if (a->cv != b->cv)
		return a->cv < b->cv;
	if (a->av != b->av)
		return a->av < b->av;
	return a->unlimited < b->unlimited;
}

struct slot_q {
	const char	*rid;
	int		 found;
};

static int
slot_row(void *arg, const struct dbv *c, size_t n)
{
	struct slot_q	*q = arg;

	(void)n;
	q->found = c[0].t == DBV_STR && strcmp(c[0].s, q->rid) == 0;
	return 1;
}

/*
 * Does the row of charge slot slot name request rid, i.e. was its charge
 * applied and not refunded? st selects "SELECT req FROM bltcy_slots WHERE
 * host = ? AND slot = ?" in db's statement table. 1, 0, or -1.
 */
static int
slot_names(struct db *db, size_t st, int slot, const char *rid)
{
	struct dbv	 a[2];
	struct slot_q	 q = { rid, 0 };

	a[0] = DBS(lhost);
	a[1] = DBI(slot);
	if (db_run(db, st, a, 2, slot_row, &q, NULL) != DB_OK)
		return -1;
	return q.found;
}

/*
 * A statement that changed nothing, run alone in autocommit: db_run runs
 * it again after a lost reply, so w's slot row tells whether the first
 * run applied. Sets *changed to 1 if it did.
 */
static enum db_rc
lost_reply(struct db *db, const struct wslot *w, unsigned long long *changed)
{
	switch (slot_names(db, ST_SLOT, (int)(w - L->w), w->rec.rid)) {
	case 1:
		*changed = 1;
		return DB_OK;
	case 0:
		return DB_OK;
	default:
		return DB_DOWN;
	}
}

/* One charge alone: ST_CHARGE. */
static enum db_rc
gc_one(struct db *db, struct wslot *w, int alone)
{
	struct dbv		 a[17];
	const struct usage	*u = &w->rec;
	unsigned long long	 changed = 0;
	enum db_rc		 rc;

	a[0] = DBI(u->user_id);
	a[1] = DBS(lhost);
	a[2] = DBI(w - L->w);
	a[3] = DBI(w->unlimited);
	a[4] = a[5] = a[6] = a[7] = DBI(u->quota);
	a[8] = DBS(u->rid);
	a[9] = DBI(u->at);
	a[10] = DBI(u->token_id);
	a[11] = DBS(u->rid);
	a[12] = DBI(w->unlimited);
	a[13] = a[14] = DBI(u->quota);
	a[15] = DBI(w->cv);
	a[16] = DBI(w->av);
	rc = db_run(db, ST_CHARGE, a, 17, NULL, NULL, &changed);
	if (rc == DB_OK && changed == 0 && alone)
		rc = lost_reply(db, w, &changed);
	w->result = changed > 0 ? GC_PAID : GC_REFUSED;
	return rc;
}

/* Charges b[0..n) of one token together, or one by one if they cannot. */
static enum db_rc
gc_many(struct db *db, struct wslot **b, size_t n, int alone)
{
	struct dbv		 a[15 + 4 * GROUP_STMT];
	unsigned long long	 changed = 0;
	long long		 sum = 0;
	enum db_rc		 rc;
	size_t			 i, k;
	const size_t		 G = GROUP_STMT;

	if (n == 1)
		return gc_one(db, b[0], alone);
	for (i = 0; i < n; i++)
		sum += b[i]->rec.quota;
	/* the places of ST_CHARGE_GROUP's arguments, for G slots */
	a[0] = DBI(b[0]->rec.user_id);
	a[1] = DBS(lhost);
	a[2 + G] = DBI(b[0]->unlimited);
	a[3 + G] = a[4 + G] = a[5 + G] = a[6 + G] = DBI(sum);
	a[7 + G] = DBI(n);
	a[8 + 3 * G] = DBI(b[0]->rec.at);
	a[9 + 3 * G] = DBI(b[0]->rec.token_id);
	a[10 + 4 * G] = DBI(b[0]->unlimited);
	a[11 + 4 * G] = a[12 + 4 * G] = DBI(sum);
	a[13 + 4 * G] = DBI(b[0]->cv);
	a[14 + 4 * G] = DBI(b[0]->av);
	for (k = 0; k < G; k++) {	/* short lists repeat the first */
		struct wslot *w = b[k < n ? k : 0];
		a[2 + k] = a[8 + G + k] = DBI(w - L->w);
		a[8 + 2 * G + k] = a[10 + 3 * G + k] = DBS(w->rec.rid);
	}
	rc = db_run(db, ST_CHARGE_GROUP, a, 15 + 4 * G, NULL, NULL, &changed);
	/* token, user and n slot rows; anything else would mean the server
	 * checked the quota again after changing the token's row */
	if (rc == DB_OK && changed > 0 && changed != n + 2)
		log_err("a charge group of %zu changed %llu rows", n, changed);
	if (rc == DB_OK && changed == 0 && alone)
		rc = lost_reply(db, b[0], &changed);
	if (rc == DB_OK && changed > 0) {
		for (i = 0; i < n; i++)
			b[i]->result = GC_PAID;
		return DB_OK;
	}
	/* not all can pay (or the rows changed): each on its own */
	for (i = 0; rc == DB_OK && i < n; i++)
		rc = gc_one(db, b[i], alone);
	return rc;
}

/* Take every queued charge and apply them. */
static void
gc_lead(struct db *db)
{
	struct wslot	*b[GROUP_MAX], *t;
	unsigned long	 conn = db_conn_id(db);
	enum db_rc	 rc;
	size_t		 n = 0, i, j, runs;
	int		 k, hi = LOAD(&L->gc_hi), tries;

	for (k = 0; k <= hi && n < GROUP_MAX; k++) {
		struct wslot	*w = &L->w[k];
		int		 q = GC_QUEUED;

		if (LOAD(&w->gc) != GC_QUEUED)
			continue;
		w->gleader = mypid;
		w->gconn = conn;
		if (CAS(&w->gc, &q, GC_TAKEN))
			b[n++] = w;
	}
	if (n == 0)
		return;
	/* one order of rows for every batch, so that batches cannot deadlock */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && before(b[j], b[j - 1]); j--) {
			t = b[j];
			b[j] = b[j - 1];
			b[j - 1] = t;
		}
	for (runs = 1, i = 1; i < n; i++)
		if (!same_charge(b[i], b[i - 1]))
			runs++;
	for (tries = 0;; tries++) {
		int alone = runs == 1 && n <= GROUP_STMT;

		rc = alone ? DB_OK : db_begin(db);
		for (i = 0; rc == DB_OK && i < n; i = j) {
			for (j = i + 1; j < n && j - i < GROUP_STMT &&
			    same_charge(b[j], b[i]); j++)
				;
			rc = gc_many(db, b + i, j - i, alone);
		}
		if (!alone) {
			if (rc == DB_OK)
				rc = db_commit(db);
			if (rc != DB_OK)
				db_rollback(db);
		}
		/* a deadlock victim's transaction is undone whole: again */
		if (rc != DB_ERR || alone || tries == 2)
			break;
	}
	if (rc != DB_OK)
		log_err("%zu charges: %s", n, db_error(db));
	for (i = 0; i < n; i++) {
		int taken = GC_TAKEN;

		/* unless the master gave up waiting for it (a stuck batch) */
		if (CAS(&b[i]->gc, &taken, rc == DB_OK ? b[i]->result :
		    GC_FAILED) && b[i] != me)
			gc_wake(b[i]);
	}
}

/*
 * Charge rec (strict metering) through the group commit, at the change
 * counters the worker read token and channels at. DB_OK with *paid 1
 * (charged) or 0 (it did not apply: quota, or changed rows); otherwise the
 * charge may or may not have applied, as after a lost reply.
 */
static enum db_rc
charge_commit(struct db *db, const struct usage *rec, int unlimited,
    long long chan_version, long long auth_version, int *paid)
{
	int	 st, hi, k, seq, slow = 0;

	*paid = 0;
	charge_state(rec, CH_CHARGING, 0);
	me->unlimited = unlimited;
	me->cv = chan_version;
	me->av = auth_version;
	k = (int)(me - L->w);
	for (hi = LOAD(&L->gc_hi); hi < k && !CAS(&L->gc_hi, &hi, k);)
		;
	STORE(&me->gc, GC_QUEUED);
	for (;;) {
		int	 holder = 0;

		seq = LOAD(&me->wake);
		st = LOAD(&me->gc);
		if (st >= GC_PAID)
			break;
		if (st == GC_QUEUED && CAS(&L->gc_lock, &holder, mypid)) {
			gc_lead(db);
			/* a full barrier: a worker that queued and found the
			 * lock taken is seen queued below */
			__atomic_store_n(&L->gc_lock, 0, __ATOMIC_SEQ_CST);
			hi = LOAD(&L->gc_hi);
			for (k = 0; k <= hi; k++)
				if (LOAD(&L->w[k].gc) == GC_QUEUED) {
					gc_wake(&L->w[k]);	/* to lead next */
					break;
				}
			continue;
		}
		/* nothing for 10 ms: is whoever we wait for still alive? */
		if (slow && st == GC_QUEUED && gone(holder))
			CAS(&L->gc_lock, &holder, 0);
		if (slow && st == GC_TAKEN && gone(me->gleader)) {
			log_err("req=%s: the worker committing this charge "
			    "died", rec->rid);
			st = GC_FAILED;
			break;
		}
		slow = gc_sleep(&me->wake, seq);
	}
	me->conn = me->gconn;
	STORE(&me->gc, GC_NONE);
	*paid = st == GC_PAID;
	return st == GC_FAILED ? DB_DOWN : DB_OK;
}

/*
 * A worker died with its charge in the group commit: withdraw it while
 * still queued; otherwise wait (at most 5 s) for the batch that took it.
 * CH_CHARGED, CH_IDLE, or CH_CHARGING when only the database can tell,
 * its conn then being the connection that ran the batch.
 */
static int
group_outcome(struct wslot *w)
{
	int	 q = GC_QUEUED, st, tries;

	if (CAS(&w->gc, &q, GC_NONE))
		return CH_IDLE;
	if (q == GC_NONE)
		return CH_CHARGING;
	for (tries = 0; tries < 5000; tries++) {
		if (LOAD(&w->gc) != GC_TAKEN || gone(w->gleader))
			break;
		usleep(1000);
	}
	st = __atomic_exchange_n(&w->gc, GC_NONE, __ATOMIC_ACQ_REL);
	if (st == GC_PAID)
		return CH_CHARGED;
	if (st == GC_REFUSED)
		return CH_IDLE;
	w->conn = w->gconn;
	return CH_CHARGING;
}

/* ---- the request path ---- */

static int64_t
strict_available(long long token_id)
{
	return 0;		/* the token's row holds all it has */
}

/*
 * The charge statement, through the group commit, under this thread's
 * bltcy_slots row (made first if the worker could not make it at start).
 * DB_OK with *paid 1 or 0, or the charge may have applied.
 */
static enum db_rc
charge(struct db *db, const struct usage *rec, int unlimited,
    long long chan_version, long long auth_version, int *paid)
{
	struct dbv	 a[3];
	enum db_rc	 rc;

	if (!slots_made && !slot_ready) {
		a[0] = DBS(lhost);
		a[1] = DBI(me - L->w);
		a[2] = DBI(now_s());
		if ((rc = db_run(db, ST_SLOT_INIT, a, 3, NULL, NULL, NULL)) != DB_OK)
			return rc;
		slot_ready = 1;
	}
	rc = charge_commit(db, rec, unlimited, chan_version, auth_version, paid);
	charge_state(NULL, rc == DB_OK && *paid ? CH_CHARGED : CH_IDLE, 0);
	return rc;
}

static void
refund_of(struct owed *p, const struct usage *rec, int unlimited)
{
	memset(p, 0, sizeof(*p));
	strlcpy_(p->rid, rec->rid, sizeof(p->rid));
	p->token = rec->token_id;
	p->user = rec->user_id;
	p->quota = rec->quota;
	p->unlimited = unlimited;
}

/*
 * The refund statement, under the charge slot whose row names the
 * request; DB_OK once it is done (or was done before).
 */
static enum db_rc
uncharge(struct db *db, int wslot, const struct owed *p, int in_flight)
{
	struct dbv	 a[11];

	a[0] = DBI(p->user);
	a[1] = DBS(lhost);
	a[2] = DBI(wslot);
	a[3] = DBI(p->unlimited);
	a[4] = a[5] = a[6] = a[7] = DBI(p->quota);
	a[8] = DBI(now_s());
	a[9] = DBI(p->token);
	a[10] = DBS(p->rid);
	/* the master looks at this request if we die now */
	if (in_flight)
		charge_state(NULL, CH_REFUNDING, db_conn_id(db));
	return db_run(db, ST_UNCHARGE, a, 11, NULL, NULL, NULL);
}

/*
 * A refund the database could not take waits in this thread's charge
 * slot in shared memory; the charge stands until it is done. The slot
 * takes no new charge meanwhile (its row must keep naming the request),
 * and any thread of the process, the process's main thread every second,
 * or the master once the process is gone, does it.
 */
static void
uncharge_later(struct db *db, const struct owed *p)
{
	log_err("req=%s refund failed: %s; will retry", p->rid, db_error(db));
	refund_owed(p->rid, p->token, p->user, p->quota, p->unlimited);
}

static enum meter_rc
strict_reserve(struct db *db, const struct usage *rec, int unlimited,
    long long chan_version, long long auth_version)
{
	struct owed	 p;
	enum db_rc	 rc;
	int		 paid = 0;

	/*
	 * A refund still waiting for the database (retry does it first)
	 * needs this thread's slot row to keep naming its request: no new
	 * charge until it is done.
	 */
	if (refund_waiting((int)(me - L->w), NULL, NULL, NULL, NULL, NULL))
		return METER_DB;
	if ((rc = charge(db, rec, unlimited, chan_version, auth_version,
	    &paid)) != DB_OK) {
		log_err("req=%s charge: %s", rec->rid, db_error(db));
		/* it may have applied before the connection broke */
		refund_of(&p, rec, unlimited);
		if (rc == DB_DOWN)
			uncharge_later(db, &p);
		return METER_DB;
	}
	return paid ? METER_OK : METER_RECHECK;
}

/*
 * The charge was complete when it was made: keeping it is its usage into
 * the ring (logs row, channel, task ids); giving it back is one statement.
 */
static void
strict_settle(struct db *db, int keep, long long channel, long long use_time,
    const char *tasks)
{
	struct owed	 p;

	if (keep) {
		if (me == NULL || LOAD(&me->active) != CH_CHARGED)
			return;
		usage_keep(channel, use_time, tasks);
		STORE(&me->active, CH_IDLE);
		return;
	}
	refund_of(&p, &me->rec, me->unlimited);
	if (uncharge(db, (int)(me - L->w), &p, 1) != DB_OK)
		uncharge_later(db, &p);
	charge_state(NULL, CH_IDLE, 0);
}

/* ---- a worker process ---- */

/*
 * The bltcy_slots row of every thread's charge slot, made in one
 * transaction before the threads start, so that no first charge waits
 * for a durable insert of its own. A thread whose row this could not
 * make makes it before its first charge (charge()).
 */
static void
strict_worker_start(struct db *db, const int *wslots, size_t n)
{
	struct dbv	 a[3];
	size_t		 i;

	pwslots = wslots;
	npwslots = n;
	if (db_begin(db) != DB_OK)
		return;
	a[0] = DBS(lhost);
	a[2] = DBI(now_s());
	for (i = 0; i < n; i++) {
		a[1] = DBI(wslots[i]);
		if (db_run(db, ST_SLOT_INIT, a, 3, NULL, NULL, NULL) != DB_OK) {
			db_rollback(db);
			return;
		}
	}
	if (db_commit(db) != DB_OK)
		return;
	slots_made = 1;
}

/* Try the refunds waiting in this process's charge slots. */
static void
strict_retry(struct db *db, int force)
{
	struct owed	 p;
	int64_t		 now = mono_ms(), last;
	size_t		 i;

	last = __atomic_load_n(&refunds_at, __ATOMIC_RELAXED);
	if (!force && now - last < REFUND_RETRY_MS)
		return;
	if (!__atomic_compare_exchange_n(&refunds_at, &last, now, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED) && !force)
		return;		/* another thread is at it */
	for (i = 0; i < npwslots; i++) {
		enum db_rc	 rc;

		if (refund_waiting(pwslots[i], p.rid, &p.token, &p.user,
		    &p.quota, &p.unlimited) == 0)
			continue;
		if ((rc = uncharge(db, pwslots[i], &p, 0)) == DB_DOWN)
			return;
		if (rc != DB_OK)
			log_err("req=%s refund failed for good: %s", p.rid,
			    db_error(db));
		else
			log_info("req=%s delayed refund done", p.rid);
		refund_settled(pwslots[i], p.rid);
	}
}

/* ---- master side ---- */

/*
 * A worker died with its charge or refund statement perhaps in flight.
 * Once its connection is gone from the server nothing more can apply, and
 * its slot's row tells whether it is charged. db is the master's. Returns
 * 1 charged, 0 not, -1 unknown (database unreachable).
 */
static int
dead_worker_charged(struct db *db, struct wslot *w, int wslot)
{
	struct dbv	 a[1];
	long long	 n = 1;
	int		 tries;

	a[0] = DBI(w->conn);
	for (tries = 0; tries < 100 && n > 0 && w->conn != 0; tries++) {
		if (db_run(db, MS_CONN, a, 1, int_row, &n, NULL) != DB_OK)
			return -1;
		if (n > 0)
			usleep(50000);
	}
	if (n > 0)
		log_warn("WARN req=%s: the dead worker's connection %lu is still "
		    "open after 5 s", w->rec.rid, w->conn);
	return slot_names(db, MS_SLOT, wslot, w->rec.rid);
}

/*
 * A worker died with a charge in its slot: the group commit says what
 * became of one it had queued; a statement perhaps in flight, the
 * database. A charge nobody can tell of is taken as not made.
 */
static int
strict_dead_charge(const struct dsn *dsn, int wslot)
{
	struct wslot	*w = &L->w[wslot];
	struct db	*db;
	int		 st = LOAD(&w->active);

	if (st == CH_CHARGING)
		st = group_outcome(w);
	if (st != CH_CHARGING && st != CH_REFUNDING)
		return st == CH_CHARGED;
	db = master_db(dsn);
	switch (db != NULL ? dead_worker_charged(db, w, wslot) : -1) {
	case 1:
		return 1;
	case 0:
		return 0;
	default:
		log_err("req=%s: a worker died charging and the database "
		    "cannot say whether it was charged: %s", w->rec.rid,
		    db ? db_error(db) : "no connection");
		return 0;
	}
}

const struct meter meter_strict = {
	.name = "strict",
	.prepaid = 1,
	.checks_rows = 1,
	.available = strict_available,
	.reserve = strict_reserve,
	.settle = strict_settle,
	.worker_start = strict_worker_start,
	.retry = strict_retry,
	.start = NULL,
	.dead_charge = strict_dead_charge,
	.tick = NULL,
	.shutdown = NULL,
};
