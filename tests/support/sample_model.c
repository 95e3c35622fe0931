/* SPDX-License-Identifier: MIT */
#include "sample_model.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ORM_MODEL_DEFINE(sample, "samples", SAMPLE_FIELDS);

_Static_assert(sizeof(struct sample_orm_index_) == NFIELDS,
               "one expectation slot per field");

/* The columns as the DDL below names them (not taken from the descriptor:
 * the plain SQL side must not depend on what it checks). */
static const char *const columns[NFIELDS] = {
    "id",    "i2",   "i4",     "i8",   "f4",   "f8", "flag",
    "label", "mood", "doc",    "docb", "blob", "ts", "tstz",
    "day",   "uid",  "amount", "ints", "texts"};

static const char ddl[] =
    "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'très \"content\", oui');"
    "CREATE TABLE samples ("
    "  id bigserial PRIMARY KEY,"
    "  i2 smallint, i4 integer, i8 bigint,"
    "  f4 real, f8 double precision, flag boolean,"
    "  label text, mood mood, doc json, docb jsonb, blob bytea,"
    "  ts timestamp, tstz timestamptz, day date, uid uuid, amount numeric,"
    "  ints bigint[], texts text[])";

/* The fixture the group opened. */
static orm_fx_t *fx;

/* ---- waiting for a future ----------------------------------------------- */

static wait_t waiting;

wait_t *sample_begin_wait(void) {
  memset(&waiting, 0, sizeof waiting);
  waiting.step.take = 1;
  return &waiting;
}

void sample_on_done(orm_future_t *f, void *data) {
  wait_t *w = data;
  /* Before orm_fx_on_step() takes the value. */
  if (orm_future_status(f) == 0)
    w->first_row = orm_future_row(f);
  orm_fx_on_step(f, &w->step);
}

void sample_wait_for(wait_t *w) { orm_fx_wait(fx, &w->step, 1); }

void sample_wait_ok(wait_t *w, const char *what) {
  sample_wait_for(w);
  if (w->step.status != 0)
    fail_msg("%s: %s: %s", what, orm_err_name(w->step.status), w->step.message);
}

/* ---- plain SQL on the admin connection ----------------------------------- */

/* Runs `text` with the key as $1; one row expected. */
static PGresult *row_query(const char *text, int64_t id) {
  char key[24];
  snprintf(key, sizeof key, "%" PRId64, id);
  const char *values[1] = {key};
  PGresult *r = PQexecParams(fx->admin, text, 1, NULL, values, NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", text, PQerrorMessage(fx->admin));
  if (PQntuples(r) != 1)
    fail_msg("%s: %d rows for id %" PRId64, text, PQntuples(r), id);
  return r;
}

int64_t sample_count_rows(void) {
  char *v = orm_fx_text(fx, "SELECT count(*) FROM samples");
  int64_t n = strtoll(v, NULL, 10);
  free(v);
  return n;
}

/* ---- calendar arithmetic, independent of the library --------------------- */

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar
 * (astronomical years: 1 BC is 0, 4714 BC is -4713). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int64_t usecs_at(int64_t y, int m, int d) {
  return days_from_civil(y, m, d) * USECS_PER_DAY;
}

/* ---- the rows ----------------------------------------------------------- */

row_case_t sample_cases[NCASES];

#define BIG_TEXT_BYTES (1024 * 1024)
static char big_text[BIG_TEXT_BYTES + 1];
static uint8_t every_byte[256];
static uint8_t zero_bytes[] = {0, 0, 'a', 0, 0xff, 0};
static int64_t max_ints[] = {1, 77, INT64_MIN, INT64_MAX};
static bool max_int_nulls[] = {false, true, false, false};
static int64_t one_null_int[] = {0};
static bool one_null_flag[] = {true};
static char e_empty[] = "", e_quote[] = "a\"b", e_comma[] = "c,d",
            e_brace[] = "{e}", e_backslash[] = "f\\g", e_null_word[] = "NULL",
            e_spaces[] = " sp ", e_utf8[] = "ünï", e_tab[] = "tab\tx";
static char *max_texts[] = {e_empty, NULL,        e_quote,     e_comma,
                            e_brace, e_backslash, e_null_word, e_spaces,
                            e_utf8,  e_tab};
static char *min_texts[] = {e_empty};
static char *nan_texts[] = {NULL, e_null_word};

/* 1 MiB of mixed ASCII and multi-byte UTF-8, cut on a character boundary;
 * returns its length in characters. */
static size_t fill_big_text(void) {
  static const char chunk[] = "abcdefghijklmnopqrstuvwxyz 0123456789 "
                              "ünïcødé ✓ 日本語 🎉 \"'\\\n";
  size_t len = strlen(chunk), at = 0, chars = 0;
  while (at + len <= BIG_TEXT_BYTES) {
    memcpy(big_text + at, chunk, len);
    at += len;
  }
  memset(big_text + at, 'x', BIG_TEXT_BYTES - at);
  big_text[BIG_TEXT_BYTES] = '\0';
  for (size_t i = 0; i < BIG_TEXT_BYTES; i++)
    chars += ((unsigned char)big_text[i] & 0xC0) != 0x80;
  return chars;
}

static void build_cases(void) {
  for (int i = 0; i < 256; i++)
    every_byte[i] = (uint8_t)i;
  row_case_t *c;

  /* Every column NULL; the C values are garbage that must not be sent. */
  c = &sample_cases[CASE_ALL_NULL];
  c->name = "all NULL";
  c->in = (sample_t){.i2 = 11,
                     .i4 = 12,
                     .i8 = 13,
                     .f4 = 1.5f,
                     .f8 = 2.5,
                     .flag = true,
                     .label = "not sent",
                     .mood = "happy",
                     .doc = "{\"not\": \"sent\"}",
                     .docb = "[1]",
                     .blob = {every_byte, 3},
                     .ts = 1,
                     .tstz = 2,
                     .day = 3,
                     .uid = {{1, 2, 3}},
                     .amount = "4.5",
                     .ints = {max_ints, NULL, 2},
                     .texts = {min_texts, 1},
                     .orm_nulls = ALL_NULLS};
  c->out = (sample_t){.orm_nulls = ALL_NULLS};

  /* Zero in every column is a value, not NULL. */
  c = &sample_cases[CASE_ZEROS];
  c->name = "zeros";
  c->in = (sample_t){.label = "",
                     .mood = "ok",
                     .doc = "null",
                     .docb = "null",
                     .blob = {NULL, 0},
                     .amount = "0"};
  c->out = c->in;
  c->text T(i2) = "0";
  c->text T(i4) = "0";
  c->text T(i8) = "0";
  c->text T(f4) = "0";
  c->text T(f8) = "0";
  c->text T(flag) = "f";
  c->text T(ts) = "1970-01-01 00:00:00";
  c->text T(tstz) = "1970-01-01 00:00:00+00";
  c->text T(day) = "1970-01-01";
  c->text T(uid) = "00000000-0000-0000-0000-000000000000";
  c->text T(ints) = "{}";
  c->text T(texts) = "{}";
  c->extra_sql = "SELECT (label = '')::text || '/' || (doc IS NOT NULL)::text"
                 " || '/' || jsonb_typeof(docb) || '/' || octet_length(blob)"
                 " || '/' || cardinality(ints) FROM samples WHERE id = $1";
  snprintf(c->extra_expect, sizeof c->extra_expect, "true/true/null/0/0");

  /* The top of every range. */
  c = &sample_cases[CASE_MAXIMA];
  c->name = "maxima";
  c->in = (sample_t){
      .i2 = INT16_MAX,
      .i4 = INT32_MAX,
      .i8 = INT64_MAX,
      .f4 = FLT_MAX,
      .f8 = DBL_MAX,
      .flag = true,
      .label = "ünïcødé ✓ 日本語 🎉",
      .mood = "très \"content\", oui",
      .doc = "{\"quote\": \"say \\\"hi\\\"\", \"back\\\\slash\": "
             "\"C:\\\\dir\\\\\", \"nested\": {\"arr\": [1, \"two\", "
             "{\"three\": \"\\\"3\\\"\"}]},   \"ws\" : true }",
      .docb = "{\"b\": [1, 2.50, \"x\\\"y\\\\z\"], \"a\": 3, "
              "\"a\": {\"é\": \"\\u00e9\\n\", \"zz\": []}, \"\": null}",
      .blob = {every_byte, 256},
      .ts = usecs_at(294000, 1, 1),
      .tstz = usecs_at(294000, 1, 1) + 1,
      .day = (int32_t)days_from_civil(5874897, 12, 31),
      .uid = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
               0xff, 0xff, 0xff, 0xff, 0xff}},
      .amount = "123456789012345678901234567890.123456789",
      .ints = {max_ints, max_int_nulls, 4},
      .texts = {max_texts, 10}};
  c->out = c->in;
  /* jsonb: duplicate keys collapse (last wins), keys sort by length then
   * bytes, escapes are resolved, numbers keep their scale. */
  c->out.docb = "{\"\": null, \"a\": {\"zz\": [], \"é\": \"é\\n\"}, "
                "\"b\": [1, 2.50, \"x\\\"y\\\\z\"]}";
  c->text T(i2) = "32767";
  c->text T(i4) = "2147483647";
  c->text T(i8) = "9223372036854775807";
  c->text T(f4) = "3.4028235e+38";
  c->text T(f8) = "1.7976931348623157e+308";
  c->text T(flag) = "t";
  c->text T(ts) = "294000-01-01 00:00:00";
  c->text T(tstz) = "294000-01-01 00:00:00.000001+00";
  c->text T(day) = "5874897-12-31";
  c->text T(uid) = "ffffffff-ffff-ffff-ffff-ffffffffffff";
  c->text T(ints) = "{1,NULL,-9223372036854775808,9223372036854775807}";
  c->text T(texts) = "{\"\",NULL,\"a\\\"b\",\"c,d\",\"{e}\",\"f\\\\g\","
                     "\"NULL\",\" sp \",ünï,\"tab\tx\"}";
  /* Characters, not bytes: the server holds UTF-8, not mojibake. */
  c->extra_sql =
      "SELECT length(label) || '/' || octet_length(label) || '/' ||"
      " octet_length(blob) || '/' || (mood = 'très \"content\", "
      "oui')::text || '/' || (docb->'a'->>'é') FROM samples WHERE id = $1";
  snprintf(c->extra_expect, sizeof c->extra_expect, "15/30/256/true/é\n");

  /* The bottom of every range, and dates long before 2000. */
  c = &sample_cases[CASE_MINIMA];
  c->name = "minima";
  c->in = (sample_t){.i2 = INT16_MIN,
                     .i4 = INT32_MIN,
                     .i8 = INT64_MIN,
                     .f4 = -FLT_MAX,
                     .f8 = -DBL_MAX,
                     .flag = false,
                     .label = "it's \"quoted\" \\ back\\slash\ttab\r\nnewline",
                     .mood = "sad",
                     .doc = "\"\"",
                     .docb = "[]",
                     .blob = {zero_bytes, sizeof zero_bytes},
                     .ts = usecs_at(-4713, 11, 24),
                     .tstz = usecs_at(1900, 1, 1),
                     .day = (int32_t)days_from_civil(1, 1, 1),
                     .uid = {{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
                              0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}},
                     .amount = "-0.000001",
                     .ints = {one_null_int, one_null_flag, 1},
                     .texts = {min_texts, 1}};
  c->out = c->in;
  c->text T(i2) = "-32768";
  c->text T(i4) = "-2147483648";
  c->text T(i8) = "-9223372036854775808";
  c->text T(f4) = "-3.4028235e+38";
  c->text T(f8) = "-1.7976931348623157e+308";
  c->text T(flag) = "f";
  c->text T(ts) = "4714-11-24 00:00:00 BC";
  c->text T(tstz) = "1900-01-01 00:00:00+00";
  c->text T(day) = "0001-01-01";
  c->text T(uid) = "01234567-89ab-cdef-0011-223344556677";
  c->text T(ints) = "{NULL}";
  c->text T(texts) = "{\"\"}";
  c->extra_sql = "SELECT octet_length(blob) || '/' || get_byte(blob, 4) || "
                 "'/' || json_typeof(doc) || '/' || (doc::text = '\"\"')::text"
                 " FROM samples WHERE id = $1";
  snprintf(c->extra_expect, sizeof c->extra_expect, "6/255/string/true");

  /* Subnormals, one microsecond before the epoch, numeric trailing zeros. */
  c = &sample_cases[CASE_TINY];
  c->name = "tiny";
  c->in = (sample_t){.f4 = FLT_TRUE_MIN,
                     .f8 = DBL_TRUE_MIN,
                     .ts = -1,
                     .tstz = -1,
                     .day = (int32_t)days_from_civil(1900, 1, 1),
                     .amount = "1.50",
                     .orm_nulls =
                         ALL_NULLS & ~(BIT(f4) | BIT(f8) | BIT(ts) | BIT(tstz) |
                                       BIT(day) | BIT(amount))};
  c->out = c->in;
  c->text T(f4) = "1e-45";
  c->text T(f8) = "5e-324";
  c->text T(ts) = "1969-12-31 23:59:59.999999";
  c->text T(tstz) = "1969-12-31 23:59:59.999999+00";
  c->text T(day) = "1900-01-01";
  c->extra_sql = "SELECT scale(amount) FROM samples WHERE id = $1";
  snprintf(c->extra_expect, sizeof c->extra_expect, "2");

  c = &sample_cases[CASE_NEG_ZERO];
  c->name = "negative zero";
  c->in = (sample_t){.f4 = -0.0f,
                     .f8 = -0.0,
                     .i8 = -1,
                     .amount = "-0.00",
                     .orm_nulls = ALL_NULLS &
                                  ~(BIT(f4) | BIT(f8) | BIT(i8) | BIT(amount))};
  c->out = c->in;
  c->out.amount = "0.00"; /* numeric has no negative zero */
  c->text T(f4) = "-0";
  c->text T(f8) = "-0";
  c->text T(i8) = "-1";

  /* NaN everywhere it exists; a NULL string pointer with its bit clear is
   * NULL too. */
  c = &sample_cases[CASE_NAN];
  c->name = "NaN";
  c->in = (sample_t){.f4 = NAN,
                     .f8 = NAN,
                     .amount = "NaN",
                     .label = NULL,
                     .ints = {one_null_int, one_null_flag, 1},
                     .texts = {nan_texts, 2},
                     .orm_nulls =
                         ALL_NULLS & ~(BIT(f4) | BIT(f8) | BIT(amount) |
                                       BIT(label) | BIT(ints) | BIT(texts))};
  c->out = c->in;
  c->out.orm_nulls |= BIT(label);
  c->text T(f4) = "NaN";
  c->text T(f8) = "NaN";
  c->text T(ints) = "{NULL}";
  c->text T(texts) = "{NULL,\"NULL\"}";
  c->extra_sql = "SELECT (f4 = 'NaN')::text || '/' || (f8 = 'NaN')::text || "
                 "'/' || (amount = 'NaN')::text || '/' || (label IS NULL)::text"
                 " FROM samples WHERE id = $1";
  snprintf(c->extra_expect, sizeof c->extra_expect, "true/true/true/true");

  c = &sample_cases[CASE_PLUS_INF];
  c->name = "+infinity";
  c->in = (sample_t){.f4 = INFINITY,
                     .f8 = -INFINITY,
                     .ts = INT64_MAX,
                     .tstz = INT64_MAX,
                     .day = INT32_MAX,
                     .amount = "Infinity",
                     .orm_nulls =
                         ALL_NULLS & ~(BIT(f4) | BIT(f8) | BIT(ts) | BIT(tstz) |
                                       BIT(day) | BIT(amount))};
  c->out = c->in;
  c->text T(f4) = "Infinity";
  c->text T(f8) = "-Infinity";
  c->text T(ts) = "infinity";
  c->text T(tstz) = "infinity";
  c->text T(day) = "infinity";
  c->extra_sql =
      "SELECT isfinite(ts)::text || '/' || (tstz = 'infinity')::text"
      " || '/' || (day = 'infinity')::text FROM samples WHERE id = $1";
  snprintf(c->extra_expect, sizeof c->extra_expect, "false/true/true");

  c = &sample_cases[CASE_MINUS_INF];
  c->name = "-infinity";
  c->in = (sample_t){.f4 = -INFINITY,
                     .f8 = INFINITY,
                     .ts = INT64_MIN,
                     .tstz = INT64_MIN,
                     .day = INT32_MIN,
                     .amount = "-Infinity",
                     .orm_nulls =
                         ALL_NULLS & ~(BIT(f4) | BIT(f8) | BIT(ts) | BIT(tstz) |
                                       BIT(day) | BIT(amount))};
  c->out = c->in;
  c->text T(f4) = "-Infinity";
  c->text T(f8) = "Infinity";
  c->text T(ts) = "-infinity";
  c->text T(tstz) = "-infinity";
  c->text T(day) = "-infinity";

  c = &sample_cases[CASE_BIG_TEXT];
  c->name = "1 MiB text";
  size_t chars = fill_big_text();
  c->in = (sample_t){.label = big_text,
                     .amount = "1.5e-3",
                     .orm_nulls = ALL_NULLS & ~(BIT(label) | BIT(amount))};
  c->out = c->in;
  c->out.amount = "0.0015"; /* as the server reads it: scale 4 */
  c->extra_sql =
      "SELECT octet_length(label) || '/' || length(label) FROM samples "
      "WHERE id = $1";
  snprintf(c->extra_expect, sizeof c->extra_expect, "%d/%zu", BIG_TEXT_BYTES,
           chars);

  /* numeric base-10000 groups of zeros inside the value, and an exponent. */
  c = &sample_cases[CASE_NUMERIC_GROUPS];
  c->name = "numeric zero groups";
  c->in = (sample_t){.amount = "-100000000.00000001",
                     .orm_nulls = ALL_NULLS & ~BIT(amount)};
  c->out = c->in;

  c = &sample_cases[CASE_NUMERIC_EXPONENT];
  c->name = "numeric exponent";
  c->in = (sample_t){.amount = "1E+20", .orm_nulls = ALL_NULLS & ~BIT(amount)};
  c->out = c->in;
  c->out.amount = "100000000000000000000";
}

/* ---- comparing ---------------------------------------------------------- */

static bool is_string_type(orm_type_t t) {
  return t == ORM_T_TEXT || t == ORM_T_ENUM || t == ORM_T_JSON ||
         t == ORM_T_JSONB || t == ORM_T_NUMERIC;
}

static const char *field_string(const sample_t *row, const orm_field_t *f) {
  const char *s;
  memcpy(&s, (const char *)row + f->offset, sizeof s);
  return s;
}

/* Fails with the first differing offset rather than printing a 1 MiB
 * string. */
static void expect_bytes(const char *what, const char *col, const char *got,
                         size_t got_len, const char *want, size_t want_len) {
  size_t n = got_len < want_len ? got_len : want_len, i = 0;
  while (i < n && got[i] == want[i])
    i++;
  if (i == n && got_len == want_len)
    return;
  if (want_len < 200 && got_len < 200)
    fail_msg("%s: column %s: got [%.*s], want [%.*s]", what, col, (int)got_len,
             got, (int)want_len, want);
  fail_msg("%s: column %s: lengths %zu and %zu, first difference at %zu", what,
           col, got_len, want_len, i);
}

static void expect_zero_bytes(const char *what, const char *col, const char *p,
                              size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0)
      fail_msg("%s: column %s is NULL but its C value is not zero", what, col);
}

/* `got` must hold exactly `want`: the same NULL bits, NULL fields zeroed,
 * the same values (NaN as NaN, -0.0 as -0.0). */
void sample_compare_row(const char *what, const sample_t *want,
                        const sample_t *got) {
  const orm_model_t *m = sample_model();
  if (got->orm_nulls != want->orm_nulls)
    fail_msg("%s: null bitmap %#" PRIx64 ", want %#" PRIx64, what,
             got->orm_nulls, want->orm_nulls);
  for (size_t i = 0; i < m->nfields; i++) {
    const orm_field_t *f = &m->fields[i];
    const char *col = f->column;
    const char *g = (const char *)got + f->offset;
    const char *w = (const char *)want + f->offset;
    if ((want->orm_nulls >> i) & 1u) {
      expect_zero_bytes(what, col, g, f->size);
      continue;
    }
    switch (f->type) {
    case ORM_T_FLOAT4: {
      float a, b;
      memcpy(&a, g, sizeof a);
      memcpy(&b, w, sizeof b);
      if (isnan(b) ? !isnan(a) : memcmp(&a, &b, sizeof a) != 0)
        fail_msg("%s: column %s: got %.9g, want %.9g", what, col, (double)a,
                 (double)b);
      break;
    }
    case ORM_T_FLOAT8: {
      double a, b;
      memcpy(&a, g, sizeof a);
      memcpy(&b, w, sizeof b);
      if (isnan(b) ? !isnan(a) : memcmp(&a, &b, sizeof a) != 0)
        fail_msg("%s: column %s: got %.17g, want %.17g", what, col, a, b);
      break;
    }
    case ORM_T_TEXT:
    case ORM_T_ENUM:
    case ORM_T_JSON:
    case ORM_T_JSONB:
    case ORM_T_NUMERIC: {
      const char *a = field_string(got, f), *b = field_string(want, f);
      if (a == NULL)
        fail_msg("%s: column %s: a NULL pointer with its bit clear", what, col);
      expect_bytes(what, col, a, strlen(a), b, strlen(b));
      break;
    }
    case ORM_T_BYTEA: {
      const orm_bytes_t *a = (const orm_bytes_t *)(const void *)g;
      const orm_bytes_t *b = (const orm_bytes_t *)(const void *)w;
      if (a->data == NULL)
        fail_msg("%s: column %s: decoded bytea data is NULL", what, col);
      if (a->len != b->len || (b->len > 0 && memcmp(a->data, b->data, b->len)))
        fail_msg("%s: column %s: %zu bytes differ from the %zu sent", what, col,
                 a->len, b->len);
      break;
    }
    case ORM_T_INT_ARRAY: {
      const orm_int_array_t *a = (const orm_int_array_t *)(const void *)g;
      const orm_int_array_t *b = (const orm_int_array_t *)(const void *)w;
      if (a->len != b->len)
        fail_msg("%s: column %s: %zu elements, want %zu", what, col, a->len,
                 b->len);
      bool any_null = false;
      for (size_t k = 0; k < b->len; k++) {
        bool want_null = orm_int_array_is_null(b, k);
        any_null |= want_null;
        if (orm_int_array_is_null(a, k) != want_null)
          fail_msg("%s: column %s: element %zu NULL-ness differs", what, col,
                   k);
        int64_t want_item = want_null ? 0 : b->items[k];
        if (a->items[k] != want_item)
          fail_msg("%s: column %s: element %zu is %" PRId64 ", want %" PRId64,
                   what, col, k, a->items[k], want_item);
      }
      if (!any_null && a->nulls != NULL)
        fail_msg("%s: column %s: nulls must be NULL without NULL elements",
                 what, col);
      break;
    }
    case ORM_T_TEXT_ARRAY: {
      const orm_text_array_t *a = (const orm_text_array_t *)(const void *)g;
      const orm_text_array_t *b = (const orm_text_array_t *)(const void *)w;
      if (a->len != b->len)
        fail_msg("%s: column %s: %zu elements, want %zu", what, col, a->len,
                 b->len);
      for (size_t k = 0; k < b->len; k++) {
        if ((a->items[k] == NULL) != (b->items[k] == NULL))
          fail_msg("%s: column %s: element %zu NULL-ness differs", what, col,
                   k);
        if (b->items[k] != NULL)
          expect_bytes(what, col, a->items[k], strlen(a->items[k]), b->items[k],
                       strlen(b->items[k]));
      }
      break;
    }
    default: /* integers, bool, timestamps, date, uuid: exact bytes */
      if (memcmp(g, w, f->size) != 0)
        fail_msg("%s: column %s differs from what was sent", what, col);
      break;
    }
  }
}

static char *bytea_hex(const orm_bytes_t *b) {
  static const char digits[] = "0123456789abcdef";
  char *s = malloc(2 * b->len + 3);
  assert_non_null(s);
  s[0] = '\\';
  s[1] = 'x';
  for (size_t i = 0; i < b->len; i++) {
    s[2 + 2 * i] = digits[b->data[i] >> 4];
    s[3 + 2 * i] = digits[b->data[i] & 15];
  }
  s[2 + 2 * b->len] = '\0';
  return s;
}

static char select_text[1024];
static char select_nulls[1024];

static void build_selects(void) {
  size_t a = (size_t)snprintf(select_text, sizeof select_text, "SELECT ");
  size_t b = (size_t)snprintf(select_nulls, sizeof select_nulls, "SELECT ");
  for (int i = 0; i < NFIELDS; i++) {
    a += (size_t)snprintf(select_text + a, sizeof select_text - a, "%s%s",
                          i ? ", " : "", columns[i]);
    b += (size_t)snprintf(select_nulls + b, sizeof select_nulls - b,
                          "%s%s IS NULL", i ? ", " : "", columns[i]);
  }
  snprintf(select_text + a, sizeof select_text - a,
           " FROM samples WHERE id = $1");
  snprintf(select_nulls + b, sizeof select_nulls - b,
           " FROM samples WHERE id = $1");
}

/* What plain SQL sees in the row `id`: NULL exactly where `want` says
 * (`col IS NULL` for each column), and each other column rendered in text
 * format as `text` (or the expected string / bytea) gives. If `got` is
 * given, its strings must also equal the server's rendering (jsonb after
 * the server's normalisation, numeric with its scale). */
void sample_check_server(const char *what, int64_t id, const sample_t *want,
                         const char *const text[NFIELDS], const sample_t *got) {
  const orm_model_t *m = sample_model();
  PGresult *r = row_query(select_nulls, id);
  for (int i = 0; i < NFIELDS; i++) {
    bool want_null = i != 0 && ((want->orm_nulls >> i) & 1u);
    const char *v = PQgetvalue(r, 0, i);
    if (strcmp(v, want_null ? "t" : "f") != 0)
      fail_msg("%s: plain SQL says %s IS NULL is %s", what, columns[i], v);
  }
  PQclear(r);

  r = row_query(select_text, id);
  for (int i = 0; i < NFIELDS; i++) {
    const orm_field_t *f = &m->fields[i];
    bool want_null = i != 0 && ((want->orm_nulls >> i) & 1u);
    if (PQgetisnull(r, 0, i) != want_null)
      fail_msg("%s: plain SQL sees %s as %s", what, columns[i],
               want_null ? "a value" : "NULL");
    if (want_null)
      continue;
    char id_text[24];
    char *hex = NULL;
    const char *expect = text != NULL ? text[i] : NULL;
    if (i == 0) {
      snprintf(id_text, sizeof id_text, "%" PRId64, id);
      expect = id_text;
    } else if (is_string_type(f->type)) {
      expect = field_string(want, f);
    } else if (f->type == ORM_T_BYTEA) {
      expect = hex = bytea_hex(&want->blob);
    }
    if (expect == NULL)
      fail_msg("%s: no expected text for column %s", what, columns[i]);
    const char *v = PQgetvalue(r, 0, i);
    size_t n = (size_t)PQgetlength(r, 0, i);
    expect_bytes(what, columns[i], v, n, expect, strlen(expect));
    if (got != NULL && is_string_type(f->type)) {
      const char *s = field_string(got, f);
      expect_bytes(what, columns[i], s, strlen(s), v, n);
    }
    free(hex);
  }
  PQclear(r);
}

void sample_check_extra(const row_case_t *c, int64_t id) {
  if (c->extra_sql == NULL)
    return;
  PGresult *r = row_query(c->extra_sql, id);
  const char *v = PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0);
  if (strcmp(v, c->extra_expect) != 0)
    fail_msg("%s: %s gave [%s], want [%s]", c->name, c->extra_sql, v,
             c->extra_expect);
  PQclear(r);
}

/* ---- model calls -------------------------------------------------------- */

orm_rows_t *sample_find_one(int64_t id) {
  wait_t *w = sample_begin_wait();
  assert_int_equal(orm_find_async(fx->pool, sample_model(), ORM_INT8(id),
                                  sample_on_done, w, NULL),
                   0);
  sample_wait_ok(w, "find");
  orm_rows_t *rows = w->step.taken;
  assert_int_equal(orm_rows_count(rows), 1);
  assert_ptr_equal(w->first_row, orm_rows_at(rows, 0));
  return rows;
}

/* The caller's struct after a write: the generated id written back and set
 * not NULL, every other field exactly as the caller left it. */
void sample_check_written_back(const char *what, const sample_t *before,
                               const sample_t *after) {
  const orm_model_t *m = sample_model();
  if (after->id <= 0)
    fail_msg("%s: no id written back", what);
  if (after->orm_nulls != (before->orm_nulls & ~BIT(id)))
    fail_msg("%s: write-back changed the null bitmap to %#" PRIx64, what,
             after->orm_nulls);
  for (size_t i = 1; i < m->nfields; i++) {
    const orm_field_t *f = &m->fields[i];
    if (memcmp((const char *)after + f->offset,
               (const char *)before + f->offset, f->size) != 0)
      fail_msg("%s: write-back touched field %s", what, f->column);
  }
}

/* insert, then find; both answers and plain SQL checked. Returns the id. */
int64_t sample_round_trip(const row_case_t *c) {
  sample_t row = c->in;
  wait_t *w = sample_begin_wait();
  assert_int_equal(
      orm_insert_async(fx->pool, sample_model(), &row, sample_on_done, w, NULL),
      0);
  sample_wait_ok(w, c->name);
  sample_check_written_back(c->name, &c->in, &row);
  orm_rows_t *rows = w->step.taken;
  assert_int_equal(orm_rows_count(rows), 1);
  sample_t want = c->out;
  want.id = row.id;
  char what[128];
  snprintf(what, sizeof what, "%s (RETURNING)", c->name);
  sample_compare_row(what, &want, orm_rows_at(rows, 0));
  orm_rows_free(rows);

  rows = sample_find_one(row.id);
  const sample_t *got = orm_rows_at(rows, 0);
  snprintf(what, sizeof what, "%s (find)", c->name);
  sample_compare_row(what, &want, got);
  sample_check_server(c->name, row.id, &want, c->text, got);
  sample_check_extra(c, row.id);
  orm_rows_free(rows);
  return row.id;
}

/* ---- fixtures ----------------------------------------------------------- */

void sample_open(orm_fx_t *group_fx, const char *schema) {
  assert_int_equal(days_from_civil(2000, 1, 1), 10957);
  assert_int_equal(days_from_civil(1900, 1, 1), -25567);
  assert_int_equal(days_from_civil(1, 1, 1), -719162);
  fx = group_fx;
  orm_fx_open(fx, schema, 0, &(orm_pool_config_t){.max_conns = 2});
  /* Fix every setting that shapes a text rendering. */
  orm_fx_sql(fx, "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
                 "SET extra_float_digits = 1; SET bytea_output = 'hex'; "
                 "SET client_encoding = 'UTF8'");
  orm_fx_sql(fx, ddl);
  build_cases();
  build_selects();
}

void sample_close(orm_fx_t *group_fx) {
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM pg_namespace WHERE nspname = '%s'",
           group_fx->schema);
  orm_fx_close(group_fx);
  fx = NULL;
  /* Asked on a connection of its own: the fixture's went with it. */
  orm_fx_t check;
  orm_fx_open_admin(&check, NULL, 0);
  char *left = orm_fx_text(&check, sql);
  assert_string_equal(left, "0");
  free(left);
  orm_fx_close_admin(&check);
}
