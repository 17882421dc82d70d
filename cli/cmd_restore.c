/*
 * cmd_restore.c - `vaultfs restore SRC DEST`: an archive back on disk.
 * archiver/restore.h's arc_restore() does the work; this file finds the
 * archive (a URL, a job's folder, or a job of the journal by id or
 * recovery point name) and reports.
 *
 * Exit 0 when everything selected was restored exactly; 1 when the
 * restore failed or some entries were not restored (exactly): each is
 * named on stderr, with a count at the end; 2 for a bad command line.
 * SIGINT, SIGTERM and SIGHUP stop it, its S3 requests too (within about a
 * second, even one the server does not answer): "interrupted", 128 + the
 * signal (130 for SIGINT).
 */
#include "commands.h"
#include "usage.h"
#include "progress.h"
#include "s3opts.h"

#include "config.h"
#include "dest.h"
#include "index.h"
#include "journal.h"
#include "mem.h"
#include "restore.h"
#include "url.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	OPT_PATH = 300,
	OPT_THREADS,
	OPT_STRICT,
};

static const struct option long_opts[] = {
	{ "path", required_argument, NULL, OPT_PATH },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "strict", no_argument, NULL, OPT_STRICT },
	{ "config", required_argument, NULL, 'c' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	VF_S3_LONG_OPTIONS,
	{ NULL, 0, NULL, 0 },
};

static atomic_int cancel_flag;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs restore [OPTIONS] SRC DEST\n\n"
		"Restore an archive: a tree into the directory DEST (owners, "
		"modes, times,\nxattrs, ACLs, hard links, sparse files, "
		"devices and fifos, as GNU tar\nrestores as root), a raw image "
		"into the file or block device DEST (not a\nmounted one). An "
		"archive written in members is fetched with parallel "
		"ranged\nreads and decoded on every core.\n\n"
		"SRC   s3://bucket/key or a local path of an archive; a job's "
		"folder ending\n      in '/' (its manifest.json names the "
		"archive); or a job id or recovery\n      point name of the "
		"journal (--config)\n\n"
		"options:\n"
		"  --path P         restore only P (a file, or a directory and "
		"all below);\n"
		"                   repeatable. With the archive's index only "
		"the members\n"
		"                   holding them are fetched; without, the "
		"whole is read\n"
		"  --threads N      fetch and decode on N threads (default: "
		"the CPUs)\n"
		"  --strict         fail at the first entry that cannot be "
		"restored exactly\n"
		"                   (default: name it, go on, exit 1 at the "
		"end)\n"
		"  -c, --config F   the configuration whose journal knows SRC "
		"(a job id or\n"
		"                   recovery point name) and whose destination "
		"holds it\n"
		"  -q, --quiet      no summary\n"
		"  -h, --help       this help\n\n%s",
		vf_s3_client_help);
	vf_help_end(f, "restore");
}

static void on_problem(void *ctx, const char *path, const char *why)
{
	(void)ctx;
	fprintf(stderr, "vaultfs: restore: %s: %s\n", path, why);
}

/* ---- a job of the journal ---------------------------------------------- */

struct pick {
	const char *want;
	char id[64];
	char *url;       /* owned: the newest match's archive */
};

static void pick_job(struct pick *p, const struct orch_job *job)
{
	if (!job->result_url)
		return;
	if (strcmp(job->id, p->want) &&
	    (!job->rp_name || strcmp(job->rp_name, p->want)))
		return;
	/* ids sort by time: the newest archive of a recovery point */
	if (p->url && strcmp(job->id, p->id) <= 0)
		return;
	free(p->url);
	p->url = cm_xstrdup(job->result_url);
	snprintf(p->id, sizeof(p->id), "%s", job->id);
}

static int pick_record(void *ctx, const struct orch_job *job,
		       const struct cm_json *record,
		       const struct orch_index_rec *rec, uint64_t off)
{
	struct orch_job *parsed = NULL;
	char why[256];

	(void)rec;
	(void)off;
	if (!job) {
		if (orch_job_from_record(record, &parsed, why, sizeof(why)))
			return 0; /* status reports it; not ours to judge */
		job = parsed;
	}
	pick_job(ctx, job);
	orch_job_free(parsed);
	return 0;
}

/* SRC as a job id or recovery point name: its archive's URL. */
static int find_job(const struct orch_config *cfg, const char *src,
		    char **url, struct cm_err *err)
{
	struct orch_job_list list = { 0 };
	struct pick p = { .want = src };
	int rc = orch_journal_read(cfg->state_dir, ORCH_LOAD_ALL, &list, err);

	if (rc)
		return rc;
	for (size_t i = 0; i < list.n; i++)
		pick_job(&p, list.jobs[i]);
	orch_job_list_release(&list);
	rc = orch_index_read(cfg->state_dir, pick_record, &p, NULL, err);
	if (rc) {
		free(p.url);
		return rc;
	}
	if (!p.url)
		return cm_err_set(err, ENOENT, "no archived job or recovery "
				  "point \"%s\" in the journal of %s (see "
				  "vaultfs status)", src, cfg->state_dir);
	*url = p.url;
	return 0;
}

/* A path or URL, or a name for the journal? */
static bool names_a_place(const char *src)
{
	struct stat st;

	return cm_url_kind(src) == CM_URL_S3 || strchr(src, '/') ||
	       stat(src, &st) == 0;
}

static void summary(const struct arc_restore_target *t,
		    const struct arc_restore_result *r, const char *dest)
{
	char fetched[32], size[32], bytes[32];

	vf_format_bytes(r->fetched, fetched, sizeof(fetched));
	vf_format_bytes(r->object_size, size, sizeof(size));
	vf_format_bytes(r->bytes, bytes, sizeof(bytes));
	if (t->method == ARC_METHOD_RAW)
		printf("restored %s into %s: a raw image of %s; fetched %s "
		       "of %s", t->url, dest, bytes, fetched, size);
	else
		printf("restored %s into %s: %llu entries; fetched %s of %s",
		       t->url, dest, (unsigned long long)r->entries, fetched,
		       size);
	if (r->index_fetched) {
		vf_format_bytes(r->index_fetched, size, sizeof(size));
		printf(" (and %s of the index)", size);
	}
	if (r->parallel)
		printf(", %llu %s decoded in parallel\n",
		       (unsigned long long)r->units,
		       t->codec == ARC_CODEC_ZSTD ? "frames" : "members");
	else
		printf(", streamed (an archive without members)\n");
}

int cmd_restore(int argc, char **argv)
{
	struct vf_s3_cli s3;
	struct arc_restore_opts ro = { 0 };
	struct arc_restore_result res;
	struct arc_restore_target t = { 0 };
	struct orch_config cfg;
	struct orch_dest *dest = NULL;
	struct vf_progress_feed feed = { 0 };
	struct s3_client *client = NULL, *own = NULL;
	const char **paths = NULL;
	const char *config = NULL, *src;
	char *job_url = NULL;
	bool quiet = false, have_cfg = false;
	size_t npaths = 0;
	int status;
	unsigned threads = 0;
	struct cm_err err;
	int c, r, rc;

	memset(&s3, 0, sizeof(s3));
	memset(&res, 0, sizeof(res));
	optind = 1;
	while ((c = vf_getopt("restore", argc, argv, "c:qh", long_opts)) != -1) {
		switch (c) {
		case OPT_PATH:
			paths = cm_xrealloc(paths, (npaths + 1) *
						   sizeof(*paths));
			paths[npaths++] = optarg;
			break;
		case OPT_THREADS:
			if (vf_parse_threads("restore", optarg, &threads)) {
				free(paths);
				return VF_EXIT_USAGE;
			}
			break;
		case OPT_STRICT:
			ro.strict = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			free(paths);
			return 0;
		case VF_OPT_BAD:
			free(paths);
			return VF_EXIT_USAGE;
		default:
			r = vf_s3_opt("restore", c, optarg, &s3);
			if (r == 1)
				break;
			free(paths);
			return VF_EXIT_USAGE;
		}
	}
	r = vf_operands("restore", argc, argv, optind, "SRC DEST");
	if (!r && (!*argv[optind] || !*argv[optind + 1]))
		r = vf_usage_error("restore", "SRC and DEST may not be empty");
	if (!r)
		r = vf_check_place("restore", argv[optind]);
	if (r) {
		free(paths);
		return r;
	}
	src = argv[optind];
	cm_err_clear(&err);
	vf_cancel_on_signals(&cancel_flag);
	if (!names_a_place(src) || config) {
		rc = vf_load_config("restore", config, &cfg);
		if (rc) {
			free(paths);
			return rc;
		}
		have_cfg = true;
		if (!names_a_place(src)) {
			rc = find_job(&cfg, src, &job_url, &err);
			if (rc)
				goto out;
			src = job_url;
		}
		if (cm_url_kind(src) == CM_URL_S3) {
			rc = orch_dest_new(&cfg, &dest, &err);
			if (rc)
				goto out;
			client = dest->s3;
		}
	}
	if (!client && cm_url_kind(src) == CM_URL_S3) {
		client = own = s3_client_new(&s3.client, &err);
		if (!client) {
			rc = -EINVAL;
			goto out;
		}
	}
	if (client)
		/* ours alone (the dest's too): only reads go through it */
		s3_client_set_cancel(client, &cancel_flag);
	rc = arc_restore_locate(src, client, &t, &err);
	if (rc)
		goto out;
	ro.url = t.url;
	ro.method = t.method;
	ro.codec = t.codec;
	ro.index_url = t.index_url;
	ro.dest = argv[optind + 1];
	ro.paths = paths;
	ro.npaths = npaths;
	ro.client = client;
	ro.threads = threads;
	ro.cancel = &cancel_flag;
	ro.on_problem = on_problem;
	ro.progress = vf_progress_feed_fn;
	ro.progress_ctx = &feed;
	feed.bar = vf_progress_start(t.url, 0, vf_progress_feed_now, &feed,
				     quiet);
	rc = arc_restore(&ro, &res, &err);
	vf_progress_stop(feed.bar, rc == 0);
	if (res.scanned && !quiet)
		fprintf(stderr, "vaultfs: restore: %s has no index: --path "
			"read the whole archive\n", t.url);
	if ((rc == 0 || res.problems) && !quiet)
		summary(&t, &res, ro.dest);
out:
	status = rc ? 1 : 0;
	if (rc == -ECANCELED && atomic_load(&cancel_flag)) {
		char *what = cm_xasprintf("restore %s", t.url ? t.url : src);

		status = vf_cancelled(what, atomic_load(&cancel_flag), NULL);
		free(what);
	} else if (rc) {
		fprintf(stderr, "vaultfs: restore %s: %s\n",
			t.url ? t.url : src, err.msg);
	}
	arc_restore_target_release(&t);
	s3_client_free(own);
	orch_dest_free(dest);
	if (have_cfg)
		orch_config_release(&cfg);
	free(job_url);
	free(paths);
	return status;
}
