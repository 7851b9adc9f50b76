#include <sys/mman.h>

#include <string.h>

#include <json-c/json.h>

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
add_json(struct task_ids *t, json_object *o)
{
	const char	*s;

	if (o == NULL)
		return;
	if (json_object_is_type(o, json_type_string) ||
	    json_object_is_type(o, json_type_int)) {
		s = json_object_get_string(o);
		add(t, s, strlen(s));
	}
}

static void
add_field(struct task_ids *t, json_object *o, const char *key)
{
	json_object	*v;

	if (o != NULL && json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, key, &v))
		add_json(t, v);
}

static json_object *
parse(const char *p, size_t n)
{
	json_tokener	*tok;
	json_object	*o;

	if (n == 0 || n > 64 * 1024 || (tok = json_tokener_new_ex(32)) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, p, (int)n);
	if (o != NULL && json_tokener_get_parse_end(tok) < n &&
	    p[json_tokener_get_parse_end(tok) + strspn(p +
	    json_tokener_get_parse_end(tok), " \t\r\n")] != '\0') {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

void
task_ids_from_answer(struct task_ids *t, const char *body, size_t len)
{
	static const char *const keys[] = { "task_id", "id", "clip_id" };
	json_object	*o, *data, *clips;
	size_t		 i, k;

	memset(t, 0, sizeof(*t));
	if ((o = parse(body, len)) == NULL)
		return;
	add_field(t, o, "task_id");
	add_field(t, o, "id");
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "data", &data)) {
		if (json_object_is_type(data, json_type_array)) {
			for (i = 0; i < json_object_array_length(data); i++)
				for (k = 0; k < 3; k++)
					add_field(t, json_object_array_get_idx(data, i),
					    keys[k]);
		} else {
			add_field(t, data, "task_id");
			add_field(t, data, "id");
		}
	}
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "clips", &clips) &&
	    json_object_is_type(clips, json_type_array))
		for (i = 0; i < json_object_array_length(clips); i++)
			add_field(t, json_object_array_get_idx(clips, i), "id");
	json_object_put(o);
}

void
task_ids_from_request(struct task_ids *t, const char *path, size_t pathlen,
    const char *query, const char *body, size_t bodylen, int with_path)
{
	const char	*seg[TASK_IDS_MAX];
	size_t		 segl[TASK_IDS_MAX], nseg = 0, i, start;
	json_object	*o;

	memset(t, 0, sizeof(*t));
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
	 * parsed: it holds "task_id", or a \u escape that could spell it.
	 */
	if (body != NULL && bodylen > 0 && body[strspn(body, " \t\r\n")] == '{' &&
	    (memmem(body, bodylen, "task_id", 7) != NULL ||
	    memmem(body, bodylen, "\\u", 2) != NULL) &&
	    (o = parse(body, bodylen)) != NULL) {
		add_field(t, o, "task_id");
		json_object_put(o);
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
