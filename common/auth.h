#ifndef BLTCY_AUTH_H
#define BLTCY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "fieldlimits.h"

#define TOKEN_KEY_MAX	128

/*
 * Token key from the request, as new-api reads it: "Bearer <k>" (or a bare
 * key), a leading "sk-" stripped, a trailing "-<channel id>" split off.
 * Returns 0 with key filled (and *channel > 0 when pinned), -1 when there
 * is no usable token.
 */
int	 token_parse(const char *header, char key[TOKEN_KEY_MAX], long long *channel);

/* What auth needs of a token and its user (one DB row). */
/* What bltcy_limits sets on a token or a user; 0 is no limit. */
struct limits {
	int		 in_flight;	/* requests at once */
	int		 tasks;		/* open jobs at once */
	int		 rpm;		/* requests a minute */
};

struct token_row {
	long long	 id, user_id, status, expired_time, remain_quota;
	int		 unlimited, model_limits_enabled;
	char		 name[LIM_BYTES(LIM_TOKEN_NAME)];
	char		 model_limits[LIM_MODEL_LIMITS + 1];
	char		 allow_ips[LIM_ALLOW_IPS + 1];
	char		 group[LIM_BYTES(LIM_TOKEN_GROUP)];	/* may be empty */
	int		 user_found;
	long long	 user_status, user_role, user_quota;
	int		 user_deleted;
	char		 username[LIM_BYTES(LIM_USERNAME)];
	char		 user_group[LIM_BYTES(LIM_USER_GROUP)];
	struct limits	 token_limits;
	struct limits	 user_limits;
};

enum auth_result {
	AUTH_OK,
	AUTH_EXHAUSTED,
	AUTH_EXPIRED,
	AUTH_DISABLED,
	AUTH_IP,
	AUTH_USER_BANNED,
	AUTH_MODEL,
	AUTH_PIN_FORBIDDEN,
};

/*
 * new-api's checks in its order, for a token that exists and is not
 * deleted. service is the model; pinned says a channel was named.
 */
enum auth_result token_check(const struct token_row *, const char *ip,
		    const char *service, int pinned, int64_t now);

/* ip matches an entry (address or CIDR) of a newline/comma list. */
int	 ip_allowed(const char *list, const char *ip);

/* The group a request routes in: the token's, else the user's. */
const char *token_group(const struct token_row *);

#endif
