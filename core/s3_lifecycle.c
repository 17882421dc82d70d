/*
 * s3_lifecycle.c - see s3_lifecycle.h.
 */
#include "s3_lifecycle.h"
#include "xml.h"

#include <errno.h>
#include <string.h>

int s3_lifecycle_merge(const char *doc, size_t len,
		       const struct s3_lifecycle_rule *ours, struct cm_buf *out,
		       struct s3_lifecycle_merged *info, struct cm_err *err)
{
	const char *id = ours->id ? ours->id : "vaultfs";
	struct s3_lifecycle_merged local = {0};
	struct cm_xml *root = NULL;
	const struct cm_xml *n;
	int rc = 0;

	if (!info)
		info = &local;
	memset(info, 0, sizeof(*info));
	if (doc && len) {
		rc = cm_xml_parse(doc, len, &root, err);
		if (rc) {
			cm_err_prefix(err, "the bucket's lifecycle "
				      "configuration");
			return rc;
		}
		if (strcmp(cm_xml_name(root), "LifecycleConfiguration") != 0) {
			rc = cm_err_set(err, EINVAL,
					"the bucket's lifecycle configuration "
					"is a <%s>, not a "
					"<LifecycleConfiguration>",
					cm_xml_name(root));
			goto out;
		}
	}
	cm_buf_puts(out, "<LifecycleConfiguration xmlns=\"" S3_XMLNS "\">");
	for (n = root ? cm_xml_child(root, NULL) : NULL; n;
	     n = cm_xml_next(n, NULL)) {
		const char *rid = cm_xml_child_text(n, "ID");
		size_t off, n_bytes;

		if (!strcmp(cm_xml_name(n), "Rule") && rid &&
		    !strcmp(rid, id)) {
			info->replaced = true;
			continue;
		}
		cm_xml_span(n, &off, &n_bytes);
		cm_buf_append(out, doc + off, n_bytes);
		info->kept++;
	}
	s3_lifecycle_rule_xml(out, ours);
	cm_buf_puts(out, "</LifecycleConfiguration>");
out:
	cm_xml_free(root);
	return rc;
}
