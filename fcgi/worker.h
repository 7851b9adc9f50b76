#ifndef BLTCY_WORKER_H
#define BLTCY_WORKER_H

/*
 * A worker process: worker_main is the master's way in; the rest is
 * private to worker.c (the process and its threads), request.c (one
 * request, start to end) and cache.c (what the threads share). worker.c
 * calls into the other two; request.c into cache.c.
 */

#include <pthread.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "auth.h"
#include "channels.h"
#include "taskids.h"

/*
 * A worker process runs RELAY_THREADS request threads, each answering one
 * FastCGI request at a time. They share one MariaDB connection (db.c
 * holds it per call), the token and channel caches, curl's DNS and TLS
 * session caches, and a stack of idle curl easy handles: a transfer takes
 * the one given back last, whose connection to the old gateway is the
 * most likely still open, so a process keeps as many connections as it
 * had transfers at once. A request waiting for the old gateway costs a
 * thread, not a process or a database connection.
 *
 * Lock order: proc.load_mu, then proc.chan_mu; no other lock is held
 * while taking one of the others (acache stripes, rcache_mu, meta_mu,
 * no_task_mu, curl_mu), and none is held across a database call but
 * load_mu.
 */

/*
 * Ids a request names that turned out to be nobody's task are remembered
 * for NO_TASK_MS, so that the words of an API's paths ("v1", "videos",
 * "text2video") cost one lookup every NO_TASK_MS, not one per request. A
 * task id becomes known only through the answer that creates it, which
 * goes to its owner; this host's newest tasks are looked at first anyway.
 */
#define NO_TASK		1024
#define NO_TASK_MS	2000

/* What the threads of a worker process share. */
struct proc {
	struct db	*db;		/* one connection for all threads */
	const char	*host;
	int		 mslot;		/* the master's number for us */
	CURLSH		*share;		/* DNS and TLS sessions */
	pthread_mutex_t	 curl_mu;
	CURL		**curls;	/* easy handles not in use, last in on top */
	size_t		 ncurls;
	pthread_mutex_t	 share_mu[CURL_LOCK_DATA_LAST];

	pthread_mutex_t	 load_mu;	/* one thread reloads the channels */
	pthread_mutex_t	 chan_mu;	/* chan, chan_stale, refs */
	struct chsnap	*chan;
	int		 chan_stale;

	pthread_mutex_t	 meta_mu;
	pthread_cond_t	 meta_cv;	/* a reading of the counters ended */
	int		 meta_reading;	/* a thread reads them now */
	long long	 meta_chan;	/* the change counters, as of meta_at */
	long long	 meta_auth;
	int64_t		 meta_at;

	pthread_mutex_t	 no_task_mu;
	struct no_task {		/* ids known to be nobody's task */
		char		 service[SERVICE_SLOT];
		char		 id[TASK_ID_MAX + 1];
		int64_t		 until;
	}		 no_task[NO_TASK];

	int		 stop;		/* atomic */
	int		 wake[2];	/* readable once stopping */
	int		 listen_fd;
};

/* The channel table one load made; requests hold it until they end. */
struct chsnap {
	struct chcache	 c;
	int		 refs;		/* under proc.chan_mu */
};

/* A request thread. */
struct worker {
	struct proc	*p;
	pthread_t	 tid;
	uint64_t	 rng;
	int		 charge_slot;	/* its charge slot (ledger.c) */
	int		 ep;		/* its epoll (accept_one) */
	FCGX_Request	 fr;
};

/* cache.c: what the threads share */
int	 tokcache_init(int64_t row_lifetime_ms);
int	 tokcache_get(struct proc *, const char *key, struct token_row *,
	    long long *auth_version, long long *chan_version);
void	 tokcache_put(const char *key, const struct token_row *,
	    long long chan_version, long long auth_version, int64_t at);
int	 tokcache_claim(const char *key);
void	 tokcache_done(const char *key);
int	 refused_get(struct proc *, const char *key);
void	 refused_put(const char *key, long long auth);
void	 refused_drop(const char *key);
void	 counters_seen(struct proc *, long long chan, long long auth, int64_t);
int	 counters_auth(struct proc *, long long *auth);
struct chsnap *chan_get(struct proc *, long long version);
void	 chan_put(struct proc *, struct chsnap *);
void	 chan_stale(struct proc *);
int	 known_no_tasks(struct proc *, const char *service,
	    const struct task_ids *);
void	 remember_no_tasks(struct proc *, const char *service,
	    const struct task_ids *);
CURL	*curl_get(struct proc *);
void	 curl_put(struct proc *, CURL *);

/* request.c */
void	 request_serve(struct worker *, FCGX_Request *);

/* worker.c: a worker process, one request thread for each of its
 * nthreads charge slots. */
struct dsn;
int	 worker_main(int listen_fd, const struct dsn *, const char *host,
	    uint64_t seed, const int *charge_slots, size_t nthreads, int mslot);

#endif
