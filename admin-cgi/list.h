#ifndef BLTCY_LIST_H
#define BLTCY_LIST_H

/*
 * A paged list with filters (list.c): the logs and the tasks. A page
 * describes its filters, totals and columns; list_show reads the
 * filters, counts, and renders the filter form, the totals, one page of
 * rows and the pager.
 */
#include "admin.h"

#define LIST_FILTERS_MAX	8
#define LIST_TOTALS_MAX		4
#define LIST_ARGS_MAX		24	/* a statement's arguments */

enum list_input {
	LI_TEXT,	/* <input>: any text */
	LI_NUMBER,	/* <input type="number" min="0">: an integer */
	LI_SELECT,	/* <select>: what opts writes */
	LI_DATETIME,	/* <input type="datetime-local">: a moment */
	LI_DATE,	/* <input type="date">: a day */
};

struct list_filter {
	enum field	 field;
	enum label	 label;
	enum list_input	 input;
	int		 num;		/* an integer from 0 to max (LI_NUMBER) */
	long long	 max;
	/* LI_SELECT: a first option of this value saying "all" (or none) */
	const char	*any;
	/* LI_SELECT: the options, cur (the value now, or NULL) selected */
	void		(*opts)(struct req *, const char *cur);
	/* a text: refused (and then absent) unless known (NULL: any) */
	int		(*known)(const char *);
	int		 end;		/* a moment or day: the range's end */
};

/*
 * The filters' values, by a filter's index: s the text as sent (NULL
 * when absent or refused), n an integer one's value, or a moment or day
 * as a time (0, or for a range's end far in the future, when absent).
 */
struct list_vals {
	const char	*s[LIST_FILTERS_MAX];
	long long	 n[LIST_FILTERS_MAX];
	long long	 page;
	char		 aux[64];	/* for bind: a value made from others */
};

struct list_col {
	enum label	 label;
	const char	*text;		/* instead of the label, when not NULL */
	int		 num;		/* a right-aligned number */
};

/* The first total is the count of rows; an id for the tests to find. */
struct list_total {
	enum label	 label;
	const char	*id;
};

struct list_page {
	const char		*path;		/* "/logs" */
	enum label		 title;
	const struct list_filter *filters;
	size_t			 nfilters;
	const struct list_total	*totals;
	size_t			 ntotals;
	const char		*table_id;	/* NULL: none */
	const struct list_col	*cols;
	size_t			 ncols;
	/*
	 * total_stmt answers the totals in their order, page_stmt the rows
	 * for row; both take the arguments bind writes (it returns how
	 * many), page_stmt then a LIMIT and an OFFSET.
	 */
	int			 total_stmt, page_stmt;
	size_t			(*bind)(struct list_vals *, struct dbv *);
	db_row_fn		 row;		/* gets the struct req */
	long long		 per_page;
};

/* The whole page: its status. */
int	 list_show(struct req *, const struct list_page *);

#endif
