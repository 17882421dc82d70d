/*
 * xml.c - see xml.h. The only file that includes expat.
 *
 * Expat calls us back for each start tag, end tag and run of character
 * data; we keep a cursor on the element being filled and hang each new
 * element under it as its last child. Character data is appended to the
 * cursor's text (expat may split one run into several calls). A DOCTYPE
 * stops the parser at once: S3 never sends one, and refusing it removes
 * every entity-expansion question.
 *
 * Everything is allocated with the aborting allocators of mem.h, so the
 * only failures are bad documents.
 */
#include "xml.h"
#include "mem.h"

#include <errno.h>
#include <expat.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64

struct cm_xml {
	char *name; /* owned, local part */
	char *text; /* owned, NUL-terminated; NULL when empty */
	size_t text_len;
	size_t text_cap;
	struct cm_xml *parent;
	struct cm_xml *first; /* children, owned */
	struct cm_xml *last;
	struct cm_xml *next; /* sibling, owned by the parent's list */
	size_t start;	     /* byte offset of '<' of the start tag */
	size_t start_end;    /* just after the start tag */
	size_t end;	     /* just after the end tag */
};

struct parse_state {
	XML_Parser parser;
	struct cm_xml *root;
	struct cm_xml *cur;
	unsigned depth;
	const char *why; /* our own reason for stopping, or NULL */
};

static void stop(struct parse_state *s, const char *why)
{
	if (!s->why)
		s->why = why;
	XML_StopParser(s->parser, XML_FALSE);
}

static void on_start(void *ctx, const XML_Char *name, const XML_Char **attrs)
{
	struct parse_state *s = ctx;
	const char *colon = strrchr(name, ':');
	struct cm_xml *n;

	(void)attrs;
	if (s->why)
		return;
	if (s->depth >= MAX_DEPTH) {
		stop(s, "nesting too deep");
		return;
	}
	n = cm_xcalloc(1, sizeof(*n));
	n->name = cm_xstrdup(colon ? colon + 1 : name);
	n->start = (size_t)XML_GetCurrentByteIndex(s->parser);
	n->start_end = n->start + (size_t)XML_GetCurrentByteCount(s->parser);
	n->parent = s->cur;
	if (s->cur) {
		if (s->cur->last)
			s->cur->last->next = n;
		else
			s->cur->first = n;
		s->cur->last = n;
	} else {
		s->root = n;
	}
	s->cur = n;
	s->depth++;
}

static void on_end(void *ctx, const XML_Char *name)
{
	struct parse_state *s = ctx;

	int count;

	(void)name;
	if (s->why || !s->cur)
		return;
	/* an empty-element tag ("<a/>") has no end tag of its own: 0 */
	count = XML_GetCurrentByteCount(s->parser);
	s->cur->end = count > 0 ? (size_t)XML_GetCurrentByteIndex(s->parser) +
				      (size_t)count
				: s->cur->start_end;
	s->cur = s->cur->parent;
	s->depth--;
}

static void on_text(void *ctx, const XML_Char *p, int len)
{
	struct parse_state *s = ctx;
	struct cm_xml *n = s->cur;
	size_t need;

	if (s->why || !n || len <= 0)
		return;
	need = n->text_len + (size_t)len + 1;
	if (need > n->text_cap) {
		size_t cap = n->text_cap ? n->text_cap : 32;

		while (cap < need)
			cap *= 2;
		n->text = cm_xrealloc(n->text, cap);
		n->text_cap = cap;
	}
	memcpy(n->text + n->text_len, p, (size_t)len);
	n->text_len += (size_t)len;
	n->text[n->text_len] = '\0';
}

static void on_doctype(void *ctx, const XML_Char *name, const XML_Char *sysid,
		       const XML_Char *pubid, int has_internal_subset)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal_subset;
	stop(ctx, "DOCTYPE not allowed");
}

static void free_tree(struct cm_xml *root, bool wipe);

int cm_xml_parse(const char *text, size_t len, struct cm_xml **out,
		 struct cm_err *err)
{
	struct parse_state s = {0};
	enum XML_Status st;
	int rc = 0;

	*out = NULL;
	if (len > (size_t)INT32_MAX)
		return cm_err_set(err, EMSGSIZE, "XML document too large");
	s.parser = XML_ParserCreate(NULL);
	if (!s.parser)
		abort(); /* only fails without memory */
	XML_SetUserData(s.parser, &s);
	XML_SetElementHandler(s.parser, on_start, on_end);
	XML_SetCharacterDataHandler(s.parser, on_text);
	XML_SetStartDoctypeDeclHandler(s.parser, on_doctype);

	st = XML_Parse(s.parser, text, (int)len, XML_TRUE);
	if (st != XML_STATUS_OK || s.why) {
		rc = cm_err_set(
		    err, EINVAL, "bad XML at line %lu: %s",
		    (unsigned long)XML_GetCurrentLineNumber(s.parser),
		    s.why ? s.why
			  : XML_ErrorString(XML_GetErrorCode(s.parser)));
		goto out;
	}
	if (!s.root) {
		rc = cm_err_set(err, EINVAL, "bad XML: no element");
		goto out;
	}
	*out = s.root;
	s.root = NULL;
out:
	cm_xml_free(s.root);
	XML_ParserFree(s.parser);
	return rc;
}

void cm_xml_free_secret(struct cm_xml *root)
{
	free_tree(root, true);
}

void cm_xml_free(struct cm_xml *root)
{
	free_tree(root, false);
}

static void free_tree(struct cm_xml *root, bool wipe)
{
	struct cm_xml *n = root;

	/* iterative post-order walk: no recursion on hostile depth */
	while (n) {
		struct cm_xml *up;

		if (n->first) {
			n = n->first;
			continue;
		}
		up = n == root ? NULL : n->parent;
		if (up)
			up->first = n->next;
		free(n->name);
		if (wipe && n->text)
			explicit_bzero(n->text, n->text_cap);
		free(n->text);
		free(n);
		n = up;
	}
}

const char *cm_xml_name(const struct cm_xml *n)
{
	return n->name;
}

void cm_xml_span(const struct cm_xml *n, size_t *off, size_t *len)
{
	*off = n->start;
	*len = n->end - n->start;
}

const char *cm_xml_text(const struct cm_xml *n)
{
	return n->text ? n->text : "";
}

static bool matches(const struct cm_xml *n, const char *name)
{
	return !name || !strcmp(n->name, name);
}

struct cm_xml *cm_xml_child(const struct cm_xml *n, const char *name)
{
	struct cm_xml *c;

	for (c = n->first; c; c = c->next)
		if (matches(c, name))
			return c;
	return NULL;
}

struct cm_xml *cm_xml_next(const struct cm_xml *n, const char *name)
{
	struct cm_xml *c;

	for (c = n->next; c; c = c->next)
		if (matches(c, name))
			return c;
	return NULL;
}

const char *cm_xml_child_text(const struct cm_xml *n, const char *name)
{
	const struct cm_xml *c = cm_xml_child(n, name);

	return c ? cm_xml_text(c) : NULL;
}

int cm_xml_escape(struct cm_buf *b, const char *s)
{
	int rc = 0;

	while (*s && rc == 0) {
		size_t run = strcspn(s, "&<>\"'");

		if (run) {
			rc = cm_buf_append(b, s, run);
			s += run;
			continue;
		}
		switch (*s++) {
		case '&':
			rc = cm_buf_puts(b, "&amp;");
			break;
		case '<':
			rc = cm_buf_puts(b, "&lt;");
			break;
		case '>':
			rc = cm_buf_puts(b, "&gt;");
			break;
		case '"':
			rc = cm_buf_puts(b, "&quot;");
			break;
		default:
			rc = cm_buf_puts(b, "&apos;");
			break;
		}
	}
	return rc;
}
