/* fcgi/places.c: open-job places in shared memory; MaxTasks in a setting. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/places.c"
#include "setting.h"

/* A named entry with n spare places, as a take from the database leaves it. */
static struct place *
seeded(char scope, long long id, const char *key, int n, int cap)
{
	struct place	*p = find(scope, id, key, 1);

	if (p != NULL) {
		p->spare = n;
		p->cap = cap;
	}
	return p;
}

/*
 * A spare place is taken without the database, held under the slot once
 * per scope, handed to a task (its bit) or given back to spare; a dead
 * worker's places go back to spare.
 */
static void
test_spare(void)
{
	struct place	*t, *u;

	T_INT(places_init("unit", 4), 0);
	T_OK((t = seeded('t', 7, "", 2, 5)) != NULL);
	T_OK((u = seeded('u', 9, "", 1, 5)) != NULL);
	T_OK(find('t', 7, "", 0) == t && find('u', 7, "", 0) == NULL);
	T_INT(places_take(NULL, 0, "rid", PS_TOKEN, 7, "", 5), PLACE_OK);
	T_INT(t->spare, 1);
	T_INT(t->busy, 1);
	/* held already: nothing more taken */
	T_INT(places_take(NULL, 0, "rid", PS_TOKEN, 7, "", 5), PLACE_OK);
	T_INT(t->spare, 1);
	T_INT(places_take(NULL, 0, "rid", PS_USER, 9, "", 5), PLACE_OK);
	T_INT(places_hand(0), PLACE_TOKEN | PLACE_USER);
	T_OK(t->busy == 0 && u->busy == 0 && t->spare == 1 && u->spare == 0);
	T_INT(places_hand(0), 0);
	/* no task: back to spare */
	T_INT(places_take(NULL, 1, "rid2", PS_TOKEN, 7, "", 5), PLACE_OK);
	T_INT(t->spare, 0);
	places_give_all(1);
	T_OK(t->spare == 1 && t->busy == 0);
	/* a worker gone: the same */
	T_INT(places_take(NULL, 2, "rid3", PS_TOKEN, 7, "", 5), PLACE_OK);
	places_dead(2);
	T_OK(t->spare == 1 && t->busy == 0 && holds[2].e[PS_TOKEN] == 0);
	/* a slot out of range holds nothing */
	T_INT(places_take(NULL, 4, "rid4", PS_TOKEN, 7, "", 5), PLACE_DB);
}

/*
 * A key with a spare place here is chosen first; keys skipped are not;
 * the key taken is the one held.
 */
static void
test_key(void)
{
	struct channel	 ch;
	char		 ka[] = "key-a", kb[] = "key-b", kc[] = "key-c";
	char		*keys[3] = { ka, kb, kc };
	char		 h[17];
	unsigned char	 skip[3] = { 0, 0, 0 };
	size_t		 ki = 9;
	struct place	*b, *c;

	memset(&ch, 0, sizeof(ch));
	ch.id = 42;
	ch.keys = keys;
	ch.nkeys = 3;
	place_key_hash("key-b", h);
	T_INT((int)strlen(h), 16);
	T_OK((b = seeded('k', 42, h, 1, 2)) != NULL);
	place_key_hash("key-c", h);
	T_OK((c = seeded('k', 42, h, 1, 2)) != NULL);
	skip[1] = 1;
	T_INT(places_key(NULL, 3, "rid", &ch, 2, skip, &ki), PLACE_OK);
	T_INT((int)ki, 2);
	T_OK(c->spare == 0 && c->busy == 1 && b->spare == 1);
	/* another key for the same request: the first goes back */
	skip[1] = 0;
	skip[2] = 1;
	T_INT(places_key(NULL, 3, "rid", &ch, 2, skip, &ki), PLACE_OK);
	T_INT((int)ki, 1);
	T_OK(c->spare == 1 && c->busy == 0 && b->spare == 0 && b->busy == 1);
	T_INT(places_hand(3), PLACE_KEY);
}

/* MaxTasks beside PassthroughQuota: 0 or absent none, a range checked. */
static void
test_setting(void)
{
	struct chan_setting	 s;
	char			 err[128];

	T_INT(setting_parse("{\"PassthroughQuota\":5,\"MaxTasks\":3}", &s, err,
	    sizeof(err)), 0);
	T_OK(s.quota == 5 && s.max_tasks == 3);
	T_INT(setting_parse("{\"PassthroughQuota\":5}", &s, err, sizeof(err)), 0);
	T_INT(s.max_tasks, 0);
	T_INT(setting_parse("{\"MaxTasks\":-1}", &s, err, sizeof(err)), -1);
	T_STR(err, "MaxTasks must be 0 to 1000000");
	T_INT(setting_parse("{\"MaxTasks\":\"3\"}", &s, err, sizeof(err)), -1);
	T_STR(err, "MaxTasks must be an integer");
	T_INT(s.max_tasks, 0);
}

UNIT_MAIN("places", test_spare, test_key, test_setting)
