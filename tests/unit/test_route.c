/* route.h: which service a path names, and which paths and queries go up. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "route.h"

static void
test_path(void)
{
	static const struct { const char *p; int ok; int line; } t[] = {
		{ "/kling/v1/videos/image2video", 1, __LINE__ },
		{ "/kling/v1/videos/abc.def", 1, __LINE__ },
		{ "/kling/v1/..x", 1, __LINE__ },
		{ "/kling/../x", 0, __LINE__ },
		{ "/kling/./x", 0, __LINE__ },
		{ "/kling/..", 0, __LINE__ },
		{ "/kling/.", 0, __LINE__ },
		{ "/kling/%2e%2e/x", 0, __LINE__ },
		{ "/kling/%2E%2E/x", 0, __LINE__ },
		{ "/kling/.%2e/x", 0, __LINE__ },
		{ "/kling/%2e/x", 0, __LINE__ },
		{ "/kling/a%2f..%2fb", 0, __LINE__ },
		{ "/kling/a%5c..%5cb", 0, __LINE__ },
		{ "/kling/a\\..\\b", 0, __LINE__ },
		{ "/kling/a%00b", 0, __LINE__ },
		{ "/kling/a%0ab", 0, __LINE__ },
		{ "/kling/a%7fb", 0, __LINE__ },
		{ "/kling/a\x01" "b", 0, __LINE__ },
		{ "/kling/a%zzb", 0, __LINE__ },
		{ "/kling/a%2", 0, __LINE__ },
		{ "/kling/a%", 0, __LINE__ },
		{ "/kling/a%20b", 1, __LINE__ },
		{ "/kling/a b", 0, __LINE__ },
		{ "/kling//x", 1, __LINE__ },
		{ "kling/x", 0, __LINE__ },
		{ "", 0, __LINE__ },
	};
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		T_INT_AT(t[i].line, path_is_safe(t[i].p, strlen(t[i].p)),
		    t[i].ok);
}

static void
test_query(void)
{
	static const struct { const char *q; int ok; int line; } t[] = {
		{ "", 1, __LINE__ },
		{ "task_id=abc&ids=a,b", 1, __LINE__ },
		{ "a=%41%7e&b=+x", 1, __LINE__ },
		{ "a=%20", 1, __LINE__ },
		{ "a=..&b=./", 1, __LINE__ },
		{ "p=\xe4\xb8\xad", 1, __LINE__ },
		{ "a=\x01", 0, __LINE__ },
		{ "a=\x7f", 0, __LINE__ },
		{ "a=b c", 0, __LINE__ },
		{ "a=\tb", 0, __LINE__ },
		{ "a=%00", 0, __LINE__ },
		{ "a=%0a", 0, __LINE__ },
		{ "a=%1F", 0, __LINE__ },
		{ "a=%7F", 0, __LINE__ },
		{ "a=%zz", 0, __LINE__ },
		{ "a=%4", 0, __LINE__ },
		{ "a=%", 0, __LINE__ },
	};
	size_t	 i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		T_INT_AT(t[i].line, query_is_safe(t[i].q, strlen(t[i].q)),
		    t[i].ok);
}

static void
test_routes(void)
{
	char	 err[256];

	T_INT(services_init("", err, sizeof(err)), 0);
	T_STR(service_for_path("/runway/v1/x", 12), "runway");
	T_STR(service_for_path("/runwayml/v1/x", 14), "runway");
	T_STR(service_for_path("/pika/generate", 14), "pika");
	T_STR(service_for_path("/kling/", 7), "kling");
	T_STR(service_for_path("/jimeng/x", 9), "jimeng");
	T_STR(service_for_path("/suno/x", 7), "suno");
	T_OK(service_for_path("/kling", 6) == NULL);
	T_OK(service_for_path("/klingx/a", 9) == NULL);
	T_OK(service_for_path("/v1/chat", 8) == NULL);
	T_OK(service_for_path("/runwayml", 9) == NULL);
	T_INT(services_init("minimax:minimax, luma", err, sizeof(err)), 0);
	T_STR(service_for_path("/minimax/x", 10), "minimax");
	T_STR(service_for_path("/luma/x", 7), "luma");
	T_OK(service_known("luma") && service_known("kling"));
	T_STR(service_list(), "runway,pika,kling,jimeng,suno,minimax,luma");
	T_INT(services_init("Bad:x", err, sizeof(err)), -1);
	T_INT(services_init("a:b:c", err, sizeof(err)), -1);
	T_INT(services_init("", err, sizeof(err)), 0);
}

UNIT_MAIN("route", test_path, test_query, test_routes)
