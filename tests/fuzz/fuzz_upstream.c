/*
 * libFuzzer target for the relay's side of an upstream answer: the status
 * line and header lines through on_header and emit_headers, the body
 * through on_body into a FastCGI stream, the decoding of the captured
 * copy in every content coding the relay reads, and the task id readers
 * of answers and requests over it. Sources are included whole (make fuzz
 * compiles each target alone).
 *
 * The input is one control byte, then an answer as an upstream sends
 * it: header lines up to an empty line, then the body. The control byte
 * picks the coding: as given (the header lines may name any), or the
 * body gzip, zlib or raw deflate compressed here and labelled so, in
 * which case the decoded capture must equal the body.
 *
 * What must hold: the header block the client gets is CRLF lines of
 * "Name: value" with no other CR, LF or control byte, holds no
 * Set-Cookie and exactly one X-Content-Type-Options and one
 * Content-Security-Policy, ends with X-Request-Id; the body reaches the
 * client byte for byte.
 *
 *   make fuzz && build-fuzz/fuzz_upstream -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.c"
#include "../../common/log.c"
#include "../../common/config.c"
#include "../../common/netaddr.c"
#include "../../fcgi/upstream.c"
#include "../../fcgi/shared.c"
#include "../../common/jsonread.c"
#include "../../fcgi/taskids.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define OUT_MAX	(1 << 20)

struct sink {
	unsigned char	 buf[4096];
	unsigned char	*out;
	size_t		 n;
};

static void
sink_empty(FCGX_Stream *st, int doclose)
{
	struct sink	*s = st->data;
	size_t		 k = (size_t)(st->wrNext - s->buf);

	if (k > OUT_MAX - s->n)
		abort();
	memcpy(s->out + s->n, s->buf, k);
	s->n += k;
	st->wrNext = s->buf;
}

/* The header block as sent: the invariants above, or abort. */
static size_t
check_head(const unsigned char *p, size_t n)
{
	size_t	 i = 0, xcto = 0, csp = 0, l;
	int	 last_rid = 0;

	for (;;) {
		const unsigned char *e = memmem(p + i, n - i, "\r\n", 2);
		if (e == NULL)
			abort();
		l = (size_t)(e - (p + i));
		if (l == 0)
			break;
		if (!header_line_ok((const char *)p + i, l))
			abort();
		if ((l >= 11 && ascii_casecmp_n((const char *)p + i,
		    "set-cookie:", 11) == 0) || (l >= 12 &&
		    ascii_casecmp_n((const char *)p + i, "set-cookie2:", 12) == 0))
			abort();
		if (l >= 23 && ascii_casecmp_n((const char *)p + i,
		    "x-content-type-options:", 23) == 0)
			xcto++;
		if (l >= 24 && ascii_casecmp_n((const char *)p + i,
		    "content-security-policy:", 24) == 0)
			csp++;
		last_rid = l >= 13 && memcmp(p + i, "X-Request-Id:", 13) == 0;
		i += l + 2;
	}
	if (xcto != 1 || csp != 1 || !last_rid)
		abort();
	return i + 2;
}

static size_t
compress_as(int wbits, const uint8_t *in, size_t n, unsigned char *out,
    size_t outsz)
{
	z_stream	 z;
	size_t		 got;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 1, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)outsz;
	got = deflate(&z, Z_FINISH) == Z_STREAM_END ? outsz - z.avail_out : 0;
	deflateEnd(&z);
	return got;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const label[] = { NULL, "gzip", "deflate", "deflate" };
	static const int wbits[] = { 0, 31, 15, -15 };
	static char		*env[] = { NULL };
	static unsigned char	 out[OUT_MAX];
	static unsigned char	 packed[1 << 17];
	static int		 once;
	struct sink		 sk;
	FCGX_Stream		 st;
	FCGX_Request		 fr;
	struct upstream_req	 rq;
	struct up_result	 res;
	struct xfer		 x;
	struct task_ids		 t;
	const uint8_t		*body, *p, *end;
	size_t			 bodylen, off, sent;
	char			 line[8192];
	int			 mode;

	if (!once) {
		log_open("/dev/null", "error");
		once = 1;
	}
	if (size < 1 || size > 1 << 16)
		return 0;
	mode = data[0] & 3;
	p = data + 1;
	end = data + size;

	memset(&sk, 0, sizeof(sk));
	sk.out = out;
	memset(&st, 0, sizeof(st));
	st.wrNext = sk.buf;
	st.stop = sk.buf + sizeof(sk.buf);
	st.emptyBuffProc = sink_empty;
	st.data = &sk;
	memset(&fr, 0, sizeof(fr));
	fr.out = &st;
	fr.envp = env;
	memset(&rq, 0, sizeof(rq));
	rq.fr = &fr;
	rq.request_id = "fuzz";
	rq.method = "POST";
	rq.url = "http://127.0.0.1/x";
	rq.key = "k";
	rq.proxy = "";
	rq.capture = 1;
	rq.hold_401 = data[0] & 4;
	rq.hold_5xx = data[0] & 8;

	memset(&res, 0, sizeof(res));
	res.content_length = -1;
	buf_init(&res.hdrs, UP_HEADERS_MAX);
	buf_init(&res.held_body, UP_HOLD_MAX);
	buf_init(&res.capture, UP_ENCODED_MAX);
	memset(&x, 0, sizeof(x));
	x.rq = &rq;
	x.res = &res;

	/* header lines, each with its LF, as curl hands them over */
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t l = nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
		int blank = l <= 2 && (p[0] == '\r' || p[0] == '\n');

		if (blank && mode != 0) {
			int n = snprintf(line, sizeof(line),
			    "Content-Encoding: %s\r\n", label[mode]);
			on_header(line, 1, (size_t)n, &x);
		}
		if (l > sizeof(line))
			goto out;
		memcpy(line, p, l);
		if (on_header(line, 1, l, &x) != l)
			goto out;
		p += l;
		if (blank)
			break;
	}
	body = p;
	bodylen = (size_t)(end - p);
	if (mode != 0) {
		bodylen = compress_as(wbits[mode], p, (size_t)(end - p), packed,
		    sizeof(packed));
		if (bodylen == 0)
			goto out;
		body = packed;
	}
	for (off = 0; off < bodylen;) {
		size_t k = bodylen - off < 977 ? bodylen - off : 977;
		if (on_body((char *)(uintptr_t)body + off, 1, k, &x) != k)
			goto out;
		off += k;
	}
	if (res.withheld)
		upstream_release(&rq, &res);
	if (!res.headers_sent && res.status >= 200)
		emit_headers(&rq, &res);
	if (res.json && !res.capture_overflow && res.coding != UPC_IDENTITY)
		decode_capture(&rq, &res);
	FCGX_FFlush(&st);

	if (res.headers_sent) {
		/* "Status: ..." is the first line; the rest is the block */
		sent = check_head(out, sk.n);
		if (sk.n - sent != bodylen || memcmp(out + sent, body, bodylen) != 0)
			abort();
	}
	if (mode != 0 && res.json && !res.capture_overflow &&
	    res.coding != UPC_IDENTITY &&
	    (res.capture.len != (size_t)(end - p) ||
	    memcmp(res.capture.p ? res.capture.p : "", p, res.capture.len) != 0))
		abort();
	if (res.json && !res.capture_overflow)
		task_ids_from_answer(&t, res.capture.p ? res.capture.p : "",
		    res.capture.len);
	task_ids_from_request(&t, "/suno/fetch/x", 13, "ids=a,b",
	    res.capture.p, res.capture.len, 0);
out:
	up_result_free(&res);
	return 0;
}
