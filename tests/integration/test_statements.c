/* SPDX-License-Identifier: MIT */
/* Prepared statements against a changing server: a column type changed
 * under a cached plan, statements dropped by DEALLOCATE ALL / DISCARD ALL
 * (as a proxy does), a Parse never sent twice after a neighbour's failure,
 * and parameter counts checked. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "stmt_test"

#define ITEM_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(item, ITEM_FIELDS);
ORM_MODEL_DEFINE(item, "items", ITEM_FIELDS);

static void make_items(orm_fx_t *fx) {
  orm_fx_sql(fx, "CREATE TABLE items (id int8 PRIMARY KEY, name text NOT NULL);"
                 "INSERT INTO items SELECT g, 'item ' || g "
                 "FROM generate_series(1, 100) g");
}

/* Issues `n` finds of item 1..n at once and waits for all of them. Returns
 * how many failed; the first failure's SQLSTATE goes to `state`. */
static int find_burst(orm_fx_t *fx, int n, char state[6]) {
  orm_step_t *s = calloc((size_t)n, sizeof *s);
  for (int i = 0; i < n; i++) {
    s[i].take = 1;
    assert_int_equal(orm_find_async(fx->pool, item_model(),
                                    ORM_INT8(i % 100 + 1), orm_fx_on_step,
                                    &s[i], NULL),
                     0);
  }
  orm_fx_wait(fx, s, (size_t)n);
  int failed = 0;
  for (int i = 0; i < n; i++) {
    if (s[i].status != 0) {
      if (failed++ == 0 && state != NULL)
        memcpy(state, s[i].sqlstate, 6);
      continue;
    }
    item_t *it = orm_rows_at(s[i].taken, 0);
    assert_int_equal(it->id, i % 100 + 1);
    char want[32];
    snprintf(want, sizeof want, "item %d", i % 100 + 1);
    assert_string_equal(it->name, want);
    orm_rows_free(s[i].taken);
  }
  free(s);
  return failed;
}

static int raw_burst(orm_fx_t *fx, int n) {
  orm_step_t *s = calloc((size_t)n, sizeof *s);
  for (int i = 0; i < n; i++) {
    orm_param_t p = ORM_INT8(i % 100 + 1);
    assert_int_equal(orm_query_async(fx->pool,
                                     "SELECT id, name FROM items WHERE id = $1",
                                     &p, 1, orm_fx_on_step, &s[i], NULL),
                     0);
  }
  orm_fx_wait(fx, s, (size_t)n);
  int failed = 0;
  for (int i = 0; i < n; i++)
    failed += s[i].status != 0;
  free(s);
  return failed;
}

/* A column's type changes under statements every connection has
 * prepared: the server refuses the cached plans (0A000 "cached plan must
 * not change result type"). Each is prepared afresh and the request runs
 * again: no request fails, now or later. */
static void test_column_type_change(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 4, .max_conns = 4});
  make_items(&fx);
  assert_int_equal(find_burst(&fx, 256, NULL), 0); /* prepared everywhere */
  assert_int_equal(raw_burst(&fx, 256), 0);
  orm_fx_sql(&fx, "ALTER TABLE items ALTER COLUMN name TYPE varchar(200)");
  char st[6] = "";
  int failed = find_burst(&fx, 64, st);
  if (failed != 0)
    fail_msg("%d of 64 finds failed after the type change (%s)", failed, st);
  assert_int_equal(raw_burst(&fx, 64), 0);
  for (int round = 0; round < 5; round++)
    assert_int_equal(find_burst(&fx, 40, NULL), 0);
  /* And back, and once more inside transactions: at most the first
   * transaction to meet the change fails, never a lasting failure. */
  orm_fx_sql(&fx, "ALTER TABLE items ALTER COLUMN name TYPE text");
  int tx_failures = 0;
  for (int round = 0; round < 4; round++) {
    orm_tx_t *tx;
    assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
    orm_step_t s[2] = {{.take = 1}, {0}};
    assert_int_equal(orm_find_async(tx, item_model(), ORM_INT8(7),
                                       orm_fx_on_step, &s[0], NULL),
                     0);
    assert_int_equal(orm_tx_rollback_async(tx, orm_fx_on_step, &s[1], NULL), 0);
    orm_fx_wait(&fx, s, 2);
    assert_int_equal(s[1].status, 0);
    if (s[0].status != 0) {
      assert_string_equal(s[0].sqlstate, "0A000");
      tx_failures++;
    } else {
      orm_rows_free(s[0].taken);
    }
  }
  assert_true(tx_failures <= 1);
  assert_int_equal(find_burst(&fx, 64, NULL), 0);
  orm_fx_close(&fx);
}

/* A proxy (or a user) runs DEALLOCATE ALL or DISCARD ALL on a connection:
 * the pool's named statements are gone there. They are prepared again. */
static void forget_statements(const char *sql) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  make_items(&fx);
  for (int round = 0; round < 3; round++) {
    assert_int_equal(find_burst(&fx, 64, NULL), 0);
    assert_int_equal(raw_burst(&fx, 16), 0);
    orm_step_t s = {0};
    assert_int_equal(
        orm_query_async(fx.pool, sql, NULL, 0, orm_fx_on_step, &s, NULL), 0);
    orm_fx_wait(&fx, &s, 1);
    if (s.status != 0)
      fail_msg("%s: %s %s", sql, orm_err_name(s.status), s.message);
    char st[6] = "";
    int failed = find_burst(&fx, 64, st);
    if (failed != 0)
      fail_msg("after %s: %d of 64 finds failed (%s)", sql, failed, st);
    assert_int_equal(raw_burst(&fx, 16), 0);
  }
  orm_fx_close(&fx);
}

static void test_deallocate_all(void **state) {
  forget_statements("DEALLOCATE ALL");
}

static void test_discard_all(void **state) { forget_statements("DISCARD ALL"); }

/* One connection; in one loop turn a statement that fails at Bind
 * (invalid UTF-8), a read, then inserts through a model (a write each,
 * so segments of their own). The failure skips the Parses queued behind
 * it; each statement must be prepared exactly once again, never twice
 * (42P05 "prepared statement already exists"). */
static void test_parse_once_after_failure(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_fx_sql(&fx, "CREATE TABLE items (id int8 PRIMARY KEY, name text)");
  int64_t next_id = 1;
  int inserted = 0;
  for (int round = 0; round < 20; round++) {
    orm_step_t s[8] = {{0}};
    item_t rows[6];
    orm_param_t bad = ORM_TEXT_N("\xff\xfe", 2);
    assert_int_equal(orm_query_async(fx.pool, "SELECT $1::text", &bad, 1,
                                     orm_fx_on_step, &s[0], NULL),
                     0);
    orm_param_t good = ORM_TEXT("x");
    assert_int_equal(orm_query_async(fx.pool, "SELECT $1::text || 'y'", &good,
                                     1, orm_fx_on_step, &s[1], NULL),
                     0);
    for (int i = 0; i < 6; i++) {
      rows[i] = (item_t){.id = next_id++, .name = "n"};
      assert_int_equal(orm_insert_async(fx.pool, item_model(), &rows[i],
                                        orm_fx_on_step, &s[2 + i], NULL),
                       0);
    }
    orm_fx_wait(&fx, s, 8);
    assert_int_equal(s[0].status, ORM_ESERVER);
    assert_string_equal(s[0].sqlstate, "22021");
    assert_int_equal(s[1].status, 0);
    for (int i = 2; i < 8; i++) {
      if (s[i].status != 0)
        fail_msg("round %d, insert %d: %s %s %s", round, i - 1,
                 orm_err_name(s[i].status), s[i].sqlstate, s[i].message);
      inserted++;
    }
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items"), inserted);
  orm_fx_close(&fx);
}

/* A parameter count that does not match the statement's placeholders is
 * refused by the call, too many as too few, named or not, in a transaction
 * too; placeholders inside literals, names, dollar quotes and comments do
 * not count. */
static void parameter_count(int no_prepare) {
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0, &(orm_pool_config_t){.no_prepare = no_prepare});
  orm_param_t two[2] = {ORM_INT8(1), ORM_INT8(2)};
  orm_pool_t *p = fx.pool;
  const orm_future_cb cb = orm_fx_on_step;
  orm_step_t never = {0};
  assert_int_equal(orm_query_async(p, "SELECT $1::int8", two, 2, cb, &never,
                                   NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_query_async(p, "SELECT 1", two, 1, cb, &never, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_query_async(p, "SELECT 1 -- $1", two, 1, cb, &never,
                                   NULL),
                   ORM_EINVAL);
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(p, &tx), 0);
  assert_int_equal(orm_query_async(tx, "SELECT $1::int8", two, 2, cb,
                                      &never, NULL),
                   ORM_EINVAL);
  /* Too few: the server says so (08P01). */
  orm_step_t few = {0};
  assert_int_equal(orm_query_async(p, "SELECT $1::int8 + $2", two, 1, cb,
                                   &few, NULL),
                   0);
  orm_fx_wait(&fx, &few, 1);
  assert_int_equal(few.status, ORM_ESERVER);
  assert_string_equal(few.sqlstate, "08P01");
  /* $N that are not the statement's own: a function body, PREPARE, and
   * a non-ASCII identifier holding "$1". */
  orm_step_t own[4] = {{0}};
  assert_int_equal(orm_query_async(p, "CREATE OR REPLACE FUNCTION pg_temp."
                                      "add1(int) RETURNS int LANGUAGE sql "
                                      "RETURN $1 + 1",
                                   NULL, 0, cb, &own[0], NULL),
                   0);
  assert_int_equal(orm_query_async(p, "PREPARE mine(int) AS SELECT $1", NULL,
                                   0, cb, &own[1], NULL),
                   0);
  assert_int_equal(orm_query_async(p, "DEALLOCATE mine", NULL, 0, cb, &own[2],
                                   NULL),
                   0);
  own[3].result = 1;
  assert_int_equal(orm_query_async(p, "SELECT 7 AS caf\xc3\xa9$1", NULL, 0,
                                   cb, &own[3], NULL),
                   0);
  orm_fx_wait(&fx, own, 4);
  for (int i = 0; i < 4; i++)
    if (own[i].status != 0)
      fail_msg("own %d: %s %s", i, orm_err_name(own[i].status),
               own[i].message);
  assert_int_equal(own[3].value, 7);
  orm_step_t s[4] = {{.result = 1}, {.result = 1}, {.result = 1}, {0}};
  assert_int_equal(orm_query_async(p, "SELECT $1::int8 + $2", two, 2, cb,
                                   &s[0], NULL),
                   0);
  assert_int_equal(
      orm_query_async(p,
                      "SELECT length('$3' || E'\\'$4' || $q$ $6 $q$ || "
                      "$$ $7 $$) /* $8 /* $9 */ */ + $1 AS \"a$5\"",
                      two, 1, cb, &s[1], NULL),
      0);
  assert_int_equal(orm_query_async(tx, "SELECT $2::int8", two, 2, cb,
                                      &s[2], NULL),
                   0);
  assert_int_equal(orm_tx_rollback_async(tx, cb, &s[3], NULL), 0);
  orm_fx_wait(&fx, s, 4);
  assert_int_equal(never.done, 0);
  for (int i = 0; i < 4; i++)
    if (s[i].status != 0)
      fail_msg("%d: %s %s", i, orm_err_name(s[i].status), s[i].message);
  assert_int_equal(s[0].value, 3);
  assert_int_equal(s[1].value, 14);
  assert_int_equal(s[2].value, 2);
  orm_fx_close(&fx);
}

static void test_parameter_count(void **state) { parameter_count(0); }
static void test_parameter_count_unnamed(void **state) { parameter_count(1); }

/* A model that declares `v` int8 for a text column: an insert runs (the
 * server casts the int8 parameter to text), but its RETURNING row cannot
 * be read into the struct. The error says the row
 * was written, so that nobody retries it blindly; a read that fails the
 * same way says nothing was applied. */
#define WRONG_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(v, ORM_T_INT8, int64_t, 0)
ORM_MODEL_DECLARE(wrong, WRONG_FIELDS);
ORM_MODEL_DEFINE(wrong, "wrongs", WRONG_FIELDS);

static void test_write_whose_answer_does_not_fit(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, NULL);
  orm_fx_sql(&fx, "CREATE TABLE wrongs (id bigserial PRIMARY KEY, v text)");
  wrong_t row = {.v = 42};
  orm_step_t w = {0}, r = {0};
  assert_int_equal(
      orm_insert_async(fx.pool, wrong_model(), &row, orm_fx_on_step, &w, NULL),
      0);
  orm_fx_wait(&fx, &w, 1);
  assert_int_equal(w.status, ORM_ETYPE);
  assert_int_equal(w.applied, 1);
  assert_non_null(strstr(w.message, "took effect"));
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM wrongs"), 1);
  assert_int_equal(orm_find_async(fx.pool, wrong_model(), ORM_INT8(1),
                                  orm_fx_on_step, &r, NULL),
                   0);
  orm_fx_wait(&fx, &r, 1);
  assert_int_equal(r.status, ORM_ETYPE);
  assert_int_equal(r.applied, 0);
  orm_fx_close(&fx);
}

/* An empty value is a value, not SQL NULL: also as the first and only
 * value of a request, whose buffer then holds no bytes at all. */
#define BLOB_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(body, ORM_T_BYTEA, orm_bytes_t, 0)
ORM_MODEL_DECLARE(blob, BLOB_FIELDS);
ORM_MODEL_DEFINE(blob, "blobs", BLOB_FIELDS);

static void test_empty_values_are_not_null(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, NULL);
  orm_fx_sql(&fx, "CREATE TABLE blobs (id bigserial PRIMARY KEY, "
                  "body bytea NOT NULL)");
  static uint8_t nothing[1];
  blob_t row = {.body = {.data = nothing, .len = 0}};
  orm_step_t s[3] = {{0}, {.result = 1}, {.result = 1}};
  assert_int_equal(
      orm_insert_async(fx.pool, blob_model(), &row, orm_fx_on_step, &s[0],
                       NULL),
      0);
  orm_param_t empty = ORM_TEXT("");
  assert_int_equal(orm_query_async(fx.pool,
                                   "SELECT ($1::text IS NULL)::int", &empty,
                                   1, orm_fx_on_step, &s[1], NULL),
                   0);
  orm_param_t none = ORM_BYTEA("", 0);
  assert_int_equal(orm_query_async(fx.pool, "SELECT length($1::bytea)", &none,
                                   1, orm_fx_on_step, &s[2], NULL),
                   0);
  orm_fx_wait(&fx, s, 3);
  for (int i = 0; i < 3; i++)
    if (s[i].status != 0)
      fail_msg("%d: %s %s", i, orm_err_name(s[i].status), s[i].message);
  assert_int_equal(s[1].value, 0);
  assert_int_equal(s[2].value, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM blobs "
                                   "WHERE body = ''::bytea"),
                   1);
  orm_fx_close(&fx);
}

/* The statement's own 0A000 or 26000 is the caller's error: not mistaken
 * for a stale prepared statement, not run again, and the connection's
 * statements stay usable. */
static void test_own_errors_are_not_stale_statements(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_fx_sql(&fx, "CREATE SEQUENCE calls;"
                  "CREATE FUNCTION unsupported() RETURNS int LANGUAGE plpgsql "
                  "AS $$ BEGIN PERFORM nextval('calls'); RAISE EXCEPTION "
                  "'no' USING ERRCODE = 'feature_not_supported'; END $$");
  for (int i = 0; i < 5; i++) {
    orm_step_t s[3] = {{0}};
    assert_int_equal(orm_query_async(fx.pool, "SELECT unsupported()", NULL, 0,
                                     orm_fx_on_step, &s[0], NULL),
                     0);
    assert_int_equal(orm_query_async(fx.pool, "DEALLOCATE nosuch", NULL, 0,
                                     orm_fx_on_step, &s[1], NULL),
                     0);
    s[2].result = 1;
    assert_int_equal(orm_query_async(fx.pool,
                                     "SELECT count(*)::int FROM "
                                     "pg_prepared_statements",
                                     NULL, 0, orm_fx_on_step, &s[2], NULL),
                     0);
    orm_fx_wait(&fx, s, 3);
    assert_int_equal(s[0].status, ORM_ESERVER);
    assert_string_equal(s[0].sqlstate, "0A000");
    assert_int_equal(s[1].status, ORM_ESERVER);
    assert_string_equal(s[1].sqlstate, "26000"); /* never 42P05 */
    assert_int_equal(s[2].status, 0);
    assert_int_equal(s[2].value, 3); /* the three, once each */
  }
  /* Each ran once per call. */
  assert_int_equal(orm_fx_int(&fx, "SELECT last_value FROM calls"), 5);
  orm_fx_close(&fx);
}

/* A failure in a segment sends its neighbours again, in the order they
 * first ran: a read behind a write still sees the write. */
static void test_resend_keeps_order(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 1,
                                   .pipeline_depth = 256});
  orm_fx_sql(&fx, "CREATE TABLE seen (id int)");
  for (int round = 0; round < 10; round++) {
    orm_step_t s[4] = {{0}, {.result = 1}, {0}, {.result = 1}};
    orm_param_t id = ORM_INT4(round);
    assert_int_equal(orm_query_async(fx.pool, "INSERT INTO seen VALUES ($1)",
                                     &id, 1, orm_fx_on_step, &s[0], NULL),
                     0);
    assert_int_equal(orm_query_async(fx.pool,
                                     "SELECT count(*)::int FROM seen "
                                     "WHERE id = $1",
                                     &id, 1, orm_fx_on_step, &s[1], NULL),
                     0);
    assert_int_equal(orm_query_async(fx.pool, "SELECT 1/0", NULL, 0,
                                     orm_fx_on_step, &s[2], NULL),
                     0);
    assert_int_equal(orm_query_async(fx.pool,
                                     "SELECT count(*)::int FROM seen "
                                     "WHERE id = $1",
                                     &id, 1, orm_fx_on_step, &s[3], NULL),
                     0);
    orm_fx_wait(&fx, s, 4);
    assert_int_equal(s[0].status, 0);
    assert_int_equal(s[2].status, ORM_ESERVER);
    assert_int_equal(s[1].value, 1);
    assert_int_equal(s[3].value, 1);
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM seen"), 10);
  orm_fx_close(&fx);
}

/* A result kept past its pool: asking it for a column out of range gives
 * NULL / 0, and libpq is never asked (it would report through the freed
 * connection's notice hooks). */
static void test_result_outlives_pool(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0, NULL);
  orm_step_t s = {.take = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 1 AS one", NULL, 0,
                                   orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  orm_fx_close(&fx);
  orm_result_t *r = s.taken;
  assert_string_equal(orm_result_name(r, 0), "one");
  assert_null(orm_result_name(r, 3));
  assert_null(orm_result_name(r, -1));
  assert_int_equal(orm_result_type(r, 3), 0);
  int64_t v = 0;
  assert_int_equal(orm_result_int(r, 5, 0, &v), ORM_ERANGE);
  orm_result_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_column_type_change),
      cmocka_unit_test(test_deallocate_all),
      cmocka_unit_test(test_discard_all),
      cmocka_unit_test(test_parse_once_after_failure),
      cmocka_unit_test(test_parameter_count),
      cmocka_unit_test(test_parameter_count_unnamed),
      cmocka_unit_test(test_write_whose_answer_does_not_fit),
      cmocka_unit_test(test_empty_values_are_not_null),
      cmocka_unit_test(test_own_errors_are_not_stale_statements),
      cmocka_unit_test(test_resend_keeps_order),
      cmocka_unit_test(test_result_outlives_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
