#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int		 log_fd = STDERR_FILENO;
static char		 log_path[512];
static enum log_level	 log_min = LV_INFO;
static long		 log_pid;	/* getpid(2) is a syscall each time */
static time_t		 stamp_t = -1;	/* the second stamp[] shows */
static char		 stamp[64];

static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERR" };

/* The request threads of a worker log at once: the fold table, the stamp
 * and the descriptor are this lock's. */
static pthread_mutex_t	 log_mu = PTHREAD_MUTEX_INITIALIZER;

/*
 * Errors are folded: a call site (its format string, not the formatted
 * text, which carries request ids) writes at most one line per second; the
 * lines it would have written meanwhile are counted, and once that second
 * is over a summary line repeats the one written with the count. A
 * database outage thus costs a few lines a second per process, not several
 * per request. Lower levels are never folded, as the line of each request
 * (INFO, or WARN for a 5xx) is logged at one call site; nor are call sites
 * beyond FOLD_MAX in one second.
 */
#define FOLD_MAX	64
#define LINE_MAX_	2048

struct fold {
	const char	*fmt;		/* the key; NULL: free */
	time_t		 sec;		/* when its line was written */
	unsigned long	 more;		/* lines folded since */
	enum log_level	 lv;
	char		 line[LINE_MAX_];	/* the message written, no stamp */
};

static struct fold	 folds[FOLD_MAX];
static time_t		 folds_sec = -1;	/* the second folds[] were swept */

int
log_open(const char *file, const char *level)
{
	int	 i;

	for (i = 0; i <= LV_ERR; i++)
		if (level != NULL && ascii_casecmp_n(level, names[i], 6) == 0)
			log_min = (enum log_level)i;
	if (level != NULL && strcmp(level, "error") == 0)
		log_min = LV_ERR;
	if (level != NULL && strcmp(level, "warn") == 0)
		log_min = LV_WARN;
	log_pid = (long)getpid();
	log_path[0] = '\0';
	if (file != NULL && *file != '\0') {
		if (strlcpy_(log_path, file, sizeof(log_path)) >= sizeof(log_path))
			return errno = ENAMETOOLONG, -1;
	}
	return log_reopen();
}

int
log_reopen(void)
{
	int	 fd;

	if (log_path[0] == '\0') {
		log_fd = STDERR_FILENO;
		return 0;
	}
	fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		return -1;
	pthread_mutex_lock(&log_mu);
	if (log_fd != STDERR_FILENO) {
		/* the same number names the new file: a writer never sees it closed */
		if (dup3(fd, log_fd, O_CLOEXEC) != -1) {
			close(fd);
			fd = log_fd;
		} else
			close(log_fd);
	}
	log_fd = fd;
	pthread_mutex_unlock(&log_mu);
	return 0;
}

void
log_forked(void)
{
	log_pid = (long)getpid();
}

int
log_enabled(enum log_level lv)
{
	return lv >= log_min;
}

/* One whole line: stamp, level, pid, then msg; one write(2). */
static void
put_line(enum log_level lv, const char *msg, size_t msglen,
    const char *suffix)
{
	char		 line[LINE_MAX_ + 96];
	struct tm	 tm;
	time_t		 t;
	int		 n, m;
	size_t		 len;

	t = time(NULL);
	if (t != stamp_t) {
		gmtime_r(&t, &tm);
		snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02dZ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		    tm.tm_min, tm.tm_sec);
		stamp_t = t;
	}
	if (log_pid == 0)
		log_pid = (long)getpid();
	n = snprintf(line, sizeof(line), "%s %s [%ld] ", stamp, names[lv],
	    log_pid);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	len = (size_t)n;
	if (msglen > sizeof(line) - 2 - len)
		msglen = sizeof(line) - 2 - len;
	memcpy(line + len, msg, msglen);
	len += msglen;
	if (suffix != NULL) {
		m = snprintf(line + len, sizeof(line) - 1 - len, "%s", suffix);
		if (m > 0)
			len += (size_t)m < sizeof(line) - 2 - len ?
			    (size_t)m : sizeof(line) - 2 - len;
	}
	line[len++] = '\n';
	while (write(log_fd, line, len) == -1 && errno == EINTR)
		;
}

/* Summary lines for call sites whose second is over; frees their entry. */
static void
fold_sweep(time_t now)
{
	char		 suffix[80];
	size_t		 i;

	if (now == folds_sec)
		return;
	folds_sec = now;
	for (i = 0; i < FOLD_MAX; i++) {
		struct fold *f = &folds[i];

		if (f->fmt == NULL || f->sec == now)
			continue;
		if (f->more > 0) {
			snprintf(suffix, sizeof(suffix), " (and %lu more like "
			    "this in the last second)", f->more);
			put_line(f->lv, f->line, strlen(f->line), suffix);
		}
		f->fmt = NULL;
	}
}

/*
 * Whether this line of call site fmt is folded (1, counted) or written
 * (0; then *slot, unless NULL when the table is full, is where to keep it).
 */
static int
fold_find(const char *fmt, struct fold **slot)
{
	size_t	 i;

	*slot = NULL;
	for (i = 0; i < FOLD_MAX; i++) {
		struct fold *f = &folds[i];

		if (f->fmt == fmt) {
			f->more++;	/* swept: it wrote this second */
			return 1;
		}
		if (f->fmt == NULL && *slot == NULL)
			*slot = f;
	}
	return 0;
}

void
log_flush(void)
{
	pthread_mutex_lock(&log_mu);
	fold_sweep(time(NULL) + 1);
	pthread_mutex_unlock(&log_mu);
}

void
logmsg(enum log_level lv, const char *fmt, ...)
{
	char		 msg[LINE_MAX_];
	struct fold	*slot = NULL;
	time_t		 now;
	va_list		 ap;
	int		 m;
	size_t		 len, i;

	if (lv < log_min)
		return;
	/* any line ends the second of those folded before it */
	now = time(NULL);
	pthread_mutex_lock(&log_mu);
	fold_sweep(now);
	if (lv >= LV_ERR && fold_find(fmt, &slot)) {
		pthread_mutex_unlock(&log_mu);
		return;
	}
	va_start(ap, fmt);
	m = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (m < 0) {
		pthread_mutex_unlock(&log_mu);
		return;
	}
	len = (size_t)m < sizeof(msg) - 1 ? (size_t)m : sizeof(msg) - 1;
	/* one line each: control bytes from a request never split it */
	for (i = 0; i < len; i++)
		if ((unsigned char)msg[i] < 0x20)
			msg[i] = ' ';
	if (slot != NULL) {
		slot->fmt = fmt;
		slot->sec = now;
		slot->more = 0;
		slot->lv = lv;
		memcpy(slot->line, msg, len);
		slot->line[len] = '\0';
	}
	put_line(lv, msg, len, NULL);
	pthread_mutex_unlock(&log_mu);
}
