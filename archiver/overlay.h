/*
 * overlay.h - an image seen through a copy-on-write overlay, so that a
 * filesystem whose journal needs replaying can be mounted with its journal
 * replayed without a byte written to the image (the recovery point).
 *
 * This kernel has no device-mapper (no dm-snapshot) and may have neither
 * nbd nor ublk, but it has FUSE. An overlay is one regular file, named
 * `image`, served by a private FUSE mount in a fresh directory:
 *
 *   DIR/vaultfs-overlay-XXXXXX/         mode 0700, the ARC_RES_OVERLAY
 *       mnt/                            the FUSE mount (an ARC_RES_MOUNT)
 *           image                       `size` bytes
 *       cow                             the overlay: unlinked once open
 *
 * Reads of `image` come from the image (its fd, opened read-only) except
 * for the blocks that were written, which come from `cow`, a sparse file
 * of the image's size (a written block sits at its own offset). A write
 * copies the blocks it touches into `cow` first (4 KiB blocks; the parts
 * of a block the write does not cover are read from the image). The
 * bytes `cow` may hold are capped at `limit`: a write past it fails with
 * ENOSPC and nothing of it is kept, so a replay that needs more fails,
 * and the caller falls back to a mount without replay.
 *
 * The caller attaches a read-write loop device to arc_overlay_path() and
 * mounts the filesystem on it: the kernel replays the journal into `cow`.
 *
 * Resources (tracked in the caller's struct arc_devs, so that its hook
 * journals them and its signal path releases them): the directory (an
 * ARC_RES_OVERLAY, recorded before anything is made in it: its release
 * removes `cow` if it is still named, `mnt` and the directory) and the
 * FUSE mount on DIR/mnt (an ARC_RES_MOUNT, recorded before mount(2)). The
 * overlay file is unlinked as soon as it is open, so a crash can never
 * leave it behind: the kernel frees it with the process's last fd. After
 * kill -9 the FUSE mount is dead (ENOTCONN); the orchestrator's next
 * start unmounts it lazily and removes the directory.
 *
 * Threads: one server thread per overlay answers the FUSE requests (the
 * loop device's reads and writes). It only reads and writes the two
 * files: it takes no lock and never waits for the thread that calls
 * mount(2), so the mount (which waits for the replay's writes, which wait
 * for the server) cannot deadlock. It runs with PR_SET_IO_FLUSHER, so its
 * own allocations never wait for the writeback of the dirty pages it is
 * there to write. Everything else runs on the caller's thread.
 */
#ifndef VAULTFS_OVERLAY_H
#define VAULTFS_OVERLAY_H

#include <stdint.h>

#include "err.h"

struct arc_devs;
struct arc_overlay;

/* The default cap on what an overlay holds: the largest journal mkfs
 * makes by default (XFS's 2 GiB log) is replayed in full. */
#define ARC_OVERLAY_DEFAULT_LIMIT (2ull << 30)

/*
 * Serve `size` bytes of `fd` (an image file or a block device, borrowed:
 * it is duplicated) from `offset` as DIR/.../mnt/image. `dir`: where the
 * private directory is made (created 0700 if missing); NULL means $TMPDIR,
 * else /tmp. `limit`: bytes the overlay may hold; 0 means the default.
 * `name` is for messages (the image's path). On failure nothing is left.
 */
int arc_overlay_new(struct arc_devs *d, int fd, const char *name,
		    uint64_t offset, uint64_t size, const char *dir,
		    uint64_t limit, struct arc_overlay **ovp,
		    struct cm_err *err);

/* The served file: attach a read-write loop device to it. */
const char *arc_overlay_path(const struct arc_overlay *ov);

/* Bytes the overlay holds now (whole blocks). */
uint64_t arc_overlay_used(const struct arc_overlay *ov);
/* Writes refused so far because the overlay was full. */
uint64_t arc_overlay_refused(const struct arc_overlay *ov);
/* Other write or read errors (of the image or of the overlay file: a
 * full disk); *last (may be NULL): the errno of the last one. */
uint64_t arc_overlay_errors(const struct arc_overlay *ov, int *last);
uint64_t arc_overlay_limit(const struct arc_overlay *ov);

/*
 * Release the overlay's resources in `d` and everything created in `d`
 * after them (what is stacked on it: its loop device, the mount), stop
 * the server and free. NULL is a no-op.
 */
void arc_overlay_free(struct arc_overlay *ov);

#endif
