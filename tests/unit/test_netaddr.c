/* netaddr.h: which addresses a channel may dial. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "unit.h"
#include "netaddr.h"

/* An address literal's class through addr_class_of, by family. */
static enum addr_class
lit_class(const char *s)
{
	struct sockaddr_in	 s4;
	struct sockaddr_in6	 s6;

	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, s, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		return addr_class_of((struct sockaddr *)&s4);
	}
	if (inet_pton(AF_INET6, s, &s6.sin6_addr) == 1) {
		s6.sin6_family = AF_INET6;
		return addr_class_of((struct sockaddr *)&s6);
	}
	return (enum addr_class)-1;
}

static void
test_netaddr(void)
{
	static const struct { const char *a; enum addr_class c; int line; } t[] = {
		{ "8.8.8.8", ADDR_PUBLIC, __LINE__ },
		{ "1.1.1.1", ADDR_PUBLIC, __LINE__ },
		{ "169.254.169.254", ADDR_FORBIDDEN, __LINE__ },
		{ "169.254.0.1", ADDR_FORBIDDEN, __LINE__ },
		{ "169.253.255.255", ADDR_PUBLIC, __LINE__ },
		{ "169.255.0.0", ADDR_PUBLIC, __LINE__ },
		{ "0.0.0.0", ADDR_FORBIDDEN, __LINE__ },
		{ "0.1.2.3", ADDR_FORBIDDEN, __LINE__ },
		{ "224.0.0.1", ADDR_FORBIDDEN, __LINE__ },
		{ "255.255.255.255", ADDR_FORBIDDEN, __LINE__ },
		{ "127.0.0.1", ADDR_LOOPBACK, __LINE__ },
		{ "127.255.255.254", ADDR_LOOPBACK, __LINE__ },
		{ "10.0.0.1", ADDR_PRIVATE, __LINE__ },
		{ "172.16.0.1", ADDR_PRIVATE, __LINE__ },
		{ "172.31.255.255", ADDR_PRIVATE, __LINE__ },
		{ "172.32.0.0", ADDR_PUBLIC, __LINE__ },
		{ "172.15.255.255", ADDR_PUBLIC, __LINE__ },
		{ "192.168.1.1", ADDR_PRIVATE, __LINE__ },
		{ "192.169.0.0", ADDR_PUBLIC, __LINE__ },
		{ "100.64.0.1", ADDR_PRIVATE, __LINE__ },
		{ "100.127.255.255", ADDR_PRIVATE, __LINE__ },
		{ "100.128.0.0", ADDR_PUBLIC, __LINE__ },
		{ "::", ADDR_FORBIDDEN, __LINE__ },
		{ "::1", ADDR_LOOPBACK, __LINE__ },
		{ "fe80::1", ADDR_FORBIDDEN, __LINE__ },
		{ "febf:ffff::1", ADDR_FORBIDDEN, __LINE__ },
		{ "fd00:ec2::254", ADDR_FORBIDDEN, __LINE__ },
		{ "fd00:ec2::253", ADDR_PRIVATE, __LINE__ },
		{ "fc00::1", ADDR_PRIVATE, __LINE__ },
		{ "fdff::1", ADDR_PRIVATE, __LINE__ },
		{ "fec0::1", ADDR_PRIVATE, __LINE__ },
		{ "ff02::1", ADDR_FORBIDDEN, __LINE__ },
		{ "2001:4860:4860::8888", ADDR_PUBLIC, __LINE__ },
		{ "::ffff:169.254.169.254", ADDR_FORBIDDEN, __LINE__ },
		{ "::ffff:127.0.0.1", ADDR_LOOPBACK, __LINE__ },
		{ "::ffff:10.1.2.3", ADDR_PRIVATE, __LINE__ },
		{ "::ffff:8.8.8.8", ADDR_PUBLIC, __LINE__ },
		{ "::ffff:0.0.0.0", ADDR_FORBIDDEN, __LINE__ },
		{ "::169.254.169.254", ADDR_FORBIDDEN, __LINE__ },
		{ "::127.0.0.1", ADDR_LOOPBACK, __LINE__ },
		{ "::ffff:0:169.254.169.254", ADDR_FORBIDDEN, __LINE__ },
		{ "64:ff9b::169.254.169.254", ADDR_FORBIDDEN, __LINE__ },
		{ "64:ff9b::a9fe:a9fe", ADDR_FORBIDDEN, __LINE__ },
		{ "64:ff9b::7f00:1", ADDR_LOOPBACK, __LINE__ },
		{ "64:ff9b::8.8.8.8", ADDR_PUBLIC, __LINE__ },
		{ "64:ff9b:1::a9fe:a9fe", ADDR_FORBIDDEN, __LINE__ },
		{ "2002:a9fe:a9fe::1", ADDR_FORBIDDEN, __LINE__ },
		{ "2002:808:808::1", ADDR_PUBLIC, __LINE__ },
	};
	struct sockaddr		 un = { .sa_family = AF_UNIX };
	struct curl_sockaddr	 ca;
	struct sockaddr_in	*s4 = (struct sockaddr_in *)(void *)&ca.addr;
	enum addr_class		 w;
	curl_socket_t		 fd;
	size_t			 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		T_INT_AT(t[i].line, lit_class(t[i].a), t[i].c);
	T_INT(addr_class_of(&un), ADDR_FORBIDDEN);
	T_INT(addr_class_of(NULL), ADDR_FORBIDDEN);
	T_STR(addr_class_name(ADDR_PRIVATE), "private");
	T_STR(addr_class_name(ADDR_FORBIDDEN), "forbidden");

	T_OK(host_class("8.8.8.8", &w) == 0 && w == ADDR_PUBLIC);
	T_OK(host_class("169.254.169.254", &w) == 0 && w == ADDR_FORBIDDEN);
	T_OK(host_class("[::1]", &w) == 0 && w == ADDR_LOOPBACK);
	T_OK(host_class("::ffff:169.254.169.254", &w) == 0 &&
	    w == ADDR_FORBIDDEN);
	/* inet_aton's shorthand forms reach the same address */
	T_OK(host_class("0x7f.1", &w) == 0 && w == ADDR_LOOPBACK);
	T_OK(host_class("2852039166", &w) == 0 && w == ADDR_FORBIDDEN);
	T_OK(host_class("localhost", &w) == 0 && w == ADDR_LOOPBACK);
	T_INT(host_class("", &w), -1);
	T_INT(host_class("no-such-host.invalid", &w), -1);
	T_INT(host_class("[]", &w), -1);

	memset(&ca, 0, sizeof(ca));
	ca.family = AF_INET;
	ca.socktype = SOCK_STREAM;
	ca.addrlen = sizeof(*s4);
	s4->sin_family = AF_INET;
	inet_pton(AF_INET, "169.254.169.254", &s4->sin_addr);
	errno = 0;
	T_OK(netaddr_opensocket(NULL, CURLSOCKTYPE_IPCXN, &ca) ==
	    CURL_SOCKET_BAD && errno == EACCES);
	inet_pton(AF_INET, "127.0.0.1", &s4->sin_addr);
	fd = netaddr_opensocket(NULL, CURLSOCKTYPE_IPCXN, &ca);
	T_OK(fd != CURL_SOCKET_BAD);
	if (fd != CURL_SOCKET_BAD)
		close(fd);
}

UNIT_MAIN("netaddr", test_netaddr)
