/* store.h: the checks of a channel's form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "route.h"
#include "store.h"

static void
test_channel_form(void)
{
	char	 out[256], msg[MSG_SZ], err[128];
	int	 notice;

	services_init("", err, sizeof(err));
	T_OK(check_base_url("https://api.bltcy.ai", out, sizeof(out), &notice, msg, sizeof(msg)) == 0 &&
	    strcmp(out, "https://api.bltcy.ai") == 0 && !notice);
	T_OK(check_base_url("http://your-old-gateway.com:8080", out, sizeof(out), &notice, msg, sizeof(msg)) == 0);
	T_OK(check_base_url("HTTPS://Api.bltcy.ai", out, sizeof(out), &notice, msg, sizeof(msg)) == 0 &&
	    strcmp(out, "https://Api.bltcy.ai") == 0);
	T_OK(check_base_url("https://api.bltcy.ai/", out, sizeof(out), &notice, msg, sizeof(msg)) == 0 &&
	    notice && strcmp(out, "https://api.bltcy.ai") == 0);
	T_OK(check_base_url("https://api.bltcy.ai/kling", out, sizeof(out), &notice, msg, sizeof(msg)) == -1 &&
	    strstr(msg, "❌") != NULL && strstr(msg, "路径") != NULL);
	T_OK(check_base_url("https://api.bltcy.ai/runway/v1", out, sizeof(out), &notice, msg, sizeof(msg)) == -1);
	T_OK(check_base_url("https://api.bltcy.ai//", out, sizeof(out), &notice, msg, sizeof(msg)) == -1);
	T_OK(check_base_url("https://api.bltcy.ai?x=1", out, sizeof(out), &notice, msg, sizeof(msg)) == -1 &&
	    strstr(msg, "查询") != NULL);
	T_OK(check_base_url("https://api.bltcy.ai#f", out, sizeof(out), &notice, msg, sizeof(msg)) == -1);
	T_OK(check_base_url("https://user:pw@api.bltcy.ai", out, sizeof(out), &notice, msg, sizeof(msg)) == -1 &&
	    strstr(msg, "用户信息") != NULL);
	T_OK(check_base_url("ftp://x", out, sizeof(out), &notice, msg, sizeof(msg)) == -1);
	T_OK(check_base_url("https://", out, sizeof(out), &notice, msg, sizeof(msg)) == -1);
	T_OK(check_base_url("https://h:80x", out, sizeof(out), &notice, msg, sizeof(msg)) == -1);
	T_OK(check_base_url("https://h:", out, sizeof(out), &notice, msg, sizeof(msg)) == -1);
	T_OK(check_base_url("http://[::1]:8080", out, sizeof(out), &notice, msg, sizeof(msg)) == 0);

	T_OK(check_models("Kling\n\nrunway\r\nkling", out, sizeof(out), msg, sizeof(msg)) == 0 &&
	    strcmp(out, "kling,runway") == 0);
	T_OK(check_models("runwayml", out, sizeof(out), msg, sizeof(msg)) == -1 && strstr(msg, "runway") != NULL);
	T_OK(check_models("kling-v1-6", out, sizeof(out), msg, sizeof(msg)) == -1 &&
	    strstr(msg, "基础名称 kling") != NULL);
	T_OK(check_models("suno_v3", out, sizeof(out), msg, sizeof(msg)) == -1 && strstr(msg, "suno") != NULL);
	T_OK(check_models("gpt-4", out, sizeof(out), msg, sizeof(msg)) == -1 && strstr(msg, "未知") != NULL);
	T_INT(check_models(" \n ", out, sizeof(out), msg, sizeof(msg)), -1);
	T_INT(check_setting("", msg, sizeof(msg)), 0);
	T_OK(check_setting("{\"PassthroughQuota\": 1000}", msg, sizeof(msg)) == 0);
	T_OK(check_setting("{\"PassthroughQuota\": \"1000\"}", msg, sizeof(msg)) == -1);
	T_INT(check_setting("PassthroughQuota=1000", msg, sizeof(msg)), -1);
	T_OK(check_groups("", out, sizeof(out), msg, sizeof(msg)) == 0 && strcmp(out, "default") == 0);
	T_OK(check_groups("vip, default", out, sizeof(out), msg, sizeof(msg)) == 0 && strcmp(out, "vip,default") == 0);
	T_INT(check_groups("a;b", out, sizeof(out), msg, sizeof(msg)), -1);
}

UNIT_MAIN("store", test_channel_form)
