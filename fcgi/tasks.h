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

#include "channels.h"
#include "taskids.h"

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
	/*
	 * An answer only, never a row's state: the upstream knows no such
	 * task (the kind's lost values). A client's poll never fails a task
	 * for it; the relay's own polls with the task's key do after
	 * TASK_LOST_POLLS in a row.
	 */
	TS_LOST,
	TS__MAX
};

#define TASK_LOST_POLLS	3

/* "submitted", "running", ... as the state column holds them. */
const char	*task_state_name(enum task_state);
/* The state a column value names, TS_UNKNOWN for anything else. */
enum task_state	 task_state_parse(const char *);

/* What a poll answer says, by its service's kind (task_answer_read). */
struct task_answer {
	enum task_state	 state;
	int		 has_id;	/* id: at the kind's id_path */
	char		 id[TASK_ID_MAX + 1];
	char		 reason[256];
};

/*
 * What a poll answer (JSON) says of its task, by the service's kind:
 * TS_RUNNING, TS_SUCCEEDED, TS_FAILED or TS_LOST, or TS_UNKNOWN when the
 * status path holds no string or number. The reason is the value at the
 * kind's reason_path (for TS_LOST the status itself), cut to whole
 * UTF-8 characters; the id the answer names is read where the kind's
 * id_path says (a string or an integer, as an id is written).
 */
void		 task_answer_read(const struct task_kind *, const char *body,
		    size_t len, struct task_answer *);
/* The state alone, and the reason into reason (reasonsz bytes). */
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
 * polled with their own channel (disabled or not) and key, at most
 * TASK_POLL_RATE a minute; unfinished ones older than TASK_TIMEOUT are
 * timed out; failed ones whose refund did not happen are refunded, and
 * so are those a client saw fail before they were recorded, once they
 * are. Its exit status.
 */
int		 tasks_main(const struct dsn *);

#endif
