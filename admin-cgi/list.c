/*
 * A paged list with filters, as its page describes it (list.h): the
 * filters read from the query string, the problems with them above the
 * form, the totals of the filtered rows, one page of rows and links to
 * the pages before and after that keep the filter.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "list.h"
#include "reply.h"
#include "request.h"
#include "sql.h"

#define TIME_MAX	(1LL << 40)
#define PAGES_MAX	1000000

static int
is_time(const struct list_filter *lf)
{
	return lf->input == LI_DATETIME || lf->input == LI_DATE;
}

static int
is_num(const struct list_filter *lf)
{
	return lf->input == LI_NUMBER || lf->num;
}

/*
 * The filters into v, problems into errs: in this order, which is the
 * order their lines are listed in: the texts, the integers, the page,
 * the moments and days, then what these say.
 */
static void
list_read(const struct req *r, const struct list_page *lp,
    struct list_vals *v, struct buf *errs)
{
	const struct list_filter	*lf;
	size_t				 i;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < lp->nfilters; i++) {
		lf = &lp->filters[i];
		if (is_time(lf) || is_num(lf))
			continue;
		v->s[i] = field_text(r, errs, lf->field, lf->label, 0);
		if (v->s[i] != NULL && lf->known != NULL && !lf->known(v->s[i])) {
			buf_printf(errs, "%s%s\n", T(r, L_FIELD_BAD),
			    T(r, lf->label));
			v->s[i] = NULL;
		}
	}
	for (i = 0; i < lp->nfilters; i++) {
		lf = &lp->filters[i];
		if (is_num(lf))
			v->n[i] = field_int(r, errs, lf->field, lf->label, 0, 0,
			    lf->max);
	}
	v->page = field_int(r, errs, F_PAGE, L_PAGE, 1, 1, PAGES_MAX);
	for (i = 0; i < lp->nfilters; i++)
		if (is_time(&lp->filters[i]))
			v->s[i] = field_text(r, errs, lp->filters[i].field,
			    lp->filters[i].label, 0);
	for (i = 0; i < lp->nfilters; i++) {
		lf = &lp->filters[i];
		if (!is_time(lf))
			continue;
		v->n[i] = lf->end ? TIME_MAX : 0;
		if ((lf->input == LI_DATETIME ?
		    parse_datetime(v->s[i], &v->n[i]) :
		    parse_date(v->s[i], lf->end, &v->n[i])) == -1)
			buf_printf(errs, "%s%s\n", T(r, L_FIELD_BAD),
			    T(r, lf->label));
	}
}

/* The filter as a query string, for the pager's links. */
static void
list_query(struct html *q, const struct list_page *lp,
    const struct list_vals *v)
{
	size_t	 i;

	for (i = 0; i < lp->nfilters; i++) {
		h(q, i > 0 ? "&%s=" : "%s=", fields[lp->filters[i].field].name);
		if (is_num(&lp->filters[i]))
			h(q, "%L", v->n[i]);
		else
			h(q, "%u", v->s[i]);
	}
}

static void
filter_form(struct req *r, const struct list_page *lp,
    const struct list_vals *v)
{
	const struct list_filter	*lf;
	const char			*name;
	char				 cur[24];
	size_t				 i;

	h(&r->out, "<form method=\"get\" action=\"%s%s\" class=\"filters\">",
	    r->base, lp->path);
	for (i = 0; i < lp->nfilters; i++) {
		lf = &lp->filters[i];
		name = fields[lf->field].name;
		h(&r->out, "<label>%s", T(r, lf->label));
		switch (lf->input) {
		case LI_TEXT:
			h(&r->out, "<input name=\"%s\" value=\"%s\">", name,
			    v->s[i]);
			break;
		case LI_NUMBER:
			h(&r->out, "<input name=\"%s\" type=\"number\" min=\"0\" "
			    "value=\"%s\">", name, v->n[i] ? fv(r, lf->field) : "");
			break;
		case LI_SELECT:
			h(&r->out, "<select name=\"%s\">", name);
			if (lf->any != NULL)
				h(&r->out, "<option value=\"%s\">%s</option>",
				    lf->any, T(r, L_ALL));
			snprintf(cur, sizeof(cur), "%lld", v->n[i]);
			lf->opts(r, lf->num ? cur : v->s[i]);
			h(&r->out, "</select>");
			break;
		case LI_DATETIME:
		case LI_DATE:
			h(&r->out, "<input name=\"%s\" type=\"%s\" value=\"%s\">",
			    name, lf->input == LI_DATE ? "date" :
			    "datetime-local", v->s[i]);
			break;
		}
		h(&r->out, "</label>");
	}
	h(&r->out, "<div><button type=\"submit\">%s</button></div></form>",
	    T(r, L_FILTER));
}

static int
totals_row(void *arg, const struct dbv *c, size_t n)
{
	long long	*t = arg;
	size_t		 i;

	for (i = 0; i < n && i < LIST_TOTALS_MAX; i++)
		t[i] = col_i(&c[i]);
	return 1;
}

int
list_show(struct req *r, const struct list_page *lp)
{
	struct list_vals	 v;
	struct buf		 errs;
	struct html		 q;
	struct dbv		 a[LIST_ARGS_MAX];
	long long		 tot[LIST_TOTALS_MAX] = { 0 }, pages;
	size_t			 i, n;

	buf_init(&errs, ERRS_MAX);
	list_read(r, lp, &v, &errs);
	page_begin(r, lp->title);
	if (errs.len > 0)
		msg_box(r, 0, errs.p);
	buf_free(&errs);
	filter_form(r, lp, &v);
	n = lp->bind(&v, a);
	if (db_run(r->db, (size_t)lp->total_stmt, a, n, totals_row, tot,
	    NULL) != DB_OK)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	pages = tot[0] == 0 ? 1 : (tot[0] + lp->per_page - 1) / lp->per_page;
	h(&r->out, "<div class=\"totals\">");
	for (i = 0; i < lp->ntotals; i++)
		h(&r->out, "<span>%s <b id=\"%s\">%L</b></span>",
		    T(r, lp->totals[i].label), lp->totals[i].id, tot[i]);
	h(&r->out, "<span>%s <b>%L / %L</b></span></div>", T(r, L_PAGE), v.page,
	    pages);
	if (lp->table_id != NULL)
		h(&r->out, "<table id=\"%s\"><thead><tr>", lp->table_id);
	else
		h(&r->out, "<table><thead><tr>");
	for (i = 0; i < lp->ncols; i++)
		h(&r->out, lp->cols[i].num ? "<th class=\"num\">%s</th>" :
		    "<th>%s</th>", lp->cols[i].text != NULL ? lp->cols[i].text :
		    T(r, lp->cols[i].label));
	h(&r->out, "</tr></thead><tbody>");
	a[n] = DBI(lp->per_page);
	a[n + 1] = DBI((v.page - 1) * lp->per_page);
	if (table_rows(r, lp->page_stmt, a, n + 2, lp->row, (int)lp->ncols,
	    L_NONE) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	html_init(&q, 4096);
	list_query(&q, lp, &v);
	pager(r, lp->path, q.b.p ? q.b.p : "", v.page, pages);
	html_free(&q);
	page_end(r);
	return 200;
}
