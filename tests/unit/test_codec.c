/* The binary codecs and the result arena, without a server: hand-built wire
 * bytes in both directions, malformed input, and out-of-memory sweeps. Wire
 * values are decoded from exact-size heap copies so that AddressSanitizer
 * catches any read past the end. */
#include "alloc_fault.h"
#include "harness.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm.h>

#include "model/arena.h"
#include "model/codec.h"

#define PG_EPOCH_USECS INT64_C(946684800000000)

static orm__arena_t arena;

static int arena_setup(void **state) {
  orm__arena_init(&arena);
  return 0;
}

static int arena_teardown(void **state) {
  orm__arena_free(&arena);
  return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static void be16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)(v >> 8);
  p[1] = (unsigned char)v;
}

static void be32(unsigned char *p, uint32_t v) {
  be16(p, (uint16_t)(v >> 16));
  be16(p + 2, (uint16_t)v);
}

static void be64(unsigned char *p, uint64_t v) {
  be32(p, (uint32_t)(v >> 32));
  be32(p + 4, (uint32_t)v);
}

/* Decodes from a heap copy of exactly `len` bytes. */
static int decode(orm_type_t type, const void *bytes, size_t len, void *out) {
  char *copy = malloc(len > 0 ? len : 1);
  assert_non_null(copy);
  if (len > 0)
    memcpy(copy, bytes, len);
  int rc = orm__codec_decode(type, copy, (int)len, out, &arena);
  free(copy);
  return rc;
}

/* Asserts that encoding `field` appends exactly `bytes` after what the
 * buffer already held. */
static void expect_encoding(orm_type_t type, const void *field,
                            const void *bytes, size_t len) {
  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__buf_append(&buf, "pre", 3), 0);
  assert_int_equal(orm__codec_encode(type, field, &buf), 0);
  assert_int_equal(buf.len, 3 + len);
  assert_memory_equal(buf.data, "pre", 3);
  if (len > 0)
    assert_memory_equal(buf.data + 3, bytes, len);
  orm__buf_free(&buf);
}

static int encode_rc(orm_type_t type, const void *field) {
  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__buf_append(&buf, "pre", 3), 0);
  int rc = orm__codec_encode(type, field, &buf);
  if (rc != 0) {
    assert_int_equal(buf.len, 3);
    assert_memory_equal(buf.data, "pre", 3);
  }
  orm__buf_free(&buf);
  return rc;
}

/* Every strict prefix of a fixed-layout value is rejected, and so is the
 * value with one byte too many. */
static void expect_truncations_rejected(orm_type_t type, const void *bytes,
                                        size_t len, void *out,
                                        size_t out_size) {
  unsigned char *before = malloc(out_size);
  unsigned char *longer = malloc(len + 1);
  assert_non_null(before);
  assert_non_null(longer);
  memcpy(before, out, out_size);
  for (size_t n = 0; n < len; n++) {
    assert_int_equal(decode(type, bytes, n, out), ORM_ETYPE);
    assert_memory_equal(out, before, out_size);
  }
  memcpy(longer, bytes, len);
  longer[len] = 0;
  assert_int_equal(decode(type, longer, len + 1, out), ORM_ETYPE);
  assert_memory_equal(out, before, out_size);
  free(longer);
  free(before);
}

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
    assert_int_equal(decode(ORM_T_INT8, cases[i].wire, 8, &v), 0);
    assert_true(v == cases[i].value);
    expect_encoding(ORM_T_INT8, &cases[i].value, cases[i].wire, 8);
  }
  int64_t v = 42;
  for (size_t n = 0; n <= 9; n++) {
    if (n == 2 || n == 4 || n == 8)
      continue;
    assert_int_equal(
        decode(ORM_T_INT8, "\x01\x02\x03\x04\x05\x06\x07\x08\x09", n, &v),
        ORM_ETYPE);
    assert_true(v == 42);
  }
}

static void test_int4_int2_and_widening(void **state) {
  int32_t i4 = 0;
  int16_t i2 = 0;
  int64_t i8 = 0;
  assert_int_equal(decode(ORM_T_INT4, "\x80\x00\x00\x00", 4, &i4), 0);
  assert_int_equal(i4, INT32_MIN);
  assert_int_equal(decode(ORM_T_INT4, "\x7f\xff\xff\xff", 4, &i4), 0);
  assert_int_equal(i4, INT32_MAX);
  assert_int_equal(decode(ORM_T_INT2, "\x80\x00", 2, &i2), 0);
  assert_int_equal(i2, INT16_MIN);
  assert_int_equal(decode(ORM_T_INT2, "\xff\xfe", 2, &i2), 0);
  assert_int_equal(i2, -2);

  /* Widening keeps the sign. */
  assert_int_equal(decode(ORM_T_INT8, "\xff\xff\xff\xfe", 4, &i8), 0);
  assert_true(i8 == -2);
  assert_int_equal(decode(ORM_T_INT8, "\x80\x00", 2, &i8), 0);
  assert_true(i8 == INT16_MIN);
  assert_int_equal(decode(ORM_T_INT4, "\xff\xfd", 2, &i4), 0);
  assert_int_equal(i4, -3);

  /* Narrowing never. */
  i4 = 7;
  assert_int_equal(decode(ORM_T_INT4, "\0\0\0\0\0\0\0\1", 8, &i4), ORM_ETYPE);
  assert_int_equal(decode(ORM_T_INT4, "\0\0\0", 3, &i4), ORM_ETYPE);
  assert_int_equal(i4, 7);
  i2 = 7;
  assert_int_equal(decode(ORM_T_INT2, "\0\0\0\1", 4, &i2), ORM_ETYPE);
  assert_int_equal(decode(ORM_T_INT2, "\0", 1, &i2), ORM_ETYPE);
  assert_int_equal(i2, 7);

  i4 = INT32_MIN;
  expect_encoding(ORM_T_INT4, &i4, "\x80\x00\x00\x00", 4);
  i4 = -2;
  expect_encoding(ORM_T_INT4, &i4, "\xff\xff\xff\xfe", 4);
  i2 = INT16_MAX;
  expect_encoding(ORM_T_INT2, &i2, "\x7f\xff", 2);
  i2 = -1;
  expect_encoding(ORM_T_INT2, &i2, "\xff\xff", 2);
}

/* ---- floats and bool --------------------------------------------------- */

static void test_floats(void **state) {
  double d = 0;
  float f = 0;
  assert_int_equal(decode(ORM_T_FLOAT8, "\x3f\xf8\0\0\0\0\0\0", 8, &d), 0);
  assert_true(d == 1.5);
  assert_int_equal(decode(ORM_T_FLOAT8, "\x7f\xf8\0\0\0\0\0\0", 8, &d), 0);
  assert_true(isnan(d));
  assert_int_equal(decode(ORM_T_FLOAT8, "\x7f\xf0\0\0\0\0\0\0", 8, &d), 0);
  assert_true(isinf(d) && d > 0);
  assert_int_equal(decode(ORM_T_FLOAT8, "\xff\xf0\0\0\0\0\0\0", 8, &d), 0);
  assert_true(isinf(d) && d < 0);
  assert_int_equal(decode(ORM_T_FLOAT8, "\x80\0\0\0\0\0\0\0", 8, &d), 0);
  assert_true(d == 0 && signbit(d));
  assert_int_equal(decode(ORM_T_FLOAT4, "\x3f\xc0\0\0", 4, &f), 0);
  assert_true(f == 1.5f);
  assert_int_equal(decode(ORM_T_FLOAT4, "\x7f\xc0\0\0", 4, &f), 0);
  assert_true(isnan(f));
  assert_int_equal(decode(ORM_T_FLOAT4, "\xff\x80\0\0", 4, &f), 0);
  assert_true(isinf(f) && f < 0);
  /* float4 widens exactly into a double field. */
  assert_int_equal(decode(ORM_T_FLOAT8, "\x3d\xcc\xcc\xcd", 4, &d), 0);
  assert_true(d == (double)0.1f);

  d = 2.0;
  assert_int_equal(decode(ORM_T_FLOAT8, "\0\0\0\0\0\0\0", 7, &d), ORM_ETYPE);
  assert_true(d == 2.0);
  f = 2.0f;
  assert_int_equal(decode(ORM_T_FLOAT4, "\0\0\0\0\0\0\0\0", 8, &f), ORM_ETYPE);
  assert_true(f == 2.0f);

  d = 1.5;
  expect_encoding(ORM_T_FLOAT8, &d, "\x3f\xf8\0\0\0\0\0\0", 8);
  d = INFINITY;
  expect_encoding(ORM_T_FLOAT8, &d, "\x7f\xf0\0\0\0\0\0\0", 8);
  d = -INFINITY;
  expect_encoding(ORM_T_FLOAT8, &d, "\xff\xf0\0\0\0\0\0\0", 8);
  f = -1.5f;
  expect_encoding(ORM_T_FLOAT4, &f, "\xbf\xc0\0\0", 4);
  f = INFINITY;
  expect_encoding(ORM_T_FLOAT4, &f, "\x7f\x80\0\0", 4);

  /* NaN payloads are not portable; the round trip must stay NaN. */
  d = NAN;
  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__codec_encode(ORM_T_FLOAT8, &d, &buf), 0);
  double back = 0;
  assert_int_equal(decode(ORM_T_FLOAT8, buf.data, buf.len, &back), 0);
  assert_true(isnan(back));
  orm__buf_free(&buf);
}

static void test_bool(void **state) {
  bool b = false;
  assert_int_equal(decode(ORM_T_BOOL, "\x01", 1, &b), 0);
  assert_true(b);
  assert_int_equal(decode(ORM_T_BOOL, "\x00", 1, &b), 0);
  assert_false(b);
  assert_int_equal(decode(ORM_T_BOOL, "\x02", 1, &b), 0);
  assert_true(b);
  b = false;
  assert_int_equal(decode(ORM_T_BOOL, "", 0, &b), ORM_ETYPE);
  assert_int_equal(decode(ORM_T_BOOL, "\x01\x01", 2, &b), ORM_ETYPE);
  assert_false(b);
  b = true;
  expect_encoding(ORM_T_BOOL, &b, "\x01", 1);
  b = false;
  expect_encoding(ORM_T_BOOL, &b, "\x00", 1);
}

/* ---- strings and bytes ------------------------------------------------- */

static void test_text(void **state) {
  static const char utf8[] = "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac "
                             "\xf0\x9f\x98\x80"; /* héllo 日本 😀 */
  orm_type_t types[] = {ORM_T_TEXT, ORM_T_ENUM, ORM_T_JSON};
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    char *s = NULL;
    assert_int_equal(decode(types[i], utf8, strlen(utf8), &s), 0);
    assert_string_equal(s, utf8);
    assert_int_equal(decode(types[i], "", 0, &s), 0);
    assert_string_equal(s, "");
    /* Not NUL-terminated on the wire: only `len` bytes are taken. */
    assert_int_equal(decode(types[i], "abcdef", 3, &s), 0);
    assert_string_equal(s, "abc");

    const char *in = utf8;
    expect_encoding(types[i], &in, utf8, strlen(utf8));
    in = "";
    expect_encoding(types[i], &in, "", 0);
    in = NULL;
    assert_int_equal(encode_rc(types[i], &in), ORM_EINVAL);
  }
}

static void test_jsonb(void **state) {
  char *s = NULL;
  assert_int_equal(decode(ORM_T_JSONB, "\x01{\"a\": 1}", 9, &s), 0);
  assert_string_equal(s, "{\"a\": 1}");
  s = NULL;
  assert_int_equal(decode(ORM_T_JSONB, "\x02{}", 3, &s), ORM_ETYPE);
  assert_int_equal(decode(ORM_T_JSONB, "", 0, &s), ORM_ETYPE);
  assert_null(s);
  const char *in = "[1, \"\xc3\xa9\"]";
  expect_encoding(ORM_T_JSONB, &in, "\x01[1, \"\xc3\xa9\"]", 10);
}

static void test_bytea(void **state) {
  orm_bytes_t b = {NULL, 99};
  assert_int_equal(decode(ORM_T_BYTEA, "\x00\x01\x00\xff\x00", 5, &b), 0);
  assert_int_equal(b.len, 5);
  assert_memory_equal(b.data, "\x00\x01\x00\xff\x00", 5);
  assert_int_equal(decode(ORM_T_BYTEA, "", 0, &b), 0);
  assert_non_null(b.data);
  assert_int_equal(b.len, 0);

  uint8_t raw[] = {0, 0, 7, 0};
  orm_bytes_t in = {raw, sizeof raw};
  expect_encoding(ORM_T_BYTEA, &in, raw, sizeof raw);
  in.data = NULL;
  in.len = 0;
  expect_encoding(ORM_T_BYTEA, &in, "", 0);
  in.len = 3;
  assert_int_equal(encode_rc(ORM_T_BYTEA, &in), ORM_EINVAL);
}

static void test_uuid(void **state) {
  const unsigned char wire[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b,
                                  0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9,
                                  0xbd, 0x38, 0x0a, 0x11};
  uint8_t u[16] = {0};
  assert_int_equal(decode(ORM_T_UUID, wire, 16, u), 0);
  assert_memory_equal(u, wire, 16);
  expect_encoding(ORM_T_UUID, u, wire, 16);
  memset(u, 0x55, sizeof u);
  expect_truncations_rejected(ORM_T_UUID, wire, 16, u, sizeof u);
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
      be64(wire, (uint64_t)cases[i].pg);
      int64_t v = 0;
      assert_int_equal(decode(types[t], wire, 8, &v), 0);
      assert_true(v == cases[i].unix_us);
      expect_encoding(types[t], &cases[i].unix_us, wire, 8);
    }
    /* Too late for int64 microseconds since 1970 (PostgreSQL allows up to
     * 294276 AD), or exactly landing on the infinity sentinel. */
    unsigned char wire[8];
    int64_t v = 5;
    be64(wire, (uint64_t)(INT64_MAX - PG_EPOCH_USECS));
    assert_int_equal(decode(types[t], wire, 8, &v), ORM_ERANGE);
    be64(wire, (uint64_t)INT64_C(9223371331199999999));
    assert_int_equal(decode(types[t], wire, 8, &v), ORM_ERANGE);
    assert_true(v == 5);
    v = INT64_MIN + PG_EPOCH_USECS;
    assert_int_equal(encode_rc(types[t], &v), ORM_ERANGE);
    v = INT64_MIN + 1;
    assert_int_equal(encode_rc(types[t], &v), ORM_ERANGE);
    v = 5;
    be64(wire, 0);
    expect_truncations_rejected(types[t], wire, 8, &v, sizeof v);
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
    be32(wire, (uint32_t)cases[i].pg);
    int32_t v = 0;
    assert_int_equal(decode(ORM_T_DATE, wire, 4, &v), 0);
    assert_int_equal(v, cases[i].unix_days);
    expect_encoding(ORM_T_DATE, &cases[i].unix_days, wire, 4);
  }
  unsigned char wire[4];
  int32_t v = 3;
  be32(wire, (uint32_t)(INT32_MAX - 10957));
  assert_int_equal(decode(ORM_T_DATE, wire, 4, &v), ORM_ERANGE);
  assert_int_equal(v, 3);
  v = INT32_MIN + 10957;
  assert_int_equal(encode_rc(ORM_T_DATE, &v), ORM_ERANGE);
  v = 3;
  expect_truncations_rejected(ORM_T_DATE, wire, 4, &v, sizeof v);
}

/* ---- numeric ----------------------------------------------------------- */

/* Hand-builds a numeric's wire form into `out`; returns its length. */
static size_t numeric_wire(unsigned char *out, int weight, uint16_t sign,
                           uint16_t dscale, size_t ndigits,
                           const uint16_t *digits) {
  be16(out, (uint16_t)ndigits);
  be16(out + 2, (uint16_t)(int16_t)weight);
  be16(out + 4, sign);
  be16(out + 6, dscale);
  for (size_t i = 0; i < ndigits; i++)
    be16(out + 8 + 2 * i, digits[i]);
  return 8 + 2 * ndigits;
}

#define NUM_CASE(text, weight, sign, dscale, ndigits, ...)                     \
  {                                                                            \
    text, weight, sign, dscale, ndigits, { __VA_ARGS__ }                       \
  }

typedef struct {
  const char *text;
  int weight;
  uint16_t sign;
  uint16_t dscale;
  size_t ndigits;
  uint16_t digits[16];
} numeric_case_t;

/* Canonical forms: decoding the wire gives `text`, encoding `text` gives
 * the wire. */
static const numeric_case_t numeric_cases[] = {
    NUM_CASE("0", 0, 0x0000, 0, 0, 0),
    NUM_CASE("0.00", 0, 0x0000, 2, 0, 0),
    NUM_CASE("1", 0, 0x0000, 0, 1, 1),
    NUM_CASE("0.0001", -1, 0x0000, 4, 1, 1),
    NUM_CASE("-0.000001", -2, 0x4000, 6, 1, 100),
    NUM_CASE("-12345.678900", 1, 0x4000, 6, 3, 1, 2345, 6789),
    NUM_CASE("10000", 1, 0x0000, 0, 1, 1),
    NUM_CASE("9999.9999", 0, 0x0000, 4, 2, 9999, 9999),
    NUM_CASE("0.5", -1, 0x0000, 1, 1, 5000),
    NUM_CASE("123456789012345678901234567890.123456789", 7, 0x0000, 9, 11, 12,
             3456, 7890, 1234, 5678, 9012, 3456, 7890, 1234, 5678, 9000),
    NUM_CASE("NaN", 0, 0xC000, 0, 0, 0),
    NUM_CASE("Infinity", 0, 0xD000, 0, 0, 0),
    NUM_CASE("-Infinity", 0, 0xF000, 0, 0, 0),
};

static void test_numeric_canonical(void **state) {
  for (size_t i = 0; i < sizeof numeric_cases / sizeof numeric_cases[0]; i++) {
    const numeric_case_t *c = &numeric_cases[i];
    unsigned char wire[8 + 2 * 16];
    size_t len = numeric_wire(wire, c->weight, c->sign, c->dscale, c->ndigits,
                              c->digits);
    char *s = NULL;
    assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), 0);
    assert_string_equal(s, c->text);
    expect_encoding(ORM_T_NUMERIC, &c->text, wire, len);
    expect_truncations_rejected(ORM_T_NUMERIC, wire, len, &s, sizeof s);
  }
}

static void test_numeric_large_weight(void **state) {
  /* 1e100: one digit in group 25. */
  unsigned char wire[16];
  const uint16_t one[] = {1};
  size_t len = numeric_wire(wire, 25, 0x0000, 0, 1, one);
  char *s = NULL;
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_int_equal(strlen(s), 101);
  assert_int_equal(s[0], '1');
  assert_int_equal(strspn(s + 1, "0"), 100);
  const char *in = "1e100";
  expect_encoding(ORM_T_NUMERIC, &in, wire, len);
  in = s;
  expect_encoding(ORM_T_NUMERIC, &in, wire, len);

  /* The largest weight the format holds: 131072 integer digits. */
  len = numeric_wire(wire, INT16_MAX, 0x4000, 0, 1, (const uint16_t[]){7});
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_int_equal(strlen(s), 2 + 4 * (size_t)INT16_MAX);
  assert_string_equal(s + strlen(s) - 3, "000");
  assert_int_equal(strncmp(s, "-70", 3), 0);

  /* A weight far below the digits: all zeros but the last. */
  len = numeric_wire(wire, -5, 0x0000, 21, 1, (const uint16_t[]){3});
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "0.000000000000000000030");
}

static void test_numeric_decode_lenient_forms(void **state) {
  unsigned char wire[32];
  char *s = NULL;
  /* Digits hidden by dscale are cut, as the server does on receive. */
  size_t len = numeric_wire(wire, 0, 0x0000, 2, 2, (const uint16_t[]){3, 1415});
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "3.14");
  /* Unnormalised leading zero groups still print one integer zero. */
  len = numeric_wire(wire, 1, 0x0000, 1, 3, (const uint16_t[]){0, 0, 5000});
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "0.5");
  len = numeric_wire(wire, 1, 0x0000, 0, 2, (const uint16_t[]){0, 42});
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), 0);
  assert_string_equal(s, "42");
}

static void test_numeric_malformed(void **state) {
  unsigned char wire[32];
  static char untouched[] = "untouched";
  char *s = untouched;
  const uint16_t d[] = {1, 2};
  /* Digit out of base 10000. */
  size_t len =
      numeric_wire(wire, 0, 0x0000, 0, 2, (const uint16_t[]){1, 10000});
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* Unknown sign word. */
  len = numeric_wire(wire, 0, 0x8000, 0, 1, d);
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* NaN with digits. */
  len = numeric_wire(wire, 0, 0xC000, 0, 1, d);
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* Scale beyond the format's 0x3FFF, and one that reads negative. */
  len = numeric_wire(wire, 0, 0x0000, 0x4000, 1, d);
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  len = numeric_wire(wire, 0, 0x0000, 0xFFFF, 1, d);
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  /* ndigits larger than the bytes sent, and negative. */
  len = numeric_wire(wire, 0, 0x0000, 0, 2, d);
  be16(wire, 3);
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  be16(wire, 0xFFFF);
  assert_int_equal(decode(ORM_T_NUMERIC, wire, len, &s), ORM_ETYPE);
  assert_string_equal(s, "untouched");
}

static void test_numeric_encode_forms(void **state) {
  static const struct {
    const char *in;
    const char *canonical;
  } cases[] = {
      {"007.50", "7.50"},
      {"+3", "3"},
      {"-0", "0"},
      {"-0.000", "0.000"},
      {".5", "0.5"},
      {"5.", "5"},
      {"1E+3", "1000"},
      {"12.34e1", "123.4"},
      {"1.5e-3", "0.0015"},
      {"1e-5", "0.00001"},
      {"nan", "NaN"},
      {"NAN", "NaN"},
      {"inf", "Infinity"},
      {"+Infinity", "Infinity"},
      {"-infinity", "-Infinity"},
      {"-INF", "-Infinity"},
      {"100000000", "100000000"},
      {"0.00010000", "0.00010000"},
      {"-99999999.99999999", "-99999999.99999999"},
      {"123.0e-2", "1.230"},
      {"5e0", "5"},
      {"0e10", "0"},
  };
  orm__buf_t buf;
  orm__buf_init(&buf);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    orm__buf_reset(&buf);
    assert_int_equal(orm__codec_encode(ORM_T_NUMERIC, &cases[i].in, &buf), 0);
    char *s = NULL;
    assert_int_equal(decode(ORM_T_NUMERIC, buf.data, buf.len, &s), 0);
    if (strcmp(s, cases[i].canonical) != 0)
      fail_msg("%s encoded and decoded as %s, expected %s", cases[i].in, s,
               cases[i].canonical);
  }
  orm__buf_free(&buf);

  static const char *invalid[] = {"",    "-",    "+",         ".",    "1.2.3",
                                  "1e",  "1e+",  "abc",       " 1",   "1 ",
                                  "--1", "+NaN", "-nan",      "1,5",  "0x10",
                                  "e5",  ".e1",  "Infinityx", "1e5.0"};
  for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
    if (encode_rc(ORM_T_NUMERIC, &invalid[i]) != ORM_EINVAL)
      fail_msg("numeric \"%s\" was not rejected", invalid[i]);
  }
  static const char *too_big[] = {"1e-20000", "1e200000", "1e131072",
                                  "1e99999999999999999999", "0.1e-16383"};
  for (size_t i = 0; i < sizeof too_big / sizeof too_big[0]; i++) {
    if (encode_rc(ORM_T_NUMERIC, &too_big[i]) != ORM_ERANGE)
      fail_msg("numeric \"%s\" was not out of range", too_big[i]);
  }
  /* The extremes that still fit. */
  const char *fits = "1e131071";
  assert_int_equal(encode_rc(ORM_T_NUMERIC, &fits), 0);
  fits = "1e-16383";
  assert_int_equal(encode_rc(ORM_T_NUMERIC, &fits), 0);
  const char *null_string = NULL;
  assert_int_equal(encode_rc(ORM_T_NUMERIC, &null_string), ORM_EINVAL);
}

static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);

static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Random canonical decimal strings (no leading zeros, any trailing zeros,
 * up to 60 digits each side) survive encode + decode unchanged. */
static void test_numeric_random_round_trip(void **state) {
  orm__buf_t buf;
  orm__buf_init(&buf);
  char text[160];
  for (int iter = 0; iter < 20000; iter++) {
    char *p = text;
    size_t int_len = rng() % 61;
    size_t frac_len = rng() % 61;
    bool zero_int = int_len == 0;
    if (zero_int) {
      *p++ = '0';
    } else {
      *p++ = (char)('1' + rng() % 9);
      for (size_t i = 1; i < int_len; i++)
        *p++ = (char)('0' + (rng() % 3 == 0 ? 0 : rng() % 10));
    }
    if (frac_len > 0) {
      *p++ = '.';
      for (size_t i = 0; i < frac_len; i++)
        *p++ = (char)('0' + (rng() % 3 == 0 ? 0 : rng() % 10));
    }
    *p = '\0';
    bool all_zero = strspn(text, "0.") == strlen(text);
    char signed_text[161];
    snprintf(signed_text, sizeof signed_text, "%s%s",
             !all_zero && rng() % 2 ? "-" : "", text);

    const char *in = signed_text;
    orm__buf_reset(&buf);
    assert_int_equal(orm__codec_encode(ORM_T_NUMERIC, &in, &buf), 0);
    char *out = NULL;
    assert_int_equal(decode(ORM_T_NUMERIC, buf.data, buf.len, &out), 0);
    if (strcmp(out, signed_text) != 0)
      fail_msg("round trip of %s gave %s", signed_text, out);
    orm__arena_reset(&arena);
  }
  orm__buf_free(&buf);
}

/* ---- arrays ------------------------------------------------------------ */

/* Builds a one-dimensional array: elems[i] of lens[i] bytes, -1 for NULL. */
static size_t array_wire(unsigned char *out, int32_t ndim, int32_t flags,
                         uint32_t elem_oid, int32_t lbound, size_t n,
                         const char *const *elems, const int32_t *lens) {
  unsigned char *p = out;
  be32(p, (uint32_t)ndim);
  be32(p + 4, (uint32_t)flags);
  be32(p + 8, elem_oid);
  p += 12;
  if (ndim > 0) {
    be32(p, (uint32_t)n);
    be32(p + 4, (uint32_t)lbound);
    p += 8;
  }
  for (size_t i = 0; i < n; i++) {
    be32(p, (uint32_t)lens[i]);
    p += 4;
    if (lens[i] > 0) {
      memcpy(p, elems[i], (size_t)lens[i]);
      p += lens[i];
    }
  }
  return (size_t)(p - out);
}

static void test_int_array(void **state) {
  unsigned char wire[256];
  orm_int_array_t a = {NULL, NULL, 99};

  /* int4[] {1, NULL, -3}, lower bound 0: the subscript does not matter. */
  const char *e4[] = {"\0\0\0\1", NULL, "\xff\xff\xff\xfd"};
  const int32_t l4[] = {4, -1, 4};
  size_t len = array_wire(wire, 1, 1, 23, 0, 3, e4, l4);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 3);
  assert_non_null(a.nulls);
  assert_true(a.items[0] == 1 && !a.nulls[0]);
  assert_true(a.items[1] == 0 && a.nulls[1]);
  assert_true(a.items[2] == -3 && !a.nulls[2]);
  assert_true(orm_int_array_is_null(&a, 1));
  assert_false(orm_int_array_is_null(&a, 2));
  expect_truncations_rejected(ORM_T_INT_ARRAY, wire, len, &a, sizeof a);

  /* int8[] without NULLs: no null map. */
  const char *e8[] = {"\x80\0\0\0\0\0\0\0", "\x7f\xff\xff\xff\xff\xff\xff\xff"};
  const int32_t l8[] = {8, 8};
  len = array_wire(wire, 1, 0, 20, 1, 2, e8, l8);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 2);
  assert_null(a.nulls);
  assert_true(a.items[0] == INT64_MIN && a.items[1] == INT64_MAX);
  assert_false(orm_int_array_is_null(&a, 0));
  expect_encoding(ORM_T_INT_ARRAY, &a, wire, len);

  /* int2[] */
  const char *e2[] = {"\x80\x00", "\x7f\xff"};
  const int32_t l2[] = {2, 2};
  len = array_wire(wire, 1, 0, 21, 1, 2, e2, l2);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_true(a.len == 2 && a.items[0] == INT16_MIN && a.items[1] == INT16_MAX);

  /* The empty array. */
  len = array_wire(wire, 0, 0, 23, 0, 0, NULL, NULL);
  a.len = 99;
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 0);
  orm_int_array_t empty = {NULL, NULL, 0};
  len = array_wire(wire, 0, 0, 20, 0, 0, NULL, NULL);
  expect_encoding(ORM_T_INT_ARRAY, &empty, wire, len);

  /* Encoding with NULLs: sent as int8[]. */
  int64_t items[] = {5, 0, -6};
  bool nulls[] = {false, true, false};
  orm_int_array_t in = {items, nulls, 3};
  const char *ee[] = {"\0\0\0\0\0\0\0\5", NULL,
                      "\xff\xff\xff\xff\xff\xff\xff\xfa"};
  const int32_t le[] = {8, -1, 8};
  len = array_wire(wire, 1, 1, 20, 1, 3, ee, le);
  expect_encoding(ORM_T_INT_ARRAY, &in, wire, len);
  in.items = NULL;
  assert_int_equal(encode_rc(ORM_T_INT_ARRAY, &in), ORM_EINVAL);
}

static void test_text_array(void **state) {
  unsigned char wire[256];
  orm_text_array_t a = {NULL, 99};
  const char *e[] = {"a", NULL, "", "\xe6\x97\xa5\xe6\x9c\xac", "NULL"};
  const int32_t l[] = {1, -1, 0, 6, 4};
  static const uint32_t elem_oids[] = {25, 1043, 1042, 19};
  for (size_t k = 0; k < 4; k++) {
    size_t len = array_wire(wire, 1, 1, elem_oids[k], 1, 5, e, l);
    assert_int_equal(decode(ORM_T_TEXT_ARRAY, wire, len, &a), 0);
    assert_int_equal(a.len, 5);
    assert_string_equal(a.items[0], "a");
    assert_null(a.items[1]);
    assert_string_equal(a.items[2], "");
    assert_string_equal(a.items[3], "\xe6\x97\xa5\xe6\x9c\xac");
    assert_string_equal(a.items[4], "NULL");
    if (k == 0) {
      expect_encoding(ORM_T_TEXT_ARRAY, &a, wire, len);
      expect_truncations_rejected(ORM_T_TEXT_ARRAY, wire, len, &a, sizeof a);
    }
  }
  size_t len = array_wire(wire, 0, 0, 25, 0, 0, NULL, NULL);
  assert_int_equal(decode(ORM_T_TEXT_ARRAY, wire, len, &a), 0);
  assert_int_equal(a.len, 0);
  orm_text_array_t empty = {NULL, 0};
  expect_encoding(ORM_T_TEXT_ARRAY, &empty, wire, len);
  empty.len = 1;
  assert_int_equal(encode_rc(ORM_T_TEXT_ARRAY, &empty), ORM_EINVAL);
}

static void test_array_malformed(void **state) {
  unsigned char wire[256];
  orm_int_array_t a = {NULL, NULL, 77};
  orm_text_array_t t = {NULL, 77};
  const char *e4[] = {"\0\0\0\1", "\0\0\0\2"};
  const int32_t l4[] = {4, 4};

  /* Element type checks, both ways. */
  size_t len = array_wire(wire, 1, 0, 23, 1, 2, e4, l4);
  assert_int_equal(decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  const char *et[] = {"ab"};
  const int32_t lt[] = {2};
  len = array_wire(wire, 1, 0, 25, 1, 1, et, lt);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = array_wire(wire, 1, 0, 1700, 1, 1, et, lt);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = array_wire(wire, 0, 0, 16, 0, 0, NULL, NULL);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);

  /* An element whose length does not match the element type. */
  const int32_t lbad[] = {4, 3};
  len = array_wire(wire, 1, 0, 23, 1, 2, e4, lbad);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = array_wire(wire, 1, 0, 20, 1, 2, e4, l4);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);

  /* Two dimensions: {{1},{2}}. */
  len = array_wire(wire, 1, 0, 23, 1, 2, e4, l4);
  memmove(wire + 20 + 8, wire + 20, len - 20);
  be32(wire, 2);
  be32(wire + 12, 2);
  be32(wire + 20, 1);
  be32(wire + 24, 1);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len + 8, &a), ORM_ETYPE);

  /* Bad flags, negative and absurd dimensions, bad element length. */
  len = array_wire(wire, 1, 2, 23, 1, 2, e4, l4);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  len = array_wire(wire, 1, 0, 23, 1, 2, e4, l4);
  be32(wire + 12, UINT32_MAX);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  be32(wire + 12, INT32_MAX);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  be32(wire + 12, 3);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  be32(wire, UINT32_MAX);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len, &a), ORM_ETYPE);
  const int32_t lneg[] = {-2, 4};
  len = array_wire(wire, 1, 0, 25, 1, 2, e4, lneg);
  assert_int_equal(decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  /* An element claiming more bytes than remain. */
  len = array_wire(wire, 1, 0, 25, 1, 1, e4, l4);
  be32(wire + 20, INT32_MAX);
  assert_int_equal(decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  be32(wire + 20, 5);
  assert_int_equal(decode(ORM_T_TEXT_ARRAY, wire, len, &t), ORM_ETYPE);
  /* ndim 0 with trailing bytes. */
  len = array_wire(wire, 0, 0, 23, 0, 0, NULL, NULL);
  assert_int_equal(decode(ORM_T_INT_ARRAY, wire, len + 4, &a), ORM_ETYPE);

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
      orm__codec_decode((orm_type_t)0, "\0\0\0\0\0\0\0\0", 8, &v, &arena),
      ORM_EINVAL);
  assert_int_equal(orm__codec_decode(ORM_T_COUNT_, "\0", 1, &v, &arena),
                   ORM_EINVAL);
  assert_int_equal(orm__codec_decode(ORM_T_INT8, "", -1, &v, &arena),
                   ORM_EINVAL);
  assert_int_equal(orm__codec_decode(ORM_T_INT8, NULL, 8, &v, &arena),
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
    sizes[i] = 1 + rng() % 200;
    if (i % 997 == 0)
      sizes[i] = 100000 + rng() % 100000;
    size_t align = (size_t)1 << (rng() % 5);
    ptrs[i] = orm__arena_alloc(&arena, sizes[i], align);
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
      char *byte = orm__arena_alloc(&arena, 1, 1);
      assert_non_null(byte);
      void *p = orm__arena_alloc(&arena, 3, aligns[i]);
      assert_non_null(p);
      assert_int_equal((uintptr_t)p % aligns[i], 0);
      memset(p, 0xAB, 3);
    }
  }
  assert_null(orm__arena_alloc(&arena, 8, 0));
  assert_null(orm__arena_alloc(&arena, 8, 3));
  assert_null(orm__arena_alloc(&arena, 8, 8192));
  assert_null(orm__arena_alloc(&arena, SIZE_MAX, 1));
  assert_null(orm__arena_alloc(&arena, SIZE_MAX - 8, 4096));
  assert_null(orm__arena_alloc(&arena, SIZE_MAX - 16, 1));
  assert_null(orm__arena_alloc_array(&arena, SIZE_MAX / 2, 4, 4));
  assert_null(orm__arena_strndup(&arena, "x", SIZE_MAX));
  /* Still usable after refusals. */
  void *zero = orm__arena_alloc(&arena, 0, 8);
  assert_non_null(zero);
  char *s = orm__arena_strndup(&arena, "hello world", 5);
  assert_string_equal(s, "hello");
  s = orm__arena_strndup(&arena, NULL, 0);
  assert_string_equal(s, "");
}

/* Tests of the library's memory run on the test allocator (alloc_fault.h),
 * with the shared arena. */
static int counting_setup(void **state) {
  orm__arena_init(&arena);
  return orm_test_alloc_setup(state);
}

static int counting_teardown(void **state) {
  orm__arena_free(&arena);
  return orm_test_alloc_teardown(state);
}

static void test_arena_chunks(void **state) {
  /* Nothing is allocated until the first request. */
  assert_int_equal(orm_test_alloc_calls(), 0);
  char *a = orm__arena_alloc(&arena, 10, 1);
  assert_non_null(a);
  assert_int_equal(orm_test_alloc_live(), 1);
  /* A large value gets its own chunk; small ones keep bumping the current
   * chunk right after the previous one. */
  void *big = orm__arena_alloc(&arena, 10 * 1024 * 1024, 16);
  assert_non_null(big);
  memset(big, 1, 10 * 1024 * 1024);
  assert_int_equal(orm_test_alloc_live(), 2);
  char *b = orm__arena_alloc(&arena, 10, 1);
  assert_ptr_equal(b, a + 10);
  assert_int_equal(orm_test_alloc_live(), 2);

  /* Reset keeps one chunk: refilling it calls the allocator no more. */
  orm__arena_reset(&arena);
  assert_int_equal(orm_test_alloc_live(), 1);
  long calls = orm_test_alloc_calls();
  for (int i = 0; i < 40; i++)
    assert_non_null(orm__arena_alloc(&arena, 8, 8));
  assert_int_equal(orm_test_alloc_calls(), calls);
  /* Chunks grow: 2000 small allocations take far fewer than 2000 chunks. */
  for (int i = 0; i < 2000; i++)
    assert_non_null(orm__arena_alloc(&arena, 24, 8));
  assert_true(orm_test_alloc_live() < 10);
  orm__arena_free(&arena);
  assert_int_equal(orm_test_alloc_live(), 0);
  /* Usable again after free, and reset of an empty arena is harmless. */
  orm__arena_reset(&arena);
  assert_non_null(orm__arena_strndup(&arena, "again", 5));
  orm__arena_reset(&arena);
  orm__arena_reset(&arena);
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
    unsigned char *p = orm__arena_alloc(&arena, size, 8);
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
    int rc = decode(values[i].type, values[i].wire, values[i].len, field);
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
      numeric_wire(numeric, 7, 0x0000, 9, 11,
                   (const uint16_t[]){12, 3456, 7890, 1234, 5678, 9012, 3456,
                                      7890, 1234, 5678, 9000});
  unsigned char ints[128];
  const char *e4[] = {"\0\0\0\1", NULL, "\xff\xff\xff\xfd"};
  const int32_t l4[] = {4, -1, 4};
  size_t ints_len = array_wire(ints, 1, 1, 23, 1, 3, e4, l4);
  unsigned char texts[128];
  const char *et[] = {"alpha", NULL, "", "\xe6\x97\xa5"};
  const int32_t lt[] = {5, -1, 0, 3};
  size_t texts_len = array_wire(texts, 1, 1, 25, 1, 4, et, lt);
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
    orm__arena_free(&arena);
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
#define T(fn) cmocka_unit_test_setup_teardown(fn, arena_setup, arena_teardown)
#define C(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, counting_setup, counting_teardown)
      T(test_int8),
      T(test_int4_int2_and_widening),
      T(test_floats),
      T(test_bool),
      T(test_text),
      T(test_jsonb),
      T(test_bytea),
      T(test_uuid),
      T(test_timestamps),
      T(test_dates),
      T(test_numeric_canonical),
      T(test_numeric_large_weight),
      T(test_numeric_decode_lenient_forms),
      T(test_numeric_malformed),
      T(test_numeric_encode_forms),
      T(test_numeric_random_round_trip),
      T(test_int_array),
      T(test_text_array),
      T(test_array_malformed),
      T(test_type_table),
      T(test_accepts),
      T(test_invalid_arguments),
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
