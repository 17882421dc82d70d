/*
 * config.c - load and check the configuration (see config.h and
 * docs/config.md).
 *
 * The loader starts from the embedded default and overlays the file key by
 * key. Each object is first checked for unknown and duplicate members
 * against its list of known keys (suggesting the closest one), then each
 * key is read with a helper that names the full key path ("vaults[1].path",
 * "compression.level") in its error. Checks that involve several keys run
 * last. The first error wins; the half-built config is released.
 */
#include "config.h"
#include "json.h"
#include "keys.h"
#include "mem.h"
#include "provider.h"
#include "url.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_MAX 128          /* a key path such as "vaults[12].path" */
#define MIB (1024ull * 1024)
#define PART_SIZE_MIN (5 * MIB)
#define PART_SIZE_MAX (5120 * MIB)
#define TAGS_MAX 10          /* S3 object tagging allows 10 per object */
#define LIFECYCLE_DAYS_MAX 100000u

struct parser {
	struct orch_config *cfg;  /* being filled */
	char *base_dir;           /* owned: relative paths start here */
	struct cm_err *err;
};

static const char *const top_keys[] = {
	"vaults", "destination", "endpoint", "endpoints", "region", "pathStyle",
	"expectedBucketOwner", "tags", "securityTag", "autoDeleteSnapshot",
	"autoStart", "lifecycleRules", "storageClass", "sse", "kmsKeyId",
	"compression", "concurrency", "partSize", "stateDir", "verify",
	"maxAttempts", "onFailure", "onFailureTimeoutSeconds",
	"rescanSeconds", "journal", "view", "overlayLimit", "ebs", "rds",
	"dynamodb", "metricsFile", NULL
};
static const char *const rds_keys[] = { "iamRoleArn", "kmsKeyId",
					"exportOnly", NULL };
static const char *const ddb_keys[] = { "exportFormat", "s3SseAlgorithm",
					"s3SseKmsKeyId", NULL };
static const char *const ebs_keys[] = {
	"method", "concurrency", "cacheSize", "volumeType", "iops",
	"throughput", "deviceRoot", "deviceTimeoutSeconds", NULL
};
static const char *const view_keys[] = { "memoryLimit", NULL };
static const char *const security_tag_keys[] = { "key", "value", NULL };
static const char *const lifecycle_keys[] = { "glacier", "deepArchive",
					      "expiration", NULL };
static const char *const compression_keys[] = { "codec", "level", "threads",
						NULL };
static const char *const concurrency_keys[] = { "jobs", "uploads", NULL };
static const char *const journal_keys[] = { "keepDays", NULL };

static const char *const storage_classes[] = {
	"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA",
	"INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE",
	"OUTPOSTS", "SNOW", "EXPRESS_ONEZONE", NULL
};

/* ---- defaults and release ---------------------------------------------- */

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = v ? cm_xstrdup(v) : NULL;
}

static void free_vaults(struct orch_config *cfg)
{
	for (size_t i = 0; i < cfg->nvaults; i++) {
		free(cfg->vaults[i].name);
		free(cfg->vaults[i].type);
		free(cfg->vaults[i].path);
		cm_json_free(cfg->vaults[i].raw);
	}
	free(cfg->vaults);
	cfg->vaults = NULL;
	cfg->nvaults = 0;
}

static void free_endpoints(struct orch_config *cfg)
{
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		free((char *)cfg->endpoints[i].service);
		free((char *)cfg->endpoints[i].url);
	}
	free(cfg->endpoints);
	cfg->endpoints = NULL;
	cfg->nendpoints = 0;
}

static void free_tags(struct orch_config *cfg)
{
	for (size_t i = 0; i < cfg->ntags; i++) {
		free(cfg->tags[i].key);
		free(cfg->tags[i].value);
	}
	free(cfg->tags);
	cfg->tags = NULL;
	cfg->ntags = 0;
}

void orch_config_release(struct orch_config *cfg)
{
	if (!cfg)
		return;
	free_vaults(cfg);
	free_tags(cfg);
	free_endpoints(cfg);
	free(cfg->destination);
	free(cfg->bucket);
	free(cfg->prefix);
	free(cfg->store_dir);
	free(cfg->endpoint);
	free(cfg->region);
	free(cfg->expected_bucket_owner);
	free(cfg->security_tag.key);
	free(cfg->security_tag.value);
	free(cfg->storage_class);
	free(cfg->sse);
	free(cfg->kms_key_id);
	free(cfg->state_dir);
	free(cfg->metrics_file);
	free(cfg->on_failure);
	free(cfg->rds_iam_role_arn);
	free(cfg->rds_kms_key_id);
	for (size_t i = 0; i < cfg->rds_nexport_only; i++)
		free(cfg->rds_export_only[i]);
	free(cfg->rds_export_only);
	free(cfg->ddb_export_format);
	free(cfg->ddb_sse_algorithm);
	free(cfg->ddb_sse_kms_key_id);
	free(cfg->ebs_volume_type);
	free(cfg->ebs_device_root);
	memset(cfg, 0, sizeof(*cfg));
}

void orch_config_default(struct orch_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->vaults = cm_xcalloc(1, sizeof(*cfg->vaults));
	cfg->nvaults = 1;
	cfg->vaults[0].name = cm_xstrdup(ORCH_DEFAULT_VAULT_NAME);
	cfg->vaults[0].type = cm_xstrdup(ORCH_VAULT_LOCAL);
	cfg->vaults[0].path = cm_xstrdup(ORCH_DEFAULT_VAULT_PATH);
	cfg->destination = cm_xstrdup(ORCH_DEFAULT_DESTINATION);
	cfg->prefix = cm_xstrdup("");
	cfg->store_dir = cm_xstrdup(ORCH_DEFAULT_DESTINATION);
	cfg->addressing = ORCH_ADDRESSING_AUTO;
	cfg->auto_delete_snapshot = false;
	cfg->auto_start = true;
	cfg->storage_class = cm_xstrdup("STANDARD");
	cfg->compression.codec = ARC_CODEC_GZIP;
	cfg->compression.level = 6;
	cfg->compression.threads = 0;
	cfg->jobs = 1;
	cfg->uploads = 4;
	cfg->part_size = 0;
	cfg->view_memory_limit = ORCH_VIEW_MEMORY_LIMIT;
	cfg->state_dir = cm_xstrdup(ORCH_DEFAULT_STATE_DIR);
	cfg->verify = ORCH_VERIFY_ETAG;
	cfg->max_attempts = 3;
	cfg->rescan_seconds = 60;
	cfg->on_failure_timeout_seconds = 300;
	cfg->keep_days = 90;
	cfg->ebs_concurrency = ORCH_EBS_CONCURRENCY;
	cfg->ebs_cache_size = ORCH_EBS_CACHE_SIZE;
	cfg->ddb_export_format = cm_xstrdup("DYNAMODB_JSON");
	cfg->ebs_volume_type = cm_xstrdup(ORCH_EBS_VOLUME_TYPE);
	cfg->ebs_device_root = cm_xstrdup(ORCH_EBS_DEVICE_ROOT);
	cfg->ebs_device_timeout_seconds = ORCH_EBS_DEVICE_TIMEOUT_S;
}

const struct orch_vault_config *orch_config_vault(const struct orch_config *cfg,
						  const char *name)
{
	for (size_t i = 0; i < cfg->nvaults; i++)
		if (strcmp(cfg->vaults[i].name, name) == 0)
			return &cfg->vaults[i];
	return NULL;
}

/* ---- sizes ------------------------------------------------------------- */

int orch_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgt";
	uint64_t v = 0, mult = 1;
	const char *p = s;

	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p++ - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p) {
		const char *u = strchr(units, tolower((unsigned char)*p));

		if (u) {
			for (const char *q = units; q <= u; q++)
				mult *= 1024;
			p++;
			if (tolower((unsigned char)*p) == 'i' &&
			    tolower((unsigned char)p[1]) == 'b')
				p += 2;
			else if (tolower((unsigned char)*p) == 'b')
				p++;
		} else if (tolower((unsigned char)*p) == 'b') {
			p++;
		}
	}
	while (isspace((unsigned char)*p))
		p++;
	if (*p || (v && mult > UINT64_MAX / v))
		return -EINVAL;
	*out = v * mult;
	return 0;
}

/* ---- error helpers ----------------------------------------------------- */

/* v is a whole number small enough to print exactly (no libm here). */
static bool whole(double v)
{
	return v > -1e15 && v < 1e15 && v == (double)(long long)v;
}

/* A short picture of a JSON value for "got ..." */
static const char *describe(const struct cm_json *j, char *buf, size_t n)
{
	double v;
	const char *s;

	switch (cm_json_type(j)) {
	case CM_JSON_NUMBER:
		v = cm_json_num(j);
		if (whole(v))
			snprintf(buf, n, "%.0f", v);
		else
			snprintf(buf, n, "%g", v);
		return buf;
	case CM_JSON_STRING:
		s = cm_json_str(j);
		snprintf(buf, n, "\"%.40s%s\"", s, strlen(s) > 40 ? "..." : "");
		return buf;
	case CM_JSON_BOOL:
		return cm_json_bool(j) ? "true" : "false";
	case CM_JSON_NULL:
		return "null";
	case CM_JSON_ARRAY:
		return "an array";
	case CM_JSON_OBJECT:
		return "an object";
	case CM_JSON_INVALID:
		break;
	}
	return "nothing";
}

static int bad(struct parser *p, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(struct parser *p, const char *key, const char *fmt, ...)
{
	char msg[CM_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return cm_err_set(p->err, EINVAL, "config: %s: %s", key, msg);
}

static int bad_value(struct parser *p, const char *key, const char *want,
		     const struct cm_json *j)
{
	char buf[64];

	return bad(p, key, "must be %s, got %s", want, describe(j, buf,
								 sizeof(buf)));
}

/* "path.key" into out (KEY_MAX bytes), cut if it must be. */
static void key_path(char *out, const char *path, const char *key)
{
	int n;

	if (path && *path)
		n = snprintf(out, KEY_MAX, "%s.%s", path, key);
	else
		n = snprintf(out, KEY_MAX, "%s", key);
	if (n < 0)
		out[0] = '\0';
}

/* Optimal string alignment distance, case-insensitive, capped inputs. */
static unsigned distance(const char *a, const char *b)
{
	size_t n = strlen(a), m = strlen(b);
	unsigned d[33][33];

	if (n > 32 || m > 32)
		return UINT_MAX;
	for (size_t i = 0; i <= n; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= m; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= n; i++) {
		for (size_t j = 1; j <= m; j++) {
			unsigned cost = tolower((unsigned char)a[i - 1]) !=
					tolower((unsigned char)b[j - 1]);
			unsigned v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 &&
			    tolower((unsigned char)a[i - 1]) ==
				    tolower((unsigned char)b[j - 2]) &&
			    tolower((unsigned char)a[i - 2]) ==
				    tolower((unsigned char)b[j - 1]) &&
			    d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[n][m];
}

/* The known key closest to `word`, if it is close enough to be a typo. */
static const char *closest(const char *word, const char *const *known)
{
	const char *best = NULL;
	unsigned best_d = UINT_MAX;

	for (const char *const *k = known; *k; k++) {
		unsigned d = distance(word, *k);

		if (d < best_d) {
			best_d = d;
			best = *k;
		}
	}
	if (best && best_d <= 2 && best_d * 2 <= strlen(best))
		return best;
	return NULL;
}

static bool known_key(const char *key, const char *const *known)
{
	for (const char *const *k = known; *k; k++)
		if (strcmp(key, *k) == 0)
			return true;
	return false;
}

/* Every member of obj is known and appears once. */
static int check_members(struct parser *p, const struct cm_json *obj,
			 const char *path, const char *const *known)
{
	for (struct cm_json *m = cm_json_first(obj); m; m = cm_json_next(m)) {
		const char *key = cm_json_key(m);
		char full[KEY_MAX];

		key_path(full, path, key);
		if (!known_key(key, known)) {
			const char *s = closest(key, known);
			char sugg[KEY_MAX];

			if (!s)
				return cm_err_set(p->err, EINVAL,
						  "config: unknown key \"%s\"",
						  full);
			key_path(sugg, path, s);
			return cm_err_set(p->err, EINVAL,
					  "config: unknown key \"%s\" (did "
					  "you mean \"%s\"?)", full, sugg);
		}
		for (struct cm_json *o = cm_json_first(obj); o != m;
		     o = cm_json_next(o))
			if (strcmp(cm_json_key(o), key) == 0)
				return cm_err_set(p->err, EINVAL,
						  "config: duplicate key "
						  "\"%s\"", full);
	}
	return 0;
}

/* ---- typed getters: an absent key keeps the default -------------------- */

/* A string, or (when nullable) null, which clears *dst. */
static int get_str(struct parser *p, const struct cm_json *obj,
		   const char *path, const char *key, bool nullable,
		   char **dst, bool *present)
{
	struct cm_json *j = cm_json_get(obj, key);
	char full[KEY_MAX];

	if (present)
		*present = j != NULL;
	if (!j)
		return 0;
	key_path(full, path, key);
	if (cm_json_type(j) == CM_JSON_NULL && nullable) {
		set_str(dst, NULL);
		return 0;
	}
	if (cm_json_type(j) != CM_JSON_STRING)
		return bad_value(p, full, nullable ? "a string or null"
						   : "a string", j);
	set_str(dst, cm_json_str(j));
	return 0;
}

static int get_bool(struct parser *p, const struct cm_json *obj,
		    const char *key, bool *dst)
{
	struct cm_json *j = cm_json_get(obj, key);

	if (!j)
		return 0;
	if (cm_json_type(j) != CM_JSON_BOOL)
		return bad_value(p, key, "true or false", j);
	*dst = cm_json_bool(j);
	return 0;
}

static bool json_integer(const struct cm_json *j, double lo, double hi,
			 uint64_t *out)
{
	double v;

	if (cm_json_type(j) != CM_JSON_NUMBER)
		return false;
	v = cm_json_num(j);
	if (v < lo || v > hi || v != (double)(uint64_t)v)
		return false;
	*out = (uint64_t)v;
	return true;
}

/* An integer in [lo, hi]; `what` ends the message (" for gzip"). */
static int get_uint(struct parser *p, const struct cm_json *obj,
		    const char *path, const char *key, unsigned lo,
		    unsigned hi, const char *what, unsigned *dst)
{
	struct cm_json *j = cm_json_get(obj, key);
	char full[KEY_MAX], want[96];
	uint64_t v;

	if (!j)
		return 0;
	key_path(full, path, key);
	if (!json_integer(j, lo, hi, &v)) {
		snprintf(want, sizeof(want), "an integer from %u to %u%s", lo,
			 hi, what ? what : "");
		return bad_value(p, full, want, j);
	}
	*dst = (unsigned)v;
	return 0;
}

/* An object (or, when nullable, null: *is_null set) with known members. */
static int get_object(struct parser *p, const struct cm_json *obj,
		      const char *key, const char *const *known,
		      bool nullable, struct cm_json **out, bool *is_null)
{
	struct cm_json *j = cm_json_get(obj, key);

	*out = NULL;
	if (is_null)
		*is_null = false;
	if (!j)
		return 0;
	if (nullable && cm_json_type(j) == CM_JSON_NULL) {
		*is_null = true;
		return 0;
	}
	if (cm_json_type(j) != CM_JSON_OBJECT)
		return bad_value(p, key, nullable ? "an object or null"
						  : "an object", j);
	*out = j;
	return known ? check_members(p, j, key, known) : 0;
}

static int one_of(struct parser *p, const char *key, const char *v,
		  const char *const *allowed)
{
	char list[512] = "";
	size_t len = 0;

	for (const char *const *a = allowed; *a; a++)
		if (strcmp(v, *a) == 0)
			return 0;
	for (const char *const *a = allowed; *a && len < sizeof(list); a++)
		len += (size_t)snprintf(list + len, sizeof(list) - len,
					"%s\"%s\"", a == allowed ? "" : ", ",
					*a);
	return bad(p, key, "must be one of %s, got \"%.40s\"", list, v);
}

/* ---- paths ------------------------------------------------------------- */

/* Lexically normalised absolute path: no "//", ".", ".." or trailing '/'. */
static char *normalize_path(const char *base, const char *path)
{
	char *joined = path[0] == '/' ? cm_xstrdup(path)
				      : cm_xasprintf("%s/%s", base, path);
	char *out = cm_xmalloc(strlen(joined) + 2);
	size_t len = 0;
	char *save = NULL;

	for (char *seg = strtok_r(joined, "/", &save); seg;
	     seg = strtok_r(NULL, "/", &save)) {
		if (strcmp(seg, ".") == 0)
			continue;
		if (strcmp(seg, "..") == 0) {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--; /* the '/' itself */
			continue;
		}
		out[len++] = '/';
		memcpy(out + len, seg, strlen(seg));
		len += strlen(seg);
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	free(joined);
	return out;
}

/* a is b or lies below b (both normalised). */
static bool path_inside(const char *a, const char *b)
{
	size_t n = strlen(b);

	if (strcmp(b, "/") == 0)
		return true;
	return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

/* ---- for the vault types' check_config (config.h) ----------------------- */

int orch_config_check_keys(const struct cm_json *obj, const char *where,
			   const char *const *known, struct cm_err *err)
{
	struct parser p = { .err = err };

	return check_members(&p, obj, where, known);
}

int orch_config_get_str(const struct cm_json *obj, const char *where,
			const char *key, char **dst, bool *present,
			struct cm_err *err)
{
	struct parser p = { .err = err };

	return get_str(&p, obj, where, key, false, dst, present);
}

int orch_config_get_uint(const struct cm_json *obj, const char *where,
			 const char *key, unsigned lo, unsigned hi,
			 unsigned *dst, struct cm_err *err)
{
	struct parser p = { .err = err };

	return get_uint(&p, obj, where, key, lo, hi, NULL, dst);
}

int orch_config_bad(struct cm_err *err, const char *where, const char *key,
		    const char *fmt, ...)
{
	char msg[CM_ERR_MSG_MAX], full[KEY_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	key_path(full, where, key);
	return cm_err_set(err, EINVAL, "config: %s: %s", full, msg);
}

char *orch_config_abs_path(const char *base_dir, const char *path)
{
	return normalize_path(base_dir, path);
}

/* ---- the keys ---------------------------------------------------------- */

static bool valid_vault_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64 || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

/*
 * A vault: its name and type here, every other key by its type's
 * check_config (provider.h), which may fill what it owns (a local vault's
 * path).
 */
static int parse_vault(struct parser *p, const struct cm_json *item,
		       size_t i, struct orch_vault_config *v)
{
	const struct orch_provider_type *t;
	char path[KEY_MAX], full[KEY_MAX], known[256];
	int rc;

	snprintf(path, sizeof(path), "vaults[%zu]", i);
	if (cm_json_type(item) != CM_JSON_OBJECT)
		return bad_value(p, path, "an object {name, type, ...}",
				 item);

	key_path(full, path, "name");
	rc = get_str(p, item, path, "name", false, &v->name, NULL);
	if (rc)
		return rc;
	if (!v->name)
		return bad(p, full, "missing (every vault has a name)");
	if (!valid_vault_name(v->name))
		return bad(p, full, "must be 1 to 64 characters from "
			   "[A-Za-z0-9._-], not starting with '.', got "
			   "\"%.40s\"", v->name);

	key_path(full, path, "type");
	v->type = cm_xstrdup(ORCH_VAULT_LOCAL);
	rc = get_str(p, item, path, "type", false, &v->type, NULL);
	if (rc)
		return rc;
	t = orch_provider_type_find(v->type);
	if (!t) {
		orch_provider_type_names(known, sizeof(known));
		return bad(p, full, "unknown vault type \"%.40s\" (known "
			   "types: %s)", v->type, known);
	}
	rc = t->check_config(item, path, p->base_dir, v, p->err);
	if (rc)
		return rc;
	v->raw = cm_json_copy(item);
	return 0;
}

static int parse_vaults(struct parser *p, const struct cm_json *root)
{
	struct cm_json *arr = cm_json_get(root, "vaults");
	struct orch_config *cfg = p->cfg;
	size_t i = 0;
	int rc;

	if (!arr)
		return 0;
	if (cm_json_type(arr) != CM_JSON_ARRAY)
		return bad_value(p, "vaults", "an array", arr);
	free_vaults(cfg);
	cfg->vaults = cm_xcalloc(cm_json_size(arr) + 1,
				 sizeof(*cfg->vaults));
	for (struct cm_json *it = cm_json_first(arr); it;
	     it = cm_json_next(it), i++) {
		cfg->nvaults = i + 1;
		rc = parse_vault(p, it, i, &cfg->vaults[i]);
		if (rc)
			return rc;
		for (size_t k = 0; k < i; k++)
			if (strcmp(cfg->vaults[k].name,
				   cfg->vaults[i].name) == 0)
				return cm_err_set(p->err, EINVAL,
						  "config: vaults[%zu].name: "
						  "\"%s\" is already the name "
						  "of vaults[%zu]", i,
						  cfg->vaults[i].name, k);
	}
	return 0;
}

static bool valid_bucket(const char *b)
{
	size_t n = strlen(b);

	if (n < 3 || n > 63 || !isalnum((unsigned char)b[0]) ||
	    !isalnum((unsigned char)b[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)b[i]) &&
		    !isdigit((unsigned char)b[i]) && b[i] != '.' &&
		    b[i] != '-')
			return false;
	return true;
}

static int parse_destination(struct parser *p, const struct cm_json *root)
{
	struct orch_config *cfg = p->cfg;
	char *d = NULL;
	bool present;
	int rc;

	rc = get_str(p, root, NULL, "destination", false, &d, &present);
	if (rc || !present || !d)
		goto out;
	free(cfg->bucket);
	free(cfg->prefix);
	free(cfg->store_dir);
	cfg->bucket = cfg->prefix = cfg->store_dir = NULL;
	if (cm_url_kind(d) == CM_URL_S3) {
		const char *b = d + 5, *slash = strchrnul(b, '/');
		const char *pre = *slash ? slash + 1 : slash;
		size_t plen = strlen(pre);

		cfg->bucket = cm_xstrndup(b, (size_t)(slash - b));
		while (plen > 0 && pre[plen - 1] == '/')
			plen--;
		cfg->prefix = cm_xstrndup(pre, plen);
		if (!valid_bucket(cfg->bucket)) {
			rc = bad(p, "destination", "\"%s\" is not a valid "
				 "bucket name (3 to 63 of [a-z0-9.-])",
				 cfg->bucket);
			goto out;
		}
		if (*cfg->prefix && !orch_key_is_safe(cfg->prefix)) {
			rc = bad(p, "destination", "the prefix \"%.64s\" has "
				 "an empty, \".\" or \"..\" segment or a "
				 "control character", cfg->prefix);
			goto out;
		}
		set_str(&cfg->destination, d);
	} else if (cm_url_is_typo(d)) {
		rc = bad(p, "destination", "\"%.64s\" is not an S3 URL "
			 "(s3://BUCKET[/PREFIX]); write \"./%.64s\" for a "
			 "local directory of that name", d, d);
		goto out;
	} else if (!*d || strstr(d, "://")) {
		rc = bad(p, "destination", "must be s3://BUCKET[/PREFIX] or "
			 "a local directory, got \"%.64s\"", d);
		goto out;
	} else {
		struct stat st;

		cfg->prefix = cm_xstrdup("");
		cfg->store_dir = normalize_path(p->base_dir, d);
		set_str(&cfg->destination, cfg->store_dir);
		if (stat(cfg->store_dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
			rc = bad(p, "destination", "%s: not a directory",
				 cfg->store_dir);
			goto out;
		}
	}
out:
	free(d);
	return rc;
}

/*
 * "endpoints": {"ec2": "http://...", "s3": "..."}: for each AWS service a
 * URL that comes after AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL
 * (core/aws.h). Services are those vaultfs speaks to; a misspelt one is
 * an error, not an endpoint silently unused.
 */
static int parse_endpoints(struct parser *p, const struct cm_json *root)
{
	const char *known[16];
	struct cm_json *obj, *m;
	size_t n = 0;
	bool is_null;
	int rc;

	for (size_t i = 0; aws_services[i]; i++)
		known[n++] = aws_services[i]->name;
	known[n++] = "s3";
	known[n] = NULL;
	rc = get_object(p, root, "endpoints", known, true, &obj, &is_null);
	if (rc || (!obj && !is_null))
		return rc;
	free_endpoints(p->cfg);
	if (is_null)
		return 0;
	p->cfg->endpoints =
	    cm_xcalloc(cm_json_size(obj) + 1, sizeof(*p->cfg->endpoints));
	for (m = cm_json_first(obj); m; m = cm_json_next(m)) {
		struct aws_endpoint *e =
		    &p->cfg->endpoints[p->cfg->nendpoints];
		char full[KEY_MAX];
		struct aws_url u;
		struct cm_err uerr;

		key_path(full, "endpoints", cm_json_key(m));
		if (cm_json_type(m) != CM_JSON_STRING)
			return bad_value(p, full, "a URL string", m);
		if (aws_url_parse(cm_json_str(m), &u, &uerr) != 0)
			return bad(p, full, "%s", uerr.msg);
		aws_url_release(&u);
		e->service = cm_xstrdup(cm_json_key(m));
		e->url = cm_xstrdup(cm_json_str(m));
		p->cfg->nendpoints++;
	}
	return 0;
}

static int parse_s3_options(struct parser *p, const struct cm_json *root)
{
	struct orch_config *cfg = p->cfg;
	struct cm_json *j;
	int rc;

	rc = get_str(p, root, NULL, "endpoint", true, &cfg->endpoint, NULL);
	if (rc)
		return rc;
	if (cfg->endpoint && strncmp(cfg->endpoint, "http://", 7) != 0 &&
	    strncmp(cfg->endpoint, "https://", 8) != 0)
		return bad(p, "endpoint", "must start with http:// or "
			   "https://, got \"%.64s\"", cfg->endpoint);

	rc = get_str(p, root, NULL, "region", true, &cfg->region, NULL);
	if (rc)
		return rc;
	if (cfg->region) {
		size_t n = strlen(cfg->region);
		bool ok = n > 0 && n <= 64;

		for (size_t i = 0; ok && i < n; i++)
			ok = isalnum((unsigned char)cfg->region[i]) ||
			     strchr("-_.", cfg->region[i]);
		if (!ok)
			return bad(p, "region", "must be a region name such "
				   "as \"eu-west-1\", got \"%.40s\"",
				   cfg->region);
	}

	j = cm_json_get(root, "pathStyle");
	if (j && cm_json_type(j) == CM_JSON_NULL)
		cfg->addressing = ORCH_ADDRESSING_AUTO;
	else if (j && cm_json_type(j) == CM_JSON_BOOL)
		cfg->addressing = cm_json_bool(j) ? ORCH_ADDRESSING_PATH
						  : ORCH_ADDRESSING_VIRTUAL;
	else if (j)
		return bad_value(p, "pathStyle", "true, false or null", j);

	rc = get_str(p, root, NULL, "expectedBucketOwner", true,
		     &cfg->expected_bucket_owner, NULL);
	if (rc)
		return rc;
	if (cfg->expected_bucket_owner) {
		const char *o = cfg->expected_bucket_owner;
		bool ok = strlen(o) == 12;

		for (size_t i = 0; ok && i < 12; i++)
			ok = isdigit((unsigned char)o[i]);
		if (!ok)
			return bad(p, "expectedBucketOwner", "must be a "
				   "12-digit account id, got \"%.40s\"", o);
	}

	rc = get_str(p, root, NULL, "storageClass", false, &cfg->storage_class,
		     NULL);
	if (rc)
		return rc;
	rc = one_of(p, "storageClass", cfg->storage_class, storage_classes);
	if (rc)
		return rc;

	rc = get_str(p, root, NULL, "sse", true, &cfg->sse, NULL);
	if (rc)
		return rc;
	if (cfg->sse) {
		static const char *const sse[] = { "AES256", "aws:kms", NULL };

		rc = one_of(p, "sse", cfg->sse, sse);
		if (rc)
			return rc;
	}
	rc = get_str(p, root, NULL, "kmsKeyId", true, &cfg->kms_key_id, NULL);
	if (rc)
		return rc;
	if (cfg->kms_key_id && !*cfg->kms_key_id)
		return bad(p, "kmsKeyId", "must not be empty (use null)");
	if (cfg->kms_key_id && cfg->sse && strcmp(cfg->sse, "aws:kms") != 0)
		return bad(p, "kmsKeyId", "needs sse \"aws:kms\", but sse is "
			   "\"%s\"", cfg->sse);
	if (cfg->kms_key_id && !cfg->sse)
		cfg->sse = cm_xstrdup("aws:kms");
	return 0;
}

static int parse_tags(struct parser *p, const struct cm_json *root)
{
	struct orch_config *cfg = p->cfg;
	struct cm_json *obj, *sec;
	bool is_null;
	size_t i = 0;
	int rc;

	rc = get_object(p, root, "tags", NULL, false, &obj, NULL);
	if (rc)
		return rc;
	if (obj) {
		if (cm_json_size(obj) > TAGS_MAX)
			return bad(p, "tags", "at most %d tags (S3's limit "
				   "per object), got %zu", TAGS_MAX,
				   cm_json_size(obj));
		free_tags(cfg);
		cfg->tags = cm_xcalloc(cm_json_size(obj) + 1,
				       sizeof(*cfg->tags));
		for (struct cm_json *m = cm_json_first(obj); m;
		     m = cm_json_next(m), i++) {
			const char *k = cm_json_key(m);
			char full[KEY_MAX];

			key_path(full, "tags", k);
			for (size_t n = 0; n < i; n++)
				if (strcmp(cfg->tags[n].key, k) == 0)
					return cm_err_set(p->err, EINVAL,
							  "config: duplicate "
							  "key \"%s\"", full);
			if (!*k || strlen(k) > 128)
				return bad(p, "tags", "a tag key must have 1 "
					   "to 128 characters");
			if (cm_json_type(m) != CM_JSON_STRING)
				return bad_value(p, full, "a string", m);
			if (strlen(cm_json_str(m)) > 256)
				return bad(p, full, "a tag value has at most "
					   "256 characters");
			cfg->tags[i].key = cm_xstrdup(k);
			cfg->tags[i].value = cm_xstrdup(cm_json_str(m));
			cfg->ntags = i + 1;
		}
	}

	rc = get_object(p, root, "securityTag", security_tag_keys, true, &sec,
			&is_null);
	if (rc)
		return rc;
	if (is_null) {
		cfg->has_security_tag = false;
		set_str(&cfg->security_tag.key, NULL);
		set_str(&cfg->security_tag.value, NULL);
	}
	if (sec) {
		rc = get_str(p, sec, "securityTag", "key", false,
			     &cfg->security_tag.key, NULL);
		if (!rc)
			rc = get_str(p, sec, "securityTag", "value", false,
				     &cfg->security_tag.value, NULL);
		if (rc)
			return rc;
		if (!cfg->security_tag.key || !*cfg->security_tag.key)
			return bad(p, "securityTag.key", "missing or empty");
		if (!cfg->security_tag.value)
			return bad(p, "securityTag.value", "missing");
		cfg->has_security_tag = true;
	}
	return 0;
}

static int parse_lifecycle(struct parser *p, const struct cm_json *root)
{
	struct orch_lifecycle *l = &p->cfg->lifecycle;
	const char *path = "lifecycleRules";
	struct cm_json *obj;
	bool is_null;
	int rc;

	rc = get_object(p, root, path, lifecycle_keys, true, &obj, &is_null);
	if (rc)
		return rc;
	if (is_null)
		memset(l, 0, sizeof(*l));
	if (!obj)
		return 0;
	rc = get_uint(p, obj, path, "glacier", 0, LIFECYCLE_DAYS_MAX,
		      " (days, 0: off)", &l->glacier);
	if (!rc)
		rc = get_uint(p, obj, path, "deepArchive", 0,
			      LIFECYCLE_DAYS_MAX, " (days, 0: off)",
			      &l->deep_archive);
	if (!rc)
		rc = get_uint(p, obj, path, "expiration", 0,
			      LIFECYCLE_DAYS_MAX, " (days, 0: off)",
			      &l->expiration);
	if (rc)
		return rc;
	if (l->glacier && l->deep_archive && l->deep_archive <= l->glacier)
		return bad(p, "lifecycleRules.deepArchive", "must be greater "
			   "than lifecycleRules.glacier (%u), got %u",
			   l->glacier, l->deep_archive);
	if (l->expiration && l->expiration <= l->glacier)
		return bad(p, "lifecycleRules.expiration", "must be greater "
			   "than lifecycleRules.glacier (%u), got %u",
			   l->glacier, l->expiration);
	if (l->expiration && l->expiration <= l->deep_archive)
		return bad(p, "lifecycleRules.expiration", "must be greater "
			   "than lifecycleRules.deepArchive (%u), got %u",
			   l->deep_archive, l->expiration);
	return 0;
}

static int parse_compression(struct parser *p, const struct cm_json *root)
{
	struct orch_compression *c = &p->cfg->compression;
	const char *path = "compression";
	struct cm_json *obj;
	char *codec = NULL;
	unsigned level;
	int rc;

	rc = get_object(p, root, path, compression_keys, false, &obj, NULL);
	if (rc || !obj)
		return rc;
	rc = get_str(p, obj, path, "codec", false, &codec, NULL);
	if (rc)
		goto out;
	if (codec) {
		static const char *const names[] = { "gzip", "zstd", "none",
						     NULL };

		rc = one_of(p, "compression.codec", codec, names);
		if (rc)
			goto out;
		c->codec = strcmp(codec, "gzip") == 0	? ARC_CODEC_GZIP
			   : strcmp(codec, "zstd") == 0 ? ARC_CODEC_ZSTD
							: ARC_CODEC_NONE;
	}
	{
		int lo, hi, def;
		char what[16];

		arc_codec_levels(c->codec, &lo, &hi, &def);
		snprintf(what, sizeof(what), " for %s",
			 arc_codec_name(c->codec));
		level = (unsigned)def;
		rc = get_uint(p, obj, path, "level", (unsigned)lo,
			      (unsigned)hi, what, &level);
	}
	if (rc)
		goto out;
	c->level = (int)level;
	rc = get_uint(p, obj, path, "threads", 0, 1024, " (0: one per CPU)",
		      &c->threads);
out:
	free(codec);
	return rc;
}

/* The size at `key` (bytes, or a string like "64MiB"), if present, into
 * *out: 0 where `zero_ok`, else from `lo` to `hi`. */
static int get_size(struct parser *p, const struct cm_json *obj,
		    const char *path, const char *key, const char *want,
		    bool zero_ok, uint64_t lo, uint64_t hi, uint64_t *out)
{
	struct cm_json *j = cm_json_get(obj, key);
	char full[KEY_MAX];
	uint64_t v;

	if (!j)
		return 0;
	key_path(full, path, key);
	if (cm_json_type(j) == CM_JSON_STRING) {
		if (orch_parse_size(cm_json_str(j), &v) < 0)
			return bad_value(p, full, want, j);
	} else if (!json_integer(j, 0, 9007199254740992.0, &v)) {
		return bad_value(p, full, want, j);
	}
	if (!(v == 0 && zero_ok) && (v < lo || v > hi))
		return bad_value(p, full, want, j);
	*out = v;
	return 0;
}

/* "view": options of `vaultfs mount` (docs/view.md) */
static int parse_view(struct parser *p, const struct cm_json *root)
{
	struct cm_json *obj;
	int rc;

	rc = get_object(p, root, "view", view_keys, false, &obj, NULL);
	if (rc || !obj)
		return rc;
	return get_size(p, obj, "view", "memoryLimit",
			"a size from 16MiB to 1TiB (bytes or a string like "
			"\"256MiB\")",
			false, ORCH_VIEW_MEMORY_MIN, ORCH_VIEW_MEMORY_MAX,
			&p->cfg->view_memory_limit);
}

static int parse_sizes(struct parser *p, const struct cm_json *root)
{
	int rc = get_size(p, root, NULL, "partSize",
			  "0 (automatic) or a size from 5MiB to 5GiB (bytes "
			  "or a string like \"64MiB\")",
			  true, PART_SIZE_MIN, PART_SIZE_MAX,
			  &p->cfg->part_size);

	if (rc == 0)
		rc = get_size(p, root, NULL, "overlayLimit",
			      "a size of at least 4KiB (bytes or a string "
			      "like \"2GiB\")",
			      false, 4096, UINT64_MAX, &p->cfg->overlay_limit);
	return rc;
}

static int parse_jobs(struct parser *p, const struct cm_json *root)
{
	struct orch_config *cfg = p->cfg;
	struct cm_json *obj;
	char *verify = NULL;
	int rc;

	rc = get_object(p, root, "concurrency", concurrency_keys, false, &obj,
			NULL);
	if (!rc && obj)
		rc = get_uint(p, obj, "concurrency", "jobs", 1, 64, NULL,
			      &cfg->jobs);
	if (!rc && obj)
		rc = get_uint(p, obj, "concurrency", "uploads", 1, 64, NULL,
			      &cfg->uploads);
	if (!rc)
		rc = get_bool(p, root, "autoDeleteSnapshot",
			      &cfg->auto_delete_snapshot);
	if (!rc)
		rc = get_bool(p, root, "autoStart", &cfg->auto_start);
	if (!rc)
		rc = get_uint(p, root, NULL, "maxAttempts", 1, 100, NULL,
			      &cfg->max_attempts);
	if (!rc)
		rc = get_uint(p, root, NULL, "rescanSeconds", 0, 86400,
			      " (0: inotify only)", &cfg->rescan_seconds);
	if (!rc)
		rc = get_str(p, root, NULL, "verify", false, &verify, NULL);
	if (!rc && verify) {
		static const char *const modes[] = { "etag", "full", "decode",
						     NULL };

		rc = one_of(p, "verify", verify, modes);
		cfg->verify = !strcmp(verify, "full")	? ORCH_VERIFY_FULL :
			      !strcmp(verify, "decode") ? ORCH_VERIFY_DECODE :
							  ORCH_VERIFY_ETAG;
	}
	if (!rc)
		rc = get_str(p, root, NULL, "onFailure", true,
			     &cfg->on_failure, NULL);
	if (!rc && cfg->on_failure && !*cfg->on_failure)
		set_str(&cfg->on_failure, NULL);
	if (!rc)
		rc = get_uint(p, root, NULL, "onFailureTimeoutSeconds", 1,
			      86400, NULL, &cfg->on_failure_timeout_seconds);
	free(verify);
	return rc;
}

/* A top-level path key: taken from the config file's directory and
 * normalised into *dst when present; null clears it when nullable. */
static int get_path(struct parser *p, const struct cm_json *root,
		    const char *key, bool nullable, char **dst)
{
	char *d = NULL;
	bool present;
	int rc;

	rc = get_str(p, root, NULL, key, nullable, &d, &present);
	if (rc || !present)
		goto out;
	if (!d) {
		set_str(dst, NULL);
		goto out;
	}
	if (!*d) {
		rc = bad(p, key, nullable ? "must not be empty (null: none)"
					  : "must not be empty");
		goto out;
	}
	free(*dst);
	*dst = normalize_path(p->base_dir, d);
out:
	free(d);
	return rc;
}

static int parse_state_dir(struct parser *p, const struct cm_json *root)
{
	return get_path(p, root, "stateDir", false, &p->cfg->state_dir);
}

/* "metricsFile": where `vaultfs run` writes its Prometheus text */
static int parse_metrics_file(struct parser *p, const struct cm_json *root)
{
	return get_path(p, root, "metricsFile", true, &p->cfg->metrics_file);
}

static int parse_journal(struct parser *p, const struct cm_json *root)
{
	struct cm_json *obj;
	int rc;

	rc = get_object(p, root, "journal", journal_keys, false, &obj, NULL);
	if (!rc && obj)
		rc = get_uint(p, obj, "journal", "keepDays", 0, 36500,
			      " (0: fold finished jobs at every start)",
			      &p->cfg->keep_days);
	return rc;
}

/* "ebs": how EBS snapshots of aws-backup vaults are read (docs/aws.md) */
static int parse_ebs(struct parser *p, const struct cm_json *root_json)
{
	struct cm_json *obj;
	char *method = NULL, *root = NULL;
	int rc;

	rc = get_object(p, root_json, "ebs", ebs_keys, false, &obj, NULL);
	if (rc || !obj)
		return rc;
	rc = get_str(p, obj, "ebs", "method", false, &method, NULL);
	if (!rc && method) {
		if (strcmp(method, "direct") == 0)
			p->cfg->ebs_method = ORCH_EBS_DIRECT;
		else if (strcmp(method, "volume") == 0)
			p->cfg->ebs_method = ORCH_EBS_VOLUME;
		else
			rc = bad(p, "ebs.method", "must be \"direct\" or "
				 "\"volume\", got \"%.40s\"", method);
	}
	free(method);
	if (!rc)
		rc = get_str(p, obj, "ebs", "volumeType", false,
			     &p->cfg->ebs_volume_type, NULL);
	if (!rc && (!*p->cfg->ebs_volume_type ||
		    strspn(p->cfg->ebs_volume_type,
			   "abcdefghijklmnopqrstuvwxyz0123456789") !=
			    strlen(p->cfg->ebs_volume_type)))
		rc = bad(p, "ebs.volumeType", "must be an EBS volume type "
			 "such as \"gp3\", got \"%.40s\"",
			 p->cfg->ebs_volume_type);
	/* the bounds of gp3/io2 (the API checks the rest per type) */
	if (!rc)
		rc = get_uint(p, obj, "ebs", "iops", 100, 256000, NULL,
			      &p->cfg->ebs_iops);
	if (!rc)
		rc = get_uint(p, obj, "ebs", "throughput", 125, 2000,
			      " (MiB/s)", &p->cfg->ebs_throughput);
	if (!rc)
		rc = get_str(p, obj, "ebs", "deviceRoot", false, &root, NULL);
	if (!rc && root) {
		if (root[0] != '/')
			rc = bad(p, "ebs.deviceRoot", "must be an absolute "
				 "path, got \"%.80s\"", root);
		else
			set_str(&p->cfg->ebs_device_root, root);
	}
	free(root);
	if (!rc)
		rc = get_uint(p, obj, "ebs", "deviceTimeoutSeconds", 1, 3600,
			      NULL, &p->cfg->ebs_device_timeout_seconds);
	if (!rc)
		rc = get_uint(p, obj, "ebs", "concurrency", 1, 256, NULL,
			      &p->cfg->ebs_concurrency);
	if (!rc)
		rc = get_size(p, obj, "ebs", "cacheSize",
			      "a size from 1MiB to 64GiB (bytes or a string "
			      "like \"64MiB\")",
			      false, 1ull << 20, 64ull << 30,
			      &p->cfg->ebs_cache_size);
	return rc;
}

/* "rds": StartExportTask's settings (docs/aws.md, "Exports") */
static int parse_rds(struct parser *p, const struct cm_json *root)
{
	struct orch_config *cfg = p->cfg;
	const struct cm_json *arr;
	struct cm_json *obj;
	size_t i = 0;
	int rc;

	rc = get_object(p, root, "rds", rds_keys, false, &obj, NULL);
	if (rc || !obj)
		return rc;
	rc = get_str(p, obj, "rds", "iamRoleArn", false,
		     &cfg->rds_iam_role_arn, NULL);
	if (!rc && cfg->rds_iam_role_arn &&
	    strncmp(cfg->rds_iam_role_arn, "arn:", 4) != 0)
		rc = bad(p, "rds.iamRoleArn", "must be an IAM role ARN "
			 "(arn:aws:iam::ACCOUNT:role/NAME), got \"%.60s\"",
			 cfg->rds_iam_role_arn);
	if (!rc)
		rc = get_str(p, obj, "rds", "kmsKeyId", false,
			     &cfg->rds_kms_key_id, NULL);
	if (!rc && cfg->rds_kms_key_id && !*cfg->rds_kms_key_id)
		rc = bad(p, "rds.kmsKeyId", "must not be empty");
	arr = cm_json_get(obj, "exportOnly");
	if (rc || !arr)
		return rc;
	if (cm_json_type(arr) != CM_JSON_ARRAY || cm_json_size(arr) == 0)
		return bad_value(p, "rds.exportOnly", "a non-empty array of "
				 "strings (\"database\", \"database.table\""
				 "...)", arr);
	cfg->rds_export_only = cm_xcalloc(cm_json_size(arr), sizeof(char *));
	for (const struct cm_json *it = cm_json_first(arr); it;
	     it = cm_json_next(it), i++) {
		if (!cm_json_str(it) || !*cm_json_str(it))
			return bad(p, "rds.exportOnly", "[%zu] must be a "
				   "non-empty string", i);
		cfg->rds_export_only[cfg->rds_nexport_only++] =
			cm_xstrdup(cm_json_str(it));
	}
	return 0;
}

/* "dynamodb": ExportTableToPointInTime's settings */
static int parse_dynamodb(struct parser *p, const struct cm_json *root)
{
	static const char *const formats[] = { "DYNAMODB_JSON", "ION", NULL };
	static const char *const sse[] = { "AES256", "KMS", NULL };
	struct orch_config *cfg = p->cfg;
	struct cm_json *obj;
	int rc;

	rc = get_object(p, root, "dynamodb", ddb_keys, false, &obj, NULL);
	if (rc || !obj)
		return rc;
	rc = get_str(p, obj, "dynamodb", "exportFormat", false,
		     &cfg->ddb_export_format, NULL);
	if (!rc)
		rc = one_of(p, "dynamodb.exportFormat",
			    cfg->ddb_export_format, formats);
	if (!rc)
		rc = get_str(p, obj, "dynamodb", "s3SseAlgorithm", false,
			     &cfg->ddb_sse_algorithm, NULL);
	if (!rc && cfg->ddb_sse_algorithm)
		rc = one_of(p, "dynamodb.s3SseAlgorithm",
			    cfg->ddb_sse_algorithm, sse);
	if (!rc)
		rc = get_str(p, obj, "dynamodb", "s3SseKmsKeyId", false,
			     &cfg->ddb_sse_kms_key_id, NULL);
	if (!rc && cfg->ddb_sse_kms_key_id &&
	    (!cfg->ddb_sse_algorithm ||
	     strcmp(cfg->ddb_sse_algorithm, "KMS") != 0))
		rc = bad(p, "dynamodb.s3SseKmsKeyId", "needs s3SseAlgorithm "
			 "\"KMS\"");
	return rc;
}

/* Checks across keys: the store and state must not sit inside a vault
 * (they would be taken for recovery points), nor a vault inside them. */
static int check_overlaps(struct parser *p)
{
	struct orch_config *cfg = p->cfg;

	for (size_t i = 0; i < cfg->nvaults; i++) {
		const char *v = cfg->vaults[i].path;

		if (!v) /* not a directory (another vault type) */
			continue;
		if (cfg->store_dir && (path_inside(cfg->store_dir, v) ||
				       path_inside(v, cfg->store_dir)))
			return bad(p, "destination", "%s overlaps vault \"%s\""
				   " (%s)", cfg->store_dir,
				   cfg->vaults[i].name, v);
		if (path_inside(cfg->state_dir, v) ||
		    path_inside(v, cfg->state_dir))
			return bad(p, "stateDir", "%s overlaps vault \"%s\" "
				   "(%s)", cfg->state_dir,
				   cfg->vaults[i].name, v);
	}
	return 0;
}

static int apply(struct parser *p, const struct cm_json *root)
{
	int rc;

	if (cm_json_type(root) != CM_JSON_OBJECT)
		return cm_err_set(p->err, EINVAL, "config: the top level must "
				  "be an object, got %s",
				  cm_json_type_name(cm_json_type(root)));
	rc = check_members(p, root, NULL, top_keys);
	if (!rc)
		rc = parse_vaults(p, root);
	if (!rc)
		rc = parse_destination(p, root);
	if (!rc)
		rc = parse_s3_options(p, root);
	if (!rc)
		rc = parse_endpoints(p, root);
	if (!rc)
		rc = parse_tags(p, root);
	if (!rc)
		rc = parse_lifecycle(p, root);
	if (!rc)
		rc = parse_compression(p, root);
	if (!rc)
		rc = parse_sizes(p, root);
	if (!rc)
		rc = parse_jobs(p, root);
	if (!rc)
		rc = parse_state_dir(p, root);
	if (!rc)
		rc = parse_journal(p, root);
	if (!rc)
		rc = parse_metrics_file(p, root);
	if (!rc)
		rc = parse_view(p, root);
	if (!rc)
		rc = parse_ebs(p, root);
	if (!rc)
		rc = parse_rds(p, root);
	if (!rc)
		rc = parse_dynamodb(p, root);
	if (!rc)
		rc = check_overlaps(p);
	return rc;
}

static char *absolute_dir(const char *dir)
{
	char cwd[PATH_MAX];
	char *out;

	if (dir && dir[0] == '/')
		return normalize_path("/", dir);
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, "/");
	out = normalize_path(cwd, dir && *dir ? dir : ".");
	return out;
}

static int run(const struct cm_json *root, const char *base_dir,
	       struct orch_config *cfg, struct cm_err *err)
{
	struct parser p = { .cfg = cfg, .err = err };
	int rc;

	orch_config_default(cfg);
	p.base_dir = absolute_dir(base_dir);
	rc = apply(&p, root);
	free(p.base_dir);
	if (rc)
		orch_config_release(cfg);
	return rc;
}

int orch_config_parse(const char *text, size_t len, const char *base_dir,
		      struct orch_config *cfg, struct cm_err *err)
{
	struct cm_json *root = NULL;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	rc = cm_json_parse(text, len, &root, err);
	if (rc) {
		cm_err_prefix(err, "config");
		return rc;
	}
	rc = run(root, base_dir, cfg, err);
	cm_json_free(root);
	return rc;
}

int orch_config_load(const char *path, struct orch_config *cfg,
		     struct cm_err *err)
{
	struct cm_json *root = NULL;
	const char *slash = strrchr(path, '/');
	char *dir;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	rc = cm_json_parse_file(path, &root, err);
	if (rc) {
		cm_err_prefix(err, "config");
		return rc;
	}
	dir = slash ? cm_xstrndup(path, slash == path ? 1
						     : (size_t)(slash - path))
		    : cm_xstrdup(".");
	rc = run(root, dir, cfg, err);
	free(dir);
	cm_json_free(root);
	return rc;
}
