/*
 * Channels (type 55): list, add, edit, enable/disable, delete, test. The
 * form is the seed's step 1-4; its checks and the save (channel and
 * abilities in one transaction, key sealed) are common/store.c's, shared
 * with bltcy-ctl.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "admin.h"
#include "crypto.h"
#include "jsonread.h"
#include "log.h"
#include "netaddr.h"
#include "reply.h"
#include "request.h"
#include "route.h"
#include "setting.h"
#include "sql.h"
#include "store.h"

#define TEST_CONNECT_TIMEOUT	10L
#define TEST_TIMEOUT		20L

/* What the form shows: a stored channel or what was just submitted. */
/* Big enough for any stored value and for any value the form may send. */
struct chan_view {
	long long	 id, status, priority, weight, auto_ban;
	char		 name[LIM_BYTES(LIM_CHANNEL_NAME)];
	char		 base_url[LIM_BASE_URL + 1];
	char		 group[LIM_CHANNEL_GROUP + 1];
	char		 remark[LIM_BYTES(LIM_CHANNEL_REMARK)];
	char		 models[2048];	/* one per line */
	char		 setting[4096];
	int		 key_state;	/* 0 none, 1 sealed, 2 plain */
	char		 key_hint[32];	/* masked plain key */
};

static const struct {
	long long	 status;
	enum label	 label;
	const char	*badge;
} statuses[] = {
	{ 1, L_ENABLED, "on" },
	{ 2, L_DISABLED, "off" },
	{ 3, L_AUTO_DISABLED, "bad" },
};

static size_t
status_idx(long long st)
{
	size_t	 i;

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (statuses[i].status == st)
			return i;
	return 1;
}

static void
mask_key(const char *k, char out[32])
{
	size_t	 n = strcspn(k, "\r\n");

	if (n > 12)
		snprintf(out, 32, "%.3s••••%.4s", k, k + n - 4);
	else
		strlcpy_(out, "••••", 32);
}

static int
chan_row(void *arg, const struct dbv *c, size_t n)
{
	struct chan_view	*v = arg;
	const char		*key = col_s(&c[4]);

	v->id = col_i(&c[0]);
	strlcpy_(v->name, col_s(&c[1]), sizeof(v->name));
	v->status = col_i(&c[2]);
	strlcpy_(v->base_url, col_s(&c[3]), sizeof(v->base_url));
	v->key_state = *key == '\0' ? 0 :
	    strncmp(key, SEAL_PREFIX, strlen(SEAL_PREFIX)) == 0 ? 1 : 2;
	if (v->key_state == 2)
		mask_key(key, v->key_hint);
	list_lines(col_s(&c[5]), v->models, sizeof(v->models));
	strlcpy_(v->group, col_s(&c[6]), sizeof(v->group));
	v->priority = col_i(&c[7]);
	v->weight = col_i(&c[8]);
	strlcpy_(v->setting, col_s(&c[9]), sizeof(v->setting));
	v->auto_ban = col_i(&c[10]);
	strlcpy_(v->remark, col_s(&c[11]), sizeof(v->remark));
	return 1;
}

/* 1 found, 0 not, -1 db error. */
static int
chan_load(struct req *r, long long id, struct chan_view *v)
{
	struct dbv	 a = DBI(id);

	memset(v, 0, sizeof(*v));
	if (db_run(r->db, AS_CHANNEL_GET, &a, 1, chan_row, v, NULL) != DB_OK)
		return -1;
	return v->id > 0;
}

static void
channel_form(struct req *r, const struct chan_view *v, const char *err)
{
	size_t	 i;

	page_begin(r, v->id ? L_EDIT_CHANNEL : L_ADD_CHANNEL);
	if (err != NULL && *err != '\0')
		msg_box(r, 0, err);
	h(&r->out, "<form method=\"post\" class=\"card\" action=\"%s/channels/%s\">",
	    r->base, v->id ? "edit" : "new");
	csrf_field(r);
	if (v->id)
		h(&r->out, "<input type=\"hidden\" name=\"id\" value=\"%L\">", v->id);
	h(&r->out, "<label>%s<input name=\"name\" required maxlength=\"191\" "
	    "value=\"%s\" placeholder=\"旧网关-统一\"></label>",
	    T(r, L_CH_NAME), v->name);
	h(&r->out, "<label>%s<select name=\"type\"><option value=\"55\" selected>"
	    "%s</option></select></label>", T(r, L_CH_TYPE), T(r, L_CH_TYPE55));
	h(&r->out, "<label>%s<input name=\"base_url\" required maxlength=\"191\" "
	    "value=\"%s\" placeholder=\"https://api.bltcy.ai\"><small>%s</small>"
	    "</label>", T(r, L_BASE_URL), v->base_url, T(r, L_BASE_URL_HELP));
	h(&r->out, "<label>%s<textarea name=\"key\" rows=\"2\" autocomplete=\"off\" "
	    "spellcheck=\"false\"%s placeholder=\"sk-xxx...\"></textarea><small>%s",
	    T(r, L_KEY), v->id ? "" : " required",
	    T(r, v->id ? L_KEY_HELP_EDIT : L_KEY_HELP_NEW));
	if (v->key_state == 1)
		h(&r->out, " · ••••••••（%s）", T(r, L_KEY_SEALED));
	else if (v->key_state == 2)
		h(&r->out, " · %s（%s）", v->key_hint, T(r, L_KEY_PLAIN));
	h(&r->out, "</small></label><div class=\"row\"><label>%s<select name=\"status\">",
	    T(r, L_STATUS));
	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		if (statuses[i].status == 3 && v->status != 3)
			continue;
		h(&r->out, "<option value=\"%L\"%s>%s</option>", statuses[i].status,
		    statuses[i].status == v->status ? " selected" : "",
		    T(r, statuses[i].label));
	}
	h(&r->out, "</select></label><label>%s<input name=\"priority\" "
	    "type=\"number\" value=\"%L\"></label><label>%s<input name=\"weight\" "
	    "type=\"number\" min=\"0\" value=\"%L\"></label><label>%s<input "
	    "name=\"group\" value=\"%s\" placeholder=\"default\"></label></div>",
	    T(r, L_PRIORITY), v->priority, T(r, L_WEIGHT), v->weight,
	    T(r, L_GROUP), v->group);
	h(&r->out, "<label>%s<textarea name=\"models\" rows=\"5\" spellcheck=\"false\" "
	    "placeholder=\"runway&#10;pika&#10;kling&#10;jimeng&#10;suno\">%s</textarea>"
	    "<small>%s%s</small></label>", T(r, L_MODELS), v->models,
	    T(r, L_MODELS_HELP), service_list());
	h(&r->out, "<label>%s<textarea name=\"setting\" rows=\"3\" spellcheck=\"false\" "
	    "placeholder='{\"PassthroughQuota\": 1000}'>%s</textarea><small>%s</small>"
	    "</label>", T(r, L_SETTING), v->setting, T(r, L_SETTING_HELP));
	h(&r->out, "<label>%s<input name=\"remark\" maxlength=\"255\" value=\"%s\">"
	    "</label><label class=\"check\"><input type=\"checkbox\" name=\"auto_ban\" "
	    "value=\"1\"%s>%s</label>", T(r, L_REMARK), v->remark,
	    v->auto_ban ? " checked" : "", T(r, L_AUTO_BAN));
	h(&r->out, "<div class=\"actions\"><button type=\"submit\">%s</button>"
	    "<a class=\"btn ghost\" href=\"%s/channels\">%s</a></div></form>",
	    T(r, L_SAVE), r->base, T(r, L_CANCEL));
	page_end(r);
}

int
pg_channel_form(struct req *r)
{
	struct chan_view	 v;
	long long		 id;
	int			 rc;

	memset(&v, 0, sizeof(v));
	v.status = 1;
	v.auto_ban = 1;
	strlcpy_(v.group, "default", sizeof(v.group));
	list_lines(service_list(), v.models, sizeof(v.models));
	strlcpy_(v.setting, "{\"PassthroughQuota\": 1000}", sizeof(v.setting));
	if (strcmp(r->path, "/channels/edit") == 0) {
		if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1 || id == 0)
			return page_fail(r, 404, L_NO_SUCH, NULL);
		if ((rc = chan_load(r, id, &v)) <= 0)
			return rc < 0 ? page_fail(r, 503, L_DB_ERROR, NULL) :
			    page_fail(r, 404, L_NO_SUCH, NULL);
	}
	channel_form(r, &v, NULL);
	return 200;
}

/*
 * Would the stored key go somewhere else after this edit? The scheme,
 * host or port of the Base URL changed, or the proxy did. Then the key
 * must be entered again: whoever can edit a channel must not be able to
 * send its key to a host of their own (the test button, or the relay).
 */
static int
key_moves(const char *old_url, const char *old_setting, const char *new_url,
    const char *new_setting)
{
	struct endpoint		 a, b;
	struct chan_setting	 sa, sb;
	char			 err[128];
	int			 ra, rb;

	ra = url_endpoint(old_url, &a);
	rb = url_endpoint(new_url, &b);
	if (ra != rb || (ra == 0 && (strcmp(a.scheme, b.scheme) != 0 ||
	    strcmp(a.host, b.host) != 0 || a.port != b.port)))
		return 1;
	if (ra == -1 && strcmp(old_url, new_url) != 0)
		return 1;
	ra = setting_parse(old_setting, &sa, err, sizeof(err));
	rb = setting_parse(new_setting, &sb, err, sizeof(err));
	return ra != rb || strcmp(sa.proxy, sb.proxy) != 0;
}

/* Keys one per line: CRs and blank lines dropped, lines trimmed. */
static char *
clean_keys(const char *in)
{
	char		*out = malloc(strlen(in) + 1);
	size_t		 o = 0;
	const char	*p = in;

	if (out == NULL)
		return NULL;
	while (*p != '\0') {
		size_t	 n = strcspn(p, "\r\n"), s = 0;

		while (s < n && (p[s] == ' ' || p[s] == '\t'))
			s++;
		while (n > s && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n > s) {
			if (o > 0)
				out[o++] = '\n';
			memcpy(out + o, p + s, n - s);
			o += n - s;
		}
		p += strcspn(p, "\r\n");
		p += strspn(p, "\r\n");
	}
	out[o] = '\0';
	return out;
}

int
pg_channel_save(struct req *r)
{
	struct channel_form	 f;
	struct chan_view	 v;
	struct buf		 errs;
	char			 msg[MSG_SZ], *key = NULL;
	char			 old_url[sizeof(v.base_url)];
	char			 old_setting[sizeof(v.setting)];
	const char		*s;
	long long		 id = 0, type;
	int			 notice = 0, rc = 200;

	buf_init(&errs, ERRS_MAX);
	memset(&f, 0, sizeof(f));
	memset(&v, 0, sizeof(v));
	if (strcmp(r->path, "/channels/edit") == 0) {
		if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1 || id == 0 ||
		    (rc = chan_load(r, id, &v)) <= 0) {
			buf_free(&errs);
			return rc < 0 ? page_fail(r, 503, L_DB_ERROR, NULL) :
			    page_fail(r, 404, L_NO_SUCH, NULL);
		}
	}
	strlcpy_(old_url, v.base_url, sizeof(old_url));
	strlcpy_(old_setting, v.setting, sizeof(old_setting));
	/* What the form shows again if anything is wrong: what was sent. */
	strlcpy_(v.name, (s = field_text(r, &errs, F_NAME, L_CH_NAME, 1)) ? s : "",
	    sizeof(v.name));
	strlcpy_(f.name, v.name, sizeof(f.name));
	type = field_int(r, &errs, F_TYPE, L_CH_TYPE, 55, 55, 55);
	(void)type;
	s = field_text(r, &errs, F_BASE_URL, L_BASE_URL, 1);
	strlcpy_(v.base_url, s ? s : "", sizeof(v.base_url));
	if (s != NULL && check_base_url(s, f.base_url, sizeof(f.base_url),
	    &notice, msg, sizeof(msg)) == -1)
		buf_printf(&errs, "%s\n", msg);
	s = field_text(r, &errs, F_KEY, L_KEY, id == 0);
	if (s != NULL && (key = clean_keys(s)) != NULL && *key == '\0' && id == 0)
		buf_printf(&errs, "%s%s\n", T(r, L_REQUIRED), T(r, L_KEY));
	f.key = key != NULL && *key != '\0' ? key : NULL;
	v.status = f.status = field_int(r, &errs, F_STATUS, L_STATUS, 1, 1, 3);
	v.priority = f.priority = field_int(r, &errs, F_PRIORITY, L_PRIORITY, 0,
	    INT32_MIN, INT32_MAX);
	v.weight = f.weight = field_int(r, &errs, F_WEIGHT, L_WEIGHT, 0, 0,
	    INT32_MAX);
	v.auto_ban = f.auto_ban = field_int(r, &errs, F_AUTO_BAN, L_AUTO_BAN, 0,
	    0, 1);
	s = field_text(r, &errs, F_GROUP, L_GROUP, 0);
	strlcpy_(v.group, s ? s : "", sizeof(v.group));
	if (check_groups(s ? s : "", f.group, sizeof(f.group), msg,
	    sizeof(msg)) == -1)
		buf_printf(&errs, "%s\n", msg);
	s = field_text(r, &errs, F_MODELS, L_MODELS, 1);
	strlcpy_(v.models, s ? s : "", sizeof(v.models));
	if (s != NULL && check_models(s, f.models, sizeof(f.models), msg,
	    sizeof(msg)) == -1)
		buf_printf(&errs, "%s\n", msg);
	s = field_text(r, &errs, F_SETTING, L_SETTING, 0);
	strlcpy_(v.setting, s ? s : "", sizeof(v.setting));
	strlcpy_(f.setting, s ? s : "", sizeof(f.setting));
	if (check_setting(f.setting, msg, sizeof(msg)) == -1)
		buf_printf(&errs, "%s\n", msg);
	s = field_text(r, &errs, F_REMARK, L_REMARK, 0);
	strlcpy_(v.remark, s ? s : "", sizeof(v.remark));
	strlcpy_(f.remark, v.remark, sizeof(f.remark));

	if (errs.len == 0 && id > 0 && f.key == NULL &&
	    key_moves(old_url, old_setting, f.base_url, f.setting))
		buf_printf(&errs, "%s\n", T(r, L_KEY_AGAIN));
	if (errs.len == 0 && channel_save(r->store, &f, id, msg,
	    sizeof(msg)) < 0)
		buf_printf(&errs, "%s\n", msg);
	if (key != NULL) {
		wipe(key, strlen(key));
		free(key);
	}
	if (errs.len > 0) {
		channel_form(r, &v, errs.p);
		buf_free(&errs);
		return 422;
	}
	buf_free(&errs);
	log_info("admin: user %lld saved channel %s", r->me.id,
	    id ? "(edit)" : "(new)");
	redirect(r, "/channels", notice ? FL_SLASH : FL_SAVED);
	return 303;
}

/* ---- the list ---- */

/*
 * A label after a Base URL whose host is on this machine or the local
 * network (allowed: old gateways on a LAN), or that is never connected
 * to (a value written by other software).
 */
static void
addr_label(struct req *r, const char *url)
{
	struct endpoint	 e;
	enum addr_class	 c;
	enum label	 l;

	if (url_endpoint(url, &e) == -1 || host_class(e.host, &c) == -1 ||
	    c == ADDR_PUBLIC)
		return;
	l = c == ADDR_LOOPBACK ? L_ADDR_LOOPBACK : c == ADDR_PRIVATE ?
	    L_ADDR_PRIVATE : L_ADDR_FORBIDDEN;
	h(&r->out, " <span class=\"tag addr-%s\">%s</span>",
	    addr_class_name(c), T(r, l));
}

/* ---- a channel's keys: open jobs against the cap, disabled and why ---- */

#define PLACES_MAX	65536

/* Open jobs of one key (bltcy_places, scope 'k'). */
struct place {
	long long	 id;
	char		 hash[17];
	long long	 open;
};

struct list_ctx {
	struct req	*r;
	struct place	*pl;
	size_t		 npl;
};

static int
place_row(void *arg, const struct dbv *c, size_t n)
{
	struct list_ctx	*x = arg;
	struct place	*p;

	if (x->npl == PLACES_MAX)
		return 1;
	p = &x->pl[x->npl];
	p->id = col_i(&c[0]);
	strlcpy_(p->hash, col_s(&c[1]), sizeof(p->hash));
	p->open = col_i(&c[2]);
	x->npl++;
	return 0;
}

static long long
open_jobs(const struct list_ctx *x, long long id, const char *hash)
{
	size_t	 i;

	for (i = 0; i < x->npl; i++)
		if (x->pl[i].id == id && strcmp(x->pl[i].hash, hash) == 0)
			return x->pl[i].open;
	return 0;
}

/* A number or a string at path of a JSON text, as text ("" if none). */
static void
json_at(const char *text, const char *path, char *out, size_t outsz)
{
	struct json_value	 v;
	const char		*paths[1] = { path };

	out[0] = '\0';
	if (text == NULL || *text == '\0' ||
	    json_values(text, strlen(text), paths, 1, 0, &v) == -1)
		return;
	if (v.kind == JSON_STRING)
		json_text(&v, out, outsz);
	else if (v.kind == JSON_NUMBER)
		json_compact(&v, out, outsz);
}

/* A line of a key column (key_lines) that is a key: no CR inside. */
static int
key_count(void *arg, int idx, char *key)
{
	(void)idx;
	if (strchr(key, '\r') == NULL)
		(*(size_t *)arg)++;
	return 0;
}

struct key_view {
	const struct list_ctx	*x;
	long long		 id, status, cap;
	size_t			 nkeys;
	const char		*info, *other;
};

static int
key_line(void *arg, int idx, char *key)
{
	struct key_view	*k = arg;
	struct req	*r = k->x->r;
	char		 hash[65], hint[32], path[64], st[16], why[512], at[32];
	char		 when[32];
	long long	 state = 1;
	size_t		 si;

	if (strchr(key, '\r') != NULL)
		return 0;		/* the relay skips it (fcgi/channels.c) */
	sha256_hex(key, strlen(key), hash);
	hash[16] = '\0';
	mask_key(key, hint);
	why[0] = at[0] = '\0';
	if (k->nkeys == 1) {
		/* a channel of one key is the key */
		if (k->status == 3) {
			state = 3;
			json_at(k->other, "status_reason", why, sizeof(why));
			json_at(k->other, "status_time", at, sizeof(at));
		}
	} else {
		snprintf(path, sizeof(path), "multi_key_status_list.%d", idx);
		json_at(k->info, path, st, sizeof(st));
		if (st[0] != '\0' && strcmp(st, "1") != 0) {
			state = strcmp(st, "3") == 0 ? 3 : 2;
			snprintf(path, sizeof(path),
			    "multi_key_disabled_reason.%d", idx);
			json_at(k->info, path, why, sizeof(why));
			snprintf(path, sizeof(path),
			    "multi_key_disabled_time.%d", idx);
			json_at(k->info, path, at, sizeof(at));
		}
	}
	si = status_idx(state);
	h(&r->out, "<div class=\"key\">#%d <span class=\"mono\">%s</span> "
	    "<span class=\"num\">%L / ", idx + 1, hint,
	    open_jobs(k->x, k->id, hash));
	if (k->cap > 0)
		h(&r->out, "%L", k->cap);
	else
		h(&r->out, "%s", T(r, L_NO_CAP));
	h(&r->out, "</span> <span class=\"badge %s\">%s</span>",
	    statuses[si].badge, T(r, statuses[si].label));
	if (state != 1 && (why[0] != '\0' || at[0] != '\0')) {
		when[0] = '\0';
		if (strtoll(at, NULL, 10) > 0)
			fmt_time(strtoll(at, NULL, 10), when, sizeof(when));
		h(&r->out, " <small class=\"why\">%s%s%s</small>", why,
		    why[0] != '\0' && when[0] != '\0' ? " · " : "", when);
	}
	h(&r->out, "</div>");
	return 0;
}

/* MaxTasks of a channel's setting: open jobs per key, 0 for none. */
static long long
max_tasks(const char *setting)
{
	char		 v[32];
	long long	 n;

	json_at(setting, "MaxTasks", v, sizeof(v));
	return v[0] != '\0' && parse_ll(v, 0, INT32_MAX, &n) == 0 ? n : 0;
}

static void
key_cells(const struct list_ctx *x, const struct dbv *c)
{
	struct key_view	 k;
	char		*plain;

	memset(&k, 0, sizeof(k));
	k.x = x;
	k.id = col_i(&c[0]);
	k.status = col_i(&c[2]);
	k.cap = max_tasks(col_s(&c[12]));
	k.info = col_s(&c[13]);
	k.other = col_s(&c[14]);
	if ((plain = unseal(col_s(&c[11]))) == NULL) {
		h(&x->r->out, "-");
		return;
	}
	key_lines(plain, key_count, &k.nkeys);
	wipe(plain, strlen(plain));
	free(plain);
	if ((plain = unseal(col_s(&c[11]))) == NULL)
		return;
	key_lines(plain, key_line, &k);
	wipe(plain, strlen(plain));
	free(plain);
}

static int
list_row(void *arg, const struct dbv *c, size_t n)
{
	struct list_ctx	*x = arg;
	struct req	*r = x->r;
	long long	 id = col_i(&c[0]), st = col_i(&c[2]);
	size_t		 si = status_idx(st);
	const char	*m = col_s(&c[4]);
	char		 t[32];

	h(&r->out, "<tr><td class=\"num\">%L</td><td>%s</td>"
	    "<td><span class=\"badge %s\">%s</span></td><td class=\"mono\">%s",
	    id, col_s(&c[1]), statuses[si].badge, T(r, statuses[si].label),
	    col_s(&c[3]));
	addr_label(r, col_s(&c[3]));
	h(&r->out, "</td><td>");
	while (*m != '\0') {
		size_t	 l = strcspn(m, ",");
		char	 one[64];

		if (l > 0 && l < sizeof(one)) {
			memcpy(one, m, l);
			one[l] = '\0';
			h(&r->out, "<span class=\"tag\">%s</span>", one);
		}
		m += l;
		m += *m == ',';
	}
	h(&r->out, "</td><td class=\"keys\">");
	key_cells(x, c);
	fmt_time(col_i(&c[9]), t, sizeof(t));
	h(&r->out, "</td><td>%s</td><td class=\"num\">%L</td><td class=\"num\">%L</td>"
	    "<td class=\"num\">%L</td><td class=\"num\">",
	    col_s(&c[5]), col_i(&c[6]), col_i(&c[7]), col_i(&c[8]));
	if (c[10].t != DBV_NULL && col_i(&c[9]) > 0)
		h(&r->out, "%L ms", col_i(&c[10]));
	else
		h(&r->out, "-");
	h(&r->out, "</td><td class=\"ops\"><a class=\"btn ghost small\" "
	    "href=\"%s/channels/edit?id=%L\">%s</a> ", r->base, id, T(r, L_EDIT));
	post_button(r, "/channels/toggle", id, st == 1 ? 2 : 1,
	    st == 1 ? L_DISABLE : L_ENABLE, 0);
	post_button(r, "/channels/test", id, 0, L_TEST, 0);
	post_button(r, "/channels/delete", id, 0, L_DELETE, 1);
	h(&r->out, "</td></tr>");
	return 0;
}

static int
channel_list(struct req *r, const char *note, int ok)
{
	struct list_ctx	 x;
	size_t		 mark;

	memset(&x, 0, sizeof(x));
	x.r = r;
	if ((x.pl = calloc(PLACES_MAX, sizeof(*x.pl))) == NULL)
		return page_fail(r, 500, L_SERVER_ERROR, NULL);
	if (db_run(r->db, AS_KEY_PLACES, NULL, 0, place_row, &x, NULL) != DB_OK) {
		free(x.pl);
		return page_fail(r, 503, L_DB_ERROR, NULL);
	}
	page_begin(r, L_CHANNELS);
	if (note != NULL)
		msg_box(r, ok, note);
	h(&r->out, "<div class=\"toolbar\"><span class=\"muted\">%s</span>"
	    "<a class=\"btn\" href=\"%s/channels/new\">%s</a></div>",
	    T(r, L_TEST_NOTE), r->base, T(r, L_ADD_CHANNEL));
	h(&r->out, "<table><thead><tr><th class=\"num\">ID</th><th>%s</th><th>%s</th>"
	    "<th>Base URL</th><th>%s</th><th>%s</th><th>%s</th><th class=\"num\">%s</th>"
	    "<th class=\"num\">%s</th><th class=\"num\">%s</th><th class=\"num\">%s</th>"
	    "<th>%s</th></tr></thead><tbody>", T(r, L_CH_NAME), T(r, L_STATUS),
	    T(r, L_MODELS), T(r, L_KEYS), T(r, L_GROUP), T(r, L_PRIORITY),
	    T(r, L_WEIGHT), T(r, L_USED_QUOTA), T(r, L_RESPONSE_TIME),
	    T(r, L_ACTIONS));
	mark = r->out.b.len;
	if (db_run(r->db, AS_CHANNEL_LIST, NULL, 0, list_row, &x, NULL) != DB_OK) {
		free(x.pl);
		return page_fail(r, 503, L_DB_ERROR, NULL);
	}
	free(x.pl);
	if (r->out.b.len == mark)
		h(&r->out, "<tr><td colspan=\"12\" class=\"muted\">%s</td></tr>",
		    T(r, L_NONE));
	h(&r->out, "</tbody></table>");
	page_end(r);
	return 200;
}

int
pg_channels(struct req *r)
{
	return channel_list(r, NULL, 1);
}

static long long
posted_id(struct req *r)
{
	long long	 id;

	if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1)
		return 0;
	return id;
}

int
pg_channel_toggle(struct req *r)
{
	long long	 id = posted_id(r), st;
	char		 msg[MSG_SZ];

	if (id == 0 || fint(r, F_STATUS, 0, 1, 2, &st) == -1 || st == 0)
		return page_fail(r, 400, L_BAD_REQUEST, NULL);
	if (channel_set_status(r->store, id, st, msg, sizeof(msg)) == -1)
		return page_fail(r, 503, L_DB_ERROR, msg);
	redirect(r, "/channels", FL_STATUS);
	return 303;
}

int
pg_channel_delete(struct req *r)
{
	long long	 id = posted_id(r);
	char		 msg[MSG_SZ];

	if (id == 0)
		return page_fail(r, 400, L_BAD_REQUEST, NULL);
	if (channel_delete(r->store, id, msg, sizeof(msg)) == -1)
		return page_fail(r, 503, L_DB_ERROR, msg);
	log_info("admin: user %lld deleted channel %lld", r->me.id, id);
	redirect(r, "/channels", FL_DELETED);
	return 303;
}

/* ---- test: one GET to the Base URL ---- */

static size_t
discard(char *p, size_t sz, size_t n, void *arg)
{
	size_t	*total = arg;

	*total += sz * n;
	return *total > (1u << 20) ? 0 : sz * n;	/* enough seen */
}

struct key_row {
	char			*key;
	char			 base_url[LIM_BASE_URL + 1];
	struct chan_setting	 setting;
};

static int
key_row(void *arg, const struct dbv *c, size_t n)
{
	struct key_row	*k = arg;
	char		 err[128];

	k->key = unseal(col_s(&c[4]));
	strlcpy_(k->base_url, col_s(&c[3]), sizeof(k->base_url));
	setting_parse(col_s(&c[9]), &k->setting, err, sizeof(err));
	return 1;
}

int
pg_channel_test(struct req *r)
{
	long long		 id = posted_id(r), code = 0, ms;
	struct key_row		 k;
	struct dbv		 a;
	CURL			*c;
	struct curl_slist	*hl = NULL;
	char			 errbuf[CURL_ERROR_SIZE], auth[8300], note[1024];
	char			 url[LIM_BASE_URL + 1], msg[MSG_SZ];
	size_t			 total = 0;
	int			 slash;
	CURLcode		 cc;
	int64_t			 t0;

	memset(&k, 0, sizeof(k));
	a = DBI(id);
	if (id == 0)
		return page_fail(r, 400, L_BAD_REQUEST, NULL);
	if (db_run(r->db, AS_CHANNEL_GET, &a, 1, key_row, &k, NULL) != DB_OK)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	if (k.base_url[0] == '\0' && k.key == NULL)
		return page_fail(r, 404, L_NO_SUCH, NULL);
	/*
	 * Values written by other software were not checked at entry: the
	 * same checks before the key is sent, and at connect time below.
	 */
	if (check_base_url(k.base_url, url, sizeof(url), &slash, msg,
	    sizeof(msg)) == -1 || (k.setting.proxy[0] != '\0' &&
	    check_proxy(k.setting.proxy, msg, sizeof(msg)) == -1)) {
		if (k.key != NULL) {
			wipe(k.key, strlen(k.key));
			free(k.key);
		}
		snprintf(note, sizeof(note), "%s #%lld：%s", T(r, L_TEST_RESULT),
		    id, msg);
		return channel_list(r, note, 0);
	}
	if (k.key == NULL || (c = curl_easy_init()) == NULL) {
		free(k.key);
		return page_fail(r, 500, L_SERVER_ERROR, NULL);
	}
	k.key[strcspn(k.key, "\r\n")] = '\0';
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", k.key);
	hl = curl_slist_append(hl, auth);
	wipe(auth, sizeof(auth));
	wipe(k.key, strlen(k.key));
	free(k.key);
	errbuf[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, k.base_url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, TEST_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, TEST_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &total);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "bltcy-admin-test");
	/* the address a name resolves to now, not when it was entered */
	curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, netaddr_opensocket);
	curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, NULL);
	/* the way the relay goes: the channel's proxy wins */
	if (k.setting.proxy[0] != '\0')
		curl_easy_setopt(c, CURLOPT_PROXY, k.setting.proxy);
	t0 = mono_ms();
	cc = curl_easy_perform(c);
	ms = mono_ms() - t0;
	if (cc == CURLE_OK || cc == CURLE_WRITE_ERROR)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);

	channel_tested(r->store, id, now_s(), ms);
	if (code > 0) {
		snprintf(note, sizeof(note), "%s #%lld：%s %lld · %s %lld ms",
		    T(r, L_TEST_RESULT), id, T(r, L_HTTP_STATUS), code,
		    T(r, L_ELAPSED), ms);
		return channel_list(r, note, code < 400);
	}
	snprintf(note, sizeof(note), "%s #%lld：%s · %s · %s %lld ms",
	    T(r, L_TEST_RESULT), id, T(r, L_TEST_FAILED),
	    errbuf[0] ? errbuf : curl_easy_strerror(cc), T(r, L_ELAPSED), ms);
	return channel_list(r, note, 0);
}
