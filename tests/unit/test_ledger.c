/* ledger.c: a charge slot's life, and a dead worker's slot. */
#include <string.h>

#include "unit.h"
#include "../../fcgi/ledger.c"

/* A charge of q by request rid on charge slot slot. */
static void
charge_of(struct charge *c, int slot, const char *rid, long long q)
{
	memset(c, 0, sizeof(*c));
	c->slot = slot;
	strlcpy_(c->rec.rid, rid, sizeof(c->rec.rid));
	c->rec.token_id = 7;
	c->rec.user_id = 3;
	c->rec.quota = q;
	c->rec.at = now_s();
}

static void
setup(void)
{
	static int	 done;

	if (done++)
		return;
	T_INT(ledger_init(4), 0);
	T_INT(ledger_slots(), 64);		/* at least 64 */
	T_INT(usage_init("unit-host"), 0);
	T_INT(owed_init("unit-host", ledger_slots()), 0);
}

static void
test_take(void)
{
	int	 a, b;

	setup();
	a = charge_slot_take();
	b = charge_slot_take();
	T_OK(a >= 0 && b >= 0 && a != b);
	T_INT(charge_slot_state(a), CH_IDLE);
	charge_slot_free(a);
	T_INT(charge_slot_state(a), CH_FREE);
	T_INT(charge_slot_take(), a);		/* the first free again */
	charge_slot_free(a);
	charge_slot_free(b);
}

static void
test_kept(void)
{
	struct charge		 c;
	struct usage_end	 e = { 42, 3, "t1,t2", "abcdef0123456789" };
	uint64_t		 before = usage_backlog();
	int			 s;

	setup();
	s = charge_slot_take();
	charge_of(&c, s, "req-kept", 500);
	charge_open(&c, CH_CHARGING);
	T_INT(charge_slot_state(s), CH_CHARGING);
	T_STR(charge_slot_rec(s)->rid, "req-kept");
	charge_mark(&c, CH_CHARGED);
	T_INT(charge_slot_state(s), CH_CHARGED);
	charge_keep(&c, &e, 1);
	charge_mark(&c, CH_IDLE);
	T_INT(charge_slot_state(s), CH_IDLE);
	T_INT(usage_backlog(), before + 1);
	/* what the ring got is what the slot holds: the answer's fields */
	T_INT(charge_slot_rec(s)->channel_id, 42);
	T_INT(charge_slot_rec(s)->use_time, 3);
	T_INT(charge_slot_rec(s)->prepaid, 1);
	T_STR(charge_slot_rec(s)->task_ids, "t1,t2");
	T_STR(charge_slot_rec(s)->key_hash, "abcdef0123456789");
	T_OK(LOAD(&chslots[s].ring_pos) != 0);
	/* its worker dies now: nothing stands, nothing is kept twice */
	charge_slot_gone(s, 0, 1, 0);
	T_INT(usage_backlog(), before + 1);
	T_INT(charge_slot_state(s), CH_FREE);
}

static void
test_refunded(void)
{
	struct charge	 c;
	uint64_t	 before = usage_backlog();
	int		 s;

	setup();
	s = charge_slot_take();
	charge_of(&c, s, "req-refunded", 500);
	charge_open(&c, CH_CHARGED);
	charge_mark(&c, CH_REFUNDING);
	T_INT(charge_slot_state(s), CH_REFUNDING);
	charge_mark(&c, CH_IDLE);
	T_INT(charge_slot_state(s), CH_IDLE);
	T_INT(usage_backlog(), before);		/* nothing into the ring */
	charge_slot_free(s);
}

static void
test_dead_charged(void)
{
	struct charge		 c;
	const struct usage	*u;
	uint64_t		 before = usage_backlog();
	int			 s;

	setup();
	s = charge_slot_take();
	charge_of(&c, s, "req-dead", 900);
	charge_open(&c, CH_CHARGED);
	/* the mode says it stands: kept once, marked recovered */
	charge_slot_gone(s, 1, 0, 0);
	T_INT(usage_backlog(), before + 1);
	T_INT(charge_slot_state(s), CH_FREE);
	u = charge_slot_rec(s);
	T_INT(u->recovered, 1);
	T_INT(u->prepaid, 0);
	T_INT(u->quota, 900);
	T_OK(u->use_time >= 0);
}

static void
test_dead_pushing(void)
{
	struct charge		 c;
	struct usage_end	 e = { 5, 1, "", "" };
	uint64_t		 before = usage_backlog();
	int			 s;

	setup();
	s = charge_slot_take();
	charge_of(&c, s, "req-pushed", 100);
	charge_open(&c, CH_CHARGED);
	/* died after its record went in, before it marked the slot idle */
	charge_keep(&c, &e, 0);
	T_INT(usage_backlog(), before + 1);
	charge_slot_gone(s, 1, 0, 0);
	T_INT(usage_backlog(), before + 1);	/* not a second time */
	T_INT(charge_slot_rec(s)->recovered, 0);
}

static void
test_owed(void)
{
	struct refund	 r, got;
	int		 s, t;

	setup();
	s = charge_slot_take();
	memset(&r, 0, sizeof(r));
	strlcpy_(r.rid, "req-owed", sizeof(r.rid));
	r.token = 7;
	r.user = 3;
	r.quota = 250;
	T_INT(owed_waiting(s), 0);
	T_INT(owed_get(s, &got), 0);
	owed_put(s, &r);
	T_INT(owed_waiting(s), 1);
	T_INT(owed_get(s, &got), 1);
	T_STR(got.rid, "req-owed");
	T_INT(got.quota, 250);
	/* its worker dies with it waiting: the slot is held, not reused */
	charge_slot_gone(s, 0, 1, owed_waiting(s));
	T_INT(charge_slot_state(s), CH_OWED);
	t = charge_slot_take();
	T_OK(t != s);
	T_INT(owed_done(s, "another-req"), 0);	/* only its own */
	T_INT(owed_done(s, "req-owed"), 1);
	T_INT(owed_done(s, "req-owed"), 0);	/* once */
	T_INT(owed_waiting(s), 0);
	charge_slot_free(s);
	charge_slot_free(t);
	T_INT(owed_waiting(-1), 0);
	T_INT(owed_waiting((int)ledger_slots()), 0);
}

UNIT_MAIN("ledger", test_take, test_kept, test_refunded, test_dead_charged,
    test_dead_pushing, test_owed)
