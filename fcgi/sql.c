#include "relay.h"

/*
 * The token lookup, with the change counters it was read at (auth_row in
 * worker.c reads the columns by place).
 */
#define AUTH_SELECT \
	    "SELECT t.id, t.user_id, t.status, t.name, t.expired_time," \
	    " t.remain_quota, t.unlimited_quota, t.model_limits_enabled," \
	    " t.model_limits, t.allow_ips, t.`group`," \
	    " u.id, u.username, u.role, u.status, u.quota, u.`group`," \
	    " u.deleted_at IS NOT NULL," \
	    " (SELECT v FROM bltcy_meta WHERE k = 'channels')," \
	    " (SELECT v FROM bltcy_meta WHERE k = 'auth')" \
	    " FROM tokens t LEFT JOIN users u ON u.id = t.user_id" \
	    " WHERE t.`key` = ? AND t.deleted_at IS NULL"

/*
 * Every statement the relay runs. Reads and routines keyed by request id,
 * so the reconnect-and-retry in db.c is safe for each.
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
	    "SELECT id, name, base_url, `key`, setting, auto_ban, status"
	    " FROM channels WHERE type = 55 ORDER BY id",
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
	    " s.req = ?, s.updated_at = ?,"
	    " t.accessed_time = GREATEST(IFNULL(t.accessed_time, 0), ?)"
	    " WHERE t.id = ? AND s.req <> ? AND (? OR t.remain_quota >= ?)"
	    " AND u.quota >= ?"
	    " AND (SELECT v FROM bltcy_meta WHERE k = 'channels') = ?"
	    " AND (SELECT v FROM bltcy_meta WHERE k = 'auth') = ?"
	    " AND IFNULL(t.used_quota, 0) <= 9223372036854775807 - ?"
	    " AND IFNULL(u.used_quota, 0) <= 9223372036854775807 - ?"
	    " AND IFNULL(u.request_count, 0) < 9223372036854775807",
	/*
	 * The same for up to 32 charges to one token at once: the token's and
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
	    "?, ?, ?, ?, ?, ?, ?, ?), s.updated_at = ?,"
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
	/* its refund: only while the slot names the request, so only once */
	[ST_UNCHARGE] =
	    "UPDATE tokens t JOIN users u ON u.id = ?"
	    " JOIN bltcy_slots s ON s.host = ? AND s.slot = ?"
	    " SET t.remain_quota = t.remain_quota + IF(?, 0, ?),"
	    " t.used_quota = t.used_quota - ?,"
	    " u.quota = u.quota + ?, u.used_quota = u.used_quota - ?,"
	    " u.request_count = u.request_count - 1,"
	    " s.req = '', s.updated_at = ?"
	    " WHERE t.id = ? AND s.req = ?",
	[ST_SLOT] = "SELECT req FROM bltcy_slots WHERE host = ? AND slot = ?",
	[ST_SLOT_INIT] =
	    "INSERT IGNORE INTO bltcy_slots (host, slot, updated_at)"
	    " VALUES (?, ?, ?)",
	[ST_PING] = "SELECT v FROM bltcy_meta WHERE k = 'channels'",
	[ST_TASKS_ADD] = "CALL bltcy_tasks_add(?, ?, ?, ?, ?, ?)",
	[ST_AUTO_BAN] = "CALL bltcy_auto_ban(?, ?, ?)",
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
	    " WHERE `key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')",
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
	[ST_LEASE_GRANT] =
	    "SELECT last_grant FROM bltcy_leases WHERE host = ? AND token_id = ?",
};
