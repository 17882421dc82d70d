/*
 * probe.c - see probe.h. The one door to libblkid.
 *
 * Two passes over the same window of the fd, each with its own low-level
 * probe: superblocks (type, label, uuid, usage; a superblock with a bad
 * checksum is still reported, flagged, so that the caller can say "found
 * ext4 but it would not mount" rather than "found nothing"), then, when
 * asked, the partition table and its partitions. libblkid reads through
 * the fd with pread and keeps no reference to it after blkid_free_probe.
 * Its results are copied into fixed fields of struct arc_probe; only the
 * partition array is allocated.
 */
#include "probe.h"

#include <blkid/blkid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "mem.h"

static void copy_value(blkid_probe pr, const char *name, char *dst,
		       size_t n)
{
	const char *v = NULL;

	if (blkid_probe_lookup_value(pr, name, &v, NULL) == 0 && v)
		snprintf(dst, n, "%s", v);
}

static int new_probe(int fd, uint64_t offset, uint64_t size,
		     blkid_probe *prp, struct cm_err *err)
{
	blkid_probe pr = blkid_new_probe();

	if (!pr)
		abort(); /* out of memory */
	if (cm_fault("arc.probe") ||
	    blkid_probe_set_device(pr, fd, (blkid_loff_t)offset,
				   (blkid_loff_t)size) != 0) {
		blkid_free_probe(pr);
		return cm_err_set(err, EIO, "cannot probe %llu bytes at %llu",
				  (unsigned long long)size,
				  (unsigned long long)offset);
	}
	*prp = pr;
	return 0;
}

static int probe_superblocks(int fd, uint64_t offset, uint64_t size,
			     struct arc_probe *out, struct cm_err *err)
{
	blkid_probe pr = NULL; /* new_probe sets it when it returns 0 */
	const char *v = NULL;
	int rc, r;

	rc = new_probe(fd, offset, size, &pr, err);
	if (rc)
		return rc;
	out->size = (uint64_t)blkid_probe_get_size(pr);
	blkid_probe_enable_partitions(pr, 0);
	blkid_probe_enable_superblocks(pr, 1);
	blkid_probe_set_superblocks_flags(pr, BLKID_SUBLKS_TYPE |
					      BLKID_SUBLKS_LABEL |
					      BLKID_SUBLKS_UUID |
					      BLKID_SUBLKS_USAGE |
					      BLKID_SUBLKS_BADCSUM);
	r = blkid_do_safeprobe(pr);
	if (r == -2) {
		out->ambivalent = true;
	} else if (r < 0) {
		rc = cm_err_set(err, EIO, "probing for a filesystem failed");
	} else if (r == 0) {
		copy_value(pr, "TYPE", out->fstype, sizeof(out->fstype));
		copy_value(pr, "USAGE", out->usage, sizeof(out->usage));
		copy_value(pr, "LABEL", out->label, sizeof(out->label));
		copy_value(pr, "UUID", out->uuid, sizeof(out->uuid));
		if (blkid_probe_lookup_value(pr, "SBBADCSUM", &v, NULL) == 0)
			out->bad_csum = true;
	}
	blkid_free_probe(pr);
	return rc;
}

static int probe_partitions(int fd, uint64_t offset, uint64_t size,
			    struct arc_probe *out, struct cm_err *err)
{
	blkid_probe pr = NULL; /* new_probe sets it when it returns 0 */
	blkid_partlist ls;
	blkid_parttable tab;
	int rc, n;

	rc = new_probe(fd, offset, size, &pr, err);
	if (rc)
		return rc;
	blkid_probe_enable_superblocks(pr, 0);
	blkid_probe_enable_partitions(pr, 1);
	blkid_probe_set_partitions_flags(pr, BLKID_PARTS_ENTRY_DETAILS);
	ls = blkid_probe_get_partitions(pr);
	tab = ls ? blkid_partlist_get_table(ls) : NULL;
	if (!tab)
		goto out; /* no partition table: not an error */
	snprintf(out->pttype, sizeof(out->pttype), "%s",
		 blkid_parttable_get_type(tab) ? blkid_parttable_get_type(tab)
					       : "unknown");
	n = blkid_partlist_numof_partitions(ls);
	if (n <= 0)
		goto out;
	out->parts = cm_xcalloc((size_t)n, sizeof(*out->parts));
	for (int i = 0; i < n; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		struct arc_probe_part *p = &out->parts[out->nparts];
		const char *s;

		if (!par)
			continue;
		p->partno = (unsigned)blkid_partition_get_partno(par);
		p->start = (uint64_t)blkid_partition_get_start(par) * 512;
		p->size = (uint64_t)blkid_partition_get_size(par) * 512;
		s = blkid_partition_get_type_string(par);
		if (s)
			snprintf(p->type, sizeof(p->type), "%s", s);
		else
			snprintf(p->type, sizeof(p->type), "0x%x",
				 (unsigned)blkid_partition_get_type(par));
		s = blkid_partition_get_uuid(par);
		if (s)
			snprintf(p->uuid, sizeof(p->uuid), "%s", s);
		s = blkid_partition_get_name(par);
		if (s)
			snprintf(p->name, sizeof(p->name), "%s", s);
		p->container = blkid_partition_is_extended(par) != 0;
		out->nparts++;
	}
out:
	blkid_free_probe(pr);
	return 0;
}

int arc_probe_fd(int fd, uint64_t offset, uint64_t size, bool partitions,
		 struct arc_probe *out, struct cm_err *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = probe_superblocks(fd, offset, size, out, err);
	if (rc == 0 && partitions)
		rc = probe_partitions(fd, offset, size, out, err);
	return rc;
}

void arc_probe_release(struct arc_probe *p)
{
	free(p->parts);
	p->parts = NULL;
	p->nparts = 0;
}
