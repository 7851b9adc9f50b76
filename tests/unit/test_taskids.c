/* fcgi/taskids.c: task ids in answers and requests. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "jsonread.h"
#include "taskids.h"

static const char *
answer_ids(const char *body)
{
	static char	 joined[TASK_IDS_MAX * (TASK_ID_MAX + 1)];
	struct task_ids	 t;

	task_ids_from_answer(&t, body, strlen(body));
	if (task_ids_join(&t, joined, sizeof(joined)) == -1)
		return "?";
	return joined;
}

/* The ids a request names, joined, or "!" when it named too many. */
static const char *
req_ids(const char *path, const char *query, const char *body, size_t bodylen)
{
	static char	 joined[TASK_IDS_MAX * (TASK_ID_MAX + 1)];
	struct task_ids	 t;

	task_ids_from_request(&t, path, strlen(path), query, body, bodylen, 0);
	if (t.overflow)
		return "!";
	if (task_ids_join(&t, joined, sizeof(joined)) == -1)
		return "?";
	return joined;
}

static void
test_answer(void)
{
	static const struct {
		const char	*body, *want;
		int		 line;
	} t[] = {
		{ "{\"code\":0,\"data\":{\"task_id\":\"T-1\",\"id\":\"x:2\"}}",
		  "T-1,x:2", __LINE__ },
		{ "{\"data\":[{\"clip_id\":7,\"task_id\":\"a\"},{\"id\":\"b\"},"
		  "3],\"clips\":[{\"id\":\"c\\u002d1\"}],\"id\":-0}", "0,a,7,b,c-1",
		  __LINE__ },
		/* the last of a key counts: here not a string */
		{ " {\"task_id\":\"x\",\"task_id\":{\"a\":[1,2.5e3,true,null]}} ",
		  "", __LINE__ },
		{ "{\"id\":123456789012345678901234}", "18446744073709551615",
		  __LINE__ },
		{ "{\"id\":-123456789012345678901234}", "-9223372036854775808",
		  __LINE__ },
		{ "{\"task_id\":\"x\"", "", __LINE__ },		/* cut short */
		{ "{\"task_id\":\"x\"} {}", "", __LINE__ },	/* two values */
		{ "[{\"task_id\":\"x\"}]", "", __LINE__ },	/* not an object */
		{ "{\"task_id\":01}", "", __LINE__ },		/* no JSON */
		{ "{\"code\":\"success\",\"data\":\"4c1a-9\"}", "4c1a-9", __LINE__ },
		{ "{\"data\":\"a\",\"data\":{\"id\":\"b\"}}", "b", __LINE__ },
		{ "{\"id\":\"no spaces\",\"data\":{\"id\":1.5}}", "", __LINE__ },
		/* keys exactly; a string and a key end at a \u0000 */
		{ "{\"Task_Id\":\"a\",\"id\\u0000x\":\"b\"}", "b", __LINE__ },
		{ "{\"id\":\"ab\\u0000 cd\"}", "ab", __LINE__ },
		{ "{\"clips\":[{\"id\":\"c\"}],\"clips\":7}", "", __LINE__ },
		{ "", "", __LINE__ },
	};
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		T_STR_AT(t[i].line, answer_ids(t[i].body), t[i].want);
}

static void
test_request(void)
{
	static const struct {
		const char *path, *query, *body, *want;
		int line;
	} t[] = {
		{ "/kling", NULL, NULL, "", __LINE__ },
		{ "/kling/v1/videos/T-9", "ids=a,b", NULL, "T-9,videos,a,b",
		  __LINE__ },
		{ "/kling/F/a/b/c/d", NULL, NULL, "d,c", __LINE__ },
		{ "/suno/fetch/%46oreign", NULL, NULL, "Foreign,fetch", __LINE__ },
		{ "/s/x", "TASK_ID=%41b&Id=c+&ids=+d%2ce,f;clip_id=g", NULL,
		  "x,Ab,c,d,e,f,g", __LINE__ },
		{ "/s", NULL, "{\"Task_Id\":\"a\",\"TASK_ID\":\"b\",\"taskId\":\"c\"}",
		  "a,b,c", __LINE__ },
		{ "/s", NULL, "{\"ta\\u017fk_id\":\"a\",\"tas\xe2\x84\xaa_id\":\"b\"}",
		  "a,b", __LINE__ },
		{ "/s", NULL, "{\"other\":{\"task_id\":\"in\"}}", "in", __LINE__ },
		{ "/s", NULL, "{\"ids\":[\"a\",\"b\",7,{\"id\":\"c\"},\"d\"],"
		  "\"x\":\"e\"}", "a,b,7,c,d", __LINE__ },
		{ "/s", NULL, "{\"ids\":\" a, b ,c\"}", "a,b,c", __LINE__ },
		{ "/s", NULL, "{\"prompt\":\"\\\"task_id\\\":\\\"x\\\"\"}", "",
		  __LINE__ },
		/* not JSON: still read */
		{ "/s", NULL, "{\"task_id\":\"x\"} trailing", "x", __LINE__ },
		{ "/s", NULL, "{\"task_id\":\"x", "x", __LINE__ },
		{ "/s", NULL, "{\"ids\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
		  "\"8\",\"FOREIGN\"]}", "!", __LINE__ },
	};
	static const char deep_tail[] = "\"task_id\":\"deep\"}";
	struct task_ids	 ids;
	char		*big;
	size_t		 i, n, depth = 100000;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		T_STR_AT(t[i].line, req_ids(t[i].path, t[i].query, t[i].body,
		    t[i].body ? strlen(t[i].body) : 0), t[i].want);
	T_STR(req_ids("/s", NULL, "{\"a\":\"\0\",\"id\":\"z\"}", 19), "z");
	n = depth + sizeof(deep_tail);
	if ((big = malloc(n)) != NULL) {
		memset(big, '[', depth);
		big[depth - 1] = '{';
		memcpy(big + depth, deep_tail, sizeof(deep_tail));
		task_ids_from_request(&ids, "/s", 2, NULL, big, n - 1, 0);
		T_INT(ids.n, 1);
		T_STR(ids.id[0], "deep");
		free(big);
	}
}

static void
test_places(void)
{
	static const struct {
		const char *poll, *path, *query, *want;	/* NULL: none, "!": -2 */
		int line;
	} at[] = {
		{ "{path}/{id}", "/kling/v1/videos/text2video/X%2D1", NULL,
		  "X-1", __LINE__ },
		{ "{path}/{id}", "/kling/v1/videos/text2video/", NULL, NULL,
		  __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "id=R&task_id=J%2D7",
		  "J-7", __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "task_id=A&task_id=B",
		  NULL, __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "Task_Id=A", NULL,
		  __LINE__ },
		{ "{prefix}/ent/v2/tasks/{id}/creations", "/vidu/ent/v2/tasks/V/"
		  "creations", NULL, "!", __LINE__ },
	};
	char	 out[TASK_ID_MAX + 1];
	size_t	 i;
	int	 rc;

	T_INT(task_id_weak("status"), 1);
	T_INT(task_id_weak("text-to-video"), 1);
	T_INT(task_id_weak("abcdefghijklmnopq"), 0);
	T_INT(task_id_weak("12345678"), 0);
	T_INT(task_id_weak("abc--defgh"), 0);
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		rc = task_id_at(at[i].poll, at[i].path, strlen(at[i].path),
		    at[i].query, out);
		if (at[i].want == NULL)
			T_INT_AT(at[i].line, rc, -1);
		else if (strcmp(at[i].want, "!") == 0)
			T_INT_AT(at[i].line, rc, -2);
		else {
			T_INT_AT(at[i].line, rc, 0);
			T_STR_AT(at[i].line, out, at[i].want);
		}
	}
}

static void
test_join_text(void)
{
	struct task_ids		 t;
	struct json_value	 v;
	char			 out[TASK_ID_MAX + 2], small[4];

	memset(&t, 0, sizeof(t));
	strcpy(t.id[0], "a");
	strcpy(t.id[1], "bc");
	t.n = 2;
	T_INT(task_ids_join(&t, out, sizeof(out)), 0);
	T_STR(out, "a,bc");
	T_INT(task_ids_join(&t, small, sizeof(small)), -1);
	v.kind = JSON_NUMBER;
	v.p = "-0";
	v.n = 2;
	T_INT(task_id_text(&v, out, sizeof(out)), 1);
	T_STR(out, "0");
	v.p = "1e3";
	v.n = 3;
	T_INT(task_id_text(&v, out, sizeof(out)), 0);
	v.kind = JSON_STRING;
	v.p = "\"a\\u0000\"";
	v.n = 9;
	T_INT(task_id_text(&v, out, sizeof(out)), 2);
	v.kind = JSON_TRUE;
	v.p = "true";
	v.n = 4;
	T_INT(task_id_text(&v, out, sizeof(out)), 0);
}

UNIT_MAIN("taskids", test_answer, test_request, test_places, test_join_text)
