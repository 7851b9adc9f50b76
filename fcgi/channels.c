#include <stdlib.h>
#include <string.h>

#include "channels.h"
#include "crypto.h"
#include "jsonread.h"
#include "db.h"
#include "log.h"
#include "metrics.h"
#include "sql.h"
#include "util.h"

/*
 * The channels and abilities the relay routes on, loaded whole and kept
 * until the 'channels' change counter moves (see schema triggers). A few
 * hundred rows at most: a reload is cheap, a lookup per request is not.
 * Disabled channels are loaded too, for their tasks alone: no ability
 * names them, so no new job is sent to one (chcache_task_channel).
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

/* A line of a key column (key_lines): a key of ch, unless it holds a CR. */
static int
key_add(void *arg, int idx, char *line)
{
	struct channel	*ch = arg;

	if (strchr(line, '\r') != NULL) {
		log_warn("channel %lld: key line %d holds a CR; skipped",
		    ch->id, idx + 1);
		return 0;
	}
	if ((ch->keys[ch->nkeys] = strdup(line)) == NULL)
		return -1;
	ch->key_line[ch->nkeys] = idx;
	ch->key_status[ch->nkeys] = CH_ENABLED;
	ch->nkeys++;
	return 0;
}

/*
 * Split a key column into its keys, unsealing an "enc:v1:" value first:
 * one a line, trimmed, blank lines skipped. Each key keeps the index of
 * its line as new-api counts lines (key_lines), which channel_info names
 * it by.
 */
static int
split_keys(struct channel *ch, const char *stored)
{
	char	*plain, *p;
	size_t	 n = 1;
	int	 lines;

	if ((plain = unseal(stored)) == NULL) {
		log_err("channel %lld: key does not decrypt (CRYPTO_SECRET or "
		    "SESSION_SECRET changed?)", ch->id);
		return -1;
	}
	for (p = plain; *p; p++)
		if (*p == '\n')
			n++;
	if ((ch->keys = calloc(n, sizeof(char *))) == NULL ||
	    (ch->key_line = calloc(n, sizeof(int))) == NULL ||
	    (ch->key_status = calloc(n, sizeof(int))) == NULL ||
	    (lines = key_lines(plain, key_add, ch)) == -1) {
		wipe(plain, strlen(plain));
		free(plain);
		return -1;
	}
	ch->nlines = (size_t)lines;
	wipe(plain, strlen(plain));
	free(plain);
	return 0;
}

/* One entry of multi_key_status_list: "line index": status. */
static int
key_state(void *arg, const char *key, size_t keylen, const struct json_value *v)
{
	struct channel	*ch = arg;
	char		 num[24];
	long long	 line, st;
	size_t		 i;

	if (v->kind != JSON_NUMBER || v->n >= sizeof(num) ||
	    parse_ll(key, 0, INT32_MAX, &line) == -1)
		return 0;
	memcpy(num, v->p, v->n);
	num[v->n] = '\0';
	if (parse_ll(num, 0, 99, &st) == -1)
		return 0;
	for (i = 0; i < ch->nkeys; i++)
		if (ch->key_line[i] == line)
			ch->key_status[i] = st == CH_ENABLED ? CH_ENABLED : (int)st;
	return 0;
}

static int
info_member(void *arg, const char *key, size_t keylen,
    const struct json_value *v)
{
	if (keylen == 21 && strcmp(key, "multi_key_status_list") == 0 &&
	    v->kind == JSON_OBJECT)
		json_each(v, key_state, arg);
	return 0;
}

/*
 * The keys' states: of a channel of several keys, new-api's
 * channel_info.multi_key_status_list; of a channel of one, the
 * channel's status.
 */
static void
key_states(struct channel *ch, const struct dbv *info)
{
	struct json_value	 top;
	size_t			 i;

	if (ch->nkeys == 1 && ch->status == CH_AUTO_DISABLED)
		ch->key_status[0] = CH_AUTO_DISABLED;
	else if (ch->nkeys > 1 && info->t == DBV_STR &&
	    json_parse(info->s, info->len, &top) == 0 &&
	    top.kind == JSON_OBJECT)
		json_each(&top, info_member, ch);
	for (i = 0; i < ch->nkeys; i++)
		if (ch->key_status[i] == CH_ENABLED)
			ch->nusable++;
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
	ch->status = c[6].t == DBV_INT ? (int)c[6].i : 0;
	ch->disabled = ch->status != CH_ENABLED;
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
	} else
		key_states(ch, &c[7]);
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
	if (i == l->c->nch || l->c->ch[i].disabled)
		return 0;
	a = &l->c->ab[l->c->nab++];
	memcpy(a->group, c[0].s, c[0].len + 1);
	memcpy(a->model, c[1].s, c[1].len + 1);
	a->ch = i;
	a->priority = c[3].t == DBV_INT ? c[3].i : 0;
	a->weight = c[4].t == DBV_INT && c[4].i > 0 ? c[4].i : 0;
	return 0;
}

#define KINDS_MAX	256
#define MODEL_FIELDS_MAX 256

static void
copy_col(char *dst, size_t sz, const struct dbv *v)
{
	dst[0] = '\0';
	if (v->t == DBV_STR && v->len < sz)
		memcpy(dst, v->s, v->len + 1);
}

/*
 * An option that is not what it holds is ignored whole, an entry of a map
 * that is no finite number of at least 0 alone; either is logged, once
 * for each load.
 */
static int
option_row(void *arg, const struct dbv *c, size_t n)
{
	struct load	*l = arg;
	const char	*v = c[1].t == DBV_STR ? c[1].s : "";
	char		 why[64];

	if (c[0].t != DBV_STR)
		return 0;
	if (options_set(&l->c->opts, c[0].s, v, why, sizeof(why)) == -1)
		log_warn("option %s \"%.32s\" is not what it holds (%s); its "
		    "default stands", c[0].s, v, why);
	switch (price_option(&l->c->prices, c[0].s, v, why, sizeof(why))) {
	case -1:
		log_warn("option %s \"%.32s\" is not what it holds (QuotaPerUnit "
		    "a finite number above 0, the others a JSON object of "
		    "numbers); ignored", c[0].s, v);
		break;
	case 1:
		log_warn("option %s: entries that are no finite number of at "
		    "least 0 (the first \"%s\") are ignored", c[0].s, why);
		break;
	}
	return 0;
}

/* A model field or a rule's field: dotted names of [A-Za-z0-9_]. */
static int
dotted_name(const char *s)
{
	size_t	 seg = 0;

	for (; *s != '\0'; s++) {
		if (*s == '.') {
			if (seg == 0)
				return 0;
			seg = 0;
		} else if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_')
			seg++;
		else
			return 0;
	}
	return seg > 0;
}

static int
rule_row(void *arg, const struct dbv *c, size_t n)
{
	struct load		*l = arg;
	struct prices		*p = &l->c->prices;
	struct price_rule	*r;

	if (p->nrules >= PRICE_RULES_MAX) {
		log_warn("bltcy_price_rules has more than %d rules: rule %lld and "
		    "those after it (by id) never apply", PRICE_RULES_MAX,
		    c[0].t == DBV_INT ? c[0].i : 0);
		return 1;
	}
	r = &p->rules[p->nrules];
	memset(r, 0, sizeof(*r));
	r->id = c[0].i;
	copy_col(r->service, sizeof(r->service), &c[1]);
	copy_col(r->model, sizeof(r->model), &c[2]);
	copy_col(r->field, sizeof(r->field), &c[3]);
	copy_col(r->value, sizeof(r->value), &c[4]);
	r->mult_e4 = c[5].t == DBV_INT ? c[5].i : MULT_ONE;
	r->surcharge = c[6].t == DBV_INT ? c[6].i : 0;
	if (r->mult_e4 < 0 || r->mult_e4 > MULT_MAX || r->surcharge < 0 ||
	    r->surcharge > SURCHARGE_MAX) {
		log_warn("price rule %lld is out of range; ignored", r->id);
		return 0;
	}
	if (r->field[0] != '\0' && !dotted_name(r->field)) {
		log_warn("price rule %lld: field \"%s\" is no dotted name of "
		    "letters, digits and _; ignored", r->id, r->field);
		return 0;
	}
	p->nrules++;
	return 0;
}

static int
model_field_row(void *arg, const struct dbv *c, size_t n)
{
	struct prices		*p = &((struct load *)arg)->c->prices;
	struct price_model_field *m;

	if (p->nmodel_fields >= MODEL_FIELDS_MAX)
		return 1;
	m = &p->model_fields[p->nmodel_fields];
	copy_col(m->service, sizeof(m->service), &c[0]);
	copy_col(m->field, sizeof(m->field), &c[1]);
	if (m->service[0] == '\0')
		return 0;
	if (!dotted_name(m->field)) {
		log_warn("bltcy_model_fields: field \"%s\" of %s is no dotted "
		    "name of letters, digits and _ (at most %d bytes); the "
		    "service's model is read from \"model\"", c[1].t == DBV_STR ?
		    c[1].s : "", m->service, PRICE_FIELD_MAX);
		return 0;
	}
	p->nmodel_fields++;
	return 0;
}

static int
kind_row(void *arg, const struct dbv *c, size_t n)
{
	struct load		*l = arg;
	struct task_kind	*k;

	if (l->c->nkinds >= KINDS_MAX)
		return 1;
	k = &l->c->kinds[l->c->nkinds];
	copy_col(k->service, sizeof(k->service), &c[0]);
	copy_col(k->status_path, sizeof(k->status_path), &c[1]);
	copy_col(k->succeeded, sizeof(k->succeeded), &c[2]);
	copy_col(k->failed, sizeof(k->failed), &c[3]);
	copy_col(k->reason_path, sizeof(k->reason_path), &c[4]);
	copy_col(k->poll_path, sizeof(k->poll_path), &c[5]);
	copy_col(k->id_path, sizeof(k->id_path), &c[6]);
	copy_col(k->lost, sizeof(k->lost), &c[7]);
	if (k->service[0] != '\0' && k->status_path[0] != '\0')
		l->c->nkinds++;
	return 0;
}

const struct task_kind *
chcache_kind(const struct chcache *c, const char *service)
{
	size_t	 i;

	for (i = 0; i < c->nkinds; i++)
		if (strcmp(c->kinds[i].service, service) == 0)
			return &c->kinds[i];
	return NULL;
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
	fresh.prices.rules = calloc(PRICE_RULES_MAX, sizeof(*fresh.prices.rules));
	fresh.prices.model_fields = calloc(MODEL_FIELDS_MAX,
	    sizeof(*fresh.prices.model_fields));
	fresh.kinds = calloc(KINDS_MAX, sizeof(*fresh.kinds));
	fresh.prices.quota_per_unit = QUOTA_PER_UNIT;
	options_init(&fresh.opts);
	if (fresh.ch == NULL || fresh.ab == NULL || fresh.prices.rules == NULL ||
	    fresh.prices.model_fields == NULL || fresh.kinds == NULL)
		goto fail;
	if (db_run(db, ST_CHANNELS, NULL, 0, channel_row, &l, NULL) != DB_OK ||
	    l.failed)
		goto fail;
	if (db_run(db, ST_ABILITIES, NULL, 0, ability_row, &l, NULL) != DB_OK)
		goto fail;
	if (db_run(db, ST_OPTIONS, NULL, 0, option_row, &l, NULL) != DB_OK ||
	    db_run(db, ST_PRICE_RULES, NULL, 0, rule_row, &l, NULL) != DB_OK ||
	    db_run(db, ST_TASK_KINDS, NULL, 0, kind_row, &l, NULL) != DB_OK ||
	    db_run(db, ST_MODEL_FIELDS, NULL, 0, model_field_row, &l,
	    NULL) != DB_OK)
		goto fail;
	prices_loaded(&fresh.prices);
	for (size_t i = 0; i < fresh.nch; i++)
		metrics_keys_disabled(fresh.ch[i].id,
		    chan_keys_disabled(&fresh.ch[i]));
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
		free(c->ch[i].key_line);
		free(c->ch[i].key_status);
	}
	free(c->ch);
	free(c->ab);
	free(c->kinds);
	prices_free(&c->prices);
	options_free(&c->opts);
	memset(c, 0, sizeof(*c));
	c->version = -1;
}

struct channel *
chcache_task_channel(struct chcache *c, long long id)
{
	size_t	 i;

	for (i = 0; i < c->nch; i++)
		if (c->ch[i].id == id)
			return &c->ch[i];
	return NULL;
}

struct channel *
chcache_by_id(struct chcache *c, long long id)
{
	struct channel	*ch = chcache_task_channel(c, id);

	return ch != NULL && !ch->disabled && ch->base_url[0] &&
	    (ch->key_status == NULL || ch->nusable > 0) ? ch : NULL;
}

int
chan_key_usable(const struct channel *ch, size_t i)
{
	return i < ch->nkeys &&
	    (ch->key_status == NULL || ch->key_status[i] == CH_ENABLED);
}

size_t
chan_keys_disabled(const struct channel *ch)
{
	size_t	 i, n = 0;

	for (i = 0; ch->key_status != NULL && i < ch->nkeys; i++)
		if (ch->key_status[i] != CH_ENABLED)
			n++;
	return n;
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
			    ch->base_url[0] == '\0' || ch->disabled ||
			    (ch->key_status != NULL && ch->nusable == 0) ||
			    skipped(ch->id, skip, nskip) ||
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
