/* fcgi/idem.c: which answers an Idempotency-Key keeps. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "../../fcgi/idem.c"

/* Which upstream answers an Idempotency-Key keeps for its repeats. */
static void
test_idem_keeps(void)
{
	static const int kept[] = { 200, 201, 202, 204, 301, 304, 400, 402, 403,
	    404, 405, 409, 410, 413, 415, 422, 451 };
	static const int freed[] = { 401, 408, 423, 425, 429, 500, 502, 503,
	    504, 599 };
	size_t	 i;

	/* got and want: the status where kept, its negation where freed */
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		T_INT(idem_keeps(kept[i]) ? kept[i] : -kept[i], kept[i]);
	for (i = 0; i < sizeof(freed) / sizeof(freed[0]); i++)
		T_INT(idem_keeps(freed[i]) ? freed[i] : -freed[i], -freed[i]);
}

UNIT_MAIN("idem", test_idem_keeps)
