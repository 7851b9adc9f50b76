#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "config.h"
#include "db.h"
#include "dsn.h"
#include "idem.h"
#include "reqlimit.h"
#include "log.h"
#include "meter.h"
#include "metrics.h"
#include "places.h"
#include "recent.h"
#include "route.h"
#include "shared.h"
#include "sql.h"
#include "tasks.h"
#include "throttle.h"
#include "worker.h"

/*
 * The master: takes the FastCGI socket (fd 0 from spawn-fcgi, or
 * --listen), forks a fixed pool of workers and the pool's own processes
 * (the task poller and, in strict metering, the charger, which makes the
 * workers' charges) and sleeps in sigsuspend.
 * It re-forks workers that die (settling their in-flight charges first),
 * finishes gracefully on SIGTERM, swaps in a new generation on SIGHUP and
 * passes SIGUSR1 (reopen logs) on. It drives metering (meter.h): the
 * charge slots, the usage writer, refunds owed and the mode's own work,
 * each called from here on its clock, at a worker's death and at stop.
 */

#define WORKERS_MAX	1024

static volatile sig_atomic_t	 got_chld, got_term, got_hup, got_usr1, got_alrm;

/*
 * Each live worker of any generation and its charge slots. A worker's
 * request threads never take a signal (its main thread waits for them),
 * so SIGTERM cuts no request in flight and is never missed.
 */
static struct {
	pid_t	 pid;
	int	*charge_slots;	/* one per request thread */
	size_t	 ncharge_slots;
} owners[2 * WORKERS_MAX];

static pid_t	 pids[WORKERS_MAX];	/* the current generation */

/*
 * The pool's own processes, one of each: forked before the workers,
 * again whenever one dies, stopped after the workers are gone (the
 * charger commits what they charged; the poller's refunds need nothing
 * of theirs, but a stop that waits for the workers waits for it too).
 */
enum own { OWN_CHARGER, OWN_TASKS, OWN__MAX };
static struct {
	const char	*what;		/* for the log */
	int		(*run)(const struct dsn *);	/* NULL: none */
	int		 needed;	/* by the workers until they are gone */
	pid_t		 pid;		/* 0: not running */
} own[OWN__MAX] = {
	[OWN_CHARGER] = { "the charger", NULL, 1, 0 },	/* the metering's */
	[OWN_TASKS] = { "the task poller", tasks_main, 0, 0 },
};
static size_t	 nworkers;
static size_t	 nold;			/* older generations still finishing */
static int	 listen_fd;
static char	 host[160];
static struct dsn dsn;
static struct db *mdb;			/* the master's connection (master_sql) */

static void
on_signal(int sig)
{
	switch (sig) {
	case SIGCHLD: got_chld = 1; break;
	case SIGHUP: got_hup = 1; break;
	case SIGUSR1: got_usr1 = 1; break;
	case SIGALRM: got_alrm = 1; break;
	default: got_term = 1; break;
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: bltcy-relay [-c config] [--listen unix:PATH|"
	    "HOST:PORT] [--workers N] [--check]\n"
	    "Without --listen, fd 0 is the FastCGI socket (spawn-fcgi -n).\n");
	exit(2);
}

static int
open_listen(const char *spec)
{
	int	 fd = -1, one = 1;

	if (strncmp(spec, "unix:", 5) == 0) {
		struct sockaddr_un	 sun;

		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		if (strlcpy_(sun.sun_path, spec + 5, sizeof(sun.sun_path)) >=
		    sizeof(sun.sun_path))
			return -1;
		unlink(sun.sun_path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1 ||
		    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == -1 ||
		    chmod(sun.sun_path, 0660) == -1)
			goto fail;
	} else {
		struct addrinfo	 hints, *ai = NULL;
		char		 h[256];
		const char	*colon = strrchr(spec, ':');

		if (colon == NULL || (size_t)(colon - spec) >= sizeof(h))
			return -1;
		memcpy(h, spec, (size_t)(colon - spec));
		h[colon - spec] = '\0';
		memset(&hints, 0, sizeof(hints));
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		if (getaddrinfo(h[0] ? h : NULL, colon + 1, &hints, &ai) != 0)
			return -1;
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
		    sizeof(one)) == -1 || bind(fd, ai->ai_addr, ai->ai_addrlen) == -1) {
			freeaddrinfo(ai);
			goto fail;
		}
		freeaddrinfo(ai);
	}
	if (listen(fd, 1024) == -1)
		goto fail;
	return fd;
fail:
	if (fd != -1)
		close(fd);
	return -1;
}

/* hostname + the socket's address: two pools on one host never mix charges */
static void
instance_name(int fd)
{
	struct sockaddr_storage	 ss;
	socklen_t		 len = sizeof(ss);
	char			 hn[64] = "localhost", where[96] = "";

	gethostname(hn, sizeof(hn) - 1);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_UNIX)
			snprintf(where, sizeof(where), "%.95s",
			    ((struct sockaddr_un *)&ss)->sun_path);
		else {
			char h[64], p[16];
			if (getnameinfo((struct sockaddr *)&ss, len, h, sizeof(h),
			    p, sizeof(p), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
				snprintf(where, sizeof(where), "%s:%s", h, p);
		}
	}
	snprintf(host, sizeof(host), "%.63s:%.90s", hn, where);
	if (strlen(host) > 63)		/* the column is varchar(64) */
		memmove(host, host + strlen(host) - 63, 64);
}

/*
 * Task rows are needed while a task runs and for the admin's history:
 * weeks, not years; an Idempotency-Key for a day. Once an hour the master
 * forgets older ones: PRUNE_BATCH rows a statement, one statement a tick
 * (the usage writer runs on the same tick and must not wait long), on
 * until a statement finds fewer than a batch, so that however many rows
 * came in an hour, all that are due are gone before the next.
 */
#define TASK_KEEP_DAYS	30
#define PRUNE_EVERY_MS	(3600 * 1000)
#define PRUNE_BATCH	1000

static const struct {
	enum mstmt	 st;
	const char	*what;		/* for the log */
	long long	 keep;		/* seconds a row is kept */
} prunes[] = {
	{ MS_PRUNE_TASKS, "old task ids", TASK_KEEP_DAYS * 86400LL },
	{ MS_PRUNE_IDEM, "old Idempotency-Keys", IDEM_TTL },
};
#define NPRUNES	(sizeof(prunes) / sizeof(prunes[0]))

static void
prune_tick(void)
{
	static int64_t		 last;
	static size_t		 at = NPRUNES;	/* the table being pruned */
	struct dbv		 a[2];
	unsigned long long	 n = 0;

	if (at == NPRUNES) {
		if (last != 0 && mono_ms() - last < PRUNE_EVERY_MS)
			return;
		last = mono_ms();
		at = 0;
	}
	a[0] = DBI(now_s() - prunes[at].keep);
	a[1] = DBI(PRUNE_BATCH);
	if (db_run(mdb, prunes[at].st, a, 2, NULL, NULL, &n) != DB_OK) {
		log_warn("pruning %s: %s", prunes[at].what, db_error(mdb));
		n = 0;		/* the next table; this one again in an hour */
	}
	if (n < PRUNE_BATCH)
		at++;
}

/*
 * Every few seconds: back to the earliest node of the DSN that is ready
 * again (db.h), one process deciding for the host. Every tick: the
 * master's idle connections leave a node the host has left.
 */
#define NODES_EVERY_MS	5000

static void
nodes_tick(void)
{
	static int64_t	 last;

	db_follow_idle();
	if (mono_ms() - last < NODES_EVERY_MS)
		return;
	last = mono_ms();
	db_nodes_tick(&dsn);
}

/*
 * The worker of charge slot slot is gone: the mode says whether its
 * charge stands, the ledger keeps one that does and frees the slot, or
 * holds it while a refund waits under it.
 */
static void
slot_gone(int slot)
{
	struct refund	 r;
	int		 stands = meter->dead_charge(mdb, slot);

	places_dead(slot);		/* its open-job places back to spare */
	if (owed_get(slot, &r))
		log_warn("WARN req=%s a worker is gone with its refund waiting "
		    "for the database; the master does it", r.rid);
	charge_slot_gone(slot, stands, meter->prepaid, owed_waiting(slot));
	limits_slot_gone(slot);
}

static pid_t
spawn(void)
{
	uint64_t	 seed = 0;
	pid_t		 pid;
	int		*ws;
	size_t		 o, n = (size_t)cfg_i(CFG_RELAY_THREADS), k;

	for (o = 0; o < sizeof(owners) / sizeof(owners[0]); o++)
		if (owners[o].pid == 0)
			break;
	if (o == sizeof(owners) / sizeof(owners[0])) {
		log_err("too many workers");
		return -1;
	}
	random_bytes(&seed, sizeof(seed));
	if ((ws = calloc(n, sizeof(*ws))) == NULL) {
		log_err("spawn: out of memory");
		return -1;
	}
	for (k = 0; k < n; k++)
		if ((ws[k] = charge_slot_take()) == -1) {
			log_err("no free charge slot for a request thread "
			    "(RELAY_WORKERS x RELAY_THREADS grew past what the "
			    "pool mapped at start: restart it)");
			goto fail;
		}
	if ((pid = fork()) == -1) {
		log_err("fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		log_forked();
		_exit(worker_main(listen_fd, &dsn, host, seed, ws, n, (int)o));
	}
	owners[o].pid = pid;
	owners[o].charge_slots = ws;
	owners[o].ncharge_slots = n;
	return pid;
fail:
	while (k-- > 0)
		charge_slot_free(ws[k]);
	free(ws);
	return -1;
}

/* One of the pool's own processes, if it has one: its pid, or 0. */
static pid_t
spawn_own(enum own o)
{
	pid_t	 pid;

	if (own[o].run == NULL)
		return 0;
	if ((pid = fork()) == -1) {
		log_err("fork: %s", strerror(errno));
		return 0;
	}
	if (pid == 0) {
		log_forked();
		close(listen_fd);
		_exit(own[o].run(&dsn));
	}
	return pid;
}

/* Which of the pool's own processes pid is, or OWN__MAX. */
static enum own
own_of(pid_t pid)
{
	int	 o;

	for (o = 0; o < OWN__MAX; o++)
		if (own[o].pid != 0 && own[o].pid == pid)
			return (enum own)o;
	return OWN__MAX;
}

/* A worker is gone: its charge slots (and any charge in them) settled. */
static void
release(pid_t pid)
{
	size_t	 i;

	if (pid <= 0)
		return;
	for (i = 0; i < sizeof(owners) / sizeof(owners[0]); i++)
		if (owners[i].pid == pid) {
			for (size_t k = 0; k < owners[i].ncharge_slots; k++)
				slot_gone(owners[i].charge_slots[k]);
			free(owners[i].charge_slots);
			owners[i].charge_slots = NULL;
			owners[i].ncharge_slots = 0;
			metrics_worker_gone(i);
			owners[i].pid = 0;
			return;
		}
}

static size_t
pool_size(void)
{
	long long	 n = cfg_i(CFG_RELAY_WORKERS);
	long		 cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (n <= 0)
		n = 2 * (cpus > 0 ? cpus : 1);
	return n > WORKERS_MAX ? WORKERS_MAX : (size_t)n;
}

/*
 * Read the config (again, on SIGHUP). A reload is all or nothing: when
 * any value, the services or the DSN are refused, the pool keeps the
 * config it had, whole, and workers forked later get that one.
 */
static int
load_config(const char *path, int first)
{
	char		 err[512];
	struct dsn	 d;

	if (config_load(path, err, sizeof(err)) == -1)
		goto refused;
	if (services_init(cfg_s(CFG_RELAY_SERVICES), err, sizeof(err)) == -1 ||
	    dsn_parse(cfg_s(CFG_SQL_DSN), &d, err, sizeof(err)) == -1) {
		config_revert();
		if (!first)	/* it was accepted before */
			services_init(cfg_s(CFG_RELAY_SERVICES), NULL, 0);
		goto refused;
	}
	if (log_open(cfg_s(CFG_LOG_FILE), cfg_s(CFG_LOG_LEVEL)) == -1) {
		snprintf(err, sizeof(err), "LOG_FILE %s: %s",
		    cfg_s(CFG_LOG_FILE), strerror(errno));
		wipe(&d, sizeof(d));
		if (!first) {
			config_revert();
			services_init(cfg_s(CFG_RELAY_SERVICES), NULL, 0);
			log_open(cfg_s(CFG_LOG_FILE), cfg_s(CFG_LOG_LEVEL));
		}
		goto refused;
	}
	dsn = d;
	wipe(&d, sizeof(d));
	if (*cfg_s(CFG_REDIS_CONN_STRING) != '\0' && first)
		log_info("REDIS_CONN_STRING is set and ignored: the relay needs "
		    "no Redis");
	return 0;
refused:
	if (first)
		fprintf(stderr, "bltcy-relay: %s\n", err);
	else
		log_err("reload refused, keeping the old config: %s", err);
	return -1;
}

/*
 * Each request in flight holds two descriptors (the front's FastCGI
 * connection and the upstream one): take the hard limit, whatever soft
 * one supervisor or the shell left.
 */
static void
raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Killed by a signal or exiting non-zero: a crash, logged and counted. */
static int
died_badly(int status)
{
	return WIFSIGNALED(status) ||
	    (WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

static void
log_died(const char *what, pid_t pid, int status)
{
	log_err("%s %ld died (%s %d); replacing it", what, (long)pid,
	    WIFSIGNALED(status) ? "signal" : "exit",
	    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
}

/* Before forking one in place of a dead one: a crash loop must not spin. */
static void
crash_pause(void)
{
	static int64_t	 window;
	static int	 deaths;

	if (mono_ms() - window > 1000) {
		window = mono_ms();
		deaths = 0;
	}
	if (++deaths > (int)nworkers * 2 + 2) {
		struct timespec ts = { 1, 0 };
		log_err("processes of the pool keep dying; waiting a second");
		nanosleep(&ts, NULL);
	}
}

static void
reap(void)
{
	pid_t		 pid;
	int		 status;
	size_t		 i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		int		 abnormal = died_badly(status);
		enum own	 o;

		if ((o = own_of(pid)) != OWN__MAX) {
			log_died(own[o].what, pid, status);
			own[o].pid = 0;
			if (!got_term) {
				crash_pause();
				own[o].pid = spawn_own(o);
			}
			continue;
		}
		release(pid);

		for (i = 0; i < nworkers && pids[i] != pid; i++)
			;
		if (i == nworkers) {		/* an old generation's */
			if (nold > 0)
				nold--;
			continue;
		}
		if (abnormal) {
			log_died("worker", pid, status);
			metrics_worker_restart();
		}
		if (got_term) {
			pids[i] = pids[--nworkers];
			continue;
		}
		crash_pause();
		pids[i] = spawn();
		if (pids[i] == -1)
			pids[i] = 0;
	}
}

int
main(int argc, char *argv[])
{
	struct sigaction	 sa;
	sigset_t		 block, waitmask;
	const char		*conf = NULL, *listen_spec = NULL;
	long long		 forced = 0;
	int			 i, check = 0;
	struct stat		 st;
	void			*nodes_shm;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_spec = argv[++i];
		else if (strcmp(argv[i], "--workers") == 0 && i + 1 < argc) {
			if (parse_ll(argv[++i], 1, WORKERS_MAX, &forced) == -1)
				usage();
		} else if (strcmp(argv[i], "--check") == 0)
			check = 1;
		else
			usage();
	}
	if (load_config(conf, 1) == -1)
		return 1;
	raise_nofile();
	if (forced > 0) {
		char n[24], err[128];
		snprintf(n, sizeof(n), "%lld", forced);
		cfg_set(CFG_RELAY_WORKERS, n, err, sizeof(err));
	}
	if (check) {
		printf("config ok\n");
		return 0;
	}
	if (listen_spec != NULL) {
		if ((listen_fd = open_listen(listen_spec)) == -1) {
			fprintf(stderr, "bltcy-relay: cannot listen on %s: %s\n",
			    listen_spec, strerror(errno));
			return 1;
		}
	} else {
		if (fstat(0, &st) == -1 || !S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "bltcy-relay: fd 0 is not a socket; run "
			    "under spawn-fcgi -n or give --listen\n");
			return 1;
		}
		listen_fd = 0;
	}
	instance_name(listen_fd);
	if ((nodes_shm = shm_map(DB_NODES_SHM)) != NULL)
		db_nodes_share(nodes_shm);
	if (nodes_shm == NULL ||
	    metrics_init(service_list()) == -1 || tasks_recent_init() == -1 ||
	    throttle_init() == -1 ||
	    curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "bltcy-relay: cannot initialise\n");
		return 1;
	}
	FCGX_Init();

	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, &waitmask);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGCHLD, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	/* charge slots for every thread of two generations, before fork */
	meter = strcmp(cfg_s(CFG_METERING), "lease") == 0 ? &meter_lease :
	    &meter_strict;
	if ((mdb = db_new(&dsn, master_sql, MS__MAX, 0)) == NULL ||
	    ledger_init(2 * (pool_size() + 1) *
	    (size_t)cfg_i(CFG_RELAY_THREADS)) == -1 || usage_init(host) == -1 ||
	    owed_init(host, ledger_slots()) == -1 ||
	    places_init(host, ledger_slots()) == -1 ||
	    meter->start(host, ledger_slots(), mdb) == -1 ||
	    limits_init(ledger_slots()) == -1) {
		log_err("cannot map the charge slots and the usage ring");
		return 1;
	}
	places_reconcile(mdb);
	{	/* the batch writer's clock */
		struct itimerval it = { { 0, 100000 }, { 0, 100000 } };
		setitimer(ITIMER_REAL, &it, NULL);
	}
	own[OWN_CHARGER].run = meter->process_main;
	for (int o = 0; o < OWN__MAX; o++)
		own[o].pid = spawn_own((enum own)o);
	nworkers = pool_size();
	for (size_t k = 0; k < nworkers; k++)
		if ((pids[k] = spawn()) == -1)
			pids[k] = 0;
	log_info("bltcy-relay started: %zu workers, metering %s, instance %s",
	    nworkers, cfg_s(CFG_METERING), host);

	for (;;) {
		sigsuspend(&waitmask);
		if (got_chld) {
			got_chld = 0;
			reap();
		}
		if (got_term) {
			for (size_t k = 0; k < nworkers; k++)
				if (pids[k] > 0)
					kill(pids[k], SIGTERM);
			log_info("stopping: letting %zu workers finish", nworkers);
			while (nworkers > 0 || nold > 0) {
				pid_t pid;
				int status, current = 0;
				if ((pid = wait(&status)) == -1)
					break;
				enum own o;

				if ((o = own_of(pid)) != OWN__MAX) {
					/* a SIGTERM to the process group */
					if (own[o].needed || died_badly(status))
						log_err("%s died while stopping",
						    own[o].what);
					own[o].pid = 0;
					continue;
				}
				for (size_t k = 0; k < nworkers; k++)
					if (pids[k] == pid) {
						pids[k] = pids[--nworkers];
						current = 1;
						break;
					}
				if (!current && nold > 0)
					nold--;
				release(pid);
			}
			/* every charge the workers made is committed by now */
			for (int o = 0; o < OWN__MAX; o++)
				if (own[o].pid > 0 && kill(own[o].pid, SIGTERM) != 0)
					own[o].pid = 0;
			for (int o = 0; o < OWN__MAX; o++)
				while (own[o].pid > 0 && waitpid(own[o].pid, NULL,
				    0) == -1 && errno == EINTR)
					;
			/* everything written, then the mode's, then refunds */
			usage_drain(mdb);
			places_shutdown(mdb);
			if (meter->shutdown != NULL)
				meter->shutdown(mdb);
			owed_shutdown(&dsn);
			db_free(mdb);
			log_info("stopped");
			log_flush();
			return 0;
		}
		if (got_hup) {
			size_t	 n;
			got_hup = 0;
			if (load_config(conf, 0) == 0) {
				if (strcmp(cfg_s(CFG_METERING), meter->name) != 0)
					log_warn("METERING=%s takes effect at the "
					    "next start; the pool keeps metering "
					    "as it started", cfg_s(CFG_METERING));
				/* the old generation finishes what it has */
				for (size_t k = 0; k < nworkers; k++)
					if (pids[k] > 0 && kill(pids[k], SIGTERM) == 0)
						nold++;
				n = pool_size();
				for (size_t k = 0; k < n; k++)
					if ((pids[k] = spawn()) == -1)
						pids[k] = 0;
				nworkers = n;
				log_info("config reloaded: %zu new workers", n);
			}
		}
		if (got_alrm) {
			got_alrm = 0;
			usage_write(mdb);
			owed_settle(&dsn);
			if (meter->tick != NULL)
				meter->tick(mdb);
			places_tick(mdb);
			prune_tick();
			limits_tick(mdb, host);
			nodes_tick();
		}
		if (got_usr1) {
			got_usr1 = 0;
			log_reopen();
			for (size_t k = 0; k < nworkers; k++)
				if (pids[k] > 0)
					kill(pids[k], SIGUSR1);
			for (int o = 0; o < OWN__MAX; o++)
				if (own[o].pid > 0)
					kill(own[o].pid, SIGUSR1);
		}
	}
}
