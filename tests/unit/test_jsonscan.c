/* fcgi/jsonscan.c: the fields a price reads, as Go reads a body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/jsonscan.c"

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

UNIT_MAIN("jsonscan", test_json_fields)
