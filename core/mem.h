/*
 * mem.h - allocation that cannot fail: out-of-memory aborts the process with
 * a message (there is no sane recovery from it in a streaming archiver).
 */
#ifndef VAULTFS_MEM_H
#define VAULTFS_MEM_H

#include <stddef.h>

void *cm_xmalloc(size_t n);
void *cm_xcalloc(size_t nmemb, size_t n);
void *cm_xrealloc(void *p, size_t n);
char *cm_xstrdup(const char *s);
char *cm_xstrndup(const char *s, size_t n);
/* printf into a new heap string; the caller frees it. */
char *cm_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Overwrite a secret before freeing it (the compiler may not elide this). */
void cm_free_secret(char *s);

#endif
