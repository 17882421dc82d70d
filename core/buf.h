/*
 * buf.h - a growable byte buffer with an optional cap.
 *
 * The buffer owns `data`, which is always NUL-terminated (handy for text);
 * `len` excludes the terminator. With `max` set, an append that would pass it
 * fails with -EMSGSIZE and leaves the buffer as it was: this bounds memory
 * when a peer sends more than expected (an HTTP error body, say).
 */
#ifndef VAULTFS_BUF_H
#define VAULTFS_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct cm_buf {
	char *data;  /* owned; NULL until the first append */
	size_t len;
	size_t cap;
	size_t max;  /* 0: unbounded */
};

void cm_buf_init(struct cm_buf *b, size_t max);
void cm_buf_release(struct cm_buf *b);
void cm_buf_reset(struct cm_buf *b);           /* len = 0, keeps memory */
int cm_buf_reserve(struct cm_buf *b, size_t extra);
int cm_buf_append(struct cm_buf *b, const void *p, size_t n);
int cm_buf_puts(struct cm_buf *b, const char *s);
int cm_buf_printf(struct cm_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int cm_buf_vprintf(struct cm_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Hand the data to the caller (who frees it); the buffer is reset. */
char *cm_buf_detach(struct cm_buf *b);
/* "" when empty: never NULL. */
const char *cm_buf_str(const struct cm_buf *b);

#endif
