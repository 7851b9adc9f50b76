#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

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

static void
add(struct task_ids *t, const char *s, size_t n)
{
	size_t	 i;

	if (t->n == TASK_IDS_MAX || !id_ok(s, n))
		return;
	for (i = 0; i < t->n; i++)
		if (strlen(t->id[i]) == n && memcmp(t->id[i], s, n) == 0)
			return;
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

static int
jr_hex(const char *p)
{
	int	 i, d, v = 0;

	for (i = 0; i < 4; i++) {
		if ((d = hex_digit((unsigned char)p[i])) < 0)
			return -1;
		v = v << 4 | d;
	}
	return v;
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
				if (end - p < 5 || (u = jr_hex(p + 1)) == -1)
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
	char	 key[16];
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
		a->data.n = 0;
		if (*j->p == '[')
			return jr_members(j, data_each, &a->data);
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

void
task_ids_from_request(struct task_ids *t, const char *path, size_t pathlen,
    const char *query, const char *body, size_t bodylen, int with_path)
{
	const char	*seg[TASK_IDS_MAX];
	size_t		 segl[TASK_IDS_MAX], nseg = 0, i, start;
	struct task_ids	 found;
	struct jr	 j;

	memset(t, 0, sizeof(*t));
	memset(&found, 0, sizeof(found));
	/* the last path segments after the service prefix */
	start = 1 + strcspn(path + 1, "/");
	for (i = with_path ? start : pathlen; i < pathlen;) {
		size_t n;
		if (path[i] == '/') {
			i++;
			continue;
		}
		for (n = 0; i + n < pathlen && path[i + n] != '/'; n++)
			;
		if (nseg == 4) {
			memmove(seg, seg + 1, 3 * sizeof(seg[0]));
			memmove(segl, segl + 1, 3 * sizeof(segl[0]));
			nseg = 3;
		}
		seg[nseg] = path + i;
		segl[nseg++] = n;
		i += n;
	}
	for (i = nseg; i > 0; i--)		/* the last one first */
		add(t, seg[i - 1], segl[i - 1]);
	/* task_id=, id=, ids=a,b in the query */
	while (query != NULL && *query != '\0') {
		size_t		 n = strcspn(query, "&");
		const char	*eq = memchr(query, '=', n);

		if (eq != NULL) {
			size_t kl = (size_t)(eq - query), vl = n - kl - 1;
			const char *v = eq + 1;
			if ((kl == 7 && memcmp(query, "task_id", 7) == 0) ||
			    (kl == 2 && memcmp(query, "id", 2) == 0))
				add(t, v, vl);
			else if (kl == 3 && memcmp(query, "ids", 3) == 0) {
				while (vl > 0) {
					size_t il = 0;
					while (il < vl && v[il] != ',')
						il++;
					add(t, v, il);
					v += il < vl ? il + 1 : il;
					vl -= il < vl ? il + 1 : il;
				}
			}
		}
		query += n;
		if (*query == '&')
			query++;
	}
	/*
	 * A small JSON body's task_id. Only a body that can name one is
	 * read: it holds "task_id", or a \u escape that could spell it.
	 */
	if (body != NULL && bodylen > 0 &&
	    (memmem(body, bodylen, "task_id", 7) != NULL ||
	    memmem(body, bodylen, "\\u", 2) != NULL) &&
	    jr_document(&j, body, bodylen) == 0) {
		jr_fields(&j, k_task, 1, &found);
		if (jr_end(&j) == 0)
			add_all(t, &found);
	}
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
 * follows a creation at once finds its channel before the database has the
 * batch that records it. Direct-mapped; a slot is written under a
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
};

static struct recent	*recent;

int
tasks_recent_init(void)
{
	recent = mmap(NULL, RECENT * sizeof(*recent), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (recent == MAP_FAILED) {
		recent = NULL;
		return -1;
	}
	return 0;
}

static struct recent *
recent_slot(const char *service, const char *id)
{
	return &recent[fnv1a(fnv1a(fnv1a(FNV1A_INIT, service), "/"), id) %
	    RECENT];
}

void
tasks_recent_put(const char *service, const struct task_ids *t,
    long long channel, long long user)
{
	size_t	 i;

	if (recent == NULL || strlen(service) >= SERVICE_SLOT)
		return;
	for (i = 0; i < t->n; i++) {
		struct recent	*e = recent_slot(service, t->id[i]);
		uint32_t	 s = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);

		if ((s & 1) || !__atomic_compare_exchange_n(&e->seq, &s, s + 1, 0,
		    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			continue;	/* another writer has it: skip */
		strlcpy_(e->service, service, sizeof(e->service));
		strlcpy_(e->id, t->id[i], sizeof(e->id));
		e->channel = channel;
		e->user = user;
		__atomic_store_n(&e->seq, s + 2, __ATOMIC_RELEASE);
	}
}

int
tasks_recent_get(const char *service, const struct task_ids *t, long long user,
    long long *channel, long long *owner)
{
	size_t	 i;
	int	 found = 0;

	if (recent == NULL)
		return 0;
	for (i = 0; i < t->n; i++) {
		struct recent	*e = recent_slot(service, t->id[i]), copy;
		uint32_t	 s1, s2;

		s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
		if (s1 == 0 || (s1 & 1))
			continue;
		memcpy(&copy, e, sizeof(copy));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		s2 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
		if (s1 != s2 || strcmp(copy.service, service) != 0 ||
		    strcmp(copy.id, t->id[i]) != 0)
			continue;
		*channel = copy.channel;
		*owner = copy.user;
		found = 1;
		if (copy.user != user)	/* another user's task decides */
			break;
	}
	return found;
}
