/*
 * What the admin pages read: constant strings with '?' placeholders,
 * indexed by enum admin_stmt. What they write is common/store.c's,
 * shared with bltcy-ctl.
 */
#include <stdlib.h>

#include "sql.h"
#include "util.h"

const char *const admin_sql[AS__MAX] = {
	[AS_USER_AUTH] =
	    "SELECT id, password, role, status,"
	    " (SELECT CAST(COALESCE(MAX(gen), 0) AS SIGNED)"
	    "   FROM bltcy_admin_epoch WHERE user_id = users.id)"
	    " FROM users WHERE username = ? AND deleted_at IS NULL",
	[AS_USER_SESSION] =
	    "SELECT id, username, role, status,"
	    " (SELECT COUNT(*) FROM bltcy_admin_revoked WHERE nonce = ?),"
	    " password, (SELECT CAST(COALESCE(MAX(gen), 0) AS SIGNED)"
	    "   FROM bltcy_admin_epoch WHERE user_id = users.id)"
	    " FROM users WHERE id = ? AND deleted_at IS NULL",
	[AS_COUNTS] =
	    "SELECT"
	    " (SELECT COUNT(*) FROM channels WHERE type = 55),"
	    " (SELECT COUNT(*) FROM channels WHERE type = 55 AND status = 1),"
	    " (SELECT COUNT(*) FROM tokens WHERE deleted_at IS NULL),"
	    " (SELECT COUNT(*) FROM users WHERE deleted_at IS NULL),"
	    " (SELECT COUNT(*) FROM logs WHERE type = 2 AND created_at >= ?),"
	    " (SELECT CAST(COALESCE(SUM(quota), 0) AS SIGNED) FROM logs"
	    "   WHERE type = 2 AND created_at >= ?),"
	    " (SELECT COUNT(*) FROM logs WHERE type = 6 AND created_at >= ?),"
	    " (SELECT CAST(COALESCE(SUM(quota), 0) AS SIGNED) FROM logs"
	    "   WHERE type = 6 AND created_at >= ?)",
	[AS_TASK_STATES] =
	    "SELECT state, COUNT(*) FROM bltcy_tasks GROUP BY state",
	[AS_RECENT_ERRORS] =
	    "SELECT created_at, username, token_name, model_name, channel_id,"
	    " content FROM logs WHERE type = 5 ORDER BY id DESC LIMIT 10",
	[AS_AUTO_DISABLED] =
	    "SELECT id, name FROM channels WHERE type = 55 AND status = 3"
	    " ORDER BY id LIMIT 20",
	[AS_CHART] =
	    "SELECT CAST(FLOOR((created_at - ?) / 3600) AS SIGNED), model_name,"
	    " COUNT(*), CAST(COALESCE(SUM(quota), 0) AS SIGNED) FROM logs"
	    " WHERE type = 2 AND created_at >= ? GROUP BY 1, 2",
	[AS_CHANNEL_LIST] =
	    "SELECT id, name, status, base_url, models, `group`, priority, weight,"
	    " used_quota, test_time, response_time, `key`, setting, channel_info,"
	    " other_info FROM channels WHERE type = 55"
	    " ORDER BY priority DESC, id",
	/* open jobs of each key of a channel (scope 'k'), by its key's hash */
	[AS_KEY_PLACES] =
	    "SELECT id, key_hash, open + granted FROM bltcy_places"
	    " WHERE scope = 'k' ORDER BY id LIMIT 65536",
	[AS_CHANNEL_GET] =
	    "SELECT id, name, status, base_url, `key`, models, `group`, priority,"
	    " weight, setting, auto_ban, remark, tag FROM channels"
	    " WHERE id = ? AND type = 55",
	[AS_TOKEN_LIST] =
	    "SELECT t.id, t.name, t.`key`, t.status, t.remain_quota, t.used_quota,"
	    " t.unlimited_quota, t.expired_time, t.model_limits_enabled,"
	    " t.model_limits, t.allow_ips, u.username,"
	    " COALESCE(l.in_flight, 0), COALESCE(l.tasks, 0), COALESCE(l.rpm, 0)"
	    " FROM tokens t LEFT JOIN users u ON u.id = t.user_id"
	    " LEFT JOIN bltcy_limits l ON l.scope = 't' AND l.id = t.id"
	    " WHERE t.deleted_at IS NULL ORDER BY t.id DESC LIMIT 500",
	[AS_TOKEN_GET] =
	    "SELECT t.id, t.name, t.`key`, t.status, t.remain_quota, t.used_quota,"
	    " t.unlimited_quota, t.expired_time, t.model_limits_enabled,"
	    " t.model_limits, t.allow_ips, u.username,"
	    " COALESCE(l.in_flight, 0), COALESCE(l.tasks, 0), COALESCE(l.rpm, 0)"
	    " FROM tokens t LEFT JOIN users u ON u.id = t.user_id"
	    " LEFT JOIN bltcy_limits l ON l.scope = 't' AND l.id = t.id"
	    " WHERE t.id = ? AND t.deleted_at IS NULL",
	[AS_USER_LIST] =
	    "SELECT u.id, u.username, u.display_name, u.role, u.status, u.quota,"
	    " u.used_quota, u.request_count, u.`group`, COALESCE(l.in_flight, 0),"
	    " COALESCE(l.tasks, 0), COALESCE(l.rpm, 0) FROM users u"
	    " LEFT JOIN bltcy_limits l ON l.scope = 'u' AND l.id = u.id"
	    " WHERE u.deleted_at IS NULL ORDER BY u.id LIMIT 500",
	[AS_USER_GET] =
	    "SELECT u.id, u.username, u.display_name, u.role, u.status, u.quota,"
	    " u.used_quota, u.request_count, u.`group`, COALESCE(l.in_flight, 0),"
	    " COALESCE(l.tasks, 0), COALESCE(l.rpm, 0) FROM users u"
	    " LEFT JOIN bltcy_limits l ON l.scope = 'u' AND l.id = u.id"
	    " WHERE u.id = ? AND u.deleted_at IS NULL",
	/*
	 * Filters: an empty string or 0 means "any". The same WHERE in both
	 * statements; the arguments are bound in the same order.
	 */
	[AS_LOGS_PAGE] =
	    "SELECT id, created_at, type, username, token_name, model_name,"
	    " quota, use_time, channel_id, ip, content FROM logs"
	    " WHERE (? = '' OR username = ?) AND (? = '' OR token_name = ?)"
	    " AND (? = '' OR model_name = ?) AND (? = 0 OR channel_id = ?)"
	    " AND (? = 0 OR type = ?) AND created_at >= ? AND created_at < ?"
	    " ORDER BY id DESC LIMIT ? OFFSET ?",
	[AS_LOGS_TOTAL] =
	    "SELECT COUNT(*), CAST(COALESCE(SUM(quota), 0) AS SIGNED) FROM logs"
	    " WHERE (? = '' OR username = ?) AND (? = '' OR token_name = ?)"
	    " AND (? = '' OR model_name = ?) AND (? = 0 OR channel_id = ?)"
	    " AND (? = 0 OR type = ?) AND created_at >= ? AND created_at < ?",
	/* the price page: what each service's base comes from */
	[AS_PRICE_CHANNELS] =
	    "SELECT id, name, models, setting FROM channels"
	    " WHERE type = 55 AND status = 1 ORDER BY priority DESC, id",
	[AS_PRICE_OPTIONS] =
	    "SELECT `key`, value FROM options"
	    " WHERE `key` IN ('ModelPrice', 'GroupRatio', 'QuotaPerUnit')",
	/*
	 * Tasks, newest first. Filters as the logs': '' or 0 means "any"; a
	 * user or token is matched by name or by id (-1 when the text is no
	 * number). The same WHERE in both, bound in the same order.
	 */
	[AS_TASKS_PAGE] =
	    "SELECT t.created_at, t.service, t.task_id, t.user_id,"
	    " IFNULL(u.username, ''), t.token_id, IFNULL(k.name, ''),"
	    " t.channel_id, t.model, t.state, t.quota, t.refunded_quota,"
	    " t.reason, t.updated_at, t.finished_at FROM bltcy_tasks t"
	    " LEFT JOIN users u ON u.id = t.user_id"
	    " LEFT JOIN tokens k ON k.id = t.token_id"
	    " WHERE (? = '' OR u.username = ? OR t.user_id = ?)"
	    " AND (? = '' OR k.name = ? OR t.token_id = ?)"
	    " AND (? = '' OR t.service = ?) AND (? = 0 OR t.channel_id = ?)"
	    " AND (? = '' OR t.state = ?) AND t.created_at >= ? AND t.created_at < ?"
	    " ORDER BY t.created_at DESC, t.service, t.task_id DESC LIMIT ? OFFSET ?",
	[AS_TASKS_TOTAL] =
	    "SELECT COUNT(*), CAST(COALESCE(SUM(t.quota), 0) AS SIGNED),"
	    " CAST(COALESCE(SUM(t.refunded_quota), 0) AS SIGNED) FROM bltcy_tasks t"
	    " LEFT JOIN users u ON u.id = t.user_id"
	    " LEFT JOIN tokens k ON k.id = t.token_id"
	    " WHERE (? = '' OR u.username = ? OR t.user_id = ?)"
	    " AND (? = '' OR k.name = ? OR t.token_id = ?)"
	    " AND (? = '' OR t.service = ?) AND (? = 0 OR t.channel_id = ?)"
	    " AND (? = '' OR t.state = ?) AND t.created_at >= ? AND t.created_at < ?",
};

const char *
col_s(const struct dbv *c)
{
	return c->t == DBV_STR && c->s != NULL ? c->s : "";
}

long long
col_i(const struct dbv *c)
{
	long long	 v;

	if (c->t == DBV_INT)
		return c->i;
	if (c->t == DBV_STR && parse_ll(c->s, INT64_MIN, INT64_MAX, &v) == 0)
		return v;
	return 0;
}
