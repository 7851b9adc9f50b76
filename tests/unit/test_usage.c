/* usage.c: the usage ring (push, full, order, backlog, stuck) and the
 * writer's sums, which never wrap. */
#include <limits.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/usage.c"

static void
setup(void)
{
	static int	 done;

	if (!done++)
		T_INT(usage_init("unit-host"), 0);
	ring->head = ring->tail = 0;
	memset(ring->rec, 0, sizeof(ring->rec));
}

static void
rec_of(struct usage *u, long long n)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->rid, sizeof(u->rid), "req-%lld", n);
	u->quota = n;
}

static void
test_push_order(void)
{
	struct usage	 u;
	long long	 i;

	setup();
	T_INT(usage_backlog(), 0);
	for (i = 1; i <= 3; i++) {
		rec_of(&u, i);
		T_INT(usage_push(&u, NULL), 0);
	}
	T_INT(usage_backlog(), 3);
	for (i = 0; i < 3; i++) {
		T_INT(ring->rec[i].quota, i + 1);
		T_INT(ring->rec[i].ready, i + 1);	/* position + 1 */
	}
	T_STR(ring->rec[2].rid, "req-3");
}

static void
test_full(void)
{
	struct usage	 u;
	long long	 i;

	setup();
	for (i = 0; i < RING; i++) {
		rec_of(&u, i);
		T_INT_AT(__LINE__, usage_push(&u, NULL), 0);
	}
	T_INT(usage_backlog(), RING);
	rec_of(&u, RING);
	T_INT(usage_push(&u, NULL), -1);
	T_INT(usage_backlog(), RING);
	T_INT(usage_writer_stuck(mono_ms()), 1);	/* full: stuck */
	/* one written: room for one more, in the next place */
	STORE(&ring->tail, 1);
	T_INT(usage_push(&u, NULL), 0);
	T_INT(ring->rec[0].quota, RING);
	T_INT(ring->rec[0].ready, RING + 1);
}

static void
test_stuck(void)
{
	struct usage	 u;
	int64_t		 now;

	setup();
	T_INT(usage_writer_stuck(mono_ms()), 0);	/* empty */
	rec_of(&u, 1);
	T_INT(usage_push(&u, NULL), 0);
	now = mono_ms();
	T_INT(usage_writer_stuck(now), 0);
	T_INT(usage_writer_stuck(now + USAGE_STUCK_MS + 1000), 1);
	/* a record still being pushed is not old */
	ring->rec[0].ready = 0;
	T_INT(usage_writer_stuck(now + USAGE_STUCK_MS + 1000), 0);
}

static void
test_push_finish(void)
{
	struct usage	 u;
	uint64_t	 pos = 0;

	setup();
	rec_of(&u, 9);
	T_INT(usage_push(&u, &pos), 0);
	T_INT(pos, 1);
	/* a worker that died between taking the place and writing it */
	ring->rec[0].ready = 0;
	ring->rec[0].quota = 0;
	usage_push_finish(&u, pos);
	T_INT(ring->rec[0].quota, 9);
	T_INT(ring->rec[0].ready, 1);
	/* one that finished is left as it is */
	rec_of(&u, 10);
	usage_push_finish(&u, pos);
	T_INT(ring->rec[0].quota, 9);
	T_INT(usage_backlog(), 1);
}

static void
test_sums(void)
{
	struct sum	 a[4];
	size_t		 na = 0;

	/* a batch whose sum for one row would wrap is split */
	T_INT(sum_add(a, &na, 9, LLONG_MAX - 1, 5), 0);
	T_INT(sum_add(a, &na, 8, LLONG_MAX, 6), 0);
	T_INT(sum_add(a, &na, 9, 1, 7), 0);
	T_INT(na, 2);
	T_INT(a[0].q, LLONG_MAX);
	T_INT(a[0].n, 2);
	T_INT(a[0].ts, 7);
	T_INT(sum_add(a, &na, 9, 1, 8), -1);
	T_INT(a[0].q, LLONG_MAX);
	T_INT(sum_add(a, &na, 8, 1, 8), -1);
	T_INT(a[1].q, LLONG_MAX);
}

static void
test_rows_ladder(void)
{
	T_INT(rows_step(1000), 64);
	T_INT(rows_step(63), 16);
	T_INT(rows_step(15), 4);
	T_INT(rows_step(3), 1);
	T_INT(rows_stmt(MS_LOG1, 64), MS_LOG64);
	T_INT(rows_stmt(MS_LOG1, 16), MS_LOG16);
	T_INT(rows_stmt(MS_TASK1, 4), MS_TASK4);
	T_INT(rows_stmt(MS_TASK1, 1), MS_TASK1);
}

static void
test_escaped(void)
{
	char	 out[4 * 16 + 1];

	T_STR(escaped("ok", 16, out), "ok");
	T_STR(escaped("a\\b\n", 16, out), "a\\x5cb\\x0a");
	T_STR(escaped("\xc3\xa9\xff", 16, out), "\xc3\xa9\\xff");
	T_STR(escaped("\xc0\x80", 16, out), "\\xc0\\x80");	/* overlong */
	T_STR(escaped("abcdef", 3, out), "abc");	/* no NUL in the field */
}

UNIT_MAIN("usage", test_push_order, test_full, test_stuck, test_push_finish,
    test_sums, test_rows_ladder, test_escaped)
