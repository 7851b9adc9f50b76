#include <stdint.h>
#include <string.h>

#include "recent.h"
#include "shared.h"
#include "util.h"

/*
 * Recently created tasks, shared by the workers of a host, so a poll that
 * follows a creation at once finds its channel (and its key, and its
 * owner, whatever service path names it) before the database has the
 * batch that records it. Direct-mapped by id; a slot is held through its
 * sequence number, odd while a writer or a reader has it, and only its
 * holder touches the rest. Losing an entry costs nothing but a database
 * lookup.
 */
#define RECENT		1024

struct recent {
	uint32_t	 seq;
	char		 service[SERVICE_SLOT];
	char		 id[TASK_ID_MAX + 1];
	long long	 channel, user;
	char		 key_hash[17];
};

static struct recent	*recent;

int
tasks_recent_init(void)
{
	return (recent = shm_map(RECENT * sizeof(*recent))) == NULL ? -1 : 0;
}

static struct recent *
recent_slot(const char *id)
{
	return &recent[fnv1a(FNV1A_INIT, id) % RECENT];
}

void
tasks_recent_put(const char *service, const struct task_ids *t,
    long long channel, long long user, const char *key_hash)
{
	size_t	 i;

	if (recent == NULL || strlen(service) >= SERVICE_SLOT)
		return;
	for (i = 0; i < t->n; i++) {
		struct recent	*e = recent_slot(t->id[i]);
		uint32_t	 s = LOAD(&e->seq);

		if ((s & 1) || !CAS(&e->seq, &s, s + 1))
			continue;	/* another writer has it: skip */
		strlcpy_(e->service, service, sizeof(e->service));
		strlcpy_(e->id, t->id[i], sizeof(e->id));
		e->channel = channel;
		e->user = user;
		strlcpy_(e->key_hash, key_hash != NULL ? key_hash : "",
		    sizeof(e->key_hash));
		STORE(&e->seq, s + 2);
	}
}

int
tasks_recent_find(const char *id, struct recent_task *out)
{
	struct recent	*e, copy;
	uint32_t	 s1;

	if (recent == NULL)
		return 0;
	e = recent_slot(id);
	/*
	 * An odd seq is a holder's, reader or writer: the copy is made under
	 * it (a writer meanwhile skips its put, as when another writer has
	 * the entry).
	 */
	s1 = LOAD(&e->seq);
	if (s1 == 0 || (s1 & 1) || !CAS(&e->seq, &s1, s1 + 1))
		return 0;
	memcpy(&copy, e, sizeof(copy));
	STORE(&e->seq, s1);
	if (strcmp(copy.id, id) != 0)
		return 0;
	memcpy(out->service, copy.service, sizeof(out->service));
	out->channel = copy.channel;
	out->user = copy.user;
	memcpy(out->key_hash, copy.key_hash, sizeof(out->key_hash));
	return 1;
}
