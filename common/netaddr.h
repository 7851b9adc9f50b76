#ifndef BLTCY_NETADDR_H
#define BLTCY_NETADDR_H

#include <sys/socket.h>

#include <curl/curl.h>

/*
 * Where an address leads, from harmless to never: the order is the
 * severity (host_class reports the worst of a name's addresses).
 */
enum addr_class { ADDR_PUBLIC, ADDR_PRIVATE, ADDR_LOOPBACK, ADDR_FORBIDDEN };

/*
 * link-local 169.254/16, fe80::/10, cloud metadata (169.254.169.254,
 * fd00:ec2::254), unspecified (0.0.0.0/8, ::), multicast and reserved
 * (224/4, 240/4, ff00::/8), and the v4-mapped and NAT64-ish forms of
 * those: FORBIDDEN. 127/8, ::1: LOOPBACK. 10/8, 172.16/12, 192.168/16,
 * 100.64/10, fc00::/7, fec0::/10: PRIVATE. An IPv6 address that embeds an
 * IPv4 one (::ffff:0:0/96, ::/96, ::ffff:0:0:0/96, 64:ff9b::/96,
 * 64:ff9b:1::/48, 2002::/16) has the class of that IPv4 address. Any
 * other family is FORBIDDEN.
 */
enum addr_class addr_class_of(const struct sockaddr *sa);

/*
 * A host literal or name: the worst class among its resolved addresses
 * (FORBIDDEN > LOOPBACK > PRIVATE > PUBLIC). An IPv6 literal may be in
 * brackets. 0, or -1 when it does not resolve.
 */
int	 host_class(const char *host, enum addr_class *worst);
const char *addr_class_name(enum addr_class);

/*
 * CURLOPT_OPENSOCKETFUNCTION: CURL_SOCKET_BAD for FORBIDDEN addresses
 * (errno EACCES), else socket(2). clientp unused. This is the check that
 * holds when a name resolves differently after it was vetted.
 */
curl_socket_t netaddr_opensocket(void *clientp, curlsocktype purpose,
	    struct curl_sockaddr *address);

#endif
