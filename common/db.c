#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <mysql.h>
#include <errmsg.h>

#include "db.h"
#include "dsn.h"
#include "log.h"
#include "util.h"
#include "migrations.h"

#define COL_INIT	256		/* first size of a string column buffer */
#define COL_MAX		(16u << 20)	/* largest column we will read */

struct col {
	long long	 i;
	char		*s;
	size_t		 cap;
	unsigned long	 len;
	my_bool		 null, error;
	int		 is_int;
};

struct stmt {
	MYSQL_STMT	*st;
	MYSQL_BIND	*binds;		/* one per column, contiguous */
	struct col	*cols;
	size_t		 ncols;
};

struct db {
	struct dsn		 dsn;
	MYSQL			*my;
	size_t			 node;	/* of dsn, while my is set */
	uint64_t		 seen;	/* the host's word when my was made */
	const char *const	*sqls;
	size_t			 nsqls;
	struct stmt		*stmts;
	int			 flags;
	int			 in_tx;
	int			 patience_ms;	/* db_set_patience */
	unsigned long long	 insert_id;
	unsigned int		 err_no;
	char			 err[256];
	pthread_mutex_t		 mu;	/* recursive; see db.h */
	uintptr_t		 tx_owner;	/* atomic: the thread whose
						   transaction holds mu, or 0 */
	struct db		*next;	/* the process's handles (all_dbs) */
};

/* Every handle of the process, for db_follow_idle. */
static pthread_mutex_t	 all_mu = PTHREAD_MUTEX_INITIALIZER;
static struct db	*all_dbs;

/*
 * Which of the DSN's nodes the host uses (db_nodes_share): one word in
 * memory all processes of the host share, the node's index in the low
 * byte and above it a generation that every move counts up, so a handle
 * made on the node before a move and back sees the word changed too.
 */
struct nodes_shm {
	uint64_t	 word;
	uint64_t	 changes;
};
static struct nodes_shm	*nodes;		/* NULL: each handle for itself */

#define WORD_NODE(w)		((size_t)((w) & 0xff))
#define WORD_NEXT(w, k)		(((((w) >> 8) + 1) << 8) | (uint64_t)(k))
#define NODES_LOAD()		__atomic_load_n(&nodes->word, __ATOMIC_ACQUIRE)
#define CAS_WORD(p, o, n)	__atomic_compare_exchange_n((p), (o), (n), 0, \
				    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

/* The last error of this thread's last call, whichever db it was on. */
static __thread char		 t_err[256];
static __thread unsigned int	 t_errno;

static void
set_err(struct db *db, unsigned int no, const char *msg)
{
	db->err_no = no;
	strlcpy_(db->err, msg != NULL ? msg : "", sizeof(db->err));
	t_errno = no;
	strlcpy_(t_err, db->err, sizeof(t_err));
}

/* A conflict another transaction won (db.h: DB_CONFLICT). */
static int
is_conflict(unsigned int e)
{
	return e == 1213 /* ER_LOCK_DEADLOCK, also Galera's certification */ ||
	    e == 1205 /* ER_LOCK_WAIT_TIMEOUT */;
}

static int
is_conn_error(unsigned int e)
{
	return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST ||
	    e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
	    e == CR_SERVER_LOST_EXTENDED || e == 1927 /* ER_CONNECTION_KILLED */ ||
	    e == 4031 /* ER_CLIENT_INTERACTION_TIMEOUT */ ||
	    e == 1053 /* ER_SERVER_SHUTDOWN */ || e == CR_COMMANDS_OUT_OF_SYNC ||
	    e == 1047 /* ER_UNKNOWN_COM_ERROR: a Galera node not ready */;
}

/* The rc of a failed call whose error set_err recorded. */
static enum db_rc
rc_of(const struct db *db)
{
	if (is_conn_error(db->err_no))
		return DB_DOWN;
	return is_conflict(db->err_no) ? DB_CONFLICT : DB_ERR;
}

struct db *
db_new(const struct dsn *dsn, const char *const *sqls, size_t nsqls, int flags)
{
	struct db		*db;
	pthread_mutexattr_t	 ma;

	if ((db = calloc(1, sizeof(*db))) == NULL)
		return NULL;
	if ((db->stmts = calloc(nsqls ? nsqls : 1, sizeof(*db->stmts))) == NULL) {
		free(db);
		return NULL;
	}
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&db->mu, &ma);
	pthread_mutexattr_destroy(&ma);
	db->dsn = *dsn;
	db->sqls = sqls;
	db->nsqls = nsqls;
	db->flags = flags;
	db->patience_ms = DB_PATIENCE_MS;
	pthread_mutex_lock(&all_mu);
	db->next = all_dbs;
	all_dbs = db;
	pthread_mutex_unlock(&all_mu);
	return db;
}

static void
stmt_close(struct stmt *s)
{
	size_t	 i;

	if (s->st != NULL)
		mysql_stmt_close(s->st);
	for (i = 0; i < s->ncols; i++)
		free(s->cols[i].s);
	free(s->cols);
	free(s->binds);
	memset(s, 0, sizeof(*s));
}

static void
disconnect(struct db *db)
{
	size_t	 i;

	for (i = 0; i < db->nsqls; i++)
		stmt_close(&db->stmts[i]);
	if (db->my != NULL)
		mysql_close(db->my);
	db->my = NULL;
	db->in_tx = 0;
}

void
db_free(struct db *db)
{
	struct db	**pp;

	if (db == NULL)
		return;
	pthread_mutex_lock(&all_mu);
	for (pp = &all_dbs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == db) {
			*pp = db->next;
			break;
		}
	pthread_mutex_unlock(&all_mu);
	disconnect(db);
	wipe(&db->dsn, sizeof(db->dsn));
	pthread_mutex_destroy(&db->mu);
	free(db->stmts);
	free(db);
}

/* A fresh handle with timeouts (seconds); NULL when out of memory. */
static MYSQL *
my_new(unsigned int ct, unsigned int rt)
{
	MYSQL	*my;

	if ((my = mysql_init(NULL)) == NULL)
		return NULL;
	mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
	mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &rt);
	mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &rt);
	return my;
}

/* Connect my to node k of d, to its database unless nodb. */
static MYSQL *
my_connect(MYSQL *my, const struct dsn *d, size_t k, unsigned long cflags,
    int nodb)
{
	return mysql_real_connect(my, d->socket[0] ? NULL : d->node[k].host,
	    d->user, d->pass, nodb ? NULL : d->db, d->node[k].port,
	    d->socket[0] ? d->socket : NULL, cflags);
}

/* Each (name, value) row of a SHOW to fn. */
static int
show_rows(MYSQL *my, const char *q, void (*fn)(void *, const char *,
    const char *), void *arg)
{
	MYSQL_RES	*res;
	MYSQL_ROW	 row;

	if (mysql_query(my, q) != 0 || (res = mysql_store_result(my)) == NULL)
		return -1;
	while ((row = mysql_fetch_row(res)) != NULL)
		if (row[0] != NULL && row[1] != NULL)
			fn(arg, row[0], row[1]);
	mysql_free_result(res);
	return 0;
}

struct wsrep {
	int	 on, ready, state;
	char	 comment[64];
};

static void
wsrep_var(void *arg, const char *name, const char *val)
{
	struct wsrep	*w = arg;
	long long	 n;

	if (strcasecmp(name, "wsrep_on") == 0)
		w->on = strcasecmp(val, "ON") == 0;
	else if (strcasecmp(name, "wsrep_ready") == 0)
		w->ready = strcasecmp(val, "ON") == 0;
	else if (strcasecmp(name, "wsrep_local_state") == 0)
		w->state = parse_ll(val, 0, 99, &n) == 0 ? (int)n : 0;
	else if (strcasecmp(name, "wsrep_local_state_comment") == 0)
		strlcpy_(w->comment, val, sizeof(w->comment));
}

/*
 * Whether the server my is connected to may be used: a Galera node only
 * when it is ready and synced with its cluster (a joining node refuses
 * queries, a desynced one may lag behind the cluster); a server without
 * Galera always. SHOW works on a node that refuses everything else.
 * 1 ready; 0 not, why says so; -1 the server did not answer.
 */
static int
node_ready(MYSQL *my, char *why, size_t whysz)
{
	struct wsrep	 w;

	memset(&w, 0, sizeof(w));
	if (show_rows(my, "SHOW GLOBAL VARIABLES LIKE 'wsrep\\_on'",
	    wsrep_var, &w) == -1)
		return -1;
	if (!w.on)
		return 1;
	if (show_rows(my, "SHOW GLOBAL STATUS WHERE Variable_name IN "
	    "('wsrep_ready', 'wsrep_local_state', 'wsrep_local_state_comment')",
	    wsrep_var, &w) == -1)
		return -1;
	if (w.ready && w.state == 4)
		return 1;
	snprintf(why, whysz, "not synced: %s", w.comment[0] ? w.comment :
	    "wsrep_ready is OFF");
	return 0;
}

/*
 * Connect to node k of the handle's DSN; with several nodes, one that is
 * not ready counts as down.
 */
static enum db_rc
connect_node(struct db *db, size_t k)
{
	char		 why[128];
	unsigned long	 cflags = CLIENT_MULTI_RESULTS;

	if ((db->my = my_new(5, 60)) == NULL) {
		set_err(db, 0, "mysql_init: out of memory");
		return DB_DOWN;
	}
	/* no gap locks: the relay's inserts and deletes never wait on them */
	mysql_options(db->my, MYSQL_INIT_COMMAND,
	    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
	if (db->flags & DB_MULTI)
		cflags |= CLIENT_MULTI_STATEMENTS;
	if (my_connect(db->my, &db->dsn, k, cflags, 0) == NULL)
		goto err;
	if (db->dsn.nnodes > 1) {
		switch (node_ready(db->my, why, sizeof(why))) {
		case -1:
			goto err;
		case 0:
			set_err(db, 1047, why);
			goto down;
		}
	}
	if ((db->flags & DB_NO_AUTOCOMMIT) && mysql_autocommit(db->my, 0) != 0)
		goto err;
	db->node = k;
	return DB_OK;
err:
	set_err(db, mysql_errno(db->my), mysql_error(db->my));
down:
	mysql_close(db->my);
	db->my = NULL;
	return DB_DOWN;
}

static void
log_move(const struct dsn *d, size_t from, size_t to, const char *why)
{
	char	 a[300], b[300];

	dsn_node_name(d, from, a, sizeof(a));
	dsn_node_name(d, to, b, sizeof(b));
	log_warn("database node %s -> %s: %s", a, b, why);
}

/*
 * Connect to the node the host uses, or the next one after it (in the
 * DSN's order, round) that is ready, and move the host there: the first
 * process to find its node down moves the word, and the others follow
 * (follow_host) rather than each choosing for itself. Without a shared
 * word the nodes are tried from the first.
 */
static enum db_rc
connect_db(struct db *db)
{
	size_t		 n = db->dsn.nnodes, start, i, k;
	uint64_t	 w = 0;
	char		 why[256] = "";
	int		 round;

	if (db->my != NULL)
		return DB_OK;
	for (round = 0; round < 4; round++) {
		start = 0;
		if (nodes != NULL && WORD_NODE(w = NODES_LOAD()) < n)
			start = WORD_NODE(w);
		for (i = 0; i < n; i++) {
			k = (start + i) % n;
			if (connect_node(db, k) != DB_OK) {
				if (i == 0)
					strlcpy_(why, db->err, sizeof(why));
				continue;
			}
			if (nodes == NULL || k == start) {
				db->seen = w;
				return DB_OK;
			}
			if (CAS_WORD(&nodes->word, &w, WORD_NEXT(w, k))) {
				db->seen = WORD_NEXT(w, k);
				__atomic_fetch_add(&nodes->changes, 1,
				    __ATOMIC_ACQ_REL);
				log_move(&db->dsn, start, k, why);
				return DB_OK;
			}
			/* another process moved the host first: go there */
			mysql_close(db->my);
			db->my = NULL;
			break;
		}
		if (i == n)
			return DB_DOWN;
	}
	set_err(db, 0, "the database node keeps changing");
	return DB_DOWN;
}

/*
 * Before a statement outside a transaction: the host moved to another
 * node since this handle connected, so it reconnects, to that node.
 */
static void
follow_host(struct db *db)
{
	if (nodes != NULL && db->my != NULL && !db->in_tx &&
	    NODES_LOAD() != db->seen)
		disconnect(db);
}

void
db_follow_idle(void)
{
	struct db	*db;

	if (nodes == NULL)
		return;
	pthread_mutex_lock(&all_mu);
	for (db = all_dbs; db != NULL; db = db->next)
		if (pthread_mutex_trylock(&db->mu) == 0) {
			follow_host(db);
			pthread_mutex_unlock(&db->mu);
		}
	pthread_mutex_unlock(&all_mu);
}

void
db_nodes_share(void *shm)
{
	nodes = shm;
}

enum db_rc
db_node_check(const struct dsn *d, size_t k, char *why, size_t whysz)
{
	MYSQL		*my;
	enum db_rc	 rc = DB_DOWN;

	if (k >= d->nnodes || (my = my_new(2, 5)) == NULL) {
		snprintf(why, whysz, "unreachable: out of memory");
		return DB_DOWN;
	}
	/* the node's state needs no database: a user without grants will do */
	if (my_connect(my, d, k, 0, 1) == NULL)
		snprintf(why, whysz, "unreachable: %s", mysql_error(my));
	else {
		switch (node_ready(my, why, whysz)) {
		case -1:
			snprintf(why, whysz, "unreachable: %s", mysql_error(my));
			break;
		case 1:
			snprintf(why, whysz, "synced");
			rc = DB_OK;
			break;
		}
	}
	mysql_close(my);
	return rc;
}

void
db_nodes_tick(const struct dsn *d)
{
	uint64_t	 w;
	size_t		 cur, k;
	char		 why[256];

	if (nodes == NULL || d->nnodes < 2)
		return;
	w = NODES_LOAD();
	cur = WORD_NODE(w) < d->nnodes ? WORD_NODE(w) : d->nnodes;
	for (k = 0; k < cur; k++) {
		if (db_node_check(d, k, why, sizeof(why)) != DB_OK)
			continue;
		if (CAS_WORD(&nodes->word, &w, WORD_NEXT(w, k))) {
			__atomic_fetch_add(&nodes->changes, 1, __ATOMIC_ACQ_REL);
			if (cur < d->nnodes)
				log_move(d, cur, k, "an earlier node is ready again");
		}
		return;
	}
}

unsigned long long
db_node_changes(void)
{
	return nodes != NULL ? __atomic_load_n(&nodes->changes,
	    __ATOMIC_ACQUIRE) : 0;
}

const char *
db_node_name(const struct db *db)
{
	static __thread char	 name[300];

	name[0] = '\0';
	if (db->my != NULL)
		dsn_node_name(&db->dsn, db->node, name, sizeof(name));
	return name;
}

/* Bind result columns from the statement's metadata. */
static int
bind_results(struct stmt *s)
{
	MYSQL_RES	*meta;
	MYSQL_FIELD	*f;
	size_t		 i;

	if ((meta = mysql_stmt_result_metadata(s->st)) == NULL)
		return 0;	/* no result set */
	s->ncols = mysql_num_fields(meta);
	f = mysql_fetch_fields(meta);
	s->cols = calloc(s->ncols, sizeof(*s->cols));
	s->binds = calloc(s->ncols, sizeof(*s->binds));
	if (s->cols == NULL || s->binds == NULL) {
		mysql_free_result(meta);
		s->ncols = 0;
		return -1;
	}
	for (i = 0; i < s->ncols; i++) {
		struct col	*c = &s->cols[i];
		MYSQL_BIND	*b = &s->binds[i];

		switch (f[i].type) {
		case MYSQL_TYPE_TINY: case MYSQL_TYPE_SHORT:
		case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG:
		case MYSQL_TYPE_INT24: case MYSQL_TYPE_YEAR:
			c->is_int = 1;
			b->buffer_type = MYSQL_TYPE_LONGLONG;
			b->buffer = &c->i;
			break;
		default:
			if ((c->s = malloc(COL_INIT)) == NULL) {
				mysql_free_result(meta);
				return -1;
			}
			c->cap = COL_INIT;
			b->buffer_type = MYSQL_TYPE_STRING;
			b->buffer = c->s;
			b->buffer_length = COL_INIT - 1;
			break;
		}
		b->length = &c->len;
		b->is_null = &c->null;
		b->error = &c->error;
	}
	mysql_free_result(meta);
	return 0;
}

static enum db_rc
prepare(struct db *db, size_t idx)
{
	struct stmt	*s = &db->stmts[idx];
	const char	*sql = db->sqls[idx];

	if (s->st != NULL)
		return DB_OK;
	if ((s->st = mysql_stmt_init(db->my)) == NULL) {
		set_err(db, mysql_errno(db->my), mysql_error(db->my));
		return rc_of(db);
	}
	if (mysql_stmt_prepare(s->st, sql, strlen(sql)) != 0) {
		enum db_rc rc;
		set_err(db, mysql_stmt_errno(s->st), mysql_stmt_error(s->st));
		rc = rc_of(db);
		stmt_close(s);
		return rc;
	}
	if (bind_results(s) == -1) {
		stmt_close(s);
		set_err(db, 0, "out of memory");
		return DB_ERR;
	}
	return DB_OK;
}

/* Fetch the rows of an executed statement into fn. */
static enum db_rc
fetch_rows(struct db *db, struct stmt *s, db_row_fn fn, void *arg)
{
	struct dbv	 vals[64];
	size_t		 i;
	int		 rc, stop = 0;

	if (s->ncols == 0)
		return DB_OK;
	if (s->ncols > sizeof(vals) / sizeof(vals[0])) {
		set_err(db, 0, "too many columns");
		return DB_ERR;
	}
	for (i = 0; i < s->ncols; i++)
		if (!s->cols[i].is_int) {
			s->binds[i].buffer = s->cols[i].s;
			s->binds[i].buffer_length = s->cols[i].cap - 1;
		}
	if (mysql_stmt_bind_result(s->st, s->binds) != 0)
		goto err;
	while ((rc = mysql_stmt_fetch(s->st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		int grown = 0;

		for (i = 0; i < s->ncols; i++) {
			struct col *c = &s->cols[i];
			MYSQL_BIND *b = &s->binds[i];

			if (!c->is_int && c->error && !c->null) {
				/* grow and fetch this column again */
				size_t need = (size_t)c->len + 1;
				char *np;
				if (need > COL_MAX || (np = realloc(c->s, need)) == NULL) {
					set_err(db, 0, "column too large");
					goto drain;
				}
				c->s = np;
				c->cap = need;
				b->buffer = c->s;
				b->buffer_length = need - 1;
				if (mysql_stmt_fetch_column(s->st, b,
				    (unsigned int)i, 0) != 0)
					goto err;
				grown = 1;
			}
			if (c->null)
				vals[i] = DBNULL;
			else if (c->is_int)
				vals[i] = DBI(c->i);
			else {
				size_t n = c->len < c->cap ? c->len : c->cap - 1;
				c->s[n] = '\0';
				vals[i] = DBSN(c->s, n);
			}
		}
		if (!stop && fn != NULL && fn(arg, vals, s->ncols) != 0)
			stop = 1;
		/* the library keeps its own copy of the binds: give it the new buffers */
		if (grown && mysql_stmt_bind_result(s->st, s->binds) != 0)
			goto err;
	}
	if (rc != MYSQL_NO_DATA)
		goto err;
	return DB_OK;
drain:
	while (mysql_stmt_fetch(s->st) == 0)
		;
	return DB_ERR;
err:
	set_err(db, mysql_stmt_errno(s->st), mysql_stmt_error(s->st));
	return rc_of(db);
}

static enum db_rc
run_once(struct db *db, size_t idx, const struct dbv *args, size_t nargs,
    db_row_fn fn, void *arg, unsigned long long *affected)
{
	static MYSQL_BIND pb[1024];
	static long long ints[1024];
	struct stmt	*s;
	enum db_rc	 rc;
	size_t		 i;

	if ((rc = connect_db(db)) != DB_OK || (rc = prepare(db, idx)) != DB_OK)
		return rc;
	s = &db->stmts[idx];
	if (nargs != mysql_stmt_param_count(s->st) || nargs > 1024) {
		set_err(db, 0, "wrong number of parameters");
		return DB_ERR;
	}
	memset(pb, 0, nargs * sizeof(pb[0]));
	for (i = 0; i < nargs; i++) {
		switch (args[i].t) {
		case DBV_NULL:
			pb[i].buffer_type = MYSQL_TYPE_NULL;
			break;
		case DBV_INT:
			ints[i] = args[i].i;
			pb[i].buffer_type = MYSQL_TYPE_LONGLONG;
			pb[i].buffer = &ints[i];
			break;
		case DBV_STR:
			pb[i].buffer_type = MYSQL_TYPE_STRING;
			pb[i].buffer = (void *)(uintptr_t)args[i].s;
			pb[i].buffer_length = args[i].len;
			break;
		}
	}
	if ((nargs > 0 && mysql_stmt_bind_param(s->st, pb) != 0) ||
	    mysql_stmt_execute(s->st) != 0) {
		set_err(db, mysql_stmt_errno(s->st), mysql_stmt_error(s->st));
		if (strcmp(mysql_stmt_sqlstate(s->st), "45000") == 0)
			rc = DB_SIGNAL;
		else
			rc = rc_of(db);
		/* a routine's failure can leave results pending */
		while (mysql_stmt_next_result(s->st) == 0)
			;
		return rc;
	}
	if (affected != NULL)
		*affected = mysql_stmt_affected_rows(s->st);
	db->insert_id = mysql_stmt_insert_id(s->st);
	rc = fetch_rows(db, s, fn, arg);
	/* CALL ends with an extra status result; drain whatever follows */
	for (;;) {
		int r = mysql_stmt_next_result(s->st);
		if (r == 0)
			continue;
		if (r > 0 && rc == DB_OK) {
			set_err(db, mysql_stmt_errno(s->st),
			    mysql_stmt_error(s->st));
			rc = strcmp(mysql_stmt_sqlstate(s->st), "45000") == 0 ?
			    DB_SIGNAL : rc_of(db);
		}
		break;
	}
	mysql_stmt_free_result(s->st);
	return rc;
}

enum db_rc
db_run(struct db *db, size_t idx, const struct dbv *args, size_t nargs,
    db_row_fn fn, void *arg, unsigned long long *affected)
{
	enum db_rc	 rc;

	if (idx >= db->nsqls) {
		set_err(db, 0, "no such statement");
		return DB_ERR;
	}
	pthread_mutex_lock(&db->mu);
	follow_host(db);
	rc = run_once(db, idx, args, nargs, fn, arg, affected);
	/*
	 * A statement that lost a conflict was undone whole: run it again,
	 * after a pause that grows, for as long as the handle's patience.
	 * The mutex is let go meanwhile, for the other threads' statements.
	 */
	if (rc == DB_CONFLICT && !db->in_tx && db->patience_ms > 0) {
		int64_t	 until = mono_ms() + db->patience_ms;
		int	 attempt = 0;

		do {
			pthread_mutex_unlock(&db->mu);
			db_backoff(attempt++);
			pthread_mutex_lock(&db->mu);
			rc = run_once(db, idx, args, nargs, fn, arg, affected);
		} while (rc == DB_CONFLICT && mono_ms() < until);
	}
	if (rc == DB_DOWN && !db->in_tx) {
		disconnect(db);
		rc = run_once(db, idx, args, nargs, fn, arg, affected);
		if (rc == DB_DOWN)
			disconnect(db);
	} else if (rc == DB_DOWN)
		disconnect(db);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

void
db_set_patience(struct db *db, int ms)
{
	db->patience_ms = ms;
}

void
db_backoff(int attempt)
{
	unsigned int	 ms = 1u << (attempt < 8 ? attempt : 8);
	struct timespec	 ts;

	/* from half the step to the step: two losers part */
	ms = ms / 2 + (unsigned int)random() % (ms / 2 + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

unsigned long long
db_insert_id(struct db *db)
{
	return db->insert_id;
}

static enum db_rc
text_once(struct db *db, const char *sql)
{
	enum db_rc	 rc;
	int		 status;

	if ((rc = connect_db(db)) != DB_OK)
		return rc;
	if (mysql_real_query(db->my, sql, strlen(sql)) != 0)
		goto err;
	do {
		MYSQL_RES *res = mysql_store_result(db->my);
		if (res != NULL)
			mysql_free_result(res);
		else if (mysql_field_count(db->my) != 0)
			goto err;
		if ((status = mysql_next_result(db->my)) > 0)
			goto err;
	} while (status == 0);
	return DB_OK;
err:
	set_err(db, mysql_errno(db->my), mysql_error(db->my));
	return rc_of(db);
}

enum db_rc
db_exec_text(struct db *db, const char *sql)
{
	enum db_rc	 rc;

	pthread_mutex_lock(&db->mu);
	follow_host(db);
	rc = text_once(db, sql);
	if (rc == DB_DOWN)
		disconnect(db);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/*
 * One round trip each: START TRANSACTION (tried again on a fresh
 * connection if the old one is gone; nothing has happened yet), COMMIT,
 * ROLLBACK. Inside the transaction no statement is retried. The thread
 * that began it holds the connection until its COMMIT or ROLLBACK.
 */
/* db_begin's end: the transaction holds the handle, or nothing does. */
static enum db_rc
tx_held(struct db *db, enum db_rc rc)
{
	db->in_tx = rc == DB_OK;
	if (rc != DB_OK) {
		pthread_mutex_unlock(&db->mu);
		return rc;
	}
	__atomic_store_n(&db->tx_owner, (uintptr_t)pthread_self(),
	    __ATOMIC_RELAXED);
	return rc;
}

enum db_rc
db_begin(struct db *db)
{
	enum db_rc	 rc;

	pthread_mutex_lock(&db->mu);
	follow_host(db);
	if (db->flags & DB_NO_AUTOCOMMIT) {
		/* the first statement opens it */
		rc = connect_db(db);
		return tx_held(db, rc);
	}
	if ((rc = text_once(db, "START TRANSACTION")) == DB_DOWN) {
		disconnect(db);
		rc = text_once(db, "START TRANSACTION");
	}
	if (rc == DB_DOWN)
		disconnect(db);
	return tx_held(db, rc);
}

enum db_rc
db_commit(struct db *db)
{
	enum db_rc	 rc = DB_OK;

	db->in_tx = 0;
	if (db->my == NULL)
		rc = DB_DOWN;
	else if (mysql_commit(db->my) != 0) {
		set_err(db, mysql_errno(db->my), mysql_error(db->my));
		rc = rc_of(db);
	}
	if (rc == DB_DOWN)
		disconnect(db);
	__atomic_store_n(&db->tx_owner, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

/*
 * Also after a db_begin or db_commit that failed, which ended the
 * transaction already: then it does nothing.
 */
void
db_rollback(struct db *db)
{
	if (__atomic_load_n(&db->tx_owner, __ATOMIC_RELAXED) !=
	    (uintptr_t)pthread_self())
		return;
	__atomic_store_n(&db->tx_owner, 0, __ATOMIC_RELAXED);
	db->in_tx = 0;
	if (db->my != NULL && mysql_rollback(db->my) != 0)
		disconnect(db);
	pthread_mutex_unlock(&db->mu);
}

enum db_rc
db_ping(struct db *db)
{
	enum db_rc	 rc = DB_OK;

	pthread_mutex_lock(&db->mu);
	follow_host(db);
	if (db->my == NULL || mysql_ping(db->my) != 0) {
		disconnect(db);
		rc = connect_db(db);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}

const char *
db_error(const struct db *db)
{
	return t_err;
}

unsigned int
db_errno(const struct db *db)
{
	return t_errno;
}

int
db_int_row(void *arg, const struct dbv *c, size_t n)
{
	*(long long *)arg = n > 0 && c[0].t == DBV_INT ? c[0].i : 0;
	return 1;
}

/*
 * Each migration runs once and is recorded. MariaDB commits DDL
 * implicitly, so migrations are written to be safe to run again (IF NOT
 * EXISTS, CREATE OR REPLACE): a crash between a migration and its record
 * only means it runs again next time.
 */
static int
count_row(void *arg, const struct dbv *cols, size_t ncols)
{
	(*(int *)arg)++;
	return 0;
}

enum db_rc
db_migrate(struct db *db, int verbose)
{
	static const char *const sqls[] = {
		"SELECT 1 FROM bltcy_schema_migrations WHERE version = ?",
		"INSERT INTO bltcy_schema_migrations (version, applied_at) "
		    "VALUES (?, UNIX_TIMESTAMP())",
	};
	struct db	*q;
	enum db_rc	 rc;
	size_t		 i;

	rc = db_exec_text(db, "CREATE TABLE IF NOT EXISTS bltcy_schema_migrations ("
	    "version varchar(191) NOT NULL PRIMARY KEY, applied_at bigint NOT NULL)"
	    " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4");
	if (rc != DB_OK)
		return rc;
	if ((q = db_new(&db->dsn, sqls, 2, 0)) == NULL)
		return DB_ERR;
	for (i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
		int		 found = 0;
		struct dbv	 v = DBS(migrations[i].version);

		if ((rc = db_run(q, 0, &v, 1, count_row, &found, NULL)) != DB_OK)
			break;
		if (found > 0)
			continue;
		if ((rc = db_exec_text(db, migrations[i].sql)) != DB_OK) {
			set_err(db, db->err_no, db->err);
			break;
		}
		if ((rc = db_run(q, 1, &v, 1, NULL, NULL, NULL)) != DB_OK)
			break;
		if (verbose)
			printf("applied %s\n", migrations[i].version);
	}
	if (rc != DB_OK && db->err[0] == '\0')
		set_err(db, q->err_no, q->err);
	db_free(q);
	return rc;
}
