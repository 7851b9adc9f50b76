#ifndef BLTCY_METRICS_H
#define BLTCY_METRICS_H

/*
 * Counters shared by all workers of a host, and the circuit breaker per
 * channel, in one shared mapping the master makes before it forks
 * (metrics.c).
 */

#include <stddef.h>
#include <stdint.h>

#include "upstream.h"
#include "util.h"

int	 metrics_init(const char *services);	/* master, before fork */
void	 metrics_request(const char *service, int status, int64_t ms);
void	 metrics_upstream_error(enum up_err);
void	 metrics_quota(long long);
/* Worker mslot is (1) or is not (0) handling a request. */
void	 metrics_busy(int mslot, int busy);
void	 metrics_worker_gone(size_t mslot);	/* master */
void	 metrics_worker_restart(void);
int	 metrics_render(struct buf *);
uint64_t metrics_next_key(long long channel_id);	/* round robin */

/*
 * Circuit breaker per channel, in the same shared memory: open after
 * BREAKER_THRESHOLD connect failures in a row, for BREAKER_COOLDOWN
 * seconds; then half-open, where one request at a time (the one that
 * claims it) probes the channel.
 */
enum { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };
int	 breaker_state(long long channel_id, int64_t now_ms);
int	 breaker_claim(long long channel_id, int64_t now_ms);
void	 breaker_result(long long channel_id, int connect_failed, int64_t now_ms);

/*
 * Refused tokens, by how they were refused: a lookup found no such token,
 * the key was remembered as no token's, or the client's address had
 * failed too many token checks (429, no lookup).
 */
enum tok_refusal { TR_LOOKUP, TR_MEMORY, TR_THROTTLED, TR__MAX };
void	 metrics_token_refused(enum tok_refusal);

/*
 * Requests refused by a limit (429, nothing forwarded or charged), by
 * which: new-api's rate options, a token's or a user's caps, and every
 * key that could serve a submit full.
 */
enum limit_refusal {
	LR_RATE_TOTAL, LR_RATE_SUCCESS, LR_TOKEN_IN_FLIGHT, LR_USER_IN_FLIGHT,
	LR_TOKEN_RPM, LR_USER_RPM, LR_TOKEN_TASKS, LR_USER_TASKS,
	LR_CAPACITY, LR__MAX
};
void	 metrics_limit_refused(enum limit_refusal);

/*
 * Keys disabled per channel (a gauge, set whenever the channels are
 * read), and keys this host disabled for an upstream's answer.
 */
void	 metrics_keys_disabled(long long channel_id, size_t n);
void	 metrics_key_banned(void);

#endif
