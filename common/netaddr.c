#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <string.h>

#include "netaddr.h"

/*
 * Address classes for the relay's outbound connections and the admin's
 * channel checks. The tables are by prefix; the first match wins, so the
 * narrow forbidden entries come before the wide private ones that contain
 * them (fd00:ec2::254 lies in fc00::/7).
 */

struct v4net {
	uint32_t	 net;
	int		 bits;
	enum addr_class	 cls;
};

static const struct v4net v4nets[] = {
	{ 0x00000000, 8, ADDR_FORBIDDEN },	/* "this network", 0.0.0.0 */
	{ 0xa9fe0000, 16, ADDR_FORBIDDEN },	/* link-local, metadata */
	{ 0xe0000000, 4, ADDR_FORBIDDEN },	/* multicast */
	{ 0xf0000000, 4, ADDR_FORBIDDEN },	/* reserved, broadcast */
	{ 0x7f000000, 8, ADDR_LOOPBACK },
	{ 0x0a000000, 8, ADDR_PRIVATE },
	{ 0xac100000, 12, ADDR_PRIVATE },
	{ 0xc0a80000, 16, ADDR_PRIVATE },
	{ 0x64400000, 10, ADDR_PRIVATE },	/* carrier-grade NAT */
};

struct v6net {
	uint8_t		 net[16];
	int		 bits;
	enum addr_class	 cls;
};

static const struct v6net v6nets[] = {
	{ { 0 }, 128, ADDR_FORBIDDEN },				/* :: */
	{ { [15] = 1 }, 128, ADDR_LOOPBACK },			/* ::1 */
	{ { 0xfd, 0x00, 0x0e, 0xc2, [15] = 0x54, [14] = 0x02 }, 128,
	    ADDR_FORBIDDEN },					/* fd00:ec2::254 */
	{ { 0xfe, 0x80 }, 10, ADDR_FORBIDDEN },			/* link-local */
	{ { 0xff }, 8, ADDR_FORBIDDEN },			/* multicast */
	{ { 0xfc }, 7, ADDR_PRIVATE },				/* unique local */
	{ { 0xfe, 0xc0 }, 10, ADDR_PRIVATE },			/* site-local */
};

/* IPv6 forms that carry an IPv4 address, and where it sits. */
struct v6embed {
	uint8_t		 net[16];
	int		 bits;
	int		 off;	/* byte offset of the IPv4 address */
};

static const struct v6embed v6embeds[] = {
	{ { [10] = 0xff, [11] = 0xff }, 96, 12 },		/* ::ffff:a.b.c.d */
	{ { 0 }, 96, 12 },					/* ::a.b.c.d */
	{ { [8] = 0xff, [9] = 0xff }, 96, 12 },			/* ::ffff:0:a.b.c.d */
	{ { 0x00, 0x64, 0xff, 0x9b }, 96, 12 },			/* 64:ff9b::/96 */
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, 12 },	/* 64:ff9b:1::/48 */
	{ { 0x20, 0x02 }, 16, 2 },				/* 6to4 */
};

static int
v6_in(const uint8_t *a, const uint8_t *net, int bits)
{
	int	 full = bits / 8, rest = bits % 8;

	if (memcmp(a, net, (size_t)full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ net[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static enum addr_class
v4_class(uint32_t a)
{
	size_t	 i;

	for (i = 0; i < sizeof(v4nets) / sizeof(v4nets[0]); i++) {
		uint32_t mask = 0xffffffffu << (32 - v4nets[i].bits);
		if ((a & mask) == v4nets[i].net)
			return v4nets[i].cls;
	}
	return ADDR_PUBLIC;
}

static enum addr_class
v6_class(const uint8_t *a)
{
	size_t	 i;

	/* :: and ::1 first: they also match the ::a.b.c.d form */
	for (i = 0; i < sizeof(v6nets) / sizeof(v6nets[0]); i++)
		if (v6_in(a, v6nets[i].net, v6nets[i].bits))
			return v6nets[i].cls;
	for (i = 0; i < sizeof(v6embeds) / sizeof(v6embeds[0]); i++) {
		const uint8_t *p = a + v6embeds[i].off;
		if (v6_in(a, v6embeds[i].net, v6embeds[i].bits))
			return v4_class((uint32_t)p[0] << 24 |
			    (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
	}
	return ADDR_PUBLIC;
}

enum addr_class
addr_class_of(const struct sockaddr *sa)
{
	const struct sockaddr_in	*s4;
	const struct sockaddr_in6	*s6;

	if (sa == NULL)
		return ADDR_FORBIDDEN;
	switch (sa->sa_family) {
	case AF_INET:
		s4 = (const struct sockaddr_in *)(const void *)sa;
		return v4_class(ntohl(s4->sin_addr.s_addr));
	case AF_INET6:
		s6 = (const struct sockaddr_in6 *)(const void *)sa;
		return v6_class(s6->sin6_addr.s6_addr);
	default:
		return ADDR_FORBIDDEN;	/* nothing the relay dials */
	}
}

int
host_class(const char *host, enum addr_class *worst)
{
	struct addrinfo	 hints, *ai = NULL, *p;
	char		 lit[256];
	size_t		 n;
	enum addr_class	 w = ADDR_PUBLIC, c;

	if (host == NULL || *host == '\0')
		return -1;
	n = strlen(host);
	if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
		if (n - 2 >= sizeof(lit))
			return -1;
		memcpy(lit, host + 1, n - 2);
		lit[n - 2] = '\0';
		host = lit;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL)
		return -1;
	for (p = ai; p != NULL; p = p->ai_next)
		if ((c = addr_class_of(p->ai_addr)) > w)
			w = c;
	freeaddrinfo(ai);
	*worst = w;
	return 0;
}

const char *
addr_class_name(enum addr_class c)
{
	static const char *const names[] = {
		[ADDR_PUBLIC] = "public",
		[ADDR_PRIVATE] = "private",
		[ADDR_LOOPBACK] = "loopback",
		[ADDR_FORBIDDEN] = "forbidden",
	};

	if ((unsigned)c >= sizeof(names) / sizeof(names[0]))
		return "forbidden";
	return names[c];
}

curl_socket_t
netaddr_opensocket(void *clientp, curlsocktype purpose,
    struct curl_sockaddr *address)
{
	int	 type = address->socktype;

	if (addr_class_of(&address->addr) == ADDR_FORBIDDEN) {
		errno = EACCES;
		return CURL_SOCKET_BAD;
	}
#ifdef SOCK_CLOEXEC
	type |= SOCK_CLOEXEC;	/* a worker's children need no upstream fd */
#endif
	return socket(address->family, type, address->protocol);
}
