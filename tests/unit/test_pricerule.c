/* price.h: the checks of a price rule's form, and multipliers as text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "price.h"
#include "route.h"
#include "store.h"

static void
test_price_rule(void)
{
	static const struct {
		const char	*svc, *model, *field, *value, *mult, *sur, *note;
		long long	 mult_e4, surcharge;	/* -1: refused */
		const char	*msg;		/* part of the message */
		int		 line;
	} t[] = {
		{ "kling", "", "duration", "10", "2", "", "", 20000, 0, NULL, __LINE__ },
		{ "kling", "kling-v1-6", "mode", "pro", "1.5", "100", "pro mode",
		    15000, 100, NULL, __LINE__ },
		{ "runway", "", "", "", "", "500", "", MULT_ONE, 500, NULL, __LINE__ },
		{ "suno", "", "input.mv", "chirp-v4", "0.0001", "", "", 1, 0, NULL, __LINE__ },
		{ "kling", "", "duration", "10", "1000", "", "", MULT_MAX, 0, NULL, __LINE__ },
		{ "kling", "", "duration", "10", "0", "", "", 0, 0, NULL, __LINE__ },
		{ "kling", "", "duration", "10", "", "1000000000000", "备注",
		    MULT_ONE, SURCHARGE_MAX, NULL, __LINE__ },
		{ "nope", "", "", "", "2", "", "", -1, 0, "Service: one of the configured", __LINE__ },
		{ "", "", "", "", "2", "", "", -1, 0, "服务必须是已配置的服务之一", __LINE__ },
		{ "kling", "a b", "", "", "2", "", "", -1, 0, "Model: empty for any", __LINE__ },
		{ "kling", "", "a..b", "1", "2", "", "", -1, 0, "Field: empty for every request", __LINE__ },
		{ "kling", "", ".a", "1", "2", "", "", -1, 0, "Field:", __LINE__ },
		{ "kling", "", "a-b", "1", "2", "", "", -1, 0, "Field:", __LINE__ },
		{ "kling", "", "", "10", "2", "", "", -1, 0, "Value: empty when there is no field", __LINE__ },
		{ "kling", "", "duration", "", "2", "", "", -1, 0, "Value: 1 to 64 printable", __LINE__ },
		{ "kling", "", "duration", "高清", "2", "", "", -1, 0, "Value: 1 to 64", __LINE__ },
		{ "kling", "", "duration", "10", "1.23456", "", "", -1, 0,
		    "Multiplier: a number from 0 to 1000 with at most 4 decimals, e.g. 1.5", __LINE__ },
		{ "kling", "", "duration", "10", "1000.0001", "", "", -1, 0, "Multiplier:", __LINE__ },
		{ "kling", "", "duration", "10", "-1", "", "", -1, 0, "Multiplier:", __LINE__ },
		{ "kling", "", "duration", "10", "1e3", "", "", -1, 0, "Multiplier:", __LINE__ },
		{ "kling", "", "duration", "10", ".5", "", "", -1, 0, "Multiplier:", __LINE__ },
		{ "kling", "", "duration", "10", "2.", "", "", -1, 0, "Multiplier:", __LINE__ },
		{ "kling", "", "duration", "10", " 2", "", "", -1, 0, "Multiplier:", __LINE__ },
		{ "kling", "", "duration", "10", "abc", "", "", -1, 0, "倍率必须是 0 到 1000 之间的数字", __LINE__ },
		{ "kling", "", "duration", "10", "", "-5", "", -1, 0, "Surcharge: a whole number", __LINE__ },
		{ "kling", "", "duration", "10", "", "1.5", "", -1, 0, "Surcharge:", __LINE__ },
		{ "kling", "", "duration", "10", "", "+5", "", -1, 0, "Surcharge:", __LINE__ },
		{ "kling", "", "duration", "10", "", "1000000000001", "", -1, 0, "Surcharge:", __LINE__ },
		{ "kling", "", "duration", "10", "1", "0", "", -1, 0, "A rule must change the price", __LINE__ },
		{ "kling", "", "duration", "10", "1.0000", "", "", -1, 0, "A rule must change", __LINE__ },
		{ "kling", "", "duration", "10", "2", "", "a\nb", -1, 0, "one line of UTF-8", __LINE__ },
	};
	struct price_rule	 r;
	char			 msg[MSG_SZ], err[128], m[32];
	size_t			 i;
	int			 rc;

	services_init("", err, sizeof(err));
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		memset(&r, 0x55, sizeof(r));
		msg[0] = '\0';
		rc = price_rule_check(t[i].svc, t[i].model, t[i].field, t[i].value,
		    t[i].mult, t[i].sur, t[i].note, &r, msg, sizeof(msg));
		if (t[i].mult_e4 < 0)
			T_OK_AT(t[i].line, rc == -1 &&
			    strstr(msg, t[i].msg) != NULL &&
			    r.mult_e4 == 0x5555555555555555LL);
		else
			T_OK_AT(t[i].line, rc == 0 && r.mult_e4 == t[i].mult_e4 &&
			    r.surcharge == t[i].surcharge &&
			    strcmp(r.service, t[i].svc) == 0 &&
			    strcmp(r.model, t[i].model) == 0 &&
			    strcmp(r.field, t[i].field) == 0 &&
			    strcmp(r.value, t[i].value) == 0 &&
			    strcmp(r.note, t[i].note) == 0);
	}
	T_OK(price_rule_check(NULL, NULL, NULL, NULL, NULL, NULL, NULL, &r, msg,
	    sizeof(msg)) == -1);
	price_mult_text(15000, m, sizeof(m));
	T_STR(m, "1.5");
	price_mult_text(20000, m, sizeof(m));
	T_STR(m, "2");
	price_mult_text(1, m, sizeof(m));
	T_STR(m, "0.0001");
	price_mult_text(0, m, sizeof(m));
	T_STR(m, "0");
	price_mult_text(MULT_MAX, m, sizeof(m));
	T_STR(m, "1000");
}

UNIT_MAIN("pricerule", test_price_rule)
