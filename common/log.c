#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
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
	if (log_fd != STDERR_FILENO)
		close(log_fd);
	log_fd = fd;
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

void
logmsg(enum log_level lv, const char *fmt, ...)
{
	char		 line[2048];
	struct tm	 tm;
	time_t		 t;
	va_list		 ap;
	int		 n, m;
	size_t		 len;

	if (lv < log_min)
		return;
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
	if (n < 0)
		return;
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	/* one line each: control bytes from a request never split it */
	for (size_t i = (size_t)n; i < len; i++)
		if ((unsigned char)line[i] < 0x20)
			line[i] = ' ';
	line[len++] = '\n';
	while (write(log_fd, line, len) == -1 && errno == EINTR)
		;
}
