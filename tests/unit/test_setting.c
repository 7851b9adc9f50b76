/* setting.h: a channel's setting JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "setting.h"

static void
test_setting(void)
{
	struct chan_setting	 s;
	char			 err[128];

	T_OK(setting_parse(NULL, &s, err, sizeof(err)) == 0 && s.quota == 1000 && s.query_quota == 0);
	T_OK(setting_parse("", &s, err, sizeof(err)) == 0 && s.quota == 1000);
	T_OK(setting_parse("{}", &s, err, sizeof(err)) == 0 && s.quota == 1000);
	T_OK(setting_parse("{\"PassthroughQuota\": 250}", &s, err, sizeof(err)) == 0 && s.quota == 250);
	T_OK(setting_parse("{\"passthrough_quota\": 7, \"PassthroughQuota\": 9}", &s, err, sizeof(err)) == 0 && s.quota == 7);
	T_OK(setting_parse("{\"passthrough_quota\": 0}", &s, err, sizeof(err)) == 0 && s.quota == 1000);
	T_OK(setting_parse("{\"passthrough_quota\": -1}", &s, err, sizeof(err)) == 0 && s.quota == 0);
	T_OK(setting_parse("{\"passthrough_query_quota\": 5}", &s, err, sizeof(err)) == 0 && s.query_quota == 5);
	T_OK(setting_parse("{\"proxy\": \"http://p:3128\"}", &s, err, sizeof(err)) == 0 &&
	    strcmp(s.proxy, "http://p:3128") == 0);
	T_OK(setting_parse("{\"PassthroughQuota\": \"1000\"}", &s, err, sizeof(err)) == -1 && s.quota == 1000);
	T_OK(setting_parse("{\"PassthroughQuota\": 1.5}", &s, err, sizeof(err)) == -1);
	T_INT(setting_parse("[1]", &s, err, sizeof(err)), -1);
	T_INT(setting_parse("{\"a\":1} x", &s, err, sizeof(err)), -1);
	T_INT(setting_parse("{\"a\":", &s, err, sizeof(err)), -1);
	T_INT(setting_parse("{\"proxy\": 5}", &s, err, sizeof(err)), -1);
}

UNIT_MAIN("setting", test_setting)
