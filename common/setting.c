#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "setting.h"
#include "util.h"

static int
get_int(json_object *o, const char *key, long long *v, int *present,
    char *err, size_t errsz)
{
	json_object	*x;

	*present = 0;
	if (!json_object_object_get_ex(o, key, &x) || x == NULL)
		return 0;
	if (!json_object_is_type(x, json_type_int)) {
		snprintf(err, errsz, "%s must be an integer", key);
		return -1;
	}
	*v = json_object_get_int64(x);
	*present = 1;
	return 0;
}

int
setting_parse(const char *json, struct chan_setting *out, char *err,
    size_t errsz)
{
	json_tokener	*tok;
	json_object	*o, *x;
	long long	 v = 0, q = 0;
	size_t		 end;
	int		 has, rc = -1;

	memset(out, 0, sizeof(*out));
	out->quota = DEFAULT_QUOTA;
	if (json == NULL || json[strspn(json, " \t\r\n")] == '\0')
		return 0;
	if ((tok = json_tokener_new_ex(16)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	o = json_tokener_parse_ex(tok, json, (int)strlen(json));
	end = json_tokener_get_parse_end(tok);
	if (o == NULL || json[end + strspn(json + end, " \t\r\n")] != '\0') {
		snprintf(err, errsz, "setting is not valid JSON");
		goto done;
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errsz, "setting must be a JSON object");
		goto done;
	}
	if (get_int(o, "passthrough_quota", &v, &has, err, errsz) == -1)
		goto done;
	if (!has && get_int(o, "PassthroughQuota", &v, &has, err, errsz) == -1)
		goto done;
	if (has)
		out->quota = v == 0 ? DEFAULT_QUOTA : v < 0 ? 0 : v;
	if (get_int(o, "passthrough_query_quota", &q, &has, err, errsz) == -1)
		goto done;
	out->query_quota = has && q > 0 ? q : 0;
	if (get_int(o, "MaxTasks", &v, &has, err, errsz) == -1)
		goto done;
	if (has && (v < 0 || v > 1000000)) {
		snprintf(err, errsz, "MaxTasks must be 0 to 1000000");
		goto done;
	}
	out->max_tasks = has ? (int)v : 0;
	if (json_object_object_get_ex(o, "proxy", &x) && x != NULL) {
		const char *p;
		if (!json_object_is_type(x, json_type_string)) {
			snprintf(err, errsz, "proxy must be a string");
			goto done;
		}
		p = json_object_get_string(x);
		if (strlcpy_(out->proxy, p, sizeof(out->proxy)) >= sizeof(out->proxy)) {
			snprintf(err, errsz, "proxy is too long");
			goto done;
		}
	}
	rc = 0;
done:
	if (rc == -1) {
		memset(out, 0, sizeof(*out));
		out->quota = DEFAULT_QUOTA;
	}
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}
