/* SPDX-License-Identifier: MIT */
/* Relations and eager loading, for cost and consistency: the number of
 * statements the server runs (pg_stat_statements), everything sent in one
 * round trip (held on a lock, counted in flight), many loads at once, pools
 * that do not pipeline or prepare, and one snapshot for all the statements
 * of a load under concurrent writers. Preloads are in
 * test_relations_preload.c. */
#define SCHEMA "test_relations_load"
#include "relations_load.h"

/* ---- 1. statements counted by the server --------------------------------- */

static void test_statement_count(void **state) {
  seed_ldc(20, 5, 1);
  if (!have_pss())
    skip();
  wait_idle();
  orm_pool_stats_t before = stats_now();
  int64_t dealloc = pss_dealloc();
  int64_t calls = pss_sum("calls", PSS_LDC);
  int64_t rows_before = pss_sum("rows", PSS_LDC);
  orm_rows_t *rows = fetch(query_inc(lconv_model(), "messages.usage", "id"));
  assert_int_equal(check_ldc(rows, 5, 1), 20);
  orm_rows_free(rows);
  wait_idle();
  if (pss_unchanged_since(dealloc)) {
    /* the query, messages, usage: 3 SELECTs, not 1 + 20 + 100 */
    assert_int_equal(pss_sum("calls", PSS_LDC) - calls, 3);
    /* 20 conversations, 100 messages, 100 usage records */
    assert_int_equal(pss_sum("rows", PSS_LDC) - rows_before, 220);
  }
  /* and on the pool: BEGIN, the 3 statements, COMMIT */
  orm_pool_stats_t after = stats_now();
  assert_int_equal(after.queries - before.queries, 5);
  assert_int_equal(after.errors, before.errors);
}

/* ---- 2. one round trip --------------------------------------------------- */

static void lock_messages(void) {
  locker = PQconnectdb(orm_test_dsn());
  assert_int_equal(PQstatus(locker), CONNECTION_OK);
  PGresult *r = PQexec(locker, "BEGIN; LOCK TABLE " SCHEMA
                               ".ldc_msg IN ACCESS EXCLUSIVE MODE");
  if (PQresultStatus(r) != PGRES_COMMAND_OK)
    fail_msg("LOCK: %s", PQerrorMessage(locker));
  PQclear(r);
}

static void unlock(void) {
  PGresult *r = PQexec(locker, "COMMIT");
  assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(locker);
  locker = NULL;
}

/* How many backends of the pool wait on a lock. */
static int64_t pool_backends_blocked(void) {
  return orm_fx_int(&fx, "SELECT count(*) FROM pg_stat_activity WHERE "
                         "application_name = '" SCHEMA "' AND "
                         "wait_event_type = 'Lock'");
}

/* Runs the loop until a backend of the pool waits on a lock. */
static void wait_blocked(void) {
  for (int i = 0; i < 1000; i++) {
    orm_fx_run_ms(&fx, 5);
    if (pool_backends_blocked() == 1)
      return;
  }
  fail_msg("no backend of the pool waits on the lock after 5 s");
}

static void test_one_round_trip(void **state) {
  seed_ldc(4, 3, 1);
  wait_idle();
  lock_messages();
  /* static: should an assertion fail while the load is pending, its
   * callback still finds it when the teardown closes the pool */
  static orm_step_t s;
  s = TAKE;
  orm_query_t *q = query_inc(lconv_model(), "messages.usage", "id");
  assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &s,
                                      NULL),
                   0);
  orm_query_free(q);
  wait_blocked();
  /* Held on the messages statement: BEGIN, the query, both children and
   * COMMIT were all sent without waiting for any answer. */
  orm_pool_stats_t st = stats_now();
  assert_int_equal(st.in_flight, 1 + 1 + 2 + 1);
  assert_int_equal(st.queued, 0);
  assert_int_equal(s.done, 0);
  unlock();
  wait_step(&s, 10000);
  expect_ok(&s, "load");
  assert_int_equal(check_ldc(s.taken, 3, 1), 4);
  orm_rows_free(s.taken);
  wait_idle();
}

/* ---- many loads at once --------------------------------------------------- */

#define NCONCURRENT 30

/* The conversations of group `group` (titled "g<group>", ids with
 * id % 3 + 1 == group) with their messages and usage, by id. */
static orm_query_t *group_query(int group) {
  orm_query_t *q = query_inc(lconv_model(), "messages.usage", "id");
  char title[16];
  snprintf(title, sizeof title, "g%d", group);
  assert_int_equal(orm_query_where(q, "title", ORM_OP_EQ, ORM_TEXT(title)), 0);
  return q;
}

static void expect_group(const orm_step_t *s, int group) {
  expect_ok(s, "load");
  const lconv_t *c = orm_rows_array(s->taken);
  size_t n = check_ldc(s->taken, (size_t)group, 1);
  assert_int_equal(n, 10);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(c[i].id % 3 + 1, group);
}

static void test_concurrent_loads(void **state) {
  /* 30 conversations in 3 groups; group g's have g messages each */
  orm_fx_sql(&fx, "INSERT INTO ldc_conv (id, title) SELECT g, 'g' || "
                  "(g % 3 + 1) FROM generate_series(1, 30) g;"
                  "INSERT INTO ldc_msg (conv_id, body) SELECT c, 'm' FROM "
                  "generate_series(1, 30) c, generate_series(1, 3) k "
                  "WHERE k <= c % 3 + 1 ORDER BY c, k;"
                  "INSERT INTO ldc_usage (msg_id, tokens) SELECT id, id % 100 "
                  "FROM ldc_msg");
  static orm_step_t s[NCONCURRENT]; /* see test_one_round_trip */
  for (int i = 0; i < NCONCURRENT; i++) {
    s[i] = TAKE;
    orm_query_t *q = group_query(i % 3 + 1);
    assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step,
                                        &s[i], NULL),
                     0);
    orm_query_free(q);
  }
  for (int i = 0; i < NCONCURRENT; i++) {
    wait_step(&s[i], 20000);
    expect_group(&s[i], i % 3 + 1);
    orm_rows_free(s[i].taken);
  }
  wait_idle();

  /* on one transaction, with preloads between the loads */
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  static orm_step_t p[NCONCURRENT];
  static orm_rows_t *in_hand[NCONCURRENT];
  for (int i = 0; i < NCONCURRENT; i++) {
    /* rows of group i % 3 + 1, to preload into */
    orm_query_t *q = group_query(i % 3 + 1);
    in_hand[i] = fetch(q);
  }
  for (int i = 0; i < NCONCURRENT; i++) {
    s[i] = TAKE;
    orm_query_t *q = group_query(3 - i % 3);
    assert_int_equal(
        orm_find_all_async(tx, NULL, q, orm_fx_on_step, &s[i], NULL), 0);
    orm_query_free(q);
    p[i] = TAKE;
    assert_int_equal(orm_preload_async(tx, in_hand[i], "messages.usage",
                                       orm_fx_on_step, &p[i], NULL),
                     0);
  }
  for (int i = 0; i < NCONCURRENT; i++) {
    wait_step(&s[i], 20000);
    expect_group(&s[i], 3 - i % 3);
    orm_rows_free(s[i].taken);
    wait_step(&p[i], 20000);
    expect_ok(&p[i], "preload");
    assert_int_equal(check_ldc(in_hand[i], (size_t)(i % 3 + 1), 1), 10);
    orm_rows_free(in_hand[i]);
  }
  orm_step_t end = {0};
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &end, NULL), 0);
  wait_step(&end, 10000);
  expect_ok(&end, "commit");
}

/* Pools that send one statement at a time, or prepare nothing (for
 * PgBouncer): the same loads, the same rows. */
static void test_pool_modes(void **state) {
  static const orm_pool_config_t modes[] = {
      {.no_pipeline = true},
      {.no_prepare = true},
      {.no_pipeline = true, .no_prepare = true, .max_conns = 1},
  };
  for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
    orm_fx_close(&fx);
    orm_fx_open(&fx, SCHEMA, 1, &modes[m]);
    create_ldc_tables();
    seed_ldc(5, 4, 1);
    for (int round = 0; round < 2; round++) { /* prepared the second time */
      orm_rows_t *rows =
          fetch(query_inc(lconv_model(), "messages.usage", "id"));
      assert_int_equal(check_ldc(rows, 4, 1), 5);
      orm_rows_free(rows);
      rows = fetch(query_inc(lconv_model(), NULL, "id"));
      preload_ok(orm_pool_exec(fx.pool), rows, "messages.usage");
      assert_int_equal(check_ldc(rows, 4, 1), 5);
      orm_rows_free(rows);
    }
    wait_idle();
  }
}

/* ---- 3. one snapshot under concurrent writers ---------------------------- */

typedef struct {
  PGconn *conn;
  int busy;
  int writes;
} writer_t;

/* Each write, one transaction: a new conversation with 3 messages, and
 * the oldest conversation deleted with its messages. */
static void writer_pump(writer_t *w) {
  if (w->busy) {
    if (!PQconsumeInput(w->conn))
      fail_msg("writer: %s", PQerrorMessage(w->conn));
    while (w->busy && !PQisBusy(w->conn)) {
      PGresult *r = PQgetResult(w->conn);
      if (r == NULL) {
        w->busy = 0;
        w->writes++;
        break;
      }
      ExecStatusType st = PQresultStatus(r);
      if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("writer: %s", PQresultErrorMessage(r));
      PQclear(r);
    }
  }
  if (!w->busy) {
    if (!PQsendQuery(w->conn,
                     "WITH c AS (INSERT INTO ldc_conv (title) VALUES ('w') "
                     "RETURNING id) INSERT INTO ldc_msg (conv_id, body) "
                     "SELECT id, 'w' || k FROM c, generate_series(1, 3) k;"
                     "DELETE FROM ldc_conv WHERE id = "
                     "(SELECT min(id) FROM ldc_conv)"))
      fail_msg("writer: %s", PQerrorMessage(w->conn));
    w->busy = 1;
  }
}

static void test_snapshot_under_writers(void **state) {
  seed_ldc(20, 3, 0);
  int have = have_pss();
  int64_t dealloc = have ? pss_dealloc() : 0;
  writer_t w = {.conn = PQconnectdb(orm_test_dsn())};
  assert_int_equal(PQstatus(w.conn), CONNECTION_OK);
  PQclear(PQexec(w.conn, "SET search_path = " SCHEMA));
  int loads = quick() ? 40 : 200;
  int64_t rows_before =
      have ? pss_sum("rows", PSS_LDC_MSG) : 0;
  int64_t calls_before =
      have ? pss_sum("calls", PSS_LDC_MSG) : 0;
  size_t total = 0;
  for (int i = 0; i < loads; i++) {
    writer_pump(&w); /* a write goes out, then the load behind it */
    static orm_step_t s; /* see test_one_round_trip */
    s = TAKE;
    orm_query_t *q = query_inc(lconv_model(), "messages", "id");
    assert_int_equal(orm_find_all_async(fx.pool, NULL, q, orm_fx_on_step, &s,
                                        NULL),
                     0);
    orm_query_free(q);
    uv_update_time(&fx.loop);
    uint64_t end = uv_now(&fx.loop) + 10000;
    while (!s.done) {
      uv_run(&fx.loop, UV_RUN_ONCE);
      writer_pump(&w);
      if (uv_now(&fx.loop) > end)
        fail_msg("load %d did not complete", i);
    }
    expect_ok(&s, "load");
    /* each write adds one conversation and removes one: always 20, each
     * with all of its 3 messages */
    size_t n = check_ldc(s.taken, 3, 0);
    if (n != 20)
      fail_msg("load %d: %zu conversations, expected 20", i, n);
    total += n * 3;
    orm_rows_free(s.taken);
  }
  /* let the last write finish */
  while (w.busy) {
    uv_sleep(1);
    if (!PQconsumeInput(w.conn))
      fail_msg("writer: %s", PQerrorMessage(w.conn));
    PGresult *r;
    while (!PQisBusy(w.conn) && (r = PQgetResult(w.conn)) != NULL)
      PQclear(r);
    if (!PQisBusy(w.conn))
      w.busy = 0;
  }
  PQfinish(w.conn);
  print_message("%d loads, %d writes\n", loads, w.writes);
  assert_true(w.writes >= loads / 10);
  if (have && pss_unchanged_since(dealloc)) {
    /* the server sent exactly the messages of the conversations each load
     * returned: none of a conversation the load did not see */
    wait_idle();
    assert_int_equal(
        pss_sum("calls", PSS_LDC_MSG) - calls_before,
        loads);
    assert_int_equal(
        pss_sum("rows", PSS_LDC_MSG) - rows_before,
        (int64_t)total);
  }
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
  const struct CMUnitTest tests[] = {
      T(test_statement_count),
      T(test_one_round_trip),
      T(test_concurrent_loads),
      T(test_pool_modes),
      T(test_snapshot_under_writers),
  };
#undef T
  return orm_run_group_tests(tests, NULL, NULL);
}
