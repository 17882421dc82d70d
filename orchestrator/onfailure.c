/*
 * onfailure.c - see onfailure.h.
 *
 * The reaper sleeps on ->changed while nothing runs; while something
 * does, it polls every POLL_MS (waitpid WNOHANG for each pid: a SIGCHLD
 * handler would reach every waitpid of the process, and a pidfd per
 * command is not needed for a handful). Pids are reaped only by it.
 */
#include "onfailure.h"
#include "log.h"
#include "mem.h"
#include "timeutil.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#define POLL_MS 50

struct running {
	pid_t pid;
	uint64_t deadline_ns;  /* monotonic */
	char *job_id;          /* owned */
};

struct orch_failure_cmds {
	pthread_mutex_t lock;
	pthread_cond_t changed;   /* a command started or ended; stopping */
	struct running *v;        /* protected by ->lock: n entries */
	size_t n, cap;            /* protected by ->lock */
	bool stopping;            /* protected by ->lock */
	bool kill_all;            /* protected by ->lock: drain(kill) */
	uint64_t timeout_ns;
	pthread_t reaper;
};

/* How a command ended, in the log (no lock held). */
static void report(const char *job_id, int status, bool killed,
		   unsigned timeout_s)
{
	if (killed)
		cm_warn("job %s: onFailure still running after %u s: killed",
			job_id, timeout_s);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		cm_info("job %s: onFailure ran", job_id);
	else
		cm_warn("job %s: onFailure command %s %d", job_id,
			WIFEXITED(status) ? "exited with" : "killed by signal",
			WIFEXITED(status) ? WEXITSTATUS(status)
					  : WTERMSIG(status));
}

static void *reaper_main(void *arg)
{
	struct orch_failure_cmds *c = arg;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->n == 0) {
			if (c->stopping)
				break;
			pthread_cond_wait(&c->changed, &c->lock);
			continue;
		}
		for (size_t i = 0; i < c->n;) {
			struct running r = c->v[i];
			uint64_t now = cm_now_ns();
			bool killed = false;
			int status = 0;
			pid_t w = waitpid(r.pid, &status, WNOHANG);

			if (w == 0 && (now >= r.deadline_ns || c->kill_all)) {
				kill(-r.pid, SIGKILL);
				kill(r.pid, SIGKILL);
				while ((w = waitpid(r.pid, &status, 0)) < 0 &&
				       errno == EINTR)
					;
				killed = !c->kill_all;
			}
			if (w == 0 || (w < 0 && errno == EINTR)) {
				i++;
				continue;
			}
			c->v[i] = c->v[--c->n];
			pthread_cond_broadcast(&c->changed);
			pthread_mutex_unlock(&c->lock);
			if (w == r.pid)
				report(r.job_id, status, killed,
				       (unsigned)(c->timeout_ns / 1000000000));
			free(r.job_id);
			pthread_mutex_lock(&c->lock);
		}
		if (c->n) {
			pthread_mutex_unlock(&c->lock);
			cm_sleep_ms(POLL_MS);
			pthread_mutex_lock(&c->lock);
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

struct orch_failure_cmds *orch_failure_cmds_new(unsigned timeout_ms)
{
	struct orch_failure_cmds *c = cm_xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->changed, NULL);
	c->timeout_ns = (uint64_t)timeout_ms * 1000000;
	if (pthread_create(&c->reaper, NULL, reaper_main, c) != 0)
		abort(); /* out of resources at start-up */
	return c;
}

int orch_failure_cmds_spawn(struct orch_failure_cmds *c, const char *job_id,
			    const char *cmd, char *const envp[])
{
	char *argv[] = { (char *)"sh", (char *)"-c", (char *)cmd, NULL };
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	pid_t pid;
	int rc;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGHUP);
	sigaddset(&dfl, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF |
					       POSIX_SPAWN_SETPGROUP);
	/* under the lock: the reaper must not see the pid before it is
	 * listed, nor the list without it */
	pthread_mutex_lock(&c->lock);
	rc = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, envp);
	if (rc == 0) {
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 4;
			c->v = cm_xrealloc(c->v, c->cap * sizeof(*c->v));
		}
		c->v[c->n].pid = pid;
		c->v[c->n].deadline_ns = cm_now_ns() + c->timeout_ns;
		c->v[c->n].job_id = cm_xstrdup(job_id);
		c->n++;
		pthread_cond_broadcast(&c->changed);
	}
	pthread_mutex_unlock(&c->lock);
	posix_spawnattr_destroy(&attr);
	if (rc)
		cm_warn("job %s: onFailure: cannot run /bin/sh: %s", job_id,
			strerror(rc));
	else
		cm_info("job %s: onFailure started (pid %d)", job_id,
			(int)pid);
	return rc;
}

void orch_failure_cmds_drain(struct orch_failure_cmds *c, bool kill)
{
	pthread_mutex_lock(&c->lock);
	if (kill)
		c->kill_all = true;
	while (c->n)
		pthread_cond_wait(&c->changed, &c->lock);
	c->kill_all = false;
	pthread_mutex_unlock(&c->lock);
}

void orch_failure_cmds_free(struct orch_failure_cmds *c)
{
	if (!c)
		return;
	orch_failure_cmds_drain(c, false);
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->reaper, NULL);
	free(c->v);
	pthread_cond_destroy(&c->changed);
	pthread_mutex_destroy(&c->lock);
	free(c);
}
