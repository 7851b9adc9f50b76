#ifndef BLTCY_TASKIDS_H
#define BLTCY_TASKIDS_H

#include <stddef.h>

/*
 * Task ids, both ways (taskids.c): found in an upstream answer to remember
 * which channel made the task, and found in a later request to send it
 * there and to check that it is the caller's. Only ids of [A-Za-z0-9_.:-]
 * are kept, so a list joins with ','.
 */

#define TASK_IDS_MAX	8
#define TASK_ID_MAX	191
#define SERVICE_SLOT	32	/* a service's name where (service, id)
				   names a task: its NUL included */

struct json_value;

/*
 * overflow: the text named more distinct ids than fit. A request that
 * does is refused, since the ones past the cap go unchecked.
 */
struct task_ids {
	char	 id[TASK_IDS_MAX][TASK_ID_MAX + 1];
	size_t	 n;
	int	 overflow;
};

/*
 * The ids an answer (a JSON object of at most 64 KiB, read by
 * jsonread.h's rules) names: its task_id and id, those of data (an
 * object: task_id and id; a list of objects: task_id, id and clip_id;
 * a string: itself), and the id of each object in clips. Keys match
 * exactly; of a key given twice in one object the last counts. An id is
 * a string, up to a \u0000 in it, or an integer as its 64-bit value
 * prints.
 */
void	 task_ids_from_answer(struct task_ids *, const char *json, size_t);
/*
 * Every id-shaped value a request names where a task id can stand, for
 * any method: the last two path segments after the service prefix (last
 * first: "{id}" and "{id}/action"), the id keys of the query and of a
 * body of any length, in any case, at any depth, lists included, JSON or
 * not (json_scan). The last argument is ignored.
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
 * A JSON value as a task id is written: a string decoded, or an integer
 * as its 64-bit value prints (beyond that range, the range's end), into
 * out as json_text puts it. Its whole length (a NUL inside a string
 * kept), or 0 for any other value.
 */
size_t	 task_id_text(const struct json_value *, char *out, size_t outsz);

#endif
