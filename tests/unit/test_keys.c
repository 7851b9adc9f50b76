/* fcgi/keys.c: which upstream answers disable a key; how keys are read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/keys.c"
#include "../../fcgi/channels.c"

/* new-api's option values, as its admin stores them */
static void
test_options(void)
{
	struct relay_options	 o;
	char			 why[64];

	options_init(&o);
	T_INT(o.ban.disable, 0);
	T_INT(o.ban.enable, 0);
	T_INT((long long)o.ban.ncodes, 1);
	T_OK(codes_match(o.ban.codes, o.ban.ncodes, 401));
	T_OK(!codes_match(o.ban.codes, o.ban.ncodes, 403));
	T_INT(options_set(&o, "AutomaticDisableChannelEnabled", "true", why,
	    sizeof(why)), 0);
	T_INT(o.ban.disable, 1);
	T_INT(options_set(&o, "AutomaticEnableChannelEnabled", "1", why,
	    sizeof(why)), -1);
	T_INT(o.ban.enable, 0);
	T_INT(options_set(&o, "AutomaticDisableStatusCodes",
	    " 401, 403\xef\xbc\x8c" "500 - 599", why, sizeof(why)), 0);
	T_INT((long long)o.ban.ncodes, 3);
	T_OK(codes_match(o.ban.codes, o.ban.ncodes, 403));
	T_OK(codes_match(o.ban.codes, o.ban.ncodes, 500));
	T_OK(codes_match(o.ban.codes, o.ban.ncodes, 599));
	T_OK(!codes_match(o.ban.codes, o.ban.ncodes, 402));
	/* not what it holds: the list before stands */
	T_INT(options_set(&o, "AutomaticDisableStatusCodes", "401,abc", why,
	    sizeof(why)), -1);
	T_INT(options_set(&o, "AutomaticDisableStatusCodes", "600", why,
	    sizeof(why)), -1);
	T_INT(options_set(&o, "AutomaticDisableStatusCodes", "500-400", why,
	    sizeof(why)), -1);
	T_INT(options_set(&o, "AutomaticDisableStatusCodes", "1-2-3", why,
	    sizeof(why)), -1);
	T_INT((long long)o.ban.ncodes, 3);
	/* empty: no status disables */
	T_INT(options_set(&o, "AutomaticDisableStatusCodes", " ", why,
	    sizeof(why)), 0);
	T_INT((long long)o.ban.ncodes, 0);
	T_INT(options_set(&o, "AutomaticDisableKeywords",
	    "  Credit GONE \r\n\n\tNo Quota\n", why, sizeof(why)), 0);
	T_STR(o.ban.keywords, "credit gone\nno quota");
	options_free(&o);
}

static void
test_ban_reason(void)
{
	struct relay_options	 o;
	char			 why[KEY_WHY_MAX], big[600], kw[64];
	const char		*unauth = "{\"error\":\"invalid\nkey\"}";
	size_t			 i;

	options_init(&o);
	/* the option off: nothing */
	T_INT(key_ban_reason(&o.ban, 401, unauth, strlen(unauth), why,
	    sizeof(why)), 0);
	o.ban.disable = 1;
	T_INT(key_ban_reason(&o.ban, 401, unauth, strlen(unauth), why,
	    sizeof(why)), 1);
	T_STR(why, "上游返回 401：{\"error\":\"invalid key\"}");
	T_INT(key_ban_reason(&o.ban, 403, unauth, strlen(unauth), why,
	    sizeof(why)), 0);
	T_INT(key_ban_reason(&o.ban, 401, NULL, 0, why, sizeof(why)), 1);
	T_STR(why, "上游返回 401");
	/* new-api's keywords, without case, in an error answer but a 429 */
	T_INT(key_ban_reason(&o.ban, 400, "x: PERMISSION Denied", 20, why,
	    sizeof(why)), 1);
	T_STR(why, "上游返回 400，含关键词「permission denied」");
	T_INT(key_ban_reason(&o.ban, 200, "x: PERMISSION Denied", 20, why,
	    sizeof(why)), 0);
	T_INT(key_ban_reason(&o.ban, 429, "permission denied", 17, why,
	    sizeof(why)), 0);
	o.ban.codes[0].lo = 400;
	o.ban.codes[0].hi = 499;
	T_INT(key_ban_reason(&o.ban, 429, "x", 1, why, sizeof(why)), 0);
	/* only the bytes given are read */
	T_INT(key_ban_reason(&o.ban, 503, "permission denied", 16, why,
	    sizeof(why)), 0);
	/* the option's keywords replace new-api's; an empty list has none */
	T_INT(options_set(&o, "AutomaticDisableKeywords", "余额不足\nquota",
	    why, sizeof(why)), 0);
	T_INT(key_ban_reason(&o.ban, 503, "permission denied", 17, why,
	    sizeof(why)), 0);
	T_STR(key_keyword(&o.ban, "账户余额不足", strlen("账户余额不足"), kw,
	    sizeof(kw)), "余额不足");
	T_STR(key_keyword(&o.ban, "No QUOTA", 8, kw, sizeof(kw)), "quota");
	T_INT(options_set(&o, "AutomaticDisableKeywords", "", why,
	    sizeof(why)), 0);
	T_OK(key_keyword(&o.ban, "quota permission denied", 23, kw,
	    sizeof(kw)) == NULL);
	/* a long body's start, cut at a whole character */
	for (i = 0; i + 3 <= sizeof(big) - 1; i += 3)
		memcpy(big + i, "额", 3);
	big[i] = '\0';
	T_INT(key_ban_reason(&o.ban, 401, big, strlen(big), why, 40), 1);
	T_OK(strlen(why) < 40);
	T_OK(strncmp(why, "上游返回 401：额", strlen("上游返回 401：额")) == 0);
	T_INT((long long)(strlen(why) - strlen("上游返回 401：")) % 3, 0);
	options_free(&o);
}

/* A key column read as the relay and new-api read it. */
static void
test_split_keys(void)
{
	struct channel	 ch;
	struct dbv	 info;
	const char	*json;

	memset(&ch, 0, sizeof(ch));
	ch.status = CH_ENABLED;
	T_INT(split_keys(&ch, "\n a \n\nb\r\nc\rd\n\n"), 0);
	T_INT((long long)ch.nkeys, 2);
	T_STR(ch.keys[0], "a");
	T_STR(ch.keys[1], "b");
	T_INT(ch.key_line[0], 0);
	T_INT(ch.key_line[1], 2);
	T_INT((long long)ch.nlines, 4);
	json = "{\"is_multi_key\":true,\"multi_key_status_list\":"
	    "{\"2\":3,\"0\":1,\"9\":3,\"x\":3}}";
	info = DBS(json);
	key_states(&ch, &info);
	T_INT((long long)ch.nusable, 1);
	T_OK(chan_key_usable(&ch, 0));
	T_OK(!chan_key_usable(&ch, 1));
	T_OK(!chan_key_usable(&ch, 2));
	T_INT((long long)chan_keys_disabled(&ch), 1);
	free(ch.keys[0]);
	free(ch.keys[1]);
	free(ch.keys);
	free(ch.key_line);
	free(ch.key_status);

	/* one key: the channel's status is the key's */
	memset(&ch, 0, sizeof(ch));
	ch.status = CH_AUTO_DISABLED;
	T_INT(split_keys(&ch, "k"), 0);
	info = DBS("{\"multi_key_status_list\":{\"0\":1}}");
	key_states(&ch, &info);
	T_INT(ch.key_status[0], CH_AUTO_DISABLED);
	T_INT((long long)ch.nusable, 0);
	free(ch.keys[0]);
	free(ch.keys);
	free(ch.key_line);
	free(ch.key_status);
}

UNIT_MAIN("keys", test_options, test_ban_reason, test_split_keys)
