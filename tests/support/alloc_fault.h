/* SPDX-License-Identifier: MIT */
/* A replaceable allocator for uvorm's tests: it counts what the library
 * allocates and refuses allocations on demand, for out-of-memory sweeps
 * (libuv's test-loop-oom.c) and leak checks.
 *
 * orm_test_alloc_install() puts it in place of uvorm's allocator through
 * orm_replace_allocator(); orm_test_alloc_restore() puts libc's back. Both
 * follow orm_replace_allocator()'s rule: call them with no uvorm object
 * alive. Memory the library allocated through this allocator must be freed
 * before libc's is restored.
 *
 * Every block starts with a hidden header holding a magic number and the
 * size asked for, so a pointer freed or reallocated through this allocator
 * that did not come from it fails the test at once (cmocka's fail_msg)
 * instead of passing unnoticed or corrupting the heap.
 *
 * It counts live blocks (allocated and not yet freed), calls (every malloc,
 * calloc and realloc, refused or not) and refusals. After
 * orm_test_alloc_fail() it refuses call N, counting from 0 at that moment,
 * and with ORM_TEST_ALLOC_FAIL_FROM_N every call after it too. A refused call
 * returns NULL and changes nothing.
 *
 * A sweep, growing N until the operation needs no refusal:
 *
 *   for (long n = 0;; n++) {
 *     orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, n);
 *     int rc = operation();
 *     orm_test_alloc_fail_none();
 *     assert_int_equal(orm_test_alloc_live(), 0);
 *     if (rc == 0)
 *       break;
 *     assert_int_equal(rc, ORM_ENOMEM);
 *   }
 *
 * The state is global to the process, like uvorm's allocator, and not
 * thread-safe: use it from the test's thread only. */
#ifndef ORM_TEST_ALLOC_FAULT_H
#define ORM_TEST_ALLOC_FAULT_H

typedef enum {
  ORM_TEST_ALLOC_FAIL_FROM_N, /* call N and every call after it fail */
  ORM_TEST_ALLOC_FAIL_ONLY_N  /* call N fails; later calls succeed again */
} orm_test_alloc_mode_t;

/* Installs the counting allocator with every count at 0 and no call set to
 * fail. Returns orm_replace_allocator()'s result: 0 on success. */
int orm_test_alloc_install(void);

/* Puts libc's malloc, realloc, calloc and free back. Returns
 * orm_replace_allocator()'s result: 0 on success. The counts keep their
 * values. */
int orm_test_alloc_restore(void);

/* cmocka setup and teardown around a test that runs on this allocator:
 * orm_test_alloc_setup() installs it, failing the test if it cannot;
 * orm_test_alloc_teardown() stops refusing, asserts that no block is live
 * (the test leaked nothing of the library's) and restores libc's. Both
 * return 0. */
int orm_test_alloc_setup(void **state);
int orm_test_alloc_teardown(void **state);

/* From now on refuses call `n` (0 is the next call) as `mode` says; a
 * negative `n` refuses nothing. Starts counting calls and refusals afresh;
 * live blocks are not reset. */
void orm_test_alloc_fail(orm_test_alloc_mode_t mode, long n);

/* From now on refuses nothing. The counts keep their values, so they can be
 * read after the operation under test. */
void orm_test_alloc_fail_none(void);

/* Blocks allocated through this allocator and not yet freed, since
 * orm_test_alloc_install(). */
long orm_test_alloc_live(void);

/* malloc, calloc and realloc calls seen, refused ones included, since
 * orm_test_alloc_install() or the last orm_test_alloc_fail(). */
long orm_test_alloc_calls(void);

/* Calls refused because of orm_test_alloc_fail(), since it was last
 * called. */
long orm_test_alloc_refusals(void);

#endif /* ORM_TEST_ALLOC_FAULT_H */
