/*
 * libFuzzer: channel settings, the reader of JSON (jsonread.c) and task
 * ids in upstream answers and requests. The task ids of an answer are
 * also read with json-c (strict mode) the way the relay once did; where
 * json-c and the reader both take the text as JSON, both must find the
 * same ids in the same order. The reader's entry points must agree on
 * what is JSON; a walk must reach every value; the fields a price reads
 * come from the same bytes, with rules on nested and repeated fields.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../../common/util.c"
#include "../../common/log.c"
#include "../../common/setting.c"
#include "../../fcgi/shared.c"
#include "../../common/jsonread.c"
#include "../../fcgi/taskids.c"
#include "../../common/price.c"
#include "../../fcgi/price.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
ref_field(struct task_ids *t, json_object *o, const char *key)
{
	json_object	*v;
	const char	*s;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, key, &v) || v == NULL)
		return;
	if (json_object_is_type(v, json_type_string) ||
	    json_object_is_type(v, json_type_int)) {
		s = json_object_get_string(v);
		add(t, s, strlen(s));
	}
}

/* 1 if json-c took the text as one JSON value; ids into t */
static int
ref_answer(struct task_ids *t, const char *p, size_t n)
{
	static const char *const keys[] = { "task_id", "id", "clip_id" };
	json_tokener	*tok;
	json_object	*o, *data, *clips;
	const char	*s;
	size_t		 i, k, end;

	memset(t, 0, sizeof(*t));
	if (n == 0 || n > ANSWER_JSON_MAX ||
	    (tok = json_tokener_new_ex(JSON_DEPTH_MAX)) == NULL)
		return 0;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, p, (int)n);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (o == NULL || end + strspn(p + end, " \t\r\n") != n) {
		json_object_put(o);
		return 0;
	}
	ref_field(t, o, "task_id");
	ref_field(t, o, "id");
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "data", &data)) {
		if (json_object_is_type(data, json_type_array)) {
			for (i = 0; i < json_object_array_length(data); i++)
				for (k = 0; k < 3; k++)
					ref_field(t, json_object_array_get_idx(data, i),
					    keys[k]);
		} else if (json_object_is_type(data, json_type_string)) {
			s = json_object_get_string(data);	/* Suno's submit */
			add(t, s, strlen(s));
		} else {
			ref_field(t, data, "task_id");
			ref_field(t, data, "id");
		}
	}
	if (json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, "clips", &clips) &&
	    json_object_is_type(clips, json_type_array))
		for (i = 0; i < json_object_array_length(clips); i++)
			ref_field(t, json_object_array_get_idx(clips, i), "id");
	json_object_put(o);
	return 1;
}

/* Every value a walk gives lies in its parent and is JSON on its own. */
static int
walk_each(void *arg, const char *key, size_t kl, const struct json_value *v)
{
	const struct json_value	*parent = arg;
	struct json_value	 again;
	char			 text[16];
	size_t			 n;

	if (v->p <= parent->p || v->p + v->n >= parent->p + parent->n ||
	    json_parse(v->p, v->n, &again) == -1 || again.kind != v->kind ||
	    again.n != v->n || (key == NULL) != (parent->kind == JSON_ARRAY) ||
	    (key != NULL && strlen(key) > kl))
		abort();
	n = json_text(v, text, sizeof(text));
	if (v->kind == JSON_STRING ? n > 3 * v->n || strlen(text) > n : n != 0)
		abort();
	if (json_compact(v, text, sizeof(text)) > v->n ||
	    strlen(text) >= sizeof(text))
		abort();
	return json_each(v, walk_each, (void *)v);
}

/* The reader's entry points agree on what is JSON. */
static void
reader(const char *str, size_t size)
{
	static const char *const paths[] = { "a", "a.b", "0", "0.a", "A.B.c",
	    "x-y.1", "data.0.status" };
	struct json_value	 top, v[7];
	char			 out[7][JSON_SCALAR_MAX + 1];
	int			 found[7], ok, rc;

	ok = json_parse(str, size, &top) == 0;
	if (ok && walk_each(&(struct json_value){ JSON_ARRAY, str - 1,
	    size + 2 }, NULL, 0, &top) == -1)
		abort();
	rc = json_values(str, size, paths, 7, JSON_INDEX | JSON_ANYSEG, v);
	if ((rc == 0) != ok)
		abort();
	rc = json_values(str, size, paths, 7, 0, v);
	if ((rc == 0) != (ok && (top.kind == JSON_OBJECT ||
	    top.kind == JSON_NULL)))
		abort();
	rc = json_fields(str, size, paths, 7, out, found);
	if ((rc == 0) != (ok && (top.kind == JSON_OBJECT ||
	    top.kind == JSON_NULL)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan_setting	 s;
	struct task_ids		 t, ref;
	struct json_value	 top;
	char			*str, err[128], joined[TASK_IDS_MAX * (TASK_ID_MAX + 1)];
	char			 refj[sizeof(joined)];
	size_t			 i;

	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	setting_parse(str, &s, err, sizeof(err));
	task_ids_from_answer(&t, str, size);
	task_ids_join(&t, joined, sizeof(joined));
	reader(str, size);
	/* json-c's strings end at a NUL; the relay's answers hold none */
	if (memchr(str, '\0', size) == NULL && json_parse(str, size, &top) == 0 &&
	    ref_answer(&ref, str, size)) {
		task_ids_join(&ref, refj, sizeof(refj));
		if (ref.n != t.n || strcmp(refj, joined) != 0) {
			fprintf(stderr, "json-c [%s], ours [%s]\n", refj, joined);
			abort();
		}
		for (i = 0; i < t.n; i++)
			if (strcmp(t.id[i], ref.id[i]) != 0)
				abort();
	}
	{
		static struct price_rule r[] = {
			{ 1, "kling", "", "duration", "10", 20000, 0, "", 0 },
			{ 2, "kling", "kling-v2", "mode", "pro", 35000, 5, "", 0 },
			{ 3, "kling", "", "a.b.c", "x", 15000, 0, "", 0 },
			{ 4, "kling", "", "", "", 10000, 1, "", 0 },
			{ 5, "kling", "", "a.b", "1", MULT_MAX, 0, "", 0 },
			{ 6, "kling", "", "model", "kling-v9", 0, 3, "", 0 },
		};
		static struct price_model_field mf[] = { { "kling", "model_name" } };
		struct prices	 p;
		struct price_out o;
		enum price_verdict v;

		memset(&p, 0, sizeof(p));
		p.rules = r;
		p.nrules = sizeof(r) / sizeof(r[0]);
		p.model_fields = mf;
		p.nmodel_fields = 1;
		v = price_of(&p, "kling", "default", 1000, str, size, 0, &o);
		if ((v == PRICE_OK && (o.quota < 0 || o.quota > PRICE_MAX)) ||
		    strlen(o.model) >= sizeof(o.model))
			abort();
		/* a body the price refuses is one the reader refuses */
		{
			static const char *const path[] = { "x" };
			char	 out[1][JSON_SCALAR_MAX + 1];
			int	 found[1];

			if ((v == PRICE_BAD_BODY) != (size > 0 &&
			    json_fields(str, size, path, 1, out, found) == -1))
				abort();
		}
		v = price_of(&p, "kling", "default", PRICE_MAX / 2, str, size, 0,
		    &o);
		if (v == PRICE_OK && (o.quota < 0 || o.quota > PRICE_MAX))
			abort();
	}
	task_ids_from_request(&t, "/kling/v1/x/abc123", 18, str, str, size, 1);
	task_ids_from_request(&t, str[0] == '/' ? str : "/k", str[0] == '/' ? size : 2,
	    NULL, NULL, 0, 1);
	{	/* the id a poll names: one whole id, or none */
		char	 id[TASK_ID_MAX + 1];

		if (task_id_at("{path}?task_id={id}", "/j/x", 4, str, id) == 0 &&
		    !id_ok(id, strlen(id)))
			abort();
		if (task_id_at("{path}/{id}", str, size, NULL, id) == 0 &&
		    (!id_ok(id, strlen(id)) || task_id_weak(id) < 0))
			abort();
	}
	free(str);
	return 0;
}
