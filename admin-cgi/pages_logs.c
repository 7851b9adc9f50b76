/*
 * Usage logs (new-api's logs table): filters by user, token name, service,
 * channel, type and time; 50 rows a page; totals of the filtered rows.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "list.h"
#include "reply.h"
#include "sql.h"

/* The filters, in the order of the form. */
enum { LF_USER, LF_TOKEN, LF_SERVICE, LF_CHANNEL, LF_TYPE, LF_FROM, LF_TO };

static const struct {
	long long	 type;
	enum label	 label;
} types[] = {
	{ 0, L_ALL },
	{ 2, L_TYPE_CONSUME },
	{ 5, L_TYPE_ERROR },
	{ 6, L_TYPE_REFUND },
};

static void
type_options(struct req *r, const char *cur)
{
	char	 v[24];
	size_t	 i;

	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		snprintf(v, sizeof(v), "%lld", types[i].type);
		h(&r->out, cur != NULL && strcmp(cur, v) == 0 ?
		    "<option value=\"%s\" selected>%s</option>" :
		    "<option value=\"%s\">%s</option>", v, T(r, types[i].label));
	}
}

static const struct list_filter filters[] = {
	[LF_USER] = { F_USER, L_USERNAME, LI_TEXT },
	[LF_TOKEN] = { F_TOKEN, L_TOKEN_NAME, LI_TEXT },
	[LF_SERVICE] = { F_SERVICE, L_SERVICE, LI_SELECT, .any = "",
	    .opts = service_options },
	[LF_CHANNEL] = { F_CHANNEL, L_CHANNEL_ID, LI_NUMBER, .max = INT64_MAX },
	[LF_TYPE] = { F_TYPE, L_TYPE, LI_SELECT, .num = 1, .max = 100,
	    .opts = type_options },
	[LF_FROM] = { F_FROM, L_FROM, LI_DATETIME },
	[LF_TO] = { F_TO, L_TO, LI_DATETIME, .end = 1 },
};

/* Filters: an empty string or 0 means "any" (sql.c AS_LOGS_*). */
static size_t
bind(struct list_vals *v, struct dbv *a)
{
	const char	*svc = v->s[LF_SERVICE];

	/* a service's rows are those of its model, "<service>_passthrough" */
	v->aux[0] = '\0';
	if (svc != NULL)
		snprintf(v->aux, sizeof(v->aux), "%s_passthrough", svc);
	a[0] = DBS(v->s[LF_USER] ? v->s[LF_USER] : "");
	a[1] = a[0];
	a[2] = DBS(v->s[LF_TOKEN] ? v->s[LF_TOKEN] : "");
	a[3] = a[2];
	a[4] = DBS(v->aux);
	a[5] = a[4];
	a[6] = DBI(v->n[LF_CHANNEL]);
	a[7] = a[6];
	a[8] = DBI(v->n[LF_TYPE]);
	a[9] = a[8];
	a[10] = DBI(v->n[LF_FROM]);
	a[11] = DBI(v->n[LF_TO]);
	return 12;
}

static int
log_row(void *arg, const struct dbv *c, size_t n)
{
	struct req	*r = arg;
	char		 t[32];
	long long	 type = col_i(&c[2]);

	fmt_time(col_i(&c[1]), t, sizeof(t));
	h(&r->out, "<tr><td class=\"mono\">%s</td><td>%s</td><td>%s</td><td>%s</td>"
	    "<td class=\"num\">%L</td><td><span class=\"badge %s\">%s</span></td>"
	    "<td class=\"num\">%L</td><td class=\"num\">%L</td><td class=\"mono\">%s</td>"
	    "<td class=\"wrap\">%s</td></tr>", t, col_s(&c[3]), col_s(&c[4]),
	    col_s(&c[5]), col_i(&c[8]), type == 5 ? "bad" : type == 6 ? "off" :
	    "on", T(r, type == 5 ? L_TYPE_ERROR : type == 2 ? L_TYPE_CONSUME :
	    type == 6 ? L_TYPE_REFUND : L_ALL),
	    col_i(&c[6]), col_i(&c[7]), col_s(&c[9]), col_s(&c[10]));
	return 0;
}

static const struct list_total totals[] = {
	{ L_ROWS, "total-rows" },
	{ L_QUOTA_TOTAL, "total-quota" },
};

static const struct list_col cols[] = {
	{ L_TIME, NULL, 0 },
	{ L_USERNAME, NULL, 0 },
	{ L_TOKEN_NAME, NULL, 0 },
	{ L_SERVICE, NULL, 0 },
	{ L_CHANNEL_ID, NULL, 1 },
	{ L_TYPE, NULL, 0 },
	{ L_QUOTA, NULL, 1 },
	{ L_USE_TIME, NULL, 1 },
	{ L__MAX, "IP", 0 },
	{ L_CONTENT, NULL, 0 },
};

static const struct list_page logs = {
	.path = "/logs",
	.title = L_LOGS,
	.filters = filters,
	.nfilters = sizeof(filters) / sizeof(filters[0]),
	.totals = totals,
	.ntotals = sizeof(totals) / sizeof(totals[0]),
	.cols = cols,
	.ncols = sizeof(cols) / sizeof(cols[0]),
	.total_stmt = AS_LOGS_TOTAL,
	.page_stmt = AS_LOGS_PAGE,
	.bind = bind,
	.row = log_row,
	.per_page = 50,
};

int
pg_logs(struct req *r)
{
	return list_show(r, &logs);
}
