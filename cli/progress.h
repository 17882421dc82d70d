/*
 * progress.h - a one-line progress display for long transfers.
 *
 * Shows bytes so far, the total and percentage when known, the rate over
 * the last few seconds and the time left, redrawn in place on stderr. It
 * appears only when stderr is a terminal and the caller is not quiet;
 * otherwise vf_progress_start() returns NULL and every call is a no-op, so
 * scripts and logs see nothing.
 *
 * Threads: the display runs on its own small thread that wakes every
 * 200 ms and asks `fn(ctx)` for the byte count, so a caller blocked inside
 * a transfer still shows movement. fn must be safe to call from that
 * thread (an atomic load, typically). vf_progress_stop() joins the thread,
 * draws the final line and frees everything.
 */
#ifndef VAULTFS_PROGRESS_H
#define VAULTFS_PROGRESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t (*vf_progress_fn)(void *ctx);

struct vf_progress;

/* label is copied (and shortened to fit); total 0 means unknown. */
struct vf_progress *vf_progress_start(const char *label, uint64_t total,
				      vf_progress_fn fn, void *ctx, bool quiet);
/* Set the total once it becomes known. */
void vf_progress_set_total(struct vf_progress *p, uint64_t total);
/* Final line (with the average rate when ok), newline, free. NULL: no-op. */
void vf_progress_stop(struct vf_progress *p, bool ok);

/*
 * A transfer's progress callback feeding a bar: pass vf_progress_feed_fn
 * with a struct vf_progress_feed as the callback's ctx, and
 * vf_progress_feed_now with the same as the bar's fn ctx. The callback runs
 * on the transfer's thread; `bar` is set by the caller once the bar is
 * started (it may stay NULL).
 */
struct vf_progress_feed {
	struct vf_progress *bar;
	_Atomic uint64_t done;
	_Atomic uint64_t total;
};
void vf_progress_feed_fn(void *ctx, uint64_t done, uint64_t total);
uint64_t vf_progress_feed_now(void *ctx);

/* SIGINT, SIGTERM and SIGHUP store the signal's number in *flag (a static
 * the caller owns, lock-free: the handler only stores), and SIGPIPE is
 * ignored (a closed stdout is an EPIPE error). For one command per
 * process. */
void vf_cancel_on_signals(atomic_int *flag);

/*
 * After a command stopped for signal `sig` (what vf_cancel_on_signals
 * stored): print "vaultfs: CMD: interrupted" (SIGINT; "terminated" for
 * SIGTERM, "hangup" for SIGHUP), with ": WHAT" when what is not NULL
 * ("upload aborted"), and return the shell's status for it, 128 + sig
 * (130 for SIGINT).
 */
int vf_cancelled(const char *cmd, int sig, const char *what);

/* True when the terminal must get no escape sequences: TERM unset, empty
 * or "dumb", or NO_COLOR set and not empty. */
bool vf_term_plain(void);

/* "1.5 MiB" into out (at least 16 bytes); shared with other commands. */
void vf_format_bytes(uint64_t n, char *out, size_t len);

#endif
