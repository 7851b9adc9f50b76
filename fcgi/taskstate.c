#include <string.h>

#include "jsonread.h"
#include "taskids.h"
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

/*
 * A poll answer is read by the one reader of JSON (jsonread.h), with
 * its rules (Go's syntax; a key matches a path's segment without case, of
 * a key given twice the later counts, a later null leaves the value, an
 * object given twice is read as one) and JSON_INDEX | JSON_ANYSEG: a
 * segment of digits also indexes an array ("data.0.status"), and a
 * segment is any printable ASCII but '.'. The paths are the operator's;
 * the document is the upstream's.
 */
#define POLL_ANSWER_MAX	(64 * 1024 * 1024)
#define STATUS_MAX	256	/* longer than any of a kind's lists */
#define TEXT_MAX	512	/* more than a whole reason's bytes */

/* A string or a number as text (0 for anything else): its whole length. */
static size_t
scalar_text(const struct json_value *v, char *out, size_t outsz)
{
	if (v->kind == JSON_STRING)
		return json_text(v, out, outsz);
	if (v->kind == JSON_NUMBER)		/* as written */
		return json_compact(v, out, outsz);
	out[0] = '\0';
	return 0;
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
id_text(const struct json_value *v, char out[TASK_ID_MAX + 1])
{
	char	 s[TASK_ID_MAX + 2];
	size_t	 n;

	n = task_id_text(v, s, sizeof(s));
	if (n == 0 || n > TASK_ID_MAX || memchr(s, '\0', n) != NULL)
		return -1;
	memcpy(out, s, n + 1);
	return 0;
}

void
task_answer_read(const struct task_kind *k, const char *body, size_t len,
    struct task_answer *a)
{
	const char		*paths[3];
	struct json_value	 v[3];
	char			 status[STATUS_MAX + 1], text[TEXT_MAX];
	size_t			 sn;

	memset(a, 0, sizeof(*a));
	a->state = TS_UNKNOWN;
	if (k == NULL || body == NULL || len == 0 || len > POLL_ANSWER_MAX)
		return;
	paths[0] = k->status_path;
	paths[1] = k->reason_path;
	paths[2] = k->id_path;
	if (json_values(body, len, paths, 3, JSON_INDEX | JSON_ANYSEG, v) == -1)
		return;
	if (v[0].kind != JSON_STRING && v[0].kind != JSON_NUMBER)
		return;
	sn = scalar_text(&v[0], status, sizeof(status));
	if (sn > STATUS_MAX)
		a->state = TS_RUNNING;		/* no list has it */
	else if (list_has_nocase(k->succeeded, status, sn))
		a->state = TS_SUCCEEDED;
	else if (list_has_nocase(k->lost, status, sn))
		a->state = TS_LOST;
	else if (list_has_nocase(k->failed, status, sn))
		a->state = TS_FAILED;
	else
		a->state = TS_RUNNING;
	/*
	 * A task the upstream does not know: its word for that is the
	 * reason. Else the value at reason_path: a string or a number as
	 * above, anything else (but null) as its JSON text, compacted. A NUL
	 * inside a string ends it here.
	 */
	if (a->state == TS_LOST)
		utf8_copy(a->reason, status, sizeof(a->reason));
	else if (v[1].kind == JSON_STRING || v[1].kind == JSON_NUMBER) {
		scalar_text(&v[1], text, sizeof(text));
		utf8_copy(a->reason, text, sizeof(a->reason));
	} else if (v[1].kind != JSON_NONE) {
		json_compact(&v[1], text, sizeof(text));
		utf8_copy(a->reason, text, sizeof(a->reason));
	}
	a->has_id = id_text(&v[2], a->id) == 0;
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
