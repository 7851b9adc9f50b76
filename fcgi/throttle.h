#ifndef BLTCY_THROTTLE_H
#define BLTCY_THROTTLE_H

/*
 * Failed token checks per client address, across the workers of a host
 * (throttle.c): past its burst, an address is refused a lookup of a key
 * no worker of the host has found a token for.
 */

int	 throttle_init(void);	/* master, before fork */
/* The address has no failure left: 1, with the seconds to wait. */
int	 throttle_over(const char *addr, int *retry_s);
void	 throttle_failed(const char *addr);
/* A key some worker found a token for (throttle_known: it was). */
void	 throttle_found(const char *key);
int	 throttle_known(const char *key);
/* Wait a while before a 429 goes out (RELAY_AUTH_FAIL_DELAY_MS). */
void	 throttle_hold_back(void);

#endif
