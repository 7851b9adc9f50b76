#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/futex.h>

#include <limits.h>
#include <time.h>
#include <unistd.h>

#include "shared.h"

void *
shm_map(size_t size)
{
	void	*p;

	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	    -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Not FUTEX_PRIVATE_FLAG: the word is in a mapping the processes share. */
void
shm_wait(int *word, int seen, int ms)
{
	struct timespec	 ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	syscall(SYS_futex, word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

void
shm_wake(int *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int64_t
shm_batch_grow(int64_t *grow, int64_t *at, int64_t now, int64_t fast_ms,
    int64_t max)
{
	int64_t	 g = LOAD(grow), last = LOAD(at);

	if (g < 1)
		g = 1;
	else if (now - last < fast_ms)
		g = g * 2 > max ? max : g * 2;
	else if (now - last > 5 * fast_ms)
		g = g / 2 > 1 ? g / 2 : 1;
	STORE(grow, g);
	STORE(at, now);
	return g;
}
