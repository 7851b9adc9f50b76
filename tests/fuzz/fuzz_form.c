/*
 * libFuzzer target for the admin CGI's parsers of untrusted bytes: the
 * urlencoded form/query parser with its allow-list and validators, the
 * Cookie header, Accept-Language, and the HTML escaper. Sources are
 * included whole (make fuzz compiles each target alone).
 *
 *   make fuzz && build-fuzz/fuzz_form -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.c"
#include "../../common/html.c"
#include "../../admin-cgi/form.c"
#include "../../admin-cgi/i18n.c"

/* Every kept value passed its validator and fits its field's cap. */
static void
check_form(const struct form *f)
{
	int	 i;

	for (i = 0; i < F__MAX; i++) {
		size_t n;

		if (f->v[i] == NULL)
			continue;
		n = strlen(f->v[i]);
		if (n > fields[i].max || !valid(fields[i].v, f->v[i], n) || f->bad[i])
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct form	 f;
	char		*s, out[256], esc[1024];
	const char	*p;

	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (form_parse(&f, (const char *)data, size) == 0)
		check_form(&f);
	form_free(&f);

	if (cookie_get(s, "bltcy_session", out, sizeof(out)) == 0 &&
	    strlen(out) >= sizeof(out))
		abort();
	(void)lang_pick(s);

	if (html_escape(s, esc, sizeof(esc)) == 0) {
		/* no raw markup byte survives */
		for (p = esc; *p != '\0'; p++)
			if (*p == '<' || *p == '>' || *p == '"' || *p == '\'')
				abort();
	}
	free(s);
	return 0;
}
