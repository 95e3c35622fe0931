/* SPDX-License-Identifier: MIT */
/* Internal allocation entry points. All of uvorm's memory goes through these
 * so tests can replace the allocator and inject out-of-memory. */
#ifndef ORM_ALLOC_H
#define ORM_ALLOC_H

#include <stddef.h>

void *orm__malloc(size_t size);
void *orm__calloc(size_t count, size_t size);
void *orm__realloc(void *ptr, size_t size);
/* realloc of count*size with an overflow check; NULL on overflow. */
void *orm__reallocarray(void *ptr, size_t count, size_t size);
void orm__free(void *ptr);
/* A copy of `s` (NUL-terminated) or of `len` bytes plus a NUL. */
char *orm__strdup(const char *s);
char *orm__strndup(const char *s, size_t len);

#endif /* ORM_ALLOC_H */
