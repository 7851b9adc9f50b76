#ifndef BLTCY_METER_H
#define BLTCY_METER_H

/*
 * Metering: how a request's quota is charged. METERING picks one of two
 * modes, each a struct meter:
 *
 *   strict (strict.c)	one statement charges the token and its user
 *			before the request is forwarded, made by the
 *			charger process with the charges other threads make
 *			at the same moment; it is durable before the answer;
 *			giving it back is one statement
 *   lease (lease.c)	quota leased from the database in blocks and
 *			spent from shared memory, without a round trip
 *
 * What both share is in ledger.c: a charge slot in shared memory for
 * every request thread, where the mode keeps the charge in flight so that
 * the master settles it if the worker dies; the usage ring that kept
 * charges go through; the master's writer of it (logs rows, used
 * counters, task ids, in batches); and strict refunds that wait for the
 * database. ledger.c knows a mode only by the struct meter it was started
 * with, and the modes call into ledger.c, never the other way round.
 */

#include <stddef.h>
#include <stdint.h>

#include "fieldlimits.h"

struct db;
struct dsn;

/* A settled request on its way to the database (the usage ring). */
struct usage {
	uint64_t	 ready;		/* ring position + 1 once written */
	char		 rid[40];	/* the request id */
	long long	 user_id, token_id, channel_id;
	long long	 quota;
	long long	 at;		/* when it was charged, epoch seconds */
	long long	 use_time;	/* seconds the request took */
	int		 recovered;	/* settled by recovery */
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
};

/* How a kept request ended: what its usage record takes on. */
struct usage_end {
	long long	 channel;	/* the channel that answered */
	long long	 use_time;	/* seconds */
	const char	*tasks;		/* the task ids its answer named */
	const char	*key_hash;	/* the key it went with (task polling) */
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
	int		 checks_rows;	/* the charge checks the change counters
					   again (strict): kept token rows may
					   serve for longer */

	/* ---- a request thread, in the order of a request ---- */

	/* What the token holds on this host beyond its row's remain_quota
	 * (lease: what is left of its lease here; strict: 0). */
	int64_t		(*available)(long long token_id);
	/*
	 * Charge rec's quota to its token and user, at the change counters
	 * the token and the channels were read at. Only METER_OK leaves a
	 * charge, which settle ends. db is the worker process's connection.
	 */
	enum meter_rc	(*reserve)(struct db *, const struct usage *rec,
			    int unlimited, long long chan_version,
			    long long auth_version);
	/*
	 * Before the first byte of an answer while a charge is held: wait
	 * until it is durable (strict: its transaction committed; NULL if
	 * it always is once reserve returns). METER_OK, or METER_DB when it
	 * may or may not be: then no charge is held any more (one that may
	 * have applied is given back) and the answer is the gateway's 503.
	 */
	enum meter_rc	(*durable)(struct db *);
	/*
	 * The request is over: keep the charge (the answer was < 400; the
	 * usage record goes to the writer with the channel that answered,
	 * the seconds it took and the task ids its answer named) or give it
	 * back.
	 */
	void		(*settle)(struct db *, int keep, const struct usage_end *);

	/* ---- a worker process ---- */

	/* Before its request threads start, with their charge slots
	 * (strict: their bltcy_slots rows, in one transaction). */
	void		(*worker_start)(struct db *, const int *wslots,
			    size_t n);
	/* Any thread: what waits for the database (strict: refunds in this
	 * process's charge slots); at most every 100 ms unless force. */
	void		(*retry)(struct db *, int force);

	/* ---- the master; ledger.c calls these, NULL if none ---- */

	/*
	 * A process of the mode's own (strict: the charger), forked by the
	 * master before the workers and again whenever it dies, stopped
	 * with SIGTERM once the workers are gone. Its exit status.
	 */
	int		(*process_main)(const struct dsn *);

	/* At start, before any worker: the mode's own shared memory, and
	 * what an earlier run of this host left (lease: its leases given
	 * back). 0, or -1 if a mapping failed. */
	int		(*start)(const struct dsn *);
	/* The worker holding charge slot wslot is gone: undo what the mode
	 * held for it, and say whether its charge stands (1) or not (0). */
	int		(*dead_charge)(const struct dsn *, int wslot);
	/* On the master's clock, after the usage writer; at stop, after the
	 * ring is written. */
	void		(*tick)(const struct dsn *);
	void		(*shutdown)(const struct dsn *);
};

extern const struct meter	 meter_strict, meter_lease;

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
extern const struct meter	*meter;		/* the mode in use */

/* ---- ledger.c: what both modes share ---- */

/*
 * Master, before fork: mode m for the pool named host, a charge slot for
 * each of threads request threads (at least 64; the caller counts every
 * thread of every worker, with room for a generation finishing while the
 * next starts), the usage ring, the strict refunds an earlier run left
 * owed, then m's start. 0, or -1 if a mapping failed.
 */
int	 meter_init(const struct meter *m, const char *host, size_t threads,
	    const struct dsn *);
int	 meter_worker_slot(void);		/* master: a free charge slot */
void	 meter_attach(int wslot);		/* a request thread: its own */
/* Master, on its clock and when the ring is half full: the ring written,
 * refunds owed done, then m's tick. */
void	 meter_tick(const struct dsn *);
/* Master: a worker is gone; what it had charged is kept, once, marked
 * recovered, and a refund it still owed is done by the master. */
void	 meter_worker_died(const struct dsn *, int wslot);
/* At stop: everything written, refunds still owed kept for next time. */
void	 meter_shutdown(const struct dsn *);
uint64_t usage_backlog(void);		/* records not written yet */
/*
 * The usage writer is stuck: the ring is full, or its oldest record has
 * waited more than USAGE_STUCK_MS (health answers 503 then).
 */
#define USAGE_STUCK_MS	10000
int	 usage_writer_stuck(int64_t now_ms);
/* Usage records the database refused, kept in bltcy_usage_rejected. */
uint64_t usage_rejected_total(void);

#endif
