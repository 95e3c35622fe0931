/* SPDX-License-Identifier: MIT */
#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "base/alloc.h"

#include "arena.h"

#define ORM__ARENA_MAX_ALIGN ((size_t)4096)

struct orm__arena_chunk_s {
  orm__arena_chunk_t *next;
  size_t size;
  /* max_align_t elements make the payload start suitably aligned for any
   * object without padding arithmetic. */
  max_align_t data[];
};

void orm__arena_init(orm__arena_t *arena) {
  arena->chunks = NULL;
  arena->current = NULL;
  arena->next = NULL;
  arena->end = NULL;
  arena->next_chunk_size = ORM__ARENA_FIRST_CHUNK;
}

static size_t padding_for(const char *p, size_t align) {
  return (size_t)(-(uintptr_t)p) & (align - 1);
}

static orm__arena_chunk_t *chunk_new(orm__arena_t *arena, size_t size) {
  /* Objects beyond PTRDIFF_MAX break pointer subtraction, and sanitizer
   * allocators abort on such requests rather than return NULL. */
  if (size > (size_t)PTRDIFF_MAX - sizeof(orm__arena_chunk_t))
    return NULL;
  orm__arena_chunk_t *chunk = orm__malloc(sizeof(orm__arena_chunk_t) + size);
  if (chunk == NULL)
    return NULL;
  chunk->size = size;
  chunk->next = arena->chunks;
  arena->chunks = chunk;
  return chunk;
}

void *orm__arena_alloc(orm__arena_t *arena, size_t size, size_t align) {
  if (align == 0 || (align & (align - 1)) != 0 || align > ORM__ARENA_MAX_ALIGN)
    return NULL;

  if (arena->current != NULL) {
    size_t pad = padding_for(arena->next, align);
    size_t room = (size_t)(arena->end - arena->next);
    if (pad <= room && size <= room - pad) {
      char *p = arena->next + pad;
      arena->next = p + size;
      return p;
    }
  }

  /* A fresh chunk's payload is already max_align_t-aligned; only stricter
   * alignments need slack. */
  size_t slack = align > alignof(max_align_t) ? align - 1 : 0;
  if (size > SIZE_MAX - slack)
    return NULL;
  size_t need = size + slack;

  if (need > arena->next_chunk_size / 2) {
    /* Large values get their own chunk so the current one keeps its free
     * space for the small allocations that follow. The regular chunks grow
     * all the same, so that a run of mid-sized requests (hydration asks
     * for a block of rows' strings at once) soon fits in them. */
    orm__arena_chunk_t *own = chunk_new(arena, need);
    if (own == NULL)
      return NULL;
    if (arena->next_chunk_size < ORM__ARENA_MAX_CHUNK)
      arena->next_chunk_size *= 2;
    char *p = (char *)own->data;
    return p + padding_for(p, align);
  }

  orm__arena_chunk_t *chunk = chunk_new(arena, arena->next_chunk_size);
  if (chunk == NULL)
    return NULL;
  if (arena->next_chunk_size < ORM__ARENA_MAX_CHUNK)
    arena->next_chunk_size *= 2;
  arena->current = chunk;
  char *p = (char *)chunk->data;
  p += padding_for(p, align);
  arena->next = p + size;
  arena->end = (char *)chunk->data + chunk->size;
  return p;
}

void *orm__arena_alloc_array(orm__arena_t *arena, size_t count, size_t size,
                             size_t align) {
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  return orm__arena_alloc(arena, count * size, align);
}

char *orm__arena_strndup(orm__arena_t *arena, const char *s, size_t len) {
  if (len == SIZE_MAX)
    return NULL;
  char *copy = orm__arena_alloc(arena, len + 1, 1);
  if (copy == NULL)
    return NULL;
  if (len > 0)
    memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

static void free_chunks_except(orm__arena_t *arena, orm__arena_chunk_t *keep) {
  orm__arena_chunk_t *chunk = arena->chunks;
  while (chunk != NULL) {
    orm__arena_chunk_t *next = chunk->next;
    if (chunk != keep)
      orm__free(chunk);
    chunk = next;
  }
}

void orm__arena_reset(orm__arena_t *arena) {
  orm__arena_chunk_t *keep = arena->current;
  free_chunks_except(arena, keep);
  arena->chunks = keep;
  if (keep != NULL) {
    keep->next = NULL;
    arena->next = (char *)keep->data;
    arena->end = arena->next + keep->size;
  }
}

void orm__arena_free(orm__arena_t *arena) {
  free_chunks_except(arena, NULL);
  orm__arena_init(arena);
}
