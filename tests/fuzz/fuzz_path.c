/* libFuzzer: the relay's request-path check and route table. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.c"
#include "../../common/route.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 init;
	char		 err[128];

	if (!init) {
		services_init("minimax:minimax", err, sizeof(err));
		init = 1;
	}
	path_is_safe((const char *)data, size);
	service_for_path((const char *)data, size);
	return 0;
}
