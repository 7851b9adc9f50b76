#include "relay.h"

/*
 * Every statement the relay runs. Reads and routines keyed by request id,
 * so the reconnect-and-retry in db.c is safe for each.
 */
const char *const relay_sql[ST__MAX] = {
	[ST_AUTH] =
	    "SELECT t.id, t.user_id, t.status, t.name, t.expired_time,"
	    " t.remain_quota, t.unlimited_quota, t.model_limits_enabled,"
	    " t.model_limits, t.allow_ips, t.`group`,"
	    " u.id, u.username, u.role, u.status, u.quota, u.`group`,"
	    " u.deleted_at IS NOT NULL,"
	    " (SELECT v FROM bltcy_meta WHERE k = 'channels'),"
	    /* the owner of a task the request names; another user's first */
	    " (SELECT CONCAT(k.channel_id, ',', k.user_id) FROM bltcy_tasks k"
	    "   WHERE k.service = ? AND k.task_id IN (?, ?, ?, ?, ?, ?, ?, ?)"
	    "   ORDER BY k.user_id = t.user_id LIMIT 1)"
	    " FROM tokens t LEFT JOIN users u ON u.id = t.user_id"
	    " WHERE t.`key` = ? AND t.deleted_at IS NULL",
	/* the same when the request names no task id: no task lookup at all */
	[ST_AUTH_PLAIN] =
	    "SELECT t.id, t.user_id, t.status, t.name, t.expired_time,"
	    " t.remain_quota, t.unlimited_quota, t.model_limits_enabled,"
	    " t.model_limits, t.allow_ips, t.`group`,"
	    " u.id, u.username, u.role, u.status, u.quota, u.`group`,"
	    " u.deleted_at IS NOT NULL,"
	    " (SELECT v FROM bltcy_meta WHERE k = 'channels'), NULL"
	    " FROM tokens t LEFT JOIN users u ON u.id = t.user_id"
	    " WHERE t.`key` = ? AND t.deleted_at IS NULL",
	[ST_CHANNELS] =
	    "SELECT id, name, base_url, `key`, setting, auto_ban FROM channels"
	    " WHERE type = 55 AND status = 1 ORDER BY id",
	[ST_ABILITIES] =
	    "SELECT a.`group`, a.model, a.channel_id, a.priority, a.weight"
	    " FROM abilities a JOIN channels c ON c.id = a.channel_id"
	    " WHERE a.enabled = 1 AND c.type = 55 AND c.status = 1",
	[ST_RESERVE] =
	    "CALL bltcy_charge(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_SETTLE] = "CALL bltcy_charge_done(?, ?, ?, ?, ?)",
	[ST_REFUND] = "CALL bltcy_charge_refund(?)",
	[ST_CLOSE] = "CALL bltcy_charge_close(?)",
	[ST_RECOVER] = "CALL bltcy_recover(?, ?, ?)",
	[ST_PING] = "SELECT v FROM bltcy_meta WHERE k = 'channels'",
	[ST_TASKS_ADD] = "CALL bltcy_tasks_add(?, ?, ?, ?, ?, ?)",
	[ST_AUTO_BAN] = "CALL bltcy_auto_ban(?, ?, ?)",
	[ST_TASK_OWNER] =
	    "SELECT CONCAT(channel_id, ',', user_id) FROM bltcy_tasks"
	    " WHERE service = ? AND task_id IN (?, ?, ?, ?, ?, ?, ?, ?)"
	    " ORDER BY user_id = ? LIMIT 1",
	[ST_LEASE] = "CALL bltcy_lease(?, ?, ?, ?, ?, ?, ?, ?)",
	[ST_LEASE_GRANT] =
	    "SELECT last_grant FROM bltcy_leases WHERE host = ? AND token_id = ?",
};
