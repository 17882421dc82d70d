/*
 * restore_ebs.c - the EBS restorer of aws-backup vaults, `direct` method
 * (docs/aws.md, "EBS"): the snapshot is read with the EBS direct APIs
 * (ebs.h) and served as one read-only file, disk.img, the volume's size,
 * by a private FUSE mount (fuse_file.h) under the state directory; the
 * archiver takes that file as it takes a local image (probe, loop device,
 * read-only mounts, tar; or rawbackup.gz when nothing mounts).
 *
 *   STATE/ebs/NAME-XXXXXX/        the FUSE mount, journaled first as a
 *       disk.img                  resource of kind "ebs-mount", ids
 *                                 {"mount": path}
 *
 * The reader. ListSnapshotBlocks (every page) at restore says which
 * blocks hold data; a block not listed reads as zeros and is never asked
 * for (so raw mode fetches only the written blocks). A listed block is
 * fetched by one of ebs.concurrency workers into a bounded cache of
 * whole blocks (ebs.cacheSize); a read of block i also queues the next
 * listed blocks after it, up to one per worker, so a sequential reader
 * (the loop device under tar, the raw stream) keeps them all busy.
 * A filesystem walk reads a block in pieces (4 KiB of metadata, a file's
 * 128 KiB), at different times and in the walk's order, not the disk's:
 * a cache of whole blocks smaller than the written data would drop a
 * block between two of its pieces and fetch it again. So each block
 * fetched is also handed whole to the kernel's page cache of the FUSE
 * file (arc_fuse_file_store): its other pieces are read from there, and
 * every written block is fetched once while the kernel keeps it (it may
 * reclaim clean pages under pressure, which only costs a fetch again).
 * Throttling and 5xx are retried by the AWS layer; a block whose checksum
 * is wrong is fetched again (twice more) before the read fails with EIO;
 * tokens past their ExpiryTime, or refused as expired, are listed again.
 *
 * The same reader serves the view's disk.img (open_image, provider.h):
 * there the FUSE requests of the view call image_read, nothing is
 * mounted and nothing journaled.
 *
 * Threads: the FUSE server thread (or the view's workers) call
 * image_read; the workers fetch; one mutex guards the cache, the queue
 * and the listing.
 */
#include "aws_backup_int.h"
#include "ebs.h"
#include "fsutil.h"
#include "fuse_file.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define KIND "ebs-mount"
#define FILE_NAME "disk.img"
#define CHECKSUM_TRIES 3

enum slot_state { SLOT_FREE = 0, SLOT_LOADING, SLOT_READY, SLOT_FAILED };

struct slot {
	uint64_t index;
	enum slot_state state;
	int error;       /* SLOT_FAILED: -errno */
	unsigned refs;   /* readers waiting on it or copying from it */
	bool unread;     /* fetched ahead, not read yet: evicted last */
	uint64_t tick;   /* last use, for LRU */
	char *data;      /* block bytes */
};

struct image {
	struct orch_image base;    /* first: the view's handle (open_image) */
	struct aws_client *c;
	char *snapshot;
	struct ebs_listing list;   /* guarded by lock */
	uint32_t block;            /* bytes per block (the data's) */
	uint64_t size;             /* the volume's bytes */

	pthread_mutex_t lock;
	pthread_cond_t cond;       /* a slot changed state; the queue grew */
	struct slot *slots;
	size_t nslots;
	uint64_t tick;
	size_t *queue;             /* slots to fetch, a ring of nslots */
	size_t qhead, qlen;
	bool stop;
	pthread_t *workers;
	unsigned nworkers;
	/* the restore's FUSE file, while mounted: each block fetched is
	 * handed whole to its page cache (see "The reader" above) */
	struct arc_fuse_file *ff;
	/* with ff: the blocks handed to it, a bit per block of the volume.
	 * Read-ahead skips them: the kernel has them, and a read it cannot
	 * serve any more (reclaimed) still reaches us and fetches again */
	uint64_t *handed;

	_Atomic uint64_t fetched;  /* GetSnapshotBlock answers taken */
	_Atomic uint64_t bytes;    /* their bytes */
	_Atomic unsigned lists;    /* ListSnapshotBlocks pages */
};

/* ---- tokens ------------------------------------------------------------ */

/* The block's token, copied; re-listed first when the tokens are old or
 * `stale` (the service refused one). */
static int token_of(struct image *im, uint64_t index, bool stale,
		    struct ebs_block *out, struct cm_err *err)
{
	const struct ebs_block *b;
	int rc = 0;

	pthread_mutex_lock(&im->lock);
	if (stale || ebs_listing_expired(&im->list, time(NULL))) {
		struct ebs_listing fresh;

		/* under the lock: one listing at a time, and the readers of
		 * the old one wait for the new one */
		rc = ebs_list_blocks(im->c, im->snapshot, &fresh, err);
		if (rc == 0) {
			atomic_fetch_add(&im->lists, fresh.pages);
			ebs_listing_release(&im->list);
			im->list = fresh;
			cm_info("ebs: %s: block tokens listed again",
				im->snapshot);
		}
	}
	b = rc ? NULL : ebs_listing_find(&im->list, index);
	if (b) {
		out->index = b->index;
		out->token = cm_xstrdup(b->token);
	} else if (!rc) {
		rc = cm_err_set(err, EIO, "ebs: %s: block %" PRIu64 " is no "
				"longer listed", im->snapshot, index);
	}
	pthread_mutex_unlock(&im->lock);
	return rc;
}

static bool token_refused(int rc, const struct cm_err *e)
{
	return rc == -EINVAL && (strstr(e->msg, "oken") ||
				 strstr(e->msg, "xpired"));
}

/* One block into buf (im->block bytes), checked; -errno logged. */
static int fetch(struct image *im, uint64_t index, char *buf)
{
	bool stale = false;
	struct cm_err e;
	int rc = 0;

	for (int tries = 0; tries < CHECKSUM_TRIES; tries++) {
		struct ebs_block b = { 0 };
		size_t len = 0;

		cm_err_clear(&e);
		rc = token_of(im, index, stale, &b, &e);
		if (rc == 0)
			rc = ebs_get_block(im->c, im->snapshot, &b, buf,
					   im->block, &len, &e);
		free(b.token);
		if (rc == 0 && len != im->block)
			rc = cm_err_set(&e, EIO, "ebs: %s: block %" PRIu64
					" has %zu bytes, not %" PRIu32,
					im->snapshot, index, len, im->block);
		if (rc == 0) {
			atomic_fetch_add(&im->fetched, 1);
			atomic_fetch_add(&im->bytes, len);
			return 0;
		}
		if (token_refused(rc, &e) && !stale) {
			stale = true; /* list again, once */
			continue;
		}
		if (rc != -EIO)
			break; /* the AWS layer has retried what may pass */
		cm_warn("%s; fetching it again", e.msg);
	}
	cm_error("%s", e.msg);
	return rc;
}

/* ---- the cache --------------------------------------------------------- */

static bool handed(const struct image *im, uint64_t index)
{
	return im->handed && (im->handed[index / 64] >> (index % 64)) & 1;
}

/* Slot s (ready, lock held) to the kernel's page cache of im->ff: the
 * kernel keeps it now (a copy, queued), so the slot is no longer the only
 * place it is, and read-ahead leaves it alone. */
static void hand(struct image *im, struct slot *s)
{
	arc_fuse_file_store(im->ff, s->index * im->block, s->data, im->block);
	s->unread = false;
	im->handed[s->index / 64] |= 1ull << (s->index % 64);
}

static void *worker(void *arg)
{
	struct image *im = arg;

	pthread_mutex_lock(&im->lock);
	for (;;) {
		struct slot *s;
		size_t i;
		int rc;

		while (!im->stop && im->qlen == 0)
			pthread_cond_wait(&im->cond, &im->lock);
		if (im->stop)
			break;
		i = im->queue[im->qhead];
		im->qhead = (im->qhead + 1) % im->nslots;
		im->qlen--;
		s = &im->slots[i];
		pthread_mutex_unlock(&im->lock);
		rc = fetch(im, s->index, s->data);
		pthread_mutex_lock(&im->lock);
		if (rc == 0 && im->ff)
			hand(im, s);
		s->state = rc ? SLOT_FAILED : SLOT_READY;
		s->error = rc;
		pthread_cond_broadcast(&im->cond);
	}
	pthread_mutex_unlock(&im->lock);
	return NULL;
}

static struct slot *find_slot(struct image *im, uint64_t index)
{
	for (size_t i = 0; i < im->nslots; i++)
		if (im->slots[i].state != SLOT_FREE &&
		    im->slots[i].index == index)
			return &im->slots[i];
	return NULL;
}

/* A slot to reuse: free, else the least recently used one nobody holds
 * (blocks read before blocks fetched ahead); NULL when all are busy. */
static struct slot *victim(struct image *im, bool ahead)
{
	struct slot *best = NULL;

	for (size_t i = 0; i < im->nslots; i++) {
		struct slot *s = &im->slots[i];

		if (s->state == SLOT_FREE)
			return s;
		if (s->refs || s->state == SLOT_LOADING)
			continue;
		if (ahead && s->unread)
			continue; /* never push out what is ahead for more */
		if (!best || (best->unread && !s->unread) ||
		    (best->unread == s->unread && s->tick < best->tick))
			best = s;
	}
	return best;
}

/* Queue block `index` into a slot (lock held); NULL when no slot is
 * free. */
static struct slot *load(struct image *im, uint64_t index, bool ahead)
{
	struct slot *s = victim(im, ahead);

	if (!s)
		return NULL;
	s->index = index;
	s->state = SLOT_LOADING;
	s->error = 0;
	s->unread = ahead;
	s->tick = ++im->tick;
	im->queue[(im->qhead + im->qlen) % im->nslots] =
		(size_t)(s - im->slots);
	im->qlen++;
	pthread_cond_broadcast(&im->cond);
	return s;
}

/* Fetch ahead: the listed blocks after `index`, one per worker. */
static void read_ahead(struct image *im, uint64_t index)
{
	const struct ebs_block *b = ebs_listing_find(&im->list, index);
	const struct ebs_block *end = im->list.blocks + im->list.n;

	if (!b)
		return;
	for (unsigned k = 0; ++b < end && k < im->nworkers; k++)
		if (!handed(im, b->index) && !find_slot(im, b->index) &&
		    !load(im, b->index, true))
			return;
}

/* Block `index` (listed) copied from offset `from`, n bytes. */
static int read_block(struct image *im, uint64_t index, char *buf,
		      size_t from, size_t n)
{
	struct slot *s;
	int rc;

	pthread_mutex_lock(&im->lock);
	for (;;) {
		s = find_slot(im, index);
		if (s && s->state == SLOT_FAILED && !s->refs)
			s->state = SLOT_FREE; /* fetched ahead and failed: again */
		else if (s)
			break;
		if ((s = load(im, index, false)))
			break;
		pthread_cond_wait(&im->cond, &im->lock);
	}
	s->refs++;
	read_ahead(im, index);
	while (s->state == SLOT_LOADING)
		pthread_cond_wait(&im->cond, &im->lock);
	rc = s->state == SLOT_READY ? 0 : s->error;
	if (rc == 0) {
		s->unread = false;
		s->tick = ++im->tick;
		pthread_mutex_unlock(&im->lock);
		memcpy(buf, s->data + from, n);
		pthread_mutex_lock(&im->lock);
	}
	s->refs--;
	if (s->state == SLOT_FAILED && !s->refs)
		s->state = SLOT_FREE; /* a later read tries again */
	pthread_cond_broadcast(&im->cond);
	pthread_mutex_unlock(&im->lock);
	return rc ? rc : 0;
}

static bool listed(struct image *im, uint64_t index)
{
	bool yes;

	pthread_mutex_lock(&im->lock);
	yes = ebs_listing_find(&im->list, index) != NULL;
	pthread_mutex_unlock(&im->lock);
	return yes;
}

/* arc_fuse_read_fn: unwritten blocks are zeros, never fetched. */
static int image_read(void *ctx, void *buf, size_t n, uint64_t off)
{
	struct image *im = ctx;
	char *p = buf;

	while (n) {
		uint64_t index = off / im->block;
		size_t from = (size_t)(off % im->block);
		size_t take = im->block - from < n ? im->block - from : n;
		int rc = 0;

		if (listed(im, index))
			rc = read_block(im, index, p, from, take);
		else
			memset(p, 0, take);
		if (rc)
			return rc;
		p += take;
		off += take;
		n -= take;
	}
	return 0;
}

static void image_free(struct image *im)
{
	if (!im)
		return;
	pthread_mutex_lock(&im->lock);
	im->stop = true;
	pthread_cond_broadcast(&im->cond);
	pthread_mutex_unlock(&im->lock);
	for (unsigned i = 0; i < im->nworkers; i++)
		pthread_join(im->workers[i], NULL);
	for (size_t i = 0; i < im->nslots; i++)
		free(im->slots[i].data);
	free(im->slots);
	free(im->handed);
	free(im->queue);
	free(im->workers);
	ebs_listing_release(&im->list);
	pthread_cond_destroy(&im->cond);
	pthread_mutex_destroy(&im->lock);
	aws_client_free(im->c);
	free(im->snapshot);
	free(im);
}

/*
 * The image of `snapshot` through `c` (taken: freed with the image, or
 * on failure). List the snapshot, learn the block size from its first written block
 * (ebs_block_size), and start the workers. The first block stays in the
 * cache: a probe reads it next.
 */
static int image_open(struct aws_client *c, const char *snapshot,
		      const struct orch_config *cfg, struct image **out,
		      struct cm_err *err)
{
	struct image *im = cm_xcalloc(1, sizeof(*im));
	char *first = NULL;
	size_t len = 0;
	sigset_t all, old;
	int rc;

	*out = NULL;
	im->c = c;
	im->snapshot = cm_xstrdup(snapshot);
	pthread_mutex_init(&im->lock, NULL);
	pthread_cond_init(&im->cond, NULL);
	rc = ebs_list_blocks(c, snapshot, &im->list, err);
	if (rc)
		goto fail;
	im->lists = im->list.pages;
	im->size = im->list.volume_bytes;
	im->block = im->list.block_size;
	if (im->list.n) {
		first = cm_xmalloc(EBS_BLOCK_MAX);
		rc = ebs_get_block(c, snapshot, &im->list.blocks[0], first,
				   EBS_BLOCK_MAX, &len, err);
		if (rc == 0)
			rc = ebs_block_size(snapshot, im->list.block_size, len,
					    im->size, &im->block, err);
		if (rc)
			goto fail;
		atomic_fetch_add(&im->fetched, 1);
		atomic_fetch_add(&im->bytes, len);
		if (im->list.blocks[im->list.n - 1].index >=
		    im->size / im->block) {
			rc = cm_err_set(err, EIO, "ebs: %s: block %" PRIu64
					" is past the end of the volume",
					snapshot,
					im->list.blocks[im->list.n - 1].index);
			goto fail;
		}
	}
	/* nothing written: every read is zeros, no cache, no worker */
	im->nworkers = im->list.n ? cfg->ebs_concurrency : 0;
	im->nslots = (size_t)(cfg->ebs_cache_size / im->block);
	if (im->nslots < 2 * (size_t)im->nworkers + 2)
		im->nslots = 2 * (size_t)im->nworkers + 2;
	if (!im->list.n)
		im->nslots = 0;
	im->slots = cm_xcalloc(im->nslots, sizeof(*im->slots));
	for (size_t i = 0; i < im->nslots; i++)
		im->slots[i].data = cm_xmalloc(im->block);
	im->queue = cm_xcalloc(im->nslots, sizeof(*im->queue));
	if (im->list.n) {
		memcpy(im->slots[0].data, first, im->block);
		im->slots[0].index = im->list.blocks[0].index;
		im->slots[0].state = SLOT_READY;
		im->slots[0].unread = true;
	}
	im->workers = cm_xcalloc(im->nworkers + 1, sizeof(*im->workers));
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned i = 0; i < im->nworkers; i++) {
		rc = pthread_create(&im->workers[i], NULL, worker, im);
		if (rc) {
			im->nworkers = i;
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			rc = cm_err_set(err, rc, "cannot start the EBS "
					"readers: %s", strerror(rc));
			goto fail;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	free(first);
	*out = im;
	return 0;
fail:
	if (!im->workers)
		im->nworkers = 0;
	free(first);
	image_free(im);
	return rc < 0 ? rc : -rc;
}

/* Hand the blocks fetched from now on to ff's page cache (NULL: stop,
 * before ff goes: a worker stores under the lock). */
static void image_store_into(struct image *im, struct arc_fuse_file *ff)
{
	pthread_mutex_lock(&im->lock);
	im->ff = ff;
	if (ff && !im->handed)
		im->handed = cm_xcalloc(im->size / im->block / 64 + 1,
					sizeof(*im->handed));
	/* what was fetched before the mount (the first block, for the
	 * probe) */
	for (size_t i = 0; ff && i < im->nslots; i++)
		if (im->slots[i].state == SLOT_READY)
			hand(im, &im->slots[i]);
	pthread_mutex_unlock(&im->lock);
}

/* ---- the restorer ------------------------------------------------------ */

struct ebs_restored {
	struct image *im;
	struct arc_fuse_file *ff;
	/* with ff: the blocks handed to it, a bit per block of the volume.
	 * Read-ahead skips them: the kernel has them, and a read it cannot
	 * serve any more (reclaimed) still reaches us and fetches again */
	uint64_t *handed;
	char *mnt;
	size_t idx; /* the mount's journal entry */
};

/* (aws_backup_int.h) */
int awsb_ebs_snapshot_id(const struct orch_recovery_point *rp, char *out,
			 size_t n, struct cm_err *err)
{
	const char *s = strstr(rp->path, ":snapshot/");

	s = s ? s + strlen(":snapshot/") : NULL;
	if (!s || strncmp(s, "snap-", 5) != 0 || strlen(s) >= n ||
	    strspn(s + 5, "0123456789abcdef") != strlen(s + 5) || !s[5])
		return cm_err_set(err, EINVAL, "%s: not the ARN of an EBS "
				  "snapshot (arn:aws:ec2:REGION::snapshot/"
				  "snap-...)", rp->path);
	snprintf(out, n, "%s", s);
	return 0;
}

/* What the manifest records of the snapshot (its "source"). */
static struct cm_json *facts(const struct image *im)
{
	struct cm_json *j = cm_json_new_object();

	cm_json_add_str(j, "method", "ebs-direct");
	cm_json_add_str(j, "snapshotId", im->snapshot);
	cm_json_add_u64(j, "blockSize", im->block);
	cm_json_add_u64(j, "listedBlockSize", im->list.block_size);
	cm_json_add_u64(j, "volumeSize", im->size);
	cm_json_add_u64(j, "blocks", im->list.n);
	return j;
}

/* rp's snapshot id into snap, and its image opened (its own client). */
static int open_snapshot(struct orch_provider *p,
			 const struct orch_recovery_point *rp, char *snap,
			 size_t n, struct image **out, struct cm_err *err)
{
	struct aws_backup *ab = awsb_of(p);
	struct aws_client_opts o = { 0 };
	struct aws_client *c;
	int rc;

	rc = awsb_ebs_snapshot_id(rp, snap, n, err);
	if (rc)
		return rc;
	o.region = ab->region;
	o.endpoints = p->cfg->endpoints;
	o.nendpoints = p->cfg->nendpoints;
	c = aws_client_new(&aws_ebs, &o, err);
	if (!c)
		return -(err->code ? err->code : EINVAL);
	return image_open(c, snap, p->cfg, out, err);
}

static int view_read(struct orch_image *h, void *buf, size_t n,
		     uint64_t off)
{
	return image_read((struct image *)h, buf, n, off);
}

static void view_close(struct orch_image *h)
{
	struct image *im = (struct image *)h;

	cm_info("ebs: %s: image closed: %" PRIu64 " blocks fetched of %zu "
		"written", im->snapshot, (uint64_t)atomic_load(&im->fetched),
		im->list.n);
	image_free(im);
}

/* provider.h's open_image: the same reader as a restore's, no mount. */
static int ebs_open_image(struct orch_provider *p,
			  const struct orch_recovery_point *rp,
			  struct orch_image **out, struct cm_err *err)
{
	struct image *im = NULL;
	char snap[64];
	int rc;

	*out = NULL;
	rc = open_snapshot(p, rp, snap, sizeof(snap), &im, err);
	if (rc) {
		cm_err_prefix(err, "%s", rp->path);
		return rc;
	}
	im->base.size = im->size;
	im->base.read = view_read;
	im->base.close = view_close;
	*out = &im->base;
	return 0;
}

static int ebs_restore(struct orch_provider *p,
		       const struct orch_recovery_point *rp,
		       const struct orch_res_journal *rj,
		       struct orch_restored *out, struct cm_err *err)
{
	const struct orch_config *cfg = p->cfg;
	struct ebs_restored *er = NULL;
	struct orch_res_ids ids = { 0 };
	struct arc_fuse_file_opts fo = { 0 };
	struct cm_json *j = NULL;
	struct image *im = NULL;
	char snap[64], *base = NULL;
	int rc;

	rc = open_snapshot(p, rp, snap, sizeof(snap), &im, err);
	if (rc)
		return rc;
	cm_info("ebs: %s: %" PRIu64 " bytes, %zu blocks of %" PRIu32
		" written (%u listing pages)", snap, im->size, im->list.n,
		im->block, im->list.pages);

	er = cm_xcalloc(1, sizeof(*er));
	er->im = im;
	base = cm_xasprintf("%s/ebs", cfg->state_dir);
	rc = cm_mkdirs(base, 0700, err);
	if (rc)
		goto fail;
	er->mnt = cm_xasprintf("%s/%s-XXXXXX", base, snap);
	if (!mkdtemp(er->mnt)) {
		rc = cm_err_set(err, errno, "mkdtemp %s: %s", er->mnt,
				strerror(errno));
		free(er->mnt);
		er->mnt = NULL;
		goto fail;
	}
	/* recorded before mount(2): a crash after it finds the mount */
	j = cm_json_new_object();
	cm_json_add_str(j, "mount", er->mnt);
	cm_json_add_str(j, "snapshot", snap);
	ids.json = j;
	rc = rj->add(rj->ctx, KIND, &ids, &er->idx, err);
	cm_json_free(j);
	if (rc) {
		rmdir(er->mnt);
		free(er->mnt);
		er->mnt = NULL;
		goto fail;
	}
	fo.fsname = "vaultfs-ebs";
	fo.name = FILE_NAME;
	fo.size = im->size;
	fo.read = image_read;
	fo.ctx = im;
	rc = arc_fuse_file_mount(er->mnt, &fo, &er->ff, err);
	if (rc == 0)
		rc = rj->created(rj->ctx, er->idx, NULL, err);
	if (rc == 0)
		image_store_into(im, er->ff);
	if (rc)
		goto fail_journaled;
	out->path = cm_xstrdup(arc_fuse_file_path(er->ff));
	out->fd = open(out->path, O_RDONLY | O_CLOEXEC);
	if (out->fd < 0) {
		rc = cm_err_set(err, errno, "%s: %s", out->path,
				strerror(errno));
		free(out->path);
		out->path = NULL;
		goto fail_journaled;
	}
	out->mode = ARC_MODE_AUTO;
	out->manifest = facts(im);
	out->blocks_fetched = &im->fetched;
	out->blocks_total = im->list.n;
	out->priv = er;
	free(base);
	return 0;
fail_journaled:
	image_store_into(im, NULL);
	arc_fuse_file_free(er->ff);
	if (rmdir(er->mnt) != 0) {
		cm_warn("rmdir %s: %s", er->mnt, strerror(errno));
	} else {
		struct cm_err e;

		cm_err_clear(&e);
		if (rj->released(rj->ctx, er->idx, &e))
			cm_warn("%s", e.msg);
	}
	free(er->mnt);
fail:
	cm_err_prefix(err, "%s", rp->path);
	image_free(er ? er->im : im);
	free(er);
	free(base);
	return rc;
}

static void ebs_release(struct orch_provider *p,
			const struct orch_res_journal *rj,
			struct orch_restored *r)
{
	struct ebs_restored *er = r->priv;
	struct cm_err e;

	(void)p;
	if (!er)
		return;
	/* the archiver is done with it: the mount goes only once unused */
	if (r->fd >= 0) {
		close(r->fd);
		r->fd = -1;
	}
	cm_info("ebs: %s: %" PRIu64 " blocks fetched (%" PRIu64 " bytes) of "
		"%zu written, %u listing pages", er->im->snapshot,
		(uint64_t)atomic_load(&er->im->fetched),
		(uint64_t)atomic_load(&er->im->bytes), er->im->list.n,
		atomic_load(&er->im->lists));
	image_store_into(er->im, NULL);
	arc_fuse_file_free(er->ff);
	cm_err_clear(&e);
	if (rmdir(er->mnt) != 0)
		cm_warn("rmdir %s: %s", er->mnt, strerror(errno));
	else if (rj->released(rj->ctx, er->idx, &e))
		cm_warn("%s", e.msg);
	image_free(er->im);
	free(er->mnt);
	free(er);
	r->priv = NULL;
}

/* After a crash: the dead FUSE mount (ENOTCONN) and its directory. */
static int ebs_release_stale(struct orch_provider *p,
			     const struct orch_resource *res,
			     struct cm_err *err)
{
	const char *mnt = cm_json_get_str(res->ids, "mount");
	int rc;

	(void)p;
	if (!mnt)
		return 0; /* never made */
	rc = arc_fuse_unmount_stale(mnt, err);
	if (rc)
		return rc;
	if (rmdir(mnt) != 0 && errno != ENOENT)
		return cm_err_set(err, errno, "rmdir %s: %s", mnt,
				  strerror(errno));
	return 0;
}

static const struct orch_provider_ops ebs_ops = {
	.name = "aws-backup EBS direct",
	.restore = ebs_restore,
	.release = ebs_release,
	.release_stale = ebs_release_stale,
	.open_image = ebs_open_image,
};

static const char *const ebs_kinds[] = { KIND, NULL };

/* ebs.method: "volume" is restore_ebs_volume.c's */
static const struct orch_aws_restorer *ebs_pick(const struct orch_config *cfg)
{
	return cfg->ebs_method == ORCH_EBS_VOLUME ? &orch_ebs_volume_restorer
						  : &orch_ebs_direct_restorer;
}

static const struct orch_aws_restorer *const ebs_methods[] = {
	&orch_ebs_direct_restorer, &orch_ebs_volume_restorer, NULL
};

const struct orch_aws_restorer orch_ebs_direct_restorer = {
	.ops = &ebs_ops,
	.kinds = ebs_kinds,
	.pick = ebs_pick,
	.methods = ebs_methods,
};
