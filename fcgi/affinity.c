#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "relay.h"
#include "shared.h"
#include "util.h"

/*
 * Task ids, both ways: found in an upstream answer to remember which
 * channel made the task, and found in a later request to send it there.
 * Only ids of [A-Za-z0-9_.:-] are kept, so a list joins with ','.
 */

static int
id_ok(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n > TASK_ID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.' ||
		    c == ':'))
			return 0;
	}
	return 1;
}

/* NOTE: an id that does not fit any more sets overflow; see relay.h. */
static void
add(struct task_ids *t, const char *s, size_t n)
{
	size_t	 i;

	if (!id_ok(s, n))
		return;
	for (i = 0; i < t->n; i++)
		if (strlen(t->id[i]) == n && memcmp(t->id[i], s, n) == 0)
			return;
	if (t->n == TASK_IDS_MAX) {
		t->overflow = 1;
		return;
	}
	memcpy(t->id[t->n], s, n);
	t->id[t->n][n] = '\0';
	t->n++;
}

static void
add_all(struct task_ids *t, const struct task_ids *from)
{
	size_t	 i;

	for (i = 0; i < from->n; i++)
		add(t, from->id[i], strlen(from->id[i]));
}

/*
 * The JSON around task ids is read by a small reader that allocates
 * nothing: json-c built a tree of the whole answer for the two or three
 * strings wanted, a seventh of a worker's instructions per request. It takes
 * RFC 8259 JSON, nested at most JSON_DEPTH deep and at most JSON_MAX
 * long; text that is not names no task. Where json-c was looser or did
 * something of its own, this does the same: control characters raw in a
 * string and loose numbers ("0.") pass, of a key given twice in one object
 * the last counts, a string ends at a \u0000, and an integer names a task
 * as its 64-bit value prints. The fuzz target compares the two.
 */
#define JSON_MAX	(64 * 1024)
#define JSON_DEPTH	32

struct jr {
	const char	*p, *end;
	int		 depth;
};

/* A value that can be a task id: a string, or an integer, decoded. */
struct jid {
	char	 s[TASK_ID_MAX + 2];
	size_t	 n;		/* 0 or > TASK_ID_MAX: not one (see add) */
};

static void
jr_ws(struct jr *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/*
 * The string at j->p (at its '"'), decoded into out (outsz, which keeps
 * what fits) with *n its whole decoded length, up to a \u0000 as json-c
 * had it; a character beyond ASCII is kept as 0x80, which no task id or key
 * we look for has. 0, or -1.
 */
static int
jr_string(struct jr *j, char *out, size_t outsz, size_t *n)
{
	const char	*p = j->p + 1, *end = j->end;
	size_t		 len = 0;
	int		 cut = 0, u;

	for (; p < end; p++) {
		unsigned char	 c = (unsigned char)*p;

		if (c == '"') {
			j->p = p + 1;
			*n = len;
			return 0;
		}
		if (c == '\\') {
			if (++p == end)
				return -1;
			switch (*p) {
			case '"': case '\\': case '/': c = (unsigned char)*p; break;
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case 'u':
				if (end - p < 5 || (u = hex4(p + 1)) == -1)
					return -1;
				p += 4;
				c = u < 0x80 ? (unsigned char)u : 0x80;
				break;
			default:
				return -1;
			}
			if (c == '\0')		/* as a C string, it ends here */
				cut = 1;
		} else if (c >= 0x80)
			c = 0x80;
		if (cut)
			continue;
		if (len < outsz)
			out[len] = (char)c;
		len++;
	}
	return -1;
}

/*
 * A number, read loosely (json-c took "0." and "1e" too); *integer is set
 * when it is digits after an optional minus sign.
 */
static int
jr_number(struct jr *j, int *integer)
{
	const char	*p = j->p;
	size_t		 i;

	while (p < j->end && ((*p >= '0' && *p <= '9') || *p == '-' ||
	    *p == '+' || *p == '.' || *p == 'e' || *p == 'E'))
		p++;
	if (p == j->p)
		return -1;
	i = *j->p == '-';
	*integer = (size_t)(p - j->p) > i;
	for (; j->p + i < p; i++)
		if (j->p[i] < '0' || j->p[i] > '9')
			*integer = 0;
	j->p = p;
	return 0;
}

static int	jr_value(struct jr *, struct jid *);

/*
 * Call each(arg, key, keylen) at every member of the object or element of
 * the array at j->p (keylen -1 for elements), with j->p at its value; each
 * must read the value. 0, or -1.
 */
static int
jr_members(struct jr *j, int (*each)(void *, struct jr *, const char *, int),
    void *arg)
{
	char	 key[JSON_SCALAR_MAX + 1];	/* the longest key wanted */
	char	 close = *j->p == '{' ? '}' : ']';
	size_t	 kn;

	if (++j->depth > JSON_DEPTH)
		return -1;
	j->p++;
	jr_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		int	 kl = -1;

		jr_ws(j);
		if (close == '}') {
			if (j->p == j->end || *j->p != '"' ||
			    jr_string(j, key, sizeof(key), &kn) == -1)
				return -1;
			kl = kn < sizeof(key) ? (int)kn : (int)sizeof(key);
			jr_ws(j);
			if (j->p == j->end || *j->p++ != ':')
				return -1;
			jr_ws(j);
		}
		if ((each ? each(arg, j, key, kl) : jr_value(j, NULL)) == -1)
			return -1;
		jr_ws(j);
		if (j->p == j->end)
			return -1;
		if (*j->p == ',') {
			j->p++;
			continue;
		}
		if (*j->p++ != close)
			return -1;
		j->depth--;
		return 0;
	}
}

/* Any value; into id (n 0 when it cannot be one) if wanted. */
static int
jr_value(struct jr *j, struct jid *id)
{
	static const char *const lit[] = { "true", "false", "null" };
	const char	*start = j->p;
	size_t		 i, n;
	int		 integer;

	if (id != NULL)
		id->n = 0;
	if (j->p == j->end)
		return -1;
	switch (*j->p) {
	case '{':
	case '[':
		return jr_members(j, NULL, NULL);
	case '"':
		if (id == NULL)
			return jr_string(j, NULL, 0, &n);
		return jr_string(j, id->s, sizeof(id->s), &id->n);
	case 't': case 'f': case 'n':
		for (i = 0; i < 3; i++) {
			n = strlen(lit[i]);
			if ((size_t)(j->end - j->p) >= n &&
			    memcmp(j->p, lit[i], n) == 0) {
				j->p += n;
				return 0;
			}
		}
		return -1;
	}
	if (jr_number(j, &integer) == -1)
		return -1;
	n = (size_t)(j->p - start);
	if (id != NULL && integer) {	/* as json-c has it: clamped */
		char	 num[48];
		int	 w;

		if (n >= sizeof(num))	/* beyond either range */
			n = strlcpy_(num, *start == '-' ? "-99999999999999999999" :
			    "99999999999999999999", sizeof(num));
		else {
			memcpy(num, start, n);
			num[n] = '\0';
		}
		w = *num == '-' ?
		    snprintf(id->s, sizeof(id->s), "%lld", strtoll(num, NULL, 10)) :
		    snprintf(id->s, sizeof(id->s), "%llu", strtoull(num, NULL, 10));
		id->n = (size_t)w;
	}
	return 0;
}

static int
key_is(const char *key, int kl, const char *want)
{
	return kl >= 0 && (size_t)kl == strlen(want) && memcmp(key, want, kl) == 0;
}

/* The members named in keys[] of one object; the last of a name counts. */
struct jfields {
	const char *const	*keys;
	size_t			 nkeys;
	struct jid		 v[3];
};

static int
fields_each(void *arg, struct jr *j, const char *key, int kl)
{
	struct jfields	*f = arg;
	size_t		 k;

	for (k = 0; k < f->nkeys; k++)
		if (key_is(key, kl, f->keys[k]))
			return jr_value(j, &f->v[k]);
	return jr_value(j, NULL);
}

/*
 * The value at j->p: if an object, add its members named in keys[] to t,
 * in that order. 0, or -1 when it is not JSON.
 */
static int
jr_fields(struct jr *j, const char *const *keys, size_t nkeys,
    struct task_ids *t)
{
	struct jfields	 f;
	size_t		 k;

	if (j->p == j->end || *j->p != '{')
		return jr_value(j, NULL);
	memset(&f, 0, sizeof(f));
	f.keys = keys;
	f.nkeys = nkeys;
	if (jr_members(j, fields_each, &f) == -1)
		return -1;
	for (k = 0; k < nkeys; k++)
		add(t, f.v[k].s, f.v[k].n);
	return 0;
}

static const char *const k_task[] = { "task_id", "id", "clip_id" };
static const char *const k_id[] = { "id" };

/* An answer's top level: its ids, data's (object or array), clips'. */
struct answer {
	struct jid	 top[2];
	struct task_ids	 data, clips;
};

static int
data_each(void *arg, struct jr *j, const char *key, int kl)
{
	return jr_fields(j, k_task, 3, arg);
}

static int
clips_each(void *arg, struct jr *j, const char *key, int kl)
{
	return jr_fields(j, k_id, 1, arg);
}

static int
answer_each(void *arg, struct jr *j, const char *key, int kl)
{
	struct answer	*a = arg;

	if (key_is(key, kl, "task_id"))
		return jr_value(j, &a->top[0]);
	if (key_is(key, kl, "id"))
		return jr_value(j, &a->top[1]);
	if (key_is(key, kl, "data")) {
		struct jid	 id;

		a->data.n = 0;
		if (*j->p == '[')
			return jr_members(j, data_each, &a->data);
		if (*j->p == '"') {	/* Suno's submit: {"data":"<id>"} */
			if (jr_value(j, &id) == -1)
				return -1;
			add(&a->data, id.s, id.n);
			return 0;
		}
		return jr_fields(j, k_task, 2, &a->data);
	}
	if (key_is(key, kl, "clips")) {
		a->clips.n = 0;
		if (*j->p == '[')
			return jr_members(j, clips_each, &a->clips);
	}
	return jr_value(j, NULL);
}

/* Whole text: the top-level value at p, and nothing but space after it. */
static int
jr_document(struct jr *j, const char *p, size_t n)
{
	j->p = p;
	j->end = p + n;
	j->depth = 0;
	if (n == 0 || n > JSON_MAX)
		return -1;
	jr_ws(j);
	return j->p < j->end && *j->p == '{' ? 0 : -1;
}

static int
jr_end(struct jr *j)
{
	jr_ws(j);
	return j->p == j->end ? 0 : -1;
}

void
task_ids_from_answer(struct task_ids *t, const char *body, size_t len)
{
	struct answer	 a;
	struct jr	 j;

	memset(t, 0, sizeof(*t));
	memset(&a, 0, sizeof(a));
	if (jr_document(&j, body, len) == -1 ||
	    jr_members(&j, answer_each, &a) == -1 || jr_end(&j) == -1)
		return;
	add(t, a.top[0].s, a.top[0].n);
	add(t, a.top[1].s, a.top[1].n);
	add_all(t, &a.data);
	add_all(t, &a.clips);
}

/*
 * The request side names tasks wherever the old gateway could read one,
 * and it reads more than one shape: Go's encoding/json matches a key to a
 * field tag without regard to case (and takes U+017F for 's' and U+212A
 * for 'k'), at whatever depth the struct nests, and a field may be a list.
 * So this reader is not a JSON parser but a scan: every string that is
 * followed by ':' is a key, and the value of a key in id_keys[] (compared
 * as Go would), or each element of an array that is that value, is a
 * candidate; a string value is also split at ','. It takes any length in
 * one pass, allocates nothing and keeps only a nesting counter, so a body
 * nested deeper than anything can still name its ids. Text that is not
 * JSON is scanned the same way: it can only add candidates, and a
 * candidate that is nobody's task costs nothing.
 */
static const char *const id_keys[] = {
	"task_id", "taskid", "task_ids", "taskids", "id", "ids",
	"clip_id", "clip_ids", "continue_clip_id", "video_id", "video_ids",
	"origin_task_id", "original_task_id", "parent_task_id",
	"source_task_id", "sourcetaskid",
};

#define KEY_MAX	24	/* longer than any of id_keys[] */

static int
id_key(const char *k, size_t n)
{
	size_t	 i;

	if (n > KEY_MAX)
		return 0;
	for (i = 0; i < sizeof(id_keys) / sizeof(id_keys[0]); i++)
		if (strlen(id_keys[i]) == n && memcmp(id_keys[i], k, n) == 0)
			return 1;
	return 0;
}

/* Comma-separated pieces of a decoded value, trimmed, each a candidate. */
struct pieces {
	struct task_ids	*t;
	char		 s[TASK_ID_MAX + 2];
	size_t		 n;	/* > TASK_ID_MAX: too long to be one */
};

static void
piece_end(struct pieces *pc)
{
	while (pc->n > 0 && pc->n <= TASK_ID_MAX &&
	    (pc->s[pc->n - 1] == ' ' || pc->s[pc->n - 1] == '\t'))
		pc->n--;
	if (pc->n <= TASK_ID_MAX)
		add(pc->t, pc->s, pc->n);
	pc->n = 0;
}

static void
piece_char(struct pieces *pc, int c)
{
	if (c == ',') {
		piece_end(pc);
		return;
	}
	if (pc->n == 0 && (c == ' ' || c == '\t'))
		return;
	if (pc->n <= TASK_ID_MAX)
		pc->s[pc->n] = (char)c;
	if (pc->n <= TASK_ID_MAX)
		pc->n++;
}

/*
 * The JSON string at *pp (at its '"'), decoded a character at a time:
 * into pieces when pc is set, else folded into key (KEY_MAX, *kn its
 * length, KEY_MAX + 1 when it cannot be one of id_keys[]). Leaves *pp
 * past the closing quote, or at end when there is none.
 */
static void
scan_string(const char **pp, const char *end, struct pieces *pc, char *key,
    size_t *kn)
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
		if (pc != NULL)
			piece_char(pc, c);
		else if (*kn < KEY_MAX)
			key[(*kn)++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		else
			*kn = KEY_MAX + 1;
	}
	if (pc != NULL)
		piece_end(pc);
	*pp = p < end ? p + 1 : end;
}

static int
scalar_char(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	    (c >= 'A' && c <= 'Z') || c == '-' || c == '+' || c == '.';
}

static void
scan_body(struct task_ids *t, const char *p, const char *end)
{
	struct pieces	 pc;
	char		 key[KEY_MAX];
	size_t		 depth = 0, list = 0, kn;	/* list: depth of an id list */
	const char	*q;

	pc.t = t;
	pc.n = 0;
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
				scan_string(&p, end, &pc, NULL, NULL);
				continue;
			}
			scan_string(&p, end, NULL, key, &kn);
			break;
		default:
			if (list != 0 && depth == list && scalar_char(*p)) {
				for (q = p; q < end && scalar_char(*q); q++)
					;
				add(t, p, (size_t)(q - p));
				p = q;
			} else
				p++;
			continue;
		}
		/* after a string: a key when ':' follows */
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r'))
			p++;
		if (p == end || *p != ':' || !id_key(key, kn))
			continue;
		p++;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
		    *p == '\r'))
			p++;
		if (p == end)
			break;
		if (*p == '"')
			scan_string(&p, end, &pc, NULL, NULL);
		else if (*p == '[') {
			depth++;
			list = depth;
			p++;
		} else if (scalar_char(*p)) {
			for (q = p; q < end && scalar_char(*q); q++)
				;
			add(t, p, (size_t)(q - p));
			p = q;
		}
	}
}

/* One %-decoded, '+'-as-space character of a URL part at *pp. */
static int
url_char(const char **pp, const char *end, int plus)
{
	const char	*p = *pp;
	int		 h, l;

	if (*p == '%' && end - p >= 3 && (h = hex_digit((unsigned char)p[1])) >= 0 &&
	    (l = hex_digit((unsigned char)p[2])) >= 0) {
		*pp = p + 3;
		return h << 4 | l;
	}
	*pp = p + 1;
	return plus && *p == '+' ? ' ' : (unsigned char)*p;
}

/* A %-encoded part (p, n) as pieces, the way the old gateway decodes it. */
static void
url_pieces(struct task_ids *t, const char *p, size_t n, int split)
{
	struct pieces	 pc;
	const char	*end = p + n;
	int		 c;

	pc.t = t;
	pc.n = 0;
	while (p < end) {
		c = url_char(&p, end, split);
		if (c == ',' && !split)
			c = 0x80;	/* a path segment is one id or none */
		piece_char(&pc, c);
	}
	piece_end(&pc);
}

/*
 * Where a task id stands in a path: at the end ("/tasks/{id}") or before
 * a last word ("/tasks/{id}/cancel", "/v2/tasks/{id}/creations"), as in
 * every task API the relay serves. The words before (v1, videos, the
 * service's own) are never ids, and a word that an upstream happened to
 * answer as a task id does not make them one.
 */
#define PATH_ID_SEGMENTS	2

void
task_ids_from_request(struct task_ids *t, const char *path, size_t pathlen,
    const char *query, const char *body, size_t bodylen, int unused)
{
	size_t		 i, start, n, seg = 0;

	memset(t, 0, sizeof(*t));
	/* the last segments after the service prefix, the last first */
	start = pathlen > 0 ? 1 + strcspn(path + 1, "/") : 0;
	if (start > pathlen)
		start = pathlen;
	for (i = pathlen; i > start && seg < PATH_ID_SEGMENTS;) {
		while (i > start && path[i - 1] == '/')
			i--;
		for (n = 0; i - n > start && path[i - n - 1] != '/'; n++)
			;
		if (n > 0) {
			url_pieces(t, path + i - n, n, 0);
			seg++;
		}
		i -= n;
	}
	/* the id keys of the query, in any case, and their lists */
	while (query != NULL && *query != '\0') {
		const char	*k = query, *kend, *eq;
		char		 key[KEY_MAX];
		size_t		 kn = 0;

		n = strcspn(query, "&;");
		eq = memchr(query, '=', n);
		kend = eq != NULL ? eq : query + n;
		while (k < kend) {
			int c = url_char(&k, kend, 1);
			if (kn == KEY_MAX) {
				kn = KEY_MAX + 1;
				break;
			}
			key[kn++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		if (eq != NULL && id_key(key, kn))
			url_pieces(t, eq + 1, (size_t)(query + n - eq - 1), 1);
		query += n;
		if (*query != '\0')
			query++;
	}
	if (body != NULL && bodylen > 0)
		scan_body(t, body, body + bodylen);
}

/*
 * Ids an upstream may well answer but that cannot be one task's alone:
 * shorter than WEAK_SHORT, or a word or words (lower-case letters joined
 * by '-', '_' or '.', as "status", "text-to-video") shorter than
 * WEAK_WORD. Random ids (UUIDs, numbers, mixed-case or hex strings) are
 * neither, short of a chance far below one in a thousand.
 */
#define WEAK_SHORT	8
#define WEAK_WORD	17

int
task_id_weak(const char *id)
{
	size_t	 i, n = strlen(id);

	if (n < WEAK_SHORT)
		return 1;
	if (n >= WEAK_WORD)
		return 0;
	for (i = 0; i < n; i++) {
		if (id[i] >= 'a' && id[i] <= 'z')
			continue;
		if ((id[i] == '-' || id[i] == '_' || id[i] == '.') && i > 0 &&
		    i + 1 < n && id[i - 1] >= 'a' && id[i - 1] <= 'z')
			continue;
		return 0;
	}
	return 1;
}

/* A %-decoded value (plus: '+' as space) as one id: 0, or -1. */
static int
one_id(const char *p, size_t n, int plus, char out[TASK_ID_MAX + 1])
{
	const char	*end = p + n;
	size_t		 o = 0;

	while (p < end) {
		if (o == TASK_ID_MAX)
			return -1;
		out[o++] = (char)url_char(&p, end, plus);
	}
	out[o] = '\0';
	return id_ok(out, o) && strlen(out) == o ? 0 : -1;
}

int
task_id_at(const char *poll_path, const char *path, size_t pathlen,
    const char *query, char out[TASK_ID_MAX + 1])
{
	const char	*at = strstr(poll_path, "{id}"), *key, *q, *eq;
	size_t		 klen, n, found = 0, i;
	char		 k[KEY_MAX + 1];

	if (at == NULL)
		return -2;
	if (at > poll_path && at[-1] == '=') {
		/* ?key={id} or &key={id}: that key of the query, once */
		for (key = at - 1; key > poll_path && key[-1] != '?' &&
		    key[-1] != '&'; key--)
			;
		klen = (size_t)(at - 1 - key);
		if (key == poll_path || klen == 0 || klen > KEY_MAX)
			return -2;
		for (q = query; q != NULL && *q != '\0';) {
			const char *kp;

			n = strcspn(q, "&;");
			if ((eq = memchr(q, '=', n)) != NULL) {
				for (kp = q, i = 0; kp < eq && i <= KEY_MAX; i++)
					k[i] = (char)url_char(&kp, eq, 1);
				if (i == klen && memcmp(k, key, klen) == 0) {
					if (found++ > 0 || one_id(eq + 1,
					    (size_t)(q + n - eq - 1), 1, out) == -1)
						return -1;
				}
			}
			q += n;
			if (*q != '\0')
				q++;
		}
		return found == 1 ? 0 : -1;
	}
	/* .../{id} at the end: the last path segment */
	if (strcmp(at, "{id}") != 0 || at == poll_path || at[-1] != '/')
		return -2;
	if (pathlen == 0 || path[pathlen - 1] == '/')
		return -1;
	for (n = 0; n < pathlen && path[pathlen - n - 1] != '/'; n++)
		;
	return one_id(path + pathlen - n, n, 0, out);
}

int
task_ids_join(const struct task_ids *t, char *out, size_t outsz)
{
	size_t	 i, o = 0;

	out[0] = '\0';
	for (i = 0; i < t->n; i++) {
		size_t n = strlen(t->id[i]);
		if (o + n + 2 > outsz)
			return -1;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, t->id[i], n);
		o += n;
		out[o] = '\0';
	}
	return 0;
}

/*
 * Recently created tasks, shared by the workers of a host, so a poll that
 * follows a creation at once finds its channel (and its key, and its
 * owner, whatever service path names it) before the database has the
 * batch that records it. Direct-mapped by id; a slot is written under a
 * sequence number (odd while written) and read only when it is even and
 * unchanged around the copy. Losing an entry costs nothing but a database
 * lookup.
 */
#define RECENT		1024

struct recent {
	uint32_t	 seq;
	char		 service[SERVICE_SLOT];
	char		 id[TASK_ID_MAX + 1];
	long long	 channel, user;
	char		 key_hash[17];
};

static struct recent	*recent;

int
tasks_recent_init(void)
{
	return (recent = shm_map(RECENT * sizeof(*recent))) == NULL ? -1 : 0;
}

static struct recent *
recent_slot(const char *id)
{
	return &recent[fnv1a(FNV1A_INIT, id) % RECENT];
}

void
tasks_recent_put(const char *service, const struct task_ids *t,
    long long channel, long long user, const char *key_hash)
{
	size_t	 i;

	if (recent == NULL || strlen(service) >= SERVICE_SLOT)
		return;
	for (i = 0; i < t->n; i++) {
		struct recent	*e = recent_slot(t->id[i]);
		uint32_t	 s = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);

		if ((s & 1) || !__atomic_compare_exchange_n(&e->seq, &s, s + 1, 0,
		    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;	/* another writer has it: skip */
		strlcpy_(e->service, service, sizeof(e->service));
		strlcpy_(e->id, t->id[i], sizeof(e->id));
		e->channel = channel;
		e->user = user;
		strlcpy_(e->key_hash, key_hash != NULL ? key_hash : "",
		    sizeof(e->key_hash));
		__atomic_store_n(&e->seq, s + 2, __ATOMIC_RELEASE);
	}
}

int
tasks_recent_find(const char *id, struct recent_task *out)
{
	struct recent	*e, copy;
	uint32_t	 s1;

	if (recent == NULL)
		return 0;
	e = recent_slot(id);
	/*
	 * An odd seq is a holder's, reader or writer: the copy is made under
	 * it (a writer meanwhile skips its put, as when another writer has
	 * the entry).
	 */
	s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
	if (s1 == 0 || (s1 & 1) || !__atomic_compare_exchange_n(&e->seq,
	    &s1, s1 + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return 0;
	memcpy(&copy, e, sizeof(copy));
	__atomic_store_n(&e->seq, s1, __ATOMIC_RELEASE);
	if (strcmp(copy.id, id) != 0)
		return 0;
	memcpy(out->service, copy.service, sizeof(out->service));
	out->channel = copy.channel;
	out->user = copy.user;
	memcpy(out->key_hash, copy.key_hash, sizeof(out->key_hash));
	return 1;
}
