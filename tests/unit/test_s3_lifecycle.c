/*
 * test_s3_lifecycle.c - merging the vaultfs lifecycle rule into a bucket's
 * configuration (s3_lifecycle_merge) and the element spans it relies on
 * (cm_xml_span): other rules come out byte for byte (entities, spacing,
 * elements vaultfs does not know, an empty-element tag), an earlier vaultfs
 * rule is replaced, no configuration gives just ours, a document of
 * another kind is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/s3_lifecycle.h"
#include "core/xml.h"

#define NS "http://s3.amazonaws.com/doc/2006-03-01/"

static const struct s3_lifecycle_rule OURS = {
    .id = "vaultfs-archive",
    .prefix = "archive/",
    .glacier_days = 10,
    .expiration_days = 400,
    .abort_incomplete_days = 7,
};

#define OURS_XML                                                            \
	"<Rule><ID>vaultfs-archive</ID><Filter><Prefix>archive/</Prefix>"   \
	"</Filter><Status>Enabled</Status><Transition><Days>10</Days>"      \
	"<StorageClass>GLACIER</StorageClass></Transition><Expiration>"     \
	"<Days>400</Days></Expiration><AbortIncompleteMultipartUpload>"     \
	"<DaysAfterInitiation>7</DaysAfterInitiation>"                      \
	"</AbortIncompleteMultipartUpload></Rule>"

/* two foreign rules, written the way a person (not S3) might */
#define RULE_A                                                              \
	"<Rule>\n  <ID>logs &amp; stuff</ID>\n  <Filter><Prefix>logs/"     \
	"</Prefix></Filter>\n  <Status>Enabled</Status>\n  <Expiration>"    \
	"<Days>30</Days></Expiration>\n</Rule>"
#define RULE_B                                                              \
	"<Rule><ID>tmp</ID><Filter><And><Prefix>tmp/</Prefix><Tag><Key>k"   \
	"</Key><Value>v</Value></Tag></And></Filter><Status>Disabled"       \
	"</Status><NoncurrentVersionExpiration><NoncurrentDays>5"           \
	"</NoncurrentDays></NoncurrentVersionExpiration><Unknown/></Rule>"
#define OLD_OURS                                                            \
	"<Rule><ID>vaultfs-archive</ID><Filter><Prefix>archive/</Prefix>"   \
	"</Filter><Status>Enabled</Status><Expiration><Days>1</Days>"       \
	"</Expiration></Rule>"

static void merge_ok(const char *doc, const char *want, unsigned kept,
		     bool replaced)
{
	struct s3_lifecycle_merged m;
	struct cm_buf out;
	struct cm_err e;

	cm_err_clear(&e);
	cm_buf_init(&out, 0);
	assert_int_equal(s3_lifecycle_merge(doc, doc ? strlen(doc) : 0, &OURS,
					    &out, &m, &e),
			 0);
	cm_buf_puts(&out, ""); /* NUL-terminated */
	assert_string_equal(out.data, want);
	assert_int_equal(m.kept, kept);
	assert_int_equal(m.replaced, replaced);
	cm_buf_release(&out);
}

static void test_keeps_other_rules(void **state)
{
	(void)state;
	merge_ok("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<LifecycleConfiguration xmlns=\"" NS "\">\n" RULE_A
		 "\n" RULE_B "\n</LifecycleConfiguration>\n",
		 "<LifecycleConfiguration xmlns=\"" NS "\">" RULE_A RULE_B
		     OURS_XML "</LifecycleConfiguration>",
		 2, false);
}

static void test_replaces_ours(void **state)
{
	(void)state;
	merge_ok("<LifecycleConfiguration xmlns=\"" NS "\">" RULE_A OLD_OURS
		 RULE_B "</LifecycleConfiguration>",
		 "<LifecycleConfiguration xmlns=\"" NS "\">" RULE_A RULE_B
		     OURS_XML "</LifecycleConfiguration>",
		 2, true);
	/* merging the result again changes nothing */
	merge_ok("<LifecycleConfiguration xmlns=\"" NS "\">" RULE_A RULE_B
		     OURS_XML "</LifecycleConfiguration>",
		 "<LifecycleConfiguration xmlns=\"" NS "\">" RULE_A RULE_B
		     OURS_XML "</LifecycleConfiguration>",
		 2, true);
}

static void test_no_configuration(void **state)
{
	(void)state;
	merge_ok(NULL,
		 "<LifecycleConfiguration xmlns=\"" NS "\">" OURS_XML
		 "</LifecycleConfiguration>",
		 0, false);
	merge_ok("<LifecycleConfiguration/>",
		 "<LifecycleConfiguration xmlns=\"" NS "\">" OURS_XML
		 "</LifecycleConfiguration>",
		 0, false);
}

static void test_refused(void **state)
{
	static const char *bad[] = {
	    "<Error><Code>NoSuchKey</Code></Error>",
	    "<LifecycleConfiguration><Rule>",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cm_buf out;
		struct cm_err e;

		cm_err_clear(&e);
		cm_buf_init(&out, 0);
		assert_int_equal(s3_lifecycle_merge(bad[i], strlen(bad[i]),
						    &OURS, &out, NULL, &e),
				 -EINVAL);
		assert_non_null(strstr(e.msg, "lifecycle configuration"));
		cm_buf_release(&out);
	}
}

static void test_spans(void **state)
{
	const char *doc = "<a x=\"1\">t<b>one</b> <c/><d><e/></d></a>";
	struct cm_xml *root = NULL;
	const struct cm_xml *n;
	size_t off, len;

	(void)state;
	assert_int_equal(cm_xml_parse(doc, strlen(doc), &root, NULL), 0);
	cm_xml_span(root, &off, &len);
	assert_int_equal(off, 0);
	assert_int_equal(len, strlen(doc));
	n = cm_xml_child(root, "b");
	cm_xml_span(n, &off, &len);
	assert_memory_equal(doc + off, "<b>one</b>", len);
	assert_int_equal(len, 10);
	n = cm_xml_child(root, "c");
	cm_xml_span(n, &off, &len);
	assert_int_equal(len, 4);
	assert_memory_equal(doc + off, "<c/>", 4);
	n = cm_xml_child(root, "d");
	cm_xml_span(n, &off, &len);
	assert_int_equal(len, 11);
	assert_memory_equal(doc + off, "<d><e/></d>", 11);
	cm_xml_free(root);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keeps_other_rules),
	    cmocka_unit_test(test_replaces_ours),
	    cmocka_unit_test(test_no_configuration),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_spans),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
