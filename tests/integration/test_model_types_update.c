/* SPDX-License-Identifier: MIT */
/* Every uvorm type through updates and upserts on the real server, through
 * a model on the pool: an update of two named fields, a full update and an
 * upsert on the primary key, each checked field by field and against plain
 * SQL (support/sample_model.c). */
#include "sample_model.h"

#include <string.h>

#define SCHEMA "model_types_update"

static orm_fx_t fx;

static int setup(void **state) {
  sample_open(&fx, SCHEMA);
  return 0;
}

static int teardown(void **state) {
  sample_close(&fx);
  return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void expect_update(sample_t *row, uint64_t fields) {
  wait_t *w = sample_begin_wait();
  assert_int_equal(orm_update_async(fx.pool, sample_model(), row, fields,
                                    sample_on_done, w, NULL),
                   0);
  sample_wait_ok(w, "update");
  /* An update resolves with a result, not rows. */
  assert_null(w->first_row);
  orm_result_t *res = w->step.taken;
  assert_non_null(res);
  assert_int_equal(orm_result_affected(res), 1);
  orm_result_free(res);
}

static void test_update_two_named_fields(void **state) {
  const row_case_t *max = &sample_cases[CASE_MAXIMA];
  int64_t id = sample_round_trip(max);

  /* Every other field of the struct is NULL: sent, it would wipe them. */
  static int64_t new_items[] = {7, 99};
  static bool new_nulls[] = {false, true};
  sample_t change = {.id = id,
                     .label = "updated ✓",
                     .ints = {new_items, new_nulls, 2},
                     .orm_nulls = ALL_NULLS & ~(BIT(label) | BIT(ints))};
  expect_update(&change, BIT(label) | BIT(ints));

  sample_t want = max->out;
  want.id = id;
  want.label = change.label;
  want.ints = change.ints;
  const char *text[NFIELDS];
  memcpy(text, max->text, sizeof text);
  text T(ints) = "{7,NULL}";
  orm_rows_t *rows = sample_find_one(id);
  sample_compare_row("after the named update", &want, orm_rows_at(rows, 0));
  sample_check_server("after the named update", id, &want, text,
                      orm_rows_at(rows, 0));
  orm_rows_free(rows);

  /* A named field set to NULL: only it changes. */
  sample_t to_null = {.id = id, .i2 = 5, .orm_nulls = ALL_NULLS};
  expect_update(&to_null, BIT(amount) | BIT(uid));
  want.orm_nulls |= BIT(amount) | BIT(uid);
  want.amount = NULL;
  memset(&want.uid, 0, sizeof want.uid);
  rows = sample_find_one(id);
  sample_compare_row("after nulling two fields", &want, orm_rows_at(rows, 0));
  sample_check_server("after nulling two fields", id, &want, text,
                      orm_rows_at(rows, 0));
  orm_rows_free(rows);

  /* The key cannot be one of the named fields. */
  assert_int_equal(orm_update_async(fx.pool, sample_model(), &change,
                                    BIT(id) | BIT(label), sample_on_done,
                                    sample_begin_wait(), NULL),
                   ORM_EINVAL);
}

static void test_full_update(void **state) {
  int64_t id = sample_round_trip(&sample_cases[CASE_MINIMA]);
  const row_case_t *max = &sample_cases[CASE_MAXIMA];
  sample_t full = max->in;
  full.id = id;
  expect_update(&full, 0);
  sample_t want = max->out;
  want.id = id;
  orm_rows_t *rows = sample_find_one(id);
  sample_compare_row("after a full update", &want, orm_rows_at(rows, 0));
  sample_check_server("after a full update", id, &want, max->text,
                      orm_rows_at(rows, 0));
  orm_rows_free(rows);

  /* And back to all NULL. */
  full = sample_cases[CASE_ALL_NULL].in;
  full.id = id;
  expect_update(&full, 0);
  want = sample_cases[CASE_ALL_NULL].out;
  want.id = id;
  rows = sample_find_one(id);
  sample_compare_row("after a full update to NULL", &want,
                     orm_rows_at(rows, 0));
  sample_check_server("after a full update to NULL", id, &want, NULL,
                      orm_rows_at(rows, 0));
  orm_rows_free(rows);
}

static void upsert(const char *what, sample_t *row, const char *conflict,
                   const row_case_t *expect) {
  sample_t before = *row;
  wait_t *w = sample_begin_wait();
  assert_int_equal(orm_upsert_async(fx.pool, sample_model(), row, conflict,
                                    sample_on_done, w, NULL),
                   0);
  sample_wait_ok(w, what);
  assert_int_equal(row->id, before.id); /* the key it was given */
  orm_rows_t *rows = w->step.taken;
  assert_int_equal(orm_rows_count(rows), 1);
  sample_t want = expect->out;
  want.id = before.id;
  sample_compare_row(what, &want, orm_rows_at(rows, 0));
  orm_rows_free(rows);
  rows = sample_find_one(before.id);
  sample_compare_row(what, &want, orm_rows_at(rows, 0));
  sample_check_server(what, before.id, &want, expect->text,
                      orm_rows_at(rows, 0));
  orm_rows_free(rows);
}

static void test_upsert_on_primary_key(void **state) {
  int64_t id = sample_round_trip(&sample_cases[CASE_ZEROS]);
  int64_t n = sample_count_rows();

  /* The key exists: the row is replaced, no row is added. */
  sample_t row = sample_cases[CASE_NAN].in;
  row.id = id;
  upsert("upsert of an existing key", &row, NULL, &sample_cases[CASE_NAN]);
  assert_int_equal(sample_count_rows(), n);

  /* A new key, naming the key column: a new row with that key. */
  sample_t fresh = sample_cases[CASE_MINIMA].in;
  fresh.id = INT64_C(5000000000);
  upsert("upsert of a new key", &fresh, "id", &sample_cases[CASE_MINIMA]);
  assert_int_equal(sample_count_rows(), n + 1);

  /* Again with other values: updated in place. */
  fresh = sample_cases[CASE_MAXIMA].in;
  fresh.id = INT64_C(5000000000);
  upsert("upsert of the new key again", &fresh, "id",
         &sample_cases[CASE_MAXIMA]);
  assert_int_equal(sample_count_rows(), n + 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_update_two_named_fields),
      cmocka_unit_test(test_full_update),
      cmocka_unit_test(test_upsert_on_primary_key),
  };
  return orm_run_group_tests(tests, setup, teardown);
}
