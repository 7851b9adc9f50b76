#include <stdio.h>
#include <string.h>

#include "price.h"
#include "route.h"
#include "store.h"
#include "util.h"

/*
 * A price rule as an operator types it, checked once for the admin form
 * and bltcy-ctl (price.h), and the rules' rows in bltcy_price_rules. The
 * messages name the field and the form it takes, in Chinese and English,
 * as the other form checks of store.c do.
 */

#define NOTE_MAX	255	/* characters: bltcy_price_rules.note */

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

/* [A-Za-z0-9._:/-]{1,64}: what new-api's model names are made of. */
static int
model_ok(const char *s)
{
	size_t	 n = strlen(s);

	return n >= 1 && n < sizeof(((struct price_rule *)0)->model) &&
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789._:/-") == n;
}

/* Dotted names of [A-Za-z0-9_], none empty, at most PRICE_FIELD_MAX bytes. */
static int
field_ok(const char *s)
{
	size_t	 n = strlen(s), i, seg = 0;

	if (n == 0 || n > PRICE_FIELD_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (seg == 0)
				return 0;
			seg = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_')
			seg++;
		else
			return 0;
	}
	return seg > 0;
}

/*
 * "1", "1.5", "0.0001", "1000": a decimal of at most four places, from 0
 * to 1000, in ten-thousandths. No sign, no exponent, no blank. 0 or -1.
 */
static int
mult_parse(const char *s, long long *out)
{
	long long	 v = 0, frac = 0;
	size_t		 i = 0, d;

	for (d = 0; s[i] >= '0' && s[i] <= '9'; i++, d++) {
		if (d >= 4)
			return -1;	/* 1000 has four digits */
		v = v * 10 + (s[i] - '0');
	}
	if (d == 0)
		return -1;
	if (s[i] == '.') {
		for (i++, d = 0; s[i] >= '0' && s[i] <= '9'; i++, d++) {
			if (d >= 4)
				return -1;
			frac = frac * 10 + (s[i] - '0');
		}
		if (d == 0)
			return -1;
		for (; d < 4; d++)
			frac *= 10;
	}
	if (s[i] != '\0')
		return -1;
	v = v * MULT_ONE + frac;
	if (v > MULT_MAX)
		return -1;
	*out = v;
	return 0;
}

int
price_rule_check(const char *service, const char *model, const char *field,
    const char *value, const char *multiplier, const char *surcharge,
    const char *note, struct price_rule *out, char *msg, size_t msgsz)
{
	struct price_rule	 r;

	service = nz(service);
	model = nz(model);
	field = nz(field);
	value = nz(value);
	multiplier = nz(multiplier);
	surcharge = nz(surcharge);
	note = nz(note);
	memset(&r, 0, sizeof(r));

	if (*service == '\0' || !service_known(service)) {
		snprintf(msg, msgsz, "服务必须是已配置的服务之一：%s（Service: one "
		    "of the configured services）", service_list());
		return -1;
	}
	if (*model != '\0' && !model_ok(model)) {
		snprintf(msg, msgsz, "模型留空表示任意模型，否则为 1 到 64 个字母、"
		    "数字或 . _ : / -，如 kling-v1-6（Model: empty for any, or 1 "
		    "to 64 of letters, digits and . _ : / -, e.g. kling-v1-6）");
		return -1;
	}
	if (*field != '\0' && !field_ok(field)) {
		snprintf(msg, msgsz, "字段留空表示每个请求，否则为以 . 分隔的名称"
		    "（字母、数字、_），最多 64 字节，如 duration 或 "
		    "input.mode（Field: empty for every request, or dotted names "
		    "of letters, digits and _, at most 64 bytes, e.g. duration or "
		    "input.mode）");
		return -1;
	}
	if (*field == '\0' && *value != '\0') {
		snprintf(msg, msgsz, "没有字段时值必须留空（Value: empty when "
		    "there is no field）");
		return -1;
	}
	if (*field != '\0' && !printable_ascii(value, PRICE_FIELD_MAX)) {
		snprintf(msg, msgsz, "值必须是 1 到 64 个可打印的 ASCII 字符，如 "
		    "10 或 pro（Value: 1 to 64 printable ASCII characters, e.g. "
		    "10 or pro）");
		return -1;
	}
	if (*multiplier == '\0')
		r.mult_e4 = MULT_ONE;
	else if (mult_parse(multiplier, &r.mult_e4) == -1) {
		snprintf(msg, msgsz, "倍率必须是 0 到 1000 之间的数字，最多 4 位"
		    "小数，如 1.5（Multiplier: a number from 0 to 1000 with at "
		    "most 4 decimals, e.g. 1.5）");
		return -1;
	}
	/* digits only: strtoll would take a sign too */
	if (*surcharge != '\0' && (strspn(surcharge, "0123456789") !=
	    strlen(surcharge) ||
	    parse_ll(surcharge, 0, SURCHARGE_MAX, &r.surcharge) == -1)) {
		snprintf(msg, msgsz, "附加额度必须是 0 到 %lld 之间的整数，如 500"
		    "（Surcharge: a whole number of quota from 0 to %lld, e.g. "
		    "500）", SURCHARGE_MAX, SURCHARGE_MAX);
		return -1;
	}
	if (r.mult_e4 == MULT_ONE && r.surcharge == 0) {
		snprintf(msg, msgsz, "规则必须改变价格：倍率不为 1 或附加额度大于 0"
		    "（A rule must change the price: a multiplier other than 1 "
		    "or a surcharge above 0）");
		return -1;
	}
	if (check_line("备注 (note) ", note, NOTE_MAX, msg, msgsz) == -1)
		return -1;
	strlcpy_(r.service, service, sizeof(r.service));
	strlcpy_(r.model, model, sizeof(r.model));
	strlcpy_(r.field, field, sizeof(r.field));
	strlcpy_(r.value, value, sizeof(r.value));
	strlcpy_(r.note, note, sizeof(r.note));
	*out = r;
	return 0;
}

/* ---- the rows ---- */

struct room {
	long long	 rules, fields, on_field;
};

static int
room_row(void *arg, const struct dbv *c, size_t n)
{
	struct room	*r = arg;

	r->rules = c[0].t == DBV_INT ? c[0].i : 0;
	r->fields = c[1].t == DBV_INT ? c[1].i : 0;
	r->on_field = c[2].t == DBV_INT ? c[2].i : 0;
	return 1;
}

/*
 * The relay loads PRICE_RULES_MAX rules and reads PRICE_FIELDS_MAX fields
 * of a service: a rule past either would never apply, so it is refused
 * here, with what to do instead.
 */
static void
limit_msg(const struct price_rule *r, const struct room *rm, char *msg,
    size_t msgsz)
{
	if (rm->rules >= PRICE_RULES_MAX)
		snprintf(msg, msgsz, "价格规则已达上限 %d 条，再多的规则不会生效，"
		    "请先删除不用的规则（at most %d price rules: one more would "
		    "never apply; delete one first）", PRICE_RULES_MAX,
		    PRICE_RULES_MAX);
	else
		snprintf(msg, msgsz, "服务 %s 的规则已用到 %d 个不同字段，新字段 "
		    "%s 的规则不会生效，请用已有的字段或先删除规则（service %s "
		    "has rules on %d fields, the most a price reads: a rule on "
		    "another field would never apply; use one of its fields or "
		    "delete rules first）", r->service, PRICE_FIELDS_MAX, r->field,
		    r->service, PRICE_FIELDS_MAX);
}

long long
price_rule_insert(struct db *db, const struct price_rule *r, char *msg,
    size_t msgsz)
{
	struct dbv		 a[13];
	struct room		 rm;
	unsigned long long	 aff = 0;

	memset(&rm, 0, sizeof(rm));
	a[0] = DBS(r->service);
	a[1] = DBS(r->service);
	a[2] = DBS(r->field);
	if (db_run(db, SS_PRICE_RULE_ROOM, a, 3, room_row, &rm, NULL) != DB_OK) {
		snprintf(msg, msgsz, "数据库错误：%s", db_error(db));
		return -1;
	}
	if (rm.rules >= PRICE_RULES_MAX || (r->field[0] != '\0' &&
	    rm.on_field == 0 && rm.fields >= PRICE_FIELDS_MAX)) {
		limit_msg(r, &rm, msg, msgsz);
		return -1;
	}
	a[0] = DBS(r->service);
	a[1] = DBS(r->model);
	a[2] = DBS(r->field);
	a[3] = DBS(r->value);
	a[4] = DBI(r->mult_e4);
	a[5] = DBI(r->surcharge);
	a[6] = DBS(r->note);
	a[7] = DBI(PRICE_RULES_MAX);
	a[8] = DBS(r->field);
	a[9] = DBS(r->service);
	a[10] = DBS(r->field);
	a[11] = DBS(r->service);
	a[12] = DBI(PRICE_FIELDS_MAX);
	if (db_run(db, SS_PRICE_RULE_INSERT, a, 13, NULL, NULL, &aff) != DB_OK) {
		if (db_errno(db) == 1062)
			snprintf(msg, msgsz, "已有同一服务、模型、字段和值的规则，"
			    "请先删除它（a rule for this service, model, field "
			    "and value exists: delete it first）");
		else
			snprintf(msg, msgsz, "数据库错误：%s", db_error(db));
		return -1;
	}
	if (aff == 0) {		/* another insert took the room meanwhile */
		a[0] = DBS(r->service);
		a[1] = DBS(r->service);
		a[2] = DBS(r->field);
		if (db_run(db, SS_PRICE_RULE_ROOM, a, 3, room_row, &rm,
		    NULL) != DB_OK)
			rm.rules = PRICE_RULES_MAX;
		limit_msg(r, &rm, msg, msgsz);
		return -1;
	}
	return (long long)db_insert_id(db);
}

int
price_rule_delete(struct db *db, long long id, char *msg, size_t msgsz)
{
	struct dbv		 a = DBI(id);
	unsigned long long	 aff = 0;

	if (db_run(db, SS_PRICE_RULE_DELETE, &a, 1, NULL, NULL, &aff) != DB_OK) {
		snprintf(msg, msgsz, "数据库错误：%s", db_error(db));
		return -1;
	}
	if (aff == 0) {
		snprintf(msg, msgsz, "没有编号为 %lld 的规则（no rule %lld）", id,
		    id);
		return 1;
	}
	return 0;
}

struct list_arg {
	price_rule_fn	 fn;
	void		*arg;
};

static void
copy_col(char *out, size_t outsz, const struct dbv *c)
{
	strlcpy_(out, c->t == DBV_STR && c->s != NULL ? c->s : "", outsz);
}

static int
list_row(void *arg, const struct dbv *c, size_t n)
{
	struct list_arg		*l = arg;
	struct price_rule	 r;

	memset(&r, 0, sizeof(r));
	r.id = c[0].i;
	copy_col(r.service, sizeof(r.service), &c[1]);
	copy_col(r.model, sizeof(r.model), &c[2]);
	copy_col(r.field, sizeof(r.field), &c[3]);
	copy_col(r.value, sizeof(r.value), &c[4]);
	r.mult_e4 = c[5].t == DBV_INT ? c[5].i : MULT_ONE;
	r.surcharge = c[6].t == DBV_INT ? c[6].i : 0;
	copy_col(r.note, sizeof(r.note), &c[7]);
	return l->fn(l->arg, &r);
}

int
price_rule_list(struct db *db, price_rule_fn fn, void *arg)
{
	struct list_arg	 l = { fn, arg };

	return db_run(db, SS_PRICE_RULE_LIST, NULL, 0, list_row, &l, NULL) ==
	    DB_OK ? 0 : -1;
}
