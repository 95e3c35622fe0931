/* SPDX-License-Identifier: MIT */
/* Hydration without a server: results built with libpq's own result
 * constructors (PQmakeEmptyPGresult, PQsetResultAttrs, PQsetvalue), decoded
 * into model structs. Mapping by name, NULLs, type mismatches named by
 * column, write-back of RETURNING columns, and an out-of-memory sweep. */
#include "alloc_fault.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <uvorm.h>
#include <uvorm/model.h>

#include "model/arena.h"
#include "model/hydrate.h"

#include "domain.h"

#define PG_EPOCH_USECS INT64_C(946684800000000)

/* ---- building results --------------------------------------------------- */

typedef struct {
  const char *name;
  unsigned oid;
  int format;
} col_t;

static PGresult *make_result(const col_t *cols, int ncols) {
  PGresult *res = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
  assert_non_null(res);
  PGresAttDesc attrs[16];
  char names[16][64];
  assert_true(ncols <= 16);
  for (int i = 0; i < ncols; i++) {
    snprintf(names[i], sizeof names[i], "%s", cols[i].name);
    attrs[i] = (PGresAttDesc){.name = names[i],
                              .format = cols[i].format,
                              .typid = cols[i].oid,
                              .typlen = -1,
                              .atttypmod = -1};
  }
  assert_int_equal(PQsetResultAttrs(res, ncols, attrs), 1);
  return res;
}

static void set_value(PGresult *res, int row, int col, const void *bytes,
                      int len) {
  char copy[256];
  assert_true(len < (int)sizeof copy);
  if (len > 0)
    memcpy(copy, bytes, (size_t)len);
  assert_int_equal(PQsetvalue(res, row, col, len < 0 ? NULL : copy, len), 1);
}

static void set_null(PGresult *res, int row, int col) {
  assert_int_equal(PQsetvalue(res, row, col, NULL, -1), 1);
}

static void set_int8(PGresult *res, int row, int col, int64_t v) {
  unsigned char b[8];
  for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
    b[i] = (unsigned char)(v & 0xff);
  set_value(res, row, col, b, 8);
}

static void set_int4(PGresult *res, int row, int col, int32_t v) {
  unsigned char b[4];
  uint32_t u = (uint32_t)v;
  for (int i = 3; i >= 0; i--, u >>= 8)
    b[i] = (unsigned char)(u & 0xff);
  set_value(res, row, col, b, 4);
}

static void set_text(PGresult *res, int row, int col, const char *s) {
  set_value(res, row, col, s, (int)strlen(s));
}

static const col_t user_cols[] = {{"id", 20, 1},
                                  {"email", 25, 1},
                                  {"name", 1043, 1},
                                  {"created_at", 1184, 1}};

static PGresult *users_result(void) {
  PGresult *res = make_result(user_cols, 4);
  set_int8(res, 0, 0, 1);
  set_text(res, 0, 1, "'; DROP TABLE users; --");
  set_text(res, 0, 2, "Zoë \"Q\" \\ 日本");
  set_int8(res, 0, 3, 0); /* 2000-01-01 on the wire */
  set_int8(res, 1, 0, INT64_MIN);
  set_text(res, 1, 1, "");
  set_null(res, 1, 2);
  set_null(res, 1, 3);
  set_int8(res, 2, 0, INT64_MAX);
  set_text(res, 2, 1, "c@d");
  set_text(res, 2, 2, "");
  set_int8(res, 2, 3, INT64_MAX); /* infinity */
  return res;
}

/* ---- tests -------------------------------------------------------------- */

static void test_users(void **state) {
  PGresult *res = users_result();
  orm_rows_t *rows;
  orm_model_error_t err;
  assert_int_equal(orm__hydrate(&rows, user_model(), res, &err), 0);
  PQclear(res); /* the rows own copies of everything */
  assert_int_equal(orm_rows_count(rows), 3);
  assert_ptr_equal(orm_rows_model(rows), user_model());
  const user_t *u = orm_rows_array(rows);
  assert_ptr_equal(orm_rows_at(rows, 1), &u[1]);
  assert_null(orm_rows_at(rows, 3));

  assert_int_equal(u[0].id, 1);
  assert_string_equal(u[0].email, "'; DROP TABLE users; --");
  assert_string_equal(u[0].name, "Zoë \"Q\" \\ 日本");
  assert_int_equal(u[0].created_at, PG_EPOCH_USECS);
  assert_int_equal(u[0].orm_nulls, 0);

  assert_int_equal(u[1].id, INT64_MIN);
  assert_string_equal(u[1].email, "");
  assert_false(ORM_IS_NULL(&u[1], user, email)); /* "" is not NULL */
  assert_true(ORM_IS_NULL(&u[1], user, name));
  assert_null(u[1].name);
  assert_true(ORM_IS_NULL(&u[1], user, created_at));
  assert_int_equal(u[1].created_at, 0);

  assert_int_equal(u[2].id, INT64_MAX);
  assert_string_equal(u[2].name, "");
  assert_false(ORM_IS_NULL(&u[2], user, name));
  assert_int_equal(u[2].created_at, INT64_MAX);
  orm_rows_free(rows);
  orm_rows_free(NULL);
}

static void test_empty_result(void **state) {
  PGresult *res = make_result(user_cols, 4);
  orm_rows_t *rows;
  assert_int_equal(orm__hydrate(&rows, user_model(), res, NULL), 0);
  assert_int_equal(orm_rows_count(rows), 0);
  assert_null(orm_rows_array(rows));
  orm_rows_free(rows);
  PQclear(res);
}

static void test_columns_by_name(void **state) {
  /* Another order, a subset, and a widened integer (int4 into int8). */
  const col_t cols[] = {{"email", 25, 1}, {"id", 23, 1}};
  PGresult *res = make_result(cols, 2);
  set_text(res, 0, 0, "x@y");
  set_int4(res, 0, 1, -7);
  orm_rows_t *rows;
  assert_int_equal(orm__hydrate(&rows, user_model(), res, NULL), 0);
  const user_t *u = orm_rows_array(rows);
  assert_int_equal(u->id, -7);
  assert_string_equal(u->email, "x@y");
  /* Fields the result does not carry are NULL, never a silent 0. */
  assert_true(ORM_IS_NULL(u, user, name));
  assert_true(ORM_IS_NULL(u, user, created_at));
  assert_false(ORM_IS_NULL(u, user, id));
  orm_rows_free(rows);
  PQclear(res);
}

static void expect_failure(const col_t *cols, int ncols, int code,
                           const char *needle, int column) {
  PGresult *res = make_result(cols, ncols);
  orm_rows_t *rows = (orm_rows_t *)&rows; /* poisoned */
  orm_model_error_t err;
  assert_int_equal(orm__hydrate(&rows, user_model(), res, &err), code);
  assert_null(rows);
  assert_int_equal(err.code, code);
  assert_int_equal(err.column, column);
  if (strstr(err.message, needle) == NULL)
    fail_msg("\"%s\" does not mention \"%s\"", err.message, needle);
  PQclear(res);
}

static void test_mismatches(void **state) {
  /* The declared type does not fit the column's: the message names it. */
  const col_t int_email[] = {{"id", 20, 1}, {"email", 23, 1}};
  expect_failure(int_email, 2, ORM_ETYPE, "column \"email\"", 1);
  expect_failure(int_email, 2, ORM_ETYPE, "integer", 1);
  const col_t narrow[] = {{"created_at", 1114, 1}}; /* timestamp, not tz */
  expect_failure(narrow, 1, ORM_ETYPE, "\"created_at\"", 0);
  const col_t bigint_id[] = {{"id", 1700, 1}}; /* numeric into int8 */
  expect_failure(bigint_id, 1, ORM_ETYPE, "numeric", 0);
  const col_t text_format[] = {{"id", 20, 0}};
  expect_failure(text_format, 1, ORM_ETYPE, "text format", 0);
  const col_t unknown[] = {{"id", 20, 1}, {"password", 25, 1}};
  expect_failure(unknown, 2, ORM_ENOCOLUMN, "\"password\"", 1);
  const col_t twice[] = {{"id", 20, 1}, {"id", 20, 1}};
  expect_failure(twice, 2, ORM_ENOCOLUMN, "twice", 1);

  /* A malformed value names its column and row. */
  PGresult *res = make_result(user_cols, 4);
  set_int8(res, 0, 0, 1);
  set_value(res, 1, 0, "abc", 3);
  orm_rows_t *rows;
  orm_model_error_t err;
  assert_int_equal(orm__hydrate(&rows, user_model(), res, &err), ORM_ETYPE);
  assert_non_null(strstr(err.message, "column \"id\", row 1"));
  PQclear(res);

  /* A result without rows. */
  res = PQmakeEmptyPGresult(NULL, PGRES_COMMAND_OK);
  assert_int_equal(orm__hydrate(&rows, user_model(), res, &err), ORM_EINVAL);
  PQclear(res);
  assert_int_equal(orm__hydrate(&rows, user_model(), NULL, NULL), ORM_EINVAL);
  assert_int_equal(orm__hydrate(NULL, user_model(), NULL, NULL), ORM_EINVAL);
}

static void test_every_type(void **state) {
  /* An agent: uuid, text, enum (a user OID), float8, jsonb, text[]. */
  const col_t cols[] = {{"id", 2950, 1},          {"owner_id", 20, 1},
                        {"name", 25, 1},          {"model", 1043, 1},
                        {"status", 16390, 1},     {"temperature", 701, 1},
                        {"config", 3802, 1},      {"tags", 1009, 1},
                        {"created_at", 1184, 1}};
  PGresult *res = make_result(cols, 9);
  unsigned char uuid[16];
  for (int i = 0; i < 16; i++)
    uuid[i] = (unsigned char)(0xf0 + i);
  set_value(res, 0, 0, uuid, 16);
  set_int8(res, 0, 1, 5);
  set_text(res, 0, 2, "helper");
  set_text(res, 0, 3, "gpt");
  set_text(res, 0, 4, "paused");
  set_value(res, 0, 5, "\x3f\xe0\0\0\0\0\0\0", 8); /* 0.5 */
  set_value(res, 0, 6, "\1{\"a\": 1}", 9);
  /* text[]: ndim 1, has null, elem 25, dim 2, lbound 1, "x", NULL */
  const unsigned char arr[] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 25,
                               0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1,
                               'x', 0xff, 0xff, 0xff, 0xff};
  set_value(res, 0, 7, arr, sizeof arr);
  set_int8(res, 0, 8, -PG_EPOCH_USECS); /* 1970-01-01 */
  orm_rows_t *rows;
  orm_model_error_t err;
  assert_int_equal(orm__hydrate(&rows, agent_model(), res, &err), 0);
  const agent_t *a = orm_rows_array(rows);
  assert_memory_equal(a->id.bytes, uuid, 16);
  assert_int_equal(a->owner_id, 5);
  assert_string_equal(a->status, "paused");
  assert_true(a->temperature == 0.5);
  assert_string_equal(a->config, "{\"a\": 1}");
  assert_int_equal(a->tags.len, 2);
  assert_string_equal(a->tags.items[0], "x");
  assert_null(a->tags.items[1]);
  assert_int_equal(a->created_at, 0);
  assert_int_equal(a->orm_nulls, 0);
  orm_rows_free(rows);
  PQclear(res);

  /* A usage record: date, numeric, float4, bytea, NULL uuid. */
  const col_t ucols[] = {{"id", 20, 1},   {"agent_id", 2950, 1},
                         {"day", 1082, 1}, {"cost", 1700, 1},
                         {"latency_ms", 700, 1}, {"request_digest", 17, 1}};
  res = make_result(ucols, 6);
  set_int8(res, 0, 0, 1);
  set_null(res, 0, 1);
  set_int4(res, 0, 2, -10957); /* 1970-01-01 */
  /* numeric 12.5: ndigits 2, weight 0, sign +, dscale 1, digits 12, 5000 */
  set_value(res, 0, 3, "\0\2\0\0\0\0\0\1\0\x0c\x13\x88", 12);
  set_value(res, 0, 4, "\x3f\xc0\0\0", 4); /* 1.5f */
  set_value(res, 0, 5, "a\0b", 3);
  assert_int_equal(orm__hydrate(&rows, usage_record_model(), res, &err), 0);
  const usage_record_t *r = orm_rows_array(rows);
  assert_true(ORM_IS_NULL(r, usage_record, agent_id));
  assert_int_equal(r->day, 0);
  assert_string_equal(r->cost, "12.5");
  assert_true(r->latency_ms == 1.5f);
  assert_int_equal(r->request_digest.len, 3);
  assert_memory_equal(r->request_digest.data, "a\0b", 3);
  /* Columns the result lacks are NULL. */
  assert_true(ORM_IS_NULL(r, usage_record, prompt_tokens));
  assert_true(ORM_IS_NULL(r, usage_record, recorded_at));
  orm_rows_free(rows);
  PQclear(res);
}

static void test_write_back(void **state) {
  /* RETURNING after an insert: only the generated fields are written. */
  PGresult *res = users_result();
  user_t u = {.email = "mine", .name = "kept"};
  ORM_SET_NULL(&u, user, created_at);
  orm__arena_t arena;
  orm__arena_init(&arena);
  uint64_t generated = ORM_FIELD_BIT(user, id) | ORM_FIELD_BIT(user, created_at);
  assert_int_equal(
      orm__hydrate_into(user_model(), res, 0, &u, generated, &arena, NULL), 0);
  assert_int_equal(u.id, 1);
  assert_int_equal(u.created_at, PG_EPOCH_USECS);
  assert_false(ORM_IS_NULL(&u, user, created_at));
  assert_string_equal(u.email, "mine");
  assert_string_equal(u.name, "kept");

  /* NULLs come back as NULL bits; other bits stay. */
  ORM_SET_NULL(&u, user, name);
  assert_int_equal(
      orm__hydrate_into(user_model(), res, 1, &u, generated, &arena, NULL), 0);
  assert_true(ORM_IS_NULL(&u, user, created_at));
  assert_true(ORM_IS_NULL(&u, user, name));
  assert_int_equal(u.id, INT64_MIN);

  /* Strings go to the caller's arena. */
  uint64_t all = ORM_FIELD_BIT(user, email) | ORM_FIELD_BIT(user, name);
  assert_int_equal(
      orm__hydrate_into(user_model(), res, 0, &u, all, &arena, NULL), 0);
  assert_string_equal(u.email, "'; DROP TABLE users; --");
  assert_false(ORM_IS_NULL(&u, user, name));
  assert_int_equal(
      orm__hydrate_into(user_model(), res, 3, &u, all, &arena, NULL),
      ORM_ENOTFOUND);
  orm__arena_free(&arena);
  PQclear(res);
}

static void test_oom(void **state) {
  /* Enough rows and text to need several arena chunks. */
  PGresult *res = make_result(user_cols, 4);
  char text[200];
  memset(text, 'q', sizeof text - 1);
  text[sizeof text - 1] = '\0';
  for (int r = 0; r < 40; r++) {
    set_int8(res, r, 0, r);
    set_text(res, r, 1, text);
    set_text(res, r, 2, text + r);
    set_int8(res, r, 3, r);
  }
  for (long budget = 0;; budget++) {
    assert_true(budget < 1000);
    orm_rows_t *rows;
    orm_model_error_t err;
    orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
    int rc = orm__hydrate(&rows, user_model(), res, &err);
    orm_test_alloc_fail_none();
    if (rc == 0) {
      assert_true(budget > 2);
      const user_t *u = orm_rows_at(rows, 39);
      assert_string_equal(u->name, text + 39);
      orm_rows_free(rows);
      break;
    }
    assert_int_equal(rc, ORM_ENOMEM);
    assert_int_equal(err.code, ORM_ENOMEM);
    assert_null(rows);
    assert_int_equal(orm_test_alloc_live(), 0);
  }
  PQclear(res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
/* The library's memory goes through the test allocator (alloc_fault.h). */
#define T(fn)                                                                  \
  cmocka_unit_test_setup_teardown(fn, orm_test_alloc_setup,                    \
                                  orm_test_alloc_teardown)
      T(test_users),       T(test_empty_result), T(test_columns_by_name),
      T(test_mismatches),  T(test_every_type),   T(test_write_back),
      T(test_oom),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
