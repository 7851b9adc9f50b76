#include <linux/futex.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "db.h"
#include "dsn.h"
#include "log.h"
#include "relay.h"
#include "shm.h"
#include "signals.h"
#include "util.h"

/*
 * METERING=strict. A request's charge is one statement, made before the
 * request is forwarded: it takes the quota from the token's remain_quota
 * (unless unlimited) and the user's quota, adds it to their used
 * counters, and names the request in the thread's row of bltcy_slots
 * (host, charge slot), which is what tells later whether it applied; it
 * applies only while the token's and the channels' change counters are
 * those the request was checked at. It is durable before the answer.
 * Giving it back is one statement that applies only while that row names
 * the request. The charge slot in shared memory (ledger.c) says where the
 * statements stand, so that the master can tell whether a worker that
 * died with one in flight was charged, and holds a refund the database
 * could not take until it is done.
 *
 * The charges are made by the charger, one process per host with two
 * database connections. A request thread puts its charge in its slot and
 * wakes the charger, which applies every charge waiting in the open
 * transaction of one of its connections: charges to one token at the same
 * change counters in one statement (ST_CHARGE_GROUP, up to GROUP_STMT of
 * them: the token's and user's rows once for all, and each thread's slot
 * row naming its own request), others alone (ST_CHARGE). Each thread
 * learns at once whether its charge applied: its rows are changed and
 * locked, so no other charge can spend the same quota, and it forwards.
 * That transaction is committed as soon as the other connection's commit
 * is done, while the other connection takes the next charges in a
 * transaction of its own; a thread waits for its charge's commit only
 * before it answers (strict_durable). So a commit costs a request nothing
 * while the upstream works, and a disk that takes its time over one (a
 * durable commit waits for the disk) does not hold charges up.
 *
 * InnoDB releases a transaction's row locks when its commit begins,
 * before the log is flushed, so the next transaction does not wait for
 * the flush. Row locks are taken in one order within a statement, and in
 * strict mode nothing else on the host locks a token's or user's row for
 * longer than one statement (the usage writer leaves them alone), so the
 * charger's open transaction cannot take part in a deadlock on this host.
 */

#define GROUP_MAX	256		/* strict charges per batch */
#define GROUP_STMT	32		/* of one token in one statement (sql.c) */
#define REFUND_RETRY_MS	100		/* waiting refunds are tried this often */
#define NO_CHARGER_MS	5000		/* a charge waits this long to be taken */

static int		 slots_made;	/* every thread's bltcy_slots row is */
static __thread int	 slot_ready;	/* this thread's is */
static const int	*pwslots;	/* this process's charge slots */
static size_t		 npwslots;
static int64_t		 refunds_at;	/* atomic: the last retry of waiting refunds */

/* Where a thread's charge is (struct wslot's gc). */
enum {
	GC_NONE,
	GC_QUEUED,	/* for the charger to take */
	GC_TAKEN,	/* in a statement */
	GC_APPLIED,	/* applied in a transaction not yet committed */
	GC_REFUSED,	/* did not apply (quota, or changed rows) */
	GC_PAID,	/* applied and committed */
	GC_FAILED,	/* the database failed: it may or may not apply */
};

static void
futex_wake(int *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void
gc_wake(struct wslot *w)
{
	ADD(&w->wake, 1);
	futex_wake(&w->wake);
}

/* Sleep while *word is val, at most ms; 1 if the time ran out. */
static int
gc_sleep(int *word, int val, long ms)
{
	struct timespec	 ts = { ms / 1000, (ms % 1000) * 1000000L };

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

/* ---- a request thread's side ---- */

/*
 * Charge rec through the charger, at the change counters the thread read
 * token and channels at. DB_OK with *paid 1 (applied: the answer waits
 * for strict_durable) or 0 (it did not apply: quota, or changed rows);
 * DB_DOWN when it may or may not have applied, as after a lost reply;
 * DB_ERR when no charger took it (nothing applied).
 */
static enum db_rc
charge_commit(const struct usage *rec, int unlimited, long long chan_version,
    long long auth_version, int *paid)
{
	int	 k, hi, st, seq, waited = 0;

	*paid = 0;
	charge_state(rec, CH_CHARGING, 0);
	me->unlimited = unlimited;
	me->cv = chan_version;
	me->av = auth_version;
	k = (int)(me - L->w);
	for (hi = LOAD(&L->gc_hi); hi < k && !CAS(&L->gc_hi, &hi, k);)
		;
	STORE(&me->gc, GC_QUEUED);
	ADD(&L->gc_seq, 1);
	futex_wake(&L->gc_seq);
	for (;;) {
		seq = LOAD(&me->wake);
		st = LOAD(&me->gc);
		if (st >= GC_APPLIED)
			break;
		if (!gc_sleep(&me->wake, seq, 100))
			continue;
		waited += 100;
		if (st == GC_QUEUED && waited >= NO_CHARGER_MS) {
			int q = GC_QUEUED;

			if (CAS(&me->gc, &q, GC_NONE)) {
				log_err("req=%s: no charger took the charge in "
				    "%d s", rec->rid, NO_CHARGER_MS / 1000);
				return DB_ERR;
			}
		} else if (st == GC_TAKEN && gone(me->gleader)) {
			int taken = GC_TAKEN;

			CAS(&me->gc, &taken, GC_FAILED);
		}
	}
	me->conn = me->gconn;
	if (st != GC_APPLIED && st != GC_PAID)
		STORE(&me->gc, GC_NONE);
	*paid = st == GC_APPLIED || st == GC_PAID;
	return st == GC_FAILED ? DB_DOWN : DB_OK;
}

/*
 * Wait until the charge charge_commit applied is committed: DB_OK, or
 * DB_DOWN when it may or may not be (the commit failed, or the charger
 * died). Once per charge, before its answer.
 */
static enum db_rc
charge_wait(void)
{
	int	 st, seq;

	for (;;) {
		seq = LOAD(&me->wake);
		st = LOAD(&me->gc);
		if (st != GC_APPLIED)
			break;
		if (gc_sleep(&me->wake, seq, 100) && gone(me->gleader)) {
			int applied = GC_APPLIED;

			if (CAS(&me->gc, &applied, GC_FAILED))
				st = GC_FAILED;
			break;
		}
	}
	me->conn = me->gconn;
	STORE(&me->gc, GC_NONE);
	return st == GC_FAILED ? DB_DOWN : DB_OK;
}

/*
 * A worker died with a charge with the charger: withdraw it while still
 * queued; otherwise wait (at most 5 s) for its commit. CH_CHARGED,
 * CH_IDLE, or CH_CHARGING when only the database can tell, its conn then
 * being the connection that had it (0: none was left in flight).
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
		st = LOAD(&w->gc);
		if ((st != GC_TAKEN && st != GC_APPLIED) || gone(w->gleader))
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

/* ---- the charger ---- */

/* One of the charger's connections, and the charges its transaction holds. */
struct conn {
	struct db	*db;
	int		 in_tx;		/* a transaction is open */
	int		 committing;	/* atomic */
	size_t		 n;		/* charges applied in it */
	struct wslot	**w;		/* and their slots: room for L->nw */
	struct wslot	**again;	/* room for them and a batch more */
};

static struct {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct conn	 c[2];
	int		 open;		/* the connection that takes charges */
	int		 stop;		/* atomic */
} C = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

/* One charge alone: ST_CHARGE. */
static enum db_rc
gc_one(struct db *db, struct wslot *w)
{
	struct dbv		 a[20];
	const struct usage	*u = &w->rec;
	unsigned long long	 changed = 0;
	enum db_rc		 rc;

	a[0] = DBI(u->user_id);
	a[1] = DBS(lhost);
	a[2] = DBI(w - L->w);
	a[3] = DBI(w->unlimited);
	a[4] = a[5] = a[6] = a[7] = DBI(u->quota);
	a[8] = DBS(u->rid);
	a[9] = a[10] = DBI(u->at);
	a[11] = DBI(u->token_id);
	a[12] = DBS(u->rid);
	a[13] = DBI(w->unlimited);
	a[14] = a[15] = DBI(u->quota);
	a[16] = DBI(w->cv);
	a[17] = DBI(w->av);
	a[18] = a[19] = DBI(u->quota);
	rc = db_run(db, ST_CHARGE, a, 20, NULL, NULL, &changed);
	w->result = changed > 0 ? GC_APPLIED : GC_REFUSED;
	return rc;
}

/*
 * The sum of the charges b[0..n) into *sum: 0, or -1 when it would pass
 * the largest BIGINT (then they are charged one by one, each checked
 * against the quota on its own).
 */
static int
group_sum(struct wslot *const *b, size_t n, long long *sum)
{
	long long	 s = 0;
	size_t		 i;

	for (i = 0; i < n; i++)
		if (quota_add(&s, b[i]->rec.quota) == -1)
			return -1;
	*sum = s;
	return 0;
}

/* Charges b[0..n) of one token together, or one by one if they cannot. */
static enum db_rc
gc_many(struct db *db, struct wslot **b, size_t n)
{
	struct dbv		 a[19 + 4 * GROUP_STMT];
	unsigned long long	 changed = 0;
	long long		 sum = 0;
	enum db_rc		 rc = DB_OK;
	size_t			 i, k;
	const size_t		 G = GROUP_STMT;

	if (n == 1)
		return gc_one(db, b[0]);
	if (group_sum(b, n, &sum) == -1) {
		log_warn("%zu charges to token %lld add up to more than a "
		    "BIGINT holds: charged one by one", n, b[0]->rec.token_id);
		goto alone;
	}
	/* the places of ST_CHARGE_GROUP's arguments, for G slots */
	a[0] = DBI(b[0]->rec.user_id);
	a[1] = DBS(lhost);
	a[2 + G] = DBI(b[0]->unlimited);
	a[3 + G] = a[4 + G] = a[5 + G] = a[6 + G] = DBI(sum);
	a[7 + G] = DBI(n);
	a[8 + 3 * G] = a[9 + 3 * G] = DBI(b[0]->rec.at);
	a[10 + 3 * G] = DBI(b[0]->rec.token_id);
	a[11 + 4 * G] = DBI(b[0]->unlimited);
	a[12 + 4 * G] = a[13 + 4 * G] = DBI(sum);
	a[14 + 4 * G] = DBI(b[0]->cv);
	a[15 + 4 * G] = DBI(b[0]->av);
	a[16 + 4 * G] = a[17 + 4 * G] = DBI(sum);
	a[18 + 4 * G] = DBI(n);
	for (k = 0; k < G; k++) {	/* short lists repeat the first */
		struct wslot *w = b[k < n ? k : 0];
		a[2 + k] = a[8 + G + k] = DBI(w - L->w);
		a[8 + 2 * G + k] = a[11 + 3 * G + k] = DBS(w->rec.rid);
	}
	rc = db_run(db, ST_CHARGE_GROUP, a, 19 + 4 * G, NULL, NULL, &changed);
	/* token, user and n slot rows; anything else would mean the server
	 * checked the quota again after changing the token's row */
	if (rc == DB_OK && changed > 0 && changed != n + 2)
		log_err("a charge group of %zu changed %llu rows", n, changed);
	if (rc == DB_OK && changed > 0) {
		for (i = 0; i < n; i++)
			b[i]->result = GC_APPLIED;
		return DB_OK;
	}
	/* not all can pay (or the rows changed): each on its own */
alone:
	for (i = 0; rc == DB_OK && i < n; i++)
		rc = gc_one(db, b[i]);
	return rc;
}

/* Sort b[0..n) into one order of rows. */
static void
sort_charges(struct wslot **b, size_t n)
{
	struct wslot	*t;
	size_t		 i, j;

	for (i = 1; i < n; i++)
		for (j = i; j > 0 && before(b[j], b[j - 1]); j--) {
			t = b[j];
			b[j] = b[j - 1];
			b[j - 1] = t;
		}
}

/* Take up to GROUP_MAX queued charges into b, in one order of rows. */
static size_t
take(struct wslot **b)
{
	size_t		 n = 0;
	int		 k, hi = LOAD(&L->gc_hi);

	for (k = 0; k <= hi && n < GROUP_MAX; k++) {
		struct wslot	*w = &L->w[k];
		int		 q = GC_QUEUED;

		if (LOAD(&w->gc) != GC_QUEUED)
			continue;
		w->gleader = mypid;
		w->gconn = 0;
		if (CAS(&w->gc, &q, GC_TAKEN))
			b[n++] = w;
	}
	sort_charges(b, n);
	return n;
}

static void
settle_one(struct wslot *w, int st)
{
	STORE(&w->gc, st);
	gc_wake(w);
}

/*
 * The transaction of c is over: committed (GC_PAID), or undone or unknown
 * (GC_FAILED; conn is then the connection whose commit may still apply,
 * 0 if nothing can).
 */
static void
settle_all(struct conn *c, int st, unsigned long conn)
{
	for (size_t i = 0; i < c->n; i++) {
		c->w[i]->gconn = conn;
		settle_one(c->w[i], st);
	}
	c->n = 0;
	c->in_tx = 0;
}

/* The charges b[0..n) in c's transaction, begun if need be. */
static enum db_rc
run_charges(struct conn *c, struct wslot **b, size_t n)
{
	enum db_rc	 rc;
	size_t		 i, j;

	rc = c->in_tx ? DB_OK : db_begin(c->db);
	c->in_tx = rc == DB_OK;
	for (i = 0; rc == DB_OK && i < n; i++)
		b[i]->gconn = db_conn_id(c->db);
	for (i = 0; rc == DB_OK && i < n; i = j) {
		for (j = i + 1; j < n && j - i < GROUP_STMT &&
		    same_charge(b[j], b[i]); j++)
			;
		rc = gc_many(c->db, b + i, j - i);
	}
	return rc;
}

/*
 * Apply b[0..n) in c's open transaction. A statement that fails undoes
 * the transaction whole (we roll back what a lock wait timeout left),
 * also the charges it held, whose requests are at the upstream. If the
 * server chose the transaction as a deadlock's victim, or it waited too
 * long for a lock, all of them are applied once more in a new one (the
 * rows another host held are free by then); those that no longer apply
 * fail (their requests answer 503, charged nothing). After a connection
 * that broke before the transaction held anything (the server was
 * restarted: nothing can have applied), b is tried once more.
 */
static void
apply(struct conn *c, struct wslot **b, size_t n)
{
	struct wslot	**all = c->again;
	enum db_rc	 rc;
	size_t		 i, held = 0;
	int		 err, fresh = !c->in_tx;

	if ((rc = run_charges(c, b, n)) == DB_OK)
		goto done;
	err = db_errno(c->db);
	log_err("%zu charges, %zu before them in the transaction: %s",
	    n, c->n, db_error(c->db));
	if (c->in_tx)
		db_rollback(c->db);
	c->in_tx = 0;
	if (!((rc == DB_ERR && (err == 1213 || err == 1205)) ||
	    (rc == DB_DOWN && fresh))) {
		settle_all(c, GC_FAILED, 0);
		goto done;
	}
	/* again: what the transaction held, then b, in one order */
	held = c->n;
	log_warn("applying those %zu charges again", held + n);
	memcpy(all, c->w, held * sizeof(*all));
	memcpy(all + held, b, n * sizeof(*all));
	c->n = 0;
	sort_charges(all, held + n);
	if ((rc = run_charges(c, all, held + n)) != DB_OK) {
		log_err("%zu charges tried again: %s", held + n,
		    db_error(c->db));
		if (c->in_tx)
			db_rollback(c->db);
		c->in_tx = 0;
	}
	for (i = 0; i < held + n; i++) {
		struct wslot *w = all[i];

		if (LOAD(&w->gc) != GC_APPLIED)
			continue;	/* one of b: below */
		if (rc == DB_OK && w->result == GC_APPLIED) {
			c->w[c->n++] = w;	/* as before */
			continue;
		}
		w->gconn = 0;
		settle_one(w, GC_FAILED);
	}
done:
	for (i = 0; i < n; i++) {
		int st = rc == DB_OK ? b[i]->result : GC_FAILED;

		if (rc != DB_OK)
			b[i]->gconn = 0;
		if (st == GC_APPLIED)
			c->w[c->n++] = b[i];
		settle_one(b[i], st);
	}
	/* a charge refused still locked the rows it looked at */
	if (c->in_tx && c->n == 0) {
		db_rollback(c->db);
		c->in_tx = 0;
	}
}

/*
 * A connection's thread. While its connection is the open one it takes
 * the charges waiting; it commits them as soon as the other connection
 * is not committing, and the other takes the charges from then on.
 */
static void *
conn_main(void *arg)
{
	struct wslot	*b[GROUP_MAX];
	struct conn	*c = arg, *other = &C.c[c == &C.c[0]];
	int		 i = c == &C.c[1], seq;
	size_t		 n;

	mypid = (int)syscall(SYS_gettid);
	for (;;) {
		int	 mine;

		pthread_mutex_lock(&C.mu);
		while (C.open != i && !LOAD(&C.stop))
			pthread_cond_wait(&C.cv, &C.mu);
		mine = C.open == i;
		pthread_mutex_unlock(&C.mu);
		if (!mine)
			break;		/* stopping */
		for (;;) {
			if (c->n > 0 && !LOAD(&other->committing))
				break;
			seq = LOAD(&L->gc_seq);
			if ((n = take(b)) > 0) {
				apply(c, b, n);
				continue;
			}
			if (LOAD(&C.stop) && !LOAD(&other->committing))
				break;
			gc_sleep(&L->gc_seq, seq, 100);
		}
		/* the other connection takes charges while these commit */
		STORE(&c->committing, 1);
		pthread_mutex_lock(&C.mu);
		C.open = !i;
		pthread_cond_broadcast(&C.cv);
		pthread_mutex_unlock(&C.mu);
		if (c->in_tx) {
			unsigned long	 id = db_conn_id(c->db);
			size_t		 held = c->n;
			enum db_rc	 rc = db_commit(c->db);

			if (rc != DB_OK)
				log_err("committing %zu charges: %s", held,
				    db_error(c->db));
			/* a lost reply: the commit may still apply, on id */
			settle_all(c, rc == DB_OK ? GC_PAID : GC_FAILED,
			    rc == DB_DOWN ? id : 0);
		}
		STORE(&c->committing, 0);
		ADD(&L->gc_seq, 1);
		futex_wake(&L->gc_seq);
		if (LOAD(&C.stop))
			break;	/* the other finishes what is left */
	}
	/* let the other one see the stop */
	pthread_mutex_lock(&C.mu);
	C.open = !i;
	pthread_cond_broadcast(&C.cv);
	pthread_mutex_unlock(&C.mu);
	return NULL;
}

/*
 * The charger process: its two connections' threads, and the main
 * thread, which takes the signals. It stops on SIGTERM, once nothing is
 * queued or held (the master sends it after the workers are gone).
 */
static int
charger_main(const struct dsn *dsn)
{
	pthread_t	 t[2];
	sigset_t	 want;
	int		 i, started = 0;

	prctl(PR_SET_NAME, "bltcy-charger");	/* for ps and top */
	signals_block(&want);
	for (i = 0; i < 2; i++)
		if ((C.c[i].db = db_new(dsn, relay_sql, ST__MAX,
		    DB_NO_AUTOCOMMIT)) == NULL ||
		    (C.c[i].w = calloc(L->nw, sizeof(*C.c[i].w))) == NULL ||
		    (C.c[i].again = calloc(L->nw + GROUP_MAX,
		    sizeof(*C.c[i].again))) == NULL) {
			log_err("charger: cannot start: out of memory");
			return 1;
		}
	for (i = 0; i < 2; i++) {
		if (pthread_create(&t[i], NULL, conn_main, &C.c[i]) != 0) {
			log_err("charger: thread: %s", strerror(errno));
			break;
		}
		started++;
	}
	while (started == 2 && !signals_wait(&want, NULL))
		;
	STORE(&C.stop, 1);
	pthread_mutex_lock(&C.mu);
	pthread_cond_broadcast(&C.cv);
	pthread_mutex_unlock(&C.mu);
	ADD(&L->gc_seq, 1);
	futex_wake(&L->gc_seq);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 2; i++)
		db_free(C.c[i].db);
	log_flush();
	return started == 2 ? 0 : 1;
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
	rc = charge_commit(rec, unlimited, chan_version, auth_version, paid);
	/* an applied charge stays CH_CHARGING until it is durable */
	if (rc != DB_OK || !*paid)
		charge_state(NULL, CH_IDLE, 0);
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
	/* the master looks at this request if we die now */
	if (in_flight)
		charge_state(NULL, CH_REFUNDING, db_conn_id(db));
	return refund_run(db, wslot, p);
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

/*
 * The refund waiting in charge slot wslot, if one does, tried now: DB_OK
 * once none waits there (done, or given up on an error of its own),
 * DB_DOWN while the database is away.
 */
static enum db_rc
retry_refund(struct db *db, int wslot)
{
	struct owed	 p;
	enum db_rc	 rc;

	if (refund_waiting(wslot, p.rid, &p.token, &p.user, &p.quota,
	    &p.unlimited) == 0)
		return DB_OK;
	if ((rc = uncharge(db, wslot, &p, 0)) == DB_DOWN)
		return rc;
	/* it applies once, whichever thread tries it: one says so */
	if (refund_settled(wslot, p.rid)) {
		if (rc != DB_OK)
			log_err("req=%s refund failed for good: %s", p.rid,
			    db_error(db));
		else
			log_info("req=%s delayed refund done", p.rid);
	}
	return DB_OK;
}

static enum meter_rc
strict_reserve(struct db *db, const struct usage *rec, int unlimited,
    long long chan_version, long long auth_version)
{
	struct owed	 p;
	enum db_rc	 rc;
	int		 paid = 0;

	/*
	 * A refund still waiting for the database needs this thread's slot
	 * row to keep naming its request: it is tried first, and no new
	 * charge is made until it is done.
	 */
	if (retry_refund(db, (int)(me - L->w)) != DB_OK)
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
 * Before the answer: the charge's transaction committed. If the commit
 * failed it may or may not have applied: it is given back later, under
 * the slot row that names it if it did, and no charge is held.
 */
static enum meter_rc
strict_durable(struct db *db)
{
	struct owed	 p;

	(void)db;
	if (me == NULL || LOAD(&me->active) != CH_CHARGING)
		return METER_OK;
	if (charge_wait() == DB_OK) {
		charge_state(NULL, CH_CHARGED, 0);
		return METER_OK;
	}
	log_err("req=%s: the charge's commit failed; it is given back if it "
	    "applied", me->rec.rid);
	refund_of(&p, &me->rec, me->unlimited);
	refund_owed(p.rid, p.token, p.user, p.quota, p.unlimited);
	charge_state(NULL, CH_IDLE, 0);
	return METER_DB;
}

/*
 * Keeping the charge, once durable, is its usage into the ring (logs
 * row, channel, task ids); giving it back is one statement.
 */
static void
strict_settle(struct db *db, int keep, const struct usage_end *e)
{
	struct owed	 p;

	if (strict_durable(db) != METER_OK)
		return;		/* given back */
	if (keep) {
		if (me == NULL || LOAD(&me->active) != CH_CHARGED)
			return;
		usage_keep(e);
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
	int64_t		 now = mono_ms(), last;
	size_t		 i;

	last = __atomic_load_n(&refunds_at, __ATOMIC_RELAXED);
	if (!force && now - last < REFUND_RETRY_MS)
		return;
	if (!__atomic_compare_exchange_n(&refunds_at, &last, now, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED) && !force)
		return;		/* another thread is at it */
	for (i = 0; i < npwslots; i++)
		if (retry_refund(db, pwslots[i]) == DB_DOWN)
			return;
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
	.durable = strict_durable,
	.settle = strict_settle,
	.worker_start = strict_worker_start,
	.retry = strict_retry,
	.process_main = charger_main,
	.start = NULL,
	.dead_charge = strict_dead_charge,
	.tick = NULL,
	.shutdown = NULL,
};
