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
	    strcmp(d.node[0].host, "db.example") == 0 && d.node[0].port == 3307 &&
	    strcmp(d.db, "app") == 0 && d.nnodes == 1);
	T_OK(dsn_parse("mysql://u:p%40ss@h/app", &d, err, sizeof(err)) == 0 &&
	    strcmp(d.pass, "p@ss") == 0 && d.node[0].port == 0);
	T_OK(dsn_parse("root:se@cret@tcp(127.0.0.1:3306)/new-api?parseTime=true",
	    &d, err, sizeof(err)) == 0 && strcmp(d.pass, "se@cret") == 0 &&
	    strcmp(d.node[0].host, "127.0.0.1") == 0 && d.node[0].port == 3306 &&
	    strcmp(d.db, "new-api") == 0);
	T_OK(dsn_parse("u:p@unix(/run/mysqld/mysqld.sock)/bltcy", &d, err, sizeof(err)) == 0 &&
	    strcmp(d.socket, "/run/mysqld/mysqld.sock") == 0 &&
	    d.node[0].host[0] == '\0' && d.nnodes == 1);
	T_OK(dsn_parse("u@tcp([::1]:3306)/x", &d, err, sizeof(err)) == 0 &&
	    strcmp(d.node[0].host, "::1") == 0 && d.pass[0] == '\0');
	T_OK(dsn_parse("u:p@/x", &d, err, sizeof(err)) == 0 && strcmp(d.node[0].host, "127.0.0.1") == 0);
	T_INT(dsn_parse("u:p@tcp(h:99999)/x", &d, err, sizeof(err)), -1);
	T_INT(dsn_parse("u:p@tcp(h:3306)", &d, err, sizeof(err)), -1);
	T_INT(dsn_parse("u:p@unix(relative)/x", &d, err, sizeof(err)), -1);
	T_INT(dsn_parse("mysql://u:p%zz@h/x", &d, err, sizeof(err)), -1);
	T_OK(dsn_parse("u:secretpw@bogus(h)/x", &d, err, sizeof(err)) == -1 &&
	    strstr(err, "secretpw") == NULL);
}

/* Several servers of one cluster, in the order given; the password never shown. */
static void
test_nodes(void)
{
	struct dsn	 d;
	char		 err[256], name[300];

	T_OK(dsn_parse("mysql://u:p@h1:3306,h2:3307,h3/bltcy", &d, err, sizeof(err)) == 0 &&
	    d.nnodes == 3 && strcmp(d.node[0].host, "h1") == 0 && d.node[0].port == 3306 &&
	    strcmp(d.node[1].host, "h2") == 0 && d.node[1].port == 3307 &&
	    strcmp(d.node[2].host, "h3") == 0 && d.node[2].port == 0 &&
	    strcmp(d.db, "bltcy") == 0 && strcmp(d.pass, "p") == 0);
	T_OK(dsn_parse("u:p,w@tcp(10.0.0.1:3306,[::1]:3308)/new-api?parseTime=true",
	    &d, err, sizeof(err)) == 0 && d.nnodes == 2 &&
	    strcmp(d.pass, "p,w") == 0 && strcmp(d.node[0].host, "10.0.0.1") == 0 &&
	    strcmp(d.node[1].host, "::1") == 0 && d.node[1].port == 3308);
	dsn_node_name(&d, 1, name, sizeof(name));
	T_STR(name, "[::1]:3308");
	T_OK(dsn_parse("mysql://u:p@h1,h2/x", &d, err, sizeof(err)) == 0);
	dsn_node_name(&d, 1, name, sizeof(name));
	T_STR(name, "h2:3306");
	T_OK(dsn_parse("u:p@unix(/run/m.sock)/x", &d, err, sizeof(err)) == 0);
	dsn_node_name(&d, 0, name, sizeof(name));
	T_STR(name, "/run/m.sock");
	T_OK(dsn_parse("mysql://u:p@a,b,c,d,e,f,g,h/x", &d, err, sizeof(err)) == 0 &&
	    d.nnodes == 8 && strcmp(d.node[7].host, "h") == 0);
	/* a ninth, an empty one, a bad port: refused, the password not shown */
	T_OK(dsn_parse("mysql://u:hunter2@a,b,c,d,e,f,g,h,i/x", &d, err, sizeof(err)) == -1 &&
	    strstr(err, "hunter2") == NULL && strstr(err, "at most 8") != NULL);
	T_OK(dsn_parse("mysql://u:hunter2@a,,b/x", &d, err, sizeof(err)) == -1 &&
	    strstr(err, "hunter2") == NULL);
	T_OK(dsn_parse("u:hunter2@tcp(a:1,b:x)/x", &d, err, sizeof(err)) == -1 &&
	    strstr(err, "hunter2") == NULL);
	T_INT(dsn_parse("mysql://u:p@a,/x", &d, err, sizeof(err)), -1);
}

UNIT_MAIN("dsn", test_dsn, test_nodes)
