#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonread.h"
#include "util.h"

/*
 * JSON that others wrote, read as the old gateway reads it: new-api
 * decodes a body with Go's encoding/json into its structs, so a price
 * that reads the body any other way can be steered by a client (a field
 * Go takes and we do not, or the other way round), and an answer is read
 * by the same rules so that there is one way to read JSON here. The rules
 * are in jsonread.h; two of Go's that are not obvious:
 *
 *  - a value of another kind on the way to a path (a string where the
 *    struct is) is Go's type error, which Unmarshal reports after reading
 *    on: the rest is read, and the caller does not refuse the body for it;
 *  - a second object on a path is decoded into the same struct, merging.
 *
 * The tree of wanted paths is built on the stack; members nobody wants are
 * stepped over by an iterative reader that keeps one bit per open
 * bracket, so neither depth nor length costs more than a pass. Nothing is
 * allocated, but for the text of a number longer than 127 bytes.
 */

#define SEGS_MAX	32	/* segments of one path */
#define NODES_MAX	(1 + JSON_PATHS_MAX * SEGS_MAX)
#define INDEX_MAX	(1 << 20)	/* array indexes a path names */

struct jnode {
	const char	*seg;		/* into its path, not NUL-terminated */
	short		 child, next;	/* -1: none */
	short		 leaf;		/* the first path ending here, or -1 */
	unsigned char	 len;
	long		 index;		/* the segment's digits, or -1 */
};

struct jtree {
	struct jnode	 n[NODES_MAX];
	size_t		 nn;
};

struct jp {
	const char		*p, *end;
	size_t			 depth;		/* brackets open around p */
	const struct jtree	*t;
	struct json_value	*v;
	int			 flags;
};

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int
seg_char(int c, int flags)
{
	if (flags & JSON_ANYSEG)
		return c > 0x20 && c < 0x7f && c != '.';
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
path_ok(const char *path, int flags)
{
	size_t	 seg = 0, nseg = 1;

	for (; *path != '\0'; path++) {
		if (*path == '.') {
			if (seg == 0 || ++nseg > SEGS_MAX)
				return 0;
			seg = 0;
		} else if (!seg_char((unsigned char)*path, flags) ||
		    ++seg > JSON_SCALAR_MAX)
			return 0;
	}
	return seg > 0;
}

/* The index a segment of digits names, or -1. */
static long
seg_index(const char *s, size_t len)
{
	long	 i = 0;
	size_t	 k;

	for (k = 0; k < len; k++) {
		if (s[k] < '0' || s[k] > '9')
			return -1;
		i = i * 10 + (s[k] - '0');
		if (i > INDEX_MAX)
			return -1;
	}
	return i;
}

/* The node of a path, added to the tree; -1 when it is no dotted name. */
static int
tree_add(struct jtree *t, const char *path, int flags)
{
	const char	*s;
	size_t		 len;
	int		 node = 0, c;

	if (!path_ok(path, flags))
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
			t->n[c].index = seg_index(s, len);
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

/* A rune as UTF-8 into u: its bytes. */
static size_t
utf8_put(long r, char u[4])
{
	if (r < 0x80) {
		u[0] = (char)r;
		return 1;
	}
	if (r < 0x800) {
		u[0] = (char)(0xc0 | r >> 6);
		u[1] = (char)(0x80 | (r & 0x3f));
		return 2;
	}
	if (r < 0x10000) {
		u[0] = (char)(0xe0 | r >> 12);
		u[1] = (char)(0x80 | (r >> 6 & 0x3f));
		u[2] = (char)(0x80 | (r & 0x3f));
		return 3;
	}
	u[0] = (char)(0xf0 | r >> 18);
	u[1] = (char)(0x80 | (r >> 12 & 0x3f));
	u[2] = (char)(0x80 | (r >> 6 & 0x3f));
	u[3] = (char)(0x80 | (r & 0x3f));
	return 4;
}

/*
 * The string at j->p (at its quote) decoded into out (outsz > 0: its
 * first whole characters, NUL-terminated), *len its whole length. 0, or
 * -1 when it is no JSON string.
 */
static int
decode(struct jp *j, char *out, size_t outsz, size_t *len)
{
	size_t	 o = 0, n = 0, m;
	long	 r;
	int	 rc, full = 0;
	char	 u[4];

	j->p++;
	while ((rc = str_next(j, &r)) == 1) {
		m = utf8_put(r, u);
		if (!full && m < outsz - o) {
			memcpy(out + o, u, m);
			o += m;
		} else
			full = 1;
		n += m;
	}
	out[o] = '\0';
	*len = n;
	return rc;
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
static int	array(struct jp *, int);

/* The kind of the value that starts with c. */
static enum json_kind
kind_of(int c)
{
	switch (c) {
	case '"':
		return JSON_STRING;
	case '{':
		return JSON_OBJECT;
	case '[':
		return JSON_ARRAY;
	case 't':
		return JSON_TRUE;
	case 'f':
		return JSON_FALSE;
	case 'n':
		return JSON_NULL;
	}
	return JSON_NUMBER;
}

/* The value of a member (or element) that leads to node. */
static int
node_value(struct jp *j, int node)
{
	const struct jnode	*nd = &j->t->n[node];
	const char		*start = j->p;
	enum json_kind		 kind;
	int			 rc;

	if (j->p == j->end)
		return -1;
	switch (kind = kind_of((unsigned char)*j->p)) {
	case JSON_OBJECT:
		rc = nd->child >= 0 ? object(j, node) : skip_value(j);
		break;
	case JSON_ARRAY:
		rc = nd->child >= 0 && (j->flags & JSON_INDEX) ?
		    array(j, node) : skip_value(j);
		break;
	case JSON_NULL:
		return literal(j, "null");	/* leaves the value as it was */
	case JSON_TRUE:
		rc = literal(j, "true");
		break;
	case JSON_FALSE:
		rc = literal(j, "false");
		break;
	case JSON_STRING:
		rc = skip_scalar(j);
		break;
	default:
		rc = number(j);
		break;
	}
	if (rc == 0 && nd->leaf >= 0) {
		j->v[nd->leaf].kind = kind;
		j->v[nd->leaf].p = start;
		j->v[nd->leaf].n = (size_t)(j->p - start);
	}
	return rc;
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

/* The array at j->p, its elements matched to node's children by index. */
static int
array(struct jp *j, int node)
{
	long	 i;
	int	 c;

	if (j->depth >= JSON_DEPTH_MAX)
		return -1;
	j->depth++;
	j->p++;
	ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		j->depth--;
		return 0;
	}
	for (i = 0;; i++) {
		ws(j);
		for (c = j->t->n[node].child; c >= 0; c = j->t->n[c].next)
			if (j->t->n[c].index == i)
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
		if (*j->p != ']')
			return -1;
		j->p++;
		j->depth--;
		return 0;
	}
}

int
json_values(const char *text, size_t len, const char *const *paths, size_t n,
    int flags, struct json_value *v)
{
	struct jtree	 t;
	struct jp	 j;
	int		 node[JSON_PATHS_MAX];
	size_t		 i;
	int		 rc;

	for (i = 0; i < n; i++) {
		v[i].kind = JSON_NONE;
		v[i].p = NULL;
		v[i].n = 0;
	}
	if (text == NULL || len == 0)
		return -1;		/* Go: unexpected end of JSON input */
	t.nn = 1;
	t.n[0].child = t.n[0].next = t.n[0].leaf = -1;
	for (i = 0; i < n && i < JSON_PATHS_MAX; i++)
		if ((node[i] = tree_add(&t, paths[i], flags)) >= 0 &&
		    t.n[node[i]].leaf < 0)
			t.n[node[i]].leaf = (short)i;
	memset(&j, 0, sizeof(j));
	j.p = text;
	j.end = text + len;
	j.t = &t;
	j.v = v;
	j.flags = flags;
	ws(&j);
	if (j.p == j.end)
		rc = -1;
	else if (flags & JSON_INDEX)
		rc = node_value(&j, 0);	/* the root is no path's */
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
			v[i].kind = JSON_NONE;
			v[i].p = NULL;
			v[i].n = 0;
		} else if ((size_t)t.n[node[i]].leaf != i)
			v[i] = v[t.n[node[i]].leaf];	/* the same field
							   spelt another way */
	}
	return rc;
}

int
json_fields(const char *body, size_t len, const char *const *paths, size_t n,
    char (*out)[JSON_SCALAR_MAX + 1], int *found)
{
	struct json_value	 v[JSON_PATHS_MAX];
	size_t			 i, m = n < JSON_PATHS_MAX ? n : JSON_PATHS_MAX;
	size_t			 sn;
	int			 rc;

	for (i = 0; i < n; i++) {
		out[i][0] = '\0';
		found[i] = JF_ABSENT;
	}
	rc = json_values(body, len, paths, m, 0, v);
	for (i = 0; rc == 0 && i < m; i++) {
		switch (v[i].kind) {
		case JSON_STRING:
			sn = json_text(&v[i], out[i], JSON_SCALAR_MAX + 1);
			if (sn > JSON_SCALAR_MAX || strlen(out[i]) != sn) {
				out[i][0] = '\0';
				found[i] = JF_OTHER;
			} else
				found[i] = JF_VALUE;
			break;
		case JSON_NUMBER:
			if ((rc = number_text(v[i].p, v[i].n, out[i])) == 0)
				found[i] = JF_VALUE;
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			strlcpy_(out[i], v[i].kind == JSON_TRUE ? "true" : "false",
			    JSON_SCALAR_MAX + 1);
			found[i] = JF_VALUE;
			break;
		default:
			break;
		}
	}
	if (rc == -1)
		for (i = 0; i < n; i++) {
			out[i][0] = '\0';
			found[i] = JF_ABSENT;
		}
	return rc;
}

int
json_parse(const char *text, size_t len, struct json_value *top)
{
	struct jp	 j;

	memset(&j, 0, sizeof(j));
	memset(top, 0, sizeof(*top));
	if (text == NULL)
		return -1;
	j.p = text;
	j.end = text + len;
	ws(&j);
	if (j.p == j.end)
		return -1;
	top->p = j.p;
	top->kind = kind_of((unsigned char)*j.p);
	if (skip_value(&j) == -1)
		return -1;
	top->n = (size_t)(j.p - top->p);
	ws(&j);
	if (j.p != j.end) {
		memset(top, 0, sizeof(*top));
		return -1;
	}
	return 0;
}

int
json_each(const struct json_value *v, int (*each)(void *, const char *,
    size_t, const struct json_value *), void *arg)
{
	struct json_value	 val;
	struct jp		 j;
	char			 key[JSON_SCALAR_MAX + 1];
	size_t			 kn = 0;
	char			 close;

	if (v->kind != JSON_OBJECT && v->kind != JSON_ARRAY)
		return 0;
	close = v->kind == JSON_OBJECT ? '}' : ']';
	memset(&j, 0, sizeof(j));
	j.p = v->p + 1;
	j.end = v->p + v->n;
	ws(&j);
	if (j.p < j.end && *j.p == close)
		return 0;
	for (;;) {
		ws(&j);
		if (close == '}') {
			if (j.p == j.end || *j.p != '"' ||
			    decode(&j, key, sizeof(key), &kn) == -1)
				return -1;
			ws(&j);
			if (j.p == j.end || *j.p++ != ':')
				return -1;
			ws(&j);
		}
		if (j.p == j.end)
			return -1;
		val.p = j.p;
		val.kind = kind_of((unsigned char)*j.p);
		if (skip_value(&j) == -1)
			return -1;
		val.n = (size_t)(j.p - val.p);
		if (each(arg, close == '}' ? key : NULL, close == '}' ? kn : 0,
		    &val) == -1)
			return -1;
		ws(&j);
		if (j.p == j.end)
			return -1;
		if (*j.p == ',') {
			j.p++;
			continue;
		}
		return *j.p == close ? 0 : -1;
	}
}

size_t
json_text(const struct json_value *v, char *out, size_t outsz)
{
	struct jp	 j;
	size_t		 n;

	out[0] = '\0';
	if (v->kind != JSON_STRING)
		return 0;
	memset(&j, 0, sizeof(j));
	j.p = v->p;
	j.end = v->p + v->n;
	if (decode(&j, out, outsz, &n) == -1) {
		out[0] = '\0';
		return 0;
	}
	return n;
}

size_t
json_compact(const struct json_value *v, char *out, size_t outsz)
{
	size_t	 i, o = 0, n = 0;
	int	 in_str = 0, esc = 0;
	char	 c;

	for (i = 0; v->p != NULL && i < v->n; i++) {
		c = v->p[i];
		if (in_str) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"')
				in_str = 0;
		} else if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
			continue;
		else if (c == '"')
			in_str = 1;
		if (o + 1 < outsz)
			out[o++] = c;
		n++;
	}
	out[o] = '\0';
	return n;
}

/*
 * ---- tolerant mode ----
 *
 * The string at *pp (at its '"'), decoded a character at a time: to s->ch
 * when key is NULL, else folded into key (JSON_SCAN_KEY, *kn its length,
 * JSON_SCAN_KEY + 1 when it is longer). Leaves *pp past the closing
 * quote, or at end when there is none.
 */
static void
scan_string(const char **pp, const char *end, const struct json_scan *s,
    char *key, size_t *kn)
{
	const char	*p = *pp + 1;
	int		 c, u;

	if (kn != NULL)
		*kn = 0;
	while (p < end && *p != '"') {
		c = (unsigned char)*p++;
		if (c == '\\' && p < end) {
			c = (unsigned char)*p++;
			switch (c) {
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				if (end - p < 4 || (u = hex4(p)) == -1) {
					c = 0x80;
					break;
				}
				p += 4;
				/* the two non-ASCII letters Go folds to ASCII */
				c = u == 0x017f ? 's' : u == 0x212a ? 'k' :
				    u < 0x80 ? u : 0x80;
				break;
			}
		} else if (c == 0xc5 && end - p >= 1 &&
		    (unsigned char)p[0] == 0xbf) {
			p += 1;
			c = 's';		/* U+017F in UTF-8 */
		} else if (c == 0xe2 && end - p >= 2 &&
		    (unsigned char)p[0] == 0x84 && (unsigned char)p[1] == 0xaa) {
			p += 2;
			c = 'k';		/* U+212A in UTF-8 */
		} else if (c >= 0x80)
			c = 0x80;
		if (key == NULL)
			s->ch(s->arg, c);
		else if (*kn < JSON_SCAN_KEY)
			key[(*kn)++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		else
			*kn = JSON_SCAN_KEY + 1;
	}
	if (key == NULL)
		s->ch(s->arg, -1);
	*pp = p < end ? p + 1 : end;
}

static int
bare_char(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || c == '-' || c == '+' || c == '.';
}

/* A bare token at *pp, handed on whole. */
static void
scan_bare(const char **pp, const char *end, const struct json_scan *s)
{
	const char	*q;

	for (q = *pp; q < end && bare_char(*q); q++)
		;
	s->bare(s->arg, *pp, (size_t)(q - *pp));
	*pp = q;
}

/*
 * The scan keeps a nesting counter and the level of the wanted array it
 * is in, nothing else: a text nested deeper than anything still has its
 * values found.
 */
void
json_scan(const char *text, size_t len, const struct json_scan *s)
{
	const char	*p = text, *end = text + len;
	char		 key[JSON_SCAN_KEY];
	size_t		 depth = 0, list = 0, kn;	/* list: depth of a
							   wanted array */

	while (p < end) {
		switch (*p) {
		case '{':
		case '[':
			depth++;
			p++;
			continue;
		case '}':
		case ']':
			if (list != 0 && depth == list)
				list = 0;
			if (depth > 0)
				depth--;
			p++;
			continue;
		case '"':
			if (list != 0 && depth == list) {	/* an element */
				scan_string(&p, end, s, NULL, NULL);
				continue;
			}
			scan_string(&p, end, s, key, &kn);
			break;
		default:
			if (list != 0 && depth == list && bare_char(*p))
				scan_bare(&p, end, s);
			else
				p++;
			continue;
		}
		/* after a string: a key when ':' follows */
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r'))
			p++;
		if (p == end || *p != ':' || kn > JSON_SCAN_KEY ||
		    !s->want(s->arg, key, kn))
			continue;
		p++;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r'))
			p++;
		if (p == end)
			break;
		if (*p == '"')
			scan_string(&p, end, s, NULL, NULL);
		else if (*p == '[') {
			depth++;
			list = depth;
			p++;
		} else if (bare_char(*p))
			scan_bare(&p, end, s);
	}
}
