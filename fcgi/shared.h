#ifndef BLTCY_SHARED_H
#define BLTCY_SHARED_H

/*
 * The memory the master and every worker process share. Each mapping is
 * made by shm_map() in the master before it forks (metrics and circuit
 * breakers in metrics.c, the newest task ids in recent.c, the charge
 * slots in ledger.c, the usage ring in usage.c, refunds owed in owed.c,
 * strict metering's words in strict.c and charger.c, leases in
 * lease.c, open-job places in places.c, limits' counts in reqlimit.c,
 * failed token checks in throttle.c), and every access to a shared word
 * goes through the atomics below.
 */

#include <stddef.h>
#include <stdint.h>

/* A zeroed shared mapping of size bytes, or NULL. Never unmapped. */
void	*shm_map(size_t size);

/*
 * A thread that finds a shared word taken sleeps until it changes
 * (shm_wake, by the thread that changed it), or ms milliseconds at most
 * so that a holder that died is noticed: the wait of thousands of
 * threads costs no CPU, where polling would wake each every millisecond.
 */
void	 shm_wait(int *word, int seen, int ms);
void	 shm_wake(int *word);

/*
 * How much a batch taken from the database (a lease, open-job places)
 * asks for: twice the last when the last was taken less than fast_ms
 * ago (at most max), half when more than five times that; so a busy
 * taker goes to the database about once every fast_ms. *grow and *at
 * (mono ms of the last take) are shared words, updated here.
 */
int64_t	 shm_batch_grow(int64_t *grow, int64_t *at, int64_t now,
	    int64_t fast_ms, int64_t max);

#define LOAD(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ADD(p, v)	__atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define CAS(p, o, n)	__atomic_compare_exchange_n((p), (o), (n), 0, \
			    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

#endif
