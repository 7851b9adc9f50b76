#ifndef BLTCY_TASKS_H
#define BLTCY_TASKS_H

/*
 * The task lifecycle: a 2xx submit that names a task id is recorded (the
 * usage writer, with its logs row) as 'submitted'; poll answers, a
 * client's or the relay's own, move it on to running, succeeded or
 * failed; one unfinished after TASK_TIMEOUT is timed out. A failed or
 * timed-out task's charge is refunded exactly once (bltcy_task_refund).
 */

#include <stddef.h>

#include "relay.h"

struct db;
struct dsn;

enum task_state {
	TS_UNKNOWN,	/* the answer does not say (no JSON, an error) */
	TS_SUBMITTED,
	TS_RUNNING,
	TS_SUCCEEDED,
	TS_FAILED,
	TS_TIMEOUT,
	TS_REFUNDED,
	TS__MAX
};

/* "submitted", "running", ... as the state column holds them. */
const char	*task_state_name(enum task_state);
/* The state a column value names, TS_UNKNOWN for anything else. */
enum task_state	 task_state_parse(const char *);

/*
 * What a poll answer (JSON) says of its task, by the service's kind:
 * TS_RUNNING, TS_SUCCEEDED or TS_FAILED, or TS_UNKNOWN when the status
 * path holds no string or number. reason gets the failure reason (cut
 * to whole UTF-8 characters).
 */
enum task_state	 task_answer_state(const struct task_kind *, const char *body,
		    size_t len, char *reason, size_t reasonsz);

/*
 * A poll answer said how a task stands: recorded, and a failed one
 * refunded, in one call (bltcy_task_seen). db is a handle made with
 * relay_sql (ST_TASK_SEEN). 0, or -1 when the database failed (logged;
 * the relay's own polling sees the task again).
 */
int		 task_seen(struct db *, const char *service, const char *task_id,
		    enum task_state, const char *reason, long long now);

/*
 * The task poller, a process of the pool (the master forks it and forks
 * it again if it dies): tasks nobody polled for TASK_POLL_INTERVAL are
 * polled with their own channel and key, at most TASK_POLL_RATE a
 * minute; unfinished ones older than TASK_TIMEOUT are timed out; failed
 * ones whose refund did not happen are refunded. Its exit status.
 */
int		 tasks_main(const struct dsn *);

#endif
