#include <stdint.h>
#include <time.h>

#include "config.h"
#include "shared.h"
#include "throttle.h"
#include "util.h"

/*
 * Failed token checks per client address, across the workers of a host:
 * a token bucket per address of RELAY_AUTH_FAIL_BURST failures, refilled
 * at RELAY_AUTH_FAIL_RATE a second. Kept as one "theoretical arrival
 * time" per address (GCRA): each failure moves it one interval later;
 * an address whose time is more than a burst ahead of now has no failure
 * left. One 64-bit word changes with a compare-and-swap, so no lock is
 * held (and none is left behind by a worker that dies).
 *
 * Past its burst, an address is refused (429) a lookup of any key that no
 * worker of the host has found a token for: so a client that shares its
 * address with a flood of guesses (a NAT, a proxy) keeps working with a
 * token the host has served, while the guesses cost no lookup. The 429
 * is held back a while (throttle_hold_back).
 *
 * Both tables are fixed, in one shared mapping made by the master before
 * it forks, and keyed by a 64-bit hash seeded at start (so that nobody
 * can choose addresses or keys that land on another's). An address takes
 * a slot near its hash; when the slots there are all taken, the one
 * closest to a full bucket (the least information) gives way. A key found
 * takes the slot of its hash, whatever was there. A clash of two hashes
 * shares a bucket, or counts a key as found.
 */

#define TH_SLOTS	8192
#define TH_PROBE	8
#define TH_FOUND	65536

struct th_slot {
	uint64_t	 addr;		/* hash of the address; 0: free */
	int64_t		 tat;		/* mono microseconds */
};

struct th_shm {
	uint64_t	 seed;
	int		 held;		/* threads holding back a 429 now */
	struct th_slot	 addrs[TH_SLOTS];
	uint64_t	 found[TH_FOUND];	/* hashes of keys of tokens */
};

static struct th_shm	*th;

static int64_t
mono_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
throttle_init(void)
{
	if ((th = shm_map(sizeof(*th))) == NULL)
		return -1;
	if (random_bytes(&th->seed, sizeof(th->seed)) == -1)
		th->seed = (uint64_t)mono_us();
	return 0;
}

/* addr or a key, hashed with the seed; never 0 (a free slot). */
static uint64_t
hash(const char *what, const char *s)
{
	uint64_t	 h = fnv1a(fnv1a(th->seed ^ FNV1A_INIT, what), s);

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
		s = &th->addrs[i];
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
	if (th == NULL || burst == 0 || (s = find(hash("a", addr), 0)) == NULL)
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

	if (th == NULL || burst == 0 ||
	    (s = find(hash("a", addr), 1)) == NULL)
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

/* A lookup found a token for key (valid or not: the client holds it). */
void
throttle_found(const char *key)
{
	uint64_t	 h;

	if (th == NULL)
		return;
	h = hash("k", key);
	STORE(&th->found[h % TH_FOUND], h);
}

/* Has a worker of this host found a token for key? */
int
throttle_known(const char *key)
{
	uint64_t	 h;

	if (th == NULL)
		return 0;
	h = hash("k", key);
	return LOAD(&th->found[h % TH_FOUND]) == h;
}

/*
 * A 429 past the failed checks waits RELAY_AUTH_FAIL_DELAY_MS: a flood
 * that sends again as soon as it is answered then sends a few requests a
 * second a connection, not thousands, and leaves the front server and
 * the CPU to everyone else. At most RELAY_THREADS / 2 threads of the host
 * wait so at once (counted across the workers: a flood's connections
 * tend to land on one worker); past that the 429 goes at once, so that a
 * flood never holds the threads valid clients need. (A worker killed
 * while one of its threads waits leaves the count one too high: fewer
 * 429s wait, none more.)
 */
void
throttle_hold_back(void)
{
	long long	 ms = cfg_i(CFG_RELAY_AUTH_FAIL_DELAY_MS);
	long long	 most = cfg_i(CFG_RELAY_THREADS) / 2;

	if (th == NULL || ms <= 0)
		return;
	if (ADD(&th->held, 1) < most) {
		struct timespec	 ts = { (time_t)(ms / 1000),
		    (long)(ms % 1000) * 1000000L };

		nanosleep(&ts, NULL);
	}
	ADD(&th->held, -1);
}
