/* SPDX-License-Identifier: MIT */
/* Pool settings against a real server: transactions. Many transactions
 * queueing for few connections; and, found in review: cancelled COMMIT,
 * ROLLBACK and BEGIN leave a clean connection behind. (The fixture:
 * support/cfg_fixture.h.) */
#include "cfg_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "cfg_tx_test"

/* ---- many transactions, few connections --------------------------------- */

enum { NTX = 20, NCANCEL = 3 };

typedef struct {
  int id;
  int begin_calls;
  int begin_status;
  int status; /* of the last step */
  int committed;
  int finished;
  orm_tx_t *tx;
  orm_future_t *begin;
} txjob_t;

static txjob_t jobs[NTX];
static int jobs_finished;
static int cancels_done;
static unsigned seen_max_in_tx;
static unsigned seen_max_total;

static void sample_tx(void) {
  orm_pool_stats_t st = cfg_stats();
  if (st.conns_in_tx > seen_max_in_tx)
    seen_max_in_tx = st.conns_in_tx;
  if (cfg_total_conns(&st) > seen_max_total)
    seen_max_total = cfg_total_conns(&st);
}

static void job_finish(txjob_t *j, int status) {
  j->status = status;
  j->finished++;
  jobs_finished++;
}

static void on_job_commit(orm_future_t *f, void *data) {
  txjob_t *j = data;
  int st = orm_future_status(f);
  j->committed = st == 0;
  job_finish(j, st);
}

static void on_job_sleep(orm_future_t *f, void *data) {
  txjob_t *j = data;
  int st = orm_future_status(f);
  if (st != 0) {
    job_finish(j, st);
    assert_int_equal(orm_tx_rollback_async(j->tx, NULL, NULL, NULL), 0);
    return;
  }
  assert_int_equal(orm_tx_commit_async(j->tx, on_job_commit, j, NULL), 0);
}

static void on_job_insert(orm_future_t *f, void *data) {
  txjob_t *j = data;
  int st = orm_future_status(f);
  if (st != 0) {
    job_finish(j, st);
    assert_int_equal(orm_tx_rollback_async(j->tx, NULL, NULL, NULL), 0);
    return;
  }
  /* Hold the connection a little so that the others really queue. */
  assert_int_equal(orm_query_async(j->tx, "SELECT pg_sleep(0.05)", NULL, 0,
                                      on_job_sleep, j, NULL),
                   0);
}

static void on_job_begin(orm_future_t *f, void *data) {
  txjob_t *j = data;
  j->begin_calls++;
  j->begin_status = orm_future_status(f);
  if (j->begin_status != 0) {
    job_finish(j, j->begin_status);
    return;
  }
  if (!cancels_done) {
    /* The first BEGIN is in: the last ones still wait for a connection. */
    cancels_done = 1;
    for (int i = NTX - NCANCEL; i < NTX; i++) {
      assert_int_equal(orm_future_state(jobs[i].begin), ORM_FUTURE_PENDING);
      assert_int_equal(orm_future_cancel(jobs[i].begin), 0);
    }
  }
  j->tx = orm_future_value(f);
  orm_param_t v = ORM_INT4(j->id);
  assert_int_equal(orm_query_async(j->tx, "INSERT INTO cfg_tx VALUES ($1)",
                                      &v, 1, on_job_insert, j, NULL),
                   0);
}

static void test_many_transactions(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1, .max_conns = 4});
  orm_fx_sql(cfg_fx,
             "DROP TABLE IF EXISTS cfg_tx; CREATE TABLE cfg_tx (id int)");
  cfg_backend_pid();
  memset(jobs, 0, sizeof jobs);
  jobs_finished = 0;
  cancels_done = 0;
  seen_max_in_tx = seen_max_total = 0;
  cfg_tick_hook = sample_tx;
  for (int i = 0; i < NTX; i++) {
    jobs[i].id = i;
    assert_int_equal(orm_tx_begin_async(cfg_fx->pool, on_job_begin, &jobs[i],
                                        &jobs[i].begin),
                     0);
  }
  assert_int_equal(cfg_stats().queued, NTX);
  cfg_run_until_count(&jobs_finished, NTX, 10000);
  cfg_tick_hook = NULL;
  cfg_run_ms(50);
  int committed = 0;
  for (int i = 0; i < NTX; i++) {
    assert_int_equal(jobs[i].begin_calls, 1);
    assert_int_equal(jobs[i].finished, 1);
    if (i >= NTX - NCANCEL) {
      assert_int_equal(jobs[i].begin_status, ORM_ECANCELED);
    } else {
      if (!jobs[i].committed)
        fail_msg("transaction %d: %s", i, orm_err_name(jobs[i].status));
      committed++;
    }
    orm_future_release(jobs[i].begin);
  }
  assert_int_equal(committed, NTX - NCANCEL);
  assert_int_equal(cfg_admin_int("SELECT count(*) FROM cfg_tx"), NTX - NCANCEL);
  assert_int_equal(cfg_admin_int("SELECT count(DISTINCT id) FROM cfg_tx"),
                   NTX - NCANCEL);
  assert_int_equal(cfg_admin_int("SELECT count(*) FROM cfg_tx WHERE id >= %d",
                                 NTX - NCANCEL),
                   0);
  assert_int_equal(seen_max_in_tx, 4);
  assert_true(seen_max_total <= 4);
  orm_pool_stats_t st = cfg_stats();
  assert_int_equal(st.conns_in_tx, 0);
  assert_true(cfg_total_conns(&st) <= 4);
  assert_int_equal(cfg_server_idle_in_tx(), 0);
  assert_true(cfg_server_conns() <= 4);
  orm_fx_sql(cfg_fx, "DROP TABLE cfg_tx");
  cfg_close();
}

/* ---- found in review ---------------------------------------------------- */

/* A COMMIT or ROLLBACK cancelled before it was sent ends the transaction's
 * hold on the connection; the connection must not go back to the pool with
 * the transaction still open on the server. */
static void tx_end_cancelled_case(int commit) {
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_fx_sql(cfg_fx,
             "DROP TABLE IF EXISTS cfg_end; CREATE TABLE cfg_end (id int)");
  probe_t b = {0};
  orm_future_t *bf;
  assert_int_equal(orm_tx_begin_async(cfg_fx->pool, cfg_on_probe, &b, &bf), 0);
  cfg_run_until(&b.done, 5000);
  assert_int_equal(b.status, 0);
  orm_tx_t *tx = orm_future_value(bf);
  orm_future_release(bf);
  probe_t ins = {0};
  assert_int_equal(orm_query_async(tx, "INSERT INTO cfg_end VALUES (1)",
                                      NULL, 0, cfg_on_probe, &ins, NULL),
                   0);
  cfg_run_until(&ins.done, 5000);
  assert_int_equal(ins.status, 0);

  probe_t end = {0};
  orm_future_t *ef;
  assert_int_equal(commit ? orm_tx_commit_async(tx, cfg_on_probe, &end, &ef)
                          : orm_tx_rollback_async(tx, cfg_on_probe, &end, &ef),
                   0);
  assert_int_equal(orm_future_cancel(ef), 0);
  orm_future_release(ef);
  cfg_run_until(&end.done, 5000);
  assert_int_equal(end.status, ORM_ECANCELED);
  cfg_run_ms(50);

  /* The pool's only connection, used by the next request. */
  probe_t after = cfg_run_sql("INSERT INTO cfg_end VALUES (2)", NULL, 0);
  assert_int_equal(after.status, 0);
  cfg_run_ms(50);
  int64_t open_tx = cfg_server_idle_in_tx();
  int64_t seen = cfg_admin_int("SELECT count(*) FROM cfg_end WHERE id = 2");
  int64_t leaked = cfg_admin_int("SELECT count(*) FROM cfg_end WHERE id = 1");
  /* Ends the session, whatever state it was left in (and drops the table
   * with the schema). */
  cfg_close();
  if (open_tx != 0 || seen != 1)
    fail_msg("after a cancelled %s: %lld connection(s) idle in transaction; "
             "a later autocommit INSERT is %s to others",
             commit ? "COMMIT" : "ROLLBACK", (long long)open_tx,
             seen == 1 ? "visible" : "invisible");
  /* Never sent, so the transaction did not commit. */
  assert_int_equal(leaked, 0);
}

static void test_cancelled_commit_releases_clean_conn(void **state) {
  (void)state;
  tx_end_cancelled_case(1);
}

static void test_cancelled_rollback_releases_clean_conn(void **state) {
  (void)state;
  tx_end_cancelled_case(0);
}

/* A BEGIN cancelled after it was sent: the pool rolls back behind the
 * caller's back and the connection comes back clean. */
static orm_future_t *inflight_begin;
static int inflight_cancelled;

static void cancel_sent_begin(uv_prepare_t *h) {
  (void)h;
  /* After the idle phase has sent it, before the poll phase reads the
   * answer. */
  if (!inflight_cancelled && cfg_stats().in_flight > 0) {
    inflight_cancelled = 1;
    assert_int_equal(orm_future_cancel(inflight_begin), 0);
  }
}

static int back_to_idle(void) {
  orm_pool_stats_t st = cfg_stats();
  return st.conns_in_tx == 0 && st.conns_idle == 1;
}

static void test_begin_cancelled_in_flight(void **state) {
  (void)state;
  cfg_open(SCHEMA, (orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_fx_sql(cfg_fx,
             "DROP TABLE IF EXISTS cfg_bg; CREATE TABLE cfg_bg (id int)");
  cfg_backend_pid();
  uv_prepare_t *hook = malloc(sizeof *hook);
  assert_non_null(hook);
  assert_int_equal(uv_prepare_init(&cfg_fx->loop, hook), 0);
  assert_int_equal(uv_prepare_start(hook, cancel_sent_begin), 0);
  inflight_cancelled = 0;
  probe_t b = {0};
  assert_int_equal(
      orm_tx_begin_async(cfg_fx->pool, cfg_on_probe, &b, &inflight_begin), 0);
  cfg_run_until(&b.done, 5000);
  uv_close((uv_handle_t *)hook, cfg_free_handle);
  assert_true(inflight_cancelled);
  assert_int_equal(b.status, ORM_ECANCELED);
  assert_null(orm_future_value(inflight_begin));
  orm_future_release(inflight_begin);
  assert_true(cfg_wait_for(back_to_idle, 3000));
  cfg_run_ms(50);
  assert_int_equal(b.done, 1);
  probe_t after = cfg_run_sql("INSERT INTO cfg_bg VALUES (1)", NULL, 0);
  assert_int_equal(after.status, 0);
  assert_int_equal(cfg_admin_int("SELECT count(*) FROM cfg_bg"), 1);
  assert_int_equal(cfg_server_idle_in_tx(), 0);
  orm_fx_sql(cfg_fx, "DROP TABLE cfg_bg");
  cfg_close();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_many_transactions, cfg_abandon),
      cmocka_unit_test_teardown(test_cancelled_commit_releases_clean_conn,
                                cfg_abandon),
      cmocka_unit_test_teardown(test_cancelled_rollback_releases_clean_conn,
                                cfg_abandon),
      cmocka_unit_test_teardown(test_begin_cancelled_in_flight, cfg_abandon),
  };
  /* UVORM_TEST_FILTER=test_name runs one test (cmocka's pattern). */
  const char *only = getenv("UVORM_TEST_FILTER");
  if (only != NULL)
    cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
