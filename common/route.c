#include <stdio.h>
#include <string.h>

#include "route.h"
#include "util.h"

#define SERVICES_MAX	64

struct service {
	char	 prefix[SERVICE_NAME_MAX];	/* without slashes */
	char	 name[SERVICE_NAME_MAX];
};

static const struct service builtin[] = {
	{ "runway", "runway" },
	{ "runwayml", "runway" },
	{ "pika", "pika" },
	{ "kling", "kling" },
	{ "jimeng", "jimeng" },
	{ "suno", "suno" },
};

static struct service	 services[SERVICES_MAX];
static size_t		 nservices;

static int
valid_name(const char *s, size_t n)
{
	size_t	 i;

	if (n == 0 || n >= SERVICE_NAME_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return 0;
	return 1;
}

int
services_init(const char *extra, char *err, size_t errsz)
{
	const char	*p = extra;

	nservices = 0;
	memcpy(services, builtin, sizeof(builtin));
	nservices = sizeof(builtin) / sizeof(builtin[0]);
	while (p != NULL && *p != '\0') {
		const char	*e = strchr(p, ','), *colon;
		size_t		 n = e ? (size_t)(e - p) : strlen(p), pl, sl, i;

		while (n > 0 && *p == ' ')
			p++, n--;
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n > 0) {
			colon = memchr(p, ':', n);
			pl = colon ? (size_t)(colon - p) : n;
			sl = colon ? n - pl - 1 : n;
			if (!valid_name(p, pl) || !valid_name(colon ? colon + 1 : p, sl)) {
				snprintf(err, errsz, "RELAY_SERVICES: expected "
				    "prefix:service pairs of [a-z0-9._-]");
				return -1;
			}
			for (i = 0; i < nservices; i++)
				if (strlen(services[i].prefix) == pl &&
				    memcmp(services[i].prefix, p, pl) == 0)
					break;
			if (i == SERVICES_MAX) {
				snprintf(err, errsz, "RELAY_SERVICES: too many");
				return -1;
			}
			memcpy(services[i].prefix, p, pl);
			services[i].prefix[pl] = '\0';
			memcpy(services[i].name, colon ? colon + 1 : p, sl);
			services[i].name[sl] = '\0';
			if (i == nservices)
				nservices++;
		}
		p = e ? e + 1 : NULL;
	}
	return 0;
}

const char *
service_for_path(const char *path, size_t len)
{
	size_t	 i, pl;

	if (len < 3 || path[0] != '/')
		return NULL;
	for (i = 0; i < nservices; i++) {
		pl = strlen(services[i].prefix);
		if (len > pl + 1 && memcmp(path + 1, services[i].prefix, pl) == 0 &&
		    path[pl + 1] == '/')
			return services[i].name;
	}
	return NULL;
}

int
service_known(const char *name)
{
	size_t	 i;

	for (i = 0; i < nservices; i++)
		if (strcmp(services[i].name, name) == 0)
			return 1;
	return 0;
}

const char *
service_list(void)
{
	static char	 out[SERVICES_MAX * (SERVICE_NAME_MAX + 1)];
	size_t		 i, o = 0;

	out[0] = '\0';
	for (i = 0; i < nservices; i++) {
		size_t n = strlen(services[i].name);
		if (list_has(out, ',', services[i].name, n))
			continue;
		if (o > 0)
			out[o++] = ',';
		memcpy(out + o, services[i].name, n);
		o += n;
		out[o] = '\0';
	}
	return out;
}

/*
 * A byte of a path or query, raw or decoded from a %-escape: never a
 * control byte or DEL, and raw never a space (libcurl would refuse the
 * URL, and no client that means well sends one).
 */
static int
url_byte_ok(int c, int raw)
{
	return c >= 0x20 && c != 0x7f && !(raw && c == ' ');
}

/*
 * The byte at s[*i], a %-escape decoded (then *i moves past it and *raw
 * is 0); -1 for a malformed escape.
 */
static int
url_byte(const char *s, size_t len, size_t *i, int *raw)
{
	int	 h, l;

	*raw = s[*i] != '%';
	if (*raw)
		return (unsigned char)s[*i];
	if (*i + 2 >= len || (h = hex_digit(s[*i + 1])) < 0 ||
	    (l = hex_digit(s[*i + 2])) < 0)
		return -1;
	*i += 2;
	return h * 16 + l;
}

/* A decoded piece between separators is "." or "..". */
static int
dotseg(const char *s, size_t n)
{
	return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

int
path_is_safe(const char *path, size_t len)
{
	char	 seg[512];
	size_t	 i, o = 0;

	if (len == 0 || path[0] != '/')
		return 0;
	for (i = 0; i <= len; i++) {
		int	 c, raw = 1;

		if (i == len || path[i] == '/' || path[i] == '\\') {
			if (dotseg(seg, o))
				return 0;
			o = 0;
			continue;
		}
		if ((c = url_byte(path, len, &i, &raw)) == -1)
			return 0;
		if (!raw && (c == '/' || c == '\\')) {	/* encoded separator */
			if (dotseg(seg, o))
				return 0;
			o = 0;
			continue;
		}
		if (!url_byte_ok(c, raw))
			return 0;
		if (o < sizeof(seg))
			seg[o] = (char)c;
		o++;			/* a long segment is never a dot one */
	}
	return 1;
}

int
query_is_safe(const char *q, size_t len)
{
	size_t	 i;

	for (i = 0; i < len; i++) {
		int	 raw, c = url_byte(q, len, &i, &raw);

		if (c == -1 || !url_byte_ok(c, raw))
			return 0;
	}
	return 1;
}
