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

/* at the ends of the range: up to the bound, never past it */
static void
test_quota_bounds(void)
{
	long long	 s;

	s = INT64_MAX - 5;
	T_INT(quota_add(&s, 5), 0);
	T_INT(s, INT64_MAX);
	T_INT(quota_add(&s, 1), -1);
	T_INT(s, INT64_MAX);
	s = INT64_MIN + 1;
	T_INT(quota_add(&s, -1), 0);
	T_INT(s, INT64_MIN);
	T_INT(quota_add(&s, -1), -1);
	T_INT(s, INT64_MIN);
	s = 0;
	T_INT(quota_mul(&s, INT64_MAX / 2, 2), 0);
	T_INT(s, INT64_MAX - 1);
	T_INT(quota_mul(&s, INT64_MAX / 2 + 1, 2), -1);
	T_INT(s, INT64_MAX - 1);
	T_INT(quota_mul(&s, -3, 4), 0);
	T_INT(s, -12);
}

UNIT_MAIN("quota", test_quota_add, test_quota_mul, test_quota_bounds)
