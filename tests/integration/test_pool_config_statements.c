/* SPDX-License-Identifier: MIT */
/* Pool settings against a real server: how statements are sent.
 * no_prepare, named statements after a reconnect, Parse failures without
 * pipelining, cancels of statements queued behind others on one
 * connection, orm_future_all over real queries; and, found in review:
 * cancels that land on the wrong statement and per-future deadlines under
 * pool timeouts. (The fixture: support/cfg_fixture.h.) */
#include "cfg_fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "cfg_stmt_test"

/* ---- no_prepare --------------------------------------------------------- */

static void test_no_prepare(void **state) {
  (void)state;
  /* Control: with named statements the same check does see them. */
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_param_t v = ORM_INT4(20);
  assert_int_equal(cfg_run_sql("SELECT $1::int * 2", &v, 1).value, 40);
  assert_true(cfg_scalar("SELECT count(*) FROM pg_prepared_statements") >= 1);
  cfg_close();

  cfg_open(SCHEMA, (orm_pool_config_t){
                       .min_conns = 1, .max_conns = 1, .no_prepare = true});
  for (int i = 0; i < 5; i++) {
    orm_param_t p = ORM_INT4(i);
    probe_t r = cfg_run_sql("SELECT $1::int * 2", &p, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.value, 2 * i);
  }
  /* One connection: this is the session that ran the statements above. */
  assert_int_equal(cfg_scalar("SELECT count(*) FROM pg_prepared_statements"),
                   0);

  cfg_run_sql("DROP TABLE IF EXISTS cfg_np", NULL, 0);
  assert_int_equal(
      cfg_run_sql("CREATE TABLE cfg_np (id int PRIMARY KEY)", NULL, 0).status,
      0);
  assert_int_equal(
      cfg_run_sql("INSERT INTO cfg_np VALUES (1000000)", NULL, 0).status, 0);
  enum { N = 60 };
  probe_t probes[N];
  memset(probes, 0, sizeof probes);
  int done = 0;
  for (int i = 0; i < N; i++) {
    const char *sql = "INSERT INTO cfg_np VALUES ($1) RETURNING id";
    orm_param_t p = ORM_INT4(i);
    if (i == 10)
      sql = "INSRT INTO cfg_np VALUES ($1)"; /* 42601 */
    else if (i == 25)
      p = ORM_INT4(1000000); /* 23505 */
    else if (i == 40)
      sql = "SELECT 1 / ($1::int - 40)"; /* 22012 */
    assert_int_equal(orm_query_async(cfg_fx->pool, sql, &p, 1, cfg_on_probe,
                                     &probes[i], NULL),
                     0);
  }
  while (done < N) {
    uv_run(&cfg_fx->loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < N; i++)
      done += probes[i].done;
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(probes[i].done, 1);
    if (i == 10 || i == 25 || i == 40) {
      assert_int_equal(probes[i].status, ORM_ESERVER);
      continue;
    }
    if (probes[i].status != 0)
      fail_msg("neighbour %d failed: %s %s", i, probes[i].sqlstate,
               probes[i].message);
    assert_int_equal(probes[i].value, i);
  }
  assert_string_equal(probes[10].sqlstate, "42601");
  assert_string_equal(probes[25].sqlstate, "23505");
  assert_string_equal(probes[40].sqlstate, "22012");
  assert_int_equal(cfg_admin_int("SELECT count(*) FROM cfg_np"), N - 3 + 1);
  assert_int_equal(cfg_admin_int("SELECT count(DISTINCT id) FROM cfg_np"),
                   N - 3 + 1);
  assert_true(cfg_stats().resends > 0); /* they did share segments */
  assert_int_equal(cfg_scalar("SELECT count(*) FROM pg_prepared_statements"),
                   0);
  orm_fx_sql(cfg_fx, "DROP TABLE cfg_np");
  cfg_close();
}

/* ---- named statements after a reconnect --------------------------------- */

static int reconnected_idle(void) {
  orm_pool_stats_t st = cfg_stats();
  return st.reconnects >= 1 && st.conns_idle == 1;
}

static void reprepare_case(bool no_pipeline) {
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1,
                                       .max_conns = 1,
                                       .no_pipeline = no_pipeline});
  const char *sql = "SELECT $1::int + 1, pg_backend_pid()::int8";
  orm_param_t v = ORM_INT4(41);
  probe_t a = cfg_run_sql(sql, &v, 1);
  assert_int_equal(a.status, 0);
  assert_int_equal(a.value, 42);
  assert_int_equal(
      cfg_admin_int("SELECT count(*) FROM pg_stat_activity WHERE pid = %lld",
                    (long long)a.pid),
      1);
  cfg_admin_terminate(a.pid);
  assert_true(cfg_wait_for(reconnected_idle, 3000));
  v = ORM_INT4(99);
  probe_t b = cfg_run_sql(sql, &v, 1);
  if (b.status != 0)
    fail_msg("after reconnect: %s %s %s", orm_err_name(b.status), b.sqlstate,
             b.message);
  assert_int_equal(b.value, 100);
  assert_true(b.pid != a.pid);
  orm_pool_stats_t st = cfg_stats();
  /* Prepared afresh, not rescued from "prepared statement does not exist". */
  assert_int_equal(st.resends, 0);
  assert_int_equal(st.errors, 0);
  probe_t c = cfg_run_sql("SELECT count(*) FROM pg_prepared_statements "
                          "WHERE statement = $1",
                          &ORM_TEXT(sql), 1);
  assert_int_equal(c.status, 0);
  assert_int_equal(c.value, 1);
  cfg_close();
}

static void test_reprepare_after_reconnect(void **state) {
  (void)state;
  reprepare_case(false);
  reprepare_case(true);
}

/* ---- a failed Parse without pipelining ---------------------------------- */

static void test_parse_error_unpipelined(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){
                       .min_conns = 1, .max_conns = 1, .no_pipeline = true});
  int64_t pid = cfg_backend_pid();
  orm_param_t v = ORM_INT4(1);
  for (int round = 0; round < 2; round++) {
    /* Twice: the statement's Parse is tried again, and fails the same. */
    probe_t bad = cfg_run_sql("SELEC $1::int", &v, 1);
    assert_int_equal(bad.status, ORM_ESERVER);
    assert_string_equal(bad.sqlstate, "42601");
    assert_non_null(strstr(bad.message, "syntax"));
    probe_t good =
        cfg_run_sql("SELECT $1::int + 1, pg_backend_pid()::int8", &v, 1);
    assert_int_equal(good.status, 0);
    assert_int_equal(good.value, 2);
    assert_int_equal(good.pid, pid); /* the same connection served it */
  }
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(st.connects, 1);
  assert_int_equal(st.errors, 2);
  /* Failed where it failed: not sent on to Bind/Execute and retried. */
  assert_int_equal(st.resends, 0);
  cfg_close();
}

/* ---- cancelling a statement queued behind others on its connection ------ */

static void test_cancel_behind_others(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  cfg_backend_pid();
  probe_t sleeper = {0}, q[5];
  memset(q, 0, sizeof q);
  orm_future_t *f[5];
  assert_int_equal(orm_query_async(cfg_fx->pool,
                                   "SELECT 100 FROM pg_sleep(0.3)", NULL, 0,
                                   cfg_on_probe, &sleeper, NULL),
                   0);
  for (int i = 0; i < 5; i++) {
    orm_param_t v = ORM_INT4(i + 1);
    assert_int_equal(orm_query_async(cfg_fx->pool, "SELECT $1::int * 10", &v, 1,
                                     cfg_on_probe, &q[i], &f[i]),
                     0);
  }
  cfg_run_ms(60);
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(st.in_flight, 6); /* all sent, behind the sleep */
  assert_int_equal(orm_future_cancel(f[2]), 0);
  assert_int_equal(q[2].done, 0); /* never inside the call */
  int done = 0;
  while (done < 6) {
    uv_run(&cfg_fx->loop, UV_RUN_ONCE);
    done = sleeper.done;
    for (int i = 0; i < 5; i++)
      done += q[i].done;
  }
  cfg_run_ms(100); /* nothing arrives twice */
  assert_int_equal(sleeper.done, 1);
  assert_int_equal(sleeper.status, 0);
  assert_int_equal(sleeper.value, 100);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(q[i].done, 1);
    if (i == 2) {
      assert_int_equal(q[i].status, ORM_ECANCELED);
      continue;
    }
    assert_int_equal(q[i].status, 0);
    assert_int_equal(q[i].value, (i + 1) * 10);
  }
  assert_int_equal(orm_future_state(f[2]), ORM_FUTURE_CANCELLED);
  assert_int_equal(orm_future_cancel(f[2]), ORM_ESTATE);
  for (int i = 0; i < 5; i++)
    orm_future_release(f[i]);
  st = cfg_stats();
  assert_int_equal(st.cancels, 1);
  assert_int_equal(st.errors, 0);
  assert_int_equal(cfg_scalar("SELECT 8"), 8);
  cfg_close();
}

/* A cancel for a statement the server already finished must not land on
 * what the connection runs next. Here that is a transaction's statement,
 * which the pool never re-sends. */
typedef struct {
  probe_t begin, sleep, commit;
  orm_tx_t *tx;
  int last_burst_done;
} stray_t;

static stray_t stray;

static void stray_on_commit(orm_future_t *f, void *data) {
  cfg_on_probe(f, &stray.commit);
}

static void stray_on_sleep(orm_future_t *f, void *data) {
  cfg_on_probe(f, &stray.sleep);
  assert_int_equal(orm_tx_commit_async(stray.tx, stray_on_commit, NULL, NULL),
                   0);
}

static void stray_on_begin(orm_future_t *f, void *data) {
  stray.begin.done++;
  stray.begin.status = orm_future_status(f);
  if (stray.begin.status != 0) {
    snprintf(stray.begin.sqlstate, sizeof stray.begin.sqlstate, "%s",
             orm_future_error(f)->sqlstate);
    stray.sleep.done = stray.commit.done = 1;
    return;
  }
  stray.tx = orm_future_value(f);
  assert_int_equal(orm_query_async(stray.tx,
                                      "SELECT 5 FROM pg_sleep(0.2)", NULL, 0,
                                      stray_on_sleep, NULL, NULL),
                   0);
}

static void stray_on_last(orm_future_t *f, void *data) {
  cfg_on_probe(f, data);
  /* The burst is over: the connection's next work is a transaction. */
  assert_int_equal(orm_tx_begin_async(cfg_fx->pool, stray_on_begin, NULL, NULL),
                   0);
}

static void test_cancel_does_not_stray(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  cfg_backend_pid();
  memset(&stray, 0, sizeof stray);
  probe_t sleeper = {0}, q[5];
  memset(q, 0, sizeof q);
  orm_future_t *victim;
  assert_int_equal(orm_query_async(cfg_fx->pool, "SELECT 1 FROM pg_sleep(0.3)",
                                   NULL, 0, cfg_on_probe, &sleeper, NULL),
                   0);
  for (int i = 0; i < 5; i++) {
    orm_param_t v = ORM_INT4(i);
    assert_int_equal(orm_query_async(cfg_fx->pool, "SELECT $1::int", &v, 1,
                                     i == 4 ? stray_on_last : cfg_on_probe,
                                     &q[i], i == 2 ? &victim : NULL),
                     0);
  }
  cfg_run_ms(60);
  assert_int_equal(orm_future_cancel(victim), 0);
  orm_future_release(victim);
  cfg_run_until(&stray.commit.done, 5000);
  cfg_close(); /* before asserting: a failure must not leave work behind */
  if (stray.begin.status != 0)
    fail_msg("BEGIN failed: %s %s", orm_err_name(stray.begin.status),
             stray.begin.sqlstate);
  if (stray.sleep.status != 0)
    fail_msg("the transaction's statement was hit by a cancel meant for "
             "another one: %s %s %s",
             orm_err_name(stray.sleep.status), stray.sleep.sqlstate,
             stray.sleep.message);
  assert_int_equal(stray.sleep.value, 5);
  assert_int_equal(stray.commit.status, 0);
}

/* ---- orm_future_all over real queries ----------------------------------- */

typedef struct {
  int children_done;
  int all_calls;
  int children_done_at_all;
  int all_status;
} join_t;

static join_t join;

static void on_child(orm_future_t *f, void *data) {
  (void)f;
  (void)data;
  join.children_done++;
}

static void on_all(orm_future_t *f, void *data) {
  (void)data;
  join.all_calls++;
  join.all_status = orm_future_status(f);
  join.children_done_at_all = join.children_done;
}

static void test_future_all_real(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 4, .max_conns = 4});
  enum { N = 100, BAD = 57 };
  for (int round = 0; round < 2; round++) {
    orm_future_t *f[N];
    memset(&join, 0, sizeof join);
    for (int i = 0; i < N; i++) {
      orm_param_t v = ORM_INT8(i);
      const char *sql = round == 0 && i == BAD ? "SELECT 1 / ($1::int8 - 57)"
                                               : "SELECT $1::int8 * 3 + 7";
      assert_int_equal(
          orm_query_async(cfg_fx->pool, sql, &v, 1, on_child, NULL, &f[i]), 0);
    }
    orm_future_t *all;
    assert_int_equal(orm_future_all(f, N, on_all, NULL, &all), 0);
    cfg_run_until(&join.all_calls, 5000);
    cfg_run_ms(20);
    assert_int_equal(join.all_calls, 1);
    assert_int_equal(join.children_done_at_all, N);
    if (round == 0) {
      assert_int_equal(join.all_status, ORM_ESERVER);
      assert_int_equal(orm_future_state(all), ORM_FUTURE_FAILED);
    } else {
      assert_int_equal(join.all_status, 0);
      assert_int_equal(orm_future_state(all), ORM_FUTURE_RESOLVED);
    }
    for (int i = 0; i < N; i++) {
      if (round == 0 && i == BAD) {
        assert_int_equal(orm_future_status(f[i]), ORM_ESERVER);
        assert_string_equal(orm_future_error(f[i])->sqlstate, "22012");
      } else {
        int64_t got = -1;
        assert_int_equal(orm_future_status(f[i]), 0);
        assert_int_equal(orm_result_int(orm_future_value(f[i]), 0, 0, &got),
                         0);
        assert_int_equal(got, i * 3 + 7);
      }
      orm_future_release(f[i]);
    }
    orm_future_release(all);
  }
  cfg_close();
}

/* ---- found in review ---------------------------------------------------- */

/* orm_future_timeout() promises ETIMEDOUT `timeout_ms` from now. A pool with
 * an acquire or statement timeout of its own must not drop or replace that
 * deadline when it sends the request. */
static void deadline_case(orm_pool_config_t cfg, const char *what) {
  cfg_open(SCHEMA, cfg);
  cfg_backend_pid();
  probe_t p = {0};
  orm_future_t *f;
  uv_update_time(&cfg_fx->loop);
  uint64_t start = uv_now(&cfg_fx->loop);
  assert_int_equal(orm_query_async(cfg_fx->pool, "SELECT 1 FROM pg_sleep(1.5)",
                                   NULL, 0, cfg_on_probe, &p, &f),
                   0);
  assert_int_equal(orm_future_timeout(f, 200), 0);
  cfg_run_until(&p.done, 6000);
  uint64_t took = p.completed_at - start;
  orm_future_release(f);
  cfg_close();
  if (p.status != ORM_ETIMEDOUT)
    fail_msg("%s: a 200 ms orm_future_timeout ended as %s after %llu ms", what,
             orm_err_name(p.status), (unsigned long long)took);
  assert_true(took < 1000);
}

static void test_future_timeout_kept_by_acquire_timeout(void **state) {
  (void)state;
  deadline_case((orm_pool_config_t){.min_conns = 1,
                                    .max_conns = 1,
                                    .acquire_timeout_ms = 5000},
                "acquire_timeout_ms");
}

static void test_future_timeout_kept_by_statement_timeout(void **state) {
  (void)state;
  deadline_case((orm_pool_config_t){.min_conns = 1,
                                    .max_conns = 1,
                                    .statement_timeout_ms = 5000},
                "statement_timeout_ms");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_no_prepare, cfg_abandon),
      cmocka_unit_test_teardown(test_reprepare_after_reconnect, cfg_abandon),
      cmocka_unit_test_teardown(test_parse_error_unpipelined, cfg_abandon),
      cmocka_unit_test_teardown(test_cancel_behind_others, cfg_abandon),
      cmocka_unit_test_teardown(test_cancel_does_not_stray, cfg_abandon),
      cmocka_unit_test_teardown(test_future_all_real, cfg_abandon),
      cmocka_unit_test_teardown(test_future_timeout_kept_by_acquire_timeout,
                                cfg_abandon),
      cmocka_unit_test_teardown(test_future_timeout_kept_by_statement_timeout,
                                cfg_abandon),
  };
  /* UVORM_TEST_FILTER=test_name runs one test (cmocka's pattern). */
  const char *only = getenv("UVORM_TEST_FILTER");
  if (only != NULL)
    cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
