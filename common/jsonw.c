#include <string.h>

#include "jsonw.h"

int
json_escape(struct buf *o, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			if (buf_add(o, "\\", 1) == -1 || buf_add(o, s, 1) == -1)
				return -1;
		} else if (c < 0x20) {
			if (buf_printf(o, "\\u%04x", c) == -1)
				return -1;
		} else if (buf_add(o, s, 1) == -1)
			return -1;
	}
	return 0;
}

int
json_string(struct buf *o, const char *s)
{
	if (buf_add(o, "\"", 1) == -1 || json_escape(o, s) == -1 ||
	    buf_add(o, "\"", 1) == -1)
		return -1;
	return 0;
}
