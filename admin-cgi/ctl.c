/*
 * bltcy-ctl: what install.sh and operators do from a shell: schema
 * migrations, the first admin, channels, tokens, quota, price rules,
 * limits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "crypto.h"
#include "db.h"
#include "dsn.h"
#include "route.h"
#include "store.h"
#include "util.h"

static struct dsn	 dsn;
static struct db	*db;

static void
usage(void)
{
	fputs("usage: bltcy-ctl [-c config] command [options]\n"
	    "  migrate                         create or upgrade the schema\n"
	    "  node-check [PROXY_ADDR PROXY_PORT] SERVER_ADDR SERVER_PORT\n"
	    "                                  exit 0 when that database server may\n"
	    "                                  be used (a Galera node: synced);\n"
	    "                                  HAProxy's external-check\n"
	    "  add-admin NAME [PASSWORD]       root user; prints a generated password\n"
	    "  add-user NAME [--password P] [--role N] [--quota N] [--group G]\n"
	    "  add-channel --name N --base-url URL --key KEY [--models a,b]\n"
	    "              [--group G] [--priority N] [--weight N] [--setting JSON]\n"
	    "              [--disabled] [--no-auto-ban]\n"
	    "  add-token --user NAME [--name N] [--quota N | --unlimited]\n"
	    "            [--expires UNIX_TS] [--models a,b] [--ips LIST]\n"
	    "  token-quota sk-KEY              remaining and used quota of a token\n"
	    "  price list                      the price rules\n"
	    "  price add --service S [--model M] [--field F --value V]\n"
	    "            [--multiplier X] [--surcharge N] [--note T]\n"
	    "                                  a rule: x X and + N quota where F is V\n"
	    "  price delete ID                 remove a rule\n"
	    "  limit set (--token sk-KEY | --user NAME) [--in-flight N] [--tasks N]\n"
	    "            [--rpm N]             limits of a token or user (0: none);\n"
	    "                                  a limit not given keeps its value\n"
	    "  limit list                      every token's and user's limits\n"
	    "  limit delete (--token sk-KEY | --user NAME)\n"
	    "                                  remove them all\n",
	    stderr);
	exit(2);
}

static void
die(const char *what, const char *msg)
{
	fprintf(stderr, "bltcy-ctl: %s: %s\n", what, msg);
	exit(1);
}

/* --name value style options, looked up by name. */
static const char *
opt(int argc, char *argv[], const char *name, const char *def)
{
	int	 i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return i + 1 < argc ? argv[i + 1] : (usage(), def);
	return def;
}

static int
flag(int argc, char *argv[], const char *name)
{
	int	 i;

	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return 1;
	return 0;
}

static long long
num(int argc, char *argv[], const char *name, long long def, long long min,
    long long max)
{
	const char	*v = opt(argc, argv, name, NULL);
	char		 msg[128];
	long long	 n;

	if (v == NULL)
		return def;
	if (parse_ll(v, min, max, &n) == -1) {
		snprintf(msg, sizeof(msg), "expected an integer from %lld to %lld",
		    min, max);
		die(name, msg);
	}
	return n;
}

/*
 * What to do about a migration's error, or NULL. A server that writes a
 * binary log (every Galera node does) refuses triggers and routines from
 * a user without SUPER unless told to trust their creators.
 */
static const char *
migrate_hint(unsigned int err)
{
	if (err == 1419)	/* ER_BINLOG_CREATE_ROUTINE_NEED_SUPER */
		return "the server writes a binary log (as every Galera node "
		    "does): set log_bin_trust_function_creators = 1 on every "
		    "database server, in the [mysqld] section of its config "
		    "(e.g. /etc/mysql/mariadb.conf.d/60-bltcy.cnf) or at once "
		    "with SET GLOBAL log_bin_trust_function_creators = 1, "
		    "then run bltcy-ctl migrate again";
	return NULL;
}

static int
cmd_migrate(void)
{
	struct db	*m = db_new(&dsn, NULL, 0, DB_MULTI);
	const char	*hint;

	if (m == NULL)
		die("migrate", "out of memory");
	if (db_migrate(m, 1) != DB_OK) {
		if ((hint = migrate_hint(db_errno(m))) != NULL)
			fprintf(stderr, "bltcy-ctl: migrate: %s\n"
			    "bltcy-ctl: %s\n", db_error(m), hint);
		else
			fprintf(stderr, "bltcy-ctl: migrate: %s\n",
			    db_error(m));
		exit(1);
	}
	db_free(m);
	printf("schema up to date\n");
	return 0;
}

/*
 * As HAProxy's external-check calls it: proxy address and port (unused),
 * then the server's address and port (a path and NOT_USED for a
 * socket). The user and password are SQL_DSN's.
 */
static int
cmd_node_check(int argc, char *argv[])
{
	struct dsn	 d = dsn;
	const char	*addr, *port;
	char		 why[512];
	long long	 p;
	int		 ok;

	if (argc != 2 && argc != 4)
		usage();
	addr = argv[argc - 2];
	port = argv[argc - 1];
	memset(d.node, 0, sizeof(d.node));
	d.socket[0] = '\0';
	d.nnodes = 1;
	if (addr[0] == '/') {
		if (strlcpy_(d.socket, addr, sizeof(d.socket)) >= sizeof(d.socket))
			die("node-check", "socket path too long");
	} else {
		if (strlcpy_(d.node[0].host, addr, sizeof(d.node[0].host)) >=
		    sizeof(d.node[0].host) || addr[0] == '\0')
			die("node-check", "bad server address");
		if (parse_ll(port, 1, 65535, &p) == -1)
			die("node-check", "bad server port");
		d.node[0].port = (unsigned int)p;
	}
	ok = db_node_check(&d, 0, why, sizeof(why)) == DB_OK;
	wipe(&d, sizeof(d));
	printf("%s\n", why);
	return ok ? 0 : 1;
}

static int
cmd_add_user(int argc, char *argv[], int admin)
{
	char		 pw[33], msg[MSG_SZ];
	const char	*name, *given;
	long long	 id;

	if (argc < 1)
		usage();
	name = argv[0];
	given = admin ? (argc > 1 ? argv[1] : NULL) :
	    opt(argc, argv, "--password", NULL);
	if ((id = user_id_by_name(db, name)) < 0)
		die("database", db_error(db));
	if (id > 0) {
		printf("user %s exists (id %lld); nothing changed\n", name, id);
		return 0;
	}
	if (given == NULL && random_alnum(pw, 20) == -1)
		die("password", "no randomness");
	id = user_create(db, name, given ? given : pw,
	    admin ? 100 : num(argc, argv, "--role", 1, 1, 100),
	    admin ? 0 : num(argc, argv, "--quota", 0, 0, INT64_MAX),
	    admin ? "default" : opt(argc, argv, "--group", "default"),
	    msg, sizeof(msg));
	if (id < 0)
		die("add user", msg);
	if (given == NULL)
		printf("created user %s (id %lld) with password: %s\n", name, id, pw);
	else
		printf("created user %s (id %lld)\n", name, id);
	wipe(pw, sizeof(pw));
	return 0;
}

static int
cmd_add_channel(int argc, char *argv[])
{
	struct channel_form	 f;
	char			 msg[MSG_SZ];
	const char		*v;
	long long		 id;
	int			 notice;

	memset(&f, 0, sizeof(f));
	if ((v = opt(argc, argv, "--name", NULL)) == NULL || *v == '\0')
		die("add-channel", "--name is required");
	if (check_line("渠道名称 (--name)", v, LIM_CHANNEL_NAME, msg,
	    sizeof(msg)) == -1)
		die("--name", msg);
	strlcpy_(f.name, v, sizeof(f.name));
	if ((v = opt(argc, argv, "--base-url", NULL)) == NULL)
		die("add-channel", "--base-url is required");
	if (check_base_url(v, f.base_url, sizeof(f.base_url), &notice, msg,
	    sizeof(msg)) == -1)
		die("--base-url", msg);
	if (notice)
		fprintf(stderr, "note: removed the trailing '/' of the Base URL\n");
	if ((f.key = opt(argc, argv, "--key", NULL)) == NULL || *f.key == '\0')
		die("add-channel", "--key is required");
	if (check_models(opt(argc, argv, "--models", service_list()), f.models,
	    sizeof(f.models), msg, sizeof(msg)) == -1)
		die("--models", msg);
	if (check_groups(opt(argc, argv, "--group", "default"), f.group,
	    sizeof(f.group), msg, sizeof(msg)) == -1)
		die("--group", msg);
	v = opt(argc, argv, "--setting", "");
	if (check_len("设置 (--setting)", v, sizeof(f.setting) - 1, 0, msg,
	    sizeof(msg)) == -1)
		die("--setting", msg);
	strlcpy_(f.setting, v, sizeof(f.setting));
	if (check_setting(f.setting, msg, sizeof(msg)) == -1)
		die("--setting", msg);
	f.priority = num(argc, argv, "--priority", 0, INT32_MIN, INT32_MAX);
	f.weight = num(argc, argv, "--weight", 0, 0, INT32_MAX);
	f.status = flag(argc, argv, "--disabled") ? 2 : 1;
	f.auto_ban = flag(argc, argv, "--no-auto-ban") ? 0 : 1;
	if ((id = channel_save(db, &f, 0, msg, sizeof(msg))) < 0)
		die("add-channel", msg);
	printf("%lld\n", id);
	return 0;
}

static int
cmd_add_token(int argc, char *argv[])
{
	char		 key[49], msg[MSG_SZ], models[LIM_MODEL_LIMITS + 1] = "";
	char		 ips[LIM_ALLOW_IPS + 1], bad[80];
	const char	*user, *m, *name;
	long long	 uid, id, quota;

	if ((user = opt(argc, argv, "--user", NULL)) == NULL)
		die("add-token", "--user is required");
	if ((uid = user_id_by_name(db, user)) <= 0)
		die("add-token", uid < 0 ? db_error(db) : "no such user");
	quota = flag(argc, argv, "--unlimited") ? -1 :
	    num(argc, argv, "--quota", 500000, 0, INT64_MAX);
	if ((m = opt(argc, argv, "--models", NULL)) != NULL &&
	    check_models(m, models, sizeof(models), msg, sizeof(msg)) == -1)
		die("--models", msg);
	name = opt(argc, argv, "--name", "default");
	if (check_line("令牌名称 (--name)", name, LIM_TOKEN_NAME, msg,
	    sizeof(msg)) == -1)
		die("--name", msg);
	switch (check_ips(opt(argc, argv, "--ips", ""), ips, bad, sizeof(bad))) {
	case -1:
		die("--ips", bad);
		break;
	case -2:
		snprintf(msg, sizeof(msg), "the list is longer than %d bytes",
		    LIM_ALLOW_IPS);
		die("--ips", msg);
		break;
	}
	id = token_create(db, uid, name, quota,
	    num(argc, argv, "--expires", -1, -1, INT64_MAX), models, ips, key,
	    msg, sizeof(msg));
	if (id < 0)
		die("add-token", msg);
	printf("sk-%s\n", key);
	wipe(key, sizeof(key));
	return 0;
}

static int
print_token(void *arg, const struct dbv *c, size_t n)
{
	printf("id=%lld name=%s status=%lld remain_quota=%lld used_quota=%lld "
	    "unlimited=%s expired_time=%lld\n", c[0].i,
	    c[1].t == DBV_STR ? c[1].s : "", c[2].i, c[3].i, c[4].i,
	    c[5].i ? "yes" : "no", c[6].i);
	*(int *)arg = 1;
	return 1;
}

static int
cmd_token_quota(int argc, char *argv[])
{
	const char	*k;
	struct dbv	 a;
	int		 found = 0;

	if (argc < 1)
		usage();
	k = argv[0];
	if (strncmp(k, "sk-", 3) == 0)
		k += 3;
	a = DBS(k);
	if (db_run(db, SS_TOKEN_BY_KEY, &a, 1, print_token, &found, NULL) != DB_OK)
		die("database", db_error(db));
	if (!found)
		die("token-quota", "no such token");
	return 0;
}

static int
print_rule(void *arg, const struct price_rule *r)
{
	char	 m[32];

	price_mult_text(r->mult_e4, m, sizeof(m));
	printf("id=%lld service=%s model=%s field=%s value=%s multiplier=%s "
	    "surcharge=%lld note=%s\n", r->id, r->service,
	    r->model[0] ? r->model : "*", r->field[0] ? r->field : "*",
	    r->value, m, r->surcharge, r->note);
	return 0;
}

static int
cmd_price(int argc, char *argv[])
{
	struct price_rule	 r;
	char			 msg[MSG_SZ];
	long long		 id;
	int			 rc;

	if (argc < 1)
		usage();
	if (strcmp(argv[0], "list") == 0) {
		if (price_rule_list(db, print_rule, NULL) == -1)
			die("database", db_error(db));
		return 0;
	}
	if (strcmp(argv[0], "add") == 0) {
		if (price_rule_check(opt(argc, argv, "--service", ""),
		    opt(argc, argv, "--model", ""), opt(argc, argv, "--field", ""),
		    opt(argc, argv, "--value", ""),
		    opt(argc, argv, "--multiplier", ""),
		    opt(argc, argv, "--surcharge", ""),
		    opt(argc, argv, "--note", ""), &r, msg, sizeof(msg)) == -1)
			die("price add", msg);
		if ((id = price_rule_insert(db, &r, msg, sizeof(msg))) < 0)
			die("price add", msg);
		printf("%lld\n", id);
		return 0;
	}
	if (strcmp(argv[0], "delete") == 0) {
		if (argc != 2 || parse_ll(argv[1], 1, INT64_MAX, &id) == -1)
			usage();
		if ((rc = price_rule_delete(db, id, msg, sizeof(msg))) != 0)
			die("price delete", msg);
		printf("deleted rule %lld\n", id);
		return 0;
	}
	usage();
	return 2;
}

/*
 * Who a limit command names: --token (by key, never printed back) or
 * --user (by name), exactly one. Sets *scope and *id, and who to the
 * words that name it in what is printed.
 */
static void
limit_target(int argc, char *argv[], int *scope, long long *id, char *who,
    size_t whosz)
{
	char		 name[LIM_BYTES(LIM_TOKEN_NAME)], user[LIM_BYTES(LIM_USERNAME)];
	const char	*k = opt(argc, argv, "--token", NULL);
	const char	*u = opt(argc, argv, "--user", NULL);

	if ((k == NULL) == (u == NULL))
		die("limit", "name a token (--token sk-KEY) or a user (--user NAME),"
		    " one of the two");
	if (k != NULL) {
		if ((*id = token_who(db, k, name, sizeof(name), user,
		    sizeof(user))) < 0)
			die("database", db_error(db));
		if (*id == 0)
			die("--token", "no such token (deleted, or a wrong key)");
		*scope = LIMIT_TOKEN;
		snprintf(who, whosz, "token id=%lld name=%s user=%s", *id, name,
		    user);
		return;
	}
	if ((*id = user_id_by_name(db, u)) < 0)
		die("database", db_error(db));
	if (*id == 0)
		die("--user", "no such user");
	*scope = LIMIT_USER;
	snprintf(who, whosz, "user id=%lld name=%s", *id, u);
}

static int
print_limit(void *arg, const struct dbv *c, size_t n)
{
	const char	*who = arg;

	if (who != NULL)
		printf("%s", who);
	else if (c[0].t == DBV_STR && c[0].s[0] == LIMIT_TOKEN)
		printf("token id=%lld name=%s user=%s", c[1].i,
		    c[5].t == DBV_STR ? c[5].s : "",
		    c[6].t == DBV_STR ? c[6].s : "");
	else
		printf("user id=%lld name=%s", c[1].i,
		    c[5].t == DBV_STR ? c[5].s : "");
	printf(" in_flight=%lld tasks=%lld rpm=%lld%s\n", c[2].i, c[3].i,
	    c[4].i, c[7].i ? " (deleted)" : "");
	if (who != NULL)
		*(char *)arg = '\0';	/* printed */
	return 0;
}

static int
cmd_limit(int argc, char *argv[])
{
	static const char *const names[3] = { "--in-flight", "--tasks", "--rpm" };
	char		 who[2048];
	long long	 id, v[3];
	int		 scope, i, given = 0, rc;

	if (argc < 1)
		usage();
	if (strcmp(argv[0], "list") == 0) {
		if (argc != 1)
			usage();
		if (limits_list(db, 0, 0, print_limit, NULL) == -1)
			die("database", db_error(db));
		return 0;
	}
	if (strcmp(argv[0], "set") == 0) {
		limit_target(argc, argv, &scope, &id, who, sizeof(who));
		for (i = 0; i < 3; i++) {
			v[i] = num(argc, argv, names[i], -1, 0, LIMIT_MAX);
			given += v[i] >= 0;
		}
		if (given == 0)
			die("limit set", "give at least one of --in-flight N,"
			    " --tasks N, --rpm N (0: no limit)");
		if (limits_set(db, scope, id, v[0], v[1], v[2]) == -1)
			die("database", db_error(db));
		if (limits_list(db, scope, id, print_limit, who) == -1)
			die("database", db_error(db));
		if (who[0] != '\0')
			printf("%s in_flight=0 tasks=0 rpm=0\n", who);
		return 0;
	}
	if (strcmp(argv[0], "delete") == 0) {
		limit_target(argc, argv, &scope, &id, who, sizeof(who));
		if ((rc = limits_delete(db, scope, id)) == -1)
			die("database", db_error(db));
		if (rc == 1)
			die("limit delete", "no limits are set there");
		printf("%s: limits removed\n", who);
		return 0;
	}
	usage();
	return 2;
}

int
main(int argc, char *argv[])
{
	const char	*conf = NULL, *cmd;
	char		 err[512];
	int		 rc;

	if (argc > 2 && strcmp(argv[1], "-c") == 0) {
		conf = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		usage();
	cmd = argv[1];
	argc -= 2;
	argv += 2;
	/*
	 * HAProxy's check needs the database's user and password alone: its
	 * file (bltcy-node-check's node-check.env) holds no other secret
	 */
	if (strcmp(cmd, "node-check") == 0)
		setenv("SESSION_SECRET", "not used by node-check", 0);
	if (config_load(conf, err, sizeof(err)) == -1 ||
	    services_init(cfg_s(CFG_RELAY_SERVICES), err, sizeof(err)) == -1 ||
	    dsn_parse(cfg_s(CFG_SQL_DSN), &dsn, err, sizeof(err)) == -1)
		die("config", err);
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate();
	if (strcmp(cmd, "node-check") == 0)
		return cmd_node_check(argc, argv);
	if ((db = db_new(&dsn, store_sql, STORE__MAX, 0)) == NULL)
		die("database", "out of memory");
	if (strcmp(cmd, "add-admin") == 0)
		rc = cmd_add_user(argc, argv, 1);
	else if (strcmp(cmd, "add-user") == 0)
		rc = cmd_add_user(argc, argv, 0);
	else if (strcmp(cmd, "add-channel") == 0)
		rc = cmd_add_channel(argc, argv);
	else if (strcmp(cmd, "add-token") == 0)
		rc = cmd_add_token(argc, argv);
	else if (strcmp(cmd, "token-quota") == 0)
		rc = cmd_token_quota(argc, argv);
	else if (strcmp(cmd, "price") == 0)
		rc = cmd_price(argc, argv);
	else if (strcmp(cmd, "limit") == 0)
		rc = cmd_limit(argc, argv);
	else
		usage();
	db_free(db);
	return rc;
}
