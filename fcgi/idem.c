#include <openssl/evp.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "idem.h"
#include "log.h"
#include "sql.h"

/*
 * Idempotency keys, as idem.h says. The key's row is the lock: INSERT
 * IGNORE takes it (on any host sharing the database), and whoever finds
 * it taken reads the row: another request's hash is a mismatch, a kept
 * answer is replayed, an answer in flight is waited for. The holder's
 * owner string is in the row, so a statement retried after a reconnect
 * finds its own row rather than a stranger's.
 */

/*
 * A repeat waiting for the first's answer looks again after WAIT_FIRST_MS,
 * then after twice as long each time, up to WAIT_MAX_MS: an answer that
 * comes at once is seen at once, and a repeat that waits the whole
 * IDEMPOTENCY_WAIT costs a statement or two a second, not twenty.
 */
#define WAIT_FIRST_MS	50
#define WAIT_MAX_MS	1000

struct got {
	struct idem	*x;
	int		 found;
	char		 hash[65];
	int		 state;
	char		 owner[96];
	long long	 created_at;
	int		 complete;
};

static int
got_row(void *arg, const struct dbv *c, size_t n)
{
	struct got	*g = arg;

	g->found = 1;
	strlcpy_(g->hash, c[0].t == DBV_STR ? c[0].s : "", sizeof(g->hash));
	g->state = (int)c[1].i;
	strlcpy_(g->owner, c[2].t == DBV_STR ? c[2].s : "", sizeof(g->owner));
	g->created_at = c[3].i;
	g->complete = c[7].i != 0;
	if (g->state == 1 && g->complete) {
		g->x->status = (int)c[4].i;
		buf_reset(&g->x->headers);
		buf_reset(&g->x->body);
		if ((c[5].t == DBV_STR &&
		    buf_add(&g->x->headers, c[5].s, c[5].len) == -1) ||
		    (c[6].t == DBV_STR &&
		    buf_add(&g->x->body, c[6].s, c[6].len) == -1))
			g->complete = 0;
	}
	return 1;
}

/* A key is printable ASCII without blanks at its ends. */
static int
key_ok(const char *k)
{
	size_t	 n = strlen(k);

	return printable_ascii(k, IDEM_KEY_MAX) && k[0] != ' ' &&
	    k[n - 1] != ' ';
}

/* What makes two requests the same: method, path, query, body. */
static void
request_hash(struct idem *x, const char *method, const char *path,
    size_t pathlen, const char *query, const char *body, size_t bodylen)
{
	unsigned char	 d[32];
	char		 len[48];
	EVP_MD_CTX	*c;
	size_t		 i;

	snprintf(len, sizeof(len), "%zu %zu %zu\n", pathlen,
	    query ? strlen(query) : 0, bodylen);
	if ((c = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, method, strlen(method) + 1) != 1 ||
	    EVP_DigestUpdate(c, len, strlen(len)) != 1 ||
	    EVP_DigestUpdate(c, path, pathlen) != 1 ||
	    (query && EVP_DigestUpdate(c, query, strlen(query)) != 1) ||
	    (bodylen && EVP_DigestUpdate(c, body, bodylen) != 1) ||
	    EVP_DigestFinal_ex(c, d, NULL) != 1)
		memset(d, 0, sizeof(d));	/* no two requests match then */
	EVP_MD_CTX_free(c);
	for (i = 0; i < 32; i++)
		snprintf(x->hash + 2 * i, 3, "%02x", d[i]);
}

enum idem_rc
idem_begin(struct db *db, struct idem *x, long long token_id, const char *key,
    const char *owner, const char *method, const char *path, size_t pathlen,
    const char *query, const char *body, size_t bodylen)
{
	struct dbv		 a[5];
	struct got		 g;
	unsigned long long	 n;
	int64_t			 until, step = WAIT_FIRST_MS, left;

	memset(x, 0, sizeof(*x));
	buf_init(&x->headers, 64 * 1024);
	buf_init(&x->body, IDEM_BODY_MAX);
	if (!key_ok(key))
		return IDEM_BAD_KEY;
	x->token_id = token_id;
	strlcpy_(x->key, key, sizeof(x->key));
	strlcpy_(x->owner, owner, sizeof(x->owner));
	request_hash(x, method, path, pathlen, query, body, bodylen);
	until = mono_ms() + cfg_i(CFG_IDEMPOTENCY_WAIT) * 1000;

	for (;;) {
		a[0] = DBI(x->token_id);
		a[1] = DBS(x->key);
		a[2] = DBS(x->hash);
		a[3] = DBS(x->owner);
		a[4] = DBI(now_s());
		if (db_run(db, ST_IDEM_TAKE, a, 5, NULL, NULL, &n) != DB_OK)
			return IDEM_DB;
		if (n == 1) {
			x->held = 1;
			return IDEM_FIRST;
		}
		memset(&g, 0, sizeof(g));
		g.x = x;
		if (db_run(db, ST_IDEM_GET, a, 2, got_row, &g, NULL) != DB_OK)
			return IDEM_DB;
		if (!g.found)		/* the first gave it up: ours now */
			continue;
		if (strcmp(g.owner, x->owner) == 0) {	/* ours, on a retry */
			x->held = 1;
			return IDEM_FIRST;
		}
		if (g.created_at < now_s() - IDEM_TTL) {
			a[2] = DBI(now_s() - IDEM_TTL);
			if (db_run(db, ST_IDEM_EXPIRE, a, 3, NULL, NULL,
			    NULL) != DB_OK)
				return IDEM_DB;
			continue;
		}
		if (strcmp(g.hash, x->hash) != 0)
			return IDEM_MISMATCH;
		if (g.state == 1)
			return g.complete ? IDEM_REPLAY : IDEM_UNKEPT;
		if ((left = until - mono_ms()) <= 0)
			return IDEM_BUSY;
		{
			int64_t		 d = step < left ? step : left;
			struct timespec	 ts = { (time_t)(d / 1000),
			    (long)(d % 1000) * 1000000L };

			nanosleep(&ts, NULL);
			if (step < WAIT_MAX_MS)
				step = step * 2 < WAIT_MAX_MS ? step * 2 :
				    WAIT_MAX_MS;
		}
	}
}

/*
 * Is an answer with this status kept for repeats? A repeat is the same
 * request, so it gets the same answer where the answer is about the
 * request: a success, and a 4xx that says the request itself is wrong
 * (400, 403, 404, 409, 413, 422, ...), as Stripe replays them. Where the
 * answer says "not now, try again" the key is freed, as for a 5xx, so
 * that a correct retry is forwarded: 408 (the upstream timed the request
 * out), 423 (locked), 425 (too early), 429 (too many requests), and 401:
 * the relay checked the client's token itself, so an upstream 401 is
 * about the channel's key, which an operator fixes.
 */
int
idem_keeps(int status)
{
	switch (status) {
	case 401:
	case 408:
	case 423:
	case 425:
	case 429:
		return 0;
	default:
		return status < 500;
	}
}

void
idem_keep(struct db *db, struct idem *x, int status, const char *headers,
    size_t hlen, const char *body, size_t blen, int complete)
{
	struct dbv	 a[7];

	if (!x->held)
		return;
	if (!idem_keeps(status)) {
		idem_release(db, x);
		return;
	}
	x->held = 0;
	if (!complete || blen > IDEM_BODY_MAX) {
		complete = 0;
		blen = 0;
	}
	a[0] = DBI(status);
	a[1] = DBSN(headers ? headers : "", headers ? hlen : 0);
	a[2] = DBSN(body ? body : "", body ? blen : 0);
	a[3] = DBI(complete);
	a[4] = DBI(x->token_id);
	a[5] = DBS(x->key);
	a[6] = DBS(x->owner);
	if (db_run(db, ST_IDEM_KEEP, a, 7, NULL, NULL, NULL) != DB_OK)
		log_err("Idempotency-Key of token %lld: keeping the answer: %s "
		    "(repeats wait, then get 409)", x->token_id, db_error(db));
}

void
idem_release(struct db *db, struct idem *x)
{
	struct dbv	 a[3];

	if (!x->held)
		return;
	x->held = 0;
	a[0] = DBI(x->token_id);
	a[1] = DBS(x->key);
	a[2] = DBS(x->owner);
	if (db_run(db, ST_IDEM_DROP, a, 3, NULL, NULL, NULL) != DB_OK)
		log_err("Idempotency-Key of token %lld: giving it up: %s "
		    "(repeats get 409 until it expires)", x->token_id,
		    db_error(db));
}

void
idem_free(struct idem *x)
{
	buf_free(&x->headers);
	buf_free(&x->body);
}
