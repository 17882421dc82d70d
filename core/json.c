/*
 * json.c - see json.h. `struct cm_json` is cJSON's node under another name:
 * the cast happens here and nowhere else.
 */
#include "json.h"
#include "mem.h"
#include "timeutil.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define J(x) ((cJSON *)(x))
#define CJ(x) ((const cJSON *)(x))
#define W(x) ((struct cm_json *)(x))

int cm_json_parse(const char *text, size_t len, struct cm_json **out,
		  struct cm_err *err)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);

	if (!root) {
		size_t off = end ? (size_t)(end - text) : 0;
		size_t line = 1;

		for (size_t i = 0; i < off && i < len; i++)
			line += text[i] == '\n';
		return cm_err_set(err, EINVAL,
				  "invalid JSON near line %zu (byte %zu)", line,
				  off);
	}
	*out = W(root);
	return 0;
}

int cm_json_parse_file(const char *path, struct cm_json **out,
		       struct cm_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	int rc;

	if (fd < 0)
		return cm_err_set(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
		rc = cm_err_set(err, EFBIG, "%s: too large or unreadable",
				path);
		goto out;
	}
	text = cm_xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, text + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = cm_err_set(err, n < 0 ? errno : EIO,
					"%s: read failed", path);
			goto out;
		}
		got += (size_t)n;
	}
	rc = cm_json_parse(text, got, out, err);
	if (rc)
		cm_err_prefix(err, "%s", path);
out:
	free(text);
	close(fd);
	return rc;
}

void cm_json_free(struct cm_json *root)
{
	cJSON_Delete(J(root));
}

enum cm_json_type cm_json_type(const struct cm_json *j)
{
	const cJSON *c = CJ(j);

	if (!c)
		return CM_JSON_INVALID;
	if (cJSON_IsNull(c))
		return CM_JSON_NULL;
	if (cJSON_IsBool(c))
		return CM_JSON_BOOL;
	if (cJSON_IsNumber(c))
		return CM_JSON_NUMBER;
	if (cJSON_IsString(c))
		return CM_JSON_STRING;
	if (cJSON_IsArray(c))
		return CM_JSON_ARRAY;
	if (cJSON_IsObject(c))
		return CM_JSON_OBJECT;
	return CM_JSON_INVALID;
}

const char *cm_json_type_name(enum cm_json_type t)
{
	static const char *const names[] = { "invalid", "null",	  "boolean",
					     "number",	"string", "array",
					     "object" };

	return names[t];
}

struct cm_json *cm_json_get(const struct cm_json *obj, const char *key)
{
	if (!cJSON_IsObject(CJ(obj)))
		return NULL;
	return W(cJSON_GetObjectItemCaseSensitive(CJ(obj), key));
}

const char *cm_json_get_str(const struct cm_json *obj, const char *key)
{
	return cm_json_str(cm_json_get(obj, key));
}

struct cm_json *cm_json_first(const struct cm_json *j)
{
	return j ? W(CJ(j)->child) : NULL;
}

struct cm_json *cm_json_next(const struct cm_json *j)
{
	return j ? W(CJ(j)->next) : NULL;
}

const char *cm_json_key(const struct cm_json *member)
{
	return member ? CJ(member)->string : NULL;
}

size_t cm_json_size(const struct cm_json *j)
{
	return j ? (size_t)cJSON_GetArraySize(CJ(j)) : 0;
}

const char *cm_json_str(const struct cm_json *j)
{
	return cJSON_IsString(CJ(j)) ? CJ(j)->valuestring : NULL;
}

double cm_json_num(const struct cm_json *j)
{
	return cJSON_IsNumber(CJ(j)) ? CJ(j)->valuedouble : 0;
}

time_t cm_json_time(const struct cm_json *j)
{
	time_t t = 0;

	if (cm_json_type(j) == CM_JSON_NUMBER)
		return (time_t)cm_json_num(j);
	if (cm_json_str(j) && cm_time_parse_iso8601(cm_json_str(j), &t) == 0)
		return t;
	return 0;
}

bool cm_json_bool(const struct cm_json *j)
{
	return cJSON_IsTrue(CJ(j));
}

static cJSON *must(cJSON *c)
{
	if (!c)
		abort(); /* cJSON fails only when out of memory */
	return c;
}

struct cm_json *cm_json_new_object(void)
{
	return W(must(cJSON_CreateObject()));
}

struct cm_json *cm_json_new_array(void)
{
	return W(must(cJSON_CreateArray()));
}

struct cm_json *cm_json_new_str(const char *v)
{
	return W(must(cJSON_CreateString(v)));
}

void cm_json_add(struct cm_json *parent, const char *key,
		 struct cm_json *child)
{
	if (key)
		cJSON_AddItemToObject(J(parent), key, J(child));
	else
		cJSON_AddItemToArray(J(parent), J(child));
}

struct cm_json *cm_json_copy(const struct cm_json *j)
{
	cJSON *c;

	if (!j)
		return NULL;
	c = cJSON_Duplicate(J(j), 1);
	must(c);
	return W(c);
}

static struct cm_json *add(struct cm_json *obj, const char *key, cJSON *c)
{
	must(c);
	cm_json_add(obj, key, W(c));
	return W(c);
}

struct cm_json *cm_json_add_str(struct cm_json *obj, const char *key,
				const char *v)
{
	return add(obj, key, v ? cJSON_CreateString(v) : cJSON_CreateNull());
}

struct cm_json *cm_json_add_num(struct cm_json *obj, const char *key,
				double v)
{
	return add(obj, key, cJSON_CreateNumber(v));
}

struct cm_json *cm_json_add_u64(struct cm_json *obj, const char *key,
				uint64_t v)
{
	/* doubles are exact to 2^53: beyond any byte count we handle */
	return add(obj, key, cJSON_CreateNumber((double)v));
}

struct cm_json *cm_json_add_bool(struct cm_json *obj, const char *key, bool v)
{
	return add(obj, key, cJSON_CreateBool(v));
}

struct cm_json *cm_json_add_object(struct cm_json *obj, const char *key)
{
	return add(obj, key, cJSON_CreateObject());
}

struct cm_json *cm_json_add_array(struct cm_json *obj, const char *key)
{
	return add(obj, key, cJSON_CreateArray());
}

char *cm_json_print_line(const struct cm_json *j)
{
	char *s = cJSON_PrintUnformatted(CJ(j));

	if (!s)
		abort(); /* out of memory */
	return s; /* cJSON allocates with malloc */
}

char *cm_json_print(const struct cm_json *j)
{
	char *s = cJSON_Print(CJ(j));
	size_t n;

	if (!s)
		abort(); /* out of memory */
	n = strlen(s);
	s = cm_xrealloc(s, n + 2); /* cJSON allocates with malloc */
	s[n] = '\n';
	s[n + 1] = '\0';
	return s;
}
