/*
 * Tasks (bltcy_tasks): the jobs a submit started, what each was charged
 * and how it stands, newest first, 50 a page; filters by user and token
 * (name or id), service, channel, state and the day it was created.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "route.h"

#define TASKS_PER_PAGE	50
#define TIME_MAX	(1LL << 40)

/* The states of 010_prices_tasks.sql, in the order a task goes through. */
const struct task_state task_states[TASK_STATE__MAX] = {
	{ "submitted", L_ST_SUBMITTED, "off" },
	{ "running", L_ST_RUNNING, "off" },
	{ "succeeded", L_ST_SUCCEEDED, "on" },
	{ "failed", L_ST_FAILED, "bad" },
	{ "timeout", L_ST_TIMEOUT, "bad" },
	{ "refunded", L_ST_REFUNDED, "on" },
};

const struct task_state *
task_state_of(const char *name)
{
	size_t	 i;

	for (i = 0; i < TASK_STATE__MAX; i++)
		if (strcmp(task_states[i].name, name) == 0)
			return &task_states[i];
	return NULL;
}

struct filter {
	const char	*user, *token, *service, *state, *from_s, *to_s;
	long long	 user_id, token_id, channel, from, to, page;
};

static void
bind_filter(const struct filter *f, struct dbv *a)
{
	a[0] = DBS(f->user ? f->user : "");
	a[1] = a[0];
	a[2] = DBI(f->user_id);
	a[3] = DBS(f->token ? f->token : "");
	a[4] = a[3];
	a[5] = DBI(f->token_id);
	a[6] = DBS(f->service ? f->service : "");
	a[7] = a[6];
	a[8] = DBI(f->channel);
	a[9] = a[8];
	a[10] = DBS(f->state ? f->state : "");
	a[11] = a[10];
	a[12] = DBI(f->from);
	a[13] = DBI(f->to);
}

static int
totals_row(void *arg, const struct dbv *c, size_t n)
{
	long long	*t = arg;

	t[0] = col_i(&c[0]);
	t[1] = col_i(&c[1]);
	t[2] = col_i(&c[2]);
	return 1;
}

/* "name (#id)", or "#id" when the row is gone. */
static void
who(struct req *r, const char *name, long long id)
{
	if (*name != '\0')
		h(&r->out, "<td>%s <span class=\"muted\">#%L</span></td>", name, id);
	else
		h(&r->out, "<td class=\"muted\">#%L</td>", id);
}

static int
task_row(void *arg, const struct dbv *c, size_t n)
{
	struct req		*r = arg;
	const struct task_state	*st = task_state_of(col_s(&c[9]));
	char			 created[32], upd[32], fin[32];

	fmt_time(col_i(&c[0]), created, sizeof(created));
	fmt_time(col_i(&c[13]), upd, sizeof(upd));
	fmt_time(col_i(&c[14]), fin, sizeof(fin));
	h(&r->out, "<tr data-task=\"%s\"><td class=\"mono\">%s</td><td>%s</td>"
	    "<td class=\"mono task-id\">%s</td>", col_s(&c[2]), created,
	    col_s(&c[1]), col_s(&c[2]));
	who(r, col_s(&c[4]), col_i(&c[3]));
	who(r, col_s(&c[6]), col_i(&c[5]));
	h(&r->out, "<td class=\"num\">%L</td><td>%s</td>", col_i(&c[7]),
	    col_s(&c[8]));
	if (st != NULL)
		h(&r->out, "<td><span class=\"badge %s\" title=\"%s\">%s</span></td>",
		    st->badge, st->name, T(r, st->label));
	else
		h(&r->out, "<td><span class=\"badge off\">%s</span></td>",
		    col_s(&c[9]));
	h(&r->out, "<td class=\"num\">%L</td><td class=\"num\">%L</td>"
	    "<td class=\"wrap\">%s</td><td class=\"mono\">%s<br>%s</td></tr>",
	    col_i(&c[10]), col_i(&c[11]), col_s(&c[12]), upd, fin);
	return 0;
}

/* The filter's query string, for the pager's links. */
static void
pager_query(struct html *q, const struct filter *f)
{
	h(q, "user=%u&token=%u&service=%u&channel=%L&state=%u&created_from=%u"
	    "&created_to=%u", f->user, f->token, f->service, f->channel,
	    f->state, f->from_s, f->to_s);
}

static void
filter_form(struct req *r, const struct filter *f)
{
	size_t		 i;

	h(&r->out, "<form method=\"get\" action=\"%s/tasks\" class=\"filters\">"
	    "<label>%s<input name=\"user\" value=\"%s\"></label>"
	    "<label>%s<input name=\"token\" value=\"%s\"></label>"
	    "<label>%s<select name=\"service\"><option value=\"\">%s</option>",
	    r->base, T(r, L_USER_FILTER), f->user, T(r, L_TOKEN_FILTER),
	    f->token, T(r, L_SERVICE), T(r, L_ALL));
	service_options(r, f->service);
	h(&r->out, "</select></label><label>%s<input name=\"channel\" type=\"number\" "
	    "min=\"0\" value=\"%s\"></label><label>%s<select name=\"state\">"
	    "<option value=\"\">%s</option>", T(r, L_CHANNEL_ID),
	    f->channel ? fv(r, F_CHANNEL) : "", T(r, L_TASK_STATE), T(r, L_ALL));
	for (i = 0; i < TASK_STATE__MAX; i++)
		h(&r->out, f->state && strcmp(f->state, task_states[i].name) == 0 ?
		    "<option value=\"%s\" selected>%s</option>" :
		    "<option value=\"%s\">%s</option>", task_states[i].name,
		    T(r, task_states[i].label));
	h(&r->out, "</select></label><label>%s<input name=\"created_from\" type=\"date\" "
	    "value=\"%s\"></label><label>%s<input name=\"created_to\" type=\"date\" "
	    "value=\"%s\"></label><div><button type=\"submit\">%s</button></div></form>",
	    T(r, L_CREATED_FROM), f->from_s, T(r, L_CREATED_TO), f->to_s,
	    T(r, L_FILTER));
}

/* A name or an id: the id when s is a number, else -1 (no row's id). */
static long long
id_of(const char *s)
{
	long long	 id;

	return s != NULL && parse_ll(s, 1, INT64_MAX, &id) == 0 ? id : -1;
}

int
pg_tasks(struct req *r)
{
	struct filter	 f;
	struct buf	 errs;
	struct html	 q;
	struct dbv	 a[16];
	long long	 tot[3] = { 0, 0, 0 }, pages;

	memset(&f, 0, sizeof(f));
	buf_init(&errs, ERRS_MAX);
	f.user = field_text(r, &errs, F_USER, L_USER_FILTER, 0);
	f.token = field_text(r, &errs, F_TOKEN, L_TOKEN_FILTER, 0);
	f.service = field_text(r, &errs, F_SERVICE, L_SERVICE, 0);
	f.state = field_text(r, &errs, F_STATE, L_TASK_STATE, 0);
	if (f.state != NULL && task_state_of(f.state) == NULL) {
		buf_printf(&errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, L_TASK_STATE));
		f.state = NULL;
	}
	f.user_id = id_of(f.user);
	f.token_id = id_of(f.token);
	f.channel = field_int(r, &errs, F_CHANNEL, L_CHANNEL_ID, 0, 0, INT64_MAX);
	f.page = field_int(r, &errs, F_PAGE, L_PAGE, 1, 1, 1000000);
	f.from_s = field_text(r, &errs, F_DAY_FROM, L_CREATED_FROM, 0);
	f.to_s = field_text(r, &errs, F_DAY_TO, L_CREATED_TO, 0);
	f.from = 0;
	f.to = TIME_MAX;
	/* from the first second of one day to the end of the other */
	if (parse_date(f.from_s, 0, &f.from) == -1)
		buf_printf(&errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, L_CREATED_FROM));
	if (parse_date(f.to_s, 1, &f.to) == -1)
		buf_printf(&errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, L_CREATED_TO));

	page_begin(r, L_TASKS);
	if (errs.len > 0)
		msg_box(r, 0, errs.p);
	buf_free(&errs);
	filter_form(r, &f);
	bind_filter(&f, a);
	if (db_run(r->db, AS_TASKS_TOTAL, a, 14, totals_row, tot, NULL) != DB_OK)
		return error_page(r, 503, L_DB_ERROR, NULL), 503;
	pages = tot[0] == 0 ? 1 : (tot[0] + TASKS_PER_PAGE - 1) / TASKS_PER_PAGE;
	h(&r->out, "<div class=\"totals\"><span>%s <b id=\"total-rows\">%L</b></span>"
	    "<span>%s <b id=\"total-quota\">%L</b></span>"
	    "<span>%s <b id=\"total-refunded\">%L</b></span>"
	    "<span>%s <b>%L / %L</b></span></div>", T(r, L_ROWS), tot[0],
	    T(r, L_CHARGED), tot[1], T(r, L_REFUNDED_QUOTA), tot[2],
	    T(r, L_PAGE), f.page, pages);
	h(&r->out, "<table id=\"tasks\"><thead><tr><th>%s</th><th>%s</th><th>%s</th>"
	    "<th>%s</th><th>%s</th><th class=\"num\">%s</th><th>%s</th><th>%s</th>"
	    "<th class=\"num\">%s</th><th class=\"num\">%s</th><th>%s</th>"
	    "<th>%s</th></tr></thead><tbody>", T(r, L_CREATED), T(r, L_SERVICE),
	    T(r, L_TASK_ID), T(r, L_USERNAME), T(r, L_TOKEN_NAME),
	    T(r, L_CHANNEL_ID), T(r, L_MODEL), T(r, L_TASK_STATE),
	    T(r, L_CHARGED), T(r, L_REFUNDED_QUOTA), T(r, L_REASON),
	    T(r, L_UPDATED));
	a[14] = DBI(TASKS_PER_PAGE);
	a[15] = DBI((f.page - 1) * TASKS_PER_PAGE);
	if (table_rows(r, AS_TASKS_PAGE, a, 16, task_row, 12, L_NONE) == -1)
		return error_page(r, 503, L_DB_ERROR, NULL), 503;
	html_init(&q, 4096);
	pager_query(&q, &f);
	pager(r, "/tasks", q.b.p ? q.b.p : "", f.page, pages);
	html_free(&q);
	page_end(r);
	return 200;
}
