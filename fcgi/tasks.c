#include <sys/prctl.h>

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "keys.h"
#include "log.h"
#include "signals.h"
#include "sql.h"
#include "tasks.h"
#include "upstream.h"
#include "util.h"

/*
 * The task lifecycle (tasks.h): a state recorded, and the poller process,
 * which asks for tasks nobody polls, times out those that never finish,
 * refunds failed ones whose refund did not happen and applies failures
 * that clients saw before their task was recorded. What an answer says
 * is taskstate.c's.
 */

int
task_seen(struct db *db, const char *service, const char *task_id,
    enum task_state st, const char *reason, long long now)
{
	struct dbv	 a[6];

	a[0] = DBS(service);
	a[1] = DBS(task_id);
	a[2] = DBS(task_state_name(st));
	a[3] = DBS(reason != NULL ? reason : "");
	a[4] = DBI(now);
	a[5] = DBI(now + cfg_i(CFG_TASK_POLL_INTERVAL));
	if (db_run(db, ST_TASK_SEEN, a, 6, NULL, NULL, NULL) != DB_OK) {
		log_warn("task %s of %s: recording %s: %s", task_id, service,
		    task_state_name(st), db_error(db));
		return -1;
	}
	return 0;
}

/* ---- the poller ---- */

#define SWEEP_ROWS	100	/* refunds and timeouts per pass */
#define POLL_ROWS	100	/* due tasks read per pass, at most */
#define POLL_TIMEOUT	30	/* seconds for one poll, all told */
#define POLL_BODY_MAX	(64 * 1024)

/* Its statements: relay_sql's, then poller_own_sql's (sql.h). */
static const char	*poller_sql[TQ__MAX];

struct due {
	char		 service[32];
	char		 id[TASK_ID_MAX + 1];
	long long	 channel;
	char		 path[160];
	char		 key_hash[17];
	long long	 next_poll;
	enum task_state	 state;
	char		 reason[256];	/* TQ_EARLY's */
};

struct due_list {
	struct due	*d;
	size_t		 n, max;
};

static void
col(char *dst, size_t sz, const struct dbv *v)
{
	if (v->t == DBV_STR)
		strlcpy_(dst, v->s, sz);
	else
		dst[0] = '\0';
}

/*
 * (service, task_id) rows; TQ_EARLY's with the reason, TQ_TO_REFUND's with
 * next_poll and state, TQ_DUE's with the rest of the columns.
 */
static int
due_row(void *arg, const struct dbv *c, size_t n)
{
	struct due_list	*l = arg;
	struct due	*d;

	if (l->n == l->max)
		return 1;
	d = &l->d[l->n];
	memset(d, 0, sizeof(*d));
	col(d->service, sizeof(d->service), &c[0]);
	col(d->id, sizeof(d->id), &c[1]);
	if (n == 3)
		col(d->reason, sizeof(d->reason), &c[2]);
	if (n == 4) {
		d->next_poll = c[2].t == DBV_INT ? c[2].i : 0;
		d->state = c[3].t == DBV_STR ? task_state_parse(c[3].s) :
		    TS_UNKNOWN;
	}
	if (n >= 7) {
		d->channel = c[2].t == DBV_INT ? c[2].i : 0;
		col(d->path, sizeof(d->path), &c[3]);
		col(d->key_hash, sizeof(d->key_hash), &c[4]);
		d->next_poll = c[5].t == DBV_INT ? c[5].i : 0;
		d->state = c[6].t == DBV_STR ? task_state_parse(c[6].s) :
		    TS_UNKNOWN;
	}
	l->n++;
	return 0;
}

static int
version_row(void *arg, const struct dbv *c, size_t n)
{
	long long	*v = arg;

	if (c[0].t == DBV_INT)
		*v = c[0].i;
	else if (c[0].t == DBV_STR && parse_ll(c[0].s, 0, INT64_MAX, v) == -1)
		*v = -1;
	return 1;
}

struct poller {
	struct db	*db;
	struct chcache	 cache;
	CURL		*curl;
	double		 bucket;	/* polls it may make now */
	int64_t		 filled_ms;	/* when the bucket was last filled */
	struct due	 due[POLL_ROWS > SWEEP_ROWS ? POLL_ROWS : SWEEP_ROWS];
};

/* The channel cache, reloaded when the 'channels' counter moved. */
static void
cache_fresh(struct poller *p)
{
	long long	 v = -1;

	if (db_run(p->db, ST_PING, NULL, 0, version_row, &v, NULL) != DB_OK) {
		log_warn("task poller: reading the channels' counter: %s",
		    db_error(p->db));
		return;
	}
	if (v != p->cache.version && chcache_load(&p->cache, p->db, v) == -1)
		log_warn("task poller: loading the channels: %s",
		    db_error(p->db));
}

/*
 * Failed and timed-out tasks whose refund was cut off: done now, each by
 * the host that claims it (the refund is once anyway; the claim makes the
 * log line, "refunded", the one host's that did it).
 */
static void
sweep_refunds(struct poller *p, long long now)
{
	struct due_list	 l = { p->due, 0, SWEEP_ROWS };
	struct dbv	 a[3];
	unsigned long long won;
	size_t		 i;

	if (db_run(p->db, TQ_TO_REFUND, NULL, 0, due_row, &l, NULL) != DB_OK) {
		log_warn("task poller: reading refunds owed: %s",
		    db_error(p->db));
		return;
	}
	for (i = 0; i < l.n; i++) {
		a[0] = DBS(l.d[i].service);
		a[1] = DBS(l.d[i].id);
		a[2] = DBI(l.d[i].next_poll);
		won = 0;
		if (db_run(p->db, TQ_REFUND_CLAIM, a, 3, NULL, NULL, &won) !=
		    DB_OK) {
			log_warn("task %s of %s: claiming its refund: %s",
			    l.d[i].id, l.d[i].service, db_error(p->db));
			continue;
		}
		if (won == 0)		/* another host's sweep has it */
			continue;
		a[2] = DBI(now);
		if (db_run(p->db, TQ_REFUND, a, 3, NULL, NULL, NULL) != DB_OK)
			log_warn("task %s of %s: refund: %s", l.d[i].id,
			    l.d[i].service, db_error(p->db));
		else
			log_info("task %s of %s: refunded (its refund had not "
			    "happened)", l.d[i].id, l.d[i].service);
	}
}

/*
 * Failures that clients' polls saw before the task was recorded (its
 * submit's usage on its way to the database): applied, and so refunded,
 * as soon as the row is there. The refund is bltcy_task_seen's, once
 * however often this runs.
 */
static void
sweep_early(struct poller *p, long long now)
{
	struct due_list	 l = { p->due, 0, SWEEP_ROWS };
	struct dbv	 a[2];
	size_t		 i;

	if (db_run(p->db, TQ_EARLY, NULL, 0, due_row, &l, NULL) != DB_OK) {
		log_warn("task poller: reading early failures: %s",
		    db_error(p->db));
		return;
	}
	for (i = 0; i < l.n; i++) {
		if (task_seen(p->db, l.d[i].service, l.d[i].id, TS_FAILED,
		    l.d[i].reason, now) == -1)
			continue;
		log_info("task %s of %s: failed (seen before it was recorded), "
		    "refunded", l.d[i].id, l.d[i].service);
		a[0] = DBS(l.d[i].service);
		a[1] = DBS(l.d[i].id);
		if (db_run(p->db, TQ_EARLY_DONE, a, 2, NULL, NULL, NULL) != DB_OK)
			log_warn("task %s of %s: dropping its early failure: %s",
			    l.d[i].id, l.d[i].service, db_error(p->db));
	}
	a[0] = DBI(now - 86400);
	if (db_run(p->db, TQ_EARLY_OLD, a, 1, NULL, NULL, NULL) != DB_OK)
		log_warn("task poller: pruning early failures: %s",
		    db_error(p->db));
}

static void
sweep_timeouts(struct poller *p, long long now)
{
	struct due_list	 l = { p->due, 0, SWEEP_ROWS };
	struct dbv	 a = DBI(now - cfg_i(CFG_TASK_TIMEOUT));
	size_t		 i;

	if (db_run(p->db, TQ_TIMED_OUT, &a, 1, due_row, &l, NULL) != DB_OK) {
		log_warn("task poller: reading timed-out tasks: %s",
		    db_error(p->db));
		return;
	}
	for (i = 0; i < l.n; i++)
		if (task_seen(p->db, l.d[i].service, l.d[i].id, TS_TIMEOUT,
		    "timeout", now) == 0)
			log_info("task %s of %s: timeout after %lld s, refunded",
			    l.d[i].id, l.d[i].service,
			    (long long)cfg_i(CFG_TASK_TIMEOUT));
}

/*
 * The poll URL: the channel's base and the kind's poll_path with
 * {prefix} (the submit path's first segment), {path} (the submit path)
 * and {id} (the task id, escaped) put in. 0, or -1 when it does not fit.
 */
static int
poll_url(struct poller *p, const struct channel *ch, const struct task_kind *k,
    const struct due *d, struct buf *out)
{
	const char	*t = k->poll_path, *q;
	size_t		 plen = strcspn(d->path, "?"), prefix;
	char		*id;
	int		 rc = 0;

	prefix = d->path[0] == '/' ? 1 + strcspn(d->path + 1, "/?") : 0;
	if ((id = curl_easy_escape(p->curl, d->id, 0)) == NULL)
		return -1;
	rc |= buf_adds(out, ch->base_url);
	while (rc == 0 && *t != '\0') {
		if (*t == '{' && (q = strchr(t, '}')) != NULL) {
			size_t n = (size_t)(q - t + 1);

			if (n == 8 && strncmp(t, "{prefix}", n) == 0)
				rc |= buf_add(out, d->path, prefix);
			else if (n == 6 && strncmp(t, "{path}", n) == 0)
				rc |= buf_add(out, d->path, plen);
			else if (n == 4 && strncmp(t, "{id}", n) == 0)
				rc |= buf_adds(out, id);
			else
				rc |= buf_add(out, t, n);
			t += n;
		} else
			rc |= buf_add(out, t++, 1);
	}
	curl_free(id);
	return rc == 0 ? 0 : -1;
}

/*
 * The key the task was made with (its hash; *own set), else the
 * channel's first.
 */
static const char *
poll_key(const struct channel *ch, const char *key_hash, int *own)
{
	char	 h[65];
	size_t	 i;

	*own = 0;
	if (ch->nkeys == 0)
		return NULL;
	if (key_hash[0] != '\0')
		for (i = 0; i < ch->nkeys; i++) {
			sha256_hex(ch->keys[i], strlen(ch->keys[i]), h);
			if (strncmp(h, key_hash, 16) == 0) {
				*own = 1;
				return ch->keys[i];
			}
		}
	return ch->keys[0];
}

static size_t
poll_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf	*b = arg;

	/* past the cap the transfer stops: no answer of a task is that big */
	return buf_add(b, ptr, nmemb) == 0 ? nmemb : 0;
}

/*
 * A SIGTERM waiting (the poller blocks every signal and takes them with
 * sigtimedwait) ends a poll: the pool's stop waits for no upstream.
 */
static int
poll_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	sigset_t	 pending;

	return sigpending(&pending) == 0 &&
	    (sigismember(&pending, SIGTERM) == 1 ||
	    sigismember(&pending, SIGINT) == 1);
}

/* One GET of a task's state with its own channel and key. */
static void
poll_one(struct poller *p, const struct due *d, long long now)
{
	const struct task_kind	*k;
	const struct channel	*ch;
	const char		*key;
	struct curl_slist	*hl = NULL;
	struct buf		 url, body;
	char			 errbuf[CURL_ERROR_SIZE] = "";
	long			 status = 0;
	struct task_answer	 a;
	struct dbv		 v[6];
	CURLcode		 rc;
	int			 own;

	if ((k = chcache_kind(&p->cache, d->service)) == NULL ||
	    k->poll_path[0] == '\0') {
		log_debug("task %s of %s: no poll path for its service",
		    d->id, d->service);
		return;
	}
	/*
	 * Through its own channel, disabled or not (a disabled one takes no
	 * new jobs, its tasks are still polled); a channel deleted, or with
	 * no usable key, leaves the task to its timeout.
	 */
	if ((ch = chcache_task_channel(&p->cache, d->channel)) == NULL ||
	    ch->base_url[0] == '\0' ||
	    (key = poll_key(ch, d->key_hash, &own)) == NULL) {
		log_debug("task %s of %s: channel %lld is gone or has no "
		    "usable key", d->id, d->service, d->channel);
		return;
	}
	buf_init(&url, 8192);
	buf_init(&body, POLL_BODY_MAX);
	if (poll_url(p, ch, k, d, &url) == -1 ||
	    own_request(p->curl, "GET", url.p, key, "Accept: application/json",
	    ch->set.proxy, (long)POLL_TIMEOUT, poll_body, &body, errbuf,
	    &hl) == -1) {
		log_warn("task %s of %s: poll URL or header too long",
		    d->id, d->service);
		goto done;
	}
	curl_easy_setopt(p->curl, CURLOPT_XFERINFOFUNCTION, poll_progress);
	curl_easy_setopt(p->curl, CURLOPT_NOPROGRESS, 0L);
	rc = curl_easy_perform(p->curl);
	curl_easy_getinfo(p->curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		log_debug("task %s of %s: poll failed: %s", d->id, d->service,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
		goto done;
	}
	if (status < 200 || status > 299) {
		log_debug("task %s of %s: poll answered %ld", d->id, d->service,
		    status);
		goto done;
	}
	task_answer_read(k, body.p, body.len, &a);
	log_debug("task %s of %s: polled, %ld, %s", d->id, d->service, status,
	    task_state_name(a.state));
	if (a.state == TS_UNKNOWN)
		goto done;
	if (a.has_id && strcmp(a.id, d->id) != 0) {
		log_warn("task %s of %s: its poll was answered about task %s; "
		    "ignored", d->id, d->service, a.id);
		goto done;
	}
	if (a.state == TS_LOST) {
		/* another key's account would not know it either */
		if (!own) {
			log_debug("task %s of %s: %s with a key not its own; "
			    "ignored", d->id, d->service, a.reason);
			goto done;
		}
		v[0] = DBS(d->service);
		v[1] = DBS(d->id);
		v[2] = DBS(a.reason);
		v[3] = DBI(now);
		v[4] = DBI(now + cfg_i(CFG_TASK_POLL_INTERVAL));
		v[5] = DBI(TASK_LOST_POLLS);
		if (db_run(p->db, TQ_LOST, v, 6, NULL, NULL, NULL) != DB_OK)
			log_warn("task %s of %s: recording %s: %s", d->id,
			    d->service, a.reason, db_error(p->db));
		else
			log_info("task %s of %s: the upstream does not know it "
			    "(%s); failed and refunded once %d polls in a row "
			    "say so", d->id, d->service, a.reason,
			    TASK_LOST_POLLS);
		goto done;
	}
	if (task_seen(p->db, d->service, d->id, a.state, a.reason, now) == 0 &&
	    a.state != d->state)
		log_info("task %s of %s: %s%s", d->id, d->service,
		    task_state_name(a.state),
		    a.state == TS_FAILED ? ", refunded" : "");
done:
	own_request_done(p->curl, hl);
	buf_free(&url);
	buf_free(&body);
}

/*
 * Due tasks, oldest due first, as many as the bucket holds: each claimed
 * (next_poll moved on) before it is polled, so that of many hosts one
 * polls it, and a poll that dies half way is not repeated at once.
 */
static void
poll_due(struct poller *p, long long now)
{
	long long	 rate = cfg_i(CFG_TASK_POLL_RATE);
	double		 cap = rate / 60.0 < 1 ? 1 : rate / 60.0;
	struct due_list	 l = { p->due, 0, POLL_ROWS };
	struct dbv	 a[4];
	unsigned long long n;
	int64_t		 ms = mono_ms();
	size_t		 i, want;

	if (rate <= 0)
		return;
	p->bucket += (double)(ms - p->filled_ms) / 60000.0 * (double)rate;
	p->filled_ms = ms;
	if (p->bucket > cap)
		p->bucket = cap;
	if (p->bucket < 1)
		return;
	want = (size_t)p->bucket < POLL_ROWS ? (size_t)p->bucket : POLL_ROWS;
	a[0] = DBI(now);
	a[1] = DBI(want);
	l.max = want;
	if (db_run(p->db, TQ_DUE, a, 2, due_row, &l, NULL) != DB_OK) {
		log_warn("task poller: reading due tasks: %s", db_error(p->db));
		return;
	}
	for (i = 0; i < l.n; i++) {
		const struct due *d = &l.d[i];

		a[0] = DBI(now + cfg_i(CFG_TASK_POLL_INTERVAL));
		a[1] = DBS(d->service);
		a[2] = DBS(d->id);
		a[3] = DBI(d->next_poll);
		n = 0;
		if (db_run(p->db, TQ_CLAIM, a, 4, NULL, NULL, &n) != DB_OK) {
			log_warn("task %s of %s: claiming its poll: %s", d->id,
			    d->service, db_error(p->db));
			return;
		}
		if (n != 1)
			continue;	/* another host has it */
		p->bucket -= 1;
		poll_one(p, d, now);
		now = now_s();
	}
}

int
tasks_main(const struct dsn *dsn)
{
	struct poller	*p;
	struct key_probe *kp = NULL;	/* disabled keys' probes (keys.h) */
	sigset_t	 want;
	struct timespec	 second = { 1, 0 };
	int		 rc = 1;

	prctl(PR_SET_NAME, "bltcy-tasks");	/* for ps and top */
	signals_block(&want);
	memcpy(poller_sql, relay_sql, sizeof(relay_sql));
	memcpy(poller_sql + ST__MAX, poller_own_sql, sizeof(poller_own_sql));
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (p->db = db_new(dsn, poller_sql, TQ__MAX, 0)) == NULL ||
	    (p->curl = curl_easy_init()) == NULL) {
		log_err("task poller: cannot start: out of memory");
		goto out;
	}
	if ((kp = keys_probe_new(dsn)) == NULL)
		log_err("task poller: no probes of disabled keys: out of memory");
	p->cache.version = -1;
	p->filled_ms = mono_ms();
	p->bucket = 1;
	for (;;) {
		long long now = now_s();

		cache_fresh(p);
		sweep_refunds(p, now);
		sweep_early(p, now);
		sweep_timeouts(p, now);
		if (p->cache.version != -1) {
			poll_due(p, now_s());
			keys_probe(kp, &p->cache, now_s());
		}
		log_flush();
		db_follow_idle();
		if (signals_wait(&want, &second))
			break;
	}
	rc = 0;
out:
	keys_probe_free(kp);
	if (p != NULL) {
		if (p->curl != NULL)
			curl_easy_cleanup(p->curl);
		chcache_free(&p->cache);
		db_free(p->db);
		free(p);
	}
	log_flush();
	return rc;
}
