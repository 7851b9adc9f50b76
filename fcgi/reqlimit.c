#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "db.h"
#include "reqlimit.h"
#include "log.h"
#include "shared.h"
#include "sql.h"
#include "util.h"

/*
 * The counts of the users and tokens that have a limit, in one table in
 * shared memory, made by the master before it forks. An entry is a token
 * (its caps) or a user (its caps and new-api's rate options); a token or
 * user with no cap has none, so a request of theirs costs a lookup of
 * nothing.
 *
 * A window (requests per minute; new-api's total and success counts) is
 * WIN_SLOTS slots of its width in seconds: a minute is 60 slots of a
 * second, new-api's DurationMinutes D are 60 slots of D seconds. The
 * count of a window is that of the slot now and the 59 before it: the
 * window slides a slot at a time, a sixtieth of its length. A slot
 * holds this host's count and the other hosts' (as of the last
 * exchange); the master sends this host's counts up once a second and
 * brings the others' sums down (limits_tick), so a host counts what
 * other hosts let in up to an exchange late. Requests in flight are a
 * host's own, and the other hosts' as of the last exchange.
 *
 * One lock, lim->mu (a robust process-shared mutex: a worker that dies
 * holding it leaves it to the next taker, the counts it was changing
 * maybe one off), guards the whole table; nothing else is taken under
 * it and it is never held across a database call. A request holds it
 * twice, once to be let in and once to be let out: with every cap and
 * option set, both together take about 2,900 instructions (0.4 us).
 *
 * Places: an id takes a place near its hash; when those are taken, the
 * one used longest ago with no request in flight gives way (its counts
 * are forgotten). LIM_ENTRIES is sized far past the users and tokens one
 * host serves at once.
 */

#define LIM_ENTRIES	8192
#define LIM_PROBE	32
#define WIN_SLOTS	60
#define EXCHANGE_MS	1000
#define PRUNE_MS	60000
#define GAUGE_FRESH_MS	5000	/* another host's in-flight count lives */
#define GAUGE_KEEP_S	60	/* and its row, once not sent again */
#define PUT_MAX		4096	/* rows sent in one exchange */
#define PULL_MAX	8192	/* rows taken in one exchange */

/* The kinds of rows of bltcy_rate_counts (also the windows' order). */
enum kind {
	K_TOKEN_RPM, K_USER_RPM, K_TOTAL, K_SUCCESS,	/* windows */
	K_TOKEN_IN_FLIGHT, K_USER_IN_FLIGHT,		/* gauges */
	K__MAX
};
enum { W_RPM, W_TOTAL, W_SUCCESS, W__MAX };
enum { SC_TOKEN = 1, SC_USER = 2 };

struct win {
	int		 width;		/* seconds a slot spans; 0: unused */
	int		 dirty;		/* counted since the last exchange */
	int64_t		 head;		/* the newest slot in n[] */
	int64_t		 ohead;		/* the newest slot in on[] */
	int64_t		 sent;		/* slots up to this one were sent */
	int32_t		 n[WIN_SLOTS];	/* this host's, at slot % WIN_SLOTS */
	int32_t		 on[WIN_SLOTS];	/* the other hosts' */
};

struct lim_entry {
	long long	 id;		/* 0: a free place */
	int		 scope;		/* SC_TOKEN, SC_USER */
	int		 in_flight;	/* this host's */
	int		 oin_flight;	/* the other hosts', last exchange */
	int		 in_flight_sent;	/* the master sent this */
	int64_t		 used;		/* mono ms */
	struct win	 w[W__MAX];	/* a token's W_RPM only */
};

/* What the request of a charge slot holds (0: nothing). */
struct lim_hold {
	int		 entered;
	int		 token, user;	/* place + 1 */
	int		 success_width;	/* count a success in this window */
};

struct lim_shm {
	pthread_mutex_t	 mu;
	uint64_t	 seed;
	struct lim_entry e[LIM_ENTRIES];
};

static struct lim_shm	*lim;
static struct lim_hold	*holds;		/* one per charge slot */
static size_t		 nholds;

int
limits_init(size_t nslots)
{
	pthread_mutexattr_t	 a;

	if ((lim = shm_map(sizeof(*lim))) == NULL ||
	    (holds = shm_map(nslots * sizeof(*holds))) == NULL)
		return -1;
	nholds = nslots;
	if (random_bytes(&lim->seed, sizeof(lim->seed)) == -1)
		lim->seed = (uint64_t)mono_ms();
	if (pthread_mutexattr_init(&a) != 0 ||
	    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&lim->mu, &a) != 0)
		return -1;
	pthread_mutexattr_destroy(&a);
	return 0;
}

static void
lock(void)
{
	if (pthread_mutex_lock(&lim->mu) == EOWNERDEAD)
		pthread_mutex_consistent(&lim->mu);
}

static void
unlock(void)
{
	pthread_mutex_unlock(&lim->mu);
}

/*
 * The place of (scope, id), or with claim a place taken for it; NULL when
 * it has none (with claim: every place near it has a request in flight).
 */
static struct lim_entry *
entry(int scope, long long id, int claim)
{
	struct lim_entry	*e, *best = NULL;
	uint64_t		 h = (lim->seed ^ (uint64_t)id) * 0x9e3779b97f4a7c15ULL;
	size_t			 i, k;

	h ^= h >> 29 ^ (uint64_t)scope;
	for (k = 0; k < LIM_PROBE; k++) {
		i = (size_t)((h + k) % LIM_ENTRIES);
		e = &lim->e[i];
		if (e->id == id && e->scope == scope)
			return e;
		if (e->id == 0) {
			if (best == NULL || best->id != 0)
				best = e;
			break;
		}
		if (e->in_flight == 0 && (best == NULL ||
		    (best->id != 0 && e->used < best->used)))
			best = e;
	}
	if (!claim || best == NULL)
		return NULL;
	memset(best, 0, sizeof(*best));
	best->id = id;
	best->scope = scope;
	return best;
}

/* Move the window on to slot: the slots it passed are emptied. */
static void
win_roll(struct win *w, int64_t slot)
{
	int64_t	 s;

	if (slot <= w->head)
		return;
	for (s = slot - w->head > WIN_SLOTS ? slot - WIN_SLOTS + 1 :
	    w->head + 1; s <= slot; s++)
		w->n[s % WIN_SLOTS] = 0;
	w->head = slot;
}

/* The other hosts' slot of a window (the master's exchange). */
static void
win_other(struct win *w, int64_t slot, int32_t n)
{
	int64_t	 s;

	if (slot <= w->ohead - WIN_SLOTS)
		return;		/* past the window */
	if (slot > w->ohead) {
		for (s = slot - w->ohead > WIN_SLOTS ? slot - WIN_SLOTS + 1 :
		    w->ohead + 1; s <= slot; s++)
			w->on[s % WIN_SLOTS] = 0;
		w->ohead = slot;
	}
	w->on[slot % WIN_SLOTS] = n;
}

/*
 * The sum of a ring of slot counts whose newest slot is head (it holds
 * slots head - WIN_SLOTS + 1 to head only: rolling on empties what it
 * passes) over the window that ends at slot. The whole ring is summed in
 * one pass (no division), then what lies outside the window taken off.
 */
static int64_t
ring_sum(const int32_t *n, int64_t head, int64_t slot)
{
	int64_t	 c = 0, s, lo = slot - WIN_SLOTS + 1;
	size_t	 i;

	if (head < lo || head - slot >= WIN_SLOTS)
		return 0;
	for (i = 0; i < WIN_SLOTS; i++)
		c += n[i];
	for (s = head - WIN_SLOTS + 1; s < lo; s++)
		c -= n[s % WIN_SLOTS];
	for (s = slot + 1; s <= head; s++)	/* another host's clock ahead */
		c -= n[s % WIN_SLOTS];
	return c;
}

static int64_t
win_count(const struct win *w, int64_t slot)
{
	return ring_sum(w->n, w->head, slot) + ring_sum(w->on, w->ohead, slot);
}

/*
 * Make w a window of slots width seconds wide, now at slot. A window
 * that was another width (an edit of DurationMinutes) keeps what it
 * counted, as counted in the slot now: nobody is let in more because the
 * window changed.
 */
static void
win_at(struct win *w, int width, int64_t slot)
{
	int64_t	 c;

	if (w->width != width) {
		c = w->width > 0 ? win_count(w, w->head) : 0;
		memset(w, 0, sizeof(*w));
		w->width = width;
		w->head = w->ohead = w->sent = slot;
		w->n[slot % WIN_SLOTS] = (int32_t)(c > INT32_MAX ? INT32_MAX : c);
		w->dirty = c > 0;
		return;
	}
	win_roll(w, slot);
}

/*
 * Is the window at cap? 0 no; 1 yes, with the seconds until enough of
 * its counts leave it for one more in *retry.
 */
static int
win_full(struct win *w, int width, int64_t now, int cap, int *retry)
{
	int64_t	 slot = now / width, c, need, s, left = 0;

	win_at(w, width, slot);
	if ((c = win_count(w, slot)) < cap)
		return 0;
	need = c - cap + 1;
	for (s = slot - WIN_SLOTS + 1; s <= slot; s++) {
		if (s > w->head - WIN_SLOTS && s <= w->head)
			left += w->n[s % WIN_SLOTS];
		if (s > w->ohead - WIN_SLOTS && s <= w->ohead)
			left += w->on[s % WIN_SLOTS];
		if (left >= need)
			break;
	}
	/* slot s leaves the window when slot s + WIN_SLOTS begins */
	*retry = (int)((s + WIN_SLOTS) * width - now);
	if (*retry < 1)
		*retry = 1;
	return 1;
}

static void
win_add(struct win *w, int width, int64_t now)
{
	int64_t	 slot = now / width;

	win_at(w, width, slot);
	if (w->n[slot % WIN_SLOTS] < INT32_MAX)
		w->n[slot % WIN_SLOTS]++;
	w->dirty = 1;
}

static int
in_flight_full(const struct lim_entry *e, int cap)
{
	return cap > 0 && (long long)e->in_flight + e->oin_flight >= cap;
}

enum limit_verdict
limits_enter(const struct limit_ask *a, int slot,
    struct limit_refusal_info *info)
{
	struct lim_entry	*t = NULL, *u = NULL;
	struct lim_hold		*h;
	enum limit_verdict	 v = LIM_OK;
	int			 total = 0, success = 0, width = 0, retry = 1;
	int64_t			 now = now_s();

	memset(info, 0, sizeof(*info));
	if (lim == NULL || slot < 0 || (size_t)slot >= nholds)
		return LIM_OK;
	h = &holds[slot];
	if (a->rate->enabled) {
		rate_caps(a->rate, a->group, &total, &success);
		width = a->rate->minutes > 0 ? a->rate->minutes : 1;
	}
	if (a->token->in_flight == 0 && a->token->rpm == 0 &&
	    a->user->in_flight == 0 && a->user->rpm == 0 &&
	    total == 0 && success == 0)
		return LIM_OK;		/* nothing to count */

	lock();
	if ((a->token->in_flight > 0 || a->token->rpm > 0) &&
	    (t = entry(SC_TOKEN, a->token_id, 1)) == NULL)
		log_warn("limits: no place for token %lld; not counted",
		    a->token_id);
	if ((a->user->in_flight > 0 || a->user->rpm > 0 || total > 0 ||
	    success > 0) && (u = entry(SC_USER, a->user_id, 1)) == NULL)
		log_warn("limits: no place for user %lld; not counted",
		    a->user_id);
	if (t != NULL && in_flight_full(t, a->token->in_flight)) {
		v = LIM_TOKEN_IN_FLIGHT;
		info->cap = a->token->in_flight;
	} else if (u != NULL && in_flight_full(u, a->user->in_flight)) {
		v = LIM_USER_IN_FLIGHT;
		info->cap = a->user->in_flight;
	} else if (t != NULL && a->token->rpm > 0 &&
	    win_full(&t->w[W_RPM], 1, now, a->token->rpm, &retry)) {
		v = LIM_TOKEN_RPM;
		info->cap = a->token->rpm;
	} else if (u != NULL && a->user->rpm > 0 &&
	    win_full(&u->w[W_RPM], 1, now, a->user->rpm, &retry)) {
		v = LIM_USER_RPM;
		info->cap = a->user->rpm;
	} else if (u != NULL && success > 0 &&
	    win_full(&u->w[W_SUCCESS], width, now, success, &retry)) {
		v = LIM_RATE_SUCCESS;	/* new-api looks at successes first */
		info->cap = success;
	} else if (u != NULL && total > 0 &&
	    win_full(&u->w[W_TOTAL], width, now, total, &retry)) {
		v = LIM_RATE_TOTAL;
		info->cap = total;
	}
	if (v != LIM_OK) {
		unlock();
		info->retry_after = retry;
		info->minutes = width;
		return v;
	}
	memset(h, 0, sizeof(*h));
	if (t != NULL) {
		t->in_flight++;
		t->used = mono_ms();
		if (a->token->rpm > 0)
			win_add(&t->w[W_RPM], 1, now);
		h->token = (int)(t - lim->e) + 1;
	}
	if (u != NULL) {
		u->in_flight++;
		u->used = mono_ms();
		if (a->user->rpm > 0)
			win_add(&u->w[W_RPM], 1, now);
		if (total > 0)
			win_add(&u->w[W_TOTAL], width, now);
		if (success > 0)
			h->success_width = width;
		h->user = (int)(u - lim->e) + 1;
	}
	h->entered = t != NULL || u != NULL;
	unlock();
	return LIM_OK;
}

/* Let the request out: under the lock. */
static void
let_out(struct lim_hold *h, int status)
{
	struct lim_entry	*e;

	if (h->token > 0 && (e = &lim->e[h->token - 1])->in_flight > 0)
		e->in_flight--;
	if (h->user > 0) {
		e = &lim->e[h->user - 1];
		if (e->in_flight > 0)
			e->in_flight--;
		/* new-api counts a success once answered below 400 */
		if (h->success_width > 0 && status > 0 && status < 400)
			win_add(&e->w[W_SUCCESS], h->success_width, now_s());
	}
	memset(h, 0, sizeof(*h));
}

void
limits_leave(int slot, int status)
{
	if (lim == NULL || slot < 0 || (size_t)slot >= nholds ||
	    !holds[slot].entered)
		return;
	lock();
	let_out(&holds[slot], status);
	unlock();
}

/* The worker is gone: its request never answered for certain. */
void
limits_slot_gone(int slot)
{
	limits_leave(slot, 0);
}

/* ---- the exchange (master) ---- */

struct row {
	int		 kind;
	long long	 id;
	int		 width;
	int64_t		 slot;
	long long	 n;
};

static struct row	 rows[PULL_MAX > PUT_MAX ? PULL_MAX : PUT_MAX];
static size_t		 nrows;

static int
kind_scope(int kind)
{
	return kind == K_TOKEN_RPM || kind == K_TOKEN_IN_FLIGHT ? SC_TOKEN :
	    SC_USER;
}

static int
kind_win(int kind)
{
	return kind == K_TOTAL ? W_TOTAL : kind == K_SUCCESS ? W_SUCCESS :
	    W_RPM;
}

/* A row to send; 0, or -1 when no more fit this exchange. */
static int
put(int kind, long long id, int width, int64_t slot, long long n)
{
	if (nrows == PUT_MAX)
		return -1;
	rows[nrows++] = (struct row){ kind, id, width, slot, n };
	return 0;
}

/* This host's counts changed since the last exchange, under the lock. */
static void
collect(void)
{
	struct lim_entry	*e;
	struct win		*w;
	size_t			 i, k;
	int64_t			 s;
	int			 kind, full = 0;

	nrows = 0;
	for (i = 0; i < LIM_ENTRIES && !full; i++) {
		if ((e = &lim->e[i])->id == 0)
			continue;
		/* sent every time while non-zero, so it stays fresh */
		if (e->in_flight != 0 || e->in_flight_sent != 0) {
			kind = e->scope == SC_TOKEN ? K_TOKEN_IN_FLIGHT :
			    K_USER_IN_FLIGHT;
			if (put(kind, e->id, 0, 0, e->in_flight) == -1)
				break;
			e->in_flight_sent = e->in_flight;
		}
		for (k = 0; k < W__MAX; k++) {
			w = &e->w[k];
			if (!w->dirty || w->width == 0)
				continue;
			kind = k == W_TOTAL ? K_TOTAL : k == W_SUCCESS ?
			    K_SUCCESS : e->scope == SC_TOKEN ? K_TOKEN_RPM :
			    K_USER_RPM;
			/* a slot sent before may have grown since */
			for (s = w->sent > w->head - WIN_SLOTS ? w->sent :
			    w->head - WIN_SLOTS + 1; s <= w->head; s++)
				if (put(kind, e->id, w->width, s,
				    w->n[s % WIN_SLOTS]) == -1) {
					full = 1;
					break;
				}
			if (full)
				break;
			w->sent = w->head;
			w->dirty = 0;
		}
	}
}

static enum db_rc
send_rows(struct db *db, const char *host)
{
	static const enum mstmt	 st[] = { MS_RATE_PUT64, MS_RATE_PUT16,
				    MS_RATE_PUT4, MS_RATE_PUT1 };
	static const size_t	 per[] = { 64, 16, 4, 1 };
	struct dbv		 a[64 * RATE_ARGS];
	size_t			 at = 0, k, j, i;
	struct row		*r;

	while (at < nrows) {
		for (k = 0; per[k] > nrows - at; k++)
			;
		for (j = 0; j < per[k]; j++) {
			r = &rows[at + j];
			i = j * RATE_ARGS;
			a[i] = DBI(r->kind);
			a[i + 1] = DBI(r->id);
			a[i + 2] = DBI(r->width);
			a[i + 3] = DBI(r->slot);
			a[i + 4] = DBS(host);
			a[i + 5] = DBI(r->n);
			/* a window's slot is of use until it leaves it */
			a[i + 6] = DBI(r->width > 0 ?
			    (r->slot + WIN_SLOTS + 1) * r->width :
			    now_s() + GAUGE_KEEP_S);
		}
		if (db_run(db, st[k], a, per[k] * RATE_ARGS, NULL, NULL, NULL) !=
		    DB_OK)
			return DB_ERR;
		at += per[k];
	}
	return DB_OK;
}

static int
pull_row(void *arg, const struct dbv *c, size_t n)
{
	if (nrows == PULL_MAX)
		return 1;
	if (n < 5 || c[0].t != DBV_INT || c[1].t != DBV_INT ||
	    c[0].i < 0 || c[0].i >= K__MAX)
		return 0;
	rows[nrows++] = (struct row){ (int)c[0].i, c[1].i,
	    c[2].t == DBV_INT ? (int)c[2].i : 0,
	    c[3].t == DBV_INT ? c[3].i : 0, c[4].t == DBV_INT ? c[4].i : 0 };
	return 0;
}

/* The other hosts' slots, under the lock: into the windows of that width. */
static void
apply_windows(void)
{
	struct lim_entry	*e;
	struct win		*w;
	struct row		*r;
	size_t			 i;

	for (i = 0; i < nrows; i++) {
		r = &rows[i];
		if (r->width <= 0 || r->kind >= K_TOKEN_IN_FLIGHT ||
		    (e = entry(kind_scope(r->kind), r->id, 1)) == NULL)
			continue;
		w = &e->w[kind_win(r->kind)];
		if (w->width == 0) {	/* counted elsewhere first */
			w->width = r->width;
			w->head = w->ohead = w->sent = r->slot;
		}
		if (w->width == r->width)
			win_other(w, r->slot, (int32_t)(r->n > INT32_MAX ?
			    INT32_MAX : r->n));
	}
}

/* The other hosts' requests in flight, under the lock: all of them anew. */
static void
apply_gauges(void)
{
	struct lim_entry	*e;
	size_t			 i;

	for (i = 0; i < LIM_ENTRIES; i++)
		lim->e[i].oin_flight = 0;
	for (i = 0; i < nrows; i++)
		if ((e = entry(kind_scope(rows[i].kind), rows[i].id, 0)) !=
		    NULL)
			e->oin_flight = rows[i].n > INT32_MAX ? INT32_MAX :
			    (int)rows[i].n;
}

void
limits_tick(struct db *db, const char *host)
{
	static int64_t		 last, last_prune;
	static long long	 since;	/* the database's ms, last pull */
	long long		 dbnow = 0;
	struct dbv		 a[3];
	unsigned long long	 gone;

	if (lim == NULL || mono_ms() - last < EXCHANGE_MS)
		return;
	last = mono_ms();
	lock();
	collect();
	unlock();
	if (nrows > 0 && send_rows(db, host) != DB_OK) {
		/* sent again next time: marked dirty once more */
		log_warn("limits: sending this host's counts: %s",
		    db_error(db));
		lock();
		for (size_t i = 0; i < nrows; i++) {
			struct lim_entry *e = entry(kind_scope(rows[i].kind),
			    rows[i].id, 0);
			if (e == NULL)
				continue;
			if (rows[i].width > 0)
				e->w[kind_win(rows[i].kind)].dirty = 1,
				e->w[kind_win(rows[i].kind)].sent = 0;
			else
				e->in_flight_sent = -1;
		}
		unlock();
		return;
	}
	if (db_run(db, MS_RATE_NOW, NULL, 0, db_int_row, &dbnow, NULL) !=
	    DB_OK)
		goto fail;
	/* rows written just before our last look may commit just after it */
	a[0] = DBI(since);
	a[1] = DBS(host);
	nrows = 0;
	if (db_run(db, MS_RATE_PULL, a, 2, pull_row, NULL, NULL) != DB_OK)
		goto fail;
	lock();
	apply_windows();
	unlock();
	if (nrows > 0)
		log_debug("limits: %zu slots of the other hosts' counts taken "
		    "(as of %lld)", nrows, dbnow);
	since = dbnow - 2 * EXCHANGE_MS;
	a[0] = DBS(host);
	a[1] = DBI(dbnow - GAUGE_FRESH_MS);
	nrows = 0;
	if (db_run(db, MS_RATE_GAUGES, a, 2, pull_row, NULL, NULL) != DB_OK)
		goto fail;
	lock();
	apply_gauges();
	unlock();
	if (nrows > 0)
		log_debug("limits: %zu counts of the other hosts' requests in "
		    "flight taken (as of %lld)", nrows, dbnow);
	if (mono_ms() - last_prune >= PRUNE_MS) {
		last_prune = mono_ms();
		a[0] = DBI(now_s());
		if (db_run(db, MS_RATE_PRUNE, a, 1, NULL, NULL, &gone) != DB_OK)
			log_warn("limits: pruning old counts: %s", db_error(db));
	}
	return;
fail:
	log_warn("limits: the other hosts' counts: %s", db_error(db));
}
