/* SPDX-License-Identifier: MIT */
/* The pool against a real server: many requests, failures that stay alone,
 * timeouts that stop the server-side query, backpressure, transactions. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One at a time, in static storage: the steady-state rounds and the
 * deadlock rounds reach the pool through it. */
static orm_fx_t fx;

/* For a pool a test closes itself: orm_fx_close() then checks that this
 * ran once. */
static void on_closed(orm_pool_t *p, void *data) {
  ((orm_fx_t *)data)->closed++;
}

/* Runs the loop until `*count` reaches `target` (the pool keeps the loop
 * alive meanwhile). */
static void run_until_count(const int *count, int target, uint64_t timeout_ms) {
  uint64_t start = uv_now(&fx.loop);
  while (*count < target) {
    uv_run(&fx.loop, UV_RUN_ONCE);
    uv_update_time(&fx.loop);
    if (uv_now(&fx.loop) - start > timeout_ms)
      fail_msg("timed out after %llu ms", (unsigned long long)timeout_ms);
  }
}

/* Runs one statement on the pool to completion; returns its step. */
static orm_step_t run_sql(const char *sql, const orm_param_t *params,
                          size_t n) {
  orm_step_t s = {.result = 1};
  assert_int_equal(
      orm_query_async(fx.pool, sql, params, n, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  return s;
}

static int64_t scalar(const char *sql) {
  orm_step_t p = run_sql(sql, NULL, 0);
  if (p.status != 0)
    fail_msg("%s failed: %d %s", sql, p.status, p.sqlstate);
  return p.value;
}

/* ---- 1. many requests, each with its own answer -------------------------- */

typedef struct {
  int64_t expect;
  int *done;
  int *wrong;
} own_t;

static void on_own(orm_future_t *f, void *data) {
  own_t *o = data;
  int64_t got = -1;
  if (orm_future_status(f) != 0 ||
      orm_result_int(orm_future_value(f), 0, 0, &got) != 0 || got != o->expect)
    (*o->wrong)++;
  (*o->done)++;
}

static void burst(int no_pipeline, int n) {
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.min_conns = 4,
                                   .max_conns = 4,
                                   .queue_max = (size_t)n,
                                   .no_pipeline = no_pipeline});
  own_t *own = calloc((size_t)n, sizeof *own);
  int done = 0, wrong = 0;
  for (int i = 0; i < n; i++) {
    own[i] = (own_t){(int64_t)i * 3 + 7, &done, &wrong};
    orm_param_t p = ORM_INT8(i);
    assert_int_equal(orm_query_async(fx.pool, "SELECT $1::int8 * 3 + 7", &p, 1,
                                     on_own, &own[i], NULL),
                     0);
  }
  uint64_t t0 = uv_hrtime();
  run_until_count(&done, n, 120000);
  print_message("%d queries (%s): %.0f/s\n", n, no_pipeline ? "no pipeline" : "pipelined", n / ((uv_hrtime() - t0) / 1e9));
  assert_int_equal(done, n);
  assert_int_equal(wrong, 0);
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  assert_int_equal(st.queries, (uint64_t)n);
  assert_int_equal(st.errors, 0);
  assert_int_equal(st.conns_idle + st.conns_busy, 4);
  orm_fx_close(&fx);
  free(own);
}

/* Under valgrind (UVORM_TEST_QUICK) a tenth of the size says as much. */
static int burst_size(void) { return getenv("UVORM_TEST_QUICK") ? 10000 : 100000; }
static void test_burst_pipelined(void **state) { burst(0, burst_size()); }
static void test_burst_unpipelined(void **state) { burst(1, burst_size()); }

/* ---- the hot path allocates nothing per query ---------------------------- */

static unsigned long allocations;
static void *count_malloc(size_t n) { allocations++; return malloc(n); }
static void *count_realloc(void *p, size_t n) { allocations++; return realloc(p, n); }
static void *count_calloc(size_t c, size_t n) { allocations++; return calloc(c, n); }

static void steady_round(int n) {
  own_t *own = calloc((size_t)n, sizeof *own);
  int done = 0, wrong = 0;
  for (int i = 0; i < n; i++) {
    own[i] = (own_t){(int64_t)i * 3 + 7, &done, &wrong};
    orm_param_t p = ORM_INT8(i);
    assert_int_equal(orm_query_async(fx.pool, "SELECT $1::int8 * 3 + 7", &p, 1,
                                     on_own, &own[i], NULL),
                     0);
  }
  run_until_count(&done, n, 60000);
  assert_int_equal(wrong, 0);
  free(own);
}

static void test_steady_state_allocates_nothing(void **state) {
  assert_int_equal(
      orm_replace_allocator(count_malloc, count_realloc, count_calloc, free), 0);
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.min_conns = 4, .max_conns = 4});
  /* Warm up once all four are up, so that each has grown its slots and
   * prepared the statement: on a busy machine the first connection may
   * otherwise take a whole round alone. */
  orm_pool_stats_t st;
  do {
    uv_run(&fx.loop, UV_RUN_ONCE);
    orm_pool_stats(fx.pool, &st);
  } while (st.conns_idle + st.conns_busy < 4);
  for (int round = 0; round < 3; round++)
    steady_round(2000); /* warm-up: requests, slots, statements */
  unsigned long before = allocations;
  for (int round = 0; round < 5; round++)
    steady_round(1000);
  /* Beyond libpq's PGresult, a query costs uvorm no allocation at all. */
  assert_int_equal(allocations - before, 0);
  orm_fx_close(&fx);
  assert_int_equal(orm_replace_allocator(malloc, realloc, calloc, free), 0);
}

/* ---- 2. a failure fails alone -------------------------------------------- */

static void test_failures_stay_alone(void **state) {
  /* One connection deep enough to take the whole burst in one turn, so
   * the segments are known: every third statement is a write, and each
   * segment holds one write and the reads after it. */
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){
                  .min_conns = 1, .max_conns = 1, .pipeline_depth = 512});
  run_sql("DROP TABLE IF EXISTS alone", NULL, 0);
  assert_int_equal(
      run_sql("CREATE TABLE alone (id int PRIMARY KEY, note text)", NULL, 0)
          .status,
      0);
  assert_int_equal(
      run_sql("INSERT INTO alone VALUES (1000000, 'taken')", NULL, 0).status,
      0);

  enum { N = 300 };
  orm_step_t probes[N];
  memset(probes, 0, sizeof probes);
  for (int i = 0; i < N; i++) {
    const char *sql = i % 3 == 0
                          ? "INSERT INTO alone VALUES ($1, 'ok') RETURNING id"
                          : "SELECT $1::int";
    orm_param_t p = ORM_INT4(i);
    if (i == 50)
      sql = "SELEC 1 + $1::int"; /* syntax error: 42601 */
    else if (i == 120)
      p = ORM_INT4(1000000); /* unique violation: 23505 */
    else if (i == 200)
      sql = "SELECT 1 / ($1::int - 200)"; /* division by zero: 22012 */
    probes[i].result = 1;
    assert_int_equal(
        orm_query_async(fx.pool, sql, &p, 1, orm_fx_on_step, &probes[i], NULL),
        0);
  }
  orm_fx_wait(&fx, probes, N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(probes[i].done, 1);
    if (i == 50 || i == 120 || i == 200) {
      assert_int_equal(probes[i].status, ORM_ESERVER);
    } else {
      if (probes[i].status != 0)
        fail_msg("neighbour %d failed: %d %s", i, probes[i].status,
                 probes[i].sqlstate);
      assert_int_equal(probes[i].value, i);
    }
  }
  assert_string_equal(probes[50].sqlstate, "42601");
  assert_string_equal(probes[120].sqlstate, "23505");
  assert_string_equal(probes[200].sqlstate, "22012");
  /* Every write's row is there exactly once: the ones rolled back with a
   * failing neighbour were re-sent, never doubled. */
  assert_int_equal(scalar("SELECT count(*) FROM alone"), N / 3 - 1 + 1);
  assert_int_equal(scalar("SELECT count(DISTINCT id) FROM alone"), N / 3);
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  /* 121, 122 shared 120's segment; 198 shared 200's. */
  assert_true(st.resends >= 3);
  run_sql("DROP TABLE alone", NULL, 0);
  orm_fx_close(&fx);
}

static void on_error_detail(orm_future_t *f, void *data) {
  orm_step_t *p = data;
  const orm_error_t *e = orm_future_error(f);
  assert_non_null(e);
  assert_int_equal(e->code, ORM_ESERVER);
  assert_string_equal(e->sqlstate, "23505");
  assert_non_null(strstr(e->message, "duplicate key"));
  assert_non_null(e->detail);
  assert_string_equal(e->constraint, "detail_t_pkey");
  assert_string_equal(e->table, "detail_t");
  p->done++;
}

static void test_error_details(void **state) {
  orm_fx_open(&fx, NULL, 0, NULL);
  run_sql("DROP TABLE IF EXISTS detail_t", NULL, 0);
  run_sql("CREATE TABLE detail_t (id int PRIMARY KEY)", NULL, 0);
  run_sql("INSERT INTO detail_t VALUES (1)", NULL, 0);
  orm_step_t p = {0};
  assert_int_equal(orm_query_async(fx.pool, "INSERT INTO detail_t VALUES (1)",
                                   NULL, 0, on_error_detail, &p, NULL),
                   0);
  orm_fx_wait(&fx, &p, 1);
  run_sql("DROP TABLE detail_t", NULL, 0);
  orm_fx_close(&fx);
}


/* Statements issued one by one must not deadlock because uvorm grouped
 * them into one implicit transaction per connection. Least-loaded dispatch
 * alternates between the two connections: A gets (1, 2-late), B gets
 * (2, 1-late), and each late one would wait for the other's lock inside
 * the other's segment. Plain UPDATEs never share a segment with another
 * write; a SELECT whose function writes does, and its deadlock is retried
 * alone. */
static void deadlock_round(const char *sql) {
  int ids[4] = {1, 2, 2, 1};
  double sleeps[4] = {0, 0, 0.2, 0.2};
  orm_step_t p[4] = {{0}};
  for (int i = 0; i < 4; i++) {
    orm_param_t v[2] = {ORM_INT4(ids[i]), ORM_FLOAT8(sleeps[i])};
    assert_int_equal(
        orm_query_async(fx.pool, sql, v, 2, orm_fx_on_step, &p[i], NULL), 0);
  }
  orm_fx_wait(&fx, p, 4);
  for (int i = 0; i < 4; i++)
    if (p[i].status != 0)
      fail_msg("%s #%d failed: %s %s", sql, i, orm_err_name(p[i].status),
               p[i].sqlstate);
}

static void test_grouping_does_not_deadlock(void **state) {
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.min_conns = 2, .max_conns = 2});
  run_sql("DROP TABLE IF EXISTS locks", NULL, 0);
  run_sql("CREATE TABLE locks (id int PRIMARY KEY, v int)", NULL, 0);
  run_sql("INSERT INTO locks VALUES (1, 0), (2, 0)", NULL, 0);
  run_sql("CREATE OR REPLACE FUNCTION bump(k int, s float8) RETURNS int "
          "LANGUAGE sql AS 'UPDATE locks SET v = v + 1 WHERE id = k AND "
          "pg_sleep(s) IS NOT NULL; SELECT 1'",
          NULL, 0);
  deadlock_round("UPDATE locks SET v = v + 1 WHERE id = $1 AND "
                 "pg_sleep($2) IS NOT NULL");
  assert_int_equal(scalar("SELECT sum(v) FROM locks"), 4);
  orm_pool_stats_t before;
  orm_pool_stats(fx.pool, &before);
  deadlock_round("SELECT bump($1, $2)");
  assert_int_equal(scalar("SELECT sum(v) FROM locks"), 8);
  assert_int_equal(scalar("SELECT min(v) FROM locks"), 4);
  orm_pool_stats_t after;
  orm_pool_stats(fx.pool, &after);
  assert_true(after.resends > before.resends); /* the deadlock was retried */
  run_sql("DROP FUNCTION bump(int, float8)", NULL, 0);
  run_sql("DROP TABLE locks", NULL, 0);
  orm_fx_close(&fx);
}

/* ---- 3. a timeout stops the query on the server --------------------------- */

static void test_timeout_cancels_on_server(void **state) {
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  scalar("SELECT 1"); /* connected */
  orm_step_t p = {0};
  orm_future_t *f;
  uint64_t start = uv_now(&fx.loop);
  assert_int_equal(orm_query_async(fx.pool, "SELECT pg_sleep(10)", NULL, 0,
                                   orm_fx_on_step, &p, &f),
                   0);
  assert_int_equal(orm_future_timeout(f, 100), 0);
  orm_fx_wait(&fx, &p, 1);
  /* The loop's time of the turn that ran the callback. */
  uint64_t completed_at = uv_now(&fx.loop);
  assert_int_equal(p.status, ORM_ETIMEDOUT);
  assert_true(completed_at - start < 1000);
  assert_int_equal(orm_future_error(f)->code, ORM_ETIMEDOUT);
  orm_future_release(f);
  /* The same (only) connection answers the next query at once: the sleep
   * was cancelled on the server, not left running. */
  start = uv_now(&fx.loop);
  orm_step_t next = run_sql("SELECT 41 + 1", NULL, 0);
  assert_int_equal(next.status, 0);
  assert_int_equal(next.value, 42);
  assert_true(uv_now(&fx.loop) - start < 2000);
  assert_int_equal(
      scalar("SELECT count(*) FROM pg_stat_activity WHERE query = "
             "'SELECT pg_sleep(10)' AND state = 'active'"),
      0);
  orm_fx_close(&fx);
}

static void test_statement_timeout_config(void **state) {
  orm_fx_open(&fx, NULL, 0, &(orm_pool_config_t){.statement_timeout_ms = 150});
  uint64_t start = uv_now(&fx.loop);
  orm_step_t p = run_sql("SELECT pg_sleep(5)", NULL, 0);
  assert_int_equal(p.status, ORM_ETIMEDOUT);
  assert_true(uv_now(&fx.loop) - start < 1500);
  assert_int_equal(scalar("SELECT 7"), 7);
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_int_equal(st.timeouts, 1);
  orm_fx_close(&fx);
}

/* ---- 4. backpressure and cancelling queued work ---------------------------- */

static void test_queue_full_and_cancel(void **state) {
  orm_fx_open(
      &fx, NULL, 0,
      &(orm_pool_config_t){.min_conns = 1, .max_conns = 1, .queue_max = 4});
  run_sql("DROP TABLE IF EXISTS never", NULL, 0);
  run_sql("CREATE TABLE never (id int)", NULL, 0);
  orm_step_t p[6] = {{0}};
  orm_future_t *f[4];
  for (int i = 0; i < 4; i++) {
    orm_param_t v = ORM_INT4(i);
    assert_int_equal(orm_query_async(fx.pool, "INSERT INTO never VALUES ($1)",
                                     &v, 1, orm_fx_on_step, &p[i], &f[i]),
                     0);
  }
  /* The queue holds four: the fifth is refused at once, no callback. */
  assert_int_equal(orm_query_async(fx.pool, "SELECT 1", NULL, 0, orm_fx_on_step,
                                   &p[4], NULL),
                   ORM_EQUEUEFULL);
  /* Cancel two while still queued: they are never sent. */
  assert_int_equal(orm_future_cancel(f[1]), 0);
  assert_int_equal(orm_future_cancel(f[3]), 0);
  /* Cancelled, but its callback has not run yet: no second cancel. */
  assert_int_equal(orm_future_cancel(f[3]), ORM_ESTATE);
  assert_int_equal(p[1].done, 0); /* never inside the call */
  orm_fx_wait(&fx, p, 4);
  assert_int_equal(p[0].status, 0);
  assert_int_equal(p[1].status, ORM_ECANCELED);
  assert_int_equal(p[2].status, 0);
  assert_int_equal(p[3].status, ORM_ECANCELED);
  assert_int_equal(orm_future_cancel(f[0]), ORM_ESTATE);
  assert_int_equal(p[4].done, 0);
  for (int i = 0; i < 4; i++)
    orm_future_release(f[i]);
  assert_int_equal(scalar("SELECT count(*) FROM never"), 2);
  assert_int_equal(scalar("SELECT count(*) FROM never WHERE id IN (1, 3)"), 0);
  run_sql("DROP TABLE never", NULL, 0);
  orm_fx_close(&fx);
}

/* ---- the socket changes while connecting ---------------------------------- */

/* Two hosts: the first refuses, libpq moves on to the second with a new
 * socket, which the pool must watch instead of the first. */
static void test_socket_changes_during_connect(void **state) {
  PQconninfoOption *opts = PQconninfoParse(orm_test_dsn(), NULL);
  assert_non_null(opts);
  const char *port = NULL, *host = NULL;
  for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
    if (strcmp(o->keyword, "port") == 0)
      port = o->val;
    if (strcmp(o->keyword, "host") == 0)
      host = o->val;
  }
  if (port == NULL || host == NULL || strchr(host, ',') != NULL) {
    PQconninfoFree(opts);
    skip();
  }
  char hosts[512], ports[64];
  snprintf(hosts, sizeof hosts, "127.0.0.1,%s", host);
  snprintf(ports, sizeof ports, "1,%s", port);
  PQconninfoFree(opts);
  char *dsn = orm_test_dsn_with("host", hosts, "port", ports, NULL);

  memset(&fx, 0, sizeof fx); /* no admin connection: none is needed */
  orm_fx_open_pool(&fx, &(orm_pool_config_t){
                            .conninfo = dsn, .min_conns = 2, .max_conns = 2});
  free(dsn);
  assert_int_equal(scalar("SELECT 6 * 7"), 42);
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_int_equal(st.connect_failures, 0); /* libpq's own failover */
  orm_fx_close(&fx);
}

/* ---- parameters and getters ------------------------------------------------ */

static void test_params_and_getters(void **state) {
  orm_fx_open(&fx, NULL, 0, NULL);
  const uint8_t blob[] = {0, 1, 2, 0, 255};
  orm_param_t params[] = {
      ORM_INT2(-12),        ORM_INT4(-123456),  ORM_INT8(INT64_MIN),
      ORM_FLOAT4(1.5),      ORM_FLOAT8(-2.25),  ORM_BOOL(true),
      ORM_TEXT("héllo 'x'"), ORM_UNTYPED("12.50"), ORM_BYTEA(blob, sizeof blob),
      ORM_NULL};
  orm_step_t p = {0};
  orm_future_t *f;
  assert_int_equal(
      orm_query_async(fx.pool,
                      "SELECT $1::int2, $2::int4, $3::int8, $4::float4, "
                      "$5::float8, $6::bool, $7::text, $8::numeric::text, "
                      "$9::bytea, $10::int4 AS nothing",
                      params, 10, orm_fx_on_step, &p, &f),
      0);
  orm_fx_wait(&fx, &p, 1);
  assert_int_equal(p.status, 0);
  orm_result_t *r = orm_future_take(f);
  assert_non_null(r);
  assert_null(orm_future_value(f));
  orm_future_release(f);
  int64_t i;
  double d;
  bool b;
  const char *s;
  size_t len;
  const uint8_t *bytes;
  assert_int_equal(orm_result_nrows(r), 1);
  assert_int_equal(orm_result_ncols(r), 10);
  assert_int_equal(orm_result_int(r, 0, 0, &i), 0);
  assert_int_equal(i, -12);
  assert_int_equal(orm_result_int(r, 0, 1, &i), 0);
  assert_int_equal(i, -123456);
  assert_int_equal(orm_result_int(r, 0, 2, &i), 0);
  assert_true(i == INT64_MIN);
  assert_int_equal(orm_result_float(r, 0, 3, &d), 0);
  assert_true(d == 1.5);
  assert_int_equal(orm_result_float(r, 0, 4, &d), 0);
  assert_true(d == -2.25);
  assert_int_equal(orm_result_bool(r, 0, 5, &b), 0);
  assert_true(b);
  assert_int_equal(orm_result_text(r, 0, 6, &s, &len), 0);
  assert_string_equal(s, "héllo 'x'");
  assert_int_equal(len, strlen("héllo 'x'"));
  assert_int_equal(orm_result_text(r, 0, 7, &s, NULL), 0);
  assert_string_equal(s, "12.50");
  assert_int_equal(orm_result_bytes(r, 0, 8, &bytes, &len), 0);
  assert_int_equal(len, sizeof blob);
  assert_memory_equal(bytes, blob, sizeof blob);
  assert_true(orm_result_is_null(r, 0, 9));
  assert_int_equal(orm_result_int(r, 0, 9, &i), ORM_ENOTFOUND);
  assert_int_equal(orm_result_column_index(r, "nothing"), 9);
  /* Wrong getter for a type, out-of-range cells. */
  assert_int_equal(orm_result_text(r, 0, 0, &s, NULL), ORM_ETYPE);
  assert_int_equal(orm_result_int(r, 0, 6, &i), ORM_ETYPE);
  assert_int_equal(orm_result_bool(r, 0, 0, &b), ORM_ETYPE);
  assert_int_equal(orm_result_int(r, 1, 0, &i), ORM_ERANGE);
  assert_int_equal(orm_result_int(r, 0, 10, &i), ORM_ERANGE);
  orm_result_free(r);

  /* DML reports affected rows. */
  run_sql("CREATE TEMP TABLE aff (x int)", NULL, 0);
  orm_step_t q = {0};
  assert_int_equal(
      orm_query_async(fx.pool, "INSERT INTO aff SELECT generate_series(1, 5)",
                      NULL, 0, orm_fx_on_step, &q, &f),
      0);
  orm_fx_wait(&fx, &q, 1);
  assert_int_equal(orm_result_affected(orm_future_value(f)), 5);
  orm_future_release(f);
  orm_fx_close(&fx);
}

/* ---- 9. bad input ------------------------------------------------------------ */

static void test_bad_input(void **state) {
  orm_pool_t *p = (orm_pool_t *)&p;
  uv_loop_t l;
  assert_int_equal(uv_loop_init(&l), 0);
  orm_pool_config_t cfg = {.conninfo = orm_test_dsn()};
  assert_int_equal(orm_pool_open(NULL, &l, &cfg), ORM_EINVAL);
  assert_int_equal(orm_pool_open(&p, NULL, &cfg), ORM_EINVAL);
  assert_null(p);
  assert_int_equal(orm_pool_open(&p, &l, NULL), ORM_EINVAL);
  assert_int_equal(orm_pool_open(&p, &l, &(orm_pool_config_t){0}), ORM_EINVAL);
  assert_int_equal(
      orm_pool_open(&p, &l, &(orm_pool_config_t){.conninfo = "host= = ="}),
      ORM_EINVAL);
  assert_int_equal(orm_pool_open(&p, &l,
                                 &(orm_pool_config_t){.conninfo = "nosuchkey=1"}),
                   ORM_EINVAL);
  assert_int_equal(
      orm_pool_open(&p, &l,
                    &(orm_pool_config_t){.conninfo = "postgresql://[bad"}),
      ORM_EINVAL);
  assert_int_equal(orm_pool_open(&p, &l,
                                 &(orm_pool_config_t){.conninfo = cfg.conninfo,
                                                      .min_conns = 5,
                                                      .max_conns = 2}),
                   ORM_EINVAL);
  assert_int_equal(uv_loop_close(&l), 0); /* nothing was left on the loop */

  orm_param_t one = ORM_INT4(1);
  assert_int_equal((orm_query_async)(NULL, "SELECT 1", NULL, 0, NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_pool_close(NULL, NULL), ORM_EINVAL);
  assert_int_equal(orm_pool_stats(NULL, NULL), ORM_EINVAL);
  assert_int_equal(orm_tx_begin_async(NULL, NULL, NULL, NULL), ORM_EINVAL);
  assert_int_equal((orm_query_async)(NULL, "x", NULL, 0, NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_tx_commit_async(NULL, NULL, NULL, NULL), ORM_EINVAL);
  assert_int_equal(orm_future_cancel(NULL), ORM_EINVAL);
  assert_int_equal(orm_future_timeout(NULL, 5), ORM_EINVAL);
  assert_int_equal(orm_future_all(NULL, 1, NULL, NULL, NULL), ORM_EINVAL);

  orm_fx_open(&fx, NULL, 0, NULL);
  orm_pool_t *pool = fx.pool;
  orm_future_t *f = (orm_future_t *)&f;
  assert_int_equal(orm_query_async(pool, NULL, NULL, 0, NULL, NULL, &f),
                   ORM_EINVAL);
  assert_null(f);
  assert_int_equal(orm_query_async(pool, "SELECT 1", NULL, 1, NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_query_async(pool, "SELECT 1", &one, ORM_MAX_PARAMS + 1,
                                   NULL, NULL, NULL),
                   ORM_E2BIG);
  orm_param_t bad = {.kind = (orm_param_kind_t)99};
  assert_int_equal(orm_query_async(pool, "SELECT $1", &bad, 1, NULL, NULL, NULL),
                   ORM_EINVAL);
  orm_param_t wide = ORM_INT8(1);
  wide.kind = ORM_PARAM_INT2;
  wide.v.i = 70000;
  assert_int_equal(
      orm_query_async(pool, "SELECT $1", &wide, 1, NULL, NULL, NULL),
      ORM_ERANGE);
  orm_param_t nul = ORM_UNTYPED("a");
  nul.v.s.len = 3; /* "a\0" + past: embedded NUL in a text value */
  nul.v.s.ptr = "a\0b";
  assert_int_equal(orm_query_async(pool, "SELECT $1", &nul, 1, NULL, NULL, NULL),
                   ORM_EINVAL);
  /* A future from no callback works: fire and forget. */
  assert_int_equal(orm_query_async(pool, "SELECT 1", NULL, 0, NULL, NULL, NULL),
                   0);
  /* Savepoint names are identifiers. */
  assert_int_equal(orm_tx_savepoint_async(NULL, "a", NULL, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_pool_close(pool, on_closed), 0);
  assert_int_equal(orm_pool_close(pool, on_closed), ORM_ECLOSED);
  assert_int_equal(orm_query_async(pool, "SELECT 1", NULL, 0, NULL, NULL, NULL),
                   ORM_ECLOSED);
  assert_int_equal(orm_tx_begin_async(pool, NULL, NULL, NULL), ORM_ECLOSED);
  fx.pool = NULL; /* closing: orm_fx_close() checks its callback ran once */
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_params_and_getters),
      cmocka_unit_test(test_socket_changes_during_connect),
      cmocka_unit_test(test_bad_input),
      cmocka_unit_test(test_error_details),
      cmocka_unit_test(test_failures_stay_alone),
      cmocka_unit_test(test_grouping_does_not_deadlock),
      cmocka_unit_test(test_queue_full_and_cancel),
      cmocka_unit_test(test_timeout_cancels_on_server),
      cmocka_unit_test(test_statement_timeout_config),
      cmocka_unit_test(test_steady_state_allocates_nothing),
      cmocka_unit_test(test_burst_pipelined),
      cmocka_unit_test(test_burst_unpipelined),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
