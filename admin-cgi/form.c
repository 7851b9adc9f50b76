/*
 * Untrusted bytes in: urlencoded query strings and bodies, and the Cookie
 * header. Fields are read only through the allow-list below; a value is
 * decoded, then checked by its field's validator. This file depends on
 * nothing but libc, so the fuzz target includes it whole.
 */
#include <stdlib.h>
#include <string.h>

#include "fieldlimits.h"
#include "form.h"
#include "util.h"

/*
 * The limits are the columns' (fieldlimits.h): a text column's in
 * characters (chars; max is then the most bytes so many can take), an
 * ASCII list's in bytes. Lists normalised before they are stored (allowed
 * IPs, model limits: a browser sends CRLF) may be sent with twice their
 * limit; the page checks the normalised value against the limit. Fields
 * that are not columns (password, filters) have caps of their own.
 */
#define CHARS(n)	LIM_BYTES(n) - 1, n

const struct field_def fields[F__MAX] = {
	[F_CSRF] =		{ "csrf", V_LINE, 128, 0 },
	[F_USERNAME] =		{ "username", V_LINE, CHARS(LIM_USERNAME) },
	[F_PASSWORD] =		{ "password", V_LINE, 128, 0 },
	[F_ID] =		{ "id", V_INT, 20, 0 },
	[F_NAME] =		{ "name", V_LINE, CHARS(LIM_CHANNEL_NAME) },
	[F_TYPE] =		{ "type", V_INT, 20, 0 },
	[F_BASE_URL] =		{ "base_url", V_LINE, LIM_BASE_URL, 0 },
	[F_KEY] =		{ "key", V_TEXT, 8192, 0 },
	[F_STATUS] =		{ "status", V_INT, 20, 0 },
	[F_PRIORITY] =		{ "priority", V_INT, 20, 0 },
	[F_WEIGHT] =		{ "weight", V_INT, 20, 0 },
	[F_GROUP] =		{ "group", V_LINE, LIM_CHANNEL_GROUP, 0 },
	[F_MODELS] =		{ "models", V_TEXT, 1023, 0 },
	[F_SETTING] =		{ "setting", V_TEXT, 4095, 0 },
	[F_REMARK] =		{ "remark", V_LINE, CHARS(LIM_CHANNEL_REMARK) },
	[F_AUTO_BAN] =		{ "auto_ban", V_INT, 20, 0 },
	[F_QUOTA] =		{ "quota", V_INT, 20, 0 },
	[F_UNLIMITED] =		{ "unlimited", V_INT, 20, 0 },
	[F_EXPIRES] =		{ "expires", V_DATETIME, 19, 0 },
	[F_MODEL_LIMITS] =	{ "model_limits", V_TEXT, 2 * LIM_MODEL_LIMITS, 0 },
	[F_ALLOW_IPS] =		{ "allow_ips", V_TEXT, 2 * LIM_ALLOW_IPS, 0 },
	[F_ROLE] =		{ "role", V_INT, 20, 0 },
	[F_DISPLAY] =		{ "display_name", V_LINE, CHARS(LIM_DISPLAY_NAME) },
	[F_USER] =		{ "user", V_LINE, CHARS(LIM_USERNAME) },
	[F_TOKEN] =		{ "token", V_LINE, CHARS(LIM_TOKEN_NAME) },
	[F_SERVICE] =		{ "service", V_LINE, 32, 0 },
	[F_CHANNEL] =		{ "channel", V_INT, 20, 0 },
	[F_FROM] =		{ "from", V_DATETIME, 19, 0 },
	[F_TO] =		{ "to", V_DATETIME, 19, 0 },
	[F_PAGE] =		{ "page", V_INT, 20, 0 },
	[F_FLASH] =		{ "ok", V_INT, 20, 0 },
	/* a price rule: price_rule_check says what is wrong with a value */
	[F_MODEL] =		{ "model", V_LINE, 255, 0 },
	[F_FIELD] =		{ "field", V_LINE, 255, 0 },
	[F_VALUE] =		{ "value", V_LINE, 255, 0 },
	[F_MULTIPLIER] =	{ "multiplier", V_LINE, 64, 0 },
	[F_SURCHARGE] =		{ "surcharge", V_LINE, 64, 0 },
	[F_NOTE] =		{ "note", V_LINE, 1024, 0 },
	[F_STATE] =		{ "state", V_LINE, 16, 0 },
	[F_DAY_FROM] =		{ "created_from", V_DATE, 10, 0 },
	[F_DAY_TO] =		{ "created_to", V_DATE, 10, 0 },
	/* a token's or user's limits (bltcy_limits) */
	[F_IN_FLIGHT] =		{ "in_flight", V_INT, 20, 0 },
	[F_TASKS] =		{ "tasks", V_INT, 20, 0 },
	[F_RPM] =		{ "rpm", V_INT, 20, 0 },
};

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t		 len, i;
	unsigned	 cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static int
valid_text(const char *s, size_t n, int multiline)
{
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 i = 0, l;

	while (i < n) {
		if (p[i] < 0x20 || p[i] == 0x7f) {
			if (!multiline || !(p[i] == '\r' || p[i] == '\n' ||
			    p[i] == '\t'))
				return 0;
		}
		if ((l = utf8_len(p + i, n - i)) == 0)
			return 0;
		i += l;
	}
	return 1;
}

static int
valid_int(const char *s, size_t n)
{
	size_t	 i = (n > 0 && s[0] == '-') ? 1 : 0;

	if (n == i || n - i > 18)
		return n == 0;	/* empty means absent */
	for (; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

static int
valid_datetime(const char *s, size_t n)
{
	/* "2025-10-11T08:30" or with ":SS"; empty means absent */
	static const char	 shape[] = "dddd-dd-ddTdd:dd:dd";
	size_t			 i;

	if (n == 0)
		return 1;
	if (n != 16 && n != 19)
		return 0;
	for (i = 0; i < n; i++) {
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') :
		    !(s[i] == shape[i] || (shape[i] == 'T' && s[i] == ' ')))
			return 0;
	}
	return 1;
}

static int
valid_date(const char *s, size_t n)
{
	/* "2025-10-11"; empty means absent */
	static const char	 shape[] = "dddd-dd-dd";
	size_t			 i;

	if (n == 0)
		return 1;
	if (n != 10)
		return 0;
	for (i = 0; i < n; i++)
		if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
			return 0;
	return 1;
}

static int
valid_line(const char *s, size_t n)
{
	return valid_text(s, n, 0);
}

static int
valid_lines(const char *s, size_t n)
{
	return valid_text(s, n, 1);
}

static int (*const validators[V__MAX])(const char *, size_t) = {
	[V_LINE] = valid_line,
	[V_TEXT] = valid_lines,
	[V_INT] = valid_int,
	[V_DATETIME] = valid_datetime,
	[V_DATE] = valid_date,
};

int
valid(enum validator v, const char *s, size_t n)
{
	return (unsigned)v < V__MAX && validators[v](s, n);
}

size_t
utf8_chars(const char *s, size_t n)
{
	size_t	 i, c = 0;

	for (i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

/* Decode n bytes of one name or value; out has room for n + 1. */
static int
decode(const char *in, size_t n, char *out, size_t *outlen)
{
	size_t	 i, o = 0;

	for (i = 0; i < n; i++) {
		if (in[i] == '+')
			out[o++] = ' ';
		else if (in[i] == '%') {
			int hi, lo;
			if (n - i < 3 || (hi = hex_digit((unsigned char)in[i + 1])) < 0 ||
			    (lo = hex_digit((unsigned char)in[i + 2])) < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else
			out[o++] = in[i];
	}
	out[o] = '\0';
	*outlen = o;
	return 0;
}

static int
field_find(const char *name, size_t n)
{
	int	 i;

	for (i = 0; i < F__MAX; i++)
		if (strlen(fields[i].name) == n && memcmp(fields[i].name, name, n) == 0)
			return i;
	return -1;
}

int
form_parse(struct form *f, const char *in, size_t len)
{
	size_t	 pos = 0, used = 0;

	memset(f, 0, sizeof(*f));
	/* decoding never grows a string: len + one NUL per pair is enough */
	f->arenasz = len + len / 2 + 2;
	if ((f->arena = malloc(f->arenasz)) == NULL)
		return -1;
	while (pos < len) {
		const char	*pair = in + pos, *eq;
		size_t		 pl, nl, vl, klen, dlen;
		char		*key, *val;
		int		 fi;

		pl = 0;
		while (pos + pl < len && pair[pl] != '&' && pair[pl] != ';')
			pl++;
		pos += pl + 1;
		if (pl == 0)
			continue;
		eq = memchr(pair, '=', pl);
		nl = eq ? (size_t)(eq - pair) : pl;
		vl = eq ? pl - nl - 1 : 0;
		key = f->arena + used;
		if (decode(pair, nl, key, &klen) == -1)
			return -1;
		if ((fi = field_find(key, klen)) < 0 || f->v[fi] != NULL ||
		    f->bad[fi])
			continue;	/* not allowed, or a repeat */
		val = key;	/* overwrite the name: it is not kept */
		if (decode(eq ? eq + 1 : pair + pl, vl, val, &dlen) == -1)
			return -1;
		if (dlen > fields[fi].max || (fields[fi].chars > 0 &&
		    utf8_chars(val, dlen) > fields[fi].chars)) {
			f->bad[fi] = BAD_LONG;
			continue;
		}
		if (memchr(val, '\0', dlen) != NULL ||
		    !valid(fields[fi].v, val, dlen)) {
			f->bad[fi] = BAD_FORMAT;
			continue;
		}
		f->v[fi] = val;
		used += dlen + 1;
	}
	return 0;
}

void
form_free(struct form *f)
{
	if (f->arena != NULL) {
		wipe(f->arena, f->arenasz);	/* passwords pass through here */
		free(f->arena);
	}
	memset(f, 0, sizeof(*f));
}

int
cookie_get(const char *hdr, const char *name, char *out, size_t outsz)
{
	size_t	 nl = strlen(name);
	const char *p = hdr;

	while (p != NULL && *p != '\0') {
		size_t	 n;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		n = strcspn(p, ";");
		if (n > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl = n - nl - 1;
			while (vl > 0 && (p[nl + 1 + vl - 1] == ' ' ||
			    p[nl + 1 + vl - 1] == '\t'))
				vl--;
			if (vl >= outsz)
				return -1;
			memcpy(out, p + nl + 1, vl);
			out[vl] = '\0';
			return 0;
		}
		p += n;
	}
	return -1;
}
