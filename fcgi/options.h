#ifndef BLTCY_OPTIONS_H
#define BLTCY_OPTIONS_H

/*
 * new-api's options the relay acts on besides prices (options.c), read
 * from the options table with the channels, so an edit is seen on the
 * next request. An option that is not what it holds keeps its default.
 */

#include <stddef.h>

#define RATE_GROUPS_MAX	32
#define BAN_CODES_MAX	32

/* ModelRequestRateLimitGroup: {"group": [total, success]} */
struct rate_group {
	char		 name[64];
	int		 total, success;
};

/* ModelRequestRateLimit*: per user, every service path. */
struct rate_options {
	int		 enabled;	/* ...Enabled */
	int		 minutes;	/* ...DurationMinutes (1) */
	int		 total;		/* ...Count: all requests, 0 none */
	int		 success;	/* ...SuccessCount: answered < 400 (1000) */
	struct rate_group groups[RATE_GROUPS_MAX];	/* ...Group */
	size_t		 ngroups;
};

/* HTTP statuses lo to hi, both included. */
struct code_range {
	int		 lo, hi;
};

/* Automatic*: keys the upstream refuses leave rotation, and come back. */
struct ban_options {
	int		 disable;	/* AutomaticDisableChannelEnabled */
	int		 enable;	/* AutomaticEnableChannelEnabled */
	struct code_range codes[BAN_CODES_MAX];	/* ...StatusCodes (401) */
	size_t		 ncodes;
	char		*keywords;	/* ...Keywords: one per line, lower
					   case; NULL new-api's defaults */
};

struct relay_options {
	struct rate_options	 rate;
	struct ban_options	 ban;
};

/* new-api's defaults. */
void	 options_init(struct relay_options *);
void	 options_free(struct relay_options *);

/*
 * One row of the options table: 0 (a key it does not know is no error),
 * or -1 when the value is not what the option holds (why says what).
 */
int	 options_set(struct relay_options *, const char *key,
	    const char *value, char *why, size_t whysz);

/* The total and success caps for a user of group (0: none). */
void	 rate_caps(const struct rate_options *, const char *group,
	    int *total, int *success);
/*
 * A list of statuses and ranges as new-api takes it ("401,403,500-599",
 * spaces and full-width commas allowed; each within 100-599) into at most
 * max ranges: 0, or -1 with why.
 */
int	 codes_parse(const char *, struct code_range *, size_t max, size_t *n,
	    char *why, size_t whysz);
/* status is in one of the n ranges. */
int	 codes_match(const struct code_range *, size_t n, int status);

#endif
