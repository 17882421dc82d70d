/*
 * cmd_run.c - `vaultfs run [--config F] [--once]`: the orchestrator,
 * headless (orchestrator/orch.h does the work).
 *
 * --once: queue every complete recovery point not yet archived, run the
 * jobs (and those an earlier run left unfinished), exit 0 if none failed
 * or ended incomplete (unless --allow-incomplete), 1 otherwise. Without it: a daemon that watches the vaults until SIGTERM,
 * SIGINT or SIGHUP.
 *
 * Signals: blocked in the main thread before the engine starts its
 * threads (which inherit the mask), and taken synchronously here with
 * sigwait/sigtimedwait; a signal stops the engine, which cancels the
 * running jobs (they release everything and are journaled as interrupted,
 * so the next start runs them again). onFailure commands get a clean mask.
 */
#include "commands.h"
#include "usage.h"

#include "config.h"
#include "log.h"
#include "orch.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

enum {
	OPT_RETRY_FAILED = 300,
	OPT_ALLOW_INCOMPLETE,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "once", no_argument, NULL, '1' },
	{ "retry-failed", no_argument, NULL, OPT_RETRY_FAILED },
	{ "allow-incomplete", no_argument, NULL, OPT_ALLOW_INCOMPLETE },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

struct run_cli {
	const char *config;
	bool once;
	bool retry_failed;
	bool allow_incomplete;
	bool quiet;
	bool verbose;
};

/* What this run saw end, for the summary (the notify callback). */
struct run_counts {
	pthread_mutex_t lock;
	bool quiet;
	size_t by_state[ORCH_JOB_NSTATES]; /* protected by ->lock */
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs run [--config FILE] [--once] [OPTIONS]\n\n"
		"Archive every recovery point of the configured vaults: "
		"restore, archive,\nverify, clean up, and delete the snapshot "
		"where the configuration says so.\n\n"
		"options:\n"
		"  -c, --config FILE   the configuration (docs/config.md); "
		"default: the\n"
		"                      embedded default (/var/lib/vaultfs)\n"
		"      --once          process what is pending and exit: 0 if "
		"no job failed\n"
		"                      or ended incomplete, 1 otherwise\n"
		"      --allow-incomplete  with --once: exit 0 although a job "
		"ended incomplete\n"
		"                      (its archive kept, its snapshot kept)\n"
		"      --retry-failed  with --once: run failed, incomplete and "
		"cancelled\n"
		"                      recovery points again (otherwise they "
		"wait for a change\n"
		"                      or an export)\n"
		"  -q, --quiet         no line per finished job\n"
		"  -v, --verbose       log at info level (VAULTFS_LOG=debug "
		"for more)\n"
		"  -h, --help          this help\n\n"
		"Without --once, vaultfs runs until SIGTERM or SIGINT, "
		"picking up new\nrecovery points as they appear. `vaultfs "
		"status` shows the jobs.\n");
	vf_help_end(f, "run");
}

static int parse_args(int argc, char **argv, struct run_cli *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = vf_getopt("run", argc, argv, "c:qvh", long_opts)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case '1':
			o->once = true;
			break;
		case OPT_RETRY_FAILED:
			o->retry_failed = true;
			break;
		case OPT_ALLOW_INCOMPLETE:
			o->allow_incomplete = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			return VF_EXIT_USAGE;
		}
	}
	c = vf_operands("run", argc, argv, optind, "");
	if (c)
		return c;
	if ((o->retry_failed || o->allow_incomplete) && !o->once)
		return vf_usage_error("run", "--%s goes with --once",
				      o->retry_failed ? "retry-failed"
						      : "allow-incomplete");
	return 0;
}

/* Load --config, or the embedded default. 0 or the exit status. */
int vf_load_config(const char *cmd, const char *path, struct orch_config *cfg)
{
	struct cm_err err;

	cm_err_clear(&err);
	if (!path) {
		orch_config_default(cfg);
		return 0;
	}
	if (orch_config_load(path, cfg, &err) == 0)
		return 0;
	fprintf(stderr, "vaultfs: %s: %s\n", cmd, err.msg);
	return 2;
}

static void on_event(void *ctx, const struct orch_job_info *ji)
{
	struct run_counts *rc = ctx;
	char size[32];

	/* waiting: no restorer for it yet; listed, never a failure */
	if ((!orch_job_state_final(ji->state) &&
	     ji->state != ORCH_JOB_WAITING) || ji->running)
		return;
	pthread_mutex_lock(&rc->lock);
	rc->by_state[ji->state]++;
	pthread_mutex_unlock(&rc->lock);
	if (rc->quiet)
		return;
	if (ji->state == ORCH_JOB_SUCCEEDED ||
	    ji->state == ORCH_JOB_INCOMPLETE) {
		orch_format_bytes(ji->result_size, size, sizeof(size));
		printf("%-9s %s/%s -> %s (%s)%s\n",
		       orch_job_state_name(ji->state), ji->vault, ji->rp_name,
		       ji->result_url ? ji->result_url : "?", size,
		       ji->snapshot_deleted ? ", snapshot deleted" : "");
		if (ji->error)
			printf("          %s: %s\n",
			       ji->state == ORCH_JOB_INCOMPLETE ? "left out"
								: "note",
			       ji->error);
	} else {
		printf("%-9s %s/%s: %s\n", orch_job_state_name(ji->state),
		       ji->vault, ji->rp_name, ji->error ? ji->error : "");
	}
	fflush(stdout);
}

static int run_once(struct orch *o, const struct run_cli *cli,
		    const sigset_t *sigs, struct run_counts *counts)
{
	const struct timespec poll_ts = { 0, 0 };
	struct orch_snapshot snap;
	struct cm_err err;
	size_t queued = 0, resumed, done, failed, incomplete;
	bool interrupted = false;
	int rc;

	cm_err_clear(&err);
	orch_snapshot(o, &snap);
	resumed = snap.by_state[ORCH_JOB_QUEUED];
	orch_snapshot_release(&snap);
	if (resumed && !cli->quiet)
		printf("resuming %zu job%s of an earlier run\n", resumed,
		       resumed == 1 ? "" : "s");
	rc = orch_scan(o, cli->retry_failed ? ORCH_SCAN_RETRY_FAILED : 0,
		       &queued, &err);
	if (rc && !cli->quiet)
		fprintf(stderr, "vaultfs: run: %s\n", err.msg);
	if (!cli->quiet)
		printf("queued %zu recovery point%s\n", queued,
		       queued == 1 ? "" : "s");
	fflush(stdout);
	while (!orch_wait_idle(o, 200)) {
		int sig = sigtimedwait(sigs, NULL, &poll_ts);

		if (sig > 0) {
			fprintf(stderr, "vaultfs: run: %s: stopping; running "
				"jobs are interrupted and retried at the next "
				"start\n", strsignal(sig));
			interrupted = true;
			break;
		}
	}
	orch_stop(o);
	orch_snapshot(o, &snap);
	done = snap.by_state[ORCH_JOB_SUCCEEDED];
	failed = orch_failed_count(o);
	pthread_mutex_lock(&counts->lock);
	incomplete = counts->by_state[ORCH_JOB_INCOMPLETE];
	if (!cli->quiet)
		printf("this run: %zu succeeded, %zu failed, %zu cancelled, "
		       "%zu incomplete, %zu waiting; journal: %zu jobs, %zu "
		       "succeeded\n",
		       counts->by_state[ORCH_JOB_SUCCEEDED], failed,
		       counts->by_state[ORCH_JOB_CANCELLED], incomplete,
		       counts->by_state[ORCH_JOB_WAITING],
		       snap.n + snap.indexed, done);
	pthread_mutex_unlock(&counts->lock);
	orch_snapshot_release(&snap);
	if (rc == 0 && failed)
		rc = -EIO;
	if (rc == 0 && incomplete && !cli->allow_incomplete) {
		if (!cli->quiet)
			fprintf(stderr, "vaultfs: run: %zu job%s ended "
				"incomplete (archives kept, snapshots kept; "
				"--allow-incomplete to exit 0)\n", incomplete,
				incomplete == 1 ? "" : "s");
		rc = -EIO;
	}
	return interrupted ? 130 : rc ? 1 : 0;
}

static int run_daemon(struct orch *o, const struct orch_config *cfg,
		      const sigset_t *sigs)
{
	int sig = 0;

	fprintf(stderr, "vaultfs: run: watching %zu vault%s, %u job%s at "
		"a time, state in %s\n", cfg->nvaults,
		cfg->nvaults == 1 ? "" : "s", cfg->jobs,
		cfg->jobs == 1 ? "" : "s", cfg->state_dir);
	if (!cfg->auto_start)
		fprintf(stderr, "vaultfs: run: autoStart is false: recovery "
			"points wait for an export\n");
	while (sigwait(sigs, &sig) != 0 || sig == 0)
		;
	fprintf(stderr, "vaultfs: run: %s: stopping\n", strsignal(sig));
	orch_stop(o);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	struct run_cli cli;
	struct orch_config cfg;
	struct orch_opts opts;
	struct run_counts counts;
	struct orch *o = NULL;
	struct cm_err err;
	sigset_t sigs;
	int rc;

	rc = parse_args(argc, argv, &cli);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (cli.verbose)
		cm_log_set_level(CM_LOG_INFO);
	rc = vf_load_config("run", cli.config, &cfg);
	if (rc)
		return rc;
	cm_err_clear(&err);
	memset(&counts, 0, sizeof(counts));
	pthread_mutex_init(&counts.lock, NULL);
	counts.quiet = cli.quiet;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&opts, 0, sizeof(opts));
	opts.once = cli.once;
	opts.notify = on_event;
	opts.notify_ctx = &counts;
	o = orch_new(&cfg, &opts, &err);
	if (!o || orch_start(o, &err)) {
		fprintf(stderr, "vaultfs: run: %s\n", err.msg);
		rc = 1;
		goto out;
	}
	rc = cli.once ? run_once(o, &cli, &sigs, &counts)
		      : run_daemon(o, &cfg, &sigs);
out:
	orch_free(o);
	orch_config_release(&cfg);
	pthread_mutex_destroy(&counts.lock);
	return rc;
}
