#ifndef BLTCY_UTIL_H
#define BLTCY_UTIL_H

#include <stddef.h>
#include <stdint.h>

/*
 * A growable byte buffer with a hard cap, named for its use by whoever
 * creates it. Always NUL-terminated when p != NULL.
 */
struct buf {
	char	*p;
	size_t	 len;
	size_t	 cap;
	size_t	 max;	/* buf_add fails rather than grow past this */
};

void	 buf_init(struct buf *, size_t max);
int	 buf_add(struct buf *, const void *, size_t);	/* 0 ok, -1 cap/oom */
int	 buf_adds(struct buf *, const char *);
int	 buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	 buf_reset(struct buf *);	/* len = 0, memory kept */
void	 buf_free(struct buf *);

/* Range-checked integer parse of the whole string. 0 ok, -1 bad. */
int	 parse_ll(const char *, long long min, long long max, long long *);

/* Copy with truncation; always terminates when size > 0. Returns strlen(src). */
size_t	 strlcpy_(char *, const char *, size_t);

/* The same, but a cut never splits a UTF-8 character. */
size_t	 utf8_copy(char *, const char *, size_t);

/* Constant-time comparison of two byte strings of the same length. */
int	 ct_memeq(const void *, const void *, size_t);

/* Overwrite a secret so the compiler cannot elide it. */
void	 wipe(void *, size_t);

/* Seconds and milliseconds since the epoch / a monotonic origin. */
int64_t	 now_s(void);
int64_t	 mono_ms(void);

/* Case-insensitive ASCII comparison of the first n bytes. */
int	 ascii_casecmp_n(const char *, const char *, size_t);
/* Is s 1 to max bytes of printable ASCII (space to '~')? */
int	 printable_ascii(const char *s, size_t max);

/* Is s one of the comma-separated items of list (items trimmed)? */
int	 list_has(const char *list, char sep, const char *s, size_t slen);

/* Value of a hexadecimal digit, or -1. */
int	 hex_digit(int);
/* Value of the four hexadecimal digits at p (a JSON \u escape), or -1. */
int	 hex4(const char *p);

/* FNV-1a: h (FNV1A_INIT to begin) carried on over the bytes of s. */
#define FNV1A_INIT	1469598103934665603ULL
uint64_t fnv1a(uint64_t h, const char *s);

/*
 * The lines of a channel's key column as new-api counts them (the column
 * split at '\n' once the '\n's around it are trimmed), in place: each
 * line trimmed of blanks and CRs at its ends, and each(arg, its index,
 * it) for every line not blank (a CR may remain inside one). The number
 * of lines, or -1 as soon as each returns -1.
 */
int	 key_lines(char *col, int (*each)(void *, int, char *), void *arg);

/* Fill out with n cryptographically random bytes. 0 ok, -1 error. */
int	 random_bytes(void *, size_t);

#endif
