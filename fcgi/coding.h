#ifndef BLTCY_CODING_H
#define BLTCY_CODING_H

/*
 * Request bodies in a content coding (Content-Encoding), decoded as they
 * are read, the way the old gateway does before it reads them: gzip and
 * br. Nothing is held here but the decoder's own state; the decoded bytes
 * go to the caller's sink as they come, so a body is never allocated at
 * the size it declares or decodes to.
 */

#include <stddef.h>

enum body_coding {
	BC_IDENTITY,	/* no header, an empty one, or "identity" */
	BC_GZIP,	/* "gzip" or "x-gzip" */
	BC_BR,		/* "br" */
	BC_OTHER,	/* anything else, a list of codings included */
};

/* The coding a Content-Encoding value (NULL: none) names; any case. */
enum body_coding body_coding_of(const char *);

enum dec_rc {
	DEC_OK,
	DEC_BAD,	/* not of its coding, or bytes after its end */
	DEC_SINK,	/* the sink said stop */
	DEC_NOMEM,
};

/* Takes n decoded bytes: 0, or -1 to stop the decoding (DEC_SINK). */
typedef int (*dec_sink)(void *arg, const char *p, size_t n);

struct body_dec;

/* A decoder of c (BC_GZIP or BC_BR), or NULL (out of memory). */
struct body_dec	*body_dec_new(enum body_coding c);
/* The next n encoded bytes, decoded into sink as far as they go. */
enum dec_rc	 body_dec_feed(struct body_dec *, const char *in, size_t n,
		    dec_sink sink, void *arg);
/* The input is over: DEC_OK if it ended where a stream (or, for gzip,
 * the last of its members) ends, DEC_BAD if it was cut short. */
enum dec_rc	 body_dec_end(const struct body_dec *);
void		 body_dec_free(struct body_dec *);

#endif
