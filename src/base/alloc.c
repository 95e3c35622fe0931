/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "uvorm/common.h"

#include "base/alloc.h"

typedef struct {
  orm_malloc_func malloc_func;
  orm_realloc_func realloc_func;
  orm_calloc_func calloc_func;
  orm_free_func free_func;
} orm_allocator_t;

static orm_allocator_t orm_allocator = {malloc, realloc, calloc, free};

int orm_replace_allocator(orm_malloc_func malloc_func,
                          orm_realloc_func realloc_func,
                          orm_calloc_func calloc_func,
                          orm_free_func free_func) {
  if (malloc_func == NULL || realloc_func == NULL || calloc_func == NULL ||
      free_func == NULL)
    return ORM_EINVAL;
  orm_allocator.malloc_func = malloc_func;
  orm_allocator.realloc_func = realloc_func;
  orm_allocator.calloc_func = calloc_func;
  orm_allocator.free_func = free_func;
  return 0;
}

void *orm__malloc(size_t size) {
  /* malloc(0) may return NULL, which callers would read as ENOMEM. */
  return orm_allocator.malloc_func(size > 0 ? size : 1);
}

void *orm__calloc(size_t count, size_t size) {
  if (count == 0 || size == 0)
    count = size = 1;
  if (count > SIZE_MAX / size)
    return NULL;
  return orm_allocator.calloc_func(count, size);
}

void *orm__realloc(void *ptr, size_t size) {
  if (size == 0)
    size = 1;
  return orm_allocator.realloc_func(ptr, size);
}

void *orm__reallocarray(void *ptr, size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  return orm__realloc(ptr, count * size);
}

void orm__free(void *ptr) {
  if (ptr == NULL)
    return;
  /* free() must not clobber errno for callers that report it. */
  int saved = errno;
  orm_allocator.free_func(ptr);
  errno = saved;
}

char *orm__strndup(const char *s, size_t len) {
  if (len == SIZE_MAX)
    return NULL;
  char *copy = orm__malloc(len + 1);
  if (copy == NULL)
    return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *orm__strdup(const char *s) { return orm__strndup(s, strlen(s)); }
