/* SPDX-License-Identifier: MIT */
/* The binary codecs against a real server. Each value is encoded with
 * orm__codec_encode() and sent as a binary parameter; the server echoes it
 * in binary, renders it as text, and builds the same value from a literal of
 * its own. The echo and the server's value must decode to what we sent, the
 * rendering must be the expected text, and the server must find its value
 * equal to ours: so the server saw what we meant and we read what it sent.
 * Plain blocking libpq is fine here: the codecs do no I/O. */
#include "fixture.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/arena.h"
#include "model/codec.h"

/* The admin connection only: no schema, no pool. */
static orm_fx_t fx;
static orm__arena_t arena;

/* Storage for any decoded field. */
typedef union {
  int16_t i2;
  int32_t i4;
  int64_t i8;
  float f4;
  double f8;
  bool b;
  char *s;
  orm_bytes_t bytes;
  uint8_t uuid[16];
  orm_int_array_t ints;
  orm_text_array_t texts;
  max_align_t align;
} field_t;

static int group_setup(void **state) {
  orm_fx_open_admin(&fx, NULL, 0);
  /* Fix every setting that shapes the text renderings compared below. */
  orm_fx_sql(&fx, "SET client_encoding = 'UTF8'");
  orm_fx_sql(&fx, "SET TimeZone = 'UTC'");
  orm_fx_sql(&fx, "SET DateStyle = 'ISO, YMD'");
  orm_fx_sql(&fx, "SET extra_float_digits = 1");
  orm_fx_sql(&fx, "SET bytea_output = 'hex'");
  PGresult *res = PQexec(fx.admin, "SHOW server_encoding");
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  assert_string_equal(PQgetvalue(res, 0, 0), "UTF8");
  PQclear(res);
  return 0;
}

static int group_teardown(void **state) {
  orm_fx_close_admin(&fx);
  return 0;
}

static int test_setup(void **state) {
  orm__arena_init(&arena);
  return 0;
}

/* A failed test may leave its transaction open; the next one starts clean
 * (and what a test created inside its transaction is gone). */
static int test_teardown(void **state) {
  if (PQtransactionStatus(fx.admin) != PQTRANS_IDLE)
    orm_fx_sql(&fx, "ROLLBACK");
  orm__arena_free(&arena);
  return 0;
}

/* Runs `sql` with one binary parameter encoded from `value` (NULL: SQL
 * NULL), asking for binary results. */
static PGresult *exec_value(const char *sql, orm_type_t type,
                            const void *value) {
  orm__buf_t buf;
  orm__buf_init(&buf);
  if (value != NULL)
    assert_int_equal(orm__codec_encode(type, value, &buf), 0);
  Oid types[1] = {orm__codec_param_oid(type)};
  const char *values[1] = {value != NULL ? (buf.data != NULL ? buf.data : "")
                                         : NULL};
  int lengths[1] = {(int)buf.len};
  int formats[1] = {1};
  PGresult *res =
      PQexecParams(fx.admin, sql, 1, types, values, lengths, formats, 1);
  orm__buf_free(&buf);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(fx.admin));
  return res;
}

static PGresult *query(const char *sql) {
  PGresult *res = PQexecParams(fx.admin, sql, 0, NULL, NULL, NULL, NULL, 1);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(fx.admin));
  return res;
}

static int decode_cell(const PGresult *res, int row, int col, orm_type_t type,
                       field_t *out) {
  assert_false(PQgetisnull(res, row, col));
  assert_int_equal(PQfformat(res, col), 1);
  if (!orm__codec_accepts(type, PQftype(res, col)))
    fail_msg("a %s field does not accept column %d of type OID %u",
             orm__codec_type_name(type), col, PQftype(res, col));
  memset(out, 0xEE, sizeof *out);
  return orm__codec_decode(type, PQgetvalue(res, row, col),
                           PQgetlength(res, row, col), out, &arena);
}

static char *cell_text(const PGresult *res, int row, int col) {
  field_t f;
  assert_int_equal(decode_cell(res, row, col, ORM_T_TEXT, &f), 0);
  return f.s;
}

static bool cell_bool(const PGresult *res, int row, int col) {
  field_t f;
  assert_int_equal(decode_cell(res, row, col, ORM_T_BOOL, &f), 0);
  return f.b;
}

static bool same_float(double x, double y) {
  if (isnan(x) || isnan(y))
    return isnan(x) && isnan(y);
  return x == y && signbit(x) == signbit(y);
}

static bool same_value(orm_type_t type, const void *a, const void *b) {
  switch (type) {
  case ORM_T_INT2:
    return *(const int16_t *)a == *(const int16_t *)b;
  case ORM_T_INT4:
  case ORM_T_DATE:
    return *(const int32_t *)a == *(const int32_t *)b;
  case ORM_T_INT8:
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ:
    return *(const int64_t *)a == *(const int64_t *)b;
  case ORM_T_FLOAT4:
    return same_float(*(const float *)a, *(const float *)b);
  case ORM_T_FLOAT8:
    return same_float(*(const double *)a, *(const double *)b);
  case ORM_T_BOOL:
    return *(const bool *)a == *(const bool *)b;
  case ORM_T_TEXT:
  case ORM_T_ENUM:
  case ORM_T_JSON:
  case ORM_T_JSONB:
  case ORM_T_NUMERIC:
    return strcmp(*(char *const *)a, *(char *const *)b) == 0;
  case ORM_T_BYTEA: {
    const orm_bytes_t *x = a, *y = b;
    return x->len == y->len &&
           (x->len == 0 || memcmp(x->data, y->data, x->len) == 0);
  }
  case ORM_T_UUID:
    return memcmp(a, b, 16) == 0;
  case ORM_T_INT_ARRAY: {
    const orm_int_array_t *x = a, *y = b;
    if (x->len != y->len)
      return false;
    for (size_t i = 0; i < x->len; i++) {
      bool xn = orm_int_array_is_null(x, i), yn = orm_int_array_is_null(y, i);
      if (xn != yn || (!xn && x->items[i] != y->items[i]))
        return false;
    }
    return true;
  }
  case ORM_T_TEXT_ARRAY: {
    const orm_text_array_t *x = a, *y = b;
    if (x->len != y->len)
      return false;
    for (size_t i = 0; i < x->len; i++) {
      const char *xs = x->items[i], *ys = y->items[i];
      if ((xs == NULL) != (ys == NULL) || (xs != NULL && strcmp(xs, ys) != 0))
        return false;
    }
    return true;
  }
  default:
    return false;
  }
}

/* Sends `input` as $1::`sqltype` and checks:
 *   - the echo decodes to `expected`;
 *   - the server renders it as `rendered` (unless NULL);
 *   - `server_expr` (unless NULL), built by the server from a literal,
 *     decodes to `expected` and the server finds it equal to $1. */
static void check_value(const char *sqltype, orm_type_t type, const void *input,
                        const void *expected, const char *rendered,
                        const char *server_expr) {
  /* json has no equality operator; compare it as text. */
  const char *cmp = type == ORM_T_JSON ? "::text" : "";
  char sql[1024];
  int n;
  if (server_expr != NULL)
    n = snprintf(sql, sizeof sql,
                 "SELECT $1::%s, ($1::%s)::text, (%s)::%s, "
                 "(($1::%s)%s IS NOT DISTINCT FROM ((%s)::%s)%s)",
                 sqltype, sqltype, server_expr, sqltype, sqltype, cmp,
                 server_expr, sqltype, cmp);
  else
    n = snprintf(sql, sizeof sql, "SELECT $1::%s, ($1::%s)::text", sqltype,
                 sqltype);
  assert_true(n > 0 && (size_t)n < sizeof sql);

  PGresult *res = exec_value(sql, type, input);
  field_t got;
  assert_int_equal(decode_cell(res, 0, 0, type, &got), 0);
  if (!same_value(type, &got, expected))
    fail_msg("%s: the echo of %s decoded to something else", sqltype,
             rendered != NULL ? rendered : server_expr);
  char *text = cell_text(res, 0, 1);
  if (rendered != NULL && strcmp(text, rendered) != 0)
    fail_msg("%s: the server saw %.200s, expected %.200s", sqltype, text,
             rendered);
  if (server_expr != NULL) {
    assert_int_equal(decode_cell(res, 0, 2, type, &got), 0);
    if (!same_value(type, &got, expected))
      fail_msg("%s: the server's %.200s decoded to something else", sqltype,
               server_expr);
    if (!cell_bool(res, 0, 3))
      fail_msg("%s: the server found $1 (%.200s) unequal to %.200s", sqltype,
               text, server_expr);
  }
  PQclear(res);
}

#define CHECK(sqltype, type, value, rendered, expr)                            \
  check_value(sqltype, type, value, value, rendered, expr)

/* ---- scalars ----------------------------------------------------------- */

static void test_integers(void **state) {
  static const int64_t i8s[] = {0, 1, -1, INT64_MAX, INT64_MIN, 4294967296};
  static const char *i8_text[] = {
      "0",         "1", "-1", "9223372036854775807", "-9223372036854775808",
      "4294967296"};
  for (size_t i = 0; i < 6; i++) {
    char expr[64];
    snprintf(expr, sizeof expr, "'%s'", i8_text[i]);
    CHECK("int8", ORM_T_INT8, &i8s[i], i8_text[i], expr);
  }
  int32_t i4 = INT32_MIN;
  CHECK("int4", ORM_T_INT4, &i4, "-2147483648", "'-2147483648'");
  i4 = INT32_MAX;
  CHECK("int4", ORM_T_INT4, &i4, "2147483647", "'2147483647'");
  int16_t i2 = INT16_MIN;
  CHECK("int2", ORM_T_INT2, &i2, "-32768", "'-32768'");
  i2 = 12345;
  CHECK("int2", ORM_T_INT2, &i2, "12345", "'12345'");

  /* Widening: int2 and int4 columns into an int64_t field. */
  PGresult *res = query("SELECT (-32768)::int2, (-2147483648)::int4, "
                        "count(*) FROM generate_series(1, 3)");
  field_t f;
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_INT8, &f), 0);
  assert_true(f.i8 == INT16_MIN);
  assert_int_equal(decode_cell(res, 0, 1, ORM_T_INT8, &f), 0);
  assert_true(f.i8 == INT32_MIN);
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_INT4, &f), 0);
  assert_int_equal(f.i4, INT16_MIN);
  assert_int_equal(decode_cell(res, 0, 2, ORM_T_INT8, &f), 0);
  assert_true(f.i8 == 3);
  /* Narrowing is refused by the OID check. */
  assert_false(orm__codec_accepts(ORM_T_INT4, PQftype(res, 2)));
  assert_false(orm__codec_accepts(ORM_T_INT2, PQftype(res, 1)));
  PQclear(res);

  /* An int8 parameter where the server expects int4 is cast, not misread. */
  int64_t forty_two = 42;
  res = exec_value("SELECT x FROM (VALUES (41::int4), (42), (43)) v(x) "
                   "WHERE x = $1",
                   ORM_T_INT8, &forty_two);
  assert_int_equal(PQntuples(res), 1);
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_INT4, &f), 0);
  assert_int_equal(f.i4, 42);
  PQclear(res);
}

static void test_floats(void **state) {
  static const struct {
    double v;
    const char *text;
  } f8[] = {
      {1.5, "1.5"},
      {0.1, "0.1"},
      {-0.0, "-0"},
      {DBL_MAX, "1.7976931348623157e+308"},
      {DBL_MIN, "2.2250738585072014e-308"},
      {4.9406564584124654e-324, "5e-324"},
      {INFINITY, "Infinity"},
      {-INFINITY, "-Infinity"},
      {NAN, "NaN"},
  };
  for (size_t i = 0; i < sizeof f8 / sizeof f8[0]; i++) {
    char expr[64];
    snprintf(expr, sizeof expr, "'%s'", f8[i].text);
    CHECK("float8", ORM_T_FLOAT8, &f8[i].v, f8[i].text, expr);
  }
  static const struct {
    float v;
    const char *text;
  } f4[] = {
      {0.1f, "0.1"},
      {-2.5f, "-2.5"},
      {FLT_MAX, "3.4028235e+38"},
      {INFINITY, "Infinity"},
      {-INFINITY, "-Infinity"},
      {NAN, "NaN"},
  };
  for (size_t i = 0; i < sizeof f4 / sizeof f4[0]; i++) {
    char expr[64];
    snprintf(expr, sizeof expr, "'%s'", f4[i].text);
    CHECK("float4", ORM_T_FLOAT4, &f4[i].v, f4[i].text, expr);
  }
  /* float4 widens exactly into a double field. */
  PGresult *res = query("SELECT 0.1::float4");
  field_t f;
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_FLOAT8, &f), 0);
  assert_true(f.f8 == (double)0.1f);
  PQclear(res);
}

static void test_bool(void **state) {
  bool b = true;
  CHECK("bool", ORM_T_BOOL, &b, "true", "'t'");
  b = false;
  CHECK("bool", ORM_T_BOOL, &b, "false", "'no'");
}

static void test_text(void **state) {
  const char *s = "";
  CHECK("text", ORM_T_TEXT, &s, "", "''");
  s = "h\xc3\xa9llo w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
      "\xf0\x9f\x98\x80"; /* héllo wörld 日本語 😀 */
  CHECK("text", ORM_T_TEXT, &s, s,
        "U&'h\\00E9llo w\\00F6rld \\65E5\\672C\\8A9E \\+01F600'");
  CHECK("varchar", ORM_T_TEXT, &s, s,
        "U&'h\\00E9llo w\\00F6rld \\65E5\\672C\\8A9E \\+01F600'");
  s = "quote ' backslash \\ tab \t newline \n";
  CHECK("text", ORM_T_TEXT, &s, s,
        "E'quote '' backslash \\\\ tab \\t newline \\n'");
  s = "users";
  CHECK("name", ORM_T_TEXT, &s, s, "'users'");
  /* bpchar pads to its length and its comparison ignores the padding. */
  const char *padded = "ab   ";
  s = "ab";
  check_value("char(5)", ORM_T_TEXT, &s, &padded, "ab", "'ab'");

  /* 1 MiB of two-byte characters. */
  size_t n = 1024 * 1024;
  char *big = malloc(n + 1);
  assert_non_null(big);
  for (size_t i = 0; i < n; i += 2) {
    big[i] = '\xc3';
    big[i + 1] = '\xa9';
  }
  big[n] = '\0';
  const char *bigp = big;
  CHECK("text", ORM_T_TEXT, &bigp, big, "repeat(U&'\\00E9', 524288)");
  PGresult *res = exec_value("SELECT length($1::text), octet_length($1::text)",
                             ORM_T_TEXT, &bigp);
  field_t f;
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_INT4, &f), 0);
  assert_int_equal(f.i4, 524288);
  assert_int_equal(decode_cell(res, 0, 1, ORM_T_INT4, &f), 0);
  assert_int_equal(f.i4, 1048576);
  PQclear(res);
  free(big);
}

static void test_json(void **state) {
  const char *json = "{ \"b\" : [1, 2.50, \"\xc3\xa9\", null],  \"a\":true }";
  CHECK("json", ORM_T_JSON, &json, json,
        "'{ \"b\" : [1, 2.50, \"\xc3\xa9\", null],  \"a\":true }'");
  /* jsonb normalises: key order, spacing; numbers keep their scale. */
  const char *normal = "{\"a\": true, \"b\": [1, 2.50, \"\xc3\xa9\", null]}";
  check_value("jsonb", ORM_T_JSONB, &json, &normal, normal,
              "'{\"b\": [1, 2.50, \"\\u00e9\", null], \"a\": true}'");
  const char *scalar = "\"\xf0\x9f\x98\x80\"";
  CHECK("jsonb", ORM_T_JSONB, &scalar, scalar, "to_jsonb(U&'\\+01F600'::text)");
}

static void test_bytea(void **state) {
  uint8_t raw[] = {0x00, 0x01, 0x00, 0xff, 0x00};
  orm_bytes_t b = {raw, sizeof raw};
  CHECK("bytea", ORM_T_BYTEA, &b, "\\x000100ff00", "'\\x000100ff00'");
  orm_bytes_t empty = {NULL, 0};
  CHECK("bytea", ORM_T_BYTEA, &empty, "\\x", "''");

  size_t n = 1024 * 1024;
  uint8_t *big = malloc(n);
  assert_non_null(big);
  for (size_t i = 0; i < n; i++)
    big[i] = (uint8_t)(i * 7 % 256);
  orm_bytes_t bigb = {big, n};
  CHECK("bytea", ORM_T_BYTEA, &bigb, NULL,
        "(SELECT string_agg(set_byte('\\x00'::bytea, 0, (i * 7) % 256), ''"
        " ORDER BY i) FROM generate_series(0, 1048575) i)");
  free(big);
}

static void format_uuid(const uint8_t *u, char *out) {
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *out++ = '-';
    *out++ = hex[u[i] >> 4];
    *out++ = hex[u[i] & 15];
  }
  *out = '\0';
}

static void test_uuid(void **state) {
  uint8_t u[16] = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                   0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};
  CHECK("uuid", ORM_T_UUID, u, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'");
  /* Server-made UUIDs decode to the bytes of their text form. */
  PGresult *res = query("SELECT u, u::text FROM (SELECT gen_random_uuid() AS u "
                        "FROM generate_series(1, 50)) s");
  for (int row = 0; row < PQntuples(res); row++) {
    field_t f;
    assert_int_equal(decode_cell(res, row, 0, ORM_T_UUID, &f), 0);
    char text[37];
    format_uuid(f.uuid, text);
    assert_string_equal(text, cell_text(res, row, 1));
  }
  PQclear(res);
}

/* ---- time -------------------------------------------------------------- */

static void test_timestamptz(void **state) {
  static const struct {
    int64_t us;
    const char *text;
  } cases[] = {
      {0, "1970-01-01 00:00:00+00"},
      {-INT64_C(2208988800000000), "1900-01-01 00:00:00+00"},
      {-1, "1969-12-31 23:59:59.999999+00"},
      {INT64_C(946684800000000), "2000-01-01 00:00:00+00"},
      {INT64_C(32503593600000000), "2999-12-31 00:00:00+00"},
      {-INT64_C(62135596800000000), "0001-01-01 00:00:00+00"},
      {-INT64_C(62135596800000001), "0001-12-31 23:59:59.999999+00 BC"},
      {INT64_MAX - 1, "294247-01-10 04:00:54.775806+00"},
      {INT64_MAX, "infinity"},
      {INT64_MIN, "-infinity"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char expr[96];
    snprintf(expr, sizeof expr, "'%s'", cases[i].text);
    CHECK("timestamptz", ORM_T_TIMESTAMPTZ, &cases[i].us, cases[i].text, expr);
  }
  /* The server's own count of microseconds since 1970 agrees. */
  int64_t v = -INT64_C(2208988800000000) + 123456;
  PGresult *res =
      exec_value("SELECT (extract(epoch FROM $1::timestamptz) * 1000000)::int8",
                 ORM_T_TIMESTAMPTZ, &v);
  field_t f;
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_INT8, &f), 0);
  assert_true(f.i8 == v);
  PQclear(res);

  /* PostgreSQL's range ends at 294276 AD, beyond int64 microseconds since
   * 1970: decoding says so instead of wrapping. */
  res = query("SELECT '294276-12-31 23:59:59.999999+00'::timestamptz, "
              "'4714-11-24 00:00:00+00 BC'::timestamptz");
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_TIMESTAMPTZ, &f), ORM_ERANGE);
  assert_int_equal(decode_cell(res, 0, 1, ORM_T_TIMESTAMPTZ, &f), 0);
  assert_true(f.i8 == -INT64_C(210866803200000000));
  PQclear(res);
}

static void test_timestamp(void **state) {
  static const struct {
    int64_t us;
    const char *text;
  } cases[] = {
      {INT64_C(946684800000000), "2000-01-01 00:00:00"},
      {-1, "1969-12-31 23:59:59.999999"},
      {INT64_C(1700000000123456), "2023-11-14 22:13:20.123456"},
      {INT64_MAX, "infinity"},
      {INT64_MIN, "-infinity"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char expr[96];
    snprintf(expr, sizeof expr, "'%s'", cases[i].text);
    CHECK("timestamp", ORM_T_TIMESTAMP, &cases[i].us, cases[i].text, expr);
  }
  /* timestamp and timestamptz are not interchangeable. */
  PGresult *res = query("SELECT now()::timestamp, now()");
  assert_false(orm__codec_accepts(ORM_T_TIMESTAMPTZ, PQftype(res, 0)));
  assert_false(orm__codec_accepts(ORM_T_TIMESTAMP, PQftype(res, 1)));
  PQclear(res);
}

static void test_date(void **state) {
  static const struct {
    int32_t days;
    const char *text;
  } cases[] = {
      {0, "1970-01-01"},           {-1, "1969-12-31"},
      {10957, "2000-01-01"},       {-719162, "0001-01-01"},
      {-2440588, "4714-11-24 BC"}, {2145042905, "5874897-12-31"},
      {376199, "2999-12-31"},      {INT32_MAX, "infinity"},
      {INT32_MIN, "-infinity"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char expr[96];
    snprintf(expr, sizeof expr, "'%s'", cases[i].text);
    CHECK("date", ORM_T_DATE, &cases[i].days, cases[i].text, expr);
  }
  int32_t d = -719162;
  PGresult *res =
      exec_value("SELECT $1::date - '1970-01-01'::date", ORM_T_DATE, &d);
  field_t f;
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_INT4, &f), 0);
  assert_int_equal(f.i4, d);
  PQclear(res);
}

/* ---- numeric ----------------------------------------------------------- */

static void test_numeric(void **state) {
  static const struct {
    const char *in;
    const char *out;
  } cases[] = {
      {"123456789012345678901234567890.123456789",
       "123456789012345678901234567890.123456789"},
      {"-0.000001", "-0.000001"},
      {"0", "0"},
      {"0.00", "0.00"},
      {"0.0001", "0.0001"},
      {"-12345.678900", "-12345.678900"},
      {"99999999999999999999999999999999999999.99999999999999999999",
       "99999999999999999999999999999999999999.99999999999999999999"},
      {"1e100", "1"
                "0000000000000000000000000000000000000000000000000000000000"
                "000000000000000000000000000000000000000000"},
      {"1.5e-3", "0.0015"},
      {"-7e-20", "-0.00000000000000000007"},
      {"NaN", "NaN"},
      {"Infinity", "Infinity"},
      {"-Infinity", "-Infinity"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char expr[256];
    snprintf(expr, sizeof expr, "'%s'", cases[i].in);
    check_value("numeric", ORM_T_NUMERIC, &cases[i].in, &cases[i].out,
                cases[i].out, expr);
  }
  /* A typmod rounds what the server received. */
  const char *pi = "3.14159";
  const char *rounded = "3.14";
  check_value("numeric(12,2)", ORM_T_NUMERIC, &pi, &rounded, "3.14", "'3.14'");
}

/* Server-made numerics of every shape: decoded, they read as the server's
 * text; encoded back, the server finds them equal. */
static void test_numeric_server_sweep(void **state) {
  PGresult *res = query(
      "WITH d AS (SELECT g, translate(md5(g::text) || md5((-g)::text), "
      "'abcdef', '123456') AS s FROM generate_series(1, 600) g), "
      "v AS (SELECT g, (CASE WHEN g % 3 = 0 THEN '-' ELSE '' END || "
      "substr(s, 1, g % 37 + 1) || '.' || substr(s, 38, g % 23) || 'e' || "
      "(g % 81 - 40))::numeric AS n FROM d) "
      "SELECT x, x::text FROM (SELECT n AS x FROM v UNION ALL "
      "SELECT n / 7 FROM v UNION ALL SELECT round(n, g % 5) FROM v UNION ALL "
      "SELECT n * n FROM v WHERE g % 10 = 0) s");
  int rows = PQntuples(res);
  assert_true(rows > 1500);
  for (int row = 0; row < rows; row++) {
    field_t f;
    assert_int_equal(decode_cell(res, row, 0, ORM_T_NUMERIC, &f), 0);
    const char *text = cell_text(res, row, 1);
    if (strcmp(f.s, text) != 0)
      fail_msg("row %d: decoded %s, server text %s", row, f.s, text);

    const char *decoded = f.s;
    PGresult *back =
        exec_value("SELECT $1::numeric::text", ORM_T_NUMERIC, &decoded);
    const char *echoed = cell_text(back, 0, 0);
    if (strcmp(echoed, text) != 0)
      fail_msg("row %d: sent %s, the server saw %s", row, decoded, echoed);
    PQclear(back);
    orm__arena_reset(&arena);
  }
  PQclear(res);
}

/* ---- arrays ------------------------------------------------------------ */

static void test_int_arrays(void **state) {
  int64_t items[] = {1, 0, -3, INT64_MAX, INT64_MIN};
  bool nulls[] = {false, true, false, false, false};
  orm_int_array_t a = {items, nulls, 5};
  CHECK("int8[]", ORM_T_INT_ARRAY, &a,
        "{1,NULL,-3,9223372036854775807,-9223372036854775808}",
        "ARRAY[1, NULL, -3, 9223372036854775807, -9223372036854775808]");
  orm_int_array_t empty = {NULL, NULL, 0};
  CHECK("int8[]", ORM_T_INT_ARRAY, &empty, "{}", "'{}'");
  int64_t plain[] = {7};
  orm_int_array_t one = {plain, NULL, 1};
  CHECK("int8[]", ORM_T_INT_ARRAY, &one, "{7}", "'{7}'");

  /* int4[] and int2[] columns, an empty one, a non-1 lower bound. */
  PGresult *res = query("SELECT ARRAY[1, NULL, 3]::int4[], "
                        "ARRAY[-32768, 32767]::int2[], '{}'::int4[], "
                        "'[0:2]={7,8,9}'::int4[], '{{1,2},{3,4}}'::int4[], "
                        "ARRAY['x']");
  field_t f;
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_INT_ARRAY, &f), 0);
  assert_int_equal(f.ints.len, 3);
  assert_true(f.ints.items[0] == 1 && f.ints.items[2] == 3);
  assert_true(orm_int_array_is_null(&f.ints, 1));
  assert_false(orm_int_array_is_null(&f.ints, 0));
  assert_int_equal(decode_cell(res, 0, 1, ORM_T_INT_ARRAY, &f), 0);
  assert_true(f.ints.len == 2 && f.ints.items[0] == INT16_MIN &&
              f.ints.items[1] == INT16_MAX && f.ints.nulls == NULL);
  assert_int_equal(decode_cell(res, 0, 2, ORM_T_INT_ARRAY, &f), 0);
  assert_int_equal(f.ints.len, 0);
  assert_int_equal(decode_cell(res, 0, 3, ORM_T_INT_ARRAY, &f), 0);
  assert_true(f.ints.len == 3 && f.ints.items[0] == 7 && f.ints.items[2] == 9);
  assert_int_equal(decode_cell(res, 0, 4, ORM_T_INT_ARRAY, &f), ORM_ETYPE);
  /* A text[] column: the OID check refuses it, and so does decode. */
  assert_false(orm__codec_accepts(ORM_T_INT_ARRAY, PQftype(res, 5)));
  assert_int_equal(orm__codec_decode(ORM_T_INT_ARRAY, PQgetvalue(res, 0, 5),
                                     PQgetlength(res, 0, 5), &f, &arena),
                   ORM_ETYPE);
  PQclear(res);

  /* The model's = ANY($1) over an int4 column with an int8[] parameter. */
  int64_t keys[] = {2, 4, 99};
  orm_int_array_t key_array = {keys, NULL, 3};
  res = exec_value("SELECT x FROM generate_series(1, 5) x WHERE x = ANY($1) "
                   "ORDER BY x",
                   ORM_T_INT_ARRAY, &key_array);
  assert_int_equal(PQntuples(res), 2);
  assert_int_equal(decode_cell(res, 1, 0, ORM_T_INT4, &f), 0);
  assert_int_equal(f.i4, 4);
  PQclear(res);
}

static void test_text_arrays(void **state) {
  static char e0[] = "a", e2[] = "", e3[] = "\xe6\x97\xa5\xe6\x9c\xac",
              e4[] = "NULL", e5[] = "with,comma \"q\" {}";
  char *items[] = {e0, NULL, e2, e3, e4, e5};
  orm_text_array_t a = {items, 6};
  CHECK("text[]", ORM_T_TEXT_ARRAY, &a,
        "{a,NULL,\"\",\xe6\x97\xa5\xe6\x9c\xac,\"NULL\","
        "\"with,comma \\\"q\\\" {}\"}",
        "ARRAY['a', NULL, '', U&'\\65E5\\672C', 'NULL', "
        "'with,comma \"q\" {}']");
  orm_text_array_t empty = {NULL, 0};
  CHECK("text[]", ORM_T_TEXT_ARRAY, &empty, "{}", "'{}'");
  char *only_null[] = {NULL};
  orm_text_array_t nulls = {only_null, 1};
  CHECK("text[]", ORM_T_TEXT_ARRAY, &nulls, "{NULL}", "ARRAY[NULL]::text[]");

  PGresult *res = query("SELECT ARRAY['x', NULL]::varchar[], "
                        "ARRAY['y']::name[], ARRAY[1]::int4[]");
  field_t f;
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_TEXT_ARRAY, &f), 0);
  assert_true(f.texts.len == 2 && strcmp(f.texts.items[0], "x") == 0 &&
              f.texts.items[1] == NULL);
  assert_int_equal(decode_cell(res, 0, 1, ORM_T_TEXT_ARRAY, &f), 0);
  assert_string_equal(f.texts.items[0], "y");
  assert_false(orm__codec_accepts(ORM_T_TEXT_ARRAY, PQftype(res, 2)));
  assert_int_equal(orm__codec_decode(ORM_T_TEXT_ARRAY, PQgetvalue(res, 0, 2),
                                     PQgetlength(res, 0, 2), &f, &arena),
                   ORM_ETYPE);
  PQclear(res);
}

/* ---- enum and a model-shaped table ------------------------------------- */

/* Everything here lives in one transaction that is rolled back: the type
 * and the table never outlive the test. */
static void test_enum_and_table(void **state) {
  orm_fx_sql(&fx, "BEGIN");
  orm_fx_sql(&fx, "CREATE TYPE uvorm_codec_mood AS ENUM ('sad', 'ok', "
                  "U&'happy \\+01F600')");
  const char *happy = "happy \xf0\x9f\x98\x80";
  CHECK("uvorm_codec_mood", ORM_T_ENUM, &happy, happy, "U&'happy \\+01F600'");
  const char *ok = "ok";
  CHECK("uvorm_codec_mood", ORM_T_ENUM, &ok, "ok", "'ok'");
  PGresult *res = query("SELECT 'sad'::uvorm_codec_mood, "
                        "'uvorm_codec_mood'::regtype::oid::int8");
  Oid oid = PQftype(res, 0);
  field_t f;
  assert_int_equal(decode_cell(res, 0, 1, ORM_T_INT8, &f), 0);
  assert_true(f.i8 == (int64_t)oid);
  assert_true(oid >= ORM__OID_FIRST_USER);
  assert_true(orm__codec_accepts(ORM_T_ENUM, oid));
  assert_false(orm__codec_accepts(ORM_T_TEXT, oid));
  assert_int_equal(decode_cell(res, 0, 0, ORM_T_ENUM, &f), 0);
  assert_string_equal(f.s, "sad");
  PQclear(res);
  /* A label that is not in the enum is the server's error, not garbage. */
  const char *bad = "angry";
  orm__buf_t buf;
  orm__buf_init(&buf);
  assert_int_equal(orm__codec_encode(ORM_T_ENUM, &bad, &buf), 0);
  orm_fx_sql(&fx, "SAVEPOINT s");
  Oid t = orm__codec_param_oid(ORM_T_ENUM);
  int len = (int)buf.len, fmt = 1;
  const char *v = buf.data;
  res = PQexecParams(fx.admin, "SELECT $1::uvorm_codec_mood", 1, &t, &v, &len,
                     &fmt, 1);
  assert_int_equal(PQresultStatus(res), PGRES_FATAL_ERROR);
  assert_string_equal(PQresultErrorField(res, PG_DIAG_SQLSTATE), "22P02");
  PQclear(res);
  orm__buf_free(&buf);
  orm_fx_sql(&fx, "ROLLBACK TO SAVEPOINT s");

  /* Parameters typed by orm__codec_param_oid(), as the model sends them:
   * text-typed values take the column's own type. */
  orm_fx_sql(&fx,
             "CREATE TABLE uvorm_codec_row (id int4 PRIMARY KEY, code char(5), "
             "label varchar(20), tag name, mood uvorm_codec_mood, "
             "amount numeric(12,2), at timestamptz, day date, tags text[], "
             "nums int4[], doc jsonb, raw bytea, uid uuid, big int8)");
  int64_t id = 1;
  const char *code = "ab", *label = "caf\xc3\xa9", *tag = "t1",
             *amount = "1234.567", *doc = "{\"k\": [1, 2]}";
  int64_t at = INT64_C(1700000000123456);
  int32_t day = 19675;
  static char t0[] = "x";
  char *tag_items[] = {t0, NULL};
  orm_text_array_t tags = {tag_items, 2};
  int64_t num_items[] = {5, 0};
  bool num_nulls[] = {false, true};
  orm_int_array_t nums = {num_items, num_nulls, 2};
  uint8_t raw_bytes[] = {0, 1, 0};
  orm_bytes_t raw = {raw_bytes, 3};
  uint8_t uid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  int64_t big = INT64_MIN;

  struct {
    orm_type_t type;
    const void *value;
  } params[] = {
      {ORM_T_INT8, &id},        {ORM_T_TEXT, &code},  {ORM_T_TEXT, &label},
      {ORM_T_TEXT, &tag},       {ORM_T_ENUM, &happy}, {ORM_T_NUMERIC, &amount},
      {ORM_T_TIMESTAMPTZ, &at}, {ORM_T_DATE, &day},   {ORM_T_TEXT_ARRAY, &tags},
      {ORM_T_INT_ARRAY, &nums}, {ORM_T_JSONB, &doc},  {ORM_T_BYTEA, &raw},
      {ORM_T_UUID, uid},        {ORM_T_INT8, &big},
  };
  enum { NP = sizeof params / sizeof params[0] };
  orm__buf_t pbuf;
  orm__buf_init(&pbuf);
  size_t offsets[NP];
  Oid types[NP];
  int lengths[NP], formats[NP];
  const char *values[NP];
  for (int i = 0; i < NP; i++) {
    offsets[i] = pbuf.len;
    assert_int_equal(orm__codec_encode(params[i].type, params[i].value, &pbuf),
                     0);
    lengths[i] = (int)(pbuf.len - offsets[i]);
    types[i] = orm__codec_param_oid(params[i].type);
    formats[i] = 1;
  }
  /* The buffer may have moved while growing: pointers only now. */
  for (int i = 0; i < NP; i++)
    values[i] = pbuf.data + offsets[i];
  res = PQexecParams(fx.admin,
                     "INSERT INTO uvorm_codec_row VALUES ($1, $2, $3, $4, $5, "
                     "$6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING *",
                     NP, types, values, lengths, formats, 1);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("insert: %s", PQerrorMessage(fx.admin));
  orm__buf_free(&pbuf);

  static const orm_type_t column_types[NP] = {
      ORM_T_INT8,       ORM_T_TEXT,      ORM_T_TEXT,        ORM_T_TEXT,
      ORM_T_ENUM,       ORM_T_NUMERIC,   ORM_T_TIMESTAMPTZ, ORM_T_DATE,
      ORM_T_TEXT_ARRAY, ORM_T_INT_ARRAY, ORM_T_JSONB,       ORM_T_BYTEA,
      ORM_T_UUID,       ORM_T_INT8};
  const char *padded = "ab   ", *rounded = "1234.57";
  for (int i = 0; i < NP; i++) {
    assert_int_equal(decode_cell(res, 0, i, column_types[i], &f), 0);
    const void *want = params[i].value;
    if (i == 1)
      want = &padded;
    else if (i == 5)
      want = &rounded;
    if (!same_value(column_types[i], &f, want))
      fail_msg("column %d (%s) came back different", i,
               orm__codec_type_name(column_types[i]));
  }
  PQclear(res);

  /* bpchar keeps its own comparison: 'ab' finds 'ab   ' (a text parameter
   * would compare as text and miss it). */
  res = exec_value("SELECT id FROM uvorm_codec_row WHERE code = $1", ORM_T_TEXT,
                   &code);
  assert_int_equal(PQntuples(res), 1);
  PQclear(res);
  res = exec_value("SELECT id FROM uvorm_codec_row WHERE mood = $1", ORM_T_ENUM,
                   &happy);
  assert_int_equal(PQntuples(res), 1);
  PQclear(res);

  orm_fx_sql(&fx, "ROLLBACK");
  res = query("SELECT to_regtype('uvorm_codec_mood') IS NULL, "
              "to_regclass('uvorm_codec_row') IS NULL");
  assert_true(cell_bool(res, 0, 0));
  assert_true(cell_bool(res, 0, 1));
  PQclear(res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)
      T(test_integers),   T(test_floats),      T(test_bool),
      T(test_text),       T(test_json),        T(test_bytea),
      T(test_uuid),       T(test_timestamptz), T(test_timestamp),
      T(test_date),       T(test_numeric),     T(test_numeric_server_sweep),
      T(test_int_arrays), T(test_text_arrays), T(test_enum_and_table),
#undef T
  };
  return orm_run_group_tests(tests, group_setup, group_teardown);
}
