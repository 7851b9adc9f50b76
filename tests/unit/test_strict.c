/* fcgi/strict.c: the strict meter's sums of a group of charges. */
#include <stdint.h>

#include "unit.h"
#include "../../fcgi/strict.c"

/* a group whose sum would wrap is charged one by one */
static void
test_group_sum(void)
{
	static struct wslot	 w[4];
	struct wslot		*b[4] = { &w[0], &w[1], &w[2], &w[3] };
	long long		 s, cap = 1000000000000000LL;	/* 1e15 */

	w[0].rec.quota = w[1].rec.quota = w[2].rec.quota = INT64_MAX / 3 + 1;
	w[3].rec.quota = 7;
	T_INT(group_sum(b, 2, &s), 0);
	T_INT(s, 2 * (INT64_MAX / 3 + 1));
	s = 42;
	T_INT(group_sum(b, 3, &s), -1);
	T_INT(s, 42);
	T_INT(group_sum(b + 3, 1, &s), 0);
	T_INT(s, 7);
	w[0].rec.quota = w[1].rec.quota = w[2].rec.quota = cap;
	T_INT(group_sum(b, 3, &s), 0);
	T_INT(s, 3 * cap);
}

UNIT_MAIN("strict", test_group_sum)
