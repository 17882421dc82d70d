/*
 * index.c - finished jobs, compactly (see index.h): the table of entries
 * with its three hash tables, and the index file's reader and writer.
 *
 * The table: entries in one array, never removed; three open-addressing
 * hash tables of entry numbers (plus one; 0 is empty) by id, by identity
 * digest and by name digest. The last two keep, for one key, the entry
 * with the greatest id (ids begin with their creation time: the newest).
 * The identity digest covers vault, path, resource id, size and mtime;
 * device and inode are compared as the engine compares the jobs in
 * memory (orch_rp_identity_same_file: only where both are known), which a
 * digest cannot, so every entry of one digest is kept, chained from the
 * newest, and a lookup takes the newest of the same file.
 * State names are interned: an entry holds a byte.
 */
#include "index.h"
#include "fault.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "{\"vaultfsIndex\":1}\n"
#define TMP_NAME ORCH_INDEX_NAME ".tmp"
#define DIGEST_LEN 16
#define MAX_STATE_NAMES 64

struct entry {
	char id[ORCH_JOB_ID_SIZE];
	uint8_t state;            /* into ix->states */
	bool file_known;          /* dev and ino recorded */
	bool file;                /* its files are in jobs/ */
	uint8_t ident[DIGEST_LEN];
	uint8_t name[DIGEST_LEN];
	uint64_t where;
	uint64_t result_size;
	uint64_t dev, ino;
	uint32_t same_ident;      /* the next entry (number + 1) with this
				     ident digest; 0: none */
	time_t ended;
};

struct table {
	uint32_t *slot; /* entry number + 1; 0: empty */
	size_t cap;     /* a power of two */
};

struct orch_index {
	struct entry *e;
	size_t n, cap;
	struct table by_id, by_ident, by_name;
	char *states[MAX_STATE_NAMES]; /* interned names */
	size_t nstates;
	size_t count[MAX_STATE_NAMES];
	uint64_t archived;
};

/* ---- digests -----------------------------------------------------------
 * 128 bits in two lanes: each 8-byte word of the input goes through a
 * 64-bit finalizer (xor-shift-multiply) in both lanes, differently keyed.
 * Not a cryptographic hash: OpenSSL's SHA-256 cost a third of the start
 * with 100,000 jobs (an EVP fetch per digest); for keys that are not
 * chosen to collide, 128 bits leave the chance of two recovery points
 * sharing a digest far below that of a disk error. */

struct digest {
	uint64_t a, b;
	uint64_t n;
	uint8_t tail[8];
	size_t ntail;
};

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void digest_word(struct digest *d, uint64_t w)
{
	d->a = mix64(d->a ^ w) + 0x9e3779b97f4a7c15ULL;
	d->b = mix64(d->b ^ (w * 0xbf58476d1ce4e5b9ULL)) ^ d->a;
}

static void digest_add(struct digest *d, const void *p, size_t n)
{
	const uint8_t *c = p;

	d->n += n;
	while (n--) {
		d->tail[d->ntail++] = *c++;
		if (d->ntail == 8) {
			uint64_t w;

			memcpy(&w, d->tail, 8);
			digest_word(d, w);
			d->ntail = 0;
		}
	}
}

static void digest_str(struct digest *d, const char *s)
{
	/* with its NUL: "ab","c" and "a","bc" differ */
	digest_add(d, s ? s : "", strlen(s ? s : "") + 1);
}

static void digest_end(struct digest *d, uint8_t out[DIGEST_LEN])
{
	uint64_t w = 0;

	memcpy(&w, d->tail, d->ntail);
	digest_word(d, w ^ (d->n << 3));
	d->a = mix64(d->a ^ d->n);
	d->b = mix64(d->b ^ ~d->n);
	memcpy(out, &d->a, 8);
	memcpy(out + 8, &d->b, 8);
}

static void ident_digest(const char *vault, const char *path,
			 const char *resource_id, uint64_t size,
			 int64_t mtime, uint8_t out[DIGEST_LEN])
{
	struct digest d = { 0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL,
			    0, { 0 }, 0 };
	char num[48];

	digest_str(&d, vault);
	digest_str(&d, path);
	digest_str(&d, resource_id);
	snprintf(num, sizeof(num), "%llu/%lld", (unsigned long long)size,
		 (long long)mtime);
	digest_str(&d, num);
	digest_end(&d, out);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

static void name_digest(const char *vault, const char *name,
			uint8_t out[DIGEST_LEN])
{
	struct digest d = { 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
			    0, { 0 }, 0 };

	digest_str(&d, vault);
	digest_str(&d, name);
	digest_end(&d, out);
}

static uint64_t id_hash(const char *id)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 1099511628211ULL;
	return h;
}

static uint64_t digest_hash(const uint8_t d[DIGEST_LEN])
{
	uint64_t h;

	memcpy(&h, d, sizeof(h));
	return h;
}

/* ---- the hash tables --------------------------------------------------- */

enum key_kind { KEY_ID, KEY_IDENT, KEY_NAME };

static uint64_t entry_hash(const struct entry *e, enum key_kind k)
{
	return k == KEY_ID ? id_hash(e->id)
	       : k == KEY_IDENT ? digest_hash(e->ident)
				: digest_hash(e->name);
}

static bool entry_match(const struct entry *e, enum key_kind k,
			const void *key)
{
	return k == KEY_ID ? strcmp(e->id, key) == 0
	       : k == KEY_IDENT ? memcmp(e->ident, key, DIGEST_LEN) == 0
				: memcmp(e->name, key, DIGEST_LEN) == 0;
}

static const void *entry_key(const struct entry *e, enum key_kind k)
{
	return k == KEY_ID ? (const void *)e->id
	       : k == KEY_IDENT ? (const void *)e->ident
				: (const void *)e->name;
}

static struct table *table_of(struct orch_index *ix, enum key_kind k)
{
	return k == KEY_ID ? &ix->by_id : k == KEY_IDENT ? &ix->by_ident
							 : &ix->by_name;
}

/* The slot holding key, or the empty slot where it would go. */
static uint32_t *table_slot(const struct orch_index *ix,
			    const struct table *t, enum key_kind k,
			    const void *key, uint64_t hash)
{
	size_t mask = t->cap - 1;

	for (size_t i = hash & mask;; i = (i + 1) & mask) {
		uint32_t v = t->slot[i];

		if (!v || entry_match(&ix->e[v - 1], k, key))
			return &t->slot[i];
	}
}

static void table_put(struct orch_index *ix, enum key_kind k, uint32_t num)
{
	struct table *t = table_of(ix, k);
	struct entry *e = &ix->e[num - 1];
	uint32_t *slot;

	if (!t->slot || (ix->n + 1) * 2 > t->cap) {
		struct table old = *t;

		t->cap = old.cap ? old.cap * 2 : 1024;
		t->slot = cm_xcalloc(t->cap, sizeof(*t->slot));
		for (size_t i = 0; i < old.cap; i++) {
			const struct entry *o;

			if (!old.slot[i])
				continue;
			o = &ix->e[old.slot[i] - 1];
			*table_slot(ix, t, k, entry_key(o, k),
				    entry_hash(o, k)) = old.slot[i];
		}
		free(old.slot);
	}
	slot = table_slot(ix, t, k, entry_key(e, k), entry_hash(e, k));
	if (k == KEY_IDENT && *slot) {
		/* one identity, several jobs (a retry, another file of the
		 * same name, size and mtime): all chained, the newest first */
		struct entry *head = &ix->e[*slot - 1];

		if (strcmp(head->id, e->id) < 0) {
			e->same_ident = *slot;
			*slot = num;
		} else {
			e->same_ident = head->same_ident;
			head->same_ident = num;
		}
		return;
	}
	/* one key, several jobs (a retry, a replaced file): the newest */
	if (!*slot || strcmp(ix->e[*slot - 1].id, e->id) < 0)
		*slot = num;
}

static const struct entry *table_get(const struct orch_index *ix,
				     enum key_kind k, const void *key,
				     uint64_t hash)
{
	const struct table *t = k == KEY_ID	 ? &ix->by_id
				: k == KEY_IDENT ? &ix->by_ident
						 : &ix->by_name;
	uint32_t *slot;

	if (!t->slot)
		return NULL;
	slot = table_slot(ix, t, k, key, hash);
	return *slot ? &ix->e[*slot - 1] : NULL;
}

/* ---- the table --------------------------------------------------------- */

struct orch_index *orch_index_new(void)
{
	return cm_xcalloc(1, sizeof(struct orch_index));
}

void orch_index_free(struct orch_index *ix)
{
	if (!ix)
		return;
	free(ix->e);
	free(ix->by_id.slot);
	free(ix->by_ident.slot);
	free(ix->by_name.slot);
	for (size_t i = 0; i < ix->nstates; i++)
		free(ix->states[i]);
	free(ix);
}

static uint8_t intern_state(struct orch_index *ix, const char *name)
{
	for (size_t i = 0; i < ix->nstates; i++)
		if (strcmp(ix->states[i], name) == 0)
			return (uint8_t)i;
	if (ix->nstates == MAX_STATE_NAMES)
		abort(); /* a broken invariant: records are checked */
	ix->states[ix->nstates] = cm_xstrdup(name);
	return (uint8_t)ix->nstates++;
}

void orch_index_add(struct orch_index *ix, const struct orch_index_rec *rec,
		    uint64_t where)
{
	struct entry *e;
	enum orch_job_state st;
	uint32_t num;

	if (ix->n == ix->cap) {
		ix->cap = ix->cap ? ix->cap * 2 : 1024;
		ix->e = cm_xrealloc(ix->e, ix->cap * sizeof(*ix->e));
	}
	e = &ix->e[ix->n++];
	num = (uint32_t)ix->n;
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", rec->id);
	e->state = intern_state(ix, rec->state);
	e->where = where;
	e->result_size = rec->result_size;
	e->ended = rec->ended;
	e->file = where == ORCH_INDEX_IN_JOURNAL;
	e->file_known = rec->file.known;
	e->dev = rec->file.dev;
	e->ino = rec->file.ino;
	ident_digest(rec->vault, rec->path, rec->resource_id, rec->size,
		     rec->mtime, e->ident);
	name_digest(rec->vault, rec->name ? rec->name : base_name(rec->path),
		    e->name);
	ix->count[e->state]++;
	if (orch_job_state_parse(rec->state, &st) == 0 &&
	    st == ORCH_JOB_SUCCEEDED)
		ix->archived += rec->result_size;
	table_put(ix, KEY_ID, num);
	table_put(ix, KEY_IDENT, num);
	table_put(ix, KEY_NAME, num);
}

static void fill_hit(const struct orch_index *ix, const struct entry *e,
		     struct orch_index_hit *out)
{
	enum orch_job_state st;

	memcpy(out->id, e->id, sizeof(out->id));
	out->state_name = ix->states[e->state];
	out->state = orch_job_state_parse(out->state_name, &st) == 0 ? (int)st
								     : -1;
	out->where = e->where;
	out->result_size = e->result_size;
}

void orch_index_set_where(struct orch_index *ix, const char *id,
			  uint64_t where)
{
	const struct entry *e = table_get(ix, KEY_ID, id, id_hash(id));

	if (e)
		ix->e[e - ix->e].where = where;
}

void orch_index_set_file(struct orch_index *ix, const char *id, bool file)
{
	const struct entry *e = table_get(ix, KEY_ID, id, id_hash(id));

	if (e)
		ix->e[e - ix->e].file = file;
}

void orch_index_tail_moved(struct orch_index *ix, uint64_t base)
{
	for (size_t i = 0; i < ix->n; i++) {
		struct entry *e = &ix->e[i];

		if (e->where != ORCH_INDEX_IN_JOURNAL &&
		    (e->where & ORCH_INDEX_IN_TAIL))
			e->where = base + (e->where & ~ORCH_INDEX_IN_TAIL);
	}
}

bool orch_index_find_id(const struct orch_index *ix, const char *id,
			struct orch_index_hit *out)
{
	const struct entry *e;

	if (!ix || !ix->n)
		return false;
	e = table_get(ix, KEY_ID, id, id_hash(id));

	if (e)
		fill_hit(ix, e, out);
	return e != NULL;
}

bool orch_index_find_rp(const struct orch_index *ix, const char *vault,
			const char *path, const char *resource_id,
			uint64_t size, int64_t mtime,
			const struct orch_rp_identity *id,
			struct orch_index_hit *out)
{
	uint8_t d[DIGEST_LEN];
	const struct entry *e, *best = NULL;

	if (!ix || !ix->n)
		return false;
	ident_digest(vault, path, resource_id, size, mtime, d);
	for (e = table_get(ix, KEY_IDENT, d, digest_hash(d)); e;
	     e = e->same_ident ? &ix->e[e->same_ident - 1] : NULL) {
		struct orch_rp_identity f = { .known = e->file_known,
					      .dev = e->dev,
					      .ino = e->ino };

		if (orch_rp_identity_same_file(&f, id) &&
		    (!best || strcmp(best->id, e->id) < 0))
			best = e;
	}
	if (best)
		fill_hit(ix, best, out);
	return best != NULL;
}

bool orch_index_find_name(const struct orch_index *ix, const char *vault,
			  const char *name, struct orch_index_hit *out)
{
	uint8_t d[DIGEST_LEN];
	const struct entry *e;

	if (!ix || !ix->n)
		return false;
	name_digest(vault, name, d);
	e = table_get(ix, KEY_NAME, d, digest_hash(d));
	if (e)
		fill_hit(ix, e, out);
	return e != NULL;
}

size_t orch_index_due(const struct orch_index *ix, time_t cutoff,
		      char (**ids)[ORCH_JOB_ID_SIZE], bool *move)
{
	size_t n = 0;

	*ids = NULL;
	if (move)
		*move = false;
	for (size_t i = 0; i < ix->n; i++) {
		const struct entry *e = &ix->e[i];

		if (!e->file || e->ended > cutoff)
			continue;
		if (move && !ORCH_INDEX_IN_FILE(e->where))
			*move = true;
		if (!(n & (n + 1))) /* 0, 1, 3, 7...: room for 2n+2 */
			*ids = cm_xrealloc(*ids, (2 * n + 2) * sizeof(**ids));
		memcpy((*ids)[n++], e->id, ORCH_JOB_ID_SIZE);
	}
	return n;
}

size_t orch_index_count(const struct orch_index *ix)
{
	return ix->n;
}

void orch_index_counts(const struct orch_index *ix,
		       size_t by_state[ORCH_JOB_NSTATES], size_t *other,
		       uint64_t *archived)
{
	for (size_t i = 0; i < ix->nstates; i++) {
		enum orch_job_state st;

		if (orch_job_state_parse(ix->states[i], &st) == 0)
			by_state[st] += ix->count[i];
		else if (other)
			*other += ix->count[i];
	}
	if (archived)
		*archived += ix->archived;
}

/* ---- records ----------------------------------------------------------- */

void orch_index_rec_from_job(const struct orch_job *job,
			     struct orch_index_rec *out)
{
	memset(out, 0, sizeof(*out));
	out->id = job->id;
	out->vault = job->vault;
	out->path = job->rp_path;
	out->name = job->rp_name;
	out->resource_id = job->resource_id;
	out->size = job->rp_size;
	out->mtime = (int64_t)job->rp_mtime;
	out->file = job->rp_id;
	out->state = orch_job_state_name(job->state);
	out->result_size = job->result_size;
	for (int st = 0; st < ORCH_JOB_NSTATES; st++)
		if (job->times[st] > out->ended)
			out->ended = job->times[st];
}

static bool num_member(const struct cm_json *obj, const char *key,
		       uint64_t *out)
{
	const struct cm_json *j = cm_json_get(obj, key);
	double v;

	*out = 0;
	if (!j)
		return true;
	v = cm_json_num(j);
	if (cm_json_type(j) != CM_JSON_NUMBER || v < 0 ||
	    v > 9007199254740992.0 || v != (double)(uint64_t)v)
		return false;
	*out = (uint64_t)v;
	return true;
}

int orch_index_rec_from_json(const struct cm_json *record,
			     struct orch_index_rec *out, char *why, size_t n)
{
	const struct cm_json *rp = cm_json_get(record, "recoveryPoint");
	const struct cm_json *result = cm_json_get(record, "result");
	uint64_t mtime;

	memset(out, 0, sizeof(*out));
	out->id = cm_json_get_str(record, "id");
	out->vault = cm_json_get_str(record, "vault");
	out->path = cm_json_get_str(rp, "path");
	out->name = cm_json_get_str(rp, "name");
	out->resource_id = cm_json_get_str(rp, "resourceId");
	out->state = cm_json_get_str(record, "state");
	if (!orch_job_id_valid(out->id)) {
		snprintf(why, n, "id: missing or malformed");
		return -EINVAL;
	}
	if (!out->vault || !out->path || !out->resource_id) {
		snprintf(why, n, "job %s: vault or recoveryPoint missing",
			 out->id);
		return -EINVAL;
	}
	if (!out->state || !*out->state || strlen(out->state) > 32) {
		snprintf(why, n, "job %s: state missing", out->id);
		return -EINVAL;
	}
	if (!num_member(rp, "size", &out->size) ||
	    !num_member(rp, "mtime", &mtime) ||
	    !num_member(result, "size", &out->result_size)) {
		snprintf(why, n, "job %s: a size or mtime is not a count",
			 out->id);
		return -EINVAL;
	}
	out->mtime = (int64_t)mtime;
	for (const struct cm_json *t = cm_json_first(cm_json_get(record,
								 "times"));
	     t; t = cm_json_next(t)) {
		time_t when;

		if (cm_json_str(t) &&
		    cm_time_parse_iso8601(cm_json_str(t), &when) == 0 &&
		    when > out->ended)
			out->ended = when;
	}
	if (!orch_rp_identity_from_record(rp, &out->file)) {
		snprintf(why, n, "job %s: recoveryPoint.identity: bad",
			 out->id);
		return -EINVAL;
	}
	return 0;
}

/* ---- reading the file -------------------------------------------------- */

static char *index_path(const char *state_dir, const char *name)
{
	return cm_xasprintf("%s/%s", state_dir, name);
}

/* A checked record to the caller; its error names the file and line. */
static int deliver(orch_index_fn fn, void *ctx, const struct orch_job *job,
		   const struct cm_json *record,
		   const struct orch_index_rec *rec, uint64_t off,
		   const char *path, size_t lineno, struct cm_err *err)
{
	int rc = fn ? fn(ctx, job, record, rec, off) : 0;

	if (rc && err)
		cm_err_prefix(err, "index %s: line %zu", path, lineno);
	return rc;
}

/*
 * One record line (with its '\n') to fn: read by the scanner when it is
 * in the form this version writes, else parsed. 0, fn's nonzero, or
 * -EINVAL with why set (not a record).
 */
static int one_record(orch_index_fn fn, void *ctx, const char *line,
		      size_t len, uint64_t off, const char *path,
		      size_t lineno, char *why, size_t whylen,
		      struct cm_err *err)
{
	struct orch_index_rec rec;
	struct orch_job *job = NULL;
	struct cm_json *j = NULL;
	struct cm_err pe;
	int rc;

	if (orch_job_scan_record(line, len, &job) == 0) {
		orch_index_rec_from_job(job, &rec);
		rc = deliver(fn, ctx, job, NULL, &rec, off, path, lineno,
			     err);
		orch_job_free(job);
		return rc;
	}
	cm_err_clear(&pe);
	if (cm_json_parse(line, len, &j, &pe)) {
		snprintf(why, whylen, "%s", pe.msg);
		return -EINVAL;
	}
	if (cm_json_type(j) != CM_JSON_OBJECT) {
		snprintf(why, whylen, "not an object");
		rc = -EINVAL;
	} else if (orch_index_rec_from_json(j, &rec, why, whylen) == 0) {
		rc = deliver(fn, ctx, NULL, j, &rec, off, path, lineno, err);
	} else {
		rc = -EINVAL;
	}
	cm_json_free(j);
	return rc;
}

/* The tail, opened before the index is read (a fold that moves the
 * tail into a new index meanwhile then shows its records twice, which
 * the caller takes once, and never in neither); NULL: there is none. */
static int open_tail(const char *state_dir, FILE **out, struct cm_err *err)
{
	char *path = index_path(state_dir, ORCH_INDEX_TAIL_NAME);
	int rc = 0;

	*out = fopen(path, "re");
	if (!*out && errno != ENOENT)
		rc = cm_err_set(err, errno, "index %s: %s", path,
				strerror(errno));
	free(path);
	return rc;
}

/* The tail: whole lines, each a record; a last line without its '\n' is
 * a cut-off append, not a record. Closes f. */
static int read_tail(const char *state_dir, FILE *f, orch_index_fn fn,
		     void *ctx, struct orch_index_pos *here,
		     struct cm_err *err)
{
	char *path, *line = NULL, why[CM_ERR_MSG_MAX + 64];
	size_t cap = 0, lineno = 0;
	uint64_t off = 0;
	ssize_t len;
	int rc = 0;

	if (!f)
		return 0;
	path = index_path(state_dir, ORCH_INDEX_TAIL_NAME);
	why[0] = '\0';
	while ((len = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (line[len - 1] != '\n') {
			here->tail_torn = true;
			break;
		}
		rc = one_record(fn, ctx, line, (size_t)len,
				ORCH_INDEX_IN_TAIL | off, path, lineno, why,
				sizeof(why), err);
		if (rc)
			break;
		here->tail_count++;
		off += (uint64_t)len;
	}
	if (!rc && ferror(f))
		rc = cm_err_set(err, EIO, "index %s: read error: %s", path,
				strerror(errno));
	else if (rc == -EINVAL && why[0])
		rc = cm_err_set(err, EINVAL, "index %s: line %zu: %s "
				"(refused; move it aside to start without "
				"it)", path, lineno, why);
	here->tail_end = off;
	free(line);
	fclose(f);
	free(path);
	return rc;
}

/* The count line, as written or edited by hand. */
static bool end_line(const char *line, size_t len)
{
	struct cm_json *j = NULL;
	struct cm_err pe;
	bool yes;

	if (!strstr(line, "\"end\""))
		return false;
	if (cm_json_parse(line, len, &j, &pe))
		return false;
	yes = cm_json_get(j, "end") && !cm_json_get(j, "id");
	cm_json_free(j);
	return yes;
}

int orch_index_read(const char *state_dir, orch_index_fn fn, void *ctx,
		    struct orch_index_pos *pos, struct cm_err *err)
{
	char *path = index_path(state_dir, ORCH_INDEX_NAME);
	struct orch_index_pos here;
	char *line = NULL, why[CM_ERR_MSG_MAX + 64];
	size_t cap = 0, lineno = 0;
	uint64_t off = 0, end = 0;
	bool ended = false;
	ssize_t len;
	FILE *f, *tail;
	int rc;

	memset(&here, 0, sizeof(here));
	if (pos)
		*pos = here;
	rc = open_tail(state_dir, &tail, err);
	if (rc) {
		free(path);
		return rc;
	}
	f = fopen(path, "re");
	if (!f) {
		if (errno != ENOENT)
			rc = cm_err_set(err, errno, "index %s: %s", path,
					strerror(errno));
		free(path);
		if (rc == 0)
			rc = read_tail(state_dir, tail, fn, ctx, &here, err);
		else if (tail)
			fclose(tail);
		if (rc == 0 && pos)
			*pos = here;
		return rc;
	}
	why[0] = '\0';
	while ((len = getline(&line, &cap, f)) > 0) {
		struct cm_json *j = NULL;
		struct cm_err pe;
		uint64_t v;

		lineno++;
		cm_err_clear(&pe);
		if (ended) {
			snprintf(why, sizeof(why), "text after the end line");
			break;
		}
		if (line[len - 1] != '\n') {
			snprintf(why, sizeof(why), "torn (the line does not "
				 "end)");
			break;
		}
		if (lineno > 1 && !end_line(line, (size_t)len)) {
			rc = one_record(fn, ctx, line, (size_t)len, off, path,
					lineno, why, sizeof(why), err);
			if (rc == -EINVAL && why[0])
				rc = 0; /* said below */
			if (rc || why[0])
				break;
			here.count++;
			off += (uint64_t)len;
			continue;
		}
		if (cm_json_parse(line, (size_t)len, &j, &pe)) {
			snprintf(why, sizeof(why), "%s", pe.msg);
			break;
		}
		if (lineno == 1) {
			if (!num_member(j, "vaultfsIndex", &v) || !v) {
				snprintf(why, sizeof(why), "not a vaultfs "
					 "index");
			} else if (v != ORCH_INDEX_VERSION) {
				snprintf(why, sizeof(why), "version %llu, "
					 "this vaultfs reads version %d",
					 (unsigned long long)v,
					 ORCH_INDEX_VERSION);
			}
		} else {
			if (!num_member(j, "end", &v) || v != here.count)
				snprintf(why, sizeof(why), "the end line "
					 "counts %s records, the file has "
					 "%zu", cm_json_get(j, "end") ?
					 "other" : "no", here.count);
			end = off;
			ended = true;
		}
		cm_json_free(j);
		if (why[0])
			break;
		off += (uint64_t)len;
	}
	if (!why[0] && !rc && ferror(f))
		snprintf(why, sizeof(why), "read error: %s", strerror(errno));
	else if (!why[0] && !rc && !ended)
		snprintf(why, sizeof(why), "%s", lineno ? "torn: no end line"
							: "empty");
	if (why[0])
		rc = cm_err_set(err, EINVAL, "index %s: line %zu: %s (refused;"
				" move it aside to start without it)", path,
				lineno ? lineno : 1, why);
	if (rc == 0) {
		here.end = end;
		rc = read_tail(state_dir, tail, fn, ctx, &here, err);
	} else if (tail) {
		fclose(tail);
	}
	if (rc == 0 && pos)
		*pos = here;
	free(line);
	fclose(f);
	free(path);
	return rc;
}

struct load_ctx {
	struct orch_index *ix;
	size_t dups;
	orch_index_fn each;
	void *ctx;
};

static int load_record(void *ctx, const struct orch_job *job,
		       const struct cm_json *record,
		       const struct orch_index_rec *rec, uint64_t off)
{
	struct load_ctx *lc = ctx;
	struct orch_index_hit hit;

	(void)job;
	(void)record;
	/* in the index and its tail: a crash before the tail went */
	if (orch_index_find_id(lc->ix, rec->id, &hit)) {
		lc->dups++;
		return 0;
	}
	orch_index_add(lc->ix, rec, off);
	return lc->each ? lc->each(lc->ctx, job, record, rec, off) : 0;
}

int orch_index_load_each(const char *state_dir, struct orch_index *ix,
			 struct orch_index_pos *pos, orch_index_fn each,
			 void *ctx, struct cm_err *err)
{
	struct load_ctx lc = { ix, 0, each, ctx };
	int rc = orch_index_read(state_dir, load_record, &lc, pos, err);

	if (rc == 0 && pos)
		pos->tail_dups = lc.dups;
	return rc;
}

int orch_index_load(const char *state_dir, struct orch_index *ix,
		    struct orch_index_pos *pos, struct cm_err *err)
{
	return orch_index_load_each(state_dir, ix, pos, NULL, NULL, err);
}

int orch_index_load_record(const char *state_dir, uint64_t off,
			   struct orch_job **out, struct cm_err *err)
{
	char *path = index_path(state_dir, ORCH_INDEX_NAME);
	char *line = NULL, why[256];
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int rc;

	*out = NULL;
	f = fopen(path, "re");
	if (!f) {
		rc = cm_err_set(err, errno, "index %s: %s", path,
				strerror(errno));
		goto out;
	}
	if (fseeko(f, (off_t)off, SEEK_SET) < 0 ||
	    (len = getline(&line, &cap, f)) <= 0) {
		rc = cm_err_set(err, EIO, "index %s: no record at %llu", path,
				(unsigned long long)off);
		goto out;
	}
	rc = orch_job_from_record_line(line, (size_t)len, out, why,
				       sizeof(why));
	if (rc)
		cm_err_set(err, -rc, "index %s: at %llu: %s", path,
			   (unsigned long long)off, why);
out:
	if (f)
		fclose(f);
	free(line);
	free(path);
	return rc;
}

/* ---- writing the file -------------------------------------------------- */

struct orch_index_writer {
	char *dir;      /* STATEDIR */
	char *tmp;      /* STATEDIR/jobs.index.tmp */
	char *path;     /* STATEDIR/jobs.index */
	int fd;
	uint64_t off;   /* where the next record goes */
	size_t count;
};

static int write_out(struct orch_index_writer *w, const char *p, size_t n,
		     struct cm_err *err)
{
	int rc;

	if (cm_fault("index.write")) {
		rc = cm_write_all(w->fd, p, n / 2);
		if (!rc)
			rc = -EIO;
	} else {
		rc = cm_write_all(w->fd, p, n);
	}
	if (rc)
		return cm_err_set(err, -rc, "index %s: write: %s", w->tmp,
				  strerror(-rc));
	w->off += n;
	return 0;
}

/* The first n bytes of a file (the current index, its tail) into the
 * new one. */
static int copy_kept(struct orch_index_writer *w, const char *path,
		     uint64_t n, struct cm_err *err)
{
	char buf[1 << 16];
	int in = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if (in < 0)
		return cm_err_set(err, errno, "index %s: %s", path,
				  strerror(errno));
	while (n && rc == 0) {
		ssize_t got = read(in, buf, n < sizeof(buf) ? n : sizeof(buf));

		if (got <= 0) {
			rc = cm_err_set(err, got < 0 ? errno : EIO,
					"index %s: read: %s", path,
					got < 0 ? strerror(errno)
						: "shorter than it was");
			break;
		}
		rc = write_out(w, buf, (size_t)got, err);
		n -= (uint64_t)got;
	}
	close(in);
	return rc;
}

int orch_index_writer_open(const char *state_dir,
			   const struct orch_index_pos *keep,
			   struct orch_index_writer **out, struct cm_err *err)
{
	struct orch_index_writer *w = cm_xcalloc(1, sizeof(*w));
	int rc;

	*out = NULL;
	w->dir = cm_xstrdup(state_dir);
	w->tmp = index_path(state_dir, TMP_NAME);
	w->path = index_path(state_dir, ORCH_INDEX_NAME);
	w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		rc = cm_err_set(err, errno, "index %s: %s", w->tmp,
				strerror(errno));
		goto fail;
	}
	if (keep && keep->end) {
		rc = copy_kept(w, w->path, keep->end, err);
		w->count = keep->count;
	} else {
		rc = write_out(w, HEADER, strlen(HEADER), err);
	}
	if (rc == 0 && keep && keep->tail_end) {
		char *tail = index_path(state_dir, ORCH_INDEX_TAIL_NAME);

		rc = copy_kept(w, tail, keep->tail_end, err);
		w->count += keep->tail_count;
		free(tail);
	}
	if (rc)
		goto fail;
	*out = w;
	return 0;
fail:
	orch_index_writer_abort(w);
	return rc;
}

int orch_index_writer_add(struct orch_index_writer *w,
			  const struct orch_job *job, uint64_t *off,
			  struct cm_err *err)
{
	char *rec = orch_job_record_text(job);
	char *line = cm_xasprintf("%s\n", rec);
	uint64_t at = w->off;
	int rc = write_out(w, line, strlen(line), err);

	if (rc == 0) {
		*off = at;
		w->count++;
	}
	free(line);
	free(rec);
	return rc;
}

static void writer_free(struct orch_index_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	free(w->dir);
	free(w->tmp);
	free(w->path);
	free(w);
}

int orch_index_writer_commit(struct orch_index_writer *w,
			     struct orch_index_pos *pos, struct cm_err *err)
{
	char end[64];
	const char *step = NULL;
	int rc, dfd;

	if (pos) {
		pos->end = w->off;
		pos->count = w->count;
	}
	snprintf(end, sizeof(end), "{\"end\":%zu}\n", w->count);
	rc = write_out(w, end, strlen(end), err);
	if (rc)
		goto fail;
	if (cm_fault("index.fsync") ? (errno = EIO, 1) : fsync(w->fd) < 0)
		step = "fsync";
	else if (close(w->fd) < 0)
		step = "close";
	if (!step)
		w->fd = -1;
	if (!step && (cm_fault("index.rename") ? (errno = EIO, 1)
			: rename(w->tmp, w->path) < 0))
		step = "rename";
	if (step) {
		rc = cm_err_set(err, errno, "index %s: %s: %s", w->tmp, step,
				strerror(errno));
		goto fail;
	}
	/* renamed: the new file is the index, durable once the dir is */
	dfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || (cm_fault("index.fsync_dir") ? (errno = EIO, 1)
						    : fsync(dfd) < 0))
		rc = cm_err_set(err, errno, "index %s: fsync of the "
				"directory: %s", w->path, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	writer_free(w);
	return rc;
fail:
	orch_index_writer_abort(w);
	return rc;
}

void orch_index_writer_abort(struct orch_index_writer *w)
{
	if (!w)
		return;
	unlink(w->tmp);
	writer_free(w);
}

/* ---- the tail ---------------------------------------------------------- */

int orch_index_append(const char *state_dir, struct orch_index_pos *pos,
		      const struct orch_job *job, unsigned flags,
		      uint64_t *where, struct cm_err *err)
{
	char *path = index_path(state_dir, ORCH_INDEX_TAIL_NAME);
	char *rec = orch_job_record_text(job);
	char *line = cm_xasprintf("%s\n", rec);
	size_t len = strlen(line);
	const char *step = "open";
	bool created = false;
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		created = fd >= 0;
	}
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	/* a cut-off append (a crash, a failed write) ends at tail_end */
	step = "truncate";
	if (fstat(fd, &st) < 0 ||
	    ((uint64_t)st.st_size != pos->tail_end &&
	     ftruncate(fd, (off_t)pos->tail_end) < 0)) {
		rc = -errno;
		goto fail;
	}
	step = "write";
	if (lseek(fd, (off_t)pos->tail_end, SEEK_SET) < 0) {
		rc = -errno;
		goto fail;
	}
	if (cm_fault("index.append")) {
		rc = cm_write_all(fd, line, len / 2);
		if (!rc)
			rc = -EIO;
	} else {
		rc = cm_write_all(fd, line, len);
	}
	if (!rc && !(flags & ORCH_INDEX_NOSYNC) &&
	    (cm_fault("index.append_sync") ? (errno = EIO, 1)
					   : fdatasync(fd) < 0)) {
		step = "fdatasync";
		rc = -errno;
	}
	if (rc) {
		/* nothing of it stays: the next append starts clean */
		if (ftruncate(fd, (off_t)pos->tail_end) < 0)
			cm_debug("index %s: truncate: %s", path,
				 strerror(errno));
		goto fail;
	}
	if (created && !(flags & ORCH_INDEX_NOSYNC)) {
		int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		step = "fsync of the directory";
		if (dfd < 0 || fsync(dfd) < 0)
			rc = -errno;
		if (dfd >= 0)
			close(dfd);
		if (rc)
			goto fail;
	}
	*where = ORCH_INDEX_IN_TAIL | pos->tail_end;
	pos->tail_end += len;
	pos->tail_count++;
	pos->tail_torn = false;
	goto out;
fail:
	rc = cm_err_set(err, -rc, "index %s: %s: %s", path, step,
			strerror(-rc));
out:
	if (fd >= 0)
		close(fd);
	free(line);
	free(rec);
	free(path);
	return rc;
}

int orch_index_tail_sync(const char *state_dir, struct cm_err *err)
{
	char *path = index_path(state_dir, ORCH_INDEX_TAIL_NAME);
	int fd = open(path, O_WRONLY | O_CLOEXEC), dfd = -1, rc = 0;

	if (fd < 0 || (cm_fault("index.append_sync") ? (errno = EIO, 1)
						     : fdatasync(fd) < 0) ||
	    (dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fsync(dfd) < 0)
		rc = cm_err_set(err, errno, "index %s: sync: %s", path,
				strerror(errno));
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(path);
	return rc;
}

int orch_index_tail_remove(const char *state_dir, struct orch_index_pos *pos,
			   struct cm_err *err)
{
	char *path = index_path(state_dir, ORCH_INDEX_TAIL_NAME);
	int dfd, rc = 0;

	if (unlink(path) < 0 && errno != ENOENT) {
		rc = cm_err_set(err, errno, "index %s: remove: %s", path,
				strerror(errno));
		goto out;
	}
	pos->tail_end = 0;
	pos->tail_count = 0;
	pos->tail_torn = false;
	dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) < 0)
		rc = cm_err_set(err, errno, "index %s: fsync of the "
				"directory: %s", path, strerror(errno));
	if (dfd >= 0)
		close(dfd);
out:
	free(path);
	return rc;
}
