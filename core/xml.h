/*
 * xml.h - the only door to libexpat: small XML documents as a tree.
 *
 * S3 answers in small XML documents (listings, upload ids, errors). This
 * module parses one whole document into a tree of elements, each with its
 * local name (any "prefix:" is dropped; S3's default namespace needs no
 * handling), its character data and its children in document order.
 * Attributes are not kept: S3 responses carry nothing in them we need; an
 * element that must survive unchanged is copied from the text by its span.
 *
 * The root owns the whole tree: cm_xml_free() on the root only. Every
 * pointer handed out (nodes, names, texts) is borrowed from the tree and
 * lives until that free. A tree is read-only after parsing, so any number
 * of threads may read one.
 *
 * Documents with a DOCTYPE are refused (no entity tricks), and nesting is
 * limited; callers cap the size of what they parse.
 */
#ifndef VAULTFS_XML_H
#define VAULTFS_XML_H

#include <stddef.h>

#include "buf.h"
#include "err.h"

struct cm_xml;

/* Parse `len` bytes of text into a tree; *out is the root element, owned by
 * the caller. -EINVAL with the line and expat's reason on bad XML. */
int cm_xml_parse(const char *text, size_t len, struct cm_xml **out,
		 struct cm_err *err);
void cm_xml_free(struct cm_xml *root); /* NULL is a no-op */
/* The same, wiping every text first (answers that carry credentials). */
void cm_xml_free_secret(struct cm_xml *root);

/* Local name of an element ("ListBucketResult"). */
const char *cm_xml_name(const struct cm_xml *n);
/* Where the element lies in the text it was parsed from: its bytes, start
 * tag to end tag included, are text[*off .. *off + *len). For copying an
 * element verbatim. */
void cm_xml_span(const struct cm_xml *n, size_t *off, size_t *len);
/* Character data directly inside the element, concatenated; "" if none. */
const char *cm_xml_text(const struct cm_xml *n);

/* First child (name NULL: any name), or NULL. */
struct cm_xml *cm_xml_child(const struct cm_xml *n, const char *name);
/* Next sibling after n with that name (NULL: any), or NULL. */
struct cm_xml *cm_xml_next(const struct cm_xml *n, const char *name);
/* Text of the first child with that name; NULL when there is no such
 * child (an empty element gives ""). */
const char *cm_xml_child_text(const struct cm_xml *n, const char *name);

/* Append s to b with & < > " ' escaped, for building request bodies. */
int cm_xml_escape(struct cm_buf *b, const char *s);

#endif
