#ifndef BLTCY_FIELDLIMITS_H
#define BLTCY_FIELDLIMITS_H

/*
 * One limit per field that the admin or the CLI accepts and the relay
 * reads back. Text columns are counted in characters, as MariaDB counts
 * a varchar, with the sizes new-api declares; a buffer that holds any
 * value of such a column needs LIM_BYTES(n) (utf8mb4: at most 4 bytes a
 * character, and the NUL). Lists of addresses or service names are ASCII
 * and counted in bytes. Entry refuses a longer value; nothing later cuts
 * one, and a value found longer in the database (written by other
 * software) is refused where it matters (allowed IPs, model limits)
 * rather than cut.
 */

#define LIM_BYTES(chars)	((chars) * 4 + 1)

#define LIM_USERNAME		191	/* users.username varchar(191) */
#define LIM_DISPLAY_NAME	191	/* users.display_name varchar(191) */
#define LIM_USER_GROUP		64	/* users.group varchar(64) */
#define LIM_TOKEN_NAME		191	/* tokens.name varchar(191) */
#define LIM_TOKEN_GROUP		191	/* tokens.group varchar(191) */
#define LIM_CHANNEL_NAME	191	/* channels.name varchar(191) */
#define LIM_CHANNEL_GROUP	64	/* channels.group varchar(64) */
#define LIM_BASE_URL		191	/* channels.base_url varchar(191) */
#define LIM_CHANNEL_TAG		191	/* channels.tag varchar(191) */
#define LIM_CHANNEL_REMARK	255	/* channels.remark varchar(255) */
#define LIM_LOG_GROUP		191	/* logs.group varchar(191) */

/* ASCII lists, in bytes */
#define LIM_MODEL_LIMITS	1024	/* tokens.model_limits varchar(1024) */
#define LIM_ALLOW_IPS		4096	/* tokens.allow_ips (longtext) */

#endif
