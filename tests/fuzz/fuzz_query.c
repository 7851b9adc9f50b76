/*
 * libFuzzer: the relay's query-string check, against libcurl's URL
 * parser. A query the check passes must be one libcurl takes as it is,
 * or the channel would be blamed for the client's bytes; and nothing it
 * passes may hold a control byte, raw or %-encoded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "../../common/util.c"
#include "../../common/route.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char	 pre[] = "http://127.0.0.1:1/kling/v1?";
	char			 url[4096];
	CURLU			*u;
	size_t			 i;

	if (size > sizeof(url) - sizeof(pre) || memchr(data, '\0', size) != NULL)
		return 0;
	if (!query_is_safe((const char *)data, size))
		return 0;
	for (i = 0; i < size; i++)
		if (data[i] < 0x21 || data[i] == 0x7f)
			abort();
		else if (data[i] == '%' && (data[i + 1] < '2' ||
		    (data[i + 1] == '7' && (data[i + 2] == 'f' || data[i + 2] == 'F'))))
			abort();
	memcpy(url, pre, sizeof(pre) - 1);
	memcpy(url + sizeof(pre) - 1, data, size);
	url[sizeof(pre) - 1 + size] = '\0';
	/* what libcurl does with CURLOPT_URL and CURLOPT_PATH_AS_IS */
	if ((u = curl_url()) == NULL)
		return 0;
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_PATH_AS_IS |
	    CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
		abort();
	curl_url_cleanup(u);
	return 0;
}
