#ifndef BLTCY_UNIT_H
#define BLTCY_UNIT_H

/*
 * The unit tests' few checks, one test file per module (tests/unit/
 * test_<module>.c, built into build/unit/test_<module>). A file includes
 * the source it tests, to reach its static functions, and links the rest
 * of the relay from build/librelay.a. A failed check prints the file and
 * line of the check (or of the table row it names, the _AT forms), what
 * was got and what was wanted; a file ends with
 * "unit-<module>: N passed, M failed" and exits non-zero if any failed.
 *
 *	T_OK(cond)			T_OK_AT(line, cond)
 *	T_INT(got, want)		T_INT_AT(line, got, want)
 *	T_STR(got, want)		T_STR_AT(line, got, want)
 *	T_MEM(got, glen, want, wlen)
 *	UNIT_MAIN("ledger", test_a, test_b, ...)
 */

#include <stdio.h>
#include <string.h>

static int	 unit_passed, unit_failed;

static inline void
unit_result(int ok, const char *file, int line, const char *what,
    const char *got, const char *want)
{
	if (ok) {
		unit_passed++;
		return;
	}
	unit_failed++;
	if (got == NULL)
		fprintf(stderr, "not ok - %s:%d: %s\n", file, line, what);
	else
		fprintf(stderr, "not ok - %s:%d: %s\n\tgot:  %s\n\twant: %s\n",
		    file, line, what, got, want);
}

static inline void
unit_int(const char *file, int line, const char *what, long long got,
    long long want)
{
	char	 g[32], w[32];

	snprintf(g, sizeof(g), "%lld", got);
	snprintf(w, sizeof(w), "%lld", want);
	unit_result(got == want, file, line, what, g, w);
}

/* printable, escaped, cut at 200 bytes */
static inline const char *
unit_show(const char *p, size_t n, char *out, size_t outsz)
{
	size_t	 i, o = 0;

	if (p == NULL)
		return "(null)";
	out[o++] = '"';
	for (i = 0; i < n && o + 8 < outsz; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, outsz - o, "\\x%02x", c);
	}
	if (i < n)
		o += (size_t)snprintf(out + o, outsz - o, "...");
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

static inline void
unit_mem(const char *file, int line, const char *what, const char *got,
    size_t glen, const char *want, size_t wlen)
{
	char	 g[1024], w[1024];
	int	 ok;

	ok = (got == NULL) == (want == NULL) &&
	    (got == NULL || (glen == wlen && memcmp(got, want, glen) == 0));
	unit_result(ok, file, line, what, unit_show(got, glen, g, sizeof(g)),
	    unit_show(want, wlen, w, sizeof(w)));
}

#define T_OK_AT(line, c)	unit_result(!!(c), __FILE__, (line), #c, NULL, NULL)
#define T_OK(c)			T_OK_AT(__LINE__, c)
#define T_INT_AT(line, got, want) \
	unit_int(__FILE__, (line), #got, (long long)(got), (long long)(want))
#define T_INT(got, want)	T_INT_AT(__LINE__, got, want)
#define T_STR_AT(line, got, want) do {					\
	const char *g_ = (got), *w_ = (want);				\
	unit_mem(__FILE__, (line), #got, g_, g_ ? strlen(g_) : 0,	\
	    w_, w_ ? strlen(w_) : 0);					\
} while (0)
#define T_STR(got, want)	T_STR_AT(__LINE__, got, want)
#define T_MEM(got, glen, want, wlen) \
	unit_mem(__FILE__, __LINE__, #got, (got), (glen), (want), (wlen))

#define UNIT_MAIN(name, ...)						\
int									\
main(void)								\
{									\
	void	(*t_[])(void) = { __VA_ARGS__ };			\
	size_t	 i_;							\
									\
	for (i_ = 0; i_ < sizeof(t_) / sizeof(t_[0]); i_++)		\
		t_[i_]();						\
	printf("unit-%s: %d passed, %d failed\n", (name), unit_passed,	\
	    unit_failed);						\
	return unit_failed != 0;					\
}

#endif
