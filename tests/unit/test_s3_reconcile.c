/*
 * test_s3_reconcile.c - the decision behind a lost CompleteMultipartUpload
 * answer (s3_complete_matches): is the object now at the key the one our
 * parts make? With MD5 ETags, its ETag and size; without (SSE-KMS), its
 * size and its part count, from x-amz-mp-parts-count or else the ETag's
 * "-N"; nothing known of the parts refuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/s3_upload.h"

#define MD5_ETAG "8b4548a3f88c071b6b3f902b9c6c8a7c-3"
/* what SSE-KMS gives: not the MD5 of anything we know, still "-N" */
#define KMS_ETAG "f1d2d2f924e986ac86fdf7b36c94bcdf-3"

static struct s3_object_info seen(uint64_t size, const char *etag,
				  unsigned parts_count)
{
	struct s3_object_info i;

	memset(&i, 0, sizeof(i));
	i.size = size;
	snprintf(i.etag, sizeof(i.etag), "%s", etag);
	i.parts_count = parts_count;
	return i;
}

static int check(const struct s3_complete_want *w,
		 const struct s3_object_info *s, const char *want_msg)
{
	struct cm_err e;
	int rc;

	cm_err_clear(&e);
	rc = s3_complete_matches(w, s, &e);
	if (want_msg) {
		assert_int_equal(rc, -EIO);
		if (!strstr(e.msg, want_msg))
			fail_msg("message '%s' lacks '%s'", e.msg, want_msg);
	} else {
		assert_int_equal(rc, 0);
		assert_string_equal(e.msg, ""); /* untouched on success */
	}
	return rc;
}

static void test_md5_etags(void **state)
{
	struct s3_complete_want w = {.size = 12582912, .parts = 3,
				     .etag = MD5_ETAG};
	struct s3_object_info s;

	(void)state;
	s = seen(12582912, MD5_ETAG, 0);
	check(&w, &s, NULL);
	s = seen(12582912, "\"8B4548A3F88C071B6B3F902B9C6C8A7C-3\"", 0);
	check(&w, &s, NULL); /* quotes and case do not matter */
	s = seen(12582912, KMS_ETAG, 3);
	check(&w, &s, "ETag"); /* right size and parts, not our bytes */
	s = seen(12582911, MD5_ETAG, 0);
	check(&w, &s, "12582911 bytes, not the 12582912");
}

static void test_kms_size_and_parts(void **state)
{
	struct s3_complete_want w = {.size = 12582912, .parts = 3};
	struct s3_object_info s;

	(void)state;
	/* x-amz-mp-parts-count, the ETag's suffix agreeing */
	s = seen(12582912, KMS_ETAG, 3);
	check(&w, &s, NULL);
	/* only the suffix (Ceph RGW sends no parts count) */
	s = seen(12582912, KMS_ETAG, 0);
	check(&w, &s, NULL);
	/* only the parts count (an ETag without suffix) */
	s = seen(12582912, "f1d2d2f924e986ac86fdf7b36c94bcdf", 3);
	check(&w, &s, NULL);
}

static void test_kms_refused(void **state)
{
	struct s3_complete_want w = {.size = 12582912, .parts = 3};
	struct s3_object_info s;

	(void)state;
	s = seen(12582913, KMS_ETAG, 3);
	check(&w, &s, "12582913 bytes, not the 12582912 uploaded");
	s = seen(12582912, "f1d2d2f924e986ac86fdf7b36c94bcdf-4", 4);
	check(&w, &s, "4 parts, not the 3 completed");
	s = seen(12582912, "f1d2d2f924e986ac86fdf7b36c94bcdf-2", 0);
	check(&w, &s, "2 parts, not the 3 completed");
	/* a single PUT of the same size: no parts at all */
	s = seen(12582912, "f1d2d2f924e986ac86fdf7b36c94bcdf", 0);
	check(&w, &s, "part count is unknown");
	/* the two sources disagree */
	s = seen(12582912, KMS_ETAG, 4);
	check(&w, &s, "says 4 parts, its ETag 3");
	/* a suffix that is not a part count */
	s = seen(12582912, "f1d2d2f924e986ac86fdf7b36c94bcdf-x3", 0);
	check(&w, &s, "part count is unknown");
	s = seen(12582912, "f1d2d2f924e986ac86fdf7b36c94bcdf-0", 0);
	check(&w, &s, "part count is unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_md5_etags),
	    cmocka_unit_test(test_kms_size_and_parts),
	    cmocka_unit_test(test_kms_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
