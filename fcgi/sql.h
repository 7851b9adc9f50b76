#ifndef BLTCY_SQL_H
#define BLTCY_SQL_H

/*
 * Every statement of fcgi/ (sql.c), one table per connection that runs
 * them, indexed by an enum with a __MAX sentinel:
 *
 *   relay_sql		a worker process's connection, shared by its
 *			request threads; also the charger's two and the
 *			master's for refunds of gone workers (owed.c)
 *   master_sql		the master's: the usage writer (usage.c), lease
 *			returns (lease.c), a dead worker's charge (strict.c)
 *			the hourly prunes (master.c) and the exchange of
 *			limits' counts (reqlimit.c)
 *   poller_own_sql	the task poller's, after relay_sql's (tasks.c)
 */

/* relay_sql */
enum stmt {
	ST_AUTH,
	ST_COUNTERS,
	ST_CHANNELS,
	ST_ABILITIES,
	ST_CHARGE,
	ST_UNCHARGE,
	ST_SLOT_FENCE,
	ST_SLOT_INIT,
	ST_PING,
	ST_WSREP_ON,
	ST_TASKS_ADD,
	ST_AUTO_BAN,
	ST_TASK_OWNER,
	ST_LEASE,
	ST_LEASE_GRANT,
	ST_CHARGE_GROUP,
	ST_TASK_SEEN,
	ST_OPTIONS,
	ST_PRICE_RULES,
	ST_TASK_KINDS,
	ST_MODEL_FIELDS,
	ST_IDEM_TAKE,
	ST_IDEM_GET,
	ST_IDEM_DROP,
	ST_IDEM_KEEP,
	ST_IDEM_EXPIRE,
	ST_TASK_EARLY,
	ST_PLACE_TAKE,
	ST_PLACE_GOT,
	ST_PLACE_RETURN,
	ST__MAX
};
extern const char *const relay_sql[ST__MAX];

/* Strict metering's charges of one token in one ST_CHARGE_GROUP. */
#define GROUP_STMT	32

/*
 * master_sql. The usage writer's rows go in statements of 1, 4, 16 and
 * 64 rows (FLUSH_ROWS at most), each of LOG_ARGS or TASK_ARGS values a
 * row.
 */
#define FLUSH_ROWS	64
#define LOG_ARGS	13
#define TASK_ARGS	14
/* The exchange of counts (reqlimit.c): statements of 1, 4, 16 and 64 rows. */
#define RATE_ARGS	7
enum mstmt {
	MS_RETURN, MS_RECONCILE, MS_SLOT_FENCE, MS_SLOT, MS_APPLIED, MS_APPLIED_OLD,
	MS_LOG1, MS_LOG4, MS_LOG16, MS_LOG64,
	MS_TASK1, MS_TASK4, MS_TASK16, MS_TASK64,
	MS_USER, MS_CHANNEL, MS_SPENT, MS_SPENT_ALL, MS_TOKEN, MS_REJECTED,
	MS_PRUNE_TASKS, MS_PRUNE_IDEM,
	MS_RATE_PUT1, MS_RATE_PUT4, MS_RATE_PUT16, MS_RATE_PUT64,
	MS_RATE_NOW, MS_RATE_PULL, MS_RATE_GAUGES, MS_RATE_PRUNE,
	MS_PLACE_RETURN, MS_PLACE_RECONCILE, MS_TASK_MINE, MS_PLACES_WRITTEN,
	MS__MAX
};
extern const char *const master_sql[MS__MAX];

/* poller_own_sql, numbered on from relay_sql's */
enum tq {
	TQ_TO_REFUND = ST__MAX,
	TQ_TIMED_OUT,
	TQ_DUE,
	TQ_CLAIM,
	TQ_REFUND_CLAIM,
	TQ_REFUND,
	TQ_LOST,
	TQ_EARLY,
	TQ_EARLY_DONE,
	TQ_EARLY_OLD,
	TQ__MAX
};
extern const char *const poller_own_sql[TQ__MAX - ST__MAX];

#endif
