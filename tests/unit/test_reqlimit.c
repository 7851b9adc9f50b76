/* fcgi/reqlimit.c: caps in flight and per window; options.c's rate options. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/reqlimit.c"

/* A window's count and refusal, at a fixed clock (seconds). */
static void
test_window(void)
{
	struct win	 w;
	int		 retry = 0, i;

	memset(&w, 0, sizeof(w));
	/* 3 a minute: three at t=1000, 1010, 1020, the fourth refused */
	T_INT(win_full(&w, 1, 1000, 3, &retry), 0);
	win_add(&w, 1, 1000);
	win_add(&w, 1, 1010);
	win_add(&w, 1, 1020);
	T_INT(win_count(&w, 1020), 3);
	T_INT(win_full(&w, 1, 1030, 3, &retry), 1);
	T_INT(retry, 30);		/* t=1000 leaves at 1060 */
	T_INT(win_full(&w, 1, 1059, 3, &retry), 1);
	T_INT(retry, 1);
	T_INT(win_full(&w, 1, 1060, 3, &retry), 0);	/* it left */
	T_INT(win_count(&w, 1060), 2);
	/* a gap longer than the window empties it */
	T_INT(win_full(&w, 1, 5000, 1, &retry), 0);
	T_INT(win_count(&w, 5000), 0);
	/* other hosts' slots count alike, and slide out alike */
	win_other(&w, 5000, 2);
	T_INT(win_count(&w, 5000), 2);
	T_INT(win_full(&w, 1, 5001, 2, &retry), 1);
	T_INT(retry, 59);
	T_INT(win_count(&w, 5060), 0);
	win_other(&w, 4000, 9);		/* past the window: not taken */
	T_INT(win_count(&w, 5001), 2);
	/* a window of 2-second slots: 2 minutes */
	memset(&w, 0, sizeof(w));
	for (i = 0; i < 5; i++)
		win_add(&w, 2, 10000 + i * 20);
	T_INT(win_full(&w, 2, 10100, 5, &retry), 1);
	T_INT(retry, 10000 + 120 - 10100);
	/* a change of width keeps what was counted */
	T_INT(win_full(&w, 1, 10100, 5, &retry), 1);
	T_INT(win_full(&w, 1, 10100, 6, &retry), 0);
}

static const struct limits	 none, rpm2 = { 0, 0, 2 }, flight1 = { 1, 0, 0 };

/* A request in and out: refused ones count nowhere; slots let out. */
static void
test_enter_leave(void)
{
	struct rate_options		 ro;
	struct relay_options		 o;
	struct limit_ask		 a;
	struct limit_refusal_info	 info;
	char				 why[128];

	T_INT(limits_init(8), 0);
	options_init(&o);
	ro = o.rate;
	memset(&a, 0, sizeof(a));
	a.token_id = 7;
	a.user_id = 70;
	a.token = &none;
	a.user = &none;
	a.rate = &ro;
	a.group = "default";
	/* nothing to count: no place taken */
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	T_INT(holds[0].entered, 0);
	T_OK(entry(SC_TOKEN, 7, 0) == NULL);

	a.token = &flight1;
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	T_INT(limits_enter(&a, 1, &info), LIM_TOKEN_IN_FLIGHT);
	T_INT(info.cap, 1);
	T_INT(info.retry_after, 1);
	limits_leave(0, 200);
	T_INT(limits_enter(&a, 1, &info), LIM_OK);
	limits_slot_gone(1);		/* its worker died */
	T_INT(limits_enter(&a, 2, &info), LIM_OK);
	limits_leave(2, 0);
	T_INT(entry(SC_TOKEN, 7, 0)->in_flight, 0);

	/* the user's rpm: refused requests are not counted */
	a.token = &none;
	a.user = &rpm2;
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	limits_leave(0, 200);
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	limits_leave(0, 500);
	T_INT(limits_enter(&a, 0, &info), LIM_USER_RPM);
	T_INT(limits_enter(&a, 0, &info), LIM_USER_RPM);
	T_INT(win_count(&entry(SC_USER, 70, 0)->w[W_RPM], now_s()), 2);

	/* new-api's options: successes only below 400, then the total */
	a.user = &none;
	a.user_id = 71;
	T_INT(options_set(&o, "ModelRequestRateLimitEnabled", "true", why,
	    sizeof(why)), 0);
	T_INT(options_set(&o, "ModelRequestRateLimitSuccessCount", "2", why,
	    sizeof(why)), 0);
	T_INT(options_set(&o, "ModelRequestRateLimitCount", "5", why,
	    sizeof(why)), 0);
	a.rate = &o.rate;
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	limits_leave(0, 404);
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	limits_leave(0, 200);
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	limits_leave(0, 201);
	T_INT(limits_enter(&a, 0, &info), LIM_RATE_SUCCESS);
	T_INT(info.cap, 2);
	T_INT(info.minutes, 1);
	T_OK(info.retry_after >= 1 && info.retry_after <= 60);
	/* the success cap met first, the total is not counted past it */
	T_INT(win_count(&entry(SC_USER, 71, 0)->w[W_TOTAL], now_s()), 3);
	T_INT(options_set(&o, "ModelRequestRateLimitSuccessCount", "100", why,
	    sizeof(why)), 0);
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	limits_leave(0, 500);
	T_INT(limits_enter(&a, 0, &info), LIM_OK);
	limits_leave(0, 500);
	T_INT(limits_enter(&a, 0, &info), LIM_RATE_TOTAL);
	T_INT(info.cap, 5);
	options_free(&o);
}

/* The options as new-api's admin writes them; a bad value keeps the last. */
static void
test_options(void)
{
	struct relay_options	 o;
	char			 why[128];
	int			 t, s;

	options_init(&o);
	T_INT(o.rate.enabled, 0);
	T_INT(o.rate.minutes, 1);
	T_INT(o.rate.total, 0);
	T_INT(o.rate.success, 1000);
	T_INT(options_set(&o, "ModelRequestRateLimitEnabled", "yes", why,
	    sizeof(why)), -1);
	T_INT(o.rate.enabled, 0);
	T_INT(options_set(&o, "ModelRequestRateLimitDurationMinutes", "0", why,
	    sizeof(why)), -1);
	T_INT(options_set(&o, "ModelRequestRateLimitDurationMinutes", "10081",
	    why, sizeof(why)), -1);
	T_INT(options_set(&o, "ModelRequestRateLimitDurationMinutes", "3", why,
	    sizeof(why)), 0);
	T_INT(o.rate.minutes, 3);
	T_INT(options_set(&o, "ModelRequestRateLimitCount", "-1", why,
	    sizeof(why)), -1);
	T_INT(options_set(&o, "ModelRequestRateLimitSuccessCount", "0", why,
	    sizeof(why)), -1);
	T_INT(o.rate.success, 1000);
	T_INT(options_set(&o, "ModelRequestRateLimitGroup",
	    "{\"vip\":[10,20],\"free\":[0,1],\"vip\":[3,4]}", why,
	    sizeof(why)), 0);
	T_INT((int)o.rate.ngroups, 2);
	rate_caps(&o.rate, "vip", &t, &s);
	T_OK(t == 3 && s == 4);
	rate_caps(&o.rate, "free", &t, &s);
	T_OK(t == 0 && s == 1);
	rate_caps(&o.rate, "other", &t, &s);
	T_OK(t == 0 && s == 1000);
	/* all or nothing */
	T_INT(options_set(&o, "ModelRequestRateLimitGroup",
	    "{\"a\":[1,0]}", why, sizeof(why)), -1);
	T_INT(options_set(&o, "ModelRequestRateLimitGroup",
	    "{\"a\":[1,2,3]}", why, sizeof(why)), -1);
	T_INT(options_set(&o, "ModelRequestRateLimitGroup",
	    "{\"a\":[1.5,2]}", why, sizeof(why)), -1);
	T_INT(options_set(&o, "ModelRequestRateLimitGroup", "[1]", why,
	    sizeof(why)), -1);
	T_INT((int)o.rate.ngroups, 2);
	T_INT(options_set(&o, "ModelRequestRateLimitGroup", "{}", why,
	    sizeof(why)), 0);
	T_INT((int)o.rate.ngroups, 0);
	options_free(&o);
}

UNIT_MAIN("reqlimit", test_window, test_enter_leave, test_options)
