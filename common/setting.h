#ifndef BLTCY_SETTING_H
#define BLTCY_SETTING_H

#include <stddef.h>

#define DEFAULT_QUOTA	1000

/* What the relay reads from a channel's `setting` JSON. */
struct chan_setting {
	long long	 quota;		/* per request; 0 = free */
	long long	 query_quota;	/* per GET/HEAD/OPTIONS; 0 = free */
	char		 proxy[256];	/* per-channel proxy, wins over RELAY_PROXY */
	int		 max_tasks;	/* MaxTasks: open jobs per key; 0 = none */
};

/*
 * Parse a setting (NULL or "" = defaults). passthrough_quota (the fork's
 * key) wins over PassthroughQuota (the seed's); absent or 0 means 1000,
 * negative means free. MaxTasks: open jobs per key, 0 or absent none.
 * Returns 0, or -1 with a message (the admin form's
 * check); on -1, *out holds the defaults.
 */
int	 setting_parse(const char *json, struct chan_setting *out,
	    char *err, size_t errsz);

#endif
