/*
 * browse.c - an indexed archive opened for browsing (browse.h).
 *
 * Three locks, never nested in one another:
 *   idx_lock    the index reader (aindex.h: one thread at a time), held
 *               for lookups and listings only;
 *   lock        the member cache (hash, LRU, byte count), the single
 *               flights and the read-ahead queue; cm_budget_try is called
 *               under it (the budget's lock is a leaf), but not
 *               cm_budget_give, which may call a queued waiter of the
 *               budget back on this thread: bytes of dropped members are
 *               owed, reused for the next member, and given back once
 *               the lock is let go (cache_unlock);
 *   flock       the files whose reading needs state of their own (the
 *               resolved hard link, the sparse map, where the last read
 *               ended).
 * Fetching and decoding run under none of them.
 *
 * A member being fetched is a slot in the hash (state LOADING) with a
 * count of the readers that wait for it: the first reader fetches, the
 * others sleep on `loaded` and copy from the same slot (curl's and
 * pigz's pattern of one worker per unit, here one per member). A slot is
 * freed when it has left the hash (evicted, failed, or never cached) and
 * its last reader lets go.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "browse.h"
#include "mem.h"
#include "member.h"
#include "unpack.h"

#define CACHE_DEFAULT (64ull << 20)
#define HASH_SIZE 256          /* buckets of the member hash */
#define AHEAD_QUEUE 4          /* members waiting to be fetched ahead */
#define AHEAD_THREADS 2
#define FILES_MAX 64           /* files whose reading state is kept */
#define LINK_DEPTH 8           /* hard links to hard links followed */
#define SPARSE_REGIONS_MAX (1u << 22) /* a map of more is refused */
/* a member's stored bytes: its data and the codec's framing, at most */
#define STORED_MAX (ARC_UNIT_MAX + (ARC_UNIT_MAX >> 6) + 4096)

enum slot_state { S_LOADING, S_READY, S_FAILED };

struct slot {
	uint64_t idx;              /* member number */
	struct slot *hnext;        /* hash chain */
	struct slot *prev, *next;  /* LRU, newest first: cached and ready */
	unsigned char *data;
	size_t len;
	unsigned refs;             /* readers holding or waiting for it */
	enum slot_state state;
	bool cached;               /* its bytes count in cache_bytes */
	bool hashed;
	int rc;                    /* S_FAILED */
	struct cm_err *err;
};

/* One data region of a sparse file: len bytes of the file at off are
 * stored at `at` of its data (after the map). */
struct region {
	uint64_t off, len, at;
};

/* What reading an entry needs beyond the entry: kept per file. */
struct bfile {
	uint64_t key;              /* the header_off of the entry read */
	uint64_t tick;             /* last use */
	unsigned refs;
	bool listed;               /* in b->files */
	uint64_t data_off, stored, size; /* of the target of a hard link */
	bool sparse;
	struct region *map;
	size_t nmap;
	uint64_t map_bytes;        /* the map and its padding, before data */
	uint64_t next;             /* where the last read ended */
};

struct arc_browse {
	char *url, *index_url;
	struct arc_object *arc, *iobj;
	struct aidx *x;
	enum arc_codec codec;
	bool stored_plain;         /* codec none: stream bytes = stored */
	const struct aidx_member *members;
	size_t nmembers;
	struct cm_budget *budget;
	uint64_t cache_limit;

	pthread_mutex_t idx_lock;
	bool have_newest;
	int64_t newest_sec;        /* the newest mtime of any entry */
	uint32_t newest_nsec;

	pthread_mutex_t lock;
	pthread_cond_t loaded;     /* a slot left S_LOADING */
	struct slot *hash[HASH_SIZE];
	struct slot *lru_head, *lru_tail;
	uint64_t cache_bytes;
	uint64_t owed;             /* budget bytes to give back (see top) */
	uint64_t hits, misses;
	atomic_uint_fast64_t decoded;
	/* read-ahead: member numbers queued, and the workers */
	pthread_cond_t ahead_cv;
	struct slot *ahead_q[AHEAD_QUEUE]; /* held, S_LOADING, hashed */
	size_t ahead_n;
	pthread_t ahead_th[AHEAD_THREADS];
	unsigned ahead_threads;
	bool stopping;

	pthread_mutex_t flock;
	struct bfile *files[FILES_MAX];
	uint64_t ftick;
};

/* ---- open ------------------------------------------------------------- */

static int index_read(void *ctx, uint64_t off, void *buf, size_t len,
		      struct cm_err *err)
{
	return arc_object_read(ctx, off, buf, len, err);
}

int arc_browse_open(const struct arc_browse_opts *o, struct arc_browse **out,
		    struct cm_err *err)
{
	struct cm_err own_err; /* err may be NULL */
	struct arc_browse *b = cm_xcalloc(1, sizeof(*b));
	const struct aidx_info *info;
	struct cm_err e;
	int rc;

	if (!err)
		err = &own_err;

	*out = NULL;
	b->url = cm_xstrdup(o->url);
	b->index_url = o->index_url ? cm_xstrdup(o->index_url) :
				      cm_xasprintf("%s%s", o->url, AIDX_SUFFIX);
	b->budget = o->budget;
	b->cache_limit = o->cache_bytes ? o->cache_bytes : CACHE_DEFAULT;
	pthread_mutex_init(&b->idx_lock, NULL);
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->flock, NULL);
	pthread_cond_init(&b->loaded, NULL);
	pthread_cond_init(&b->ahead_cv, NULL);
	atomic_init(&b->decoded, 0);

	rc = arc_object_open(b->url, o->client, &b->arc, err);
	if (rc) {
		cm_err_prefix(err, "%s", b->url);
		goto fail;
	}
	cm_err_clear(&e);
	rc = arc_object_open(b->index_url, o->client, &b->iobj, &e);
	if (rc == -ENOENT) {
		rc = cm_err_set(err, ENOENT, "%s: not indexed (no %s)",
				b->url, b->index_url);
		goto fail;
	}
	if (rc == 0)
		rc = aidx_open(index_read, b->iobj, arc_object_size(b->iobj),
			       &b->x, &e);
	if (rc) {
		*err = e;
		cm_err_prefix(err, "%s", b->index_url);
		goto fail;
	}
	info = aidx_info(b->x);
	if (info->kind != AIDX_KIND_TAR) {
		rc = cm_err_set(err, EMEDIUMTYPE, "%s: the index of a raw "
				"image: it has no tree to browse", b->url);
		goto fail;
	}
	if (info->archive_size != arc_object_size(b->arc)) {
		rc = cm_err_set(err, ESTALE, "%s: the index describes an "
				"archive of %llu bytes, this one has %llu "
				"(the index belongs to another archive)",
				b->url,
				(unsigned long long)info->archive_size,
				(unsigned long long)arc_object_size(b->arc));
		goto fail;
	}
	switch (info->codec) {
	case AIDX_CODEC_NONE:
		b->codec = ARC_CODEC_NONE;
		b->stored_plain = true;
		break;
	case AIDX_CODEC_GZIP:
		b->codec = ARC_CODEC_GZIP;
		break;
	case AIDX_CODEC_ZSTD:
		b->codec = ARC_CODEC_ZSTD;
		break;
	default:
		rc = cm_err_set(err, EIO, "%s: the index names an unknown "
				"codec %d", b->index_url, (int)info->codec);
		goto fail;
	}
	b->members = aidx_members(b->x, &b->nmembers);
	*out = b;
	return 0;
fail:
	arc_browse_free(b);
	return rc;
}

const struct aidx_info *arc_browse_info(const struct arc_browse *b)
{
	return aidx_info(b->x);
}

/* ---- the member cache --------------------------------------------------- */

static void slot_free(struct arc_browse *b, struct slot *s)
{
	if (s->cached) {
		b->cache_bytes -= s->len;
		if (b->budget)
			b->owed += s->len;
	}
	free(s->data);
	free(s->err);
	free(s);
}

/* Let go of the cache lock, then give back what is owed to the budget. */
static void cache_unlock(struct arc_browse *b)
{
	uint64_t owed = b->owed;

	b->owed = 0;
	pthread_mutex_unlock(&b->lock);
	if (owed)
		cm_budget_give(b->budget, owed);
}

static struct slot **hash_at(struct arc_browse *b, uint64_t idx)
{
	return &b->hash[idx % HASH_SIZE];
}

static struct slot *hash_find(struct arc_browse *b, uint64_t idx)
{
	for (struct slot *s = *hash_at(b, idx); s; s = s->hnext)
		if (s->idx == idx)
			return s;
	return NULL;
}

static void hash_remove(struct arc_browse *b, struct slot *s)
{
	struct slot **p = hash_at(b, s->idx);

	while (*p != s)
		p = &(*p)->hnext;
	*p = s->hnext;
	s->hashed = false;
}

static void lru_unlink(struct arc_browse *b, struct slot *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		b->lru_head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		b->lru_tail = s->prev;
	s->prev = s->next = NULL;
}

static void lru_push(struct arc_browse *b, struct slot *s)
{
	s->prev = NULL;
	s->next = b->lru_head;
	if (b->lru_head)
		b->lru_head->prev = s;
	else
		b->lru_tail = s;
	b->lru_head = s;
}

/* Drop the least recently used member no reader holds; false if none. */
static bool evict_one(struct arc_browse *b)
{
	for (struct slot *s = b->lru_tail; s; s = s->prev) {
		if (s->refs)
			continue;
		lru_unlink(b, s);
		hash_remove(b, s);
		slot_free(b, s);
		return true;
	}
	return false;
}

/* Room for n more cached bytes (under the limit and, when there is one,
 * from the budget), evicting as needed; false when there is none. */
static bool reserve(struct arc_browse *b, uint64_t n)
{
	if (n > b->cache_limit)
		return false;
	while (b->cache_bytes + n > b->cache_limit)
		if (!evict_one(b))
			return false;
	while (b->budget) {
		if (b->owed >= n) {
			b->owed -= n;
			break;
		}
		if (cm_budget_try(b->budget, n - b->owed)) {
			b->owed = 0;
			break;
		}
		if (!evict_one(b))
			return false;
	}
	b->cache_bytes += n;
	return true;
}

static void slot_put(struct arc_browse *b, struct slot *s)
{
	pthread_mutex_lock(&b->lock);
	if (--s->refs == 0 && !s->hashed)
		slot_free(b, s);
	cache_unlock(b);
}

/* Fetch and decode member i into s (no lock held). */
static int member_load(struct arc_browse *b, uint64_t i, struct slot *s,
		       struct cm_err *err)
{
	const struct aidx_member *m = &b->members[i];
	unsigned char *in = NULL;
	size_t n = 0;
	int rc;

	if (m->ulen > ARC_UNIT_MAX || m->clen > STORED_MAX) {
		rc = cm_err_set(err, EIO, "larger than a member may be "
				"(%llu stored, %llu decoded bytes)",
				(unsigned long long)m->clen,
				(unsigned long long)m->ulen);
		goto out;
	}
	in = cm_xmalloc(m->clen ? m->clen : 1);
	s->data = cm_xmalloc(m->ulen ? m->ulen : 1);
	rc = arc_object_read(b->arc, m->coff, in, m->clen, err);
	if (rc == 0)
		rc = arc_member_decode(b->codec, in, m->clen, s->data, m->ulen,
				       &n, err);
	if (rc == 0 && n != m->ulen)
		rc = cm_err_set(err, EIO, "decodes to %zu bytes, the index "
				"says %llu", n, (unsigned long long)m->ulen);
	if (rc == 0)
		atomic_fetch_add(&b->decoded, 1);
out:
	free(in);
	if (rc)
		cm_err_prefix(err, "%s: member %llu (stored bytes %llu-%llu, "
			      "stream bytes %llu-%llu)", b->url,
			      (unsigned long long)i,
			      (unsigned long long)m->coff,
			      (unsigned long long)(m->coff + m->clen),
			      (unsigned long long)m->uoff,
			      (unsigned long long)(m->uoff + m->ulen));
	return rc;
}

/*
 * Under lock: a slot for member i, on its way (S_LOADING), in the hash
 * and held once, its bytes reserved in the cache when there is room;
 * without room, NULL when `need` is false (a read-ahead caches or does
 * nothing), else a slot of its fetcher and waiters only.
 */
static struct slot *slot_new(struct arc_browse *b, uint64_t i, bool need)
{
	struct slot *s = cm_xcalloc(1, sizeof(*s));

	s->idx = i;
	s->len = b->members[i].ulen;
	s->cached = reserve(b, s->len);
	if (!need && !s->cached) {
		free(s);
		return NULL;
	}
	s->refs = 1;
	s->state = S_LOADING;
	s->hnext = *hash_at(b, i);
	*hash_at(b, i) = s;
	s->hashed = true;
	return s;
}

/* Fetch and decode s (from slot_new; no lock held) and hand it to those
 * waiting for it: the data, or the error (which later readers do not
 * see: they fetch again). */
static int slot_fill(struct arc_browse *b, struct slot *s, struct cm_err *err)
{
	int rc = member_load(b, s->idx, s, err);

	pthread_mutex_lock(&b->lock);
	if (rc) {
		s->state = S_FAILED;
		s->rc = -rc;
		s->err = cm_xmalloc(sizeof(*s->err));
		*s->err = *err;
		hash_remove(b, s);
	} else {
		s->state = S_READY;
		if (s->cached)
			lru_push(b, s);
		else
			hash_remove(b, s); /* its fetcher's and waiters' */
	}
	pthread_cond_broadcast(&b->loaded);
	cache_unlock(b);
	return rc;
}

/*
 * Member i, decoded, held (slot_put when done). The first reader of a
 * member fetches it; others, and readers of a member read ahead, wait
 * for that one fetch.
 */
static int member_get(struct arc_browse *b, uint64_t i, struct slot **out,
		      struct cm_err *err)
{
	struct slot *s;
	int rc;

	pthread_mutex_lock(&b->lock);
	s = hash_find(b, i);
	if (s) {
		s->refs++;
		while (s->state == S_LOADING)
			pthread_cond_wait(&b->loaded, &b->lock);
		if (s->state == S_FAILED) {
			rc = s->rc > 0 ? -s->rc : -EIO;
			*err = *s->err;
			cache_unlock(b);
			slot_put(b, s);
			return rc;
		}
		b->hits++;
		if (s->cached) {
			lru_unlink(b, s);
			lru_push(b, s);
		}
		cache_unlock(b);
		*out = s;
		return 0;
	}
	s = slot_new(b, i, true);
	b->misses++;
	cache_unlock(b);
	rc = slot_fill(b, s, err);
	if (rc) {
		slot_put(b, s);
		return rc;
	}
	*out = s;
	return 0;
}

/* ---- read-ahead --------------------------------------------------------- */

/* The workers: fill the slots queued by ahead(), oldest first. */
static void *ahead_main(void *arg)
{
	struct arc_browse *b = arg;

	pthread_mutex_lock(&b->lock);
	while (!b->stopping) {
		struct slot *s;
		struct cm_err e;

		if (!b->ahead_n) {
			pthread_cond_wait(&b->ahead_cv, &b->lock);
			continue;
		}
		s = b->ahead_q[0];
		memmove(b->ahead_q, b->ahead_q + 1,
			--b->ahead_n * sizeof(*b->ahead_q));
		cache_unlock(b);
		/* a failure is the readers' to report: those waiting get it,
		 * later ones fetch again */
		cm_err_clear(&e);
		slot_fill(b, s, &e);
		slot_put(b, s);
		pthread_mutex_lock(&b->lock);
	}
	cache_unlock(b);
	return NULL;
}

/*
 * Start fetching member i unless it is cached or on its way, or the
 * queue is full, or the cache has no room (a hint: dropped rather than
 * waited for). Its slot goes into the hash now, so that a reader that
 * gets there before a worker does waits for this fetch instead of
 * making its own.
 */
static void ahead(struct arc_browse *b, uint64_t i)
{
	struct slot *s;

	pthread_mutex_lock(&b->lock);
	if (i >= b->nmembers || b->stopping || hash_find(b, i) ||
	    b->ahead_n == AHEAD_QUEUE)
		goto out;
	while (b->ahead_threads < AHEAD_THREADS &&
	       pthread_create(&b->ahead_th[b->ahead_threads], NULL,
			      ahead_main, b) == 0)
		b->ahead_threads++;
	if (!b->ahead_threads)
		goto out;
	s = slot_new(b, i, false);
	if (!s)
		goto out;
	b->ahead_q[b->ahead_n++] = s;
	pthread_cond_signal(&b->ahead_cv);
out:
	cache_unlock(b);
}

/* ---- the stream ----------------------------------------------------------- */

/*
 * len bytes of the uncompressed stream at uoff into buf, through the
 * member cache; *last the member the last byte came from (-1: none).
 */
static int stream_read(struct arc_browse *b, uint64_t uoff, void *buf,
		       size_t len, int64_t *last, struct cm_err *err)
{
	unsigned char *p = buf;

	*last = -1;
	if (b->stored_plain) {
		int rc = len ? arc_object_read(b->arc, uoff, buf, len, err) : 0;

		if (rc)
			cm_err_prefix(err, "%s: bytes %llu-%llu", b->url,
				      (unsigned long long)uoff,
				      (unsigned long long)(uoff + len));
		return rc;
	}
	while (len) {
		int64_t i = aidx_member_for(b->x, uoff);
		const struct aidx_member *m;
		struct slot *s;
		size_t n;
		int rc;

		if (i < 0)
			return cm_err_set(err, EIO, "%s: byte %llu of the "
					  "stream is in no member of the index",
					  b->url, (unsigned long long)uoff);
		rc = member_get(b, (uint64_t)i, &s, err);
		if (rc)
			return rc;
		m = &b->members[i];
		n = m->uoff + m->ulen - uoff;
		if (n > len)
			n = len;
		memcpy(p, s->data + (uoff - m->uoff), n);
		slot_put(b, s);
		p += n;
		uoff += n;
		len -= n;
		*last = i;
	}
	return 0;
}

/* ---- tree ---------------------------------------------------------------- */

/*
 * A hard link's size, mode, owner and times from the entry it links to
 * (followed through links to links). Its names stay the link header's
 * own: the same inode's, as tar writes them. A target that is not in the
 * archive leaves the entry as stored (tar -x could not make the link).
 * Under idx_lock.
 */
static int link_fill(struct arc_browse *b, struct aidx_entry *en,
		     struct cm_err *err)
{
	char *target = cm_xstrdup(en->link);
	int rc = 0;

	for (int depth = 0; depth < LINK_DEPTH; depth++) {
		struct aidx_list t;
		struct cm_err e;

		cm_err_clear(&e);
		rc = aidx_lookup(b->x, target, &t, &e);
		if (rc == -ENOENT) {
			rc = 0;
			break;
		}
		if (rc) {
			*err = e;
			break;
		}
		if (t.v[0].type == '1' && t.v[0].link[0]) {
			free(target);
			target = cm_xstrdup(t.v[0].link);
			aidx_list_release(&t);
			continue;
		}
		en->size = t.v[0].size;
		en->mode = t.v[0].mode;
		en->uid = t.v[0].uid;
		en->gid = t.v[0].gid;
		en->mtime_sec = t.v[0].mtime_sec;
		en->mtime_nsec = t.v[0].mtime_nsec;
		aidx_list_release(&t);
		break;
	}
	free(target);
	return rc;
}

/* Whether normalised path p is a directory the index implies: the root,
 * or a prefix of a directory that has entries. Under idx_lock. */
static bool implied(struct arc_browse *b, const char *p)
{
	const struct aidx_info *info = aidx_info(b->x);
	size_t plen = strlen(p);
	char *under;
	uint64_t d;
	bool yes;

	if (!*p)
		return true;
	d = aidx_dir_search(b->x, p);
	if (d < info->dirs && !strcmp(aidx_dir_path(b->x, d), p))
		return true;
	under = cm_xasprintf("%s/", p);
	d = aidx_dir_search(b->x, under);
	yes = d < info->dirs && !strncmp(aidx_dir_path(b->x, d), under,
					 plen + 1);
	free(under);
	return yes;
}

/* The newest mtime of any entry: read once, and only for an archive
 * whose tree leaves directories out (ours never do). Under idx_lock. */
static int newest(struct arc_browse *b, struct cm_err *err)
{
	const struct aidx_info *info = aidx_info(b->x);

	if (b->have_newest)
		return 0;
	for (uint64_t d = 0; d < info->dirs; d++) {
		struct aidx_list l;
		int rc = aidx_list_dir(b->x, aidx_dir_path(b->x, d), &l, err);

		if (rc)
			return rc;
		for (size_t k = 0; k < l.n; k++)
			if (l.v[k].mtime_sec > b->newest_sec ||
			    (l.v[k].mtime_sec == b->newest_sec &&
			     l.v[k].mtime_nsec > b->newest_nsec)) {
				b->newest_sec = l.v[k].mtime_sec;
				b->newest_nsec = l.v[k].mtime_nsec;
			}
		aidx_list_release(&l);
	}
	b->have_newest = true;
	return 0;
}

/* Append the synthesised directory p to out. Under idx_lock. */
static int add_implied(struct arc_browse *b, const char *p,
		       struct aidx_list *out, struct cm_err *err)
{
	struct aidx_entry en = {
		.path = p, .link = "", .uname = "", .gname = "",
		.type = '5', .mode = 0755,
		.header_off = UINT64_MAX, .data_off = UINT64_MAX,
	};
	int rc = newest(b, err);

	if (rc)
		return rc;
	en.mtime_sec = b->newest_sec;
	en.mtime_nsec = b->newest_nsec;
	aidx_list_add(out, &en);
	return 0;
}

/* The end of stat and list: idx_lock let go, p freed, out released on
 * failure and err naming the archive. */
static int tree_done(struct arc_browse *b, char *p, struct aidx_list *out,
		     int rc, struct cm_err *err)
{
	pthread_mutex_unlock(&b->idx_lock);
	if (rc) {
		aidx_list_release(out);
		cm_err_prefix(err, "%s", b->url);
	}
	free(p);
	return rc;
}

int arc_browse_stat(struct arc_browse *b, const char *path,
		    struct aidx_list *out, struct cm_err *err)
{
	struct cm_err own_err; /* err may be NULL */
	char *p = aidx_normalise(cm_xstrdup(path));
	struct cm_err e;
	int rc;

	if (!err)
		err = &own_err;

	memset(out, 0, sizeof(*out));
	cm_err_clear(&e);
	pthread_mutex_lock(&b->idx_lock);
	rc = aidx_lookup(b->x, p, out, &e);
	if (rc == 0 && out->v[0].type == '1')
		rc = link_fill(b, &out->v[0], err);
	else if (rc == -ENOENT && implied(b, p))
		rc = add_implied(b, p, out, err);
	else if (rc)
		*err = e;
	return tree_done(b, p, out, rc, err);
}

static int by_path(const void *a, const void *b)
{
	const struct aidx_entry *x = a, *y = b;
	int c = strcmp(x->path, y->path);

	if (c)
		return c;
	return x->header_off < y->header_off ? -1 :
					       x->header_off > y->header_off;
}

static int by_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether sorted out holds an entry at path. */
static bool listed(const struct aidx_list *out, size_t n, const char *path)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(out->v[mid].path, path);

		if (c == 0)
			return true;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/*
 * The directories directly in p that only deeper paths imply, added to
 * out. The directory table is sorted by path, so those under "p/" are
 * contiguous; all of "p/c/..." are skipped at once by searching for
 * "p/c0" ('0' follows '/'). Under idx_lock.
 */
static int add_implied_children(struct arc_browse *b, const char *p,
				struct aidx_list *out, struct cm_err *err)
{
	const struct aidx_info *info = aidx_info(b->x);
	char *prefix = *p ? cm_xasprintf("%s/", p) : cm_xstrdup("");
	size_t plen = strlen(prefix), nreal = out->n, n = 0, cap = 0;
	char **names = NULL;
	uint64_t d = aidx_dir_search(b->x, prefix);
	int rc = 0;

	while (d < info->dirs && !strncmp(aidx_dir_path(b->x, d), prefix,
					  plen)) {
		const char *rest = aidx_dir_path(b->x, d) + plen;
		size_t cl = strcspn(rest, "/");
		char *child;

		if (!cl) {
			d++; /* the root's own directory, or an empty name */
			continue;
		}
		child = cm_xasprintf("%s%.*s", prefix, (int)cl, rest);
		if (rest[cl] == '/') {
			char *past = cm_xasprintf("%s0", child);

			d = aidx_dir_search(b->x, past);
			free(past);
		} else {
			d++;
		}
		if (listed(out, nreal, child)) {
			free(child);
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			names = cm_xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = child;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), by_str);
	for (size_t k = 0; rc == 0 && k < n; k++)
		if (k == 0 || strcmp(names[k], names[k - 1]))
			rc = add_implied(b, names[k], out, err);
	for (size_t k = 0; k < n; k++)
		free(names[k]);
	free(names);
	free(prefix);
	if (rc == 0 && out->n > nreal)
		qsort(out->v, out->n, sizeof(*out->v), by_path);
	return rc;
}

/* Of a name the tar holds twice (listed together, by header_off), the
 * last: what tar -x leaves, and what aidx_lookup gives stat. */
static void last_of_each(struct aidx_list *out)
{
	size_t n = 0;

	for (size_t k = 0; k < out->n; k++) {
		if (n && !strcmp(out->v[n - 1].path, out->v[k].path))
			n--;
		out->v[n++] = out->v[k];
	}
	out->n = n;
}

int arc_browse_list(struct arc_browse *b, const char *dir,
		    struct aidx_list *out, struct cm_err *err)
{
	struct cm_err own_err; /* err may be NULL */
	char *p = aidx_normalise(cm_xstrdup(dir));
	struct cm_err e;
	int rc;

	if (!err)
		err = &own_err;

	cm_err_clear(&e);
	pthread_mutex_lock(&b->idx_lock);
	rc = aidx_list_dir(b->x, p, out, &e);
	if (rc == -ENOENT && implied(b, p)) {
		memset(out, 0, sizeof(*out));
		rc = 0;
	} else if (rc) {
		*err = e;
	}
	if (rc == 0)
		last_of_each(out);
	for (size_t k = 0; rc == 0 && k < out->n; k++)
		if (out->v[k].type == '1')
			rc = link_fill(b, &out->v[k], err);
	if (rc == 0)
		rc = add_implied_children(b, p, out, err);
	return tree_done(b, p, out, rc, err);
}

/* ---- files ----------------------------------------------------------------- */

static void bfile_free(struct bfile *f)
{
	free(f->map);
	free(f);
}

static void bfile_put(struct arc_browse *b, struct bfile *f)
{
	pthread_mutex_lock(&b->flock);
	if (--f->refs == 0 && !f->listed)
		bfile_free(f);
	pthread_mutex_unlock(&b->flock);
}

/* Reads the decimal lines of a sparse map from the stream. */
struct mapcur {
	struct arc_browse *b;
	uint64_t at, end;          /* stream bytes not yet read */
	uint64_t used;             /* map bytes consumed */
	char buf[4096];
	size_t n, i;
};

static int map_number(struct mapcur *c, uint64_t *v, struct cm_err *err)
{
	uint64_t x = 0;
	int digits = 0;

	for (;;) {
		char ch;

		if (c->i == c->n) {
			size_t len = sizeof(c->buf);
			int64_t last;
			int rc;

			if (c->end - c->at < len)
				len = (size_t)(c->end - c->at);
			if (!len)
				return cm_err_set(err, EIO, "sparse map: cut "
						  "short");
			rc = stream_read(c->b, c->at, c->buf, len, &last, err);
			if (rc)
				return rc;
			c->at += len;
			c->n = len;
			c->i = 0;
		}
		ch = c->buf[c->i++];
		c->used++;
		if (ch == '\n')
			break;
		if (ch < '0' || ch > '9' || digits == 19)
			return cm_err_set(err, EIO, "sparse map: not a "
					  "number at byte %llu",
					  (unsigned long long)(c->used - 1));
		x = x * 10 + (uint64_t)(ch - '0');
		digits++;
	}
	if (!digits)
		return cm_err_set(err, EIO, "sparse map: an empty line at "
				  "byte %llu",
				  (unsigned long long)(c->used - 1));
	*v = x;
	return 0;
}

/*
 * The map of a GNU sparse 1.0 file (pax GNU.sparse.major=1): at the start
 * of its data, decimal lines: the number of regions, then each region's
 * offset and length; zeros to the next 512 bytes; then the regions' data,
 * one after the other.
 */
static int sparse_parse(struct arc_browse *b, struct bfile *f,
			struct cm_err *err)
{
	struct mapcur *c = cm_xcalloc(1, sizeof(*c));
	uint64_t n, at = 0, end = 0;
	int rc;

	c->b = b;
	c->at = f->data_off;
	c->end = f->data_off + f->stored;
	rc = map_number(c, &n, err);
	if (rc == 0 && n > SPARSE_REGIONS_MAX)
		rc = cm_err_set(err, EIO, "sparse map: %llu regions",
				(unsigned long long)n);
	if (rc == 0) {
		f->map = cm_xcalloc(n ? n : 1, sizeof(*f->map));
		f->nmap = n;
	}
	for (uint64_t k = 0; rc == 0 && k < n; k++) {
		struct region *r = &f->map[k];

		rc = map_number(c, &r->off, err);
		if (rc == 0)
			rc = map_number(c, &r->len, err);
		if (rc)
			break;
		if (r->off < end || r->len > f->size ||
		    r->off > f->size - r->len)
			rc = cm_err_set(err, EIO, "sparse map: region %llu "
					"(%llu+%llu) out of order or past the "
					"size %llu", (unsigned long long)k,
					(unsigned long long)r->off,
					(unsigned long long)r->len,
					(unsigned long long)f->size);
		r->at = at;
		at += r->len;
		end = r->off + r->len;
	}
	if (rc == 0) {
		f->map_bytes = (c->used + 511) & ~511ULL;
		if (f->map_bytes > f->stored || at > f->stored - f->map_bytes)
			rc = cm_err_set(err, EIO, "sparse map: %llu bytes of "
					"regions, %llu stored after the map",
					(unsigned long long)at,
					(unsigned long long)(f->map_bytes >
							     f->stored ? 0 :
					      f->stored - f->map_bytes));
	}
	free(c);
	return rc;
}

/* What reading entry e needs, held (bfile_put when done). */
static int bfile_get(struct arc_browse *b, const struct aidx_entry *e,
		     struct bfile **out, struct cm_err *err)
{
	struct bfile *f, *old = NULL;
	struct aidx_list tl = { 0 };
	const struct aidx_entry *t = e;
	int slot = -1, rc = 0;

	pthread_mutex_lock(&b->flock);
	for (int k = 0; k < FILES_MAX; k++)
		if (b->files[k] && b->files[k]->key == e->header_off) {
			f = b->files[k];
			f->refs++;
			f->tick = ++b->ftick;
			pthread_mutex_unlock(&b->flock);
			*out = f;
			return 0;
		}
	pthread_mutex_unlock(&b->flock);

	if (e->type == '1') {
		char *target = cm_xstrdup(e->link);

		pthread_mutex_lock(&b->idx_lock);
		for (int depth = 0; rc == 0; depth++) {
			aidx_list_release(&tl);
			rc = depth == LINK_DEPTH ?
				     cm_err_set(err, ELOOP, "%s: hard links "
						"nested more than %d deep",
						e->path, LINK_DEPTH) :
				     aidx_lookup(b->x, target, &tl, err);
			if (rc || tl.v[0].type != '1')
				break;
			free(target);
			target = cm_xstrdup(tl.v[0].link);
		}
		pthread_mutex_unlock(&b->idx_lock);
		free(target);
		if (rc) {
			cm_err_prefix(err, "%s: hard link %s", b->url,
				      e->path);
			return rc;
		}
		t = &tl.v[0];
	}
	if (t->type == 'S')
		rc = cm_err_set(err, ENOTSUP, "%s: %s: an old GNU sparse entry "
				"('S'): not supported", b->url, t->path);
	else if (t->type != '0')
		rc = cm_err_set(err, EINVAL, "%s: %s: not a regular file "
				"(type '%c')", b->url, e->path, t->type);
	if (rc) {
		aidx_list_release(&tl);
		return rc;
	}
	f = cm_xcalloc(1, sizeof(*f));
	f->key = e->header_off;
	f->data_off = t->data_off;
	f->stored = t->stored;
	f->size = t->size;
	f->sparse = t->sparse;
	if (f->sparse) {
		rc = sparse_parse(b, f, err);
		if (rc)
			cm_err_prefix(err, "%s: %s", b->url, t->path);
	} else if (f->size > f->stored) {
		rc = cm_err_set(err, EIO, "%s: %s: %llu bytes, %llu stored",
				b->url, t->path, (unsigned long long)f->size,
				(unsigned long long)f->stored);
	}
	aidx_list_release(&tl);
	if (rc) {
		bfile_free(f);
		return rc;
	}
	f->refs = 1;

	pthread_mutex_lock(&b->flock);
	for (int k = 0; k < FILES_MAX; k++) {
		struct bfile *g = b->files[k];

		if (g && g->key == f->key) {
			/* resolved by another reader meanwhile: use it */
			g->refs++;
			pthread_mutex_unlock(&b->flock);
			bfile_free(f);
			*out = g;
			return 0;
		}
		/* an empty place, else the least recently used unheld */
		if (slot >= 0 && !b->files[slot])
			continue;
		if (!g || (!g->refs && (slot < 0 ||
					g->tick < b->files[slot]->tick)))
			slot = k;
	}
	if (slot >= 0) {
		old = b->files[slot];
		if (old)
			old->listed = false;
		b->files[slot] = f;
		f->listed = true;
		f->tick = ++b->ftick;
	}
	pthread_mutex_unlock(&b->flock);
	if (old)
		bfile_free(old); /* unheld: no reader has it */
	*out = f;
	return 0;
}

/* len bytes of sparse file f at off: regions from the stream, holes as
 * zeros. *last as stream_read. */
static int sparse_read(struct arc_browse *b, const struct bfile *f,
		       uint64_t off, unsigned char *p, size_t len,
		       int64_t *last, struct cm_err *err)
{
	uint64_t end = off + len;
	size_t lo = 0, hi = f->nmap;

	*last = -1;
	/* the first region that ends after off */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->map[mid].off + f->map[mid].len <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (off < end) {
		const struct region *r = lo < f->nmap ? &f->map[lo] : NULL;
		uint64_t n;

		if (!r || off < r->off) {
			n = (r && r->off < end ? r->off : end) - off;
			memset(p, 0, n);
		} else {
			int64_t l;
			int rc;

			n = (r->off + r->len < end ? r->off + r->len : end) -
			    off;
			rc = stream_read(b, f->data_off + f->map_bytes + r->at +
						    (off - r->off),
					 p, n, &l, err);
			if (rc)
				return rc;
			if (l >= 0)
				*last = l;
			if (off + n == r->off + r->len)
				lo++;
		}
		p += n;
		off += n;
	}
	return 0;
}

ssize_t arc_browse_read(struct arc_browse *b, const struct aidx_entry *e,
			uint64_t off, void *buf, size_t len,
			struct cm_err *err)
{
	struct cm_err own_err; /* err may be NULL */
	struct bfile *f;
	int64_t last = -1;
	bool seq;
	int rc;

	if (!err)
		err = &own_err;

	if (e->type != '0' && e->type != '1' && e->type != 'S')
		return cm_err_set(err, EINVAL, "%s: %s: not a regular file "
				  "(type '%c')", b->url, e->path, e->type);
	rc = bfile_get(b, e, &f, err);
	if (rc)
		return rc;
	if (off >= f->size) {
		bfile_put(b, f);
		return 0;
	}
	if (len > f->size - off)
		len = (size_t)(f->size - off);
	if (f->sparse)
		rc = sparse_read(b, f, off, buf, len, &last, err);
	else
		rc = stream_read(b, f->data_off + off, buf, len, &last, err);
	pthread_mutex_lock(&b->flock);
	seq = f->next == off;
	if (rc == 0)
		f->next = off + len;
	pthread_mutex_unlock(&b->flock);
	/* sequential: the member after the last one read, while it still
	 * holds data of this file */
	if (rc == 0 && seq && last >= 0 && (uint64_t)last + 1 < b->nmembers &&
	    b->members[last + 1].uoff < f->data_off + f->stored)
		ahead(b, (uint64_t)last + 1);
	bfile_put(b, f);
	return rc ? rc : (ssize_t)len;
}

void arc_browse_stats(struct arc_browse *b, struct arc_browse_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->bytes_fetched = arc_object_bytes_read(b->arc) +
			     arc_object_bytes_read(b->iobj);
	out->members_decoded = atomic_load(&b->decoded);
	pthread_mutex_lock(&b->lock);
	out->cache_hits = b->hits;
	out->cache_misses = b->misses;
	out->cache_bytes = b->cache_bytes;
	pthread_mutex_unlock(&b->lock);
}

void arc_browse_free(struct arc_browse *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->ahead_cv);
	pthread_mutex_unlock(&b->lock);
	for (unsigned k = 0; k < b->ahead_threads; k++)
		pthread_join(b->ahead_th[k], NULL);
	/* no reader is left: every slot is in the hash, unheld but those
	 * still queued for read-ahead (never filled) */
	for (size_t h = 0; h < HASH_SIZE; h++)
		while (b->hash[h]) {
			struct slot *s = b->hash[h];

			b->hash[h] = s->hnext;
			slot_free(b, s);
		}
	if (b->owed)
		cm_budget_give(b->budget, b->owed);
	for (int k = 0; k < FILES_MAX; k++)
		if (b->files[k])
			bfile_free(b->files[k]);
	aidx_close(b->x);
	arc_object_free(b->iobj);
	arc_object_free(b->arc);
	pthread_cond_destroy(&b->ahead_cv);
	pthread_cond_destroy(&b->loaded);
	pthread_mutex_destroy(&b->flock);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->idx_lock);
	free(b->index_url);
	free(b->url);
	free(b);
}
