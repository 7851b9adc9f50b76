/*
 * Usage logs (new-api's logs table): filters by user, token name, service,
 * channel, type and time; 50 rows a page; totals of the filtered rows.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "route.h"

#define LOGS_PER_PAGE	50
#define TIME_MAX	(1LL << 40)

struct filter {
	const char	*user, *token, *service, *from_s, *to_s;
	char		 model[64];
	long long	 channel, type, from, to, page;
};

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
bind_filter(const struct filter *f, struct dbv *a)
{
	a[0] = DBS(f->user ? f->user : "");
	a[1] = a[0];
	a[2] = DBS(f->token ? f->token : "");
	a[3] = a[2];
	a[4] = DBS(f->model);
	a[5] = a[4];
	a[6] = DBI(f->channel);
	a[7] = a[6];
	a[8] = DBI(f->type);
	a[9] = a[8];
	a[10] = DBI(f->from);
	a[11] = DBI(f->to);
}

static int
totals_row(void *arg, const struct dbv *c, size_t n)
{
	long long	*t = arg;

	t[0] = col_i(&c[0]);
	t[1] = col_i(&c[1]);
	return 1;
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

/* The filter's query string, for the pager's links. */
static void
pager_query(struct html *q, const struct filter *f)
{
	h(q, "user=%u&token=%u&service=%u&channel=%L&type=%L&from=%u&to=%u",
	    f->user, f->token, f->service, f->channel, f->type, f->from_s,
	    f->to_s);
}

static void
filter_form(struct req *r, const struct filter *f)
{
	size_t		 i;

	h(&r->out, "<form method=\"get\" action=\"%s/logs\" class=\"filters\">"
	    "<label>%s<input name=\"user\" value=\"%s\"></label>"
	    "<label>%s<input name=\"token\" value=\"%s\"></label>"
	    "<label>%s<select name=\"service\"><option value=\"\">%s</option>",
	    r->base, T(r, L_USERNAME), f->user, T(r, L_TOKEN_NAME), f->token,
	    T(r, L_SERVICE), T(r, L_ALL));
	service_options(r, f->service);
	h(&r->out, "</select></label><label>%s<input name=\"channel\" type=\"number\" "
	    "min=\"0\" value=\"%s\"></label><label>%s<select name=\"type\">",
	    T(r, L_CHANNEL_ID), f->channel ? fv(r, F_CHANNEL) : "", T(r, L_TYPE));
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		h(&r->out, types[i].type == f->type ?
		    "<option value=\"%L\" selected>%s</option>" :
		    "<option value=\"%L\">%s</option>", types[i].type,
		    T(r, types[i].label));
	h(&r->out, "</select></label><label>%s<input name=\"from\" type=\"datetime-local\" "
	    "value=\"%s\"></label><label>%s<input name=\"to\" type=\"datetime-local\" "
	    "value=\"%s\"></label><div><button type=\"submit\">%s</button></div></form>",
	    T(r, L_FROM), f->from_s, T(r, L_TO), f->to_s, T(r, L_FILTER));
}

int
pg_logs(struct req *r)
{
	struct filter	 f;
	struct buf	 errs;
	struct html	 q;
	struct dbv	 a[14];
	long long	 tot[2] = { 0, 0 }, pages;

	memset(&f, 0, sizeof(f));
	buf_init(&errs, ERRS_MAX);
	f.user = field_text(r, &errs, F_USER, L_USERNAME, 0);
	f.token = field_text(r, &errs, F_TOKEN, L_TOKEN_NAME, 0);
	f.service = field_text(r, &errs, F_SERVICE, L_SERVICE, 0);
	if (f.service != NULL)
		snprintf(f.model, sizeof(f.model), "%s_passthrough", f.service);
	f.channel = field_int(r, &errs, F_CHANNEL, L_CHANNEL_ID, 0, 0, INT64_MAX);
	f.type = field_int(r, &errs, F_TYPE, L_TYPE, 0, 0, 100);
	f.page = field_int(r, &errs, F_PAGE, L_PAGE, 1, 1, 1000000);
	f.from_s = field_text(r, &errs, F_FROM, L_FROM, 0);
	f.to_s = field_text(r, &errs, F_TO, L_TO, 0);
	f.from = 0;
	f.to = TIME_MAX;
	if (parse_datetime(f.from_s, &f.from) == -1)
		buf_printf(&errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, L_FROM));
	if (parse_datetime(f.to_s, &f.to) == -1)
		buf_printf(&errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, L_TO));

	page_begin(r, L_LOGS);
	if (errs.len > 0)
		msg_box(r, 0, errs.p);
	buf_free(&errs);
	filter_form(r, &f);
	bind_filter(&f, a);
	if (db_run(r->db, AS_LOGS_TOTAL, a, 12, totals_row, tot, NULL) != DB_OK)
		return error_page(r, 503, L_DB_ERROR, NULL), 503;
	pages = tot[0] == 0 ? 1 : (tot[0] + LOGS_PER_PAGE - 1) / LOGS_PER_PAGE;
	h(&r->out, "<div class=\"totals\"><span>%s <b id=\"total-rows\">%L</b></span>"
	    "<span>%s <b id=\"total-quota\">%L</b></span><span>%s <b>%L / %L</b></span>"
	    "</div>", T(r, L_ROWS), tot[0], T(r, L_QUOTA_TOTAL), tot[1],
	    T(r, L_PAGE), f.page, pages);
	h(&r->out, "<table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
	    "<th class=\"num\">%s</th><th>%s</th><th class=\"num\">%s</th>"
	    "<th class=\"num\">%s</th><th>IP</th><th>%s</th></tr></thead><tbody>",
	    T(r, L_TIME), T(r, L_USERNAME), T(r, L_TOKEN_NAME), T(r, L_SERVICE),
	    T(r, L_CHANNEL_ID), T(r, L_TYPE), T(r, L_QUOTA), T(r, L_USE_TIME),
	    T(r, L_CONTENT));
	a[12] = DBI(LOGS_PER_PAGE);
	a[13] = DBI((f.page - 1) * LOGS_PER_PAGE);
	if (table_rows(r, AS_LOGS_PAGE, a, 14, log_row, 10, L_NONE) == -1)
		return error_page(r, 503, L_DB_ERROR, NULL), 503;
	html_init(&q, 4096);
	pager_query(&q, &f);
	pager(r, "/logs", q.b.p ? q.b.p : "", f.page, pages);
	html_free(&q);
	page_end(r);
	return 200;
}
