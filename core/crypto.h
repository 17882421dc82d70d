/*
 * crypto.h - the only door to OpenSSL: digests, HMAC, hex and base64.
 *
 * Digest contexts are heap objects (OpenSSL's EVP_MD_CTX); `cm_sha256_*`
 * and `cm_digest_*` stream any amount of data. All functions abort on an
 * OpenSSL failure that cannot happen short of memory exhaustion.
 */
#ifndef VAULTFS_CRYPTO_H
#define VAULTFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define CM_SHA256_LEN 32
#define CM_SHA256_HEX_LEN 64
#define CM_MD5_LEN 16

struct cm_sha256;

struct cm_sha256 *cm_sha256_new(void);
void cm_sha256_update(struct cm_sha256 *h, const void *p, size_t n);
/* Writes 32 bytes and resets the context for reuse. */
void cm_sha256_final(struct cm_sha256 *h, uint8_t out[CM_SHA256_LEN]);
void cm_sha256_free(struct cm_sha256 *h);

/* The same for either algorithm, chosen when made. */
enum cm_digest_type {
	CM_DIGEST_SHA256,
	CM_DIGEST_MD5,
};
struct cm_digest;

struct cm_digest *cm_digest_new(enum cm_digest_type type);
void cm_digest_update(struct cm_digest *d, const void *p, size_t n);
/* Writes CM_SHA256_LEN or CM_MD5_LEN bytes and resets the context. */
void cm_digest_final(struct cm_digest *d, uint8_t *out);
void cm_digest_free(struct cm_digest *d); /* NULL is a no-op */

void cm_sha256(const void *p, size_t n, uint8_t out[CM_SHA256_LEN]);
/* sha256 as 64 lowercase hex characters plus NUL. */
void cm_sha256_hex(const void *p, size_t n, char out[CM_SHA256_HEX_LEN + 1]);
void cm_md5(const void *p, size_t n, uint8_t out[CM_MD5_LEN]);
void cm_hmac_sha256(const void *key, size_t keylen, const void *msg,
		    size_t msglen, uint8_t out[CM_SHA256_LEN]);

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void cm_hex(const uint8_t *p, size_t n, char *out);
/* Standard base64 with padding into out (4*ceil(n/3)+1 bytes). */
void cm_base64(const uint8_t *p, size_t n, char *out);

#endif
