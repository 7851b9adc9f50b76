/* fcgi/channels.c: which channel a request goes to. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/channels.c"
#include "config.h"

static struct channel	 chs[8];
static struct ability	 abs_[16];
static struct chcache	 cc;

/* channel id (index + 1) serves group/service at priority, weight */
static void
ab(size_t k, const char *group, const char *service, long long priority,
    long long weight)
{
	struct ability	*a = &abs_[cc.nab++];

	strlcpy_(a->group, group, sizeof(a->group));
	strlcpy_(a->model, service, sizeof(a->model));
	a->ch = k;
	a->priority = priority;
	a->weight = weight;
}

/*
 * Channels 1-2 at priority 10, 3-4 at 5, 5 at 0; 6 has no usable key,
 * 7 is disabled (loaded for its tasks), both at 20; 8 serves another
 * group and service. Sorted as chcache_load sorts them.
 */
static void
setup(void)
{
	static char	 url[8][32];
	size_t		 i;

	memset(&cc, 0, sizeof(cc));
	for (i = 0; i < 8; i++) {
		chs[i].id = (long long)i + 1;
		snprintf(url[i], sizeof(url[i]), "http://ch%zu", i + 1);
		chs[i].base_url = url[i];
	}
	url[5][0] = '\0';
	chs[6].disabled = 1;
	cc.ch = chs;
	cc.nch = 8;
	cc.ab = abs_;
	ab(4, "default", "kling", 0, 0);
	ab(2, "default", "kling", 5, 90);
	ab(3, "default", "kling", 5, 0);
	ab(0, "default", "kling", 10, 0);
	ab(1, "default", "kling", 10, 0);
	ab(5, "default", "kling", 20, 1000);
	ab(6, "default", "kling", 20, 1000);
	ab(7, "vip", "suno", 30, 0);
	qsort(cc.ab, cc.nab, sizeof(*cc.ab), by_priority);
}

/* the id of the channel picked, 0 for none */
static long long
pick_in(const char *group, const char *service, const long long *skip,
    size_t nskip, uint64_t *rng)
{
	struct channel	*ch;

	ch = channel_pick(&cc, group, service, skip, nskip, rng);
	return ch == NULL ? 0 : ch->id;
}

static long long
pick(const long long *skip, size_t nskip, uint64_t *rng)
{
	return pick_in("default", "kling", skip, nskip, rng);
}

/* the highest priority with a usable channel, and nothing below it */
static void
test_priority(void)
{
	uint64_t	 rng = 88172645463325252ULL;
	int		 n[9] = { 0 }, i;

	setup();
	for (i = 0; i < 1000; i++)
		n[pick(NULL, 0, &rng)]++;
	T_INT(n[1] + n[2], 1000);
	/* equal weights at one level: both, about as often */
	T_OK(n[1] > 400 && n[2] > 400);
	T_INT(n[6], 0);		/* no key */
	T_INT(n[7], 0);		/* disabled */
	T_INT(pick_in("vip", "kling", NULL, 0, &rng), 0);
	T_INT(pick_in("default", "suno", NULL, 0, &rng), 0);
	T_INT(pick_in("vip", "suno", NULL, 0, &rng), 8);
}

/* weight + 10 each: 100 to 10 */
static void
test_weight(void)
{
	static const long long	 skip[] = { 1, 2 };
	uint64_t		 rng = 1;
	int			 n[9] = { 0 }, i;

	setup();
	for (i = 0; i < 11000; i++)
		n[pick(skip, 2, &rng)]++;
	T_INT(n[3] + n[4], 11000);
	T_OK(n[3] > 9500 && n[3] < 10500);
	T_OK(n[4] > 500);
}

/* the channels tried already are skipped, down to none */
static void
test_skip(void)
{
	long long	 skip[5] = { 1, 2, 3, 4, 5 };
	uint64_t	 rng = 7;

	setup();
	T_INT(pick(skip, 1, &rng), 2);
	T_OK(pick(skip, 2, &rng) >= 3);
	T_INT(pick(skip, 4, &rng), 5);
	T_INT(pick(skip, 5, &rng), 0);
	T_OK(pick(skip + 2, 3, &rng) <= 2);
}

/* an open breaker is skipped; a half-open one takes one probe at a time */
static void
test_breaker(void)
{
	static const long long	 skip[] = { 2 };
	char			 err[128];
	uint64_t		 rng = 3;
	int64_t			 cool;

	setup();
	T_INT(cfg_set(CFG_BREAKER_THRESHOLD, "2", err, sizeof(err)), 0);
	T_INT(cfg_set(CFG_BREAKER_COOLDOWN, "30", err, sizeof(err)), 0);
	T_INT(cfg_set(CFG_RELAY_TIMEOUT, "300", err, sizeof(err)), 0);
	T_INT(metrics_init("kling"), 0);
	breaker_result(1, 1, mono_ms());
	breaker_result(1, 1, mono_ms());
	T_OK(pick(skip, 1, &rng) >= 3);	/* 1 open, 2 skipped */
	breaker_result(2, 1, mono_ms());
	breaker_result(2, 1, mono_ms());
	T_OK(pick(NULL, 0, &rng) >= 3);	/* both open */
	/* channel 1's cooldown over (it opened a cooldown ago) */
	cool = mono_ms() - 30 * 1000 - 1;
	breaker_result(1, 1, cool);
	T_INT(pick(NULL, 0, &rng), 1);		/* the probe */
	T_OK(pick(NULL, 0, &rng) >= 3);	/* one at a time */
	breaker_result(1, 0, mono_ms());
	T_INT(pick(NULL, 0, &rng), 1);		/* closed again */
	T_INT(pick(NULL, 0, &rng), 1);
}

UNIT_MAIN("channels", test_priority, test_weight, test_skip, test_breaker)
