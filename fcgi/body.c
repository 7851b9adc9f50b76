#include <sys/mman.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "body.h"
#include "config.h"

/* Where body_read puts the body as it is forwarded (body_put). */
struct body_out {
	struct body	*b;
	size_t		 len;		/* bytes so far */
	size_t		 max;		/* RELAY_MAX_BODY */
	int		 too_large;
};

static int	 body_put(void *, const char *, size_t);
static int	 write_all(int, const char *, size_t);
static int	 spool_open(struct body *);
static int	 spool_map(struct body *, size_t);

void
body_init(struct body *b)
{
	memset(b, 0, sizeof(*b));
	buf_init(&b->held, 0);
	b->spool_fd = -1;
}

/*
 * The body is read to want, or to the end of in; read while encoded, it
 * is decoded as it comes (coding.c) into body_put. Every way it can
 * fail is told apart, in this order: too large, not kept, cut short, not
 * of its coding. errno is set for BODY_ERROR.
 */
enum body_rc
body_read(struct body *b, FCGX_Stream *in, enum body_coding c, long long want)
{
	char		 tmp[16384];
	struct body_out	 o;
	struct body_dec	*dec = NULL;
	enum dec_rc	 drc = DEC_OK;
	long long	 got = 0;
	size_t		 room;
	int		 n;

	memset(&o, 0, sizeof(o));
	o.b = b;
	o.max = (size_t)cfg_i(CFG_RELAY_MAX_BODY);
	buf_init(&b->held, BODY_HOLD_MAX);
	b->all = 1;
	if (c != BC_IDENTITY && (dec = body_dec_new(c)) == NULL) {
		errno = ENOMEM;
		return BODY_ERROR;
	}
	while (want < 0 || got < want) {
		room = want < 0 || want - got > (long long)sizeof(tmp) ?
		    sizeof(tmp) : (size_t)(want - got);
		if ((n = FCGX_GetStr(tmp, (int)room, in)) <= 0)
			break;
		got += n;
		if (dec == NULL) {
			if (body_put(&o, tmp, (size_t)n) == -1)
				drc = DEC_SINK;
		} else if ((size_t)got > o.max) {	/* encoded, and too long */
			o.too_large = 1;
			drc = DEC_SINK;
		} else
			drc = body_dec_feed(dec, tmp, (size_t)n, body_put, &o);
		if (drc != DEC_OK)
			break;
	}
	/* an empty body decodes to nothing, whatever it says it is in */
	if (drc == DEC_OK && dec != NULL && got > 0)
		drc = body_dec_end(dec);
	body_dec_free(dec);
	if (o.too_large)
		return BODY_TOO_LARGE;
	if (drc == DEC_SINK)
		return BODY_ERROR;
	if (drc == DEC_NOMEM) {
		errno = ENOMEM;
		return BODY_ERROR;
	}
	if (want >= 0 && got < want)
		return BODY_CUT;
	if (drc == DEC_BAD)
		return BODY_BAD_CODING;
	b->len = o.len;
	if (b->spool_fd != -1 && spool_map(b, o.len) == -1)
		return BODY_ERROR;
	return BODY_OK;
}

void
body_free(struct body *b)
{
	if (b->spool_map != NULL) {
		munmap(b->spool_map, b->spool_len);
		memset(&b->held, 0, sizeof(b->held));
	}
	if (b->spool_fd != -1)
		close(b->spool_fd);
	buf_free(&b->held);
}

/*
 * n more bytes of the body as it is forwarded: into held up to
 * BODY_HOLD_MAX, then the spool file. 0, or -1 when it would pass
 * RELAY_MAX_BODY (too_large) or could not be kept (errno).
 */
static int
body_put(void *arg, const char *p, size_t n)
{
	struct body_out	*o = arg;
	struct body	*b = o->b;

	if (n > o->max - o->len) {
		o->too_large = 1;
		return -1;
	}
	if (b->spool_fd == -1 && n <= BODY_HOLD_MAX - b->held.len) {
		if (buf_add(&b->held, p, n) == -1)
			return -1;
	} else if ((b->spool_fd == -1 && spool_open(b) == -1) ||
	    write_all(b->spool_fd, p, n) == -1)
		return -1;
	o->len += n;
	return 0;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* An unlinked file for a body over BODY_HOLD_MAX, with what is held first. */
static int
spool_open(struct body *b)
{
	const char	*dir = cfg_s(CFG_RELAY_SPOOL_DIR);
	char		 path[4096];
	int		 fd;

	if ((fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600)) == -1) {
		/* a file system without O_TMPFILE */
		if (snprintf(path, sizeof(path), "%s/bltcy-body.XXXXXX", dir) >=
		    (int)sizeof(path) || (fd = mkostemp(path, O_CLOEXEC)) == -1)
			return -1;
		unlink(path);
	}
	b->spool_fd = fd;
	if (b->held.len > 0 && write_all(fd, b->held.p, b->held.len) == -1)
		return -1;
	buf_free(&b->held);
	return 0;
}

/*
 * Map the spooled body with one NUL after it, so that it reads as the
 * held buffer does.
 */
static int
spool_map(struct body *b, size_t len)
{
	void	*m;

	if (ftruncate(b->spool_fd, (off_t)len + 1) == -1)
		return -1;
	m = mmap(NULL, len + 1, PROT_READ, MAP_SHARED, b->spool_fd, 0);
	if (m == MAP_FAILED)
		return -1;
	b->spool_map = m;
	b->spool_len = len + 1;
	b->held.p = m;
	b->held.len = len;
	b->held.cap = b->held.max = 0;
	return 0;
}
