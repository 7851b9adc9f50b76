#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "util.h"

/*
 * The fields a price reads, read as the old gateway will read them for the
 * job: new-api decodes a body with Go's encoding/json into its structs, so
 * a price that reads the body any other way can be steered by a client
 * (a field Go takes and we do not, or the other way round). This reader
 * is Go's, for the fields asked:
 *
 *  - the syntax is Go's scanner's, checked over the whole body before any
 *    field counts (json.Unmarshal does the same): no raw control
 *    characters in strings, no leading zeros, no "0." or "1e", no trailing
 *    commas, no bytes after the value, at most JSON_DEPTH_MAX open
 *    brackets;
 *  - strings decode as Go's unquote does: invalid UTF-8 and lone
 *    surrogates become U+FFFD;
 *  - a key matches a field as Go's struct decoding matches it (fold.go):
 *    ASCII without case, U+017F for s and U+212A for k; "duration\u0000"
 *    is not duration;
 *  - a later key wins, null leaves a field as it was (Go's rule for a
 *    field that is no pointer), and a second object on a path is decoded
 *    into the same struct, merging;
 *  - a value of another kind on the way to a path (a string where the
 *    struct is) is Go's type error, which Unmarshal reports after reading
 *    on: the rest is read, and the caller does not refuse the body for it.
 *
 * The tree of wanted paths is built on the stack; members nobody wants are
 * stepped over by an iterative reader that keeps one bit per open
 * bracket, so neither depth nor length costs more than a pass.
 */

#define SEGS_MAX	32	/* segments of one path */
#define NODES_MAX	(1 + JSON_PATHS_MAX * SEGS_MAX)

struct jnode {
	const char	*seg;		/* into its path, not NUL-terminated */
	short		 child, next;	/* -1: none */
	short		 leaf;		/* the first path ending here, or -1 */
	unsigned char	 len;
};

struct jtree {
	struct jnode	 n[NODES_MAX];
	size_t		 nn;
};

struct jp {
	const char		*p, *end;
	size_t			 depth;		/* brackets open around p */
	const struct jtree	*t;
	char			(*out)[JSON_SCALAR_MAX + 1];
	int			*found;
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '_';
}

/* Segments of two paths, equal without case (paths are ASCII). */
static int
seg_eq(const char *a, size_t an, const char *b, size_t bn)
{
	size_t	 i;

	if (an != bn)
		return 0;
	for (i = 0; i < an; i++)
		if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
			return 0;
	return 1;
}

/* A dotted name: SEGS_MAX segments at most, of 1 to JSON_SCALAR_MAX bytes. */
static int
path_ok(const char *path)
{
	size_t	 seg = 0, nseg = 1;

	for (; *path != '\0'; path++) {
		if (*path == '.') {
			if (seg == 0 || ++nseg > SEGS_MAX)
				return 0;
			seg = 0;
		} else if (!name_char((unsigned char)*path) ||
		    ++seg > JSON_SCALAR_MAX)
			return 0;
	}
	return seg > 0;
}

/* The node of a path, added to the tree; -1 when it is no dotted name. */
static int
tree_add(struct jtree *t, const char *path)
{
	const char	*s;
	size_t		 len;
	int		 node = 0, c;

	if (!path_ok(path))
		return -1;
	for (s = path;; s += len + 1) {
		len = strcspn(s, ".");
		for (c = t->n[node].child; c >= 0; c = t->n[c].next)
			if (seg_eq(t->n[c].seg, t->n[c].len, s, len))
				break;
		if (c < 0) {
			c = (int)t->nn++;
			t->n[c].seg = s;
			t->n[c].len = (unsigned char)len;
			t->n[c].child = -1;
			t->n[c].leaf = -1;
			t->n[c].next = t->n[node].child;
			t->n[node].child = (short)c;
		}
		node = c;
		if (s[len] == '\0')
			return node;
	}
}

static void
ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/*
 * The character at p as Go's utf8.DecodeRune reads it, *len its bytes:
 * anything but the shortest form of a scalar value is U+FFFD, one byte.
 */
static long
utf8_rune(const unsigned char *p, const unsigned char *end, size_t *len)
{
	unsigned int	 c = p[0], lo = 0x80, hi = 0xbf;
	size_t		 n, i;
	long		 r;

	*len = 1;
	if (c < 0x80)
		return (long)c;
	if (c < 0xc2 || c > 0xf4)
		return 0xfffd;
	if (c < 0xe0) {
		n = 2;
		r = c & 0x1f;
	} else if (c < 0xf0) {
		n = 3;
		r = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;	/* no surrogates */
	} else {
		n = 4;
		r = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;	/* nothing past U+10FFFF */
	}
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0xfffd;
	r = r << 6 | (p[1] & 0x3f);
	for (i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0xfffd;
		r = r << 6 | (p[i] & 0x3f);
	}
	*len = n;
	return r;
}

/*
 * The next character of the string j->p is in (past its opening quote):
 * 1 with *r, 0 at its closing quote (j->p past it), -1 when it is no JSON
 * string. Escapes and bytes as Go's scanner and unquote take them.
 */
static int
str_next(struct jp *j, long *r)
{
	unsigned char	 c;
	int		 u, u2;
	size_t		 n;

	if (j->p == j->end)
		return -1;
	c = (unsigned char)*j->p;
	if (c == '"') {
		j->p++;
		return 0;
	}
	if (c < 0x20)
		return -1;
	if (c != '\\') {
		*r = utf8_rune((const unsigned char *)j->p,
		    (const unsigned char *)j->end, &n);
		j->p += n;
		return 1;
	}
	if (j->end - j->p < 2)
		return -1;
	switch (j->p[1]) {
	case '"': case '\\': case '/': *r = j->p[1]; break;
	case 'b': *r = '\b'; break;
	case 'f': *r = '\f'; break;
	case 'n': *r = '\n'; break;
	case 'r': *r = '\r'; break;
	case 't': *r = '\t'; break;
	case 'u':
		if (j->end - j->p < 6 || (u = hex4(j->p + 2)) == -1)
			return -1;
		j->p += 6;
		if (u >= 0xd800 && u < 0xe000) {
			/* a pair, or U+FFFD and the next escape on its own */
			if (u < 0xdc00 && j->end - j->p >= 6 && j->p[0] == '\\' &&
			    j->p[1] == 'u' && (u2 = hex4(j->p + 2)) >= 0xdc00 &&
			    u2 < 0xe000) {
				j->p += 6;
				u = 0x10000 + ((u - 0xd800) << 10) + (u2 - 0xdc00);
			} else
				u = 0xfffd;
		}
		*r = u;
		return 1;
	default:
		return -1;
	}
	j->p += 2;
	return 1;
}

/* A key (j->p at its quote), folded as Go matches it to a field name. */
static int
read_key(struct jp *j, char key[JSON_SCALAR_MAX + 1], size_t *kn)
{
	long	 r;
	int	 rc, c;

	*kn = 0;
	j->p++;
	while ((rc = str_next(j, &r)) == 1) {
		/* U+017F and U+212A are the two that fold to ASCII */
		c = r < 0x80 ? lower((int)r) : r == 0x17f ? 's' :
		    r == 0x212a ? 'k' : 0x80;
		if (*kn <= JSON_SCALAR_MAX)
			key[*kn] = (char)c;
		if (*kn <= JSON_SCALAR_MAX)
			(*kn)++;	/* more than JSON_SCALAR_MAX: no field */
	}
	return rc;
}

/* A string (j->p at its quote) decoded into path i's value. */
static int
read_value(struct jp *j, int i)
{
	char	*out = j->out[i];
	size_t	 n = 0, m;
	long	 r;
	int	 rc, nul = 0;
	char	 u[4];

	j->p++;
	while ((rc = str_next(j, &r)) == 1) {
		if (r < 0x80) {
			u[0] = (char)r;
			m = 1;
			nul |= r == 0;
		} else if (r < 0x800) {
			u[0] = (char)(0xc0 | r >> 6);
			u[1] = (char)(0x80 | (r & 0x3f));
			m = 2;
		} else if (r < 0x10000) {
			u[0] = (char)(0xe0 | r >> 12);
			u[1] = (char)(0x80 | (r >> 6 & 0x3f));
			u[2] = (char)(0x80 | (r & 0x3f));
			m = 3;
		} else {
			u[0] = (char)(0xf0 | r >> 18);
			u[1] = (char)(0x80 | (r >> 12 & 0x3f));
			u[2] = (char)(0x80 | (r >> 6 & 0x3f));
			u[3] = (char)(0x80 | (r & 0x3f));
			m = 4;
		}
		if (n <= JSON_SCALAR_MAX && m <= JSON_SCALAR_MAX - n)
			memcpy(out + n, u, m);
		n = n <= JSON_SCALAR_MAX ? n + m : n;	/* no wrap */
	}
	if (rc == -1)
		return -1;
	if (n > JSON_SCALAR_MAX || nul) {
		out[0] = '\0';
		j->found[i] = JF_OTHER;
	} else {
		out[n] = '\0';
		j->found[i] = JF_VALUE;
	}
	return 0;
}

static int
digit(const struct jp *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

/* A number as Go's scanner takes it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
number(struct jp *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (!digit(j))
		return -1;
	if (*j->p++ != '0')
		while (digit(j))
			j->p++;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!digit(j))
			return -1;
		while (digit(j))
			j->p++;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!digit(j))
			return -1;
		while (digit(j))
			j->p++;
	}
	return 0;
}

/*
 * The number s (n bytes, JSON's syntax) as a rule's value reads: an
 * integer below 1e15 in magnitude as one (10.0 and 1e1 are 10), anything
 * else as %.15g. strtod and Go's ParseFloat both round correctly, at any
 * length. 0, or -1 when a long number finds no memory.
 */
static int
number_text(const char *s, size_t n, char *out)
{
	char	 buf[128], *t = buf;
	double	 d;

	if (n >= sizeof(buf) && (t = malloc(n + 1)) == NULL)
		return -1;
	memcpy(t, s, n);
	t[n] = '\0';
	d = strtod(t, NULL);
	if (t != buf)
		free(t);
	if (d > -1e15 && d < 1e15 && d == trunc(d))
		snprintf(out, JSON_SCALAR_MAX + 1, "%lld", (long long)d);
	else
		snprintf(out, JSON_SCALAR_MAX + 1, "%.15g", d);
	return 0;
}

static int
literal(struct jp *j, const char *word)
{
	size_t	 n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return -1;
	j->p += n;
	return 0;
}

/* A scalar's syntax (j->p at it), read and not kept. */
static int
skip_scalar(struct jp *j)
{
	long	 r;
	int	 rc;

	switch (*j->p) {
	case '"':
		j->p++;
		while ((rc = str_next(j, &r)) == 1)
			;
		return rc;
	case 't':
		return literal(j, "true");
	case 'f':
		return literal(j, "false");
	case 'n':
		return literal(j, "null");
	}
	return number(j);
}

/* After '{' or ',' in an object: a key, and the ':' after it. */
static int
skip_key(struct jp *j)
{
	ws(j);
	if (j->p == j->end || *j->p != '"' || skip_scalar(j) == -1)
		return -1;
	ws(j);
	if (j->p == j->end || *j->p != ':')
		return -1;
	j->p++;
	return 0;
}

/*
 * Any value at j->p, checked and not kept. One bit per open bracket
 * (object or array) says what a ',' leads to; JSON_DEPTH_MAX counts from
 * the top of the body.
 */
static int
skip_value(struct jp *j)
{
	unsigned char	 obj[JSON_DEPTH_MAX / 8 + 1];
	size_t		 d = 0;
	int		 c;

	for (;;) {
		ws(j);
		if (j->p == j->end)
			return -1;
		c = (unsigned char)*j->p;
		if (c == '{' || c == '[') {
			if (j->depth + d >= JSON_DEPTH_MAX)
				return -1;
			if (c == '{')
				obj[d / 8] |= (unsigned char)(1u << d % 8);
			else
				obj[d / 8] &= (unsigned char)~(1u << d % 8);
			d++;
			j->p++;
			ws(j);
			if (j->p < j->end && *j->p == (c == '{' ? '}' : ']')) {
				j->p++;
				d--;
			} else if (c == '{' && skip_key(j) == -1)
				return -1;
			else
				continue;	/* to the first value in it */
		} else if (skip_scalar(j) == -1)
			return -1;
		/* after a value: close brackets, or on to the next value */
		for (;;) {
			int	 in_obj;

			if (d == 0)
				return 0;
			in_obj = obj[(d - 1) / 8] >> (d - 1) % 8 & 1;
			ws(j);
			if (j->p == j->end)
				return -1;
			if (*j->p == ',') {
				j->p++;
				if (in_obj && skip_key(j) == -1)
					return -1;
				break;
			}
			if (*j->p != (in_obj ? '}' : ']'))
				return -1;
			j->p++;
			d--;
		}
	}
}

static int	object(struct jp *, int);

/* The value of a member that leads to node. */
static int
node_value(struct jp *j, int node)
{
	const struct jnode	*nd = &j->t->n[node];
	int			 leaf = nd->leaf;

	if (j->p == j->end)
		return -1;
	switch (*j->p) {
	case '{':
	case '[':
		if (leaf >= 0) {	/* no scalar any more */
			j->out[leaf][0] = '\0';
			j->found[leaf] = JF_ABSENT;
		}
		return *j->p == '{' && nd->child >= 0 ? object(j, node) :
		    skip_value(j);
	case '"':
		return leaf >= 0 ? read_value(j, leaf) : skip_scalar(j);
	case 'n':
		return literal(j, "null");	/* leaves the value as it was */
	case 't':
	case 'f':
		{
			const char *word = *j->p == 't' ? "true" : "false";

			if (literal(j, word) == -1)
				return -1;
			if (leaf >= 0) {
				memcpy(j->out[leaf], word, strlen(word) + 1);
				j->found[leaf] = JF_VALUE;
			}
		}
		return 0;
	}
	{
		const char	*start = j->p;

		if (number(j) == -1)
			return -1;
		if (leaf >= 0) {
			if (number_text(start, (size_t)(j->p - start),
			    j->out[leaf]) == -1)
				return -1;
			j->found[leaf] = JF_VALUE;
		}
		return 0;
	}
}

/* The object at j->p, its members matched to node's children. */
static int
object(struct jp *j, int node)
{
	char	 key[JSON_SCALAR_MAX + 1];
	size_t	 kn;
	int	 c;

	if (j->depth >= JSON_DEPTH_MAX)
		return -1;
	j->depth++;
	j->p++;
	ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		ws(j);
		if (j->p == j->end || *j->p != '"' || read_key(j, key, &kn) == -1)
			return -1;
		ws(j);
		if (j->p == j->end || *j->p != ':')
			return -1;
		j->p++;
		ws(j);
		for (c = j->t->n[node].child; c >= 0; c = j->t->n[c].next)
			if (seg_eq(j->t->n[c].seg, j->t->n[c].len, key, kn))
				break;
		if ((c >= 0 ? node_value(j, c) : skip_value(j)) == -1)
			return -1;
		ws(j);
		if (j->p == j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p != '}')
			return -1;
		j->p++;
		j->depth--;
		return 0;
	}
}

int
json_fields(const char *body, size_t len, const char *const *paths, size_t n,
    char (*out)[JSON_SCALAR_MAX + 1], int *found)
{
	struct jtree	 t;
	struct jp	 j;
	int		 node[JSON_PATHS_MAX];
	size_t		 i;
	int		 rc;

	for (i = 0; i < n; i++) {
		out[i][0] = '\0';
		found[i] = JF_ABSENT;
	}
	if (body == NULL || len == 0)
		return -1;		/* Go: unexpected end of JSON input */
	t.nn = 1;
	t.n[0].child = t.n[0].next = t.n[0].leaf = -1;
	for (i = 0; i < n && i < JSON_PATHS_MAX; i++)
		if ((node[i] = tree_add(&t, paths[i])) >= 0 &&
		    t.n[node[i]].leaf < 0)
			t.n[node[i]].leaf = (short)i;
	memset(&j, 0, sizeof(j));
	j.p = body;
	j.end = body + len;
	j.t = &t;
	j.out = out;
	j.found = found;
	ws(&j);
	if (j.p == j.end)
		rc = -1;
	else if (*j.p == '{')
		rc = object(&j, 0);
	else if (*j.p == 'n')
		rc = literal(&j, "null");	/* Go: nothing set, no error */
	else
		rc = -1;	/* Go's type error for the struct: refused */
	if (rc == 0) {
		ws(&j);
		rc = j.p == j.end ? 0 : -1;
	}
	for (i = 0; i < n; i++) {
		if (rc == -1 || i >= JSON_PATHS_MAX || node[i] < 0) {
			out[i][0] = '\0';
			found[i] = JF_ABSENT;
		} else if ((size_t)t.n[node[i]].leaf != i) {
			/* the same field spelt another way */
			memcpy(out[i], out[t.n[node[i]].leaf], sizeof(out[i]));
			found[i] = found[t.n[node[i]].leaf];
		}
	}
	return rc;
}
