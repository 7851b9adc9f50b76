/* charger.c: the sum of a group of charges, which never wraps, and the
 * order charges are taken in. */
#include <limits.h>

#include "unit.h"
#include "../../fcgi/charger.c"

static void
test_group_sum(void)
{
	static struct gc_slot	 w[4];
	struct gc_slot		*b[4] = { &w[0], &w[1], &w[2], &w[3] };
	long long		 s, cap = 1000000000000000LL;	/* 1e15 */

	/* a group whose sum would wrap is charged one by one */
	w[0].quota = w[1].quota = w[2].quota = LLONG_MAX / 3 + 1;
	w[3].quota = 7;
	T_INT(group_sum(b, 2, &s), 0);
	T_INT(s, 2 * (LLONG_MAX / 3 + 1));
	s = 42;
	T_INT(group_sum(b, 3, &s), -1);
	T_INT(s, 42);			/* unchanged */
	T_INT(group_sum(b + 3, 1, &s), 0);
	T_INT(s, 7);
	w[0].quota = w[1].quota = w[2].quota = cap;
	T_INT(group_sum(b, 3, &s), 0);
	T_INT(s, 3 * cap);
}

static void
test_order(void)
{
	static struct gc_slot	 w[4];
	struct gc_slot		*b[4] = { &w[0], &w[1], &w[2], &w[3] };

	w[0].token = 9;
	w[1].token = 2;
	w[1].chan_version = 5;
	w[2].token = 2;
	w[2].chan_version = 4;
	w[3].token = 2;
	w[3].chan_version = 4;
	sort_charges(b, 4);
	T_OK(b[0]->token == 2 && b[0]->chan_version == 4);
	T_OK(b[1]->token == 2 && b[1]->chan_version == 4);
	T_OK(b[2]->token == 2 && b[2]->chan_version == 5);
	T_INT(b[3]->token, 9);
	/* one statement takes charges at the same counters only */
	T_OK(same_charge(b[0], b[1]));
	T_OK(!same_charge(b[1], b[2]));
}

UNIT_MAIN("charger", test_group_sum, test_order)
