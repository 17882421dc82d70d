/*
 * onfailure.h - running the onFailure command without holding anyone up.
 *
 * A failed job's command is spawned (/bin/sh -c, in a process group of
 * its own so that a timeout kills everything it started) and the caller
 * goes on at once: a worker takes the next job, start-up recovery the
 * next record. One reaper thread waits for every command it spawned
 * (waitpid on those pids only), logs how each ended, and kills the group
 * of one still running at its deadline (SIGKILL to the group).
 *
 * At the end (orch_failure_cmds_drain, and orch_failure_cmds_free) the
 * owner waits for what is still running, each command until its own
 * deadline at most; `kill` ends them at once instead (vaultfs stopping
 * on a signal).
 *
 * Threads: spawn and drain from any thread; the reaper is the module's
 * own. Lock: ->lock, a leaf (nothing logs under it).
 */
#ifndef VAULTFS_ORCH_ONFAILURE_H
#define VAULTFS_ORCH_ONFAILURE_H

#include <stdbool.h>

struct orch_failure_cmds;

/* Commands are killed `timeout_ms` after their start. */
struct orch_failure_cmds *orch_failure_cmds_new(unsigned timeout_ms);

/*
 * Run `cmd` with `envp` (both borrowed for the call) for job `job_id`;
 * returns at once. 0, or a positive errno when /bin/sh could not be
 * started (logged).
 */
int orch_failure_cmds_spawn(struct orch_failure_cmds *c, const char *job_id,
			    const char *cmd, char *const envp[]);

/* Until nothing spawned is running; with `kill`, killing them first. */
void orch_failure_cmds_drain(struct orch_failure_cmds *c, bool kill);

/* Drain (waiting), stop the reaper, free. NULL is a no-op. */
void orch_failure_cmds_free(struct orch_failure_cmds *c);

#endif
