/* SPDX-License-Identifier: MIT */
/* The binary codecs without a server (support/codec_wire.h): integers,
 * floats and bool, strings and bytes, time. Hand-built wire bytes in both
 * directions and malformed input. */
#include "codec_wire.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- integers ---------------------------------------------------------- */

static void test_int8(void **state) {
  struct {
    const char *wire;
    int64_t value;
  } cases[] = {
      {"\x00\x00\x00\x00\x00\x00\x00\x00", 0},
      {"\x00\x00\x00\x00\x00\x00\x00\x01", 1},
      {"\xff\xff\xff\xff\xff\xff\xff\xff", -1},
      {"\x01\x02\x03\x04\x05\x06\x07\x08", INT64_C(0x0102030405060708)},
      {"\x7f\xff\xff\xff\xff\xff\xff\xff", INT64_MAX},
      {"\x80\x00\x00\x00\x00\x00\x00\x00", INT64_MIN},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int64_t v = 42;
    assert_int_equal(codec_decode(ORM_T_INT8, cases[i].wire, 8, &v), 0);
    assert_true(v == cases[i].value);
    codec_expect_encoding(ORM_T_INT8, &cases[i].value, cases[i].wire, 8);
  }
  int64_t v = 42;
  for (size_t n = 0; n <= 9; n++) {
    if (n == 2 || n == 4 || n == 8)
      continue;
    assert_int_equal(
        codec_decode(ORM_T_INT8, "\x01\x02\x03\x04\x05\x06\x07\x08\x09", n, &v),
        ORM_ETYPE);
    assert_true(v == 42);
  }
}

static void test_int4_int2_and_widening(void **state) {
  int32_t i4 = 0;
  int16_t i2 = 0;
  int64_t i8 = 0;
  assert_int_equal(codec_decode(ORM_T_INT4, "\x80\x00\x00\x00", 4, &i4), 0);
  assert_int_equal(i4, INT32_MIN);
  assert_int_equal(codec_decode(ORM_T_INT4, "\x7f\xff\xff\xff", 4, &i4), 0);
  assert_int_equal(i4, INT32_MAX);
  assert_int_equal(codec_decode(ORM_T_INT2, "\x80\x00", 2, &i2), 0);
  assert_int_equal(i2, INT16_MIN);
  assert_int_equal(codec_decode(ORM_T_INT2, "\xff\xfe", 2, &i2), 0);
  assert_int_equal(i2, -2);

  /* Widening keeps the sign. */
  assert_int_equal(codec_decode(ORM_T_INT8, "\xff\xff\xff\xfe", 4, &i8), 0);
  assert_true(i8 == -2);
  assert_int_equal(codec_decode(ORM_T_INT8, "\x80\x00", 2, &i8), 0);
  assert_true(i8 == INT16_MIN);
  assert_int_equal(codec_decode(ORM_T_INT4, "\xff\xfd", 2, &i4), 0);
  assert_int_equal(i4, -3);

  /* Narrowing never. */
  i4 = 7;
  assert_int_equal(codec_decode(ORM_T_INT4, "\0\0\0\0\0\0\0\1", 8, &i4),
                   ORM_ETYPE);
  assert_int_equal(codec_decode(ORM_T_INT4, "\0\0\0", 3, &i4), ORM_ETYPE);
  assert_int_equal(i4, 7);
  i2 = 7;
  assert_int_equal(codec_decode(ORM_T_INT2, "\0\0\0\1", 4, &i2), ORM_ETYPE);
  assert_int_equal(codec_decode(ORM_T_INT2, "\0", 1, &i2), ORM_ETYPE);
  assert_int_equal(i2, 7);

  i4 = INT32_MIN;
  codec_expect_encoding(ORM_T_INT4, &i4, "\x80\x00\x00\x00", 4);
  i4 = -2;
  codec_expect_encoding(ORM_T_INT4, &i4, "\xff\xff\xff\xfe", 4);
  i2 = INT16_MAX;
  codec_expect_encoding(ORM_T_INT2, &i2, "\x7f\xff", 2);
  i2 = -1;
  codec_expect_encoding(ORM_T_INT2, &i2, "\xff\xff", 2);
}

/* ---- floats and bool --------------------------------------------------- */

static void test_floats(void **state) {
  double d = 0;
  float f = 0;
  assert_int_equal(codec_decode(ORM_T_FLOAT8, "\x3f\xf8\0\0\0\0\0\0", 8, &d),
                   0);
  assert_true(d == 1.5);
  assert_int_equal(codec_decode(ORM_T_FLOAT8, "\x7f\xf8\0\0\0\0\0\0", 8, &d),
                   0);
  assert_true(isnan(d));
  assert_int_equal(codec_decode(ORM_T_FLOAT8, "\x7f\xf0\0\0\0\0\0\0", 8, &d),
                   0);
  assert_true(isinf(d) && d > 0);
  assert_int_equal(codec_decode(ORM_T_FLOAT8, "\xff\xf0\0\0\0\0\0\0", 8, &d),
                   0);
  assert_true(isinf(d) && d < 0);
  assert_int_equal(codec_decode(ORM_T_FLOAT8, "\x80\0\0\0\0\0\0\0", 8, &d), 0);
  assert_true(d == 0 && signbit(d));
  assert_int_equal(codec_decode(ORM_T_FLOAT4, "\x3f\xc0\0\0", 4, &f), 0);
  assert_true(f == 1.5f);
  assert_int_equal(codec_decode(ORM_T_FLOAT4, "\x7f\xc0\0\0", 4, &f), 0);
  assert_true(isnan(f));
  assert_int_equal(codec_decode(ORM_T_FLOAT4, "\xff\x80\0\0", 4, &f), 0);
  assert_true(isinf(f) && f < 0);
  /* float4 widens exactly into a double field. */
  assert_int_equal(codec_decode(ORM_T_FLOAT8, "\x3d\xcc\xcc\xcd", 4, &d), 0);
  assert_true(d == (double)0.1f);

  d = 2.0;
  assert_int_equal(codec_decode(ORM_T_FLOAT8, "\0\0\0\0\0\0\0", 7, &d),
                   ORM_ETYPE);
  assert_true(d == 2.0);
  f = 2.0f;
  assert_int_equal(codec_decode(ORM_T_FLOAT4, "\0\0\0\0\0\0\0\0", 8, &f),
                   ORM_ETYPE);
  assert_true(f == 2.0f);

  d = 1.5;
  codec_expect_encoding(ORM_T_FLOAT8, &d, "\x3f\xf8\0\0\0\0\0\0", 8);
  d = INFINITY;
  codec_expect_encoding(ORM_T_FLOAT8, &d, "\x7f\xf0\0\0\0\0\0\0", 8);
  d = -INFINITY;
  codec_expect_encoding(ORM_T_FLOAT8, &d, "\xff\xf0\0\0\0\0\0\0", 8);
  f = -1.5f;
  codec_expect_encoding(ORM_T_FLOAT4, &f, "\xbf\xc0\0\0", 4);
  f = INFINITY;
  codec_expect_encoding(ORM_T_FLOAT4, &f, "\x7f\x80\0\0", 4);

  /* NaN payloads are not portable; the round trip must stay NaN. */
  d = NAN;
  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__codec_encode(ORM_T_FLOAT8, &d, &buf), 0);
  double back = 0;
  assert_int_equal(codec_decode(ORM_T_FLOAT8, buf.data, buf.len, &back), 0);
  assert_true(isnan(back));
  orm__buf_free(&buf);
}

static void test_bool(void **state) {
  bool b = false;
  assert_int_equal(codec_decode(ORM_T_BOOL, "\x01", 1, &b), 0);
  assert_true(b);
  assert_int_equal(codec_decode(ORM_T_BOOL, "\x00", 1, &b), 0);
  assert_false(b);
  assert_int_equal(codec_decode(ORM_T_BOOL, "\x02", 1, &b), 0);
  assert_true(b);
  b = false;
  assert_int_equal(codec_decode(ORM_T_BOOL, "", 0, &b), ORM_ETYPE);
  assert_int_equal(codec_decode(ORM_T_BOOL, "\x01\x01", 2, &b), ORM_ETYPE);
  assert_false(b);
  b = true;
  codec_expect_encoding(ORM_T_BOOL, &b, "\x01", 1);
  b = false;
  codec_expect_encoding(ORM_T_BOOL, &b, "\x00", 1);
}

/* ---- strings and bytes ------------------------------------------------- */

static void test_text(void **state) {
  static const char utf8[] = "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac "
                             "\xf0\x9f\x98\x80"; /* héllo 日本 😀 */
  orm_type_t types[] = {ORM_T_TEXT, ORM_T_ENUM, ORM_T_JSON};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    char *s = NULL;
    assert_int_equal(codec_decode(types[i], utf8, strlen(utf8), &s), 0);
    assert_string_equal(s, utf8);
    assert_int_equal(codec_decode(types[i], "", 0, &s), 0);
    assert_string_equal(s, "");
    /* Not NUL-terminated on the wire: only `len` bytes are taken. */
    assert_int_equal(codec_decode(types[i], "abcdef", 3, &s), 0);
    assert_string_equal(s, "abc");

    const char *in = utf8;
    codec_expect_encoding(types[i], &in, utf8, strlen(utf8));
    in = "";
    codec_expect_encoding(types[i], &in, "", 0);
    in = NULL;
    assert_int_equal(codec_encode_rc(types[i], &in), ORM_EINVAL);
  }
}

static void test_jsonb(void **state) {
  char *s = NULL;
  assert_int_equal(codec_decode(ORM_T_JSONB, "\x01{\"a\": 1}", 9, &s), 0);
  assert_string_equal(s, "{\"a\": 1}");
  s = NULL;
  assert_int_equal(codec_decode(ORM_T_JSONB, "\x02{}", 3, &s), ORM_ETYPE);
  assert_int_equal(codec_decode(ORM_T_JSONB, "", 0, &s), ORM_ETYPE);
  assert_null(s);
  const char *in = "[1, \"\xc3\xa9\"]";
  codec_expect_encoding(ORM_T_JSONB, &in, "\x01[1, \"\xc3\xa9\"]", 10);
}

static void test_bytea(void **state) {
  orm_bytes_t b = {NULL, 99};
  assert_int_equal(codec_decode(ORM_T_BYTEA, "\x00\x01\x00\xff\x00", 5, &b), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "\x00\x01\x00\xff\x00", 5);
  assert_int_equal(codec_decode(ORM_T_BYTEA, "", 0, &b), 0);
  assert_non_null(b.data);
  assert_int_equal(b.len, 0);

  uint8_t raw[] = {0, 0, 7, 0};
  orm_bytes_t in = {raw, sizeof raw};
  codec_expect_encoding(ORM_T_BYTEA, &in, raw, sizeof raw);
  in.data = NULL;
  in.len = 0;
  codec_expect_encoding(ORM_T_BYTEA, &in, "", 0);
  in.len = 3;
  assert_int_equal(codec_encode_rc(ORM_T_BYTEA, &in), ORM_EINVAL);
}

static void test_uuid(void **state) {
  const unsigned char wire[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b,
                                  0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9,
                                  0xbd, 0x38, 0x0a, 0x11};
  uint8_t u[16] = {0};
  assert_int_equal(codec_decode(ORM_T_UUID, wire, 16, u), 0);
  assert_memory_equal(u, wire, 16);
  codec_expect_encoding(ORM_T_UUID, u, wire, 16);
  memset(u, 0x55, sizeof u);
  codec_expect_truncations_rejected(ORM_T_UUID, wire, 16, u, sizeof u);
}

/* ---- time -------------------------------------------------------------- */

static void test_timestamps(void **state) {
  struct {
    int64_t pg;
    int64_t unix_us;
  } cases[] = {
      {0, PG_EPOCH_USECS},       /* 2000-01-01 */
      {-PG_EPOCH_USECS, 0},      /* 1970-01-01 */
      {-PG_EPOCH_USECS - 1, -1}, /* 1969-12-31 23:59:59.999999 */
      {-INT64_C(3155673600000000), -INT64_C(2208988800000000)}, /* 1900-01-01 */
      {INT64_C(32503593600000000) - PG_EPOCH_USECS,
       INT64_C(32503593600000000)}, /* 2999-12-31 */
      {-INT64_C(211813488000000000),
       -INT64_C(211813488000000000) + PG_EPOCH_USECS}, /* 4714-11-24 BC */
      {INT64_MAX, INT64_MAX},                          /* infinity */
      {INT64_MIN, INT64_MIN},                          /* -infinity */
      {INT64_MAX - PG_EPOCH_USECS - 1, INT64_MAX - 1}, /* last finite */
  };
  orm_type_t types[] = {ORM_T_TIMESTAMPTZ, ORM_T_TIMESTAMP};
  for (size_t t = 0; t < 2; t++) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      unsigned char wire[8];
      wire_be64(wire, (uint64_t)cases[i].pg);
      int64_t v = 0;
      assert_int_equal(codec_decode(types[t], wire, 8, &v), 0);
      assert_true(v == cases[i].unix_us);
      codec_expect_encoding(types[t], &cases[i].unix_us, wire, 8);
    }
    /* Too late for int64 microseconds since 1970 (PostgreSQL allows up to
     * 294276 AD), or exactly landing on the infinity sentinel. */
    unsigned char wire[8];
    int64_t v = 5;
    wire_be64(wire, (uint64_t)(INT64_MAX - PG_EPOCH_USECS));
    assert_int_equal(codec_decode(types[t], wire, 8, &v), ORM_ERANGE);
    wire_be64(wire, (uint64_t)INT64_C(9223371331199999999));
    assert_int_equal(codec_decode(types[t], wire, 8, &v), ORM_ERANGE);
    assert_true(v == 5);
    v = INT64_MIN + PG_EPOCH_USECS;
    assert_int_equal(codec_encode_rc(types[t], &v), ORM_ERANGE);
    v = INT64_MIN + 1;
    assert_int_equal(codec_encode_rc(types[t], &v), ORM_ERANGE);
    v = 5;
    wire_be64(wire, 0);
    codec_expect_truncations_rejected(types[t], wire, 8, &v, sizeof v);
  }
}

static void test_dates(void **state) {
  struct {
    int32_t pg;
    int32_t unix_days;
  } cases[] = {
      {0, 10957},               /* 2000-01-01 */
      {-10957, 0},              /* 1970-01-01 */
      {-10958, -1},             /* 1969-12-31 */
      {-730119, -719162},       /* 0001-01-01 */
      {-2451545, -2440588},     /* 4714-11-24 BC, the first date */
      {2145031948, 2145042905}, /* 5874897-12-31, the last date */
      {INT32_MAX, INT32_MAX},   /* infinity */
      {INT32_MIN, INT32_MIN},   /* -infinity */
      {INT32_MAX - 10958, INT32_MAX - 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned char wire[4];
    wire_be32(wire, (uint32_t)cases[i].pg);
    int32_t v = 0;
    assert_int_equal(codec_decode(ORM_T_DATE, wire, 4, &v), 0);
    assert_int_equal(v, cases[i].unix_days);
    codec_expect_encoding(ORM_T_DATE, &cases[i].unix_days, wire, 4);
  }
  unsigned char wire[4];
  int32_t v = 3;
  wire_be32(wire, (uint32_t)(INT32_MAX - 10957));
  assert_int_equal(codec_decode(ORM_T_DATE, wire, 4, &v), ORM_ERANGE);
  assert_int_equal(v, 3);
  v = INT32_MIN + 10957;
  assert_int_equal(codec_encode_rc(ORM_T_DATE, &v), ORM_ERANGE);
  v = 3;
  codec_expect_truncations_rejected(ORM_T_DATE, wire, 4, &v, sizeof v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, codec_arena_setup, codec_arena_teardown)
      T(test_int8),       T(test_int4_int2_and_widening),
      T(test_floats),     T(test_bool),
      T(test_text),       T(test_jsonb),
      T(test_bytea),      T(test_uuid),
      T(test_timestamps), T(test_dates),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
