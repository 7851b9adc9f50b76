/* meter.h: sums of quota that refuse to wrap. */
#include <stdint.h>
#include <limits.h>

#include "unit.h"
#include "meter.h"

static void
test_quota_add(void)
{
	long long	 s = 5;

	T_INT(quota_add(&s, 7), 0);
	T_INT(s, 12);
	s = LLONG_MAX - 1;
	T_INT(quota_add(&s, 1), 0);
	T_INT(s, LLONG_MAX);
	T_INT(quota_add(&s, 1), -1);
	T_INT(s, LLONG_MAX);		/* unchanged */
	s = LLONG_MIN;
	T_INT(quota_add(&s, -1), -1);
	T_INT(s, LLONG_MIN);
}

static void
test_quota_mul(void)
{
	long long	 m = 9;

	T_INT(quota_mul(&m, 1000, 7), 0);
	T_INT(m, 7000);
	m = 9;
	T_INT(quota_mul(&m, LLONG_MAX / 2 + 1, 2), -1);
	T_INT(m, 9);
	T_INT(quota_mul(&m, -1, LLONG_MIN), -1);
	T_INT(m, 9);
}

UNIT_MAIN("quota", test_quota_add, test_quota_mul)
