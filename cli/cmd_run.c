/*
 * cmd_run.c - `vaultfs run [--config F] [--once]`: the orchestrator,
 * headless (orchestrator/orch.h does the work).
 *
 * --once: queue every complete recovery point not yet archived, run the
 * jobs (and those an earlier run left unfinished), exit 0 if none failed
 * or ended incomplete (unless --allow-incomplete), 1 otherwise. Without
 * it: a daemon that watches the vaults until SIGTERM or SIGINT.
 *
 * Signals: blocked in the main thread before the engine starts its
 * threads (which inherit the mask), and taken synchronously here with
 * sigtimedwait; SIGTERM and SIGINT stop the engine, which cancels the
 * running jobs (they release everything and are journaled as interrupted,
 * so the next start runs them again). onFailure commands get a clean mask.
 * SIGHUP reopens the --log file (logrotate) and, in the daemon, reads the
 * --config file again: unchanged, nothing more happens; changed and good,
 * the engine restarts in this process with it (reload()); bad, the error
 * is logged and the running configuration stays.
 *
 * The daemon's main loop wakes at least once a second (tick()): it tells
 * systemd how things are (core/sd_notify.h: READY=1, STATUS= with the job
 * counts when they change, WATCHDOG=1 at half of WATCHDOG_USEC) and
 * writes metricsFile every METRICS_EVERY_MS and after a job ended.
 */
#include "commands.h"
#include "usage.h"

#include "buf.h"
#include "config.h"
#include "fsutil.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "orch.h"
#include "sd_notify.h"
#include "timeutil.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	OPT_RETRY_FAILED = 300,
	OPT_ALLOW_INCOMPLETE,
	OPT_LOG,
	OPT_LOG_FORMAT,
};

#define METRICS_EVERY_MS 15000 /* metricsFile, besides after each job */
#define TICK_MS 1000           /* the daemon's loop wakes this often */

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "once", no_argument, NULL, '1' },
	{ "retry-failed", no_argument, NULL, OPT_RETRY_FAILED },
	{ "allow-incomplete", no_argument, NULL, OPT_ALLOW_INCOMPLETE },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
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
	const char *log;
	enum cm_log_format log_format;
};

/* What this run saw end, for the summary (the notify callback). */
struct run_counts {
	pthread_mutex_t lock;
	bool quiet;
	bool to_log;       /* the daemon with --log or json: lines to the log */
	atomic_bool ended; /* a job ended since the metrics were written */
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
		"      --log FILE      log to FILE (appended; every line "
		"stamped); SIGHUP\n"
		"                      reopens it\n"
		"      --log-format F  text (default) or json: one object a "
		"line\n"
		"                      (time, level, job, vault, msg)\n"
		"  -q, --quiet         no line per finished job\n"
		"  -v, --verbose       log at info level (VAULTFS_LOG=debug "
		"for more)\n"
		"  -h, --help          this help\n\n"
		"Without --once, vaultfs runs until SIGTERM or SIGINT, "
		"picking up new\nrecovery points as they appear; SIGHUP "
		"reopens the log and reads the\nconfiguration again. "
		"`vaultfs status` shows the jobs.\n");
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
		case OPT_LOG:
			o->log = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (cm_log_format_parse(optarg, &o->log_format))
				return vf_usage_error("run", "--log-format: '%s' "
						      "is not text or json",
						      optarg);
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
	atomic_store(&rc->ended, true);
	if (rc->quiet)
		return;
	if (rc->to_log) {
		/* a log file or a shipper: one stamped line, with the job */
		struct cm_buf b;

		cm_buf_init(&b, 0);
		cm_buf_printf(&b, "%s %s/%s", orch_job_state_name(ji->state),
			      ji->vault, ji->rp_name);
		if (ji->result_url) {
			orch_format_bytes(ji->result_size, size, sizeof(size));
			cm_buf_printf(&b, " -> %s (%s)", ji->result_url, size);
		}
		if (ji->error)
			cm_buf_printf(&b, ": %s", ji->error);
		cm_log_job(ji->state == ORCH_JOB_FAILED	   ? CM_LOG_ERROR :
			   ji->state == ORCH_JOB_SUCCEEDED ? CM_LOG_NOTICE :
							     CM_LOG_WARN,
			   ji->id, ji->vault, "%s", cm_buf_str(&b));
		cm_buf_release(&b);
		return;
	}
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

/* What the daemon's loop and run_once share. */
struct runner {
	const struct run_cli *cli;
	struct orch_config *cfg; /* the engine borrows it: replaced only
				    with the engine (reload) */
	char *cfg_text;          /* the --config file as last loaded */
	size_t cfg_len;
	struct orch *o;
	struct run_counts *counts;
	const sigset_t *sigs;
	time_t started;
	uint64_t watchdog_ms;    /* half of WATCHDOG_USEC; 0: none */
	uint64_t next_watchdog, next_metrics;
	char *status;            /* the last STATUS= sent */
	bool metrics_failed;     /* said once, until it works again */
};

static uint64_t mono_ms(void)
{
	return cm_now_ns() / 1000000;
}

/* The --config file's bytes (NULL with errno on failure). */
static char *read_text(const char *path, size_t *len)
{
	struct cm_buf b;
	char chunk[8192];
	size_t n;
	FILE *f = fopen(path, "re");

	if (!f)
		return NULL;
	cm_buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		cm_buf_append(&b, chunk, n);
	if (ferror(f)) {
		int e = errno;

		fclose(f);
		cm_buf_release(&b);
		errno = e;
		return NULL;
	}
	fclose(f);
	*len = b.len;
	return cm_buf_detach(&b);
}

/* metricsFile: the engine's metrics, replaced whole (a temporary file
 * beside it, renamed over it: the textfile collector never reads half a
 * file, and ignores names not ending in .prom). */
static void write_metrics(struct runner *r, const struct orch_snapshot *snap)
{
	struct cm_buf b;
	struct cm_err err;

	if (!r->cfg->metrics_file)
		return;
	cm_err_clear(&err);
	cm_buf_init(&b, 0);
	orch_metrics_put(&b, r->cfg, snap, r->started, time(NULL));
	if (cm_write_file_atomic(r->cfg->metrics_file, b.data, b.len, &err)) {
		if (!r->metrics_failed)
			cm_error("run: metricsFile: %s", err.msg);
		r->metrics_failed = true;
	} else {
		r->metrics_failed = false;
	}
	cm_buf_release(&b);
}

/*
 * Once a loop turn: systemd's STATUS= (when it changed) and WATCHDOG=1
 * (when due), metricsFile when due or after a job ended, or `force`.
 */
static void tick(struct runner *r, bool force)
{
	uint64_t now = mono_ms();
	struct orch_snapshot snap;
	char *status;
	bool ended = atomic_exchange(&r->counts->ended, false);

	if (r->cli->once && !r->cfg->metrics_file)
		return;
	orch_snapshot(r->o, &snap);
	if (force || ended || now >= r->next_metrics) {
		write_metrics(r, &snap);
		r->next_metrics = now + METRICS_EVERY_MS;
	}
	if (!r->cli->once) {
		status = orch_counts_line(r->cfg, &snap);
		if (!r->status || strcmp(status, r->status)) {
			char *msg = cm_xasprintf("STATUS=%s", status);

			cm_sd_notify(msg);
			free(msg);
			free(r->status);
			r->status = status;
		} else {
			free(status);
		}
		if (r->watchdog_ms && now >= r->next_watchdog) {
			cm_sd_notify("WATCHDOG=1");
			r->next_watchdog = now + r->watchdog_ms;
		}
	}
	orch_snapshot_release(&snap);
}

/* SIGHUP: a new log file, whatever else happens. */
static void reopen_log(void)
{
	struct cm_err err;

	cm_err_clear(&err);
	if (cm_log_reopen(&err))
		cm_error("run: SIGHUP: %s (the old log stays in use)",
			 err.msg);
}

static int run_once(struct runner *r)
{
	const struct run_cli *cli = r->cli;
	struct orch *o = r->o;
	struct run_counts *counts = r->counts;
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
		int sig = sigtimedwait(r->sigs, NULL, &poll_ts);

		if (sig == SIGHUP) {
			reopen_log();
		} else if (sig > 0) {
			fprintf(stderr, "vaultfs: run: %s: stopping; running "
				"jobs are interrupted and retried at the next "
				"start\n", strsignal(sig));
			interrupted = true;
			break;
		}
		tick(r, false);
	}
	orch_stop(o);
	tick(r, true);
	orch_snapshot(o, &snap);
	done = snap.by_state[ORCH_JOB_SUCCEEDED];
	failed = orch_failed_count(o);
	pthread_mutex_lock(&counts->lock);
	incomplete = counts->by_state[ORCH_JOB_INCOMPLETE];
	if (!cli->quiet)
		printf("this run: %zu succeeded, %zu failed, %zu cancelled, "
		       "%zu incomplete, %zu waiting; journal: %zu job%s, %zu "
		       "succeeded\n",
		       counts->by_state[ORCH_JOB_SUCCEEDED], failed,
		       counts->by_state[ORCH_JOB_CANCELLED], incomplete,
		       counts->by_state[ORCH_JOB_WAITING],
		       snap.n + snap.indexed,
		       snap.n + snap.indexed == 1 ? "" : "s", done);
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

/* A new engine on cfg (borrowed until orch_free), started. */
static struct orch *engine_start(struct runner *r, struct orch_config *cfg,
				 struct cm_err *err)
{
	struct orch_opts opts;
	struct orch *o;

	memset(&opts, 0, sizeof(opts));
	opts.once = r->cli->once;
	opts.notify = on_event;
	opts.notify_ctx = r->counts;
	o = orch_new(cfg, &opts, err);
	if (o && orch_start(o, err)) {
		orch_free(o);
		o = NULL;
	}
	return o;
}

static void say_watching(const struct orch_config *cfg)
{
	cm_notice("run: watching %zu vault%s, %u job%s at a time, state in "
		  "%s", cfg->nvaults, cfg->nvaults == 1 ? "" : "s", cfg->jobs,
		  cfg->jobs == 1 ? "" : "s", cfg->state_dir);
	if (!cfg->auto_start)
		cm_notice("run: autoStart is false: recovery points wait for "
			  "an export");
}

/*
 * SIGHUP in the daemon: read --config again. The engine borrows its
 * configuration, so a changed one means a new engine: the old one stops
 * (running jobs are journaled as interrupted, not counted as an attempt)
 * and the new one starts, recovers them from the journal and runs them
 * again from where it is safe to. An unchanged file changes nothing (the
 * SIGHUP of logrotate interrupts no job); a bad one is logged and the
 * running engine keeps going. 0, or -1 when neither the new nor the old
 * configuration starts again (the daemon exits 1).
 */
static int reload(struct runner *r)
{
	struct orch_config *next;
	struct cm_err err;
	struct orch *o;
	size_t len = 0;
	char *text, mono[64];

	if (!r->cli->config) {
		cm_notice("run: SIGHUP: log reopened; the embedded default "
			  "configuration has nothing to read again");
		return 0;
	}
	text = read_text(r->cli->config, &len);
	if (!text) {
		cm_error("run: SIGHUP: config %s: %s; the running "
			 "configuration stays", r->cli->config,
			 strerror(errno));
		return 0;
	}
	if (r->cfg_text && len == r->cfg_len &&
	    !memcmp(text, r->cfg_text, len)) {
		cm_notice("run: SIGHUP: log reopened; %s is unchanged",
			  r->cli->config);
		free(text);
		return 0;
	}
	cm_err_clear(&err);
	next = cm_xcalloc(1, sizeof(*next));
	if (orch_config_load(r->cli->config, next, &err)) {
		cm_error("run: SIGHUP: %s; the running configuration stays",
			 err.msg);
		free(next);
		free(text);
		return 0;
	}
	snprintf(mono, sizeof(mono), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)(cm_now_ns() / 1000));
	cm_sd_notify(mono);
	cm_notice("run: SIGHUP: %s changed: restarting the engine (running "
		  "jobs are interrupted and run again)", r->cli->config);
	orch_free(r->o);
	r->o = NULL;
	o = engine_start(r, next, &err);
	if (o) {
		orch_config_release(r->cfg);
		free(r->cfg);
		r->cfg = next;
		free(r->cfg_text);
		r->cfg_text = text;
		r->cfg_len = len;
	} else {
		cm_error("run: SIGHUP: the new configuration does not start: "
			 "%s; back to the running one", err.msg);
		orch_config_release(next);
		free(next);
		free(text);
		cm_err_clear(&err);
		o = engine_start(r, r->cfg, &err);
		if (!o) {
			cm_error("run: %s", err.msg);
			return -1;
		}
	}
	r->o = o;
	say_watching(r->cfg);
	cm_sd_notify("READY=1");
	tick(r, true);
	return 0;
}

static int run_daemon(struct runner *r)
{
	uint64_t wd_usec = cm_sd_watchdog_usec();
	int rc = 0;

	say_watching(r->cfg);
	if (wd_usec) {
		/* half the interval, as sd_watchdog_enabled(3) advises */
		r->watchdog_ms = wd_usec / 2000 ? wd_usec / 2000 : 1;
		cm_info("run: systemd watchdog every %llu ms",
			(unsigned long long)r->watchdog_ms);
	}
	cm_sd_notify("READY=1");
	tick(r, true);
	for (;;) {
		uint64_t wait_ms = TICK_MS;
		struct timespec ts;
		int sig;

		if (r->watchdog_ms && r->watchdog_ms < wait_ms)
			wait_ms = r->watchdog_ms;
		ts.tv_sec = (time_t)(wait_ms / 1000);
		ts.tv_nsec = (long)(wait_ms % 1000) * 1000000L;
		sig = sigtimedwait(r->sigs, NULL, &ts);
		if (sig == SIGHUP) {
			reopen_log();
			if (reload(r)) {
				rc = 1;
				break;
			}
		} else if (sig > 0) {
			cm_notice("run: %s: stopping", strsignal(sig));
			cm_sd_notify("STOPPING=1");
			break;
		}
		tick(r, false);
	}
	if (r->o) {
		orch_stop(r->o);
		tick(r, true);
	}
	return rc;
}

int cmd_run(int argc, char **argv)
{
	struct run_cli cli;
	struct run_counts counts;
	struct runner r;
	struct cm_err err;
	sigset_t sigs;
	int rc;

	rc = parse_args(argc, argv, &cli);
	if (rc)
		return rc < 0 ? 0 : rc;
	if (cli.verbose)
		cm_log_set_level(CM_LOG_INFO);
	cm_log_set_format(cli.log_format);
	cm_err_clear(&err);
	if (cli.log && cm_log_open(cli.log, &err)) {
		fprintf(stderr, "vaultfs: run: --log: %s\n", err.msg);
		return 1;
	}
	memset(&r, 0, sizeof(r));
	r.cli = &cli;
	r.started = time(NULL);
	r.cfg = cm_xcalloc(1, sizeof(*r.cfg));
	if (cli.config)
		r.cfg_text = read_text(cli.config, &r.cfg_len);
	rc = vf_load_config("run", cli.config, r.cfg);
	if (rc) {
		free(r.cfg);
		free(r.cfg_text);
		return rc;
	}
	memset(&counts, 0, sizeof(counts));
	pthread_mutex_init(&counts.lock, NULL);
	counts.quiet = cli.quiet;
	counts.to_log = !cli.once &&
			(cli.log || cli.log_format == CM_LOG_JSON);
	r.counts = &counts;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	r.sigs = &sigs;

	r.o = engine_start(&r, r.cfg, &err);
	if (!r.o) {
		fprintf(stderr, "vaultfs: run: %s\n", err.msg);
		rc = 1;
		goto out;
	}
	rc = cli.once ? run_once(&r) : run_daemon(&r);
out:
	orch_free(r.o);
	orch_config_release(r.cfg);
	free(r.cfg);
	free(r.cfg_text);
	free(r.status);
	pthread_mutex_destroy(&counts.lock);
	return rc;
}
