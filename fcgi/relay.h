#ifndef BLTCY_RELAY_H
#define BLTCY_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "auth.h"
#include "db.h"
#include "price.h"
#include "setting.h"
#include "sql.h"
#include "util.h"

struct db;

/* ---- channels.c: the per-worker channel cache and selection ---- */

struct channel {
	long long		 id;
	char			*name;
	char			*base_url;	/* no trailing '/' */
	char			**keys;		/* one or more, unsealed */
	size_t			 nkeys;
	int			 auto_ban;
	int			 disabled;	/* status not 1: no new jobs, but
					   its tasks are still polled */
	struct chan_setting	 set;
};

struct ability {
	char		 group[64];
	char		 model[64];
	size_t		 ch;		/* index into channels */
	long long	 priority;
	long long	 weight;
};

/* One row of bltcy_task_kinds: where a service's poll answer says how
 * a task stands (see schema/010_prices_tasks.sql). */
struct task_kind {
	char		 service[32];
	char		 status_path[128];
	char		 succeeded[256];
	char		 failed[256];
	char		 reason_path[128];
	char		 poll_path[256];
	char		 id_path[128];	/* where an answer names its task */
	char		 lost[256];	/* values: the upstream knows no such task */
};

struct chcache {
	long long	 version;	/* bltcy_meta 'channels' it was loaded at */
	struct channel	*ch;
	size_t		 nch;
	struct ability	*ab;
	size_t		 nab;
	struct prices	 prices;	/* options and bltcy_price_rules */
	struct task_kind *kinds;	/* bltcy_task_kinds */
	size_t		 nkinds;
};

const struct task_kind *chcache_kind(const struct chcache *, const char *service);

int	 chcache_load(struct chcache *, struct db *, long long version);
void	 chcache_free(struct chcache *);
/* An enabled channel with a usable key, or NULL. */
struct channel *chcache_by_id(struct chcache *, long long id);
/*
 * The channel a task was made on, whatever its status (a disabled one
 * takes no new jobs, but its tasks are polled through it until they
 * finish), or NULL when it was deleted. Its base_url is "" when none of
 * its keys is usable.
 */
struct channel *chcache_task_channel(struct chcache *, long long id);

/*
 * Pick a channel for (group, service) by new-api's rule: highest priority
 * first, weighted random (weight + 10) within it, skipping the ids in
 * skip[] and channels whose breaker is open. NULL when none is left.
 */
struct channel *channel_pick(struct chcache *, const char *group,
		    const char *service, const long long *skip, size_t nskip,
		    uint64_t *rng);

/* ---- metrics.c: counters shared by all workers (shared memory) ---- */

enum up_err {
	UPE_NONE,
	UPE_REFUSED,
	UPE_DNS,
	UPE_TLS,
	UPE_CONNECT,
	UPE_CONNECT_TIMEOUT,
	UPE_HEADER_TIMEOUT,
	UPE_TIMEOUT,
	UPE_LOST,
	UPE_BAD_URL,	/* libcurl refused the request's URL: not the channel's */
	UPE__MAX
};

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

/* ---- throttle.c: failed token checks per client address, per host ---- */

int	 throttle_init(void);	/* master, before fork */
int	 throttle_over(const char *addr, int *retry_s);
void	 throttle_failed(const char *addr);
void	 throttle_found(const char *key);
int	 throttle_known(const char *key);
void	 throttle_hold_back(void);

/* ---- upstream.c: one transfer to the old gateway ---- */

/*
 * Sent with every answer, relayed or the gateway's own: an answer is
 * data for a program, never a page of the gateway's origin, so a browser
 * that is led to one must not sniff it into HTML, run or load anything in
 * it, or frame it; sandbox also takes the origin away from it, so no
 * cookie or storage of the gateway's host is reachable. An upstream's own
 * X-Content-Type-Options and Content-Security-Policy are replaced.
 */
#define RELAY_SAFE_HEADERS						\
	"X-Content-Type-Options: nosniff\r\n"				\
	"Content-Security-Policy: default-src 'none'; "			\
	"frame-ancestors 'none'; sandbox\r\n"

/* The Content-Encoding of an answer, as far as the task id scan reads it. */
enum up_coding { UPC_IDENTITY, UPC_GZIP, UPC_DEFLATE, UPC_BR, UPC_OTHER };

struct up_result {
	int		 status;	/* upstream HTTP status, 0 if none */
	int		 headers_sent;	/* response headers reached the client */
	int		 withheld;	/* a final answer kept back (hold_*) */
	enum up_err	 err;
	int		 client_gone;
	int		 answer_refused;	/* before_answer kept it back */
	int		 body_too_large;
	int		 nothing_sent;	/* failed before any request byte */
	int		 json;		/* Content-Type says JSON */
	enum up_coding	 coding;	/* Content-Encoding */
	int		 capture_overflow;	/* capture unusable: over cap,
					   undecodable or not decoded */
	long long	 content_length;	/* of the answer, -1 unknown */
	int64_t		 bytes_out;
	struct buf	 hdrs;		/* the answer's header block */
	struct buf	 held_body;	/* body of a withheld answer */
	struct buf	 capture;	/* JSON answer kept for task ids */
	char		 errbuf[CURL_ERROR_SIZE];
};

struct upstream_req {
	FCGX_Request		*fr;
	const char		*request_id;
	const char		*method;
	const char		*url;		/* full upstream URL */
	const char		*key;		/* channel key, never logged */
	const char		*proxy;		/* "" = RELAY_PROXY or environment */
	long long		 content_length;	/* -1 unknown */
	const struct buf	*held;		/* body prefix already read */
	int			 held_all;	/* held is the whole body */
	int			 hold_401;	/* keep a 401 back (retry elsewhere) */
	int			 hold_5xx;	/* keep a 502/503/504 back */
	int			 capture;	/* keep a JSON answer for task ids */
	int			 capture_any;	/* keep any answer (not only JSON) */
	const char		*extra_headers;	/* lines the relay adds, or NULL */
	struct buf		*keep_headers;	/* gets the header lines relayed */
	/*
	 * Called before the first byte of an answer goes to the client
	 * (NULL: none); -1 keeps the answer back: nothing of it is sent,
	 * the transfer stops, and answer_refused is set.
	 */
	int			(*before_answer)(void *);
	void			*arg;
};

/*
 * Forward one request; the answer streams to the client unless it is a
 * withheld status, which upstream_release sends later (or the caller
 * drops it to try another channel). up_result_free after each call.
 */
void	 upstream_forward(CURL *, const struct upstream_req *, struct up_result *);
/* The worker process's share handle (DNS, TLS sessions), or NULL. */
extern CURLSH	*upstream_share;
int	 upstream_release(const struct upstream_req *, struct up_result *);
void	 up_result_free(struct up_result *);

const char *http_reason(int);

/* ---- task ids: taskids.h, and this host's newest tasks: recent.h ---- */

/* ---- metering (the charge, the usage ring): meter.h ---- */

/* ---- worker.c ---- */
struct dsn;
/* A worker process: one request thread for each of its nthreads charge
 * slots. */
int	 worker_main(int listen_fd, const struct dsn *, const char *host,
	    uint64_t seed, const int *charge_slots, size_t nthreads, int mslot);

#endif
