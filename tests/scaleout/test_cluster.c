/* SPDX-License-Identifier: MIT */
/* A primary and two streaming replicas (scripts/pg-test-cluster): reads
 * routed to replicas and spread between them, writes, FOR UPDATE and raw
 * SQL to the primary; read-your-writes through a session, proved with
 * replay paused on the replicas (a plain read then sees the stale replica,
 * the session's read the primary); a lagging replica leaves rotation and
 * comes back; a replica killed, all replicas down, the primary down (reads
 * go on, writes fail fast); a "replica" that is a primary; bad arguments. */
#include "support.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <uvorm.h>

#define ROW_FIELDS(X)                                                          \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(body, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(row, ROW_FIELDS);
ORM_MODEL_DEFINE(row, "cluster_rows", ROW_FIELDS);

static const char *primary_dsn, *replica_dsn[2];

typedef struct {
  int outs, ins, not_standby, behind;
} logbook_t;
static logbook_t logbook;

static void on_log(orm_pool_t *pool, const orm_log_record_t *r, void *data) {
  (void)pool;
  (void)data;
  if (strcmp(r->event, "replica_out") == 0) {
    logbook.outs++;
    if (strstr(r->message, "not a standby") != NULL)
      logbook.not_standby++;
    if (strstr(r->message, "behind the primary") != NULL)
      logbook.behind++;
  } else if (strcmp(r->event, "replica_in") == 0) {
    logbook.ins++;
  }
  /* Never the conninfo. */
  assert_null(strstr(r->message, "dbname="));
}

/* Query events: the cluster's checks and the sessions' LSN probes are
 * flagged internal, and nothing else is. */
static int internal_checks, internal_probes;
static void on_query(orm_pool_t *pool, const orm_query_event_t *e,
                     void *data) {
  (void)pool;
  (void)data;
  int checks = strcmp(e->operation, "primary_check") == 0 ||
               strcmp(e->operation, "replica_check") == 0;
  int probe = strcmp(e->operation, "lsn_probe") == 0;
  if (e->internal != (checks || probe))
    fail_msg("operation %s: internal %d", e->operation, e->internal);
  internal_checks += checks;
  internal_probes += probe;
}

/* ---- helpers ---------------------------------------------------------------- */

static PGconn *connect_as(const char *dsn, const char *user) {
  char buf[512];
  snprintf(buf, sizeof buf, "%s user=%s", dsn, user);
  return pg_connect(buf);
}

/* What an orm_find_async found: status, and the row's body. */
typedef struct {
  int done, status;
  char body[32];
} found_t;

static void on_found(orm_future_t *f, void *data) {
  found_t *x = data;
  x->done = 1;
  x->status = orm_future_status(f);
  if (x->status == 0) {
    const row_t *r = orm_future_row(f);
    snprintf(x->body, sizeof x->body, "%s", r->body);
  }
}

static int found_done(void *arg) { return ((found_t *)arg)->done; }

static void find(orm_exec_t *ex, int64_t id, found_t *x) {
  memset(x, 0, sizeof *x);
  assert_int_equal(orm_find_async(ex, row_model(), ORM_INT8(id), on_found, x,
                                  NULL),
                   0);
  run_until(found_done, x, 15000, "a find");
}


static orm_cluster_t *open_cluster(const char *const *replicas, size_t n,
                                   uint64_t max_lag_ms) {
  orm_cluster_t *c;
  orm_cluster_config_t cfg = {
      .primary = primary_dsn,
      .replicas = replicas,
      .nreplicas = n,
      .pool = {.min_conns = 1,
               .max_conns = 2,
               .reconnect_min_ms = 20,
               .reconnect_max_ms = 200,
               .on_log = on_log,
               .on_query = on_query},
      .max_lag_ms = max_lag_ms,
      .check_ms = 20,
  };
  assert_int_equal(orm_cluster_open(&c, &loop, &cfg), 0);
  return c;
}

static int closed;
static void on_closed(orm_cluster_t *c, void *data) {
  (void)c;
  (void)data;
  closed++;
}

static void close_cluster(orm_cluster_t *c) {
  closed = 0;
  assert_int_equal(orm_cluster_close(c, on_closed), 0);
  assert_int_equal(orm_cluster_close(c, on_closed), ORM_ECLOSED);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(closed, 1);
}

typedef struct {
  orm_cluster_t *c;
  size_t i;
  bool want;
} rot_t;

static int rotation_is(void *arg) {
  rot_t *r = arg;
  orm_replica_state_t st;
  assert_int_equal(orm_cluster_replica_state(r->c, r->i, &st), 0);
  return st.in_rotation == r->want;
}

static void wait_rotation(orm_cluster_t *c, size_t i, bool want,
                          uint64_t ms) {
  rot_t r = {c, i, want};
  run_until(rotation_is, &r, ms, want ? "a replica in rotation"
                                      : "a replica out of rotation");
}

/* Replays on both replicas until each has what the primary has now. */
static void wait_replicated(PGconn *primary) {
  char q[160];
  PGresult *res = PQexec(primary, "SELECT pg_current_wal_insert_lsn()");
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  snprintf(q, sizeof q,
           "SELECT (pg_last_wal_replay_lsn() >= '%s')::int",
           PQgetvalue(res, 0, 0));
  PQclear(res);
  for (int i = 0; i < 2; i++) {
    PGconn *r = connect_as(replica_dsn[i], "uvorm");
    int ok = 0;
    for (int t = 0; t < 500 && !ok; t++) {
      ok = pg_int(r, q) == 1;
      if (!ok)
        uv_sleep(10);
    }
    PQfinish(r);
    if (!ok)
      fail_msg("replica %d did not catch up", i + 1);
  }
}

static PGconn *primary_admin;

static int group_setup(void **state) {
  (void)state;
  primary_dsn = getenv("UVORM_TEST_PRIMARY_DSN");
  replica_dsn[0] = getenv("UVORM_TEST_REPLICA1_DSN");
  replica_dsn[1] = getenv("UVORM_TEST_REPLICA2_DSN");
  if (primary_dsn == NULL || replica_dsn[0] == NULL || replica_dsn[1] == NULL ||
      !*replica_dsn[0] || !*replica_dsn[1])
    return -1;
  uv_loop_init(&loop);
  primary_admin = connect_as(primary_dsn, "uvorm");
  pg_sql(primary_admin, "SET client_min_messages = warning");
  pg_sql(primary_admin, "DROP TABLE IF EXISTS cluster_rows");
  pg_sql(primary_admin, "CREATE TABLE cluster_rows (id int8 PRIMARY KEY, "
                     "body text NOT NULL)");
  pg_sql(primary_admin, "INSERT INTO cluster_rows SELECT g, 'row ' || g "
                     "FROM generate_series(1, 100) g");
  wait_replicated(primary_admin);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  if (primary_admin != NULL) {
    pg_sql(primary_admin, "DROP TABLE IF EXISTS cluster_rows");
    PQfinish(primary_admin);
  }
  orm_test_loop_close(&loop);
  return 0;
}

static void wait_both_in(orm_cluster_t *c) {
  wait_rotation(c, 0, true, 10000);
  wait_rotation(c, 1, true, 10000);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_routing(void **state) {
  (void)state;
  orm_cluster_t *c = open_cluster(replica_dsn, 2, 1000);
  wait_both_in(c);
  orm_pool_stats_t before[2], after[2];
  for (int i = 0; i < 2; i++)
    orm_pool_stats(orm_cluster_replica(c, i), &before[i]);

  /* 200 finds at once: all on replicas, spread by load. */
  enum { N = 200 };
  static found_t f[N];
  memset(f, 0, sizeof f);
  for (int i = 0; i < N; i++)
    assert_int_equal(orm_find_async(c, row_model(), ORM_INT8(1 + i % 100),
                                    on_found, &f[i], NULL),
                     0);
  for (int i = 0; i < N; i++) {
    run_until(found_done, &f[i], 15000, "finds");
    assert_int_equal(f[i].status, 0);
  }
  assert_string_equal(f[41].body, "row 42");
  orm_cluster_stats_t st;
  assert_int_equal(orm_cluster_stats(c, &st), 0);
  assert_int_equal(st.reads_replica, N);
  assert_int_equal(st.reads_primary, 0);
  for (int i = 0; i < 2; i++) {
    orm_pool_stats(orm_cluster_replica(c, i), &after[i]);
    /* Each replica took a fair share (checks add a few). */
    assert_true(after[i].queries - before[i].queries >= N / 5);
  }

  /* A write goes to the primary: on a standby it would fail (25006). */
  row_t r = {.id = 500, .body = "written"};
  orm_step_t s = {0};
  assert_int_equal(orm_insert_async(c, row_model(), &r, orm_fx_on_step, &s, NULL), 0);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  /* FOR UPDATE too. */
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, row_model()), 0);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(500)), 0);
  assert_int_equal(orm_query_for_update(q), 0);
  memset(&s, 0, sizeof s);
  assert_int_equal(orm_find_all_async(c, NULL, q, orm_fx_on_step, &s, NULL), 0);
  orm_query_free(q);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  assert_int_equal(orm_cluster_stats(c, &st), 0);
  assert_int_equal(st.writes, 2);

  /* Raw SQL: the primary, unless sent to a replica. */
  assert_int_equal(raw_int(orm_cluster_exec(c), "SELECT pg_is_in_recovery()"), 0);
  assert_int_equal(
      raw_int(orm_cluster_replica_exec(c), "SELECT pg_is_in_recovery()"), 1);
  /* A write sent to a replica fails there, clearly. */
  memset(&s, 0, sizeof s);
  assert_int_equal(orm_insert_async(orm_cluster_replica_exec(c), row_model(),
                                    &(row_t){.id = 501, .body = "x"}, orm_fx_on_step,
                                    &s, NULL),
                   0);
  wait_step(&s);
  assert_int_equal(s.status, ORM_ESERVER);
  assert_string_equal(s.sqlstate, "25006");
  /* Transactions on the primary's pool. */
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(orm_cluster_primary(c), &tx), 0);
  assert_int_equal(raw_int(orm_tx_exec(tx), "SELECT pg_is_in_recovery()"), 0);
  memset(&s, 0, sizeof s);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &s, NULL), 0);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  close_cluster(c);
  pg_sql(primary_admin, "DELETE FROM cluster_rows WHERE id > 100");
}

static void replay(const char *what) {
  char q[64];
  snprintf(q, sizeof q, "SELECT pg_wal_replay_%s()", what);
  for (int i = 0; i < 2; i++) {
    PGconn *r = connect_as(replica_dsn[i], "postgres");
    pg_sql(r, q);
    PQfinish(r);
  }
}

static void test_read_your_writes(void **state) {
  (void)state;
  /* A large bound: paused replicas stay in rotation, stale. */
  orm_cluster_t *c = open_cluster(replica_dsn, 2, 60000);
  wait_both_in(c);
  orm_session_t *s;
  assert_int_equal(orm_session_open(c, &s), 0);
  assert_int_equal(orm_session_lsn(s), 0);
  assert_true(internal_checks > 0); /* flagged internal (on_query) */

  replay("pause");
  row_t r = {.id = 1000, .body = "mine"};
  orm_step_t w = {0};
  int probes = internal_probes;
  assert_int_equal(orm_insert_async(s, row_model(), &r, orm_fx_on_step, &w, NULL), 0);
  wait_step(&w);
  assert_int_equal(w.status, 0);
  assert_true(internal_probes > probes); /* the write's LSN probe */
  uint64_t lsn = orm_session_lsn(s);
  assert_true(lsn > 0 && lsn != UINT64_MAX);

  orm_cluster_stats_t st0, st;
  orm_cluster_stats(c, &st0);
  /* The cluster's executor reads a replica, which has not replayed it. */
  found_t x;
  find(orm_cluster_exec(c), 1000, &x);
  assert_int_equal(x.status, ORM_ENOTFOUND);
  /* The session's read goes where the write shows: the primary. */
  find(orm_session_exec(s), 1000, &x);
  assert_int_equal(x.status, 0);
  assert_string_equal(x.body, "mine");
  orm_cluster_stats(c, &st);
  assert_int_equal(st.reads_replica - st0.reads_replica, 1);
  assert_int_equal(st.reads_behind - st0.reads_behind, 1);

  /* Carried to another session, the LSN means the same. */
  orm_session_t *s2;
  assert_int_equal(orm_session_open(c, &s2), 0);
  assert_int_equal(orm_session_set_lsn(s2, lsn), 0);
  assert_int_equal(orm_session_set_lsn(s2, 1), 0); /* never backwards */
  assert_int_equal(orm_session_lsn(s2), lsn);
  find(orm_session_exec(s2), 1000, &x);
  assert_int_equal(x.status, 0);

  /* Replayed: the session reads a replica again. */
  replay("resume");
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + 10000;
  for (;;) {
    orm_cluster_stats(c, &st0);
    find(orm_session_exec(s), 1000, &x);
    assert_int_equal(x.status, 0);
    orm_cluster_stats(c, &st);
    if (st.reads_replica > st0.reads_replica)
      break;
    run_ms(20);
    if (uv_now(&loop) > end)
      fail_msg("the session never read a replica again");
  }

  /* A transaction of the session: its COMMIT is tracked too. */
  replay("pause");
  orm_tx_t *tx;
  assert_int_equal(orm_session_tx_begin(s, 0, &tx), 0);
  memset(&w, 0, sizeof w);
  assert_int_equal(orm_insert_async(tx, row_model(),
                                    &(row_t){.id = 1001, .body = "in tx"},
                                    NULL, NULL, NULL),
                   0);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &w, NULL), 0);
  wait_step(&w);
  assert_int_equal(w.status, 0);
  assert_true(orm_session_lsn(s) > lsn);
  find(orm_session_exec(s), 1001, &x);
  assert_int_equal(x.status, 0);
  find(orm_cluster_exec(c), 1001, &x);
  assert_int_equal(x.status, ORM_ENOTFOUND);
  replay("resume");

  /* With replay running: write, then read 100 times at each delay. Every
   * read sees its write; where they went is printed for the record. */
  static const int delays[] = {0, 5, 50};
  for (int d = 0; d < 3; d++) {
    orm_cluster_stats(c, &st0);
    for (int i = 0; i < 100; i++) {
      int64_t id = 2000 + d * 100 + i;
      row_t n = {.id = id, .body = "loop"};
      memset(&w, 0, sizeof w);
      assert_int_equal(orm_insert_async(s, row_model(), &n, orm_fx_on_step, &w, NULL),
                       0);
      wait_step(&w);
      assert_int_equal(w.status, 0);
      if (delays[d] > 0)
        run_ms((uint64_t)delays[d]);
      find(orm_session_exec(s), id, &x);
      assert_int_equal(x.status, 0);
    }
    orm_cluster_stats(c, &st);
    printf("# read-your-writes, read %d ms after its write: %" PRIu64
           " of 100 on a replica, %" PRIu64 " on the primary\n",
           delays[d], st.reads_replica - st0.reads_replica,
           st.reads_primary - st0.reads_primary);
    assert_int_equal(st.reads_replica - st0.reads_replica +
                         st.reads_primary - st0.reads_primary,
                     100);
  }
  orm_session_close(s2);
  orm_session_close(s);
  close_cluster(c);
  pg_sql(primary_admin, "DELETE FROM cluster_rows WHERE id > 100");
}

static void test_lagging_replica_leaves_rotation(void **state) {
  (void)state;
  orm_cluster_t *c = open_cluster(replica_dsn, 2, 300);
  wait_both_in(c);
  memset(&logbook, 0, sizeof logbook);
  PGconn *r1 = connect_as(replica_dsn[0], "postgres");
  pg_sql(r1, "SELECT pg_wal_replay_pause()");
  /* Writes keep the primary's position moving. */
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + 10000;
  for (int i = 0;; i++) {
    char q[96];
    snprintf(q, sizeof q, "UPDATE cluster_rows SET body = 'lag %d' WHERE id = 1", i);
    pg_sql(primary_admin, q);
    run_ms(20);
    orm_replica_state_t st;
    orm_cluster_replica_state(c, 0, &st);
    if (!st.in_rotation) {
      assert_true(st.lag_ms > 300);
      break;
    }
    if (uv_now(&loop) > end)
      fail_msg("the paused replica stayed in rotation");
  }
  assert_true(logbook.behind >= 1);
  /* Reads go to the other replica. */
  orm_cluster_stats_t st0, st;
  orm_pool_stats_t p0, p;
  orm_cluster_stats(c, &st0);
  orm_pool_stats(orm_cluster_replica(c, 1), &p0);
  found_t x;
  for (int i = 0; i < 20; i++) {
    find(orm_cluster_exec(c), 2, &x);
    assert_int_equal(x.status, 0);
  }
  orm_cluster_stats(c, &st);
  orm_pool_stats(orm_cluster_replica(c, 1), &p);
  assert_int_equal(st.reads_replica - st0.reads_replica, 20);
  assert_true(p.queries - p0.queries >= 20);
  pg_sql(r1, "SELECT pg_wal_replay_resume()");
  PQfinish(r1);
  wait_rotation(c, 0, true, 10000);
  assert_true(logbook.ins >= 1);
  close_cluster(c);
}

static void test_replica_killed_and_back(void **state) {
  (void)state;
  orm_cluster_t *c = open_cluster(replica_dsn, 2, 1000);
  wait_both_in(c);
  topology("kill", "replica2");
  wait_rotation(c, 1, false, 5000);
  /* Reads go on, on the other one. */
  found_t x;
  for (int i = 0; i < 20; i++) {
    find(orm_cluster_exec(c), 3, &x);
    assert_int_equal(x.status, 0);
  }
  topology("start", "replica2");
  wait_rotation(c, 1, true, 20000);
  close_cluster(c);
}

static void test_all_replicas_down(void **state) {
  (void)state;
  orm_cluster_t *c = open_cluster(replica_dsn, 2, 1000);
  wait_both_in(c);
  topology("stop", "replica1");
  topology("stop", "replica2");
  wait_rotation(c, 0, false, 5000);
  wait_rotation(c, 1, false, 5000);
  orm_cluster_stats_t st0, st;
  orm_cluster_stats(c, &st0);
  found_t x;
  for (int i = 0; i < 10; i++) {
    find(orm_cluster_exec(c), 4, &x);
    assert_int_equal(x.status, 0);
  }
  orm_cluster_stats(c, &st);
  assert_int_equal(st.reads_fallback - st0.reads_fallback, 10);
  topology("start", "replica1");
  topology("start", "replica2");
  wait_both_in(c);
  close_cluster(c);
}

static void test_primary_down(void **state) {
  (void)state;
  orm_cluster_t *c = open_cluster(replica_dsn, 2, 1000);
  wait_both_in(c);
  PQfinish(primary_admin);
  primary_admin = NULL;
  topology("stop", "primary");
  /* Reads go on. */
  found_t x;
  for (int i = 0; i < 10; i++) {
    find(orm_cluster_exec(c), 5, &x);
    assert_int_equal(x.status, 0);
  }
  /* Writes fail, and fast. */
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  orm_step_t s = {0};
  assert_int_equal(orm_insert_async(c, row_model(),
                                    &(row_t){.id = 600, .body = "lost"},
                                    orm_fx_on_step, &s, NULL),
                   0);
  wait_step(&s);
  uv_update_time(&loop);
  assert_true(s.status == ORM_ECONNECT || s.status == ORM_ECONNLOST);
  assert_true(uv_now(&loop) - t0 < 5000);
  printf("# primary down: a write failed with %s after %" PRIu64 " ms\n",
         orm_err_name(s.status), uv_now(&loop) - t0);
  topology("start", "primary");
  /* And work again once it is back. */
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + 15000;
  for (;;) {
    memset(&s, 0, sizeof s);
    assert_int_equal(orm_insert_async(c, row_model(),
                                      &(row_t){.id = 600, .body = "back"},
                                      orm_fx_on_step, &s, NULL),
                     0);
    wait_step(&s);
    if (s.status == 0)
      break;
    run_ms(50);
    if (uv_now(&loop) > end)
      fail_msg("writes did not come back: %s", orm_err_name(s.status));
  }
  primary_admin = connect_as(primary_dsn, "uvorm");
  topology("wait-streaming", "");
  pg_sql(primary_admin, "DELETE FROM cluster_rows WHERE id > 100");
  close_cluster(c);
}

static void test_replica_that_is_a_primary(void **state) {
  (void)state;
  memset(&logbook, 0, sizeof logbook);
  const char *wrong[1] = {primary_dsn};
  orm_cluster_t *c = open_cluster(wrong, 1, 1000);
  run_ms(300);
  orm_replica_state_t st;
  assert_int_equal(orm_cluster_replica_state(c, 0, &st), 0);
  assert_true(st.checked);
  assert_false(st.standby);
  assert_false(st.in_rotation);
  found_t x;
  find(orm_cluster_exec(c), 6, &x);
  assert_int_equal(x.status, 0);
  orm_cluster_stats_t cs;
  orm_cluster_stats(c, &cs);
  assert_int_equal(cs.reads_fallback, 1);
  /* Never in rotation, so never logged out of it. */
  assert_int_equal(logbook.outs, 0);
  close_cluster(c);
}

static void test_bad_arguments(void **state) {
  (void)state;
  orm_cluster_t *c;
  orm_cluster_config_t cfg = {.primary = primary_dsn};
  assert_int_equal(orm_cluster_open(NULL, &loop, &cfg), ORM_EINVAL);
  assert_int_equal(orm_cluster_open(&c, NULL, &cfg), ORM_EINVAL);
  assert_int_equal(orm_cluster_open(&c, &loop, NULL), ORM_EINVAL);
  assert_int_equal(orm_cluster_open(&c, &loop, &(orm_cluster_config_t){0}),
                   ORM_EINVAL);
  cfg.nreplicas = 1;
  assert_int_equal(orm_cluster_open(&c, &loop, &cfg), ORM_EINVAL);
  const char *none[1] = {NULL};
  cfg.replicas = none;
  assert_int_equal(orm_cluster_open(&c, &loop, &cfg), ORM_EINVAL);
  /* A replica's bad conninfo: nothing stays open. */
  const char *bad[1] = {"host=x port=notaport nonsense"};
  cfg.replicas = bad;
  assert_int_equal(orm_cluster_open(&c, &loop, &cfg), ORM_EINVAL);
  uv_run(&loop, UV_RUN_DEFAULT);

  assert_null(orm_cluster_exec(NULL));
  assert_null(orm_cluster_replica_exec(NULL));
  assert_null(orm_cluster_primary(NULL));
  assert_null(orm_session_exec(NULL));
  assert_int_equal(orm_cluster_close(NULL, NULL), ORM_EINVAL);
  assert_int_equal(orm_session_open(NULL, NULL), ORM_EINVAL);
  assert_int_equal(orm_session_set_lsn(NULL, 1), ORM_EINVAL);
  orm_session_close(NULL);

  c = open_cluster(replica_dsn, 2, 1000);
  orm_replica_state_t st;
  assert_int_equal(orm_cluster_replica_state(c, 2, &st), ORM_EINVAL);
  assert_null(orm_cluster_replica(c, 2));
  orm_session_t *s;
  assert_int_equal(orm_session_open(c, &s), 0);
  /* A write in flight as the session is closed and the cluster too. */
  orm_step_t w = {0};
  assert_int_equal(orm_insert_async(s, row_model(),
                                    &(row_t){.id = 700, .body = "x"}, orm_fx_on_step,
                                    &w, NULL),
                   0);
  orm_session_close(s);
  close_cluster(c);
  assert_true(w.done);
  /* Closed: calls refuse. */
  c = open_cluster(replica_dsn, 2, 1000);
  assert_int_equal(orm_session_open(c, &s), 0);
  assert_int_equal(orm_cluster_close(c, NULL), 0);
  found_t x = {0};
  assert_int_equal(orm_find_async(c, row_model(), ORM_INT8(1), on_found, &x,
                                  NULL),
                   ORM_ECLOSED);
  assert_int_equal(orm_find_async(s, row_model(), ORM_INT8(1), on_found, &x,
                                  NULL),
                   ORM_ECLOSED);
  assert_int_equal(orm_query_async(orm_cluster_exec(c), "SELECT 1", NULL, 0,
                                   orm_fx_on_step, &w, NULL),
                   ORM_ECLOSED);
  orm_tx_t *tx;
  assert_int_equal(orm_session_tx_begin(s, 0, &tx), ORM_ECLOSED);
  orm_session_t *s2;
  assert_int_equal(orm_session_open(c, &s2), ORM_ECLOSED);
  uv_run(&loop, UV_RUN_DEFAULT);
  orm_session_close(s); /* after the cluster's close: still fine */
  pg_sql(primary_admin, "DELETE FROM cluster_rows WHERE id > 100");
}

int main(void) {
  if (getenv("UVORM_TEST_PRIMARY_DSN") == NULL) {
    printf("# skipped: no scale-out topology (scripts/pg-test-cluster)\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routing),
      cmocka_unit_test(test_read_your_writes),
      cmocka_unit_test(test_lagging_replica_leaves_rotation),
      cmocka_unit_test(test_replica_that_is_a_primary),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_replica_killed_and_back),
      cmocka_unit_test(test_all_replicas_down),
      cmocka_unit_test(test_primary_down),
  };
  return orm_run_group_tests(tests, group_setup, group_teardown);
}
