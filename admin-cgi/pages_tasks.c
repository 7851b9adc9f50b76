/*
 * Tasks (bltcy_tasks): the jobs a submit started, what each was charged
 * and how it stands, newest first, 50 a page; filters by user and token
 * (name or id), service, channel, state and the day it was created.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "list.h"
#include "reply.h"
#include "sql.h"

/* The filters, in the order of the form. */
enum {
	TF_USER, TF_TOKEN, TF_SERVICE, TF_CHANNEL, TF_STATE, TF_FROM, TF_TO
};

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

static int
state_known(const char *name)
{
	return task_state_of(name) != NULL;
}

static void
state_options(struct req *r, const char *cur)
{
	size_t	 i;

	for (i = 0; i < TASK_STATE__MAX; i++)
		h(&r->out, cur != NULL && strcmp(cur, task_states[i].name) == 0 ?
		    "<option value=\"%s\" selected>%s</option>" :
		    "<option value=\"%s\">%s</option>", task_states[i].name,
		    T(r, task_states[i].label));
}

static const struct list_filter filters[] = {
	[TF_USER] = { F_USER, L_USER_FILTER, LI_TEXT },
	[TF_TOKEN] = { F_TOKEN, L_TOKEN_FILTER, LI_TEXT },
	[TF_SERVICE] = { F_SERVICE, L_SERVICE, LI_SELECT, .any = "",
	    .opts = service_options },
	[TF_CHANNEL] = { F_CHANNEL, L_CHANNEL_ID, LI_NUMBER, .max = INT64_MAX },
	[TF_STATE] = { F_STATE, L_TASK_STATE, LI_SELECT, .any = "",
	    .opts = state_options, .known = state_known },
	/* from the first second of one day to the end of the other */
	[TF_FROM] = { F_DAY_FROM, L_CREATED_FROM, LI_DATE },
	[TF_TO] = { F_DAY_TO, L_CREATED_TO, LI_DATE, .end = 1 },
};

/* A name or an id: the id when s is a number, else -1 (no row's id). */
static long long
id_of(const char *s)
{
	long long	 id;

	return s != NULL && parse_ll(s, 1, INT64_MAX, &id) == 0 ? id : -1;
}

/*
 * Filters as the logs': '' or 0 means "any"; a user or token is matched
 * by name or by id (sql.c AS_TASKS_*).
 */
static size_t
bind(struct list_vals *v, struct dbv *a)
{
	a[0] = DBS(v->s[TF_USER] ? v->s[TF_USER] : "");
	a[1] = a[0];
	a[2] = DBI(id_of(v->s[TF_USER]));
	a[3] = DBS(v->s[TF_TOKEN] ? v->s[TF_TOKEN] : "");
	a[4] = a[3];
	a[5] = DBI(id_of(v->s[TF_TOKEN]));
	a[6] = DBS(v->s[TF_SERVICE] ? v->s[TF_SERVICE] : "");
	a[7] = a[6];
	a[8] = DBI(v->n[TF_CHANNEL]);
	a[9] = a[8];
	a[10] = DBS(v->s[TF_STATE] ? v->s[TF_STATE] : "");
	a[11] = a[10];
	a[12] = DBI(v->n[TF_FROM]);
	a[13] = DBI(v->n[TF_TO]);
	return 14;
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

static const struct list_total totals[] = {
	{ L_ROWS, "total-rows" },
	{ L_CHARGED, "total-quota" },
	{ L_REFUNDED_QUOTA, "total-refunded" },
};

static const struct list_col cols[] = {
	{ L_CREATED, NULL, 0 },
	{ L_SERVICE, NULL, 0 },
	{ L_TASK_ID, NULL, 0 },
	{ L_USERNAME, NULL, 0 },
	{ L_TOKEN_NAME, NULL, 0 },
	{ L_CHANNEL_ID, NULL, 1 },
	{ L_MODEL, NULL, 0 },
	{ L_TASK_STATE, NULL, 0 },
	{ L_CHARGED, NULL, 1 },
	{ L_REFUNDED_QUOTA, NULL, 1 },
	{ L_REASON, NULL, 0 },
	{ L_UPDATED, NULL, 0 },
};

static const struct list_page tasks = {
	.path = "/tasks",
	.title = L_TASKS,
	.filters = filters,
	.nfilters = sizeof(filters) / sizeof(filters[0]),
	.totals = totals,
	.ntotals = sizeof(totals) / sizeof(totals[0]),
	.table_id = "tasks",
	.cols = cols,
	.ncols = sizeof(cols) / sizeof(cols[0]),
	.total_stmt = AS_TASKS_TOTAL,
	.page_stmt = AS_TASKS_PAGE,
	.bind = bind,
	.row = task_row,
	.per_page = 50,
};

int
pg_tasks(struct req *r)
{
	return list_show(r, &tasks);
}
