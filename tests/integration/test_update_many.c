/* SPDX-License-Identifier: MIT */
/* orm_update_many_async against the real server: many rows by key in one
 * statement (named fields, or every updatable one, enums and arrays
 * included), keys no row has, all or nothing on a constraint, validation
 * refusing before anything is sent, inside a transaction, bad arguments,
 * and batches over the same rows from several connections at once. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "update_many_test"

#define ITEM_FIELDS(X)                                                         \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)                                         \
  X(score, ORM_T_INT4, int32_t, 0)                                             \
  X(status, ORM_T_ENUM, const char *, 0)                                       \
  X(tags, ORM_T_TEXT_ARRAY, orm_text_array_t, ORM_F_NULLABLE)                  \
  X(touched, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
ORM_MODEL_DECLARE(item, ITEM_FIELDS);
static const orm_rule_t item_rules[] = {ORM_RANGE("score", -1000, 1000)};
static const orm_model_hooks_t item_hooks = {.rules = item_rules, .nrules = 1};
ORM_MODEL_DEFINE_HOOKS(item, "items", ITEM_FIELDS, &item_hooks);

/* The same table through a view: read only, no key. */
#define ITEM_VIEW_FIELDS(X)                                                    \
  X(id, ORM_T_INT4, int32_t, 0)                                                \
  X(score, ORM_T_INT4, int32_t, 0)
ORM_MODEL_DECLARE(item_view, ITEM_VIEW_FIELDS);
ORM_MODEL_DEFINE_VIEW(item_view, "items_view", ITEM_VIEW_FIELDS);

static orm_fx_t fx;
static int statements;

static void on_query(orm_pool_t *pool, const orm_query_event_t *e,
                     void *data) {
  (void)pool;
  (void)data;
  if (strcmp(e->operation, "update_many") == 0)
    statements++;
}

static int setup(void **state) {
  (void)state;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 2, .max_conns = 2,
                                   .on_query = on_query});
  orm_fx_sql(&fx, "CREATE TYPE item_status AS ENUM ('new', 'done')");
  orm_fx_sql(&fx, "CREATE TABLE items (id int PRIMARY KEY, name text NOT "
                  "NULL, score int NOT NULL CHECK (score >= 0), status "
                  "item_status NOT NULL DEFAULT 'new', tags text[], touched "
                  "timestamptz NOT NULL DEFAULT now())");
  orm_fx_sql(&fx, "CREATE VIEW items_view AS SELECT id, score FROM items");
  return 0;
}

static int teardown(void **state) {
  (void)state;
  orm_fx_close(&fx);
  return 0;
}

static void reset_rows(void) {
  orm_fx_sql(&fx, "TRUNCATE items; INSERT INTO items (id, name, score) "
                  "SELECT g, 'item ' || g, g FROM generate_series(1, 10) g");
}

static orm_step_t update_many(orm_exec_t *ex, item_t *rows, size_t n,
                              uint64_t fields) {
  orm_step_t s = {.result = 1};
  int rc = orm_update_many_async(ex, item_model(), rows, n, fields,
                                 orm_fx_on_step, &s, NULL);
  assert_int_equal(rc, 0);
  orm_fx_wait(&fx, &s, 1);
  return s;
}

/* The rows affected, from the result the step kept (orm_fx_on_step reads
 * the first column of a raw result: here each row's id, so count instead). */
static int64_t affected(orm_exec_t *ex, item_t *rows, size_t n,
                        uint64_t fields, int *status) {
  orm_future_t *f;
  assert_int_equal(orm_update_many_async(ex, item_model(), rows, n, fields,
                                         NULL, NULL, &f),
                   0);
  while (orm_future_state(f) == ORM_FUTURE_PENDING)
    uv_run(&fx.loop, UV_RUN_ONCE);
  *status = orm_future_status(f);
  int64_t a = -1;
  if (*status == 0)
    a = orm_result_affected(orm_future_value(f));
  orm_future_release(f);
  return a;
}

static void test_named_fields(void **state) {
  (void)state;
  reset_rows();
  item_t rows[5];
  for (int i = 0; i < 5; i++)
    rows[i] = (item_t){.id = 2 * i + 1, .name = "not sent", .score = 100 + i,
                       .status = "done"};
  statements = 0;
  int st;
  int64_t n = affected(orm_pool_exec(fx.pool), rows, 5,
                       ORM_FIELD_BIT(item, score) | ORM_FIELD_BIT(item, status),
                       &st);
  assert_int_equal(st, 0);
  assert_int_equal(n, 5);
  assert_int_equal(statements, 1); /* one statement for five rows */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items WHERE "
                                   "score >= 100 AND status = 'done' AND "
                                   "id % 2 = 1 AND name = 'item ' || id"),
                   5);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items WHERE "
                                   "score = id AND status = 'new'"),
                   5);
}

static void test_every_field(void **state) {
  (void)state;
  reset_rows();
  char a[] = "a", b[] = "b";
  char *tags1[] = {a, b};
  item_t rows[2] = {
      {.id = 3, .name = "three", .score = 33, .status = "done",
       .tags = {.items = tags1, .len = 2}},
      {.id = 4, .name = "four", .score = 44, .status = "new"},
  };
  ORM_SET_NULL(&rows[1], item, tags);
  orm_step_t s = update_many(orm_pool_exec(fx.pool), rows, 2, 0);
  assert_int_equal(s.status, 0);
  char *got = orm_fx_text(&fx, "SELECT string_agg(format('%s/%s/%s/%s/%s', "
                               "id, name, score, status, tags), ' ' ORDER "
                               "BY id) FROM items WHERE id IN (3, 4)");
  assert_string_equal(got, "3/three/33/done/{a,b} 4/four/44/new/");
  free(got);
}

static void test_missing_keys_update_nothing(void **state) {
  (void)state;
  reset_rows();
  item_t rows[3] = {{.id = 1, .name = "x", .score = 7, .status = "new"},
                    {.id = 99, .name = "x", .score = 7, .status = "new"},
                    {.id = 5, .name = "x", .score = 7, .status = "new"}};
  int st;
  assert_int_equal(affected(orm_pool_exec(fx.pool), rows, 3,
                            ORM_FIELD_BIT(item, score), &st),
                   2);
  assert_int_equal(st, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items"), 10);
}

static void test_all_or_nothing(void **state) {
  (void)state;
  reset_rows();
  /* Row 6's score breaks the table's CHECK (the model's rule allows it). */
  item_t rows[3] = {{.id = 2, .score = 50}, {.id = 6, .score = -5},
                    {.id = 8, .score = 50}};
  orm_step_t s = update_many(orm_pool_exec(fx.pool), rows, 3,
                             ORM_FIELD_BIT(item, score));
  assert_int_equal(s.status, ORM_ESERVER);
  assert_string_equal(s.sqlstate, "23514");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items "
                                   "WHERE score = 50"),
                   0);
}

static void test_validation_refuses_before_sending(void **state) {
  (void)state;
  reset_rows();
  item_t rows[3] = {{.id = 1, .score = 5}, {.id = 2, .score = 5000},
                    {.id = 3, .score = 5}};
  statements = 0;
  orm_step_t s = update_many(orm_pool_exec(fx.pool), rows, 3,
                             ORM_FIELD_BIT(item, score));
  assert_int_equal(s.status, ORM_EVALIDATION);
  assert_int_equal(statements, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items "
                                   "WHERE score = 5"),
                   1); /* row 5's own */
}

static void test_in_a_transaction(void **state) {
  (void)state;
  reset_rows();
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  item_t rows[2] = {{.id = 1, .score = 500}, {.id = 2, .score = 500}};
  orm_step_t s = update_many(orm_tx_exec(tx), rows, 2,
                             ORM_FIELD_BIT(item, score));
  assert_int_equal(s.status, 0);
  orm_step_t end = {0};
  assert_int_equal(orm_tx_rollback_async(tx, orm_fx_on_step, &end, NULL), 0);
  orm_fx_wait(&fx, &end, 1);
  assert_int_equal(end.status, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items "
                                   "WHERE score = 500"),
                   0);
}

static void test_bad_arguments(void **state) {
  (void)state;
  item_t row = {.id = 1, .score = 1};
  orm_exec_t *ex = orm_pool_exec(fx.pool);
  assert_int_equal(orm_update_many_async(ex, item_model(), NULL, 1, 0, NULL,
                                         NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_update_many_async(ex, item_model(), &row, 0, 0, NULL,
                                         NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_update_many_async(ex, NULL, &row, 1, 0, NULL, NULL,
                                         NULL),
                   ORM_EINVAL);
  /* The key is what rows are matched by, not a field to set. */
  assert_int_equal(orm_update_many_async(ex, item_model(), &row, 1,
                                         ORM_FIELD_BIT(item, id), NULL, NULL,
                                         NULL),
                   ORM_EINVAL);
  item_view_t v = {.id = 1, .score = 1};
  assert_int_equal(orm_update_many_async(ex, item_view_model(), &v, 1, 0, NULL,
                                         NULL, NULL),
                   ORM_ENOTSUP);
}

/* Batches in key order over the same rows, 2 connections, 40 at once:
 * rows locked in one order cannot deadlock. */
typedef struct {
  item_t rows[10];
  orm_step_t step;
} batch_t;

static void test_concurrent_batches(void **state) {
  (void)state;
  reset_rows();
  enum { N = 40 };
  batch_t *b = calloc(N, sizeof *b);
  orm_step_t *steps = calloc(N, sizeof *steps);
  for (int i = 0; i < N; i++) {
    for (int k = 0; k < 10; k++)
      b[i].rows[k] = (item_t){.id = k + 1, .score = i};
    assert_int_equal(orm_update_many_async(orm_pool_exec(fx.pool), item_model(),
                                           b[i].rows, 10,
                                           ORM_FIELD_BIT(item, score),
                                           orm_fx_on_step, &steps[i], NULL),
                     0);
  }
  orm_fx_wait(&fx, steps, N);
  for (int i = 0; i < N; i++)
    assert_int_equal(steps[i].status, 0);
  /* Every row got one batch's value, the same for all. */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(DISTINCT score) FROM items"),
                   1);
  free(steps);
  free(b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_named_fields),
      cmocka_unit_test(test_every_field),
      cmocka_unit_test(test_missing_keys_update_nothing),
      cmocka_unit_test(test_all_or_nothing),
      cmocka_unit_test(test_validation_refuses_before_sending),
      cmocka_unit_test(test_in_a_transaction),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_concurrent_batches),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
