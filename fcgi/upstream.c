#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <brotli/decode.h>
#include <zlib.h>

#include "config.h"
#include "log.h"
#include "netaddr.h"
#include "upstream.h"

/*
 * One request to the old gateway on the worker's persistent easy handle:
 * the client's body streamed up, the answer streamed down as it arrives.
 */

CURLSH	*upstream_share;

#define UP_HEADERS_MAX	(64 * 1024)	/* upstream response header block */
#define UP_HOLD_MAX	(64 * 1024)	/* a withheld answer's body */
#define UP_CAPTURE_MAX	(64 * 1024)	/* a JSON answer searched for task ids */
#define UP_ENCODED_MAX	(64 * 1024)	/* the encoded answer it is decoded from */

struct xfer {
	const struct upstream_req *rq;
	struct up_result	*res;
	size_t			 held_off;
	long long		 body_read;
	long long		 body_len;	/* -1: chunked, read to the end */
	int64_t			 upload_done_ms;
	int			 header_timeout;
	int			 forbidden;	/* a connect refused by class */
	char			 forbidden_addr[INET6_ADDRSTRLEN];
};

/* Response headers that never reach the client. */
static const char *const drop_response[] = {
	"connection", "keep-alive", "proxy-authenticate", "proxy-connection",
	"te", "trailer", "transfer-encoding", "upgrade", "status",
	"x-request-id", "x-sendfile", "x-sendfile2",
	/* the answer lives on the gateway's origin: no cookies set there */
	"set-cookie", "set-cookie2",
	/* replaced by RELAY_SAFE_HEADERS */
	"x-content-type-options", "content-security-policy",
	"content-security-policy-report-only",
};

/* ...and prefixes: CORS is the operator's to set; X-Accel-* and
 * X-LIGHTTPD-* would instruct the front server. */
static const char *const drop_response_prefix[] = {
	"access-control-", "x-accel-", "x-lighttpd-", "proxy-",
};

static const struct { int code; const char *text; } reasons[] = {
	{ 100, "Continue" }, { 200, "OK" }, { 201, "Created" },
	{ 202, "Accepted" }, { 204, "No Content" }, { 206, "Partial Content" },
	{ 301, "Moved Permanently" }, { 302, "Found" }, { 303, "See Other" },
	{ 304, "Not Modified" }, { 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" }, { 400, "Bad Request" },
	{ 401, "Unauthorized" }, { 402, "Payment Required" },
	{ 403, "Forbidden" }, { 404, "Not Found" },
	{ 405, "Method Not Allowed" }, { 408, "Request Timeout" },
	{ 409, "Conflict" }, { 410, "Gone" }, { 413, "Payload Too Large" },
	{ 415, "Unsupported Media Type" }, { 422, "Unprocessable Entity" },
	{ 429, "Too Many Requests" }, { 499, "Client Closed Request" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
};

const char *
http_reason(int code)
{
	size_t	 i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].text;
	return "Status";
}

/* Each transport error: the words a client and the log get, the metric's label. */
static const struct {
	const char	*reason;
	const char	*label;
} up_errs[UPE__MAX] = {
	[UPE_NONE] =		{ "unknown error", "none" },
	[UPE_REFUSED] =		{ "connection refused", "refused" },
	[UPE_DNS] =		{ "could not resolve host", "dns" },
	[UPE_TLS] =		{ "TLS handshake failed", "tls" },
	[UPE_CONNECT] =		{ "connection failed", "connect" },
	[UPE_CONNECT_TIMEOUT] =	{ "connect timeout", "connect_timeout" },
	[UPE_HEADER_TIMEOUT] =	{ "response header timeout", "header_timeout" },
	[UPE_TIMEOUT] =		{ "timeout", "timeout" },
	[UPE_LOST] =		{ "upstream connection lost", "lost" },
	[UPE_BAD_URL] =		{ "request URL refused", "bad_url" },
};

const char *
up_err_reason(enum up_err e)
{
	return up_errs[e < UPE__MAX ? e : UPE_NONE].reason;
}

const char *
up_err_label(enum up_err e)
{
	return up_errs[e < UPE__MAX ? e : UPE_NONE].label;
}

/* Is the token list (a Connection header value) naming name? */
static int
conn_names(const char *list, size_t listlen, const char *name, size_t n)
{
	size_t	 i = 0;

	while (i < listlen) {
		size_t s, e;
		while (i < listlen && (list[i] == ' ' || list[i] == ',' || list[i] == '\t'))
			i++;
		s = i;
		while (i < listlen && list[i] != ',')
			i++;
		e = i;
		while (e > s && (list[e - 1] == ' ' || list[e - 1] == '\t'))
			e--;
		if (e - s == n && ascii_casecmp_n(list + s, name, n) == 0)
			return 1;
	}
	return 0;
}

/*
 * Should an upstream response header (name of n bytes) be relayed?
 * conn is the upstream's Connection header value (may be NULL).
 */
int	 response_header_ok(const char *, size_t, const char *, size_t);

int
response_header_ok(const char *name, size_t n, const char *conn, size_t connlen)
{
	size_t	 i;

	for (i = 0; i < sizeof(drop_response) / sizeof(drop_response[0]); i++)
		if (strlen(drop_response[i]) == n &&
		    ascii_casecmp_n(name, drop_response[i], n) == 0)
			return 0;
	for (i = 0; i < sizeof(drop_response_prefix) / sizeof(drop_response_prefix[0]); i++) {
		size_t pl = strlen(drop_response_prefix[i]);
		if (n >= pl && ascii_casecmp_n(name, drop_response_prefix[i], pl) == 0)
			return 0;
	}
	return conn == NULL || !conn_names(conn, connlen, name, n);
}

/*
 * Is one header line (without its line end) fit to pass on? The name
 * must be a token and the value free of control characters but HTAB:
 * curl splits lines at LF only, so a bare CR inside a value would reach
 * the front server, and lighttpd relays it, which lets an upstream split
 * or smuggle headers in front of the client. Such a line is dropped, not
 * the whole answer: the body and the other headers are still the
 * upstream's, and a 502 would lose an answer that may carry a new task.
 */
int	 header_line_ok(const char *, size_t);

int
header_line_ok(const char *l, size_t len)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	size_t	 i;

	for (i = 0; i < len && l[i] != ':'; i++) {
		unsigned char c = (unsigned char)l[i];
		if (!isalnum(c) && (c == '\0' || strchr(tchar, c) == NULL))
			return 0;
	}
	if (i == 0 || i == len)
		return 0;
	for (i++; i < len; i++) {
		unsigned char c = (unsigned char)l[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 0;
	}
	return 1;
}

/* Send the collected response header block to the client. */
static int
emit_headers(const struct upstream_req *rq, struct up_result *res)
{
	FCGX_Stream	*out = rq->fr->out;
	const char	*p = res->hdrs.p ? res->hdrs.p : "", *end = p + res->hdrs.len;
	const char	*conn = NULL;
	size_t		 connlen = 0;
	const char	*l;

	if (rq->before_answer != NULL && rq->before_answer(rq->arg) == -1) {
		res->answer_refused = 1;
		return -1;
	}
	/* the Connection header may come after the headers it names */
	for (l = p; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t len = nl ? (size_t)(nl - l) : (size_t)(end - l);
		if (len > 11 && ascii_casecmp_n(l, "connection:", 11) == 0) {
			conn = l + 11;
			connlen = len - 11;
			while (connlen > 0 && conn[connlen - 1] == '\r')
				connlen--;
		}
		l += len + 1;
	}
	if (FCGX_FPrintF(out, "Status: %d %s\r\n", res->status,
	    http_reason(res->status)) < 0)
		return -1;
	for (l = p; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t len = nl ? (size_t)(nl - l) : (size_t)(end - l);
		const char *colon = memchr(l, ':', len);

		while (len > 0 && l[len - 1] == '\r')
			len--;
		if (colon != NULL && !header_line_ok(l, len)) {
			log_warn("req=%s upstream header line with a control "
			    "character or a bad name dropped", rq->request_id);
		} else if (colon != NULL && colon > l && l[0] != ' ' &&
		    l[0] != '\t' &&
		    response_header_ok(l, (size_t)(colon - l), conn, connlen)) {
			/* sized for a whole block: it cannot fill up */
			if (rq->keep_headers != NULL &&
			    buf_add(rq->keep_headers, l, len) == 0)
				buf_add(rq->keep_headers, "\r\n", 2);
			if (FCGX_PutStr(l, (int)len, out) < 0 ||
			    FCGX_PutStr("\r\n", 2, out) < 0)
				return -1;
		}
		l = nl ? nl + 1 : end;
	}
	/*
	 * An answer of unknown length may be a stream (SSE, chunks): the
	 * front passes it on as it comes; one with a length it may buffer
	 * for a slow reader (nginx reads X-Accel-Buffering).
	 */
	if (res->content_length < 0 &&
	    FCGX_PutS("X-Accel-Buffering: no\r\n", out) < 0)
		return -1;
	if ((rq->extra_headers != NULL && FCGX_PutS(rq->extra_headers, out) < 0) ||
	    FCGX_PutS(RELAY_SAFE_HEADERS, out) < 0 ||
	    FCGX_FPrintF(out, "X-Request-Id: %s\r\n\r\n", rq->request_id) < 0)
		return -1;
	res->headers_sent = 1;
	return 0;
}

/* A Content-Encoding value: the one coding it names, trimmed. */
static enum up_coding
coding_of(const char *v, size_t len)
{
	static const struct { const char *name; enum up_coding c; } t[] = {
		{ "identity", UPC_IDENTITY }, { "gzip", UPC_GZIP },
		{ "x-gzip", UPC_GZIP }, { "deflate", UPC_DEFLATE },
		{ "br", UPC_BR },
	};
	size_t	 i;

	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t' ||
	    v[len - 1] == '\r' || v[len - 1] == '\n'))
		len--;
	if (len == 0)
		return UPC_IDENTITY;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].name) == len &&
		    ascii_casecmp_n(v, t[i].name, len) == 0)
			return t[i].c;
	return UPC_OTHER;	/* zstd, compress, or a list of codings */
}

/*
 * Decode an answer of coding c (in, inlen) into out, whose cap bounds
 * what an encoded answer may grow to. 0, or -1 when it is not of that
 * coding, is cut short, or decodes to more than out holds.
 */
int	 answer_decode(enum up_coding, const char *, size_t, struct buf *);

static int
inflate_all(const char *in, size_t inlen, struct buf *out, int wbits)
{
	z_stream	 z;
	char		 chunk[16384];
	int		 zr, rc = -1;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, wbits) != Z_OK)
		return -1;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = inlen > UINT32_MAX ? UINT32_MAX : (uInt)inlen;
	for (;;) {
		z.next_out = (Bytef *)chunk;
		z.avail_out = sizeof(chunk);
		zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
			goto done;
		if (buf_add(out, chunk, sizeof(chunk) - z.avail_out) == -1)
			goto done;
		if (zr == Z_STREAM_END) {
			/* gzip may come in several members, one after another */
			if (z.avail_in == 0)
				break;
			if (inflateReset(&z) != Z_OK)
				goto done;
		} else if (zr == Z_BUF_ERROR || (z.avail_in == 0 &&
		    z.avail_out != 0))
			goto done;	/* cut short */
	}
	rc = 0;
done:
	inflateEnd(&z);
	return rc;
}

static int
brotli_all(const char *in, size_t inlen, struct buf *out)
{
	BrotliDecoderState	*st;
	BrotliDecoderResult	 br;
	const uint8_t		*next_in = (const uint8_t *)in;
	size_t			 avail_in = inlen;
	char			 chunk[16384];
	int			 rc = -1;

	if ((st = BrotliDecoderCreateInstance(NULL, NULL, NULL)) == NULL)
		return -1;
	do {
		uint8_t	*next_out = (uint8_t *)chunk;
		size_t	 avail_out = sizeof(chunk);

		br = BrotliDecoderDecompressStream(st, &avail_in, &next_in,
		    &avail_out, &next_out, NULL);
		if (br == BROTLI_DECODER_RESULT_ERROR ||
		    buf_add(out, chunk, sizeof(chunk) - avail_out) == -1)
			goto done;
		if (br == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
			goto done;	/* cut short */
	} while (br != BROTLI_DECODER_RESULT_SUCCESS);
	rc = avail_in == 0 ? 0 : -1;
done:
	BrotliDecoderDestroyInstance(st);
	return rc;
}

int
answer_decode(enum up_coding c, const char *in, size_t inlen, struct buf *out)
{
	size_t	 mark = out->len;

	switch (c) {
	case UPC_IDENTITY:
		return buf_add(out, in, inlen);
	case UPC_GZIP:
		return inflate_all(in, inlen, out, 16 + MAX_WBITS);
	case UPC_DEFLATE:
		/* RFC 9110's deflate is zlib-wrapped; some servers send it raw */
		if (inflate_all(in, inlen, out, MAX_WBITS) == 0)
			return 0;
		out->len = mark;
		if (out->p != NULL)
			out->p[mark] = '\0';
		return inflate_all(in, inlen, out, -MAX_WBITS);
	case UPC_BR:
		return brotli_all(in, inlen, out);
	default:
		return -1;
	}
}

/*
 * May the answer come as identity? Not when the client refused it:
 * "identity;q=0", or "*;q=0" without identity named.
 */
int	 identity_refused(const char *);

static int
q_zero(const char *p, size_t n)
{
	size_t	 i;

	while (n > 0 && (*p == ' ' || *p == '\t'))
		p++, n--;
	if (n < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=')
		return 0;
	p += 2, n -= 2;
	if (n == 0 || p[0] != '0')
		return 0;
	for (i = 1; i < n; i++)
		if (p[i] != '.' && p[i] != '0' && p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

int
identity_refused(const char *ae)
{
	int	 star_zero = 0;

	while (ae != NULL && *ae != '\0') {
		size_t		 n = strcspn(ae, ","), cl;
		const char	*semi = memchr(ae, ';', n), *c = ae;

		cl = semi ? (size_t)(semi - ae) : n;
		while (cl > 0 && (*c == ' ' || *c == '\t'))
			c++, cl--;
		while (cl > 0 && (c[cl - 1] == ' ' || c[cl - 1] == '\t'))
			cl--;
		if (cl == 8 && ascii_casecmp_n(c, "identity", 8) == 0)
			return semi != NULL &&
			    q_zero(semi + 1, (size_t)(ae + n - semi - 1));
		if (cl == 1 && *c == '*' && semi != NULL &&
		    q_zero(semi + 1, (size_t)(ae + n - semi - 1)))
			star_zero = 1;
		ae += n;
		if (*ae == ',')
			ae++;
	}
	return star_zero;
}

/* Remember what routing and affinity need from one response header. */
static void
note_header(struct up_result *res, const char *l, size_t len)
{
	char		 v[32];
	long long	 n;
	size_t		 vl;

	if (len > 15 && ascii_casecmp_n(l, "content-length:", 15) == 0) {
		l += 15;
		len -= 15;
		while (len > 0 && (*l == ' ' || *l == '\t'))
			l++, len--;
		for (vl = 0; vl < len && vl < sizeof(v) - 1 && l[vl] >= '0' &&
		    l[vl] <= '9'; vl++)
			v[vl] = l[vl];
		v[vl] = '\0';
		if (parse_ll(v, 0, INT64_MAX, &n) == 0)
			res->content_length = n;
	} else if (len > 13 && ascii_casecmp_n(l, "content-type:", 13) == 0)
		res->json = memmem(l, len, "json", 4) != NULL;
	else if (len > 17 && ascii_casecmp_n(l, "content-encoding:", 17) == 0)
		res->coding = coding_of(l + 17, len - 17);
}

/* Is this final status one the caller may want to retry elsewhere? */
static int
withheld(const struct upstream_req *rq, int status)
{
	return (status == 401 && rq->hold_401) ||
	    (status == 429 && rq->hold_429) ||
	    (rq->hold_5xx && status >= 502 && status <= 504);
}

int
upstream_release(const struct upstream_req *rq, struct up_result *res)
{
	if (!res->withheld)
		return 0;
	res->withheld = 0;
	if (emit_headers(rq, res) == -1 ||
	    (res->held_body.len > 0 && FCGX_PutStr(res->held_body.p,
	    (int)res->held_body.len, rq->fr->out) < 0))
		return -1;
	res->bytes_out += (int64_t)res->held_body.len;
	return 0;
}

void
up_result_free(struct up_result *res)
{
	buf_free(&res->hdrs);
	buf_free(&res->held_body);
	buf_free(&res->capture);
}

static size_t
on_header(char *line, size_t size, size_t n, void *arg)
{
	struct xfer		*x = arg;
	struct up_result	*res = x->res;
	size_t			 len = size * n;

	if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
		const char *sp = memchr(line, ' ', len);
		int st = 0;
		if (sp != NULL && (size_t)(sp - line) + 4 <= len &&
		    isdigit((unsigned char)sp[1]) && isdigit((unsigned char)sp[2]) &&
		    isdigit((unsigned char)sp[3]))
			st = (sp[1] - '0') * 100 + (sp[2] - '0') * 10 + sp[3] - '0';
		res->status = st;
		res->content_length = -1;
		res->json = 0;
		res->coding = UPC_IDENTITY;
		buf_reset(&res->hdrs);	/* a new response (after 1xx) */
		return len;
	}
	if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
		if (res->status < 200 || res->headers_sent || res->withheld)
			return len;
		if (withheld(x->rq, res->status)) {
			res->withheld = 1;
			return len;
		}
		if (emit_headers(x->rq, res) == -1) {
			res->client_gone = !res->answer_refused;
			return 0;
		}
		return len;
	}
	if (buf_add(&res->hdrs, line, len) == -1) {
		log_warn("upstream response headers over %d bytes", UP_HEADERS_MAX);
		return 0;
	}
	note_header(res, line, len);
	return len;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct xfer		*x = arg;
	struct up_result	*res = x->res;
	FCGX_Stream		*out = x->rq->fr->out;
	size_t			 len = size * n;

	if (res->withheld) {
		if (buf_add(&res->held_body, data, len) == 0)
			return len;
		/* too big to hold for a retry: it goes to the client after all */
		if (upstream_release(x->rq, res) == -1)
			goto gone;
	}
	/* kept first: an answer the client left is still known (repeats) */
	if (x->rq->capture && (res->json || x->rq->capture_any) &&
	    buf_add(&res->capture, data, len) == -1)
		res->capture_overflow = 1;
	if (!res->headers_sent && emit_headers(x->rq, res) == -1)
		goto gone;
	if (len > 0 && FCGX_PutStr(data, (int)len, out) < 0)
		goto gone;
	res->bytes_out += (int64_t)len;
	/*
	 * Every piece reaches the client at once (SSE, slow bodies), except
	 * the one that completes a known length: it waits in the stream
	 * buffer until the charge is settled, so a client that has the whole
	 * answer also sees its charge.
	 */
	if ((res->content_length < 0 || res->bytes_out < res->content_length) &&
	    FCGX_FFlush(out) < 0)
		goto gone;
	return len;
gone:
	res->client_gone = !res->answer_refused;
	return CURL_WRITEFUNC_ERROR;
}

static size_t
on_read(char *dst, size_t size, size_t n, void *arg)
{
	struct xfer		*x = arg;
	const struct buf	*h = x->rq->held;
	size_t			 want = size * n, got = 0;
	int			 r;

	if (h != NULL && x->held_off < h->len) {
		got = h->len - x->held_off < want ? h->len - x->held_off : want;
		memcpy(dst, h->p + x->held_off, got);
		x->held_off += got;
	} else if (!x->rq->held_all) {
		r = FCGX_GetStr(dst, (int)(want > 1 << 30 ? 1 << 30 : want),
		    x->rq->fr->in);
		got = r > 0 ? (size_t)r : 0;
	}
	x->body_read += (long long)got;
	if (x->body_read > cfg_i(CFG_RELAY_MAX_BODY)) {
		x->res->body_too_large = 1;
		return CURL_READFUNC_ABORT;
	}
	if (got == 0 && x->body_len >= 0 && x->body_read < x->body_len) {
		x->res->client_gone = 1;	/* the upload was cut */
		return CURL_READFUNC_ABORT;
	}
	/* the wait for the answer's headers starts when the body is sent */
	if ((got == 0 || (x->body_len >= 0 && x->body_read >= x->body_len)) &&
	    x->upload_done_ms == 0)
		x->upload_done_ms = mono_ms();
	return got;
}

/* curl rewinds to resend on a fresh connection: only what we hold. */
static int
on_seek(void *arg, curl_off_t off, int origin)
{
	struct xfer	*x = arg;

	if (origin != SEEK_SET || off != 0 || x->rq->held == NULL ||
	    (!x->rq->held_all && x->body_read > (long long)x->rq->held->len))
		return CURL_SEEKFUNC_CANTSEEK;
	x->held_off = 0;
	x->body_read = 0;
	x->upload_done_ms = 0;
	return CURL_SEEKFUNC_OK;
}

static int
on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
    curl_off_t un)
{
	struct xfer	*x = arg;

	if (x->res->status >= 200 || x->upload_done_ms == 0)
		return 0;
	if (mono_ms() - x->upload_done_ms > cfg_i(CFG_RELAY_HEADER_TIMEOUT) * 1000) {
		x->header_timeout = 1;
		return 1;
	}
	return 0;
}

/* Request headers that are never forwarded, in FastCGI form (after HTTP_). */
static const char *const drop_request[] = {
	"AUTHORIZATION", "HOST", "COOKIE", "X_PTOKEN", "X_VTOKEN", "X_CTOKEN",
	"CONNECTION", "KEEP_ALIVE", "TE", "TRAILER", "TRANSFER_ENCODING",
	"UPGRADE", "CONTENT_LENGTH", "CONTENT_TYPE", "EXPECT",
	/*
	 * The client's address as some proxy before us put it: the upstream
	 * must not take a client's word for it (nor for its proxy chain).
	 */
	"FORWARDED", "X_REAL_IP", "X_CLIENT_IP", "VIA", "PROXY",
	"TRUE_CLIENT_IP", "CF_CONNECTING_IP", "X_CLUSTER_CLIENT_IP",
	"FORWARDED_FOR", "X_FORWARDED", "X_ORIGINATING_IP",
	"X_ORIGINAL_FORWARDED_FOR",
	/*
	 * The body goes up as the relay read it: decoded if it came in a
	 * content coding (body.c's body_read), so in none.
	 */
	"CONTENT_ENCODING",
	/*
	 * A method other than the request's, for frameworks that honour one
	 * (gorilla's and Echo's override middleware, and others that read all
	 * three): a free GET would become a submit behind the relay's back.
	 */
	"X_HTTP_METHOD_OVERRIDE", "X_HTTP_METHOD", "X_METHOD_OVERRIDE",
};
static const char *const drop_request_prefix[] = { "PROXY_", "X_FORWARDED_" };

/*
 * Turn a FastCGI param "HTTP_X_FOO=v" into the header "X-Foo: v" in out
 * when it is to be forwarded. conn is the client's Connection header.
 * Returns 1 and fills out, or 0 to skip it.
 */
int	 request_header(const char *param, const char *conn, char *out, size_t outsz);

int
request_header(const char *param, const char *conn, char *out, size_t outsz)
{
	const char	*name, *eq, *v;
	size_t		 n, i, o = 0;
	int		 up = 1;

	if (strncmp(param, "HTTP_", 5) != 0 || (eq = strchr(param, '=')) == NULL)
		return 0;
	name = param + 5;
	n = (size_t)(eq - name);
	v = eq + 1;
	if (n == 0 || strpbrk(v, "\r\n") != NULL)
		return 0;
	for (i = 0; i < sizeof(drop_request) / sizeof(drop_request[0]); i++)
		if (strlen(drop_request[i]) == n && memcmp(name, drop_request[i], n) == 0)
			return 0;
	for (i = 0; i < sizeof(drop_request_prefix) / sizeof(drop_request_prefix[0]); i++)
		if (strncmp(name, drop_request_prefix[i], strlen(drop_request_prefix[i])) == 0)
			return 0;
	if (n + 2 + strlen(v) + 1 > outsz)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];
		if (c == '_') {
			out[o++] = '-';
			up = 1;
			continue;
		}
		out[o++] = up ? c : (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
		up = 0;
	}
	out[o] = '\0';
	/* a header the client's Connection names is hop-by-hop too */
	if (conn != NULL && conn_names(conn, strlen(conn), out, o))
		return 0;
	out[o++] = ':';
	out[o++] = ' ';
	strlcpy_(out + o, v, outsz - o);
	return 1;
}

static struct curl_slist *
build_headers(const struct upstream_req *rq, int *has_ct, int *has_accept)
{
	struct curl_slist	*l = NULL, *t;
	char			 line[8192];
	const char		*conn = FCGX_GetParam("HTTP_CONNECTION", rq->fr->envp);
	const char		*ct = FCGX_GetParam("CONTENT_TYPE", rq->fr->envp);
	const char		*ae = FCGX_GetParam("HTTP_ACCEPT_ENCODING",
				    rq->fr->envp);
	char			**e;
	int			 identity;

	/*
	 * A captured answer is read for task ids, which an encoded one
	 * hides: the client's Accept-Encoding becomes identity unless the
	 * client will not take that. A client that sent none is left so
	 * (servers answer it plain). Where an answer still comes encoded, a
	 * copy is decoded for the scan.
	 */
	identity = rq->capture && ae != NULL && !identity_refused(ae);
	*has_ct = *has_accept = 0;
	for (e = rq->fr->envp; *e != NULL; e++) {
		if (identity && strncmp(*e, "HTTP_ACCEPT_ENCODING=", 21) == 0)
			continue;
		if (!request_header(*e, conn, line, sizeof(line)))
			continue;
		if (strncmp(*e, "HTTP_ACCEPT=", 12) == 0)
			*has_accept = 1;
		if ((t = curl_slist_append(l, line)) == NULL)
			goto fail;
		l = t;
	}
	if (ct != NULL && *ct != '\0' && strpbrk(ct, "\r\n") == NULL) {
		snprintf(line, sizeof(line), "Content-Type: %s", ct);
		if ((t = curl_slist_append(l, line)) == NULL)
			goto fail;
		l = t;
		*has_ct = 1;
	}
	snprintf(line, sizeof(line), "Authorization: Bearer %s", rq->key);
	t = curl_slist_append(l, line);
	wipe(line, strlen(line));
	if (t == NULL)
		goto fail;
	l = t;
	/* curl's own defaults must not appear as if the client sent them */
	if (!*has_accept && (t = curl_slist_append(l, "Accept:")) != NULL)
		l = t;
	if (!*has_ct && (t = curl_slist_append(l, "Content-Type:")) != NULL)
		l = t;
	if ((t = curl_slist_append(l, "Expect:")) != NULL)
		l = t;
	if (identity) {
		if ((t = curl_slist_append(l, "Accept-Encoding: identity")) == NULL)
			goto fail;
		l = t;
	}
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
}

/*
 * Every connection the relay opens passes the address class check, here
 * at connect time, so a channel whose name resolves somewhere forbidden
 * after it was saved is still never reached there.
 */
static curl_socket_t
on_opensocket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct xfer	*x = arg;
	const void	*ip = NULL;

	if (addr_class_of(&a->addr) == ADDR_FORBIDDEN) {
		x->forbidden = 1;
		if (a->family == AF_INET)
			ip = &((const struct sockaddr_in *)(const void *)
			    &a->addr)->sin_addr;
		else if (a->family == AF_INET6)
			ip = &((const struct sockaddr_in6 *)(const void *)
			    &a->addr)->sin6_addr;
		if (ip == NULL || inet_ntop(a->family, ip, x->forbidden_addr,
		    sizeof(x->forbidden_addr)) == NULL)
			strlcpy_(x->forbidden_addr, "?", sizeof(x->forbidden_addr));
		log_warn("req=%s upstream address %s refused: link-local, "
		    "metadata or unspecified addresses are never dialled "
		    "(check the channel's base URL)", x->rq->request_id,
		    x->forbidden_addr);
	}
	return netaddr_opensocket(NULL, purpose, a);
}

/*
 * Is a URL libcurl refused the request's fault? Yes when the channel's
 * part, scheme://authority, parses on its own: what follows came from
 * the client.
 */
static int
url_request_fault(const char *url)
{
	CURLU		*u;
	const char	*p;
	char		 base[2048];
	size_t		 n;
	int		 ok;

	if ((p = strstr(url, "://")) == NULL)
		return 0;
	n = (size_t)(p + 3 - url) + strcspn(p + 3, "/?#");
	if (n >= sizeof(base) || url[n] == '\0')
		return 0;
	memcpy(base, url, n);
	base[n] = '\0';
	if ((u = curl_url()) == NULL)
		return 0;
	ok = curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK;
	curl_url_cleanup(u);
	return ok;
}

static void
classify(CURL *c, CURLcode rc, struct xfer *x)
{
	struct up_result	*r = x->res;
	long			 oserr = 0, reqsize = 0;

	curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
	curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &reqsize);
	r->nothing_sent = reqsize == 0;
	if (x->header_timeout) {
		r->err = UPE_HEADER_TIMEOUT;
		return;
	}
	if (reqsize == 0 && x->forbidden && rc == CURLE_COULDNT_CONNECT) {
		/* the channel's configuration: its failure, said as such */
		r->err = UPE_CONNECT;
		snprintf(r->errbuf, sizeof(r->errbuf), "address %s is forbidden "
		    "(link-local, metadata or unspecified): fix the channel's "
		    "base URL", x->forbidden_addr);
		return;
	}
	switch (rc) {
	case CURLE_URL_MALFORMAT:
		r->err = url_request_fault(x->rq->url) ? UPE_BAD_URL : UPE_CONNECT;
		break;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		r->err = UPE_DNS;
		break;
	case CURLE_COULDNT_CONNECT:
		r->err = oserr == ECONNREFUSED ? UPE_REFUSED : UPE_CONNECT;
		break;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
		r->err = UPE_TLS;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		r->err = reqsize == 0 ? UPE_CONNECT_TIMEOUT : UPE_TIMEOUT;
		break;
	default:
		r->err = reqsize == 0 ? UPE_CONNECT : UPE_LOST;
		break;
	}
}

/*
 * An encoded answer's capture, decoded in place for the task id scan; an
 * answer that cannot be read is marked so (capture_overflow), which keeps
 * its ids unread rather than guessed.
 */
static void
decode_capture(const struct upstream_req *rq, struct up_result *res)
{
	static const char *const names[] = {
		[UPC_IDENTITY] = "identity", [UPC_GZIP] = "gzip",
		[UPC_DEFLATE] = "deflate", [UPC_BR] = "br", [UPC_OTHER] = "other",
	};
	struct buf	 plain;

	buf_init(&plain, UP_CAPTURE_MAX);
	if (res->coding == UPC_OTHER ||
	    answer_decode(res->coding, res->capture.p ? res->capture.p : "",
	    res->capture.len, &plain) == -1) {
		log_warn("req=%s answer in %s encoding could not be decoded "
		    "within %d bytes: its task ids are not read", rq->request_id,
		    names[res->coding], UP_CAPTURE_MAX);
		res->capture_overflow = 1;
		buf_free(&plain);
		return;
	}
	buf_free(&res->capture);
	res->capture = plain;
}

void
upstream_forward(CURL *c, const struct upstream_req *rq, struct up_result *res)
{
	struct xfer		 x;
	struct curl_slist	*hl;
	const char		*proxy = rq->proxy;
	long long		 cl = rq->content_length;
	int			 has_ct, has_accept, has_body;
	CURLcode		 rc;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	x.rq = rq;
	x.res = res;
	res->content_length = -1;
	buf_init(&res->hdrs, UP_HEADERS_MAX);
	buf_init(&res->held_body, UP_HOLD_MAX);
	buf_init(&res->capture, UP_ENCODED_MAX);
	if (rq->held_all)
		cl = (long long)rq->held->len;
	x.body_len = cl;
	has_body = cl > 0 || (cl < 0 && !rq->held_all) ||
	    strcmp(rq->method, "POST") == 0 || strcmp(rq->method, "PUT") == 0 ||
	    strcmp(rq->method, "PATCH") == 0;
	if (!has_body)
		x.upload_done_ms = mono_ms();

	if ((hl = build_headers(rq, &has_ct, &has_accept)) == NULL) {
		res->err = UPE_CONNECT;
		res->nothing_sent = 1;
		strlcpy_(res->errbuf, "out of memory", sizeof(res->errbuf));
		return;
	}
	curl_easy_reset(c);
	if (upstream_share != NULL)
		curl_easy_setopt(c, CURLOPT_SHARE, upstream_share);
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, res->errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)cfg_i(CFG_RELAY_CONNECT_TIMEOUT));
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)cfg_i(CFG_RELAY_TIMEOUT));
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &x);
	if (*proxy == '\0')
		proxy = cfg_s(CFG_RELAY_PROXY);
	if (*proxy != '\0')	/* else libcurl reads http(s)_proxy itself */
		curl_easy_setopt(c, CURLOPT_PROXY, proxy);

	if (strcmp(rq->method, "HEAD") == 0 && !has_body)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(rq->method, "GET") == 0 && !has_body)
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	else if (has_body) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		if (rq->held_all) {
			/* all in memory: it leaves with the headers, in one send */
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->held->p ?
			    rq->held->p : "");
			x.upload_done_ms = mono_ms();
		} else {
			curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(c, CURLOPT_READDATA, &x);
			curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
			curl_easy_setopt(c, CURLOPT_SEEKDATA, &x);
		}
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)cl);
		if (strcmp(rq->method, "POST") != 0)
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	} else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);

	rc = curl_easy_perform(c);
	if (rc != CURLE_OK && !res->client_gone && !res->body_too_large &&
	    !res->answer_refused)
		classify(c, rc, &x);
	else if (rc == CURLE_OK && !res->headers_sent && !res->withheld &&
	    res->status >= 200 && emit_headers(rq, res) == -1)
		res->client_gone = !res->answer_refused;
	if (rq->capture && (res->json || rq->capture_any) &&
	    !res->capture_overflow &&
	    res->coding != UPC_IDENTITY)
		decode_capture(rq, res);
	/* the Authorization line held the key */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	for (struct curl_slist *i = hl; i != NULL; i = i->next)
		if (strncmp(i->data, "Authorization:", 14) == 0)
			wipe(i->data, strlen(i->data));
	curl_slist_free_all(hl);
}

int
own_request(CURL *c, const char *method, const char *url, const char *key,
    const char *extra, const char *proxy, long timeout,
    curl_write_callback write, void *data, char *errbuf,
    struct curl_slist **hl)
{
	struct curl_slist	*more;
	struct buf		 auth;
	int			 rc = -1;

	*hl = NULL;
	buf_init(&auth, 8192);
	if (buf_printf(&auth, "Authorization: Bearer %s", key) == -1 ||
	    (*hl = curl_slist_append(NULL, auth.p)) == NULL)
		goto done;
	if (extra != NULL) {
		if ((more = curl_slist_append(*hl, extra)) == NULL) {
			own_request_done(NULL, *hl);	/* still ours */
			*hl = NULL;
			goto done;
		}
		*hl = more;
	}
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else if (strcmp(method, "POST") == 0)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	else
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* as the relay's own transfers: never a link-local or metadata address */
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, netaddr_opensocket);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hl);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT,
	    (long)cfg_i(CFG_RELAY_CONNECT_TIMEOUT));
	curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, data);
	if (*proxy == '\0')
		proxy = cfg_s(CFG_RELAY_PROXY);
	if (*proxy != '\0')	/* else libcurl reads http(s)_proxy itself */
		curl_easy_setopt(c, CURLOPT_PROXY, proxy);
	rc = 0;
done:
	if (auth.p != NULL)
		wipe(auth.p, auth.len);
	buf_free(&auth);
	return rc;
}

void
own_request_done(CURL *c, struct curl_slist *hl)
{
	struct curl_slist	*i;

	if (c != NULL)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	for (i = hl; i != NULL; i = i->next)
		wipe(i->data, strlen(i->data));
	curl_slist_free_all(hl);
}
