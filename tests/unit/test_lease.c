/* lease.c: what is asked for, and what a lease holds, never wrap. */
#include <limits.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/lease.c"

static void
test_want(void)
{
	long long	 cap = 1000000000000000LL;	/* 1e15 */

	T_INT(lease_want(1000, 1), 1000 * LEASE_BLOCKS);
	T_INT(lease_want(1000, LEASE_GROW), 1000LL * LEASE_BLOCKS * LEASE_GROW);
	T_INT(lease_want(cap, LEASE_GROW), LEASE_WANT_MAX);
	T_INT(lease_want(LLONG_MAX / 50, 1), LEASE_WANT_MAX);
	T_INT(lease_want(LLONG_MAX - 1, 1), LLONG_MAX - 1);
}

static void
test_avail(void)
{
	struct token_lease	 l;

	memset(&l, 0, sizeof(l));
	T_INT(avail_add(&l, LLONG_MAX - 10), 0);
	T_INT(l.avail, LLONG_MAX - 10);
	T_INT(avail_take(&l, LLONG_MAX - 20), 1);
	T_INT(l.avail, 10);
	T_INT(avail_take(&l, 11), 0);
	T_INT(l.avail, 10);
	T_INT(avail_add(&l, LLONG_MAX - 10), 0);
	T_INT(l.avail, LLONG_MAX);
	T_INT(avail_add(&l, 1), -1);
	T_INT(l.avail, LLONG_MAX);
}

UNIT_MAIN("lease", test_want, test_avail)
