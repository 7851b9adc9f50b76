#ifndef BLTCY_DSN_H
#define BLTCY_DSN_H

#include <stddef.h>

/*
 * A database address in any of the forms operators of new-api know:
 *   mysql://user:pass@host:3306/db
 *   user:pass@tcp(host:3306)/db
 *   user:pass@unix(/run/mysqld/mysqld.sock)/db
 * A trailing ?query (Go driver options) is accepted and ignored.
 * The TCP forms may name several servers of one cluster, tried in order
 * (db.h): mysql://u:p@h1:3306,h2:3306,h3/db or u:p@tcp(h1:3306,h2)/db.
 */
#define DSN_NODES_MAX	8

struct dsn_node {
	char		 host[256];	/* empty with a socket */
	unsigned int	 port;		/* 0: default */
};

struct dsn {
	char		 user[128];
	char		 pass[256];
	char		 socket[256];	/* then one node, its host empty */
	char		 db[128];
	struct dsn_node	 node[DSN_NODES_MAX];
	size_t		 nnodes;	/* 1 or more */
};

/* 0 ok; -1 with a message in err that never contains the password. */
int	 dsn_parse(const char *, struct dsn *, char *err, size_t errsz);

/* "host:port" ("[::1]:3306", the port 3306 when not given) or the socket. */
void	 dsn_node_name(const struct dsn *, size_t node, char *buf, size_t bufsz);

#endif
