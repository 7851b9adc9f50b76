/* fcgi/taskids.c: task ids in answers and requests. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "jsonread.h"
#include "../../fcgi/taskids.c"

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


static void
test_task_ids_request(void)
{
	static const struct {
		const char *path, *query, *body, *want;
		int line;
	} t[] = {
		{ "/kling", NULL, NULL, "", __LINE__ },
		{ "/kling/", NULL, NULL, "", __LINE__ },
		{ "/kling/v1/videos/T-9", "ids=a,b", NULL, "T-9,videos,a,b",
		  __LINE__ },
		/* ids stand last, or before a last word: not further up */
		{ "/kling/F/a/b/c/d", NULL, NULL, "d,c", __LINE__ },
		{ "/vidu/ent/v2/tasks/T-1/creations", NULL, NULL, "creations,T-1",
		  __LINE__ },
		{ "/kling//x//", NULL, NULL, "x", __LINE__ },
		{ "/kling//x//y/", NULL, NULL, "y,x", __LINE__ },
		/* decoded as the old gateway's router has it */
		{ "/suno/fetch/%46oreign", NULL, NULL, "Foreign,fetch", __LINE__ },
		{ "/suno/fetch/a,b", NULL, NULL, "fetch", __LINE__ },
		/* the query: decoded, any case, lists, both separators */
		{ "/s/x", "TASK_ID=%41b&Id=c+&ids=+d%2ce,f;clip_id=g", NULL,
		  "x,Ab,c,d,e,f,g", __LINE__ },
		{ "/s/x", "prompt=h&taskid=i&ids", NULL, "x,i", __LINE__ },
		/* bodies: the key in any case, at any depth, lists */
		{ "/s", NULL, "{\"task_id\":\"abc\"}", "abc", __LINE__ },
		{ "/s", NULL, "{\"task\\u005fid\":\"abc\"}", "abc", __LINE__ },
		{ "/s", NULL, "{\"Task_Id\":\"a\",\"TASK_ID\":\"b\",\"taskId\":\"c\"}",
		  "a,b,c", __LINE__ },
		{ "/s", NULL, "{\"ta\\u017fk_id\":\"a\",\"ta\xc5\xbfk_id\":\"b\","
		  "\"tas\\u212a_id\":\"c\",\"tas\xe2\x84\xaa_id\":\"d\"}", "a,b,c,d",
		  __LINE__ },
		{ "/s", NULL, "{\"prompt\":\"a task\"}", "", __LINE__ },
		{ "/s", NULL, "{\"other\":{\"task_id\":\"in\"}}", "in", __LINE__ },
		{ "/s", NULL, "{\"ids\":[\"a\",\"b\",7,{\"id\":\"c\"},\"d\"],"
		  "\"x\":\"e\"}", "a,b,7,c,d", __LINE__ },
		{ "/s", NULL, "{\"ids\":\" a, b ,c\"}", "a,b,c", __LINE__ },
		{ "/s", NULL, "{\"clip_ids\":[],\"id\":null,\"task_id\":true}",
		  "null,true", __LINE__ },
		/* a string that only looks like a key inside another one */
		{ "/s", NULL, "{\"prompt\":\"\\\"task_id\\\":\\\"x\\\"\"}", "",
		  __LINE__ },
		{ "/s", NULL, "{\"a\":[\"task_id\",\"x\"]}", "", __LINE__ },
		/* not JSON, or more of it than one value: still read */
		{ "/s", NULL, "{\"task_id\":\"x\"} trailing", "x", __LINE__ },
		{ "/s", NULL, "{\"task_id\":\"x\"", "x", __LINE__ },
		{ "/s", NULL, "{\"task_id\":\"x", "x", __LINE__ },
		{ "/s", NULL, "{\"task_id\"", "", __LINE__ },
		{ "/s", NULL, "\"", "", __LINE__ },
		{ "/s", NULL, "{\"id\":\"no spaces\"}", "", __LINE__ },
		/* more than can be checked */
		{ "/s", NULL, "{\"ids\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
		  "\"8\",\"1\"]}", "1,2,3,4,5,6,7,8", __LINE__ },
		{ "/s", NULL, "{\"ids\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\","
		  "\"8\",\"FOREIGN\"]}", "!", __LINE__ },
		{ "/s/a/b/c/d/e/f/g/h/i", NULL, NULL, "i,h", __LINE__ },
		{ "/s/a/b", "ids=1,2,3,4,5,6,7", NULL, "!", __LINE__ },
	};
	static const char deep_tail[] = "\"task_id\":\"deep\"}";
	struct task_ids	 ids;
	char		*big;
	size_t		 i, n, depth = 100000;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		const char *got = req_ids(t[i].path, t[i].query, t[i].body,
		    t[i].body ? strlen(t[i].body) : 0);
		T_STR_AT(t[i].line, got, t[i].want);
	}
	/* a NUL inside the body is just another byte */
	T_STR(req_ids("/s", NULL, "{\"a\":\"\0\",\"id\":\"z\"}", 19), "z");

	/* far past 64 KiB, and nested far past any recursion */
	n = depth + 2 * 1024 * 1024 + sizeof(deep_tail);
	if ((big = malloc(n)) != NULL) {
		memset(big, '[', depth);
		memset(big + depth, ' ', 2 * 1024 * 1024);
		big[depth] = '{';
		memcpy(big + n - sizeof(deep_tail), deep_tail, sizeof(deep_tail));
		task_ids_from_request(&ids, "/s", 2, NULL, big, n - 1, 0);
		T_OK(ids.n == 1 && strcmp(ids.id[0], "deep") == 0);
		free(big);
	}
}

/* Ids that refuse nobody, and the id a poll names where its kind says. */
static void
test_task_id_places(void)
{
	static const struct { const char *id; int weak; } w[] = {
		{ "slow", 1 }, { "status", 1 }, { "list", 1 }, { "0", 1 },
		{ "1234567", 1 }, { "abc-de1", 1 },
		{ "generations", 1 }, { "text-to-video", 1 },
		{ "image_to_video", 1 }, { "abcdefghijklmnop", 1 },
		{ "abcdefghijklmnopq", 0 },	/* 17 letters: not a word */
		{ "12345678", 0 }, { "text2video", 0 }, { "Generations", 0 },
		{ "-abcdefgh", 0 }, { "abcdefgh-", 0 }, { "abc--defgh", 0 },
		{ "7392616336519610409", 0 }, { "CjikY2gHPbcAAAAAAt9BtA", 0 },
		{ "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d", 0 },
		{ "stubA-0123456789abcdef", 0 },
	};
	static const struct {
		const char *poll, *path, *query, *want;	/* want NULL: none */
		int line;
	} at[] = {	/* a poll path without {id} at an end: "!" */
		{ "{path}/{id}", "/kling/v1/videos/text2video/X-1", "task_id=R",
		  "X-1", __LINE__ },
		{ "{path}/{id}", "/kling/v1/videos/text2video/X%2D1", NULL,
		  "X-1", __LINE__ },
		{ "{path}/{id}", "/kling/v1/videos/text2video/", NULL, NULL,
		  __LINE__ },
		{ "{path}/{id}", "/kling/v1/videos/a%20b", NULL, NULL, __LINE__ },
		{ "{prefix}/fetch/{id}", "/suno/fetch/S-1", NULL, "S-1", __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "task_id=0&id=R", "0",
		  __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "id=R&task_id=J%2D7",
		  "J-7", __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "id=R", NULL, __LINE__ },
		/* given twice, a list, or empty: no one task */
		{ "{path}?task_id={id}", "/jimeng/submit", "task_id=A&task_id=B",
		  NULL, __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "task_id=A,B", NULL,
		  __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "task_id=", NULL,
		  __LINE__ },
		/* the key as the old gateway reads it: exactly */
		{ "{path}?task_id={id}", "/jimeng/submit", "Task_Id=A", NULL,
		  __LINE__ },
		{ "{path}?task_id={id}", "/jimeng/submit", "task%5Fid=A", "A",
		  __LINE__ },
		{ "{path}?a=1&task_id={id}", "/jimeng/x", "task_id=A", "A",
		  __LINE__ },
		{ "{prefix}/ent/v2/tasks/{id}/creations", "/vidu/ent/v2/tasks/V/"
		  "creations", NULL, "!", __LINE__ },
		{ "", "/kling/x", NULL, "!", __LINE__ },
		{ "{path}?={id}", "/kling/x", "=A", "!", __LINE__ },
	};
	char	 out[TASK_ID_MAX + 1];
	size_t	 i;
	int	 rc;

	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		if (task_id_weak(w[i].id) != w[i].weak)
			fprintf(stderr, "  weak(%s) != %d\n", w[i].id, w[i].weak);
		T_INT(task_id_weak(w[i].id), w[i].weak);
	}
	for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		rc = task_id_at(at[i].poll, at[i].path, strlen(at[i].path),
		    at[i].query, out);
		T_STR_AT(at[i].line, rc == 0 ? out : rc == -1 ? NULL :
		    rc == -2 ? "!" : "?", at[i].want);
	}
}

static void
test_task_ids(void)
{
	struct task_ids	 t;
	static const char ans[] =
	    "{\"code\":0,\"data\":{\"task_id\":\"T-1\",\"id\":\"x:2\"}}";
	static const char *const answers[][2] = {	/* answer, its ids */
		{ "{\"data\":[{\"clip_id\":7,\"task_id\":\"a\"},{\"id\":\"b\"},"
		  "3],\"clips\":[{\"id\":\"c\\u002d1\"}],\"id\":-0}", "0,a,7,b,c-1" },
		/* the last of a key counts: here not a string */
		{ " {\"task_id\":\"x\",\"task_id\":{\"a\":[1,2.5e3,true,null]}} ",
		  "" },
		{ "{\"id\":123456789012345678901234}", "18446744073709551615" },
		{ "{\"task_id\":\"x\"", "" },		/* cut short */
		{ "{\"task_id\":\"x\"} {}", "" },	/* two values */
		{ "[{\"task_id\":\"x\"}]", "" },	/* not an object */
		/* Suno's submit answer is the bare id in data */
		{ "{\"code\":\"success\",\"data\":\"4c1a-9\"}", "4c1a-9" },
		{ "{\"data\":\"a\",\"data\":{\"id\":\"b\"}}", "b" },
		{ "{\"id\":\"no spaces\",\"data\":{\"id\":1.5}}", "" },
	};
	char		 joined[TASK_IDS_MAX * (TASK_ID_MAX + 1)];
	size_t		 i;

	task_ids_from_answer(&t, ans, sizeof(ans) - 1);
	T_OK(t.n == 2 && strcmp(t.id[0], "T-1") == 0 &&
	    strcmp(t.id[1], "x:2") == 0);
	for (i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		task_ids_from_answer(&t, answers[i][0], strlen(answers[i][0]));
		T_OK(task_ids_join(&t, joined, sizeof(joined)) == 0 &&
		    strcmp(joined, answers[i][1]) == 0);
	}
	test_task_ids_request();
	test_task_id_places();
}


UNIT_MAIN("taskids", test_task_ids, test_answer, test_request, test_places, test_join_text)
