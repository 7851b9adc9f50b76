#ifndef BLTCY_REPLY_H
#define BLTCY_REPLY_H

/*
 * What a request answers (reply.c): the page's frame, the pieces pages
 * share, the one way to fail a page, and sending it all with the
 * security headers.
 */
#include "admin.h"

void	 add_header(struct req *, const char *name, const char *value);
/* A 303's Location: path under the base, with ?ok=flash when one. */
void	 redirect(struct req *, const char *path, int flash);

/*
 * The one way a page fails: what was rendered is dropped for a page
 * titled title (and detail, when not NULL) linking back home. Returns
 * status, for the page to return.
 */
int	 page_fail(struct req *, int status, enum label title,
	    const char *detail);

void	 page_begin(struct req *, enum label title);
void	 page_end(struct req *);
void	 msg_box(struct req *, int ok, const char *text);
void	 csrf_field(struct req *);
/* A one-button POST form for a row: action path, row id, status (0: none). */
void	 post_button(struct req *, const char *action, long long id,
	    int status, enum label, int danger);
/*
 * Rows of statement stmt of r->db through fn (which gets r as its arg),
 * a row saying `empty` when there are none, then the table's end. -1 db
 * error.
 */
int	 table_rows(struct req *, int stmt, const struct dbv *, size_t,
	    db_row_fn, int cols, enum label empty);
/*
 * The links to the page before and after of a paged list at path,
 * keeping its filter: query is "k=v&k=v" with the values %u-encoded.
 */
void	 pager(struct req *, const char *path, const char *query,
	    long long page, long long last);
/* An <option> for each configured service, selected the one named. */
void	 service_options(struct req *, const char *selected);
void	 fmt_time(long long t, char *out, size_t outsz);
/* "a,b" -> "a\nb": a stored list shown one item per line. */
void	 list_lines(const char *list, char *out, size_t outsz);

/* The status line, headers and what was rendered, to stdout. */
void	 reply_send(struct req *, int status);

#endif
