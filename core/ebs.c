/*
 * ebs.c - the EBS direct APIs, read side (see ebs.h).
 */
#include "ebs.h"

#include "buf.h"
#include "crypto.h"
#include "http.h"
#include "json.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LIST_PAGE 10000   /* the API's largest page */
#define PAGES_MAX 100000  /* a listing that never ends is an error */
#define EXPIRY_MARGIN 60  /* seconds: tokens this close to expiry are old */

void ebs_listing_release(struct ebs_listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->blocks[i].token);
	free(l->blocks);
	memset(l, 0, sizeof(*l));
}

bool ebs_listing_expired(const struct ebs_listing *l, time_t now)
{
	return l->expiry && now + EXPIRY_MARGIN >= l->expiry;
}

const struct ebs_block *ebs_listing_find(const struct ebs_listing *l,
					 uint64_t index)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->blocks[mid].index == index)
			return &l->blocks[mid];
		if (l->blocks[mid].index < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* A non-negative integer member: a JSON number, or a decimal string (the
 * API's integers, as some servers send them). */
static bool json_uint(const struct cm_json *j, uint64_t *out)
{
	const char *s = cm_json_str(j);
	char *end;
	double d;

	if (s) {
		if (!*s || *s < '0' || *s > '9')
			return false;
		errno = 0;
		*out = strtoull(s, &end, 10);
		return !*end && errno == 0;
	}
	if (cm_json_type(j) != CM_JSON_NUMBER)
		return false;
	d = cm_json_num(j);
	if (d < 0 || d > 9007199254740992.0 || d != (double)(uint64_t)d)
		return false;
	*out = (uint64_t)d;
	return true;
}

static int by_index(const void *a, const void *b)
{
	const struct ebs_block *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

/* One page's members into l (sizes from the first page; later pages must
 * agree). */
static int take_page(const char *snapshot, const struct cm_json *ans,
		     struct ebs_listing *l, size_t *cap, struct cm_err *err)
{
	const struct cm_json *blocks = cm_json_get(ans, "Blocks");
	uint64_t bs, vs;
	time_t exp;

	if (!json_uint(cm_json_get(ans, "BlockSize"), &bs) || !bs ||
	    bs > EBS_BLOCK_MAX ||
	    !json_uint(cm_json_get(ans, "VolumeSize"), &vs) || !vs ||
	    vs > (1ull << 34))
		return cm_err_set(err, EIO, "ebs: ListSnapshotBlocks %s: no "
				  "usable BlockSize and VolumeSize in the "
				  "answer", snapshot);
	if (l->pages > 1 && (bs != l->block_size ||
			     (vs << 30) != l->volume_bytes))
		return cm_err_set(err, EIO, "ebs: ListSnapshotBlocks %s: the "
				  "pages disagree on BlockSize or VolumeSize",
				  snapshot);
	l->block_size = (uint32_t)bs;
	l->volume_bytes = vs << 30;
	exp = cm_json_time(cm_json_get(ans, "ExpiryTime"));
	if (exp && (!l->expiry || exp < l->expiry))
		l->expiry = exp;
	for (const struct cm_json *it = cm_json_first(blocks); it;
	     it = cm_json_next(it)) {
		const char *tok = cm_json_get_str(it, "BlockToken");
		uint64_t idx;

		if (!json_uint(cm_json_get(it, "BlockIndex"), &idx) || !tok)
			return cm_err_set(err, EIO, "ebs: ListSnapshotBlocks "
					  "%s: a block without BlockIndex or "
					  "BlockToken", snapshot);
		if (l->n == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			l->blocks = cm_xrealloc(l->blocks,
						*cap * sizeof(*l->blocks));
		}
		l->blocks[l->n].index = idx;
		l->blocks[l->n].token = cm_xstrdup(tok);
		l->n++;
	}
	return 0;
}

/* The indexes come in order (the API says so); sorted anyway, because a
 * lookup by binary search must never miss a block, and checked. */
static int finish_listing(const char *snapshot, struct ebs_listing *l,
			  struct cm_err *err)
{
	uint64_t nidx;

	if (l->n)
		qsort(l->blocks, l->n, sizeof(*l->blocks), by_index);
	nidx = l->volume_bytes / l->block_size;
	for (size_t i = 0; i < l->n; i++) {
		if (i && l->blocks[i].index == l->blocks[i - 1].index)
			return cm_err_set(err, EIO, "ebs: ListSnapshotBlocks "
					  "%s: block %" PRIu64 " listed twice",
					  snapshot, l->blocks[i].index);
	}
	/* BlockSize may understate the block (see ebs_block_size): an index
	 * is checked against the volume at the smallest size it may have */
	if (l->n && l->blocks[l->n - 1].index >= nidx)
		return cm_err_set(err, EIO, "ebs: ListSnapshotBlocks %s: block "
				  "%" PRIu64 " is past the end of the %" PRIu64
				  "-byte volume", snapshot,
				  l->blocks[l->n - 1].index, l->volume_bytes);
	return 0;
}

int ebs_list_blocks(struct aws_client *c, const char *snapshot,
		    struct ebs_listing *out, struct cm_err *err)
{
	char *enc = aws_uri_encode(snapshot), *token = NULL;
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (;;) {
		struct aws_rest_request req = { 0 };
		struct cm_json *ans = NULL;
		char *tok = token ? aws_uri_encode(token) : NULL;
		char *path;
		const char *next;

		if (out->pages == PAGES_MAX) {
			rc = cm_err_set(err, EIO, "ebs: ListSnapshotBlocks %s: "
					"more than %d pages", snapshot,
					PAGES_MAX);
			break;
		}
		path = cm_xasprintf("/snapshots/%s/blocks?maxResults=%d%s%s",
				    enc, LIST_PAGE, tok ? "&pageToken=" : "",
				    tok ? tok : "");
		req.op = "ListSnapshotBlocks";
		req.method = "GET";
		req.path = path;
		rc = aws_rest(c, &req, &ans, NULL, err);
		free(tok);
		free(path);
		if (rc)
			break;
		out->pages++;
		rc = take_page(snapshot, ans, out, &cap, err);
		next = cm_json_get_str(ans, "NextToken");
		free(token);
		token = !rc && next && *next ? cm_xstrdup(next) : NULL;
		cm_json_free(ans);
		if (rc || !token)
			break;
	}
	free(token);
	free(enc);
	if (!rc)
		rc = finish_listing(snapshot, out, err);
	if (rc)
		ebs_listing_release(out);
	return rc;
}

int ebs_check_block(const void *data, size_t len, const char *checksum,
		    const char *algorithm, const char *data_length,
		    const char *what, struct cm_err *err)
{
	uint8_t sum[CM_SHA256_LEN];
	char b64[4 * ((CM_SHA256_LEN + 2) / 3) + 1];

	if (algorithm && *algorithm && strcasecmp(algorithm, "SHA256") != 0)
		return cm_err_set(err, EIO, "%s: checksum algorithm %.32s, "
				  "not SHA256", what, algorithm);
	if (!checksum || !*checksum)
		return cm_err_set(err, EIO, "%s: no x-amz-Checksum in the "
				  "answer", what);
	if (data_length) {
		char *end;
		unsigned long long n = strtoull(data_length, &end, 10);

		if (*end || end == data_length || n != len)
			return cm_err_set(err, EIO, "%s: %zu bytes received, "
					  "x-amz-Data-Length says %.32s", what,
					  len, data_length);
	}
	cm_sha256(data, len, sum);
	cm_base64(sum, sizeof(sum), b64);
	if (strcmp(b64, checksum) != 0)
		return cm_err_set(err, EIO, "%s: SHA-256 of the %zu bytes "
				  "received is %s, x-amz-Checksum says %.64s",
				  what, len, b64, checksum);
	return 0;
}

/* The block's bytes into a fixed buffer. */
struct block_sink {
	char *buf;
	size_t cap, len;
	bool over;
};

static size_t block_sink(void *ctx, const void *p, size_t n)
{
	struct block_sink *s = ctx;

	if (n > s->cap - s->len) {
		s->over = true;
		return 0; /* aborts the transfer */
	}
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return n;
}

static const char *header(const struct cm_buf *h, const char *name,
			  char *out, size_t n)
{
	struct cm_http_response r;

	memset(&r, 0, sizeof(r));
	r.headers = *h;
	return cm_http_response_header(&r, name, out, n) ? out : NULL;
}

int ebs_get_block(struct aws_client *c, const char *snapshot,
		  const struct ebs_block *b, void *buf, size_t cap,
		  size_t *len, struct cm_err *err)
{
	struct aws_rest_request req = { 0 };
	struct block_sink s = { .buf = buf, .cap = cap };
	struct cm_buf h;
	char *enc = aws_uri_encode(snapshot), *tok = aws_uri_encode(b->token);
	char *path, what[128], sum[128], algo[32], dlen[32];
	int rc;

	snprintf(what, sizeof(what), "ebs: GetSnapshotBlock %s block %" PRIu64,
		 snapshot, b->index);
	path = cm_xasprintf("/snapshots/%s/blocks/%" PRIu64 "?blockToken=%s",
			    enc, b->index, tok);
	cm_buf_init(&h, 64 << 10);
	req.op = "GetSnapshotBlock";
	req.method = "GET";
	req.path = path;
	req.sink = block_sink;
	req.sink_ctx = &s;
	rc = aws_rest(c, &req, NULL, &h, err);
	if (rc && s.over)
		rc = cm_err_set(err, ENOSPC, "%s: larger than %zu bytes", what,
				cap);
	if (!rc)
		rc = ebs_check_block(buf, s.len,
				     header(&h, "x-amz-Checksum", sum,
					    sizeof(sum)),
				     header(&h, "x-amz-Checksum-Algorithm",
					    algo, sizeof(algo)),
				     header(&h, "x-amz-Data-Length", dlen,
					    sizeof(dlen)),
				     what, err);
	*len = s.len;
	cm_buf_release(&h);
	free(path);
	free(tok);
	free(enc);
	return rc;
}

/*
 * Why the block size comes from the data: the API reference gives
 * BlockSize as the size of a block in bytes (524288 on AWS), but servers
 * that speak the API have been seen to report the sector size (512) while
 * serving 524288-byte blocks. The bytes are what the image is made of, so
 * the first block's DataLength decides; BlockSize must still divide it
 * (an answer that contradicts itself otherwise is refused), and the size
 * must be a power of two that tiles the volume.
 */
int ebs_block_size(const char *snapshot, uint32_t reported,
		   size_t data_length, uint64_t volume_bytes, uint32_t *out,
		   struct cm_err *err)
{
	if (data_length < 512 || data_length > EBS_BLOCK_MAX ||
	    (data_length & (data_length - 1)))
		return cm_err_set(err, EIO, "ebs: snapshot %s: a block of %zu "
				  "bytes (not a power of two from 512 to %u)",
				  snapshot, data_length, EBS_BLOCK_MAX);
	if (!reported || data_length % reported)
		return cm_err_set(err, EIO, "ebs: snapshot %s: blocks of %zu "
				  "bytes, but ListSnapshotBlocks says "
				  "BlockSize %u", snapshot, data_length,
				  reported);
	if (volume_bytes % data_length)
		return cm_err_set(err, EIO, "ebs: snapshot %s: blocks of %zu "
				  "bytes do not tile the %" PRIu64 "-byte "
				  "volume", snapshot, data_length,
				  volume_bytes);
	*out = (uint32_t)data_length;
	return 0;
}
