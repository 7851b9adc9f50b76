#ifndef BLTCY_SQL_H
#define BLTCY_SQL_H

/*
 * What the admin pages read (sql.c), run on r->db. Every write goes
 * through common/store.c on r->store.
 */
#include "db.h"

enum admin_stmt {
	AS_USER_AUTH, AS_USER_SESSION,
	AS_COUNTS, AS_RECENT_ERRORS, AS_AUTO_DISABLED, AS_CHART,
	AS_CHANNEL_LIST, AS_CHANNEL_GET, AS_KEY_PLACES,
	AS_TOKEN_LIST, AS_TOKEN_GET,
	AS_USER_LIST, AS_USER_GET,
	AS_LOGS_PAGE, AS_LOGS_TOTAL,
	AS_TASK_STATES,
	AS_PRICE_CHANNELS, AS_PRICE_OPTIONS,
	AS_TASKS_PAGE, AS_TASKS_TOTAL,
	AS__MAX
};
extern const char *const admin_sql[AS__MAX];

/* Column helpers for row callbacks. */
const char *col_s(const struct dbv *);	/* "" for NULL */
long long col_i(const struct dbv *);	/* 0 for NULL; parses strings */

#endif
