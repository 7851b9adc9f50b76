/* libFuzzer: channel settings and task ids in upstream answers and requests. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.c"
#include "../../common/setting.c"
#include "../../fcgi/affinity.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct chan_setting	 s;
	struct task_ids		 t;
	char			*str, err[128], joined[TASK_IDS_MAX * (TASK_ID_MAX + 1)];

	if ((str = malloc(size + 1)) == NULL)
		return 0;
	memcpy(str, data, size);
	str[size] = '\0';
	setting_parse(str, &s, err, sizeof(err));
	task_ids_from_answer(&t, str, size);
	task_ids_join(&t, joined, sizeof(joined));
	task_ids_from_request(&t, "/kling/v1/x/abc123", 18, str, str, size, 1);
	task_ids_from_request(&t, str[0] == '/' ? str : "/k", str[0] == '/' ? size : 2,
	    NULL, NULL, 0, 1);
	free(str);
	return 0;
}
