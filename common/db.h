#ifndef BLTCY_DB_H
#define BLTCY_DB_H

#include <stddef.h>
#include <string.h>

struct dsn;

/*
 * One MariaDB connection and its prepared statements. Each program keeps a
 * table of constant SQL strings with '?' placeholders (no SQL is built at
 * run time) and refers to them by index. The connection is made on first
 * use and remade, with every statement re-prepared, when the server went
 * away; a statement outside a transaction is then retried once, so the
 * statements in such tables must be safe to repeat (ours are: reads, and
 * routines keyed by request id).
 *
 * Threads may share one handle: each call holds it for its own round
 * trips, and a transaction holds it from db_begin to db_commit or
 * db_rollback, so no other thread's statement lands inside it. db_error
 * and db_errno tell the calling thread's last error.
 */
struct db;

enum dbv_type { DBV_NULL, DBV_INT, DBV_STR };

struct dbv {
	enum dbv_type	 t;
	long long	 i;
	const char	*s;
	size_t		 len;
};

#define DBI(x)		((struct dbv){ DBV_INT, (long long)(x), NULL, 0 })
#define DBS(x)		((struct dbv){ DBV_STR, 0, (x), strlen(x) })
#define DBSN(x, n)	((struct dbv){ DBV_STR, 0, (x), (n) })
#define DBNULL		((struct dbv){ DBV_NULL, 0, NULL, 0 })

enum db_rc {
	DB_OK = 0,
	DB_DOWN = -1,	/* cannot reach the server (after one reconnect) */
	DB_ERR = -2,	/* the statement failed */
	DB_SIGNAL = -3,	/* a routine signalled SQLSTATE 45000; see db_error */
	/*
	 * The transaction lost to another: a deadlock, a lock wait timeout,
	 * or a Galera certification conflict (also at COMMIT). Nothing of it
	 * applied; run it again. Outside a transaction db_run has already
	 * done so, with backoff, until the handle's patience ran out.
	 */
	DB_CONFLICT = -4,
};

/* How long db_run tries a statement that lost a conflict, by default. */
#define DB_PATIENCE_MS	10000

/*
 * Called once per result row; cols (strings NUL-terminated) are valid only
 * during the call. Return non-zero to stop reading rows.
 */
typedef int (*db_row_fn)(void *arg, const struct dbv *cols, size_t ncols);
/* A db_row_fn for a one-number answer: into *(long long *)arg, 0 for NULL. */
int	 db_int_row(void *arg, const struct dbv *cols, size_t ncols);

#define DB_MULTI	0x1	/* allow multi-statement text (migrations) */
/*
 * Autocommit off: a statement after db_begin opens the transaction
 * itself, so db_begin costs no round trip. Every statement of such a
 * handle belongs inside db_begin ... db_commit or db_rollback.
 */
#define DB_NO_AUTOCOMMIT 0x2

struct db	*db_new(const struct dsn *, const char *const *sqls,
		    size_t nsqls, int flags);
void		 db_free(struct db *);

/* Run statement idx with args; rows to fn (may be NULL). */
enum db_rc	 db_run(struct db *, size_t idx, const struct dbv *args,
		    size_t nargs, db_row_fn fn, void *arg,
		    unsigned long long *affected);

/* Insert id of the last db_run INSERT. */
unsigned long long db_insert_id(struct db *);

/* Constant multi-statement text (migrations only; never built SQL). */
enum db_rc	 db_exec_text(struct db *, const char *sql);

/* How long db_run tries a conflicting statement again (ms; 0: not). */
void		 db_set_patience(struct db *, int ms);
/*
 * Sleep before try number attempt (0, 1, ...) of something that lost a
 * conflict: 1 ms doubling to 256 ms, with jitter so that two losers do
 * not meet again.
 */
void		 db_backoff(int attempt);

/*
 * db_commit ends the transaction whether it succeeds or not; db_rollback
 * ends one still open, and does nothing after a db_begin or db_commit
 * that failed, so "roll back on any failure" is always right.
 */
enum db_rc	 db_begin(struct db *);
enum db_rc	 db_commit(struct db *);
void		 db_rollback(struct db *);

enum db_rc	 db_ping(struct db *);
const char	*db_error(const struct db *);	/* last error, for logs */
unsigned int	 db_errno(const struct db *);

/*
 * A DSN may name several nodes of one cluster (dsn.h). A handle connects
 * to the node its host uses, or, when that one is down or not ready (a
 * Galera node must be ready and synced), to the next one that is, in the
 * DSN's order and round, and moves the host there. The host's processes
 * share which node that is through DB_NODES_SHM bytes of shared memory
 * given to db_nodes_share before they fork (without it each handle tries
 * the nodes from the first); every handle, before its next statement
 * outside a transaction, finds the host moved and reconnects.
 * db_nodes_tick, called every few seconds by one process of the host,
 * moves the host back to the earliest node that is ready again, so hosts
 * that list the nodes in the same order end on the same one.
 */
#define DB_NODES_SHM	64
void		 db_nodes_share(void *shm);
void		 db_nodes_tick(const struct dsn *);
/*
 * Every handle of this process that is idle and on a node the host has
 * left lets its connection go (it reconnects, to the host's node, when
 * next used): a process calls it on its own clock, so that a connection
 * used seldom does not stay on the old node.
 */
void		 db_follow_idle(void);
/* How many times the host moved to another node (shared: all processes). */
unsigned long long db_node_changes(void);
/* The node the handle is connected to ("host:port"), "" if none. */
const char	*db_node_name(const struct db *);
/*
 * Connect to node k of the DSN and tell whether it may be used: DB_OK
 * with why "synced", or DB_DOWN with why "unreachable: ..." or "not
 * synced: <state>" (never the password).
 */
enum db_rc	 db_node_check(const struct dsn *, size_t k, char *why,
		    size_t whysz);

/* Apply the compiled-in schema migrations that are not recorded yet. */
enum db_rc	 db_migrate(struct db *, int verbose);

#endif
