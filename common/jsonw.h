#ifndef BLTCY_JSONW_H
#define BLTCY_JSONW_H

#include "util.h"

/*
 * Writing JSON into a capped buffer. Each returns 0, or -1 when the
 * buffer's cap is reached.
 */

/* The characters of s, escaped for inside a JSON string (no quotes). */
int	 json_escape(struct buf *, const char *s);

/* s as a quoted JSON string. */
int	 json_string(struct buf *, const char *s);

#endif
