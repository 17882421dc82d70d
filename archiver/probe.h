/*
 * probe.h - what is on a device or image: a filesystem (type, label, uuid)
 * or a partition table (gpt, dos) and its partitions. The one door to
 * libblkid (probe.c).
 *
 * Probing reads a few blocks through a borrowed fd and writes nothing. It
 * works on block devices and on image files alike, and on a window of
 * either (a partition, seen through its parent's fd with an offset), so an
 * image need not be attached to a loop device just to be looked at.
 */
#ifndef VAULTFS_PROBE_H
#define VAULTFS_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct arc_probe_part {
	unsigned partno;   /* as the kernel numbers it: loop0p<partno> */
	uint64_t start;    /* bytes from the start of the device */
	uint64_t size;     /* bytes */
	char type[40];     /* GPT type GUID, or MBR type as "0x83" */
	char uuid[40];     /* GPT partition GUID, or "" */
	char name[80];     /* GPT partition name (UTF-8), or "" */
	bool container;    /* MBR extended partition: holds logical ones */
};

struct arc_probe {
	uint64_t size;        /* bytes looked at */
	char fstype[32];      /* "ext4", "xfs", "swap", ... or "" */
	char usage[16];       /* "filesystem", "raid", "crypto", "other", "" */
	char label[256];
	char uuid[64];
	bool bad_csum;        /* found, but its superblock checksum is bad */
	bool ambivalent;      /* several signatures: none is trusted */
	char pttype[16];      /* "gpt", "dos", ... or "" */
	struct arc_probe_part *parts;  /* owned, nparts of them */
	size_t nparts;
};

/*
 * Probe `size` bytes of `fd` from `offset` (size 0: to the end). With
 * `partitions`, partition tables are looked for too. `out` is the
 * caller's; release it with arc_probe_release() whatever the result.
 * "Nothing found" is success with empty fields.
 */
int arc_probe_fd(int fd, uint64_t offset, uint64_t size, bool partitions,
		 struct arc_probe *out, struct cm_err *err);
void arc_probe_release(struct arc_probe *p);

#endif
