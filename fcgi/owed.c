#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "db.h"
#include "log.h"
#include "meter.h"
#include "shared.h"
#include "sql.h"
#include "util.h"

/*
 * Strict refunds the database could not take yet (meter.h). One waits in
 * shared memory under the charge slot of the request thread that made the
 * charge; that thread, any other of its worker, or the master once the
 * worker is gone (the slot is then CH_OWED), does it. Refunds of gone
 * workers survive the pool too: what the database could not take by the
 * time the master stops is written to a file next to LOG_FILE (named for
 * this host), read at the next start, and done then, each under the slot
 * of the worker that charged it. Without LOG_FILE they are only logged,
 * for an operator to do.
 */

struct owed {
	int		 waiting;	/* refund holds one still to do */
	struct refund	 refund;
};

static struct owed	*owed;		/* one per charge slot; never unmapped */
static size_t		 nowed;
static const char	*pool_host;	/* this pool's instance name */
static struct db	*refund_db;	/* the master's, for gone workers' */
static int		 owed_file;	/* refunds were loaded from a file */

static void	 owed_load(void);

int
owed_init(const char *host, size_t nslots)
{
	pool_host = host;
	if ((owed = shm_map(nslots * sizeof(*owed))) == NULL)
		return -1;
	nowed = nslots;
	owed_load();
	return 0;
}

enum db_rc
slot_fence(struct db *db, size_t stmt, int slot, const char *rid)
{
	struct dbv	 a[5];

	a[0] = DBS(rid);
	a[1] = DBI(now_s());
	a[2] = DBS(pool_host);
	a[3] = DBI(slot);
	a[4] = DBS(rid);
	return db_run(db, stmt, a, 5, NULL, NULL, NULL);
}

enum db_rc
refund_run(struct db *db, int slot, const struct refund *r, int unsure)
{
	struct dbv	 a[11];
	enum db_rc	 rc;

	if (unsure && (rc = slot_fence(db, ST_SLOT_FENCE, slot, r->rid)) != DB_OK)
		return rc;
	a[0] = DBI(r->user);
	a[1] = DBS(pool_host);
	a[2] = DBI(slot);
	a[3] = DBI(r->unlimited);
	a[4] = a[5] = a[6] = a[7] = DBI(r->quota);
	a[8] = DBI(now_s());
	a[9] = DBI(r->token);
	a[10] = DBS(r->rid);
	return db_run(db, ST_UNCHARGE, a, 11, NULL, NULL, NULL);
}

void
owed_put(int slot, const struct refund *r)
{
	struct owed	*o = &owed[slot];

	STORE(&o->waiting, 0);
	o->refund = *r;
	STORE(&o->waiting, 1);
}

int
owed_waiting(int slot)
{
	if (owed == NULL || slot < 0 || (size_t)slot >= nowed)
		return 0;
	return LOAD(&owed[slot].waiting);
}

int
owed_get(int slot, struct refund *r)
{
	if (!owed_waiting(slot))
		return 0;
	*r = owed[slot].refund;
	return 1;
}

int
owed_done(int slot, const char *rid)
{
	struct owed	*o;
	int		 waiting = 1;

	if (owed == NULL || slot < 0 || (size_t)slot >= nowed)
		return 0;
	o = &owed[slot];
	return strcmp(o->refund.rid, rid) == 0 && CAS(&o->waiting, &waiting, 0);
}

/* The file of this host's refunds left for the next start: 0, or -1. */
static int
owed_path(char *out, size_t sz)
{
	const char		*log = cfg_s(CFG_LOG_FILE);
	unsigned long long	 h = 1469598103934665603ULL;
	const char		*p;
	int			 n;

	if (log == NULL || *log == '\0')
		return -1;
	for (p = pool_host; p != NULL && *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	n = snprintf(out, sz, "%s.refunds-%016llx", log, h);
	return n < 0 || (size_t)n >= sz ? -1 : 0;
}

size_t
owed_settle(const struct dsn *dsn)
{
	char	 path[600];
	size_t	 i, left = 0;

	for (i = 0; i < nowed; i++) {
		struct refund	*r = &owed[i].refund;
		enum db_rc	 rc;

		if (charge_slot_state((int)i) != CH_OWED)
			continue;
		if (left > 0 || (refund_db == NULL && (refund_db =
		    db_new(dsn, relay_sql, ST__MAX, 0)) == NULL)) {
			left++;
			continue;
		}
		rc = refund_run(refund_db, (int)i, r, 1);
		if (rc == DB_DOWN || rc == DB_CONFLICT) {
			left++;
			continue;
		}
		if (rc != DB_OK)
			log_err("req=%s refund failed for good: %s; its charge "
			    "of %lld to token %lld stands", r->rid,
			    db_error(refund_db), r->quota, r->token);
		else
			log_info("req=%s delayed refund done (its worker is "
			    "gone)", r->rid);
		STORE(&owed[i].waiting, 0);
		charge_slot_free((int)i);
	}
	if (left == 0 && owed_file) {
		owed_file = 0;
		if (owed_path(path, sizeof(path)) == 0 && unlink(path) == -1 &&
		    errno != ENOENT)
			log_err("removing %s: %s", path, strerror(errno));
	}
	return left;
}

/* At stop: the refunds still owed, into the file for the next start. */
static void
owed_save(void)
{
	char	 path[600], tmp[640], line[160];
	size_t	 i, n = 0;
	int	 fd, len, bad = 0;

	if (owed_path(path, sizeof(path)) == -1) {
		for (i = 0; i < nowed; i++) {
			struct refund *r = &owed[i].refund;

			if (charge_slot_state((int)i) == CH_OWED)
				log_err("req=%s refund of %lld to token %lld "
				    "(user %lld) not done: the database is down "
				    "and there is no LOG_FILE to keep it in",
				    r->rid, r->quota, r->token, r->user);
		}
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) == -1) {
		log_err("%s: %s", tmp, strerror(errno));
		return;
	}
	for (i = 0; i < nowed; i++) {
		struct refund *r = &owed[i].refund;

		if (charge_slot_state((int)i) != CH_OWED)
			continue;
		len = snprintf(line, sizeof(line), "%zu %lld %lld %lld %d %s\n",
		    i, r->token, r->user, r->quota, r->unlimited, r->rid);
		if (len < 0 || (size_t)len >= sizeof(line) ||
		    write(fd, line, (size_t)len) != len)
			bad = 1;
		log_err("req=%s refund of %lld to token %lld waits for the "
		    "database; kept in %s for the next start", r->rid,
		    r->quota, r->token, path);
		n++;
	}
	if (fsync(fd) == -1)
		bad = 1;
	close(fd);
	if (bad || rename(tmp, path) == -1)
		log_err("writing %s: %s; %zu refunds are only in this log",
		    path, strerror(errno), n);
}

void
owed_shutdown(const struct dsn *dsn)
{
	if (owed_settle(dsn) > 0)
		owed_save();
	db_free(refund_db);
	refund_db = NULL;
}

/* The next field of a line: a number in [min, max]; -1 if it is not. */
static int
owed_num(const char **p, long long min, long long max, long long *v)
{
	char	*end;

	errno = 0;
	*v = strtoll(*p, &end, 10);
	if (end == *p || *end != ' ' || errno != 0 || *v < min || *v > max)
		return -1;
	*p = end + 1;
	return 0;
}

/* At start: refunds an earlier run left owed, back under their slots. */
static void
owed_load(void)
{
	char		*buf;
	size_t		 cap = nowed * 160;
	char		 path[600];
	const char	*p, *eol;
	long long	 slot, tok, user, q, unl;
	ssize_t		 got;
	size_t		 len = 0, n = 0;
	int		 fd;

	if (owed_path(path, sizeof(path)) == -1 ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	if ((buf = malloc(cap)) == NULL) {
		close(fd);
		log_err("%s: out of memory", path);
		return;
	}
	while (len < cap - 1 && (got = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)got;
	close(fd);
	buf[len] = '\0';
	owed_file = 1;
	for (p = buf; (eol = strchr(p, '\n')) != NULL; p = eol + 1) {
		struct owed	*o;
		size_t		 rl;

		if (owed_num(&p, 0, (long long)nowed - 1, &slot) == -1 ||
		    owed_num(&p, 1, INT64_MAX, &tok) == -1 ||
		    owed_num(&p, 0, INT64_MAX, &user) == -1 ||
		    owed_num(&p, 0, INT64_MAX, &q) == -1 ||
		    owed_num(&p, 0, 1, &unl) == -1 ||
		    (rl = (size_t)(eol - p)) == 0 ||
		    rl >= sizeof(o->refund.rid) || memchr(p, ' ', rl) != NULL) {
			log_err("%s: a line that is not a refund; skipped",
			    path);
			continue;
		}
		o = &owed[slot];
		memcpy(o->refund.rid, p, rl);
		o->refund.rid[rl] = '\0';
		o->refund.token = tok;
		o->refund.user = user;
		o->refund.quota = q;
		o->refund.unlimited = (int)unl;
		o->waiting = 1;
		charge_slot_hold((int)slot);
		n++;
	}
	free(buf);
	log_info("%zu refunds of an earlier run wait for the database (%s)",
	    n, path);
}
