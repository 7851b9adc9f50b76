/* jsonw.h: the JSON writer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "jsonw.h"
#include "util.h"

static void
test_jsonw(void)
{
	struct buf	 b;

	buf_init(&b, 1024);
	T_OK(json_string(&b, "a\"b\\c\n\x01") == 0 &&
	    strcmp(b.p, "\"a\\\"b\\\\c\\u000a\\u0001\"") == 0);
	buf_free(&b);
	buf_init(&b, 4);
	T_INT(json_string(&b, "toolong"), -1);
	buf_free(&b);
}

UNIT_MAIN("jsonw", test_jsonw)
