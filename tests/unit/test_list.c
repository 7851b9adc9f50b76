/*
 * admin-cgi/list.c: a list page's filters read from a query string (the
 * values, and the problems in the order they are listed), the arguments
 * they bind and the query string the pager keeps; on the tasks page's
 * description.
 */
#include <stdint.h>

#include "unit.h"
#include "../../admin-cgi/form.c"
#include "../../admin-cgi/i18n.c"
#include "../../admin-cgi/request.c"
#include "../../admin-cgi/reply.c"
#include "../../admin-cgi/sql.c"
#include "../../admin-cgi/list.c"
#include "../../admin-cgi/pages_tasks.c"

/* The filters of a GET with query string qs, in English. */
static void
read_qs(const char *qs, struct req *r, struct list_vals *v, struct buf *errs)
{
	memset(r, 0, sizeof(*r));
	r->method = M_GET;
	r->lang = LANG_EN;
	if (form_parse(&r->q, qs, strlen(qs)) == -1)
		T_OK(!"form_parse");
	buf_init(errs, ERRS_MAX);
	list_read(r, &tasks, v, errs);
}

static void
test_list_absent(void)
{
	struct req	 r;
	struct list_vals v;
	struct buf	 errs;
	struct html	 q;

	read_qs("", &r, &v, &errs);
	T_INT(errs.len, 0);
	T_INT(v.page, 1);
	T_OK(v.s[TF_USER] == NULL);
	T_INT(v.n[TF_CHANNEL], 0);
	T_INT(v.n[TF_FROM], 0);
	T_INT(v.n[TF_TO], TIME_MAX);
	html_init(&q, 4096);
	list_query(&q, &tasks, &v);
	T_STR(q.b.p, "user=&token=&service=&channel=0&state=&created_from="
	    "&created_to=");
	html_free(&q);
	buf_free(&errs);
	form_free(&r.q);
}

static void
test_list_values(void)
{
	struct req	 r;
	struct list_vals v;
	struct buf	 errs;
	struct html	 q;
	struct dbv	 a[LIST_ARGS_MAX];
	long long	 to;

	read_qs("user=7&token=k1&state=refunded&channel=12&page=3"
	    "&created_to=2025-01-02", &r, &v, &errs);
	T_INT(errs.len, 0);
	T_STR(v.s[TF_USER], "7");
	T_STR(v.s[TF_STATE], "refunded");
	T_INT(v.n[TF_CHANNEL], 12);
	T_INT(v.page, 3);
	T_INT(parse_date("2025-01-02", 1, &to), 0);
	T_INT(v.n[TF_TO], to);		/* the end of that day */
	T_INT(tasks.bind(&v, a), 14);
	T_INT(a[2].i, 7);		/* a user by id */
	T_INT(a[5].i, -1);		/* "k1" is no id */
	T_INT(a[8].i, 12);
	T_INT(a[13].i, to);
	html_init(&q, 4096);
	list_query(&q, &tasks, &v);
	T_STR(q.b.p, "user=7&token=k1&service=&channel=12&state=refunded"
	    "&created_from=&created_to=2025-01-02");
	html_free(&q);
	buf_free(&errs);
	form_free(&r.q);
}

static void
test_list_problems(void)
{
	struct req	 r;
	struct list_vals v;
	struct buf	 errs;

	/* texts, integers, the page, the days, then what the days say */
	read_qs("created_from=2025-13-01&page=0&channel=-1&state=bogus"
	    "&created_to=x", &r, &v, &errs);
	T_STR(errs.p, "Invalid value: State\n"
	    "Invalid value: Channel ID (0 … 9223372036854775807)\n"
	    "Invalid value: Page (1 … 1000000)\n"
	    "Invalid value: Created to\n"
	    "Invalid value: Created from\n");
	T_OK(v.s[TF_STATE] == NULL);	/* refused: neither bound nor kept */
	T_INT(v.n[TF_CHANNEL], 0);
	T_INT(v.page, 1);
	T_INT(v.n[TF_FROM], 0);
	T_INT(v.n[TF_TO], TIME_MAX);
	buf_free(&errs);
	form_free(&r.q);
}

UNIT_MAIN("list", test_list_absent, test_list_values, test_list_problems)
