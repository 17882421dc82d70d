/*
 * aindex.c - the archive index (aindex.h), in the format of
 * docs/archive-format.md section 6: its writer and its reader.
 *
 * Writer. Entries arrive in tar order and must leave sorted by (parent,
 * name). They are serialised into an in-memory run (a byte arena plus an
 * array of record offsets); a run that grows past the memory budget is
 * sorted and written to an unlinked spill file, and at the end the runs
 * are merged (k-way, by a linear scan of the heads: runs are few, about
 * one per 16 MiB of records). So the writer holds at most the budget, a
 * read buffer per run, the member table (32 bytes a member) and the
 * directory table being built, whatever the tree. The sorted records are
 * encoded into entry blocks of about 64 KiB, each compressed (zstd) and
 * written to the index file as it fills; the tables follow, and the
 * header is written last, at offset 0.
 *
 * Reader. aidx_open reads the 128-byte header and then, in one read, the
 * tables at the end of the file (block table, directory table, member
 * table); entry blocks are read when a lookup, list or walk needs them,
 * through a small cache of decoded blocks. Every block's CRC-32 is
 * checked when it is decoded.
 */
#include "aindex.h"
#include "fsutil.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>
#include <zstd.h>

#define IDX_MAGIC "VFSINDEX"
#define IDX_VERSION 1
#define IDX_HEADER 128
#define IDX_FRAME 16
#define IDX_BLOCK_RAW (64 * 1024)     /* entry block target, raw */
#define IDX_ZSTD_LEVEL 6
#define IDX_BUDGET_DEFAULT (16u << 20)
#define IDX_SPILL_BUF (256 * 1024)
#define IDX_CACHE 8                   /* decoded entry blocks kept */
#define IDX_BLOCK_ROW 24
#define IDX_MEMBER_ROW 32
#define IDX_TABLE_MAX (1u << 30)      /* no table of ours is bigger */

enum { METHOD_STORED = 0, METHOD_ZSTD = 1, METHOD_DEFLATE = 2 };

/* ---- little-endian, varints -------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* A growable byte buffer of our own (the index may pass 16 MiB). */
struct bytes {
	unsigned char *p;
	size_t len, cap;
};

static void b_reserve(struct bytes *b, size_t n)
{
	if (b->len + n <= b->cap)
		return;
	while (b->len + n > b->cap)
		b->cap = b->cap ? 2 * b->cap : 4096;
	b->p = cm_xrealloc(b->p, b->cap);
}

static void b_add(struct bytes *b, const void *p, size_t n)
{
	b_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void b_varint(struct bytes *b, uint64_t v)
{
	b_reserve(b, 10);
	do {
		unsigned char c = v & 0x7f;

		v >>= 7;
		b->p[b->len++] = c | (v ? 0x80 : 0);
	} while (v);
}

static void b_str(struct bytes *b, const char *s, size_t n)
{
	b_varint(b, n);
	b_add(b, s, n);
}

/* A cursor over raw block bytes. */
struct cur {
	const unsigned char *p, *end;
	bool bad;
};

static uint64_t c_varint(struct cur *c)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		unsigned char x;

		if (c->p >= c->end) {
			c->bad = true;
			return 0;
		}
		x = *c->p++;
		v |= (uint64_t)(x & 0x7f) << shift;
		if (!(x & 0x80))
			return v;
	}
	c->bad = true;
	return 0;
}

static const char *c_bytes(struct cur *c, size_t *n)
{
	const char *s;

	*n = (size_t)c_varint(c);
	if (c->bad || *n > (size_t)(c->end - c->p)) {
		c->bad = true;
		*n = 0;
		return "";
	}
	s = (const char *)c->p;
	c->p += *n;
	return s;
}

static unsigned char c_byte(struct cur *c)
{
	if (c->p >= c->end) {
		c->bad = true;
		return 0;
	}
	return *c->p++;
}

/* ---- names -------------------------------------------------------------- */

char *aidx_normalise(char *s)
{
	char *p = s;
	size_t n;

	for (;;) {
		if (p[0] == '/')
			p++;
		else if (p[0] == '.' && p[1] == '/')
			p += 2;
		else
			break;
	}
	if (p[0] == '.' && p[1] == '\0')
		p++;
	n = strlen(p);
	while (n && p[n - 1] == '/')
		n--;
	memmove(s, p, n);
	s[n] = '\0';
	return s;
}

/* The parent of a normalised path: its length (0: the root). */
static size_t parent_len(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? (size_t)(slash - path) : 0;
}

/* ---- string arena for lists --------------------------------------------- */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
};

static char *arena_str(struct aidx_list *l, const char *a, size_t an,
		       const char *b, size_t bn)
{
	struct chunk *c = l->arena;
	size_t need = an + bn + 2;
	char *s;

	if (!c || c->cap - c->used < need) {
		size_t cap = need > 60000 ? need : 60000;

		c = cm_xmalloc(sizeof(*c) + cap);
		c->next = l->arena;
		c->used = 0;
		c->cap = cap;
		l->arena = c;
	}
	s = c->data + c->used;
	memcpy(s, a, an);
	if (bn) {
		if (an)
			s[an++] = '/';
		memcpy(s + an, b, bn);
	}
	s[an + bn] = '\0';
	c->used += an + bn + 1;
	return s;
}

void aidx_list_release(struct aidx_list *l)
{
	struct chunk *c = l->arena;

	while (c) {
		struct chunk *next = c->next;

		free(c);
		c = next;
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static struct aidx_entry *list_push(struct aidx_list *l, size_t *cap)
{
	if (l->n == *cap) {
		*cap = *cap ? 2 * *cap : 16;
		l->v = cm_xrealloc(l->v, *cap * sizeof(*l->v));
	}
	return &l->v[l->n++];
}

/* e into slot, its strings copied into l's arena */
static struct aidx_entry *entry_copy(struct aidx_list *l,
				     struct aidx_entry *slot,
				     const struct aidx_entry *e)
{
	*slot = *e;
	slot->path = arena_str(l, e->path, strlen(e->path), "", 0);
	slot->link = arena_str(l, e->link, strlen(e->link), "", 0);
	slot->uname = arena_str(l, e->uname, strlen(e->uname), "", 0);
	slot->gname = arena_str(l, e->gname, strlen(e->gname), "", 0);
	return slot;
}

struct aidx_entry *aidx_list_add(struct aidx_list *l,
				 const struct aidx_entry *e)
{
	/* list_push's capacities are 16 << k: full exactly at those n */
	if (l->n == 0 || (l->n >= 16 && !(l->n & (l->n - 1))))
		l->v = cm_xrealloc(l->v, (l->n < 16 ? 16 : 2 * l->n) *
						 sizeof(*l->v));
	return entry_copy(l, &l->v[l->n++], e);
}

/* ---- blocks --------------------------------------------------------------- */

/* Frame and compress raw bytes into out (appended). */
static void block_encode(const struct bytes *raw, struct bytes *out)
{
	size_t bound = ZSTD_compressBound(raw->len);
	size_t at = out->len, z;
	unsigned char *f;

	b_reserve(out, IDX_FRAME + bound);
	f = out->p + at;
	z = ZSTD_compress(f + IDX_FRAME, bound, raw->p, raw->len,
			  IDX_ZSTD_LEVEL);
	memset(f, 0, IDX_FRAME);
	if (ZSTD_isError(z) || z >= raw->len) {
		/* incompressible (or tiny): stored */
		f[0] = METHOD_STORED;
		if (raw->len)
			memcpy(f + IDX_FRAME, raw->p, raw->len);
		z = raw->len;
	} else {
		f[0] = METHOD_ZSTD;
	}
	put32(f + 4, (uint32_t)z);
	put32(f + 8, (uint32_t)raw->len);
	put32(f + 12, libdeflate_crc32(0, raw->p, raw->len));
	out->len = at + IDX_FRAME + z;
}

/* A framed block at p (n bytes) into raw (replaced). */
static int block_decode(const unsigned char *p, size_t n, struct bytes *raw,
			const char *what, struct cm_err *err)
{
	uint32_t zlen, rlen;

	if (n < IDX_FRAME)
		return cm_err_set(err, EIO, "index %s: truncated", what);
	zlen = get32(p + 4);
	rlen = get32(p + 8);
	if (zlen > n - IDX_FRAME || rlen > IDX_TABLE_MAX)
		return cm_err_set(err, EIO, "index %s: sizes %u/%u do not fit",
				  what, zlen, rlen);
	raw->len = 0;
	b_reserve(raw, rlen + 1);
	switch (p[0]) {
	case METHOD_STORED:
		if (zlen != rlen)
			return cm_err_set(err, EIO, "index %s: stored sizes "
					  "differ", what);
		memcpy(raw->p, p + IDX_FRAME, rlen);
		break;
	case METHOD_ZSTD: {
		size_t r = ZSTD_decompress(raw->p, rlen, p + IDX_FRAME, zlen);

		if (ZSTD_isError(r) || r != rlen)
			return cm_err_set(err, EIO, "index %s: zstd: %s", what,
					  ZSTD_isError(r) ? ZSTD_getErrorName(r)
							  : "wrong size");
		break;
	}
	case METHOD_DEFLATE: {
		struct libdeflate_decompressor *d =
			libdeflate_alloc_decompressor();
		enum libdeflate_result r;

		if (!d)
			return cm_err_set(err, ENOMEM, "index: no decoder");
		r = libdeflate_deflate_decompress(d, p + IDX_FRAME, zlen,
						  raw->p, rlen, NULL);
		libdeflate_free_decompressor(d);
		if (r != LIBDEFLATE_SUCCESS)
			return cm_err_set(err, EIO, "index %s: corrupt "
					  "deflate data", what);
		break;
	}
	default:
		return cm_err_set(err, EIO, "index %s: unknown method %u",
				  what, p[0]);
	}
	raw->len = rlen;
	if (libdeflate_crc32(0, raw->p, rlen) != get32(p + 12))
		return cm_err_set(err, EIO, "index %s: checksum mismatch",
				  what);
	return 0;
}

/* ---- writer: records ------------------------------------------------------ */

/* A record in a run: this, then dir, name, link, uname, gname bytes. */
struct rec {
	uint32_t len;            /* the whole record */
	uint32_t dir_len, name_len, link_len, uname_len, gname_len;
	uint32_t mode, uid, gid, devmajor, devminor, mtime_nsec;
	char type;
	bool sparse;
	uint64_t size, stored, header_off, data_off;
	int64_t mtime_sec;
};

static const char *rec_dir(const struct rec *r)
{
	return (const char *)(r + 1);
}

static const char *rec_name(const struct rec *r)
{
	return rec_dir(r) + r->dir_len;
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);

	if (c)
		return c;
	return an < bn ? -1 : an > bn;
}

static int rec_cmp(const struct rec *a, const struct rec *b)
{
	int c = bytes_cmp(rec_dir(a), a->dir_len, rec_dir(b), b->dir_len);

	if (c)
		return c;
	c = bytes_cmp(rec_name(a), a->name_len, rec_name(b), b->name_len);
	if (c)
		return c;
	return a->header_off < b->header_off ? -1 :
						 a->header_off > b->header_off;
}

struct run {
	uint64_t off, end;       /* in the spill file */
	unsigned char *buf;      /* merge: IDX_SPILL_BUF bytes */
	size_t have, pos;
	uint64_t next;           /* next file offset to read */
};

struct aidx_writer {
	enum aidx_kind kind;
	enum aidx_codec codec;
	char *tmpdir;
	size_t budget;
	struct aidx_member *members;
	size_t nmembers, members_cap;
	struct bytes arena;      /* the current run's records */
	size_t *offs;            /* into arena */
	size_t noffs, offs_cap;
	uint64_t entries;
	int spill;               /* -1: nothing spilled */
	uint64_t spill_len;
	struct run *runs;
	size_t nruns;
};

static int tmp_file(const char *dir, const char *what, int *fd,
		    struct cm_err *err)
{
	char *path = cm_xasprintf("%s/vaultfs-%s-XXXXXX", dir, what);

	*fd = mkostemp(path, O_CLOEXEC);
	if (*fd < 0) {
		int e = errno;

		cm_err_set(err, e, "%s: %s", path, strerror(e));
		free(path);
		return -e;
	}
	unlink(path);
	free(path);
	return 0;
}

struct aidx_writer *aidx_writer_new(enum aidx_kind kind,
				    enum aidx_codec codec, const char *tmpdir,
				    size_t mem_budget, struct cm_err *err)
{
	struct aidx_writer *w = cm_xcalloc(1, sizeof(*w));
	const char *t = tmpdir ? tmpdir : getenv("TMPDIR");

	(void)err;
	w->kind = kind;
	w->codec = codec;
	w->tmpdir = cm_xstrdup(t && *t ? t : "/tmp");
	w->budget = mem_budget ? mem_budget : IDX_BUDGET_DEFAULT;
	w->spill = -1;
	return w;
}

int aidx_writer_add_member(struct aidx_writer *w,
			   const struct aidx_member *m, struct cm_err *err)
{
	if (w->nmembers && m->uoff != w->members[w->nmembers - 1].uoff +
					      w->members[w->nmembers - 1].ulen)
		return cm_err_set(err, EINVAL, "index: member %zu starts at "
				  "%llu, not where the last one ended",
				  w->nmembers,
				  (unsigned long long)m->uoff);
	if (w->nmembers == w->members_cap) {
		w->members_cap = w->members_cap ? 2 * w->members_cap : 256;
		w->members = cm_xrealloc(w->members,
					 w->members_cap * sizeof(*m));
	}
	w->members[w->nmembers++] = *m;
	return 0;
}

uint64_t aidx_writer_members(const struct aidx_writer *w)
{
	return w->nmembers;
}

static int cmp_offs(const void *a, const void *b, void *arena)
{
	const unsigned char *base = arena;

	return rec_cmp((const struct rec *)(base + *(const size_t *)a),
		       (const struct rec *)(base + *(const size_t *)b));
}

/* Sort the in-memory run and write it to the spill file. */
static int spill_run(struct aidx_writer *w, struct cm_err *err)
{
	struct bytes out = { 0 };
	int rc;

	if (!w->noffs)
		return 0;
	if (w->spill < 0) {
		rc = tmp_file(w->tmpdir, "index-spill", &w->spill, err);
		if (rc)
			return rc;
	}
	qsort_r(w->offs, w->noffs, sizeof(*w->offs), cmp_offs, w->arena.p);
	for (size_t i = 0; i < w->noffs; i++) {
		const struct rec *r = (const void *)(w->arena.p + w->offs[i]);

		b_add(&out, r, r->len);
	}
	rc = cm_pwrite_all(w->spill, out.p, out.len, (off_t)w->spill_len);
	free(out.p);
	if (rc)
		return cm_err_set(err, -rc, "index spill file: write: %s",
				  strerror(-rc));
	w->runs = cm_xrealloc(w->runs, (w->nruns + 1) * sizeof(*w->runs));
	memset(&w->runs[w->nruns], 0, sizeof(*w->runs));
	w->runs[w->nruns].off = w->spill_len;
	w->runs[w->nruns].end = w->spill_len + out.len;
	w->nruns++;
	w->spill_len += out.len;
	w->arena.len = 0;
	w->noffs = 0;
	return 0;
}

int aidx_writer_add_entry(struct aidx_writer *w, const struct aidx_entry *e,
			  struct cm_err *err)
{
	char *path = aidx_normalise(cm_xstrdup(e->path));
	char *link = cm_xstrdup(e->link ? e->link : "");
	size_t plen = parent_len(path), len;
	const char *name = path + plen + (path[plen] == '/');
	const char *uname = e->uname ? e->uname : "";
	const char *gname = e->gname ? e->gname : "";
	struct rec r = { 0 };
	int rc = 0;

	if (w->kind != AIDX_KIND_TAR) {
		rc = cm_err_set(err, EINVAL, "index: a raw archive has no "
				"entries");
		goto out;
	}
	if (e->type == '1')
		aidx_normalise(link);
	r.dir_len = (uint32_t)plen;
	r.name_len = (uint32_t)strlen(name);
	r.link_len = (uint32_t)strlen(link);
	r.uname_len = (uint32_t)strlen(uname);
	r.gname_len = (uint32_t)strlen(gname);
	len = sizeof(r) + r.dir_len + r.name_len + r.link_len + r.uname_len +
	      r.gname_len;
	len = (len + 7) & ~(size_t)7;
	r.len = (uint32_t)len;
	r.type = e->type == '\0' || e->type == '7' ? '0' : e->type;
	r.sparse = e->sparse;
	r.mode = e->mode;
	r.uid = e->uid;
	r.gid = e->gid;
	r.devmajor = e->devmajor;
	r.devminor = e->devminor;
	r.size = e->size;
	r.stored = e->stored;
	r.mtime_sec = e->mtime_sec;
	r.mtime_nsec = e->mtime_nsec;
	r.header_off = e->header_off;
	r.data_off = e->data_off;
	if (w->noffs == w->offs_cap) {
		w->offs_cap = w->offs_cap ? 2 * w->offs_cap : 1024;
		w->offs = cm_xrealloc(w->offs, w->offs_cap * sizeof(*w->offs));
	}
	w->offs[w->noffs++] = w->arena.len;
	b_reserve(&w->arena, len);
	memset(w->arena.p + w->arena.len, 0, len);
	memcpy(w->arena.p + w->arena.len, &r, sizeof(r));
	{
		unsigned char *p = w->arena.p + w->arena.len + sizeof(r);

		memcpy(p, path, r.dir_len);
		p += r.dir_len;
		memcpy(p, name, r.name_len);
		p += r.name_len;
		memcpy(p, link, r.link_len);
		p += r.link_len;
		memcpy(p, uname, r.uname_len);
		p += r.uname_len;
		memcpy(p, gname, r.gname_len);
	}
	w->arena.len += len;
	w->entries++;
	if (w->arena.len + w->noffs * sizeof(size_t) >= w->budget)
		rc = spill_run(w, err);
out:
	free(path);
	free(link);
	return rc;
}

/* ---- writer: the merge and the file --------------------------------------- */

struct out {
	int fd;
	uint64_t pos;
	struct bytes raw;        /* the entry block being filled */
	struct bytes framed;
	struct bytes blocks;     /* the block table, raw */
	uint64_t block_first;    /* first entry of the block being filled */
	uint32_t block_n;
	uint64_t nblocks;
	struct bytes dirs;       /* the directory table, raw */
	char *dir;               /* owned: the current directory */
	size_t dir_len;
	uint64_t dir_count;
	uint64_t ndirs;
	uint64_t entry;          /* entries emitted */
};

static int out_write(struct out *o, const void *p, size_t n,
		     struct cm_err *err)
{
	int rc = cm_pwrite_all(o->fd, p, n, (off_t)o->pos);

	if (rc)
		return cm_err_set(err, -rc, "index file: write: %s",
				  strerror(-rc));
	o->pos += n;
	return 0;
}

static int flush_block(struct out *o, struct cm_err *err)
{
	unsigned char row[IDX_BLOCK_ROW];
	int rc;

	if (!o->block_n)
		return 0;
	o->framed.len = 0;
	block_encode(&o->raw, &o->framed);
	put64(row, o->pos);
	put64(row + 8, o->block_first);
	put32(row + 16, (uint32_t)o->framed.len);
	put32(row + 20, o->block_n);
	b_add(&o->blocks, row, sizeof(row));
	rc = out_write(o, o->framed.p, o->framed.len, err);
	o->raw.len = 0;
	o->block_first = o->entry;
	o->block_n = 0;
	o->nblocks++;
	return rc;
}

static void end_dir(struct out *o, const char *next, size_t next_len)
{
	size_t shared = 0;

	if (o->dir_count) {
		b_varint(&o->dirs, o->dir_count);
		o->ndirs++;
	}
	if (!next)
		return;
	while (shared < o->dir_len && shared < next_len &&
	       o->dir[shared] == next[shared])
		shared++;
	if (!o->dir_count) /* the first directory: nothing to share */
		shared = 0;
	b_varint(&o->dirs, shared);
	b_str(&o->dirs, next + shared, next_len - shared);
	free(o->dir);
	o->dir = cm_xstrndup(next, next_len);
	o->dir_len = next_len;
	o->dir_count = 0;
}

static uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static int emit(struct out *o, const struct rec *r, struct cm_err *err)
{
	const char *s = rec_name(r);
	struct bytes *b = &o->raw;

	if (!o->dir || bytes_cmp(o->dir, o->dir_len, rec_dir(r), r->dir_len))
		end_dir(o, rec_dir(r), r->dir_len);
	b_str(b, s, r->name_len);
	s += r->name_len;
	b_add(b, &r->type, 1);
	b_add(b, r->sparse ? "\1" : "\0", 1);
	b_varint(b, r->mode);
	b_varint(b, r->uid);
	b_varint(b, r->gid);
	b_varint(b, r->size);
	b_varint(b, r->stored);
	b_varint(b, zigzag(r->mtime_sec));
	b_varint(b, r->mtime_nsec);
	b_varint(b, r->header_off);
	b_varint(b, r->data_off - r->header_off);
	b_str(b, s, r->link_len);
	s += r->link_len;
	b_str(b, s, r->uname_len);
	s += r->uname_len;
	b_str(b, s, r->gname_len);
	b_varint(b, r->devmajor);
	b_varint(b, r->devminor);
	o->dir_count++;
	o->entry++;
	o->block_n++;
	if (b->len >= IDX_BLOCK_RAW)
		return flush_block(o, err);
	return 0;
}

/* The next record of a spilled run, or NULL at its end. */
static const struct rec *run_head(struct aidx_writer *w, struct run *r,
				  struct cm_err *err)
{
	const struct rec *rec;

	if (r->have - r->pos < sizeof(struct rec) ||
	    r->have - r->pos < ((const struct rec *)(r->buf + r->pos))->len) {
		size_t keep = r->have - r->pos;
		size_t want = IDX_SPILL_BUF - keep;
		ssize_t got;

		memmove(r->buf, r->buf + r->pos, keep);
		r->pos = 0;
		r->have = keep;
		if (want > r->end - r->next)
			want = (size_t)(r->end - r->next);
		got = want ? pread(w->spill, r->buf + keep, want,
				   (off_t)r->next) : 0;
		if (got < 0 || (size_t)got != want) {
			cm_err_set(err, EIO, "index spill file: short read");
			return NULL;
		}
		r->next += want;
		r->have += want;
		if (r->have == 0)
			return NULL;
	}
	rec = (const struct rec *)(r->buf + r->pos);
	if (rec->len > IDX_SPILL_BUF) {
		cm_err_set(err, EIO, "index: an entry of %u bytes", rec->len);
		return NULL;
	}
	return rec;
}

static int merge(struct aidx_writer *w, struct out *o, struct cm_err *err)
{
	int rc = 0;

	for (size_t i = 0; i < w->nruns; i++) {
		w->runs[i].buf = cm_xmalloc(IDX_SPILL_BUF);
		w->runs[i].next = w->runs[i].off;
	}
	for (;;) {
		const struct rec *best = NULL;
		size_t bi = 0;

		cm_err_clear(err);
		for (size_t i = 0; i < w->nruns; i++) {
			const struct rec *h = run_head(w, &w->runs[i], err);

			if (!h && err->code)
				return -EIO;
			if (h && (!best || rec_cmp(h, best) < 0)) {
				best = h;
				bi = i;
			}
		}
		if (!best)
			break;
		rc = emit(o, best, err);
		if (rc)
			break;
		w->runs[bi].pos += best->len;
	}
	return rc;
}

static int write_table(struct out *o, const struct bytes *raw, uint64_t *off,
		       struct cm_err *err)
{
	o->framed.len = 0;
	block_encode(raw, &o->framed);
	*off = o->pos;
	return out_write(o, o->framed.p, o->framed.len, err);
}

int aidx_writer_finish(struct aidx_writer *w, uint64_t archive_size,
		       uint64_t stream_size, int *fd, uint64_t *size,
		       struct cm_err *err)
{
	unsigned char h[IDX_HEADER] = { 0 };
	struct out o = { .fd = -1, .pos = IDX_HEADER };
	struct bytes members = { 0 };
	uint64_t moff = 0, doff = 0, boff = 0;
	int rc;

	*fd = -1;
	rc = tmp_file(w->tmpdir, "index", &o.fd, err);
	if (rc)
		return rc;
	if (w->nruns) {
		rc = spill_run(w, err);
		if (rc == 0)
			rc = merge(w, &o, err);
	} else if (w->noffs) { /* none: a raw archive's index */
		qsort_r(w->offs, w->noffs, sizeof(*w->offs), cmp_offs,
			w->arena.p);
		for (size_t i = 0; i < w->noffs && rc == 0; i++)
			rc = emit(&o, (const void *)(w->arena.p + w->offs[i]),
				  err);
	}
	if (rc == 0)
		rc = flush_block(&o, err);
	end_dir(&o, NULL, 0);
	if (rc == 0 && w->kind == AIDX_KIND_TAR) {
		rc = write_table(&o, &o.blocks, &boff, err);
		if (rc == 0)
			rc = write_table(&o, &o.dirs, &doff, err);
	}
	for (size_t i = 0; i < w->nmembers; i++) {
		unsigned char row[IDX_MEMBER_ROW];

		put64(row, w->members[i].coff);
		put64(row + 8, w->members[i].clen);
		put64(row + 16, w->members[i].uoff);
		put64(row + 24, w->members[i].ulen);
		b_add(&members, row, sizeof(row));
	}
	if (rc == 0)
		rc = write_table(&o, &members, &moff, err);
	if (rc)
		goto out;
	memcpy(h, IDX_MAGIC, 8);
	put32(h + 8, IDX_VERSION);
	put32(h + 12, IDX_HEADER);
	h[16] = (unsigned char)w->kind;
	h[17] = (unsigned char)w->codec;
	put64(h + 24, archive_size);
	put64(h + 32, stream_size);
	put64(h + 40, w->nmembers);
	put64(h + 48, o.entry);
	put64(h + 56, o.ndirs);
	put64(h + 64, moff);
	put64(h + 72, doff);
	put64(h + 80, boff);
	put64(h + 88, o.nblocks);
	put32(h + 124, libdeflate_crc32(0, h, 124));
	rc = cm_pwrite_all(o.fd, h, sizeof(h), 0);
	if (rc) {
		cm_err_set(err, -rc, "index file: write: %s", strerror(-rc));
		goto out;
	}
	if (lseek(o.fd, 0, SEEK_SET) < 0) {
		rc = cm_err_set(err, errno, "index file: seek: %s",
				strerror(errno));
		goto out;
	}
	*fd = o.fd;
	*size = o.pos;
	o.fd = -1;
out:
	if (o.fd >= 0)
		close(o.fd);
	free(o.raw.p);
	free(o.framed.p);
	free(o.blocks.p);
	free(o.dirs.p);
	free(o.dir);
	free(members.p);
	return rc;
}

void aidx_writer_free(struct aidx_writer *w)
{
	if (!w)
		return;
	if (w->spill >= 0)
		close(w->spill);
	for (size_t i = 0; i < w->nruns; i++)
		free(w->runs[i].buf);
	free(w->runs);
	free(w->members);
	free(w->arena.p);
	free(w->offs);
	free(w->tmpdir);
	free(w);
}

/* ---- reader ---------------------------------------------------------------- */

struct cached {
	uint64_t block;          /* UINT64_MAX: empty */
	struct bytes raw;
	uint64_t used;           /* LRU tick */
};

struct aidx {
	aidx_read_fn read;
	void *ctx;
	struct aidx_info info;
	struct aidx_member *members;
	/* directories: path i is paths + path_off[i], sorted */
	char *paths;
	size_t *path_off;
	uint64_t *dir_first, *dir_count;
	/* entry blocks */
	uint64_t *blk_off, *blk_first;
	uint32_t *blk_len, *blk_n;
	uint64_t nblocks;
	struct cached cache[IDX_CACHE];
	uint64_t tick;
	int *owned_fd;           /* aidx_open_file's (the ctx), or NULL */
};

const struct aidx_info *aidx_info(const struct aidx *x)
{
	return &x->info;
}

const struct aidx_member *aidx_members(const struct aidx *x, size_t *n)
{
	*n = (size_t)x->info.members;
	return x->members;
}

int64_t aidx_member_for(const struct aidx *x, uint64_t uoff)
{
	size_t lo = 0, hi = (size_t)x->info.members;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (x->members[mid].uoff + x->members[mid].ulen <= uoff)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == x->info.members || x->members[lo].uoff > uoff)
		return -1;
	return (int64_t)lo;
}

static int parse_members(struct aidx *x, const struct bytes *raw,
			 struct cm_err *err)
{
	uint64_t n = x->info.members;

	if (raw->len != n * IDX_MEMBER_ROW)
		return cm_err_set(err, EIO, "index member table: %zu bytes for "
				  "%llu members", raw->len,
				  (unsigned long long)n);
	x->members = cm_xcalloc(n ? n : 1, sizeof(*x->members));
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *p = raw->p + i * IDX_MEMBER_ROW;
		struct aidx_member *m = &x->members[i];

		m->coff = get64(p);
		m->clen = get64(p + 8);
		m->uoff = get64(p + 16);
		m->ulen = get64(p + 24);
		if (i && (m->uoff != m[-1].uoff + m[-1].ulen ||
			  m->coff != m[-1].coff + m[-1].clen))
			return cm_err_set(err, EIO, "index member %llu: not "
					  "where member %llu ends",
					  (unsigned long long)i,
					  (unsigned long long)i - 1);
	}
	return 0;
}

static int parse_dirs(struct aidx *x, const struct bytes *raw,
		      struct cm_err *err)
{
	struct cur c = { raw->p, raw->p + raw->len, false };
	uint64_t n = x->info.dirs, first = 0;
	struct bytes paths = { 0 };
	size_t prev = 0;

	if (n > raw->len)
		return cm_err_set(err, EIO, "index: %llu directories in a "
				  "table of %zu bytes",
				  (unsigned long long)n, raw->len);
	x->path_off = cm_xcalloc(n + 1, sizeof(*x->path_off));
	x->dir_first = cm_xcalloc(n + 1, sizeof(*x->dir_first));
	x->dir_count = cm_xcalloc(n + 1, sizeof(*x->dir_count));
	for (uint64_t i = 0; i < n && !c.bad; i++) {
		uint64_t shared = c_varint(&c);
		size_t len;
		const char *s = c_bytes(&c, &len);
		size_t at = paths.len;

		if (shared > (i ? strlen((char *)paths.p + prev) : 0)) {
			c.bad = true;
			break;
		}
		b_reserve(&paths, shared + len + 1);
		memcpy(paths.p + at, paths.p + prev, shared);
		memcpy(paths.p + at + shared, s, len);
		paths.p[at + shared + len] = '\0';
		paths.len += shared + len + 1;
		prev = at;
		x->path_off[i] = at;
		x->dir_first[i] = first;
		x->dir_count[i] = c_varint(&c);
		first += x->dir_count[i];
	}
	x->paths = (char *)paths.p;
	if (c.bad || first != x->info.entries)
		return cm_err_set(err, EIO, "index directory table: corrupt "
				  "(%llu entries counted, %llu in the header)",
				  (unsigned long long)first,
				  (unsigned long long)x->info.entries);
	return 0;
}

static int parse_blocks(struct aidx *x, const struct bytes *raw,
			struct cm_err *err)
{
	uint64_t n = raw->len / IDX_BLOCK_ROW;

	if (raw->len % IDX_BLOCK_ROW)
		return cm_err_set(err, EIO, "index block table: %zu bytes",
				  raw->len);
	x->blk_off = cm_xcalloc(n + 1, sizeof(uint64_t));
	x->blk_first = cm_xcalloc(n + 1, sizeof(uint64_t));
	x->blk_len = cm_xcalloc(n + 1, sizeof(uint32_t));
	x->blk_n = cm_xcalloc(n + 1, sizeof(uint32_t));
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *p = raw->p + i * IDX_BLOCK_ROW;

		x->blk_off[i] = get64(p);
		x->blk_first[i] = get64(p + 8);
		x->blk_len[i] = get32(p + 16);
		x->blk_n[i] = get32(p + 20);
		if (x->blk_off[i] + x->blk_len[i] > x->info.index_size ||
		    x->blk_len[i] < IDX_FRAME ||
		    x->blk_first[i] != (i ? x->blk_first[i - 1] +
						    x->blk_n[i - 1] : 0))
			return cm_err_set(err, EIO, "index block %llu: out of "
					  "place", (unsigned long long)i);
	}
	x->nblocks = n;
	if (n && x->blk_first[n - 1] + x->blk_n[n - 1] != x->info.entries)
		return cm_err_set(err, EIO, "index: the blocks hold %llu "
				  "entries, the header says %llu",
				  (unsigned long long)(x->blk_first[n - 1] +
						       x->blk_n[n - 1]),
				  (unsigned long long)x->info.entries);
	return 0;
}

int aidx_open(aidx_read_fn read, void *ctx, uint64_t size, struct aidx **out,
	      struct cm_err *err)
{
	struct aidx *x = cm_xcalloc(1, sizeof(*x));
	unsigned char h[IDX_HEADER];
	unsigned char *tail = NULL;
	struct bytes raw = { 0 };
	uint64_t moff, doff, boff, start, nblocks;
	int rc;

	*out = NULL;
	x->read = read;
	x->ctx = ctx;
	for (int i = 0; i < IDX_CACHE; i++)
		x->cache[i].block = UINT64_MAX;
	if (size < IDX_HEADER) {
		rc = cm_err_set(err, EIO, "index: %llu bytes: too short",
				(unsigned long long)size);
		goto out;
	}
	rc = read(ctx, 0, h, sizeof(h), err);
	if (rc)
		goto out;
	if (memcmp(h, IDX_MAGIC, 8) != 0) {
		rc = cm_err_set(err, EIO, "not a vaultfs index (bad magic)");
		goto out;
	}
	if (get32(h + 124) != libdeflate_crc32(0, h, 124)) {
		rc = cm_err_set(err, EIO, "index header: checksum mismatch");
		goto out;
	}
	x->info.version = get32(h + 8);
	if (x->info.version != IDX_VERSION || get32(h + 12) != IDX_HEADER) {
		rc = cm_err_set(err, EIO, "index version %u: this vaultfs "
				"reads version %d", x->info.version,
				IDX_VERSION);
		goto out;
	}
	x->info.kind = h[16];
	x->info.codec = h[17];
	x->info.archive_size = get64(h + 24);
	x->info.stream_size = get64(h + 32);
	x->info.members = get64(h + 40);
	x->info.entries = get64(h + 48);
	x->info.dirs = get64(h + 56);
	x->info.index_size = size;
	moff = get64(h + 64);
	doff = get64(h + 72);
	boff = get64(h + 80);
	nblocks = get64(h + 88);
	if (x->info.kind != AIDX_KIND_TAR && x->info.kind != AIDX_KIND_RAW) {
		rc = cm_err_set(err, EIO, "index: unknown kind %d",
				(int)x->info.kind);
		goto out;
	}
	/* the tables are the file's tail: read them in one go */
	start = moff;
	if (x->info.kind == AIDX_KIND_TAR)
		start = boff < doff ? boff : doff;
	if (start < IDX_HEADER || start > size || moff < start ||
	    moff >= size || (x->info.kind == AIDX_KIND_TAR &&
			     (doff >= size || boff >= size)) ||
	    size - start > IDX_TABLE_MAX) {
		rc = cm_err_set(err, EIO, "index: tables out of place");
		goto out;
	}
	tail = cm_xmalloc(size - start);
	rc = read(ctx, start, tail, size - start, err);
	if (rc)
		goto out;
	rc = block_decode(tail + (moff - start), size - moff, &raw,
			  "member table", err);
	if (rc == 0)
		rc = parse_members(x, &raw, err);
	if (rc == 0 && x->info.kind == AIDX_KIND_TAR) {
		rc = block_decode(tail + (doff - start), size - doff, &raw,
				  "directory table", err);
		if (rc == 0)
			rc = parse_dirs(x, &raw, err);
		if (rc == 0)
			rc = block_decode(tail + (boff - start), size - boff,
					  &raw, "block table", err);
		if (rc == 0)
			rc = parse_blocks(x, &raw, err);
		if (rc == 0 && raw.len / IDX_BLOCK_ROW != nblocks)
			rc = cm_err_set(err, EIO, "index: %zu blocks listed, "
					"%llu in the header",
					raw.len / IDX_BLOCK_ROW,
					(unsigned long long)nblocks);
	} else {
		x->info.entries = 0;
		x->info.dirs = 0;
	}
out:
	free(tail);
	free(raw.p);
	if (rc) {
		aidx_close(x);
		return rc < 0 ? rc : -EIO;
	}
	*out = x;
	return 0;
}

static int file_read(void *ctx, uint64_t off, void *buf, size_t len,
		     struct cm_err *err)
{
	int rc = cm_pread_all(*(int *)ctx, buf, len, (off_t)off);

	if (rc)
		return cm_err_set(err, -rc, "index: read: %s",
				  rc == -EIO ? "the file is short" :
					       strerror(-rc));
	return 0;
}

int aidx_open_file(const char *path, struct aidx **out, struct cm_err *err)
{
	struct stat st;
	int *fd = cm_xmalloc(sizeof(*fd));
	int rc;

	*out = NULL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0 || fstat(*fd, &st) != 0) {
		rc = cm_err_set(err, errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	rc = aidx_open(file_read, fd, (uint64_t)st.st_size, out, err);
	if (rc)
		goto fail;
	(*out)->owned_fd = fd;
	return 0;
fail:
	if (*fd >= 0)
		close(*fd);
	free(fd);
	return rc;
}

void aidx_close(struct aidx *x)
{
	if (!x)
		return;
	if (x->owned_fd) {
		close(*x->owned_fd);
		free(x->owned_fd);
	}
	for (int i = 0; i < IDX_CACHE; i++)
		free(x->cache[i].raw.p);
	free(x->members);
	free(x->paths);
	free(x->path_off);
	free(x->dir_first);
	free(x->dir_count);
	free(x->blk_off);
	free(x->blk_first);
	free(x->blk_len);
	free(x->blk_n);
	free(x);
}

/* Entry block i, decoded (cached). */
static int load_block(struct aidx *x, uint64_t i, const struct bytes **out,
		      struct cm_err *err)
{
	struct cached *slot = &x->cache[0];
	unsigned char *framed;
	char what[48];
	int rc;

	for (int k = 0; k < IDX_CACHE; k++) {
		if (x->cache[k].block == i) {
			x->cache[k].used = ++x->tick;
			*out = &x->cache[k].raw;
			return 0;
		}
		if (x->cache[k].used < slot->used)
			slot = &x->cache[k];
	}
	framed = cm_xmalloc(x->blk_len[i]);
	rc = x->read(x->ctx, x->blk_off[i], framed, x->blk_len[i], err);
	snprintf(what, sizeof(what), "block %llu", (unsigned long long)i);
	slot->block = UINT64_MAX;
	if (rc == 0)
		rc = block_decode(framed, x->blk_len[i], &slot->raw, what, err);
	free(framed);
	if (rc)
		return rc;
	slot->block = i;
	slot->used = ++x->tick;
	*out = &slot->raw;
	return 0;
}

/* The last i < n with first[i] <= e (0 when none): whose range holds e. */
static uint64_t last_le(const uint64_t *first, uint64_t n, uint64_t e)
{
	uint64_t lo = 0, hi = n;

	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (first[mid] <= e)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* The directory holding entry number e. */
static uint64_t dir_of(const struct aidx *x, uint64_t e)
{
	return last_le(x->dir_first, x->info.dirs, e);
}

const char *aidx_dir_path(const struct aidx *x, uint64_t d)
{
	return x->paths + x->path_off[d];
}

uint64_t aidx_dir_search(const struct aidx *x, const char *path)
{
	uint64_t lo = 0, hi = x->info.dirs;

	while (lo < hi) {
		uint64_t mid = lo + (hi - lo) / 2;

		if (strcmp(aidx_dir_path(x, mid), path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Index of directory `path`; -1 when no directory has that path. */
static int64_t find_dir(const struct aidx *x, const char *path)
{
	uint64_t d = aidx_dir_search(x, path);

	if (d < x->info.dirs && !strcmp(aidx_dir_path(x, d), path))
		return (int64_t)d;
	return -1;
}

/* The block holding entry number e. */
static uint64_t block_of(const struct aidx *x, uint64_t e)
{
	return last_le(x->blk_first, x->nblocks, e);
}

/*
 * Entries [first, first + count) that `want` accepts into out (paths
 * composed from their directory). want == NULL accepts every one; a
 * `stop` of true after a match ends the scan (lookup).
 */
typedef bool (*want_fn)(void *ctx, const char *name, size_t len,
			bool *stop);

static int scan(struct aidx *x, uint64_t first, uint64_t count, want_fn want,
		void *wctx, struct aidx_list *out, size_t *cap,
		struct cm_err *err)
{
	uint64_t e = first, end = first + count;
	uint64_t b = block_of(x, first);
	int rc = 0;

	while (e < end) {
		const struct bytes *raw;
		struct cur c;
		uint64_t k, d;
		bool stop = false;

		rc = load_block(x, b, &raw, err);
		if (rc)
			return rc;
		c.p = raw->p;
		c.end = raw->p + raw->len;
		c.bad = false;
		k = x->blk_first[b];
		d = dir_of(x, k);
		for (; k < x->blk_first[b] + x->blk_n[b] && e < end && !stop;
		     k++) {
			struct aidx_entry en = { 0 };
			size_t nl, ll, ul, gl;
			const char *name, *link, *un, *gn;
			uint64_t hoff;

			while (d + 1 < x->info.dirs && x->dir_first[d + 1] <= k)
				d++;
			name = c_bytes(&c, &nl);
			en.type = (char)c_byte(&c);
			en.sparse = c_byte(&c) & 1;
			en.mode = (uint32_t)c_varint(&c);
			en.uid = (uint32_t)c_varint(&c);
			en.gid = (uint32_t)c_varint(&c);
			en.size = c_varint(&c);
			en.stored = c_varint(&c);
			en.mtime_sec = unzigzag(c_varint(&c));
			en.mtime_nsec = (uint32_t)c_varint(&c);
			hoff = c_varint(&c);
			en.header_off = hoff;
			en.data_off = hoff + c_varint(&c);
			link = c_bytes(&c, &ll);
			un = c_bytes(&c, &ul);
			gn = c_bytes(&c, &gl);
			en.devmajor = (uint32_t)c_varint(&c);
			en.devminor = (uint32_t)c_varint(&c);
			if (c.bad)
				return cm_err_set(err, EIO, "index block %llu: "
						  "entry %llu does not parse",
						  (unsigned long long)b,
						  (unsigned long long)k);
			if (k < e)
				continue;
			e = k + 1;
			if (want && !want(wctx, name, nl, &stop))
				continue;
			{
				const char *dp = aidx_dir_path(x, d);
				struct aidx_entry *slot = list_push(out, cap);

				*slot = en;
				slot->path = arena_str(out, dp, strlen(dp),
						       name, nl);
				slot->link = arena_str(out, link, ll, "", 0);
				slot->uname = arena_str(out, un, ul, "", 0);
				slot->gname = arena_str(out, gn, gl, "", 0);
			}
		}
		if (stop)
			break;
		if (c.p != c.end && k == x->blk_first[b] + x->blk_n[b])
			return cm_err_set(err, EIO, "index block %llu: bytes "
					  "after its last entry",
					  (unsigned long long)b);
		b++;
	}
	return rc;
}

struct name_want {
	const char *name;
	size_t len;
	bool seen;
};

static bool want_name(void *ctx, const char *name, size_t len, bool *stop)
{
	struct name_want *n = ctx;

	if (len == n->len && !memcmp(name, n->name, len)) {
		n->seen = true;
		return true;
	}
	/* a name held twice comes in one run, by header_off */
	if (n->seen)
		*stop = true;
	return false;
}

static bool want_not_root(void *ctx, const char *name, size_t len,
			  bool *stop)
{
	(void)ctx;
	(void)name;
	(void)stop;
	return len != 0;
}

int aidx_lookup(struct aidx *x, const char *path, struct aidx_list *out,
		struct cm_err *err)
{
	char *p = aidx_normalise(cm_xstrdup(path));
	size_t plen = parent_len(p), cap = 0;
	struct name_want n;
	char *parent;
	int64_t d;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	n.name = p + plen + (p[plen] == '/');
	n.len = strlen(n.name);
	n.seen = false;
	/* the parent: p cut at the last slash ("" for the top level, whose
	 * names start at p itself) */
	parent = cm_xstrndup(p, plen);
	d = x->info.kind == AIDX_KIND_TAR ? find_dir(x, parent) : -1;
	free(parent);
	if (d >= 0)
		rc = scan(x, x->dir_first[d], x->dir_count[d], want_name, &n,
			  out, &cap, err);
	if (rc == 0 && out->n == 0)
		rc = cm_err_set(err, ENOENT, "%s: not in the archive", path);
	if (rc == 0 && out->n > 1) {
		out->v[0] = out->v[out->n - 1]; /* what tar -x leaves */
		out->n = 1;
	}
	free(p);
	if (rc)
		aidx_list_release(out);
	return rc;
}

int aidx_list_dir(struct aidx *x, const char *dir, struct aidx_list *out,
		  struct cm_err *err)
{
	char *p = aidx_normalise(cm_xstrdup(dir));
	size_t cap = 0;
	int64_t d = x->info.kind == AIDX_KIND_TAR ? find_dir(x, p) : -1;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (d >= 0) {
		rc = scan(x, x->dir_first[d], x->dir_count[d], want_not_root,
			  NULL, out, &cap, err);
	} else if (*p) {
		/* no entry inside: an empty directory, or no directory */
		rc = aidx_lookup(x, p, out, err);
		if (rc == 0 && out->v[0].type != '5')
			rc = cm_err_set(err, ENOTDIR, "%s: not a directory",
					dir);
		aidx_list_release(out);
	}
	free(p);
	if (rc)
		aidx_list_release(out);
	return rc;
}

static int by_header_off(const void *a, const void *b)
{
	const struct aidx_entry *x = a, *y = b;

	return x->header_off < y->header_off ? -1 :
					       x->header_off > y->header_off;
}

int aidx_walk(struct aidx *x, const char *prefix, struct aidx_list *out,
	      struct cm_err *err)
{
	char *p = aidx_normalise(cm_xstrdup(prefix));
	size_t plen = strlen(p), cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (x->info.kind != AIDX_KIND_TAR)
		goto out;
	if (!*p) {
		rc = scan(x, 0, x->info.entries, NULL, NULL, out, &cap, err);
		goto sort;
	}
	{
		struct aidx_list self;
		char *under = cm_xasprintf("%s/", p);
		uint64_t lo;
		int64_t d;

		rc = aidx_lookup(x, p, &self, err);
		if (rc) {
			free(under);
			goto out;
		}
		/* the entry itself, copied into out */
		entry_copy(out, list_push(out, &cap), &self.v[0]);
		aidx_list_release(&self);
		/* its own directory, then those below it: "p/..." sort
		 * together, after the first path >= "p/" */
		d = find_dir(x, p);
		if (d >= 0)
			rc = scan(x, x->dir_first[d], x->dir_count[d], NULL,
				  NULL, out, &cap, err);
		lo = aidx_dir_search(x, under);
		for (; rc == 0 && lo < x->info.dirs &&
		       !strncmp(aidx_dir_path(x, lo), under, plen + 1);
		     lo++)
			rc = scan(x, x->dir_first[lo], x->dir_count[lo], NULL,
				  NULL, out, &cap, err);
		free(under);
	}
sort:
	if (rc == 0 && out->n)
		qsort(out->v, out->n, sizeof(*out->v), by_header_off);
out:
	free(p);
	if (rc)
		aidx_list_release(out);
	return rc;
}
