#include <stdint.h>
#include <time.h>

#include "config.h"
#include "relay.h"
#include "shared.h"

/*
 * Failed token checks per client address, across the workers of a host:
 * a token bucket per address of RELAY_AUTH_FAIL_BURST failures, refilled
 * at RELAY_AUTH_FAIL_RATE a second. Kept as one "theoretical arrival
 * time" per address (GCRA): each failure moves it one interval later;
 * an address whose time is more than a burst ahead of now has no failure
 * left. One 64-bit word changes with a compare-and-swap, so no lock is
 * held (and none is left behind by a worker that dies).
 *
 * The table is a fixed shared mapping made by the master before it forks.
 * An address takes a slot near its hash; when the slots there are all
 * taken, the one closest to a full bucket (the least information) gives
 * way. A clash of two addresses' 64-bit hashes shares a bucket.
 */

#define TH_SLOTS	8192
#define TH_PROBE	8

struct th_slot {
	uint64_t	 addr;		/* hash of the address; 0: free */
	int64_t		 tat;		/* mono microseconds */
};

static struct th_slot	*tab;

int
throttle_init(void)
{
	return (tab = shm_map(TH_SLOTS * sizeof(*tab))) == NULL ? -1 : 0;
}

static int64_t
mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t
addr_hash(const char *addr)
{
	uint64_t	 h = fnv1a(FNV1A_INIT, addr);

	return h != 0 ? h : 1;
}

/* Microseconds a failure takes from the bucket. */
static int64_t
interval(void)
{
	long long	 rate = cfg_i(CFG_RELAY_AUTH_FAIL_RATE);

	return rate >= 1 && rate <= 1000000 ? 1000000 / rate : 1000000;
}

/*
 * The slot of addr, or NULL. With claim, a slot is taken for it when it
 * has none (NULL only when another thread took that slot just then).
 */
static struct th_slot *
find(uint64_t h, int claim)
{
	struct th_slot	*s, *best = NULL;
	uint64_t	 a;
	int64_t		 t, best_tat = INT64_MAX;
	size_t		 i, k;

	for (k = 0; k < TH_PROBE; k++) {
		i = (size_t)((h + k) % TH_SLOTS);
		s = &tab[i];
		if ((a = LOAD(&s->addr)) == h)
			return s;
		t = a == 0 ? INT64_MIN : LOAD(&s->tat);
		if (t < best_tat) {
			best = s;
			best_tat = t;
		}
	}
	if (!claim || best == NULL)
		return NULL;
	a = LOAD(&best->addr);
	if (!CAS(&best->addr, &a, h))
		return NULL;
	STORE(&best->tat, 0);		/* a full bucket */
	return best;
}

/*
 * Has addr used up its failed checks? 0 no; 1 yes, with the seconds until
 * it has one again in *retry_s.
 */
int
throttle_over(const char *addr, int *retry_s)
{
	struct th_slot	*s;
	int64_t		 burst = cfg_i(CFG_RELAY_AUTH_FAIL_BURST), ahead, wait;

	*retry_s = 0;
	if (tab == NULL || burst == 0 || (s = find(addr_hash(addr), 0)) == NULL)
		return 0;
	ahead = LOAD(&s->tat) - mono_us();
	if ((wait = ahead - (burst - 1) * interval()) <= 0)
		return 0;
	*retry_s = (int)((wait + 999999) / 1000000);
	return 1;
}

/* addr failed a token check. */
void
throttle_failed(const char *addr)
{
	struct th_slot	*s;
	int64_t		 burst = cfg_i(CFG_RELAY_AUTH_FAIL_BURST);
	int64_t		 now, t, next, step;

	if (tab == NULL || burst == 0 ||
	    (s = find(addr_hash(addr), 1)) == NULL)
		return;
	step = interval();
	now = mono_us();
	t = LOAD(&s->tat);
	do {
		next = (t > now ? t : now) + step;
		/* never further ahead than an empty bucket */
		if (next > now + burst * step)
			next = now + burst * step;
	} while (!CAS(&s->tat, &t, next));
}
