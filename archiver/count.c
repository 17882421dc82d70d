/*
 * count.c - the counter of verify.h: what a tar or raw stream holds.
 *
 * A tar stream is walked as it goes by, a 512-byte block at a time, with no
 * library: the same walk serves the archiver (counting what tar.c wrote,
 * before the codec) and the verifier (counting what the decoder gives back),
 * so the two counts can only agree when the bytes do.
 *
 * The walk, per entry: optional meta headers (pax 'x' and 'g' records, GNU
 * 'L' and 'K' long names), then the entry's header, then its data (GNU 'S'
 * sparse headers may add extension blocks first), padded to 512. Every
 * header's checksum is checked, sizes are read in octal or base-256, pax
 * records must be well formed ("LEN key=value\n", LEN counting itself) and a
 * pax "size" replaces the header's. The archive ends with two zero blocks;
 * what follows (the writer's record padding) must be zeros too. Data is
 * skipped, not looked at: long zero runs arriving as write_zeros cost
 * nothing.
 *
 * Entries are numbered from 1 in messages; an entry's name (pax path, GNU
 * long name, or ustar prefix/name) is shown printable (arc_printable).
 *
 * Threads: one, the chain's driver (arc.h). The counter owns its buffers.
 */
#include "verify.h"
#include "json.h"
#include "mem.h"
#include "source_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 512
#define META_MAX (64u << 20)  /* pax or long-name data we keep */

enum walk_state {
	W_HEADER,   /* collecting a header block */
	W_META,     /* collecting a meta header's data */
	W_SPARSE,   /* GNU sparse extension blocks */
	W_DATA,     /* skipping an entry's data */
	W_PAD,      /* skipping the padding after data or meta */
	W_END1,     /* one zero block seen */
	W_TRAILER,  /* the end-of-archive marker seen: zeros only */
};

struct count {
	struct arc_filter filter;
	enum arc_method method;
	struct arc_counts c;
	enum walk_state state;
	unsigned char block[BLOCK];
	size_t have;           /* bytes in block */
	uint64_t left;         /* W_META, W_DATA, W_PAD: bytes to go */
	uint64_t size;         /* the current entry's data size */
	uint64_t block_at;     /* stream offset of the block being filled */
	char meta_type;        /* W_META: 'x', 'g', 'L' or 'K' */
	char *meta;            /* owned: W_META's data */
	size_t meta_len;
	/* from meta headers, for the next entry */
	char *next_name;       /* owned or NULL */
	bool next_has_size;
	uint64_t next_size;
	char *name;            /* owned: the current entry's name, printable */
	bool failed;
};

static int fail_at(struct count *k, struct cm_err *err, const char *fmt,
		   ...) __attribute__((format(printf, 3, 4)));

/* "tar entry N 'name': ..." or, with no name yet, "tar entry N at byte X". */
static int fail_at(struct count *k, struct cm_err *err, const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	k->failed = true;
	if (k->name)
		return cm_err_set(err, EIO, "tar entry %llu '%s': %s",
				  (unsigned long long)k->c.entries, k->name,
				  what);
	return cm_err_set(err, EIO, "tar entry %llu at byte %llu: %s",
			  (unsigned long long)k->c.entries + 1,
			  (unsigned long long)k->block_at, what);
}

/* An octal or base-256 number field; -1 when it is neither. */
static int parse_number(const unsigned char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;

	if (p[0] & 0x80) {
		/* base-256: the first byte's top bit marks it */
		if (p[0] & 0x40)
			return -1; /* negative */
		v = p[0] & 0x3f;
		for (i = 1; i < n; i++) {
			if (v >> 56)
				return -1;
			v = (v << 8) | p[i];
		}
		*out = v;
		return 0;
	}
	while (i < n && p[i] == ' ')
		i++;
	for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
		if (v >> 61)
			return -1;
		v = v * 8 + (uint64_t)(p[i] - '0');
	}
	for (; i < n; i++)
		if (p[i] != ' ' && p[i] != '\0')
			return -1;
	*out = v;
	return 0;
}

static bool checksum_ok(const unsigned char *b)
{
	uint64_t want;
	unsigned long usum = 0;
	long ssum = 0;

	if (parse_number(b + 148, 8, &want))
		return false;
	for (size_t i = 0; i < BLOCK; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : b[i];

		usum += c;
		ssum += (signed char)c;
	}
	return want == usum || (long)want == ssum;
}

/* The ustar name: prefix/name, each field not necessarily terminated. */
static char *header_name(const unsigned char *b)
{
	char name[101], prefix[156];

	memcpy(name, b, 100);
	name[100] = '\0';
	prefix[0] = '\0';
	if (!memcmp(b + 257, "ustar\0", 6)) {
		memcpy(prefix, b + 345, 155);
		prefix[155] = '\0';
	}
	if (*prefix)
		return cm_xasprintf("%s/%s", prefix, name);
	return cm_xstrdup(name);
}

static void set_name(struct count *k, char *raw)
{
	free(k->name);
	k->name = arc_printable(raw);
	free(raw);
}

/* One pax extended header's records; 'x' ones set path and size. */
static int parse_pax(struct count *k, struct cm_err *err)
{
	const char *p = k->meta, *end = k->meta + k->meta_len;

	while (p < end) {
		const char *q = p, *eq;
		uint64_t len = 0;

		while (q < end && *q >= '0' && *q <= '9' && len < META_MAX)
			len = len * 10 + (uint64_t)(*q++ - '0');
		if (q == p || q >= end || *q != ' ' || len > (uint64_t)(end - p) ||
		    p[len - 1] != '\n')
			return fail_at(k, err, "bad pax record at offset %zu "
				       "of its header", (size_t)(p - k->meta));
		eq = memchr(q + 1, '=', (size_t)(p + len - 1 - (q + 1)));
		if (!eq)
			return fail_at(k, err, "pax record without '=' at "
				       "offset %zu of its header",
				       (size_t)(p - k->meta));
		if (k->meta_type == 'x') {
			size_t klen = (size_t)(eq - (q + 1));
			size_t vlen = (size_t)(p + len - 1 - (eq + 1));

			if (klen == 4 && !memcmp(q + 1, "path", 4)) {
				free(k->next_name);
				k->next_name = cm_xstrndup(eq + 1, vlen);
			} else if (klen == 4 && !memcmp(q + 1, "size", 4)) {
				char num[32];
				char *e;

				if (vlen == 0 || vlen >= sizeof(num))
					return fail_at(k, err, "bad pax size");
				memcpy(num, eq + 1, vlen);
				num[vlen] = '\0';
				errno = 0;
				k->next_size = strtoull(num, &e, 10);
				if (errno || *e || num[0] < '0' || num[0] > '9')
					return fail_at(k, err, "bad pax size "
						       "'%s'", num);
				k->next_has_size = true;
			}
		}
		p += len;
	}
	return 0;
}

/* The data of a meta header is complete. */
static int end_meta(struct count *k, struct cm_err *err)
{
	int rc = 0;

	if (k->meta_type == 'x' || k->meta_type == 'g') {
		rc = parse_pax(k, err);
	} else if (k->meta_type == 'L') {
		free(k->next_name);
		k->next_name = cm_xstrndup(k->meta, k->meta_len);
	}
	free(k->meta);
	k->meta = NULL;
	k->meta_len = 0;
	return rc;
}

/* After data (or meta data) of `n` bytes: its padding, then a header. */
static void after_data(struct count *k, uint64_t n)
{
	k->left = (BLOCK - n % BLOCK) % BLOCK;
	k->state = k->left ? W_PAD : W_HEADER;
}

/* W_DATA or W_PAD: pass over up to n bytes; how many. */
static uint64_t skip(struct count *k, uint64_t n)
{
	uint64_t take = k->left < n ? k->left : n;

	k->left -= take;
	if (!k->left) {
		if (k->state == W_DATA)
			after_data(k, k->size);
		else
			k->state = W_HEADER;
	}
	return take;
}

static int header(struct count *k, struct cm_err *err)
{
	const unsigned char *b = k->block;
	char type = (char)b[156];
	uint64_t size;

	if (arc_is_zero(b, BLOCK)) {
		if (k->next_name || k->next_has_size)
			return fail_at(k, err, "meta headers without their "
				       "entry before the end of the archive");
		k->state = W_END1;
		return 0;
	}
	free(k->name);
	k->name = NULL;
	if (!checksum_ok(b))
		return fail_at(k, err, "header checksum mismatch");
	if (parse_number(b + 124, 12, &size))
		return fail_at(k, err, "bad size field");
	if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
		if (size > META_MAX)
			return fail_at(k, err, "a '%c' header of %llu bytes",
				       type, (unsigned long long)size);
		k->meta_type = type;
		k->meta = cm_xmalloc(size + 1);
		k->meta_len = 0;
		k->left = size;
		k->state = W_META;
		if (size == 0) {
			k->state = W_HEADER;
			return end_meta(k, err);
		}
		return 0;
	}
	/* an entry */
	k->c.entries++;
	set_name(k, k->next_name ? k->next_name : header_name(b));
	k->next_name = NULL;
	if (k->next_has_size)
		size = k->next_size;
	k->next_has_size = false;
	/* symlinks, devices and FIFOs carry no data, whatever the field */
	if (type == '2' || type == '3' || type == '4' || type == '6')
		size = 0;
	k->size = size;
	k->c.data_bytes += size;
	if (type == 'S' && b[482]) {
		k->state = W_SPARSE;
		return 0;
	}
	k->left = size;
	k->state = size ? W_DATA : W_HEADER;
	return 0;
}

/* A full block in W_HEADER, W_SPARSE, W_END1 or W_TRAILER. */
static int block_done(struct count *k, struct cm_err *err)
{
	int rc = 0;

	switch (k->state) {
	case W_HEADER:
		rc = header(k, err);
		break;
	case W_SPARSE:
		/* GNU sparse extension: its own "more follow" flag */
		if (!k->block[504]) {
			k->left = k->size;
			k->state = k->size ? W_DATA : W_HEADER;
		}
		break;
	case W_END1:
		if (!arc_is_zero(k->block, BLOCK)) {
			k->failed = true;
			rc = cm_err_set(err, EIO, "tar: a lone zero block at "
					"byte %llu, after entry %llu: the "
					"end-of-archive marker is broken",
					(unsigned long long)(k->block_at - BLOCK),
					(unsigned long long)k->c.entries);
		}
		else
			k->state = W_TRAILER;
		break;
	default:
		break;
	}
	k->have = 0;
	return rc;
}

static int walk(struct count *k, const unsigned char *p, size_t n,
		struct cm_err *err)
{
	int rc = 0;

	while (n && rc == 0) {
		size_t take;

		switch (k->state) {
		case W_META:
			take = k->left < n ? (size_t)k->left : n;
			memcpy(k->meta + k->meta_len, p, take);
			k->meta_len += take;
			k->left -= take;
			if (!k->left) {
				uint64_t size = k->meta_len;

				rc = end_meta(k, err);
				after_data(k, size);
			}
			break;
		case W_DATA:
		case W_PAD:
			take = (size_t)skip(k, n);
			break;
		case W_TRAILER:
			take = n;
			if (!arc_is_zero(p, n)) {
				size_t i = 0;

				while (!p[i])
					i++;
				k->failed = true;
				rc = cm_err_set(err, EIO, "tar: byte %llu, "
						"after the end-of-archive "
						"marker, is not zero",
						(unsigned long long)
						(k->c.bytes + i));
			}
			break;
		default:
			if (k->have == 0)
				k->block_at = k->c.bytes;
			take = BLOCK - k->have < n ? BLOCK - k->have : n;
			memcpy(k->block + k->have, p, take);
			k->have += take;
			if (k->have == BLOCK)
				rc = block_done(k, err);
			break;
		}
		k->c.bytes += take;
		p += take;
		n -= take;
	}
	return rc;
}

static int walk_zeros(struct count *k, uint64_t n, struct cm_err *err)
{
	static const unsigned char zeros[BLOCK];
	int rc = 0;

	while (n && rc == 0) {
		uint64_t take;

		if (k->state == W_DATA || k->state == W_PAD) {
			take = skip(k, n);
			k->c.bytes += take;
		} else if (k->state == W_TRAILER) {
			take = n;
			k->c.bytes += take;
		} else {
			take = n < BLOCK ? n : BLOCK;
			rc = walk(k, zeros, (size_t)take, err);
		}
		n -= take;
	}
	return rc;
}

/* The counting of write (p set) and write_zeros (p NULL). */
static int count_in(struct count *k, const void *p, uint64_t n,
		    struct cm_err *err)
{
	if (k->failed)
		return cm_err_set(err, EIO, "tar: the stream already failed");
	if (k->method == ARC_METHOD_RAW) {
		k->c.bytes += n;
		return 0;
	}
	return p ? walk(k, p, (size_t)n, err) : walk_zeros(k, n, err);
}

static int count_write(struct arc_filter *f, const void *p, size_t n,
		       struct cm_err *err)
{
	int rc = count_in(f->state, p, n, err);

	if (rc == 0 && f->next)
		rc = arc_write(f->next, p, n, err);
	return rc;
}

static int count_write_zeros(struct arc_filter *f, uint64_t n,
			     struct cm_err *err)
{
	int rc = count_in(f->state, NULL, n, err);

	if (rc == 0 && f->next)
		rc = arc_write_zeros(f->next, n, err);
	return rc;
}

static int count_close(struct arc_filter *f, struct cm_err *err)
{
	struct count *k = f->state;
	int rc = 0;

	if (k->method == ARC_METHOD_TREE && k->state != W_TRAILER) {
		if (k->state == W_DATA)
			rc = fail_at(k, err, "truncated: %llu of %llu data "
				     "bytes", (unsigned long long)
				     (k->size - k->left),
				     (unsigned long long)k->size);
		else if (k->state == W_PAD || k->state == W_SPARSE ||
			 k->state == W_META || k->have)
			rc = fail_at(k, err, "truncated");
		else
			rc = cm_err_set(err, EIO, "tar: truncated after entry "
					"%llu (byte %llu): no end-of-archive "
					"marker", (unsigned long long)
					k->c.entries,
					(unsigned long long)k->c.bytes);
		k->failed = true;
	}
	if (rc == 0 && f->next)
		rc = arc_close(f->next, err);
	return rc;
}

static void count_abort(struct arc_filter *f)
{
	arc_abort(f->next);
}

static void count_free(struct arc_filter *f)
{
	struct count *k = f->state;

	arc_free(f->next);
	free(k->meta);
	free(k->next_name);
	free(k->name);
	free(k);
}

static const struct arc_filter_ops count_ops = {
	.name = "count",
	.write = count_write,
	.write_zeros = count_write_zeros,
	.close = count_close,
	.abort = count_abort,
	.free = count_free,
};

struct arc_filter *arc_count_new(enum arc_method m, struct arc_filter *next)
{
	struct count *k = cm_xcalloc(1, sizeof(*k));

	k->filter.ops = &count_ops;
	k->filter.next = next;
	k->filter.state = k;
	k->method = m;
	k->state = W_HEADER;
	return &k->filter;
}

void arc_count_result(const struct arc_filter *count, struct arc_counts *out)
{
	const struct count *k = count->state;

	*out = k->c;
}

void arc_counts_to_json(enum arc_method m, const struct arc_counts *c,
			struct cm_json *manifest)
{
	struct cm_json *o;

	if (m == ARC_METHOD_RAW) {
		o = cm_json_add_object(manifest, "raw");
		cm_json_add_u64(o, "bytes", c->bytes);
		return;
	}
	o = cm_json_add_object(manifest, "tar");
	cm_json_add_u64(o, "entries", c->entries);
	cm_json_add_u64(o, "bytes", c->bytes);
	cm_json_add_u64(o, "data_bytes", c->data_bytes);
}
