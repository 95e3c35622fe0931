/* Models on a pool against the real server: CRUD on the sample domain,
 * checked against what plain SQL sees; transactions; hostile strings; type
 * mismatches found at hydration and by orm_model_verify_async. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <uvorm.h>

#include "domain.h"

#define SCHEMA "crud_test"

static uv_loop_t loop;
static orm_pool_t *pool;
static PGconn *admin;
static int closed;

typedef struct {
  int done;
  int status;
  orm_rows_t *rows;
  orm_result_t *result;
  char message[256];
  orm_tx_t *tx;
} wait_t;

static void on_done(orm_future_t *f, void *data) {
  wait_t *w = data;
  w->done = 1;
  w->status = orm_future_status(f);
  if (w->status != 0) {
    snprintf(w->message, sizeof w->message, "%s", orm_future_error(f)->message);
    return;
  }
  void *v = orm_future_take(f);
  if (orm_future_row(f) != NULL || v == NULL)
    return;
  /* Rows or a result: the test asked for one or the other. */
  w->rows = v;
}

static void wait_for(wait_t *w) {
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + 15000;
  while (!w->done) {
    uv_run(&loop, UV_RUN_ONCE);
    if (uv_now(&loop) > end)
      fail_msg("timed out");
  }
}

/* The value was taken as rows; reinterpret for calls that give a result. */
static orm_result_t *as_result(wait_t *w) { return (orm_result_t *)w->rows; }

static void sql(const char *text) {
  PGresult *r = PQexec(admin, text);
  if (PQresultStatus(r) != PGRES_COMMAND_OK &&
      PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", text, PQerrorMessage(admin));
  PQclear(r);
}

static char *scalar(const char *text) {
  PGresult *r = PQexec(admin, text);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    fail_msg("%s: %s", text, PQerrorMessage(admin));
  char *v = strdup(PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

static void expect_scalar(const char *text, const char *expected) {
  char *v = scalar(text);
  assert_string_equal(v, expected);
  free(v);
}

static int setup(void **state) {
  admin = PQconnectdb(orm_test_dsn());
  assert_int_equal(PQstatus(admin), CONNECTION_OK);
  PQsetNoticeProcessor(admin, NULL, NULL);
  sql("DROP SCHEMA IF EXISTS " SCHEMA " CASCADE");
  sql("CREATE SCHEMA " SCHEMA);
  sql("SET search_path = " SCHEMA);
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/domain/schema.sql",
           UVORM_TEST_SOURCE_DIR);
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char ddl[65536];
  size_t n = fread(ddl, 1, sizeof ddl - 1, f);
  ddl[n] = '\0';
  fclose(f);
  sql(ddl);
  assert_int_equal(uv_loop_init(&loop), 0);
  char *dsn = orm_test_dsn_with("options", "-c search_path=" SCHEMA, NULL);
  assert_int_equal(orm_pool_open(&pool, &loop,
                                 &(orm_pool_config_t){.conninfo = dsn,
                                                      .max_conns = 3}),
                   0);
  free(dsn);
  return 0;
}

static void on_closed(orm_pool_t *p, void *data) { closed++; }

static int teardown(void **state) {
  int before = closed; /* test_bad_calls closes a pool of its own */
  assert_int_equal(orm_pool_close(pool, on_closed), 0);
  orm_test_run(&loop, 10000);
  assert_int_equal(closed, before + 1);
  orm_test_loop_close(&loop);
  sql("DROP SCHEMA " SCHEMA " CASCADE");
  PQfinish(admin);
  return 0;
}

static void test_user_crud(void **state) {
  /* insert: the generated id and created_at come back into the struct */
  user_t u = {.email = "ada@example.com", .name = "Ada"};
  wait_t w = {0};
  assert_int_equal(orm_insert_async(pool, user_model(), &u, on_done, &w, NULL), 0);
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
  orm_rows_free(w.rows);

  /* find by key */
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_find_async(pool, user_model(), ORM_INT8(u.id), on_done,
                                  &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.rows), 1);
  user_t *got = orm_rows_at(w.rows, 0);
  assert_string_equal(got->email, "ada@example.com");
  assert_string_equal(got->name, "Ada");
  assert_int_equal(got->id, u.id);
  orm_rows_free(w.rows);

  /* update only the name, to NULL */
  user_t change = u;
  change.name = NULL;
  ORM_SET_NULL(&change, user, name);
  change.email = "ignored@example.com";
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_update_async(pool, user_model(), &change,
                                    ORM_FIELD_BIT(user, name), on_done, &w,
                                    NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_result_affected(as_result(&w)), 1);
  orm_result_free(as_result(&w));
  snprintf(q, sizeof q,
           "SELECT email || '|' || coalesce(name, '<null>') FROM " SCHEMA
           ".users WHERE id = %lld",
           (long long)u.id);
  expect_scalar(q, "ada@example.com|<null>");

  /* find_by a unique column: NULL comes back as NULL, not "" */
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_find_by_async(pool, user_model(), "email",
                                     ORM_TEXT("ada@example.com"), on_done, &w,
                                     NULL),
                   0);
  wait_for(&w);
  assert_int_equal(orm_rows_count(w.rows), 1);
  got = orm_rows_at(w.rows, 0);
  assert_true(ORM_IS_NULL(got, user, name));
  assert_null(got->name);
  orm_rows_free(w.rows);

  /* upsert on the unique email: updates the existing row */
  user_t again = {.email = "ada@example.com", .name = "Ada L."};
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_upsert_async(pool, user_model(), &again, "email",
                                    on_done, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(again.id, u.id); /* the same row */
  orm_rows_free(w.rows);
  expect_scalar("SELECT count(*) FROM " SCHEMA ".users", "1");
  snprintf(q, sizeof q, "SELECT name FROM " SCHEMA ".users WHERE id = %lld",
           (long long)u.id);
  expect_scalar(q, "Ada L.");

  /* delete, then find says not found */
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_delete_async(pool, user_model(), ORM_INT8(u.id),
                                    on_done, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(orm_result_affected(as_result(&w)), 1);
  orm_result_free(as_result(&w));
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_find_async(pool, user_model(), ORM_INT8(u.id), on_done,
                                  &w, NULL),
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
  wait_t w = {0};
  assert_int_equal(orm_insert_many_async(pool, user_model(), users, N, on_done,
                                         &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.rows), N);
  for (int i = 1; i < N; i++)
    assert_true(users[i].id > users[i - 1].id); /* written back, in order */
  orm_rows_free(w.rows);
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
  memset(&w, 0, sizeof w);
  assert_int_equal(
      orm_find_all_async(pool, NULL, qb, on_done, &w, NULL), ORM_ENOCOLUMN);
  orm_query_free(qb);

  assert_int_equal(orm_query_new(&qb, user_model()), 0);
  orm_query_where(qb, "name", ORM_OP_EQ, ORM_TEXT("odd"));
  orm_query_where(qb, "email", ORM_OP_LIKE, ORM_TEXT("u1%"));
  orm_query_order_by(qb, "email", ORM_DESC);
  orm_query_limit(qb, 5);
  assert_int_equal(orm_find_all_async(pool, NULL, qb, on_done, &w, NULL), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.rows), 5);
  const user_t *first = orm_rows_at(w.rows, 0);
  assert_string_equal(first->email, "u199@many.test");
  assert_string_equal(((user_t *)orm_rows_at(w.rows, 4))->email,
                      "u191@many.test");
  orm_rows_free(w.rows);

  /* count and exists over the same query, without its limit */
  orm_query_free(qb);
  assert_int_equal(orm_query_new(&qb, user_model()), 0);
  orm_query_where(qb, "name", ORM_OP_EQ, ORM_TEXT("odd"));
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_count_async(pool, NULL, qb, on_done, &w, NULL), 0);
  wait_for(&w);
  int64_t n = 0;
  assert_int_equal(orm_result_int(as_result(&w), 0, 0, &n), 0);
  assert_int_equal(n, N / 2);
  orm_result_free(as_result(&w));
  orm_query_free(qb);
  free(users);
  free(emails);
}

static void test_agents_and_hostile_strings(void **state) {
  user_t owner = {.email = "owner@agents.test", .name = "'; DROP TABLE users; --"};
  wait_t w = {0};
  assert_int_equal(
      orm_insert_async(pool, user_model(), &owner, on_done, &w, NULL), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  orm_rows_free(w.rows);
  static char t0[] = "a\"b", t1[] = "c'd", t3[] = "ünïcødé ✓";
  char *tags[] = {t0, t1, NULL, t3};
  agent_t a = {.owner_id = owner.id,
               .name = "x\\y 'z' \"w\"",
               .model = "gpt-x",
               .status = "active",
               .temperature = 0.25,
               .config = "{\"k\": [1, 2, \"'\"]}",
               .tags = {tags, 4}};
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_insert_async(pool, agent_model(), &a, on_done, &w, NULL),
                   0);
  wait_for(&w);
  if (w.status != 0)
    fail_msg("insert agent: %s", w.message);
  orm_rows_free(w.rows);
  /* The generated uuid came back; find the agent by it. */
  orm_param_t key = ORM_BINARY(2950, a.id.bytes, 16);
  memset(&w, 0, sizeof w);
  assert_int_equal(
      orm_find_async(pool, agent_model(), key, on_done, &w, NULL), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  const agent_t *got = orm_rows_at(w.rows, 0);
  assert_string_equal(got->name, "x\\y 'z' \"w\"");
  assert_string_equal(got->status, "active");
  assert_true(got->temperature == 0.25);
  assert_int_equal(got->tags.len, 4);
  assert_string_equal(got->tags.items[0], "a\"b");
  assert_string_equal(got->tags.items[1], "c'd");
  assert_null(got->tags.items[2]);
  assert_string_equal(got->tags.items[3], "ünïcødé ✓");
  assert_non_null(strstr(got->config, "\"k\""));
  orm_rows_free(w.rows);
  /* The hostile name is stored verbatim and the tables are intact. */
  expect_scalar("SELECT name FROM " SCHEMA ".users WHERE email = "
                "'owner@agents.test'",
                "'; DROP TABLE users; --");
  expect_scalar("SELECT count(*) > 0 FROM " SCHEMA ".users", "t");
}

static void test_transactions(void **state) {
  wait_t w = {0};
  assert_int_equal(orm_tx_begin_async(pool, on_done, &w, NULL), 0);
  wait_for(&w);
  orm_tx_t *tx = (orm_tx_t *)w.rows; /* BEGIN's value is the transaction */
  user_t u = {.email = "tx@example.com", .name = "in tx"};
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_tx_insert_async(tx, user_model(), &u, on_done, &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  orm_rows_free(w.rows);
  /* Not visible outside before commit. */
  expect_scalar("SELECT count(*) FROM " SCHEMA ".users WHERE email = "
                "'tx@example.com'",
                "0");
  /* Visible inside, and lockable. */
  orm_query_t *q;
  orm_query_new(&q, user_model());
  orm_query_where(q, "email", ORM_OP_EQ, ORM_TEXT("tx@example.com"));
  orm_query_for_update(q);
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_tx_find_all_async(tx, NULL, q, on_done, &w, NULL), 0);
  orm_query_free(q);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  assert_int_equal(orm_rows_count(w.rows), 1);
  orm_rows_free(w.rows);
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_tx_rollback_async(tx, on_done, &w, NULL), 0);
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
  wait_t w = {0};
  orm_future_t *f;
  assert_int_equal(
      orm_model_verify_async(pool, bad_user_model(), on_done, &w, &f), 0);
  wait_for(&w);
  assert_int_equal(w.status, 0);
  orm_schema_report_t *r = (orm_schema_report_t *)w.rows;
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
  memset(&w, 0, sizeof w);
  assert_int_equal(
      orm_model_verify_async(pool, user_model(), on_done, &w, NULL), 0);
  wait_for(&w);
  r = (orm_schema_report_t *)w.rows;
  assert_int_equal(r->nproblems, 0);
  orm_schema_report_free(r);

  /* Reading through the bad model fails at hydration, naming the column. */
  sql("INSERT INTO " SCHEMA ".users (email) VALUES ('mismatch@example.com')");
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_find_all_async(pool, typo_user_model(), NULL, on_done,
                                      &w, NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, ORM_ETYPE);
  assert_non_null(strstr(w.message, "\"email\""));
  /* A column the table lacks fails on the server, naming it too. */
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_find_all_async(pool, bad_user_model(), NULL, on_done, &w,
                                      NULL),
                   0);
  wait_for(&w);
  assert_int_equal(w.status, ORM_ESERVER);
  assert_non_null(strstr(w.message, "nickname"));
}

/* Reads that share a pipeline segment with a failing statement are sent
 * again; their answers from the first round (hydrated as they arrived)
 * must not leak into what the caller sees, and a miss keeps its own
 * message. One connection, so that all of them share one segment. */
static void test_reads_resent(void **state) {
  sql("INSERT INTO " SCHEMA ".users (email, name) VALUES "
      "('resent1@example.com', 'R1'), ('resent2@example.com', 'R2')");
  char *id1 = scalar("SELECT id FROM " SCHEMA
                     ".users WHERE email = 'resent1@example.com'");
  char *id2 = scalar("SELECT id FROM " SCHEMA
                     ".users WHERE email = 'resent2@example.com'");
  orm_pool_t *one;
  char *dsn = orm_test_dsn_with("options", "-c search_path=" SCHEMA, NULL);
  assert_int_equal(orm_pool_open(&one, &loop,
                                 &(orm_pool_config_t){.conninfo = dsn,
                                                      .max_conns = 1}),
                   0);
  free(dsn);
  wait_t w[5] = {{0}};
  orm_future_t *f[5];
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(atoll(id1)),
                                  on_done, &w[0], &f[0]),
                   0);
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(-1), on_done,
                                  &w[1], &f[1]),
                   0);
  assert_int_equal(orm_query_async(one, "SELECT 1/0", NULL, 0, on_done, &w[2],
                                   &f[2]),
                   0);
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(atoll(id2)),
                                  on_done, &w[3], &f[3]),
                   0);
  assert_int_equal(orm_find_async(one, user_model(), ORM_INT8(-2), on_done,
                                  &w[4], &f[4]),
                   0);
  for (int i = 0; i < 5; i++)
    wait_for(&w[i]);
  const user_t *u1 = orm_rows_at(w[0].rows, 0);
  const user_t *u2 = orm_rows_at(w[3].rows, 0);
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
  orm_rows_free(w[0].rows);
  orm_rows_free(w[3].rows);
  free(id1);
  free(id2);
  int before = closed;
  assert_int_equal(orm_pool_close(one, on_closed), 0);
  while (closed == before)
    uv_run(&loop, UV_RUN_ONCE);
  sql("DELETE FROM " SCHEMA ".users WHERE email LIKE 'resent%'");
}

static void test_bad_calls(void **state) {
  user_t u = {0};
  assert_int_equal(orm_find_async(NULL, user_model(), ORM_INT8(1), NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_find_async(pool, NULL, ORM_INT8(1), NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_insert_async(pool, user_model(), NULL, NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_find_by_async(pool, user_model(), "nope", ORM_INT8(1),
                                     NULL, NULL, NULL),
                   ORM_ENOCOLUMN);
  assert_int_equal(orm_upsert_async(pool, user_model(), &u, "name", NULL, NULL,
                                    NULL),
                   ORM_EINVAL);
  orm_model_t broken = *user_model();
  broken.nfields = 0;
  assert_int_equal(orm_find_async(pool, &broken, ORM_INT8(1), NULL, NULL, NULL),
                   ORM_EMODEL);
  /* A value that does not fit its column is refused before any SQL. */
  assert_int_equal(orm_find_async(pool, user_model(), ORM_BOOL(true), NULL,
                                  NULL, NULL),
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
  return cmocka_run_group_tests(tests, setup, teardown);
}
