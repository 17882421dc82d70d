/*
 * test_ebs.c - the EBS direct APIs' read side (core/ebs.c) without a
 * server: every block's checksum and length against the answer's headers,
 * the block size taken from the data and checked against BlockSize, and
 * ListSnapshotBlocks pages read, sorted and checked. The calls themselves
 * run against moto in tests/integration/aws_ebs.sh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "core/ebs.c"

static const char block[] = "the bytes of one block";
/* base64 of SHA-256 of `block` without its NUL, computed by the test */
static char good_sum[64];

static int setup(void **state)
{
	uint8_t sum[CM_SHA256_LEN];

	(void)state;
	cm_sha256(block, sizeof(block) - 1, sum);
	cm_base64(sum, sizeof(sum), good_sum);
	return 0;
}

static void test_checksum_good(void **state)
{
	struct cm_err err;

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(ebs_check_block(block, sizeof(block) - 1, good_sum,
					 "SHA256", "22", "b", &err), 0);
	/* the algorithm and the length are optional in the check */
	assert_int_equal(ebs_check_block(block, sizeof(block) - 1, good_sum,
					 NULL, NULL, "b", &err), 0);
}

static void test_checksum_bad(void **state)
{
	char flipped[sizeof(block)];
	struct cm_err err;

	(void)state;
	memcpy(flipped, block, sizeof(block));
	flipped[3] ^= 1;
	cm_err_clear(&err);
	assert_int_equal(ebs_check_block(flipped, sizeof(block) - 1,
					 good_sum, "SHA256", NULL, "blk 7",
					 &err), -EIO);
	assert_non_null(strstr(err.msg, "blk 7: SHA-256"));
	assert_non_null(strstr(err.msg, good_sum));
	/* one byte short */
	assert_int_equal(ebs_check_block(block, sizeof(block) - 2, good_sum,
					 "SHA256", NULL, "b", &err), -EIO);
	/* no checksum at all is not a pass */
	assert_int_equal(ebs_check_block(block, sizeof(block) - 1, NULL,
					 "SHA256", NULL, "b", &err), -EIO);
	assert_non_null(strstr(err.msg, "no x-amz-Checksum"));
	assert_int_equal(ebs_check_block(block, sizeof(block) - 1, "",
					 NULL, NULL, "b", &err), -EIO);
	/* another algorithm is not checked as if it were SHA-256 */
	assert_int_equal(ebs_check_block(block, sizeof(block) - 1, good_sum,
					 "CRC32", NULL, "b", &err), -EIO);
	assert_non_null(strstr(err.msg, "CRC32"));
	/* x-amz-Data-Length that is not the bytes received */
	assert_int_equal(ebs_check_block(block, sizeof(block) - 1, good_sum,
					 "SHA256", "524288", "b", &err), -EIO);
	assert_non_null(strstr(err.msg, "x-amz-Data-Length"));
	assert_int_equal(ebs_check_block(block, sizeof(block) - 1, good_sum,
					 "SHA256", "22x", "b", &err), -EIO);
}

static void test_block_size(void **state)
{
	const uint64_t gib = 1ull << 30;
	struct cm_err err;
	uint32_t bs = 0;

	(void)state;
	cm_err_clear(&err);
	/* AWS: BlockSize is the block */
	assert_int_equal(ebs_block_size("snap-1", 524288, 524288, gib, &bs,
					&err), 0);
	assert_int_equal(bs, 524288);
	/* BlockSize 512 with 512 KiB blocks: the data decides */
	bs = 0;
	assert_int_equal(ebs_block_size("snap-1", 512, 524288, gib, &bs,
					&err), 0);
	assert_int_equal(bs, 524288);
	/* blocks smaller than BlockSize contradict it */
	assert_int_equal(ebs_block_size("snap-1", 524288, 512, gib, &bs,
					&err), -EIO);
	assert_non_null(strstr(err.msg, "BlockSize 524288"));
	/* BlockSize that does not divide the block */
	assert_int_equal(ebs_block_size("snap-1", 384, 524288, gib, &bs,
					&err), -EIO);
	assert_int_equal(ebs_block_size("snap-1", 0, 524288, gib, &bs,
					&err), -EIO);
	/* not a power of two, too small, too large */
	assert_int_equal(ebs_block_size("snap-1", 512, 524288 + 512, gib, &bs,
					&err), -EIO);
	assert_int_equal(ebs_block_size("snap-1", 256, 256, gib, &bs, &err),
			 -EIO);
	assert_int_equal(ebs_block_size("snap-1", 512, 32u << 20, gib, &bs,
					&err), -EIO);
	/* a volume the blocks do not tile */
	assert_int_equal(ebs_block_size("snap-1", 512, 524288,
					gib + 4096, &bs, &err), -EIO);
	assert_non_null(strstr(err.msg, "snap-1"));
}

static int parse_pages(const char *const *pages, size_t n,
		       struct ebs_listing *l, struct cm_err *err)
{
	size_t cap = 0;
	int rc = 0;

	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < n && !rc; i++) {
		struct cm_json *j = NULL;

		assert_int_equal(cm_json_parse(pages[i], strlen(pages[i]), &j,
					       err), 0);
		l->pages++;
		rc = take_page("snap-1", j, l, &cap, err);
		cm_json_free(j);
	}
	if (!rc)
		rc = finish_listing("snap-1", l, err);
	if (rc)
		ebs_listing_release(l);
	return rc;
}

static void test_listing(void **state)
{
	/* indexes as numbers or as decimal strings, out of order over two
	 * pages; VolumeSize in GiB; ExpiryTime the earliest */
	const char *const pages[] = {
		"{\"Blocks\": [{\"BlockIndex\": 9, \"BlockToken\": \"t9\"},"
		" {\"BlockIndex\": \"2\", \"BlockToken\": \"t2\"}],"
		" \"BlockSize\": 512, \"VolumeSize\": 1,"
		" \"ExpiryTime\": 2000000000, \"NextToken\": \"p2\"}",
		"{\"Blocks\": [{\"BlockIndex\": 2047, \"BlockToken\": \"tl\"}],"
		" \"BlockSize\": 512, \"VolumeSize\": 1,"
		" \"ExpiryTime\": 1900000000}",
	};
	struct ebs_listing l;
	struct cm_err err;

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(parse_pages(pages, 2, &l, &err), 0);
	assert_int_equal(l.n, 3);
	assert_int_equal(l.blocks[0].index, 2);
	assert_int_equal(l.blocks[1].index, 9);
	assert_int_equal(l.blocks[2].index, 2047);
	assert_string_equal(ebs_listing_find(&l, 9)->token, "t9");
	assert_null(ebs_listing_find(&l, 3));
	assert_null(ebs_listing_find(&l, 0));
	assert_int_equal(l.volume_bytes, 1ull << 30);
	assert_int_equal(l.block_size, 512);
	assert_int_equal((long long)l.expiry, 1900000000ll);
	assert_false(ebs_listing_expired(&l, 1800000000));
	assert_true(ebs_listing_expired(&l, 1900000000 - 30));
	ebs_listing_release(&l);
}

static void test_listing_bad(void **state)
{
	const char *const dup[] = {
		"{\"Blocks\": [{\"BlockIndex\": 4, \"BlockToken\": \"a\"},"
		" {\"BlockIndex\": 4, \"BlockToken\": \"b\"}],"
		" \"BlockSize\": 524288, \"VolumeSize\": 1}",
	};
	const char *const past_end[] = {
		"{\"Blocks\": [{\"BlockIndex\": 2048, \"BlockToken\": \"a\"}],"
		" \"BlockSize\": 524288, \"VolumeSize\": 1}",
	};
	const char *const no_size[] = {
		"{\"Blocks\": [], \"VolumeSize\": 1}",
	};
	const char *const no_token[] = {
		"{\"Blocks\": [{\"BlockIndex\": 1}],"
		" \"BlockSize\": 524288, \"VolumeSize\": 1}",
	};
	const char *const disagree[] = {
		"{\"Blocks\": [], \"BlockSize\": 524288, \"VolumeSize\": 1}",
		"{\"Blocks\": [], \"BlockSize\": 524288, \"VolumeSize\": 2}",
	};
	struct ebs_listing l;
	struct cm_err err;

	(void)state;
	cm_err_clear(&err);
	assert_int_equal(parse_pages(dup, 1, &l, &err), -EIO);
	assert_non_null(strstr(err.msg, "listed twice"));
	assert_int_equal(parse_pages(past_end, 1, &l, &err), -EIO);
	assert_non_null(strstr(err.msg, "past the end"));
	assert_int_equal(parse_pages(no_size, 1, &l, &err), -EIO);
	assert_int_equal(parse_pages(no_token, 1, &l, &err), -EIO);
	assert_int_equal(parse_pages(disagree, 2, &l, &err), -EIO);
	assert_non_null(strstr(err.msg, "disagree"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checksum_good),
		cmocka_unit_test(test_checksum_bad),
		cmocka_unit_test(test_block_size),
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_listing_bad),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
