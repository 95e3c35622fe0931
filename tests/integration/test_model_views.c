/* SPDX-License-Identifier: MIT */
/* What generated models meet: read-only models over a view and a
 * materialized view (reads work, also ordered, paged by key, verified
 * against the live view; every write and every call by a key the model
 * does not have answers ORM_ENOTSUP before anything is sent), and columns
 * of domain types verified as their base types. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "model_views"

#define TOTAL_FIELDS(X)                                                        \
  X(owner, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                           \
  X(n, ORM_T_INT8, int64_t, ORM_F_NULLABLE)                                    \
  X(total, ORM_T_NUMERIC, const char *, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(total, TOTAL_FIELDS);
ORM_MODEL_DEFINE_VIEW(total, "totals", TOTAL_FIELDS);

/* The same over a materialized view, whose owner column is unique: flagged
 * as the key, it serves orm_find_async. */
#define MTOTAL_FIELDS(X)                                                       \
  X(owner, ORM_T_TEXT, const char *, ORM_F_PK)                                 \
  X(n, ORM_T_INT8, int64_t, ORM_F_NULLABLE)                                    \
  X(total, ORM_T_NUMERIC, const char *, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(mtotal, MTOTAL_FIELDS);
ORM_MODEL_DEFINE_VIEW(mtotal, "mtotals", MTOTAL_FIELDS);

static void take(orm_future_t *f, void *data) {
  orm_step_t *s = data;
  s->take = 1;
  orm_fx_on_step(f, s);
}

static void test_views(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, NULL);
  orm_fx_sql(&fx, "CREATE TABLE spend (id serial PRIMARY KEY, owner text NOT "
                  "NULL, amount numeric NOT NULL)");
  orm_fx_sql(&fx, "INSERT INTO spend (owner, amount) VALUES ('ada', 1.5), "
                  "('ada', 2), ('bob', 7), ('cy', 0.25)");
  orm_fx_sql(&fx, "CREATE VIEW totals AS SELECT owner, count(*) AS n, "
                  "sum(amount) AS total FROM spend GROUP BY owner");
  orm_fx_sql(&fx, "CREATE MATERIALIZED VIEW mtotals AS SELECT * FROM totals");
  assert_int_equal(orm_model_check(total_model()), 0);
  assert_int_equal(orm_model_check(mtotal_model()), 0);
  assert_true(total_model()->read_only);
  /* Not read-only and without a key: still a defect. */
  orm_model_t keyless = *total_model();
  keyless.read_only = false;
  assert_int_equal(orm_model_check(&keyless), ORM_EMODEL);

  /* Reads: all rows, ordered; counted; verified. */
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, total_model()), 0);
  assert_int_equal(orm_query_order_by(q, "owner", ORM_ASC), 0);
  orm_step_t s[4] = {{0}};
  assert_int_equal(orm_find_all_async(fx.pool, total_model(), q, take, &s[0], NULL), 0);
  assert_int_equal(orm_count_async(fx.pool, total_model(), NULL, orm_fx_on_step, &s[1], NULL), 0);
  assert_int_equal(orm_model_verify_async(fx.pool, total_model(), take, &s[2], NULL), 0);
  assert_int_equal(orm_model_verify_async(fx.pool, mtotal_model(), take, &s[3], NULL), 0);
  orm_query_free(q);
  orm_fx_wait(&fx, s, 4);
  /* Whether there is a row, without a query: on the view and the table
   * (this once sent the by-key statement without its key). */
  orm_step_t e[2] = {{0}};
  assert_int_equal(orm_exists_async(fx.pool, total_model(), NULL, orm_fx_on_step, &e[0], NULL), 0);
  assert_int_equal(orm_exists_async(fx.pool, mtotal_model(), NULL, orm_fx_on_step, &e[1], NULL), 0);
  orm_fx_wait(&fx, e, 2);
  for (int i = 0; i < 2; i++)
    if (e[i].status != 0)
      fail_msg("exists %d: %s %s", i, orm_err_name(e[i].status), e[i].message);
  for (int i = 0; i < 4; i++)
    if (s[i].status != 0)
      fail_msg("read %d: %s %s", i, orm_err_name(s[i].status), s[i].message);
  orm_rows_t *rows = s[0].taken;
  assert_int_equal(orm_rows_count(rows), 3);
  const total_t *first = orm_rows_at(rows, 0);
  assert_string_equal(first->owner, "ada");
  assert_int_equal(first->n, 2);
  assert_string_equal(first->total, "3.5");
  orm_rows_free(rows);
  orm_schema_report_t *rep = s[2].taken;
  assert_true(rep->table_exists);
  assert_int_equal(rep->nproblems, 0);
  orm_schema_report_free(rep);
  orm_schema_report_free(s[3].taken);

  /* Paged by key: a view without one must be ordered first. */
  assert_int_equal(orm_query_new(&q, total_model()), 0);
  assert_int_equal(orm_query_after(q, &ORM_TEXT("ada"), 1), ORM_ENOTSUP);
  orm_query_free(q);
  assert_int_equal(orm_query_new(&q, total_model()), 0);
  assert_int_equal(orm_query_order_by(q, "owner", ORM_ASC), 0);
  assert_int_equal(orm_query_after(q, &ORM_TEXT("ada"), 1), 0);
  orm_step_t p = {0};
  assert_int_equal(orm_find_all_async(fx.pool, total_model(), q, take, &p, NULL), 0);
  orm_query_free(q);
  orm_fx_wait(&fx, &p, 1);
  assert_int_equal(p.status, 0);
  assert_int_equal(orm_rows_count(p.taken), 2);
  orm_rows_free(p.taken);

  /* By key: the materialized view has one, the view none. */
  orm_step_t k = {0};
  assert_int_equal(orm_find_async(fx.pool, mtotal_model(), ORM_TEXT("bob"), take, &k, NULL), 0);
  orm_fx_wait(&fx, &k, 1);
  assert_int_equal(k.status, 0);
  const mtotal_t *bob = orm_rows_at(k.taken, 0);
  assert_int_equal(bob->n, 1);
  orm_rows_free(k.taken);
  assert_int_equal(orm_find_async(fx.pool, total_model(), ORM_TEXT("bob"), take, &k, NULL),
                   ORM_ENOTSUP);

  /* Writes: refused, nothing sent, nothing changed. */
  const orm_model_t *models[] = {total_model(), mtotal_model()};
  for (size_t i = 0; i < 2; i++) {
    mtotal_t row = {.owner = "dee", .n = 1, .total = "1"};
    assert_int_equal(orm_insert_async(fx.pool, models[i], &row, NULL, NULL, NULL), ORM_ENOTSUP);
    assert_int_equal(orm_insert_many_async(fx.pool, models[i], &row, 1, NULL, NULL, NULL),
                     ORM_ENOTSUP);
    assert_int_equal(orm_update_async(fx.pool, models[i], &row, 0, NULL, NULL, NULL),
                     ORM_ENOTSUP);
    assert_int_equal(orm_upsert_async(fx.pool, models[i], &row, NULL, NULL, NULL, NULL),
                     ORM_ENOTSUP);
    assert_int_equal(orm_delete_async(fx.pool, models[i], ORM_TEXT("ada"), NULL, NULL, NULL),
                     ORM_ENOTSUP);
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM spend"), 4);
  orm_fx_close(&fx);
}

/* Columns of a domain type verify as their base type, through a domain
 * over a domain and a domain over an enum (results carry the base type,
 * and uvorm gen maps domains so). */
#define DOMAINED_FIELDS(X)                                                     \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(email, ORM_T_TEXT, const char *, 0)                                        \
  X(work_email, ORM_T_TEXT, const char *, ORM_F_NULLABLE)                      \
  X(n, ORM_T_INT4, int32_t, 0)                                                 \
  X(mood, ORM_T_ENUM, const char *, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(domained, DOMAINED_FIELDS);
ORM_MODEL_DEFINE(domained, "domained", DOMAINED_FIELDS);

static void test_verify_domains(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, NULL);
  orm_fx_sql(&fx, "CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%')");
  orm_fx_sql(&fx, "CREATE DOMAIN work_email AS email");
  orm_fx_sql(&fx, "CREATE DOMAIN positive AS int4 NOT NULL CHECK (VALUE > 0)");
  orm_fx_sql(&fx, "CREATE TYPE feeling AS ENUM ('ok', 'great')");
  orm_fx_sql(&fx, "CREATE DOMAIN mood AS feeling");
  orm_fx_sql(&fx, "CREATE TABLE domained (id bigserial PRIMARY KEY, email email "
                  "NOT NULL, work_email work_email, n positive, mood mood)");
  orm_step_t s = {.take = 1};
  assert_int_equal(orm_model_verify_async(fx.pool, domained_model(), orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  orm_schema_report_t *rep = s.taken;
  if (rep->nproblems != 0)
    fail_msg("%s", rep->problems[0].message);
  orm_schema_report_free(rep);
  /* And a real mismatch is still one: the domain's base is text, not int. */
  orm_fx_sql(&fx, "ALTER TABLE domained ALTER COLUMN n TYPE email USING 'a@b'");
  orm_step_t t = {.take = 1};
  assert_int_equal(orm_model_verify_async(fx.pool, domained_model(), orm_fx_on_step, &t, NULL), 0);
  orm_fx_wait(&fx, &t, 1);
  rep = t.taken;
  assert_int_equal(rep->nproblems, 1);
  assert_int_equal(rep->problems[0].code, ORM_ETYPE);
  assert_non_null(strstr(rep->problems[0].message, "email"));
  orm_schema_report_free(rep);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_views),
      cmocka_unit_test(test_verify_domains),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
