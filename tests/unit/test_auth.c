/* auth.h: a request's token and what it may do. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "auth.h"

static void
test_token_parse(void)
{
	char		 k[TOKEN_KEY_MAX];
	long long	 ch;

	T_OK(token_parse("Bearer sk-abc", k, &ch) == 0 && strcmp(k, "abc") == 0 && ch == 0);
	T_OK(token_parse("bearer abc", k, &ch) == 0 && strcmp(k, "abc") == 0);
	T_OK(token_parse("abc", k, &ch) == 0 && strcmp(k, "abc") == 0);
	T_OK(token_parse("Bearer sk-abc-12", k, &ch) == 0 && strcmp(k, "abc") == 0 && ch == 12);
	T_INT(token_parse("Bearer sk-abc-x", k, &ch), -1);
	T_INT(token_parse("Bearer sk-abc-", k, &ch), -1);
	T_INT(token_parse("Bearer sk-abc-0", k, &ch), -1);
	T_INT(token_parse("Bearer ", k, &ch), -1);
	T_INT(token_parse("Bearer sk-", k, &ch), -1);
	T_INT(token_parse(NULL, k, &ch), -1);
	T_OK(token_parse("  Bearer   sk-abc  ", k, &ch) == 0 && strcmp(k, "abc") == 0);
	{
		char long_key[300];
		memset(long_key, 'a', sizeof(long_key) - 1);
		long_key[sizeof(long_key) - 1] = '\0';
		T_INT(token_parse(long_key, k, &ch), -1);
	}
}

static void
test_token_check(void)
{
	struct token_row	 t;

	memset(&t, 0, sizeof(t));
	t.status = 1;
	t.expired_time = -1;
	t.remain_quota = 10;
	t.user_found = 1;
	t.user_status = 1;
	t.user_role = 1;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_OK);
	t.remain_quota = 0;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_EXHAUSTED);
	t.unlimited = 1;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_OK);
	t.status = 4;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_EXHAUSTED);
	t.status = 3;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_EXPIRED);
	t.status = 1;
	t.expired_time = 99;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_EXPIRED);
	t.expired_time = 100;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_OK);
	t.status = 2;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_DISABLED);
	t.status = 1;
	strcpy(t.allow_ips, "10.0.0.1\n192.168.0.0/16");
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_IP);
	T_INT(token_check(&t, "192.168.7.9", "kling", 0, 100), AUTH_OK);
	T_INT(token_check(&t, "10.0.0.1", "kling", 0, 100), AUTH_OK);
	t.allow_ips[0] = '\0';
	t.user_status = 2;
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_USER_BANNED);
	t.user_status = 1;
	t.model_limits_enabled = 1;
	strcpy(t.model_limits, "runway,pika");
	T_INT(token_check(&t, "1.2.3.4", "kling", 0, 100), AUTH_MODEL);
	T_INT(token_check(&t, "1.2.3.4", "pika", 0, 100), AUTH_OK);
	T_INT(token_check(&t, "1.2.3.4", "pika", 1, 100), AUTH_PIN_FORBIDDEN);
	t.user_role = 10;
	T_INT(token_check(&t, "1.2.3.4", "pika", 1, 100), AUTH_OK);
	T_OK(ip_allowed("::1", "::1") && !ip_allowed("::1", "::2"));
	T_OK(ip_allowed("2001:db8::/32", "2001:db8::5"));
	T_OK(!ip_allowed("10.0.0.0/8", "11.0.0.1") && ip_allowed("10.0.0.0/8", "10.9.8.7"));
	T_OK(!ip_allowed("garbage", "1.2.3.4"));
}

UNIT_MAIN("auth", test_token_parse, test_token_check)
