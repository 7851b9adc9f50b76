#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "meter.h"
#include "places.h"
#include "shared.h"
#include "sql.h"
#include "taskids.h"
#include "util.h"

/*
 * The usage ring (meter.h): kept charges go into a ring in shared memory,
 * which the master writes in batches (logs rows, used counters, task ids,
 * and the spent part of a lease) on its connection (master_sql).
 */

#define BATCH_MAX	1000

struct usage_ring {
	uint64_t	 head, tail;
	struct usage	 rec[RING];
	int64_t		 at[RING];	/* mono ms each record was pushed */
	uint64_t	 rejected;	/* records the DB refused, set aside */
	int		 freed;		/* moves on when the tail does */
};

static struct usage_ring	*ring;		/* never unmapped */
static const char		*pool_host;	/* this pool's instance name */

int
usage_init(const char *host)
{
	pool_host = host;
	return (ring = shm_map(sizeof(*ring))) == NULL ? -1 : 0;
}

int
usage_push(const struct usage *rec, uint64_t *ring_pos)
{
	uint64_t	 h = LOAD(&ring->head);

	do {
		if (h - LOAD(&ring->tail) >= RING)
			return -1;
	} while (!CAS(&ring->head, &h, h + 1));
	if (ring_pos != NULL)
		STORE(ring_pos, h + 1);
	ring->rec[h % RING] = *rec;
	STORE(&ring->at[h % RING], mono_ms());
	STORE(&ring->rec[h % RING].ready, h + 1);
	/* half full before the master's tick: have it write now */
	if (ring_pos != NULL && h - LOAD(&ring->tail) == RING / 2)
		kill(getppid(), SIGALRM);
	return 0;
}

void
usage_wait_room(void)
{
	int	 seen = LOAD(&ring->freed);

	if (LOAD(&ring->head) - LOAD(&ring->tail) >= RING)
		shm_wait(&ring->freed, seen, 100);
}

void
usage_push_finish(const struct usage *rec, uint64_t p)
{
	if (LOAD(&ring->rec[(p - 1) % RING].ready) == p)
		return;
	ring->rec[(p - 1) % RING] = *rec;
	STORE(&ring->at[(p - 1) % RING], mono_ms());
	STORE(&ring->rec[(p - 1) % RING].ready, p);
}

/* Sums per user, channel or token of one batch. */
struct sum {
	long long	 id, q, n, ts;
};

/* q (and one request, at ts) onto id's sum: 0, or -1 if it would wrap. */
static int
sum_add(struct sum *a, size_t *na, long long id, long long q, long long ts)
{
	size_t	 i;

	for (i = 0; i < *na && a[i].id != id; i++)
		;
	if (i == *na) {
		memset(&a[i], 0, sizeof(a[i]));
		a[i].id = id;
		(*na)++;
	}
	if (quota_add(&a[i].q, q) == -1)
		return -1;
	a[i].n++;
	if (ts > a[i].ts)
		a[i].ts = ts;
	return 0;
}

/* The most rows of the ladder 64, 16, 4, 1 not above n. */
static size_t
rows_step(size_t n)
{
	size_t	 k = FLUSH_ROWS;

	while (k > n)
		k /= 4;
	return k;
}

/* Of the statements for 1, 4, 16 and 64 rows from st1, that for k. */
static size_t
rows_stmt(size_t st1, size_t k)
{
	return st1 + (k == 64 ? 3 : k == 16 ? 2 : k == 4);
}

/* The logs rows of r[0..n), n on the ladder. */
static enum db_rc
log_rows(struct db *db, struct usage *const *r, size_t n)
{
	static struct dbv a[FLUSH_ROWS * LOG_ARGS];
	struct dbv	*v;
	static char	 content[FLUSH_ROWS][320], model[FLUSH_ROWS][48];
	static char	 other[FLUSH_ROWS][80];
	size_t		 i;

	for (i = 0, v = a; i < n; i++, v += LOG_ARGS) {
		snprintf(content[i], sizeof(content[i]),
		    "Bltcy透传模式（%s %s），消费配额: %lld", r[i]->method, r[i]->path,
		    r[i]->quota);
		snprintf(model[i], sizeof(model[i]), "%s_passthrough", r[i]->service);
		snprintf(other[i], sizeof(other[i]), "{\"request_id\":\"%s\"%s}",
		    r[i]->rid, r[i]->recovered ? ",\"recovered\":true" : "");
		v[0] = DBI(r[i]->user_id);
		v[1] = DBI(r[i]->at);
		v[2] = DBS(content[i]);
		v[3] = DBS(r[i]->username);
		v[4] = DBS(r[i]->token_name);
		v[5] = DBS(model[i]);
		v[6] = DBI(r[i]->quota);
		v[7] = DBI(r[i]->use_time);
		v[8] = DBI(r[i]->channel_id);
		v[9] = DBI(r[i]->token_id);
		v[10] = DBS(r[i]->group);
		v[11] = DBS(r[i]->ip);
		v[12] = DBS(other[i]);
	}
	return db_run(db, rows_stmt(MS_LOG1, n), a, n * LOG_ARGS, NULL, NULL,
	    NULL);
}

struct task_row {
	const struct usage	*r;
	size_t			 rec;	/* r's index in the batch */
	char			 id[TASK_ID_MAX + 1];
	int			 first;	/* of the ids its answer named */
};

/*
 * n (on the ladder) rows of bltcy_tasks; written[rec] set where the first
 * row of a record holding places went in (INSERT IGNORE: an id already
 * there was not this request's, and holds no place of it).
 */
static enum db_rc
task_insert(struct db *db, const struct task_row *t, size_t n,
    unsigned char *written)
{
	static struct dbv a[FLUSH_ROWS * TASK_ARGS];
	struct dbv	*v, q[3];
	unsigned long long aff = 0;
	long long	 mine;
	size_t		 i;
	enum db_rc	 rc;

	for (i = 0, v = a; i < n; i++, v += TASK_ARGS) {
		v[0] = DBS(t[i].r->service);
		v[1] = DBS(t[i].id);
		v[2] = DBI(t[i].r->channel_id);
		v[3] = DBI(t[i].r->user_id);
		v[4] = DBI(t[i].r->token_id);
		v[5] = DBI(t[i].r->at);
		v[6] = DBS(t[i].r->rid);
		v[7] = DBS(t[i].r->model);
		v[8] = DBSN(t[i].r->path, strcspn(t[i].r->path, "?"));
		v[9] = DBS(t[i].r->key_hash);
		/* one job, one charge: a refund gives back what it cost once */
		v[10] = DBI(t[i].first ? t[i].r->quota : 0);
		v[11] = DBI(t[i].r->at);
		v[12] = DBI(t[i].r->at + cfg_i(CFG_TASK_POLL_INTERVAL));
		/* one job, one place of each scope its submit held */
		v[13] = DBI(t[i].first ? t[i].r->places : 0);
	}
	rc = db_run(db, rows_stmt(MS_TASK1, n), a, n * TASK_ARGS, NULL, NULL,
	    &aff);
	for (i = 0; rc == DB_OK && i < n; i++) {
		if (!t[i].first || t[i].r->places == 0)
			continue;
		if (aff == n) {		/* every row went in */
			written[t[i].rec] = 1;
			continue;
		}
		q[0] = DBS(t[i].r->service);
		q[1] = DBS(t[i].id);
		q[2] = DBS(t[i].r->rid);
		mine = 0;
		rc = db_run(db, MS_TASK_MINE, q, 3, db_int_row, &mine, NULL);
		written[t[i].rec] = mine > 0;
	}
	return rc;
}

/* The task ids the answers of r[0..n) named (written: task_insert). */
static enum db_rc
task_rows(struct db *db, struct usage *const *r, size_t n,
    unsigned char *written)
{
	static struct task_row t[FLUSH_ROWS];
	size_t		 i, k = 0, len, step;
	enum db_rc	 rc = DB_OK;

	for (i = 0; rc == DB_OK && i < n; i++) {
		const char	*p = r[i]->task_ids;
		int		 first = 1;

		for (; rc == DB_OK && *p != '\0'; p += len + (p[len] == ',')) {
			if ((len = strcspn(p, ",")) == 0 || len > TASK_ID_MAX)
				continue;
			t[k].r = r[i];
			t[k].rec = i;
			t[k].first = first;
			first = 0;
			memcpy(t[k].id, p, len);
			t[k].id[len] = '\0';
			if (++k == FLUSH_ROWS) {
				rc = task_insert(db, t, k, written);
				k = 0;
			}
		}
	}
	for (i = 0; rc == DB_OK && i < k; i += step)
		rc = task_insert(db, &t[i], step = rows_step(k - i),
		    written);
	return rc;
}

static int
sum_cmp(const void *a, const void *b)
{
	const struct sum *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* n (1..3) numbers into statement st, for each of the sums s[0..ns). */
static enum db_rc
sum_update(struct db *db, size_t st, struct sum *s, size_t ns, int with_n, int with_ts,
    int with_host)
{
	struct dbv	 a[4];
	size_t		 i, k;
	enum db_rc	 rc = DB_OK;

	qsort(s, ns, sizeof(*s), sum_cmp);	/* rows in one order */
	for (i = 0; rc == DB_OK && i < ns; i++) {
		k = 0;
		a[k++] = DBI(s[i].q);
		if (with_n)
			a[k++] = DBI(s[i].n);
		if (with_ts)
			a[k++] = DBI(s[i].ts);
		if (with_host)
			a[k++] = DBS(pool_host);
		a[k++] = DBI(s[i].id);
		rc = db_run(db, st, a, k, NULL, NULL, NULL);
	}
	return rc;
}

/*
 * Text for bltcy_usage_rejected: the bytes of field s (at most max, as
 * it may lack its NUL) with every byte that is not part of valid UTF-8,
 * every control byte and the backslash written as \xNN, so that the row
 * holds exactly what the record held and the database cannot refuse it.
 * out has room for 4 * max + 1.
 */
static const char *
escaped(const char *s, size_t max, char *out)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, o = 0, n = strnlen(s, max), k, j;
	unsigned int		 cp;

	while (i < n) {
		k = p[i] < 0x80 ? 1 : (p[i] & 0xe0) == 0xc0 ? 2 :
		    (p[i] & 0xf0) == 0xe0 ? 3 : (p[i] & 0xf8) == 0xf0 ? 4 : 0;
		cp = k == 1 ? p[i] : k == 2 ? p[i] & 0x1fU : k == 3 ?
		    p[i] & 0x0fU : p[i] & 0x07U;
		for (j = 1; k > 1 && j < k; j++) {
			if (i + j >= n || (p[i + j] & 0xc0) != 0x80) {
				k = 0;
				break;
			}
			cp = cp << 6 | (p[i + j] & 0x3fU);
		}
		/* overlong forms, surrogates and beyond U+10FFFF are invalid */
		if ((k == 2 && cp < 0x80) || (k == 3 && cp < 0x800) ||
		    (k == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			k = 0;
		if (k == 0 || (k == 1 && (p[i] < 0x20 || p[i] == 0x7f ||
		    p[i] == '\\'))) {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[p[i] >> 4];
			out[o++] = hex[p[i] & 0xf];
			i++;
			continue;
		}
		memcpy(out + o, p + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
	return out;
}

/* A buffer for field f of struct usage, escaped */
#define ESC(f)	char f[4 * sizeof(((struct usage *)0)->f) + 1]

/* The record set aside, with the reason the database gave for it, and
 * whether its counters were written. */
static enum db_rc
rejected_row(struct db *db, const struct usage *r, const char *why,
    int counted)
{
	struct dbv	 a[21];
	ESC(rid);
	ESC(method);
	ESC(path);
	ESC(ip);
	ESC(username);
	ESC(token_name);
	ESC(group);
	ESC(service);
	ESC(task_ids);
	char		 err[4 * 512 + 1], host[4 * 64 + 1];

	a[0] = DBS(escaped(r->rid, sizeof(r->rid), rid));
	a[1] = DBS(escaped(pool_host, 64, host));
	a[2] = DBI(r->at);
	a[3] = DBI(now_s());
	a[4] = DBI(r->user_id);
	a[5] = DBI(r->token_id);
	a[6] = DBI(r->channel_id);
	a[7] = DBI(r->quota);
	a[8] = DBI(r->use_time);
	a[9] = DBI(r->recovered);
	a[10] = DBI(r->prepaid);
	a[11] = DBS(escaped(r->method, sizeof(r->method), method));
	a[12] = DBS(escaped(r->path, sizeof(r->path), path));
	a[13] = DBS(escaped(r->ip, sizeof(r->ip), ip));
	a[14] = DBS(escaped(r->username, sizeof(r->username), username));
	a[15] = DBS(escaped(r->token_name, sizeof(r->token_name), token_name));
	a[16] = DBS(escaped(r->group, sizeof(r->group), group));
	a[17] = DBS(escaped(r->service, sizeof(r->service), service));
	a[18] = DBS(escaped(r->task_ids, sizeof(r->task_ids), task_ids));
	a[19] = DBS(escaped(why, 512, err));
	a[20] = DBI(counted);
	return db_run(db, MS_REJECTED, a, 21, NULL, NULL, NULL);
}

/*
 * Write the records r[0..n) in one transaction, once under the name op.
 * With why (n is 1 then), the record's text goes into bltcy_usage_rejected
 * instead of a logs row and task ids; its counters are written all the
 * same if counted, so that the charge it stands for is kept, and are left
 * as they are if not (the database refused them for range). What lease
 * metering spent of its lease is taken from it either way: the charge
 * stands. *wrapped is set, and nothing written, when the batch's sums
 * would pass the largest BIGINT (a smaller batch fits).
 */
static enum db_rc
write_batch(struct db *db, struct usage *const *r, size_t n, const char *op,
    const char *why, int counted, int *wrapped)
{
	static struct sum	 users[BATCH_MAX], chans[BATCH_MAX];
	static struct sum	 spent[BATCH_MAX], toks[BATCH_MAX];
	static unsigned char	 written[BATCH_MAX];
	size_t			 nu = 0, nc = 0, ns = 0, nt = 0, i, k;
	unsigned long long	 fresh = 0;
	struct dbv		 a[2];
	enum db_rc		 rc;
	int			 bad = 0;

	*wrapped = 0;
	for (i = 0; i < n; i++) {
		/*
		 * prepaid: a strict charge wrote the token's and user's rows
		 * already (also accessed_time). They are not locked here:
		 * the charger holds them in a transaction of its own.
		 */
		if (!r[i]->prepaid)
			bad |= sum_add(spent, &ns, r[i]->token_id, r[i]->quota, 0);
		if (!r[i]->prepaid && counted) {
			bad |= sum_add(users, &nu, r[i]->user_id, r[i]->quota, 0);
			bad |= sum_add(toks, &nt, r[i]->token_id, r[i]->quota,
			    r[i]->at);
		}
		if (counted)
			bad |= sum_add(chans, &nc, r[i]->channel_id, r[i]->quota, 0);
	}
	if (bad) {
		*wrapped = 1;
		return DB_ERR;
	}
	if ((rc = db_begin(db)) != DB_OK)
		return rc;
	a[0] = DBS(op);
	a[1] = DBI(now_s());
	if ((rc = db_run(db, MS_APPLIED, a, 2, NULL, NULL, &fresh)) == DB_OK &&
	    fresh == 0) {
		db_rollback(db);	/* written before; its reply was lost */
		return DB_OK;
	}
	if (why != NULL)
		rc = rejected_row(db, r[0], why, counted);
	for (i = 0; why == NULL && rc == DB_OK && i < n; i += k)
		rc = log_rows(db, r + i, k = rows_step(n - i));
	memset(written, 0, n);
	if (rc == DB_OK && why == NULL)
		rc = task_rows(db, r, n, written);
	/* a task set aside frees its places: it is no open job */
	if (rc == DB_OK)
		rc = places_written(db, r, n, written);
	if (rc == DB_OK)
		rc = sum_update(db, MS_USER, users, nu, 1, 0, 0);
	if (rc == DB_OK)
		rc = sum_update(db, MS_CHANNEL, chans, nc, 0, 0, 0);
	if (rc == DB_OK && ns > 0 && (rc = sum_update(db, MS_SPENT, spent, ns,
	    0, 0, 1)) == DB_OK) {
		a[0] = DBS(pool_host);
		rc = db_run(db, MS_SPENT_ALL, a, 1, NULL, NULL, NULL);
	}
	/* the token rows last: every charge waits for their locks */
	if (rc == DB_OK)
		rc = sum_update(db, MS_TOKEN, toks, nt, 0, 1, 0);
	if (rc == DB_OK)
		rc = db_commit(db);
	if (rc != DB_OK)
		db_rollback(db);
	return rc;
}

/*
 * Whether the server refused what a batch holds (a value it will not
 * take: bad text, too long, a CHECK or a trigger), rather than failing for
 * a reason of its own that passes (lock wait, deadlock, a full disk, read
 * only, a missing table or grant), after which the same batch is tried
 * again.
 */
static int
refused(struct db *db, enum db_rc rc)
{
	if (rc == DB_SIGNAL)
		return 1;
	if (rc != DB_ERR)
		return 0;
	switch (db_errno(db)) {
	case 0:
	case 1021: case 1030: case 1037: case 1038: case 1040: case 1041:
	case 1054: case 1114: case 1142: case 1146: case 1180: case 1181:
	case 1205: case 1213: case 1290: case 1792: case 1836:
		return 0;
	}
	return 1;
}

/* The server refused a value for its range (a counter past a BIGINT). */
static int
out_of_range(unsigned int err)
{
	return err == 1264 || err == 1690;
}

/*
 * Write r[0..n), named by its first record and n. A batch the server
 * refuses is split in halves until the records it refuses are found; each
 * of those is set aside (bltcy_usage_rejected), so that one record can
 * never hold up the others. One whose counters the server refuses for
 * range is set aside with its counters left as they are. A batch whose
 * sums would pass the largest BIGINT is split the same way. Returns how
 * many records from r[0] are done; fewer than n when the database failed
 * otherwise, and then *again is the size of the batch to try again from
 * there, under the same name, so that one whose reply was lost is
 * recognised and not written twice.
 */
static size_t
write_split(struct db *db, struct usage *const *r, size_t n, size_t *again)
{
	char		 op[80], why[512];
	enum db_rc	 rc;
	size_t		 k, done;
	int		 wrapped, counted = 1;

	snprintf(op, sizeof(op), "flush:%s:%zu", r[0]->rid, n);
	if ((rc = write_batch(db, r, n, op, NULL, 1, &wrapped)) == DB_OK)
		return n;
	if (wrapped)
		log_warn("%zu usage records add up to more than a BIGINT holds: "
		    "written in parts", n);
	else if (!refused(db, rc)) {
		/* lost to another host's transaction, or the database away */
		if (rc == DB_CONFLICT)
			log_warn("writing %zu usage records lost a conflict "
			    "(kept, retrying)", n);
		else
			log_err("writing %zu usage records: %s (kept, retrying)",
			    n, db_error(db));
		*again = n;
		return 0;
	}
	if (n > 1) {
		k = n / 2;
		if ((done = write_split(db, r, k, again)) < k)
			return done;
		return k + write_split(db, r + k, n - k, again);
	}
	/* the name stays: once set aside, a retry finds it applied */
	if (wrapped)	/* one record's own sums cannot wrap; a belt */
		strlcpy_(why, "its sums pass the largest BIGINT", sizeof(why));
	else
		strlcpy_(why, db_error(db), sizeof(why));
	if (wrapped || (rc = write_batch(db, r, 1, op, why, 1, &wrapped)) != DB_OK) {
		if (wrapped || (refused(db, rc) && out_of_range(db_errno(db)))) {
			counted = 0;	/* the counters cannot take it */
			rc = write_batch(db, r, 1, op, why, 0, &wrapped);
		}
	}
	if (rc != DB_OK) {
		log_err("req=%s usage record refused (%s), and setting it "
		    "aside failed: %s (kept, retrying)", r[0]->rid, why,
		    db_error(db));
		*again = 1;
		return 0;
	}
	ADD(&ring->rejected, 1);
	if (counted)
		log_err("req=%s usage record refused by the database: %s; its "
		    "charge of %lld is kept, the record set aside in "
		    "bltcy_usage_rejected", r[0]->rid, why, r[0]->quota);
	else
		log_err("req=%s usage record refused by the database: %s; its "
		    "charge of %lld is kept, but the used counters cannot take "
		    "it and are left as they are; the record is set aside in "
		    "bltcy_usage_rejected (counted = 0)", r[0]->rid, why,
		    r[0]->quota);
	return 1;
}

/*
 * Write what the ring holds. Returns the number of records done (written
 * or set aside). A batch that failed is tried again as it was.
 */
static size_t
flush_ring(struct db *db)
{
	static struct usage	*r[BATCH_MAX];
	static size_t		 again;
	uint64_t		 t = LOAD(&ring->tail), h = LOAD(&ring->head), i;
	size_t			 n = 0, max = again ? again : BATCH_MAX, done;

	if (t == h || db == NULL)
		return 0;
	for (i = t; i < h && n < max; i++, n++) {
		r[n] = &ring->rec[i % RING];
		if (LOAD(&r[n]->ready) != i + 1)
			break;		/* still being written */
	}
	if (n == 0 || n < again)
		return 0;
	again = 0;
	done = write_split(db, r, n, &again);
	STORE(&ring->tail, t + done);
	ADD(&ring->freed, 1);
	shm_wake(&ring->freed);
	return done == n ? n : 0;
}

void
usage_write(struct db *db)
{
	static int64_t	 last_prune;

	while (flush_ring(db) == BATCH_MAX)
		;
	/* the names of batches written, kept a day against a lost reply */
	if (db != NULL && mono_ms() - last_prune > 60000) {
		struct dbv a = DBI(now_s() - 86400);

		last_prune = mono_ms();
		if (db_run(db, MS_APPLIED_OLD, &a, 1, NULL, NULL, NULL) != DB_OK)
			log_warn("pruning bltcy_applied: %s", db_error(db));
	}
}

void
usage_drain(struct db *db)
{
	int	 tries;

	for (tries = 0; tries < 50 && LOAD(&ring->tail) != LOAD(&ring->head);
	    tries++)
		if (flush_ring(db) == 0)
			usleep(100000);
}

int
usage_writer_stuck(int64_t now_ms)
{
	uint64_t	 t, h;

	if (ring == NULL)
		return 0;
	t = LOAD(&ring->tail);
	h = LOAD(&ring->head);
	if (h == t)
		return 0;
	if (h - t >= RING)
		return 1;
	/* a record being pushed right now is not old */
	if (LOAD(&ring->rec[t % RING].ready) != t + 1)
		return 0;
	return now_ms - LOAD(&ring->at[t % RING]) > USAGE_STUCK_MS;
}

uint64_t
usage_rejected_total(void)
{
	return ring ? LOAD(&ring->rejected) : 0;
}

uint64_t
usage_backlog(void)
{
	return ring ? LOAD(&ring->head) - LOAD(&ring->tail) : 0;
}
