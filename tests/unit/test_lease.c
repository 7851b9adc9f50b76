/* fcgi/lease.c: what a lease asks for, and what a slot holds. */
#include <stdint.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/lease.c"

/* neither ever wraps */
static void
test_lease_sums(void)
{
	struct lslot	 sl;
	long long	 cap = 1000000000000000LL;	/* 1e15 */

	T_INT(lease_want(1000, 1), 1000 * LEASE_BLOCKS);
	T_INT(lease_want(1000, LEASE_GROW), 1000LL * LEASE_BLOCKS * LEASE_GROW);
	T_INT(lease_want(cap, LEASE_GROW), LEASE_WANT_MAX);
	T_INT(lease_want(INT64_MAX / 50, 1), LEASE_WANT_MAX);
	T_INT(lease_want(INT64_MAX - 1, 1), INT64_MAX - 1);
	memset(&sl, 0, sizeof(sl));
	T_INT(avail_add(&sl, INT64_MAX - 10), 0);
	T_INT(sl.avail, INT64_MAX - 10);
	T_INT(avail_take(&sl, INT64_MAX - 20), 1);
	T_INT(sl.avail, 10);
	T_INT(avail_take(&sl, 11), 0);
	T_INT(sl.avail, 10);
	T_INT(avail_add(&sl, INT64_MAX - 10), 0);
	T_INT(sl.avail, INT64_MAX);
	T_INT(avail_add(&sl, 1), -1);
	T_INT(sl.avail, INT64_MAX);
}

UNIT_MAIN("lease", test_lease_sums)
