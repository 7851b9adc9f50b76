#include <crypt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "config.h"
#include "crypto.h"
#include "util.h"

#define NONCE_LEN	12
#define TAG_LEN		16

int
derive_key(const char *purpose, unsigned char key[32])
{
	const char	*secret = cfg_s(CFG_CRYPTO_SECRET);

	if (*secret == '\0')
		secret = cfg_s(CFG_SESSION_SECRET);
	if (*secret == '\0')
		return -1;
	hmac_sha256(secret, strlen(secret), purpose, strlen(purpose), key);
	return 0;
}

void
hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
    unsigned char out[32])
{
	unsigned int	 n = 32;

	HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &n);
}

void
sha256_hex(const void *p, size_t n, char out[65])
{
	static const char	 hx[] = "0123456789abcdef";
	unsigned char		 md[32];
	int			 i;

	SHA256(p, n, md);
	for (i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
}

static const char b64u[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int
b64url_encode(const unsigned char *in, size_t n, char *out, size_t outsz)
{
	size_t	 i, o = 0;

	if (outsz == 0 || n > (outsz - 1) / 4 * 3)
		return -1;
	for (i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < n) v |= in[i + 2];
		out[o++] = b64u[(v >> 18) & 63];
		out[o++] = b64u[(v >> 12) & 63];
		if (i + 1 < n) out[o++] = b64u[(v >> 6) & 63];
		if (i + 2 < n) out[o++] = b64u[v & 63];
	}
	out[o] = '\0';
	return (int)o;
}

int
b64url_decode(const char *in, size_t n, unsigned char *out, size_t outsz)
{
	unsigned	 acc = 0;
	int		 bits = 0;
	size_t		 i, o = 0;

	for (i = 0; i < n; i++) {
		const char *p = in[i] ? strchr(b64u, in[i]) : NULL;
		if (p == NULL)
			return -1;
		acc = (acc << 6) | (unsigned)(p - b64u);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= outsz)
				return -1;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return (int)o;
}

char *
seal(const char *plain)
{
	unsigned char	 key[32], nonce[NONCE_LEN], *raw = NULL;
	EVP_CIPHER_CTX	*ctx = NULL;
	size_t		 n = strlen(plain), rawlen, outsz;
	char		*out = NULL;
	int		 len;

	if (n > 1 << 20 || derive_key("channel-key", key) == -1 ||
	    random_bytes(nonce, sizeof(nonce)) == -1)
		goto done;
	rawlen = NONCE_LEN + n + TAG_LEN;
	if ((raw = malloc(rawlen)) == NULL ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL)
		goto done;
	memcpy(raw, nonce, NONCE_LEN);
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, raw + NONCE_LEN, &len,
	    (const unsigned char *)plain, (int)n) != 1 ||
	    EVP_EncryptFinal_ex(ctx, raw + NONCE_LEN + len, &len) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
	    raw + NONCE_LEN + n) != 1)
		goto done;
	outsz = sizeof(SEAL_PREFIX) + rawlen / 3 * 4 + 8;
	if ((out = malloc(outsz)) == NULL)
		goto done;
	memcpy(out, SEAL_PREFIX, sizeof(SEAL_PREFIX) - 1);
	if (b64url_encode(raw, rawlen, out + sizeof(SEAL_PREFIX) - 1,
	    outsz - (sizeof(SEAL_PREFIX) - 1)) == -1) {
		free(out);
		out = NULL;
	}
done:
	wipe(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	return out;
}

char *
unseal(const char *stored)
{
	const size_t	 pl = sizeof(SEAL_PREFIX) - 1;
	unsigned char	 key[32], *raw = NULL;
	EVP_CIPHER_CTX	*ctx = NULL;
	char		*out = NULL;
	size_t		 n;
	int		 rawlen, len, ok = 0;

	if (strncmp(stored, SEAL_PREFIX, pl) != 0)
		return strdup(stored);
	n = strlen(stored + pl);
	if ((raw = malloc(n)) == NULL)
		return NULL;
	rawlen = b64url_decode(stored + pl, n, raw, n);
	if (rawlen < NONCE_LEN + TAG_LEN || derive_key("channel-key", key) == -1)
		goto done;
	n = (size_t)rawlen - NONCE_LEN - TAG_LEN;
	if ((out = malloc(n + 1)) == NULL ||
	    (ctx = EVP_CIPHER_CTX_new()) == NULL)
		goto done;
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, raw) != 1 ||
	    EVP_DecryptUpdate(ctx, (unsigned char *)out, &len,
	    raw + NONCE_LEN, (int)n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
	    raw + NONCE_LEN + n) != 1 ||
	    EVP_DecryptFinal_ex(ctx, (unsigned char *)out + len, &len) != 1)
		goto done;
	out[n] = '\0';
	ok = 1;
done:
	wipe(key, sizeof(key));
	EVP_CIPHER_CTX_free(ctx);
	free(raw);
	if (!ok && out != NULL) {
		wipe(out, n);
		free(out);
		out = NULL;
	}
	return out;
}

int
password_hash(const char *pw, char *out, size_t outsz)
{
	struct crypt_data	*cd;
	char			 salt[CRYPT_GENSALT_OUTPUT_SIZE];
	const char		*h;
	int			 rc = -1;

	if (crypt_gensalt_rn("$2a$", 10, NULL, 0, salt, sizeof(salt)) == NULL)
		return -1;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return -1;
	h = crypt_r(pw, salt, cd);
	if (h != NULL && h[0] == '$' && strlen(h) < outsz) {
		strlcpy_(out, h, outsz);
		rc = 0;
	}
	wipe(cd, sizeof(*cd));
	free(cd);
	return rc;
}

int
password_verify(const char *pw, const char *hash)
{
	struct crypt_data	*cd;
	const char		*h;
	int			 ok = 0;

	if (strncmp(hash, "$2", 2) != 0)
		return 0;
	if ((cd = calloc(1, sizeof(*cd))) == NULL)
		return 0;
	h = crypt_r(pw, hash, cd);
	if (h != NULL && h[0] == '$' && strlen(h) == strlen(hash))
		ok = ct_memeq(h, hash, strlen(hash));
	wipe(cd, sizeof(*cd));
	free(cd);
	return ok;
}

int
random_alnum(char *out, size_t n)
{
	static const char	 set[] =
	    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	unsigned char		 r;
	size_t			 i = 0;

	while (i < n) {
		if (random_bytes(&r, 1) == -1)
			return -1;
		if (r >= 248)		/* 248 = 4 * 62: no modulo bias */
			continue;
		out[i++] = set[r % 62];
	}
	out[n] = '\0';
	return 0;
}
