/* SPDX-License-Identifier: MIT */
/* Error codes, version and allocator: the parts of the public seed that need
 * no server. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm.h>

#include "base/alloc.h"

#define ALL_CODES(name, value, msg) ORM_##name,
static const int codes[] = {ORM_ERRNO_MAP(ALL_CODES)};
#undef ALL_CODES

static void test_codes_are_negative_and_distinct(void **state) {
  size_t n = sizeof codes / sizeof codes[0];
  assert_true(n >= 20);
  for (size_t i = 0; i < n; i++) {
    assert_true(codes[i] < 0);
    assert_true(codes[i] > ORM_ERRNO_MAX_);
    for (size_t j = i + 1; j < n; j++)
      assert_int_not_equal(codes[i], codes[j]);
  }
}

static void test_names_and_messages(void **state) {
  size_t n = sizeof codes / sizeof codes[0];
  for (size_t i = 0; i < n; i++) {
    const char *name = orm_err_name(codes[i]);
    const char *msg = orm_strerror(codes[i]);
    assert_non_null(name);
    assert_non_null(msg);
    assert_int_equal(strncmp(name, "ORM_E", 5), 0);
    assert_string_not_equal(msg, "unknown error");
    for (size_t j = 0; j < i; j++) {
      assert_string_not_equal(name, orm_err_name(codes[j]));
      assert_string_not_equal(msg, orm_strerror(codes[j]));
    }
  }
  assert_string_equal(orm_err_name(ORM_ETIMEDOUT), "ORM_ETIMEDOUT");
  assert_string_equal(orm_strerror(ORM_EQUEUEFULL), "request queue is full");
  assert_string_equal(orm_strerror(0), "success");
  assert_string_equal(orm_err_name(0), "ORM_OK");
}

static void test_unknown_codes(void **state) {
  char buf[64];
  assert_string_equal(orm_strerror(-12345), "unknown error");
  assert_string_equal(orm_strerror(7), "unknown error");
  assert_string_equal(orm_err_name(-12345), "ORM_UNKNOWN");
  assert_ptr_equal(orm_strerror_r(-12345, buf, sizeof buf), buf);
  assert_string_equal(buf, "unknown error -12345");
}

static void test_strerror_r_truncates(void **state) {
  char buf[8];
  memset(buf, 'x', sizeof buf);
  orm_strerror_r(ORM_ECONNLOST, buf, sizeof buf);
  assert_string_equal(buf, "connect");
  orm_strerror_r(ORM_EINVAL, buf, sizeof buf);
  assert_string_equal(buf, "invalid");
  /* A zero-length buffer is left alone. */
  buf[0] = 'q';
  assert_ptr_equal(orm_strerror_r(ORM_EINVAL, buf, 0), buf);
  assert_int_equal(buf[0], 'q');
  assert_null(orm_strerror_r(ORM_EINVAL, NULL, 10));
}

static void test_version(void **state) {
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", ORM_VERSION_MAJOR,
           ORM_VERSION_MINOR, ORM_VERSION_PATCH);
  assert_string_equal(orm_version_string(), expected);
  assert_int_equal(orm_version(), ORM_VERSION_HEX);
}

static int frees;
static void counting_free(void *p) {
  frees++;
  free(p);
}

static void test_replace_allocator(void **state) {
  assert_int_equal(orm_replace_allocator(malloc, realloc, calloc, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_replace_allocator(NULL, realloc, calloc, free),
                   ORM_EINVAL);
  assert_int_equal(orm_replace_allocator(malloc, realloc, calloc, counting_free),
                   0);
  frees = 0;
  orm__free(orm__malloc(16));
  assert_int_equal(frees, 1);
  assert_int_equal(orm_replace_allocator(malloc, realloc, calloc, free), 0);
  orm__free(orm__malloc(16));
  assert_int_equal(frees, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_codes_are_negative_and_distinct),
      cmocka_unit_test(test_names_and_messages),
      cmocka_unit_test(test_unknown_codes),
      cmocka_unit_test(test_strerror_r_truncates),
      cmocka_unit_test(test_version),
      cmocka_unit_test(test_replace_allocator),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
