#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "netaddr.h"
#include "route.h"
#include "setting.h"
#include "store.h"
#include "util.h"

const char *const store_sql[STORE__MAX] = {
	[SS_CHANNEL_INSERT] =
	    "INSERT INTO channels (type, `key`, status, name, weight,"
	    " created_time, base_url, models, `group`, priority, auto_ban,"
	    " setting, tag, remark, used_quota, model_mapping)"
	    " VALUES (55, ?, ?, ?, ?, UNIX_TIMESTAMP(), ?, ?, ?, ?, ?, ?, ?, ?, 0, '')",
	/*
	 * Keys entered again: which line was disabled, and why, no longer
	 * says anything of the keys now there (new-api keeps it by line).
	 */
	[SS_CHANNEL_UPDATE] =
	    "UPDATE channels SET channel_info = JSON_REMOVE(JSON_REMOVE("
	    " JSON_REMOVE(IFNULL(channel_info, '{}'), '$.multi_key_status_list'),"
	    " '$.multi_key_disabled_reason'), '$.multi_key_disabled_time'),"
	    " `key` = ?, status = ?, name = ?, weight = ?,"
	    " base_url = ?, models = ?, `group` = ?, priority = ?, auto_ban = ?,"
	    " setting = ?, tag = ?, remark = ? WHERE id = ? AND type = 55",
	[SS_CHANNEL_KEEPKEY_UPDATE] =
	    "UPDATE channels SET status = ?, name = ?, weight = ?,"
	    " base_url = ?, models = ?, `group` = ?, priority = ?, auto_ban = ?,"
	    " setting = ?, tag = ?, remark = ? WHERE id = ? AND type = 55",
	[SS_CHANNEL_DELETE] = "DELETE FROM channels WHERE id = ? AND type = 55",
	[SS_ABILITIES_DELETE] = "DELETE FROM abilities WHERE channel_id = ?",
	[SS_ABILITY_INSERT] =
	    "INSERT INTO abilities (`group`, model, channel_id, enabled,"
	    " priority, weight, tag) VALUES (?, ?, ?, ?, ?, ?, ?)",
	[SS_USER_INSERT] =
	    "INSERT INTO users (username, password, display_name, role, status,"
	    " quota, used_quota, request_count, `group`)"
	    " VALUES (?, ?, ?, ?, 1, ?, 0, 0, ?)",
	[SS_USER_BY_NAME] =
	    "SELECT id FROM users WHERE username = ? AND deleted_at IS NULL",
	[SS_TOKEN_INSERT] =
	    "INSERT INTO tokens (user_id, `key`, status, name, created_time,"
	    " accessed_time, expired_time, remain_quota, unlimited_quota,"
	    " model_limits_enabled, model_limits, allow_ips, used_quota, `group`)"
	    " VALUES (?, ?, 1, ?, UNIX_TIMESTAMP(), UNIX_TIMESTAMP(), ?, ?, ?,"
	    " ?, ?, ?, 0, '')",
	[SS_TOKEN_BY_KEY] =
	    "SELECT id, name, status, remain_quota, used_quota, unlimited_quota,"
	    " expired_time FROM tokens WHERE `key` = ? AND deleted_at IS NULL",
	[SS_CHANNEL_STATUS] =
	    "UPDATE channels SET status = ? WHERE id = ? AND type = 55",
	[SS_ABILITIES_ENABLE] =
	    "UPDATE abilities SET enabled = ? WHERE channel_id = ?",
	/*
	 * The multiplier is bound in ten-thousandths: 15000 / 10000 = 1.5000.
	 * Only while there is room: fewer rules than the relay loads, and a
	 * field the service's rules have, or room for one more (fields compare
	 * without case, as the column does and the relay reads them).
	 */
	[SS_PRICE_RULE_INSERT] =
	    "INSERT INTO bltcy_price_rules (service, model, field, value,"
	    " multiplier, surcharge, note)"
	    " SELECT ?, ?, ?, ?, ? / 10000, ?, ? FROM DUAL"
	    " WHERE (SELECT COUNT(*) FROM bltcy_price_rules) < ?"
	    " AND (? = '' OR EXISTS (SELECT 1 FROM bltcy_price_rules"
	    " WHERE service = ? AND field = ?)"
	    " OR (SELECT COUNT(DISTINCT field) FROM bltcy_price_rules"
	    " WHERE service = ? AND field <> '') < ?)",
	[SS_PRICE_RULE_DELETE] = "DELETE FROM bltcy_price_rules WHERE id = ?",
	[SS_PRICE_RULE_LIST] =
	    "SELECT id, service, model, field, value,"
	    " CAST(ROUND(multiplier * 10000) AS SIGNED), surcharge, note"
	    " FROM bltcy_price_rules ORDER BY service, model, field, value, id",
	/* what the limits leave for a rule of (service, field) */
	[SS_PRICE_RULE_ROOM] =
	    "SELECT (SELECT COUNT(*) FROM bltcy_price_rules),"
	    " (SELECT COUNT(DISTINCT field) FROM bltcy_price_rules"
	    " WHERE service = ? AND field <> ''),"
	    " (SELECT COUNT(*) FROM bltcy_price_rules"
	    " WHERE service = ? AND field = ?)",
	[SS_TOKEN_UPDATE] =
	    "UPDATE tokens SET name = ?, remain_quota = ?, unlimited_quota = ?,"
	    " expired_time = ?, model_limits_enabled = ?, model_limits = ?,"
	    " allow_ips = ? WHERE id = ? AND deleted_at IS NULL",
	[SS_TOKEN_STATUS] =
	    "UPDATE tokens SET status = ? WHERE id = ? AND deleted_at IS NULL",
	[SS_TOKEN_DELETE] =
	    "UPDATE tokens SET deleted_at = NOW(3) WHERE id = ?"
	    " AND deleted_at IS NULL",
	[SS_USER_UPDATE] =
	    "UPDATE users SET display_name = ?, role = ?, quota = ?, `group` = ?,"
	    " status = ? WHERE id = ? AND deleted_at IS NULL",
	[SS_USER_PASSWORD] =
	    "UPDATE users SET password = ? WHERE id = ? AND deleted_at IS NULL",
	[SS_CHANNEL_TESTED] =
	    "UPDATE channels SET test_time = ?, response_time = ? WHERE id = ?",
	[SS_SESSION_REVOKE] =
	    "INSERT IGNORE INTO bltcy_admin_revoked (nonce, expires_at)"
	    " VALUES (?, ?)",
	[SS_SESSION_REVOKED_PURGE] =
	    "DELETE FROM bltcy_admin_revoked WHERE expires_at < ?",
	/* login throttling: a row per address and per name there */
	[SS_THROTTLE_SEED] =
	    "INSERT IGNORE INTO bltcy_login_throttle (k, failures, first_at,"
	    " locked_until) VALUES (?, 0, ?, 0), (?, 0, ?, 0)",
	/* both rows, locked in one order (key order) by every attempt */
	[SS_THROTTLE_READ] =
	    "SELECT k, failures, first_at, locked_until FROM bltcy_login_throttle"
	    " WHERE k IN (?, ?) ORDER BY k FOR UPDATE",
	/*
	 * Count one attempt: 1 again once the window is over. MariaDB
	 * assigns left to right: first_at and locked_until see the new count.
	 */
	[SS_THROTTLE_COUNT] =
	    "UPDATE bltcy_login_throttle SET"
	    " failures = IF(first_at < ?, 1, failures + 1),"
	    " first_at = IF(failures = 1, ?, first_at),"
	    " locked_until = IF(failures >= ?, ?, 0)"
	    " WHERE k = ?",
	/* the name's row, and the address's once it counts nothing */
	[SS_THROTTLE_CLEAR] =
	    "DELETE FROM bltcy_login_throttle WHERE k = ?"
	    " OR (k = ? AND failures = 0 AND locked_until = 0)",
	/* an attempt that was no failure, taken back (and a lock it made) */
	[SS_THROTTLE_GIVE_BACK] =
	    "UPDATE bltcy_login_throttle SET failures = GREATEST(failures - 1, 0),"
	    " locked_until = IF(failures < ?, 0, locked_until) WHERE k = ?",
	[SS_THROTTLE_PURGE] =
	    "DELETE FROM bltcy_login_throttle WHERE first_at < ?"
	    " AND locked_until <= ? LIMIT 100",
	/* a value below 0 keeps the row's; a new row has none there */
	[SS_LIMITS_SET] =
	    "INSERT INTO bltcy_limits (scope, id, in_flight, tasks, rpm,"
	    " updated_at) VALUES (?, ?, GREATEST(?, 0), GREATEST(?, 0),"
	    " GREATEST(?, 0), UNIX_TIMESTAMP()) ON DUPLICATE KEY UPDATE"
	    " in_flight = IF(? < 0, in_flight, VALUES(in_flight)),"
	    " tasks = IF(? < 0, tasks, VALUES(tasks)),"
	    " rpm = IF(? < 0, rpm, VALUES(rpm)), updated_at = UNIX_TIMESTAMP()",
	[SS_LIMITS_PRUNE] =
	    "DELETE FROM bltcy_limits WHERE scope = ? AND id = ?"
	    " AND in_flight = 0 AND tasks = 0 AND rpm = 0",
	[SS_LIMITS_DELETE] =
	    "DELETE FROM bltcy_limits WHERE scope = ? AND id = ?",
	/* users first, then tokens; '' scope: every row */
	[SS_LIMITS_LIST] =
	    "SELECT l.scope, l.id, l.in_flight, l.tasks, l.rpm,"
	    " COALESCE(t.name, u.username, ''), COALESCE(tu.username, ''),"
	    " t.id IS NULL AND u.id IS NULL FROM bltcy_limits l"
	    " LEFT JOIN tokens t ON l.scope = 't' AND t.id = l.id"
	    " AND t.deleted_at IS NULL"
	    " LEFT JOIN users tu ON tu.id = t.user_id"
	    " LEFT JOIN users u ON l.scope = 'u' AND u.id = l.id"
	    " AND u.deleted_at IS NULL"
	    " WHERE ? = '' OR (l.scope = ? AND l.id = ?)"
	    " ORDER BY l.scope DESC, l.id",
	[SS_TOKEN_WHO] =
	    "SELECT t.id, t.name, COALESCE(u.username, '') FROM tokens t"
	    " LEFT JOIN users u ON u.id = t.user_id"
	    " WHERE t.`key` = ? AND t.deleted_at IS NULL",
};

static const char base_url_help[] =
    "Base URL 只能包含协议、主机和可选端口，不要包含路径、查询参数或用户信息。"
    "✅ 正确：https://api.bltcy.ai ✅ 正确：http://your-old-gateway.com "
    "❌ 错误：https://api.bltcy.ai/kling ❌ 错误：https://api.bltcy.ai/runway/v1";

static const char forbidden_help[] =
    "链路本地和云元数据地址（169.254.0.0/16、fe80::/10、0.0.0.0、::）以及解析到"
    "这些地址的主机名不能作为上游（link-local, metadata and unspecified "
    "addresses are never an upstream）";

int
url_endpoint(const char *url, struct endpoint *e)
{
	const char	*p, *hp, *end, *at, *colon;
	size_t		 n;
	long long	 port = 0;

	memset(e, 0, sizeof(*e));
	if ((p = strstr(url, "://")) == NULL || (size_t)(p - url) >= sizeof(e->scheme))
		return -1;
	for (n = 0; url + n < p; n++)
		e->scheme[n] = (char)tolower((unsigned char)url[n]);
	hp = p + 3;
	end = hp + strcspn(hp, "/?#");
	/* user info (a proxy's credentials) is not where the bytes go */
	for (at = NULL, p = hp; p < end; p++)
		if (*p == '@')
			at = p;
	if (at != NULL)
		hp = at + 1;
	if (*hp == '[') {
		if ((p = memchr(hp, ']', (size_t)(end - hp))) == NULL)
			return -1;
		hp++;
		n = (size_t)(p - hp);
		colon = p + 1 < end && p[1] == ':' ? p + 1 : NULL;
		if (colon == NULL && p + 1 != end)
			return -1;
	} else {
		colon = memchr(hp, ':', (size_t)(end - hp));
		n = (size_t)((colon ? colon : end) - hp);
	}
	if (n == 0 || n >= sizeof(e->host))
		return -1;
	memcpy(e->host, hp, n);
	e->host[n] = '\0';
	for (n = 0; e->host[n] != '\0'; n++)
		e->host[n] = (char)tolower((unsigned char)e->host[n]);
	if (colon != NULL) {
		char	 ps[8];

		n = (size_t)(end - colon - 1);
		if (n == 0 || n >= sizeof(ps))
			return -1;
		memcpy(ps, colon + 1, n);
		ps[n] = '\0';
		if (parse_ll(ps, 1, 65535, &port) == -1)
			return -1;
	} else if (strcmp(e->scheme, "https") == 0)
		port = 443;
	else if (strcmp(e->scheme, "http") == 0)
		port = 80;
	else
		port = 1080;	/* socks */
	e->port = (int)port;
	return 0;
}

int
check_upstream_host(const char *what, const char *host, char *msg,
    size_t msgsz)
{
	enum addr_class	 c;

	/* a name that does not resolve now may later: connect time checks it */
	if (host_class(host, &c) == 0 && c == ADDR_FORBIDDEN) {
		snprintf(msg, msgsz, "%s的地址 %.100s 不允许：%s", what, host,
		    forbidden_help);
		return -1;
	}
	return 0;
}

int
check_proxy(const char *in, char *msg, size_t msgsz)
{
	static const char *const schemes[] = { "http", "https", "socks5",
	    "socks5h" };
	struct endpoint	 e;
	const char	*p, *hp;
	size_t		 i, n = strlen(in);
	int		 ok = 0;

	if (n > 0 && in[n - 1] == '/')
		n--;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c <= 0x20 || c >= 0x7f || c == '\\')
			goto bad;
	}
	if ((p = strstr(in, "://")) == NULL)
		goto bad;
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if ((size_t)(p - in) == strlen(schemes[i]) &&
		    ascii_casecmp_n(in, schemes[i], strlen(schemes[i])) == 0)
			ok = 1;
	hp = p + 3;
	if (!ok || hp >= in + n || strcspn(hp, "/?#") < (size_t)(in + n - hp) ||
	    url_endpoint(in, &e) == -1)
		goto bad;
	return check_upstream_host("代理 (proxy) ", e.host, msg, msgsz);
bad:
	snprintf(msg, msgsz, "代理 (proxy) 必须是 http://、https://、socks5:// 或 "
	    "socks5h:// 加主机和可选端口，不能包含路径（scheme://host[:port], "
	    "no path）");
	return -1;
}

int
check_base_url(const char *in, char *out, size_t outsz, int *notice,
    char *msg, size_t msgsz)
{
	struct endpoint	 e;
	const char	*p, *host;
	size_t		 n, i;
	int		 colon = 0, bracket = 0;

	*notice = 0;
	while (*in == ' ' || *in == '\t')
		in++;
	n = strlen(in);
	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\t' ||
	    in[n - 1] == '\r' || in[n - 1] == '\n'))
		n--;
	if (n > 0 && in[n - 1] == '/') {
		n--;
		*notice = 1;
	}
	if (n >= 8 && ascii_casecmp_n(in, "https://", 8) == 0)
		host = in + 8;
	else if (n >= 7 && ascii_casecmp_n(in, "http://", 7) == 0)
		host = in + 7;
	else {
		snprintf(msg, msgsz, "Base URL 必须以 http:// 或 https:// 开头。%s",
		    base_url_help);
		return -1;
	}
	if (host == in + n) {
		snprintf(msg, msgsz, "Base URL 缺少主机名。%s", base_url_help);
		return -1;
	}
	/* user info first: "user:pw@host" must not read as a bad port */
	for (p = host; p < in + n && *p != '/' && *p != '?' && *p != '#'; p++)
		if (*p == '@') {
			snprintf(msg, msgsz, "Base URL 不能包含用户信息。%s",
			    base_url_help);
			return -1;
		}
	for (p = host; p < in + n; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '[')
			bracket = 1;
		else if (c == ']')
			bracket = 0;
		else if (c == ':' && !bracket)
			colon = 1;
		else if (colon && !isdigit(c)) {
			snprintf(msg, msgsz, "Base URL 的端口必须是数字。%s",
			    base_url_help);
			return -1;
		}
		if (c == '/' || c == '?' || c == '#' || c == '@' || c == '\\' ||
		    c <= 0x20 || c >= 0x7f) {
			snprintf(msg, msgsz, "Base URL 不能包含%s。%s",
			    c == '/' ? "路径" : c == '?' ? "查询参数" :
			    c == '#' ? "片段" : c == '@' ? "用户信息" : "非法字符",
			    base_url_help);
			return -1;
		}
	}
	if (host[0] == ':' || in[n - 1] == ':') {
		snprintf(msg, msgsz, "Base URL 缺少主机名或端口。%s", base_url_help);
		return -1;
	}
	if (n >= outsz) {
		snprintf(msg, msgsz, "Base URL 太长");
		return -1;
	}
	memcpy(out, in, n);
	out[n] = '\0';
	for (i = 0; i < (size_t)(host - in); i++)	/* scheme in lower case */
		out[i] = (char)tolower((unsigned char)out[i]);
	if (url_endpoint(out, &e) == -1) {
		snprintf(msg, msgsz, "Base URL 的主机或端口无效。%s", base_url_help);
		return -1;
	}
	return check_upstream_host("Base URL ", e.host, msg, msgsz);
}

int
check_models(const char *in, char *out, size_t outsz, char *msg, size_t msgsz)
{
	const char	*p = in;
	size_t		 o = 0;

	out[0] = '\0';
	while (*p != '\0') {
		char	 m[64];
		size_t	 n = strcspn(p, ",\n\r"), s = 0, i, base;

		while (s < n && isspace((unsigned char)p[s]))
			s++;
		while (n > s && isspace((unsigned char)p[n - 1]))
			n--;
		if (n > s) {
			if (n - s >= sizeof(m)) {
				snprintf(msg, msgsz, "模型名太长");
				return -1;
			}
			for (i = s; i < n; i++)
				m[i - s] = (char)tolower((unsigned char)p[i]);
			m[n - s] = '\0';
			if (strcmp(m, "runwayml") == 0) {
				snprintf(msg, msgsz, "请使用 runway：/runwayml/* 路径"
				    "也由模型 runway 提供（use runway）");
				return -1;
			}
			if (!service_known(m)) {
				for (base = 0; isalpha((unsigned char)m[base]); base++)
					;
				m[base] = '\0';
				if (base > 0 && service_known(m))
					snprintf(msg, msgsz, "请使用基础名称 %s，不要"
					    "添加版本号或后缀（如 kling-v1-6）", m);
				else
					snprintf(msg, msgsz, "未知的模型 %.60s，可用的"
					    "模型：%s", p + s, service_list());
				return -1;
			}
			if (!list_has(out, ',', m, strlen(m))) {
				if (o + strlen(m) + 2 > outsz) {
					snprintf(msg, msgsz, "模型太多");
					return -1;
				}
				o += (size_t)snprintf(out + o, outsz - o, "%s%s",
				    o ? "," : "", m);
			}
		}
		p += strcspn(p, ",\n\r");
		if (*p != '\0')
			p++;
	}
	if (o == 0) {
		snprintf(msg, msgsz, "请至少配置一个模型（如 kling）");
		return -1;
	}
	return 0;
}

int
check_setting(const char *in, char *msg, size_t msgsz)
{
	struct chan_setting	 s;
	char			 err[128];

	if (setting_parse(in, &s, err, sizeof(err)) == -1) {
		snprintf(msg, msgsz, "设置必须是 JSON 对象，如 "
		    "{\"PassthroughQuota\": 1000}：%s", err);
		return -1;
	}
	if (s.proxy[0] != '\0')
		return check_proxy(s.proxy, msg, msgsz);
	return 0;
}

int
check_groups(const char *in, char *out, size_t outsz, char *msg, size_t msgsz)
{
	size_t	 i, o = 0;

	for (i = 0; in[i] != '\0'; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == ' ' || c == '\t')
			continue;
		if (!(isalnum(c) || c == '_' || c == '-' || c == ',')) {
			snprintf(msg, msgsz, "分组只能包含字母、数字、_ 和 -，"
			    "多个分组用逗号分隔");
			return -1;
		}
		if (o + 1 >= outsz) {
			snprintf(msg, msgsz, "分组太长（最多 %zu 个字符）",
			    outsz - 1);
			return -1;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	if (o == 0 || strspn(out, ",") == o)
		strlcpy_(out, "default", outsz);
	return 0;
}

int
check_len(const char *what, const char *s, size_t limit, int chars,
    char *msg, size_t msgsz)
{
	size_t	 n = 0;
	const unsigned char *p = (const unsigned char *)s;

	if (!chars)
		n = strlen(s);
	else
		for (; *p != '\0'; p++)
			n += (*p & 0xc0) != 0x80;
	if (n <= limit)
		return 0;
	snprintf(msg, msgsz, "%s太长：最多 %zu %s（too long: at most %zu %s）",
	    what, limit, chars ? "个字符" : "字节", limit,
	    chars ? "characters" : "bytes");
	return -1;
}

int
check_line(const char *what, const char *s, size_t limit, char *msg,
    size_t msgsz)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n, i;

	for (; *p != '\0'; p += n) {
		if (*p < 0x20 || *p == 0x7f)
			goto bad;
		n = *p < 0x80 ? 1 : *p >= 0xc2 && *p <= 0xdf ? 2 :
		    *p >= 0xe0 && *p <= 0xef ? 3 : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
		if (n == 0)
			goto bad;
		for (i = 1; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				goto bad;
		/* overlong, surrogate and out-of-range forms */
		if ((n == 3 && ((p[0] == 0xe0 && p[1] < 0xa0) ||
		    (p[0] == 0xed && p[1] >= 0xa0))) ||
		    (n == 4 && ((p[0] == 0xf0 && p[1] < 0x90) ||
		    (p[0] == 0xf4 && p[1] >= 0x90))))
			goto bad;
	}
	return check_len(what, s, limit, 1, msg, msgsz);
bad:
	snprintf(msg, msgsz, "%s必须是一行 UTF-8 文本（one line of UTF-8 text）",
	    what);
	return -1;
}

int
check_ips(const char *in, char out[LIM_ALLOW_IPS + 1], char *bad,
    size_t badsz)
{
	const char	*p = in;
	size_t		 o = 0;

	out[0] = '\0';
	bad[0] = '\0';
	while (*p != '\0') {
		size_t		 n = strcspn(p, ",\r\n"), s = 0;
		char		 one[64], *slash;
		unsigned char	 addr[16];
		long long	 bits;
		int		 v6;

		while (s < n && (p[s] == ' ' || p[s] == '\t'))
			s++;
		while (n > s && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > s) {
			snprintf(bad, badsz, "%.*s", (int)(n - s > 64 ? 64 : n - s),
			    p + s);
			if (n - s >= sizeof(one))
				return -1;
			memcpy(one, p + s, n - s);
			one[n - s] = '\0';
			if ((slash = strchr(one, '/')) != NULL)
				*slash = '\0';
			v6 = strchr(one, ':') != NULL;
			if (inet_pton(v6 ? AF_INET6 : AF_INET, one, addr) != 1 ||
			    (slash != NULL && parse_ll(slash + 1, 0, v6 ? 128 : 32,
			    &bits) == -1))
				return -1;
			if (slash != NULL)
				*slash = '/';
			/* the entry and its newline must fit: never cut one */
			if (n - s + (o ? 1 : 0) > LIM_ALLOW_IPS - o)
				return -2;
			o += (size_t)snprintf(out + o, LIM_ALLOW_IPS + 1 - o,
			    "%s%s", o ? "\n" : "", one);
		}
		p += strcspn(p, ",\r\n");
		p += strspn(p, ",\r\n");
	}
	bad[0] = '\0';
	return 0;
}

static int
abilities_write(struct db *db, const struct channel_form *f, long long id)
{
	const char	*g = f->group;
	struct dbv	 a[7];

	a[0] = DBI(id);
	if (db_run(db, SS_ABILITIES_DELETE, a, 1, NULL, NULL, NULL) != DB_OK)
		return -1;
	while (*g != '\0') {
		size_t		 gl = strcspn(g, ",");
		const char	*m = f->models;

		while (gl > 0 && *m != '\0') {
			size_t ml = strcspn(m, ",");
			if (ml > 0) {
				a[0] = DBSN(g, gl);
				a[1] = DBSN(m, ml);
				a[2] = DBI(id);
				a[3] = DBI(f->status == 1);
				a[4] = DBI(f->priority);
				a[5] = DBI(f->weight);
				a[6] = f->tag[0] ? DBS(f->tag) : DBNULL;
				if (db_run(db, SS_ABILITY_INSERT, a, 7, NULL, NULL,
				    NULL) != DB_OK)
					return -1;
			}
			m += ml;
			if (*m == ',')
				m++;
		}
		g += gl;
		if (*g == ',')
			g++;
	}
	return 0;
}

long long
channel_save(struct db *db, const struct channel_form *f, long long id,
    char *msg, size_t msgsz)
{
	struct dbv		 a[13];
	char			*sealed = NULL;
	unsigned long long	 aff = 0;
	size_t			 n = 0;
	enum db_rc		 rc;

	if (f->key != NULL && (sealed = seal(f->key)) == NULL) {
		snprintf(msg, msgsz, "密钥加密失败（SESSION_SECRET 未配置？）");
		return -1;
	}
	if (db_begin(db) != DB_OK)
		goto dberr;
	if (sealed != NULL)
		a[n++] = DBS(sealed);
	a[n++] = DBI(f->status);
	a[n++] = DBS(f->name);
	a[n++] = DBI(f->weight);
	a[n++] = DBS(f->base_url);
	a[n++] = DBS(f->models);
	a[n++] = DBS(f->group);
	a[n++] = DBI(f->priority);
	a[n++] = DBI(f->auto_ban);
	a[n++] = DBS(f->setting);
	a[n++] = f->tag[0] ? DBS(f->tag) : DBNULL;
	a[n++] = DBS(f->remark);
	if (id == 0) {
		if (sealed == NULL) {
			db_rollback(db);
			snprintf(msg, msgsz, "密钥不能为空");
			return -1;
		}
		rc = db_run(db, SS_CHANNEL_INSERT, a, n, NULL, NULL, NULL);
		id = (long long)db_insert_id(db);
	} else {
		a[n++] = DBI(id);
		rc = db_run(db, sealed ? SS_CHANNEL_UPDATE :
		    SS_CHANNEL_KEEPKEY_UPDATE, a, n, NULL, NULL, &aff);
	}
	if (rc != DB_OK || abilities_write(db, f, id) == -1 ||
	    db_commit(db) != DB_OK) {
		db_rollback(db);
		goto dberr;
	}
	if (sealed != NULL) {
		wipe(sealed, strlen(sealed));
		free(sealed);
	}
	return id;
dberr:
	if (sealed != NULL) {
		wipe(sealed, strlen(sealed));
		free(sealed);
	}
	snprintf(msg, msgsz, "数据库错误：%s", db_error(db));
	return -1;
}

int
channel_delete(struct db *db, long long id, char *msg, size_t msgsz)
{
	struct dbv	 a = DBI(id);

	if (db_begin(db) != DB_OK ||
	    db_run(db, SS_ABILITIES_DELETE, &a, 1, NULL, NULL, NULL) != DB_OK ||
	    db_run(db, SS_CHANNEL_DELETE, &a, 1, NULL, NULL, NULL) != DB_OK ||
	    db_commit(db) != DB_OK) {
		db_rollback(db);
		snprintf(msg, msgsz, "数据库错误：%s", db_error(db));
		return -1;
	}
	return 0;
}

int
channel_set_status(struct db *db, long long id, long long status, char *msg,
    size_t msgsz)
{
	struct dbv	 a[2];

	a[1] = DBI(id);
	if (db_begin(db) != DB_OK)
		goto fail;
	a[0] = DBI(status);
	if (db_run(db, SS_CHANNEL_STATUS, a, 2, NULL, NULL, NULL) != DB_OK)
		goto fail;
	a[0] = DBI(status == 1);
	if (db_run(db, SS_ABILITIES_ENABLE, a, 2, NULL, NULL, NULL) != DB_OK ||
	    db_commit(db) != DB_OK)
		goto fail;
	return 0;
fail:
	db_rollback(db);
	snprintf(msg, msgsz, "数据库错误：%s", db_error(db));
	return -1;
}

static int
first_int(void *arg, const struct dbv *c, size_t n)
{
	*(long long *)arg = c[0].i;
	return 1;
}

long long
user_id_by_name(struct db *db, const char *username)
{
	struct dbv	 a = DBS(username);
	long long	 id = 0;

	if (db_run(db, SS_USER_BY_NAME, &a, 1, first_int, &id, NULL) != DB_OK)
		return -1;
	return id;
}

long long
user_create(struct db *db, const char *username, const char *password,
    long long role, long long quota, const char *group, char *msg,
    size_t msgsz)
{
	char		 hash[128];
	struct dbv	 a[6];

	if (*username == '\0') {
		snprintf(msg, msgsz, "用户名不能为空");
		return -1;
	}
	if (check_len("用户名", username, LIM_USERNAME, 1, msg, msgsz) == -1 ||
	    check_len("分组", group, LIM_USER_GROUP, 0, msg, msgsz) == -1)
		return -1;
	if (strlen(password) < 8) {
		snprintf(msg, msgsz, "密码至少 8 个字符");
		return -1;
	}
	/* bcrypt reads 72 bytes: a longer password would be cut */
	if (check_len("密码", password, PASSWORD_MAX, 0, msg, msgsz) == -1)
		return -1;
	if (password_hash(password, hash, sizeof(hash)) == -1) {
		snprintf(msg, msgsz, "密码哈希失败");
		return -1;
	}
	a[0] = DBS(username);
	a[1] = DBS(hash);
	a[2] = DBS(username);
	a[3] = DBI(role);
	a[4] = DBI(quota);
	a[5] = DBS(*group ? group : "default");
	if (db_run(db, SS_USER_INSERT, a, 6, NULL, NULL, NULL) != DB_OK) {
		snprintf(msg, msgsz, db_errno(db) == 1062 ? "用户名已存在" :
		    "数据库错误：%s", db_error(db));
		return -1;
	}
	return (long long)db_insert_id(db);
}

long long
token_create(struct db *db, long long user_id, const char *name,
    long long quota, long long expires, const char *model_limits,
    const char *allow_ips, char key_out[49], char *msg, size_t msgsz)
{
	struct dbv	 a[9];

	if (random_alnum(key_out, 48) == -1) {
		snprintf(msg, msgsz, "no randomness");
		return -1;
	}
	a[0] = DBI(user_id);
	a[1] = DBS(key_out);
	a[2] = DBS(name);
	a[3] = DBI(expires);
	a[4] = DBI(quota < 0 ? 0 : quota);
	a[5] = DBI(quota < 0);
	a[6] = DBI(model_limits != NULL && *model_limits != '\0');
	a[7] = DBS(model_limits ? model_limits : "");
	a[8] = DBS(allow_ips ? allow_ips : "");
	if (db_run(db, SS_TOKEN_INSERT, a, 9, NULL, NULL, NULL) != DB_OK) {
		snprintf(msg, msgsz, "数据库错误：%s", db_error(db));
		return -1;
	}
	return (long long)db_insert_id(db);
}

/* Run statement stmt with n arguments and no rows: 0, or -1. */
static int
write1(struct db *db, int stmt, const struct dbv *a, size_t n)
{
	return db_run(db, (size_t)stmt, a, n, NULL, NULL, NULL) == DB_OK ? 0 : -1;
}

int
token_update(struct db *db, long long id, const char *name, long long quota,
    long long unlimited, long long expires, const char *model_limits,
    const char *allow_ips)
{
	struct dbv	 a[8] = { DBS(name), DBI(quota), DBI(unlimited),
	    DBI(expires), DBI(model_limits[0] != '\0'), DBS(model_limits),
	    DBS(allow_ips), DBI(id) };

	return write1(db, SS_TOKEN_UPDATE, a, 8);
}

int
token_set_status(struct db *db, long long id, long long status)
{
	struct dbv	 a[2] = { DBI(status), DBI(id) };

	return write1(db, SS_TOKEN_STATUS, a, 2);
}

int
token_delete(struct db *db, long long id)
{
	struct dbv	 a = DBI(id);

	return write1(db, SS_TOKEN_DELETE, &a, 1);
}

int
user_update(struct db *db, long long id, const char *display_name,
    long long role, long long quota, const char *group, long long status)
{
	struct dbv	 a[6] = { DBS(display_name), DBI(role), DBI(quota),
	    DBS(group), DBI(status), DBI(id) };

	return write1(db, SS_USER_UPDATE, a, 6);
}

int
user_set_password(struct db *db, long long id, const char *hash)
{
	struct dbv	 a[2] = { DBS(hash), DBI(id) };

	return write1(db, SS_USER_PASSWORD, a, 2);
}

void
channel_tested(struct db *db, long long id, long long at, long long ms)
{
	struct dbv	 a[3] = { DBI(at), DBI(ms), DBI(id) };

	write1(db, SS_CHANNEL_TESTED, a, 3);
}

int
session_nonce_revoke(struct db *db, const char *nonce, long long expires,
    long long now)
{
	struct dbv	 a[2] = { DBS(nonce), DBI(expires) };

	if (write1(db, SS_SESSION_REVOKE, a, 2) == -1)
		return -1;
	a[0] = DBI(now);
	write1(db, SS_SESSION_REVOKED_PURGE, a, 1);
	return 0;
}

int
login_throttle_seed(struct db *db, const char *addr_key,
    const char *pair_key, long long now)
{
	struct dbv	 a[4] = { DBS(addr_key), DBI(now), DBS(pair_key),
	    DBI(now) };

	return write1(db, SS_THROTTLE_SEED, a, 4);
}

int
login_throttle_read(struct db *db, const char *addr_key,
    const char *pair_key, db_row_fn fn, void *arg)
{
	struct dbv	 a[2] = { DBS(addr_key), DBS(pair_key) };

	return db_run(db, SS_THROTTLE_READ, a, 2, fn, arg, NULL) == DB_OK ?
	    0 : -1;
}

int
login_throttle_count(struct db *db, const char *key,
    long long window_start, long long now, long long max, long long lock_until)
{
	struct dbv	 a[5] = { DBI(window_start), DBI(now), DBI(max),
	    DBI(lock_until), DBS(key) };

	return write1(db, SS_THROTTLE_COUNT, a, 5);
}

int
login_throttle_give_back(struct db *db, const char *key, long long max)
{
	struct dbv	 a[2] = { DBI(max), DBS(key) };

	return write1(db, SS_THROTTLE_GIVE_BACK, a, 2);
}

int
login_throttle_clear(struct db *db, const char *pair_key,
    const char *addr_key)
{
	struct dbv	 a[2] = { DBS(pair_key), DBS(addr_key) };

	return write1(db, SS_THROTTLE_CLEAR, a, 2);
}

int
login_throttle_purge(struct db *db, long long window_start, long long now)
{
	struct dbv	 a[2] = { DBI(window_start), DBI(now) };

	return write1(db, SS_THROTTLE_PURGE, a, 2);
}

int
limits_set(struct db *db, int scope, long long id, long long in_flight,
    long long tasks, long long rpm)
{
	char		 sc[2] = { (char)scope, '\0' };
	struct dbv	 a[8] = { DBS(sc), DBI(id), DBI(in_flight), DBI(tasks),
	    DBI(rpm), DBI(in_flight), DBI(tasks), DBI(rpm) };

	if (write1(db, SS_LIMITS_SET, a, 8) == -1)
		return -1;
	/* none left: the row would only say so */
	return write1(db, SS_LIMITS_PRUNE, a, 2);
}

int
limits_delete(struct db *db, int scope, long long id)
{
	char			 sc[2] = { (char)scope, '\0' };
	struct dbv		 a[2] = { DBS(sc), DBI(id) };
	unsigned long long	 aff = 0;

	if (db_run(db, SS_LIMITS_DELETE, a, 2, NULL, NULL, &aff) != DB_OK)
		return -1;
	return aff == 0;
}

int
limits_list(struct db *db, int scope, long long id, db_row_fn fn, void *arg)
{
	char		 sc[2] = { (char)scope, '\0' };
	struct dbv	 a[3] = { DBS(sc), DBS(sc), DBI(id) };

	return db_run(db, SS_LIMITS_LIST, a, 3, fn, arg, NULL) == DB_OK ? 0 : -1;
}

struct who {
	long long	 id;
	char		*name, *user;
	size_t		 namesz, usersz;
};

static int
who_row(void *arg, const struct dbv *c, size_t n)
{
	struct who	*w = arg;

	w->id = c[0].i;
	strlcpy_(w->name, c[1].t == DBV_STR ? c[1].s : "", w->namesz);
	strlcpy_(w->user, c[2].t == DBV_STR ? c[2].s : "", w->usersz);
	return 1;
}

long long
token_who(struct db *db, const char *key, char *name, size_t namesz,
    char *user, size_t usersz)
{
	struct who	 w = { 0, name, user, namesz, usersz };
	struct dbv	 a;

	if (strncmp(key, "sk-", 3) == 0)
		key += 3;
	a = DBS(key);
	if (db_run(db, SS_TOKEN_WHO, &a, 1, who_row, &w, NULL) != DB_OK)
		return -1;
	return w.id;
}
