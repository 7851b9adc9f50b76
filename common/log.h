#ifndef BLTCY_LOG_H
#define BLTCY_LOG_H

enum log_level { LV_DEBUG, LV_INFO, LV_WARN, LV_ERR };

/*
 * Lines go to LOG_FILE (opened O_APPEND) or stderr, one write(2) each so
 * that workers never interleave. Never pass a key or token to these.
 * Errors from one call site are folded to one line a second and a count
 * (log.c).
 */
int	 log_open(const char *file, const char *level);	/* 0 ok, -1 errno */
int	 log_reopen(void);
void	 log_forked(void);		/* in a child: its own pid */
int	 log_enabled(enum log_level);
/* Write the summaries of folded lines now (before exit). */
void	 log_flush(void);
void	 logmsg(enum log_level, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));

#define log_debug(...)	do { if (log_enabled(LV_DEBUG)) logmsg(LV_DEBUG, __VA_ARGS__); } while (0)
#define log_info(...)	logmsg(LV_INFO, __VA_ARGS__)
#define log_warn(...)	logmsg(LV_WARN, __VA_ARGS__)
#define log_err(...)	logmsg(LV_ERR, __VA_ARGS__)

#endif
