/*
 * cmd_mount.c - `vaultfs mount MOUNTPOINT --config F`: the orchestrator
 * and the FUSE view of it in one process (fs/view.h, fs/view_fuse.h).
 *
 * Order of things:
 *   1. options, config, the mount point's absolute path;
 *   2. without --foreground, fork: the parent waits on a pipe until the
 *      child says "mounted" (exit 0) or dies (exit 1); the child goes on
 *      in a new session, and once mounted sends its stderr to the log
 *      file (--log, default STATEDIR/mount.log);
 *   3. a stale mount left by a killed daemon is detached;
 *   4. signals blocked before any thread exists (every thread inherits the
 *      mask); a signal thread waits for SIGTERM and SIGINT (unmount) and
 *      SIGHUP (the log reopened), and tells systemd how things are;
 *   5. the engine (orch_new, orch_start: the stateDir lock, recovery of
 *      jobs), the view (view_new, view_recover: uploads an earlier mount
 *      left), the mount (view_fuse_mount);
 *   6. the loop, until a signal or an unmount;
 *   7. teardown: the mount goes first (view_fuse_unmount), then the
 *      engine (orch_stop: running jobs are journaled as interrupted and
 *      retried at the next start), then the view (unfinished uploads
 *      aborted).
 *
 * Readiness: "mounted\n" is written to --ready-fd N (and to the parent's
 * pipe) once the kernel's INIT has been answered, so tests wait for it
 * instead of sleeping.
 */
#include "commands.h"
#include "usage.h"

#include "config.h"
#include "dest.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "orch.h"
#include "sd_notify.h"
#include "timeutil.h"
#include "view.h"
#include "view_fuse.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum {
	OPT_ALLOW_OTHER = 300,
	OPT_ALLOW_OVERWRITE,
	OPT_ALLOW_DELETE,
	OPT_READY_FD,
	OPT_LOG,
	OPT_LOG_FORMAT,
	OPT_DEBUG_FUSE,
	OPT_UID,
	OPT_GID,
	OPT_UMASK,
	OPT_WHOLE_BUCKET,
	OPT_LIST_MAX_KEYS,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"foreground", no_argument, NULL, 'f'},
    {"allow-other", no_argument, NULL, OPT_ALLOW_OTHER},
    {"allow-overwrite", no_argument, NULL, OPT_ALLOW_OVERWRITE},
    {"allow-delete", no_argument, NULL, OPT_ALLOW_DELETE},
    {"ready-fd", required_argument, NULL, OPT_READY_FD},
    {"log", required_argument, NULL, OPT_LOG},
    {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
    {"debug-fuse", no_argument, NULL, OPT_DEBUG_FUSE},
    {"uid", required_argument, NULL, OPT_UID},
    {"gid", required_argument, NULL, OPT_GID},
    {"umask", required_argument, NULL, OPT_UMASK},
    {"whole-bucket", no_argument, NULL, OPT_WHOLE_BUCKET},
    {"list-max-keys", required_argument, NULL, OPT_LIST_MAX_KEYS},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

struct mount_cli {
	const char *config;
	const char *mountpoint;
	bool foreground;
	bool allow_other;
	bool allow_overwrite;
	bool allow_delete;
	bool verbose;
	bool debug_fuse;
	bool whole_bucket;
	uid_t uid; /* the owner shown: --uid, else the mounting user */
	gid_t gid;
	mode_t umask; /* --umask, else VIEW_DEFAULT_UMASK */
	unsigned list_max_keys; /* 0: the view's default */
	int ready_fd; /* -1: none */
	const char *log;
	enum cm_log_format log_format;
};

/* What the callbacks need; one per process. */
struct mount_state {
	_Atomic(struct view *) view; /* for the engine's notify callback */
	int ready_fds[2];	     /* --ready-fd and the parent's pipe */
	const char *log_path;	     /* NULL: keep stderr */
	struct view_fuse *vf;
	struct orch *o;                /* for systemd's STATUS= */
	const struct orch_config *cfg;
	sigset_t sigs;
	atomic_bool ending; /* the loop is over: no more signals */
};

static struct mount_state ms;

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vaultfs mount MOUNTPOINT [--config FILE] [OPTIONS]\n\n"
		"Run the orchestrator and show it as a filesystem:\n"
		"  MOUNTPOINT/status, metrics       the daemon's summary\n"
		"  MOUNTPOINT/vaults/VAULT/RP/      info.json, status, log,\n"
		"                                   export and cancel (control "
		"files)\n"
		"  MOUNTPOINT/archive/BUCKET/KEY... the destination: read, "
		"and write new\n"
		"                                   objects sequentially\n\n"
		"options:\n"
		"  -c, --config FILE     the configuration (docs/config.md)\n"
		"  -f, --foreground      stay in the foreground (logs on "
		"stderr)\n"
		"      --allow-other     let other users in (with "
		"default_permissions)\n"
		"      --uid N, --gid N  the owner of every file (default: "
		"the mounting user)\n"
		"      --umask M         octal; modes are 0666/0777 less M "
		"(default 027:\n"
		"                        files 0640, directories 0750)\n"
		"      --whole-bucket    archive/ shows the whole bucket, not "
		"only the prefix\n"
		"      --list-max-keys N entries a listing page of archive/ "
		"(1-1000,\n"
		"                        default 1000): what a directory "
		"holds in memory\n"
		"      --allow-overwrite writing may replace an archive "
		"object\n"
		"      --allow-delete    rm may delete an archive object\n"
		"      --ready-fd N      write \"mounted\\n\" to descriptor N "
		"once mounted\n"
		"      --log FILE        where a background mount logs "
		"(default:\n"
		"                        STATEDIR/mount.log); SIGHUP "
		"reopens it\n"
		"      --log-format F    text (default) or json: one object "
		"a line\n"
		"  -v, --verbose         log at info level\n"
		"      --debug-fuse      trace FUSE requests on stderr\n"
		"  -h, --help            this help\n\n"
		"Unmount with `fusermount3 -u MOUNTPOINT` or SIGTERM: running "
		"jobs are\ncheckpointed and resumed at the next start. "
		"See docs/view.md.\n");
	vf_help_end(f, "mount");
}

/* --uid/--gid (a number, or a user or group name) and --umask (octal,
 * at most 0777) */
static int parse_id(int opt, const char *arg, struct mount_cli *o)
{
	const char *what = opt == OPT_UID   ? "--uid"
			   : opt == OPT_GID ? "--gid"
					    : "--umask";
	unsigned long n;
	char *end;

	errno = 0;
	n = strtoul(arg, &end, opt == OPT_UMASK ? 8 : 10);
	if (opt == OPT_UMASK) {
		if (errno || end == arg || *end || n > 0777)
			goto bad;
		o->umask = (mode_t)n;
		return 0;
	}
	if (errno || end == arg || *end || n >= (unsigned long)UINT32_MAX) {
		if (opt == OPT_UID) {
			struct passwd *pw = getpwnam(arg);

			if (!pw)
				goto bad;
			n = pw->pw_uid;
		} else {
			struct group *gr = getgrnam(arg);

			if (!gr)
				goto bad;
			n = gr->gr_gid;
		}
	}
	if (opt == OPT_UID)
		o->uid = (uid_t)n;
	else
		o->gid = (gid_t)n;
	return 0;
bad:
	return vf_usage_error("mount", "%s: '%s' is not %s", what, arg,
			      opt == OPT_UMASK ? "an octal mask from 0 to 0777"
			      : opt == OPT_UID ? "a user id or name"
					       : "a group id or name");
}

static int parse_args(int argc, char **argv, struct mount_cli *o)
{
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->ready_fd = -1;
	o->uid = getuid();
	o->gid = getgid();
	o->umask = VIEW_DEFAULT_UMASK;
	optind = 1;
	while ((c = vf_getopt("mount", argc, argv, "c:fvh", long_opts)) !=
	       -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'f':
			o->foreground = true;
			break;
		case OPT_ALLOW_OTHER:
			o->allow_other = true;
			break;
		case OPT_ALLOW_OVERWRITE:
			o->allow_overwrite = true;
			break;
		case OPT_ALLOW_DELETE:
			o->allow_delete = true;
			break;
		case OPT_READY_FD:
			errno = 0;
			o->ready_fd = (int)strtol(optarg, &end, 10);
			if (errno || *end || o->ready_fd < 0 ||
			    fcntl(o->ready_fd, F_GETFD) < 0)
				return vf_usage_error("mount", "--ready-fd: "
						      "'%s' is not an open "
						      "descriptor", optarg);
			break;
		case OPT_LOG:
			o->log = optarg;
			break;
		case OPT_LOG_FORMAT:
			if (cm_log_format_parse(optarg, &o->log_format))
				return vf_usage_error("mount", "--log-format: '%s' "
						      "is not text or json",
						      optarg);
			break;
		case OPT_DEBUG_FUSE:
			o->debug_fuse = true;
			break;
		case OPT_UID:
		case OPT_GID:
		case OPT_UMASK:
			if (parse_id(c, optarg, o))
				return 2;
			break;
		case OPT_WHOLE_BUCKET:
			o->whole_bucket = true;
			break;
		case OPT_LIST_MAX_KEYS: {
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || *end || end == optarg || n < 1 ||
			    n > 1000)
				return vf_usage_error("mount", "--list-max-keys:"
						      " '%s' is not a number "
						      "from 1 to 1000 (S3 "
						      "answers at most 1000 "
						      "keys a page)", optarg);
			o->list_max_keys = (unsigned)n;
			break;
		}
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
	c = vf_operands("mount", argc, argv, optind, "MOUNTPOINT");
	if (c)
		return c;
	o->mountpoint = argv[optind];
	return 0;
}

static void notify_trampoline(void *ctx, const struct orch_job_info *ji)
{
	struct view *v = atomic_load(&ms.view);

	if (v)
		view_orch_notify(v, ji);
}

static void write_all(int fd, const char *s)
{
	size_t n = strlen(s), done = 0;

	while (done < n) {
		ssize_t w = write(fd, s + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		done += (size_t)w;
	}
}

/* From the FUSE INIT: the mount serves requests now. */
static void on_ready(void *ctx)
{
	for (int i = 0; i < 2; i++) {
		if (ms.ready_fds[i] < 0)
			continue;
		write_all(ms.ready_fds[i], "mounted\n");
		close(ms.ready_fds[i]);
		ms.ready_fds[i] = -1;
	}
	if (ms.log_path) {
		struct cm_err err;

		cm_err_clear(&err);
		if (cm_log_open(ms.log_path, &err))
			cm_warn("mount: %s (logging to stderr)", err.msg);
	}
	cm_sd_notify("READY=1");
	cm_info("mount: ready");
}

/*
 * The signal thread: SIGTERM and SIGINT unmount; SIGHUP reopens the log
 * (logrotate; the mount does not read its config again: unmount and mount
 * to change it). Between signals, systemd hears how things are
 * (core/sd_notify.h): STATUS= with the job counts when they change, and
 * WATCHDOG=1 at half of WATCHDOG_USEC.
 */
static void *signal_main(void *arg)
{
	uint64_t wd_ms = cm_sd_watchdog_usec() / 2000, next_wd = 0;
	char *status = NULL;
	int sig = 0;

	(void)arg;
	if (cm_sd_watchdog_usec() && !wd_ms)
		wd_ms = 1;
	for (;;) {
		uint64_t wait_ms = wd_ms && wd_ms < 1000 ? wd_ms : 1000;
		uint64_t now = cm_now_ns() / 1000000;
		struct timespec ts = { (time_t)(wait_ms / 1000),
				       (long)(wait_ms % 1000) * 1000000L };
		struct orch_snapshot snap;
		struct cm_err err;
		char *line;

		sig = sigtimedwait(&ms.sigs, NULL, &ts);
		if (atomic_load(&ms.ending))
			break;
		if (sig > 0 && sig != SIGHUP)
			break;
		cm_err_clear(&err);
		if (sig == SIGHUP && cm_log_reopen(&err))
			cm_error("mount: SIGHUP: %s (the old log stays in "
				 "use)", err.msg);
		else if (sig == SIGHUP)
			cm_notice("mount: SIGHUP: log reopened (the "
				  "configuration is read at mount time only)");
		if (wd_ms && now >= next_wd) {
			cm_sd_notify("WATCHDOG=1");
			next_wd = now + wd_ms;
		}
		orch_snapshot(ms.o, &snap);
		line = orch_counts_line(ms.cfg, &snap);
		orch_snapshot_release(&snap);
		if (!status || strcmp(line, status)) {
			char *msg = cm_xasprintf("STATUS=%s", line);

			cm_sd_notify(msg);
			free(msg);
			free(status);
			status = line;
		} else {
			free(line);
		}
	}
	free(status);
	if (atomic_load(&ms.ending))
		return NULL;
	cm_sd_notify("STOPPING=1");
	cm_warn("mount: %s: unmounting; running jobs are checkpointed",
		strsignal(sig));
	view_fuse_exit(ms.vf);
	return NULL;
}

/* The parent of a background mount: wait for "mounted" from the child. */
static int wait_child(pid_t pid, int rfd)
{
	char buf[16] = "";
	ssize_t n;
	int status;

	do {
		n = read(rfd, buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	close(rfd);
	if (n > 0 && !strncmp(buf, "mounted", 7))
		return 0;
	if (waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
	    WEXITSTATUS(status))
		return WEXITSTATUS(status);
	return 1;
}

/* Fork into the background; in the child, *pipe_w is the parent's pipe. */
static int daemonize(int *pipe_w)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0) {
		fprintf(stderr, "vaultfs: mount: pipe: %s\n", strerror(errno));
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "vaultfs: mount: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid > 0) {
		close(p[1]);
		/* nothing of ours to clean up here: the child owns it all */
		_exit(wait_child(pid, p[0]));
	}
	close(p[0]);
	*pipe_w = p[1];
	setsid();
	if (chdir("/") < 0) {
		/* paths are absolute by now */
	}
	{
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);

		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			close(null);
		}
	}
	return 0;
}

int cmd_mount(int argc, char **argv)
{
	struct mount_cli cli;
	struct orch_config cfg;
	struct orch_opts oopts;
	struct view_opts vopts;
	struct view_fuse_opts fopts;
	struct orch *o = NULL;
	struct view *v = NULL;
	struct view_fuse *vf = NULL;
	struct cm_err err;
	char mp[PATH_MAX];
	char *log_path = NULL;
	pthread_t sig_thread;
	bool have_sig_thread = false, cleared = false, have_cfg = false;
	size_t recovered = 0;
	int rc;

	rc = parse_args(argc, argv, &cli);
	if (rc)
		return rc < 0 ? 0 : rc;
	/* Buffers of 256 KiB and more (part buffers, read-ahead windows,
	 * requests) are mapped and unmapped, not kept by malloc's arenas
	 * once freed (glibc's threshold would otherwise grow to 32 MiB): the
	 * memory the view counts (view.memoryLimit) is what it holds. */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	if (cli.verbose)
		cm_log_set_level(CM_LOG_INFO);
	cm_log_set_format(cli.log_format);
	rc = vf_load_config("mount", cli.config, &cfg);
	if (rc)
		return rc;
	have_cfg = true;
	cm_err_clear(&err);
	ms.ready_fds[0] = cli.ready_fd;
	ms.ready_fds[1] = -1;
	if (!realpath(cli.mountpoint, mp)) {
		char cwd[PATH_MAX];

		/* a stale mount answers ENOTCONN: make the path absolute by
		 * hand (view_mount_prepare clears it) */
		if (errno != ENOTCONN ||
		    (cli.mountpoint[0] != '/' && !getcwd(cwd, sizeof(cwd)))) {
			fprintf(stderr, "vaultfs: mount: %s: %s\n",
				cli.mountpoint, strerror(errno));
			rc = 1;
			goto out;
		}
		if (cli.mountpoint[0] == '/')
			snprintf(mp, sizeof(mp), "%s", cli.mountpoint);
		else if (snprintf(mp, sizeof(mp), "%s/%s", cwd,
				  cli.mountpoint) >= (int)sizeof(mp)) {
			fprintf(stderr, "vaultfs: mount: %s: path too long\n",
				cli.mountpoint);
			rc = 1;
			goto out;
		}
	}
	if (!cli.foreground) {
		log_path = cli.log
			       ? cm_xstrdup(cli.log)
			       : cm_xasprintf("%s/mount.log", cfg.state_dir);
		ms.log_path = log_path;
		rc = daemonize(&ms.ready_fds[1]);
		if (rc)
			goto out;
	}
	rc = view_mount_prepare(mp, &cleared, &err);
	if (rc) {
		fprintf(stderr, "vaultfs: mount: %s\n", err.msg);
		rc = 1;
		goto out;
	}

	sigemptyset(&ms.sigs);
	sigaddset(&ms.sigs, SIGINT);
	sigaddset(&ms.sigs, SIGTERM);
	sigaddset(&ms.sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &ms.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&oopts, 0, sizeof(oopts));
	oopts.notify = notify_trampoline;
	o = orch_new(&cfg, &oopts, &err);
	if (!o || orch_start(o, &err)) {
		fprintf(stderr, "vaultfs: mount: %s\n", err.msg);
		rc = 1;
		goto out;
	}

	memset(&fopts, 0, sizeof(fopts));
	fopts.mountpoint = mp;
	fopts.allow_other = cli.allow_other;
	fopts.debug = cli.debug_fuse;
	fopts.on_ready = on_ready;
	vf = view_fuse_new(&fopts);
	ms.vf = vf;

	view_opts_init(&vopts);
	vopts.cfg = &cfg;
	vopts.orch = o;
	vopts.dest = orch_destination(o);
	vopts.allow_overwrite = cli.allow_overwrite;
	vopts.allow_delete = cli.allow_delete;
	vopts.whole_bucket = cli.whole_bucket;
	vopts.uid = cli.uid;
	vopts.gid = cli.gid;
	vopts.umask = cli.umask;
	vopts.list_max_keys = cli.list_max_keys;
	vopts.notify = view_fuse_notify_ops();
	vopts.notify_ctx = vf;
	v = view_new(&vopts, &err);
	if (!v) {
		fprintf(stderr, "vaultfs: mount: %s\n", err.msg);
		rc = 1;
		goto out;
	}
	atomic_store(&ms.view, v);
	if (view_recover(v, &recovered, &err))
		fprintf(stderr, "vaultfs: mount: %s\n", err.msg);
	if (recovered)
		cm_warn("mount: cleaned up %zu upload%s of an earlier mount",
			recovered, recovered == 1 ? "" : "s");

	rc = view_fuse_mount(vf, v, &err);
	if (rc) {
		fprintf(stderr, "vaultfs: mount: %s\n", err.msg);
		rc = 1;
		goto out;
	}
	ms.o = o;
	ms.cfg = &cfg;
	if (pthread_create(&sig_thread, NULL, signal_main, NULL) == 0)
		have_sig_thread = true;
	if (cli.foreground)
		fprintf(stderr,
			"vaultfs: mount: %s: %zu vault%s, archive/%s%s\n", mp,
			cfg.nvaults, cfg.nvaults == 1 ? "" : "s",
			orch_destination(o)->name,
			cleared ? " (a stale mount was cleared)" : "");
	rc = view_fuse_run(vf);
	if (rc)
		cm_warn("mount: the FUSE loop ended with %s", strerror(-rc));
	rc = 0;
out:
	if (vf)
		view_fuse_unmount(vf);
	if (have_sig_thread) {
		/* it may still wait for a signal: give it one */
		atomic_store(&ms.ending, true);
		pthread_kill(sig_thread, SIGTERM);
		pthread_join(sig_thread, NULL);
	}
	/* the engine first: its notify callback may be in the view */
	if (o)
		orch_stop(o);
	atomic_store(&ms.view, NULL);
	view_free(v);
	orch_free(o); /* after the view: it borrowed the engine's client */
	view_fuse_free(vf);
	ms.vf = NULL;
	for (int i = 0; i < 2; i++)
		if (ms.ready_fds[i] >= 0 && ms.ready_fds[i] != cli.ready_fd)
			close(ms.ready_fds[i]);
	free(log_path);
	if (have_cfg)
		orch_config_release(&cfg);
	return rc;
}
