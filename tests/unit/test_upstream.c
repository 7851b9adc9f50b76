/*
 * fcgi/upstream.c: headers each way, answers in a coding, and requests
 * that never leave.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/upstream.c"

static void
test_request_headers(void)
{
	char	 o[256];

	T_OK(request_header("HTTP_X_CUSTOM=v 1", NULL, o, sizeof(o)) && strcmp(o, "X-Custom: v 1") == 0);
	T_OK(request_header("HTTP_USER_AGENT=curl/8", NULL, o, sizeof(o)) && strcmp(o, "User-Agent: curl/8") == 0);
	T_OK(request_header("HTTP_ACCEPT=*/*", NULL, o, sizeof(o)) && strcmp(o, "Accept: */*") == 0);
	T_OK(!request_header("HTTP_AUTHORIZATION=Bearer x", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_COOKIE=a=b", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_HOST=x", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_PTOKEN=x", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_VTOKEN=x", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_CTOKEN=x", NULL, o, sizeof(o)));
	/* the body goes up decoded; no method but the request's */
	T_OK(!request_header("HTTP_CONTENT_ENCODING=gzip", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_HTTP_METHOD_OVERRIDE=POST", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_HTTP_METHOD=POST", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_METHOD_OVERRIDE=POST", NULL, o, sizeof(o)));
	T_OK(request_header("HTTP_X_HTTP_METHODS=x", NULL, o, sizeof(o)) &&
	    strcmp(o, "X-Http-Methods: x") == 0);
	T_OK(!request_header("HTTP_CONNECTION=close", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_KEEP_ALIVE=1", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_PROXY_AUTHORIZATION=x", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_TE=trailers", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_TRAILER=x", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_TRANSFER_ENCODING=chunked", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_UPGRADE=h2c", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_FORWARDED_FOR=1.2.3.4", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_FORWARDED_HOST=x", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_CONTENT_LENGTH=5", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_HOP=1", "keep-alive, X-Hop", o, sizeof(o)));
	T_OK(request_header("HTTP_X_HOPPER=1", "keep-alive, X-Hop", o, sizeof(o)));
	T_OK(!request_header("HTTP_X_BAD=a\r\nInjected: 1", NULL, o, sizeof(o)));
	T_OK(!request_header("REMOTE_ADDR=1.2.3.4", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_LONG=0123456789", NULL, o, 12));
	/* what a client says of its address or proxies stays here */
	T_OK(!request_header("HTTP_FORWARDED=for=1.2.3.4", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_REAL_IP=1.2.3.4", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_CLIENT_IP=1.2.3.4", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_VIA=1.1 evil", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_PROXY=http://evil:1", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_TRUE_CLIENT_IP=1.2.3.4", NULL, o, sizeof(o)));
	T_OK(!request_header("HTTP_X_FORWARDED=for=1", NULL, o, sizeof(o)));
	T_OK(request_header("HTTP_VIAX=1", NULL, o, sizeof(o)) &&
	    strcmp(o, "Viax: 1") == 0);
}

static void
test_response_headers(void)
{
	T_OK(response_header_ok("Content-Type", 12, NULL, 0));
	T_OK(response_header_ok("X-Upstream-Thing", 16, NULL, 0));
	T_OK(!response_header_ok("Access-Control-Allow-Origin", 27, NULL, 0));
	T_OK(!response_header_ok("access-control-max-age", 22, NULL, 0));
	T_OK(!response_header_ok("Transfer-Encoding", 17, NULL, 0));
	T_OK(!response_header_ok("Connection", 10, NULL, 0));
	T_OK(!response_header_ok("Keep-Alive", 10, NULL, 0));
	T_OK(!response_header_ok("Status", 6, NULL, 0));
	T_OK(!response_header_ok("X-Accel-Redirect", 16, NULL, 0));
	T_OK(!response_header_ok("X-Sendfile", 10, NULL, 0));
	T_OK(!response_header_ok("X-Request-Id", 12, NULL, 0));
	T_OK(!response_header_ok("X-Gone", 6, "close, x-gone", 13));
	T_OK(response_header_ok("X-Kept", 6, "close, x-gone", 13));
	T_OK(!response_header_ok("Set-Cookie", 10, NULL, 0));
	T_OK(!response_header_ok("set-cookie2", 11, NULL, 0));
	T_OK(!response_header_ok("X-Content-Type-Options", 22, NULL, 0));
	T_OK(!response_header_ok("Content-Security-Policy", 23, NULL, 0));
	T_OK(!response_header_ok("Content-Security-Policy-Report-Only", 35,
	    NULL, 0));
	T_OK(response_header_ok("Set-Cookies", 11, NULL, 0));

	T_OK(header_line_ok("X-A: b", 6));
	T_OK(header_line_ok("X-A:", 4));
	T_OK(header_line_ok("X-A: b\tc", 8));
	T_OK(!header_line_ok("X-A: b\rInjected: 1", 18));
	T_OK(!header_line_ok("X-A: b\0c", 8));
	T_OK(!header_line_ok("X-A: b\x7f", 7));
	T_OK(!header_line_ok("X A: b", 6));
	T_OK(!header_line_ok("X-A : b", 7));
	T_OK(!header_line_ok(": b", 3));
	T_OK(!header_line_ok("X-A", 3));
	T_OK(header_line_ok("X-A: caf\xc3\xa9", 10));

	T_OK(!identity_refused(NULL));
	T_OK(!identity_refused("gzip, deflate, br"));
	T_OK(!identity_refused("gzip;q=1.0, identity; q=0.5, *;q=0"));
	T_OK(!identity_refused("identity;q=0.001"));
	T_OK(identity_refused("identity;q=0"));
	T_OK(identity_refused("gzip, Identity ; Q=0.000"));
	T_OK(identity_refused("gzip, *;q=0"));
	T_OK(!identity_refused("gzip, *;q=0.1"));
	T_OK(!identity_refused("identityx;q=0"));
}
/* data deflated with wbits (31 gzip, 15 zlib, -15 raw) into out */
static size_t
deflated(const char *data, size_t n, int wbits, unsigned char *out, size_t outsz)
{
	z_stream	 z;
	size_t		 got;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)outsz;
	got = deflate(&z, Z_FINISH) == Z_STREAM_END ? outsz - z.avail_out : 0;
	deflateEnd(&z);
	return got;
}

static void
test_answer_decode(void)
{
	static const char plain[] = "{\"task_id\":\"z-1\"}";
	/* brotli in one uncompressed meta-block, as the stub upstream sends */
	static const char br[] = "\x00\x01\x10\x7b\x22\x74\x61\x73\x6b\x5f\x69"
	    "\x64\x22\x3a\x22\x7a\x2d\x31\x22\x7d\x03";
	static const int wb[] = { 31, 15, -15 };
	static const enum up_coding cd[] = { UPC_GZIP, UPC_DEFLATE, UPC_DEFLATE };
	unsigned char	 z[256], twice[512];
	char		*spaces;
	size_t		 zn, i, bn = 2 * UP_CAPTURE_MAX;
	struct buf	 o;

	for (i = 0; i < 3; i++) {
		zn = deflated(plain, sizeof(plain) - 1, wb[i], z, sizeof(z));
		buf_init(&o, UP_CAPTURE_MAX);
		T_OK(zn > 0 && answer_decode(cd[i], (char *)z, zn, &o) == 0 &&
		    o.len == sizeof(plain) - 1 && memcmp(o.p, plain, o.len) == 0);
		buf_reset(&o);
		/* cut short: not read */
		T_INT(answer_decode(cd[i], (char *)z, zn - 1, &o), -1);
		buf_free(&o);
		if (i == 0) {	/* gzip in two members */
			memcpy(twice, z, zn);
			memcpy(twice + zn, z, zn);
			buf_init(&o, UP_CAPTURE_MAX);
			T_OK(answer_decode(UPC_GZIP, (char *)twice, 2 * zn, &o) == 0 &&
			    o.len == 2 * (sizeof(plain) - 1));
			buf_free(&o);
			buf_init(&o, UP_CAPTURE_MAX);
			T_OK(answer_decode(UPC_DEFLATE, (char *)z, zn, &o) == -1);
			buf_free(&o);
		}
	}
	buf_init(&o, UP_CAPTURE_MAX);
	T_OK(answer_decode(UPC_BR, br, sizeof(br) - 1, &o) == 0 &&
	    o.len == sizeof(plain) - 1 && memcmp(o.p, plain, o.len) == 0);
	buf_reset(&o);
	T_INT(answer_decode(UPC_BR, br, sizeof(br) - 2, &o), -1);
	buf_reset(&o);
	T_INT(answer_decode(UPC_BR, "garbage", 7, &o), -1);
	buf_reset(&o);
	T_INT(answer_decode(UPC_GZIP, "garbage", 7, &o), -1);
	buf_reset(&o);
	T_INT(answer_decode(UPC_OTHER, plain, 3, &o), -1);
	buf_free(&o);
	/* a small answer that decodes past the cap is not read */
	if ((spaces = malloc(bn)) != NULL) {
		unsigned char *zz = malloc(bn);
		memset(spaces, ' ', bn);
		zn = zz ? deflated(spaces, bn, 31, zz, bn) : 0;
		buf_init(&o, UP_CAPTURE_MAX);
		T_OK(zn > 0 && zn < 1024 &&
		    answer_decode(UPC_GZIP, (char *)zz, zn, &o) == -1);
		buf_free(&o);
		free(zz);
		free(spaces);
	}
	T_INT(coding_of(" gzip\r\n", 7), UPC_GZIP);
	T_INT(coding_of("X-GZIP", 6), UPC_GZIP);
	T_INT(coding_of("br", 2), UPC_BR);
	T_INT(coding_of("", 0), UPC_IDENTITY);
	T_INT(coding_of("zstd", 4), UPC_OTHER);
	T_INT(coding_of("gzip, br", 8), UPC_OTHER);
}

static void
test_bad_url(void)
{
	static const struct { const char *url; enum up_err err; int line; } t[] = {
		{ "http://127.0.0.1:1/a b", UPE_BAD_URL, __LINE__ },
		{ "http://127.0.0.1:1/a?b=\x01", UPE_BAD_URL, __LINE__ },
		{ "http://bad host/x", UPE_CONNECT, __LINE__ },
		/* nothing listens on port 1 */
		{ "http://127.0.0.1:1/x", UPE_REFUSED, __LINE__ },
		/* never dialled: not even the refusal of a closed port */
		{ "http://0.0.0.0:1/x", UPE_CONNECT, __LINE__ },
		{ "http://[::ffff:169.254.169.254]:1/x", UPE_CONNECT, __LINE__ },
	};
	static char		*env[] = { NULL };
	FCGX_Request		 fr;
	struct upstream_req	 rq;
	struct up_result	 res;
	CURL			*c = curl_easy_init();
	size_t			 i;

	memset(&fr, 0, sizeof(fr));
	fr.envp = env;
	T_OK(url_request_fault("http://127.0.0.1:1/a b"));
	T_OK(url_request_fault("http://127.0.0.1:1/x?a=\x01"));
	T_OK(!url_request_fault("http://bad host/x"));
	T_OK(!url_request_fault("http://127.0.0.1:1"));
	T_OK(!url_request_fault("no-scheme/x"));
	/* through libcurl: the request's fault, or the channel's */
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&rq, 0, sizeof(rq));
		rq.fr = &fr;
		rq.request_id = "unit";
		rq.method = "GET";
		rq.url = t[i].url;
		rq.key = "k";
		rq.proxy = "";
		rq.content_length = -1;
		upstream_forward(c, &rq, &res);
		T_OK_AT(t[i].line, res.err == t[i].err && res.status == 0 &&
		    res.nothing_sent);
		up_result_free(&res);
	}
	curl_easy_cleanup(c);
}

UNIT_MAIN("upstream", test_request_headers, test_response_headers, test_answer_decode, test_bad_url)
