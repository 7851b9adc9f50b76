#include <stdio.h>
#include <string.h>

#include "dsn.h"
#include "util.h"

/* Copy [s, s+n) to dst, percent-decoding when decode is set. */
static int
put(char *dst, size_t dstsz, const char *s, size_t n, int decode)
{
	size_t	 i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];
		if (decode && c == '%') {
			int h, l;
			if (i + 2 >= n)
				return -1;
			if ((h = hex_digit(s[i + 1])) < 0 ||
			    (l = hex_digit(s[i + 2])) < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c == '\0' || o + 1 >= dstsz)
			return -1;
		dst[o++] = (char)c;
	}
	dst[o] = '\0';
	return 0;
}

static int
hostport(struct dsn_node *d, const char *s, size_t n)
{
	const char	*colon;
	long long	 port;
	char		 num[8];

	if (n > 0 && s[0] == '[') {	/* [::1]:3306 */
		const char *rb = memchr(s, ']', n);
		if (rb == NULL)
			return -1;
		if (put(d->host, sizeof(d->host), s + 1, (size_t)(rb - s - 1), 0))
			return -1;
		colon = (size_t)(rb + 1 - s) < n && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(s, ':', n);
		if (put(d->host, sizeof(d->host), s,
		    colon ? (size_t)(colon - s) : n, 0) == -1)
			return -1;
	}
	if (colon != NULL) {
		size_t pl = n - (size_t)(colon + 1 - s);
		if (pl == 0 || pl >= sizeof(num))
			return -1;
		memcpy(num, colon + 1, pl);
		num[pl] = '\0';
		if (parse_ll(num, 1, 65535, &port) == -1)
			return -1;
		d->port = (unsigned int)port;
	}
	return d->host[0] == '\0' ? -1 : 0;
}

/* host[:port] nodes separated by commas, at most DSN_NODES_MAX. */
static int
hostports(struct dsn *d, const char *s, size_t n)
{
	const char	*end = s + n, *comma;

	do {
		if (d->nnodes == DSN_NODES_MAX)
			return -1;
		if ((comma = memchr(s, ',', (size_t)(end - s))) == NULL)
			comma = end;
		if (hostport(&d->node[d->nnodes++], s, (size_t)(comma - s)) == -1)
			return -1;
		s = comma + 1;
	} while (comma < end);
	return 0;
}

int
dsn_parse(const char *in, struct dsn *out, char *err, size_t errsz)
{
	struct dsn	 d;
	const char	*s = in, *end, *at, *slash, *colon, *addr;
	int		 url = 0;
	size_t		 n;

	memset(&d, 0, sizeof(d));
	if (strncmp(s, "mysql://", 8) == 0) {
		s += 8;
		url = 1;
	}
	end = s + strcspn(s, "?");
	/* the database name follows the last '/', the address the last '@' */
	for (slash = end; slash > s && slash[-1] != '/'; slash--)
		;
	if (slash == s) {
		snprintf(err, errsz, "SQL_DSN: no /database");
		return -1;
	}
	if (put(d.db, sizeof(d.db), slash, (size_t)(end - slash), url) == -1 ||
	    d.db[0] == '\0') {
		snprintf(err, errsz, "SQL_DSN: bad database name");
		return -1;
	}
	slash--;			/* now at the '/' */
	for (at = slash; at > s && at[-1] != '@'; at--)
		;
	if (at > s) {
		const char *cred_end = at - 1;
		colon = memchr(s, ':', (size_t)(cred_end - s));
		n = colon ? (size_t)(colon - s) : (size_t)(cred_end - s);
		if (put(d.user, sizeof(d.user), s, n, url) == -1 ||
		    (colon && put(d.pass, sizeof(d.pass), colon + 1,
		    (size_t)(cred_end - colon - 1), url) == -1)) {
			snprintf(err, errsz, "SQL_DSN: bad user or password");
			return -1;
		}
		addr = at;
	} else
		addr = s;
	n = (size_t)(slash - addr);
	if (!url && n >= 5 && strncmp(addr, "tcp(", 4) == 0 &&
	    addr[n - 1] == ')') {
		if (hostports(&d, addr + 4, n - 5) == -1)
			goto badaddr;
	} else if (!url && n >= 6 && strncmp(addr, "unix(", 5) == 0 &&
	    addr[n - 1] == ')') {
		if (put(d.socket, sizeof(d.socket), addr + 5, n - 6, 0) == -1 ||
		    d.socket[0] != '/')
			goto badaddr;
		d.nnodes = 1;
	} else if (!url && n == 0) {
		strlcpy_(d.node[0].host, "127.0.0.1", sizeof(d.node[0].host));
		d.nnodes = 1;
	} else if (url) {
		if (hostports(&d, addr, n) == -1)
			goto badaddr;
	} else
		goto badaddr;
	*out = d;
	wipe(&d, sizeof(d));
	return 0;
badaddr:
	wipe(&d, sizeof(d));
	snprintf(err, errsz, "SQL_DSN: bad address (want mysql://user:pass@"
	    "host:port/db, user:pass@tcp(host:port)/db or "
	    "user:pass@unix(/path)/db; several hosts separated by commas, "
	    "at most %d)", DSN_NODES_MAX);
	return -1;
}

void
dsn_node_name(const struct dsn *d, size_t k, char *buf, size_t bufsz)
{
	const struct dsn_node	*n = &d->node[k];
	unsigned int		 port = n->port ? n->port : 3306;

	if (d->socket[0] != '\0')
		snprintf(buf, bufsz, "%s", d->socket);
	else if (strchr(n->host, ':') != NULL)
		snprintf(buf, bufsz, "[%s]:%u", n->host, port);
	else
		snprintf(buf, bufsz, "%s:%u", n->host, port);
}
