#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonread.h"
#include "taskids.h"
#include "util.h"

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

/* An id that does not fit any more sets overflow (taskids.h). */
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

/* A string or an integer as a task id (taskids.h). */
size_t
task_id_text(const struct json_value *v, char *out, size_t outsz)
{
	char	 num[48];
	size_t	 n = v->n, i;

	out[0] = '\0';
	if (v->kind == JSON_STRING)
		return json_text(v, out, outsz);
	if (v->kind != JSON_NUMBER)
		return 0;
	for (i = *v->p == '-'; i < n; i++)
		if (v->p[i] < '0' || v->p[i] > '9')
			return 0;	/* a fraction or an exponent */
	/* as json-c had it: clamped to the 64-bit range */
	if (n >= sizeof(num))
		strlcpy_(num, *v->p == '-' ? "-99999999999999999999" :
		    "99999999999999999999", sizeof(num));
	else {
		memcpy(num, v->p, n);
		num[n] = '\0';
	}
	return (size_t)(*num == '-' ?
	    snprintf(out, outsz, "%lld", strtoll(num, NULL, 10)) :
	    snprintf(out, outsz, "%llu", strtoull(num, NULL, 10)));
}

/*
 * An answer is read by the one reader of JSON (jsonread.h), each key as
 * the relay once read it with json-c: exactly, and up to a \u0000 in it,
 * as an id is.
 */
#define ANSWER_JSON_MAX	(64 * 1024)

/*
 * A value that can be a task id, decoded: s holds more than TASK_ID_MAX + 1
 * bytes of it even when a character of four bytes does not fit, so a NUL
 * among those is the string's own.
 */
struct jid {
	char	 s[TASK_ID_MAX + 6];
	size_t	 n;		/* 0 or > TASK_ID_MAX: not one (see add) */
};

static void
jid_set(struct jid *id, const struct json_value *v)
{
	char	*nul;

	id->n = task_id_text(v, id->s, sizeof(id->s));
	nul = memchr(id->s, '\0', id->n < TASK_ID_MAX + 1 ? id->n :
	    TASK_ID_MAX + 1);
	if (nul != NULL)
		id->n = (size_t)(nul - id->s);	/* a C string ends there */
}

static int
key_is(const char *key, size_t kl, const char *want)
{
	size_t	 n = strlen(want);

	if (key == NULL)
		return 0;
	if (kl > JSON_SCALAR_MAX)
		kl = JSON_SCALAR_MAX;	/* a NUL in the part kept cuts it */
	kl = strnlen(key, kl);
	return kl == n && memcmp(key, want, n) == 0;
}

/* The members named in keys[] of one object; the last of a name counts. */
struct jfields {
	const char *const	*keys;
	size_t			 nkeys;
	struct jid		 v[3];
};

static int
fields_each(void *arg, const char *key, size_t kl, const struct json_value *v)
{
	struct jfields	*f = arg;
	size_t		 k;

	for (k = 0; k < f->nkeys; k++)
		if (key_is(key, kl, f->keys[k]))
			jid_set(&f->v[k], v);
	return 0;
}

/* If v is an object, add its members named in keys[] to t, in that order. */
static void
add_fields(struct task_ids *t, const struct json_value *v,
    const char *const *keys, size_t nkeys)
{
	struct jfields	 f;
	size_t		 k;

	if (v->kind != JSON_OBJECT)
		return;
	memset(&f, 0, sizeof(f));
	f.keys = keys;
	f.nkeys = nkeys;
	json_each(v, fields_each, &f);
	for (k = 0; k < nkeys; k++)
		add(t, f.v[k].s, f.v[k].n);
}

static const char *const k_task[] = { "task_id", "id", "clip_id" };
static const char *const k_id[] = { "id" };

/* An answer's top level: its ids, data's (object or array), clips'. */
struct answer {
	struct jid	 top[2];
	struct task_ids	 data, clips;
};

static int
data_each(void *arg, const char *key, size_t kl, const struct json_value *v)
{
	add_fields(arg, v, k_task, 3);
	return 0;
}

static int
clips_each(void *arg, const char *key, size_t kl, const struct json_value *v)
{
	add_fields(arg, v, k_id, 1);
	return 0;
}

static int
answer_each(void *arg, const char *key, size_t kl, const struct json_value *v)
{
	struct answer	*a = arg;
	struct jid	 id;

	if (key_is(key, kl, "task_id"))
		jid_set(&a->top[0], v);
	else if (key_is(key, kl, "id"))
		jid_set(&a->top[1], v);
	else if (key_is(key, kl, "data")) {
		a->data.n = 0;
		if (v->kind == JSON_ARRAY)
			json_each(v, data_each, &a->data);
		else if (v->kind == JSON_STRING) {
			/* Suno's submit: {"data":"<id>"} */
			jid_set(&id, v);
			add(&a->data, id.s, id.n);
		} else
			add_fields(&a->data, v, k_task, 2);
	} else if (key_is(key, kl, "clips")) {
		a->clips.n = 0;
		if (v->kind == JSON_ARRAY)
			json_each(v, clips_each, &a->clips);
	}
	return 0;
}

void
task_ids_from_answer(struct task_ids *t, const char *body, size_t len)
{
	struct json_value	 top;
	struct answer		 a;

	memset(t, 0, sizeof(*t));
	memset(&a, 0, sizeof(a));
	if (len == 0 || len > ANSWER_JSON_MAX ||
	    json_parse(body, len, &top) == -1 || top.kind != JSON_OBJECT)
		return;
	json_each(&top, answer_each, &a);
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
 * So a body is not parsed but scanned (json_scan, the reader's tolerant
 * mode): the value of a key in id_keys[] (compared as Go would), or each
 * element of an array that is that value, is a candidate; a string value
 * is also split at ','. It takes any length and depth in one pass and
 * allocates nothing. Text that is not JSON is scanned the same way: it
 * can only add candidates, and a candidate that is nobody's task costs
 * nothing.
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

static int
want_key(void *arg, const char *key, size_t kn)
{
	return id_key(key, kn);
}

static void
want_char(void *arg, int c)
{
	if (c == -1)
		piece_end(arg);
	else
		piece_char(arg, c);
}

static void
want_bare(void *arg, const char *p, size_t n)
{
	struct pieces	*pc = arg;

	add(pc->t, p, n);
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
	if (body != NULL && bodylen > 0) {
		struct pieces		 pc;
		struct json_scan	 js;

		pc.t = t;
		pc.n = 0;
		js.want = want_key;
		js.ch = want_char;
		js.bare = want_bare;
		js.arg = &pc;
		json_scan(body, bodylen, &js);
	}
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

