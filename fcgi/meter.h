#ifndef BLTCY_METER_H
#define BLTCY_METER_H

/*
 * Metering: how a request's quota is charged. METERING picks one of two
 * modes, each a struct meter:
 *
 *   strict (strict.c)	one statement charges the token and its user
 *			before the request is forwarded, made by the
 *			charger process (charger.c) with the charges other
 *			threads make at the same moment; it is durable
 *			before the answer; giving it back is one statement
 *   lease (lease.c)	quota leased from the database in blocks and
 *			spent from shared memory, without a round trip
 *
 * A request holds its charge as a value (struct charge), from reserve to
 * settle. What both modes share, each in a file of its own:
 *
 *   ledger.c	a charge slot in shared memory for every request thread,
 *		where the charge in flight and where it stands are seen by
 *		the master, which settles it if the worker dies
 *   usage.c	the ring that kept charges go through, and the master's
 *		writer of it (logs rows, used counters, task ids, batches)
 *   owed.c	strict refunds that wait for the database, also across a
 *		restart
 *
 * Calls go one way: request.c and worker.c call a mode; a mode calls the
 * ledger (strict metering also owed.c and the charger); the ledger calls
 * usage.c, owed.c the ledger; the master (master.c) calls all of them,
 * and nothing calls back.
 */

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "fieldlimits.h"

struct db;
struct dsn;

/*
 * How long a worker uses a token row it read (cache.c): strict
 * metering's charge checks the change counters again in its statement,
 * so there a row is kept for a minute; lease metering spends without a
 * statement, so there a row is kept for 2 s.
 */
#define TOKEN_KEEP_CHECKED_MS	60000
#define TOKEN_KEEP_MS		2000

/* A settled request on its way to the database (the usage ring). */
struct usage {
	uint64_t	 ready;		/* ring position + 1 once written */
	char		 rid[40];	/* the request id */
	long long	 user_id, token_id, channel_id;
	long long	 quota;
	long long	 at;		/* when it was charged, epoch seconds */
	long long	 use_time;	/* seconds the request took */
	int		 recovered;	/* kept by the master: its worker died */
	int		 prepaid;	/* strict: token and user already charged */
	char		 method[16];
	char		 path[160];
	char		 ip[48];
	char		 username[LIM_BYTES(LIM_USERNAME)];
	char		 token_name[LIM_BYTES(LIM_TOKEN_NAME)];
	char		 group[LIM_BYTES(LIM_LOG_GROUP)];
	char		 service[32];
	char		 task_ids[256];	/* comma-separated */
	char		 model[64];	/* what it was priced as (price.h) */
	char		 key_hash[17];	/* which key of the channel (tasks) */
	int		 places;	/* the open-job places its first task
					   holds (places.h: PLACE_*) */
};

/* How a kept request ended: what its usage record takes on. */
struct usage_end {
	long long	 channel;	/* the channel that answered */
	long long	 use_time;	/* seconds */
	const char	*tasks;		/* the task ids its answer named */
	const char	*key_hash;	/* the key it went with (task polling) */
};

/*
 * One request's charge, owned by the request (struct req): the caller
 * fills in slot, rec, unlimited and the counters before reserve; the
 * mode adds its own state.
 */
struct charge {
	int		 held;		/* reserve made it; settle ends it */
	int		 slot;		/* its request thread's charge slot */
	struct usage	 rec;		/* what its logs row will say */
	int		 unlimited;	/* the token's quota is unlimited */
	long long	 chan_version;	/* the change counters the token and */
	long long	 auth_version;	/* the channels were read at */
	int		 lease;		/* lease: the token's lease spent from */
};

/* What reserve made of a charge. */
enum meter_rc {
	METER_OK,	/* charged */
	METER_QUOTA,	/* too little quota: refuse */
	METER_RECHECK,	/* not charged: too little quota, or the token's or
			   the channels' rows changed since they were read
			   (strict); read them afresh and try once more */
	METER_DB,	/* the database is down or cannot say; a charge
			   that may have applied is given back later */
};

struct meter {
	const char	*name;		/* as METERING says it */
	int		 prepaid;	/* a charge writes the token's and
					   user's counters itself (strict) */
	int64_t		 token_keep_ms;	/* how long a worker may use a token
					   row it read (tokcache_init) */

	/* ---- a request thread, in the order of a request ---- */

	/* What the token holds on this host beyond its row's remain_quota
	 * (lease: what is left of its lease here; strict: 0). */
	int64_t		(*available)(long long token_id);
	/*
	 * Charge c->rec's quota to its token and user, at the change
	 * counters in c. Only METER_OK leaves a charge, which settle ends.
	 * db is the worker process's connection.
	 */
	enum meter_rc	(*reserve)(struct db *, struct charge *c);
	/*
	 * Before the first byte of an answer while a charge is held: wait
	 * until it is durable (strict: its transaction committed; NULL if
	 * it always is once reserve returns). METER_OK, or METER_DB when it
	 * may or may not be: then no charge is held any more (one that may
	 * have applied is given back) and the answer is the gateway's 503.
	 */
	enum meter_rc	(*durable)(struct db *, struct charge *c);
	/*
	 * The request is over: keep the charge (the answer was < 400; the
	 * usage record goes to the writer with the channel that answered,
	 * the seconds it took and the task ids its answer named) or give it
	 * back.
	 */
	void		(*settle)(struct db *, struct charge *c, int keep,
			    const struct usage_end *);

	/* ---- a worker process ---- */

	/* Before its request threads start, with their charge slots
	 * (strict: their bltcy_slots rows, in one transaction). */
	void		(*worker_start)(struct db *, const int *slots, size_t n);
	/* Any thread: what waits for the database (strict: refunds in this
	 * process's charge slots); at most every 100 ms unless force. */
	void		(*retry)(struct db *, int force);

	/* ---- the master (master.c calls these; NULL if none) ---- */

	/*
	 * A process of the mode's own (strict: the charger), forked by the
	 * master before the workers and again whenever it dies, stopped
	 * with SIGTERM once the workers are gone. Its exit status.
	 */
	int		(*process_main)(const struct dsn *);
	/* At start, before any worker: the mode's own shared memory for the
	 * pool named host with nslots charge slots, and what an earlier run
	 * of this host left (lease: its leases given back, on db, the
	 * master's). 0, or -1 if a mapping failed. */
	int		(*start)(const char *host, size_t nslots, struct db *);
	/* The worker holding charge slot slot is gone: undo what the mode
	 * held for it, and say whether its charge stands (1) or not (0). */
	int		(*dead_charge)(struct db *, int slot);
	/* On the master's clock, after the usage writer; at stop, after the
	 * ring is written. */
	void		(*tick)(struct db *);
	void		(*shutdown)(struct db *);
};

extern const struct meter	 meter_strict, meter_lease;
extern const struct meter	*meter;		/* the mode in use (ledger.c) */

/*
 * Every sum of quota (a group of charges, a batch's counters, a lease)
 * is made with these: a sum that wrapped would turn a charge into a
 * credit of the token. *sum + q (quota_add) or a * b (quota_mul) into
 * *out: 0, or -1 with *out as it was when the result would leave the
 * range of a BIGINT.
 */
static inline int
quota_add(long long *sum, long long q)
{
	long long	 s;

	if (__builtin_add_overflow(*sum, q, &s))
		return -1;
	*sum = s;
	return 0;
}

static inline int
quota_mul(long long *out, long long a, long long b)
{
	long long	 m;

	if (__builtin_mul_overflow(a, b, &m))
		return -1;
	*out = m;
	return 0;
}

/* ---- ledger.c: the charge slots ---- */

/*
 * Where a charge slot stands. A mode marks where its statements are, so
 * that the master can tell whether a worker that died with one in flight
 * was charged.
 */
enum charge_state {
	CH_FREE = 0,		/* no request thread has it */
	CH_IDLE = -1,		/* a thread's, no charge */
	CH_OWED = -2,		/* its worker is gone, a refund waits (owed.c) */
	CH_CHARGED = 1,		/* charged */
	CH_CHARGING = 2,	/* the charge statement may be in flight */
	CH_REFUNDING = 3,	/* the refund statement may be in flight */
};

/* Master, before fork: nslots charge slots (at least 64; the caller
 * counts every thread of every worker, with room for a generation
 * finishing while the next starts). 0, or -1 if the mapping failed. */
int	 ledger_init(size_t nslots);
size_t	 ledger_slots(void);
int	 charge_slot_take(void);		/* master: a free one, or -1 */
/*
 * Master: the worker of slot is gone. A charge that stands (the mode
 * says) is kept, once, marked recovered (prepaid as the mode is); the
 * slot is then free, or held while a refund waits under it.
 */
void	 charge_slot_gone(int slot, int stands, int prepaid, int refund_waits);
void	 charge_slot_hold(int slot);		/* CH_OWED */
void	 charge_slot_free(int slot);		/* CH_FREE */
enum charge_state charge_slot_state(int slot);
const struct usage *charge_slot_rec(int slot);	/* its charge in flight */

/* A request thread: c's record into its slot, now standing at st. */
void	 charge_open(const struct charge *c, enum charge_state st);
/* A request thread: c's slot now stands at st. */
void	 charge_mark(const struct charge *c, enum charge_state st);
/*
 * A request thread: c is kept: its record, with the channel that
 * answered, the seconds it took and the task ids, into the usage ring
 * (waiting for room while the master is behind).
 */
void	 charge_keep(struct charge *c, const struct usage_end *, int prepaid);

/* ---- usage.c: the usage ring and its writer ---- */

/*
 * Settled requests waiting for the DB: room for every request thread of
 * the default pool (4 x 1,024) to finish at once.
 */
#define RING		4096

/* Master, before fork: the ring of the pool named host. 0, or -1. */
int	 usage_init(const char *host);
/*
 * Push rec into the ring: 0, or -1 when it is full. ring_pos (NULL from
 * the master) gets the position + 1 before the record is written, so
 * that the master finishes the write if the worker dies in it.
 */
int	 usage_push(const struct usage *rec, uint64_t *ring_pos);
/* The ring was full: sleep until the master writes some of it (100 ms at
 * most), without a turn on the CPU meanwhile. */
void	 usage_wait_room(void);
/* Master: the write of rec at ring_pos a dead worker began, finished. */
void	 usage_push_finish(const struct usage *rec, uint64_t ring_pos);
/* Master, on its clock and when the ring is half full: what the ring
 * holds written on db, the master's connection (master_sql). */
void	 usage_write(struct db *);
/* At stop: everything written, trying for up to 5 s. */
void	 usage_drain(struct db *);
uint64_t usage_backlog(void);		/* records not written yet */
/*
 * The usage writer is stuck: the ring is full, or its oldest record has
 * waited more than USAGE_STUCK_MS (health answers 503 then).
 */
#define USAGE_STUCK_MS	10000
int	 usage_writer_stuck(int64_t now_ms);
/* Usage records the database refused, kept in bltcy_usage_rejected. */
uint64_t usage_rejected_total(void);

/* ---- owed.c: strict refunds waiting for the database ---- */

/*
 * A refund the database could not take yet. It applies only while the
 * charge slot's bltcy_slots row names the request, so trying it again is
 * safe, also when the charge it undoes never happened.
 */
struct refund {
	char		 rid[40];
	long long	 token, user, quota;
	int		 unlimited;
};

/* Master, before fork: a place per charge slot, and the refunds an
 * earlier run of the pool named host left (their slots held). 0, or -1. */
int	 owed_init(const char *host, size_t nslots);
/*
 * The refund statement (relay_sql's ST_UNCHARGE) of r under charge slot
 * slot: it applies only while the slot's row names the request. unsure:
 * whether the charge applied is not known (a lost reply, a dead
 * process): the slot row is fenced first, so that the charge cannot
 * apply after the refund found nothing to give back.
 */
enum db_rc refund_run(struct db *, int slot, const struct refund *r,
	    int unsure);
/*
 * Fence charge slot slot's row for request rid with statement stmt
 * (relay_sql's ST_SLOT_FENCE or master_sql's MS_SLOT_FENCE; see
 * schema/020_fence.sql): once it returns DB_OK, a charge of rid in flight
 * anywhere can no longer apply, and the row names rid unfenced if and only
 * if it did.
 */
enum db_rc slot_fence(struct db *, size_t stmt, int slot, const char *rid);
/* A request thread: r waits under slot until it is done. */
void	 owed_put(int slot, const struct refund *r);
/* The refund waiting under slot, if one does (1), into *r (not NULL). */
int	 owed_get(int slot, struct refund *r);
int	 owed_waiting(int slot);
/* Done (or given up), if it is still rid: 1 when this call said so. */
int	 owed_done(int slot, const char *rid);
/* Master: the refunds of gone workers tried; how many still wait. */
size_t	 owed_settle(const struct dsn *);
/* At stop: tried once more; what is left kept for the next start. */
void	 owed_shutdown(const struct dsn *);

/* ---- charger.c: strict metering's group commit ---- */

/* Master, before fork: the words the request threads and the charger
 * share, for nslots charge slots, of the pool named host. 0, or -1. */
int	 charger_init(const char *host, size_t nslots);
/*
 * A request thread: charge c through the charger. DB_OK with *paid 1
 * (applied: the answer waits for charger_durable) or 0 (it did not
 * apply: quota, or changed rows); DB_DOWN when it may or may not have
 * applied, as after a lost reply; DB_ERR when it did not apply and
 * cannot (no charger took it in time, or the database refused it).
 */
enum db_rc charger_charge(const struct charge *c, int *paid);
/* Wait until the charge charger_charge applied is committed: DB_OK, or
 * DB_DOWN when it may or may not be. */
enum db_rc charger_durable(int slot);
/*
 * Master: a worker died with a charge with the charger: CH_CHARGED,
 * CH_IDLE, or CH_CHARGING when only the database can tell.
 */
enum charge_state charger_outcome(int slot);
int	 charger_main(const struct dsn *);

#endif
