#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <brotli/decode.h>
#include <zlib.h>

#include "coding.h"
#include "util.h"

/*
 * The old gateway (new-api's DecompressRequestMiddleware) decodes a
 * request body of Content-Encoding gzip or br before anything reads it,
 * so the relay must read, price and forward what it decodes to. gzip is
 * read as Go's gzip.Reader reads it: member after member, and nothing but
 * members; br as one stream, with nothing after its end (Go's reader
 * would ignore such bytes; the relay refuses them rather than guess).
 */

#define DEC_CHUNK	16384	/* decoded bytes handed to the sink at once */

struct body_dec {
	enum body_coding	 c;
	int			 ended;	/* at the end of a stream (gzip: member) */
	z_stream		 z;
	BrotliDecoderState	*br;
};

enum body_coding
body_coding_of(const char *v)
{
	static const struct { const char *name; enum body_coding c; } t[] = {
		{ "identity", BC_IDENTITY }, { "gzip", BC_GZIP },
		{ "x-gzip", BC_GZIP }, { "br", BC_BR },
	};
	size_t	 n, i;

	if (v == NULL)
		return BC_IDENTITY;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0)
		return BC_IDENTITY;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strlen(t[i].name) == n && ascii_casecmp_n(v, t[i].name, n) == 0)
			return t[i].c;
	return BC_OTHER;	/* deflate, zstd, compress, or a list */
}

struct body_dec *
body_dec_new(enum body_coding c)
{
	struct body_dec	*d;

	if ((c != BC_GZIP && c != BC_BR) || (d = calloc(1, sizeof(*d))) == NULL)
		return NULL;
	d->c = c;
	if (c == BC_GZIP && inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) {
		free(d);
		return NULL;
	}
	if (c == BC_BR &&
	    (d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL)) == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void
body_dec_free(struct body_dec *d)
{
	if (d == NULL)
		return;
	if (d->c == BC_GZIP)
		inflateEnd(&d->z);
	else
		BrotliDecoderDestroyInstance(d->br);
	free(d);
}

static enum dec_rc
gzip_feed(struct body_dec *d, const char *in, size_t n, dec_sink sink,
    void *arg)
{
	char	 out[DEC_CHUNK];
	size_t	 got;
	uInt	 take;
	int	 zr;

	while (n > 0) {
		take = n > UINT_MAX ? UINT_MAX : (uInt)n;
		d->z.next_in = (Bytef *)(uintptr_t)in;
		d->z.avail_in = take;
		in += take;
		n -= take;
		do {
			if (d->ended) {
				/* bytes after a member: the next member */
				if (inflateReset(&d->z) != Z_OK)
					return DEC_BAD;
				d->ended = 0;
			}
			d->z.next_out = (Bytef *)out;
			d->z.avail_out = sizeof(out);
			zr = inflate(&d->z, Z_NO_FLUSH);
			if (zr == Z_MEM_ERROR)
				return DEC_NOMEM;
			if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR)
				return DEC_BAD;
			got = sizeof(out) - d->z.avail_out;
			if (got > 0 && sink(arg, out, got) == -1)
				return DEC_SINK;
			if (zr == Z_STREAM_END)
				d->ended = 1;
			else if (zr == Z_BUF_ERROR && got == 0 &&
			    d->z.avail_in > 0)
				return DEC_BAD;		/* no progress */
		} while (d->z.avail_in > 0 || (!d->ended && d->z.avail_out == 0));
	}
	return DEC_OK;
}

static enum dec_rc
br_feed(struct body_dec *d, const char *in, size_t n, dec_sink sink,
    void *arg)
{
	char			 out[DEC_CHUNK];
	const uint8_t		*next_in = (const uint8_t *)in;
	size_t			 avail_in = n, avail_out, got;
	uint8_t			*next_out;
	BrotliDecoderResult	 r;
	BrotliDecoderErrorCode	 e;

	for (;;) {
		if (d->ended)
			return avail_in > 0 ? DEC_BAD : DEC_OK;
		next_out = (uint8_t *)out;
		avail_out = sizeof(out);
		r = BrotliDecoderDecompressStream(d->br, &avail_in, &next_in,
		    &avail_out, &next_out, NULL);
		if (r == BROTLI_DECODER_RESULT_ERROR) {
			e = BrotliDecoderGetErrorCode(d->br);
			/* -30 to -21 are the decoder's own allocations */
			return e >= BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES &&
			    e <= BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES ?
			    DEC_NOMEM : DEC_BAD;
		}
		got = sizeof(out) - avail_out;
		if (got > 0 && sink(arg, out, got) == -1)
			return DEC_SINK;
		if (r == BROTLI_DECODER_RESULT_SUCCESS)
			d->ended = 1;
		else if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
			return DEC_OK;
	}
}

enum dec_rc
body_dec_feed(struct body_dec *d, const char *in, size_t n, dec_sink sink,
    void *arg)
{
	if (n == 0)
		return DEC_OK;
	return d->c == BC_GZIP ? gzip_feed(d, in, n, sink, arg) :
	    br_feed(d, in, n, sink, arg);
}

enum dec_rc
body_dec_end(const struct body_dec *d)
{
	return d->ended ? DEC_OK : DEC_BAD;
}
