/* SPDX-License-Identifier: MIT */
#include "alloc_fault.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <uvorm/common.h>

#define BLOCK_MAGIC 0x6f726d2d74657374ULL /* "orm-test" */

/* The union keeps the block after the header aligned for any type. */
typedef union {
  max_align_t align;
  struct {
    unsigned long long magic;
    size_t size;
  } h;
} block_head_t;

static long live_blocks;
static long alloc_calls;
static long refusals;
static long fail_at = -1; /* index of the call to refuse; -1: none */
static orm_test_alloc_mode_t fail_mode;

static int may_allocate(void) {
  long i = alloc_calls++;
  if (fail_at < 0 || i < fail_at ||
      (fail_mode == ORM_TEST_ALLOC_FAIL_ONLY_N && i > fail_at))
    return 1;
  refusals++;
  return 0;
}

static block_head_t *head_of(void *ptr) {
  block_head_t *h = (block_head_t *)ptr - 1;
  if (h->h.magic != BLOCK_MAGIC)
    fail_msg("%p was not allocated through the test allocator", ptr);
  return h;
}

static void *fault_malloc(size_t size) {
  if (!may_allocate() || size > SIZE_MAX - sizeof(block_head_t))
    return NULL;
  block_head_t *h = malloc(sizeof *h + size);
  if (h == NULL)
    return NULL;
  h->h.magic = BLOCK_MAGIC;
  h->h.size = size;
  live_blocks++;
  return h + 1;
}

static void *fault_calloc(size_t count, size_t size) {
  /* An overflow is the caller's mistake, not a fault we injected: it uses
   * up a call but is no refusal. */
  if (size != 0 && count > SIZE_MAX / size) {
    alloc_calls++;
    return NULL;
  }
  void *p = fault_malloc(count * size);
  if (p != NULL)
    memset(p, 0, count * size);
  return p;
}

static void *fault_realloc(void *ptr, size_t size) {
  if (ptr == NULL)
    return fault_malloc(size);
  block_head_t *h = head_of(ptr);
  if (!may_allocate() || size > SIZE_MAX - sizeof *h)
    return NULL;
  block_head_t *moved = realloc(h, sizeof *h + size);
  if (moved == NULL)
    return NULL;
  moved->h.size = size;
  return moved + 1;
}

static void fault_free(void *ptr) {
  if (ptr == NULL)
    return;
  block_head_t *h = head_of(ptr);
  h->h.magic = 0; /* a second free of the block fails as foreign */
  live_blocks--;
  free(h);
}

int orm_test_alloc_install(void) {
  live_blocks = 0;
  orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, -1);
  return orm_replace_allocator(fault_malloc, fault_realloc, fault_calloc,
                               fault_free);
}

int orm_test_alloc_restore(void) {
  orm_test_alloc_fail_none();
  return orm_replace_allocator(malloc, realloc, calloc, free);
}

int orm_test_alloc_setup(void **state) {
  assert_int_equal(orm_test_alloc_install(), 0);
  return 0;
}

int orm_test_alloc_teardown(void **state) {
  orm_test_alloc_fail_none();
  assert_int_equal(live_blocks, 0);
  assert_int_equal(orm_test_alloc_restore(), 0);
  return 0;
}

void orm_test_alloc_fail(orm_test_alloc_mode_t mode, long n) {
  alloc_calls = 0;
  refusals = 0;
  fail_mode = mode;
  fail_at = n < 0 ? -1 : n;
}

void orm_test_alloc_fail_none(void) { fail_at = -1; }

long orm_test_alloc_live(void) { return live_blocks; }

long orm_test_alloc_calls(void) { return alloc_calls; }

long orm_test_alloc_refusals(void) { return refusals; }
