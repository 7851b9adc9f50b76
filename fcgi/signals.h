#ifndef BLTCY_SIGNALS_H
#define BLTCY_SIGNALS_H

#include <signal.h>
#include <time.h>

/*
 * How a process of the pool (a worker, the charger, the task poller)
 * takes its signals: never by a handler that cuts a read or a write
 * short, but by waiting for them. signals_block blocks every signal in
 * the calling thread (threads it makes later inherit that) and fills
 * want with those it waits for: SIGTERM and SIGINT (stop), SIGUSR1
 * (reopen the log).
 */
void	 signals_block(sigset_t *want);

/*
 * Wait up to timeout (NULL: until one comes) for a signal of want; a
 * SIGUSR1 reopens the log and the wait goes on. 1: stop; 0: the time
 * is up, or the wait was interrupted.
 */
int	 signals_wait(const sigset_t *want, const struct timespec *timeout);

#endif
