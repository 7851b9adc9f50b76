#ifndef BLTCY_BODY_H
#define BLTCY_BODY_H

/*
 * A request body, read whole before anything is forwarded (body.c), so
 * that the task ids it names and its price are known first; the front
 * server has buffered it by then, so this is quick. Up to BODY_HOLD_MAX
 * it stays in memory. A larger one goes to an unlinked file in
 * RELAY_SPOOL_DIR, mapped for the task-id scan and sent from the
 * mapping: a 64 MiB upload costs page cache, not heap, and can be sent
 * again to another channel. held is the body either way, with a NUL
 * after it.
 */

#include <stddef.h>

#include <fcgiapp.h>

#include "coding.h"
#include "util.h"

#define BODY_HOLD_MAX	(64 * 1024)	/* bodies up to this stay in memory */

struct body {
	struct buf	 held;		/* the whole body */
	int		 all;		/* held is the whole body */
	size_t		 len;		/* its length, as it is forwarded */
	int		 spool_fd;	/* a larger body's file, or -1 */
	void		*spool_map;	/* and its mapping */
	size_t		 spool_len;
};

enum body_rc {
	BODY_OK,
	BODY_TOO_LARGE,		/* read or decoded, over RELAY_MAX_BODY */
	BODY_CUT,		/* shorter than its length: the client went away */
	BODY_BAD_CODING,	/* not of the coding it says it is in */
	BODY_ERROR,		/* not kept: out of memory, or the spool (errno) */
};

void		 body_init(struct body *);
/*
 * Read the body of want bytes (-1: to the end of in) in coding c (not
 * BC_OTHER). A body in a content coding the old gateway decodes (gzip,
 * br) is decoded as it is read, into the same places, and is that body
 * from here on: what the task ids, the price and the upstream see (which
 * gets it without Content-Encoding, with its decoded length, len).
 * RELAY_MAX_BODY holds for what is read and for what it decodes to.
 */
enum body_rc	 body_read(struct body *, FCGX_Stream *in, enum body_coding c,
		    long long want);
/* What the body holds (memory, its file, its mapping) given back. */
void		 body_free(struct body *);

#endif
