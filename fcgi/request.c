#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "body.h"
#include "coding.h"
#include "config.h"
#include "crypto.h"
#include "db.h"
#include "idem.h"
#include "jsonw.h"
#include "reqlimit.h"
#include "keys.h"
#include "log.h"
#include "meter.h"
#include "metrics.h"
#include "places.h"
#include "recent.h"
#include "route.h"
#include "sql.h"
#include "tasks.h"
#include "throttle.h"
#include "upstream.h"
#include "worker.h"

/*
 * One request, in the order it happens:
 *
 *   request_serve	the FastCGI params; TRACE/CONNECT, bad paths and
 *			queries refused; health and metrics answered
 *   relay		the token from the headers, then
 *     prepare		  in turn (once more, with the token read afresh,
 *			  when a kept token row led to a refusal):
 *       admit		    the token and its user checked (kept rows or
 *			    one round trip), before a byte of the body is
 *			    read; an address that failed too many checks
 *			    gets 429
 *       limit		    the token's and the user's caps and new-api's
 *			    rate options (reqlimit.h): the request counted
 *			    (once), or 429; let out in request_serve
 *       read_body	    the whole body (body.h: memory, or a spooled
 *			    file)
 *       route		    the task ids it names checked for their owner,
 *			    and the channel chosen and priced
 *       seat		    a submit's open-job places: its token's, its
 *			    user's, a key with room (places.h)
 *       reserve	    the charge, through the metering mode (meter.h)
 *     quote		  for /bltcy/quote/...: the price alone, or
 *     forward		  the transfer to the old gateway:
 *       send_once	    one transfer to one channel
 *       fail_over	    the next channel, for a failure that allows one
 *       answered	    the answer reached the client: task ids, a
 *			    poll's answer, an Idempotency-Key's answer kept,
 *			    and book: the charge settled (finish_charge) with
 *			    the tasks
 *       no_answer	    none did: the charge refunded, the error told
 *   answers		the gateway's own answers and errors
 *   req_free		what the request owned given back
 *
 * struct req owns everything one request allocated; req_free frees it.
 */

#define QUOTE		"/bltcy/quote"
#define MSG_MAX		512
#define TRIED_MAX	16	/* channels one request is sent to, at most */
#define PLACE_RETRY_S	5	/* Retry-After of a refusal for open jobs */

/* A task a request names, as bltcy_tasks has it (route). */
struct task_row {
	char		 service[SERVICE_SLOT];
	char		 id[TASK_ID_MAX + 1];
	long long	 channel, user;
	enum task_state	 state;
	long long	 updated_at;
	char		 key_hash[17];	/* the key its submit went with */
	int		 recent;	/* this host's, not in the database yet */
};

/* The tasks of the ids a request names, in every service (owner_row). */
#define OWNER_ROWS	32
struct owner_rows {
	struct task_row	 r[OWNER_ROWS];
	size_t		 n;
};

/* Everything one request owns; made afresh in handle() for each request. */
struct req {
	struct worker	*w;		/* the thread serving it */
	FCGX_Request	*fr;
	char		 id[40];
	const char	*method;
	const char	*uri;
	const char	*path;
	size_t		 pathlen;
	const char	*query;		/* after '?', or NULL */
	const char	*ip;
	const char	*service;
	int		 quote;		/* /bltcy/quote/...: priced, not sent */
	struct idem	 idem;		/* its Idempotency-Key, if held */
	struct buf	 kept;		/* the header lines relayed, for it */
	long long	 content_length;
	struct token_row tok;
	int		 have_tok;
	long long	 auth_version;	/* the counters the charge checks */
	long long	 chan_version;
	long long	 pin;
	struct chsnap	*snap;		/* the channel table r->ch is in */
	struct task_row	 task;		/* the caller's task routing it, if any */
	struct task_row	 owned[TASK_IDS_MAX];	/* the caller's tasks it names,
						   of its service */
	size_t		 nowned;
	size_t		 ntasks;	/* ids it names that are anyone's task */
	struct channel	*ch;
	long long	 quota;		/* the price (price.h) */
	struct price_out price;
	struct charge	 charge;	/* held from reserve until settled */
	const char	*key;		/* the channel key it went with */
	int		 kidx;		/* the key of r->ch to send with, or -1
					   for task_key's */
	struct {			/* the keys it was sent with */
		long long	 ch;
		size_t		 k;
	}		 ktried[TRIED_MAX];
	size_t		 nktried;
	struct body	 body;		/* the whole body (read_body) */
	int		 status;
	int		 retry_after;	/* seconds, for a 429 of the gateway's */
	int		 limited;	/* counted by limit: let out at the end */
	enum up_err	 err;
	int64_t		 start_ms;
	int64_t		 up_ms;
	int64_t		 bytes;
};

enum gw_err {
	GW_ROUTE, GW_PATH, GW_TOO_LARGE, GW_NO_TOKEN, GW_BAD_TOKEN,
	GW_EXHAUSTED, GW_EXPIRED, GW_DISABLED, GW_IP, GW_BANNED, GW_MODEL,
	GW_PIN, GW_BAD_CHANNEL, GW_QUOTA, GW_NO_CHANNEL, GW_DB, GW_INTERNAL,
	GW_TASK, GW_METHOD, GW_TASK_IDS, GW_IDEM_KEY, GW_IDEM_BUSY,
	GW_IDEM_UNKEPT, GW_IDEM_REUSED, GW_CODING, GW_BAD_CODING, GW_BAD_BODY,
	GW_PRICE_MAX, GW_TASK_GONE, GW_TASK_DRAINING, GW_TASK_NO_KEY,
	GW_TOKEN_THROTTLED, GW_RATE_TOTAL, GW_RATE_SUCCESS, GW_IN_FLIGHT, GW_RPM,
	GW_CAPACITY, GW_TASKS, GW__MAX
};

/* new-api's statuses and messages; %s takes the detail noted. */
static const struct { int status; const char *code, *msg; } gw_errs[GW__MAX] = {
	[GW_ROUTE] =	  { 404, "invalid_url", "Invalid URL (%s)" },
	[GW_PATH] =	  { 400, "invalid_path", "非法的请求路径" },
	[GW_TOO_LARGE] =  { 413, "request_too_large", "请求体过大" },
	[GW_NO_TOKEN] =	  { 401, "missing_token", "未提供令牌" },
	[GW_BAD_TOKEN] =  { 401, "invalid_token", "无效的令牌" },
	[GW_EXHAUSTED] =  { 401, "token_quota_exhausted", "该令牌额度已用尽" },
	[GW_EXPIRED] =	  { 401, "token_expired", "该令牌已过期" },
	[GW_DISABLED] =	  { 401, "token_disabled", "该令牌状态不可用" },
	[GW_IP] =	  { 403, "ip_not_allowed", "您的 IP 不在令牌允许访问的列表中" },
	[GW_BANNED] =	  { 403, "user_banned", "用户已被封禁" },
	[GW_MODEL] =	  { 403, "model_not_allowed", "该令牌无权访问模型 %s" },
	[GW_PIN] =	  { 403, "channel_pin_forbidden", "普通用户不支持指定渠道" },
	[GW_BAD_CHANNEL] = { 403, "invalid_channel", "无效的渠道 Id: %s" },
	[GW_QUOTA] =	  { 403, "insufficient_quota", "额度不足" },
	[GW_NO_CHANNEL] = { 503, "model_not_found", "分组 %s 下模型 %s 无可用渠道" },
	[GW_DB] =	  { 503, "database_unavailable", "数据库暂时不可用，请稍后重试" },
	[GW_INTERNAL] =	  { 500, "internal_error", "内部错误" },
	[GW_TASK] =	  { 404, "task_not_exist", "任务不存在" },
	[GW_METHOD] =	  { 405, "method_not_allowed", "不支持的请求方法 %s" },
	[GW_TASK_IDS] =	  { 400, "too_many_task_ids", "请求中的任务 ID 过多" },
	[GW_IDEM_KEY] =	  { 400, "invalid_idempotency_key",
	    "Idempotency-Key 须为 1 到 255 个可打印 ASCII 字符" },
	[GW_IDEM_BUSY] =  { 409, "idempotency_key_in_flight",
	    "相同 Idempotency-Key 的请求仍在处理中，请稍后重试" },
	[GW_IDEM_UNKEPT] = { 409, "idempotency_answer_not_kept",
	    "相同 Idempotency-Key 的请求已完成，但其响应过大或不完整，未能保留" },
	[GW_IDEM_REUSED] = { 422, "idempotency_key_reused",
	    "该 Idempotency-Key 已用于另一个请求（方法、路径或请求体不同）" },
	[GW_CODING] =	  { 415, "unsupported_content_encoding",
	    "不支持的请求体编码（Content-Encoding 仅支持 gzip、br、identity）" },
	[GW_BAD_CODING] = { 400, "invalid_content_encoding",
	    "请求体无法按其 Content-Encoding 解压（数据损坏或不完整）" },
	[GW_BAD_BODY] =	  { 400, "invalid_request_body",
	    "请求体必须是一个合法的 JSON 对象（Content-Type: application/json），"
	    "才能按其字段计价" },
	[GW_PRICE_MAX] =  { 403, "price_too_high",
	    "该请求的价格超过上限 %lld 额度" },
	/* a task is only ever sent to the channel that made it */
	[GW_TASK_GONE] =  { 410, "task_channel_deleted",
	    "任务 %s 所在的渠道已被删除，无法再查询或操作该任务" },
	[GW_TASK_DRAINING] = { 503, "task_channel_disabled",
	    "任务 %s 所在的渠道已停用，只能查询该任务，不接受新的请求" },
	[GW_TASK_NO_KEY] = { 503, "task_channel_unavailable",
	    "任务 %s 所在的渠道没有可用的密钥" },
	[GW_TOKEN_THROTTLED] = { 429, "too_many_invalid_tokens",
	    "此地址无效令牌请求过多，请稍后重试" },
	/* new-api's ModelRequestRateLimit*: minutes, cap */
	[GW_RATE_TOTAL] = { 429, "rate_limit_exceeded",
	    "您已达到总请求数限制：%d分钟内最多请求%d次，包括失败次数，"
	    "请检查您的请求是否正确" },
	[GW_RATE_SUCCESS] = { 429, "rate_limit_exceeded",
	    "您已达到请求数限制：%d分钟内最多请求%d次" },
	/* a token's or a user's caps (bltcy_limits): whose, cap */
	[GW_IN_FLIGHT] = { 429, "too_many_requests_in_flight",
	    "%s同时处理中的请求已达上限（%d 个），请等待已有请求完成后重试" },
	[GW_RPM] = { 429, "rate_limit_exceeded",
	    "%s已达到请求频率限制：每分钟最多请求%d次，请稍后重试" },
	[GW_CAPACITY] =	  { 429, "channel_capacity_exhausted",
	    "当前分组上游负载已饱和，请稍后再试" },
	[GW_TASKS] =	  { 429, "too_many_open_tasks",
	    "未完成的任务数已达上限，请等待任务完成后再提交" },
};

struct auth_out {
	struct token_row	*t;
	long long		 version;
	long long		 auth_version;
	int			 found;
	int			 cached;	/* the row came from the cache */
	int			 too_long;	/* list columns we cannot hold */
	int			 remembered;	/* not found: a key no token has */
	int			 throttled;	/* not looked up: 429, retry in s */
};
#define TOO_LONG_IPS	0x1
#define TOO_LONG_MODELS	0x2

/* What a step of relay() came to. */
enum verdict {
	GO_ON,		/* the next step follows */
	ANSWERED,	/* the client has its answer, or went away */
	LOOK_AGAIN,	/* a kept token row led to a refusal, or to a charge
			   that did not apply: read the token afresh first */
};

/* What the steps before the transfer found, for the ones after them. */
struct plan {
	struct auth_out	 ao;		/* the token, and where its row came from */
	int		 have_body;	/* read: the task ids are in cand */
	struct task_ids	 cand;		/* the task ids the request names */
	const char	*group;		/* the token's group */
	int		 fixed;		/* r->ch is the only one (pinned, a task's) */
};

/* One transfer of a request, as send_once makes it (upstream.h). */
struct transfer {
	struct upstream_req	 up;
	struct up_result	 res;
	char			 url[8192];
	char			 quota_hdr[48];
};


static void	 relay(struct worker *, struct req *);
static enum verdict prepare(struct worker *, struct req *, const char *, int,
		    struct plan *);
static enum verdict admit(struct worker *, struct req *, const char *, int,
		    struct auth_out *);
static enum verdict limit(struct worker *, struct req *,
		    const struct auth_out *);
static int	 snapshot(struct worker *, struct req *, long long);
static enum verdict refuse(struct req *, const struct auth_out *,
		    enum gw_err, ...);
static enum db_rc authenticate(struct worker *, struct req *, const char *,
		    struct auth_out *, int);
static int	 read_body(struct req *);
static enum verdict route(struct worker *, struct req *, const struct task_ids *,
		    const struct auth_out *, const char **, int *);
static int	 idempotent(struct worker *, struct req *);
static void	 replay(struct req *);
static int	 price(struct req *, const char *);
static enum verdict seat(struct worker *, struct req *, struct plan *);
static enum place_rc key_next(struct worker *, struct req *,
		    const struct channel *);
static enum verdict reserve(struct worker *, struct req *, const char *, int);
static void	 forward(struct worker *, struct req *, const char *, int);
static int	 send_once(struct worker *, struct req *, int, struct transfer *);
static struct channel *fail_over(struct worker *, struct req *, const char *,
		    int, const struct up_result *, const long long *, size_t);
static int	 charge_again(struct worker *, struct req *, const char *);
static void	 answered(struct worker *, struct req *,
		    const struct up_result *);
static void	 book(struct worker *, struct req *, int, const char *);
static void	 no_answer(struct worker *, struct req *,
		    const struct up_result *);
static int	 answer_ready(void *);
static void	 finish_charge(struct worker *, struct req *, int, const char *);
static void	 quote(struct req *, const char *);
static void	 health(struct worker *, struct req *);
static void	 metrics(struct req *);
static void	 send_body(struct req *, int, const char *, const char *, size_t);
static void	 gw_error(struct req *, enum gw_err, ...);
static void	 gw_verror(struct req *, enum gw_err, va_list);
static void	 upstream_error(struct req *, enum up_err);
static void	 make_id(struct worker *, char[40]);
static int	 is_query_method(const char *);
static void	 req_free(struct req *);
static int	 auth_row(void *, const struct dbv *, size_t);
static int	 owner_row(void *, const struct dbv *, size_t);
static int	 task_owners(struct worker *, struct req *,
		    const struct task_ids *, struct owner_rows *);
static int	 task_foreign(const struct req *, const struct owner_rows *,
		    const char *);
static size_t	 task_key(struct req *);
static void	 usage_record(struct usage *, const struct req *, const char *);
static int	 connect_failure(const struct up_result *);
static void	 key_hash(const char *, char[17]);
static const struct task_kind *poll_kind(const struct req *);
static void	 poll_seen(struct worker *, struct req *, const struct task_kind *,
		    const struct up_result *);

/*
 * One request from accept to answer: read the FastCGI params, refuse what
 * is never forwarded, answer health and metrics, relay the rest; then the
 * request's line in the log, and everything it owned given back.
 */
void
request_serve(struct worker *w, FCGX_Request *fr)
{
	struct req	 r;
	const char	*cl, *q;
	long long	 v;

	memset(&r, 0, sizeof(r));
	body_init(&r.body);
	buf_init(&r.kept, 0);
	r.w = w;
	r.fr = fr;
	r.start_ms = mono_ms();
	make_id(w, r.id);
	metrics_busy(w->p->mslot, 1);
	if ((r.method = FCGX_GetParam("REQUEST_METHOD", fr->envp)) == NULL)
		r.method = "GET";
	if ((r.uri = FCGX_GetParam("REQUEST_URI", fr->envp)) == NULL &&
	    (r.uri = FCGX_GetParam("SCRIPT_NAME", fr->envp)) == NULL)
		r.uri = "/";
	if ((r.ip = FCGX_GetParam("REMOTE_ADDR", fr->envp)) == NULL)
		r.ip = "";
	r.path = r.uri;
	q = strchr(r.uri, '?');
	r.pathlen = q ? (size_t)(q - r.uri) : strlen(r.uri);
	r.query = q ? q + 1 : NULL;
	r.content_length = -1;
	r.kidx = -1;
	if ((cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp)) != NULL &&
	    *cl != '\0' && parse_ll(cl, 0, INT64_MAX, &v) == 0)
		r.content_length = v;

	/* the price of the request the rest of the path names, unsent */
	if (r.pathlen > sizeof(QUOTE) && memcmp(r.path, QUOTE "/",
	    sizeof(QUOTE)) == 0) {
		r.quote = 1;
		r.path += sizeof(QUOTE) - 1;
		r.pathlen -= sizeof(QUOTE) - 1;
	}

	/* TRACE would echo the channel key back; CONNECT is no proxy's here */
	if (strcmp(r.method, "TRACE") == 0 || strcmp(r.method, "CONNECT") == 0)
		gw_error(&r, GW_METHOD, r.method);
	else if (!r.quote && r.pathlen == 13 &&
	    memcmp(r.path, "/bltcy/health", 13) == 0)
		health(w, &r);
	else if (!r.quote && r.pathlen == 14 &&
	    memcmp(r.path, "/bltcy/metrics", 14) == 0)
		metrics(&r);
	else if (!path_is_safe(r.path, r.pathlen) ||
	    (r.query != NULL && !query_is_safe(r.query, strlen(r.query))))
		gw_error(&r, GW_PATH);
	else if ((r.service = service_for_path(r.path, r.pathlen)) == NULL) {
		char what[300];
		snprintf(what, sizeof(what), "%s %.*s", r.method,
		    (int)(r.pathlen > 256 ? 256 : r.pathlen), r.path);
		gw_error(&r, GW_ROUTE, what);
	} else if (r.content_length > cfg_i(CFG_RELAY_MAX_BODY))
		gw_error(&r, GW_TOO_LARGE);
	else
		relay(w, &r);

	if (r.charge.held)	/* every path out of relay() settles; belt */
		finish_charge(w, &r, 0, NULL);
	if (r.limited)
		limits_leave(w->charge_slot, r.status);
	places_give_all(w->charge_slot);	/* no task of its holds them */
	idem_release(w->p->db, &r.idem);	/* no answer was kept */
	metrics_busy(w->p->mslot, 0);
	metrics_request(r.service, r.status, mono_ms() - r.start_ms);
	logmsg(r.status >= 500 ? LV_WARN : LV_INFO, "req=%s %s %.*s service=%s "
	    "token=%lld channel=%lld status=%d upstream_ms=%lld bytes=%lld "
	    "quota=%lld ms=%lld", r.id, r.method,
	    (int)(r.pathlen > 256 ? 256 : r.pathlen), r.path,
	    r.service ? r.service : "-", r.have_tok ? r.tok.id : 0,
	    r.ch ? r.ch->id : 0, r.status, (long long)r.up_ms,
	    (long long)r.bytes, r.ch && r.status > 0 && r.status < 400 ? r.quota : 0,
	    (long long)(mono_ms() - r.start_ms));
	chan_put(w->p, r.snap);
	req_free(&r);
}


/*
 * One relayed request: the token is checked before a byte of the body is
 * read, then the body (and the task ids it names), the channel, the
 * charge (prepare), and then the transfer, or for a quote the price
 * alone. A kept token row that fails a check, or whose charge did not
 * apply (the rows changed, or quota ran out), is read once more before
 * the client is told no: prepare's one retry.
 */
static void
relay(struct worker *w, struct req *r)
{
	struct plan	 pl;
	const char	*hdr;
	char		 key[TOKEN_KEY_MAX];
	enum verdict	 v;

	if ((hdr = FCGX_GetParam("HTTP_AUTHORIZATION", r->fr->envp)) == NULL &&
	    (hdr = FCGX_GetParam("HTTP_X_PTOKEN", r->fr->envp)) == NULL &&
	    (hdr = FCGX_GetParam("HTTP_X_VTOKEN", r->fr->envp)) == NULL)
		hdr = FCGX_GetParam("HTTP_X_CTOKEN", r->fr->envp);
	if (hdr == NULL || hdr[strspn(hdr, " \t")] == '\0') {
		gw_error(r, GW_NO_TOKEN);
		return;
	}
	if (token_parse(hdr, key, &r->pin) == -1) {
		gw_error(r, GW_BAD_TOKEN);
		return;
	}
	meter->retry(w->p->db, 0);
	memset(&pl, 0, sizeof(pl));
	if ((v = prepare(w, r, key, 0, &pl)) == LOOK_AGAIN)
		v = prepare(w, r, key, 1, &pl);
	wipe(key, sizeof(key));
	if (v != GO_ON)
		return;
	if (r->quote)
		quote(r, pl.group);
	else
		forward(w, r, pl.group, pl.fixed);
}

/*
 * Everything before the request is sent: the token admitted, the body
 * read (once), the channel chosen and priced, and the charge made (not
 * for a quote). fresh: the token is read from the database, not the
 * cache, so a refusal is said, never LOOK_AGAIN.
 */
static enum verdict
prepare(struct worker *w, struct req *r, const char *key, int fresh,
    struct plan *pl)
{
	enum verdict	 v;

	if ((v = admit(w, r, key, fresh, &pl->ao)) != GO_ON)
		return v;
	if (!r->quote && !r->limited && (v = limit(w, r, &pl->ao)) != GO_ON)
		return v;
	if (!pl->have_body) {
		pl->have_body = 1;
		if (read_body(r) == -1)
			return ANSWERED;
		task_ids_from_request(&pl->cand, r->path, r->pathlen, r->query,
		    r->body.held.p, r->body.held.len, 1);
		if (pl->cand.overflow) {
			gw_error(r, GW_TASK_IDS);
			return ANSWERED;
		}
		if (idempotent(w, r) == -1)
			return ANSWERED;
	}
	if ((v = route(w, r, &pl->cand, &pl->ao, &pl->group, &pl->fixed)) !=
	    GO_ON || r->quote)
		return v;
	if ((v = seat(w, r, pl)) != GO_ON)
		return v;
	return reserve(w, r, pl->group, !fresh);
}

/*
 * Say no, unless the token row came from the cache: then nothing is said
 * yet, and the row is read afresh first (LOOK_AGAIN).
 */
static enum verdict
refuse(struct req *r, const struct auth_out *ao, enum gw_err e, ...)
{
	va_list	 ap;

	if (ao->cached)
		return LOOK_AGAIN;
	va_start(ap, e);
	gw_verror(r, e, ap);
	va_end(ap);
	return ANSWERED;
}

/*
 * The token and its user: GO_ON, ANSWERED, or LOOK_AGAIN when a kept
 * token row leads to a refusal (refuse).
 */
static enum verdict
admit(struct worker *w, struct req *r, const char *key, int fresh,
    struct auth_out *ao)
{
	enum db_rc	 rc;

	if ((rc = authenticate(w, r, key, ao, fresh)) != DB_OK) {
		log_err("req=%s token lookup: %s", r->id, db_error(w->p->db));
		gw_error(r, GW_DB);
		return ANSWERED;
	}
	if (ao->throttled > 0) {
		metrics_token_refused(TR_THROTTLED);
		throttle_hold_back();
		r->retry_after = ao->throttled;
		gw_error(r, GW_TOKEN_THROTTLED);
		return ANSWERED;
	}
	if (!ao->found) {
		metrics_token_refused(ao->remembered ? TR_MEMORY : TR_LOOKUP);
		throttle_failed(r->ip);
		gw_error(r, GW_BAD_TOKEN);
		return ANSWERED;
	}
	r->have_tok = 1;
	/* what this host holds counts as the token's */
	r->tok.remain_quota += meter->available(r->tok.id);
	/* a list we cannot hold whole is never cut: it admits nobody */
	if (ao->too_long) {
		log_warn("req=%s token %lld: %s longer than this relay holds; "
		    "refused", r->id, r->tok.id, ao->too_long & TOO_LONG_IPS ?
		    "allow_ips" : "model_limits");
		if (ao->too_long & TOO_LONG_IPS)
			gw_error(r, GW_IP);
		else
			gw_error(r, GW_MODEL, r->service);
		return ANSWERED;
	}
	switch (token_check(&r->tok, r->ip, r->service, r->pin > 0, now_s())) {
	case AUTH_OK: break;
	case AUTH_EXHAUSTED: return refuse(r, ao, GW_EXHAUSTED);
	case AUTH_EXPIRED: return refuse(r, ao, GW_EXPIRED);
	case AUTH_DISABLED: return refuse(r, ao, GW_DISABLED);
	case AUTH_IP: return refuse(r, ao, GW_IP);
	case AUTH_USER_BANNED: return refuse(r, ao, GW_BANNED);
	case AUTH_MODEL: return refuse(r, ao, GW_MODEL, r->service);
	case AUTH_PIN_FORBIDDEN: return refuse(r, ao, GW_PIN);
	}
	r->chan_version = ao->version;
	r->auth_version = ao->auth_version;
	return GO_ON;
}

/*
 * The token's and its user's caps (bltcy_limits, with the token row) and
 * new-api's rate options (with the channels): GO_ON with the request
 * counted once (r->limited; request_serve lets it out, however it ends),
 * or ANSWERED with a 429 and Retry-After, counted nowhere. Before the
 * body is read and the charge made, so a refusal costs neither; quotes
 * are never counted (nothing is sent).
 */
/*
 * The channel table (with prices and options) of at least version, kept
 * in r->snap: 0, or -1 with the gateway's 503 sent.
 */
static int
snapshot(struct worker *w, struct req *r, long long version)
{
	if (r->snap != NULL && r->snap->c.version < version) {
		chan_put(w->p, r->snap);	/* read again, newer */
		r->snap = NULL;
	}
	if (r->snap == NULL && (r->snap = chan_get(w->p, version)) == NULL) {
		log_err("req=%s channel load: %s", r->id, db_error(w->p->db));
		gw_error(r, GW_DB);
		return -1;
	}
	return 0;
}

/* A refusal of limits_enter: its metric, its error, and whose cap it is
 * (new-api's rate options name their window instead). */
static const struct {
	enum limit_refusal	 why;
	enum gw_err		 e;
	const char		*whose;
} limit_errs[] = {
	[LIM_TOKEN_IN_FLIGHT] = { LR_TOKEN_IN_FLIGHT, GW_IN_FLIGHT, "该令牌" },
	[LIM_USER_IN_FLIGHT] = { LR_USER_IN_FLIGHT, GW_IN_FLIGHT, "该用户" },
	[LIM_TOKEN_RPM] = { LR_TOKEN_RPM, GW_RPM, "该令牌" },
	[LIM_USER_RPM] = { LR_USER_RPM, GW_RPM, "该用户" },
	[LIM_RATE_SUCCESS] = { LR_RATE_SUCCESS, GW_RATE_SUCCESS, NULL },
	[LIM_RATE_TOTAL] = { LR_RATE_TOTAL, GW_RATE_TOTAL, NULL },
};

static enum verdict
limit(struct worker *w, struct req *r, const struct auth_out *ao)
{
	struct limit_ask		 a;
	struct limit_refusal_info	 info;
	enum limit_verdict		 v;

	if (snapshot(w, r, ao->version) == -1)
		return ANSWERED;
	a.token_id = r->tok.id;
	a.user_id = r->tok.user_id;
	a.token = &r->tok.token_limits;
	a.user = &r->tok.user_limits;
	a.rate = &r->snap->c.opts.rate;
	a.group = token_group(&r->tok);
	if ((v = limits_enter(&a, w->charge_slot, &info)) == LIM_OK) {
		r->limited = 1;
		return GO_ON;
	}
	r->retry_after = info.retry_after;
	if (v > LIM_RATE_TOTAL)
		v = LIM_RATE_TOTAL;
	metrics_limit_refused(limit_errs[v].why);
	if (limit_errs[v].whose != NULL)
		gw_error(r, limit_errs[v].e, limit_errs[v].whose, info.cap);
	else
		gw_error(r, limit_errs[v].e, info.minutes, info.cap);
	return ANSWERED;
}

/*
 * The token, its user and the change counters: one round trip, or none
 * from the cache while the counters are unchanged. fresh: not from the
 * cache. No round trip either for a key remembered as no token's (found
 * 0, remembered 1), or when the client's address has failed too many
 * token checks (throttled: a 429) and no worker of the host has found a
 * token for the key.
 */
static enum db_rc
authenticate(struct worker *w, struct req *r, const char *key,
    struct auth_out *ao, int fresh)
{
	struct dbv	 a;
	enum db_rc	 rc;
	int64_t		 t0 = mono_ms();
	long long	 before = 0;
	int		 tries, claimed = 0, counted;

	memset(ao, 0, sizeof(*ao));
	ao->t = &r->tok;
	for (tries = 0; !fresh && tries < 2 && !claimed; tries++) {
		if (tokcache_get(w->p, key, &r->tok, &ao->auth_version,
		    &ao->version)) {
			ao->found = 1;
			ao->cached = 1;
			return DB_OK;
		}
		if (tries == 0 && throttle_over(r->ip, &ao->throttled) &&
		    !throttle_known(key))
			return DB_OK;
		ao->throttled = 0;
		if (refused_get(w->p, key)) {
			ao->remembered = 1;
			return DB_OK;
		}
		claimed = tokcache_claim(key);	/* or another thread read it */
	}
	/* a key not found is no token's while the counter stays here */
	counted = counters_auth(w->p, &before) == 0;
	a = DBS(key);
	rc = db_run(w->p->db, ST_AUTH, &a, 1, auth_row, ao, NULL);
	if (rc == DB_OK && ao->found) {
		/* the counters came with the row */
		counters_seen(w->p, ao->version, ao->auth_version, t0);
		if (!ao->too_long)
			tokcache_put(key, &r->tok, ao->version, ao->auth_version,
			    t0);
		refused_drop(key);
		throttle_found(key);
	} else if (rc == DB_OK && counted)
		refused_put(key, before);
	if (claimed)
		tokcache_done(key);
	return rc;
}

/* A list column, whole: -1 when it is longer than dst holds (never cut). */
static int
copy_list(char *dst, size_t sz, const struct dbv *v)
{
	size_t	 n;

	dst[0] = '\0';
	if (v->t != DBV_STR)
		return 0;
	if ((n = strlen(v->s)) >= sz)
		return -1;
	memcpy(dst, v->s, n + 1);
	return 0;
}

/* A name column: sized for the column, so a cut (whole characters) is moot. */
static void
copy_name(char *dst, size_t sz, const struct dbv *v)
{
	if (v->t == DBV_STR)
		utf8_copy(dst, v->s, sz);
	else
		dst[0] = '\0';
}

/* Three columns of bltcy_limits, NULL where no row is: no limit. */
static void
limits_row(struct limits *l, const struct dbv *c)
{
	l->in_flight = c[0].t == DBV_INT && c[0].i > 0 && c[0].i <= INT_MAX ?
	    (int)c[0].i : 0;
	l->tasks = c[1].t == DBV_INT && c[1].i > 0 && c[1].i <= INT_MAX ?
	    (int)c[1].i : 0;
	l->rpm = c[2].t == DBV_INT && c[2].i > 0 && c[2].i <= INT_MAX ?
	    (int)c[2].i : 0;
}

static int
auth_row(void *arg, const struct dbv *c, size_t n)
{
	struct auth_out		*a = arg;
	struct token_row	*t = a->t;

	memset(t, 0, sizeof(*t));
	t->id = c[0].i;
	t->user_id = c[1].i;
	t->status = c[2].i;
	copy_name(t->name, sizeof(t->name), &c[3]);
	t->expired_time = c[4].t == DBV_INT ? c[4].i : -1;
	t->remain_quota = c[5].i;
	t->unlimited = c[6].i != 0;
	t->model_limits_enabled = c[7].i != 0;
	if (copy_list(t->model_limits, sizeof(t->model_limits), &c[8]) == -1)
		a->too_long |= TOO_LONG_MODELS;
	if (copy_list(t->allow_ips, sizeof(t->allow_ips), &c[9]) == -1)
		a->too_long |= TOO_LONG_IPS;
	copy_name(t->group, sizeof(t->group), &c[10]);
	t->user_found = c[11].t == DBV_INT;
	copy_name(t->username, sizeof(t->username), &c[12]);
	t->user_role = c[13].i;
	t->user_status = c[14].i;
	t->user_quota = c[15].i;
	copy_name(t->user_group, sizeof(t->user_group), &c[16]);
	t->user_deleted = c[17].i != 0;
	a->version = c[18].t == DBV_INT ? c[18].i : 0;
	a->auth_version = c[19].t == DBV_INT ? c[19].i : 0;
	limits_row(&t->token_limits, &c[20]);
	limits_row(&t->user_limits, &c[23]);
	a->found = 1;
	return 1;
}

/*
 * The whole body, before anything is forwarded (body.h), so that the task
 * ids it names are known first. A content coding other than gzip and br
 * is refused: read while encoded, a body would be priced and checked for
 * task ids as noise. Returns 0, or -1 with the answer sent (400, 413,
 * 415, 500) or r->status 499 when the client went away.
 */
static int
read_body(struct req *r)
{
	enum body_coding c;

	c = body_coding_of(FCGX_GetParam("HTTP_CONTENT_ENCODING", r->fr->envp));
	if (c == BC_OTHER) {
		gw_error(r, GW_CODING);
		return -1;
	}
	switch (body_read(&r->body, r->fr->in, c, r->content_length)) {
	case BODY_OK:
		break;
	case BODY_TOO_LARGE:
		gw_error(r, GW_TOO_LARGE);
		return -1;
	case BODY_CUT:
		r->status = 499;	/* the client went away */
		return -1;
	case BODY_BAD_CODING:
		log_info("req=%s request body not valid %s", r->id,
		    c == BC_GZIP ? "gzip" : "br");
		gw_error(r, GW_BAD_CODING);
		return -1;
	case BODY_ERROR:
		log_err("req=%s spooling the request body: %s", r->id,
		    strerror(errno));
		gw_error(r, GW_INTERNAL);
		return -1;
	}
	r->content_length = (long long)r->body.len;	/* as it is forwarded */
	return 0;
}

/*
 * A submit with an Idempotency-Key: 0 when this request is the key's
 * first (it goes on and is forwarded), -1 with the answer sent: the
 * first's answer again, or why not (idem.h).
 */
static int
idempotent(struct worker *w, struct req *r)
{
	const char	*key;
	char		 owner[96];

	if (r->quote || is_query_method(r->method) ||
	    (key = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", r->fr->envp)) == NULL)
		return 0;
	snprintf(owner, sizeof(owner), "%s/%s", w->p->host, r->id);
	switch (idem_begin(w->p->db, &r->idem, r->tok.id, key, owner,
	    r->method, r->path, r->pathlen, r->query, r->body.held.p,
	    r->body.held.len)) {
	case IDEM_FIRST:
		return 0;
	case IDEM_REPLAY:
		replay(r);
		break;
	case IDEM_BUSY:
		gw_error(r, GW_IDEM_BUSY);
		break;
	case IDEM_UNKEPT:
		gw_error(r, GW_IDEM_UNKEPT);
		break;
	case IDEM_MISMATCH:
		gw_error(r, GW_IDEM_REUSED);
		break;
	case IDEM_BAD_KEY:
		gw_error(r, GW_IDEM_KEY);
		break;
	case IDEM_DB:
		log_err("req=%s Idempotency-Key: %s", r->id, db_error(w->p->db));
		gw_error(r, GW_DB);
		break;
	}
	return -1;
}

/*
 * The tasks of the ids a request names, in every service: the database's
 * rows and this host's newest tasks, not written yet. 0, or -1 with the
 * answer sent.
 */
static int
task_owners(struct worker *w, struct req *r, const struct task_ids *cand,
    struct owner_rows *o)
{
	struct dbv		 a[1 + TASK_IDS_MAX];
	struct recent_task	 e;
	struct task_row		*t;
	size_t			 i, k;

	o->n = 0;
	/* ids known to be nobody's task, in any service ("*") */
	if (!known_no_tasks(w->p, "*", cand)) {
		for (i = 0; i < TASK_IDS_MAX; i++)
			a[i] = DBS(i < cand->n ? cand->id[i] : "");
		a[TASK_IDS_MAX] = DBI(r->tok.user_id);
		if (db_run(w->p->db, ST_TASK_OWNER, a, 1 + TASK_IDS_MAX,
		    owner_row, o, NULL) != DB_OK) {
			log_err("req=%s task lookup: %s", r->id, db_error(w->p->db));
			gw_error(r, GW_DB);
			return -1;
		}
		if (o->n == 0)
			remember_no_tasks(w->p, "*", cand);
	}
	for (i = 0; i < cand->n && o->n < OWNER_ROWS; i++) {
		if (!tasks_recent_find(cand->id[i], &e))
			continue;
		for (k = 0; k < o->n; k++)
			if (strcmp(o->r[k].id, cand->id[i]) == 0 &&
			    strcmp(o->r[k].service, e.service) == 0)
				break;
		if (k < o->n)
			continue;	/* written: its row counts */
		t = &o->r[o->n++];
		memset(t, 0, sizeof(*t));
		strlcpy_(t->service, e.service, sizeof(t->service));
		strlcpy_(t->id, cand->id[i], sizeof(t->id));
		t->channel = e.channel;
		t->user = e.user;
		t->state = TS_SUBMITTED;
		strlcpy_(t->key_hash, e.key_hash, sizeof(t->key_hash));
		t->recent = 1;
	}
	return 0;
}

/*
 * Does id name another user's task? A task id is its user's whatever
 * service path names it, as the old gateway finds a task by account and
 * id: it is another's when the request's service has it for another
 * user or, where that service has none, when the ids recorded elsewhere
 * are others' only. A weak id (a word, or short: task_id_weak) is
 * nobody's to refuse: an upstream that answers one has not made it one
 * task's alone, and it must not block every request that says it.
 */
static int
task_foreign(const struct req *r, const struct owner_rows *o, const char *id)
{
	size_t	 i;
	int	 here = 0, here_other = 0, own = 0, other = 0;

	for (i = 0; i < o->n; i++) {
		if (strcmp(o->r[i].id, id) != 0)
			continue;
		if (strcmp(o->r[i].service, r->service) == 0) {
			here = 1;
			here_other |= o->r[i].user != r->tok.user_id;
		}
		if (o->r[i].user == r->tok.user_id)
			own = 1;
		else
			other = 1;
	}
	if (task_id_weak(id))
		return 0;
	return here ? here_other : other && !own;
}

/*
 * The channel of the request: the one that made a task of the caller's
 * it names, a pinned one, or new-api's pick. A task of another user is
 * as if it did not exist, and nothing is sent (task_foreign). A task of
 * the caller's goes to its channel and never to another, as no other
 * knows it: also to a disabled one, for a query (GET, HEAD, OPTIONS),
 * since a disabled channel takes no new jobs but its tasks are polled
 * through it until they finish; a deleted channel's task gets an error
 * of its own. GO_ON, ANSWERED or LOOK_AGAIN as admit().
 */
static enum verdict
route(struct worker *w, struct req *r, const struct task_ids *cand,
    const struct auth_out *ao, const char **group, int *fixed)
{
	struct owner_rows	 o;
	const struct task_row	*t = NULL;
	struct channel		*ch;
	size_t			 i, k;

	*fixed = 0;
	memset(&r->task, 0, sizeof(r->task));
	r->nowned = r->ntasks = 0;
	o.n = 0;
	if (cand->n > 0 && task_owners(w, r, cand, &o) == -1)
		return ANSWERED;
	for (i = 0; i < cand->n; i++) {
		if (task_foreign(r, &o, cand->id[i]))
			return refuse(r, ao, GW_TASK);
		for (k = 0; k < o.n; k++)
			if (strcmp(o.r[k].id, cand->id[i]) == 0) {
				r->ntasks++;
				break;
			}
	}
	/* the caller's tasks of this service, in the order the request names them */
	for (i = 0; i < cand->n && r->nowned < TASK_IDS_MAX; i++)
		for (k = 0; k < o.n; k++)
			if (strcmp(o.r[k].id, cand->id[i]) == 0 &&
			    strcmp(o.r[k].service, r->service) == 0 &&
			    o.r[k].user == r->tok.user_id) {
				r->owned[r->nowned++] = o.r[k];
				break;
			}
	if (r->nowned > 0) {
		r->task = r->owned[0];
		t = &r->task;
	}
	if (snapshot(w, r, ao->version) == -1)
		return ANSWERED;
	r->chan_version = r->snap->c.version;
	*group = token_group(&r->tok);
	if (r->pin > 0) {
		char num[24];
		if ((r->ch = chcache_by_id(&r->snap->c, r->pin)) == NULL) {
			snprintf(num, sizeof(num), "%lld", r->pin);
			return refuse(r, ao, GW_BAD_CHANNEL, num);
		}
		*fixed = 1;
	} else if (t != NULL) {
		if ((ch = chcache_task_channel(&r->snap->c, t->channel)) == NULL)
			return refuse(r, ao, GW_TASK_GONE, t->id);
		if (ch->base_url[0] == '\0')
			return refuse(r, ao, GW_TASK_NO_KEY, t->id);
		if (ch->disabled && !is_query_method(r->method))
			return refuse(r, ao, GW_TASK_DRAINING, t->id);
		r->ch = ch;
		*fixed = 1;	/* only the channel that made the task knows it */
		log_debug("DEBUG Bltcy req=%s task affinity -> channel %lld%s",
		    r->id, r->ch->id, ch->disabled ? " (disabled)" : "");
	} else if ((r->ch = channel_pick(&r->snap->c, *group, r->service, NULL, 0,
	    &w->rng)) == NULL)
		return refuse(r, ao, GW_NO_CHANNEL, *group, r->service);
	return price(r, *group) == 0 ? GO_ON : ANSWERED;
}

/*
 * The price of the request on r->ch: a GET (a poll) the channel's flat
 * query amount, free unless it says otherwise; anything else by
 * price_of (ModelPrice, the channel's amount, the rules). 0, or -1 with
 * the refusal sent: a body the price cannot read as the old gateway will
 * (400), or a price above PRICE_MAX (403). Nothing is forwarded then.
 */
static int
price(struct req *r, const char *group)
{
	const char	*ct;
	int		 flags = 0;

	if (is_query_method(r->method)) {
		memset(&r->price, 0, sizeof(r->price));
		strlcpy_(r->price.model, r->service, sizeof(r->price.model));
		if (r->ch->set.query_quota > PRICE_MAX) {
			gw_error(r, GW_PRICE_MAX, PRICE_MAX);
			return -1;
		}
		r->quota = r->price.quota = r->price.base = r->ch->set.query_quota;
		return 0;
	}
	/* new-api reads these as forms, whatever the bytes are */
	if ((ct = FCGX_GetParam("CONTENT_TYPE", r->fr->envp)) != NULL &&
	    (strcasestr(ct, "multipart/form-data") != NULL ||
	    strcasestr(ct, "application/x-www-form-urlencoded") != NULL))
		flags |= PRICE_FORM;
	switch (price_of(&r->snap->c.prices, r->service, group,
	    r->ch->set.quota, r->body.held.p, r->body.held.len, flags,
	    &r->price)) {
	case PRICE_OK:
		break;
	case PRICE_BAD_BODY:
		gw_error(r, GW_BAD_BODY);
		return -1;
	case PRICE_TOO_HIGH:
		log_warn("req=%s %s: price above %lld refused", r->id,
		    r->service, PRICE_MAX);
		gw_error(r, GW_PRICE_MAX, PRICE_MAX);
		return -1;
	}
	r->quota = r->price.quota;
	return 0;
}

/* A row of ST_TASK_OWNER into the owner_rows at arg. */
static int
owner_row(void *arg, const struct dbv *c, size_t n)
{
	struct owner_rows	*o = arg;
	struct task_row		*t;

	if (o->n == OWNER_ROWS)
		return 1;
	if (c[0].t != DBV_STR || c[1].t != DBV_STR || c[2].t != DBV_INT ||
	    c[3].t != DBV_INT)
		return 0;
	t = &o->r[o->n++];
	memset(t, 0, sizeof(*t));
	strlcpy_(t->service, c[0].s, sizeof(t->service));
	strlcpy_(t->id, c[1].s, sizeof(t->id));
	t->channel = c[2].i;
	t->user = c[3].i;
	t->state = c[4].t == DBV_STR ? task_state_parse(c[4].s) : TS_UNKNOWN;
	t->updated_at = c[5].t == DBV_INT ? c[5].i : 0;
	if (c[6].t == DBV_STR)
		strlcpy_(t->key_hash, c[6].s, sizeof(t->key_hash));
	return 0;
}

/*
 * A submit's open-job places (places.h), before it is charged: one of
 * its token's and one of its user's where they have a tasks cap, and
 * where its channel has MaxTasks one of a key with room (places_key; a
 * task's follow-up: its own key's), else the next channel by new-api's
 * pick, as far as the request may go to another (not pinned, no task's).
 * A query takes none. GO_ON; or ANSWERED with the 429 sent (nothing
 * forwarded or charged), or LOOK_AGAIN when a kept token row's cap
 * refused it (refuse).
 */
static enum verdict
seat(struct worker *w, struct req *r, struct plan *pl)
{
	const struct limits *lim[2] = { &r->tok.token_limits,
			    &r->tok.user_limits };
	static const enum limit_refusal why[2] = { LR_TOKEN_TASKS,
			    LR_USER_TASKS };
	long long	 id[2] = { r->tok.id, r->tok.user_id }, full[TRIED_MAX];
	size_t		 nfull = 0, i;
	enum place_rc	 rc = PLACE_OK;
	enum verdict	 v;
	char		 h[17];

	places_give_all(w->charge_slot);	/* a look again's */
	r->kidx = -1;
	r->nktried = 0;
	if (is_query_method(r->method))
		return GO_ON;
	for (i = 0; i < 2; i++) {
		if (lim[i]->tasks <= 0)
			continue;
		rc = places_take(w->p->db, w->charge_slot, r->id,
		    i == 0 ? PS_TOKEN : PS_USER, id[i], "", lim[i]->tasks);
		if (rc == PLACE_DB) {
			gw_error(r, GW_DB);
			return ANSWERED;
		}
		if (rc == PLACE_FULL) {
			r->retry_after = PLACE_RETRY_S;
			if ((v = refuse(r, &pl->ao, GW_TASKS)) == ANSWERED)
				metrics_limit_refused(why[i]);
			return v;
		}
	}
	while (r->ch->set.max_tasks > 0) {
		if (r->task.id[0] != '\0' && r->task.channel == r->ch->id) {
			i = task_key(r);
			key_hash(r->ch->keys[i], h);
			if ((rc = places_take(w->p->db, w->charge_slot, r->id,
			    PS_KEY, r->ch->id, h, r->ch->set.max_tasks)) ==
			    PLACE_OK)
				r->kidx = (int)i;
		} else
			rc = key_next(w, r, r->ch);
		if (rc == PLACE_OK)
			break;
		if (rc == PLACE_DB) {
			gw_error(r, GW_DB);
			return ANSWERED;
		}
		full[nfull++] = r->ch->id;
		if (pl->fixed || nfull == TRIED_MAX ||
		    (r->ch = channel_pick(&r->snap->c, pl->group, r->service,
		    full, nfull, &w->rng)) == NULL) {
			metrics_limit_refused(LR_CAPACITY);
			r->retry_after = PLACE_RETRY_S;
			gw_error(r, GW_CAPACITY);
			return ANSWERED;
		}
		if (price(r, pl->group) == -1)
			return ANSWERED;
	}
	return GO_ON;
}

/*
 * The key of ch the request's next transfer goes with (r->kidx), among
 * those it was not sent with yet: for a submit on a channel with
 * MaxTasks one with a place (places_key), else the next usable one, or
 * task_key's when it was sent with none of ch's yet. PLACE_FULL when
 * none is left.
 */
static enum place_rc
key_next(struct worker *w, struct req *r, const struct channel *ch)
{
	unsigned char	 skip[256];
	size_t		 i, ki;
	int		 any = 0;
	enum place_rc	 rc;

	memset(skip, 0, sizeof(skip));
	for (i = 0; i < r->nktried; i++)
		if (r->ktried[i].ch == ch->id && r->ktried[i].k < sizeof(skip))
			skip[r->ktried[i].k] = any = 1;
	if (ch->set.max_tasks > 0 && !is_query_method(r->method)) {
		if ((rc = places_key(w->p->db, w->charge_slot, r->id, ch,
		    ch->set.max_tasks, skip, &ki)) == PLACE_OK)
			r->kidx = (int)ki;
		return rc;
	}
	places_give(w->charge_slot, PS_KEY);
	r->kidx = -1;
	if (!any)
		return PLACE_OK;
	for (i = 0; i < ch->nkeys && i < sizeof(skip); i++)
		if (!skip[i] && chan_key_usable(ch, i)) {
			r->kidx = (int)i;
			return PLACE_OK;
		}
	return PLACE_FULL;
}

/*
 * Charge the request: GO_ON, or ANSWERED with the refusal sent. With
 * again set, a charge that did not apply but may once the token is read
 * afresh (METER_RECHECK) is LOOK_AGAIN instead.
 */
static enum verdict
reserve(struct worker *w, struct req *r, const char *group, int again)
{
	struct charge	*c = &r->charge;
	enum meter_rc	 rc;

	if (r->quota <= 0)
		return GO_ON;
	memset(c, 0, sizeof(*c));
	c->slot = w->charge_slot;
	c->unlimited = r->tok.unlimited;
	c->chan_version = r->chan_version;
	c->auth_version = r->auth_version;
	usage_record(&c->rec, r, group);
	rc = meter->reserve(w->p->db, c);
	if (rc == METER_RECHECK && again)
		return LOOK_AGAIN;
	if (rc != METER_OK) {
		gw_error(r, rc == METER_DB ? GW_DB : GW_QUOTA);
		return ANSWERED;
	}
	c->held = 1;
	return GO_ON;
}

/* What the logs row of this request will say, but for the answer. */
static void
usage_record(struct usage *u, const struct req *r, const char *group)
{
	size_t	 i;

	memset(u, 0, sizeof(*u));
	strlcpy_(u->rid, r->id, sizeof(u->rid));
	u->user_id = r->tok.user_id;
	u->token_id = r->tok.id;
	u->channel_id = r->ch->id;
	u->quota = r->quota;
	u->at = now_s();
	strlcpy_(u->method, r->method, sizeof(u->method));
	snprintf(u->path, sizeof(u->path), "%.*s", (int)(r->pathlen <
	    sizeof(u->path) ? r->pathlen : sizeof(u->path) - 1), r->path);
	/* ASCII only: the cut above may have split a UTF-8 character */
	for (i = 0; u->path[i]; i++)
		if ((unsigned char)u->path[i] >= 0x80)
			u->path[i] = '?';
	strlcpy_(u->ip, r->ip, sizeof(u->ip));
	/* sized for their columns: whole characters, as a guard only */
	utf8_copy(u->username, r->tok.username, sizeof(u->username));
	utf8_copy(u->token_name, r->tok.name, sizeof(u->token_name));
	utf8_copy(u->group, group, sizeof(u->group));
	strlcpy_(u->service, r->service, sizeof(u->service));
	strlcpy_(u->model, r->price.model, sizeof(u->model));
}

/* Which key of its channel a task went with, without keeping the key. */
static void
key_hash(const char *key, char out[17])
{
	char	 hex[65];

	sha256_hex(key, strlen(key), hex);
	memcpy(out, hex, 16);
	out[16] = '\0';
}

/*
 * Send the request to r->ch, and on to further candidates while the
 * failure allows it (fail_over), each at its own price; then the answer
 * that reached the client is booked (answered), or the gateway answers
 * that none did (no_answer).
 */
static void
forward(struct worker *w, struct req *r, const char *group, int fixed)
{
	struct transfer	 t;
	struct channel	*next;
	long long	 tried[TRIED_MAX];
	size_t		 ntried = 0;

	memset(&t.res, 0, sizeof(t.res));
	for (;;) {
		tried[ntried++] = r->ch->id;
		if (send_once(w, r, fixed, &t) == -1)
			goto done;
		if ((next = fail_over(w, r, group, fixed, &t.res, tried,
		    ntried)) == NULL)
			break;
		log_warn("req=%s channel %lld failed (%s); trying channel %lld",
		    r->id, r->ch->id, t.res.status ? http_reason(t.res.status) :
		    up_err_reason(t.res.err), next->id);
		r->ch = next;
		if (charge_again(w, r, group) == -1)
			goto done;
	}
	if (t.res.withheld && t.res.status == 429) {
		/* every key and channel it could go to refused the job */
		log_warn("req=%s every key refused the job (429)", r->id);
		finish_charge(w, r, 0, NULL);
		metrics_limit_refused(LR_CAPACITY);
		r->retry_after = PLACE_RETRY_S;
		gw_error(r, GW_CAPACITY);
		goto done;
	}
	if (t.res.withheld && upstream_release(&t.up, &t.res) == -1)
		t.res.client_gone = !t.res.answer_refused;
	r->bytes = t.res.bytes_out;
	if (t.res.status > 0 && t.res.headers_sent)
		answered(w, r, &t.res);
	else
		no_answer(w, r, &t.res);
done:
	up_result_free(&t.res);
}

/*
 * One transfer of the request to r->ch, with the key it goes with
 * (r->kidx, chosen by seat or fail_over, else task_key). The answer
 * streams to the client, unless another channel may yet be tried: then
 * a 401 (when the whole body is held, to be sent again) and, for a
 * query, a 502/503/504 are held back (upstream.h); so is a submit's 429
 * (the whole body held), for another key or channel, or the gateway's
 * own 429 when none is left (forward).
 * What the transfer says of the channel is recorded: its breaker, the
 * ban of its key (keys.c), the error counters. 0, or -1 with the answer
 * sent.
 */
static int
send_once(struct worker *w, struct req *r, int fixed, struct transfer *t)
{
	struct upstream_req	*up = &t->up;
	size_t			 ki;
	int			 n, query = is_query_method(r->method);
	CURL			*curl;

	n = snprintf(t->url, sizeof(t->url), "%s%.*s%s%s", r->ch->base_url,
	    (int)r->pathlen, r->path, r->query ? "?" : "",
	    r->query ? r->query : "");
	if (n < 0 || (size_t)n >= sizeof(t->url)) {
		gw_error(r, GW_PATH);
		return -1;
	}
	ki = r->kidx >= 0 && (size_t)r->kidx < r->ch->nkeys ?
	    (size_t)r->kidx : task_key(r);
	r->key = r->ch->keys[ki];
	if (r->nktried < TRIED_MAX) {
		r->ktried[r->nktried].ch = r->ch->id;
		r->ktried[r->nktried++].k = ki;
	}
	snprintf(t->quota_hdr, sizeof(t->quota_hdr), "X-Bltcy-Quota: %lld\r\n",
	    r->quota);
	memset(up, 0, sizeof(*up));
	up->fr = r->fr;
	up->request_id = r->id;
	up->method = r->method;
	up->url = t->url;
	up->key = r->ch->keys[ki];
	up->proxy = r->ch->set.proxy;
	up->content_length = r->content_length;
	up->held = &r->body.held;
	up->held_all = r->body.all;
	up->hold_401 = !fixed && r->body.all;
	up->hold_5xx = !fixed && query;
	/* an account at its limit: the job may go to another key */
	up->hold_429 = !query && r->body.all;
	up->capture = !query || poll_kind(r) != NULL;
	up->extra_headers = t->quota_hdr;
	if (r->idem.held) {	/* the answer is kept for repeats */
		buf_free(&r->kept);
		buf_init(&r->kept, 2 * 64 * 1024);
		up->keep_headers = &r->kept;
		up->capture = up->capture_any = 1;
	}
	up->before_answer = answer_ready;
	up->arg = r;
	log_debug("DEBUG Bltcy req=%s %s %.*s -> channel %lld (%s) key #%zu",
	    r->id, r->method, (int)r->pathlen, r->path, r->ch->id,
	    r->ch->name, ki + 1);
	if (strcmp(r->service, "kling") == 0)
		log_debug("DEBUG Kling req=%s %s %.*s body=%zu%s", r->id,
		    r->method, (int)r->pathlen, r->path, r->body.held.len,
		    r->body.all ? "" : "+ (streamed)");

	r->up_ms = mono_ms();
	up_result_free(&t->res);
	if ((curl = curl_get(w->p)) == NULL) {
		log_err("req=%s curl_easy_init failed", r->id);
		finish_charge(w, r, 0, NULL);
		gw_error(r, GW_INTERNAL);
		return -1;
	}
	upstream_forward(curl, up, &t->res);
	curl_put(w->p, curl);
	r->up_ms = mono_ms() - r->up_ms;
	if (t->res.err != UPE_BAD_URL)
		breaker_result(r->ch->id, connect_failure(&t->res), mono_ms());
	if (keys_answered(w->p->db, &r->snap->c.opts, r->ch, ki, &t->res, r->id))
		chan_stale(w->p);	/* read again by the next request */
	if (t->res.err != UPE_NONE && t->res.status == 0)
		metrics_upstream_error(t->res.err);
	return 0;
}

/*
 * The channel to send to next, after a transfer: only for a connect
 * failure before any byte was sent or an answer held back (send_once),
 * and only when the channel is not the only one (a pinned one, or the
 * one that made the request's task); never one already tried, at most
 * RELAY_FAILOVER_MAX transfers in all. A 429 held back (the account
 * is at its limit) sends the job first to another key of the same
 * channel, also a pinned one (not a task's follow-up: its key knows the
 * task), its place on the refusing key given back. The key it goes with
 * is chosen here (key_next). NULL: the transfer's outcome stands.
 */
static struct channel *
fail_over(struct worker *w, struct req *r, const char *group, int fixed,
    const struct up_result *res, const long long *tried, size_t ntried)
{
	long long	 skip[2 * TRIED_MAX];
	size_t		 nskip;
	struct channel	*ch;

	if ((int)ntried >= (int)cfg_i(CFG_RELAY_FAILOVER_MAX) ||
	    ntried >= TRIED_MAX || !(connect_failure(res) || res->withheld))
		return NULL;
	if (res->withheld && res->status == 429) {
		/* the account refused the job: its place back, another key */
		places_give(w->charge_slot, PS_KEY);
		if ((r->task.id[0] == '\0' || r->task.channel != r->ch->id) &&
		    key_next(w, r, r->ch) == PLACE_OK)
			return r->ch;
	}
	if (fixed)
		return NULL;
	memcpy(skip, tried, ntried * sizeof(skip[0]));
	for (nskip = ntried; nskip < 2 * TRIED_MAX; skip[nskip++] = ch->id) {
		if ((ch = channel_pick(&r->snap->c, group, r->service, skip,
		    nskip, &w->rng)) == NULL)
			return NULL;
		/* a submit needs a key with room there */
		switch (key_next(w, r, ch)) {
		case PLACE_OK:
			return ch;
		case PLACE_DB:
			return NULL;
		case PLACE_FULL:
			break;
		}
	}
	return NULL;
}

/*
 * Another channel, its own price, maybe refused; a price that differs
 * is charged afresh. 0, or -1 with the answer sent (the charge given
 * back).
 */
static int
charge_again(struct worker *w, struct req *r, const char *group)
{
	long long	 q = r->quota;

	if (price(r, group) == -1) {
		finish_charge(w, r, 0, NULL);
		return -1;
	}
	if (q != r->quota) {
		finish_charge(w, r, 0, NULL);
		if (reserve(w, r, group, 0) != GO_ON)
			return -1;
	}
	return 0;
}

/*
 * The upstream's answer reached the client: a successful submit's task
 * ids are this host's newest tasks at once (tasks_recent_put) and
 * recorded with the charge (book); a client's poll answer says how its
 * task stands (poll_seen); the answer is kept for its Idempotency-Key.
 */
static void
answered(struct worker *w, struct req *r, const struct up_result *res)
{
	struct task_ids		 tasks;
	const struct task_kind	*kind;
	char			 joined[TASK_IDS_MAX * (TASK_ID_MAX + 1)];
	char			 kh[17];
	int			 ok = res->status < 400 && !res->body_too_large;

	r->status = res->status;
	joined[0] = '\0';
	if (ok && !is_query_method(r->method) && res->json &&
	    !res->capture_overflow) {
		task_ids_from_answer(&tasks, res->capture.p ? res->capture.p : "",
		    res->capture.len);
		task_ids_join(&tasks, joined, sizeof(joined));
		if (tasks.n > 0) {
			key_hash(r->key, kh);
			tasks_recent_put(r->service, &tasks, r->ch->id,
			    r->tok.user_id, kh);
		}
	}
	if (ok && (kind = poll_kind(r)) != NULL && res->json &&
	    !res->capture_overflow)
		poll_seen(w, r, kind, res);
	if (r->idem.held)
		idem_keep(w->p->db, &r->idem, res->status, r->kept.p,
		    r->kept.len, res->capture.p, res->capture.len,
		    !res->capture_overflow && res->coding == UPC_IDENTITY &&
		    (res->content_length >= 0 ?
		    (long long)res->capture.len == res->content_length :
		    res->err == UPE_NONE && !res->client_gone));
	book(w, r, ok, joined);
	if (res->client_gone)
		log_info("req=%s client went away mid-response", r->id);
	else if (res->err != UPE_NONE)
		log_warn("req=%s upstream broke off mid-response: %s",
		    r->id, res->errbuf);
}

/*
 * The one place an answer's task ids are recorded, with its charge: a
 * charged request's go with its settlement into the usage ring
 * (finish_charge, which settles when ok, else refunds), which writes
 * both; those of a request that cost nothing are written at once.
 */
static void
book(struct worker *w, struct req *r, int ok, const char *tasks)
{
	struct dbv	 a[9];
	char		 kh[17];

	if (r->charge.held) {
		finish_charge(w, r, ok, tasks);
		return;
	}
	if (tasks[0] == '\0')
		return;
	key_hash(r->key, kh);
	a[0] = DBS(r->service);
	a[1] = DBS(tasks);
	a[2] = DBI(r->ch->id);
	a[3] = DBI(r->tok.user_id);
	a[4] = DBI(r->tok.id);
	a[5] = DBI(now_s());
	a[6] = DBS(kh);
	/* its places are the task's, moved from this host's grant there */
	a[7] = DBI(places_hand(w->charge_slot));
	a[8] = DBS(w->p->host);
	if (db_run(w->p->db, ST_TASKS_ADD, a, 9, NULL, NULL, NULL) != DB_OK)
		log_err("req=%s recording tasks: %s", r->id, db_error(w->p->db));
}

/*
 * No answer reached the client: the charge is given back, and the client
 * told why (499 when it went away first).
 */
static void
no_answer(struct worker *w, struct req *r, const struct up_result *res)
{
	finish_charge(w, r, 0, NULL);
	if (res->client_gone)
		r->status = 499;
	else if (res->answer_refused)
		gw_error(r, GW_DB);	/* the charge could not be made durable */
	else if (res->body_too_large)
		gw_error(r, GW_TOO_LARGE);
	else if (res->err == UPE_BAD_URL) {
		/* the request's URL, not the channel: no breaker, no failover */
		log_warn("req=%s upstream URL refused: %s", r->id, res->errbuf);
		gw_error(r, GW_PATH);
	} else {
		r->err = res->err;
		log_err("req=%s upstream channel %lld: %s (%s)", r->id,
		    r->ch->id, up_err_reason(res->err), res->errbuf);
		upstream_error(r, res->err);
	}
}

/*
 * The key of r->ch a request goes with: a task's own (the one its submit
 * went with: the upstream account that knows it, disabled or not), else
 * the next in turn of those that take new jobs (chan_key_usable).
 */
static size_t
task_key(struct req *r)
{
	char	 h[17];
	size_t	 i, k, n = r->ch->key_status != NULL ? r->ch->nusable :
		    r->ch->nkeys;

	if (r->task.id[0] != '\0' && r->task.channel == r->ch->id &&
	    r->task.key_hash[0] != '\0')
		for (i = 0; i < r->ch->nkeys; i++) {
			key_hash(r->ch->keys[i], h);
			if (strcmp(h, r->task.key_hash) == 0)
				return i;
		}
	k = n > 1 ? metrics_next_key(r->ch->id) % n : 0;
	for (i = 0; i < r->ch->nkeys; i++)
		if (chan_key_usable(r->ch, i) && k-- == 0)
			return i;
	return 0;
}

/*
 * A GET naming a task of the caller's, unfinished, on the channel that
 * made it, of a service whose answers say how a task stands: its answer
 * is read (poll_seen).
 */
static const struct task_kind *
poll_kind(const struct req *r)
{
	size_t	 i;

	if (!is_query_method(r->method))
		return NULL;
	for (i = 0; i < r->nowned; i++)
		if (r->owned[i].channel == r->ch->id &&
		    (r->owned[i].state == TS_SUBMITTED ||
		    r->owned[i].state == TS_RUNNING))
			return chcache_kind(&r->snap->c, r->service);
	return NULL;
}

/*
 * What a client's poll answer says goes to the one task it is about: the
 * task whose id the answer names where its kind's id_path says, or, for
 * a service whose answers name none, the id at the place of {id} in the
 * kind's poll_path in the request (task_id_at), or, for a kind that says
 * neither, the task when the request names no other id that is anyone's
 * task: never another id the request also names, since the client chose
 * them all. It must be the caller's, unfinished, on the
 * channel that answered. A change of state is recorded at once (a
 * failure is refunded there and then), an unchanged one now and then, so
 * that the relay's own polling leaves a task alone while a client polls
 * it. An answer that the upstream knows no such task (TS_LOST) is never
 * taken from a client: the client chose what to ask. A failure of a task
 * not written yet (its submit's usage is on its way) is kept for the
 * poller, which applies it once the row is there (bltcy_task_early).
 */
static void
poll_seen(struct worker *w, struct req *r, const struct task_kind *kind,
    const struct up_result *res)
{
	struct task_answer	 a;
	const struct task_row	*t = NULL;
	char			 at[TASK_ID_MAX + 1];
	const char		*id;
	struct dbv		 v[6];
	long long		 now = now_s();
	size_t			 i;
	int			 rc;

	task_answer_read(kind, res->capture.p ? res->capture.p : "",
	    res->capture.len, &a);
	if (a.state == TS_UNKNOWN)
		return;
	if (kind->id_path[0] != '\0') {
		if (!a.has_id)
			return;
		id = a.id;
	} else if ((rc = task_id_at(kind->poll_path, r->path, r->pathlen,
	    r->query, at)) == 0)
		id = at;
	else if (rc == -2 && r->ntasks == 1 && r->nowned == 1)
		id = r->owned[0].id;
	else
		return;
	for (i = 0; i < r->nowned && t == NULL; i++)
		if (strcmp(r->owned[i].id, id) == 0)
			t = &r->owned[i];
	if (t == NULL || t->channel != r->ch->id ||
	    (t->state != TS_SUBMITTED && t->state != TS_RUNNING))
		return;
	if (a.state == TS_LOST) {
		log_debug("req=%s task %s of %s: the upstream answered %s; left "
		    "to the relay's own polls", r->id, t->id, r->service,
		    a.reason);
		return;
	}
	if (t->recent) {
		if (a.state != TS_FAILED)
			return;		/* the poller asks again */
		v[0] = DBS(r->service);
		v[1] = DBS(t->id);
		v[2] = DBI(t->user);
		v[3] = DBI(t->channel);
		v[4] = DBS(a.reason);
		v[5] = DBI(now);
		if (db_run(w->p->db, ST_TASK_EARLY, v, 6, NULL, NULL, NULL) !=
		    DB_OK)
			log_warn("req=%s task %s of %s: keeping its failure: %s",
			    r->id, t->id, r->service, db_error(w->p->db));
		else
			log_info("req=%s task %s of %s: failed before it was "
			    "recorded; refunded once it is", r->id, t->id,
			    r->service);
		return;
	}
	if (a.state == t->state &&
	    now - t->updated_at < cfg_i(CFG_TASK_POLL_INTERVAL) / 2)
		return;
	if (task_seen(w->p->db, r->service, t->id, a.state, a.reason, now) == 0 &&
	    a.state != t->state)	/* a failure to record it is logged there */
		log_info("req=%s task %s of %s: %s", r->id, t->id,
		    r->service, task_state_name(a.state));
}

static int
connect_failure(const struct up_result *res)
{
	return res->status == 0 && res->nothing_sent &&
	    (res->err == UPE_REFUSED || res->err == UPE_DNS ||
	    res->err == UPE_TLS || res->err == UPE_CONNECT ||
	    res->err == UPE_CONNECT_TIMEOUT);
}

/*
 * The upstream's answer is about to reach the client: a charge held is
 * durable first (strict: its transaction committed while the upstream
 * worked). If it cannot be, the meter has given it back and the client
 * gets the gateway's 503 instead of an answer it would not have paid for.
 */
static int
answer_ready(void *arg)
{
	struct req	*r = arg;

	if (!r->charge.held || meter->durable == NULL ||
	    meter->durable(r->w->p->db, &r->charge) == METER_OK)
		return 0;
	r->charge.held = 0;
	return -1;
}

/*
 * Settle (upstream answered < 400) or refund the charge, as the metering
 * mode does it. A settlement goes into the usage ring, which the master
 * writes in batches: the logs row, the channel that answered, the task
 * ids.
 */
static void
finish_charge(struct worker *w, struct req *r, int settle, const char *tasks)
{
	struct usage_end e;
	char		 hash[17] = "";

	if (!r->charge.held)
		return;
	r->charge.held = 0;
	/* which key a task went with, for the relay's own polls of it */
	if (tasks != NULL && *tasks != '\0' && r->key != NULL)
		key_hash(r->key, hash);
	e.channel = r->ch->id;
	e.use_time = (mono_ms() - r->start_ms + 500) / 1000;
	e.tasks = tasks;
	e.key_hash = hash;
	/* the places it holds are its first task's (places.h) */
	r->charge.rec.places = hash[0] != '\0' ? places_hand(w->charge_slot) : 0;
	meter->settle(w->p->db, &r->charge, settle, &e);
	if (settle)
		metrics_quota(r->quota);
}

/* ---- answers ---- */

/*
 * The answer the first request of an Idempotency-Key got, again: its
 * status, header lines and body; nothing is forwarded or charged.
 */
static void
replay(struct req *r)
{
	FCGX_FPrintF(r->fr->out, "Status: %d %s\r\n", r->idem.status,
	    http_reason(r->idem.status));
	if (r->idem.headers.len > 0)
		FCGX_PutStr(r->idem.headers.p, (int)r->idem.headers.len,
		    r->fr->out);
	FCGX_FPrintF(r->fr->out, "Idempotent-Replayed: true\r\n"
	    "X-Bltcy-Quota: 0\r\n" RELAY_SAFE_HEADERS "X-Request-Id: %s\r\n"
	    "\r\n", r->id);
	if (r->idem.body.len > 0)
		FCGX_PutStr(r->idem.body.p, (int)r->idem.body.len, r->fr->out);
	r->status = r->idem.status;
	r->bytes = (int64_t)r->idem.body.len;
}

/* The price of a request, as reserve would charge it; nothing is sent. */
static void
quote(struct req *r, const char *group)
{
	const struct price_out *p = &r->price;
	struct buf	 o;
	char		 rules[1024];

	price_applied_text(p, rules, sizeof(rules));
	buf_init(&o, 4096);
	if (buf_adds(&o, "{\"service\":\"") == -1 ||
	    json_escape(&o, r->service) == -1 ||
	    buf_adds(&o, "\",\"method\":\"") == -1 ||
	    json_escape(&o, r->method) == -1 ||
	    buf_adds(&o, "\",\"model\":\"") == -1 ||
	    json_escape(&o, p->model) == -1 ||
	    buf_printf(&o, "\",\"quota\":%lld,\"base\":%lld,\"base_from\":"
	    "\"%s\",\"group\":\"", r->quota, p->base,
	    is_query_method(r->method) ? "query" : p->from_model_price ?
	    "ModelPrice" : "PassthroughQuota") == -1 ||
	    json_escape(&o, group) == -1 ||
	    buf_printf(&o, "\",\"group_ratio\":%g,\"rules\":\"",
	    p->group_ratio) == -1 ||
	    json_escape(&o, rules) == -1 || buf_adds(&o, "\"}") == -1) {
		buf_free(&o);
		gw_error(r, GW_INTERNAL);
		return;
	}
	FCGX_FPrintF(r->fr->out, "Status: 200 OK\r\nContent-Type: "
	    "application/json\r\nX-Bltcy-Quota: %lld\r\n" RELAY_SAFE_HEADERS
	    "X-Request-Id: %s\r\n\r\n", r->quota, r->id);
	FCGX_PutStr(o.p, (int)o.len, r->fr->out);
	r->status = 200;
	r->bytes = (int64_t)o.len;
	r->quota = 0;		/* nothing charged (the log line's quota=) */
	buf_free(&o);
}

static void
health(struct worker *w, struct req *r)
{
	static const char down[] = "{\"status\":\"database_unavailable\"}";
	static const char stuck[] = "{\"status\":\"usage_writer_stuck\"}";

	/* answering while settled requests cannot reach the database is no health */
	if (usage_writer_stuck(mono_ms()))
		send_body(r, 503, "application/json", stuck, sizeof(stuck) - 1);
	else if (db_run(w->p->db, ST_PING, NULL, 0, NULL, NULL, NULL) == DB_OK) {
		struct buf	 o;	/* and which database node the host uses */

		buf_init(&o, 1024);
		if (buf_adds(&o, "{\"status\":\"ok\",\"db_node\":") == 0 &&
		    json_string(&o, db_node_name(w->p->db)) == 0 &&
		    buf_adds(&o, "}") == 0)
			send_body(r, 200, "application/json", o.p, o.len);
		else
			gw_error(r, GW_INTERNAL);
		buf_free(&o);
	} else
		send_body(r, 503, "application/json", down, sizeof(down) - 1);
}

static void
metrics(struct req *r)
{
	struct buf	 o;

	buf_init(&o, 1 << 20);
	if (metrics_render(&o) == 0)
		send_body(r, 200, "text/plain; version=0.0.4", o.p, o.len);
	else
		gw_error(r, GW_INTERNAL);
	buf_free(&o);
}

static void
send_body(struct req *r, int status, const char *ctype, const char *body,
    size_t len)
{
	FCGX_FPrintF(r->fr->out, "Status: %d %s\r\nContent-Type: %s\r\n"
	    RELAY_SAFE_HEADERS "X-Request-Id: %s\r\n", status,
	    http_reason(status), ctype, r->id);
	if (r->retry_after > 0)
		FCGX_FPrintF(r->fr->out, "Retry-After: %d\r\n", r->retry_after);
	FCGX_PutStr("\r\n", 2, r->fr->out);
	FCGX_PutStr(body, (int)len, r->fr->out);
	r->status = status;
	r->bytes = (int64_t)len;
}

/* Answer with a gateway error in new-api's shape. */
static void
gw_error(struct req *r, enum gw_err e, ...)
{
	va_list		 ap;

	va_start(ap, e);
	gw_verror(r, e, ap);
	va_end(ap);
}

static void
gw_verror(struct req *r, enum gw_err e, va_list ap)
{
	char		 msg[MSG_MAX];
	struct buf	 o;

	vsnprintf(msg, sizeof(msg), gw_errs[e].msg, ap);
	buf_init(&o, 4096);
	if (buf_adds(&o, "{\"error\":{\"message\":\"") == -1 ||
	    json_escape(&o, msg) == -1 ||
	    buf_printf(&o, " (request id: %s)\",\"type\":\"new_api_error\","
	    "\"code\":\"%s\"}}", r->id, gw_errs[e].code) == -1) {
		buf_free(&o);
		return;
	}
	send_body(r, gw_errs[e].status, "application/json", o.p, o.len);
	buf_free(&o);
}

/* The seed's body for a request the old gateway never answered. */
static void
upstream_error(struct req *r, enum up_err e)
{
	char	 body[256];
	int	 n, status = e == UPE_CONNECT_TIMEOUT || e == UPE_HEADER_TIMEOUT ||
		    e == UPE_TIMEOUT ? 504 : 502;

	n = snprintf(body, sizeof(body), "{\"code\":\"request_failed\","
	    "\"message\":\"转发请求到旧网关失败: %s\",\"data\":null}",
	    up_err_reason(e));
	send_body(r, status, "application/json", body, (size_t)n);
}

static void
make_id(struct worker *w, char id[40])
{
	struct tm	 tm;
	time_t		 t = time(NULL);
	uint64_t	 x;

	gmtime_r(&t, &tm);
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	x = w->rng;
	strftime(id, 15, "%Y%m%d%H%M%S", &tm);
	snprintf(id + 14, 40 - 14, "%012llx",
	    (unsigned long long)(x & 0xffffffffffffULL));
}

static int
is_query_method(const char *m)
{
	return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 ||
	    strcmp(m, "OPTIONS") == 0;
}

/* What the request owns beyond its struct, given back. */
static void
req_free(struct req *r)
{
	body_free(&r->body);
	buf_free(&r->kept);
	idem_free(&r->idem);
}
