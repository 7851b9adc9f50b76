#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

void
buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

static int
buf_grow(struct buf *b, size_t need)
{
	size_t	 ncap;
	char	*np;

	if (need > b->max - b->len)
		return -1;
	if (b->len + need + 1 <= b->cap)
		return 0;
	ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + need + 1)
		ncap = ncap > SIZE_MAX / 2 ? SIZE_MAX : ncap * 2;
	if (ncap > b->max + 1)
		ncap = b->max + 1;
	if ((np = realloc(b->p, ncap)) == NULL)
		return -1;
	b->p = np;
	b->cap = ncap;
	return 0;
}

int
buf_add(struct buf *b, const void *p, size_t n)
{
	if (buf_grow(b, n) == -1)
		return -1;
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
buf_adds(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_grow(b, (size_t)n) == -1)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

int
parse_ll(const char *s, long long min, long long max, long long *out)
{
	char		*end;
	long long	 v;

	if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

size_t
strlcpy_(char *dst, const char *src, size_t size)
{
	size_t	 n = strlen(src);

	if (size > 0) {
		size_t c = n < size - 1 ? n : size - 1;
		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

size_t
utf8_copy(char *dst, const char *src, size_t size)
{
	size_t	 n = strlen(src), c;

	if (size == 0)
		return n;
	c = n < size - 1 ? n : size - 1;
	/* back off to the start of the character the cut falls in */
	if (c < n)
		while (c > 0 && ((unsigned char)src[c] & 0xc0) == 0x80)
			c--;
	memcpy(dst, src, c);
	dst[c] = '\0';
	return n;
}

int
ct_memeq(const void *a, const void *b, size_t n)
{
	const volatile unsigned char	*x = a, *y = b;
	unsigned char			 d = 0;
	size_t				 i;

	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

void
wipe(void *p, size_t n)
{
	volatile unsigned char	*v = p;

	while (n-- > 0)
		*v++ = 0;
}

int64_t
now_s(void)
{
	struct timespec	 ts;

	/* not time(2): its coarse clock can lag a second boundary by a tick */
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
printable_ascii(const char *s, size_t max)
{
	size_t	 i;

	for (i = 0; s[i] != '\0'; i++)
		if (i == max || (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] > 0x7e)
			return 0;
	return i > 0;
}

int
ascii_casecmp_n(const char *a, const char *b, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++) {
		int ca = tolower((unsigned char)a[i]);
		int cb = tolower((unsigned char)b[i]);
		if (ca != cb)
			return ca - cb;
		if (ca == '\0')
			break;
	}
	return 0;
}

int
list_has(const char *list, char sep, const char *s, size_t slen)
{
	const char	*p = list, *e;

	if (list == NULL)
		return 0;
	while (*p != '\0') {
		size_t	 n;

		while (*p == sep || *p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		e = strchr(p, sep);
		n = e ? (size_t)(e - p) : strlen(p);
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' ||
		    p[n - 1] == '\r'))
			n--;
		if (n == slen && memcmp(p, s, n) == 0)
			return 1;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return 0;
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
hex4(const char *p)
{
	int	 i, d, v = 0;

	for (i = 0; i < 4; i++) {
		if ((d = hex_digit((unsigned char)p[i])) < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
}

uint64_t
fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

int
random_bytes(void *p, size_t n)
{
	unsigned char	*c = p;

	while (n > 0) {
		ssize_t r = getrandom(c, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		c += r;
		n -= (size_t)r;
	}
	return 0;
}

int
key_lines(char *col, int (*each)(void *, int, char *), void *arg)
{
	char	*p, *line;
	size_t	 len;
	int	 idx = 0;

	len = strlen(col);
	while (len > 0 && col[len - 1] == '\n')
		col[--len] = '\0';
	for (p = col; *p == '\n'; p++)
		;
	for (line = p; *line != '\0'; idx++) {
		len = strcspn(line, "\n");
		p = line + len;
		if (*p == '\n')
			*p++ = '\0';
		while (*line == ' ' || *line == '\t' || *line == '\r')
			line++;
		len = strlen(line);
		while (len > 0 && (line[len - 1] == ' ' ||
		    line[len - 1] == '\t' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len > 0 && each != NULL && each(arg, idx, line) == -1)
			return -1;
		line = p;
	}
	return idx;
}
