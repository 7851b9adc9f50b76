/*
 * The limits of a token or a user on its page: what the operator sets is
 * written by common/store.c (limits_set); the relay reads it with the
 * token.
 */
#include <stddef.h>
#include <stdio.h>

#include "limitform.h"
#include "reply.h"
#include "request.h"
#include "store.h"

/* The three, in the order of the form: field, label, member. */
static const struct {
	enum field	 f;
	enum label	 label;
	size_t		 off;
} limit_form[3] = {
	{ F_IN_FLIGHT, L_IN_FLIGHT, offsetof(struct limit_view, in_flight) },
	{ F_TASKS, L_OPEN_TASKS, offsetof(struct limit_view, tasks) },
	{ F_RPM, L_RPM, offsetof(struct limit_view, rpm) },
};

static long long
limit_get(const struct limit_view *v, size_t i)
{
	return *(const long long *)((const char *)v + limit_form[i].off);
}

static void
limit_put(struct limit_view *v, size_t i, long long n)
{
	*(long long *)((char *)v + limit_form[i].off) = n;
}

void
limit_fields(struct req *r, const struct limit_view *v)
{
	size_t	 i;

	h(&r->out, "<fieldset class=\"limits\"><legend>%s</legend>"
	    "<div class=\"row\">", T(r, L_LIMITS));
	for (i = 0; i < 3; i++)
		h(&r->out, "<label>%s<input name=\"%s\" type=\"number\" min=\"0\" "
		    "max=\"%L\" value=\"%L\"></label>", T(r, limit_form[i].label),
		    fields[limit_form[i].f].name, LIMIT_MAX, limit_get(v, i));
	h(&r->out, "</div><small>%s</small></fieldset>", T(r, L_LIMITS_HELP));
}

void
limit_read(const struct req *r, struct buf *errs, struct limit_view *v)
{
	const char	*raw;
	size_t		 i;

	for (i = 0; i < 3; i++) {
		/* "" is no value to the form reader, but here it says none */
		raw = r->method == M_POST ? r->f.v[limit_form[i].f] : NULL;
		if (raw != NULL && *raw == '\0' && !fbad(r, limit_form[i].f))
			limit_put(v, i, 0);
		else
			limit_put(v, i, field_int(r, errs, limit_form[i].f,
			    limit_form[i].label, limit_get(v, i), 0, LIMIT_MAX));
	}
}

void
limit_cell(struct req *r, const struct limit_view *v)
{
	size_t	 i;
	int	 any = 0;

	h(&r->out, "<td class=\"limits\">");
	for (i = 0; i < 3; i++) {
		if (limit_get(v, i) <= 0)
			continue;
		if (any)
			h(&r->out, "<br>");
		h(&r->out, "%s %L", T(r, limit_form[i].label), limit_get(v, i));
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
