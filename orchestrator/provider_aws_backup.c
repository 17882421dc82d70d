/*
 * provider_aws_backup.c - the provider of AWS Backup vaults (see
 * provider_aws_backup.h): config, recovery points from the Backup API,
 * restore by resource type, DeleteRecoveryPoint. The watch is in
 * aws_backup_watch.c.
 *
 * API references: AWS Backup ListRecoveryPointsByBackupVault,
 * DescribeRecoveryPoint, ListTags, DeleteRecoveryPoint (REST-JSON); EC2
 * DescribeTags, RDS ListTagsForResource (Query); DynamoDB
 * ListTagsOfResource (JSON 1.0).
 */
#include "aws_backup_int.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"
#include "xml.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIST_PAGE 100   /* recovery points per ListRecoveryPoints... page */
#define PAGES_MAX 10000 /* a listing that never ends is an error */

/* ---- resource types ---------------------------------------------------- */

static int ec2_tags(struct aws_client *c, const char *arn,
		    struct cm_json *tags, struct cm_err *err);
static int rds_tags(struct aws_client *c, const char *arn,
		    struct cm_json *tags, struct cm_err *err);
static int ddb_tags(struct aws_client *c, const char *arn,
		    struct cm_json *tags, struct cm_err *err);

/*
 * The one table of what an AWS Backup vault holds. A restorer is added by
 * pointing its entry's last field at it (issue 12: EBS, issue 13: the
 * exports); until then that type's jobs wait.
 */
static const struct awsb_type types[AWSB_NTYPES] = {
	{ "EBS", ORCH_RP_EBS, "EBS", ec2_tags, &aws_ec2,
	  &orch_ebs_direct_restorer },
	{ "RDS", ORCH_RP_RDS, "RDS", rds_tags, &aws_rds,
	  &orch_rds_exporter },
	{ "Aurora", ORCH_RP_AURORA, "Aurora", rds_tags, &aws_rds,
	  &orch_rds_exporter },
	{ "DynamoDB", ORCH_RP_DYNAMODB, "DynamoDB", ddb_tags, &aws_dynamodb,
	  &orch_ddb_exporter },
};

static const struct awsb_type *type_by_aws(const char *aws)
{
	for (size_t i = 0; i < AWSB_NTYPES; i++)
		if (aws && strcmp(types[i].aws, aws) == 0)
			return &types[i];
	return NULL;
}

static const struct awsb_type *type_by_rp(const char *rp_type)
{
	for (size_t i = 0; i < AWSB_NTYPES; i++)
		if (rp_type && strcmp(types[i].rp_type, rp_type) == 0)
			return &types[i];
	return NULL;
}

/* The vault's index of a type, or -1 when the vault does not take it. */
static int vault_type_index(const struct aws_backup *ab,
			    const struct awsb_type *t)
{
	for (size_t i = 0; i < ab->ntypes; i++)
		if (ab->types[i] == t)
			return (int)i;
	return -1;
}

struct aws_client *awsb_client_of(struct aws_backup *ab, const char *rp_type)
{
	const struct awsb_type *t = type_by_rp(rp_type);
	int i = t ? vault_type_index(ab, t) : -1;

	return i < 0 ? NULL : ab->tag_clients[i];
}

/* ---- config ------------------------------------------------------------ */

static const char *const vault_keys[] = {
	"name", "type", "backupVault", "region", "queueUrl", "pollSeconds",
	"resourceTypes", NULL
};

/* Everything the checker and the constructor read from the vault's JSON:
 * one reader, so the two never disagree. Strings owned. */
struct awsb_settings {
	char *backup_vault;
	char *region;
	char *queue_url;
	unsigned poll_seconds;
	const struct awsb_type *types[AWSB_NTYPES];
	size_t ntypes;
};

static void settings_release(struct awsb_settings *s)
{
	free(s->backup_vault);
	free(s->region);
	free(s->queue_url);
	memset(s, 0, sizeof(*s));
}

static bool charset_ok(const char *s, const char *extra)
{
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr(extra, *s))
			return false;
	return true;
}

#define TYPE_LIST "\"EBS\", \"RDS\", \"Aurora\", \"DynamoDB\""

static int read_types(const struct cm_json *v, const char *where,
		      struct awsb_settings *s, struct cm_err *err)
{
	const struct cm_json *arr = cm_json_get(v, "resourceTypes");
	size_t i = 0;

	if (!arr) {
		for (i = 0; i < AWSB_NTYPES; i++)
			s->types[i] = &types[i];
		s->ntypes = AWSB_NTYPES;
		return 0;
	}
	if (cm_json_type(arr) != CM_JSON_ARRAY || cm_json_size(arr) == 0)
		return orch_config_bad(err, where, "resourceTypes", "must be a "
				       "non-empty array of " TYPE_LIST);
	for (const struct cm_json *it = cm_json_first(arr); it;
	     it = cm_json_next(it), i++) {
		const char *name = cm_json_str(it);
		const struct awsb_type *t = type_by_aws(name);

		if (!t)
			return orch_config_bad(err, where, "resourceTypes",
					       "[%zu] must be one of " TYPE_LIST
					       " (AWS Backup's names), got "
					       "%s%.40s%s", i, name ? "\"" : "a ",
					       name ? name
						    : cm_json_type_name(
							      cm_json_type(it)),
					       name ? "\"" : "");
		for (size_t k = 0; k < s->ntypes; k++)
			if (s->types[k] == t)
				return orch_config_bad(err, where,
						       "resourceTypes",
						       "\"%s\" is listed twice",
						       t->aws);
		s->types[s->ntypes++] = t;
	}
	return 0;
}

/* An SQS queue URL: http(s)://HOST/ACCOUNT/NAME. */
static bool queue_url_ok(const char *u)
{
	const char *host, *path, *last;

	if (strncmp(u, "https://", 8) == 0)
		host = u + 8;
	else if (strncmp(u, "http://", 7) == 0)
		host = u + 7;
	else
		return false;
	path = strchr(host, '/');
	last = strrchr(host, '/');
	return path && path > host && last > path && last[1];
}

static int check_settings(const char *where, const struct awsb_settings *s,
			  struct cm_err *err)
{
	size_t n;

	if (!s->backup_vault)
		return orch_config_bad(err, where, "backupVault", "missing "
				       "(the AWS Backup vault's name)");
	n = strlen(s->backup_vault);
	/* AWS Backup's rule for vault names */
	if (n < 2 || n > 50 || !charset_ok(s->backup_vault, "-_"))
		return orch_config_bad(err, where, "backupVault", "must be 2 "
				       "to 50 characters from [A-Za-z0-9_-], "
				       "got \"%.60s\"", s->backup_vault);
	if (s->region && (!*s->region || strlen(s->region) > 32 ||
			  !isalpha((unsigned char)s->region[0]) ||
			  !charset_ok(s->region, "-")))
		return orch_config_bad(err, where, "region", "must be a region "
				       "name such as \"us-east-1\", got "
				       "\"%.40s\"", s->region);
	if (s->queue_url && !queue_url_ok(s->queue_url))
		return orch_config_bad(err, where, "queueUrl", "must be an SQS "
				       "queue URL https://sqs.REGION."
				       "amazonaws.com/ACCOUNT/NAME, got "
				       "\"%.80s\"", s->queue_url);
	return 0;
}

static int read_settings(const struct cm_json *v, const char *where,
			 struct awsb_settings *s, struct cm_err *err)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->poll_seconds = AWSB_POLL_SECONDS;
	rc = orch_config_check_keys(v, where, vault_keys, err);
	if (!rc)
		rc = orch_config_get_str(v, where, "backupVault",
					 &s->backup_vault, NULL, err);
	if (!rc)
		rc = orch_config_get_str(v, where, "region", &s->region, NULL,
					 err);
	if (!rc)
		rc = orch_config_get_str(v, where, "queueUrl", &s->queue_url,
					 NULL, err);
	if (!rc)
		rc = orch_config_get_uint(v, where, "pollSeconds", 1,
					  AWSB_POLL_SECONDS_MAX,
					  &s->poll_seconds, err);
	if (!rc)
		rc = read_types(v, where, s, err);
	if (!rc)
		rc = check_settings(where, s, err);
	if (rc)
		settings_release(s);
	return rc;
}

int orch_aws_backup_check_config(const struct cm_json *vault,
				 const char *where, const char *base_dir,
				 struct orch_vault_config *out,
				 struct cm_err *err)
{
	struct awsb_settings s;
	int rc;

	(void)base_dir;
	(void)out;
	rc = read_settings(vault, where, &s, err);
	if (rc == 0)
		settings_release(&s);
	return rc;
}

/* ---- names ------------------------------------------------------------- */

int orch_aws_rp_name(const char *arn, char *out, size_t n)
{
	const char *res = arn, *p;
	size_t len;

	/* arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE */
	for (int i = 0; i < 5 && res; i++) {
		res = strchr(res, ':');
		if (res)
			res++;
	}
	if (!res || strncmp(arn, "arn:", 4) != 0)
		return -EINVAL;
	p = strrchr(res, '/');
	if (p)
		res = p + 1; /* "snapshot/snap-0abc", "table/t/backup/ID" */
	else if ((p = strchr(res, ':')))
		res = p + 1; /* "snapshot:awsbackup:job-1", "recovery-point:ID" */
	len = strlen(res);
	if (!orch_rp_name_valid(res) || len >= n)
		return -EINVAL;
	for (p = res; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL;
	memcpy(out, res, len + 1);
	return 0;
}

/* ---- recovery points from the Backup API -------------------------------- */

static void copy_member(struct cm_json *dst, const char *dkey,
			const struct cm_json *src, const char *skey)
{
	const struct cm_json *j = cm_json_get(src, skey);

	if (j)
		cm_json_add(dst, dkey, cm_json_copy(j));
}

static void add_time(struct cm_json *dst, const char *key,
		     const struct cm_json *src, const char *skey)
{
	time_t t = cm_json_time(cm_json_get(src, skey));
	char buf[32];

	if (!t)
		return;
	cm_time_iso8601(t, buf, sizeof(buf));
	cm_json_add_str(dst, key, buf);
}

/*
 * A recovery point from one item of a listing or a DescribeRecoveryPoint
 * answer (the same member names). 1 when it is not one vaultfs takes
 * (not COMPLETED, another type, no usable name): `why` says which.
 */
static int rp_from_json(struct aws_backup *ab, const struct cm_json *it,
			struct orch_recovery_point *rp, char *why,
			size_t whylen)
{
	const char *arn = cm_json_get_str(it, "RecoveryPointArn");
	const char *status = cm_json_get_str(it, "Status");
	const char *rtype = cm_json_get_str(it, "ResourceType");
	const char *res = cm_json_get_str(it, "ResourceArn");
	const struct awsb_type *t = type_by_aws(rtype);
	char name[ORCH_RP_NAME_MAX + 1];
	double size;

	if (!arn || !res) {
		snprintf(why, whylen, "an entry without %s",
			 arn ? "ResourceArn" : "RecoveryPointArn");
		return 1;
	}
	if (!status || strcmp(status, "COMPLETED") != 0) {
		snprintf(why, whylen, "%s is %s, not COMPLETED", arn,
			 status ? status : "without a status");
		return 1;
	}
	if (!t || vault_type_index(ab, t) < 0) {
		snprintf(why, whylen, "%s: resource type %s is not archived "
			 "from this vault", arn, rtype ? rtype : "(none)");
		return 1;
	}
	if (orch_aws_rp_name(arn, name, sizeof(name))) {
		snprintf(why, whylen, "%s: no usable name in this ARN", arn);
		return 1;
	}
	memset(rp, 0, sizeof(*rp));
	rp->vault = cm_xstrdup(ab->vault->name);
	rp->name = cm_xstrdup(name);
	rp->path = cm_xstrdup(arn);
	rp->type = cm_xstrdup(t->rp_type);
	rp->resource_id = cm_xstrdup(res);
	size = cm_json_num(cm_json_get(it, "BackupSizeInBytes"));
	rp->size = size > 0 ? (uint64_t)size : 0;
	rp->created = cm_json_time(cm_json_get(it, "CreationDate"));
	/* not CompletionDate: a listing and a description of the same point
	 * must agree on (size, mtime), or the engine would take them for
	 * two, and CreationDate is the one every answer carries */
	rp->mtime = rp->created;
	rp->tags = cm_xcalloc(1, sizeof(*rp->tags));

	rp->extra = cm_json_new_object();
	cm_json_add_str(rp->extra, "backupVault", ab->backup_vault);
	cm_json_add_str(rp->extra, "resourceType", t->aws);
	cm_json_add_str(rp->extra, "status", status);
	add_time(rp->extra, "completionDate", it, "CompletionDate");
	copy_member(rp->extra, "resourceName", it, "ResourceName");
	copy_member(rp->extra, "storageClass", it, "StorageClass");
	copy_member(rp->extra, "iamRoleArn", it, "IamRoleArn");
	copy_member(rp->extra, "isEncrypted", it, "IsEncrypted");
	copy_member(rp->extra, "encryptionKeyArn", it, "EncryptionKeyArn");
	copy_member(rp->extra, "lifecycle", it, "Lifecycle");
	copy_member(rp->extra, "createdBy", it, "CreatedBy");
	copy_member(rp->extra, "parentRecoveryPointArn", it,
		    "ParentRecoveryPointArn");
	return 0;
}

static char *vault_path(const struct aws_backup *ab, const char *tail)
{
	char *v = aws_uri_encode(ab->backup_vault);
	char *s = cm_xasprintf("/backup-vaults/%s/recovery-points/%s", v,
			       tail);

	free(v);
	return s;
}

static int by_name(const void *a, const void *b)
{
	const struct orch_recovery_point *x = a, *y = b;

	return strcmp(x->name, y->name);
}

static void list_copy(struct orch_rp_list *dst,
		      const struct orch_rp_list *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->n; i++) {
		struct orch_recovery_point rp;

		orch_rp_copy(&rp, &src->items[i]);
		orch_rp_list_take(dst, &rp);
	}
}

/* Keep a copy of a sorted listing: inspect(name) needs the ARN, and
 * list() may answer from it. */
static void remember(struct aws_backup *ab, const struct orch_rp_list *l)
{
	struct orch_rp_list copy, old;

	list_copy(&copy, l);
	pthread_mutex_lock(&ab->lock);
	old = ab->last;
	ab->last = copy;
	ab->last_ns = cm_now_ns();
	pthread_mutex_unlock(&ab->lock);
	orch_rp_list_release(&old);
}

static char *arn_of_name(struct aws_backup *ab, const char *name)
{
	char *arn = NULL;

	pthread_mutex_lock(&ab->lock);
	for (size_t i = 0; i < ab->last.n && !arn; i++)
		if (strcmp(ab->last.items[i].name, name) == 0)
			arn = cm_xstrdup(ab->last.items[i].path);
	pthread_mutex_unlock(&ab->lock);
	return arn;
}

int awsb_list_cached(struct aws_backup *ab, struct orch_rp_list *out,
		     struct cm_err *err)
{
	uint64_t period = (uint64_t)ab->poll_seconds * 1000000000ull;

	pthread_mutex_lock(&ab->lock);
	if (ab->last_ns && cm_now_ns() - ab->last_ns < period) {
		list_copy(out, &ab->last);
		pthread_mutex_unlock(&ab->lock);
		return 0;
	}
	pthread_mutex_unlock(&ab->lock);
	return awsb_list(ab, out, err);
}

/* Two ARNs of one vault that make the same name: the second is left out
 * (with a warning) rather than ever archive one under the other's name. */
static void drop_same_names(struct orch_rp_list *l)
{
	size_t k = 0;

	for (size_t i = 0; i < l->n; i++) {
		if (k && strcmp(l->items[k - 1].name, l->items[i].name) == 0) {
			cm_warn("recovery point %s is left out: its name "
				"\"%s\" is that of %s too", l->items[i].path,
				l->items[i].name, l->items[k - 1].path);
			orch_rp_release(&l->items[i]);
			continue;
		}
		l->items[k++] = l->items[i];
	}
	l->n = k;
}

int awsb_list(struct aws_backup *ab, struct orch_rp_list *out,
	      struct cm_err *err)
{
	char *token = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (unsigned page = 0;; page++) {
		struct aws_rest_request req = { 0 };
		struct cm_json *ans = NULL;
		const struct cm_json *items;
		char *tail, *path, *tok;

		if (page == PAGES_MAX) {
			rc = cm_err_set(err, EIO, "backup: "
					"ListRecoveryPointsByBackupVault: "
					"more than %d pages", PAGES_MAX);
			break;
		}
		tok = token ? aws_uri_encode(token) : NULL;
		tail = cm_xasprintf("?maxResults=%d%s%s", LIST_PAGE,
				    tok ? "&nextToken=" : "", tok ? tok : "");
		path = vault_path(ab, tail);
		req.op = "ListRecoveryPointsByBackupVault";
		req.method = "GET";
		req.path = path;
		rc = aws_rest(ab->backup, &req, &ans, NULL, err);
		free(tok);
		free(tail);
		free(path);
		if (rc)
			break;
		items = cm_json_get(ans, "RecoveryPoints");
		for (const struct cm_json *it = cm_json_first(items); it;
		     it = cm_json_next(it)) {
			struct orch_recovery_point rp;
			char why[512];

			if (rp_from_json(ab, it, &rp, why, sizeof(why)))
				cm_debug("vault \"%s\": %s", ab->vault->name,
					 why);
			else
				orch_rp_list_take(out, &rp);
		}
		free(token);
		token = cm_json_get_str(ans, "NextToken") &&
				*cm_json_get_str(ans, "NextToken")
			? cm_xstrdup(cm_json_get_str(ans, "NextToken"))
			: NULL;
		cm_json_free(ans);
		if (!token)
			break;
	}
	free(token);
	if (rc) {
		orch_rp_list_release(out);
		return cm_err_prefix(err, "vault \"%s\"", ab->vault->name);
	}
	if (out->n)
		qsort(out->items, out->n, sizeof(*out->items), by_name);
	drop_same_names(out);
	remember(ab, out);
	return 0;
}

/* ListTags of a Backup resource (every page) into tags, an object. */
static int backup_tags(struct aws_backup *ab, const char *arn,
		       struct cm_json *tags, struct cm_err *err)
{
	char *enc = aws_uri_encode(arn), *token = NULL;
	int rc = 0;

	for (;;) {
		struct aws_rest_request req = { 0 };
		struct cm_json *ans = NULL;
		char *tok = token ? aws_uri_encode(token) : NULL;
		char *path = cm_xasprintf("/tags/%s/%s%s", enc,
					  tok ? "?nextToken=" : "",
					  tok ? tok : "");
		const char *next;

		req.op = "ListTags";
		req.method = "GET";
		req.path = path;
		rc = aws_rest(ab->backup, &req, &ans, NULL, err);
		free(tok);
		free(path);
		if (rc)
			break;
		for (const struct cm_json *m =
			     cm_json_first(cm_json_get(ans, "Tags"));
		     m; m = cm_json_next(m))
			if (cm_json_str(m))
				cm_json_add_str(tags, cm_json_key(m),
						cm_json_str(m));
		next = cm_json_get_str(ans, "NextToken");
		free(token);
		token = next && *next ? cm_xstrdup(next) : NULL;
		cm_json_free(ans);
		if (!token)
			break;
	}
	free(token);
	free(enc);
	return rc;
}

static void tags_from_json(struct orch_recovery_point *rp,
			   const struct cm_json *tags)
{
	size_t n = cm_json_size(tags), i = 0;

	free(rp->tags);
	rp->tags = cm_xcalloc(n + 1, sizeof(*rp->tags));
	for (const struct cm_json *m = cm_json_first(tags); m;
	     m = cm_json_next(m), i++) {
		rp->tags[i].key = cm_xstrdup(cm_json_key(m));
		rp->tags[i].value = cm_xstrdup(cm_json_str(m));
	}
	rp->ntags = n;
}

/* EC2 DescribeTags for the volume (or instance) the snapshot is of. */
/* The tags of a Query answer's tag list into `tags`: every `item` child of
 * `list` with a `key` child (EC2 "item"/"key"/"value", RDS "Tag"/"Key"/
 * "Value"); a missing value is "". */
static void xml_tags(const struct cm_xml *list, const char *item,
		     const char *key, const char *value, struct cm_json *tags)
{
	for (struct cm_xml *it = cm_xml_child(list, item); it;
	     it = cm_xml_next(it, item)) {
		const char *k = cm_xml_child_text(it, key);

		if (k)
			cm_json_add_str(tags, k,
					cm_xml_child_text(it, value) ?: "");
	}
}

static int ec2_tags(struct aws_client *c, const char *arn,
		    struct cm_json *tags, struct cm_err *err)
{
	const char *id = strrchr(arn, '/');
	const char *params[] = { "Filter.1.Name", "resource-id",
				 "Filter.1.Value.1", id ? id + 1 : arn };
	struct cm_xml *ans = NULL;
	int rc;

	rc = aws_query(c, "DescribeTags", params, 2, &ans, err);
	if (rc)
		return rc;
	xml_tags(cm_xml_child(ans, "tagSet"), "item", "key", "value", tags);
	cm_xml_free(ans);
	return 0;
}

static int rds_tags(struct aws_client *c, const char *arn,
		    struct cm_json *tags, struct cm_err *err)
{
	const char *params[] = { "ResourceName", arn };
	struct cm_xml *ans = NULL, *list;
	int rc;

	rc = aws_query(c, "ListTagsForResource", params, 1, &ans, err);
	if (rc)
		return rc;
	list = cm_xml_child(cm_xml_child(ans, "ListTagsForResourceResult"),
			    "TagList");
	xml_tags(list, "Tag", "Key", "Value", tags);
	cm_xml_free(ans);
	return 0;
}

static int ddb_tags(struct aws_client *c, const char *arn,
		    struct cm_json *tags, struct cm_err *err)
{
	struct cm_json *body = cm_json_new_object(), *ans = NULL;
	char *token = NULL;
	int rc;

	cm_json_add_str(body, "ResourceArn", arn);
	for (;;) {
		const char *next;

		rc = aws_json(c, "ListTagsOfResource", body, &ans, err);
		if (rc)
			break;
		for (const struct cm_json *it =
			     cm_json_first(cm_json_get(ans, "Tags"));
		     it; it = cm_json_next(it)) {
			const char *k = cm_json_get_str(it, "Key");

			if (k)
				cm_json_add_str(tags, k,
						cm_json_get_str(it, "Value")
							?: "");
		}
		next = cm_json_get_str(ans, "NextToken");
		free(token);
		token = next && *next ? cm_xstrdup(next) : NULL;
		cm_json_free(ans);
		ans = NULL;
		if (!token)
			break;
		cm_json_free(body);
		body = cm_json_new_object();
		cm_json_add_str(body, "ResourceArn", arn);
		cm_json_add_str(body, "NextToken", token);
	}
	free(token);
	cm_json_free(body);
	return rc;
}

/*
 * The resource's own tags into rp->extra: "resourceTags", or, when they
 * cannot be read, "resourceTagsError" (a resource deleted since its backup
 * is common, and its tags are no reason to hold the archive back).
 */
static void add_resource_tags(struct aws_backup *ab,
			      struct orch_recovery_point *rp)
{
	const struct awsb_type *t = type_by_rp(rp->type);
	int i = t ? vault_type_index(ab, t) : -1;
	struct cm_json *tags;
	struct cm_err e;

	if (i < 0 || !ab->tag_clients[i])
		return;
	cm_err_clear(&e);
	tags = cm_json_new_object();
	if (t->resource_tags(ab->tag_clients[i], rp->resource_id, tags, &e)) {
		cm_json_free(tags);
		cm_info("%s: the tags of %s: %s", rp->path, rp->resource_id,
			e.msg);
		cm_json_add_str(rp->extra, "resourceTagsError", e.msg);
		return;
	}
	cm_json_add(rp->extra, "resourceTags", tags);
}

/* DescribeRecoveryPoint's answer (cm_json_free it). */
static int describe_rp(struct aws_backup *ab, const char *arn,
		       struct cm_json **ans, struct cm_err *err)
{
	struct aws_rest_request req = { 0 };
	char *enc = aws_uri_encode(arn), *path = vault_path(ab, enc);
	int rc;

	req.op = "DescribeRecoveryPoint";
	req.method = "GET";
	req.path = path;
	rc = aws_rest(ab->backup, &req, ans, NULL, err);
	free(enc);
	free(path);
	return rc;
}

int awsb_inspect_arn(struct aws_backup *ab, const char *arn,
		     struct orch_recovery_point *out, struct cm_err *err)
{
	struct cm_json *ans = NULL, *tags;
	char why[512];
	int rc;

	rc = describe_rp(ab, arn, &ans, err);
	if (rc)
		return rc;
	rc = rp_from_json(ab, ans, out, why, sizeof(why));
	if (rc) {
		const char *st = cm_json_get_str(ans, "Status");

		rc = cm_err_set(err, st && strcmp(st, "COMPLETED") != 0
					     ? EAGAIN : ENOENT,
				"vault \"%s\": %s", ab->vault->name, why);
		cm_json_free(ans);
		return rc;
	}
	cm_json_free(ans);
	tags = cm_json_new_object();
	rc = backup_tags(ab, arn, tags, err);
	if (rc == 0)
		tags_from_json(out, tags);
	cm_json_free(tags);
	if (rc) {
		orch_rp_release(out);
		return cm_err_prefix(err, "vault \"%s\": %s", ab->vault->name,
				     arn);
	}
	add_resource_tags(ab, out);
	return 0;
}

/* ---- the provider ops -------------------------------------------------- */

static int awsb_scan(struct orch_provider *p, struct orch_rp_list *out,
		     struct cm_err *err)
{
	return awsb_list(awsb_of(p), out, err);
}

static int awsb_list_op(struct orch_provider *p, struct orch_rp_list *out,
			struct cm_err *err)
{
	return awsb_list_cached(awsb_of(p), out, err);
}

static int awsb_inspect(struct orch_provider *p, const char *name,
			struct orch_recovery_point *out, struct cm_err *err)
{
	struct aws_backup *ab = awsb_of(p);
	char *arn = arn_of_name(ab, name);
	int rc;

	if (!arn) {
		/* not in the last listing: a newer one may have it */
		struct orch_rp_list l;

		rc = awsb_list(ab, &l, err);
		if (rc)
			return rc;
		orch_rp_list_release(&l);
		arn = arn_of_name(ab, name);
		if (!arn)
			return cm_err_set(err, ENOENT, "vault \"%s\": no "
					  "recovery point \"%s\"",
					  ab->vault->name, name);
	}
	rc = awsb_inspect_arn(ab, arn, out, err);
	free(arn);
	return rc;
}

/* The restorer of rp's type, as the config picks it; NULL with
 * ORCH_RESTORE_WAITING's message. */
static const struct orch_aws_restorer *
restorer_of(const struct orch_config *cfg,
	    const struct orch_recovery_point *rp, struct cm_err *err)
{
	const struct awsb_type *t = type_by_rp(rp->type);

	if (!t) {
		cm_err_set(err, EINVAL, "%s: type %s is not an AWS Backup "
			   "one", rp->path, rp->type);
		return NULL;
	}
	if (!t->restorer)
		cm_err_set(err, EAGAIN, "no provider for %s yet", t->what);
	else if (t->restorer->pick)
		return t->restorer->pick(cfg);
	return t->restorer;
}

/* What restore() hands the engine as priv: the restorer that made it,
 * and the restorer's own priv, which it sees in its calls as usual. */
struct awsb_restored {
	const struct orch_aws_restorer *r;
	void *priv;
};

static int awsb_restore(struct orch_provider *p,
			const struct orch_recovery_point *rp,
			const struct orch_res_journal *rj,
			struct orch_restored *out, struct cm_err *err)
{
	const struct orch_aws_restorer *r = restorer_of(p->cfg, rp, err);
	struct awsb_restored *w;
	int rc;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!r)
		return type_by_rp(rp->type) ? ORCH_RESTORE_WAITING : -EINVAL;
	if (!r->ops->restore) /* the engine exports it (awsb_export) */
		return cm_err_set(err, EINVAL, "%s is exported, not restored",
				  rp->path);
	rc = r->ops->restore(p, rp, rj, out, err);
	if (rc)
		return rc;
	w = cm_xmalloc(sizeof(*w));
	w->r = r;
	w->priv = out->priv;
	out->priv = w;
	return 0;
}

static int awsb_export(struct orch_provider *p,
		       const struct orch_recovery_point *rp,
		       struct orch_export *x, struct cm_err *err)
{
	const struct awsb_type *t = type_by_rp(rp->type);

	if (!t || !t->restorer || !t->restorer->ops->export)
		return ORCH_EXPORT_NONE;
	return t->restorer->ops->export(p, rp, x, err);
}

/* The image of rp from its type's restorer (the table's: for EBS the
 * direct reader, whatever ebs.method restores with). */
static int awsb_open_image(struct orch_provider *p,
			   const struct orch_recovery_point *rp,
			   struct orch_image **out, struct cm_err *err)
{
	const struct awsb_type *t = type_by_rp(rp->type);

	*out = NULL;
	if (!t || !t->restorer || !t->restorer->ops->open_image)
		return cm_err_set(err, ENOTSUP, "%s: a %s recovery point has "
				  "no image to read", rp->path,
				  t ? t->what : rp->type);
	return t->restorer->ops->open_image(p, rp, out, err);
}

static int awsb_export_verify(struct orch_provider *p,
			      const struct orch_recovery_point *rp,
			      struct orch_export *x, struct cm_err *err)
{
	const struct awsb_type *t = type_by_rp(rp->type);

	if (!t || !t->restorer || !t->restorer->ops->export_verify)
		return cm_err_set(err, EINVAL, "%s: not an export", rp->path);
	return t->restorer->ops->export_verify(p, rp, x, err);
}

static int awsb_check(struct orch_provider *p,
		      const struct orch_recovery_point *rp,
		      const struct orch_restored *r, struct cm_err *err)
{
	const struct awsb_restored *w = r->priv;
	struct orch_restored inner;

	if (!w)
		return cm_err_set(err, EINVAL, "%s: not restored", rp->path);
	if (!w->r->ops->check)
		return 0;
	inner = *r;
	inner.priv = w->priv;
	return w->r->ops->check(p, rp, &inner, err);
}

static void awsb_release(struct orch_provider *p,
			 const struct orch_res_journal *rj,
			 struct orch_restored *r)
{
	struct awsb_restored *w = r->priv;

	if (!w)
		return;
	r->priv = w->priv;
	if (w->r->ops->release)
		w->r->ops->release(p, rj, r);
	free(w);
}

/*
 * DeleteRecoveryPoint answers 200 even when the caller may not delete the
 * snapshot underneath (ec2:DeleteSnapshot and the like): the recovery
 * point then turns EXPIRED instead of going. So it counts as deleted only
 * once it is gone or DELETING.
 */
static int check_deleted(struct aws_backup *ab,
			 const struct orch_recovery_point *rp,
			 struct cm_err *err)
{
	struct cm_json *ans = NULL;
	const char *st;
	struct cm_err e;
	int rc;

	cm_err_clear(&e);
	rc = describe_rp(ab, rp->path, &ans, &e);
	if (rc == -ENOENT)
		goto deleted;
	if (rc)
		return cm_err_set(err, -rc, "%s: deleted, but it could not be "
				  "read back: %s", rp->path, e.msg);
	st = cm_json_get_str(ans, "Status");
	if (st && strcmp(st, "DELETING") == 0) {
		cm_json_free(ans);
		goto deleted;
	}
	rc = cm_err_set(err, EACCES, "%s: DeleteRecoveryPoint was accepted "
			"but the recovery point is %s, not deleted (the role "
			"may lack the service's own delete permission, "
			"docs/aws.md)", rp->path, st ? st : "without a status");
	cm_json_free(ans);
	return rc;
deleted:
	cm_info("deleted recovery point %s from backup vault %s", rp->path,
		ab->backup_vault);
	return 0;
}

static int awsb_delete(struct orch_provider *p,
		       const struct orch_recovery_point *rp,
		       const struct orch_res_journal *rj, struct cm_err *err)
{
	struct aws_backup *ab = awsb_of(p);
	struct aws_rest_request req = { 0 };
	struct orch_recovery_point now;
	char why[256], *enc, *path;
	int rc;

	(void)rj;
	/* the security tag once more, on the tags as they are right now:
	 * the engine's check may be minutes old */
	rc = awsb_inspect_arn(ab, rp->path, &now, err);
	if (rc)
		return rc;
	if (strcmp(now.resource_id, rp->resource_id) != 0) {
		rc = cm_err_set(err, ESTALE, "%s now protects %s, not %s",
				rp->path, now.resource_id, rp->resource_id);
	} else if (!orch_rp_tag_allows_delete(ab->cfg, &now, why,
					      sizeof(why))) {
		rc = cm_err_set(err, EPERM, "%s: %s", rp->path, why);
	}
	orch_rp_release(&now);
	if (rc)
		return rc;
	enc = aws_uri_encode(rp->path);
	path = vault_path(ab, enc);
	req.op = "DeleteRecoveryPoint";
	req.method = "DELETE";
	req.path = path;
	rc = aws_rest(ab->backup, &req, NULL, NULL, err);
	free(enc);
	free(path);
	if (rc)
		return cm_err_prefix(err, "%s", rp->path);
	return check_deleted(ab, rp, err);
}

static int awsb_describe(struct orch_provider *p,
			 const struct orch_recovery_point *rp,
			 struct cm_json *out, struct cm_err *err)
{
	const struct awsb_type *t = type_by_rp(rp->type);
	char why[64];

	(void)p;
	(void)err;
	orch_rp_describe(rp, out);
	if (t && !t->restorer) {
		snprintf(why, sizeof(why), "no provider for %s yet", t->what);
		cm_json_add_str(out, "waiting", why);
	}
	return 0;
}

/* r's kinds include `kind`: r releases it (0 / -errno in *rc). */
static bool stale_of(const struct orch_aws_restorer *r, struct orch_provider *p,
		     const struct orch_resource *res, int *rc,
		     struct cm_err *err)
{
	if (!r || !r->kinds || !r->ops->release_stale)
		return false;
	for (const char *const *k = r->kinds; *k; k++)
		if (strcmp(*k, res->kind) == 0) {
			*rc = r->ops->release_stale(p, res, err);
			return true;
		}
	return false;
}

static int awsb_release_stale(struct orch_provider *p,
			      const struct orch_resource *res,
			      struct cm_err *err)
{
	int rc;

	for (size_t i = 0; i < AWSB_NTYPES; i++) {
		const struct orch_aws_restorer *r = types[i].restorer;

		if (stale_of(r, p, res, &rc, err))
			return rc;
		for (size_t m = 0; r && r->methods && r->methods[m]; m++)
			if (stale_of(r->methods[m], p, res, &rc, err))
				return rc;
	}
	return cm_err_set(err, EINVAL, "vault \"%s\": no restorer releases "
			  "a resource of kind \"%s\"", p->vault->name,
			  res->kind);
}

static void awsb_free(struct orch_provider *p)
{
	struct aws_backup *ab = awsb_of(p);

	if (!ab)
		return;
	aws_client_free(ab->backup);
	for (size_t i = 0; i < AWSB_NTYPES; i++)
		aws_client_free(ab->tag_clients[i]);
	aws_creds_provider_free(ab->creds);
	orch_rp_list_release(&ab->last);
	pthread_mutex_destroy(&ab->lock);
	free(ab->backup_vault);
	free(ab->region);
	free(ab->queue_url);
	free(ab);
	p->priv = NULL;
}

static const struct orch_provider_ops awsb_ops = {
	.name = "aws-backup",
	.scan = awsb_scan,
	.list = awsb_list_op,
	.inspect = awsb_inspect,
	.restore = awsb_restore,
	.check = awsb_check,
	.release = awsb_release,
	.export = awsb_export,
	.export_verify = awsb_export_verify,
	.open_image = awsb_open_image,
	.delete_snapshot = awsb_delete,
	.describe = awsb_describe,
	.release_stale = awsb_release_stale,
	.watch_new = awsb_watch_new,
	.watch_fd = awsb_watch_fd,
	.watch_timeout = awsb_watch_timeout,
	.watch_poll = awsb_watch_poll,
	.watch_free = awsb_watch_free,
	.free = awsb_free,
};

static struct aws_client *client(struct aws_backup *ab,
				 const struct aws_service *svc,
				 struct cm_err *err)
{
	struct aws_client_opts o = { 0 };
	struct aws_client *c;

	o.region = ab->region;
	o.creds = ab->creds;
	o.endpoints = ab->cfg->endpoints;
	o.nendpoints = ab->cfg->nendpoints;
	c = aws_client_new(svc, &o, err);
	if (!c)
		cm_err_prefix(err, "vault \"%s\"", ab->vault->name);
	return c;
}

int orch_provider_aws_backup_new(const struct orch_config *cfg,
			const struct orch_vault_config *vault,
			struct orch_provider **out, struct cm_err *err)
{
	struct orch_provider *p = cm_xcalloc(1, sizeof(*p));
	struct aws_backup *ab = cm_xcalloc(1, sizeof(*ab));
	struct awsb_settings s;
	char where[96];
	int rc;

	snprintf(where, sizeof(where), "vault \"%s\"", vault->name);
	p->ops = &awsb_ops;
	p->cfg = cfg;
	p->vault = vault;
	p->priv = ab;
	ab->cfg = cfg;
	ab->vault = vault;
	pthread_mutex_init(&ab->lock, NULL);
	rc = read_settings(vault->raw, where, &s, err);
	if (rc)
		goto fail;
	ab->backup_vault = s.backup_vault;
	/* the vault's region, else the configuration's */
	ab->region = s.region ? s.region
			      : cfg->region ? cm_xstrdup(cfg->region) : NULL;
	ab->queue_url = s.queue_url;
	ab->poll_seconds = s.poll_seconds;
	/* types named on purpose that their services export into S3 need an
	 * S3 destination (with the default, all four, their jobs fail
	 * saying so: an EBS-only vault into a local store stays valid) */
	for (size_t i = 0; cm_json_get(vault->raw, "resourceTypes") &&
			   !cfg->bucket && i < s.ntypes; i++) {
		if (s.types[i]->restorer &&
		    s.types[i]->restorer->ops->export) {
			/* the strings of s are ab's now: awsb_free's */
			rc = cm_err_set(err, EINVAL, "config: %s: "
					"resourceTypes lists %s, whose "
					"recovery points their service "
					"exports into S3: the destination "
					"must be s3://BUCKET[/PREFIX], not a "
					"local store", where, s.types[i]->aws);
			goto fail;
		}
	}
	ab->ntypes = s.ntypes;
	for (size_t i = 0; i < s.ntypes; i++) {
		ab->types[i] = s.types[i];
		ab->type_names[i] = s.types[i]->aws;
	}
	/* the clients make no request until used: no network here */
	ab->creds = aws_creds_provider_new(NULL);
	ab->backup = client(ab, &aws_backup, err);
	if (!ab->backup)
		goto fail_rc;
	for (size_t i = 0; i < ab->ntypes; i++) {
		ab->tag_clients[i] = client(ab, ab->types[i]->tag_service,
					    err);
		if (!ab->tag_clients[i])
			goto fail_rc;
	}
	*out = p;
	return 0;
fail_rc:
	rc = -(err && err->code ? err->code : EINVAL);
fail:
	awsb_free(p);
	free(p);
	return rc;
}
