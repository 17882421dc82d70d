/*
 * view_uploads.c - the crash record of the archive view's writers.
 *
 * A file written into archive/ may leave something behind if the mount
 * dies mid-way (kill -9, a power cut): a multipart upload in progress (S3
 * keeps its parts, and bills them, until aborted) or a temporary file in a
 * local store. Before a writer makes such a thing, it saves a record
 * here; it replaces it when it learns more (the upload id) and removes it
 * once the object is complete or the upload aborted.
 *
 *   STATEDIR/view/uploads/<started>-<pid>-<n>.json
 *     { "key": "...", "bucket": "..." | absent, "uploadId": "..." | absent,
 *       "tmp": "/store/dir/.vaultfs-upload-..." | absent }
 *
 * <started> is the Unix time the record was made: an upload recorded
 * without its id (it was about to be created) is any upload of the key
 * initiated since then. Records are written like the journal's (temporary
 * file, fsync, rename, fsync of the directory), and only while this
 * process holds the stateDir lock (orch_start took it), so view_recover()
 * at the next mount sees exactly what a dead one left.
 *
 * Threads: any writer's thread; names come from ->upload_seq under
 * ->uploads_lock, files are the writer's own.
 */
#include "view_int.h"

#include "json.h"
#include "log.h"
#include "mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdir_p(const char *path, struct cm_err *err)
{
	char *p = cm_xstrdup(path);
	int rc = 0;

	for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
		if (s)
			*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
			rc = cm_err_set(err, errno, "%s: %s", p,
					strerror(errno));
			break;
		}
		if (!s)
			break;
		*s = '/';
	}
	free(p);
	return rc;
}

int view_uploads_init(struct view *v, struct cm_err *err)
{
	v->uploads_dir = cm_xasprintf("%s/view/uploads", v->cfg->state_dir);
	return mkdir_p(v->uploads_dir, err);
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int write_atomic(const char *dir, const char *name, const char *text,
			struct cm_err *err)
{
	char *path = cm_xasprintf("%s/%s", dir, name);
	char *tmp = cm_xasprintf("%s.tmp", path);
	size_t len = strlen(text), done = 0;
	int fd, rc = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = cm_err_set(err, errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (done < len) {
		ssize_t w = write(fd, text + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = cm_err_set(err, errno, "%s: %s", tmp,
					strerror(errno));
			break;
		}
		done += (size_t)w;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = cm_err_set(err, errno, "%s: fsync: %s", tmp,
				strerror(errno));
	close(fd);
	if (rc == 0 && rename(tmp, path) < 0)
		rc = cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (rc == 0 && (rc = fsync_dir(dir)) < 0)
		cm_err_set(err, -rc, "%s: fsync: %s", dir, strerror(-rc));
	if (rc)
		unlink(tmp);
out:
	free(tmp);
	free(path);
	return rc;
}

int view_upload_save(struct view *v, char id[VIEW_UPLOAD_ID_SIZE],
		     const char *key, const char *upload_id,
		     const char *tmp_path, struct cm_err *err)
{
	struct cm_json *o = cm_json_new_object();
	char name[VIEW_UPLOAD_ID_SIZE + 8];
	char *text;
	int rc;

	if (!id[0]) {
		pthread_mutex_lock(&v->uploads_lock);
		snprintf(id, VIEW_UPLOAD_ID_SIZE, "%lld-%d-%llu",
			 (long long)time(NULL), (int)getpid(),
			 (unsigned long long)++v->upload_seq);
		pthread_mutex_unlock(&v->uploads_lock);
	}
	cm_json_add_str(o, "key", key);
	if (v->dest->bucket)
		cm_json_add_str(o, "bucket", v->dest->bucket);
	if (upload_id)
		cm_json_add_str(o, "uploadId", upload_id);
	if (tmp_path)
		cm_json_add_str(o, "tmp", tmp_path);
	text = cm_json_print(o);
	cm_json_free(o);
	snprintf(name, sizeof(name), "%s.json", id);
	rc = write_atomic(v->uploads_dir, name, text, err);
	free(text);
	if (rc)
		cm_err_prefix(err, "view: recording an upload");
	return rc;
}

void view_upload_forget(struct view *v, char id[VIEW_UPLOAD_ID_SIZE])
{
	char *path;

	if (!id[0])
		return;
	path = cm_xasprintf("%s/%s.json", v->uploads_dir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		cm_warn("view: %s: %s", path, strerror(errno));
	free(path);
	id[0] = '\0';
}

/* Undo one record; 0 when nothing is left of it. */
static int recover_one(struct view *v, const char *name, struct cm_err *err)
{
	char *path = cm_xasprintf("%s/%s", v->uploads_dir, name);
	struct cm_json *j = NULL;
	const char *key, *bucket, *upload_id, *tmp;
	time_t since = (time_t)strtoll(name, NULL, 10);
	int rc;

	rc = cm_json_parse_file(path, &j, err);
	if (rc)
		goto out;
	key = cm_json_get_str(j, "key");
	bucket = cm_json_get_str(j, "bucket");
	upload_id = cm_json_get_str(j, "uploadId");
	tmp = cm_json_get_str(j, "tmp");
	if (tmp && unlink(tmp) < 0 && errno != ENOENT) {
		rc = cm_err_set(err, errno, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (key && bucket) {
		if (!v->dest->bucket) {
			cm_warn("view: %s: an upload into s3://%s/%s, but "
				"the destination is local now: left alone",
				path, bucket, key);
		} else {
			rc = v->store->ops->cleanup(v->store, bucket, key,
						    upload_id, since, err);
			if (rc)
				goto out;
			cm_warn("view: aborted the upload of s3://%s/%s that "
				"an earlier mount left%s%s",
				bucket, key, upload_id ? ": " : "",
				upload_id ? upload_id : "");
		}
	}
out:
	if (rc == 0 && unlink(path) < 0 && errno != ENOENT)
		rc = cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	cm_json_free(j);
	free(path);
	return rc;
}

int view_recover(struct view *v, size_t *n, struct cm_err *err)
{
	DIR *d = opendir(v->uploads_dir);
	struct dirent *de;
	int rc = 0;

	if (n)
		*n = 0;
	if (!d)
		return cm_err_set(err, errno, "%s: %s", v->uploads_dir,
				  strerror(errno));
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		struct cm_err e;

		if (len > 4 && !strcmp(de->d_name + len - 4, ".tmp")) {
			/* a record being written when we died: its upload
			 * was not started yet */
			unlinkat(dirfd(d), de->d_name, 0);
			continue;
		}
		if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		cm_err_clear(&e);
		if (recover_one(v, de->d_name, &e)) {
			cm_warn("view: recovering %s: %s", de->d_name, e.msg);
			if (!rc)
				rc = cm_err_set(err, e.code ? e.code : EIO,
						"%s", e.msg);
			continue;
		}
		if (n)
			(*n)++;
	}
	closedir(d);
	return rc;
}
