/*
 * vault_local.h - local vaults: a directory of recovery points.
 *
 * Each entry of the vault directory is a recovery point when it is
 *   - a regular file: a disk image (type image), or
 *   - a directory: a filesystem tree (type tree),
 * except names starting with '.', names ending in ".partial" or ".json",
 * and "lost+found". Symlinks, devices, sockets and fifos are skipped: a
 * vault is never followed out of itself.
 *
 * NAME.json beside NAME is its optional sidecar:
 *   { "resourceId": "arn:aws:ec2:...:snapshot/snap-1",
 *     "creationTime": "2026-11-26T20:45:16Z",
 *     "tags": { "k": "v" } }
 * every key optional, no other key allowed. It must be a regular file
 * (read without following a symlink, and without blocking on a FIFO):
 * anything else by that name is an error of the recovery point. Without
 * one, the resource id
 * is "local:VAULT:NAME", the creation time the mtime, and there are no
 * tags. A sidecar that does not parse or check does not hide the recovery
 * point: it is listed with `error` set, and the job for it fails with that
 * message instead of archiving under a wrong name.
 *
 * Completeness. A recovery point is taken only once it is complete, which
 * the watcher decides as: its signature - size, mtime, ctime and inode;
 * for a tree also the number of entries, their total size and the newest
 * mtime/ctime in it; plus the sidecar's size and mtime - has not changed
 * for a quiet period (default 2 s), AND no process has one of its files
 * open for writing. The second test scans /proc/PID/fdinfo for descriptors
 * opened O_WRONLY or O_RDWR and compares their (device, inode) with the
 * image's or the tree's files. It sees the processes of this pid namespace
 * that we may inspect (all of them as root); a writer hidden from it (in
 * another container, say) is still held back by the quiet period, which
 * any active writer keeps resetting. (File leases were rejected: breaking
 * one sends SIGIO, whose default action would kill the daemon.)
 *
 * Events. The watcher adds an inotify watch on the vault directory
 * (IN_CREATE, IN_CLOSE_WRITE, IN_MOVED_TO, IN_MOVED_FROM, IN_DELETE) and
 * rescans the whole directory periodically, so a missed event (overflow,
 * a write inside a tree, which inotify does not report) only delays a
 * recovery point. A recovery point is reported once; if it disappears and
 * comes back (deleted and re-created, renamed away and back) it is
 * reported again.
 *
 * Threads: none inside. A scan is a pure function of the directory. A
 * watcher is driven by one thread at a time (its owner), through
 * orch_vault_watch_poll(); it may also poll() orch_vault_watch_fd() with
 * orch_vault_watch_timeout() among other descriptors.
 */
#ifndef VAULTFS_ORCH_VAULT_LOCAL_H
#define VAULTFS_ORCH_VAULT_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "rp.h"
#include "rp_identity.h"

#define ORCH_VAULT_QUIET_MS 2000

/* The names a vault never treats as recovery points (see above). */
bool orch_vault_name_ignored(const char *name);

/*
 * Every recovery point in the vault now, sorted by name, whether complete
 * or not. -errno when the directory cannot be read. Release the list with
 * orch_rp_list_release(). The vault config is borrowed for the call.
 */
int orch_vault_scan(const struct orch_vault_config *vault,
		    struct orch_rp_list *out, struct cm_err *err);

/* The same, cheaply, for a listing: only vault, name, path, type and
 * mtime (the entry's own) are filled; no tree walk, no sidecar. */
int orch_vault_list(const struct orch_vault_config *vault,
		    struct orch_rp_list *out, struct cm_err *err);

/* One recovery point by name; -ENOENT if there is none by that name. */
int orch_vault_inspect(const struct orch_vault_config *vault,
		       const char *name, struct orch_recovery_point *out,
		       struct cm_err *err);

/* Some process has a file of the recovery point open for writing. */
bool orch_rp_open_for_writing(const struct orch_recovery_point *rp);

struct orch_vault_watch_opts {
	unsigned quiet_ms;  /* unchanged this long; 0: ORCH_VAULT_QUIET_MS */
	unsigned rescan_ms; /* full rescan period; 0: never (events only) */
};

struct orch_vault_watch;

/* Start watching (the vault config is copied). Recovery points already
 * there are candidates like new ones. Free with orch_vault_watch_free(). */
struct orch_vault_watch *
orch_vault_watch_new(const struct orch_vault_config *vault,
		     const struct orch_vault_watch_opts *opts,
		     struct cm_err *err);
void orch_vault_watch_free(struct orch_vault_watch *w); /* NULL: no-op */

/*
 * Process events and deadlines, waiting up to timeout_ms (0: do not wait,
 * -1: until something is ready) for at least one recovery point to become
 * complete. Those that did are appended to `ready` (which the caller
 * initialised, zeroed, and releases). Returns 0, or -errno when the vault
 * directory is gone or unreadable.
 */
int orch_vault_watch_poll(struct orch_vault_watch *w, int timeout_ms,
			  struct orch_rp_list *ready, struct cm_err *err);

/* The inotify descriptor (readable when events wait), and the time in ms
 * until the watcher next needs a poll for its deadlines (-1: none). */
int orch_vault_watch_fd(const struct orch_vault_watch *w);
int orch_vault_watch_timeout(const struct orch_vault_watch *w);

#endif
