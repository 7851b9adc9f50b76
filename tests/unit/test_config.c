/* config.h: the environment file and its checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "unit.h"
#include "config.h"

static void
test_config(void)
{
	char	 err[512], path[] = "/tmp/bltcy-unit-XXXXXX";
	FILE	*f;
	int	 fd = mkstemp(path);

	T_OK(fd != -1);
	f = fdopen(fd, "w");
	fputs("# comment\nSQL_DSN=\"u:p@tcp(h:1)/d\"\nexport SESSION_SECRET='s3'\n"
	    "RELAY_WORKERS = 3\nNOT_A_KEY=1\n", f);
	fclose(f);
	unsetenv("RELAY_TIMEOUT");
	T_INT(config_load(path, err, sizeof(err)), 0);
	T_STR(cfg_s(CFG_SQL_DSN), "u:p@tcp(h:1)/d");
	T_STR(cfg_s(CFG_SESSION_SECRET), "s3");
	T_INT(cfg_i(CFG_RELAY_WORKERS), 3);
	T_INT(cfg_i(CFG_RELAY_TIMEOUT), 300);
	T_INT(cfg_i(CFG_RELAY_MAX_BODY), 64LL * 1024 * 1024);
	T_STR(cfg_s(CFG_METERING), "strict");
	setenv("RELAY_TIMEOUT", "12", 1);
	T_OK(config_load(path, err, sizeof(err)) == 0 && cfg_i(CFG_RELAY_TIMEOUT) == 12);
	setenv("RELAY_TIMEOUT", "0", 1);
	T_OK(config_load(path, err, sizeof(err)) == -1 && strstr(err, "RELAY_TIMEOUT") != NULL);
	setenv("RELAY_TIMEOUT", "12x", 1);
	T_INT(config_load(path, err, sizeof(err)), -1);
	unsetenv("RELAY_TIMEOUT");
	setenv("METERING", "loose", 1);
	T_OK(config_load(path, err, sizeof(err)) == -1 && strstr(err, "METERING") != NULL);
	unsetenv("METERING");
	f = fopen(path, "w");
	fputs("RELAY_WORKERS=2\n", f);
	fclose(f);
	unsetenv("SQL_DSN");
	T_OK(config_load(path, err, sizeof(err)) == -1 && strstr(err, "SQL_DSN") != NULL);
	f = fopen(path, "w");
	fputs("no equals sign\n", f);
	fclose(f);
	T_OK(config_load(path, err, sizeof(err)) == -1 && strstr(err, ":1:") != NULL);
	T_INT(config_load("/nonexistent/bltcy.env", err, sizeof(err)), -1);
	unlink(path);
	/* leave a usable config for the crypto tests */
	setenv("SQL_DSN", "u:p@tcp(h:1)/d", 1);
	setenv("SESSION_SECRET", "unit-secret", 1);
	T_INT(config_load("/dev/null", err, sizeof(err)), 0);
}

UNIT_MAIN("config", test_config)
