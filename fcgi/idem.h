#ifndef BLTCY_IDEM_H
#define BLTCY_IDEM_H

/*
 * Idempotent submits: a non-GET request with an Idempotency-Key header is
 * forwarded and charged once per token and key for IDEM_TTL seconds. The
 * first takes the key (a bltcy_idempotency row, in flight); a repeat
 * waits for its answer and gets that answer again, or 409 while it is
 * still in flight after IDEMPOTENCY_WAIT, or 422 when its method, path,
 * query or body differ. Answers of the gateway's own, upstream 5xx and
 * the upstream's "try again" 4xx (idem_keeps) free the key again, so a
 * retry is forwarded anew.
 */

#include <stddef.h>

#include "util.h"

struct db;

#define IDEM_KEY_MAX	255		/* bytes, printable ASCII */
#define IDEM_TTL	86400		/* seconds a key is kept */
#define IDEM_BODY_MAX	(64 * 1024)	/* an answer body kept for repeats */

enum idem_rc {
	IDEM_FIRST,	/* the key is this request's: forward it */
	IDEM_REPLAY,	/* the first's answer is in the struct: send it */
	IDEM_BUSY,	/* the first is still in flight: 409 */
	IDEM_MISMATCH,	/* the key was used for another request: 422 */
	IDEM_UNKEPT,	/* the first's answer was too large to keep: 409 */
	IDEM_BAD_KEY,	/* the header is no usable key: 400 */
	IDEM_DB,	/* the database failed: 503 */
};

struct idem {
	int		 held;		/* this request holds the key */
	long long	 token_id;
	char		 key[IDEM_KEY_MAX + 1];
	char		 hash[65];	/* of method, path, query and body */
	char		 owner[96];	/* host and request id */
	/* the first's answer (IDEM_REPLAY) */
	int		 status;
	struct buf	 headers;	/* header lines, each ending CRLF */
	struct buf	 body;
};

/*
 * Take the key for this request, or learn what the first of it did. It
 * waits (up to IDEMPOTENCY_WAIT seconds) while the first is in flight.
 * idem_free after any outcome.
 */
enum idem_rc	 idem_begin(struct db *, struct idem *, long long token_id,
		    const char *key, const char *owner, const char *method,
		    const char *path, size_t pathlen, const char *query,
		    const char *body, size_t bodylen);

/* 1: an upstream answer with this status is kept for repeats. */
int		 idem_keeps(int status);

/*
 * The upstream answered the request that holds the key: keep status,
 * header lines and body for repeats (complete: the body is whole), or,
 * for a status idem_keeps refuses, give the key up.
 */
void		 idem_keep(struct db *, struct idem *, int status,
		    const char *headers, size_t hlen, const char *body,
		    size_t blen, int complete);

/* The request that holds the key ends without an answer to keep. */
void		 idem_release(struct db *, struct idem *);

void		 idem_free(struct idem *);

#endif
