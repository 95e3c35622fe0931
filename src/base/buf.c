/* SPDX-License-Identifier: MIT */
#include "base/buf.h"

#include <stdint.h>
#include <string.h>

#include "uvorm/common.h"

#include "base/alloc.h"

void orm__buf_init(orm__buf_t *buf) {
  buf->data = NULL;
  buf->len = 0;
  buf->cap = 0;
}

int orm__buf_reserve(orm__buf_t *buf, size_t extra) {
  if (buf->cap - buf->len >= extra)
    return 0;
  /* Objects beyond PTRDIFF_MAX break pointer subtraction, and sanitizer
   * allocators abort on such requests rather than return NULL. */
  if (extra > (size_t)PTRDIFF_MAX - buf->len)
    return ORM_ENOMEM;
  size_t want = buf->len + extra;
  size_t cap = buf->cap > 0 ? buf->cap : 64;
  while (cap < want)
    cap = cap > (size_t)PTRDIFF_MAX / 2 ? want : cap * 2;
  char *data = orm__realloc(buf->data, cap);
  if (data == NULL)
    return ORM_ENOMEM;
  buf->data = data;
  buf->cap = cap;
  return 0;
}

int orm__buf_append(orm__buf_t *buf, const void *bytes, size_t len) {
  int rc = orm__buf_reserve(buf, len);
  if (rc != 0)
    return rc;
  if (len > 0)
    memcpy(buf->data + buf->len, bytes, len);
  buf->len += len;
  return 0;
}

void orm__buf_reset(orm__buf_t *buf) { buf->len = 0; }

void orm__buf_free(orm__buf_t *buf) {
  orm__free(buf->data);
  orm__buf_init(buf);
}

/* Callers reserve first; these only write. */
