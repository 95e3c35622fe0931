/* SPDX-License-Identifier: MIT */
/* Models on a pool against the real server: CRUD on the sample domain,
 * checked against what plain SQL sees; transactions; hostile strings; type
 * mismatches found at hydration and by orm_model_verify_async. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define SCHEMA "crud_test"

/* One for the whole group: the tests share the schema and the pool. */
static orm_fx_t fx;

/* A request whose value the test takes: rows, a result, a transaction or
 * a schema report, whichever the call gives. */
#define TAKE ((orm_step_t){.take = 1})

static void wait_for(orm_step_t *w) { orm_fx_wait(&fx, w, 1); }

static void expect_scalar(const char *text, const char *expected) {
  char *v = orm_fx_text(&fx, text);
  assert_string_equal(v, expected);
  free(v);
}

static int setup(void **state) {
  orm_fx_open(&fx, SCHEMA, 1, &(orm_pool_config_t){.max_conns = 3});
  return 0;
}

static int teardown(void **state) {
  /* test_reads_resent's pool of its own is not counted in fx.closed. */
  orm_fx_close(&fx);
  return 0;
}

static void test_user_crud(void **state) {
  /* insert: the generated id and created_at come back into the struct */
  user_t u = {.email = "ada@example.com", .name = "Ada"};
  orm_step_t w = TAKE;
  assert_int_equal(
      orm_insert_async(fx.pool, user_model(), &u, orm_fx_on_step, &w, NULL), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_true(u.id > 0);
  assert_true(u.created_at > 1700000000LL * 1000000);
  assert_false(ORM_IS_NULL(&u, user, created_at));
  char q[256];
  snprintf(q, sizeof q,
           "SELECT email || '|' || name || '|' || "
           "(extract(epoch from created_at) * 1000000)::bigint "
           "FROM " SCHEMA ".users WHERE id = %lld",
           (long long)u.id);
  char expect[256];
  snprintf(expect, sizeof expect, "ada@example.com|Ada|%lld",
           (long long)u.created_at);
  expect_scalar(q, expect);
  orm_rows_free(w.taken);

  /* find by key */
  w = TAKE;
  assert_int_equal(orm_find_async(fx.pool, user_model(), ORM_INT8(u.id),
                                  orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.taken), 1);
  user_t *got = orm_rows_at(w.taken, 0);
  assert_string_equal(got->email, "ada@example.com");
  assert_string_equal(got->name, "Ada");
  assert_int_equal(got->id, u.id);
  orm_rows_free(w.taken);

  /* update only the name, to NULL */
  user_t change = u;
  change.name = NULL;
  ORM_SET_NULL(&change, user, name);
  change.email = "ignored@example.com";
  w = TAKE;
  assert_int_equal(orm_update_async(fx.pool, user_model(), &change,
                                    ORM_FIELD_BIT(user, name), orm_fx_on_step,
                                    &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_result_affected(w.taken), 1);
  orm_result_free(w.taken);
  snprintf(q, sizeof q,
           "SELECT email || '|' || coalesce(name, '<null>') FROM " SCHEMA
           ".users WHERE id = %lld",
           (long long)u.id);
  expect_scalar(q, "ada@example.com|<null>");

  /* find_by a unique column: NULL comes back as NULL, not "" */
  w = TAKE;
  assert_int_equal(orm_find_by_async(fx.pool, user_model(), "email",
                                     ORM_TEXT("ada@example.com"),
                                     orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(orm_rows_count(w.taken), 1);
  got = orm_rows_at(w.taken, 0);
  assert_true(ORM_IS_NULL(got, user, name));
  assert_null(got->name);
  orm_rows_free(w.taken);

  /* upsert on the unique email: updates the existing row */
  user_t again = {.email = "ada@example.com", .name = "Ada L."};
  w = TAKE;
  assert_int_equal(orm_upsert_async(fx.pool, user_model(), &again, "email",
                                    orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(again.id, u.id); /* the same row */
  orm_rows_free(w.taken);
  expect_scalar("SELECT count(*) FROM " SCHEMA ".users", "1");
  snprintf(q, sizeof q, "SELECT name FROM " SCHEMA ".users WHERE id = %lld",
           (long long)u.id);
  expect_scalar(q, "Ada L.");

  /* delete, then find says not found */
  w = TAKE;
  assert_int_equal(orm_delete_async(fx.pool, user_model(), ORM_INT8(u.id),
                                    orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(orm_result_affected(w.taken), 1);
  orm_result_free(w.taken);
  w = TAKE;
  assert_int_equal(orm_find_async(fx.pool, user_model(), ORM_INT8(u.id),
                                  orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, ORM_ENOTFOUND);
  assert_non_null(strstr(w.message, "users"));
}

static void test_insert_many_and_query(void **state) {
  enum { N = 200 };
  user_t *users = calloc(N, sizeof *users);
  char (*emails)[32] = calloc(N, 32);
  for (int i = 0; i < N; i++) {
    snprintf(emails[i], 32, "u%03d@many.test", i);
    users[i].email = emails[i];
    users[i].name = i % 2 ? "odd" : "even";
  }
  orm_step_t w = TAKE;
  assert_int_equal(orm_insert_many_async(fx.pool, user_model(), users, N,
                                         orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.taken), N);
  for (int i = 1; i < N; i++)
    assert_true(users[i].id > users[i - 1].id); /* written back, in order */
  orm_rows_free(w.taken);
  expect_scalar("SELECT count(*) FROM " SCHEMA ".users WHERE email LIKE "
                "'%@many.test'",
                "200");

  /* a builder query: odd names, ordered by email descending, 5 of them */
  orm_query_t *qb;
  assert_int_equal(orm_query_new(&qb, user_model()), 0);
  assert_int_equal(orm_query_where(qb, "name", ORM_OP_EQ, ORM_TEXT("odd")), 0);
  assert_int_equal(orm_query_where(qb, "email", ORM_OP_LIKE, ORM_TEXT("u1%")), 0);
  assert_int_equal(orm_query_order_by(qb, "email", ORM_DESC), 0);
  assert_int_equal(orm_query_limit(qb, 5), 0);
  assert_int_equal(orm_query_where(qb, "no_such_column", ORM_OP_EQ,
                                   ORM_INT4(1)),
                   ORM_ENOCOLUMN);
  /* The error sticks: the query never runs. */
  w = TAKE;
  assert_int_equal(
      orm_find_all_async(fx.pool, NULL, qb, orm_fx_on_step, &w, NULL),
      ORM_ENOCOLUMN);
  orm_query_free(qb);

  assert_int_equal(orm_query_new(&qb, user_model()), 0);
  orm_query_where(qb, "name", ORM_OP_EQ, ORM_TEXT("odd"));
  orm_query_where(qb, "email", ORM_OP_LIKE, ORM_TEXT("u1%"));
  orm_query_order_by(qb, "email", ORM_DESC);
  orm_query_limit(qb, 5);
  assert_int_equal(
      orm_find_all_async(fx.pool, NULL, qb, orm_fx_on_step, &w, NULL), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.taken), 5);
  const user_t *first = orm_rows_at(w.taken, 0);
  assert_string_equal(first->email, "u199@many.test");
  assert_string_equal(((user_t *)orm_rows_at(w.taken, 4))->email,
                      "u191@many.test");
  orm_rows_free(w.taken);

  /* count and exists over the same query, without its limit */
  orm_query_free(qb);
  assert_int_equal(orm_query_new(&qb, user_model()), 0);
  orm_query_where(qb, "name", ORM_OP_EQ, ORM_TEXT("odd"));
  w = TAKE;
  assert_int_equal(orm_count_async(fx.pool, NULL, qb, orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  int64_t n = 0;
  assert_int_equal(orm_result_int(w.taken, 0, 0, &n), 0);
  assert_int_equal(n, N / 2);
  orm_result_free(w.taken);
  orm_query_free(qb);
  free(users);
  free(emails);
}

static void test_agents_and_hostile_strings(void **state) {
  user_t owner = {.email = "owner@agents.test", .name = "'; DROP TABLE users; --"};
  orm_step_t w = TAKE;
  assert_int_equal(
      orm_insert_async(fx.pool, user_model(), &owner, orm_fx_on_step, &w, NULL),
      0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  orm_rows_free(w.taken);
  static char t0[] = "a\"b", t1[] = "c'd", t3[] = "ünïcødé ✓";
  char *tags[] = {t0, t1, NULL, t3};
  agent_t a = {.owner_id = owner.id,
               .name = "x\\y 'z' \"w\"",
               .model = "gpt-x",
               .status = "active",
               .temperature = 0.25,
               .config = "{\"k\": [1, 2, \"'\"]}",
               .tags = {tags, 4}};
  w = TAKE;
  assert_int_equal(
      orm_insert_async(fx.pool, agent_model(), &a, orm_fx_on_step, &w, NULL),
      0);
  wait_for(&w);
  if (w.status != 0)
    fail_msg("insert agent: %s", w.message);
  orm_rows_free(w.taken);
  /* The generated uuid came back; find the agent by it. */
  orm_param_t key = ORM_BINARY(2950, a.id.bytes, 16);
  w = TAKE;
  assert_int_equal(
      orm_find_async(fx.pool, agent_model(), key, orm_fx_on_step, &w, NULL), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  const agent_t *got = orm_rows_at(w.taken, 0);
  assert_string_equal(got->name, "x\\y 'z' \"w\"");
  assert_string_equal(got->status, "active");
  assert_true(got->temperature == 0.25);
  assert_int_equal(got->tags.len, 4);
  assert_string_equal(got->tags.items[0], "a\"b");
  assert_string_equal(got->tags.items[1], "c'd");
  assert_null(got->tags.items[2]);
  assert_string_equal(got->tags.items[3], "ünïcødé ✓");
  assert_non_null(strstr(got->config, "\"k\""));
  orm_rows_free(w.taken);
  /* The hostile name is stored verbatim and the tables are intact. */
  expect_scalar("SELECT name FROM " SCHEMA ".users WHERE email = "
                "'owner@agents.test'",
                "'; DROP TABLE users; --");
  expect_scalar("SELECT count(*) > 0 FROM " SCHEMA ".users", "t");
}

static void test_transactions(void **state) {
  orm_step_t w = TAKE;
  assert_int_equal(orm_tx_begin_async(fx.pool, orm_fx_on_step, &w, NULL), 0);
  wait_for(&w);
  orm_tx_t *tx = w.taken; /* BEGIN's value is the transaction */
  user_t u = {.email = "tx@example.com", .name = "in tx"};
  w = TAKE;
  assert_int_equal(
      orm_insert_async(tx, user_model(), &u, orm_fx_on_step, &w, NULL), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  orm_rows_free(w.taken);
  /* Not visible outside before commit. */
  expect_scalar("SELECT count(*) FROM " SCHEMA ".users WHERE email = "
                "'tx@example.com'",
                "0");
  /* Visible inside, and lockable. */
  orm_query_t *q;
  orm_query_new(&q, user_model());
  orm_query_where(q, "email", ORM_OP_EQ, ORM_TEXT("tx@example.com"));
  orm_query_for_update(q);
  w = TAKE;
  assert_int_equal(orm_find_all_async(tx, NULL, q, orm_fx_on_step, &w, NULL),
                   0);
  orm_query_free(q);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.taken), 1);
  orm_rows_free(w.taken);
  w = TAKE;
  assert_int_equal(orm_tx_rollback_async(tx, orm_fx_on_step, &w, NULL), 0);
  wait_for(&w);
  expect_scalar("SELECT count(*) FROM " SCHEMA ".users WHERE email = "
                "'tx@example.com'",
                "0");
}

/* The users table as a wrong descriptor: email declared as an integer, and
 * a column that does not exist. */
#define BAD_USER_FIELDS(X)                                                     \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(email, ORM_T_INT4, int32_t, 0)                                             \
  X(nickname, ORM_T_TEXT, char *, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(bad_user, BAD_USER_FIELDS);
ORM_MODEL_DEFINE(bad_user, "users", BAD_USER_FIELDS);

/* Only the type is wrong: the SELECT runs, hydration refuses. */
#define TYPO_USER_FIELDS(X)                                                    \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(email, ORM_T_INT4, int32_t, 0)
ORM_MODEL_DECLARE(typo_user, TYPO_USER_FIELDS);
ORM_MODEL_DEFINE(typo_user, "users", TYPO_USER_FIELDS);

static void test_type_mismatch(void **state) {
  orm_step_t w = TAKE;
  orm_future_t *f;
  assert_int_equal(
      orm_model_verify_async(fx.pool, bad_user_model(), orm_fx_on_step, &w, &f),
      0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  orm_schema_report_t *r = w.taken;
  assert_true(r->table_exists);
  assert_int_equal(r->nproblems, 2);
  assert_string_equal(r->problems[0].column, "email");
  assert_int_equal(r->problems[0].code, ORM_ETYPE);
  assert_non_null(strstr(r->problems[0].message, "\"email\""));
  assert_non_null(strstr(r->problems[0].message, "text"));
  assert_string_equal(r->problems[1].column, "nickname");
  assert_int_equal(r->problems[1].code, ORM_ENOCOLUMN);
  orm_schema_report_free(r);
  orm_future_release(f);

  /* The good model fits. */
  w = TAKE;
  assert_int_equal(
      orm_model_verify_async(fx.pool, user_model(), orm_fx_on_step, &w, NULL),
      0);
  wait_for(&w);
  r = w.taken;
  assert_int_equal(r->nproblems, 0);
  orm_schema_report_free(r);

  /* Reading through the bad model fails at hydration, naming the column. */
  orm_fx_sql(&fx, "INSERT INTO " SCHEMA
                  ".users (email) VALUES ('mismatch@example.com')");
  w = TAKE;
  assert_int_equal(orm_find_all_async(fx.pool, typo_user_model(), NULL,
                                      orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, ORM_ETYPE);
  assert_non_null(strstr(w.message, "\"email\""));
  /* A column the table lacks fails on the server, naming it too. */
  w = TAKE;
  assert_int_equal(orm_find_all_async(fx.pool, bad_user_model(), NULL,
                                      orm_fx_on_step, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, ORM_ESERVER);
  assert_non_null(strstr(w.message, "nickname"));
}

static void count_close(orm_pool_t *p, void *data) { (*(int *)data)++; }

/* Reads that share a pipeline segment with a failing statement are sent
 * again; their answers from the first round (hydrated as they arrived)
 * must not leak into what the caller sees, and a miss keeps its own
 * message. One connection, so that all of them share one segment. */
static void test_reads_resent(void **state) {
  orm_fx_sql(&fx,
             "INSERT INTO " SCHEMA ".users (email, name) VALUES "
             "('resent1@example.com', 'R1'), ('resent2@example.com', 'R2')");
  char *id1 = orm_fx_text(&fx, "SELECT id FROM " SCHEMA
                               ".users WHERE email = 'resent1@example.com'");
  char *id2 = orm_fx_text(&fx, "SELECT id FROM " SCHEMA
                               ".users WHERE email = 'resent2@example.com'");
  /* A second pool on the fixture's loop, with its own close count. */
  orm_pool_t *one;
  int one_closed = 0;
  char *dsn = orm_test_dsn_with("options", "-c search_path=" SCHEMA, NULL);
  assert_int_equal(orm_pool_open(&one, &fx.loop,
                                 &(orm_pool_config_t){.conninfo = dsn,
                                                      .max_conns = 1,
                                                      .data = &one_closed}),
                   0);
  free(dsn);
  orm_step_t w[5] = {TAKE, TAKE, TAKE, TAKE, TAKE};
  orm_future_t *f[5];
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(atoll(id1)),
                                  orm_fx_on_step, &w[0], &f[0]),
                   0);
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(-1),
                                  orm_fx_on_step, &w[1], &f[1]),
                   0);
  assert_int_equal(
      orm_query_async(one, "SELECT 1/0", NULL, 0, orm_fx_on_step, &w[2], &f[2]),
      0);
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(atoll(id2)),
                                  orm_fx_on_step, &w[3], &f[3]),
                   0);
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(-2),
                                  orm_fx_on_step, &w[4], &f[4]),
                   0);
  orm_fx_wait(&fx, w, 5);
  const user_t *u1 = orm_rows_at(w[0].taken, 0);
  const user_t *u2 = orm_rows_at(w[3].taken, 0);
  assert_non_null(u1);
  assert_non_null(u2);
  assert_string_equal(u1->email, "resent1@example.com");
  assert_string_equal(u2->email, "resent2@example.com");
  assert_int_equal(w[1].status, ORM_ENOTFOUND);
  assert_int_equal(w[4].status, ORM_ENOTFOUND);
  assert_non_null(strstr(w[1].message, "has that key"));
  assert_non_null(orm_future_error(f[1]));
  assert_string_equal(orm_future_error(f[1])->sqlstate, "");
  assert_null(orm_future_value(f[1]));
  assert_int_equal(w[2].status, ORM_ESERVER);
  assert_string_equal(orm_future_error(f[2])->sqlstate, "22012");
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(one, &st), 0);
  assert_true(st.resends >= 4);
  for (int i = 0; i < 5; i++)
    orm_future_release(f[i]);
  orm_rows_free(w[0].taken);
  orm_rows_free(w[3].taken);
  free(id1);
  free(id2);
  assert_int_equal(orm_pool_close(one, count_close), 0);
  while (one_closed == 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
  orm_fx_sql(&fx, "DELETE FROM " SCHEMA ".users WHERE email LIKE 'resent%'");
}

static void test_bad_calls(void **state) {
  user_t u = {0};
  assert_int_equal((orm_find_async)(NULL, user_model(), ORM_INT8(1), NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_find_async(fx.pool, NULL, ORM_INT8(1), NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(
      orm_insert_async(fx.pool, user_model(), NULL, NULL, NULL, NULL),
      ORM_EINVAL);
  assert_int_equal(orm_find_by_async(fx.pool, user_model(), "nope", ORM_INT8(1),
                                     NULL, NULL, NULL),
                   ORM_ENOCOLUMN);
  assert_int_equal(
      orm_upsert_async(fx.pool, user_model(), &u, "name", NULL, NULL, NULL),
      ORM_EINVAL);
  orm_model_t broken = *user_model();
  broken.nfields = 0;
  assert_int_equal(
      orm_find_async(fx.pool, &broken, ORM_INT8(1), NULL, NULL, NULL),
      ORM_EMODEL);
  /* A value that does not fit its column is refused before any SQL. */
  assert_int_equal(
      orm_find_async(fx.pool, user_model(), ORM_BOOL(true), NULL, NULL, NULL),
      ORM_ETYPE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_user_crud),
      cmocka_unit_test(test_insert_many_and_query),
      cmocka_unit_test(test_agents_and_hostile_strings),
      cmocka_unit_test(test_transactions),
      cmocka_unit_test(test_type_mismatch),
      cmocka_unit_test(test_reads_resent),
      cmocka_unit_test(test_bad_calls),
  };
  return orm_run_group_tests(tests, setup, teardown);
}
