/* fcgi/taskstate.c: what a poll answer says of its task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/taskstate.c"

static const struct task_kind kling = { "kling", "data.task_status",
    "succeed", "failed", "data.task_status_msg", "{path}/{id}",
    "data.task_id", "" };
static const struct task_kind idx = { "x", "data.0.status",
    "SUCCESS, done", "FAILURE,error", "data.0.err", "", "", "" };
static const struct task_kind jimeng = { "jimeng", "data.status",
    "done", "failed", "message", "{path}?task_id={id}", "",
    "not_found,expired" };
static const struct task_kind dash = { "d", "task-status", "ok", "bad",
    "why", "", "0.id", "" };

static struct task_answer a;

static enum task_state
rd(const struct task_kind *k, const char *s)
{
	task_answer_read(k, s, strlen(s), &a);
	return a.state;
}

static void
test_state(void)
{
	static const char msg[] = "{\"data\":{\"task_status\":\"failed\","
	    "\"task_status_msg\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}}";
	char	 why[8];

	T_INT(rd(&kling, "{\"data\":{\"task_status\":\"succeed\"}}"), TS_SUCCEEDED);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":\"SUCCEED\"}}"), TS_SUCCEEDED);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":\"processing\"}}"), TS_RUNNING);
	T_INT(rd(&kling, "{\"data\":{}}"), TS_UNKNOWN);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":null}}"), TS_UNKNOWN);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":true}}"), TS_UNKNOWN);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":[\"failed\"]}}"), TS_UNKNOWN);
	T_INT(rd(&kling, "<html>502</html>"), TS_UNKNOWN);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":\"failed\"}"), TS_UNKNOWN);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":\"failed\"}} x"), TS_UNKNOWN);
	T_INT(rd(&idx, "{\"data\":[{\"status\":\"done\"}]}"), TS_SUCCEEDED);
	T_INT(rd(&idx, "{\"data\":[]}"), TS_UNKNOWN);
	T_INT(rd(&idx, "{\"data\":[{\"status\":3}]}"), TS_RUNNING);
	/* the reader's rules: keys without case, a later null leaves it */
	T_INT(rd(&kling, "{\"Data\":{\"Task_Status\":\"failed\"}}"), TS_FAILED);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":\"failed\","
	    "\"task_status\":null}}"), TS_FAILED);
	T_INT(rd(&kling, "{\"data\":{\"task_status\":\"x\"},"
	    "\"data\":{\"task_status\":\"succeed\"}}"), TS_SUCCEEDED);
	T_INT(rd(&dash, "[{\"id\":\"D-1\"}]"), TS_UNKNOWN);
	T_INT(rd(&dash, "{\"task-status\":\"ok\"}"), TS_SUCCEEDED);
	T_INT(task_answer_state(NULL, "{}", 2, why, sizeof(why)), TS_UNKNOWN);
	T_INT(task_answer_state(&kling, msg, sizeof(msg) - 1, why, sizeof(why)),
	    TS_FAILED);
	T_STR(why, "\xc3\xa9\xc3\xa9\xc3\xa9");	/* whole characters */
}

static void
test_reason(void)
{
	char	 big[700];

	rd(&idx, "{\"data\":[{\"status\":\"error\",\"err\":7}]}");
	T_STR(a.reason, "7");
	rd(&idx, "{\"data\":[{\"status\":\"error\",\"err\":1.50}]}");
	T_STR(a.reason, "1.50");		/* a number as written */
	rd(&idx, "{\"data\":[{\"status\":\"error\",\"err\":{ \"c\" : [1, \"a b\"] }}]}");
	T_STR(a.reason, "{\"c\":[1,\"a b\"]}");
	rd(&idx, "{\"data\":[{\"status\":\"error\",\"err\":false}]}");
	T_STR(a.reason, "false");
	rd(&idx, "{\"data\":[{\"status\":\"error\",\"err\":\"a\\u0000b\"}]}");
	T_STR(a.reason, "a");
	rd(&jimeng, "{\"code\":10000,\"data\":{\"status\":\"not_found\"}}");
	T_INT(a.state, TS_LOST);
	T_STR(a.reason, "not_found");
	rd(&jimeng, "{\"message\":\"gone\",\"data\":{\"status\":\"EXPIRED\"}}");
	T_STR(a.reason, "EXPIRED");
	rd(&jimeng, "{\"data\":{\"status\":\"generating\"}}");
	T_STR(a.reason, "");
	/* a long reason: cut at 255 bytes, between characters */
	strcpy(big, "{\"message\":\"");
	memset(big + 12, 'x', 254);
	strcpy(big + 266, "\xc3\xa9\xc3\xa9\",\"data\":{\"status\":\"failed\"}}");
	rd(&jimeng, big);
	T_INT(a.state, TS_FAILED);
	T_INT(strlen(a.reason), 254);
}

static void
test_id(void)
{
	rd(&kling, "{\"data\":{\"task_id\":\"Ab-1\",\"task_status\":\"failed\"}}");
	T_INT(a.has_id, 1);
	T_STR(a.id, "Ab-1");
	rd(&kling, "{\"data\":{\"task_id\":781234567890123456,"
	    "\"task_status\":\"succeed\"}}");
	T_STR(a.id, "781234567890123456");
	rd(&kling, "{\"data\":{\"task_id\":1.5,\"task_status\":\"failed\"}}");
	T_INT(a.has_id, 0);
	rd(&kling, "{\"data\":{\"task_id\":\"a\\u0000b\",\"task_status\":\"x\"}}");
	T_INT(a.state, TS_RUNNING);
	T_INT(a.has_id, 0);
	rd(&kling, "{\"data\":{\"task_id\":\"\",\"task_status\":\"x\"}}");
	T_INT(a.has_id, 0);
	T_STR(a.id, "");
}

static void
test_names(void)
{
	T_INT(task_state_parse("lost"), TS_UNKNOWN);
	T_INT(task_state_parse("refunded"), TS_REFUNDED);
	T_INT(task_state_parse(NULL), TS_UNKNOWN);
	T_STR(task_state_name(TS_TIMEOUT), "timeout");
	T_STR(task_state_name(TS__MAX), "unknown");
}

/* What a poll answer says of its task, by its service's kind. */
static void
test_task_answer(void)
{
	char	 why[8];
#define A(k, s)	task_answer_state(&(k), s, sizeof(s) - 1, why, sizeof(why))

	T_OK(A(kling, "{\"data\":{\"task_status\":\"succeed\"}}") == TS_SUCCEEDED);
	T_OK(A(kling, "{\"data\":{\"task_status\":\"SUCCEED\"}}") == TS_SUCCEEDED);
	T_OK(A(kling, "{\"data\":{\"task_status\":\"processing\"}}") == TS_RUNNING);
	T_OK(A(kling, "{\"data\":{\"task_status\":\"failed\","
	    "\"task_status_msg\":\"\u00e9\u00e9\u00e9\u00e9\"}}") == TS_FAILED);
	/* cut between whole characters: three of two bytes, and the NUL */
	T_STR(why, "\xc3\xa9\xc3\xa9\xc3\xa9");
	T_OK(A(kling, "{\"data\":{}}") == TS_UNKNOWN && why[0] == '\0');
	T_INT(A(kling, "{\"data\":{\"task_status\":null}}"), TS_UNKNOWN);
	T_OK(A(kling, "{\"data\":{\"task_status\":[\"failed\"]}}") == TS_UNKNOWN);
	T_INT(A(kling, "<html>502</html>"), TS_UNKNOWN);
	T_INT(A(kling, "{\"data\":{\"task_status\":\"failed\"}"), TS_UNKNOWN);
	T_INT(A(idx, "{\"data\":[{\"status\":\"done\"}]}"), TS_SUCCEEDED);
	T_OK(A(idx, "{\"data\":[{\"status\":\"error\",\"err\":7}]}") ==
	    TS_FAILED && strcmp(why, "7") == 0);
	T_INT(A(idx, "{\"data\":[]}"), TS_UNKNOWN);
	T_INT(A(idx, "{\"data\":[{\"status\":3}]}"), TS_RUNNING);
	T_INT(task_answer_state(NULL, "{}", 2, why, sizeof(why)), TS_UNKNOWN);

	/* the task an answer is about, where the kind says */
#define R(k, s)	task_answer_read(&(k), s, sizeof(s) - 1, &a)
	R(kling, "{\"data\":{\"task_id\":\"Ab-1\",\"task_status\":\"failed\"}}");
	T_OK(a.state == TS_FAILED && a.has_id && strcmp(a.id, "Ab-1") == 0);
	R(kling, "{\"data\":{\"task_id\":781234567890123456,"
	    "\"task_status\":\"succeed\"}}");
	T_OK(a.state == TS_SUCCEEDED && a.has_id &&
	    strcmp(a.id, "781234567890123456") == 0);
	R(kling, "{\"data\":{\"task_status\":\"failed\"}}");
	T_OK(a.state == TS_FAILED && !a.has_id);
	R(kling, "{\"data\":{\"task_id\":1.5,\"task_status\":\"failed\"}}");
	T_OK(!a.has_id);
	R(kling, "{\"data\":{\"task_id\":\"a\\u0000b\",\"task_status\":\"x\"}}");
	T_OK(a.state == TS_RUNNING && !a.has_id);
	R(kling, "{\"data\":{\"task_id\":\"\",\"task_status\":\"x\"}}");
	T_OK(!a.has_id);
	/* the upstream knows no such task: lost, never failed; its word kept */
	R(jimeng, "{\"code\":10000,\"data\":{\"status\":\"not_found\"}}");
	T_OK(a.state == TS_LOST && strcmp(a.reason, "not_found") == 0 &&
	    !a.has_id);
	R(jimeng, "{\"message\":\"gone\",\"data\":{\"status\":\"EXPIRED\"}}");
	T_OK(a.state == TS_LOST && strcmp(a.reason, "EXPIRED") == 0);
	R(jimeng, "{\"data\":{\"status\":\"failed\"}}");
	T_INT(a.state, TS_FAILED);
	R(jimeng, "{\"data\":{\"status\":\"generating\"}}");
	T_OK(a.state == TS_RUNNING && a.reason[0] == '\0');
#undef R
	T_INT(task_state_parse("lost"), TS_UNKNOWN);
	T_INT(task_state_parse("refunded"), TS_REFUNDED);
	T_INT(task_state_parse("unknown"), TS_UNKNOWN);
	T_STR(task_state_name(TS_TIMEOUT), "timeout");
#undef A
}

UNIT_MAIN("taskstate", test_task_answer, test_state, test_reason, test_id, test_names)
