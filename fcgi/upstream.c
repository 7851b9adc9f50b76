#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "relay.h"

/*
 * One request to the old gateway on the worker's persistent easy handle:
 * the client's body streamed up, the answer streamed down as it arrives.
 */

#define UP_HEADERS_MAX	(64 * 1024)	/* upstream response header block */
#define UP_HOLD_MAX	(64 * 1024)	/* a withheld answer's body */
#define UP_CAPTURE_MAX	(64 * 1024)	/* a JSON answer searched for task ids */

struct xfer {
	const struct upstream_req *rq;
	struct up_result	*res;
	size_t			 held_off;
	long long		 body_read;
	long long		 body_len;	/* -1: chunked, read to the end */
	int64_t			 upload_done_ms;
	int			 header_timeout;
};

/* Response headers that never reach the client. */
static const char *const drop_response[] = {
	"connection", "keep-alive", "proxy-authenticate", "proxy-connection",
	"te", "trailer", "transfer-encoding", "upgrade", "status",
	"x-request-id", "x-sendfile", "x-sendfile2",
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

/* Send the collected response header block to the client. */
static int
emit_headers(const struct upstream_req *rq, struct up_result *res)
{
	FCGX_Stream	*out = rq->fr->out;
	const char	*p = res->hdrs.p ? res->hdrs.p : "", *end = p + res->hdrs.len;
	const char	*conn = NULL;
	size_t		 connlen = 0;
	const char	*l;

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
		if (colon != NULL && colon > l && l[0] != ' ' && l[0] != '\t' &&
		    response_header_ok(l, (size_t)(colon - l), conn, connlen)) {
			if (FCGX_PutStr(l, (int)len, out) < 0 ||
			    FCGX_PutStr("\r\n", 2, out) < 0)
				return -1;
		}
		l = nl ? nl + 1 : end;
	}
	if (FCGX_FPrintF(out, "X-Request-Id: %s\r\n\r\n", rq->request_id) < 0)
		return -1;
	res->headers_sent = 1;
	return 0;
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
}

/* Is this final status one the caller may want to retry elsewhere? */
static int
withheld(const struct upstream_req *rq, int status)
{
	return (status == 401 && rq->hold_401) ||
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
			res->client_gone = 1;
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
	if (!res->headers_sent && emit_headers(x->rq, res) == -1)
		goto gone;
	if (x->rq->capture && res->json && buf_add(&res->capture, data, len) == -1)
		res->capture_overflow = 1;
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
	res->client_gone = 1;
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
	char			**e;

	*has_ct = *has_accept = 0;
	for (e = rq->fr->envp; *e != NULL; e++) {
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
	return l;
fail:
	curl_slist_free_all(l);
	return NULL;
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
	switch (rc) {
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
	buf_init(&res->capture, UP_CAPTURE_MAX);
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
	if (rc != CURLE_OK && !res->client_gone && !res->body_too_large)
		classify(c, rc, &x);
	else if (rc == CURLE_OK && !res->headers_sent && !res->withheld &&
	    res->status >= 200 && emit_headers(rq, res) == -1)
		res->client_gone = 1;
	/* the Authorization line held the key */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	for (struct curl_slist *i = hl; i != NULL; i = i->next)
		if (strncmp(i->data, "Authorization:", 14) == 0)
			wipe(i->data, strlen(i->data));
	curl_slist_free_all(hl);
}
