#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "html.h"

void
html_init(struct html *o, size_t max)
{
	buf_init(&o->b, max);
	o->err = 0;
}

void
html_free(struct html *o)
{
	buf_free(&o->b);
}

static void
put(struct html *o, const char *p, size_t n)
{
	if (!o->err && buf_add(&o->b, p, n) == -1)
		o->err = 1;
}

/* The entity of each byte that needs one. */
static const char *const entity[256] = {
	['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;",
	['\''] = "&#39;",
};

void
html_textn(struct html *o, const char *s, size_t n)
{
	size_t	 i, run = 0;

	for (i = 0; i < n; i++) {
		const char *e = entity[(unsigned char)s[i]];
		if (e == NULL && s[i] != '\0')
			continue;
		put(o, s + run, i - run);
		if (e != NULL)
			put(o, e, strlen(e));
		run = i + 1;	/* a NUL byte is dropped */
	}
	put(o, s + run, n - run);
}

static void
urlenc(struct html *o, const char *s)
{
	static const char	 hx[] = "0123456789ABCDEF";
	char			 t[3];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~') {
			put(o, s, 1);
			continue;
		}
		t[0] = '%';
		t[1] = hx[c >> 4];
		t[2] = hx[c & 15];
		put(o, t, 3);
	}
}

void
h(struct html *o, const char *fmt, ...)
{
	va_list		 ap;
	const char	*p = fmt, *s;
	char		 num[32];
	int		 n;

	va_start(ap, fmt);
	while (*p != '\0') {
		size_t lit = strcspn(p, "%");
		put(o, p, lit);
		p += lit;
		if (*p == '\0')
			break;
		switch (p[1]) {
		case 's':
			if ((s = va_arg(ap, const char *)) != NULL)
				html_textn(o, s, strlen(s));
			break;
		case 'u':
			if ((s = va_arg(ap, const char *)) != NULL)
				urlenc(o, s);
			break;
		case 'd':
			n = snprintf(num, sizeof(num), "%d", va_arg(ap, int));
			put(o, num, (size_t)n);
			break;
		case 'L':
			n = snprintf(num, sizeof(num), "%lld",
			    va_arg(ap, long long));
			put(o, num, (size_t)n);
			break;
		case '%':
			put(o, "%", 1);
			break;
		default:	/* a bug in a literal: show it, never guess */
			put(o, "%?", 2);
			if (p[1] == '\0') {
				p++;
				continue;
			}
			break;
		}
		p += 2;
	}
	va_end(ap);
}

int
html_escape(const char *s, char *out, size_t outsz)
{
	struct html	 o;
	int		 rc = -1;

	html_init(&o, outsz > 0 ? outsz - 1 : 0);
	html_textn(&o, s, strlen(s));
	if (!o.err && outsz > 0) {
		if (o.b.p != NULL)
			memcpy(out, o.b.p, o.b.len + 1);
		else
			out[0] = '\0';
		rc = 0;
	}
	html_free(&o);
	return rc;
}
