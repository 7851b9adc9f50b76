/*
 * Labels in Chinese (the seed's) or English, chosen by Accept-Language.
 */
#include <stdlib.h>
#include <string.h>

#include "i18n.h"
#include "util.h"

#define LABEL(id, zh, en) [id] = { zh, en },
static const char *const labels[L__MAX][LANG__MAX] = { LABELS };
#undef LABEL

const char *
lbl(enum lang l, enum label id)
{
	if ((unsigned)id >= L__MAX || (unsigned)l >= LANG__MAX)
		return "";
	return labels[id][l];
}

/* q of one "tag;q=0.8" item, in thousandths; 1000 without a q. */
static int
qvalue(const char *p, size_t n)
{
	const char	*q;
	int		 v = 0, digits = 0;

	for (q = p; q + 1 < p + n; q++)
		if ((q[0] == 'q' || q[0] == 'Q') && q[1] == '=')
			break;
	if (q + 1 >= p + n)
		return 1000;
	q += 2;
	if (q < p + n && *q == '1')
		return 1000;
	if (q < p + n && *q == '0')
		q++;
	if (q < p + n && *q == '.')
		for (q++; q < p + n && digits < 3 && *q >= '0' && *q <= '9'; q++)
			v = v * 10 + (*q - '0'), digits++;
	while (digits++ < 3)
		v *= 10;
	return v;
}

/*
 * The language the browser prefers among ours; Chinese (the seed's) when
 * it names neither or they tie. Only the primary subtag counts.
 */
enum lang
lang_pick(const char *al)
{
	static const char *const tags[LANG__MAX] = { "zh", "en" };
	int		 best[LANG__MAX] = { 0, 0 };
	const char	*p = al;
	int		 l;

	while (p != NULL && *p != '\0') {
		size_t	 n = strcspn(p, ","), t;

		while (n > 0 && (*p == ' ' || *p == '\t'))
			p++, n--;
		t = strcspn(p, "-;, \t");
		if (t > n)
			t = n;
		for (l = 0; l < LANG__MAX; l++)
			if (t == 2 && ascii_casecmp_n(p, tags[l], 2) == 0) {
				int q = qvalue(p, n);
				if (q > best[l])
					best[l] = q;
			}
		p += n;
		if (*p == ',')
			p++;
	}
	return best[LANG_EN] > best[LANG_ZH] ? LANG_EN : LANG_ZH;
}
