#include <sys/mman.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "jsonw.h"
#include "log.h"
#include "relay.h"

/*
 * Strict metering's settled charges on their way to being closed. A
 * worker pushes the request id (with use_time and the task ids of the
 * answer) into a ring in shared memory and moves on; the master closes
 * what the ring holds every 100 ms in one CALL bltcy_charge_close, which
 * records the task ids, moves the quota onto the channels' counters and
 * deletes the charges. The ring outlives any worker; what a crash of the
 * whole host leaves open is closed by the next start's recovery (the
 * charge stands, its logs row says "recovered").
 */

#define RING		1024
#define BATCH_MAX	512

struct closing {
	uint64_t	 ready;		/* ring position + 1 once written */
	char		 rid[40];
	long long	 use_time;
	char		 tasks[256];
};

struct bshm {
	uint64_t	 head, tail;
	struct closing	 ring[RING];
};

static struct bshm	*B;
static struct db	*bdb;

static const char *const batch_sql[] = { "CALL bltcy_charge_close(?)" };

#define LOAD(p)		__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

int
batch_init(void)
{
	B = mmap(NULL, sizeof(*B), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (B == MAP_FAILED) {
		B = NULL;
		return -1;
	}
	return 0;
}

int
batch_push(const char *rid, long long use_time, const char *tasks)
{
	uint64_t	 h;
	struct closing	*c;

	if (B == NULL || (tasks != NULL && strlen(tasks) >= sizeof(c->tasks)))
		return -1;
	h = LOAD(&B->head);
	do {
		if (h - LOAD(&B->tail) >= RING)
			return -1;
	} while (!__atomic_compare_exchange_n(&B->head, &h, h + 1, 0,
	    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
	c = &B->ring[h % RING];
	strlcpy_(c->rid, rid, sizeof(c->rid));
	c->use_time = use_time;
	strlcpy_(c->tasks, tasks ? tasks : "", sizeof(c->tasks));
	STORE(&c->ready, h + 1);
	return 0;
}

/* The JSON batch bltcy_charge_close reads: [{"r","u","k":[...]}, ...]. */
void
batch_json(struct buf *o, const char *rid, long long use_time, const char *k)
{
	buf_printf(o, "%s{\"r\":\"%s\",\"u\":%lld,\"k\":", o->len > 1 ? "," : "",
	    rid, use_time);
	json_csv_array(o, k);
	buf_adds(o, "}");
}

/* Close what the ring holds. Returns the number closed. */
static size_t
flush(const struct dsn *dsn)
{
	struct buf	 o;
	struct dbv	 a;
	uint64_t	 t = LOAD(&B->tail), h = LOAD(&B->head), i;
	size_t		 n = 0;

	if (t == h)
		return 0;
	if (bdb == NULL && (bdb = db_new(dsn, batch_sql, 1, 0)) == NULL)
		return 0;
	buf_init(&o, BATCH_MAX * 400);
	buf_add(&o, "[", 1);
	for (i = t; i < h && n < BATCH_MAX; i++, n++) {
		const struct closing *c = &B->ring[i % RING];
		if (LOAD(&c->ready) != i + 1)
			break;		/* still being written */
		batch_json(&o, c->rid, c->use_time, c->tasks);
	}
	buf_add(&o, "]", 1);
	if (n > 0) {
		a = DBSN(o.p, o.len);
		if (db_run(bdb, 0, &a, 1, NULL, NULL, NULL) == DB_OK)
			STORE(&B->tail, t + n);
		else {
			log_err("ERR closing %zu settled charges: %s (kept, "
			    "retrying)", n, db_error(bdb));
			n = 0;
		}
	}
	buf_free(&o);
	return n;
}

void
batch_tick(const struct dsn *dsn)
{
	if (B != NULL)
		while (flush(dsn) == BATCH_MAX)
			;
}

void
batch_shutdown(const struct dsn *dsn)
{
	int	 tries;

	for (tries = 0; B != NULL && tries < 50 && LOAD(&B->tail) != LOAD(&B->head);
	    tries++)
		if (flush(dsn) == 0)
			usleep(100000);
	db_free(bdb);
	bdb = NULL;
}

uint64_t
batch_backlog(void)
{
	return B ? LOAD(&B->head) - LOAD(&B->tail) : 0;
}
