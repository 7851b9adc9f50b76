#ifndef BLTCY_RECENT_H
#define BLTCY_RECENT_H

#include "taskids.h"

/*
 * Tasks created moments ago on this host (recent.c; shared memory, the
 * master maps it), by id whatever their service, with the key their
 * submit went with (its hash).
 */
struct recent_task {
	char		 service[SERVICE_SLOT];
	long long	 channel, user;
	char		 key_hash[17];
};

int	 tasks_recent_init(void);	/* master, before fork */
void	 tasks_recent_put(const char *service, const struct task_ids *,
	    long long channel, long long user, const char *key_hash);
/* 1 with *out when id is there, else 0. */
int	 tasks_recent_find(const char *id, struct recent_task *out);

#endif
