/* common/jsonread.c: the one reader of JSON that others wrote, and the
 * fields a price reads, as Go reads a body. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../common/jsonread.c"

/* The text of paths[0] by json_fields, "-" absent, "L" other, "!" refused. */
static const char *
field1(const char *body, const char *path)
{
	static char	 out[1][JSON_SCALAR_MAX + 1];
	const char	*paths[1] = { path };
	int		 found[1];

	if (json_fields(body, strlen(body), paths, 1, out, found) == -1)
		return "!";
	return found[0] == JF_ABSENT ? "-" : found[0] == JF_OTHER ? "L" :
	    out[0];
}

/* Go's syntax, over the whole text. */
static void
test_syntax(void)
{
	static const struct {
		const char	*body;
		int		 ok;
		int		 line;
	} t[] = {
		{ "{}", 1, __LINE__ },
		{ " {\"a\" : [1, -0.5e+3, true, false, null, \"\\u00e9\"]} \n", 1,
		  __LINE__ },
		{ "null", 1, __LINE__ },
		{ "", 0, __LINE__ },
		{ "   ", 0, __LINE__ },
		{ "[]", 0, __LINE__ },		/* no struct: Go's type error */
		{ "\"x\"", 0, __LINE__ },
		{ "{\"a\":01}", 0, __LINE__ },	/* a leading zero */
		{ "{\"a\":0.}", 0, __LINE__ },
		{ "{\"a\":1e}", 0, __LINE__ },
		{ "{\"a\":.5}", 0, __LINE__ },
		{ "{\"a\":1,}", 0, __LINE__ },	/* a trailing comma */
		{ "{\"a\":[1,]}", 0, __LINE__ },
		{ "{\"a\":\"\t\"}", 0, __LINE__ },	/* raw control character */
		{ "{\"a\":\"\\x\"}", 0, __LINE__ },	/* no such escape */
		{ "{\"a\":\"\\u12\"}", 0, __LINE__ },
		{ "{\"a\":tru}", 0, __LINE__ },
		{ "{'a':1}", 0, __LINE__ },
		{ "{\"a\":1} x", 0, __LINE__ },	/* bytes after the value */
		{ "{\"a\":1}{}", 0, __LINE__ },
		{ "{\"a\":1", 0, __LINE__ },
		{ "{\"a\" 1}", 0, __LINE__ },
	};
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		T_INT_AT(t[i].line, strcmp(field1(t[i].body, "a"), "!") != 0,
		    t[i].ok);
}

/* A key matches as Go matches a field; the later key counts. */
static void
test_keys(void)
{
	T_STR(field1("{\"Duration\":10}", "duration"), "10");
	T_STR(field1("{\"DURATION\":10}", "Duration"), "10");
	T_STR(field1("{\"\\u0064uration\":7}", "duration"), "7");
	/* U+017F for s and U+212A for k, escaped or not */
	T_STR(field1("{\"ta\\u017fk\":\"a\"}", "task"), "a");
	T_STR(field1("{\"ta\xc5\xbfk\":\"a\"}", "task"), "a");
	T_STR(field1("{\"tas\xe2\x84\xaa\":\"b\"}", "task"), "b");
	T_STR(field1("{\"duration\\u0000\":10}", "duration"), "-");
	T_STR(field1("{\"dur\xc3\xa0tion\":10}", "duration"), "-");
	T_STR(field1("{\"a\":1,\"a\":2}", "a"), "2");
	T_STR(field1("{\"a\":1,\"A\":2}", "a"), "2");
	T_STR(field1("{\"a\":1,\"a\":null}", "a"), "1");	/* null leaves it */
	T_STR(field1("{\"a\":1,\"a\":{}}", "a"), "-");
}

/* Values as text, and dotted paths through objects. */
static void
test_paths(void)
{
	T_STR(field1("{\"a\":{\"b\":{\"c\":\"x\"}}}", "a.b.c"), "x");
	T_STR(field1("{\"a\":{\"b\":1},\"a\":{\"c\":2}}", "a.b"), "1"); /* merged */
	T_STR(field1("{\"a\":\"s\",\"b\":1}", "a.b"), "-");	/* type error */
	T_STR(field1("{\"a\":[{\"b\":1}]}", "a.0.b"), "-");	/* no index */
	T_STR(field1("{\"a\":10.0}", "a"), "10");
	T_STR(field1("{\"a\":1e1}", "a"), "10");
	T_STR(field1("{\"a\":0.25}", "a"), "0.25");
	T_STR(field1("{\"a\":true}", "a"), "true");
	T_STR(field1("{\"a\":\"\\ud83d\\ude00\"}", "a"), "\xf0\x9f\x98\x80");
	T_STR(field1("{\"a\":\"\\ud83d\"}", "a"), "\xef\xbf\xbd");
	T_STR(field1("{\"a\":\"\xff\"}", "a"), "\xef\xbf\xbd");
	T_STR(field1("{\"a\":\"\\u0000\"}", "a"), "L");
	T_STR(field1("{\"a\":\"0123456789012345678901234567890123456789"
	    "01234567890123456789012345\"}", "a"), "L");
	T_STR(field1("{\"a\":1}", "a..b"), "-");	/* no dotted name */
	T_STR(field1("{\"a-b\":1}", "a-b"), "-");
	T_STR(field1("{}", "a"), "-");
}

/* json_values with JSON_INDEX | JSON_ANYSEG: arrays, any key's name. */
static void
test_values(void)
{
	static const char body[] =
	    "[{\"st\":\"a\"},{\"task-status\":[7,{\"x\":null}],\"o\":{ \"k\" : [1, 2] }}]";
	const char		*paths[] = { "0.st", "1.task-status.0", "1.o",
				    "1.task-status.1.x", "2", "1.O" };
	struct json_value	 v[6];
	char			 out[64];
	const int		 f = JSON_INDEX | JSON_ANYSEG;

	T_INT(json_values(body, sizeof(body) - 1, paths, 6, f, v), 0);
	T_INT(v[0].kind, JSON_STRING);
	T_INT(json_text(&v[0], out, sizeof(out)), 1);
	T_STR(out, "a");
	T_INT(v[1].kind, JSON_NUMBER);
	T_MEM(v[1].p, v[1].n, "7", 1);
	T_INT(v[2].kind, JSON_OBJECT);
	T_INT(json_compact(&v[2], out, sizeof(out)), 11);
	T_STR(out, "{\"k\":[1,2]}");
	T_INT(v[3].kind, JSON_NONE);		/* null: nothing */
	T_INT(v[4].kind, JSON_NONE);
	T_INT(v[5].kind, JSON_OBJECT);		/* "1.o" spelt another way */
	/* without the flags, as Go into a struct */
	T_INT(json_values(body, sizeof(body) - 1, paths, 6, 0, v), -1);
	T_INT(v[0].kind, JSON_NONE);
	/* a long string cut at whole characters */
	T_INT(json_text(&(struct json_value){ JSON_STRING, "\"ab\xc3\xa9\"", 6 },
	    out, 4), 4);
	T_STR(out, "ab");
	T_INT(json_text(&v[2], out, sizeof(out)), 0);	/* no string */
}

static int
collect(void *arg, const char *key, size_t kl, const struct json_value *v)
{
	char	*s = arg;
	size_t	 n = strlen(s);

	snprintf(s + n, 256 - n, "%s%s=%d:%.*s;", key ? key : "#",
	    kl > JSON_SCALAR_MAX ? "+" : "", v->kind, (int)v->n, v->p);
	return 0;
}

static int
stop(void *arg, const char *key, size_t kl, const struct json_value *v)
{
	(*(int *)arg)++;
	return -1;
}

/* A walk: json_parse, then json_each over members and elements. */
static void
test_walk(void)
{
	static const char body[] = " {\"a\":1, \"b\\u0021\":[true, \"x\"],\"a\":{}} ";
	static const char longkey[] = "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":0}";
	struct json_value	 top, arr;
	char			 s[256] = "";
	int			 calls = 0;

	T_INT(json_parse(body, sizeof(body) - 1, &top), 0);
	T_INT(top.kind, JSON_OBJECT);
	T_INT(top.n, sizeof(body) - 3);
	T_INT(json_each(&top, collect, s), 0);
	T_STR(s, "a=2:1;b!=7:[true, \"x\"];a=6:{};");
	arr.kind = JSON_ARRAY;
	arr.p = strchr(body, '[');
	arr.n = 12;
	s[0] = '\0';
	T_INT(json_each(&arr, collect, s), 0);
	T_STR(s, "#=3:true;#=1:\"x\";");
	T_INT(json_each(&top, stop, &calls), -1);
	T_INT(calls, 1);
	T_INT(json_parse("{\"a\":1} 2", 9, &top), -1);
	T_INT(json_parse("[1,2]", 5, &top), 0);
	T_INT(top.kind, JSON_ARRAY);
	T_INT(json_parse("", 0, &top), -1);
	s[0] = '\0';
	T_INT(json_parse(longkey, strlen(longkey), &top), 0);
	T_INT(json_each(&top, collect, s), 0);
	T_STR(s, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa+=2:0;");
}

/* Go's nesting limit, counted from the top, without recursion. */
static void
test_depth(void)
{
	const char		*paths[] = { "d" };
	struct json_value	 v[1];
	char			*b;
	size_t			 n, k;

	for (k = 0; k < 2; k++) {
		n = JSON_DEPTH_MAX - 1 + k;	/* with the object around */
		if ((b = malloc(2 * n + 32)) == NULL)
			return;
		strcpy(b, "{\"d\":1,\"x\":");
		memset(b + strlen(b), '[', n);
		memset(b + 11 + n, ']', n);
		strcpy(b + 11 + 2 * n, "}");
		T_INT(json_values(b, strlen(b), paths, 1, 0, v), k == 0 ? 0 : -1);
		T_INT(json_parse(b, strlen(b), &v[0]), k == 0 ? 0 : -1);
		free(b);
	}
}

struct got {
	char	 s[512];
	size_t	 n;
};

static int
want_id(void *arg, const char *key, size_t n)
{
	return n == 2 && memcmp(key, "id", 2) == 0;
}

static void
got_ch(void *arg, int c)
{
	struct got	*g = arg;

	if (g->n + 2 < sizeof(g->s))
		g->s[g->n++] = c == -1 ? '|' : (char)c;
	g->s[g->n] = '\0';
}

static void
got_bare(void *arg, const char *p, size_t n)
{
	struct got	*g = arg;

	if (g->n + n + 2 < sizeof(g->s)) {
		memcpy(g->s + g->n, p, n);
		g->n += n;
		g->s[g->n++] = '#';
	}
	g->s[g->n] = '\0';
}

/* The tolerant mode: any bytes, keys folded, values handed on. */
static void
test_scan(void)
{
	static const struct {
		const char	*text, *want;
		int		 line;
	} t[] = {
		{ "{\"id\":\"a,b\"}", "a,b|", __LINE__ },
		{ "{\"ID\":1,\"x\":{\"Id\":[\"c\",2,{\"id\":\"d\"}]}}",
		  "1#c|2#d|", __LINE__ },
		{ "{\"i\\u0044\":\"\\u00e9\"}", "\x80|", __LINE__ },
		{ "{\"prompt\":\"\\\"id\\\":\\\"x\\\"\"}", "", __LINE__ },
		{ "{\"id\":\"x", "x|", __LINE__ },	/* cut short */
		{ "garbage \"id\" : 5 more", "5#", __LINE__ },
		{ "[\"id\",\"x\"]", "", __LINE__ },
		{ "{\"idid\":\"x\"}", "", __LINE__ },
	};
	struct json_scan	 s;
	struct got		 g;
	size_t			 i;

	s.want = want_id;
	s.ch = got_ch;
	s.bare = got_bare;
	s.arg = &g;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		g.n = 0;
		g.s[0] = '\0';
		json_scan(t[i].text, strlen(t[i].text), &s);
		T_STR_AT(t[i].line, g.s, t[i].want);
	}
}

/*
 * The reader of the fields a price reads, as Go's encoding/json reads a
 * body into a struct (tests/goref/ compares the two over many more).
 */
static void
test_json_fields(void)
{
	static const char *const paths[] = { "duration", "mode", "steps",
	    "kind", "a.b", "a.c", "model" };
	static const struct {
		const char	*body;
		int		 rc;
		const char	*want[7];	/* NULL absent, "~" JF_OTHER */
		int		 line;
	} t[] = {
		/* a top-level number or literal hides nothing */
		{ "{\"seed\":42,\"duration\":10,\"mode\":\"pro\"}", 0,
		    { "10", "pro" }, __LINE__ },
		{ "{\"cfg_scale\":0.5,\"duration\":\"10\"}", 0, { "10" }, __LINE__ },
		{ "{\"watermark\":false,\"x\":null,\"mode\":\"pro\"}", 0,
		    { NULL, "pro" }, __LINE__ },
		{ "{\"duration\":10,\"duration\":null}", 0, { "10" }, __LINE__ },
		{ "{\"duration\\u0000\":10}", 0, { NULL }, __LINE__ },
		{ "{\"duration\":5,\"duration\\u0000\":10}", 0, { "5" }, __LINE__ },
		{ "{\"\xc5\xbfteps\":4,\"\xe2\x84\xaaind\":\"x\"}", 0,
		    { NULL, NULL, "4", "x" }, __LINE__ },
		{ "{\"\\u017fTEPS\":4,\"\\u212Aind\":\"x\"}", 0,
		    { NULL, NULL, "4", "x" }, __LINE__ },
		{ "{\"\xc5teps\":4,\"s\\u0301teps\":5}", 0, { NULL }, __LINE__ },
		{ "{\"mode\":\"std\",\"MODE\":\"pro\"}", 0, { NULL, "pro" }, __LINE__ },
		{ "{\"mode\":\"pro\",\"mode\":{}}", 0, { NULL }, __LINE__ },
		{ "{\"a\":{\"b\":1},\"A\":{\"c\":2}}", 0,
		    { NULL, NULL, NULL, NULL, "1", "2" }, __LINE__ },
		{ "{\"a\":{\"b\":1},\"a\":\"x\",\"a\":[1],\"a\":null}", 0,
		    { NULL, NULL, NULL, NULL, "1" }, __LINE__ },
		{ "{\"duration\":10.0,\"mode\":1e1,\"steps\":0.5,\"kind\":-0}", 0,
		    { "10", "10", "0.5", "0" }, __LINE__ },
		{ "{\"duration\":1e15,\"mode\":123456789012345678,\"steps\":1e400,"
		    "\"kind\":1E+2}", 0,
		    { "1e+15", "1.23456789012346e+17", "inf", "100" }, __LINE__ },
		{ "{\"mode\":\"\xff\",\"kind\":\"\\ud800x\",\"steps\":"
		    "\"\\ud83d\\ude00\"}", 0, { NULL, "\xef\xbf\xbd",
		    "\xf0\x9f\x98\x80", "\xef\xbf\xbdx" }, __LINE__ },
		{ "{\"mode\":\"pro\\u0000\",\"kind\":\"0123456789012345678901234567"
		    "8901234567890123456789012345678901234\"}", 0,
		    { NULL, "~", NULL, "~" }, __LINE__ },
		{ "{\"model\":true,\"mode\":false}", 0,
		    { NULL, "false", NULL, NULL, NULL, NULL, "true" }, __LINE__ },
		{ " null ", 0, { NULL }, __LINE__ },
		{ "{\"duration\":10}  \r\n", 0, { "10" }, __LINE__ },
		/* refused as json.Unmarshal refuses */
		{ "{\"duration\":10} x", -1, { NULL }, __LINE__ },
		{ "{\"duration\":10}{}", -1, { NULL }, __LINE__ },
		{ "[{\"duration\":10}]", -1, { NULL }, __LINE__ },
		{ "\"x\"", -1, { NULL }, __LINE__ },
		{ "10", -1, { NULL }, __LINE__ },
		{ "not json", -1, { NULL }, __LINE__ },
		{ "   ", -1, { NULL }, __LINE__ },
		{ "{\"duration\":01}", -1, { NULL }, __LINE__ },
		{ "{\"duration\":0.}", -1, { NULL }, __LINE__ },
		{ "{\"duration\":1e}", -1, { NULL }, __LINE__ },
		{ "{\"duration\":-}", -1, { NULL }, __LINE__ },
		{ "{\"duration\":+1}", -1, { NULL }, __LINE__ },
		{ "{\"duration\":10,}", -1, { NULL }, __LINE__ },
		{ "{\"x\":[1,],\"duration\":10}", -1, { NULL }, __LINE__ },
		{ "{\"mode\":\"a\tb\"}", -1, { NULL }, __LINE__ },
		{ "{\"mode\":\"\\x\"}", -1, { NULL }, __LINE__ },
		{ "{\"mode\":\"\\u12\"}", -1, { NULL }, __LINE__ },
		{ "{\"mode\":tru}", -1, { NULL }, __LINE__ },
		{ "{\"mode\" \"pro\"}", -1, { NULL }, __LINE__ },
		{ "{'mode':'pro'}", -1, { NULL }, __LINE__ },
		{ "\xef\xbb\xbf{\"mode\":\"pro\"}", -1, { NULL }, __LINE__ },
		{ "{\"mode\":\"pro\"", -1, { NULL }, __LINE__ },
		{ "duration=10&mode=pro", -1, { NULL }, __LINE__ },
		{ "--x\r\nContent-Disposition: form-data; name=\"mode\"\r\n\r\npro"
		    "\r\n--x--\r\n", -1, { NULL }, __LINE__ },
	};
	char	 out[7][JSON_SCALAR_MAX + 1], *deep;
	int	 found[7], rc, ok;
	size_t	 i, k, n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		rc = json_fields(t[i].body, strlen(t[i].body), paths, 7, out,
		    found);
		ok = rc == t[i].rc;
		for (k = 0; k < 7; k++) {
			const char *w = t[i].want[k];

			if (w == NULL)
				ok &= found[k] == JF_ABSENT;
			else if (strcmp(w, "~") == 0)
				ok &= found[k] == JF_OTHER;
			else
				ok &= found[k] == JF_VALUE && strcmp(out[k], w) == 0;
		}
		T_OK_AT(t[i].line, ok);
	}
	/* Go's nesting limit: 10000 brackets open, not one more */
	n = JSON_DEPTH_MAX + 1;
	if ((deep = malloc(2 * n + 64)) != NULL) {
		for (k = 0; k < 2; k++) {
			size_t	 d = n - 1 + k, o;

			o = (size_t)snprintf(deep, 64, "{\"duration\":10,\"x\":");
			memset(deep + o, '[', d - 1);
			memset(deep + o + d - 1, ']', d - 1);
			memcpy(deep + o + 2 * (d - 1), "}", 2);
			rc = json_fields(deep, strlen(deep), paths, 7, out, found);
			T_OK(k == 0 ? rc == 0 && found[0] == JF_VALUE : rc == -1);
		}
		free(deep);
	}
	/* a path that is no dotted name is never found */
	{
		static const char *const bad[] = { "a..b", "", "a-b", "a." };

		const char *b = "{\"a\":{\"\":1,\"b\":1},\"\":1,\"a-b\":1}";

		rc = json_fields(b, strlen(b), bad, 4, out, found);
		T_OK(rc == 0 && found[0] == JF_ABSENT && found[1] == JF_ABSENT &&
		    found[2] == JF_ABSENT && found[3] == JF_ABSENT);
	}
}


UNIT_MAIN("jsonread", test_json_fields, test_syntax, test_keys, test_paths, test_values,
    test_walk, test_depth, test_scan)
