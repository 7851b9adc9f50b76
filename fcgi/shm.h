#ifndef BLTCY_SHM_H
#define BLTCY_SHM_H

/*
 * The mapping the master and its workers share for metering (lease.c):
 * lease slots per token, the usage ring, and a slot per worker holding
 * its charge in flight, which strict metering's group commit (charge.c)
 * also works on. Private to those two files.
 */

#include <stdint.h>

#include "relay.h"
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

/* A strict refund the database could not take yet (worker.c's pending). */
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
	int		 gc;		/* group commit state (charge.c) */
	int		 wake;		/* futex word: +1 to wake the worker */
	int		 result;	/* GC_PAID or GC_REFUSED, in a batch */
	int		 unlimited;	/* the queued charge's token is */
	long long	 cv, av;	/* counters the token was read at */
	int		 gleader;	/* pid of the worker that took it */
	unsigned long	 gconn;		/* and that worker's connection */
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
	int		 gc_lock;	/* tid of the thread committing charges */
	int		 gc_hi;		/* highest wslot that ever queued one */
};

extern struct lshm	*L;
extern __thread struct wslot *me;	/* this thread's slot, or NULL */
extern const char	*lhost;		/* this pool's instance name */
extern __thread int	 mypid;		/* this thread's id (gettid) */

/* charge.c: what the group commit says of a dead worker's charge */
int	 group_outcome(struct wslot *);

#endif
