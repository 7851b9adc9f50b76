/*
 * Tokens: list, add (the key shown once, in full, as sk-...), edit,
 * enable/disable, delete (soft: deleted_at, as new-api).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "limitform.h"
#include "log.h"
#include "reply.h"
#include "request.h"
#include "sql.h"
#include "store.h"

/* Big enough for any stored value and for any value a form may send. */
struct tok_view {
	long long	 id, status, remain, used, unlimited, expires;
	char		 name[LIM_BYTES(LIM_TOKEN_NAME)];
	char		 owner[LIM_BYTES(LIM_USERNAME)], key_mask[32];
	char		 models[2 * LIM_MODEL_LIMITS + 1];	/* one per line */
	char		 ips[2 * LIM_ALLOW_IPS + 1];
	char		 expires_s[24];		/* datetime-local value */
	struct limit_view lim;
};

static void
datetime_local(long long t, char out[24])
{
	char	 s[32];

	out[0] = '\0';
	if (t <= 0)
		return;
	fmt_time(t, s, sizeof(s));	/* "YYYY-MM-DD HH:MM:SS" */
	if (strlen(s) == 19) {
		s[10] = 'T';
		s[16] = '\0';
		strlcpy_(out, s, 24);
	}
}

static int
tok_row(void *arg, const struct dbv *c, size_t n)
{
	struct tok_view	*v = arg;
	const char	*k = col_s(&c[2]);
	size_t		 kl = strlen(k);

	v->id = col_i(&c[0]);
	strlcpy_(v->name, col_s(&c[1]), sizeof(v->name));
	if (kl >= 8)
		snprintf(v->key_mask, sizeof(v->key_mask), "sk-%.4s…%.4s", k,
		    k + kl - 4);
	else
		strlcpy_(v->key_mask, "sk-…", sizeof(v->key_mask));
	v->status = col_i(&c[3]);
	v->remain = col_i(&c[4]);
	v->used = col_i(&c[5]);
	v->unlimited = col_i(&c[6]);
	v->expires = col_i(&c[7]);
	list_lines(col_i(&c[8]) ? col_s(&c[9]) : "", v->models, sizeof(v->models));
	strlcpy_(v->ips, col_s(&c[10]), sizeof(v->ips));
	strlcpy_(v->owner, col_s(&c[11]), sizeof(v->owner));
	v->lim.in_flight = col_i(&c[12]);
	v->lim.tasks = col_i(&c[13]);
	v->lim.rpm = col_i(&c[14]);
	datetime_local(v->expires, v->expires_s);
	return 1;
}

static void
token_form(struct req *r, const struct tok_view *v, const char *err)
{
	page_begin(r, v->id ? L_EDIT_TOKEN : L_ADD_TOKEN);
	if (err != NULL && *err != '\0')
		msg_box(r, 0, err);
	h(&r->out, "<form method=\"post\" class=\"card\" action=\"%s/tokens/%s\">",
	    r->base, v->id ? "edit" : "new");
	csrf_field(r);
	if (v->id)
		h(&r->out, "<input type=\"hidden\" name=\"id\" value=\"%L\">"
		    "<label>%s<input value=\"%s\" disabled></label>", v->id,
		    T(r, L_OWNER), v->owner);
	else
		h(&r->out, "<label>%s<input name=\"user\" required maxlength=\"191\" "
		    "value=\"%s\"></label>", T(r, L_OWNER), v->owner);
	h(&r->out, "<label>%s<input name=\"name\" required maxlength=\"191\" "
	    "value=\"%s\"></label>", T(r, L_NAME), v->name);
	h(&r->out, "<div class=\"row\"><label>%s<input name=\"quota\" type=\"number\" "
	    "min=\"0\" value=\"%L\"></label><label class=\"check\"><input "
	    "type=\"checkbox\" name=\"unlimited\" value=\"1\"%s>%s</label>"
	    "<label>%s<input name=\"expires\" type=\"datetime-local\" value=\"%s\">"
	    "<small>%s</small></label></div>", T(r, L_REMAIN), v->remain,
	    v->unlimited ? " checked" : "", T(r, L_UNLIMITED), T(r, L_EXPIRES),
	    v->expires_s, T(r, L_EXPIRES_HELP));
	h(&r->out, "<label>%s<textarea name=\"model_limits\" rows=\"3\" "
	    "spellcheck=\"false\">%s</textarea><small>%s</small></label>",
	    T(r, L_MODEL_LIMITS), v->models, T(r, L_MODEL_LIMITS_HELP));
	h(&r->out, "<label>%s<textarea name=\"allow_ips\" rows=\"3\" "
	    "spellcheck=\"false\">%s</textarea><small>%s</small></label>",
	    T(r, L_ALLOW_IPS), v->ips, T(r, L_ALLOW_IPS_HELP));
	limit_fields(r, &v->lim);
	h(&r->out, "<div class=\"actions\"><button type=\"submit\">%s</button>"
	    "<a class=\"btn ghost\" href=\"%s/tokens\">%s</a></div></form>",
	    T(r, L_SAVE), r->base, T(r, L_CANCEL));
	page_end(r);
}

/* 1 found, 0 not, -1 db error. */
static int
tok_load(struct req *r, long long id, struct tok_view *v)
{
	struct dbv	 a = DBI(id);

	memset(v, 0, sizeof(*v));
	if (db_run(r->db, AS_TOKEN_GET, &a, 1, tok_row, v, NULL) != DB_OK)
		return -1;
	return v->id > 0;
}

static int
load_or_fail(struct req *r, struct tok_view *v)
{
	long long	 id;
	int		 rc;

	if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1 || id == 0)
		return page_fail(r, 404, L_NO_SUCH, NULL);
	if ((rc = tok_load(r, id, v)) < 0)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	if (rc == 0)
		return page_fail(r, 404, L_NO_SUCH, NULL);
	return 0;
}

int
pg_token_form(struct req *r)
{
	struct tok_view	 v;
	int		 rc;

	memset(&v, 0, sizeof(v));
	v.remain = 500000;
	strlcpy_(v.owner, r->me.username, sizeof(v.owner));
	if (strcmp(r->path, "/tokens/edit") == 0 && (rc = load_or_fail(r, &v)))
		return rc;
	token_form(r, &v, NULL);
	return 200;
}

int
pg_token_save(struct req *r)
{
	struct tok_view	 v;
	struct limit_view was;
	struct buf	 errs;
	char		 msg[MSG_SZ], models[LIM_MODEL_LIMITS + 1] = "";
	char		 ips[LIM_ALLOW_IPS + 1] = "", bad[80];
	char		 key[49];
	const char	*s;
	long long	 id = 0, uid = 0, quota, unlimited, expires = -1;
	int		 rc;

	memset(&v, 0, sizeof(v));
	if (strcmp(r->path, "/tokens/edit") == 0) {
		if ((rc = load_or_fail(r, &v)))
			return rc;
		id = v.id;
	}
	buf_init(&errs, ERRS_MAX);
	s = field_text(r, &errs, F_NAME, L_NAME, 1);
	strlcpy_(v.name, s ? s : "", sizeof(v.name));
	if (id == 0) {
		s = field_text(r, &errs, F_USER, L_OWNER, 1);
		strlcpy_(v.owner, s ? s : "", sizeof(v.owner));
		if (s != NULL && (uid = user_id_by_name(r->store, s)) == 0)
			buf_printf(&errs, "%s：%s\n", T(r, L_NO_SUCH_USER), s);
		else if (uid < 0) {
			buf_free(&errs);
			return page_fail(r, 503, L_DB_ERROR, NULL);
		}
	}
	v.remain = quota = field_int(r, &errs, F_QUOTA, L_REMAIN, 0, 0, INT64_MAX / 2);
	v.unlimited = unlimited = field_int(r, &errs, F_UNLIMITED, L_UNLIMITED, 0, 0, 1);
	s = field_text(r, &errs, F_EXPIRES, L_EXPIRES, 0);
	strlcpy_(v.expires_s, s ? s : "", sizeof(v.expires_s));
	if (s != NULL && parse_datetime(s, &expires) == -1)
		buf_printf(&errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, L_EXPIRES));
	s = field_text(r, &errs, F_MODEL_LIMITS, L_MODEL_LIMITS, 0);
	strlcpy_(v.models, s ? s : "", sizeof(v.models));
	if (s != NULL && strspn(s, " \t\r\n,") != strlen(s) &&
	    check_models(s, models, sizeof(models), msg, sizeof(msg)) == -1)
		buf_printf(&errs, "%s%s\n", T(r, L_MODEL_LIMITS), msg);
	s = field_text(r, &errs, F_ALLOW_IPS, L_ALLOW_IPS, 0);
	strlcpy_(v.ips, s ? s : "", sizeof(v.ips));
	if (s != NULL && (rc = check_ips(s, ips, bad, sizeof(bad))) == -1)
		buf_printf(&errs, "%s%s\n", T(r, L_BAD_IP), bad);
	else if (s != NULL && rc == -2)
		too_long(r, &errs, L_ALLOW_IPS, LIM_ALLOW_IPS);
	was = v.lim;
	limit_read(r, &errs, &v.lim);

	if (errs.len == 0 && id == 0 &&
	    (v.id = token_create(r->store, uid, v.name, unlimited ? -1 : quota,
	    expires, models, ips, key, msg, sizeof(msg))) < 0) {
		buf_printf(&errs, "%s\n", msg);
		v.id = 0;
	}
	if (errs.len == 0 && id > 0 && token_update(r->store, id, v.name, quota,
	    unlimited, expires, models, ips) == -1)
		buf_printf(&errs, "%s\n", T(r, L_DB_ERROR));
	/* unchanged: no write, which would have every kept token re-read */
	if (errs.len == 0 && id > 0 && limit_changed(&was, &v.lim) &&
	    limits_set(r->store, LIMIT_TOKEN, id,
	    v.lim.in_flight, v.lim.tasks, v.lim.rpm) == -1)
		buf_printf(&errs, "%s\n", T(r, L_DB_ERROR));
	if (errs.len > 0) {
		token_form(r, &v, errs.p);
		buf_free(&errs);
		return 422;
	}
	buf_free(&errs);
	if (id > 0) {
		redirect(r, "/tokens", FL_SAVED);
		return 303;
	}
	log_info("admin: user %lld created a token", r->me.id);
	/*
	 * The only time the whole key is shown: shown even when its limits
	 * could not be written, which the page says.
	 */
	page_begin(r, L_ADD_TOKEN);
	if (limit_changed(&was, &v.lim) && limits_set(r->store, LIMIT_TOKEN,
	    v.id, v.lim.in_flight, v.lim.tasks, v.lim.rpm) == -1)
		msg_box(r, 0, T(r, L_DB_ERROR));
	msg_box(r, 1, T(r, L_TOKEN_CREATED));
	h(&r->out, "<div class=\"card\"><p><b>%s</b></p><div class=\"key\" "
	    "id=\"new-key\">sk-%s</div><p class=\"actions\"><a class=\"btn\" "
	    "href=\"%s/tokens\">%s</a></p></div>", v.name, key, r->base,
	    T(r, L_TOKENS));
	page_end(r);
	wipe(key, sizeof(key));
	return 200;
}

/* ---- the list ---- */

static int
list_row(void *arg, const struct dbv *c, size_t n)
{
	struct req	*r = arg;
	struct tok_view	 v;
	enum label	 st;
	const char	*badge;
	char		 t[32];

	memset(&v, 0, sizeof(v));
	tok_row(&v, c, n);
	if (v.status == 1 && v.expires != -1 && v.expires < now_s())
		st = L_EXPIRED, badge = "bad";
	else if (v.status == 1 && !v.unlimited && v.remain <= 0)
		st = L_EXHAUSTED, badge = "bad";
	else if (v.status == 1)
		st = L_ENABLED, badge = "on";
	else if (v.status == 3)
		st = L_EXPIRED, badge = "bad";
	else if (v.status == 4)
		st = L_EXHAUSTED, badge = "bad";
	else
		st = L_DISABLED, badge = "off";
	h(&r->out, "<tr><td class=\"num\">%L</td><td>%s</td><td>%s</td>"
	    "<td class=\"mono\">%s</td><td><span class=\"badge %s\">%s</span></td>",
	    v.id, v.name, v.owner, v.key_mask, badge, T(r, st));
	if (v.unlimited)
		h(&r->out, "<td class=\"num\">%s</td>", T(r, L_UNLIMITED));
	else
		h(&r->out, "<td class=\"num\">%L</td>", v.remain);
	if (v.expires == -1)
		strlcpy_(t, T(r, L_NEVER), sizeof(t));
	else
		fmt_time(v.expires, t, sizeof(t));
	h(&r->out, "<td class=\"num\">%L</td><td>%s</td><td>%s</td><td class=\"wrap\">%s</td>",
	    v.used, t, v.models, v.ips);
	limit_cell(r, &v.lim);
	h(&r->out, "<td class=\"ops\"><a class=\"btn ghost small\" "
	    "href=\"%s/tokens/edit?id=%L\">%s</a> ", r->base, v.id, T(r, L_EDIT));
	post_button(r, "/tokens/toggle", v.id, v.status == 1 ? 2 : 1,
	    v.status == 1 ? L_DISABLE : L_ENABLE, 0);
	post_button(r, "/tokens/delete", v.id, 0, L_DELETE, 1);
	h(&r->out, "</td></tr>");
	return 0;
}

int
pg_tokens(struct req *r)
{
	page_begin(r, L_TOKENS);
	h(&r->out, "<div class=\"toolbar\"><span></span><a class=\"btn\" "
	    "href=\"%s/tokens/new\">%s</a></div>", r->base, T(r, L_ADD_TOKEN));
	h(&r->out, "<table><thead><tr><th class=\"num\">ID</th><th>%s</th><th>%s</th>"
	    "<th>%s</th><th>%s</th><th class=\"num\">%s</th><th class=\"num\">%s</th>"
	    "<th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr></thead>"
	    "<tbody>", T(r, L_NAME), T(r, L_OWNER), T(r, L_TOKEN_KEY),
	    T(r, L_STATUS), T(r, L_REMAIN), T(r, L_USED_QUOTA), T(r, L_EXPIRES),
	    T(r, L_MODEL_LIMITS), T(r, L_ALLOW_IPS), T(r, L_LIMITS),
	    T(r, L_ACTIONS));
	if (table_rows(r, AS_TOKEN_LIST, NULL, 0, list_row, 12, L_NONE) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	page_end(r);
	return 200;
}

int
pg_token_toggle(struct req *r)
{
	long long	 id, st;

	if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1 || id == 0 ||
	    fint(r, F_STATUS, 0, 1, 2, &st) == -1 || st == 0)
		return page_fail(r, 400, L_BAD_REQUEST, NULL);
	if (token_set_status(r->store, id, st) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	redirect(r, "/tokens", FL_STATUS);
	return 303;
}

int
pg_token_delete(struct req *r)
{
	long long	 id;

	if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1 || id == 0)
		return page_fail(r, 400, L_BAD_REQUEST, NULL);
	if (token_delete(r->store, id) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	log_info("admin: user %lld deleted token %lld", r->me.id, id);
	redirect(r, "/tokens", FL_DELETED);
	return 303;
}
