#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "config.h"
#include "db.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "sql.h"
#include "upstream.h"
#include "util.h"

/*
 * A key's ban and its way back. The ban is decided on the upstream's
 * answer alone, after the transfer (keys_answered); what the relay
 * answers itself (a token out of quota, a bad request, a limit) is never
 * a transfer, so never counts. The probe runs in the task poller.
 */

/* new-api's AutomaticDisableKeywords when the option is not set */
static const char *const default_keywords[] = {
	"your credit balance is too low",
	"this organization has been disabled.",
	"you exceeded your current quota",
	"permission denied",
	"the security token included in the request is invalid",
	"operation not allowed",
	"your account is not authorized",
};

/* needle (lower case, n bytes) in hay, ASCII letters without case */
static int
has_folded(const char *hay, size_t len, const char *needle, size_t n)
{
	size_t	 i, j;

	if (n == 0 || n > len)
		return 0;
	for (i = 0; i + n <= len; i++) {
		for (j = 0; j < n; j++) {
			int c = (unsigned char)hay[i + j];

			if (c >= 'A' && c <= 'Z')
				c += 32;
			if (c != (unsigned char)needle[j])
				break;
		}
		if (j == n)
			return 1;
	}
	return 0;
}

const char *
key_keyword(const struct ban_options *b, const char *body, size_t len,
    char *kw, size_t kwsz)
{
	const char	*p;
	size_t		 i, n;

	if (body == NULL || len == 0)
		return NULL;
	if (b->keywords == NULL) {
		for (i = 0; i < sizeof(default_keywords) /
		    sizeof(default_keywords[0]); i++)
			if (has_folded(body, len, default_keywords[i],
			    strlen(default_keywords[i]))) {
				strlcpy_(kw, default_keywords[i], kwsz);
				return kw;
			}
		return NULL;
	}
	for (p = b->keywords; *p != '\0'; p += n + (p[n] == '\n')) {
		n = strcspn(p, "\n");
		if (has_folded(body, len, p, n)) {
			snprintf(kw, kwsz, "%.*s", (int)n, p);
			return kw;
		}
	}
	return NULL;
}

/* The start of a body for a reason: whole characters, one line. */
static void
body_start(const char *body, size_t len, char *out, size_t outsz)
{
	char	 tmp[KEY_WHY_MAX];
	size_t	 i, n = len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1;

	for (i = 0; i < n; i++)
		tmp[i] = body[i] == '\0' || body[i] == '\r' || body[i] == '\n' ||
		    body[i] == '\t' ? ' ' : body[i];
	tmp[n] = '\0';
	utf8_copy(out, tmp, outsz);
}

int
key_ban_reason(const struct ban_options *b, int status, const char *body,
    size_t len, char *why, size_t whysz)
{
	char	 kw[KEY_WHY_MAX], start[96], tmp[KEY_WHY_MAX + 64];

	/* as new-api, only an error answer is read */
	if (!b->disable || status == 429 || status < 400 || status > 599)
		return 0;
	if (key_keyword(b, body, len, kw, sizeof(kw)) != NULL) {
		/* cut at a whole character */
		snprintf(tmp, sizeof(tmp), "上游返回 %d，含关键词「%s」", status,
		    kw);
		utf8_copy(why, tmp, whysz);
		return 1;
	}
	if (codes_match(b->codes, b->ncodes, status)) {
		body_start(body != NULL ? body : "", body != NULL ? len : 0,
		    start, sizeof(start));
		snprintf(tmp, sizeof(tmp), "上游返回 %d%s%s", status,
		    start[0] != '\0' ? "：" : "", start);
		utf8_copy(why, tmp, whysz);
		return 1;
	}
	return 0;
}

int
keys_answered(struct db *db, const struct relay_options *o,
    const struct channel *ch, size_t ki, const struct up_result *res,
    const char *rid)
{
	const struct buf	*b;
	struct dbv		 a[6];
	char			 why[KEY_WHY_MAX], lines[8192];
	size_t			 i, off = 0;
	int			 n;

	if (res->status == 0 || ki >= ch->nkeys || ch->key_status == NULL ||
	    !ch->auto_ban || ch->disabled ||
	    ch->key_status[ki] != CH_ENABLED)
		return 0;
	/* a 401 held back for another channel is in held_body */
	b = res->withheld ? &res->held_body : &res->capture;
	if (!key_ban_reason(&o->ban, res->status, b->p, b->len, why,
	    sizeof(why)))
		return 0;
	lines[0] = '\0';
	for (i = 0; i < ch->nkeys; i++) {
		n = snprintf(lines + off, sizeof(lines) - off, "%s%d",
		    i > 0 ? "," : "", ch->key_line[i]);
		if (n < 0 || (size_t)n >= sizeof(lines) - off) {
			log_err("req=%s channel %lld: too many keys to record "
			    "the ban of one", rid, ch->id);
			return 0;
		}
		off += (size_t)n;
	}
	a[0] = DBI(ch->id);
	a[1] = DBI(ch->key_line[ki]);
	a[2] = DBS(lines);
	a[3] = DBI(ch->nkeys == 1 ? 1 : ch->nlines);
	a[4] = DBI(now_s());
	a[5] = DBS(why);
	if (db_run(db, ST_AUTO_BAN, a, 6, NULL, NULL, NULL) != DB_OK) {
		log_err("req=%s disabling key #%d of channel %lld: %s", rid,
		    ch->key_line[ki] + 1, ch->id, db_error(db));
		return 0;
	}
	log_warn("req=%s channel %lld key #%d answered %d: disabled (%s)",
	    rid, ch->id, ch->key_line[ki] + 1, res->status, why);
	metrics_key_banned();
	return 1;
}

/* ---- the probe ---- */

#define PROBE_KINDS	64
#define PROBES_MAX	64	/* keys probed in one pass, at most */
#define PROBE_TIMEOUT	20L	/* seconds for one probe, all told */
#define PROBE_BODY_MAX	(16 * 1024)	/* of an answer, read for keywords */

enum kstmt { KS_CLAIM, KS_KINDS, KS_MODELS, KS_ENABLE, KS__MAX };

static const char *const probe_sql[KS__MAX] = {
	/* one host a pass: whoever moves the time on first */
	[KS_CLAIM] =
	    "UPDATE bltcy_meta SET v = ? WHERE k = 'key_probe' AND v <= ?",
	[KS_KINDS] =
	    "SELECT service, probe_method, probe_path, probe_pass"
	    " FROM bltcy_task_kinds WHERE probe_path <> ''",
	[KS_MODELS] = "SELECT models FROM channels WHERE id = ?",
	[KS_ENABLE] = "CALL bltcy_key_enable(?, ?, ?, ?)",
};

struct probe_kind {
	char		 service[32];
	char		 method[8];
	char		 path[256];
	struct code_range pass[BAN_CODES_MAX];
	size_t		 npass;
};

struct kinds {
	struct probe_kind k[PROBE_KINDS];
	size_t		 n;
};

struct key_probe {
	struct db	*db;
	CURL		*curl;
};

struct key_probe *
keys_probe_new(const struct dsn *dsn)
{
	struct key_probe	*kp;

	if ((kp = calloc(1, sizeof(*kp))) == NULL)
		return NULL;
	if ((kp->db = db_new(dsn, probe_sql, KS__MAX, 0)) == NULL ||
	    (kp->curl = curl_easy_init()) == NULL) {
		keys_probe_free(kp);
		return NULL;
	}
	return kp;
}

void
keys_probe_free(struct key_probe *kp)
{
	if (kp == NULL)
		return;
	if (kp->curl != NULL)
		curl_easy_cleanup(kp->curl);
	db_free(kp->db);
	free(kp);
}

static int
probe_row(void *arg, const struct dbv *c, size_t n)
{
	struct kinds		*l = arg;
	struct probe_kind	*k;
	char			 why[64];

	if (l->n == PROBE_KINDS)
		return 1;
	k = &l->k[l->n];
	memset(k, 0, sizeof(*k));
	if (c[0].t != DBV_STR || c[1].t != DBV_STR || c[2].t != DBV_STR ||
	    c[3].t != DBV_STR || c[0].len >= sizeof(k->service) ||
	    c[1].len >= sizeof(k->method) || c[2].len >= sizeof(k->path))
		return 0;
	memcpy(k->service, c[0].s, c[0].len + 1);
	memcpy(k->method, c[1].s, c[1].len + 1);
	memcpy(k->path, c[2].s, c[2].len + 1);
	if (strcmp(k->method, "GET") != 0 && strcmp(k->method, "HEAD") != 0 &&
	    strcmp(k->method, "POST") != 0) {
		log_warn("bltcy_task_kinds: probe of %s: method %s is none of "
		    "GET, HEAD, POST; not probed", k->service, k->method);
		return 0;
	}
	if (k->path[0] != '/' || strpbrk(k->path, " \r\n") != NULL) {
		log_warn("bltcy_task_kinds: probe of %s: path is no absolute "
		    "path; not probed", k->service);
		return 0;
	}
	if (codes_parse(c[3].s, k->pass, BAN_CODES_MAX, &k->npass, why,
	    sizeof(why)) == -1 || k->npass == 0) {
		log_warn("bltcy_task_kinds: probe of %s: probe_pass %s; not "
		    "probed", k->service, k->npass == 0 ? "is empty" : why);
		return 0;
	}
	l->n++;
	return 0;
}

static int
models_row(void *arg, const struct dbv *c, size_t n)
{
	char	*out = arg;

	if (c[0].t == DBV_STR)
		strlcpy_(out, c[0].s, 4096);
	return 1;
}

/* The probe of the first service the channel serves that has one. */
static const struct probe_kind *
channel_kind(struct key_probe *kp, const struct kinds *ks, long long id)
{
	char		 models[4096] = "";
	struct dbv	 a = DBI(id);
	const char	*m;
	size_t		 i, n;

	if (db_run(kp->db, KS_MODELS, &a, 1, models_row, models, NULL) != DB_OK)
		return NULL;
	for (m = models; *m != '\0'; m += n + (m[n] == ',')) {
		n = strcspn(m, ",");
		for (i = 0; i < ks->n; i++)
			if (strlen(ks->k[i].service) == n &&
			    strncmp(ks->k[i].service, m, n) == 0)
				return &ks->k[i];
	}
	return NULL;
}

static size_t
probe_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct buf	*b = arg;

	/* what is past the cap is not read for keywords, but not refused */
	(void)buf_add(b, ptr, nmemb);
	return nmemb;
}

/*
 * One request of the kind's probe with the key: its status, 0 when none
 * came; the body's start in body.
 */
static long
probe_one(struct key_probe *kp, const struct channel *ch, const char *key,
    const struct probe_kind *k, struct buf *body)
{
	struct curl_slist	*hl = NULL;
	struct buf		 url;
	char			 errbuf[CURL_ERROR_SIZE] = "";
	long			 status = 0;
	CURLcode		 rc;

	buf_init(&url, 8192);
	if (buf_printf(&url, "%s%s", ch->base_url, k->path) == -1 ||
	    own_request(kp->curl, k->method, url.p, key, NULL, ch->set.proxy,
	    PROBE_TIMEOUT, probe_body, body, errbuf, &hl) == -1)
		goto done;
	rc = curl_easy_perform(kp->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(kp->curl, CURLINFO_RESPONSE_CODE, &status);
	else
		log_info("channel %lld: probe of a key failed: %s", ch->id,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
done:
	own_request_done(kp->curl, hl);
	buf_free(&url);
	return status;
}

/* Key i of ch is to be probed: disabled automatically, not by hand. */
static int
probed(const struct channel *ch, size_t i)
{
	if (ch->key_status == NULL || ch->status == CH_MANUALLY_DISABLED ||
	    ch->base_url[0] == '\0')
		return 0;
	return ch->key_status[i] == CH_AUTO_DISABLED;
}

void
keys_probe(struct key_probe *kp, const struct chcache *c, long long now)
{
	struct kinds		*ks = NULL;
	const struct probe_kind	*k;
	struct buf		 body;
	struct dbv		 a[4];
	char			 kw[KEY_WHY_MAX];
	unsigned long long	 claimed = 0;
	long long		 done;
	size_t			 i, j, todo = 0, probes = 0;
	long			 st;

	if (kp == NULL || !c->opts.ban.enable)
		return;
	for (i = 0; i < c->nch; i++)
		for (j = 0; j < c->ch[i].nkeys; j++)
			todo += probed(&c->ch[i], j);
	if (todo == 0)
		return;
	a[0] = DBI(now + cfg_i(CFG_KEY_PROBE_INTERVAL));
	a[1] = DBI(now);
	if (db_run(kp->db, KS_CLAIM, a, 2, NULL, NULL, &claimed) != DB_OK) {
		log_warn("key probe: %s", db_error(kp->db));
		return;
	}
	if (claimed != 1 || (ks = calloc(1, sizeof(*ks))) == NULL)
		return;	/* another host's turn */
	if (db_run(kp->db, KS_KINDS, NULL, 0, probe_row, ks, NULL) != DB_OK) {
		log_warn("key probe: reading the probes: %s", db_error(kp->db));
		goto out;
	}
	for (i = 0; i < c->nch && probes < PROBES_MAX; i++) {
		const struct channel *ch = &c->ch[i];

		for (j = 0; j < ch->nkeys && !probed(ch, j); j++)
			;
		if (j == ch->nkeys)
			continue;
		if ((k = channel_kind(kp, ks, ch->id)) == NULL) {
			log_debug("channel %lld: no service of it has a probe; "
			    "its disabled keys stay so", ch->id);
			continue;
		}
		for (; j < ch->nkeys && probes < PROBES_MAX; j++) {
			if (!probed(ch, j))
				continue;
			probes++;
			buf_init(&body, PROBE_BODY_MAX);
			st = probe_one(kp, ch, ch->keys[j], k, &body);
			if (st == 0 || !codes_match(k->pass, k->npass, (int)st) ||
			    key_keyword(&c->opts.ban, body.p, body.len, kw,
			    sizeof(kw)) != NULL) {
				log_info("channel %lld key #%d: probe %s %s "
				    "answered %ld; it stays disabled", ch->id,
				    ch->key_line[j] + 1, k->method, k->path, st);
				buf_free(&body);
				continue;
			}
			buf_free(&body);
			a[0] = DBI(ch->id);
			a[1] = DBI(ch->key_line[j]);
			a[2] = DBI(ch->nkeys == 1 ? 1 : ch->nlines);
			a[3] = DBI(now);
			done = 0;
			if (db_run(kp->db, KS_ENABLE, a, 4, db_int_row, &done,
			    NULL) != DB_OK)
				log_warn("channel %lld key #%d: enabling: %s",
				    ch->id, ch->key_line[j] + 1,
				    db_error(kp->db));
			else if (done)
				log_info("channel %lld key #%d: probe %s %s "
				    "answered %ld; enabled again", ch->id,
				    ch->key_line[j] + 1, k->method, k->path, st);
		}
	}
out:
	free(ks);
}
