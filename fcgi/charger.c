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
#include "meter.h"
#include "shared.h"
#include "signals.h"
#include "sql.h"
#include "util.h"

/*
 * Strict metering's charger (meter.h): one process per host with two
 * database connections, which makes every charge of the host's request
 * threads. A thread puts its charge in the group-commit words of its
 * charge slot (struct gc_slot, in shared memory) and wakes the charger,
 * which applies every charge waiting in the open transaction of one of
 * its connections: charges to one token at the same change counters in
 * one statement (ST_CHARGE_GROUP, up to GROUP_STMT of them: the token's
 * and user's rows once for all, and each thread's bltcy_slots row naming
 * its own request), others alone (ST_CHARGE). Each thread learns at once
 * whether its charge applied: its rows are changed and locked, so no
 * other charge can spend the same quota, and it forwards. That
 * transaction is committed as soon as the other connection's commit is
 * done, while the other connection takes the next charges in a
 * transaction of its own; a thread waits for its charge's commit only
 * before it answers (charger_durable). So a commit costs a request
 * nothing while the upstream works, and a disk that takes its time over
 * one (a durable commit waits for the disk) does not hold charges up.
 *
 * On a Galera cluster a transaction can lose at its COMMIT, to one of
 * another node (certification): there the charger tells a thread its
 * charge applied only once it is committed, so that no request goes
 * upstream on a charge that may yet be undone. A transaction that lost a
 * conflict, at a statement or at its COMMIT, applied nothing: its charges
 * go back in the queue and are applied again in the next transaction,
 * until each thread's patience (CHARGE_PATIENCE_MS) runs out. A charge
 * whose COMMIT reply was lost may or may not have applied; the thread
 * gives it back under its fenced slot row (strict.c), which decides.
 *
 * InnoDB releases a transaction's row locks when its commit begins,
 * before the log is flushed, so the next transaction does not wait for
 * the flush. Row locks are taken in one order within a statement, and in
 * strict mode nothing else on the host locks a token's or user's row for
 * longer than one statement (the usage writer leaves them alone), so the
 * charger's open transaction cannot take part in a deadlock on this host.
 */

#define GROUP_MAX	256		/* strict charges per batch */
/* a charge waits this long to be applied, taken again after conflicts */
#define CHARGE_PATIENCE_MS	5000

/* Where a thread's charge is (struct gc_slot's state). */
enum {
	GC_NONE,
	GC_QUEUED,	/* for the charger to take */
	GC_TAKEN,	/* in a statement */
	GC_APPLIED,	/* applied in a transaction not yet committed */
	GC_REFUSED,	/* did not apply (quota, or changed rows) */
	GC_PAID,	/* applied and committed */
	GC_UNDONE,	/* the database failed: it did not apply */
	GC_FAILED,	/* the database failed: it may or may not apply */
};

/* A charge slot's group-commit words, and the charge it queued. */
struct gc_slot {
	int		 state;		/* GC_* */
	int		 wake;		/* futex word: +1 to wake the thread */
	int		 result;	/* GC_APPLIED or GC_REFUSED, in a batch */
	int		 leader;	/* thread of the charger that took it */
	int64_t		 since;		/* mono_ms when the thread queued it */
	char		 rid[40];
	long long	 user, token, quota;
	long long	 at;		/* epoch seconds */
	int		 unlimited;
	long long	 chan_version;	/* the change counters the token and */
	long long	 auth_version;	/* the channels were read at */
};

/* The words every charge slot's thread and the charger share. */
struct gc_board {
	int		 seq;		/* futex word: +1 when a charge is queued */
	int		 hi;		/* highest slot that ever queued one */
};

static struct gc_slot	*gc_slots;	/* one per charge slot; never unmapped */
static size_t		 ngc_slots;
static struct gc_board	*board;
static const char	*pool_host;	/* this pool's instance name */

int
charger_init(const char *host, size_t nslots)
{
	pool_host = host;
	if ((board = shm_map(sizeof(*board))) == NULL ||
	    (gc_slots = shm_map(nslots * sizeof(*gc_slots))) == NULL)
		return -1;
	ngc_slots = nslots;
	return 0;
}

static void
futex_wake(int *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static void
gc_wake(struct gc_slot *w)
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
same_charge(const struct gc_slot *a, const struct gc_slot *b)
{
	return a->token == b->token && a->user == b->user &&
	    a->unlimited == b->unlimited &&
	    a->chan_version == b->chan_version &&
	    a->auth_version == b->auth_version;
}

static int
before(const struct gc_slot *a, const struct gc_slot *b)
{
	if (a->token != b->token)
		return a->token < b->token;
	if (a->user != b->user)
		return a->user < b->user;
	if (a->chan_version != b->chan_version)
		return a->chan_version < b->chan_version;
	if (a->auth_version != b->auth_version)
		return a->auth_version < b->auth_version;
	return a->unlimited < b->unlimited;
}

/* ---- a request thread's side ---- */

/*
 * While w is queued (also again, after a conflict) past the charge's
 * patience, take it back: 1 if this call did, and nothing applied.
 */
static int
give_up(struct gc_slot *w, const char *rid)
{
	int	 q = GC_QUEUED;

	if (mono_ms() - w->since < CHARGE_PATIENCE_MS ||
	    !CAS(&w->state, &q, GC_NONE))
		return 0;
	log_err("req=%s: the charger did not apply the charge in %d s",
	    rid, CHARGE_PATIENCE_MS / 1000);
	return 1;
}

#define IN(s)	(1u << (s))	/* a state's bit in gc_wait's mask */

/*
 * Sleep on w while it is in one of the states in mask (IN(GC_*) | ...),
 * until the charger moves it on; the state it ends in, or GC_NONE when
 * it was given up before anything applied.
 */
static int
gc_wait(struct gc_slot *w, unsigned int mask, const char *rid)
{
	int	 st, seq;

	for (;;) {
		seq = LOAD(&w->wake);
		st = LOAD(&w->state);
		if (!(mask & IN(st)))
			return st;
		if (!gc_sleep(&w->wake, seq, 100))
			continue;
		if (st == GC_QUEUED && give_up(w, rid))
			return GC_NONE;
		if ((st == GC_TAKEN || st == GC_APPLIED) && gone(w->leader))
			CAS(&w->state, &st, GC_FAILED);
	}
}

enum db_rc
charger_charge(const struct charge *c, int *paid)
{
	struct gc_slot	*w = &gc_slots[c->slot];
	int		 hi, st;

	*paid = 0;
	strlcpy_(w->rid, c->rec.rid, sizeof(w->rid));
	w->user = c->rec.user_id;
	w->token = c->rec.token_id;
	w->quota = c->rec.quota;
	w->at = c->rec.at;
	w->unlimited = c->unlimited;
	w->chan_version = c->chan_version;
	w->auth_version = c->auth_version;
	w->since = mono_ms();
	for (hi = LOAD(&board->hi); hi < c->slot &&
	    !CAS(&board->hi, &hi, c->slot);)
		;
	STORE(&w->state, GC_QUEUED);
	ADD(&board->seq, 1);
	futex_wake(&board->seq);
	st = gc_wait(w, IN(GC_QUEUED) | IN(GC_TAKEN), c->rec.rid);
	if (st != GC_APPLIED && st != GC_PAID)
		STORE(&w->state, GC_NONE);
	*paid = st == GC_APPLIED || st == GC_PAID;
	return st == GC_FAILED ? DB_DOWN : st == GC_NONE || st == GC_UNDONE ?
	    DB_ERR : DB_OK;
}

enum db_rc
charger_durable(int slot)
{
	struct gc_slot	*w = &gc_slots[slot];
	int		 st;

	/* applied, or taken again after its transaction lost a conflict */
	st = gc_wait(w, IN(GC_APPLIED) | IN(GC_QUEUED) | IN(GC_TAKEN), w->rid);
	STORE(&w->state, GC_NONE);
	return st == GC_PAID ? DB_OK : DB_DOWN;
}

/* ---- the master's side ---- */

/*
 * Withdraw a dead worker's charge while queued; otherwise wait (at most
 * 5 s) for its commit.
 */
enum charge_state
charger_outcome(int slot)
{
	struct gc_slot	*w = &gc_slots[slot];
	int		 q, st, tries;

	for (tries = 0; tries < 5000; tries++) {
		q = GC_QUEUED;
		if (CAS(&w->state, &q, GC_NONE))
			return CH_IDLE;		/* nothing applied */
		if (q == GC_NONE)
			return CH_CHARGING;
		if ((q != GC_TAKEN && q != GC_APPLIED) || gone(w->leader))
			break;
		usleep(1000);
	}
	st = __atomic_exchange_n(&w->state, GC_NONE, __ATOMIC_ACQ_REL);
	if (st == GC_PAID)
		return CH_CHARGED;
	if (st == GC_REFUSED || st == GC_UNDONE || st == GC_QUEUED)
		return CH_IDLE;
	return CH_CHARGING;
}

/* ---- the charger ---- */

/* One of the charger's connections, and the charges its transaction holds. */
struct conn {
	struct db	*db;
	int		 in_tx;		/* a transaction is open */
	int		 committing;	/* atomic */
	size_t		 n;		/* charges applied in it */
	struct gc_slot	**w;		/* and their slots: room for all */
	int		 lost;		/* transactions lost in a row */
};

static struct charger {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cv;
	struct conn	 c[2];
	int		 open;		/* the connection that takes charges */
	int		 stop;		/* atomic */
	int		 galera;	/* atomic: 1 on a Galera cluster (a
					   charge is told only once committed),
					   0 not, -1 not known yet */
} charger = { .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER, .galera = -1 };

/* One charge alone: ST_CHARGE. */
static enum db_rc
gc_one(struct db *db, struct gc_slot *w)
{
	struct dbv		 a[20];
	unsigned long long	 changed = 0;
	enum db_rc		 rc;

	a[0] = DBI(w->user);
	a[1] = DBS(pool_host);
	a[2] = DBI(w - gc_slots);
	a[3] = DBI(w->unlimited);
	a[4] = a[5] = a[6] = a[7] = DBI(w->quota);
	a[8] = DBS(w->rid);
	a[9] = a[10] = DBI(w->at);
	a[11] = DBI(w->token);
	a[12] = DBS(w->rid);
	a[13] = DBI(w->unlimited);
	a[14] = a[15] = DBI(w->quota);
	a[16] = DBI(w->chan_version);
	a[17] = DBI(w->auth_version);
	a[18] = a[19] = DBI(w->quota);
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
group_sum(struct gc_slot *const *b, size_t n, long long *sum)
{
	long long	 s = 0;
	size_t		 i;

	for (i = 0; i < n; i++)
		if (quota_add(&s, b[i]->quota) == -1)
			return -1;
	*sum = s;
	return 0;
}

/* Charges b[0..n) of one token together, or one by one if they cannot. */
static enum db_rc
gc_many(struct db *db, struct gc_slot **b, size_t n)
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
		    "BIGINT holds: charged one by one", n, b[0]->token);
		goto alone;
	}
	/* the places of ST_CHARGE_GROUP's arguments, for G slots */
	a[0] = DBI(b[0]->user);
	a[1] = DBS(pool_host);
	a[2 + G] = DBI(b[0]->unlimited);
	a[3 + G] = a[4 + G] = a[5 + G] = a[6 + G] = DBI(sum);
	a[7 + G] = DBI(n);
	a[8 + 3 * G] = a[9 + 3 * G] = DBI(b[0]->at);
	a[10 + 3 * G] = DBI(b[0]->token);
	a[11 + 4 * G] = DBI(b[0]->unlimited);
	a[12 + 4 * G] = a[13 + 4 * G] = DBI(sum);
	a[14 + 4 * G] = DBI(b[0]->chan_version);
	a[15 + 4 * G] = DBI(b[0]->auth_version);
	a[16 + 4 * G] = a[17 + 4 * G] = DBI(sum);
	a[18 + 4 * G] = DBI(n);
	for (k = 0; k < G; k++) {	/* short lists repeat the first */
		struct gc_slot *w = b[k < n ? k : 0];
		a[2 + k] = a[8 + G + k] = DBI(w - gc_slots);
		a[8 + 2 * G + k] = a[11 + 3 * G + k] = DBS(w->rid);
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
sort_charges(struct gc_slot **b, size_t n)
{
	struct gc_slot	*t;
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
take(struct gc_slot **b, int tid)
{
	size_t		 n = 0;
	int		 k, hi = LOAD(&board->hi);

	for (k = 0; k <= hi && n < GROUP_MAX; k++) {
		struct gc_slot	*w = &gc_slots[k];
		int		 q = GC_QUEUED;

		if (LOAD(&w->state) != GC_QUEUED)
			continue;
		w->leader = tid;
		if (CAS(&w->state, &q, GC_TAKEN))
			b[n++] = w;
	}
	sort_charges(b, n);
	return n;
}

static void
settle_one(struct gc_slot *w, int st)
{
	STORE(&w->state, st);
	gc_wake(w);
}

/* The transaction of c is over: every charge it held ends at st. */
static void
settle_all(struct conn *c, int st)
{
	for (size_t i = 0; i < c->n; i++)
		settle_one(c->w[i], st);
	c->n = 0;
	c->in_tx = 0;
}

/*
 * The transaction of c applied nothing (it lost a conflict, or its
 * connection broke before COMMIT): what it held, and b[0..n), go back in
 * the queue for the next transaction. The threads keep waiting.
 */
static void
requeue(struct conn *c, struct gc_slot **b, size_t n)
{
	size_t	 i;

	for (i = 0; i < c->n; i++)
		STORE(&c->w[i]->state, GC_QUEUED);
	for (i = 0; i < n; i++)
		STORE(&b[i]->state, GC_QUEUED);
	c->n = 0;
	c->in_tx = 0;
	c->lost++;
	ADD(&board->seq, 1);
}

/* Is the server a Galera node? Asked once, in c's first transaction. */
static void
ask_galera(struct conn *c)
{
	long long	 on = 0;

	if (LOAD(&charger.galera) != -1)
		return;
	/* a server without the variable is no Galera node */
	if (db_run(c->db, ST_WSREP_ON, NULL, 0, db_int_row, &on, NULL) ==
	    DB_DOWN)
		return;
	STORE(&charger.galera, on != 0);
	if (on)
		log_info("charger: a Galera cluster: a charge is committed "
		    "before its request is forwarded");
}

/* The charges b[0..n) in c's transaction, begun if need be. */
static enum db_rc
run_charges(struct conn *c, struct gc_slot **b, size_t n)
{
	enum db_rc	 rc;
	size_t		 i, j;

	rc = c->in_tx ? DB_OK : db_begin(c->db);
	c->in_tx = rc == DB_OK;
	if (rc == DB_OK)
		ask_galera(c);
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
 * the transaction whole (we roll back what a lock wait timeout left).
 * After a conflict or a broken connection nothing of it applied: its
 * charges and b are queued again. Another error ends them all undone
 * (their requests answer 503, charged nothing; in forward-on-apply
 * metering those already told have been forwarded).
 */
static void
apply(struct conn *c, struct gc_slot **b, size_t n)
{
	enum db_rc	 rc;
	size_t		 i;

	if ((rc = run_charges(c, b, n)) != DB_OK) {
		log_err("%zu charges, %zu before them in the transaction: %s",
		    n, c->n, db_error(c->db));
		if (c->in_tx)
			db_rollback(c->db);
		if (rc == DB_CONFLICT || rc == DB_DOWN) {
			requeue(c, b, n);
			return;
		}
		settle_all(c, GC_UNDONE);
		for (i = 0; i < n; i++)
			settle_one(b[i], GC_UNDONE);
		return;
	}
	for (i = 0; i < n; i++) {
		if (b[i]->result != GC_APPLIED) {
			settle_one(b[i], GC_REFUSED);
			continue;
		}
		c->w[c->n++] = b[i];
		/* on Galera it stays GC_TAKEN until its commit */
		if (LOAD(&charger.galera) != 1)
			settle_one(b[i], GC_APPLIED);
	}
	c->lost = 0;
	/* a charge refused still locked the rows it looked at */
	if (c->in_tx && c->n == 0) {
		db_rollback(c->db);
		c->in_tx = 0;
	}
}

/*
 * Commit c's transaction. A COMMIT that lost a conflict applied nothing:
 * its charges are queued again. One whose reply was lost may or may not
 * have applied: its threads learn so, and each gives its charge back
 * under its fenced slot row.
 */
static void
commit(struct conn *c)
{
	size_t		 held = c->n;
	enum db_rc	 rc = db_commit(c->db);

	if (rc == DB_OK) {
		c->lost = 0;
		settle_all(c, GC_PAID);
		return;
	}
	if (rc == DB_CONFLICT) {
		log_warn("committing %zu charges lost a conflict: applying "
		    "them again", held);
		requeue(c, NULL, 0);
		return;
	}
	log_err("committing %zu charges: %s", held, db_error(c->db));
	settle_all(c, GC_FAILED);
}

/*
 * A connection's thread. While its connection is the open one it takes
 * the charges waiting; it commits them as soon as the other connection
 * is not committing, and the other takes the charges from then on.
 */
static void *
conn_main(void *arg)
{
	struct gc_slot	*b[GROUP_MAX];
	struct conn	*c = arg, *other = &charger.c[c == &charger.c[0]];
	int		 i = c == &charger.c[1], seq;
	int		 tid = (int)syscall(SYS_gettid);
	size_t		 n;

	for (;;) {
		int	 mine;

		pthread_mutex_lock(&charger.mu);
		while (charger.open != i && !LOAD(&charger.stop))
			pthread_cond_wait(&charger.cv, &charger.mu);
		mine = charger.open == i;
		pthread_mutex_unlock(&charger.mu);
		if (!mine)
			break;		/* stopping */
		for (;;) {
			if (c->n > 0 && !LOAD(&other->committing))
				break;
			seq = LOAD(&board->seq);
			if ((n = take(b, tid)) > 0) {
				apply(c, b, n);
				/* lost again: let the winner finish first */
				if (c->lost > 0)
					db_backoff(c->lost - 1);
				continue;
			}
			if (LOAD(&charger.stop) && !LOAD(&other->committing))
				break;
			gc_sleep(&board->seq, seq, 100);
		}
		/* the other connection takes charges while these commit */
		STORE(&c->committing, 1);
		pthread_mutex_lock(&charger.mu);
		charger.open = !i;
		pthread_cond_broadcast(&charger.cv);
		pthread_mutex_unlock(&charger.mu);
		if (c->in_tx)
			commit(c);
		STORE(&c->committing, 0);
		ADD(&board->seq, 1);
		futex_wake(&board->seq);
		if (LOAD(&charger.stop))
			break;	/* the other finishes what is left */
	}
	/* let the other one see the stop */
	pthread_mutex_lock(&charger.mu);
	charger.open = !i;
	pthread_cond_broadcast(&charger.cv);
	pthread_mutex_unlock(&charger.mu);
	return NULL;
}

/*
 * The charger process: its two connections' threads, and the main
 * thread, which takes the signals. It stops on SIGTERM, once nothing is
 * queued or held (the master sends it after the workers are gone).
 */
int
charger_main(const struct dsn *dsn)
{
	pthread_t	 t[2];
	sigset_t	 want;
	int		 i, started = 0;

	prctl(PR_SET_NAME, "bltcy-charger");	/* for ps and top */
	signals_block(&want);
	for (i = 0; i < 2; i++)
		if ((charger.c[i].db = db_new(dsn, relay_sql, ST__MAX,
		    DB_NO_AUTOCOMMIT)) == NULL ||
		    (charger.c[i].w = calloc(ngc_slots, sizeof(*charger.c[i].w))) ==
		    NULL) {
			log_err("charger: cannot start: out of memory");
			return 1;
		}
	for (i = 0; i < 2; i++) {
		if (pthread_create(&t[i], NULL, conn_main, &charger.c[i]) != 0) {
			log_err("charger: thread: %s", strerror(errno));
			break;
		}
		started++;
	}
	while (started == 2) {
		struct timespec	 second = { 1, 0 };

		if (signals_wait(&want, &second))
			break;
		db_follow_idle();
	}
	STORE(&charger.stop, 1);
	pthread_mutex_lock(&charger.mu);
	pthread_cond_broadcast(&charger.cv);
	pthread_mutex_unlock(&charger.mu);
	ADD(&board->seq, 1);
	futex_wake(&board->seq);
	for (i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 2; i++)
		db_free(charger.c[i].db);
	log_flush();
	return started == 2 ? 0 : 1;
}

