/*
 * test_overlay.c - the copy-on-write overlay's block logic (archiver/
 * overlay.c) and the superblock checks of a journal replay (archiver/
 * replay.c), without FUSE: read_range() and write_range() are called on an
 * overlay made by hand over two temporary files, and every read is checked
 * against a model of what the file must hold. The image file must never
 * change; the limit must refuse a write whole.
 *
 * The FUSE mount, the loop devices and the kernel's replay are tried by
 * tests/integration/archive_replay.sh and orch_replay.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archiver/overlay.c"
#include "archiver/replay.c"

#define SIZE (5 * BLOCK + 100) /* ends with a short block */

struct fixture {
	struct arc_overlay ov;
	unsigned char image[SIZE];  /* what the image file holds */
	unsigned char model[SIZE];  /* what the served file must hold */
};

static int temp_file(void)
{
	char name[] = "/tmp/vaultfs-test-overlay-XXXXXX";
	int fd = mkstemp(name);

	assert_true(fd >= 0);
	unlink(name);
	return fd;
}

static struct fixture *fixture_new(uint64_t offset, uint64_t limit)
{
	struct fixture *f = calloc(1, sizeof(*f));

	for (size_t i = 0; i < SIZE; i++)
		f->image[i] = (unsigned char)(i * 7 + i / 4096);
	memcpy(f->model, f->image, SIZE);
	f->ov.img_fd = temp_file();
	f->ov.cow_fd = temp_file();
	/* the volume starts `offset` bytes into the image file */
	assert_int_equal(pwrite(f->ov.img_fd, "junk", 4, 0), 4);
	assert_int_equal(pwrite(f->ov.img_fd, f->image, SIZE, (off_t)offset),
			 SIZE);
	assert_int_equal(ftruncate(f->ov.cow_fd, SIZE), 0);
	f->ov.offset = offset;
	f->ov.size = SIZE;
	f->ov.limit = limit;
	f->ov.nchunks = 1;
	f->ov.map = calloc(1, sizeof(*f->ov.map));
	return f;
}

static void fixture_free(struct fixture *f)
{
	unsigned char now[SIZE];

	/* the image is never written */
	assert_int_equal(pread(f->ov.img_fd, now, SIZE, (off_t)f->ov.offset),
			 SIZE);
	assert_memory_equal(now, f->image, SIZE);
	close(f->ov.img_fd);
	close(f->ov.cow_fd);
	free(f->ov.map[0]);
	free(f->ov.map);
	free(f);
}

/* Every range of a few shapes reads as the model says. */
static void check_reads(struct fixture *f)
{
	static const size_t lens[] = { 1, 100, BLOCK - 1, BLOCK, BLOCK + 1,
				       3 * BLOCK + 17 };
	unsigned char got[SIZE];

	for (size_t off = 0; off < SIZE; off += 1021)
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			size_t n = lens[i];

			if (n > SIZE - off)
				n = SIZE - off;
			assert_int_equal(read_range(&f->ov, (char *)got, n, off),
					 0);
			assert_memory_equal(got, f->model + off, n);
		}
	assert_int_equal(read_range(&f->ov, (char *)got, SIZE, 0), 0);
	assert_memory_equal(got, f->model, SIZE);
}

static void put(struct fixture *f, size_t off, size_t n, unsigned char c)
{
	char buf[SIZE];

	memset(buf, c, n);
	assert_int_equal(write_range(&f->ov, buf, n, off), 0);
	memset(f->model + off, c, n);
}

static void test_copy_on_write(void **state)
{
	struct fixture *f = fixture_new(512, 1 << 20);

	(void)state;
	check_reads(f);
	put(f, 100, 10, 0xa1);                /* inside block 0 */
	check_reads(f);
	put(f, BLOCK - 5, 10, 0xb2);          /* across blocks 0 and 1 */
	check_reads(f);
	put(f, 2 * BLOCK, BLOCK, 0xc3);       /* block 2, whole */
	check_reads(f);
	put(f, 3 * BLOCK + 1, BLOCK, 0xd4);   /* ends inside block 4 */
	check_reads(f);
	put(f, SIZE - 50, 50, 0xe5);          /* the short last block */
	check_reads(f);
	put(f, 4 * BLOCK + 7, 3, 0xf6);       /* a block already written */
	check_reads(f);
	assert_int_equal(arc_overlay_used(&f->ov), 5 * BLOCK + BLOCK);
	fixture_free(f);
}

static void test_limit(void **state)
{
	struct fixture *f = fixture_new(0, 2 * BLOCK);
	char buf[3 * BLOCK];
	int last = 0;

	(void)state;
	put(f, 10, 10, 0x11);                 /* block 0 */
	memset(buf, 0x22, sizeof(buf));
	/* blocks 1-3: one too many; nothing of it is kept */
	assert_int_equal(write_range(&f->ov, buf, 3 * BLOCK, BLOCK),
			 -ENOSPC);
	assert_int_equal(arc_overlay_refused(&f->ov), 1);
	check_reads(f);
	put(f, BLOCK + 1, 5, 0x33);           /* block 1: the last room */
	put(f, 0, 2 * BLOCK, 0x44);           /* rewrites cost nothing */
	assert_int_equal(write_range(&f->ov, buf, 1, 3 * BLOCK), -ENOSPC);
	/* past the end: the file does not grow */
	assert_int_equal(write_range(&f->ov, buf, 2, SIZE - 1), -ENOSPC);
	assert_int_equal(arc_overlay_refused(&f->ov), 2);
	assert_int_equal(arc_overlay_errors(&f->ov, &last), 1);
	assert_int_equal(last, ENOSPC);
	check_reads(f);
	assert_int_equal(arc_overlay_used(&f->ov), 2 * BLOCK);
	fixture_free(f);
}

/* A failed write of the overlay file is counted, and leaves the block
 * the image's. */
static void test_write_error(void **state)
{
	struct fixture *f = fixture_new(0, 1 << 20);
	int rw = f->ov.cow_fd, last = 0;
	char buf[10] = { 0 };

	(void)state;
	f->ov.cow_fd = open("/dev/null", O_RDONLY);
	assert_true(f->ov.cow_fd >= 0);
	assert_int_equal(write_range(&f->ov, buf, sizeof(buf), 5), -EBADF);
	assert_int_equal(arc_overlay_errors(&f->ov, &last), 1);
	assert_int_equal(last, EBADF);
	assert_int_equal(arc_overlay_used(&f->ov), 0);
	close(f->ov.cow_fd);
	f->ov.cow_fd = rw;
	check_reads(f);
	fixture_free(f);
}

/* journal_state() on hand-made superblocks */
static void test_journal_state(void **state)
{
	unsigned char sb[BTRFS_SB_OFFSET + 4096];
	int fd = temp_file();

	(void)state;
	memset(sb, 0, sizeof(sb));
	sb[EXT_SB_OFFSET + EXT_MAGIC_AT] = 0x53;
	sb[EXT_SB_OFFSET + EXT_MAGIC_AT + 1] = 0xef;
	assert_int_equal(pwrite(fd, sb, sizeof(sb), 4096), sizeof(sb));
	assert_int_equal(journal_state(fd, 4096, "ext4"), JOURNAL_CLEAN);
	sb[EXT_SB_OFFSET + EXT_INCOMPAT_AT] = EXT_INCOMPAT_RECOVER | 0x40;
	assert_int_equal(pwrite(fd, sb, sizeof(sb), 4096), sizeof(sb));
	assert_int_equal(journal_state(fd, 4096, "ext3"), JOURNAL_DIRTY);
	assert_int_equal(journal_state(fd, 0, "ext4"), JOURNAL_UNKNOWN);
	assert_int_equal(journal_state(fd, 0, "xfs"), JOURNAL_ASK);

	memset(sb, 0, sizeof(sb));
	memcpy(sb + BTRFS_SB_OFFSET + BTRFS_MAGIC_AT, BTRFS_MAGIC, 8);
	assert_int_equal(pwrite(fd, sb, sizeof(sb), 0), sizeof(sb));
	assert_int_equal(journal_state(fd, 0, "btrfs"), JOURNAL_CLEAN);
	sb[BTRFS_SB_OFFSET + BTRFS_LOG_ROOT_AT + 5] = 1;
	assert_int_equal(pwrite(fd, sb, sizeof(sb), 0), sizeof(sb));
	assert_int_equal(journal_state(fd, 0, "btrfs"), JOURNAL_DIRTY);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_on_write),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_write_error),
		cmocka_unit_test(test_journal_state),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
