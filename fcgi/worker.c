#include <sys/epoll.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "dsn.h"
#include "log.h"
#include "meter.h"
#include "signals.h"
#include "sql.h"
#include "upstream.h"
#include "worker.h"

/*
 * The worker process: its request threads (worker.h says what they
 * share), the accept loop each runs, and the main thread, which takes the
 * signals so that no request thread ever does.
 */

#define THREAD_STACK	(512 * 1024)	/* touched: a few pages */

/* ---- the request threads of a worker process ---- */

static void
share_lock(CURL *c, curl_lock_data data, curl_lock_access acc, void *arg)
{
	struct proc	*p = arg;

	pthread_mutex_lock(&p->share_mu[data]);
}

static void
share_unlock(CURL *c, curl_lock_data data, void *arg)
{
	struct proc	*p = arg;

	pthread_mutex_unlock(&p->share_mu[data]);
}

/*
 * One request, or -1 once stopping. Every thread waits in an epoll of its
 * own on the listening socket (non-blocking, shared by all workers) with
 * EPOLLEXCLUSIVE, so a connection wakes one waiting thread, not all; the
 * wake pipe, in every thread's epoll, wakes them all to stop. A
 * connection another thread or process took first is EAGAIN.
 */
static int
accept_one(struct worker *w)
{
	struct proc		*p = w->p;
	struct epoll_event	 ev;
	int			 n;

	for (;;) {
		if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
			return -1;
		if ((n = epoll_wait(w->ep, &ev, 1, -1)) == -1) {
			if (errno == EINTR)
				continue;
			log_err("worker: epoll_wait: %s", strerror(errno));
			return -1;
		}
		if (n == 0 || ev.data.fd == p->wake[0])
			continue;	/* stop is checked above */
		if (FCGX_Accept_r(&w->fr) == 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
		    errno != ECONNABORTED) {
			log_err("worker: accept: %s", strerror(errno));
			poll(NULL, 0, 100);	/* e.g. EMFILE: not a busy loop */
		}
	}
}

/* The thread's epoll: the listening socket (exclusive) and the wake pipe. */
static int
epoll_open(struct worker *w)
{
	struct epoll_event	 ev;

	if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) == -1)
		return -1;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = w->p->listen_fd;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, w->p->listen_fd, &ev) == -1)
		return -1;
	ev.events = EPOLLIN;
	ev.data.fd = w->p->wake[0];
	return epoll_ctl(w->ep, EPOLL_CTL_ADD, w->p->wake[0], &ev);
}

static void *
thread_main(void *arg)
{
	struct worker	*w = arg;

	while (accept_one(w) == 0) {
		request_serve(w, &w->fr);
		/*
		 * libfcgi closes with shutdown() and waits up to 2 s for the
		 * front server to close first, so that unread input cannot
		 * turn into a reset that loses the answer. With the input read
		 * to its end there is nothing to lose: close at once.
		 */
		if (FCGX_HasSeenEOF(w->fr.in) == EOF)
			FCGX_Detach(&w->fr);
		FCGX_Finish_r(&w->fr);
	}
	return NULL;
}

static void
stop_threads(struct proc *p)
{
	char	 c = 1;

	__atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
	while (write(p->wake[1], &c, 1) == -1 && errno == EINTR)
		;
}

static int
proc_init(struct proc *p, int fd, const struct dsn *dsn, const char *host,
    int mslot, size_t nthreads)
{
	int	 i;

	memset(p, 0, sizeof(*p));
	p->host = host;
	p->mslot = mslot;
	p->listen_fd = fd;
	pthread_mutex_init(&p->load_mu, NULL);
	pthread_mutex_init(&p->chan_mu, NULL);
	pthread_mutex_init(&p->meta_mu, NULL);
	pthread_cond_init(&p->meta_cv, NULL);
	pthread_mutex_init(&p->no_task_mu, NULL);
	pthread_mutex_init(&p->curl_mu, NULL);
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&p->share_mu[i], NULL);
	if (pipe2(p->wake, O_CLOEXEC) == -1 ||
	    (p->curls = calloc(nthreads, sizeof(*p->curls))) == NULL ||
	    tokcache_init(meter->token_keep_ms) == -1 ||
	    (p->db = db_new(dsn, relay_sql, ST__MAX, 0)) == NULL ||
	    (p->share = curl_share_init()) == NULL)
		return -1;
	/*
	 * DNS answers and TLS sessions are shared; connections are not
	 * (libcurl does not support sharing them between threads at once):
	 * each thread keeps its own to the old gateway.
	 */
	curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(p->share, CURLSHOPT_USERDATA, p);
	curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	upstream_share = p->share;
	/* every worker waits on the socket: take a connection without blocking */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

int
worker_main(int fd, const struct dsn *dsn, const char *host, uint64_t seed,
    const int *charge_slots, size_t nthreads, int mslot)
{
	struct proc		 p;
	struct worker		*ws;
	struct sigaction	 sa;
	pthread_attr_t		 attr;
	sigset_t		 want;
	size_t			 i, started = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	/*
	 * No request thread ever takes a signal, so none cuts a read or a
	 * write (libfcgi takes EINTR for a broken stream): this thread waits
	 * for them instead.
	 */
	signals_block(&want);

	if (proc_init(&p, fd, dsn, host, mslot, nthreads) == -1 ||
	    (ws = calloc(nthreads, sizeof(*ws))) == NULL) {
		log_err("worker: cannot start: %s", strerror(errno));
		return 1;
	}
	meter->worker_start(p.db, charge_slots, nthreads);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	for (i = 0; i < nthreads; i++) {
		struct worker *w = &ws[i];

		w->p = &p;
		w->charge_slot = charge_slots[i];
		w->rng = (seed + 0x9e3779b97f4a7c15ULL * (i + 1)) | 1;
		if (epoll_open(w) == -1 || FCGX_InitRequest(&w->fr, fd, 0) != 0 ||
		    pthread_create(&w->tid, &attr, thread_main, w) != 0) {
			log_err("worker: thread %zu of %zu: %s", i + 1, nthreads,
			    strerror(errno));
			break;
		}
		started++;
	}
	pthread_attr_destroy(&attr);
	while (started == nthreads) {
		struct timespec ts = { 1, 0 };

		if (signals_wait(&want, &ts))
			break;
		meter->retry(p.db, 1);	/* refunds no request came to do */
		db_follow_idle();
	}
	stop_threads(&p);
	for (i = 0; i < started; i++)
		pthread_join(ws[i].tid, NULL);
	meter->retry(p.db, 1);
	for (i = 0; i < started; i++) {
		FCGX_Free(&ws[i].fr, 0);
		close(ws[i].ep);
	}
	while (p.ncurls > 0)
		curl_easy_cleanup(p.curls[--p.ncurls]);
	chan_put(&p, p.chan);
	db_free(p.db);
	curl_share_cleanup(p.share);
	free(ws);
	log_flush();
	return started == nthreads ? 0 : 1;
}
