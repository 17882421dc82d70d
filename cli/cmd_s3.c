/*
 * cmd_s3.c - `vaultfs s3 cp|ls|rm|mb`: S3 object commands, a thin shell
 * around core/s3.h and core/s3_upload.h.
 *
 *   cp SRC DEST   upload (a file or `-` to s3://bucket/key) through the
 *                 multipart uploader (a regular file read in place by its
 *                 workers, anything else streamed), or download
 *                 (s3://bucket/key to a file or `-`) through GetObject
 *   ls [s3://bucket[/prefix]]   listing in the shape of `aws s3 ls`
 *   rm s3://bucket/key          DeleteObject
 *   mb s3://bucket              CreateBucket
 *
 * Every subcommand parses the same option table with getopt_long: the S3
 * options shared with other commands (s3opts.h) plus --recursive, --quiet
 * and --help; options that mean nothing to a subcommand are accepted and
 * ignored. Failures print as "vaultfs: s3: MESSAGE" and exit 1; usage
 * errors exit 2.
 *
 * A download into a regular file goes to a temporary file next to it,
 * renamed into place only once every byte arrived; a download into
 * anything else (a device, a pipe, stdout) writes straight to it.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP raise one flag
 * (vf_cancel_on_signals), which every request of the command watches
 * through the HTTP layer's cancel (a transfer, a wait for an answer, a
 * backoff all end within about a second). An upload carries it in its
 * options rather than on the client, so that CreateMultipartUpload and
 * CompleteMultipartUpload, whose answers say what exists, are never cut
 * short; the upload then aborts its multipart upload. The command ends
 * with "vaultfs: s3 CMD: interrupted" (": upload aborted" when a multipart
 * upload had been created) and 128 + the signal (130 for SIGINT). Nothing
 * is left half done: no multipart upload stays open, a download's
 * temporary file is removed, and a DeleteObject either happened or not.
 */
#include "commands.h"
#include "usage.h"
#include "progress.h"
#include "s3opts.h"

#include "err.h"
#include "mem.h"
#include "s3.h"
#include "s3_upload.h"
#include "url.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* the signal that interrupted the command, 0 while none (see the top) */
static atomic_int cancel_flag;

struct s3_cli {
	struct vf_s3_cli s3; /* client and upload options (s3opts.h) */
	bool quiet;
	bool recursive;
};

enum {
	OPT_RECURSIVE = 256,
};

static const struct option long_opts[] = {
    VF_S3_LONG_OPTIONS,
    {"recursive", no_argument, NULL, OPT_RECURSIVE},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char common_help[] =
    "  -q, --quiet               no progress bar and no status lines\n"
    "  -h, --help                this help\n";

static void usage_cp(FILE *f)
{
	fprintf(
	    f,
	    "usage: vaultfs s3 cp [OPTIONS] SRC DEST\n\n"
	    "Copy between a local file (or - for stdin/stdout) and an S3 "
	    "object.\nSRC and DEST are each a path, -, or s3://bucket/key; "
	    "exactly one is s3://.\nA DEST key ending in / takes the "
	    "source's file name. A regular file is read in\nplace, its size "
	    "sizing the parts; --expected-size is for streams.\n\n%s\n%s%s",
	    vf_s3_upload_help, vf_s3_client_help, common_help);
	vf_help_end(f, "s3 cp");
}

static void usage_ls(FILE *f)
{
	fprintf(f,
		"usage: vaultfs s3 ls [OPTIONS] [s3://bucket[/prefix]]\n\n"
		"List buckets, or the objects and common prefixes (PRE) under "
		"a prefix,\nin the shape of `aws s3 ls`.\n\n"
		"  --recursive               every key under the prefix, no "
		"PRE grouping\n\n%s%s",
		vf_s3_client_help, common_help);
	vf_help_end(f, "s3 ls");
}

static void usage_rm(FILE *f)
{
	fprintf(f,
		"usage: vaultfs s3 rm [OPTIONS] s3://bucket/key\n\n"
		"Delete one object.\n\n%s%s",
		vf_s3_client_help, common_help);
	vf_help_end(f, "s3 rm");
}

static void usage_mb(FILE *f)
{
	fprintf(f,
		"usage: vaultfs s3 mb [OPTIONS] s3://bucket\n\n"
		"Create a bucket (in the client's region).\n\n%s%s",
		vf_s3_client_help, common_help);
	vf_help_end(f, "s3 mb");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vaultfs s3 COMMAND [OPTIONS] ARGS...\n\n"
		   "commands:\n"
		   "  cp SRC DEST                   upload or download one "
		   "object\n"
		   "  ls [s3://bucket[/prefix]]     list buckets or objects\n"
		   "  rm s3://bucket/key            delete an object\n"
		   "  mb s3://bucket                create a bucket\n\n"
		   "Run 'vaultfs s3 COMMAND --help' for its options.\n");
	vf_help_end(f, "s3");
}

static int fail(const char *msg)
{
	fprintf(stderr, "vaultfs: s3: %s\n", msg);
	return 1;
}

static int failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int failf(const char *fmt, ...)
{
	char msg[CM_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fail(msg);
}

/* Parse options; positional arguments end up in argv[*first..argc).
 * Returns -1 to go on, else the exit status. */
static int parse_opts(int argc, char **argv, struct s3_cli *o,
		      void (*help)(FILE *), int *first)
{
	char cmd[16];
	int c;

	memset(o, 0, sizeof(*o));
	snprintf(cmd, sizeof(cmd), "s3 %s", argv[0]);
	optind = 1;
	while ((c = vf_getopt(cmd, argc, argv, "qh", long_opts)) != -1) {
		int r = c == VF_OPT_BAD ? -1 : vf_s3_opt("s3", c, optarg,
							 &o->s3);

		if (r < 0)
			return 2;
		if (r > 0)
			continue;
		switch (c) {
		case OPT_RECURSIVE:
			o->recursive = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			help(stdout);
			return 0;
		default:
			return VF_EXIT_USAGE;
		}
	}
	*first = optind;
	return -1;
}

/* The command's client, its requests stopped by a signal (see the top);
 * for an upload (requests_cancel false) only the upload's parts are. */
static struct s3_client *client_or_fail(const struct s3_cli *o,
					bool requests_cancel)
{
	struct cm_err err;
	struct s3_client *c;

	cm_err_clear(&err);
	vf_cancel_on_signals(&cancel_flag);
	c = s3_client_new(&o->s3.client, &err);
	if (!c)
		fail(err.msg);
	else if (requests_cancel)
		s3_client_set_cancel(c, &cancel_flag);
	return c;
}

/* After a failure: the exit status, and the message. */
static int fail_or_interrupted(const char *cmd, const char *msg,
			       const char *what)
{
	int sig = atomic_load(&cancel_flag);

	if (sig)
		return vf_cancelled(cmd, sig, what);
	return fail(msg);
}

static bool is_s3(const char *s)
{
	return cm_url_kind(s) == CM_URL_S3;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* ---- cp: upload --------------------------------------------------------- */

static uint64_t upload_done(void *ctx)
{
	return s3_upload_bytes_done(ctx);
}

/* Wait until fd has bytes (or its end), looking at the cancel flag at
 * least once a second: a signal landing just before a read would not
 * interrupt it, and a quiet pipe may stay quiet for hours. */
static int wait_readable(int fd, const char *src, struct cm_err *err)
{
	struct pollfd pfd = {.fd = fd, .events = POLLIN};

	for (;;) {
		int n;

		if (atomic_load(&cancel_flag))
			return cm_err_set(err, ECANCELED, "%s: interrupted",
					  src);
		n = poll(&pfd, 1, 1000);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return 0; /* not pollable: the read will tell */
	}
}

/* A pipe (or stdin, whatever it is): read into the part buffers. */
static int upload_stream(struct s3_upload *u, int fd, const char *src,
			 struct s3_upload_result *res, struct cm_err *err)
{
	for (;;) {
		void *p;
		size_t room;
		ssize_t n;
		int rc = s3_upload_reserve(u, &p, &room, err);

		if (rc)
			return rc;
		do {
			rc = wait_readable(fd, src, err);
			if (rc) {
				s3_upload_abort(u);
				return rc;
			}
			n = read(fd, p, room);
		} while (n < 0 && errno == EINTR);
		if (n < 0) {
			rc = cm_err_set(err, errno, "%s: %s", src,
					strerror(errno));
			s3_upload_abort(u);
			return rc;
		}
		if (n == 0)
			break;
		rc = s3_upload_commit(u, (size_t)n, err);
		if (rc)
			return rc;
	}
	return s3_upload_finish(u, res, err);
}

static int upload(struct s3_client *c, const struct s3_cli *o, const char *src,
		  const char *bucket, const char *key)
{
	struct s3_upload_opts uo = {
	    .expected_size = o->s3.expected_size,
	    .part_size = o->s3.part_size,
	    .concurrency = o->s3.concurrency,
	    .cancel = &cancel_flag,
	};
	struct s3_upload_result res;
	struct vf_progress *bar = NULL;
	struct s3_upload *u = NULL;
	struct cm_err err;
	struct stat st;
	bool from_stdin = !strcmp(src, "-"), whole_file = false;
	int fd, rc = 1;

	cm_err_clear(&err);
	fd = from_stdin ? STDIN_FILENO : open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return failf("%s: %s", src, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		/* a named file is read in place by the workers; stdin may
		 * start anywhere in its file, so it streams */
		whole_file = !from_stdin;
		if (!uo.expected_size || whole_file)
			uo.expected_size = (uint64_t)st.st_size;
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	u = s3_upload_new(c, bucket, key, &uo, &err);
	if (!u) {
		fail(err.msg);
		goto out;
	}
	bar = vf_progress_start(from_stdin ? key : base_name(src),
				uo.expected_size, upload_done, u, o->quiet);
	if (whole_file ? s3_upload_file(u, fd, src, &res, &err)
		       : upload_stream(u, fd, src, &res, &err)) {
		vf_progress_stop(bar, false);
		bar = NULL;
		/* aborted on the way out of the failure; named only when a
		 * multipart upload had been created */
		rc = fail_or_interrupted("s3 cp", err.msg,
					 s3_upload_id(u) ? "upload aborted"
							 : NULL);
		goto out;
	}
	vf_progress_stop(bar, true);
	bar = NULL;
	if (!o->quiet)
		fprintf(stderr, "upload: %s to s3://%s/%s\n", src, bucket, key);
	rc = 0;
out:
	vf_progress_stop(bar, rc == 0);
	s3_upload_free(u);
	if (fd != STDIN_FILENO)
		close(fd);
	return rc;
}

/* ---- cp: download ------------------------------------------------------ */

struct download {
	int fd;
	const char *path; /* for messages */
	uint64_t bytes;	  /* atomic: read by the progress thread */
	bool closed;	  /* a pipe's reader left (EPIPE) */
};

static int download_sink(void *ctx, const void *p, size_t n, struct cm_err *err)
{
	struct download *d = ctx;
	const char *s = p;

	while (n) {
		ssize_t w = write(d->fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EPIPE)
			d->closed = true;
		if (w < 0)
			return cm_err_set(err, errno, "%s: %s", d->path,
					  strerror(errno));
		s += w;
		n -= (size_t)w;
		__atomic_add_fetch(&d->bytes, (uint64_t)w, __ATOMIC_RELAXED);
	}
	return 0;
}

static uint64_t download_done(void *ctx)
{
	struct download *d = ctx;

	return __atomic_load_n(&d->bytes, __ATOMIC_RELAXED);
}

static int download(struct s3_client *c, const struct s3_cli *o,
		    const char *bucket, const char *key, const char *dest)
{
	struct download d = {.fd = -1, .path = dest};
	struct vf_progress *bar = NULL;
	struct s3_object_info info;
	char *target = NULL, *tmp = NULL;
	struct cm_err err;
	struct stat st;
	bool to_stdout = !strcmp(dest, "-");
	int rc = 1;

	cm_err_clear(&err);
	if (!*key || key[strlen(key) - 1] == '/')
		return failf("s3://%s/%s: not an object key", bucket, key);
	if (to_stdout) {
		d.fd = STDOUT_FILENO;
		d.path = "stdout";
	} else {
		size_t len = strlen(dest);

		if ((len && dest[len - 1] == '/') ||
		    (stat(dest, &st) == 0 && S_ISDIR(st.st_mode)))
			target = cm_xasprintf("%s%s%s", dest,
					      dest[len - 1] == '/' ? "" : "/",
					      base_name(key));
		else
			target = cm_xstrdup(dest);
		d.path = target;
		if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
			/* a device or a pipe: write straight into it */
			d.fd = open(target, O_WRONLY | O_CLOEXEC);
		} else {
			char *copy = cm_xstrdup(target);

			tmp = cm_xasprintf("%s/.%s.vaultfs-XXXXXX",
					   dirname(copy), base_name(target));
			free(copy);
			d.fd = mkstemp(tmp);
			if (d.fd >= 0) {
				mode_t um = umask(0);

				umask(um);
				(void)fchmod(d.fd, 0666 & ~um);
			}
		}
		if (d.fd < 0) {
			failf("%s: %s", tmp ? tmp : target, strerror(errno));
			free(tmp);
			tmp = NULL;
			goto out;
		}
	}
	if (!o->quiet && isatty(STDERR_FILENO)) {
		/* the size makes the bar useful; only worth it on a tty */
		uint64_t total = 0;

		if (s3_head_object(c, bucket, key, &info, NULL) == 0)
			total = info.size;
		bar = vf_progress_start(base_name(key), total, download_done,
					&d, o->quiet);
	}
	if (s3_get_object(c, bucket, key, NULL, download_sink, &d, &info,
			  &err)) {
		vf_progress_stop(bar, false);
		bar = NULL;
		if (d.closed) {
			/* `vaultfs s3 cp s3://b/k - | head`: the reader had
			 * what it wanted. Quiet, with the status a writer
			 * killed by SIGPIPE has, as cat would end. */
			rc = 128 + SIGPIPE;
			goto out;
		}
		/* the temporary file goes at out; into anything else, the
		 * bytes that arrived stay there */
		rc = fail_or_interrupted("s3 cp", err.msg,
					 tmp ? "partial download removed"
					     : NULL);
		goto out;
	}
	if (tmp && (fsync(d.fd) != 0 || rename(tmp, target) != 0)) {
		failf("%s: %s", target, strerror(errno));
		goto out;
	}
	if (tmp) {
		free(tmp);
		tmp = NULL;
	}
	rc = 0;
	vf_progress_stop(bar, true);
	bar = NULL;
	if (!o->quiet && !to_stdout)
		fprintf(stderr, "download: s3://%s/%s to %s\n", bucket, key,
			target);
out:
	vf_progress_stop(bar, false);
	if (d.fd >= 0 && !to_stdout && close(d.fd) != 0 && rc == 0)
		rc = failf("%s: %s", d.path, strerror(errno));
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(target);
	return rc;
}

static int cmd_cp(int argc, char **argv)
{
	struct s3_client *c = NULL;
	char *bucket = NULL, *key = NULL;
	const char *src, *dst;
	struct cm_err err;
	struct s3_cli o;
	int first, rc;

	rc = parse_opts(argc, argv, &o, usage_cp, &first);
	if (rc >= 0)
		return rc;
	rc = vf_operands("s3 cp", argc, argv, first, "SRC DEST");
	if (rc)
		return rc;
	src = argv[first];
	dst = argv[first + 1];
	if (vf_check_place("s3 cp", src) || vf_check_place("s3 cp", dst))
		return VF_EXIT_USAGE;
	if (is_s3(src) == is_s3(dst))
		return vf_usage_error("s3 cp", is_s3(src) ?
				      "copies between two s3:// URLs are not "
				      "supported" : "one of SRC and DEST must "
				      "be s3://");
	cm_err_clear(&err);
	if (s3_parse_url(is_s3(src) ? src : dst, &bucket, &key, &err)) {
		rc = fail(err.msg);
		goto out;
	}
	c = client_or_fail(&o, is_s3(src));
	if (!c) {
		rc = 1;
		goto out;
	}
	if (is_s3(src)) {
		rc = download(c, &o, bucket, key, dst);
	} else {
		if (!*key || key[strlen(key) - 1] == '/') {
			char *k;

			if (!strcmp(src, "-")) {
				rc = fail("DEST needs a key when reading "
					  "stdin");
				goto out;
			}
			k = cm_xasprintf("%s%s", key, base_name(src));
			free(key);
			key = k;
		}
		rc = upload(c, &o, src, bucket, key);
	}
out:
	s3_client_free(c);
	free(bucket);
	free(key);
	return rc;
}

/* ---- ls ----------------------------------------------------------------- */

struct ls_state {
	size_t strip; /* bytes of each key not shown */
	bool any;
};

static void format_time(time_t t, char *out, size_t n)
{
	struct tm tm;

	if (!t || !localtime_r(&t, &tm)) {
		snprintf(out, n, "%19s", "");
		return;
	}
	strftime(out, n, "%Y-%m-%d %H:%M:%S", &tm);
}

static int ls_entry(void *ctx, const struct s3_list_entry *e)
{
	struct ls_state *st = ctx;
	const char *name =
	    strlen(e->key) >= st->strip ? e->key + st->strip : e->key;
	char when[32];

	st->any = true;
	if (e->is_prefix) {
		printf("%26s PRE %s\n", "", name);
	} else {
		format_time(e->last_modified, when, sizeof(when));
		printf("%s %10" PRIu64 " %s\n", when, e->size, name);
	}
	return 0;
}

static int ls_bucket(void *ctx, const struct s3_bucket_entry *e)
{
	char when[32];

	(void)ctx;
	format_time(e->created, when, sizeof(when));
	printf("%s %s\n", when, e->name);
	return 0;
}

static int cmd_ls(int argc, char **argv)
{
	struct s3_list_opts lo = {0};
	struct s3_client *c = NULL;
	char *bucket = NULL, *key = NULL;
	struct ls_state st = {0};
	struct cm_err err;
	struct s3_cli o;
	int first, rc;

	rc = parse_opts(argc, argv, &o, usage_ls, &first);
	if (rc >= 0)
		return rc;
	rc = vf_operands("s3 ls", argc, argv, first, "[URL]");
	if (rc)
		return rc;
	if (argc - first == 1 && vf_check_place("s3 ls", argv[first]))
		return VF_EXIT_USAGE;
	cm_err_clear(&err);
	if (argc - first == 1 &&
	    s3_parse_url(argv[first], &bucket, &key, &err)) {
		rc = fail(err.msg);
		goto out;
	}
	c = client_or_fail(&o, true);
	if (!c) {
		rc = 1;
		goto out;
	}
	if (!bucket) {
		rc = s3_list_buckets(c, ls_bucket, NULL, &err)
			 ? fail_or_interrupted("s3 ls", err.msg, NULL)
			 : 0;
		goto out;
	}
	lo.prefix = key;
	if (!o.recursive) {
		const char *slash = strrchr(key, '/');

		lo.delimiter = "/";
		st.strip = slash ? (size_t)(slash - key) + 1 : 0;
	}
	rc = s3_list_objects(c, bucket, &lo, ls_entry, &st, &err)
		 ? fail_or_interrupted("s3 ls", err.msg, NULL)
		 : 0;
	if (fflush(stdout) != 0 && rc == 0)
		rc = failf("stdout: %s", strerror(errno));
out:
	s3_client_free(c);
	free(bucket);
	free(key);
	return rc;
}

/* ---- rm and mb ------------------------------------------------------------
 */

/* rm and mb: one s3:// URL, one request. want_key: the URL must name an
 * object (rm), or must not (mb). */
struct one_url_cmd {
	void (*usage)(FILE *f);
	const char *name; /* "s3 rm" */
	bool want_key;
	int (*op)(struct s3_client *c, const char *bucket, const char *key,
		  struct cm_err *err);
	const char *verb; /* of the success line, as awscli prints it */
};

static int op_rm(struct s3_client *c, const char *bucket, const char *key,
		 struct cm_err *err)
{
	return s3_delete_object(c, bucket, key, err);
}

static int op_mb(struct s3_client *c, const char *bucket, const char *key,
		 struct cm_err *err)
{
	(void)key;
	return s3_create_bucket(c, bucket, err);
}

static int run_one_url(const struct one_url_cmd *cmd, int argc, char **argv)
{
	struct s3_client *c = NULL;
	char *bucket = NULL, *key = NULL;
	struct cm_err err;
	struct s3_cli o;
	int first, rc;

	rc = parse_opts(argc, argv, &o, cmd->usage, &first);
	if (rc >= 0)
		return rc;
	rc = vf_operands(cmd->name, argc, argv, first, "URL");
	if (rc)
		return rc;
	if (vf_check_place(cmd->name, argv[first]))
		return VF_EXIT_USAGE;
	cm_err_clear(&err);
	if (s3_parse_url(argv[first], &bucket, &key, &err)) {
		rc = fail(err.msg);
		goto out;
	}
	if (cmd->want_key != (*key != '\0')) {
		rc = failf(cmd->want_key ? "%s: no key"
					 : "%s: a bucket takes no key",
			   argv[first]);
		goto out;
	}
	c = client_or_fail(&o, true);
	if (!c) {
		rc = 1;
		goto out;
	}
	rc = cmd->op(c, bucket, key, &err)
		 ? fail_or_interrupted(cmd->name, err.msg, NULL)
		 : 0;
	if (!rc && !o.quiet && cmd->want_key)
		printf("%s: s3://%s/%s\n", cmd->verb, bucket, key);
	else if (!rc && !o.quiet)
		printf("%s: %s\n", cmd->verb, bucket);
out:
	s3_client_free(c);
	free(bucket);
	free(key);
	return rc;
}

static int cmd_rm(int argc, char **argv)
{
	static const struct one_url_cmd rm = {usage_rm, "s3 rm", true, op_rm,
					      "delete"};

	return run_one_url(&rm, argc, argv);
}

static int cmd_mb(int argc, char **argv)
{
	static const struct one_url_cmd mb = {usage_mb, "s3 mb", false, op_mb,
					      "make_bucket"};

	return run_one_url(&mb, argc, argv);
}

int cmd_s3(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(int argc, char **argv);
	} subs[] = {
	    {"cp", cmd_cp},
	    {"ls", cmd_ls},
	    {"rm", cmd_rm},
	    {"mb", cmd_mb},
	};

	if (argc < 2)
		return vf_usage_error("s3", "missing the command (cp, ls, rm "
				      "or mb)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(argv[1], subs[i].name))
			return subs[i].run(argc - 1, argv + 1);
	return vf_usage_error("s3", "unknown command '%s' (cp, ls, rm or mb)",
			      argv[1]);
}
