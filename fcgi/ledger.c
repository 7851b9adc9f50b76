#include <sys/syscall.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "relay.h"
#include "shm.h"
#include "util.h"

/*
 * What both meterings share (meter.h). Every request thread has a charge
 * slot in shared memory, where its mode keeps the charge in flight, so
 * that the master settles it if the worker dies: the mode says whether
 * the charge stands, and it is kept once. Kept charges go into a ring in
 * the same mapping; the master writes them in batches (logs rows, used
 * counters, task ids, and the spent part of a lease). Strict refunds the
 * database could not take wait in the charge slot until a thread of the
 * worker, or the master once the worker is gone, does them.
 */

#define BATCH_MAX	1000

struct lshm		*L;
__thread struct wslot	*me;		/* this thread's slot */
const char		*lhost;
__thread int		 mypid;
const struct meter	*meter;
static struct db	*mdb;		/* the master's connection */
static struct db	*rdb;		/* and one for gone workers' refunds */
static int		 owed_file;	/* refunds were loaded from a file */

static void	 owed_load(void);
static size_t	 settle_owed(const struct dsn *);

/*
 * The master's statements (master_db): lease metering's return and
 * reconciliation, strict metering's look at a dead worker's charge, and
 * the usage writer's. A batch of usage is written in one transaction:
 * its name into bltcy_applied (so it is written once), the logs rows and
 * task ids up to FLUSH_ROWS at a time (statements of 64, 16, 4 and 1
 * rows), then one UPDATE per channel and, for what lease metering spent,
 * per user, lease and token, the token rows last, as every charge waits
 * for their locks.
 */
#define FLUSH_ROWS	64
#define LOG_COLS	"INSERT INTO logs (user_id, created_at, type, content," \
			" username, token_name, model_name, quota, prompt_tokens," \
			" completion_tokens, use_time, is_stream, channel_id," \
			" token_id, `group`, ip, other) VALUES "
#define LOG_ROW		"(?, ?, 2, ?, ?, ?, ?, ?, 0, 0, ?, 0, ?, ?, ?, ?, ?)"
#define LOG_ARGS	13
#define TASK_COLS	"INSERT IGNORE INTO bltcy_tasks (service, task_id," \
			" channel_id, user_id, token_id, created_at, request_id," \
			" model, path, key_hash, quota, state, updated_at," \
			" next_poll) VALUES "
#define TASK_ROW	"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', ?, ?)"
#define TASK_ARGS	13
#define ROWS4(r)	r ", " r ", " r ", " r
#define ROWS16(r)	ROWS4(r) ", " ROWS4(r) ", " ROWS4(r) ", " ROWS4(r)
#define ROWS64(r)	ROWS16(r) ", " ROWS16(r) ", " ROWS16(r) ", " ROWS16(r)

static const char *const master_sql[] = {
	"CALL bltcy_lease_return(?, ?, ?, 1, ?, ?)",
	"CALL bltcy_lease_reconcile(?, ?)",
	"SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?",
	"SELECT req FROM bltcy_slots WHERE host = ? AND slot = ?",
	"INSERT IGNORE INTO bltcy_applied (op, created_at) VALUES (?, ?)",
	"DELETE FROM bltcy_applied WHERE created_at < ? LIMIT 1000",
	LOG_COLS LOG_ROW,
	LOG_COLS ROWS4(LOG_ROW),
	LOG_COLS ROWS16(LOG_ROW),
	LOG_COLS ROWS64(LOG_ROW),
	TASK_COLS TASK_ROW,
	TASK_COLS ROWS4(TASK_ROW),
	TASK_COLS ROWS16(TASK_ROW),
	TASK_COLS ROWS64(TASK_ROW),
	"UPDATE users SET used_quota = used_quota + ?,"
	" request_count = request_count + ? WHERE id = ?",
	"UPDATE channels SET used_quota = used_quota + ? WHERE id = ?",
	"UPDATE bltcy_leases SET amount = amount - ?"
	" WHERE host = ? AND token_id = ?",
	"DELETE FROM bltcy_leases WHERE host = ? AND amount <= 0",
	"UPDATE tokens SET used_quota = used_quota + ?,"
	" accessed_time = GREATEST(IFNULL(accessed_time, 0), ?) WHERE id = ?",
	"INSERT INTO bltcy_usage_rejected (request_id, host, created_at,"
	" rejected_at, user_id, token_id, channel_id, quota, use_time,"
	" recovered, prepaid, method, path, ip, username, token_name, `group`,"
	" service, task_ids, error, counted)"
	" VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
};

int
meter_init(const struct meter *m, const char *host, size_t threads,
    const struct dsn *dsn)
{
	size_t	 nw = threads < 64 ? 64 : threads;
	void	*p;

	lhost = host;
	meter = m;
	/* never unmapped: the pool lives as long as the master */
	if ((L = shm_map(sizeof(*L))) == NULL ||
	    (p = shm_map(nw * sizeof(struct wslot))) == NULL) {
		L = NULL;
		return -1;
	}
	L->w = p;
	L->nw = nw;
	owed_load();
	return m->start != NULL ? m->start(dsn) : 0;
}

int
meter_worker_slot(void)
{
	int	 i;

	for (i = 0; (size_t)i < L->nw; i++) {
		int zero = 0;
		if (CAS(&L->w[i].active, &zero, -1))	/* -1: taken, idle */
			return i;
	}
	return -1;
}

void
meter_attach(int wslot)
{
	me = wslot >= 0 ? &L->w[wslot] : NULL;
	mypid = (int)syscall(SYS_gettid);
}

int
int_row(void *arg, const struct dbv *c, size_t n)
{
	(void)n;
	*(long long *)arg = c[0].t == DBV_INT ? c[0].i : 0;
	return 1;
}

static int
ring_push(const struct usage *rec, int wslot_pushed)
{
	uint64_t	 h = LOAD(&L->head);

	do {
		if (h - LOAD(&L->tail) >= RING)
			return -1;
	} while (!CAS(&L->head, &h, h + 1));
	if (wslot_pushed && me != NULL)
		STORE(&me->pushed, h + 1);
	L->ring[h % RING] = *rec;
	STORE(&L->ring_at[h % RING], mono_ms());
	STORE(&L->ring[h % RING].ready, h + 1);
	/* half full before the master's tick: have it write now */
	if (me != NULL && h - LOAD(&L->tail) == RING / 2)
		kill(getppid(), SIGALRM);
	return 0;
}

void
usage_keep(const struct usage_end *e)
{
	me->rec.channel_id = e->channel;
	me->rec.use_time = e->use_time;
	me->rec.prepaid = meter->prepaid;
	strlcpy_(me->rec.task_ids, e->tasks ? e->tasks : "",
	    sizeof(me->rec.task_ids));
	strlcpy_(me->rec.key_hash, e->key_hash ? e->key_hash : "",
	    sizeof(me->rec.key_hash));
	/* the master is behind (a slow or absent DB): wait for room */
	for (int waited = 0; ring_push(&me->rec, 1) == -1; waited++) {
		if (waited % 500 == 0)
			log_warn("usage ring full; waiting for the database");
		usleep(2000);
	}
}

void
charge_state(const struct usage *rec, enum charge_state st, unsigned long conn)
{
	if (me == NULL)
		return;
	if (rec != NULL) {
		me->rec = *rec;
		STORE(&me->pushed, 0);
	}
	me->conn = conn;
	STORE(&me->active, (int)st);
}

void
refund_owed(const char *rid, long long token, long long user,
    long long quota, int unlimited)
{
	if (me == NULL)
		return;
	STORE(&me->owing, 0);
	strlcpy_(me->refund.rid, rid, sizeof(me->refund.rid));
	me->refund.token = token;
	me->refund.user = user;
	me->refund.quota = quota;
	me->refund.unlimited = unlimited;
	STORE(&me->owing, 1);
}

int
refund_waiting(int wslot, char rid[40], long long *token, long long *user,
    long long *quota, int *unlimited)
{
	struct wslot	*w;

	if (L == NULL || wslot < 0 || (size_t)wslot >= L->nw)
		return 0;
	w = &L->w[wslot];
	if (!LOAD(&w->owing))
		return 0;
	if (rid != NULL) {
		strlcpy_(rid, w->refund.rid, 40);
		*token = w->refund.token;
		*user = w->refund.user;
		*quota = w->refund.quota;
		*unlimited = w->refund.unlimited;
	}
	return 1;
}

enum db_rc
refund_run(struct db *db, int wslot, const struct owed *o)
{
	struct dbv	 a[11];

	a[0] = DBI(o->user);
	a[1] = DBS(lhost);
	a[2] = DBI(wslot);
	a[3] = DBI(o->unlimited);
	a[4] = a[5] = a[6] = a[7] = DBI(o->quota);
	a[8] = DBI(now_s());
	a[9] = DBI(o->token);
	a[10] = DBS(o->rid);
	return db_run(db, ST_UNCHARGE, a, 11, NULL, NULL, NULL);
}

int
refund_settled(int wslot, const char *rid)
{
	struct wslot	*w;
	int		 owing = 1;

	if (L == NULL || wslot < 0 || (size_t)wslot >= L->nw)
		return 0;
	w = &L->w[wslot];
	return strcmp(w->refund.rid, rid) == 0 && CAS(&w->owing, &owing, 0);
}

/* ---- master side ---- */

struct db *
master_db(const struct dsn *dsn)
{
	if (mdb == NULL)
		mdb = db_new(dsn, master_sql, MS__MAX, 0);
	return mdb;
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
log_rows(struct usage *const *r, size_t n)
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
	return db_run(mdb, rows_stmt(MS_LOG1, n), a, n * LOG_ARGS, NULL, NULL,
	    NULL);
}

struct task_row {
	const struct usage	*r;
	char			 id[TASK_ID_MAX + 1];
	int			 first;	/* of the ids its answer named */
};

/* n (on the ladder) rows of bltcy_tasks. */
static enum db_rc
task_insert(const struct task_row *t, size_t n)
{
	static struct dbv a[FLUSH_ROWS * TASK_ARGS];
	struct dbv	*v;
	size_t		 i;

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
	}
	return db_run(mdb, rows_stmt(MS_TASK1, n), a, n * TASK_ARGS, NULL, NULL,
	    NULL);
}

/* The task ids the answers of r[0..n) named. */
static enum db_rc
task_rows(struct usage *const *r, size_t n)
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
			t[k].first = first;
			first = 0;
			memcpy(t[k].id, p, len);
			t[k].id[len] = '\0';
			if (++k == FLUSH_ROWS) {
				rc = task_insert(t, k);
				k = 0;
			}
		}
	}
	for (i = 0; rc == DB_OK && i < k; i += step)
		rc = task_insert(&t[i], step = rows_step(k - i));
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
sum_update(size_t st, struct sum *s, size_t ns, int with_n, int with_ts,
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
			a[k++] = DBS(lhost);
		a[k++] = DBI(s[i].id);
		rc = db_run(mdb, st, a, k, NULL, NULL, NULL);
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
rejected_row(const struct usage *r, const char *why, int counted)
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
	a[1] = DBS(escaped(lhost, 64, host));
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
	return db_run(mdb, MS_REJECTED, a, 21, NULL, NULL, NULL);
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
write_batch(struct usage *const *r, size_t n, const char *op, const char *why,
    int counted, int *wrapped)
{
	static struct sum	 users[BATCH_MAX], chans[BATCH_MAX];
	static struct sum	 spent[BATCH_MAX], toks[BATCH_MAX];
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
	if ((rc = db_begin(mdb)) != DB_OK)
		return rc;
	a[0] = DBS(op);
	a[1] = DBI(now_s());
	if ((rc = db_run(mdb, MS_APPLIED, a, 2, NULL, NULL, &fresh)) == DB_OK &&
	    fresh == 0) {
		db_rollback(mdb);	/* written before; its reply was lost */
		return DB_OK;
	}
	if (why != NULL)
		rc = rejected_row(r[0], why, counted);
	for (i = 0; why == NULL && rc == DB_OK && i < n; i += k)
		rc = log_rows(r + i, k = rows_step(n - i));
	if (rc == DB_OK && why == NULL)
		rc = task_rows(r, n);
	if (rc == DB_OK)
		rc = sum_update(MS_USER, users, nu, 1, 0, 0);
	if (rc == DB_OK)
		rc = sum_update(MS_CHANNEL, chans, nc, 0, 0, 0);
	if (rc == DB_OK && ns > 0 && (rc = sum_update(MS_SPENT, spent, ns,
	    0, 0, 1)) == DB_OK) {
		a[0] = DBS(lhost);
		rc = db_run(mdb, MS_SPENT_ALL, a, 1, NULL, NULL, NULL);
	}
	/* the token rows last: every charge waits for their locks */
	if (rc == DB_OK)
		rc = sum_update(MS_TOKEN, toks, nt, 0, 1, 0);
	if (rc == DB_OK)
		rc = db_commit(mdb);
	if (rc != DB_OK)
		db_rollback(mdb);
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
refused(enum db_rc rc)
{
	if (rc == DB_SIGNAL)
		return 1;
	if (rc != DB_ERR)
		return 0;
	switch (db_errno(mdb)) {
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
write_split(struct usage *const *r, size_t n, size_t *again)
{
	char		 op[80], why[512];
	enum db_rc	 rc;
	size_t		 k, done;
	int		 wrapped, counted = 1;

	snprintf(op, sizeof(op), "flush:%s:%zu", r[0]->rid, n);
	if ((rc = write_batch(r, n, op, NULL, 1, &wrapped)) == DB_OK)
		return n;
	if (wrapped)
		log_warn("%zu usage records add up to more than a BIGINT holds: "
		    "written in parts", n);
	else if (!refused(rc)) {
		log_err("writing %zu usage records: %s (kept, retrying)",
		    n, db_error(mdb));
		*again = n;
		return 0;
	}
	if (n > 1) {
		k = n / 2;
		if ((done = write_split(r, k, again)) < k)
			return done;
		return k + write_split(r + k, n - k, again);
	}
	/* the name stays: once set aside, a retry finds it applied */
	if (wrapped)	/* one record's own sums cannot wrap; a belt */
		strlcpy_(why, "its sums pass the largest BIGINT", sizeof(why));
	else
		strlcpy_(why, db_error(mdb), sizeof(why));
	if (wrapped || (rc = write_batch(r, 1, op, why, 1, &wrapped)) != DB_OK) {
		if (wrapped || (refused(rc) && out_of_range(db_errno(mdb)))) {
			counted = 0;	/* the counters cannot take it */
			rc = write_batch(r, 1, op, why, 0, &wrapped);
		}
	}
	if (rc != DB_OK) {
		log_err("req=%s usage record refused (%s), and setting it "
		    "aside failed: %s (kept, retrying)", r[0]->rid, why,
		    db_error(mdb));
		*again = 1;
		return 0;
	}
	ADD(&L->rejected, 1);
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
flush_ring(const struct dsn *dsn)
{
	static struct usage	*r[BATCH_MAX];
	static size_t		 again;
	uint64_t		 t = LOAD(&L->tail), h = LOAD(&L->head), i;
	size_t			 n = 0, max = again ? again : BATCH_MAX, done;

	if (t == h || master_db(dsn) == NULL)
		return 0;
	for (i = t; i < h && n < max; i++, n++) {
		r[n] = &L->ring[i % RING];
		if (LOAD(&r[n]->ready) != i + 1)
			break;		/* still being written */
	}
	if (n == 0 || n < again)
		return 0;
	again = 0;
	done = write_split(r, n, &again);
	STORE(&L->tail, t + done);
	return done == n ? n : 0;
}

int
usage_writer_stuck(int64_t now_ms)
{
	uint64_t	 t, h;

	if (L == NULL)
		return 0;
	t = LOAD(&L->tail);
	h = LOAD(&L->head);
	if (h == t)
		return 0;
	if (h - t >= RING)
		return 1;
	/* a record being pushed right now is not old */
	if (LOAD(&L->ring[t % RING].ready) != t + 1)
		return 0;
	return now_ms - LOAD(&L->ring_at[t % RING]) > USAGE_STUCK_MS;
}

uint64_t
usage_rejected_total(void)
{
	return L ? LOAD(&L->rejected) : 0;
}

void
meter_tick(const struct dsn *dsn)
{
	static int64_t	 last_prune;

	while (flush_ring(dsn) == BATCH_MAX)
		;
	settle_owed(dsn);
	if (mdb != NULL && mono_ms() - last_prune > 60000) {
		struct dbv a = DBI(now_s() - 86400);

		last_prune = mono_ms();
		if (db_run(mdb, MS_APPLIED_OLD, &a, 1, NULL, NULL, NULL) != DB_OK)
			log_warn("pruning bltcy_applied: %s", db_error(mdb));
	}
	if (meter->tick != NULL)
		meter->tick(dsn);
}

void
meter_worker_died(const struct dsn *dsn, int wslot)
{
	struct wslot	*w = &L->w[wslot];

	if (meter->dead_charge(dsn, wslot)) {
		uint64_t	 p = LOAD(&w->pushed);

		if (p != 0) {
			/* it died writing to the ring: finish the write */
			if (LOAD(&L->ring[(p - 1) % RING].ready) != p) {
				L->ring[(p - 1) % RING] = w->rec;
				STORE(&L->ring_at[(p - 1) % RING], mono_ms());
				STORE(&L->ring[(p - 1) % RING].ready, p);
			}
		} else {
			w->rec.recovered = 1;
			w->rec.prepaid = meter->prepaid;
			w->rec.use_time = now_s() - w->rec.at;
			if (ring_push(&w->rec, 0) == -1)
				log_err("usage ring full: a dead worker's "
				    "charge of %lld is %s", w->rec.quota,
				    meter->prepaid ? "kept without its logs row" :
				    "refunded at the next start");
		}
	}
	if (LOAD(&w->owing)) {
		/* its slot row must name the request until the refund is done,
		 * so the slot waits for the master to do it (settle_owed) */
		log_warn("WARN req=%s a worker is gone with its refund waiting "
		    "for the database; the master does it", w->refund.rid);
		STORE(&w->active, W_OWED);
		return;
	}
	STORE(&w->active, 0);		/* free for the next worker */
}

/*
 * Strict refunds of gone workers survive the pool too: what the database
 * could not take by the time the master stops is written to a file next
 * to LOG_FILE (named for this host), read at the next start, and done
 * then, each under the slot of the worker that charged it. Without
 * LOG_FILE they are only logged, for an operator to do.
 */
static int
owed_path(char *out, size_t sz)
{
	const char		*log = cfg_s(CFG_LOG_FILE);
	unsigned long long	 h = 1469598103934665603ULL;
	const char		*p;
	int			 n;

	if (log == NULL || *log == '\0')
		return -1;
	for (p = lhost; p != NULL && *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	n = snprintf(out, sz, "%s.refunds-%016llx", log, h);
	return n < 0 || (size_t)n >= sz ? -1 : 0;
}

/* Do the refunds of gone workers; returns how many are still owed. */
static size_t
settle_owed(const struct dsn *dsn)
{
	char	 path[600];
	size_t	 i, left = 0;

	for (i = 0; i < L->nw; i++) {
		struct wslot	*w = &L->w[i];
		struct owed	*o = &w->refund;
		enum db_rc	 rc;

		if (LOAD(&w->active) != W_OWED)
			continue;
		if (left > 0 || (rdb == NULL &&
		    (rdb = db_new(dsn, relay_sql, ST__MAX, 0)) == NULL)) {
			left++;
			continue;
		}
		if ((rc = refund_run(rdb, (int)i, o)) == DB_DOWN) {
			left++;
			continue;
		}
		if (rc != DB_OK)
			log_err("req=%s refund failed for good: %s", o->rid,
			    db_error(rdb));
		else
			log_info("req=%s delayed refund done (its worker is "
			    "gone)", o->rid);
		STORE(&w->owing, 0);
		STORE(&w->active, 0);
	}
	if (left == 0 && owed_file) {
		owed_file = 0;
		if (owed_path(path, sizeof(path)) == 0 && unlink(path) == -1 &&
		    errno != ENOENT)
			log_err("removing %s: %s", path, strerror(errno));
	}
	return left;
}

/* At stop: the refunds still owed, into the file for the next start. */
static void
owed_save(void)
{
	char	 path[600], tmp[640], line[160];
	size_t	 i, n = 0;
	int	 fd, len, bad = 0;

	if (owed_path(path, sizeof(path)) == -1) {
		for (i = 0; i < L->nw; i++)
			if (LOAD(&L->w[i].active) == W_OWED)
				log_err("req=%s refund of %lld to token %lld "
				    "(user %lld) not done: the database is down "
				    "and there is no LOG_FILE to keep it in",
				    L->w[i].refund.rid, L->w[i].refund.quota,
				    L->w[i].refund.token, L->w[i].refund.user);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		log_err("%s: %s", tmp, strerror(errno));
		return;
	}
	for (i = 0; i < L->nw; i++) {
		struct owed *o = &L->w[i].refund;

		if (LOAD(&L->w[i].active) != W_OWED)
			continue;
		len = snprintf(line, sizeof(line), "%zu %lld %lld %lld %d %s\n",
		    i, o->token, o->user, o->quota, o->unlimited, o->rid);
		if (len < 0 || (size_t)len >= sizeof(line) ||
		    write(fd, line, (size_t)len) != len)
			bad = 1;
		log_err("req=%s refund of %lld to token %lld waits for the "
		    "database; kept in %s for the next start", o->rid,
		    o->quota, o->token, path);
		n++;
	}
	if (fsync(fd) == -1)
		bad = 1;
	close(fd);
	if (bad || rename(tmp, path) == -1)
		log_err("writing %s: %s; %zu refunds are only in this log",
		    path, strerror(errno), n);
}

/* The next field of a line: a number in [min, max]; -1 if it is not. */
static int
owed_num(const char **p, long long min, long long max, long long *v)
{
	char	*end;

	errno = 0;
	*v = strtoll(*p, &end, 10);
	if (end == *p || *end != ' ' || errno != 0 || *v < min || *v > max)
		return -1;
	*p = end + 1;
	return 0;
}

/* At start: refunds an earlier run left owed, back into their slots. */
static void
owed_load(void)
{
	char		*buf;
	size_t		 cap = L->nw * 160;
	char		 path[600];
	const char	*p, *eol;
	long long	 slot, tok, user, q, unl;
	ssize_t		 got;
	size_t		 len = 0, n = 0;
	int		 fd;

	if (owed_path(path, sizeof(path)) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if ((buf = malloc(cap)) == NULL) {
		close(fd);
		log_err("%s: out of memory", path);
		return;
	}
	while (len < cap - 1 && (got = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)got;
	close(fd);
	buf[len] = '\0';
	owed_file = 1;
	for (p = buf; (eol = strchr(p, '\n')) != NULL; p = eol + 1) {
		struct wslot	*w;
		size_t		 rl;

		if (owed_num(&p, 0, (long long)L->nw - 1, &slot) == -1 ||
		    owed_num(&p, 1, INT64_MAX, &tok) == -1 ||
		    owed_num(&p, 0, INT64_MAX, &user) == -1 ||
		    owed_num(&p, 0, INT64_MAX, &q) == -1 ||
		    owed_num(&p, 0, 1, &unl) == -1 ||
		    (rl = (size_t)(eol - p)) == 0 ||
		    rl >= sizeof(w->refund.rid) || memchr(p, ' ', rl) != NULL) {
			log_err("%s: a line that is not a refund; skipped",
			    path);
			continue;
		}
		w = &L->w[slot];
		memcpy(w->refund.rid, p, rl);
		w->refund.rid[rl] = '\0';
		w->refund.token = tok;
		w->refund.user = user;
		w->refund.quota = q;
		w->refund.unlimited = (int)unl;
		w->owing = 1;
		w->active = W_OWED;
		n++;
	}
	free(buf);
	log_info("%zu refunds of an earlier run wait for the database (%s)",
	    n, path);
}

/* At stop: write everything, then the mode's own, then the refunds. */
void
meter_shutdown(const struct dsn *dsn)
{
	int	 tries;

	for (tries = 0; tries < 50 && LOAD(&L->tail) != LOAD(&L->head); tries++)
		if (flush_ring(dsn) == 0)
			usleep(100000);
	if (meter->shutdown != NULL)
		meter->shutdown(dsn);
	if (settle_owed(dsn) > 0)
		owed_save();
	db_free(mdb);
	mdb = NULL;
	db_free(rdb);
	rdb = NULL;
}

uint64_t
usage_backlog(void)
{
	return L ? LOAD(&L->head) - LOAD(&L->tail) : 0;
}
