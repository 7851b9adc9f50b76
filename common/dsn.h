#ifndef BLTCY_DSN_H
#define BLTCY_DSN_H

#include <stddef.h>

/*
 * A database address in any of the forms operators of new-api know:
 *   mysql://user:pass@host:3306/db
 *   user:pass@tcp(host:3306)/db
 *   user:pass@unix(/run/mysqld/mysqld.sock)/db
 * A trailing ?query (Go driver options) is accepted and ignored.
 */
struct dsn {
	char		 user[128];
	char		 pass[256];
	char		 host[256];	/* empty with a socket */
	char		 socket[256];
	char		 db[128];
	unsigned int	 port;		/* 0: default */
};

/* 0 ok; -1 with a message in err that never contains the password. */
int	 dsn_parse(const char *, struct dsn *, char *err, size_t errsz);

#endif
