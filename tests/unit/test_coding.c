/* fcgi/coding.c: request bodies in a content coding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/coding.c"

/* ---- request bodies in a content coding (coding.c) ---- */

struct sinkbuf {
	char	 b[262144];
	size_t	 n, max;
};

static int
sink_to(void *arg, const char *p, size_t n)
{
	struct sinkbuf *s = arg;

	if (n > s->max - s->n)
		return -1;
	memcpy(s->b + s->n, p, n);
	s->n += n;
	return 0;
}

/* in[0..n) through a decoder of c, step bytes at a time; the end's verdict
 * unless a feed failed first. */
static enum dec_rc
decode_steps(enum body_coding c, const char *in, size_t n, size_t step,
    struct sinkbuf *s)
{
	struct body_dec	*d = body_dec_new(c);
	enum dec_rc	 rc = DEC_OK;
	size_t		 off, k;

	s->n = 0;
	if (d == NULL)
		return DEC_NOMEM;
	for (off = 0; rc == DEC_OK && off < n; off += k) {
		k = n - off < step ? n - off : step;
		rc = body_dec_feed(d, in + off, k, sink_to, s);
	}
	if (rc == DEC_OK)
		rc = body_dec_end(d);
	body_dec_free(d);
	return rc;
}

/* data gzipped (one member) into out; its length, or 0. */
static size_t
gzip_of(const char *data, size_t n, char *out, size_t cap)
{
	z_stream	 z;
	size_t		 len;

	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)n;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	len = deflate(&z, Z_FINISH) == Z_STREAM_END ? cap - z.avail_out : 0;
	deflateEnd(&z);
	return len;
}

static void
test_body_coding(void)
{
	static char	 zeros[200000], gz[4096], two[8192];
	static struct sinkbuf s;
	/* brotli of {"a":1} and of 200000 zero bytes (libbrotlienc, q 11) */
	static const char br1[] = "\x0b\x03\x80\x7b\x22\x61\x22\x3a\x31\x7d\x03";
	static const char brz[] = "\x5b\x3f\x0d\x83\x7f\x02\x20\x1e\x0b\x04"
	    "\xf2\x09\x06\x00";
	const char	*js = "{\"ids\":[\"task-1\"],\"duration\":10}";
	size_t		 n, n2, step;

	T_INT(body_coding_of(NULL), BC_IDENTITY);
	T_INT(body_coding_of(""), BC_IDENTITY);
	T_INT(body_coding_of(" \t"), BC_IDENTITY);
	T_INT(body_coding_of("identity"), BC_IDENTITY);
	T_INT(body_coding_of("gzip"), BC_GZIP);
	T_INT(body_coding_of(" GZip\t"), BC_GZIP);
	T_INT(body_coding_of("x-gzip"), BC_GZIP);
	T_INT(body_coding_of("br"), BC_BR);
	T_INT(body_coding_of("BR"), BC_BR);
	T_INT(body_coding_of("compress"), BC_OTHER);
	T_INT(body_coding_of("deflate"), BC_OTHER);
	T_INT(body_coding_of("zstd"), BC_OTHER);
	T_INT(body_coding_of("gzip, br"), BC_OTHER);
	T_INT(body_coding_of("gzip, identity"), BC_OTHER);
	T_INT(body_coding_of("gzipx"), BC_OTHER);
	T_OK(body_dec_new(BC_IDENTITY) == NULL);
	T_OK(body_dec_new(BC_OTHER) == NULL);

	s.max = sizeof(s.b);
	n = gzip_of(js, strlen(js), gz, sizeof(gz));
	T_OK(n > 18);
	/* whole, and a byte at a time: the same bytes */
	for (step = 1; step <= n; step = step == 1 ? n : n + 1) {
		T_INT(decode_steps(BC_GZIP, gz, n, step, &s), DEC_OK);
		T_OK(s.n == strlen(js) && memcmp(s.b, js, s.n) == 0);
	}
	/* two members, as Go's reader takes them: both, one after the other */
	memcpy(two, gz, n);
	memcpy(two + n, gz, n);
	T_INT(decode_steps(BC_GZIP, two, 2 * n, 7, &s), DEC_OK);
	T_OK(s.n == 2 * strlen(js) && memcmp(s.b + s.n / 2, js, s.n / 2) == 0);
	/* cut short, in the stream or in its trailer */
	T_INT(decode_steps(BC_GZIP, gz, n - 4, n, &s), DEC_BAD);
	T_INT(decode_steps(BC_GZIP, gz, n / 2, 3, &s), DEC_BAD);
	/* bytes after the member that are no member, at once or later */
	memcpy(two + n, "x", 1);
	T_INT(decode_steps(BC_GZIP, two, n + 1, n + 1, &s), DEC_BAD);
	T_INT(decode_steps(BC_GZIP, two, n + 1, 1, &s), DEC_BAD);
	memset(two + n, 0, 16);
	T_INT(decode_steps(BC_GZIP, two, n + 16, 5, &s), DEC_BAD);
	/* a bad CRC, and a zlib stream (not gzip), and plain JSON */
	memcpy(two, gz, n);
	two[n - 8] ^= 1;
	T_INT(decode_steps(BC_GZIP, two, n, n, &s), DEC_BAD);
	n2 = sizeof(two);
	T_OK(compress((Bytef *)two, (uLongf *)&n2, (const Bytef *)js,
	    strlen(js)) == Z_OK);
	T_INT(decode_steps(BC_GZIP, two, n2, n2, &s), DEC_BAD);
	T_INT(decode_steps(BC_GZIP, js, strlen(js), 4, &s), DEC_BAD);
	/* a bomb: the sink says stop at its cap, whatever the ratio */
	n = gzip_of(zeros, sizeof(zeros), gz, sizeof(gz));
	T_OK(n > 0 && n < 1024);
	T_OK(decode_steps(BC_GZIP, gz, n, n, &s) == DEC_OK && s.n == sizeof(zeros));
	s.max = 65536;
	T_OK(decode_steps(BC_GZIP, gz, n, n, &s) == DEC_SINK && s.n <= 65536);
	T_OK(decode_steps(BC_GZIP, gz, n, 1, &s) == DEC_SINK && s.n <= 65536);
	s.max = sizeof(s.b);

	/* br */
	T_INT(decode_steps(BC_BR, br1, sizeof(br1) - 1, 100, &s), DEC_OK);
	T_OK(s.n == 7 && memcmp(s.b, "{\"a\":1}", 7) == 0);
	T_OK(decode_steps(BC_BR, br1, sizeof(br1) - 1, 1, &s) == DEC_OK &&
	    s.n == 7);
	T_INT(decode_steps(BC_BR, br1, sizeof(br1) - 2, 100, &s), DEC_BAD);
	memcpy(two, br1, sizeof(br1) - 1);
	two[sizeof(br1) - 1] = 'x';
	T_INT(decode_steps(BC_BR, two, sizeof(br1), 100, &s), DEC_BAD);
	T_INT(decode_steps(BC_BR, two, sizeof(br1), 1, &s), DEC_BAD);
	T_INT(decode_steps(BC_BR, js, strlen(js), 100, &s), DEC_BAD);
	T_OK(decode_steps(BC_BR, brz, sizeof(brz) - 1, 100, &s) == DEC_OK &&
	    s.n == sizeof(zeros) && memcmp(s.b, zeros, s.n) == 0);
	s.max = 65536;
	T_OK(decode_steps(BC_BR, brz, sizeof(brz) - 1, 100, &s) == DEC_SINK &&
	    s.n <= 65536);
}

UNIT_MAIN("coding", test_body_coding)
