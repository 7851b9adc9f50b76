/* fcgi/ledger.c: the usage writer's sums per row of a batch. */
#include <stdint.h>

#include "unit.h"
#include "../../fcgi/ledger.c"

/* a batch whose sum for one row would wrap is split */
static void
test_sum_add(void)
{
	struct sum	 a[4];
	size_t		 na = 0;

	T_INT(sum_add(a, &na, 9, INT64_MAX - 1, 5), 0);
	T_INT(sum_add(a, &na, 8, INT64_MAX, 6), 0);
	T_INT(sum_add(a, &na, 9, 1, 7), 0);
	T_INT(na, 2);
	T_INT(a[0].q, INT64_MAX);
	T_INT(a[0].n, 2);
	T_INT(a[0].ts, 7);
	T_INT(sum_add(a, &na, 9, 1, 8), -1);
	T_INT(a[0].q, INT64_MAX);
	T_INT(sum_add(a, &na, 8, 1, 8), -1);
	T_INT(a[1].q, INT64_MAX);
}

UNIT_MAIN("usage", test_sum_add)
