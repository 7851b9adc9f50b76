#ifndef BLTCY_PLACES_H
#define BLTCY_PLACES_H

/*
 * Open-job caps (places.c): a place is the right to one open job of a
 * token, a user or a channel key, leased to hosts from bltcy_places
 * (schema/018_places.sql) in small batches and taken from shared memory
 * without a round trip. A request thread holds at most one place of
 * each scope, recorded under its charge slot so that the master gives
 * it back if the worker dies.
 */

#include <stddef.h>

#include "db.h"
#include "util.h"

struct channel;
struct db;
struct usage;

enum place_scope { PS_TOKEN, PS_USER, PS_KEY, PS__MAX };

/* The bits of bltcy_tasks.places: which places a task holds. */
#define PLACE_TOKEN	1
#define PLACE_USER	2
#define PLACE_KEY	4

enum place_rc {
	PLACE_OK,	/* taken (or the request already held it) */
	PLACE_FULL,	/* the cap is reached */
	PLACE_DB,	/* the database cannot say, or no room for the scope */
};

/* The 16-hex name of a key, as bltcy_tasks.key_hash has it. */
void	 place_key_hash(const char *key, char out[17]);

/* ---- a request thread (slot: its charge slot) ---- */

/* One place of (scope, id, key_hash) under cap, for request rid. */
enum place_rc places_take(struct db *, int slot, const char *rid,
		    enum place_scope, long long id, const char *key_hash,
		    int cap);
/*
 * A place of a key of ch with room, for a submit on a channel with a
 * cap (cap) per key: keys usable (chan_key_usable) and not in skip
 * (skip[i] set), those with a spare place on this host first, then the
 * one with the most room as last seen. *ki is the key taken.
 */
enum place_rc places_key(struct db *, int slot, const char *rid,
		    const struct channel *ch, int cap, const unsigned char *skip,
		    size_t *ki);
/* The place of scope held, given back (spare on this host). */
void	 places_give(int slot, enum place_scope);
void	 places_give_all(int slot);
/* The places held become a task's: their bits, no longer held. */
int	 places_hand(int slot);

/* ---- the master ---- */

/* Before fork: the places of pool host, for nslots charge slots. */
int	 places_init(const char *host, size_t nslots);
/* At start: what an earlier run of this host held, given back. */
void	 places_reconcile(struct db *);
/* The worker of slot is gone: what it held goes back to spare. */
void	 places_dead(int slot);
/* On the master's clock: spare places idle a while given back. */
void	 places_tick(struct db *);
/* At stop, after the usage ring is written: every spare place back. */
void	 places_shutdown(struct db *);
/*
 * The usage writer, in its batch's transaction: the places the tasks of
 * r[0..n) hold leave this host's grant, and are open where written[i]
 * says the record's task row was inserted (its first; NULL: none was).
 * One statement per scope, id and key of the batch.
 */
enum db_rc places_written(struct db *, struct usage *const *r, size_t n,
	    const unsigned char *written);
/* bltcy_key_open_jobs{channel,key}: open jobs per key, as last seen. */
int	 places_render(struct buf *);

#endif
