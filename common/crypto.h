#ifndef BLTCY_CRYPTO_H
#define BLTCY_CRYPTO_H

#include <stddef.h>

/*
 * Secrets at rest and in cookies. Keys are derived from CRYPTO_SECRET,
 * else SESSION_SECRET, with HMAC-SHA256 and a purpose label, so one
 * secret never serves two uses.
 */

#define SEAL_PREFIX	"enc:v1:"

/* 32-byte key for purpose ("channel-key", "session", ...). 0 ok. */
int	 derive_key(const char *purpose, unsigned char key[32]);

/*
 * Encrypt plain with AES-256-GCM: "enc:v1:" + base64(nonce|ct|tag).
 * Returns a malloc'd string or NULL.
 */
char	*seal(const char *plain);

/*
 * Decrypt a sealed value; a value without the prefix is returned as is
 * (plain keys written by new-api). Returns a malloc'd string, or NULL when
 * the value is sealed but does not open (wrong secret, tampered).
 */
char	*unseal(const char *stored);

void	 hmac_sha256(const void *key, size_t keylen, const void *msg,
	    size_t msglen, unsigned char out[32]);
void	 sha256_hex(const void *, size_t, char out[65]);

/* base64url without padding (cookies) / standard base64. Return length or -1. */
int	 b64url_encode(const unsigned char *, size_t, char *out, size_t outsz);
int	 b64url_decode(const char *, size_t, unsigned char *out, size_t outsz);

/* bcrypt, compatible with new-api ($2a$/$2b$/$2y$, cost 10). 0 ok. */
int	 password_hash(const char *pw, char *out, size_t outsz);
int	 password_verify(const char *pw, const char *hash);	/* 1 match */

/* n random characters of [0-9a-zA-Z] into out (NUL-terminated). 0 ok. */
int	 random_alnum(char *out, size_t n);

#endif
