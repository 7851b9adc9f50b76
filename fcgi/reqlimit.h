#ifndef BLTCY_REQLIMIT_H
#define BLTCY_REQLIMIT_H

/*
 * Requests in flight and requests in a window, per token and per user
 * (reqlimit.c): a token's and a user's caps (bltcy_limits: in flight,
 * requests per minute) and new-api's ModelRequestRateLimit* options (per
 * user: all requests, and those answered below 400, in a window of
 * DurationMinutes). Counted in shared memory without a round trip; the
 * master trades the host's counts for the other hosts' through the
 * database once a second (limits_tick).
 *
 * A request is let in (counted) or refused (counted nowhere) before it
 * is charged, and let out once, whichever way it ends: by the thread
 * that served it, or by the master when its worker died (the hold is
 * kept in the thread's charge slot).
 */

#include <stddef.h>

#include "auth.h"
#include "options.h"

struct db;

/* Why a request is refused; LIM_OK: let in. */
enum limit_verdict {
	LIM_OK,
	LIM_TOKEN_IN_FLIGHT,
	LIM_USER_IN_FLIGHT,
	LIM_TOKEN_RPM,
	LIM_USER_RPM,
	LIM_RATE_SUCCESS,	/* new-api's SuccessCount */
	LIM_RATE_TOTAL,		/* new-api's Count */
};

/* What a request is checked against. */
struct limit_ask {
	long long		 token_id, user_id;
	const struct limits	*token, *user;	/* bltcy_limits; 0: none */
	const struct rate_options *rate;	/* the options in force */
	const char		*group;		/* token_group */
};

/* A refusal: the seconds to wait, and the cap and window it met. */
struct limit_refusal_info {
	int	 retry_after;
	int	 cap;
	int	 minutes;
};

int	 limits_init(size_t nslots);	/* master, before fork */

/*
 * Let the request of charge slot slot in (LIM_OK, counted), or say why
 * not (nothing counted, *info filled).
 */
enum limit_verdict limits_enter(const struct limit_ask *, int slot,
	    struct limit_refusal_info *info);

/* The request of slot ended with status (0: none sent): let it out. */
void	 limits_leave(int slot, int status);

/* Master: slot's worker is gone; what its request held is let out. */
void	 limits_slot_gone(int slot);

/*
 * Master, on its clock: once a second, this host's counts up to the
 * database and the other hosts' down; once a minute, rows past their
 * window deleted.
 */
void	 limits_tick(struct db *, const char *host);

#endif
