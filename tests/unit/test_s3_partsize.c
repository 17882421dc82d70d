/*
 * test_s3_partsize.c - the arithmetic of the multipart uploader: part
 * sizes at the edges (0 bytes, exactly one part, exactly 10,000 parts,
 * unknown sizes up to 5 TiB), and the multipart ETag.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/crypto.h"
#include "core/s3.h"
#include "core/s3_upload.h"

#define MiB S3_MIB
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)

/* How many parts `size` bytes take, following the part-size rule. */
static unsigned parts_for(uint64_t size, uint64_t expected, uint64_t base,
			  uint64_t *max_part)
{
	uint64_t sent = 0;
	unsigned n = 0;

	*max_part = 0;
	while (sent < size) {
		uint64_t p = s3_part_size_for(++n, expected, base);

		if (p > *max_part)
			*max_part = p;
		sent += p;
		if (n > 20000)
			break; /* a runaway: fail below */
	}
	return n;
}

static void test_known_size(void **state)
{
	uint64_t maxp;

	(void)state;
	/* 0 bytes and tiny objects: the base part size (one PutObject) */
	assert_int_equal(s3_part_size_for(1, 0, 0), 8 * MiB);
	assert_int_equal(s3_part_size_for(1, 1, 0), 8 * MiB);
	/* exactly one part */
	assert_int_equal(s3_part_size_for(1, 8 * MiB, 0), 8 * MiB);
	assert_int_equal(parts_for(8 * MiB, 8 * MiB, 0, &maxp), 1);
	assert_int_equal(parts_for(8 * MiB + 1, 8 * MiB + 1, 0, &maxp), 2);
	/* exactly 10,000 parts of the base size */
	assert_int_equal(s3_part_size_for(1, 10000 * 8 * MiB, 0), 8 * MiB);
	assert_int_equal(parts_for(10000 * 8 * MiB, 10000 * 8 * MiB, 0, &maxp),
			 10000);
	/* one byte more: the next MiB multiple, and fewer parts */
	assert_int_equal(s3_part_size_for(1, 10000 * 8 * MiB + 1, 0), 9 * MiB);
	assert_true(parts_for(10000 * 8 * MiB + 1, 10000 * 8 * MiB + 1, 0,
			      &maxp) <= 10000);
	/* the S3 maximum object: 5 TiB in at most 10,000 parts */
	assert_int_equal(s3_part_size_for(1, 5 * TiB, 0), 525 * MiB);
	assert_true(parts_for(5 * TiB, 5 * TiB, 0, &maxp) <= 10000);
	/* never past the 5 GiB part limit */
	assert_int_equal(s3_part_size_for(1, 100 * TiB, 0), 5 * GiB);
	/* the base is a floor, rounded to whole MiB and kept in range */
	assert_int_equal(s3_part_size_for(1, 100 * MiB, 16 * MiB), 16 * MiB);
	assert_int_equal(s3_part_size_for(1, 0, 6 * MiB + 1), 7 * MiB);
	assert_int_equal(s3_part_size_for(1, 0, 1), 5 * MiB);
	assert_int_equal(s3_part_size_for(1, 0, 50 * GiB), 5 * GiB);
}

static void test_more_than_expected(void **state)
{
	uint64_t maxp;

	(void)state;
	/* 1 GiB expected, 100 GiB arriving: parts keep fitting */
	assert_int_equal(s3_part_size_for(128, 1 * GiB, 0), 8 * MiB);
	assert_int_equal(s3_part_size_for(129, 1 * GiB, 0), 8 * MiB);
	assert_true(parts_for(100 * GiB, 1 * GiB, 0, &maxp) <= 10000);
	/* even 5 TiB after a far too small estimate */
	assert_true(parts_for(5 * TiB, 1 * GiB, 0, &maxp) <= 10000);
	assert_true(maxp <= S3_MAX_PART_SIZE);
	/* beyond the estimate sizes never drop below the estimate's */
	for (unsigned n = 1; n <= 10000; n++)
		assert_true(s3_part_size_for(n, 200 * GiB, 0) >= 21 * MiB);
}

static void test_unknown_size(void **state)
{
	uint64_t bases[] = {0, 5 * MiB, 6 * MiB, 8 * MiB, 64 * MiB, 5 * GiB};
	uint64_t prev;

	(void)state;
	/* doubles every S3_PART_GROWTH_STEP parts */
	assert_int_equal(s3_part_size_for(1, 0, 0), 8 * MiB);
	assert_int_equal(s3_part_size_for(S3_PART_GROWTH_STEP, 0, 0), 8 * MiB);
	assert_int_equal(s3_part_size_for(S3_PART_GROWTH_STEP + 1, 0, 0),
			 16 * MiB);
	assert_int_equal(s3_part_size_for(2 * S3_PART_GROWTH_STEP + 1, 0, 0),
			 32 * MiB);
	/* huge part numbers do not overflow */
	assert_int_equal(s3_part_size_for(4000000000u, 0, 0), 5 * GiB);

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
		uint64_t total = 0, maxp;

		prev = 0;
		for (unsigned n = 1; n <= S3_MAX_PARTS; n++) {
			uint64_t p = s3_part_size_for(n, 0, bases[i]);

			assert_true(p >= S3_MIN_PART_SIZE);
			assert_true(p <= S3_MAX_PART_SIZE);
			assert_true(p % MiB == 0);
			assert_true(p >= prev); /* never shrinks */
			prev = p;
			total += p;
		}
		/* 10,000 parts hold S3's largest object, from any base */
		assert_true(total >= 5 * TiB);
		assert_true(parts_for(5 * TiB, 0, bases[i], &maxp) <= 10000);
		assert_true(maxp <= S3_MAX_PART_SIZE);
	}
	/* memory stays modest for common sizes: 100 GiB in 64 MiB parts */
	{
		uint64_t maxp;

		parts_for(100 * GiB, 0, 0, &maxp);
		assert_true(maxp <= 64 * MiB);
	}
}

static void test_multipart_etag(void **state)
{
	uint8_t md5s[3][CM_MD5_LEN];
	uint8_t all[3 * CM_MD5_LEN], whole[CM_MD5_LEN];
	char want[2 * CM_MD5_LEN + 8], got[S3_ETAG_MAX];

	(void)state;
	/* md5 of the concatenated binary part MD5s, then "-N" */
	cm_md5("part one", 8, md5s[0]);
	cm_md5("part two", 8, md5s[1]);
	cm_md5("3", 1, md5s[2]);
	memcpy(all, md5s, sizeof(all));
	cm_md5(all, sizeof(all), whole);
	cm_hex(whole, sizeof(whole), want);
	strcat(want, "-3");
	s3_multipart_etag((const uint8_t(*)[CM_MD5_LEN])md5s, 3, got);
	assert_string_equal(got, want);

	/* a known value: one part of "" (S3 and Ceph agree on this) */
	cm_md5("", 0, md5s[0]);
	s3_multipart_etag((const uint8_t(*)[CM_MD5_LEN])md5s, 1, got);
	assert_string_equal(got, "59adb24ef3cdbe0297f05b395827453f-1");
	assert_true(
	    s3_etag_equal("\"59adb24ef3cdbe0297f05b395827453f-1\"", got));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_size),
	    cmocka_unit_test(test_more_than_expected),
	    cmocka_unit_test(test_unknown_size),
	    cmocka_unit_test(test_multipart_etag),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
