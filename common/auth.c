#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "util.h"

int
token_parse(const char *h, char key[TOKEN_KEY_MAX], long long *channel)
{
	const char	*dash;
	size_t		 n;
	long long	 id;

	*channel = 0;
	if (h == NULL)
		return -1;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncasecmp(h, "Bearer ", 7) == 0)
		h += 7;
	while (*h == ' ' || *h == '\t')
		h++;
	if (strncmp(h, "sk-", 3) == 0)
		h += 3;
	n = strlen(h);
	while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
		n--;
	if ((dash = memchr(h, '-', n)) != NULL) {
		char	 num[24];
		size_t	 nl = n - (size_t)(dash + 1 - h);

		if (nl == 0 || nl >= sizeof(num))
			return -1;
		memcpy(num, dash + 1, nl);
		num[nl] = '\0';
		if (parse_ll(num, 1, INT64_MAX, &id) == -1)
			return -1;
		*channel = id;
		n = (size_t)(dash - h);
	}
	if (n == 0 || n >= TOKEN_KEY_MAX)
		return -1;
	memcpy(key, h, n);
	key[n] = '\0';
	return 0;
}

static int
cidr_match(const char *entry, size_t n, const char *ip)
{
	unsigned char	 a[16], b[16];
	char		 net[64];
	const char	*slash;
	long long	 bits;
	int		 af, alen, i;

	if (n == 0 || n >= sizeof(net))
		return 0;
	memcpy(net, entry, n);
	net[n] = '\0';
	slash = strchr(net, '/');
	if (slash != NULL)
		net[slash - net] = '\0';
	af = strchr(net, ':') ? AF_INET6 : AF_INET;
	alen = af == AF_INET6 ? 16 : 4;
	if (inet_pton(af, net, a) != 1 || inet_pton(af, ip, b) != 1)
		return 0;
	bits = alen * 8;
	if (slash != NULL && parse_ll(slash + 1, 0, alen * 8, &bits) == -1)
		return 0;
	for (i = 0; i < alen && bits > 0; i++, bits -= 8) {
		unsigned char m = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));
		if ((a[i] & m) != (b[i] & m))
			return 0;
	}
	return 1;
}

int
ip_allowed(const char *list, const char *ip)
{
	const char	*p = list;

	while (*p != '\0') {
		size_t	 n;

		while (*p == '\n' || *p == '\r' || *p == ',' || *p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, "\n\r, \t");
		if (n > 0 && cidr_match(p, n, ip))
			return 1;
		p += n;
	}
	return 0;
}

static int
blank(const char *s)
{
	return s[strspn(s, " \t\r\n,")] == '\0';
}

enum auth_result
token_check(const struct token_row *t, const char *ip, const char *service,
    int pinned, int64_t now)
{
	if (t->status == 4 || (!t->unlimited && t->remain_quota <= 0))
		return AUTH_EXHAUSTED;
	if (t->status == 3 || (t->expired_time != -1 && t->expired_time < now))
		return AUTH_EXPIRED;
	if (t->status != 1)
		return AUTH_DISABLED;
	if (!blank(t->allow_ips) && !ip_allowed(t->allow_ips, ip))
		return AUTH_IP;
	if (!t->user_found || t->user_deleted || t->user_status != 1)
		return AUTH_USER_BANNED;
	if (t->model_limits_enabled &&
	    !list_has(t->model_limits, ',', service, strlen(service)))
		return AUTH_MODEL;
	if (pinned && t->user_role < 10)
		return AUTH_PIN_FORBIDDEN;
	return AUTH_OK;
}

const char *
token_group(const struct token_row *t)
{
	if (t->group[0] != '\0')
		return t->group;
	return t->user_group[0] != '\0' ? t->user_group : "default";
}
