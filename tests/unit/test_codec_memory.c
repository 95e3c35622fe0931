/* SPDX-License-Identifier: MIT */
/* The byte buffer and the result arena without a server
 * (support/codec_wire.h), and out-of-memory sweeps over the codecs. */
#include "alloc_fault.h"
#include "codec_wire.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffer and arena -------------------------------------------------- */

static void test_buf(void **state) {
  orm__buf_t buf = {0};
  assert_int_equal(orm__buf_append(&buf, NULL, 0), 0);
  for (int i = 0; i < 10000; i++) {
    unsigned char c = (unsigned char)i;
    assert_int_equal(orm__buf_append(&buf, &c, 1), 0);
  }
  assert_int_equal(buf.len, 10000);
  assert_true(buf.cap >= buf.len);
  for (int i = 0; i < 10000; i++)
    assert_int_equal((unsigned char)buf.data[i], (unsigned char)i);
  size_t cap = buf.cap;
  orm__buf_reset(&buf);
  assert_int_equal(buf.len, 0);
  assert_int_equal(buf.cap, cap);
  assert_int_equal(orm__buf_reserve(&buf, SIZE_MAX), ORM_ENOMEM);
  assert_int_equal(buf.cap, cap);
  orm__buf_free(&buf);
  assert_null(buf.data);
  assert_int_equal(buf.cap, 0);
}

static void test_arena_many_allocations(void **state) {
  enum { N = 20000 };
  unsigned char **ptrs = calloc(N, sizeof *ptrs);
  size_t *sizes = calloc(N, sizeof *sizes);
  assert_non_null(ptrs);
  assert_non_null(sizes);
  for (size_t i = 0; i < N; i++) {
    sizes[i] = 1 + codec_rng() % 200;
    if (i % 997 == 0)
      sizes[i] = 100000 + codec_rng() % 100000;
    size_t align = (size_t)1 << (codec_rng() % 5);
    ptrs[i] = orm__arena_alloc(&codec_arena, sizes[i], align);
    assert_non_null(ptrs[i]);
    assert_int_equal((uintptr_t)ptrs[i] % align, 0);
    memset(ptrs[i], (int)(i & 0xff), sizes[i]);
  }
  /* Nothing overlapped: every block still holds its own pattern. */
  for (size_t i = 0; i < N; i++) {
    for (size_t k = 0; k < sizes[i]; k++)
      if (ptrs[i][k] != (unsigned char)(i & 0xff))
        fail_msg("block %zu byte %zu was overwritten", i, k);
  }
  free(ptrs);
  free(sizes);
}

static void test_arena_alignment_and_limits(void **state) {
  static const size_t aligns[] = {1, 2, 4, 8, 16, 32, 64, 256, 4096};
  for (size_t r = 0; r < 3; r++) {
    for (size_t i = 0; i < sizeof aligns / sizeof aligns[0]; i++) {
      char *byte = orm__arena_alloc(&codec_arena, 1, 1);
      assert_non_null(byte);
      void *p = orm__arena_alloc(&codec_arena, 3, aligns[i]);
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % aligns[i], 0);
      memset(p, 0xAB, 3);
    }
  }
  assert_null(orm__arena_alloc(&codec_arena, 8, 0));
  assert_null(orm__arena_alloc(&codec_arena, 8, 3));
  assert_null(orm__arena_alloc(&codec_arena, 8, 8192));
  assert_null(orm__arena_alloc(&codec_arena, SIZE_MAX, 1));
  assert_null(orm__arena_alloc(&codec_arena, SIZE_MAX - 8, 4096));
  assert_null(orm__arena_alloc(&codec_arena, SIZE_MAX - 16, 1));
  assert_null(orm__arena_alloc_array(&codec_arena, SIZE_MAX / 2, 4, 4));
  assert_null(orm__arena_strndup(&codec_arena, "x", SIZE_MAX));
  /* Still usable after refusals. */
  void *zero = orm__arena_alloc(&codec_arena, 0, 8);
  assert_non_null(zero);
  char *s = orm__arena_strndup(&codec_arena, "hello world", 5);
  assert_string_equal(s, "hello");
  s = orm__arena_strndup(&codec_arena, NULL, 0);
  assert_string_equal(s, "");
}

/* Tests of the library's memory run on the test allocator (alloc_fault.h),
 * with the shared arena. */
static int counting_setup(void **state) {
  orm__arena_init(&codec_arena);
  return orm_test_alloc_setup(state);
}

static int counting_teardown(void **state) {
  orm__arena_free(&codec_arena);
  return orm_test_alloc_teardown(state);
}

static void test_arena_chunks(void **state) {
  /* Nothing is allocated until the first request. */
  assert_int_equal(orm_test_alloc_calls(), 0);
  char *a = orm__arena_alloc(&codec_arena, 10, 1);
  assert_non_null(a);
  assert_int_equal(orm_test_alloc_live(), 1);
  /* A large value gets its own chunk; small ones keep bumping the current
   * chunk right after the previous one. */
  void *big = orm__arena_alloc(&codec_arena, 10 * 1024 * 1024, 16);
  assert_non_null(big);
  memset(big, 1, 10 * 1024 * 1024);
  assert_int_equal(orm_test_alloc_live(), 2);
  char *b = orm__arena_alloc(&codec_arena, 10, 1);
  assert_ptr_equal(b, a + 10);
  assert_int_equal(orm_test_alloc_live(), 2);

  /* Reset keeps one chunk: refilling it calls the allocator no more. */
  orm__arena_reset(&codec_arena);
  assert_int_equal(orm_test_alloc_live(), 1);
  long calls = orm_test_alloc_calls();
  for (int i = 0; i < 40; i++)
    assert_non_null(orm__arena_alloc(&codec_arena, 8, 8));
  assert_int_equal(orm_test_alloc_calls(), calls);
  /* Chunks grow: 2000 small allocations take far fewer than 2000 chunks. */
  for (int i = 0; i < 2000; i++)
    assert_non_null(orm__arena_alloc(&codec_arena, 24, 8));
  assert_true(orm_test_alloc_live() < 10);
  orm__arena_free(&codec_arena);
  assert_int_equal(orm_test_alloc_live(), 0);
  /* Usable again after free, and reset of an empty arena is harmless. */
  orm__arena_reset(&codec_arena);
  assert_non_null(orm__arena_strndup(&codec_arena, "again", 5));
  orm__arena_reset(&codec_arena);
  orm__arena_reset(&codec_arena);
}

/* ---- out of memory ----------------------------------------------------- */

typedef struct {
  const char *wire;
  size_t len;
  orm_type_t type;
} oom_value_t;

/* One pass of work under the current budget. Returns 0 when everything
 * succeeded, ORM_ENOMEM when a step ran out of memory (after checking the
 * failure left things consistent). */
static int oom_scenario(const oom_value_t *values, size_t nvalues) {
  for (size_t i = 0; i < 50; i++) {
    size_t size = i % 10 == 9 ? 5000 : 1 + i * 7;
    unsigned char *p = orm__arena_alloc(&codec_arena, size, 8);
    if (p == NULL)
      return ORM_ENOMEM;
    memset(p, 0x5A, size);
  }
  for (size_t i = 0; i < nvalues; i++) {
    union {
      max_align_t align;
      unsigned char bytes[sizeof(orm_int_array_t) + 32];
    } storage;
    unsigned char *field = storage.bytes;
    memset(field, 0xEE, sizeof storage.bytes);
    int rc = codec_decode(values[i].type, values[i].wire, values[i].len, field);
    if (rc == ORM_ENOMEM) {
      for (size_t k = 0; k < sizeof storage.bytes; k++)
        assert_int_equal(field[k], 0xEE);
      return rc;
    }
    assert_int_equal(rc, 0);

    orm__buf_t buf;
    orm__buf_init(&buf);
    rc = orm__codec_encode(values[i].type, field, &buf);
    if (rc == ORM_ENOMEM) {
      assert_int_equal(buf.len, 0);
      orm__buf_free(&buf);
      return rc;
    }
    assert_int_equal(rc, 0);
    orm__buf_free(&buf);
  }
  return 0;
}

static void test_oom_sweep(void **state) {
  unsigned char numeric[64];
  size_t numeric_len =
      wire_numeric(numeric, 7, 0x0000, 9, 11,
                   (const uint16_t[]){12, 3456, 7890, 1234, 5678, 9012, 3456,
                                      7890, 1234, 5678, 9000});
  unsigned char ints[128];
  const char *e4[] = {"\0\0\0\1", NULL, "\xff\xff\xff\xfd"};
  const int32_t l4[] = {4, -1, 4};
  size_t ints_len = wire_array(ints, 1, 1, 23, 1, 3, e4, l4);
  unsigned char texts[128];
  const char *et[] = {"alpha", NULL, "", "\xe6\x97\xa5"};
  const int32_t lt[] = {5, -1, 0, 3};
  size_t texts_len = wire_array(texts, 1, 1, 25, 1, 4, et, lt);
  char *long_text = malloc(3000);
  assert_non_null(long_text);
  memset(long_text, 'q', 3000);

  const oom_value_t values[] = {
      {"h\xc3\xa9llo", 6, ORM_T_TEXT},
      {long_text, 3000, ORM_T_TEXT},
      {"\x01{}", 3, ORM_T_JSONB},
      {"\x00\x01\x00", 3, ORM_T_BYTEA},
      {(const char *)numeric, numeric_len, ORM_T_NUMERIC},
      {(const char *)ints, ints_len, ORM_T_INT_ARRAY},
      {(const char *)texts, texts_len, ORM_T_TEXT_ARRAY},
      {"\0\0\0\0\0\0\0\x2a", 8, ORM_T_INT8},
  };
  const size_t nvalues = sizeof values / sizeof values[0];

  int failures = 0;
  for (long budget = 0;; budget++) {
    assert_true(budget < 10000);
    orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
    int rc = oom_scenario(values, nvalues);
    orm_test_alloc_fail_none();
    orm__arena_free(&codec_arena);
    assert_int_equal(orm_test_alloc_live(), 0);
    if (rc == 0)
      break;
    assert_int_equal(rc, ORM_ENOMEM);
    failures++;
  }
  /* The sweep really failed at several points before succeeding. */
  assert_true(failures > 5);
  free(long_text);
}

static void test_oom_encode_growth(void **state) {
  /* A buffer that must grow repeatedly: each refusal leaves it intact. */
  char *text = malloc(70000);
  assert_non_null(text);
  memset(text, 'z', 69999);
  text[69999] = '\0';
  static char x[] = "x";
  char *items[] = {text, NULL, x, text};
  orm_text_array_t array = {items, 4};
  int failures = 0;
  for (long budget = 0;; budget++) {
    orm__buf_t buf;
    orm__buf_init(&buf);
    orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
    int rc = orm__buf_append(&buf, "seed", 4);
    if (rc == 0)
      rc = orm__codec_encode(ORM_T_TEXT_ARRAY, &array, &buf);
    orm_test_alloc_fail_none();
    if (rc == 0) {
      assert_int_equal(buf.len, 4 + 20 + 4 * 4 + 69999 * 2 + 1);
      orm__buf_free(&buf);
      break;
    }
    assert_int_equal(rc, ORM_ENOMEM);
    assert_true(buf.len == 0 || buf.len == 4);
    orm__buf_free(&buf);
    assert_int_equal(orm_test_alloc_live(), 0);
    failures++;
  }
  assert_true(failures >= 2);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, codec_arena_setup, codec_arena_teardown)
#define C(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, counting_setup, counting_teardown)
      T(test_buf),
      T(test_arena_many_allocations),
      T(test_arena_alignment_and_limits),
      C(test_arena_chunks),
      C(test_oom_sweep),
      C(test_oom_encode_growth),
#undef T
#undef C
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
