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

/* "1.5 MiB" into out (at least 16 bytes); shared with other commands. */
void vf_format_bytes(uint64_t n, char *out, size_t len);

#endif
