/*
 * Users: list, add, edit display name, role, quota, group, status and
 * password. Roles are new-api's: 1 user, 10 admin, 100 root. Nobody grants
 * a role above their own or edits another user of their role or above.
 */
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "crypto.h"
#include "limitform.h"
#include "log.h"
#include "reply.h"
#include "request.h"
#include "session.h"
#include "sql.h"
#include "store.h"

static const struct {
	long long	 role;
	enum label	 label;
} roles[] = {
	{ 1, L_ROLE_COMMON },
	{ 10, L_ROLE_ADMIN },
	{ 100, L_ROLE_ROOT },
};

/* Big enough for any stored value and for any value the form may send. */
struct user_view {
	long long	 id, role, status, quota, used, requests;
	char		 username[LIM_BYTES(LIM_USERNAME)];
	char		 display[LIM_BYTES(LIM_DISPLAY_NAME)];
	char		 group[LIM_BYTES(LIM_USER_GROUP)];
	struct limit_view lim;
};

static enum label
role_label(long long role)
{
	size_t	 i;
	enum label l = L_ROLE_COMMON;

	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		if (role >= roles[i].role)
			l = roles[i].label;
	return l;
}

static int
user_row(void *arg, const struct dbv *c, size_t n)
{
	struct user_view	*v = arg;

	v->id = col_i(&c[0]);
	strlcpy_(v->username, col_s(&c[1]), sizeof(v->username));
	strlcpy_(v->display, col_s(&c[2]), sizeof(v->display));
	v->role = col_i(&c[3]);
	v->status = col_i(&c[4]);
	v->quota = col_i(&c[5]);
	v->used = col_i(&c[6]);
	v->requests = col_i(&c[7]);
	strlcpy_(v->group, col_s(&c[8]), sizeof(v->group));
	v->lim.in_flight = col_i(&c[9]);
	v->lim.tasks = col_i(&c[10]);
	v->lim.rpm = col_i(&c[11]);
	return 1;
}

static void
user_form(struct req *r, const struct user_view *v, const char *err)
{
	size_t	 i;

	page_begin(r, v->id ? L_EDIT_USER : L_ADD_USER);
	if (err != NULL && *err != '\0')
		msg_box(r, 0, err);
	h(&r->out, "<form method=\"post\" class=\"card\" action=\"%s/users/%s\">",
	    r->base, v->id ? "edit" : "new");
	csrf_field(r);
	if (v->id)
		h(&r->out, "<input type=\"hidden\" name=\"id\" value=\"%L\">"
		    "<label>%s<input value=\"%s\" disabled></label>"
		    "<label>%s<input type=\"password\" name=\"password\" "
		    "autocomplete=\"new-password\" maxlength=\"128\"></label>",
		    v->id, T(r, L_USERNAME), v->username, T(r, L_NEW_PASSWORD));
	else
		h(&r->out, "<label>%s<input name=\"username\" required maxlength=\"191\" "
		    "value=\"%s\"></label><label>%s<input type=\"password\" "
		    "name=\"password\" autocomplete=\"new-password\" required "
		    "minlength=\"8\" maxlength=\"128\"></label>", T(r, L_USERNAME),
		    v->username, T(r, L_PASSWORD));
	h(&r->out, "<label>%s<input name=\"display_name\" maxlength=\"191\" "
	    "value=\"%s\"></label><div class=\"row\"><label>%s<select name=\"role\">",
	    T(r, L_DISPLAY_NAME), v->display, T(r, L_ROLE));
	for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
		h(&r->out, "<option value=\"%L\"%s>%s</option>", roles[i].role,
		    roles[i].role == v->role ? " selected" : "",
		    T(r, roles[i].label));
	h(&r->out, "</select></label><label>%s<input name=\"quota\" type=\"number\" "
	    "min=\"0\" value=\"%L\"></label><label>%s<input name=\"group\" "
	    "maxlength=\"64\" value=\"%s\"></label><label>%s<select name=\"status\">"
	    "<option value=\"1\"%s>%s</option><option value=\"2\"%s>%s</option>"
	    "</select></label></div>", T(r, L_QUOTA), v->quota, T(r, L_GROUP),
	    v->group, T(r, L_STATUS), v->status == 1 ? " selected" : "",
	    T(r, L_ENABLED), v->status != 1 ? " selected" : "", T(r, L_DISABLED));
	limit_fields(r, &v->lim);
	h(&r->out, "<div class=\"actions\"><button type=\"submit\">%s</button>"
	    "<a class=\"btn ghost\" href=\"%s/users\">%s</a></div></form>",
	    T(r, L_SAVE), r->base, T(r, L_CANCEL));
	page_end(r);
}

static int
load_or_fail(struct req *r, struct user_view *v)
{
	long long	 id;
	struct dbv	 a;

	memset(v, 0, sizeof(*v));
	if (fint(r, F_ID, 0, 1, INT64_MAX, &id) == -1 || id == 0)
		return page_fail(r, 404, L_NO_SUCH, NULL);
	a = DBI(id);
	if (db_run(r->db, AS_USER_GET, &a, 1, user_row, v, NULL) != DB_OK)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	if (v->id == 0)
		return page_fail(r, 404, L_NO_SUCH, NULL);
	return 0;
}

int
pg_user_form(struct req *r)
{
	struct user_view	 v;
	int			 rc;

	memset(&v, 0, sizeof(v));
	v.role = 1;
	v.status = 1;
	strlcpy_(v.group, "default", sizeof(v.group));
	if (strcmp(r->path, "/users/edit") == 0 && (rc = load_or_fail(r, &v)))
		return rc;
	user_form(r, &v, NULL);
	return 200;
}

int
pg_user_save(struct req *r)
{
	struct user_view	 v;
	struct limit_view	 was;
	struct buf		 errs;
	char			 msg[MSG_SZ], group[LIM_USER_GROUP + 1], hash[128];
	const char		*s, *pw;
	long long		 id = 0;
	int			 rc;

	memset(&v, 0, sizeof(v));
	if (strcmp(r->path, "/users/edit") == 0) {
		if ((rc = load_or_fail(r, &v)))
			return rc;
		id = v.id;
	}
	buf_init(&errs, ERRS_MAX);
	if (id > 0 && v.id != r->me.id && v.role >= r->me.role && r->me.role < 100)
		buf_printf(&errs, "%s\n", T(r, L_ROLE_TOO_HIGH));
	if (id == 0) {
		s = field_text(r, &errs, F_USERNAME, L_USERNAME, 1);
		strlcpy_(v.username, s ? s : "", sizeof(v.username));
	}
	pw = field_text(r, &errs, F_PASSWORD, L_PASSWORD, id == 0);
	s = field_text(r, &errs, F_DISPLAY, L_DISPLAY_NAME, 0);
	strlcpy_(v.display, s ? s : "", sizeof(v.display));
	v.role = field_int(r, &errs, F_ROLE, L_ROLE, 1, 1, 100);
	if (v.role > r->me.role)
		buf_printf(&errs, "%s\n", T(r, L_ROLE_TOO_HIGH));
	v.quota = field_int(r, &errs, F_QUOTA, L_QUOTA, 0, 0, INT64_MAX / 2);
	v.status = field_int(r, &errs, F_STATUS, L_STATUS, 1, 1, 2);
	s = field_text(r, &errs, F_GROUP, L_GROUP, 0);
	strlcpy_(v.group, s ? s : "", sizeof(v.group));
	if (check_groups(v.group, group, sizeof(group), msg, sizeof(msg)) == -1 ||
	    strchr(group, ',') != NULL)
		buf_printf(&errs, "%s%s\n", T(r, L_FIELD_BAD), T(r, L_GROUP));
	was = v.lim;
	limit_read(r, &errs, &v.lim);
	if (id == 0 && errs.len == 0) {
		if ((id = user_create(r->store, v.username, pw, v.role, v.quota,
		    group, msg, sizeof(msg))) < 0) {
			buf_printf(&errs, "%s\n", msg);
			id = 0;
		} else
			pw = NULL;	/* set with the row */
	}
	if (errs.len == 0 && pw != NULL && strlen(pw) < 8)
		buf_printf(&errs, "%s\n", "密码至少 8 个字符 (at least 8 characters)");
	else if (errs.len == 0 && pw != NULL && strlen(pw) > PASSWORD_MAX)
		too_long(r, &errs, L_PASSWORD, PASSWORD_MAX);
	if (errs.len == 0 && user_update(r->store, id, *v.display ? v.display :
	    v.username, v.role, v.quota, group, v.status) == -1)
		buf_printf(&errs, "%s\n", T(r, L_DB_ERROR));
	/* unchanged: no write, which would have every kept token re-read */
	if (errs.len == 0 && limit_changed(&was, &v.lim) &&
	    limits_set(r->store, LIMIT_USER, id,
	    v.lim.in_flight, v.lim.tasks, v.lim.rpm) == -1)
		buf_printf(&errs, "%s\n", T(r, L_DB_ERROR));
	if (errs.len == 0 && pw != NULL) {
		if (password_hash(pw, hash, sizeof(hash)) == -1)
			buf_printf(&errs, "%s\n", T(r, L_SERVER_ERROR));
		else if (user_set_password(r->store, id, hash) == -1)
			buf_printf(&errs, "%s\n", T(r, L_DB_ERROR));
	}
	if (errs.len > 0) {
		if (strcmp(r->path, "/users/new") == 0)
			v.id = 0;
		user_form(r, &v, errs.p);
		buf_free(&errs);
		return 422;
	}
	buf_free(&errs);
	/*
	 * Saving a user ends the user's other sessions when the password,
	 * role or status changed (the session stamp); this one, when it is
	 * the user's own, goes on with a new cookie.
	 */
	if (id == r->me.id && session_renew(r) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	log_info("admin: user %lld saved user %lld", r->me.id, id);
	redirect(r, "/users", FL_SAVED);
	return 303;
}

static int
list_row(void *arg, const struct dbv *c, size_t n)
{
	struct req		*r = arg;
	struct user_view	 v;

	memset(&v, 0, sizeof(v));
	user_row(&v, c, n);
	h(&r->out, "<tr><td class=\"num\">%L</td><td>%s</td><td>%s</td><td>%s</td>"
	    "<td><span class=\"badge %s\">%s</span></td><td>%s</td>"
	    "<td class=\"num\">%L</td><td class=\"num\">%L</td><td class=\"num\">%L</td>",
	    v.id, v.username, v.display, T(r, role_label(v.role)),
	    v.status == 1 ? "on" : "off", T(r, v.status == 1 ? L_ENABLED : L_DISABLED),
	    v.group, v.quota, v.used, v.requests);
	limit_cell(r, &v.lim);
	h(&r->out, "<td class=\"ops\"><a class=\"btn ghost small\" "
	    "href=\"%s/users/edit?id=%L\">%s</a></td></tr>", r->base, v.id,
	    T(r, L_EDIT));
	return 0;
}

int
pg_users(struct req *r)
{
	page_begin(r, L_USERS);
	h(&r->out, "<div class=\"toolbar\"><span></span><a class=\"btn\" "
	    "href=\"%s/users/new\">%s</a></div>", r->base, T(r, L_ADD_USER));
	h(&r->out, "<table><thead><tr><th class=\"num\">ID</th><th>%s</th><th>%s</th>"
	    "<th>%s</th><th>%s</th><th>%s</th><th class=\"num\">%s</th>"
	    "<th class=\"num\">%s</th><th class=\"num\">%s</th><th>%s</th><th>%s</th>"
	    "</tr></thead><tbody>", T(r, L_USERNAME), T(r, L_DISPLAY_NAME),
	    T(r, L_ROLE), T(r, L_STATUS), T(r, L_GROUP), T(r, L_QUOTA),
	    T(r, L_USED_QUOTA), T(r, L_REQUESTS), T(r, L_LIMITS), T(r, L_ACTIONS));
	if (table_rows(r, AS_USER_LIST, NULL, 0, list_row, 11, L_NONE) == -1)
		return page_fail(r, 503, L_DB_ERROR, NULL);
	page_end(r);
	return 200;
}
