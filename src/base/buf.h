/* SPDX-License-Identifier: MIT */
/* A growable byte buffer, for encoded parameters and SQL text. */
#ifndef ORM_BASE_BUF_H
#define ORM_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "base/wire.h"

/* A growable byte buffer for encoded parameters. Zero-initialised (or
 * orm__buf_init()) it is empty and owns nothing. `data` moves when the
 * buffer grows: keep offsets, not pointers, until the last value is
 * appended. */
typedef struct {
  char *data;
  size_t len;
  size_t cap;
} orm__buf_t;

void orm__buf_init(orm__buf_t *buf);
/* Makes room for `extra` more bytes. 0 or ORM_ENOMEM (buffer unchanged). */
int orm__buf_reserve(orm__buf_t *buf, size_t extra);
/* Appends `len` bytes. 0 or ORM_ENOMEM (buffer unchanged). */
int orm__buf_append(orm__buf_t *buf, const void *bytes, size_t len);
/* Empties the buffer and keeps its memory for reuse. */
void orm__buf_reset(orm__buf_t *buf);
/* Releases the memory; the buffer is empty and reusable afterwards. */
void orm__buf_free(orm__buf_t *buf);

/* Big-endian values appended to room made with orm__buf_reserve(). */
static inline void orm__buf_put_u16(orm__buf_t *buf, uint16_t v) {
  orm__store_u16(buf->data + buf->len, v);
  buf->len += 2;
}
static inline void orm__buf_put_u32(orm__buf_t *buf, uint32_t v) {
  orm__store_u32(buf->data + buf->len, v);
  buf->len += 4;
}
static inline void orm__buf_put_u64(orm__buf_t *buf, uint64_t v) {
  orm__store_u64(buf->data + buf->len, v);
  buf->len += 8;
}

#endif /* ORM_BASE_BUF_H */
