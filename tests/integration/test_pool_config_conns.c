/* SPDX-License-Identifier: MIT */
/* Pool settings against a real server: how many connections and for how
 * long. The acquire timeout, growing to max_conns and shrinking back after
 * idle_timeout_ms, max_lifetime_ms, health checks of idle connections; and,
 * found in review, which connection idle_timeout_ms closes when another one
 * is broken. (The fixture: support/cfg_fixture.h.) */
#include "cfg_fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "cfg_conns_test"

/* ---- acquire_timeout_ms ------------------------------------------------- */

static void test_acquire_timeout(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1,
                                       .max_conns = 1,
                                       .no_pipeline = true,
                                       .acquire_timeout_ms = 200});
  orm_fx_sql(cfg_fx,
             "DROP TABLE IF EXISTS cfg_acq; CREATE TABLE cfg_acq (id int)");
  cfg_backend_pid(); /* connected */
  probe_t sleeper = {0}, queued = {0};
  orm_param_t v = ORM_INT4(1);
  uv_update_time(&cfg_fx->loop);
  uint64_t start = uv_now(&cfg_fx->loop);
  assert_int_equal(orm_query_async(cfg_fx->pool, "SELECT 7 FROM pg_sleep(1)",
                                   NULL, 0, cfg_on_probe, &sleeper, NULL),
                   0);
  assert_int_equal(orm_query_async(cfg_fx->pool,
                                   "INSERT INTO cfg_acq VALUES ($1)", &v, 1,
                                   cfg_on_probe, &queued, NULL),
                   0);
  cfg_run_until(&queued.done, 3000);
  uint64_t waited = queued.completed_at - start;
  assert_int_equal(queued.status, ORM_ETIMEDOUT);
  assert_true(waited >= 180 && waited < 700);
  assert_int_equal(sleeper.done, 0); /* the connection really was busy */
  /* Once sent, a request is past its acquire deadline: the second-long
   * sleep must not time out at 200 ms. */
  cfg_run_until(&sleeper.done, 3000);
  assert_int_equal(sleeper.status, 0);
  assert_int_equal(sleeper.value, 7);
  /* The timed-out INSERT was never sent, not even late. */
  cfg_run_ms(100);
  assert_int_equal(cfg_admin_int("SELECT count(*) FROM cfg_acq"), 0);
  assert_int_equal(queued.done, 1);
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(st.timeouts, 1);
  assert_int_equal(cfg_scalar("SELECT 5"), 5); /* and the pool carries on */
  orm_fx_sql(cfg_fx, "DROP TABLE cfg_acq");
  cfg_close();
}

/* ---- growing from min_conns to max_conns -------------------------------- */

static unsigned seen_max_conns;
static int64_t seen_max_server;

static void sample_growth(void) {
  orm_pool_stats_t st = cfg_stats();
  if (cfg_total_conns(&st) > seen_max_conns)
    seen_max_conns = cfg_total_conns(&st);
  int64_t n = cfg_server_conns();
  if (n > seen_max_server)
    seen_max_server = n;
}

/* Issues `n` slow statements at once, each answering its own value. */
static void slow_burst(int n, const char *sql, uint64_t timeout_ms) {
  probe_t *p = calloc((size_t)n, sizeof *p);
  int done = 0;
  for (int i = 0; i < n; i++) {
    orm_param_t v = ORM_INT4(i * 11);
    assert_int_equal(
        orm_query_async(cfg_fx->pool, sql, &v, 1, cfg_on_probe, &p[i], NULL),
        0);
  }
  uv_update_time(&cfg_fx->loop);
  uint64_t end = uv_now(&cfg_fx->loop) + timeout_ms;
  while (done < n) {
    if (uv_now(&cfg_fx->loop) > end)
      fail_msg("burst: %d of %d done", done, n);
    uv_run(&cfg_fx->loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < n; i++)
      done += p[i].done;
  }
  for (int i = 0; i < n; i++) {
    if (p[i].status != 0)
      fail_msg("burst %d: %s %s", i, orm_err_name(p[i].status), p[i].message);
    assert_int_equal(p[i].done, 1);
    assert_int_equal(p[i].value, i * 11);
  }
  free(p);
}

static void test_grows_to_max(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){
                       .min_conns = 1, .max_conns = 4, .no_pipeline = true});
  cfg_backend_pid();
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(cfg_total_conns(&st), 1);
  assert_int_equal(cfg_server_conns(), 1);

  seen_max_conns = 0;
  seen_max_server = 0;
  cfg_tick_hook = sample_growth;
  uint64_t t0 = uv_hrtime();
  slow_burst(12, "SELECT $1::int FROM pg_sleep(0.2)", 5000);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  cfg_tick_hook = NULL;
  print_message("12 x 200 ms on up to 4 connections: %llu ms\n",
                (unsigned long long)ms);
  /* Serially it would take 2.4 s; four connections need three rounds. */
  assert_true(ms < 1500);
  assert_int_equal(seen_max_conns, 4);
  assert_true(seen_max_server <= 4);
  assert_true(seen_max_server >= 3);
  st = cfg_stats();
  assert_int_equal(st.connects, 4);
  assert_int_equal(cfg_total_conns(&st), 4);
  assert_int_equal(cfg_server_conns(), 4);
  assert_int_equal(st.errors, 0);
  cfg_close();
}

/* ---- idle_timeout_ms ---------------------------------------------------- */

static int shrunk_to_one(void) {
  orm_pool_stats_t st = cfg_stats();
  return cfg_total_conns(&st) == 1 && cfg_server_conns() == 1;
}

static void test_idle_timeout_shrinks_to_min(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1,
                                       .max_conns = 4,
                                       .no_pipeline = true,
                                       .idle_timeout_ms = 300});
  cfg_backend_pid();
  slow_burst(8, "SELECT $1::int FROM pg_sleep(0.1)", 5000);
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(cfg_total_conns(&st), 4);
  /* The maintenance timer runs every second. */
  assert_true(cfg_wait_for(shrunk_to_one, 3000));
  st = cfg_stats();
  uint64_t connects = st.connects;
  assert_int_equal(st.conns_idle, 1);
  /* The minimum stays: not closed, not churned. */
  cfg_run_ms(1500);
  st = cfg_stats();
  assert_int_equal(cfg_total_conns(&st), 1);
  assert_int_equal(st.connects, connects);
  assert_int_equal(cfg_server_conns(), 1);
  assert_int_equal(cfg_scalar("SELECT 3"), 3);
  cfg_close();
}

/* ---- max_lifetime_ms ---------------------------------------------------- */

typedef struct {
  int outstanding;
  int ok;
  int failed;
  int last_error;
  int64_t pids[32];
  int npids;
} lifetime_load_t;

static lifetime_load_t lload;

static void on_lifetime(orm_future_t *f, void *data) {
  (void)data;
  lload.outstanding = 0;
  int st = orm_future_status(f);
  if (st != 0) {
    lload.failed++;
    lload.last_error = st;
    return;
  }
  lload.ok++;
  int64_t pid = 0;
  orm_result_int(orm_future_value(f), 0, 0, &pid);
  if (lload.npids == 0 || lload.pids[lload.npids - 1] != pid) {
    if (lload.npids < 32)
      lload.pids[lload.npids++] = pid;
  }
}

/* One statement at a time, so the connection is mostly idle. */
static void lifetime_tick(void) {
  if (lload.outstanding)
    return;
  lload.outstanding = 1;
  assert_int_equal(orm_query_async(cfg_fx->pool,
                                   "SELECT pg_backend_pid()::int8", NULL, 0,
                                   on_lifetime, NULL, NULL),
                   0);
}

static void test_max_lifetime_retires(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){
                       .min_conns = 1, .max_conns = 1, .max_lifetime_ms = 400});
  int64_t first = cfg_backend_pid();
  memset(&lload, 0, sizeof lload);
  cfg_tick_hook = lifetime_tick;
  cfg_run_ms(2600);
  cfg_tick_hook = NULL;
  while (lload.outstanding)
    uv_run(&cfg_fx->loop, UV_RUN_ONCE);
  print_message("lifetime: %d ok, %d failed, %d backends\n", lload.ok,
                lload.failed, lload.npids);
  if (lload.failed)
    fail_msg("%d requests failed (last %s)", lload.failed,
             orm_err_name(lload.last_error));
  assert_true(lload.ok > 20);
  /* Replaced at least once, and never went back to an old backend. */
  assert_true(lload.npids >= 2);
  for (int i = 0; i < lload.npids; i++)
    for (int j = 0; j < i; j++)
      assert_true(lload.pids[i] != lload.pids[j]);
  assert_true(lload.pids[lload.npids - 1] != first);
  orm_pool_stats_t st = cfg_stats();
  assert_true(st.connects >= 2);
  assert_int_equal(st.errors, 0);
  assert_true(cfg_server_conns() <= 1);
  /* Retired only once idle: a statement outliving the lifetime finishes. */
  probe_t p = cfg_run_sql("SELECT 9, pg_backend_pid()::int8 FROM pg_sleep(1.3)",
                          NULL, 0);
  assert_int_equal(p.status, 0);
  assert_int_equal(p.value, 9);
  cfg_close();
}

/* ---- health_check_ms ---------------------------------------------------- */

static void health_check_case(bool no_pipeline) {
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1,
                                       .max_conns = 1,
                                       .no_pipeline = no_pipeline,
                                       .health_check_ms = 200});
  int64_t pid = cfg_backend_pid();
  cfg_run_ms(400); /* idle longer than health_check_ms */
  /* Killed while the loop does not run: the pool cannot have noticed by the
   * time the next request is dispatched; only the health check can. */
  cfg_admin_terminate(pid);
  probe_t p = {0};
  assert_int_equal(orm_query_async(cfg_fx->pool,
                                   "SELECT 21 * 2, pg_backend_pid()::int8",
                                   NULL, 0, cfg_on_probe, &p, NULL),
                   0);
  cfg_run_until(&p.done, 5000);
  if (p.status != 0)
    fail_msg("%s: the request went to the dead connection: %s %s",
             no_pipeline ? "no_pipeline" : "pipelined",
             orm_err_name(p.status), p.message);
  assert_int_equal(p.value, 42);
  assert_true(p.pid != pid);
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(st.errors, 0);
  assert_true(st.reconnects >= 1);
  cfg_close();
}

static void test_health_check_pipelined(void **state) {
  (void)state;
  health_check_case(false);
}

static void test_health_check_unpipelined(void **state) {
  (void)state;
  health_check_case(true);
}

/* ---- found in review ---------------------------------------------------- */

/* When connections above min_conns are idle past idle_timeout_ms and one of
 * them is broken (its reconnects fail), the broken one is the one to drop:
 * closing the working connection leaves the pool with nothing that serves.
 * Reconnects are made to fail with a database connection limit, on a
 * database of this test's own so that nothing else is refused. */
static void drop_limited_database(void) {
  orm_fx_t fx;
  orm_fx_open_admin(&fx, NULL, 0);
  orm_fx_sql(&fx, "DROP DATABASE IF EXISTS cfg_limit WITH (FORCE)");
  orm_fx_close_admin(&fx);
}

static void test_idle_timeout_keeps_working_conn(void **state) {
  (void)state;
  /* The server first, the pool once its database is there. */
  cfg_open_admin(SCHEMA);
  if (cfg_admin_int("SELECT rolcreatedb::int FROM pg_roles "
                    "WHERE rolname = current_user") != 1) {
    cfg_close_admin();
    skip();
  }
  orm_fx_sql(cfg_fx, "DROP DATABASE IF EXISTS cfg_limit WITH (FORCE)");
  orm_fx_sql(cfg_fx, "CREATE DATABASE cfg_limit CONNECTION LIMIT 2");
  orm_pool_config_t cfg = {.min_conns = 1,
                           .max_conns = 2,
                           .no_pipeline = true,
                           .idle_timeout_ms = 300,
                           .reconnect_min_ms = 100,
                           .reconnect_max_ms = 300};
  char *limited = orm_test_dsn_with("application_name", SCHEMA, "dbname",
                                    "cfg_limit", NULL);
  cfg.conninfo = limited;
  cfg_open_pool(cfg);
  free(limited);
  cfg_backend_pid();
  slow_burst(4, "SELECT $1::int FROM pg_sleep(0.1)", 5000);
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(cfg_total_conns(&st), 2);
  int64_t victim = cfg_admin_int(
      "SELECT min(pid) FROM pg_stat_activity WHERE datname = 'cfg_limit'");
  int64_t keeper = cfg_admin_int(
      "SELECT max(pid) FROM pg_stat_activity WHERE datname = 'cfg_limit'");
  /* From now on only one connection fits: the victim's reconnects fail. */
  orm_fx_sql(cfg_fx, "ALTER DATABASE cfg_limit CONNECTION LIMIT 1");
  cfg_admin_terminate(victim);
  cfg_run_ms(2300); /* two maintenance rounds */
  st = cfg_stats();
  int64_t keeper_alive =
      cfg_admin_int("SELECT count(*) FROM pg_stat_activity WHERE pid = %lld",
                    (long long)keeper);
  uint64_t failures = st.connect_failures;
  unsigned idle = st.conns_idle, total = cfg_total_conns(&st);
  uint64_t connects = st.connects;
  cfg_close();
  drop_limited_database();
  print_message("idle/broken: %llu failed reconnects, %llu connects, "
                "working backend %s\n",
                (unsigned long long)failures, (unsigned long long)connects,
                keeper_alive ? "kept" : "closed");
  assert_true(failures >= 1); /* the scenario happened */
  if (keeper_alive != 1)
    fail_msg("idle_timeout closed the working connection and kept the broken "
             "one (idle %u of %u, %llu connects)",
             idle, total, (unsigned long long)connects);
  assert_int_equal(idle, 1);
  assert_int_equal(total, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_acquire_timeout, cfg_abandon),
      cmocka_unit_test_teardown(test_grows_to_max, cfg_abandon),
      cmocka_unit_test_teardown(test_idle_timeout_shrinks_to_min, cfg_abandon),
      cmocka_unit_test_teardown(test_max_lifetime_retires, cfg_abandon),
      cmocka_unit_test_teardown(test_health_check_pipelined, cfg_abandon),
      cmocka_unit_test_teardown(test_health_check_unpipelined, cfg_abandon),
      cmocka_unit_test_teardown(test_idle_timeout_keeps_working_conn,
                                cfg_abandon),
  };
  /* UVORM_TEST_FILTER=test_name runs one test (cmocka's pattern). */
  const char *only = getenv("UVORM_TEST_FILTER");
  if (only != NULL)
    cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
