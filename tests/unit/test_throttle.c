/* fcgi/throttle.c: failed token checks per address. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/throttle.c"
#include "config.h"

/*
 * Failed token checks per address: a burst, then over with a second to
 * wait, another address apart; a burst of 0 never throttles.
 */
static void
test_throttle(void)
{
	char	 err[128];
	int	 retry = -1, i;

	T_INT(throttle_init(), 0);
	T_INT(cfg_set(CFG_RELAY_AUTH_FAIL_BURST, "3", err, sizeof(err)), 0);
	T_INT(cfg_set(CFG_RELAY_AUTH_FAIL_RATE, "1", err, sizeof(err)), 0);
	T_OK(throttle_over("192.0.2.1", &retry) == 0 && retry == 0);
	for (i = 0; i < 3; i++) {
		T_INT(throttle_over("192.0.2.1", &retry), 0);
		throttle_failed("192.0.2.1");
	}
	T_OK(throttle_over("192.0.2.1", &retry) == 1 && retry == 1);
	throttle_failed("192.0.2.1");	/* past the burst: no deeper */
	T_OK(throttle_over("192.0.2.1", &retry) == 1 && retry == 1);
	T_INT(throttle_over("192.0.2.2", &retry), 0);
	throttle_failed("192.0.2.2");
	T_INT(throttle_over("192.0.2.2", &retry), 0);
	/* keys a lookup found a token for */
	T_INT(throttle_known("sk-unit-key"), 0);
	throttle_found("sk-unit-key");
	T_INT(throttle_known("sk-unit-key"), 1);
	T_INT(throttle_known("sk-unit-kez"), 0);
	T_INT(cfg_set(CFG_RELAY_AUTH_FAIL_BURST, "0", err, sizeof(err)), 0);
	T_OK(throttle_over("192.0.2.1", &retry) == 0 && retry == 0);
	T_INT(cfg_set(CFG_RELAY_AUTH_FAIL_BURST, "100", err, sizeof(err)), 0);
	T_INT(cfg_set(CFG_RELAY_AUTH_FAIL_RATE, "10", err, sizeof(err)), 0);
	/* a hundred addresses in one table, each its own */
	for (i = 0; i < 100; i++) {
		char	 a[32];

		snprintf(a, sizeof(a), "198.51.100.%d", i);
		throttle_failed(a);
		T_INT(throttle_over(a, &retry), 0);
	}
}

UNIT_MAIN("throttle", test_throttle)
