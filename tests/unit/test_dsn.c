/* dsn.h: database addresses in both spellings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "dsn.h"

static void
test_dsn(void)
{
	struct dsn	 d;
	char		 err[256];

	T_OK(dsn_parse("mysql://u:p@db.example:3307/app", &d, err, sizeof(err)) == 0 &&
	    strcmp(d.user, "u") == 0 && strcmp(d.pass, "p") == 0 &&
	    strcmp(d.host, "db.example") == 0 && d.port == 3307 && strcmp(d.db, "app") == 0);
	T_OK(dsn_parse("mysql://u:p%40ss@h/app", &d, err, sizeof(err)) == 0 &&
	    strcmp(d.pass, "p@ss") == 0 && d.port == 0);
	T_OK(dsn_parse("root:se@cret@tcp(127.0.0.1:3306)/new-api?parseTime=true",
	    &d, err, sizeof(err)) == 0 && strcmp(d.pass, "se@cret") == 0 &&
	    strcmp(d.host, "127.0.0.1") == 0 && d.port == 3306 &&
	    strcmp(d.db, "new-api") == 0);
	T_OK(dsn_parse("u:p@unix(/run/mysqld/mysqld.sock)/bltcy", &d, err, sizeof(err)) == 0 &&
	    strcmp(d.socket, "/run/mysqld/mysqld.sock") == 0 && d.host[0] == '\0');
	T_OK(dsn_parse("u@tcp([::1]:3306)/x", &d, err, sizeof(err)) == 0 &&
	    strcmp(d.host, "::1") == 0 && d.pass[0] == '\0');
	T_OK(dsn_parse("u:p@/x", &d, err, sizeof(err)) == 0 && strcmp(d.host, "127.0.0.1") == 0);
	T_INT(dsn_parse("u:p@tcp(h:99999)/x", &d, err, sizeof(err)), -1);
	T_INT(dsn_parse("u:p@tcp(h:3306)", &d, err, sizeof(err)), -1);
	T_INT(dsn_parse("u:p@unix(relative)/x", &d, err, sizeof(err)), -1);
	T_INT(dsn_parse("mysql://u:p%zz@h/x", &d, err, sizeof(err)), -1);
	T_OK(dsn_parse("u:secretpw@bogus(h)/x", &d, err, sizeof(err)) == -1 &&
	    strstr(err, "secretpw") == NULL);
}

UNIT_MAIN("dsn", test_dsn)
