/* fcgi/metrics.c: the circuit breaker per channel. */
#include <stdint.h>

#include "unit.h"
#include "../../fcgi/metrics.c"

#define COOL	(30 * 1000)	/* BREAKER_COOLDOWN, in ms */
#define PROBE	(300 * 1000)	/* RELAY_TIMEOUT: a probe's longest life */

static void
set(enum cfg k, const char *v)
{
	char	 err[128];

	T_INT(cfg_set(k, v, err, sizeof(err)), 0);
}

/* before the master maps the counters, nothing is ever open */
static void
test_unmapped(void)
{
	T_OK(m == NULL);
	breaker_result(7, 1, 1000);
	breaker_result(7, 1, 1000);
	breaker_result(7, 1, 1000);
	breaker_result(7, 1, 1000);
	T_INT(breaker_state(7, 1000), BREAKER_CLOSED);
	T_INT(breaker_claim(7, 1000), 1);
	T_INT(breaker_claim(7, 1000), 1);
}

/* open after the threshold of connect failures in a row, not before */
static void
test_threshold(void)
{
	set(CFG_BREAKER_THRESHOLD, "3");
	set(CFG_BREAKER_COOLDOWN, "30");
	set(CFG_RELAY_TIMEOUT, "300");
	T_INT(metrics_init("kling,suno"), 0);
	T_INT(breaker_state(1, 1000), BREAKER_CLOSED);
	breaker_result(1, 1, 1000);
	breaker_result(1, 1, 1000);
	T_INT(breaker_state(1, 1000), BREAKER_CLOSED);
	breaker_result(1, 1, 1000);
	T_INT(breaker_state(1, 1000), BREAKER_OPEN);
	T_INT(breaker_state(2, 1000), BREAKER_CLOSED);	/* its own */
	/* an answer between failures starts the count again */
	breaker_result(2, 1, 1000);
	breaker_result(2, 1, 1000);
	breaker_result(2, 0, 1000);
	breaker_result(2, 1, 1000);
	breaker_result(2, 1, 1000);
	T_INT(breaker_state(2, 1000), BREAKER_CLOSED);
	breaker_result(2, 1, 1000);
	T_INT(breaker_state(2, 1000), BREAKER_OPEN);
	breaker_result(2, 0, 1000);
	T_INT(breaker_state(2, 1000), BREAKER_CLOSED);
}

/* open for the cooldown, then half-open: one probe at a time */
static void
test_cooldown(void)
{
	uint64_t	 skips;
	int64_t		 t = 1000 + COOL;	/* channel 1 opened at 1000 */

	T_INT(breaker_state(1, t - 1), BREAKER_OPEN);
	T_INT(breaker_state(1, t), BREAKER_HALF_OPEN);
	skips = LOAD(&m->breaker_skips);
	T_INT(breaker_claim(1, t), 1);
	T_INT(breaker_claim(1, t), 0);
	T_INT(breaker_claim(1, t + 5), 0);
	T_INT(LOAD(&m->breaker_skips), skips + 2);
	/* while the probe is out, the others see it open */
	T_INT(breaker_state(1, t + 5), BREAKER_OPEN);
	/* the probe fails: open for another cooldown from then */
	breaker_result(1, 1, t + 10);
	T_INT(breaker_state(1, t + 10), BREAKER_OPEN);
	T_INT(breaker_state(1, t + 10 + COOL - 1), BREAKER_OPEN);
	t += 10 + COOL;
	T_INT(breaker_state(1, t), BREAKER_HALF_OPEN);
	T_INT(breaker_claim(1, t), 1);
	/* a probe that never reports back (its worker died) expires */
	T_INT(breaker_state(1, t + PROBE), BREAKER_OPEN);
	T_INT(breaker_claim(1, t + PROBE), 0);
	T_INT(breaker_state(1, t + PROBE + 1), BREAKER_HALF_OPEN);
	T_INT(breaker_claim(1, t + PROBE + 1), 1);
	/* the probe gets an answer: closed, and the count starts again */
	breaker_result(1, 0, t + PROBE + 2);
	T_INT(breaker_state(1, t + PROBE + 2), BREAKER_CLOSED);
	T_INT(breaker_claim(1, t + PROBE + 2), 1);
	breaker_result(1, 1, t + PROBE + 3);
	T_INT(breaker_state(1, t + PROBE + 3), BREAKER_CLOSED);
}

/* a channel whose id shares a slot takes it over, fresh */
static void
test_slot_reuse(void)
{
	breaker_result(5, 1, 1000);
	breaker_result(5, 1, 1000);
	breaker_result(5, 1, 1000);
	T_INT(breaker_state(5, 1000), BREAKER_OPEN);
	T_INT(breaker_state(5 + BRK_SLOTS, 1000), BREAKER_CLOSED);
	T_INT(breaker_state(5, 1000), BREAKER_CLOSED);
}

UNIT_MAIN("metrics", test_unmapped, test_threshold, test_cooldown,
    test_slot_reuse)
