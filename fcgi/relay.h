#ifndef BLTCY_RELAY_H
#define BLTCY_RELAY_H

/*
 * What has no header of its own yet: the relay's statements (sql.c),
 * task ids (affinity.c) and the worker process's entry (worker.c). Each
 * module's interface is in its own header: channels.h, metrics.h,
 * throttle.h, upstream.h, body.h, meter.h, idem.h, tasks.h.
 */

#include <stddef.h>
#include <stdint.h>

/* The relay's statements, by index into relay_sql[] (sql.c). */
enum stmt {
	ST_AUTH,
	ST_COUNTERS,
	ST_CHANNELS,
	ST_ABILITIES,
	ST_CHARGE,
	ST_UNCHARGE,
	ST_SLOT,
	ST_SLOT_INIT,
	ST_PING,
	ST_TASKS_ADD,
	ST_AUTO_BAN,
	ST_TASK_OWNER,
	ST_LEASE,
	ST_LEASE_GRANT,
	ST_CHARGE_GROUP,
	ST_TASK_SEEN,
	ST_OPTIONS,
	ST_PRICE_RULES,
	ST_TASK_KINDS,
	ST_MODEL_FIELDS,
	ST_IDEM_TAKE,
	ST_IDEM_GET,
	ST_IDEM_DROP,
	ST_IDEM_KEEP,
	ST_IDEM_EXPIRE,
	ST_TASK_EARLY,
	ST__MAX
};
extern const char *const relay_sql[ST__MAX];

/* ---- affinity.c: task ids in answers and requests ---- */

#define TASK_IDS_MAX	8
#define TASK_ID_MAX	191

/*
 * overflow: the text named more distinct ids than fit. A request that
 * does is refused, since the ones past the cap go unchecked.
 */
struct task_ids {
	char	 id[TASK_IDS_MAX][TASK_ID_MAX + 1];
	size_t	 n;
	int	 overflow;
};

void	 task_ids_from_answer(struct task_ids *, const char *json, size_t);
/*
 * Every id-shaped value a request names where a task id can stand, for
 * any method: the last two path segments after the service prefix (last
 * first: "{id}" and "{id}/action"), the id keys of the query and of a
 * body of any length, in any case, at any depth, lists included. The
 * last argument is ignored.
 */
void	 task_ids_from_request(struct task_ids *, const char *path,
	    size_t pathlen, const char *query, const char *body, size_t bodylen,
	    int unused);
int	 task_ids_join(const struct task_ids *, char *out, size_t outsz);
/*
 * An id too plain to be one upstream task's alone (a word, or short):
 * it routes its owner's requests but refuses nobody else's.
 */
int	 task_id_weak(const char *);
/*
 * The id a client's poll names where its kind's poll_path has {id}: the
 * query key before "={id}", given once with one value, or the last path
 * segment when poll_path ends in "/{id}". 0; -1 when the request has no
 * one id there; -2 when poll_path has {id} at neither place.
 */
int	 task_id_at(const char *poll_path, const char *path, size_t pathlen,
	    const char *query, char out[TASK_ID_MAX + 1]);

/*
 * Tasks created moments ago on this host (shared memory, master maps
 * it), by id whatever their service, with the key their submit went with
 * (its hash).
 */
#define SERVICE_SLOT	32
struct recent_task {
	char		 service[SERVICE_SLOT];
	long long	 channel, user;
	char		 key_hash[17];
};
int	 tasks_recent_init(void);
void	 tasks_recent_put(const char *service, const struct task_ids *,
	    long long channel, long long user, const char *key_hash);
int	 tasks_recent_find(const char *id, struct recent_task *);

/* ---- worker.c ---- */
struct dsn;
/* A worker process: one request thread for each of its nthreads wslots. */
int	 worker_main(int listen_fd, const struct dsn *, const char *host,
	    uint64_t seed, const int *wslots, size_t nthreads, int mslot);

#endif
