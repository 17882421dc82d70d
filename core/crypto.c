/*
 * crypto.c - see crypto.h. OpenSSL 3 EVP interfaces only.
 */
#include "crypto.h"
#include "mem.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>

struct cm_digest {
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
};

struct cm_sha256 {
	struct cm_digest d;
};

static void must(int ok)
{
	if (!ok)
		abort(); /* only on allocation failure inside OpenSSL */
}

static void digest_init(struct cm_digest *d, const EVP_MD *md)
{
	d->md = md;
	d->ctx = EVP_MD_CTX_new();
	must(d->ctx != NULL);
	must(EVP_DigestInit_ex(d->ctx, md, NULL));
}

struct cm_digest *cm_digest_new(enum cm_digest_type type)
{
	struct cm_digest *d = cm_xmalloc(sizeof(*d));

	digest_init(d, type == CM_DIGEST_MD5 ? EVP_md5() : EVP_sha256());
	return d;
}

void cm_digest_update(struct cm_digest *d, const void *p, size_t n)
{
	must(EVP_DigestUpdate(d->ctx, p, n));
}

void cm_digest_final(struct cm_digest *d, uint8_t *out)
{
	unsigned int len = 0;

	must(EVP_DigestFinal_ex(d->ctx, out, &len));
	must(EVP_DigestInit_ex(d->ctx, d->md, NULL));
}

void cm_digest_free(struct cm_digest *d)
{
	if (!d)
		return;
	EVP_MD_CTX_free(d->ctx);
	free(d);
}

struct cm_sha256 *cm_sha256_new(void)
{
	struct cm_sha256 *h = cm_xmalloc(sizeof(*h));

	digest_init(&h->d, EVP_sha256());
	return h;
}

void cm_sha256_update(struct cm_sha256 *h, const void *p, size_t n)
{
	cm_digest_update(&h->d, p, n);
}

void cm_sha256_final(struct cm_sha256 *h, uint8_t out[CM_SHA256_LEN])
{
	cm_digest_final(&h->d, out);
}

void cm_sha256_free(struct cm_sha256 *h)
{
	if (h)
		EVP_MD_CTX_free(h->d.ctx);
	free(h);
}

void cm_sha256(const void *p, size_t n, uint8_t out[CM_SHA256_LEN])
{
	unsigned int len = 0;

	must(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL));
}

void cm_sha256_hex(const void *p, size_t n, char out[CM_SHA256_HEX_LEN + 1])
{
	uint8_t d[CM_SHA256_LEN];

	cm_sha256(p, n, d);
	cm_hex(d, sizeof(d), out);
}

void cm_md5(const void *p, size_t n, uint8_t out[CM_MD5_LEN])
{
	unsigned int len = 0;

	must(EVP_Digest(p, n, out, &len, EVP_md5(), NULL));
}

void cm_hmac_sha256(const void *key, size_t keylen, const void *msg,
		    size_t msglen, uint8_t out[CM_SHA256_LEN])
{
	unsigned int len = 0;

	must(HMAC(EVP_sha256(), key, (int)keylen, msg, msglen, out, &len) !=
	     NULL);
}

void cm_hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void cm_base64(const uint8_t *p, size_t n, char *out)
{
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
}
