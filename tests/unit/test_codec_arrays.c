/* SPDX-License-Identifier: MIT */
/* The binary codecs without a server (support/codec_wire.h): arrays, and
 * the type table, the OIDs each type accepts and invalid arguments. */
#include "codec_wire.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arrays ------------------------------------------------------------ */

static void test_int_array(void **state) {
  unsigned char wire[256];
  orm_int_array_t a = {NULL, NULL, 99};

  /* int4[] {1, NULL, -3}, lower bound 0: the subscript does not matter. */
  const char *e4[] = {"\0\0\0\1", NULL, "\xff\xff\xff\xfd"};
  const int32_t l4[] = {4, -1, 4};
  size_t len = wire_array(wire, 1, 1, 23, 0, 3, e4, l4);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 3);
  assert_non_null(a.nulls);
  assert_true(a.items[0] == 1 && !a.nulls[0]);
  assert_true(a.items[1] == 0 && a.nulls[1]);
  assert_true(a.items[2] == -3 && !a.nulls[2]);
  assert_true(orm_int_array_is_null(&a, 1));
  assert_false(orm_int_array_is_null(&a, 2));
  codec_expect_truncations_rejected(ORM_T_INT_ARRAY, wire, len, &a, sizeof a);

  /* int8[] without NULLs: no null map. */
  const char *e8[] = {"\x80\0\0\0\0\0\0\0", "\x7f\xff\xff\xff\xff\xff\xff\xff"};
  const int32_t l8[] = {8, 8};
  len = wire_array(wire, 1, 0, 20, 1, 2, e8, l8);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 2);
  assert_null(a.nulls);
  assert_true(a.items[0] == INT64_MIN && a.items[1] == INT64_MAX);
  assert_false(orm_int_array_is_null(&a, 0));
  codec_expect_encoding(ORM_T_INT_ARRAY, &a, wire, len);

  /* int2[] */
  const char *e2[] = {"\x80\x00", "\x7f\xff"};
  const int32_t l2[] = {2, 2};
  len = wire_array(wire, 1, 0, 21, 1, 2, e2, l2);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_true(a.len == 2 && a.items[0] == INT16_MIN && a.items[1] == INT16_MAX);

  /* The empty array. */
  len = wire_array(wire, 0, 0, 23, 0, 0, NULL, NULL);
  a.len = 99;
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 0);
  orm_int_array_t empty = {NULL, NULL, 0};
  len = wire_array(wire, 0, 0, 20, 0, 0, NULL, NULL);
  codec_expect_encoding(ORM_T_INT_ARRAY, &empty, wire, len);

  /* Encoding with NULLs: sent as int8[]. */
  int64_t items[] = {5, 0, -6};
  bool nulls[] = {false, true, false};
  orm_int_array_t in = {items, nulls, 3};
  const char *ee[] = {"\0\0\0\0\0\0\0\5", NULL,
                      "\xff\xff\xff\xff\xff\xff\xff\xfa"};
  const int32_t le[] = {8, -1, 8};
  len = wire_array(wire, 1, 1, 20, 1, 3, ee, le);
  codec_expect_encoding(ORM_T_INT_ARRAY, &in, wire, len);
  in.items = NULL;
  assert_int_equal(codec_encode_rc(ORM_T_INT_ARRAY, &in), ORM_EINVAL);
}

static void test_text_array(void **state) {
  unsigned char wire[256];
  orm_text_array_t a = {NULL, 99};
  const char *e[] = {"a", NULL, "", "\xe6\x97\xa5\xe6\x9c\xac", "NULL"};
  const int32_t l[] = {1, -1, 0, 6, 4};
  static const uint32_t elem_oids[] = {25, 1043, 1042, 19};
  for (size_t k = 0; k < 4; k++) {
    size_t len = wire_array(wire, 1, 1, elem_oids[k], 1, 5, e, l);
    assert_int_equal(codec_decode(ORM_T_TEXT_ARRAY, wire, len, &a), 0);
    assert_int_equal(a.len, 5);
    assert_string_equal(a.items[0], "a");
    assert_null(a.items[1]);
    assert_string_equal(a.items[2], "");
    assert_string_equal(a.items[3], "\xe6\x97\xa5\xe6\x9c\xac");
    assert_string_equal(a.items[4], "NULL");
    if (k == 0) {
      codec_expect_encoding(ORM_T_TEXT_ARRAY, &a, wire, len);
      codec_expect_truncations_rejected(ORM_T_TEXT_ARRAY, wire, len, &a,
                                        sizeof a);
    }
  }
  size_t len = wire_array(wire, 0, 0, 25, 0, 0, NULL, NULL);
  assert_int_equal(codec_decode(ORM_T_TEXT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 0);
  orm_text_array_t empty = {NULL, 0};
  codec_expect_encoding(ORM_T_TEXT_ARRAY, &empty, wire, len);
  empty.len = 1;
  assert_int_equal(codec_encode_rc(ORM_T_TEXT_ARRAY, &empty), ORM_EINVAL);
}

static void test_array_malformed(void **state) {
  unsigned char wire[256];
  orm_int_array_t a = {NULL, NULL, 77};
  orm_text_array_t t = {NULL, 77};
  const char *e4[] = {"\0\0\0\1", "\0\0\0\2"};
  const int32_t l4[] = {4, 4};

  /* Element type checks, both ways. */
  size_t len = wire_array(wire, 1, 0, 23, 1, 2, e4, l4);
  assert_int_equal(codec_decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  const char *et[] = {"ab"};
  const int32_t lt[] = {2};
  len = wire_array(wire, 1, 0, 25, 1, 1, et, lt);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = wire_array(wire, 1, 0, 1700, 1, 1, et, lt);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = wire_array(wire, 0, 0, 16, 0, 0, NULL, NULL);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);

  /* An element whose length does not match the element type. */
  const int32_t lbad[] = {4, 3};
  len = wire_array(wire, 1, 0, 23, 1, 2, e4, lbad);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = wire_array(wire, 1, 0, 20, 1, 2, e4, l4);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);

  /* Two dimensions: {{1},{2}}. */
  len = wire_array(wire, 1, 0, 23, 1, 2, e4, l4);
  memmove(wire + 20 + 8, wire + 20, len - 20);
  wire_be32(wire, 2);
  wire_be32(wire + 12, 2);
  wire_be32(wire + 20, 1);
  wire_be32(wire + 24, 1);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len + 8, &a), ORM_ETYPE);

  /* Bad flags, negative and absurd dimensions, bad element length. */
  len = wire_array(wire, 1, 2, 23, 1, 2, e4, l4);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = wire_array(wire, 1, 0, 23, 1, 2, e4, l4);
  wire_be32(wire + 12, UINT32_MAX);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  wire_be32(wire + 12, INT32_MAX);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  wire_be32(wire + 12, 3);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  wire_be32(wire, UINT32_MAX);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  const int32_t lneg[] = {-2, 4};
  len = wire_array(wire, 1, 0, 25, 1, 2, e4, lneg);
  assert_int_equal(codec_decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  /* An element claiming more bytes than remain. */
  len = wire_array(wire, 1, 0, 25, 1, 1, e4, l4);
  wire_be32(wire + 20, INT32_MAX);
  assert_int_equal(codec_decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  wire_be32(wire + 20, 5);
  assert_int_equal(codec_decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  /* ndim 0 with trailing bytes. */
  len = wire_array(wire, 0, 0, 23, 0, 0, NULL, NULL);
  assert_int_equal(codec_decode(ORM_T_INT_ARRAY, wire, len + 4, &a), ORM_ETYPE);

  assert_int_equal(a.len, 77);
  assert_int_equal(t.len, 77);
}

/* ---- types, OIDs, arguments -------------------------------------------- */

static void test_type_table(void **state) {
  for (int t = 1; t < ORM_T_COUNT_; t++) {
    assert_true(orm__codec_type_valid((orm_type_t)t));
    assert_true(orm__codec_field_size((orm_type_t)t) > 0);
    assert_string_not_equal(orm__codec_type_name((orm_type_t)t), "?");
  }
  assert_false(orm__codec_type_valid((orm_type_t)0));
  assert_false(orm__codec_type_valid(ORM_T_COUNT_));
  assert_int_equal(orm__codec_field_size((orm_type_t)0), 0);
  assert_string_equal(orm__codec_type_name((orm_type_t)0), "?");
  assert_int_equal(orm__codec_field_size(ORM_T_UUID), 16);
  assert_int_equal(orm__codec_field_size(ORM_T_INT_ARRAY),
                   sizeof(orm_int_array_t));
  assert_string_equal(orm__codec_type_name(ORM_T_TIMESTAMPTZ), "timestamptz");

  assert_int_equal(orm__codec_param_oid(ORM_T_INT8), 20);
  assert_int_equal(orm__codec_param_oid(ORM_T_NUMERIC), 1700);
  assert_int_equal(orm__codec_param_oid(ORM_T_INT_ARRAY), 1016);
  assert_int_equal(orm__codec_param_oid(ORM_T_TEXT_ARRAY), 1009);
  assert_int_equal(orm__codec_param_oid(ORM_T_TEXT), 0);
  assert_int_equal(orm__codec_param_oid(ORM_T_ENUM), 0);
  assert_int_equal(orm__codec_param_oid((orm_type_t)0), 0);
}

static void test_accepts(void **state) {
  /* Widening, never narrowing. */
  assert_true(orm__codec_accepts(ORM_T_INT8, 20));
  assert_true(orm__codec_accepts(ORM_T_INT8, 23));
  assert_true(orm__codec_accepts(ORM_T_INT8, 21));
  assert_true(orm__codec_accepts(ORM_T_INT4, 23));
  assert_true(orm__codec_accepts(ORM_T_INT4, 21));
  assert_false(orm__codec_accepts(ORM_T_INT4, 20));
  assert_true(orm__codec_accepts(ORM_T_INT2, 21));
  assert_false(orm__codec_accepts(ORM_T_INT2, 23));
  assert_true(orm__codec_accepts(ORM_T_FLOAT8, 700));
  assert_false(orm__codec_accepts(ORM_T_FLOAT4, 701));
  assert_false(orm__codec_accepts(ORM_T_INT8, 1700));
  assert_false(orm__codec_accepts(ORM_T_INT8, 1082));
  /* Text family; enums by user OID. */
  static const uint32_t text_oids[] = {25, 1043, 1042, 19};
  for (size_t i = 0; i < 4; i++) {
    assert_true(orm__codec_accepts(ORM_T_TEXT, text_oids[i]));
    assert_true(orm__codec_accepts(ORM_T_ENUM, text_oids[i]));
  }
  assert_false(orm__codec_accepts(ORM_T_TEXT, 16384));
  assert_false(orm__codec_accepts(ORM_T_TEXT, 114));
  assert_true(orm__codec_accepts(ORM_T_ENUM, 16384));
  assert_true(orm__codec_accepts(ORM_T_ENUM, 4000000000u));
  assert_false(orm__codec_accepts(ORM_T_ENUM, 23));
  assert_false(orm__codec_accepts(ORM_T_ENUM, 16383));
  /* No mixing of look-alikes. */
  assert_false(orm__codec_accepts(ORM_T_TIMESTAMPTZ, 1114));
  assert_false(orm__codec_accepts(ORM_T_TIMESTAMP, 1184));
  assert_false(orm__codec_accepts(ORM_T_JSON, 3802));
  assert_false(orm__codec_accepts(ORM_T_JSONB, 114));
  assert_true(orm__codec_accepts(ORM_T_UUID, 2950));
  assert_true(orm__codec_accepts(ORM_T_DATE, 1082));
  assert_true(orm__codec_accepts(ORM_T_BYTEA, 17));
  assert_true(orm__codec_accepts(ORM_T_BOOL, 16));
  /* Arrays. */
  assert_true(orm__codec_accepts(ORM_T_INT_ARRAY, 1005));
  assert_true(orm__codec_accepts(ORM_T_INT_ARRAY, 1007));
  assert_true(orm__codec_accepts(ORM_T_INT_ARRAY, 1016));
  assert_false(orm__codec_accepts(ORM_T_INT_ARRAY, 20));
  assert_false(orm__codec_accepts(ORM_T_INT_ARRAY, 1009));
  assert_true(orm__codec_accepts(ORM_T_TEXT_ARRAY, 1009));
  assert_true(orm__codec_accepts(ORM_T_TEXT_ARRAY, 1015));
  assert_false(orm__codec_accepts(ORM_T_TEXT_ARRAY, 1007));
  assert_false(orm__codec_accepts((orm_type_t)0, 23));
  assert_false(orm__codec_accepts(ORM_T_COUNT_, 23));
}

static void test_invalid_arguments(void **state) {
  int64_t v = 1;
  char *s = NULL;
  assert_int_equal(
      orm__codec_decode((orm_type_t)0, "\0\0\0\0\0\0\0\0", 8, &v, &codec_arena),
      ORM_EINVAL);
  assert_int_equal(orm__codec_decode(ORM_T_COUNT_, "\0", 1, &v, &codec_arena),
                   ORM_EINVAL);
  assert_int_equal(orm__codec_decode(ORM_T_INT8, "", -1, &v, &codec_arena),
                   ORM_EINVAL);
  assert_int_equal(orm__codec_decode(ORM_T_INT8, NULL, 8, &v, &codec_arena),
                   ORM_EINVAL);
  assert_int_equal(orm__codec_decode(ORM_T_TEXT, "abc", 3, &s, NULL),
                   ORM_EINVAL);
  assert_null(s);
  /* Fixed-size types need no arena. */
  assert_int_equal(
      orm__codec_decode(ORM_T_INT8, "\0\0\0\0\0\0\0\7", 8, &v, NULL), 0);
  assert_true(v == 7);

  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__codec_encode((orm_type_t)0, &v, &buf), ORM_EINVAL);
  assert_int_equal(orm__codec_encode(ORM_T_COUNT_, &v, &buf), ORM_EINVAL);
  assert_int_equal(orm__codec_encode(ORM_T_INT8, NULL, &buf), ORM_EINVAL);
  assert_int_equal(buf.len, 0);
  orm__buf_free(&buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, codec_arena_setup, codec_arena_teardown)
      T(test_int_array),  T(test_text_array), T(test_array_malformed),
      T(test_type_table), T(test_accepts),    T(test_invalid_arguments),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
