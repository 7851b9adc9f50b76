#ifndef BLTCY_JSONREAD_H
#define BLTCY_JSONREAD_H

#include <stddef.h>

/*
 * Reading JSON that others wrote (request bodies, upstream answers), the
 * way the old gateway's Go (encoding/json) reads it, allocating nothing
 * (jsonread.c; jsonw.h writes JSON). tests/goref/ holds the Go program
 * json_fields is compared with.
 *
 * The rules, for every entry point but json_scan:
 *  - the syntax is Go's scanner's, checked over the whole text before any
 *    value counts: no raw control characters in strings, no leading
 *    zeros, no "0." or "1e", no trailing commas, nothing but space after
 *    the value, at most JSON_DEPTH_MAX open brackets; an empty text is
 *    no JSON;
 *  - strings decode as Go's unquote does: invalid UTF-8 and lone
 *    surrogates become U+FFFD.
 * Paths (json_fields, json_values) add Go's rules for a struct:
 *  - a key matches a segment as Go matches a field name: ASCII without
 *    case, U+017F as s and U+212A as k, nothing else ("duration\u0000"
 *    is not duration); paths equal without case are one field;
 *  - of a key given twice the later counts, a later null leaves the value
 *    as it was, and an object given twice on a path is read as one.
 */

#define JSON_SCALAR_MAX	64	/* bytes of a value kept, and of a key matched */
#define JSON_PATHS_MAX	40	/* paths read at once */
#define JSON_DEPTH_MAX	10000	/* Go's nesting limit */

enum json_kind {
	JSON_NONE,		/* no value there (or only null) */
	JSON_STRING,
	JSON_NUMBER,
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL,
	JSON_OBJECT,
	JSON_ARRAY
};

/* A value where it stands in the text read: a string with its quotes. */
struct json_value {
	enum json_kind	 kind;
	const char	*p;
	size_t		 n;
};

/* ---- values at dotted paths ---- */

/* flags of json_values: */
#define JSON_INDEX	0x01	/* a segment of digits also indexes an array,
				   the top-level value among them */
#define JSON_ANYSEG	0x02	/* a segment is any printable ASCII but '.' */

/*
 * The values at dotted paths (segments of [A-Za-z0-9_], at most
 * JSON_SCALAR_MAX bytes each, at most 32 of them) of a JSON text into v[],
 * of any length and depth. Without JSON_INDEX the text is read as Go
 * reads it into a struct: an array on the way to a path is no way, and a
 * top-level value that is neither an object nor null fails. A path that
 * is no dotted name is never found (JSON_NONE).
 *
 * Returns 0, or -1 when the text is no JSON (or, without JSON_INDEX, its
 * top-level value neither an object nor null); on -1 every value is
 * JSON_NONE.
 */
int	 json_values(const char *text, size_t len, const char *const *paths,
	    size_t n, int flags, struct json_value *v);

/* found[i] of json_fields: */
enum {
	JF_ABSENT,	/* not there, null, or last an object or an array */
	JF_VALUE,	/* out[i] holds it */
	JF_OTHER	/* a string of more than JSON_SCALAR_MAX bytes or with
			   a NUL in it: no rule's value, no model we name */
};

/*
 * The scalars json_values finds (no flags), each as text: a string
 * decoded, a number as the relay prints it (10, 10.0 and 1e1 are "10";
 * otherwise %.15g), true or false. The fields a price reads: 0, or -1
 * where json.Unmarshal into a struct fails (then every field is absent).
 */
int	 json_fields(const char *body, size_t len, const char *const *paths,
	    size_t n, char (*out)[JSON_SCALAR_MAX + 1], int *found);

/* ---- a walk ---- */

/* The top-level value of a whole JSON text: 0, or -1 when it is none. */
int	 json_parse(const char *text, size_t len, struct json_value *top);

/*
 * each(arg, key, keylen, value) for every member of the object v, in
 * order, or every element of the array v (key NULL, keylen 0); v is
 * json_parse's or a value json_each gave. The key is decoded into a
 * buffer of JSON_SCALAR_MAX + 1 bytes that holds its first whole
 * characters, NUL-terminated; keylen is its whole length. 0, or the first
 * -1 each returned.
 */
int	 json_each(const struct json_value *v, int (*each)(void *arg,
	    const char *key, size_t keylen, const struct json_value *val),
	    void *arg);

/* ---- a value as text ---- */

/*
 * A string value decoded into out (outsz > 0 bytes, NUL-terminated, its
 * first whole characters, a NUL inside kept): its whole decoded length.
 * Anything else is no string: 0 and out "".
 */
size_t	 json_text(const struct json_value *, char *out, size_t outsz);

/*
 * A value's bytes as written, without the space between tokens (numbers
 * and strings as they stand), into out (outsz > 0 bytes, NUL-terminated,
 * cut where it is full): its whole length.
 */
size_t	 json_compact(const struct json_value *, char *out, size_t outsz);

/* ---- tolerant mode: a scan of text that may be no JSON ---- */

#define JSON_SCAN_KEY	24	/* keys longer are never asked about */

/*
 * A scan, not a parse, of any bytes, of any length and nesting, in one
 * pass: every string followed by ':' is a key; where want() takes it (the
 * key folded: ASCII lower case, U+017F as s and U+212A as k, any other
 * character 0x80), its value is handed on: a string a character at a time
 * to ch() (escapes decoded, the two letters folded, anything else beyond
 * ASCII as 0x80; -1 at its end), a bare token of [A-Za-z0-9+.-] whole to
 * bare(), and an array the same way element by element (strings and bare
 * tokens at its own level). Text that is not JSON is scanned the same way
 * as far as it goes; it can only lead to more values handed on.
 */
struct json_scan {
	int	(*want)(void *arg, const char *key, size_t keylen);
	void	(*ch)(void *arg, int c);
	void	(*bare)(void *arg, const char *p, size_t n);
	void	*arg;
};
void	 json_scan(const char *text, size_t len, const struct json_scan *);

#endif
