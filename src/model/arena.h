/* SPDX-License-Identifier: MIT */
/* A bump allocator for the strings, bytes and arrays of one query result.
 *
 * Everything allocated from an arena is released together, by one
 * orm__arena_reset() or orm__arena_free(): a decoded result never needs a
 * free per field. Memory comes from orm__malloc() in chunks: the first is
 * small (ORM__ARENA_FIRST_CHUNK), each later one twice the size of the one
 * before up to ORM__ARENA_MAX_CHUNK, and a request too big for a regular
 * chunk (over half the next one's size) gets a chunk of its own, so one
 * large value never wastes the rest of the current chunk; the next regular
 * chunk still doubles then. An arena is not thread-safe; like the result it
 * belongs to, it is used from one loop thread. */
#ifndef ORM_MODEL_ARENA_H
#define ORM_MODEL_ARENA_H

#include <stddef.h>
#include <string.h>

#define ORM__ARENA_FIRST_CHUNK ((size_t)1024)
#define ORM__ARENA_MAX_CHUNK ((size_t)1024 * 1024)

typedef struct orm__arena_chunk_s orm__arena_chunk_t;

/* The fields are private to arena.c (and the inline fast path below). */
typedef struct {
  /* Every chunk, newest first: all of them are freed together. */
  orm__arena_chunk_t *chunks;
  /* The regular chunk small allocations are carved from, and its free
   * bytes [next, end). NULL before the first regular chunk exists. */
  orm__arena_chunk_t *current;
  char *next;
  char *end;
  size_t next_chunk_size;
} orm__arena_t;

/* Makes `arena` empty. Allocates nothing, so it cannot fail. */
void orm__arena_init(orm__arena_t *arena);

/* `size` bytes aligned to `align` (a power of two; at most 4096), valid until
 * the arena is reset or freed. A `size` of 0 gives a valid, non-NULL pointer
 * that must not be written through. Returns NULL when the allocator fails,
 * when size plus bookkeeping overflows size_t, or when `align` is invalid;
 * the arena is unchanged and still usable then. */
void *orm__arena_alloc(orm__arena_t *arena, size_t size, size_t align);

/* `count` elements of `size` bytes each, aligned to `align`; NULL also when
 * count * size overflows. */
void *orm__arena_alloc_array(orm__arena_t *arena, size_t count, size_t size,
                             size_t align);

/* A copy of the `len` bytes at `s` followed by a NUL; `s` need not be
 * NUL-terminated and may be NULL when `len` is 0. NULL on failure. */
char *orm__arena_strndup(orm__arena_t *arena, const char *s, size_t len);

/* orm__arena_strndup() with its common case inline: the copy fits in the
 * current chunk. Hydration calls this once per string value. */
static inline char *orm__arena_strndup_fast(orm__arena_t *arena, const char *s,
                                            size_t len) {
  if (arena->current != NULL && len < (size_t)(arena->end - arena->next)) {
    char *copy = arena->next;
    arena->next += len + 1;
    if (len > 0)
      memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
  }
  return orm__arena_strndup(arena, s, len);
}

/* Releases every allocation at once. The current regular chunk is kept and
 * rewound, so an arena reused for result after result stops calling the
 * allocator; everything else goes back to orm__free(). */
void orm__arena_reset(orm__arena_t *arena);

/* Releases every allocation and every chunk; the arena is empty afterwards
 * (as after orm__arena_init()) and may be used again. */
void orm__arena_free(orm__arena_t *arena);

#endif /* ORM_MODEL_ARENA_H */
