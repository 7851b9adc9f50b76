#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "meter.h"
#include "shared.h"
#include "util.h"

/*
 * The charge slots (meter.h): one in shared memory for every request
 * thread of the pool, all generations, where the charge in flight is
 * seen by the master. A slot's life:
 *
 *	CH_FREE -> CH_IDLE		the master gives it to a thread
 *	CH_IDLE -> CH_CHARGING		strict: the charge statement is out
 *		-> CH_CHARGED		charged (lease: at once)
 *		-> CH_REFUNDING		strict: the refund statement is out
 *		-> CH_IDLE		kept (its record into the ring) or
 *					given back
 *	any -> CH_FREE or CH_OWED	its worker is gone: a charge that
 *					stands is kept; the slot waits while
 *					a refund is owed under it (owed.c)
 */

/* A request thread's charge slot. */
struct charge_slot {
	int		 state;		/* enum charge_state */
	uint64_t	 ring_pos;	/* ring position + 1 once pushed */
	struct usage	 rec;		/* the charge in flight */
};

static struct charge_slot	*chslots;	/* never unmapped */
static size_t			 nchslots;

const struct meter		*meter;		/* the mode in use */

int
ledger_init(size_t n)
{
	if (n < 64)
		n = 64;
	if ((chslots = shm_map(n * sizeof(*chslots))) == NULL)
		return -1;
	nchslots = n;
	return 0;
}

size_t
ledger_slots(void)
{
	return nchslots;
}

int
charge_slot_take(void)
{
	int	 i, free_;

	for (i = 0; (size_t)i < nchslots; i++) {
		free_ = CH_FREE;
		if (CAS(&chslots[i].state, &free_, CH_IDLE))
			return i;
	}
	return -1;
}

enum charge_state
charge_slot_state(int slot)
{
	return (enum charge_state)LOAD(&chslots[slot].state);
}

const struct usage *
charge_slot_rec(int slot)
{
	return &chslots[slot].rec;
}

void
charge_slot_hold(int slot)
{
	STORE(&chslots[slot].state, CH_OWED);
}

void
charge_slot_free(int slot)
{
	STORE(&chslots[slot].state, CH_FREE);
}

void
charge_slot_gone(int slot, int stands, int prepaid, int refund_waits)
{
	struct charge_slot	*s = &chslots[slot];
	uint64_t		 p = LOAD(&s->ring_pos);

	if (stands && p != 0)		/* it died writing to the ring */
		usage_push_finish(&s->rec, p);
	else if (stands) {
		s->rec.recovered = 1;
		s->rec.prepaid = prepaid;
		s->rec.use_time = now_s() - s->rec.at;
		if (usage_push(&s->rec, NULL) == -1)
			log_err("usage ring full: a dead worker's charge of "
			    "%lld is %s", s->rec.quota, prepaid ?
			    "kept without its logs row" :
			    "refunded at the next start");
	}
	/* its slot row must name the request until the refund is done, so
	 * the slot waits for the master to do it (owed.c) */
	if (refund_waits)
		charge_slot_hold(slot);
	else
		charge_slot_free(slot);
}

void
charge_open(const struct charge *c, enum charge_state st)
{
	struct charge_slot	*s = &chslots[c->slot];

	s->rec = c->rec;
	STORE(&s->ring_pos, 0);
	STORE(&s->state, (int)st);
}

void
charge_mark(const struct charge *c, enum charge_state st)
{
	STORE(&chslots[c->slot].state, (int)st);
}

void
charge_keep(struct charge *c, const struct usage_end *e, int prepaid)
{
	struct charge_slot	*s = &chslots[c->slot];

	c->rec.channel_id = e->channel;
	c->rec.use_time = e->use_time;
	c->rec.prepaid = prepaid;
	strlcpy_(c->rec.task_ids, e->tasks ? e->tasks : "",
	    sizeof(c->rec.task_ids));
	strlcpy_(c->rec.key_hash, e->key_hash ? e->key_hash : "",
	    sizeof(c->rec.key_hash));
	s->rec = c->rec;	/* what the master writes if we die pushing */
	/* the master is behind (a slow or absent DB): wait for room */
	for (int waited = 0; usage_push(&s->rec, &s->ring_pos) == -1;
	    waited++) {
		if (waited % 50 == 0)
			log_warn("usage ring full; waiting for the database");
		usage_wait_room();
	}
}
