#include "sql.h"

/*
 * The token lookup, with the change counters it was read at (auth_row in
 * request.c reads the columns by place).
 */
#define AUTH_SELECT \
	    "SELECT t.id, t.user_id, t.status, t.name, t.expired_time," \
	    " t.remain_quota, t.unlimited_quota, t.model_limits_enabled," \
	    " t.model_limits, t.allow_ips, t.`group`," \
	    " u.id, u.username, u.role, u.status, u.quota, u.`group`," \
	    " u.deleted_at IS NOT NULL," \
	    " (SELECT v FROM bltcy_meta WHERE k = 'channels')," \
	    " (SELECT v FROM bltcy_meta WHERE k = 'auth')," \
	    " lt.in_flight, lt.tasks, lt.rpm, lu.in_flight, lu.tasks, lu.rpm" \
	    " FROM tokens t LEFT JOIN users u ON u.id = t.user_id" \
	    " LEFT JOIN bltcy_limits lt ON lt.scope = 't' AND lt.id = t.id" \
	    " LEFT JOIN bltcy_limits lu ON lu.scope = 'u' AND lu.id = t.user_id" \
	    " WHERE t.`key` = ? AND t.deleted_at IS NULL"

/*
 * A charge whose outcome is unknown can no longer apply once this is
 * committed (schema/020_fence.sql); its slot row then tells whether it
 * did. Arguments: request id, time, host, slot, request id.
 */
#define SLOT_FENCE \
	    "UPDATE bltcy_slots SET req = ?, fenced = 1, updated_at = ?" \
	    " WHERE host = ? AND slot = ? AND req <> ?"

/*
 * The statements of a worker's connection (sql.h says who else runs
 * them). Each is a read, a routine keyed by request id, or a write that
 * applies once (a conditional UPDATE, an INSERT IGNORE), so the
 * reconnect-and-retry in db.c is safe for each.
 */
const char *const relay_sql[ST__MAX] = {
	[ST_AUTH] = AUTH_SELECT,
	/* what kept token rows and channels are checked against */
	[ST_COUNTERS] =
	    "SELECT (SELECT v FROM bltcy_meta WHERE k = 'channels'),"
	    " (SELECT v FROM bltcy_meta WHERE k = 'auth')",
	/*
	 * Disabled ones too: they take no new jobs (their abilities are not
	 * read), but their tasks are polled through them until they finish.
	 */
	[ST_CHANNELS] =
	    "SELECT id, name, base_url, `key`, setting, auto_ban, status,"
	    " channel_info FROM channels WHERE type = 55 ORDER BY id",
	[ST_ABILITIES] =
	    "SELECT a.`group`, a.model, a.channel_id, a.priority, a.weight"
	    " FROM abilities a JOIN channels c ON c.id = a.channel_id"
	    " WHERE a.enabled = 1 AND c.type = 55 AND c.status = 1",
	/*
	 * Strict metering's charge, in one statement: token and user
	 * (also the token's accessed_time, so that the usage writer need
	 * not lock its row), and the thread's slot row, which then names
	 * the request. Run again it changes nothing (s.req <> ?). It
	 * applies only while the channels and the token rows are as the
	 * worker saw them (the change counters), so a worker may keep them,
	 * and only while the used counters can take it: a counter past the
	 * largest BIGINT would fail the statement, and with it the other
	 * charges of the charger's transaction, so the charge is refused
	 * instead (as one the quota cannot pay).
	 */
	[ST_CHARGE] =
	    "UPDATE tokens t JOIN users u ON u.id = ?"
	    " JOIN bltcy_slots s ON s.host = ? AND s.slot = ?"
	    " SET t.remain_quota = t.remain_quota - IF(?, 0, ?),"
	    " t.used_quota = t.used_quota + ?,"
	    " u.quota = u.quota - ?, u.used_quota = u.used_quota + ?,"
	    " u.request_count = u.request_count + 1,"
	    " s.req = ?, s.fenced = 0, s.updated_at = ?,"
	    " t.accessed_time = GREATEST(IFNULL(t.accessed_time, 0), ?)"
	    " WHERE t.id = ? AND s.req <> ? AND (? OR t.remain_quota >= ?)"
	    " AND u.quota >= ?"
	    " AND (SELECT v FROM bltcy_meta WHERE k = 'channels') = ?"
	    " AND (SELECT v FROM bltcy_meta WHERE k = 'auth') = ?"
	    " AND IFNULL(t.used_quota, 0) <= 9223372036854775807 - ?"
	    " AND IFNULL(u.used_quota, 0) <= 9223372036854775807 - ?"
	    " AND IFNULL(u.request_count, 0) < 9223372036854775807",
	/*
	 * The same for up to GROUP_STMT (32) charges to one token at once: the token's and
	 * user's rows once for their sum, and each charging worker's slot
	 * row, which then names that worker's request. The token and the user
	 * are const tables (primary key), so their conditions are evaluated
	 * once, before any row changes, and each row is updated once.
	 */
	[ST_CHARGE_GROUP] =
	    "UPDATE tokens t JOIN users u ON u.id = ?"
	    " JOIN bltcy_slots s ON s.host = ?"
	    "  AND s.slot IN (?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?)"
	    " SET t.remain_quota = t.remain_quota - IF(?, 0, ?),"
	    " t.used_quota = t.used_quota + ?,"
	    " u.quota = u.quota - ?, u.used_quota = u.used_quota + ?,"
	    " u.request_count = u.request_count + ?,"
	    " s.req = ELT(FIELD(s.slot, ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?),"
	    "  ?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?), s.fenced = 0, s.updated_at = ?,"
	    " t.accessed_time = GREATEST(IFNULL(t.accessed_time, 0), ?)"
	    " WHERE t.id = ? AND s.req NOT IN (?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?, "
	    "?, ?, ?, ?, ?, ?, ?, ?)"
	    " AND (? OR t.remain_quota >= ?) AND u.quota >= ?"
	    " AND (SELECT v FROM bltcy_meta WHERE k = 'channels') = ?"
	    " AND (SELECT v FROM bltcy_meta WHERE k = 'auth') = ?"
	    " AND IFNULL(t.used_quota, 0) <= 9223372036854775807 - ?"
	    " AND IFNULL(u.used_quota, 0) <= 9223372036854775807 - ?"
	    " AND IFNULL(u.request_count, 0) <= 9223372036854775807 - ?",
	/*
	 * its refund: only while the slot names the request, so only once,
	 * and not when a fence (ST_SLOT_FENCE) named it
	 */
	[ST_UNCHARGE] =
	    "UPDATE tokens t JOIN users u ON u.id = ?"
	    " JOIN bltcy_slots s ON s.host = ? AND s.slot = ?"
	    " SET t.remain_quota = t.remain_quota + IF(?, 0, ?),"
	    " t.used_quota = t.used_quota - ?,"
	    " u.quota = u.quota + ?, u.used_quota = u.used_quota - ?,"
	    " u.request_count = u.request_count - 1,"
	    " s.req = '', s.updated_at = ?"
	    " WHERE t.id = ? AND s.req = ? AND s.fenced = 0",
	[ST_SLOT_FENCE] = SLOT_FENCE,
	[ST_SLOT_INIT] =
	    "INSERT IGNORE INTO bltcy_slots (host, slot, updated_at)"
	    " VALUES (?, ?, ?)",
	[ST_PING] = "SELECT v FROM bltcy_meta WHERE k = 'channels'",
	/* a Galera node (charger.c); 0 on a server without wsrep */
	[ST_WSREP_ON] = "SELECT @@GLOBAL.wsrep_on",
	/* an uncharged request's tasks, with the places the first holds */
	[ST_TASKS_ADD] =
	    "CALL bltcy_tasks_add_places(?, ?, ?, ?, ?, ?, ?, ?, ?)",
	/* a key the upstream refused (keys.c) */
	[ST_AUTO_BAN] = "CALL bltcy_key_ban(?, ?, ?, ?, ?, ?)",
	/*
	 * The tasks of the ids a request names, in every service (a task is
	 * its user's whatever path names it; task_id compares exactly),
	 * other users' first (owner_row).
	 */
	[ST_TASK_OWNER] =
	    "SELECT service, task_id, channel_id, user_id, state, updated_at,"
	    " key_hash FROM bltcy_tasks"
	    " WHERE task_id IN (?, ?, ?, ?, ?, ?, ?, ?)"
	    " ORDER BY user_id = ? LIMIT 32",
	[ST_LEASE] = "CALL bltcy_lease(?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_TASK_SEEN] = "CALL bltcy_task_seen(?, ?, ?, ?, ?, ?)",
	/* what prices are made of, loaded with the channels */
	[ST_OPTIONS] =
	    "SELECT `key`, value FROM options"
	    " WHERE `key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')"
	    " OR `key` LIKE 'ModelRequestRateLimit%'"
	    " OR `key` LIKE 'Automatic%'",
	[ST_PRICE_RULES] =
	    "SELECT id, service, model, field, value,"
	    " CAST(ROUND(multiplier * 10000) AS SIGNED), surcharge"
	    " FROM bltcy_price_rules ORDER BY id",
	[ST_TASK_KINDS] =
	    "SELECT service, status_path, succeeded, failed, reason_path,"
	    " poll_path, id_path, lost FROM bltcy_task_kinds",
	[ST_MODEL_FIELDS] = "SELECT service, field FROM bltcy_model_fields",
	/* a failure seen before the task's row was written (the poller's) */
	[ST_TASK_EARLY] =
	    "INSERT IGNORE INTO bltcy_task_early (service, task_id, user_id,"
	    " channel_id, reason, created_at) VALUES (?, ?, ?, ?, ?, ?)",
	/* Idempotency-Key (idem.c): taken by the first, read by repeats */
	[ST_IDEM_TAKE] =
	    "INSERT IGNORE INTO bltcy_idempotency (token_id, idem_key,"
	    " body_hash, state, owner, created_at) VALUES (?, ?, ?, 0, ?, ?)",
	[ST_IDEM_GET] =
	    "SELECT body_hash, state, owner, created_at, status, headers, body,"
	    " complete FROM bltcy_idempotency WHERE token_id = ? AND idem_key = ?",
	[ST_IDEM_DROP] =
	    "DELETE FROM bltcy_idempotency WHERE token_id = ? AND idem_key = ?"
	    " AND owner = ? AND state = 0",
	[ST_IDEM_KEEP] =
	    "UPDATE bltcy_idempotency SET state = 1, status = ?, headers = ?,"
	    " body = ?, complete = ? WHERE token_id = ? AND idem_key = ?"
	    " AND owner = ?",
	/* a key past its day is free again */
	[ST_IDEM_EXPIRE] =
	    "DELETE FROM bltcy_idempotency WHERE token_id = ? AND idem_key = ?"
	    " AND created_at < ?",
	/* open-job places (places.c): a take, what it got, a return */
	[ST_PLACE_TAKE] = "CALL bltcy_place_take(?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_PLACE_GOT] =
	    "SELECT g.last_n, p.open, p.granted FROM bltcy_place_grants g"
	    " JOIN bltcy_places p ON p.scope = g.scope AND p.id = g.id"
	    " AND p.key_hash = g.key_hash"
	    " WHERE g.host = ? AND g.scope = ? AND g.id = ? AND g.key_hash = ?"
	    " AND g.last_op = ?",
	[ST_PLACE_RETURN] = "CALL bltcy_place_return(?, ?, ?, ?, ?, ?)",
	[ST_LEASE_GRANT] =
	    "SELECT last_grant FROM bltcy_leases WHERE host = ? AND token_id = ?",
};

/*
 * The master's statements: lease metering's return and reconciliation,
 * strict metering's look at a dead worker's charge, the usage writer's,
 * and the prunes. A batch of usage is written in one transaction: its
 * name into bltcy_applied (so it is written once), the logs rows and task
 * ids up to FLUSH_ROWS at a time (statements of 64, 16, 4 and 1 rows),
 * then one UPDATE per channel and, for what lease metering spent, per
 * user, lease and token, the token rows last, as every charge waits for
 * their locks.
 */
#define LOG_COLS	"INSERT INTO logs (user_id, created_at, type, content," \
			" username, token_name, model_name, quota, prompt_tokens," \
			" completion_tokens, use_time, is_stream, channel_id," \
			" token_id, `group`, ip, other) VALUES "
#define LOG_ROW		"(?, ?, 2, ?, ?, ?, ?, ?, 0, 0, ?, 0, ?, ?, ?, ?, ?)"
#define TASK_COLS	"INSERT IGNORE INTO bltcy_tasks (service, task_id," \
			" channel_id, user_id, token_id, created_at, request_id," \
			" model, path, key_hash, quota, state, updated_at," \
			" next_poll, places) VALUES "
#define TASK_ROW	"(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'submitted', ?, ?, ?)"
#define RATE_COLS	"INSERT INTO bltcy_rate_counts (kind, id, width, slot, host," \
			" n, expires, updated_at) VALUES "
#define RATE_ROW	"(?, ?, ?, ?, ?, ?, ?," \
			" CAST(ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000) AS SIGNED))"
#define RATE_SET	" ON DUPLICATE KEY UPDATE n = VALUES(n)," \
			" expires = VALUES(expires), updated_at = VALUES(updated_at)"
#define ROWS4(r)	r ", " r ", " r ", " r
#define ROWS16(r)	ROWS4(r) ", " ROWS4(r) ", " ROWS4(r) ", " ROWS4(r)
#define ROWS64(r)	ROWS16(r) ", " ROWS16(r) ", " ROWS16(r) ", " ROWS16(r)

const char *const master_sql[MS__MAX] = {
	[MS_RETURN] = "CALL bltcy_lease_return(?, ?, ?, 1, ?, ?)",
	[MS_RECONCILE] = "CALL bltcy_lease_reconcile(?, ?)",
	[MS_SLOT_FENCE] = SLOT_FENCE,
	[MS_SLOT] =
	    "SELECT req, fenced FROM bltcy_slots WHERE host = ? AND slot = ?",
	[MS_APPLIED] =
	    "INSERT IGNORE INTO bltcy_applied (op, created_at) VALUES (?, ?)",
	[MS_APPLIED_OLD] =
	    "DELETE FROM bltcy_applied WHERE created_at < ? LIMIT 1000",
	[MS_LOG1] = LOG_COLS LOG_ROW,
	[MS_LOG4] = LOG_COLS ROWS4(LOG_ROW),
	[MS_LOG16] = LOG_COLS ROWS16(LOG_ROW),
	[MS_LOG64] = LOG_COLS ROWS64(LOG_ROW),
	[MS_TASK1] = TASK_COLS TASK_ROW,
	[MS_TASK4] = TASK_COLS ROWS4(TASK_ROW),
	[MS_TASK16] = TASK_COLS ROWS16(TASK_ROW),
	[MS_TASK64] = TASK_COLS ROWS64(TASK_ROW),
	[MS_USER] =
	    "UPDATE users SET used_quota = used_quota + ?,"
	    " request_count = request_count + ? WHERE id = ?",
	[MS_CHANNEL] = "UPDATE channels SET used_quota = used_quota + ? WHERE id = ?",
	[MS_SPENT] =
	    "UPDATE bltcy_leases SET amount = amount - ?"
	    " WHERE host = ? AND token_id = ?",
	[MS_SPENT_ALL] = "DELETE FROM bltcy_leases WHERE host = ? AND amount <= 0",
	[MS_TOKEN] =
	    "UPDATE tokens SET used_quota = used_quota + ?,"
	    " accessed_time = GREATEST(IFNULL(accessed_time, 0), ?) WHERE id = ?",
	[MS_REJECTED] =
	    "INSERT INTO bltcy_usage_rejected (request_id, host, created_at,"
	    " rejected_at, user_id, token_id, channel_id, quota, use_time,"
	    " recovered, prepaid, method, path, ip, username, token_name, `group`,"
	    " service, task_ids, error, counted)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	/* the hourly prunes (master.c): a batch of rows older than a time */
	[MS_PRUNE_TASKS] = "DELETE FROM bltcy_tasks WHERE created_at < ? LIMIT ?",
	[MS_PRUNE_IDEM] =
	    "DELETE FROM bltcy_idempotency WHERE created_at < ? LIMIT ?",
	/*
	 * The exchange of limits' counts (reqlimit.c): this host's slots and
	 * requests in flight up; down, the other hosts' sums of each slot
	 * some host wrote since the last look, and of their requests in
	 * flight; in the database's clock, so the hosts' clocks never hide
	 * a row.
	 */
	[MS_RATE_PUT1] = RATE_COLS RATE_ROW RATE_SET,
	[MS_RATE_PUT4] = RATE_COLS ROWS4(RATE_ROW) RATE_SET,
	[MS_RATE_PUT16] = RATE_COLS ROWS16(RATE_ROW) RATE_SET,
	[MS_RATE_PUT64] = RATE_COLS ROWS64(RATE_ROW) RATE_SET,
	[MS_RATE_NOW] =
	    "SELECT CAST(ROUND(UNIX_TIMESTAMP(NOW(3)) * 1000) AS SIGNED)",
	[MS_RATE_PULL] =
	    "SELECT c.kind, c.id, c.width, c.slot, CAST(SUM(c.n) AS SIGNED)"
	    " FROM bltcy_rate_counts c JOIN (SELECT DISTINCT kind, id, width,"
	    " slot FROM bltcy_rate_counts WHERE updated_at >= ? AND width > 0)"
	    " d ON d.kind = c.kind AND d.id = c.id AND d.width = c.width"
	    " AND d.slot = c.slot WHERE c.host <> ?"
	    " GROUP BY c.kind, c.id, c.width, c.slot",
	[MS_RATE_GAUGES] =
	    "SELECT kind, id, 0, 0, CAST(SUM(n) AS SIGNED) FROM bltcy_rate_counts"
	    " WHERE width = 0 AND host <> ? AND updated_at >= ?"
	    " GROUP BY kind, id",
	[MS_RATE_PRUNE] = "DELETE FROM bltcy_rate_counts WHERE expires < ?"
	    " LIMIT 10000",
	/* open-job places (places.c): spare ones back, an earlier run's */
	[MS_PLACE_RETURN] = "CALL bltcy_place_return(?, ?, ?, ?, ?, ?)",
	[MS_PLACE_RECONCILE] = "CALL bltcy_place_reconcile(?, ?)",
	/*
	 * A batch's tasks hold these places now, no longer this host: those
	 * whose rows it inserted are open.
	 */
	/* a task row the batch may not have inserted (INSERT IGNORE) */
	[MS_TASK_MINE] =
	    "SELECT COUNT(*) FROM bltcy_tasks"
	    " WHERE service = ? AND task_id = ? AND request_id = ?",
	[MS_PLACES_WRITTEN] =
	    "UPDATE bltcy_places p JOIN bltcy_place_grants g ON g.host = ?"
	    " AND g.scope = p.scope AND g.id = p.id AND g.key_hash = p.key_hash"
	    " SET p.granted = GREATEST(p.granted - ?, 0), p.open = p.open + ?,"
	    " g.n = g.n - ?"
	    " WHERE p.scope = ? AND p.id = ? AND p.key_hash = ?",
};

/*
 * The task poller's own, after relay_sql's (the channel cache,
 * bltcy_task_seen). Each is safe to run twice (db.c retries one whose
 * connection died): the claim is conditional, the routines find a task
 * already moved on.
 */
const char *const poller_own_sql[TQ__MAX - ST__MAX] = {
	/* failed, not refunded: the refund after the state change was cut */
	[TQ_TO_REFUND - ST__MAX] =
	    "SELECT service, task_id, next_poll, state FROM bltcy_tasks"
	    " WHERE state IN ('failed', 'timeout') AND quota > 0 LIMIT 100",
	[TQ_TIMED_OUT - ST__MAX] =
	    "SELECT service, task_id FROM bltcy_tasks"
	    " WHERE state IN ('submitted', 'running') AND created_at < ?"
	    " LIMIT 100",
	[TQ_DUE - ST__MAX] =
	    "SELECT service, task_id, channel_id, path, key_hash, next_poll,"
	    " state FROM bltcy_tasks"
	    " WHERE state IN ('submitted', 'running') AND quota > 0"
	    " AND next_poll <= ? ORDER BY next_poll LIMIT ?",
	/* one host polls a task at a time: whoever moves next_poll first */
	[TQ_CLAIM - ST__MAX] =
	    "UPDATE bltcy_tasks SET next_poll = ?, polls = polls + 1"
	    " WHERE service = ? AND task_id = ? AND next_poll = ?"
	    " AND state IN ('submitted', 'running')",
	/* and one host sweeps a refund that was cut off, as one polls */
	[TQ_REFUND_CLAIM - ST__MAX] =
	    "UPDATE bltcy_tasks SET next_poll = next_poll + 1"
	    " WHERE service = ? AND task_id = ? AND next_poll = ?"
	    " AND state IN ('failed', 'timeout') AND quota > 0",
	[TQ_REFUND - ST__MAX] = "CALL bltcy_task_refund(?, ?, ?)",
	/* counted once per claim (polls): safe to run twice */
	[TQ_LOST - ST__MAX] = "CALL bltcy_task_lost(?, ?, ?, ?, ?, ?)",
	/* failures seen before the row was written, whose row now is */
	[TQ_EARLY - ST__MAX] =
	    "SELECT e.service, e.task_id, e.reason FROM bltcy_task_early e"
	    " JOIN bltcy_tasks t ON t.service = e.service"
	    " AND t.task_id = e.task_id AND t.user_id = e.user_id"
	    " AND t.channel_id = e.channel_id LIMIT 100",
	[TQ_EARLY_DONE - ST__MAX] =
	    "DELETE FROM bltcy_task_early WHERE service = ? AND task_id = ?",
	/* a task that never came (its submit's usage was lost) */
	[TQ_EARLY_OLD - ST__MAX] =
	    "DELETE FROM bltcy_task_early WHERE created_at < ? LIMIT 1000",
};
