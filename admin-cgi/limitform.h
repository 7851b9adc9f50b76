#ifndef BLTCY_LIMITFORM_H
#define BLTCY_LIMITFORM_H

/*
 * The limits of a token or a user (bltcy_limits) on its page (limitform.c):
 * the three fields of its form, reading them back, and a list's cell.
 */
#include "admin.h"

struct limit_view {
	long long	 in_flight, tasks, rpm;	/* 0: none */
};

/* The three number fields, in a row of the form being rendered. */
void	 limit_fields(struct req *, const struct limit_view *);
/*
 * The three fields of a form being saved into v: a field sent empty is 0
 * (none), one not sent keeps what v has; problems appended to errs.
 */
void	 limit_read(const struct req *, struct buf *errs, struct limit_view *);
/* 1 when a and b differ. */
int	 limit_changed(const struct limit_view *a, const struct limit_view *b);
/* A list's cell: each limit set, or "none". */
void	 limit_cell(struct req *, const struct limit_view *);

#endif
