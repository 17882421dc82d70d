/*
 * json.h - the only door to cJSON.
 *
 * A `struct cm_json` is a node of a parsed or built document; the root owns
 * the whole tree (cm_json_free on the root only). Getters return NULL or a
 * default when a key is missing or has another type; the config loader uses
 * cm_json_type() to name wrong types precisely.
 */
#ifndef VAULTFS_JSON_H
#define VAULTFS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

struct cm_json;

enum cm_json_type {
	CM_JSON_INVALID = 0,
	CM_JSON_NULL,
	CM_JSON_BOOL,
	CM_JSON_NUMBER,
	CM_JSON_STRING,
	CM_JSON_ARRAY,
	CM_JSON_OBJECT,
};

/* Parse text (not necessarily NUL-terminated); -EINVAL with the position. */
int cm_json_parse(const char *text, size_t len, struct cm_json **out,
		  struct cm_err *err);
/* Read and parse a whole file; errors name the path. */
int cm_json_parse_file(const char *path, struct cm_json **out,
		       struct cm_err *err);
void cm_json_free(struct cm_json *root);

enum cm_json_type cm_json_type(const struct cm_json *j);
const char *cm_json_type_name(enum cm_json_type t); /* "string", ... */

/* Object member by exact (case-sensitive) key, or NULL. */
struct cm_json *cm_json_get(const struct cm_json *obj, const char *key);
const char *cm_json_get_str(const struct cm_json *obj, const char *key);

/* Iteration over an array's items or an object's members. */
struct cm_json *cm_json_first(const struct cm_json *j);
struct cm_json *cm_json_next(const struct cm_json *j);
const char *cm_json_key(const struct cm_json *member); /* object member */
size_t cm_json_size(const struct cm_json *j);

const char *cm_json_str(const struct cm_json *j);  /* NULL unless string */
double cm_json_num(const struct cm_json *j);       /* 0 unless number */
/* A timestamp as AWS's JSON protocols send one: epoch seconds (a number),
 * or an ISO 8601 string; 0 when it is neither. */
time_t cm_json_time(const struct cm_json *j);
bool cm_json_bool(const struct cm_json *j);        /* false unless bool */

/* Building. Each add returns the new node (owned by the parent). */
struct cm_json *cm_json_new_object(void);
struct cm_json *cm_json_new_array(void);
struct cm_json *cm_json_add_str(struct cm_json *obj, const char *key,
				const char *v);
struct cm_json *cm_json_add_num(struct cm_json *obj, const char *key,
				double v);
struct cm_json *cm_json_add_u64(struct cm_json *obj, const char *key,
				uint64_t v);
struct cm_json *cm_json_add_bool(struct cm_json *obj, const char *key, bool v);
struct cm_json *cm_json_add_object(struct cm_json *obj, const char *key);
struct cm_json *cm_json_add_array(struct cm_json *obj, const char *key);
/* Append to an array (key NULL) or add to an object; takes ownership. */
void cm_json_add(struct cm_json *parent, const char *key,
		 struct cm_json *child);
struct cm_json *cm_json_new_str(const char *v);
/* A deep copy of j (any node) as a new root; NULL gives NULL. */
struct cm_json *cm_json_copy(const struct cm_json *j);

/* Pretty-printed text with a trailing newline; the caller frees it. */
char *cm_json_print(const struct cm_json *j);
/* The same on one line, without a newline (JSON Lines records). */
char *cm_json_print_line(const struct cm_json *j);

#endif
