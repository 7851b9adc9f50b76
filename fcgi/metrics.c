#include <string.h>

#include "config.h"
#include "db.h"
#include "meter.h"
#include "metrics.h"
#include "places.h"
#include "shared.h"

/*
 * Counters and breaker state in one anonymous shared mapping made by the
 * master before it forks, so every worker of the host sees the same
 * numbers. Updated with atomic builtins; no locks.
 */

#define SVC_SLOTS	32
#define SVC_NAME	32
#define BRK_SLOTS	1024

static const double lat_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1, 2.5, 5, 10, 30, 60, 300 };
#define LAT_N	(sizeof(lat_le) / sizeof(lat_le[0]))

struct breaker {
	long long	 id;
	uint32_t	 fails;
	int64_t		 open_until;	/* mono ms */
	int64_t		 probe_at;	/* a half-open probe is in flight */
};

struct shm {
	char		 svc[SVC_SLOTS][SVC_NAME];
	size_t		 nsvc;
	uint64_t	 req[SVC_SLOTS + 1][6];	/* last row: unrouted */
	uint64_t	 uperr[UPE__MAX];
	uint64_t	 lat[LAT_N + 1];
	uint64_t	 lat_sum_ms;
	uint64_t	 quota;
	uint32_t	 busy[2048];	/* requests in flight, per worker of the master */
	uint64_t	 restarts;
	uint64_t	 breaker_skips;
	uint64_t	 tok_refused[TR__MAX];
	uint64_t	 limit_refused[LR__MAX];
	uint64_t	 rr[BRK_SLOTS];
	struct breaker	 brk[BRK_SLOTS];
	struct {
		long long	 id;
		uint32_t	 n;
	}		 kdis[BRK_SLOTS];	/* keys disabled, by channel */
	uint64_t	 keys_banned;
};

static struct shm	*m;


int
metrics_init(const char *services)
{
	const char	*p = services;

	if ((m = shm_map(sizeof(*m))) == NULL)
		return -1;
	while (*p != '\0' && m->nsvc < SVC_SLOTS) {
		size_t n = strcspn(p, ",");
		if (n > 0 && n < SVC_NAME)
			memcpy(m->svc[m->nsvc++], p, n);
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

void
metrics_request(const char *service, int status, int64_t ms)
{
	size_t	 s = SVC_SLOTS, i;
	int	 cls = status >= 100 && status < 600 ? status / 100 : 0;

	if (m == NULL)
		return;
	for (i = 0; service != NULL && i < m->nsvc; i++)
		if (strcmp(m->svc[i], service) == 0) {
			s = i;
			break;
		}
	ADD(&m->req[s][cls], 1);
	for (i = 0; i < LAT_N && (double)ms / 1000.0 > lat_le[i]; i++)
		;
	ADD(&m->lat[i], 1);
	ADD(&m->lat_sum_ms, (uint64_t)(ms > 0 ? ms : 0));
}

void
metrics_upstream_error(enum up_err e)
{
	if (m != NULL && e < UPE__MAX)
		ADD(&m->uperr[e], 1);
}

void
metrics_quota(long long q)
{
	if (m != NULL && q > 0)
		ADD(&m->quota, (uint64_t)q);
}

void
metrics_limit_refused(enum limit_refusal why)
{
	if (m != NULL && why < LR__MAX)
		ADD(&m->limit_refused[why], 1);
}

void
metrics_token_refused(enum tok_refusal how)
{
	if (m != NULL && how < TR__MAX)
		ADD(&m->tok_refused[how], 1);
}

void
metrics_busy(int mslot, int busy)
{
	if (m != NULL && mslot >= 0 && (size_t)mslot < sizeof(m->busy) / sizeof(m->busy[0]))
		ADD(&m->busy[mslot], busy ? 1u : (uint32_t)-1);
}

void
metrics_worker_gone(size_t mslot)
{
	if (m != NULL && mslot < sizeof(m->busy) / sizeof(m->busy[0]))
		STORE(&m->busy[mslot], 0);
}

static long long
inflight(void)
{
	long long	 n = 0;
	size_t		 i;

	for (i = 0; i < sizeof(m->busy) / sizeof(m->busy[0]); i++)
		n += LOAD(&m->busy[i]);
	return n;
}

void
metrics_worker_restart(void)
{
	if (m != NULL)
		ADD(&m->restarts, 1);
}

uint64_t
metrics_next_key(long long id)
{
	static uint64_t	 local;

	if (m == NULL)
		return local++;
	return ADD(&m->rr[(unsigned long long)id % BRK_SLOTS], 1);
}

static struct breaker *
slot(long long id)
{
	struct breaker	*b = &m->brk[(unsigned long long)id % BRK_SLOTS];

	if (LOAD(&b->id) != id) {	/* a new channel takes the slot */
		STORE(&b->fails, 0);
		STORE(&b->open_until, 0);
		STORE(&b->probe_at, 0);
		STORE(&b->id, id);
	}
	return b;
}

int
breaker_state(long long id, int64_t now)
{
	struct breaker	*b;
	int64_t		 probe;

	if (m == NULL)
		return BREAKER_CLOSED;
	b = slot(id);
	if (LOAD(&b->fails) < (uint32_t)cfg_i(CFG_BREAKER_THRESHOLD))
		return BREAKER_CLOSED;
	if (now >= LOAD(&b->open_until)) {
		probe = LOAD(&b->probe_at);
		/* a probe that never reported back (its worker died) expires */
		if (probe == 0 || now - probe > cfg_i(CFG_RELAY_TIMEOUT) * 1000)
			return BREAKER_HALF_OPEN;
	}
	ADD(&m->breaker_skips, 1);
	return BREAKER_OPEN;
}

int
breaker_claim(long long id, int64_t now)
{
	struct breaker	*b;
	int64_t		 probe;

	if (m == NULL)
		return 1;
	b = slot(id);
	probe = LOAD(&b->probe_at);
	if ((probe == 0 || now - probe > cfg_i(CFG_RELAY_TIMEOUT) * 1000) &&
	    __atomic_compare_exchange_n(&b->probe_at, &probe, now, 0,
	    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return 1;
	ADD(&m->breaker_skips, 1);
	return 0;
}

void
breaker_result(long long id, int connect_failed, int64_t now)
{
	struct breaker	*b;

	if (m == NULL)
		return;
	b = slot(id);
	if (connect_failed) {
		if (ADD(&b->fails, 1) + 1 >= (uint32_t)cfg_i(CFG_BREAKER_THRESHOLD))
			STORE(&b->open_until, now + cfg_i(CFG_BREAKER_COOLDOWN) * 1000);
	} else {
		STORE(&b->fails, 0);
		STORE(&b->open_until, 0);
	}
	STORE(&b->probe_at, 0);
}

void
metrics_keys_disabled(long long id, size_t n)
{
	size_t	 i = (unsigned long long)id % BRK_SLOTS;

	if (m == NULL || id <= 0)
		return;
	/* a channel whose slot another holds shows when the other has none */
	if (LOAD(&m->kdis[i].id) != id && n == 0)
		return;
	STORE(&m->kdis[i].n, (uint32_t)n);
	STORE(&m->kdis[i].id, id);
}

void
metrics_key_banned(void)
{
	if (m != NULL)
		ADD(&m->keys_banned, 1);
}

static int
render_keys(struct buf *o)
{
	size_t	 i;
	int	 rc = 0;

	rc |= buf_adds(o, "# HELP bltcy_keys_disabled Keys of a channel that take "
	    "no new jobs (disabled by hand or automatically), as this host last "
	    "read the channels.\n"
	    "# TYPE bltcy_keys_disabled gauge\n");
	for (i = 0; i < BRK_SLOTS; i++)
		if (LOAD(&m->kdis[i].id) > 0)
			rc |= buf_printf(o, "bltcy_keys_disabled{channel=\"%lld\"} "
			    "%u\n", LOAD(&m->kdis[i].id), LOAD(&m->kdis[i].n));
	rc |= buf_printf(o, "# HELP bltcy_keys_banned_total Keys this host "
	    "disabled for an upstream's answer (AutomaticDisable*).\n"
	    "# TYPE bltcy_keys_banned_total counter\n"
	    "bltcy_keys_banned_total %llu\n",
	    (unsigned long long)LOAD(&m->keys_banned));
	return rc;
}

static const char *const lr_label[LR__MAX] = {
	[LR_RATE_TOTAL] = "rate_total",
	[LR_RATE_SUCCESS] = "rate_success",
	[LR_TOKEN_IN_FLIGHT] = "token_in_flight",
	[LR_USER_IN_FLIGHT] = "user_in_flight",
	[LR_TOKEN_RPM] = "token_rpm",
	[LR_USER_RPM] = "user_rpm",
	[LR_TOKEN_TASKS] = "token_tasks",
	[LR_USER_TASKS] = "user_tasks",
	[LR_CAPACITY] = "channel_capacity",
};

int
metrics_render(struct buf *o)
{
	static const char *const cls[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	uint64_t	 cum = 0;
	size_t		 s, c, i;
	int		 rc = 0;

	if (m == NULL)
		return -1;
	rc |= buf_adds(o, "# HELP bltcy_requests_total Requests answered, by service and status class.\n"
	    "# TYPE bltcy_requests_total counter\n");
	for (s = 0; s <= m->nsvc; s++) {
		size_t row = s < m->nsvc ? s : SVC_SLOTS;
		for (c = 0; c < 6; c++)
			rc |= buf_printf(o, "bltcy_requests_total{service=\"%s\","
			    "class=\"%s\"} %llu\n", s < m->nsvc ? m->svc[s] : "none",
			    cls[c], (unsigned long long)LOAD(&m->req[row][c]));
	}
	rc |= buf_adds(o, "# HELP bltcy_upstream_errors_total Upstream transport errors, by kind.\n"
	    "# TYPE bltcy_upstream_errors_total counter\n");
	for (i = 1; i < UPE__MAX; i++)
		rc |= buf_printf(o, "bltcy_upstream_errors_total{kind=\"%s\"} %llu\n",
		    up_err_label((enum up_err)i), (unsigned long long)LOAD(&m->uperr[i]));
	rc |= buf_printf(o, "# HELP bltcy_token_refusals_total Requests refused for their token: "
	    "no such token (found by a lookup, or remembered), or too many failed checks from "
	    "the address (429).\n"
	    "# TYPE bltcy_token_refusals_total counter\n"
	    "bltcy_token_refusals_total{by=\"lookup\"} %llu\n"
	    "bltcy_token_refusals_total{by=\"memory\"} %llu\n"
	    "bltcy_token_refusals_total{by=\"throttle\"} %llu\n",
	    (unsigned long long)LOAD(&m->tok_refused[TR_LOOKUP]),
	    (unsigned long long)LOAD(&m->tok_refused[TR_MEMORY]),
	    (unsigned long long)LOAD(&m->tok_refused[TR_THROTTLED]));
	rc |= buf_adds(o, "# HELP bltcy_limit_refusals_total Requests refused by a limit "
	    "(429), by which.\n"
	    "# TYPE bltcy_limit_refusals_total counter\n");
	for (i = 0; i < LR__MAX; i++)
		rc |= buf_printf(o, "bltcy_limit_refusals_total{reason=\"%s\"} %llu\n",
		    lr_label[i], (unsigned long long)LOAD(&m->limit_refused[i]));
	rc |= render_keys(o);
	rc |= buf_adds(o, "# HELP bltcy_request_duration_seconds Time from accept to last byte.\n"
	    "# TYPE bltcy_request_duration_seconds histogram\n");
	for (i = 0; i <= LAT_N; i++) {
		cum += LOAD(&m->lat[i]);
		if (i < LAT_N)
			rc |= buf_printf(o, "bltcy_request_duration_seconds_bucket"
			    "{le=\"%g\"} %llu\n", lat_le[i], (unsigned long long)cum);
		else
			rc |= buf_printf(o, "bltcy_request_duration_seconds_bucket"
			    "{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	rc |= buf_printf(o, "bltcy_request_duration_seconds_sum %.3f\n"
	    "bltcy_request_duration_seconds_count %llu\n",
	    (double)LOAD(&m->lat_sum_ms) / 1000.0, (unsigned long long)cum);
	rc |= buf_printf(o, "# HELP bltcy_quota_charged_total Quota settled.\n"
	    "# TYPE bltcy_quota_charged_total counter\n"
	    "bltcy_quota_charged_total %llu\n"
	    "# HELP bltcy_inflight_requests Requests being relayed now.\n"
	    "# TYPE bltcy_inflight_requests gauge\n"
	    "bltcy_inflight_requests %lld\n"
	    "# HELP bltcy_worker_restarts_total Workers that died and were replaced.\n"
	    "# TYPE bltcy_worker_restarts_total counter\n"
	    "bltcy_worker_restarts_total %llu\n"
	    "# HELP bltcy_breaker_skips_total Channel picks skipped by an open circuit breaker.\n"
	    "# TYPE bltcy_breaker_skips_total counter\n"
	    "bltcy_breaker_skips_total %llu\n"
	    "# HELP bltcy_usage_backlog Settled requests whose logs rows are not written yet.\n"
	    "# TYPE bltcy_usage_backlog gauge\n"
	    "bltcy_usage_backlog %llu\n"
	    "# HELP bltcy_usage_rejected_total Usage records the database refused, set aside in bltcy_usage_rejected.\n"
	    "# TYPE bltcy_usage_rejected_total counter\n"
	    "bltcy_usage_rejected_total %llu\n",
	    (unsigned long long)LOAD(&m->quota), inflight(),
	    (unsigned long long)LOAD(&m->restarts),
	    (unsigned long long)LOAD(&m->breaker_skips),
	    (unsigned long long)usage_backlog(),
	    (unsigned long long)usage_rejected_total());
	rc |= buf_printf(o, "# HELP bltcy_db_node_changes_total Moves of this host "
	    "to another database node of SQL_DSN.\n"
	    "# TYPE bltcy_db_node_changes_total counter\n"
	    "bltcy_db_node_changes_total %llu\n", db_node_changes());
	rc |= places_render(o);
	return rc == 0 ? 0 : -1;
}
