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
 * With arc_count_on_entry, each entry is also given whole to a callback
 * (aindex.h's fields: the header's, overridden by pax records and GNU long
 * names, and the stream offsets of its first header block and its data),
 * once its headers are read: the archiver builds the index from it, the
 * verifier rebuilds the index from the decoded stream to compare.
 *
 * Threads: one, the chain's driver (arc.h). The counter owns its buffers.
 */
#include "verify.h"
#include "aindex.h"
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
	/* entries for a callback (arc_count_on_entry) */
	arc_entry_fn on_entry;
	void *entry_ctx;
	bool in_meta;          /* meta headers seen for the coming entry */
	uint64_t first_at;     /* where the coming entry's first one began */
	struct pax_meta {      /* what pax 'x' and GNU 'K' said, owned */
		char *link, *uname, *gname, *sparse_name;
		bool has_uid, has_gid, has_mtime, has_realsize, sparse;
		uint64_t uid, gid, realsize;
		int64_t mtime_sec;
		uint32_t mtime_nsec;
	} pm;
	struct aidx_entry entry; /* W_SPARSE: given once its data begins */
	char *entry_strs[4];   /* owned: entry's path, link, uname, gname */
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

static void pm_release(struct pax_meta *pm)
{
	free(pm->link);
	free(pm->uname);
	free(pm->gname);
	free(pm->sparse_name);
	memset(pm, 0, sizeof(*pm));
}

static void set_str(char **dst, const char *v, size_t n)
{
	free(*dst);
	*dst = cm_xstrndup(v, n);
}

/* A decimal pax number (uid, gid, realsize): -1 when it is none. */
static int pax_u64(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0 || n > 20)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	*out = x;
	return 0;
}

/* "-12.5" or "1700000000.123456789": seconds and nanoseconds. */
static int pax_time(const char *v, size_t n, int64_t *sec, uint32_t *nsec)
{
	bool neg = n && v[0] == '-';
	size_t i = neg, dot;
	uint64_t s = 0, ns = 0;

	for (dot = i; dot < n && v[dot] != '.'; dot++)
		;
	if (pax_u64(v + i, dot - i, &s) || s > INT64_MAX)
		return -1;
	for (size_t d = dot + 1, digits = 0; d < n; d++, digits++) {
		if (v[d] < '0' || v[d] > '9')
			return -1;
		if (digits < 9)
			ns = ns * 10 + (uint64_t)(v[d] - '0');
	}
	for (size_t d = n > dot + 1 ? n - dot - 1 : 0; d < 9; d++)
		ns *= 10;
	/* -1.5 is 1.5 s before the epoch: -2 s + 0.5 s */
	if (neg && ns) {
		*sec = -(int64_t)s - 1;
		*nsec = (uint32_t)(1000000000 - ns);
	} else {
		*sec = neg ? -(int64_t)s : (int64_t)s;
		*nsec = (uint32_t)ns;
	}
	return 0;
}

/* The pax records the index needs (the entry callback's). */
static int pax_record(struct count *k, const char *key, size_t klen,
		      const char *v, size_t vlen, struct cm_err *err)
{
	struct pax_meta *pm = &k->pm;

#define KEY(s) (klen == sizeof(s) - 1 && !memcmp(key, s, klen))
	if (KEY("linkpath")) {
		set_str(&pm->link, v, vlen);
	} else if (KEY("uname")) {
		set_str(&pm->uname, v, vlen);
	} else if (KEY("gname")) {
		set_str(&pm->gname, v, vlen);
	} else if (KEY("GNU.sparse.name")) {
		set_str(&pm->sparse_name, v, vlen);
		pm->sparse = true;
	} else if (KEY("GNU.sparse.realsize")) {
		if (pax_u64(v, vlen, &pm->realsize))
			return fail_at(k, err, "bad pax GNU.sparse.realsize");
		pm->has_realsize = pm->sparse = true;
	} else if (KEY("GNU.sparse.major")) {
		pm->sparse = true;
	} else if (KEY("uid")) {
		if (pax_u64(v, vlen, &pm->uid))
			return fail_at(k, err, "bad pax uid");
		pm->has_uid = true;
	} else if (KEY("gid")) {
		if (pax_u64(v, vlen, &pm->gid))
			return fail_at(k, err, "bad pax gid");
		pm->has_gid = true;
	} else if (KEY("mtime")) {
		if (pax_time(v, vlen, &pm->mtime_sec, &pm->mtime_nsec))
			return fail_at(k, err, "bad pax mtime");
		pm->has_mtime = true;
	}
#undef KEY
	return 0;
}

/* A NUL-padded header field as a string. */
static char *field(const unsigned char *b, size_t n)
{
	return cm_xstrndup((const char *)b, strnlen((const char *)b, n));
}

static uint64_t number_or_0(const unsigned char *p, size_t n)
{
	uint64_t v = 0;

	return parse_number(p, n, &v) ? 0 : v;
}

/*
 * The entry whose header is k->block (its name `raw_name`, its data size
 * `size`), from the header and what the meta headers said; given to the
 * callback once its data begins (now, or after GNU sparse blocks).
 */
static void entry_start(struct count *k, const char *raw_name, uint64_t size)
{
	const unsigned char *b = k->block;
	struct pax_meta *pm = &k->pm;
	struct aidx_entry *e = &k->entry;
	uint64_t mtime = number_or_0(b + 136, 12);

	for (int i = 0; i < 4; i++)
		free(k->entry_strs[i]);
	memset(e, 0, sizeof(*e));
	k->entry_strs[0] = cm_xstrdup(pm->sparse_name ? pm->sparse_name
						      : raw_name);
	k->entry_strs[1] = pm->link ? cm_xstrdup(pm->link)
				    : field(b + 157, 100);
	k->entry_strs[2] = pm->uname ? cm_xstrdup(pm->uname)
				     : field(b + 265, 32);
	k->entry_strs[3] = pm->gname ? cm_xstrdup(pm->gname)
				     : field(b + 297, 32);
	e->path = k->entry_strs[0];
	e->link = k->entry_strs[1];
	e->uname = k->entry_strs[2];
	e->gname = k->entry_strs[3];
	e->type = (char)b[156];
	if (e->type == '\0' || e->type == '7')
		e->type = '0';
	e->sparse = pm->sparse || e->type == 'S';
	e->mode = (uint32_t)number_or_0(b + 100, 8);
	e->uid = (uint32_t)(pm->has_uid ? pm->uid : number_or_0(b + 108, 8));
	e->gid = (uint32_t)(pm->has_gid ? pm->gid : number_or_0(b + 116, 8));
	e->devmajor = (uint32_t)number_or_0(b + 329, 8);
	e->devminor = (uint32_t)number_or_0(b + 337, 8);
	e->stored = size;
	e->size = pm->has_realsize ? pm->realsize : size;
	e->mtime_sec = pm->has_mtime ? pm->mtime_sec : (int64_t)mtime;
	e->mtime_nsec = pm->has_mtime ? pm->mtime_nsec : 0;
	e->header_off = k->in_meta ? k->first_at : k->block_at;
	k->in_meta = false;
	pm_release(pm);
}

static int entry_give(struct count *k, struct cm_err *err)
{
	k->entry.data_off = k->block_at + BLOCK; /* after this block */
	return k->on_entry(k->entry_ctx, &k->entry, err);
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
			} else if (k->on_entry) {
				int rc = pax_record(k, q + 1, klen, eq + 1,
						    vlen, err);

				if (rc)
					return rc;
			}
			if (klen == 4 && !memcmp(q + 1, "path", 4)) {
				/* done above */
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
	} else if (k->meta_type == 'K' && k->on_entry) {
		set_str(&k->pm.link, k->meta, strnlen(k->meta, k->meta_len));
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
	char *raw;

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
		if (!k->in_meta) {
			k->in_meta = true;
			k->first_at = k->block_at;
		}
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
	raw = k->next_name ? k->next_name : header_name(b);
	k->next_name = NULL;
	if (k->next_has_size)
		size = k->next_size;
	k->next_has_size = false;
	/* symlinks, devices and FIFOs carry no data, whatever the field */
	if (type == '2' || type == '3' || type == '4' || type == '6')
		size = 0;
	k->size = size;
	k->c.data_bytes += size;
	if (k->on_entry)
		entry_start(k, raw, size);
	set_name(k, raw);
	if (type == 'S' && b[482]) {
		k->state = W_SPARSE;
		return 0;
	}
	k->left = size;
	k->state = size ? W_DATA : W_HEADER;
	return k->on_entry ? entry_give(k, err) : 0;
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
			if (k->on_entry)
				rc = entry_give(k, err);
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
	pm_release(&k->pm);
	for (int i = 0; i < 4; i++)
		free(k->entry_strs[i]);
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

void arc_count_on_entry(struct arc_filter *count, arc_entry_fn fn, void *ctx)
{
	struct count *k = count->state;

	k->on_entry = fn;
	k->entry_ctx = ctx;
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
