/*
 * crypto.c - see crypto.h. OpenSSL 3 EVP interfaces only.
 */
#include "crypto.h"
#include "mem.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>

struct cm_sha256 {
	EVP_MD_CTX *ctx;
};

static void must(int ok)
{
	if (!ok)
		abort(); /* only on allocation failure inside OpenSSL */
}

struct cm_sha256 *cm_sha256_new(void)
{
	struct cm_sha256 *h = cm_xmalloc(sizeof(*h));

	h->ctx = EVP_MD_CTX_new();
	must(h->ctx != NULL);
	must(EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL));
	return h;
}

void cm_sha256_update(struct cm_sha256 *h, const void *p, size_t n)
{
	must(EVP_DigestUpdate(h->ctx, p, n));
}

void cm_sha256_final(struct cm_sha256 *h, uint8_t out[CM_SHA256_LEN])
{
	unsigned int len = 0;

	must(EVP_DigestFinal_ex(h->ctx, out, &len));
	must(EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL));
}

void cm_sha256_free(struct cm_sha256 *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
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
