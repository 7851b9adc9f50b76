#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "db.h"
#include "log.h"
#include "relay.h"

/*
 * The channels and abilities the relay routes on, loaded whole and kept
 * until the 'channels' change counter moves (see schema triggers). A few
 * hundred rows at most: a reload is cheap, a lookup per request is not.
 */

#define CHANNELS_MAX	4096
#define ABILITIES_MAX	65536

struct load {
	struct chcache	*c;
	int		 failed;
};

static char *
dupn(const struct dbv *v)
{
	return v->t == DBV_STR ? strndup(v->s, v->len) : strdup("");
}

/* Split a key column into its lines, unsealing an "enc:v1:" value first. */
static int
split_keys(struct channel *ch, const char *stored)
{
	char	*plain, *p, *line, *save = NULL;
	size_t	 n = 0;

	if ((plain = unseal(stored)) == NULL) {
		log_err("channel %lld: key does not decrypt (CRYPTO_SECRET or "
		    "SESSION_SECRET changed?)", ch->id);
		return -1;
	}
	for (p = plain; *p; p++)
		if (*p == '\n')
			n++;
	if ((ch->keys = calloc(n + 1, sizeof(char *))) == NULL)
		goto fail;
	for (line = strtok_r(plain, "\r\n", &save); line != NULL;
	    line = strtok_r(NULL, "\r\n", &save)) {
		size_t	 len;

		while (*line == ' ' || *line == '\t')
			line++;
		len = strlen(line);
		while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((ch->keys[ch->nkeys] = strdup(line)) == NULL)
			goto fail;
		ch->nkeys++;
	}
	wipe(plain, strlen(plain));
	free(plain);
	return 0;
fail:
	wipe(plain, strlen(plain));
	free(plain);
	return -1;
}

static int
channel_row(void *arg, const struct dbv *c, size_t n)
{
	struct load	*l = arg;
	struct channel	*ch;
	char		 err[128];
	size_t		 len;

	if (l->c->nch >= CHANNELS_MAX)
		return 1;
	ch = &l->c->ch[l->c->nch];
	memset(ch, 0, sizeof(*ch));
	ch->id = c[0].i;
	ch->name = dupn(&c[1]);
	ch->base_url = dupn(&c[2]);
	ch->auto_ban = c[5].t == DBV_INT ? (int)c[5].i : 0;
	if (ch->name == NULL || ch->base_url == NULL) {
		l->failed = 1;
		return 1;
	}
	len = strlen(ch->base_url);
	while (len > 0 && ch->base_url[len - 1] == '/')
		ch->base_url[--len] = '\0';
	if (setting_parse(c[4].t == DBV_STR ? c[4].s : NULL, &ch->set, err,
	    sizeof(err)) == -1)
		log_warn("channel %lld: setting ignored: %s", ch->id, err);
	if (split_keys(ch, c[3].t == DBV_STR ? c[3].s : "") == -1 ||
	    ch->nkeys == 0) {
		/* keep it out of rotation but count it loaded */
		ch->base_url[0] = '\0';
	}
	l->c->nch++;
	return 0;
}

static int
ability_row(void *arg, const struct dbv *c, size_t n)
{
	struct load	*l = arg;
	struct ability	*a;
	size_t		 i;

	if (l->c->nab >= ABILITIES_MAX)
		return 1;
	if (c[0].t != DBV_STR || c[1].t != DBV_STR ||
	    c[0].len >= sizeof(a->group) || c[1].len >= sizeof(a->model))
		return 0;
	for (i = 0; i < l->c->nch; i++)
		if (l->c->ch[i].id == c[2].i)
			break;
	if (i == l->c->nch)
		return 0;
	a = &l->c->ab[l->c->nab++];
	memcpy(a->group, c[0].s, c[0].len + 1);
	memcpy(a->model, c[1].s, c[1].len + 1);
	a->ch = i;
	a->priority = c[3].t == DBV_INT ? c[3].i : 0;
	a->weight = c[4].t == DBV_INT && c[4].i > 0 ? c[4].i : 0;
	return 0;
}

static int
by_priority(const void *a, const void *b)
{
	const struct ability	*x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->ch < y->ch ? -1 : x->ch > y->ch;
}

int
chcache_load(struct chcache *cache, struct db *db, long long version)
{
	struct chcache	 fresh;
	struct load	 l = { &fresh, 0 };

	memset(&fresh, 0, sizeof(fresh));
	fresh.version = version;
	fresh.ch = calloc(CHANNELS_MAX, sizeof(*fresh.ch));
	/* calloc'd pages are not resident until written: only rows cost */
	fresh.ab = calloc(ABILITIES_MAX, sizeof(*fresh.ab));
	if (fresh.ch == NULL || fresh.ab == NULL)
		goto fail;
	if (db_run(db, ST_CHANNELS, NULL, 0, channel_row, &l, NULL) != DB_OK ||
	    l.failed)
		goto fail;
	if (db_run(db, ST_ABILITIES, NULL, 0, ability_row, &l, NULL) != DB_OK)
		goto fail;
	qsort(fresh.ab, fresh.nab, sizeof(*fresh.ab), by_priority);
	chcache_free(cache);
	*cache = fresh;
	log_debug("DEBUG Bltcy channel cache loaded: %zu channels, %zu abilities "
	    "(version %lld)", fresh.nch, fresh.nab, version);
	return 0;
fail:
	chcache_free(&fresh);
	return -1;
}

void
chcache_free(struct chcache *c)
{
	size_t	 i, k;

	for (i = 0; i < c->nch; i++) {
		free(c->ch[i].name);
		free(c->ch[i].base_url);
		for (k = 0; k < c->ch[i].nkeys; k++) {
			wipe(c->ch[i].keys[k], strlen(c->ch[i].keys[k]));
			free(c->ch[i].keys[k]);
		}
		free(c->ch[i].keys);
	}
	free(c->ch);
	free(c->ab);
	memset(c, 0, sizeof(*c));
	c->version = -1;
}

struct channel *
chcache_by_id(struct chcache *c, long long id)
{
	size_t	 i;

	for (i = 0; i < c->nch; i++)
		if (c->ch[i].id == id)
			return c->ch[i].base_url[0] ? &c->ch[i] : NULL;
	return NULL;
}

static uint64_t
next_rand(uint64_t *s)
{
	/* xorshift64*: plenty for spreading load */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static int
skipped(long long id, const long long *skip, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (skip[i] == id)
			return 1;
	return 0;
}

#define PICK_MAX	256	/* candidates weighed at one priority */

struct channel *
channel_pick(struct chcache *c, const char *group, const char *service,
    const long long *skip, size_t nskip, uint64_t *rng)
{
	struct ability	*cand[PICK_MAX];
	int		 half[PICK_MAX];
	int64_t		 now = mono_ms();
	size_t		 i = 0, j, n;

	/* abilities are sorted by priority, highest first: one level at a time */
	while (i < c->nab) {
		long long	 level = c->ab[i].priority, total = 0, r;

		for (n = 0, j = i; j < c->nab && c->ab[j].priority == level; j++) {
			struct ability	*a = &c->ab[j];
			struct channel	*ch = &c->ch[a->ch];
			int		 st;

			if (n == PICK_MAX || strcmp(a->model, service) != 0 ||
			    strcmp(a->group, group) != 0 ||
			    ch->base_url[0] == '\0' || skipped(ch->id, skip, nskip) ||
			    (st = breaker_state(ch->id, now)) == BREAKER_OPEN)
				continue;
			half[n] = st == BREAKER_HALF_OPEN;
			cand[n++] = a;
			total += a->weight + 10;
		}
		i = j;
		while (n > 0) {
			r = (long long)(next_rand(rng) % (uint64_t)total);
			for (j = 0; j < n - 1 && r >= cand[j]->weight + 10; j++)
				r -= cand[j]->weight + 10;
			/* a cooled-down channel takes one probe request at a time */
			if (!half[j] || breaker_claim(c->ch[cand[j]->ch].id, now))
				return &c->ch[cand[j]->ch];
			total -= cand[j]->weight + 10;
			cand[j] = cand[n - 1];
			half[j] = half[n - 1];
			n--;
		}
	}
	return NULL;
}
