/*
 * Prices: what each service's base comes from (the PassthroughQuota of
 * each enabled channel serving it, new-api's ModelPrice), and our rules
 * on top (bltcy_price_rules), with a form to add one and a button to
 * delete each. The rules' check and rows are common/pricerule.c's,
 * shared with bltcy-ctl; how they apply is common/price.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "log.h"
#include "price.h"
#include "reply.h"
#include "request.h"
#include "route.h"
#include "setting.h"
#include "sql.h"
#include "store.h"

#define PRICE_CHANNELS_MAX	500	/* channels the base table lists */

/* A rule as the form shows it: what was typed, or empty. */
struct rule_view {
	const char	*service, *model, *field, *value, *multiplier;
	const char	*surcharge, *note;
};

struct chan_base {
	long long	 id, quota;
	char		 name[LIM_BYTES(LIM_CHANNEL_NAME)];
	char		 models[1024];
	int		 bad;		/* its setting does not parse */
};

struct base_load {
	struct chan_base	*ch;
	size_t			 n;
	struct prices		 p;
	char			 bad_option[32];	/* one that did not parse */
	char			 bad_entry[128];	/* an entry left out */
};

static int
option_row(void *arg, const struct dbv *c, size_t n)
{
	struct base_load	*l = arg;
	const char		*k = col_s(&c[0]);
	char			 why[64];

	switch (price_option(&l->p, k, col_s(&c[1]), why, sizeof(why))) {
	case -1:
		strlcpy_(l->bad_option, k, sizeof(l->bad_option));
		break;
	case 1:
		snprintf(l->bad_entry, sizeof(l->bad_entry), "%s: %s", k, why);
		break;
	}
	return 0;
}

static int
channel_row(void *arg, const struct dbv *c, size_t n)
{
	struct base_load	*l = arg;
	struct chan_base	*b;
	struct chan_setting	 s;
	char			 err[128];

	if (l->n >= PRICE_CHANNELS_MAX)
		return 1;
	b = &l->ch[l->n++];
	b->id = col_i(&c[0]);
	strlcpy_(b->name, col_s(&c[1]), sizeof(b->name));
	strlcpy_(b->models, col_s(&c[2]), sizeof(b->models));
	b->bad = setting_parse(col_s(&c[3]), &s, err, sizeof(err)) == -1;
	b->quota = s.quota;
	return 0;
}

/* new-api's int(price x QuotaPerUnit x ratio), as price.c works it out. */
static long long
quota_of(const struct prices *p, double usd, double ratio)
{
	long double	 q = (long double)usd * (long double)p->quota_per_unit *
			    (long double)ratio;

	if (q < 0)
		return 0;
	return q >= (long double)(INT64_MAX / 2) ? INT64_MAX / 2 : (long long)q;
}

static void
base_table(struct req *r, const struct base_load *l)
{
	const char	*p = service_list();
	double		 usd;
	size_t		 i, k;
	int		 any;

	h(&r->out, "<h2>%s</h2><p class=\"help\">%s</p>", T(r, L_BASE_PRICES),
	    T(r, L_BASE_HELP));
	h(&r->out, "<table id=\"base-prices\"><thead><tr><th>%s</th><th>%s</th>"
	    "<th class=\"num\">%s</th></tr></thead><tbody>", T(r, L_SERVICE),
	    T(r, L_SOURCE), T(r, L_QUOTA_PER_CALL));
	while (*p != '\0') {
		size_t	 n = strcspn(p, ",");
		char	 svc[SERVICE_NAME_MAX];

		if (n == 0 || n >= sizeof(svc)) {
			p += n + (p[n] == ',');
			continue;
		}
		memcpy(svc, p, n);
		svc[n] = '\0';
		p += n + (p[n] == ',');
		any = 0;
		for (k = 0; k < l->p.model_price.n; k++) {
			if (strcmp(l->p.model_price.name[k], svc) != 0)
				continue;
			usd = l->p.model_price.v[k];
			h(&r->out, "<tr><td>%s</td><td>ModelPrice %s</td>"
			    "<td class=\"num\">%L</td></tr>", svc, svc,
			    quota_of(&l->p, usd, 1));
			any = 1;
		}
		for (i = 0; i < l->n; i++) {
			if (!list_has(l->ch[i].models, ',', svc, strlen(svc)))
				continue;
			h(&r->out, "<tr><td>%s</td><td><a href=\"%s/channels/edit?id=%L\">"
			    "#%L %s</a> <span class=\"muted\">PassthroughQuota%s</span>"
			    "</td><td class=\"num\">%L</td></tr>", svc, r->base,
			    l->ch[i].id, l->ch[i].id, l->ch[i].name,
			    l->ch[i].bad ? " ?" : "", l->ch[i].quota);
			any = 1;
		}
		if (!any)
			h(&r->out, "<tr><td>%s</td><td class=\"muted\">%s</td><td></td>"
			    "</tr>", svc, T(r, L_NO_CHANNEL));
	}
	h(&r->out, "</tbody></table>");
}

static void
model_price_table(struct req *r, const struct base_load *l)
{
	const struct price_map	*mp = &l->p.model_price, *gr = &l->p.group_ratio;
	char			 qpu[32];
	size_t			 i, g;

	snprintf(qpu, sizeof(qpu), "%.0f", l->p.quota_per_unit);
	h(&r->out, "<h2>%s</h2><p class=\"help\">QuotaPerUnit = %s</p>",
	    T(r, L_MODEL_PRICES), qpu);
	if (l->bad_option[0] != '\0') {
		char	 t[256];

		snprintf(t, sizeof(t), "%s%s", T(r, L_OPTION_BAD), l->bad_option);
		msg_box(r, 0, t);
	}
	if (l->bad_entry[0] != '\0') {
		char	 t[384];

		snprintf(t, sizeof(t), "%s%s", T(r, L_OPTION_ENTRY_BAD),
		    l->bad_entry);
		msg_box(r, 0, t);
	}
	h(&r->out, "<table id=\"model-prices\"><thead><tr><th>%s</th>"
	    "<th class=\"num\">%s</th><th class=\"num\">%s</th><th>%s</th></tr>"
	    "</thead><tbody>", T(r, L_MODEL), T(r, L_USD_PER_CALL),
	    T(r, L_QUOTA_PER_CALL), T(r, L_BY_GROUP));
	for (i = 0; i < mp->n; i++) {
		char	 usd[48];

		snprintf(usd, sizeof(usd), "%.6g", mp->v[i]);
		h(&r->out, "<tr><td class=\"mono\">%s</td><td class=\"num\">%s</td>"
		    "<td class=\"num\">%L</td><td>", mp->name[i], usd,
		    quota_of(&l->p, mp->v[i], 1));
		for (g = 0; g < gr->n; g++) {
			char	 ratio[32];

			snprintf(ratio, sizeof(ratio), "%.6g", gr->v[g]);
			h(&r->out, "<span class=\"tag\">%s x%s = %L</span>",
			    gr->name[g], ratio, quota_of(&l->p, mp->v[i],
			    gr->v[g] < 0 ? 1 : gr->v[g]));
		}
		h(&r->out, "</td></tr>");
	}
	if (mp->n == 0)
		h(&r->out, "<tr><td colspan=\"4\" class=\"muted\">%s</td></tr>",
		    T(r, L_NONE));
	h(&r->out, "</tbody></table>");
}

static int
rule_row(void *arg, const struct price_rule *pr)
{
	struct req	*r = arg;
	char		 m[32];

	price_mult_text(pr->mult_e4, m, sizeof(m));
	h(&r->out, "<tr><td class=\"num\">%L</td><td>%s</td>", pr->id,
	    pr->service);
	if (pr->model[0] != '\0')
		h(&r->out, "<td class=\"mono\">%s</td>", pr->model);
	else
		h(&r->out, "<td class=\"muted\">%s</td>", T(r, L_ANY_MODEL));
	if (pr->field[0] != '\0')
		h(&r->out, "<td class=\"mono\">%s=%s</td>", pr->field, pr->value);
	else
		h(&r->out, "<td class=\"muted\">%s</td>", T(r, L_EVERY_REQUEST));
	h(&r->out, "<td class=\"num\">x%s</td><td class=\"num\">+%L</td>"
	    "<td class=\"wrap\">%s</td><td class=\"ops\">", m, pr->surcharge,
	    pr->note);
	post_button(r, "/prices/delete", pr->id, 0, L_DELETE, 1);
	h(&r->out, "</td></tr>");
	return 0;
}

static void
rule_form(struct req *r, const struct rule_view *v)
{

	h(&r->out, "<h2>%s</h2><form method=\"post\" class=\"card\" id=\"add-rule\" "
	    "action=\"%s/prices/new\">", T(r, L_ADD_RULE), r->base);
	csrf_field(r);
	h(&r->out, "<div class=\"row\"><label>%s<select name=\"service\">",
	    T(r, L_SERVICE));
	service_options(r, v->service);
	h(&r->out, "</select></label><label>%s<input name=\"model\" value=\"%s\">"
	    "<small>%s</small></label></div>", T(r, L_MODEL), v->model,
	    T(r, L_RULE_MODEL_HELP));
	h(&r->out, "<div class=\"row\"><label>%s<input name=\"field\" value=\"%s\" "
	    "spellcheck=\"false\"><small>%s</small></label><label>%s<input "
	    "name=\"value\" value=\"%s\" spellcheck=\"false\"></label></div>",
	    T(r, L_FIELD), v->field, T(r, L_RULE_FIELD_HELP), T(r, L_VALUE),
	    v->value);
	h(&r->out, "<div class=\"row\"><label>%s<input name=\"multiplier\" "
	    "inputmode=\"decimal\" value=\"%s\"><small>%s</small></label><label>%s"
	    "<input name=\"surcharge\" inputmode=\"numeric\" value=\"%s\"><small>%s"
	    "</small></label></div>", T(r, L_MULTIPLIER), v->multiplier,
	    T(r, L_MULT_HELP), T(r, L_SURCHARGE), v->surcharge,
	    T(r, L_SURCHARGE_HELP));
	h(&r->out, "<label>%s<input name=\"note\" maxlength=\"255\" value=\"%s\">"
	    "</label><div class=\"actions\"><button type=\"submit\">%s</button>"
	    "</div></form>", T(r, L_NOTE), v->note, T(r, L_ADD_RULE));
}

/* The whole page; err (a failed add) above the form, which keeps v. */
static int
price_page(struct req *r, const struct rule_view *v, const char *err)
{
	struct base_load	 l;
	int			 rc = 503;

	memset(&l, 0, sizeof(l));
	l.p.quota_per_unit = QUOTA_PER_UNIT;
	if ((l.ch = calloc(PRICE_CHANNELS_MAX, sizeof(*l.ch))) == NULL)
		return page_fail(r, 500, L_SERVER_ERROR, NULL);
	if (db_run(r->db, AS_PRICE_OPTIONS, NULL, 0, option_row, &l,
	    NULL) != DB_OK ||
	    db_run(r->db, AS_PRICE_CHANNELS, NULL, 0, channel_row, &l,
	    NULL) != DB_OK)
		goto dberr;
	page_begin(r, L_PRICES);
	if (err != NULL)
		msg_box(r, 0, err);
	base_table(r, &l);
	model_price_table(r, &l);
	h(&r->out, "<h2>%s</h2><p class=\"help\">%s</p>", T(r, L_RULES),
	    T(r, L_RULES_HELP));
	h(&r->out, "<table id=\"rules\"><thead><tr><th class=\"num\">ID</th>"
	    "<th>%s</th><th>%s</th><th>%s</th><th class=\"num\">%s</th>"
	    "<th class=\"num\">%s</th><th>%s</th><th>%s</th></tr></thead><tbody>",
	    T(r, L_SERVICE), T(r, L_MODEL), T(r, L_FIELD), T(r, L_MULTIPLIER),
	    T(r, L_SURCHARGE), T(r, L_NOTE), T(r, L_ACTIONS));
	{
		size_t	 mark = r->out.b.len;

		if (price_rule_list(r->store, rule_row, r) == -1)
			goto dberr;
		if (r->out.b.len == mark)
			h(&r->out, "<tr><td colspan=\"8\" class=\"muted\">%s</td></tr>",
			    T(r, L_NONE));
	}
	h(&r->out, "</tbody></table>");
	rule_form(r, v);
	page_end(r);
	rc = err != NULL ? 422 : 200;
	free(l.ch);
	prices_free(&l.p);
	return rc;
dberr:
	free(l.ch);
	prices_free(&l.p);
	return page_fail(r, 503, L_DB_ERROR, NULL);
}

int
pg_prices(struct req *r)
{
	struct rule_view	 v = { NULL, "", "", "", "", "", "" };

	return price_page(r, &v, NULL);
}

int
pg_price_add(struct req *r)
{
	struct rule_view	 v;
	struct price_rule	 pr;
	struct buf		 errs;
	char			 msg[MSG_SZ];
	long long		 id;
	int			 rc;

	buf_init(&errs, ERRS_MAX);
	v.service = field_text(r, &errs, F_SERVICE, L_SERVICE, 1);
	v.model = field_text(r, &errs, F_MODEL, L_MODEL, 0);
	v.field = field_text(r, &errs, F_FIELD, L_FIELD, 0);
	v.value = field_text(r, &errs, F_VALUE, L_VALUE, 0);
	v.multiplier = field_text(r, &errs, F_MULTIPLIER, L_MULTIPLIER, 0);
	v.surcharge = field_text(r, &errs, F_SURCHARGE, L_SURCHARGE, 0);
	v.note = field_text(r, &errs, F_NOTE, L_NOTE, 0);
	if (errs.len == 0 && price_rule_check(v.service, v.model, v.field,
	    v.value, v.multiplier, v.surcharge, v.note, &pr, msg,
	    sizeof(msg)) == -1)
		buf_printf(&errs, "%s\n", msg);
	if (errs.len == 0 &&
	    (id = price_rule_insert(r->store, &pr, msg, sizeof(msg))) < 0)
		buf_printf(&errs, "%s\n", msg);
	if (errs.len > 0) {
		/* the values as typed, "" for what was not sent */
		v.model = v.model ? v.model : "";
		v.field = v.field ? v.field : "";
		v.value = v.value ? v.value : "";
		v.multiplier = v.multiplier ? v.multiplier : "";
		v.surcharge = v.surcharge ? v.surcharge : "";
		v.note = v.note ? v.note : "";
		rc = price_page(r, &v, errs.p);
		buf_free(&errs);
		return rc;
	}
	buf_free(&errs);
	log_info("admin: user %lld added price rule %lld", r->me.id, id);
	redirect(r, "/prices", FL_SAVED);
	return 303;
}

int
pg_price_delete(struct req *r)
{
	char		 msg[MSG_SZ];
	long long	 id;
	int		 rc;

	if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1 || id == 0)
		return page_fail(r, 400, L_BAD_REQUEST, NULL);
	if ((rc = price_rule_delete(r->store, id, msg, sizeof(msg))) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	if (rc == 1)
		return page_fail(r, 404, L_NO_SUCH, NULL);
	log_info("admin: user %lld deleted price rule %lld", r->me.id, id);
	redirect(r, "/prices", FL_DELETED);
	return 303;
}
