#ifndef BLTCY_ROUTE_H
#define BLTCY_ROUTE_H

#include <stddef.h>

/*
 * The services relayed, as data: path prefix -> service name. The built-in
 * table is the seed's; RELAY_SERVICES adds "prefix:service,..." pairs.
 */
#define SERVICE_NAME_MAX	32

int		 services_init(const char *extra, char *err, size_t errsz);

/* Service for a path "/<prefix>/...", or NULL. */
const char	*service_for_path(const char *path, size_t len);

/* Is name a configured service (the channel form's model check)? */
int		 service_known(const char *name);

/* All distinct service names, comma-separated, in a static buffer. */
const char	*service_list(void);

/*
 * A raw request path (no query) is safe to forward when it has no control
 * bytes (raw or %-encoded), no malformed %-escape and no "." or ".."
 * segment, also %-encoded or split by an encoded slash or a backslash.
 */
int		 path_is_safe(const char *path, size_t len);

/*
 * A raw query string (after '?') is safe to forward under the same rules
 * as a path's bytes: no control byte or DEL, raw or %-encoded, no raw
 * space, no malformed %-escape. Dots mean nothing in a query.
 */
int		 query_is_safe(const char *query, size_t len);

#endif
