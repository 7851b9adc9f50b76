#include <pthread.h>
#include <signal.h>

#include "log.h"
#include "signals.h"

void
signals_block(sigset_t *want)
{
	sigset_t	 all;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	sigemptyset(want);
	sigaddset(want, SIGTERM);
	sigaddset(want, SIGINT);
	sigaddset(want, SIGUSR1);
}

int
signals_wait(const sigset_t *want, const struct timespec *timeout)
{
	int	 sig;

	while ((sig = sigtimedwait(want, NULL, timeout)) == SIGUSR1)
		log_reopen();
	return sig == SIGTERM || sig == SIGINT;
}
