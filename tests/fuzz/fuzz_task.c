/*
 * libFuzzer: what a poll answer says of its task (taskstate.c, through
 * json_values of jsonread.c with JSON_INDEX | JSON_ANYSEG), for the
 * kinds the schema seeds and one with a list index in its paths. The
 * answer is the upstream's, so any bytes. What must hold: one of the
 * states an answer can say, and a reason that is a C string within its
 * buffer, empty when the state is unknown; an id only where the kind
 * reads one, a C string of 1 to TASK_ID_MAX bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.c"
#include "../../common/jsonread.c"
#include "../../fcgi/taskids.c"
#include "../../fcgi/taskstate.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const struct task_kind kinds[] = {
	{ "kling", "data.task_status", "succeed", "failed",
	    "data.task_status_msg", "{path}/{id}", "data.task_id", "" },
	{ "runway", "status", "SUCCEEDED", "FAILED,CANCELLED", "failure", "",
	    "id", "" },
	{ "suno", "data.status", "SUCCESS", "FAILURE", "data.fail_reason", "",
	    "data.task_id", "" },
	{ "jimeng", "data.status", "done", "failed", "message", "", "",
	    "not_found,expired" },
	{ "x", "data.0.items.1.state", "done", "error, failed", "data.0.why", "",
	    "data.0.id", "" },
};

/*
 * The input as it is, and put where the kinds look (a raw value after
 * {"data":{"task_status": and so on), so that the fuzzer need not find
 * the JSON around a status to reach the reading of one.
 */
static const char *const wraps[][2] = {
	{ "", "" },
	{ "{\"data\":{\"task_status\":", "}}" },
	{ "{\"data\":{\"task_status\":\"failed\",\"task_status_msg\":", "}}" },
	{ "{\"status\":\"FAILED\",\"failure\":", "}" },
	{ "{\"data\":[", "]}" },
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 reason[16], *doc;
	struct task_answer a;
	enum task_state	 st;
	size_t		 i, w, len;

	if ((doc = malloc(size + 64)) == NULL)
		return 0;
	for (w = 0; w < sizeof(wraps) / sizeof(wraps[0]); w++)
	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		len = strlen(wraps[w][0]);
		memcpy(doc, wraps[w][0], len);
		memcpy(doc + len, data, size);
		memcpy(doc + len + size, wraps[w][1], strlen(wraps[w][1]));
		len += size + strlen(wraps[w][1]);
		memset(reason, 'x', sizeof(reason));
		st = task_answer_state(&kinds[i], doc, len, reason,
		    sizeof(reason));
		if (st != TS_UNKNOWN && st != TS_RUNNING && st != TS_SUCCEEDED &&
		    st != TS_FAILED && st != TS_LOST)
			abort();
		task_answer_read(&kinds[i], doc, len, &a);
		if (a.state != st || (a.has_id && (kinds[i].id_path[0] == '\0' ||
		    a.id[0] == '\0' || strlen(a.id) > TASK_ID_MAX)) ||
		    (!a.has_id && a.id[0] != '\0') ||
		    memchr(a.reason, '\0', sizeof(a.reason)) == NULL)
			abort();
		if (memchr(reason, '\0', sizeof(reason)) == NULL)
			abort();
		if (st == TS_UNKNOWN && reason[0] != '\0')
			abort();
	}
	free(doc);
	return 0;
}
