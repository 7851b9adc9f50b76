/*
 * The limits of a token or a user on its page: what the operator sets is
 * written by common/store.c (limits_set); the relay reads it with the
 * token.
 */
#include <stdio.h>

#include "limitform.h"
#include "reply.h"
#include "request.h"
#include "store.h"

static const struct {
	enum field	 f;
	enum label	 label;
} limit_fields_[3] = {
	{ F_IN_FLIGHT, L_IN_FLIGHT },
	{ F_TASKS, L_OPEN_TASKS },
	{ F_RPM, L_RPM },
};

static long long *
value_of(struct limit_view *v, size_t i)
{
	return i == 0 ? &v->in_flight : i == 1 ? &v->tasks : &v->rpm;
}

void
limit_fields(struct req *r, const struct limit_view *v)
{
	struct limit_view	 c = *v;
	size_t			 i;

	h(&r->out, "<fieldset class=\"limits\"><legend>%s</legend>"
	    "<div class=\"row\">", T(r, L_LIMITS));
	for (i = 0; i < 3; i++)
		h(&r->out, "<label>%s<input name=\"%s\" type=\"number\" min=\"0\" "
		    "max=\"%L\" value=\"%L\"></label>", T(r, limit_fields_[i].label),
		    fields[limit_fields_[i].f].name, LIMIT_MAX, *value_of(&c, i));
	h(&r->out, "</div><small>%s</small></fieldset>", T(r, L_LIMITS_HELP));
}

void
limit_read(const struct req *r, struct buf *errs, struct limit_view *v)
{
	const char	*raw;
	size_t		 i;
	long long	*p;

	for (i = 0; i < 3; i++) {
		p = value_of(v, i);
		raw = r->method == M_POST ? r->f.v[limit_fields_[i].f] : NULL;
		if (raw != NULL && *raw == '\0' && !fbad(r, limit_fields_[i].f))
			*p = 0;
		else
			*p = field_int(r, errs, limit_fields_[i].f,
			    limit_fields_[i].label, *p, 0, LIMIT_MAX);
	}
}

void
limit_cell(struct req *r, const struct limit_view *v)
{
	struct limit_view	 c = *v;
	size_t			 i;
	int			 any = 0;

	h(&r->out, "<td class=\"limits\">");
	for (i = 0; i < 3; i++) {
		if (*value_of(&c, i) <= 0)
			continue;
		if (any)
			h(&r->out, "<br>");
		h(&r->out, "%s %L", T(r, limit_fields_[i].label),
		    *value_of(&c, i));
		any = 1;
	}
	if (!any)
		h(&r->out, "<span class=\"muted\">%s</span>", T(r, L_NO_LIMIT));
	h(&r->out, "</td>");
}

int
limit_changed(const struct limit_view *a, const struct limit_view *b)
{
	return a->in_flight != b->in_flight || a->tasks != b->tasks ||
	    a->rpm != b->rpm;
}
