/*
 * libFuzzer target for the decoding of request bodies in a content coding
 * (fcgi/coding.c): client bytes said to be gzip or br.
 *
 * The input is one control byte, then the body. Bit 0 of the control
 * byte picks gzip or br; bits 1-7 the size of the pieces the body is fed
 * in (1 to 128 bytes, as it arrives from the front server). With bit 0
 * clear and the body not gzip, it is also gzipped here: that must decode
 * to the body exactly.
 *
 * What must hold: the decoder gives the same verdict and the same bytes
 * whether the body comes whole or in pieces; it never hands the sink
 * more than the sink takes (a cap of 256 KiB stands for RELAY_MAX_BODY),
 * and stops when the sink says so.
 *
 *   make fuzz && build-fuzz/fuzz_coding -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.c"
#include "../../fcgi/coding.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define CAP	(256 * 1024)

struct out {
	char	*p;
	size_t	 n;
	int	 stopped;
};

static int
take(void *arg, const char *p, size_t n)
{
	struct out	*o = arg;

	if (o->stopped)
		abort();	/* fed after it said stop */
	if (n > CAP - o->n) {
		o->stopped = 1;
		return -1;
	}
	memcpy(o->p + o->n, p, n);
	o->n += n;
	return 0;
}

static enum dec_rc
run(enum body_coding c, const char *in, size_t n, size_t step, struct out *o)
{
	struct body_dec	*d = body_dec_new(c);
	enum dec_rc	 rc = DEC_OK;
	size_t		 off, k;

	o->n = 0;
	o->stopped = 0;
	if (d == NULL)
		abort();
	for (off = 0; rc == DEC_OK && off < n; off += k) {
		k = n - off < step ? n - off : step;
		rc = body_dec_feed(d, in + off, k, take, o);
	}
	if (rc == DEC_OK && n > 0)
		rc = body_dec_end(d);
	body_dec_free(d);
	if ((rc == DEC_SINK) != o->stopped)
		abort();
	return rc;
}

static void
same(enum body_coding c, const char *in, size_t n, size_t step)
{
	static char	 a[CAP], b[CAP];
	struct out	 whole = { a, 0, 0 }, parts = { b, 0, 0 };
	enum dec_rc	 rw, rp;

	rw = run(c, in, n, n ? n : 1, &whole);
	rp = run(c, in, n, step, &parts);
	if (rw != rp)
		abort();
	if (rw == DEC_OK && (whole.n != parts.n || memcmp(a, b, whole.n) != 0))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char	 gz[CAP + 1024], dec[CAP];
	enum body_coding c;
	struct out	 o = { dec, 0, 0 };
	size_t		 step, n;
	z_stream	 z;

	if (size < 1)
		return 0;
	c = data[0] & 1 ? BC_BR : BC_GZIP;
	step = (size_t)(data[0] >> 1) + 1;
	data++, size--;
	same(c, (const char *)data, size, step);
	if (c != BC_GZIP || size > CAP)
		return 0;
	/* a round trip: the body gzipped here decodes to itself */
	memset(&z, 0, sizeof(z));
	if (deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)size;
	z.next_out = (Bytef *)gz;
	z.avail_out = sizeof(gz);
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	n = sizeof(gz) - z.avail_out;
	deflateEnd(&z);
	same(c, gz, n, step);
	if (run(c, gz, n, step, &o) != DEC_OK || o.n != size ||
	    memcmp(dec, data, size) != 0)
		abort();
	return 0;
}
