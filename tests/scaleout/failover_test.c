/* SPDX-License-Identifier: MIT */
/* Split brain and failover, on a topology of its own
 * (tests/scaleout/failover.sh). Split brain: replica2 promoted while the
 * primary stays up and a transaction is open on it (see test_split_brain).
 * Failover: a cluster whose primary is the multi-host conninfo "primary, replica1,
 * target_session_attrs=read-write" keeps 16 inserts in flight and holds a
 * transaction open; the primary is killed and replica1 promoted. Every
 * insert completes exactly once: before the kill with success, at the kill
 * with ORM_ECONNLOST or ORM_ECONNECT (never re-sent: it may have
 * committed), and after the promotion with success again, on the promoted
 * server. The open transaction fails with ORM_ECONNLOST and is never
 * retried. The promoted replica leaves rotation (it is no standby). Prints
 * the time from the kill until writes succeed again. */
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
ORM_MODEL_DEFINE(row, "failover_rows", ROW_FIELDS);
ORM_MODEL_DECLARE(split, ROW_FIELDS);
ORM_MODEL_DEFINE(split, "split_rows", ROW_FIELDS);

#define MAXW 100000
#define INFLIGHT 16

static orm_cluster_t *cluster;
static row_t rows[MAXW];
static signed char outcome[MAXW]; /* 0 pending, 1 ok, 2 lost, 3 connect */
static int callbacks[MAXW];
static int64_t next_id, oks_after, other_errors;
static int killed, stop, inflight;
static uv_timer_t top_up;
static uint64_t t_kill, t_first_ok;

static void issue(void);

static void on_written(orm_future_t *f, void *data) {
  int64_t id = (int64_t)(intptr_t)data;
  callbacks[id]++;
  int st = orm_future_status(f);
  outcome[id] = st == 0 ? 1 : st == ORM_ECONNLOST ? 2
                            : st == ORM_ECONNECT  ? 3
                                                  : -1;
  if (outcome[id] < 0) {
    other_errors++;
    printf("# write %" PRId64 ": %s\n", id, orm_err_name(st));
  }
  if (st == 0 && killed) {
    oks_after++;
    if (t_first_ok == 0)
      t_first_ok = uv_hrtime();
  }
  inflight--;
  /* A failure waits for the timer: while no primary is up, each insert
   * fails at once. */
  if (!stop && st == 0)
    issue();
}

static void on_top_up(uv_timer_t *t) {
  (void)t;
  while (!stop && inflight < INFLIGHT && next_id < MAXW)
    issue();
}

static void issue(void) {
  if (next_id >= MAXW)
    return;
  int64_t id = next_id++;
  inflight++;
  rows[id] = (row_t){.id = id, .body = "w"};
  int rc = orm_insert_async(cluster, row_model(), &rows[id], on_written,
                            (void *)(intptr_t)id, NULL);
  if (rc != 0)
    fail_msg("insert: %s", orm_err_name(rc));
}

/* ---- split brain: a replica promoted while the primary stays up ---------- */

typedef struct {
  orm_cluster_t *c;
  size_t i;
} which_t;

static int promoted_out(void *arg) {
  which_t *w = arg;
  orm_replica_state_t st;
  assert_int_equal(orm_cluster_replica_state(w->c, w->i, &st), 0);
  return st.checked && !st.standby && !st.in_rotation;
}

static int both_in(void *arg) {
  orm_cluster_t *c = arg;
  orm_replica_state_t a, b;
  orm_cluster_replica_state(c, 0, &a);
  orm_cluster_replica_state(c, 1, &b);
  return a.in_rotation && b.in_rotation;
}

/* Runs first: it promotes replica2, and test_failover needs only replica1.
 * uvorm does not fence: the primary it is given stays its primary while it
 * is up (stopping the old one is the failover manager's job). What it must
 * do: keep the open transaction and the writes on that primary, take the
 * promoted server out of rotation (it is no standby), read on. */
static void test_split_brain(void **state) {
  (void)state;
  uv_loop_init(&loop);
  PGconn *admin = pg_connect(getenv("UVORM_TEST_PRIMARY_DSN"));
  pg_sql(admin, "CREATE TABLE split_rows (id int8 PRIMARY KEY, body text "
                "NOT NULL); INSERT INTO split_rows VALUES (1, 'before')");
  const char *replicas[2] = {getenv("UVORM_TEST_REPLICA1_DSN"),
                             getenv("UVORM_TEST_REPLICA2_DSN")};
  orm_cluster_config_t cfg = {
      .primary = getenv("UVORM_TEST_PRIMARY_DSN"),
      .replicas = replicas,
      .nreplicas = 2,
      .pool = {.min_conns = 1, .max_conns = 2},
      .check_ms = 20,
  };
  orm_cluster_t *c;
  assert_int_equal(orm_cluster_open(&c, &loop, &cfg), 0);
  run_until(both_in, c, 10000, "both replicas in rotation");

  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(orm_cluster_primary(c), &tx), 0);
  orm_step_t in_tx = {0}, commit = {0}, after = {0};
  split_t r2 = {.id = 2, .body = "in the transaction"};
  assert_int_equal(orm_insert_async(tx, split_model(), &r2, orm_fx_on_step, &in_tx,
                                    NULL),
                   0);
  wait_step(&in_tx);
  assert_int_equal(in_tx.status, 0);

  topology("promote", "replica2");
  which_t w = {c, 1};
  run_until(promoted_out, &w, 10000, "the promoted replica out of rotation");

  /* Reads go on, on replica1. */
  orm_cluster_stats_t before, now;
  orm_cluster_stats(c, &before);
  for (int i = 0; i < 20; i++) {
    orm_step_t s = {0};
    assert_int_equal(orm_find_async(c, split_model(), ORM_INT8(1), orm_fx_on_step, &s,
                                    NULL),
                     0);
    wait_step(&s);
    assert_int_equal(s.status, 0);
  }
  orm_cluster_stats(c, &now);
  assert_int_equal(now.reads_replica - before.reads_replica, 20);

  /* The transaction commits on the primary it began on, and a write after
   * it goes there too, never to the promoted server. */
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &commit, NULL), 0);
  wait_step(&commit);
  assert_int_equal(commit.status, 0);
  split_t r3 = {.id = 3, .body = "after"};
  assert_int_equal(orm_insert_async(c, split_model(), &r3, orm_fx_on_step, &after,
                                    NULL),
                   0);
  wait_step(&after);
  assert_int_equal(after.status, 0);
  assert_int_equal(
      pg_int(admin, "SELECT count(*) FROM split_rows WHERE id IN (2, 3)"), 2);
  PGconn *promoted = pg_connect(getenv("UVORM_TEST_REPLICA2_DSN"));
  assert_int_equal(
      pg_int(promoted, "SELECT count(*) FROM split_rows WHERE id IN (2, 3)"),
      0);
  assert_int_equal(pg_int(promoted, "SELECT pg_is_in_recovery()::int"), 0);
  PQfinish(promoted);
  PQfinish(admin);
  assert_int_equal(orm_cluster_close(c, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  orm_test_loop_close(&loop);
}

static void test_failover(void **state) {
  (void)state;
  const char *failover = getenv("UVORM_TEST_FAILOVER_DSN");
  const char *replica = getenv("UVORM_TEST_REPLICA1_DSN");
  PGconn *admin = PQconnectdb(getenv("UVORM_TEST_PRIMARY_DSN"));
  assert_int_equal(PQstatus(admin), CONNECTION_OK);
  PGresult *res = PQexec(admin, "CREATE TABLE failover_rows (id int8 "
                                "PRIMARY KEY, body text NOT NULL)");
  assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
  PQclear(res);
  PQfinish(admin);

  uv_loop_init(&loop);
  const char *replicas[1] = {replica};
  orm_cluster_config_t cfg = {
      .primary = failover,
      .replicas = replicas,
      .nreplicas = 1,
      .pool = {.min_conns = 2,
               .max_conns = 2,
               .reconnect_min_ms = 20,
               .reconnect_max_ms = 100,
               .connect_timeout_ms = 2000},
      .check_ms = 20,
  };
  assert_int_equal(orm_cluster_open(&cluster, &loop, &cfg), 0);
  uv_timer_init(&loop, &top_up);
  uv_timer_start(&top_up, on_top_up, 0, 10);
  /* A transaction left open across the failover. */
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(orm_cluster_primary(cluster), &tx), 0);
  orm_step_t in_tx = {0}, commit = {0};
  assert_int_equal(orm_insert_async(tx, row_model(),
                                    &(row_t){.id = MAXW + 1, .body = "tx"},
                                    orm_fx_on_step, &in_tx, NULL),
                   0);
  run_ms(500);
  assert_true(in_tx.done && in_tx.status == 0);
  orm_replica_state_t st;
  assert_int_equal(orm_cluster_replica_state(cluster, 0, &st), 0);
  assert_true(st.in_rotation);
  int64_t before = next_id;
  assert_true(before > INFLIGHT);

  killed = 1;
  t_kill = uv_hrtime();
  topology("kill", "primary");
  topology("promote", "replica1");
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + 30000;
  while (oks_after < 200) {
    run_ms(10);
    if (uv_now(&loop) > end)
      fail_msg("writes did not come back after the promotion");
  }
  double recovery_ms = (double)(t_first_ok - t_kill) / 1e6;
  printf("# failover: writes succeed again %.0f ms after the primary was "
         "killed (promotion included)\n",
         recovery_ms);
  assert_true(recovery_ms < 15000);

  /* The transaction died with its connection, and is not retried. */
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &commit, NULL), 0);
  while (!commit.done)
    run_ms(5);
  assert_true(commit.status == ORM_ECONNLOST || commit.status == ORM_ESKIPPED);

  /* The promoted replica leaves rotation. */
  while (1) {
    assert_int_equal(orm_cluster_replica_state(cluster, 0, &st), 0);
    if (st.checked && !st.standby)
      break;
    run_ms(10);
    if (uv_now(&loop) > end)
      fail_msg("the promoted replica stayed a standby");
  }
  assert_false(st.in_rotation);

  stop = 1;
  uv_close((uv_handle_t *)&top_up, NULL);
  while (1) {
    int pending = 0;
    for (int64_t i = 0; i < next_id; i++)
      pending += outcome[i] == 0;
    if (pending == 0)
      break;
    run_ms(5);
  }
  int64_t oks = 0, lost = 0, refused = 0;
  for (int64_t i = 0; i < next_id; i++) {
    assert_int_equal(callbacks[i], 1); /* exactly once */
    oks += outcome[i] == 1;
    lost += outcome[i] == 2;
    refused += outcome[i] == 3;
  }
  assert_int_equal(other_errors, 0);
  printf("# failover: %" PRId64 " writes: %" PRId64 " ok, %" PRId64
         " ECONNLOST (in flight at the kill), %" PRId64
         " ECONNECT (while no primary)\n",
         next_id, oks, lost, refused);
  assert_true(lost > 0 || refused > 0);

  /* Every write reported after the promotion is on the new primary. */
  admin = PQconnectdb(replica);
  assert_int_equal(PQstatus(admin), CONNECTION_OK);
  res = PQexec(admin, "SELECT count(*) FROM failover_rows WHERE id >= 0");
  assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
  int64_t stored = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  PQfinish(admin);
  assert_true(stored >= oks_after);
  assert_true(stored <= next_id);

  assert_int_equal(orm_cluster_close(cluster, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  orm_test_loop_close(&loop);
}

int main(void) {
  if (getenv("UVORM_TEST_FAILOVER_DSN") == NULL ||
      !*getenv("UVORM_TEST_FAILOVER_DSN")) {
    printf("# skipped: no failover topology\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_split_brain),
                                     cmocka_unit_test(test_failover)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
