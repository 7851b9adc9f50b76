#ifndef BLTCY_JSONSCAN_H
#define BLTCY_JSONSCAN_H

#include <stddef.h>

/*
 * The fields a price reads, read from a request body the way the old
 * gateway (Go's encoding/json, json.Unmarshal into a struct) reads them
 * for the job (jsonscan.c). tests/goref/ holds the Go program this is
 * compared with.
 */

#define JSON_SCALAR_MAX	64	/* bytes of a value kept, and of a key matched */
#define JSON_PATHS_MAX	40	/* paths read at once */
#define JSON_DEPTH_MAX	10000	/* Go's nesting limit */

/* found[i]: */
enum {
	JF_ABSENT,	/* not there, null, or last an object or an array */
	JF_VALUE,	/* out[i] holds it */
	JF_OTHER	/* a string of more than JSON_SCALAR_MAX bytes or with
			   a NUL in it: no rule's value, no model we name */
};

/*
 * The scalars at dotted paths (segments of [A-Za-z0-9_], at most
 * JSON_SCALAR_MAX bytes each) of a JSON object, of any length and depth,
 * each as text: a string decoded (invalid UTF-8 as U+FFFD), a number as
 * the relay prints it (10, 10.0 and 1e1 are "10"; otherwise %.15g), true
 * or false. Keys match a segment as Go matches a field: ASCII without
 * case, U+017F as s, U+212A as k, nothing else. Of a key given twice the
 * later counts, a later null leaves the value as it was, and an object
 * given twice on a path is read as one. Paths equal without case are one
 * field. A path that is no dotted name is never found.
 *
 * Returns 0, or -1 where json.Unmarshal into a struct fails: no JSON as
 * Go's scanner takes it (nesting past JSON_DEPTH_MAX, bytes after the
 * value, an empty body), or a top-level value that is neither an object
 * nor null. On -1 every field reads absent.
 */
int	 json_fields(const char *body, size_t len, const char *const *paths,
	    size_t n, char (*out)[JSON_SCALAR_MAX + 1], int *found);

#endif
