#ifndef BLTCY_HTML_H
#define BLTCY_HTML_H

#include <stddef.h>

#include "util.h"

/*
 * The one writer of HTML. Markup comes only from the format string, which
 * is always a string literal of the program; every value reaches the page
 * through a conversion that escapes it:
 *
 *   %s   const char *, text or attribute value: & < > " ' escaped
 *   %d   int
 *   %L   long long
 *   %u   const char *, percent-encoded for a URL query value (then safe
 *        in an attribute as is)
 *   %%   a percent sign
 *
 * A NULL %s or %u prints nothing. Output goes to a capped buffer; once the
 * cap is hit the writer records the error and ignores further output, and
 * the caller answers 500 instead of a truncated page.
 */
struct html {
	struct buf	 b;
	int		 err;
};

void	 html_init(struct html *, size_t max);
void	 html_free(struct html *);
void	 h(struct html *, const char *fmt, ...);

/* Escaped text of n bytes (a value that is not NUL-terminated). */
void	 html_textn(struct html *, const char *, size_t);

/*
 * Escape s for HTML into out (the fuzz and unit tests' entry, and for
 * values that leave through a header). Returns 0, -1 when out is small.
 */
int	 html_escape(const char *s, char *out, size_t outsz);

#endif
