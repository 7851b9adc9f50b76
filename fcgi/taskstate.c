#include <string.h>

#include <json-c/json.h>

#include "relay.h"
#include "tasks.h"
#include "util.h"

/*
 * What a poll answer says of its task: the states' names, and the status
 * at the path its service's row of bltcy_task_kinds names. Apart from the
 * poller so that the unit tests and the fuzz target reach it alone.
 */

static const char *const state_names[TS__MAX] = {
	[TS_UNKNOWN] = "unknown",
	[TS_SUBMITTED] = "submitted",
	[TS_RUNNING] = "running",
	[TS_SUCCEEDED] = "succeeded",
	[TS_FAILED] = "failed",
	[TS_TIMEOUT] = "timeout",
	[TS_REFUNDED] = "refunded",
	[TS_LOST] = "lost",
};

const char *
task_state_name(enum task_state s)
{
	return (unsigned)s < TS__MAX ? state_names[s] : "unknown";
}

enum task_state
task_state_parse(const char *s)
{
	int	 i;

	if (s == NULL)
		return TS_UNKNOWN;
	for (i = TS_SUBMITTED; i <= TS_REFUNDED; i++)	/* a row's states */
		if (strcmp(s, state_names[i]) == 0)
			return (enum task_state)i;
	return TS_UNKNOWN;
}

/* ---- poll answers ---- */

#define ANSWER_DEPTH	32		/* JSON nesting a poll answer may have */
#define PATH_SEG_MAX	64

/*
 * The value at a dotted path ("data.task_status", "data.0.status": a
 * number indexes an array), or NULL. The path is the operator's; the
 * document is the upstream's.
 */
static struct json_object *
json_at(struct json_object *o, const char *path)
{
	char		 seg[PATH_SEG_MAX];
	const char	*p = path;
	size_t		 n;

	if (*p == '\0')
		return NULL;
	while (o != NULL) {
		n = strcspn(p, ".");
		if (n == 0 || n >= sizeof(seg))
			return NULL;
		memcpy(seg, p, n);
		seg[n] = '\0';
		if (json_object_is_type(o, json_type_object)) {
			if (!json_object_object_get_ex(o, seg, &o))
				return NULL;
		} else if (json_object_is_type(o, json_type_array)) {
			long long	 i;

			if (parse_ll(seg, 0, 1 << 20, &i) == -1 ||
			    (size_t)i >= json_object_array_length(o))
				return NULL;
			o = json_object_array_get_idx(o, (size_t)i);
		} else
			return NULL;
		if (p[n] == '\0')
			return o;
		p += n + 1;
	}
	return NULL;
}

/* A string or number as text (NULL for anything else); valid with o. */
static const char *
scalar_text(struct json_object *o, size_t *len)
{
	if (o == NULL)
		return NULL;
	switch (json_object_get_type(o)) {
	case json_type_string:
		*len = (size_t)json_object_get_string_len(o);
		return json_object_get_string(o);
	case json_type_int:
	case json_type_double:
		*len = strlen(json_object_get_string(o));
		return json_object_get_string(o);
	default:
		return NULL;
	}
}

/* Is s (not NUL-terminated) one of the comma list's items, in any case? */
static int
list_has_nocase(const char *list, const char *s, size_t len)
{
	const char	*p = list;
	size_t		 n;

	for (;;) {
		while (*p == ',' || *p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			return 0;
		n = strcspn(p, ",");
		while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == len && ascii_casecmp_n(p, s, n) == 0)
			return 1;
		p += strcspn(p, ",");
	}
}

/* A string or an integer as a task id is written; 0, or -1. */
static int
id_text(struct json_object *o, char out[TASK_ID_MAX + 1])
{
	const char	*s;
	size_t		 n = 0;

	if (o == NULL || json_object_is_type(o, json_type_double) ||
	    (s = scalar_text(o, &n)) == NULL || n == 0 || n > TASK_ID_MAX ||
	    memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

void
task_answer_read(const struct task_kind *k, const char *body, size_t len,
    struct task_answer *a)
{
	struct json_tokener	*tok;
	struct json_object	*doc, *v;
	const char		*s, *status;
	size_t			 n = 0, sn = 0;

	memset(a, 0, sizeof(*a));
	a->state = TS_UNKNOWN;
	if (k == NULL || body == NULL || len == 0 || len > 64 * 1024 * 1024)
		return;
	if ((tok = json_tokener_new_ex(ANSWER_DEPTH)) == NULL)
		return;
	doc = json_tokener_parse_ex(tok, body, (int)len);
	if (doc == NULL || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(doc);
		json_tokener_free(tok);
		return;
	}
	json_tokener_free(tok);
	if ((status = scalar_text(json_at(doc, k->status_path), &sn)) == NULL) {
		json_object_put(doc);
		return;
	}
	if (list_has_nocase(k->succeeded, status, sn))
		a->state = TS_SUCCEEDED;
	else if (list_has_nocase(k->lost, status, sn))
		a->state = TS_LOST;
	else if (list_has_nocase(k->failed, status, sn))
		a->state = TS_FAILED;
	else
		a->state = TS_RUNNING;
	/* a task the upstream does not know: its word for that is the reason */
	if (a->state == TS_LOST)
		utf8_copy(a->reason, status, sizeof(a->reason));
	else if (k->reason_path[0] != '\0') {
		v = json_at(doc, k->reason_path);
		if ((s = scalar_text(v, &n)) == NULL && v != NULL &&
		    !json_object_is_type(v, json_type_null))
			s = json_object_to_json_string_ext(v,
			    JSON_C_TO_STRING_PLAIN);
		if (s != NULL)		/* a NUL inside a string ends it here */
			utf8_copy(a->reason, s, sizeof(a->reason));
	}
	if (k->id_path[0] != '\0')
		a->has_id = id_text(json_at(doc, k->id_path), a->id) == 0;
	json_object_put(doc);
}

enum task_state
task_answer_state(const struct task_kind *k, const char *body, size_t len,
    char *reason, size_t reasonsz)
{
	struct task_answer	 a;

	task_answer_read(k, body, len, &a);
	if (reasonsz > 0)
		utf8_copy(reason, a.reason, reasonsz);
	return a.state;
}
