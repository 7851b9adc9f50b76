#ifndef BLTCY_SHM_H
#define BLTCY_SHM_H

/*
 * The mapping the master and its workers share for metering: a charge
 * slot per request thread holding its charge in flight and the usage ring
 * (ledger.c), lease slots per token (lease.c), and the words of strict
 * metering's group commit (strict.c). Private to those three files, as is
 * what ledger.c lends the other two, at the end.
 */

#include <stdint.h>

#include "db.h"
#include "meter.h"
#include "shared.h"

#define SLOTS		16384		/* tokens with a lease on this host, */
#define SLOTS_MIN	64		/* by default; LEASE_SLOTS in this range */
#define SLOTS_MAX	(1 << 20)
#define RING		1024		/* settled requests waiting for the DB */

/*
 * A token's lease on this host. token_id 0 is a slot never used,
 * SLOT_GONE one given up (the token's lookups probe on past it, a new
 * token may take it), SLOT_CLOSING one the master is giving up. A worker
 * counts itself in inflight before it looks at a slot's avail, and the
 * master gives a slot up only while none is counted there (lease.c).
 */
#define SLOT_GONE	(-1)
#define SLOT_CLOSING	(-2)

struct lslot {
	long long	 token_id;	/* or 0, SLOT_GONE, SLOT_CLOSING */
	int		 lock;		/* thread id leasing more, or 0 */
	int64_t		 avail;
	int64_t		 inflight;
	int64_t		 last_use;	/* mono ms */
	int64_t		 leased_at;	/* mono ms of the last lease */
	int64_t		 grow;		/* blocks per lease, 1..LEASE_GROW */
	int64_t		 dry_at;	/* mono ms the database last had too little */
};

/*
 * A strict refund the database could not take yet. It applies only while
 * the charge slot's row names the request, so trying it again is safe,
 * also when the charge it undoes never happened.
 */
struct owed {
	char		 rid[40];
	long long	 token, user, quota;
	int		 unlimited;
};

#define W_OWED		(-2)	/* wslot active: worker gone, refund owed */

struct wslot {
	int		 active;	/* 0 free, -1 idle, W_OWED or a charge_state */
	int		 slot;		/* its lslot (lease) */
	int		 pin;		/* lslot + 1 it counts in, spending */
	unsigned long	 conn;		/* its DB connection id (strict) */
	uint64_t	 pushed;	/* ring position + 1 once pushed */
	int		 gc;		/* where its strict charge is (strict.c) */
	int		 wake;		/* futex word: +1 to wake the worker */
	int		 result;	/* GC_PAID or GC_REFUSED, in a batch */
	int		 unlimited;	/* the queued charge's token is */
	long long	 cv, av;	/* counters the token was read at */
	int		 gleader;	/* thread of the charger that took it */
	unsigned long	 gconn;		/* and that thread's connection */
	struct usage	 rec;
	int		 owing;		/* refund holds a refund still to do */
	struct owed	 refund;
};

struct lshm {
	struct lslot	*slots;		/* nslots of them, mapped apart */
	size_t		 nslots;
	uint64_t	 head, tail;
	struct usage	 ring[RING];
	int64_t		 ring_at[RING];	/* mono ms each record was pushed */
	uint64_t	 rejected;	/* records the DB refused, set aside */
	struct wslot	*w;		/* a request thread's each, all generations */
	size_t		 nw;
	int		 gc_seq;	/* futex word: +1 when a charge is queued */
	int		 gc_hi;		/* highest wslot that ever queued one */
};

/*
 * Where a charge slot's charge stands (struct wslot's active). Strict
 * metering marks where its statements are, so that the master can tell
 * whether a worker that died with one in flight was charged.
 */
enum charge_state {
	CH_IDLE = -1,		/* no charge */
	CH_CHARGING = 2,	/* the charge statement may be in flight */
	CH_CHARGED = 1,		/* charged */
	CH_REFUNDING = 3,	/* the refund statement may be in flight */
};

/* ---- ledger.c, for strict.c and lease.c ---- */

extern struct lshm	*L;
extern __thread struct wslot *me;	/* this thread's slot, or NULL */
extern const char	*lhost;		/* this pool's instance name */
extern __thread int	 mypid;		/* this thread's id (gettid) */

/*
 * This thread's charge is kept: its record, with the channel that
 * answered, the seconds it took and the task ids, into the ring (waiting
 * for room while the master is behind). me is set and charged.
 */
void	 usage_keep(const struct usage_end *);
/*
 * Strict metering: where this thread's charge statement stands. rec (may
 * be NULL to keep the one recorded) is what the master writes if the
 * worker dies charged; conn is the connection the statement runs on.
 */
void	 charge_state(const struct usage *, enum charge_state,
	    unsigned long conn);
/*
 * Strict metering: this thread's refund waiting for the database, kept in
 * shared memory so that the master does it if the worker is gone first
 * (and keeps the slot's row from being reused until it is done);
 * refund_settled once it is done, or given up.
 */
void	 refund_owed(const char *rid, long long token, long long user,
	    long long quota, int unlimited);
/* The refund waiting in a charge slot, if one does (1); its fields when
 * rid is not NULL. refund_settled: done (or given up), if it is still rid. */
int	 refund_waiting(int wslot, char rid[40], long long *token,
	    long long *user, long long *quota, int *unlimited);
int	 refund_settled(int wslot, const char *rid);	/* 1: this call did */
/* The refund statement (relay_sql's ST_UNCHARGE) of o under charge slot
 * wslot: it applies only while the slot's row names the request. */
enum db_rc refund_run(struct db *, int wslot, const struct owed *o);

/* The master's one connection, made on first use, and its statements. */
enum {
	MS_RETURN, MS_RECONCILE, MS_CONN, MS_SLOT, MS_APPLIED, MS_APPLIED_OLD,
	MS_LOG1, MS_LOG4, MS_LOG16, MS_LOG64,
	MS_TASK1, MS_TASK4, MS_TASK16, MS_TASK64,
	MS_USER, MS_CHANNEL, MS_SPENT, MS_SPENT_ALL, MS_TOKEN, MS_REJECTED,
	MS__MAX
};
struct db *master_db(const struct dsn *);

/* A one-number answer into *(long long *)arg; 0 for NULL (a db_row_fn). */
int	 int_row(void *arg, const struct dbv *, size_t);

#endif
