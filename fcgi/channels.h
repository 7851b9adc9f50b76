#ifndef BLTCY_CHANNELS_H
#define BLTCY_CHANNELS_H

/*
 * The channel table a worker routes on (channels.c): channels, their
 * abilities, prices and task kinds, loaded whole, and the pick of one.
 */

#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "price.h"
#include "setting.h"

struct db;

/* new-api's statuses of a channel, and of a key of a multi-key one. */
#define CH_ENABLED		1
#define CH_MANUALLY_DISABLED	2
#define CH_AUTO_DISABLED	3

struct channel {
	long long		 id;
	char			*name;
	char			*base_url;	/* no trailing '/' */
	char			**keys;		/* one or more, unsealed */
	size_t			 nkeys;
	int			 auto_ban;
	int			 status;	/* new-api's: 1, 2 or 3 */
	int			 disabled;	/* status not 1: no new jobs, but
					   its tasks are still polled */
	/*
	 * Of each key: its line in the key column, as new-api counts lines
	 * (the index channel_info names it by), and its status there
	 * (multi_key_status_list; 1 when it names none). A channel of one
	 * key is that key: its status is the channel's.
	 */
	int			*key_line;
	int			*key_status;
	size_t			 nlines;	/* new-api's count of keys */
	size_t			 nusable;	/* keys that take new jobs */
	struct chan_setting	 set;
};

struct ability {
	char		 group[64];
	char		 model[64];
	size_t		 ch;		/* index into channels */
	long long	 priority;
	long long	 weight;
};

/* One row of bltcy_task_kinds: where a service's poll answer says how
 * a task stands (see schema/010_prices_tasks.sql). */
struct task_kind {
	char		 service[32];
	char		 status_path[128];
	char		 succeeded[256];
	char		 failed[256];
	char		 reason_path[128];
	char		 poll_path[256];
	char		 id_path[128];	/* where an answer names its task */
	char		 lost[256];	/* values: the upstream knows no such task */
};

struct chcache {
	long long	 version;	/* bltcy_meta 'channels' it was loaded at */
	struct channel	*ch;
	size_t		 nch;
	struct ability	*ab;
	size_t		 nab;
	struct prices	 prices;	/* options and bltcy_price_rules */
	struct relay_options opts;	/* the other options (options.h) */
	struct task_kind *kinds;	/* bltcy_task_kinds */
	size_t		 nkinds;
};

const struct task_kind *chcache_kind(const struct chcache *, const char *service);

int	 chcache_load(struct chcache *, struct db *, long long version);
void	 chcache_free(struct chcache *);
/* An enabled channel with a key that takes new jobs, or NULL. */
struct channel *chcache_by_id(struct chcache *, long long id);
/*
 * The channel a task was made on, whatever its status (a disabled one
 * takes no new jobs, but its tasks are polled through it until they
 * finish), or NULL when it was deleted. Its base_url is "" when none of
 * its keys is usable.
 */
struct channel *chcache_task_channel(struct chcache *, long long id);

/* Key i of the channel takes new jobs (it was not disabled). */
int	 chan_key_usable(const struct channel *, size_t i);
/* Its keys that do not (disabled by hand or automatically). */
size_t	 chan_keys_disabled(const struct channel *);

/*
 * Pick a channel for (group, service) by new-api's rule: highest priority
 * first, weighted random (weight + 10) within it, skipping the ids in
 * skip[] and channels whose breaker is open. NULL when none is left.
 */
struct channel *channel_pick(struct chcache *, const char *group,
		    const char *service, const long long *skip, size_t nskip,
		    uint64_t *rng);

#endif
