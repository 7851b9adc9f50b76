/*
 * Dashboard: counts, refunds beside consumption, tasks by state, the last
 * 24 hours of requests and quota by service (stacked bars drawn here as
 * inline SVG; no script, no external asset), and recent errors.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin.h"
#include "reply.h"
#include "route.h"
#include "sql.h"

#define HOURS		24
#define SVC_MAX		12	/* services drawn; the rest count as "other" */

/* Chart geometry, in SVG user units. */
#define CW		640
#define CH		240
#define ML		56	/* left margin: y labels */
#define MR		8
#define MT		30	/* top: legend */
#define MB		24	/* bottom: x labels */
#define SLOT		((CW - ML - MR) / HOURS)
#define BAR		(SLOT - 6)

static const char *const palette[SVC_MAX + 1] = {
	"#2563eb", "#16a34a", "#ea580c", "#9333ea", "#db2777", "#0891b2",
	"#ca8a04", "#4f46e5", "#65a30d", "#dc2626", "#0d9488", "#7c3aed",
	"#94a3b8",
};

struct chart {
	long long	 origin;		/* start of the first hour */
	size_t		 nsvc;
	char		 svc[SVC_MAX + 1][SERVICE_NAME_MAX];
	long long	 req[HOURS][SVC_MAX + 1];
	long long	 quota[HOURS][SVC_MAX + 1];
};

static void
chart_services(struct chart *c)
{
	const char	*p = service_list();

	c->nsvc = 0;
	while (*p != '\0' && c->nsvc < SVC_MAX) {
		size_t n = strcspn(p, ",");
		if (n > 0 && n < SERVICE_NAME_MAX) {
			memcpy(c->svc[c->nsvc], p, n);
			c->svc[c->nsvc][n] = '\0';
			c->nsvc++;
		}
		p += n;
		p += *p == ',';
	}
	strlcpy_(c->svc[c->nsvc], "other", SERVICE_NAME_MAX);
}

static int
chart_row(void *arg, const struct dbv *col, size_t n)
{
	struct chart	*c = arg;
	long long	 hour = col_i(&col[0]);
	const char	*model = col_s(&col[1]);
	size_t		 ml = strcspn(model, "_"), i;

	if (hour < 0 || hour >= HOURS)
		return 0;
	for (i = 0; i < c->nsvc; i++)
		if (strlen(c->svc[i]) == ml && strncmp(c->svc[i], model, ml) == 0)
			break;
	c->req[hour][i] += col_i(&col[2]);
	c->quota[hour][i] += col_i(&col[3]);
	return 0;
}

/* Smallest 1, 2 or 5 x 10^k at or above v (at least 4: four grid lines). */
static long long
nice_max(long long v)
{
	long long	 m = 1;

	if (v < 4)
		return 4;
	while (m <= v / 10)
		m *= 10;
	if (v <= m)
		return m;
	if (v <= 2 * m)
		return 2 * m;
	if (v <= 5 * m)
		return 5 * m;
	return 10 * m;
}

static void
draw(struct req *r, const struct chart *c, long long v[HOURS][SVC_MAX + 1],
    enum label title, const char *id)
{
	long long	 top = 0, sum, y0, g;
	size_t		 hr, s;
	int		 x, lx;
	char		 hh[8];
	time_t		 t;
	struct tm	 tm;

	for (hr = 0; hr < HOURS; hr++) {
		for (sum = 0, s = 0; s <= c->nsvc; s++)
			sum += v[hr][s];
		if (sum > top)
			top = sum;
	}
	top = nice_max(top);
	h(&r->out, "<div class=\"chart\"><h2>%s</h2><svg id=\"%s\" viewBox=\"0 0 %d %d\" "
	    "role=\"img\" aria-label=\"%s\" font-family=\"system-ui,sans-serif\" "
	    "font-size=\"11\">", T(r, title), id, CW, CH, T(r, title));
	/* legend */
	for (s = 0, lx = ML; s <= c->nsvc; s++) {
		if (s == c->nsvc) {
			for (hr = 0, sum = 0; hr < HOURS; hr++)
				sum += v[hr][s];
			if (sum == 0)
				break;
		}
		h(&r->out, "<rect x=\"%d\" y=\"8\" width=\"10\" height=\"10\" rx=\"2\" "
		    "fill=\"%s\"/><text x=\"%d\" y=\"17\" fill=\"#475467\">%s</text>",
		    lx, palette[s], lx + 14, c->svc[s]);
		lx += 24 + 7 * (int)strlen(c->svc[s]);
	}
	/* grid and y labels */
	for (g = 0; g <= 4; g++) {
		int y = MT + (CH - MT - MB) * (int)(4 - g) / 4;
		h(&r->out, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"%s\"/>"
		    "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#667085\">%L</text>",
		    ML, CW - MR, y, y, g == 0 ? "#98a2b3" : "#eaecf0", ML - 6, y + 4,
		    top * g / 4);
	}
	/* bars, stacked by service */
	for (hr = 0; hr < HOURS; hr++) {
		x = ML + (int)hr * SLOT + (SLOT - BAR) / 2;
		y0 = CH - MB;
		for (s = 0; s <= c->nsvc; s++) {
			long long hgt = v[hr][s] * (CH - MT - MB) / top;
			if (v[hr][s] == 0)
				continue;
			if (hgt < 1)
				hgt = 1;
			y0 -= hgt;
			h(&r->out, "<rect x=\"%d\" y=\"%L\" width=\"%d\" height=\"%L\" "
			    "fill=\"%s\"><title>%s: %L</title></rect>", x, y0, BAR, hgt,
			    palette[s], c->svc[s], v[hr][s]);
		}
		if (hr % 4 == 3 || hr == HOURS - 1) {
			t = (time_t)(c->origin + (long long)hr * 3600);
			if (localtime_r(&t, &tm) == NULL ||
			    strftime(hh, sizeof(hh), "%H:00", &tm) == 0)
				strlcpy_(hh, "", sizeof(hh));
			h(&r->out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
			    "fill=\"#667085\">%s</text>", x + BAR / 2, CH - 6, hh);
		}
	}
	h(&r->out, "</svg></div>");
}

static int
counts_row(void *arg, const struct dbv *c, size_t n)
{
	long long	*v = arg;
	size_t		 i;

	for (i = 0; i < n && i < 8; i++)
		v[i] = col_i(&c[i]);
	return 1;
}

static int
error_row(void *arg, const struct dbv *c, size_t n)
{
	struct req	*r = arg;
	char		 t[32];

	fmt_time(col_i(&c[0]), t, sizeof(t));
	h(&r->out, "<tr><td class=\"mono\">%s</td><td>%s</td><td>%s</td><td>%s</td>"
	    "<td class=\"num\">%L</td><td class=\"wrap\">%s</td></tr>", t,
	    col_s(&c[1]), col_s(&c[2]), col_s(&c[3]), col_i(&c[4]), col_s(&c[5]));
	return 0;
}

/* Auto-disabled channels: the line appears with its first row. */
struct banned {
	struct req	*r;
	int		 n;
};

static int
banned_row(void *arg, const struct dbv *c, size_t n)
{
	struct banned	*b = arg;
	struct req	*r = b->r;

	if (b->n++ == 0)
		h(&r->out, "<p>%s：", T(r, L_AUTO_DISABLED_CH));
	h(&r->out, "<a class=\"tag\" href=\"%s/channels/edit?id=%L\">#%L %s</a>",
	    r->base, col_i(&c[0]), col_i(&c[0]), col_s(&c[1]));
	return 0;
}

/* Tasks by state: one count each, in the order of task_states. */
static int
state_row(void *arg, const struct dbv *c, size_t n)
{
	long long		*v = arg;
	const struct task_state	*st = task_state_of(col_s(&c[0]));

	if (st != NULL)
		v[st - task_states] += col_i(&c[1]);
	return 0;
}

static void
task_counts(struct req *r, const long long v[TASK_STATE__MAX])
{
	size_t	 i;

	h(&r->out, "<h2>%s</h2><div class=\"stats\" id=\"task-states\">",
	    T(r, L_TASKS_BY_STATE));
	for (i = 0; i < TASK_STATE__MAX; i++)
		h(&r->out, "<a class=\"stat\" href=\"%s/tasks?state=%s\">"
		    "<div class=\"v\" id=\"tasks-%s\">%L</div><div class=\"k\">"
		    "%s</div></a>", r->base, task_states[i].name,
		    task_states[i].name, v[i], T(r, task_states[i].label));
	h(&r->out, "</div>");
}

int
pg_dashboard(struct req *r)
{
	static struct chart	 c;
	long long		 v[8] = { 0 }, now = now_s();
	long long		 states[TASK_STATE__MAX] = { 0 };
	struct dbv		 a[4];
	struct banned		 banned;

	a[0] = DBI(now - 86400);
	a[1] = a[2] = a[3] = a[0];
	if (db_run(r->db, AS_COUNTS, a, 4, counts_row, v, NULL) != DB_OK ||
	    db_run(r->db, AS_TASK_STATES, NULL, 0, state_row, states,
	    NULL) != DB_OK)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	memset(&c, 0, sizeof(c));
	chart_services(&c);
	c.origin = (now / 3600 - (HOURS - 1)) * 3600;
	a[0] = DBI(c.origin);
	a[1] = DBI(c.origin);
	if (db_run(r->db, AS_CHART, a, 2, chart_row, &c, NULL) != DB_OK)
		return page_fail(r, 503, L_DB_ERROR, NULL);

	page_begin(r, L_DASHBOARD);
	h(&r->out, "<div class=\"stats\">"
	    "<div class=\"stat\"><div class=\"v\">%L / %L</div><div class=\"k\">%s</div></div>"
	    "<div class=\"stat\"><div class=\"v\">%L</div><div class=\"k\">%s</div></div>"
	    "<div class=\"stat\"><div class=\"v\">%L</div><div class=\"k\">%s</div></div>"
	    "<div class=\"stat\"><div class=\"v\">%L</div><div class=\"k\">%s</div></div>"
	    "<div class=\"stat\"><div class=\"v\">%L</div><div class=\"k\">%s</div></div>"
	    "<div class=\"stat\"><div class=\"v\" id=\"refunds-24h\">%L</div>"
	    "<div class=\"k\">%s</div></div>"
	    "<div class=\"stat\"><div class=\"v\" id=\"refund-quota-24h\">%L</div>"
	    "<div class=\"k\">%s</div></div>"
	    "</div>", v[1], v[0], T(r, L_CH_ENABLED), v[2], T(r, L_TOKEN_COUNT),
	    v[3], T(r, L_USER_COUNT), v[4], T(r, L_REQ_24H), v[5],
	    T(r, L_QUOTA_24H), v[6], T(r, L_REFUNDS_24H), v[7],
	    T(r, L_REFUND_QUOTA_24H));
	task_counts(r, states);
	h(&r->out, "<div class=\"charts\">");
	draw(r, &c, c.req, L_CHART_REQ, "chart-requests");
	draw(r, &c, c.quota, L_CHART_QUOTA, "chart-quota");
	h(&r->out, "</div>");

	h(&r->out, "<h2>%s</h2>", T(r, L_RECENT_ERRORS));
	banned.r = r;
	banned.n = 0;
	if (db_run(r->db, AS_AUTO_DISABLED, NULL, 0, banned_row, &banned,
	    NULL) != DB_OK)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	if (banned.n > 0)
		h(&r->out, "</p>");
	h(&r->out, "<table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
	    "<th class=\"num\">%s</th><th>%s</th></tr></thead><tbody>",
	    T(r, L_TIME), T(r, L_USERNAME), T(r, L_TOKEN_NAME), T(r, L_SERVICE),
	    T(r, L_CHANNEL_ID), T(r, L_CONTENT));
	if (table_rows(r, AS_RECENT_ERRORS, NULL, 0, error_row, 6,
	    L_NO_ERRORS) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	page_end(r);
	return 200;
}
