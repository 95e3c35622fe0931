/* SPDX-License-Identifier: MIT */
/* Autocommit writes sharing pipeline segments, against the real server:
 * inserts share one implicit transaction; a failed insert fails alone and
 * its neighbours land exactly once; writes of rows by key share while their
 * keys ascend and never deadlock across connections; a lost connection
 * never retries a write that may have committed.
 *
 * Which statements shared a segment is read off the server: each table
 * records txid_current() of the transaction that wrote a row, and one
 * segment is one transaction. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "write_batching_test"

#define ENTRY_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(email, ORM_T_TEXT, const char *, ORM_F_UNIQUE)
ORM_MODEL_DECLARE(entry, ENTRY_FIELDS);
ORM_MODEL_DEFINE(entry, "entries", ENTRY_FIELDS);

#define SLOT_FIELDS(X)                                                         \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(v, ORM_T_INT4, int32_t, 0)                                                 \
  X(delay, ORM_T_FLOAT8, double, 0)
ORM_MODEL_DECLARE(slot, SLOT_FIELDS);
ORM_MODEL_DEFINE(slot, "slots", SLOT_FIELDS);

static orm_fx_t fx;

/* One connection deep enough for everything a test issues in one turn, so
 * that it all goes out in one flight and the segments are known; or
 * `conns` connections. */
static void open_pool(unsigned conns) {
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = conns,
                                   .max_conns = conns,
                                   .pipeline_depth = 512,
                                   .queue_max = 4096});
  orm_fx_sql(&fx, "CREATE TABLE entries (id bigserial PRIMARY KEY, "
                  "email text UNIQUE NOT NULL, "
                  "xid bigint NOT NULL DEFAULT txid_current())");
  orm_fx_sql(&fx, "CREATE TABLE slots (id int PRIMARY KEY, v int NOT NULL, "
                  "delay float8 NOT NULL DEFAULT 0, xid bigint)");
  /* A BEFORE trigger runs with the row already locked: the sleep holds the
   * lock, so two segments locking in opposite orders would meet. */
  orm_fx_sql(&fx, "CREATE FUNCTION slots_touch() RETURNS trigger "
                  "LANGUAGE plpgsql AS $$ BEGIN "
                  "PERFORM pg_sleep(NEW.delay); "
                  "NEW.xid := txid_current(); RETURN NEW; END $$");
  orm_fx_sql(&fx, "CREATE TRIGGER slots_touch BEFORE UPDATE ON slots "
                  "FOR EACH ROW EXECUTE FUNCTION slots_touch()");
  orm_fx_sql(&fx, "INSERT INTO slots (id, v) "
                  "SELECT g, 0 FROM generate_series(1, 20) g");
  /* Wait for every connection: dispatch then spreads over all of them. */
  orm_pool_stats_t st;
  do {
    uv_run(&fx.loop, UV_RUN_ONCE);
    orm_pool_stats(fx.pool, &st);
  } while (st.conns_idle + st.conns_busy < conns);
}

static uint64_t resends(void) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  return st.resends;
}

/* Waits for every step, then runs the loop a little longer: a callback that
 * fired twice would show. */
static void wait_all(orm_step_t *steps, size_t n) {
  orm_fx_wait(&fx, steps, n);
  orm_fx_run_ms(&fx, 50);
  for (size_t i = 0; i < n; i++)
    if (steps[i].done != 1)
      fail_msg("request %zu: callback ran %d times", i, steps[i].done);
}

enum { N = 100 };

static void issue_inserts_n(entry_t *rows, char (*emails)[32],
                            orm_step_t *steps, int n, const char *prefix) {
  for (int i = 0; i < n; i++) {
    snprintf(emails[i], sizeof emails[i], "%s%d@example.com", prefix, i);
    rows[i] = (entry_t){.email = emails[i]};
    steps[i] = (orm_step_t){0};
    assert_int_equal(orm_insert_async(fx.pool, entry_model(), &rows[i],
                                      orm_fx_on_step, &steps[i], NULL),
                     0);
  }
}

static void issue_inserts(entry_t *rows, char (*emails)[32], orm_step_t *steps,
                          const char *prefix) {
  issue_inserts_n(rows, emails, steps, N, prefix);
}

static void test_inserts_share_a_segment(void **state) {
  open_pool(1);
  entry_t rows[N];
  char emails[N][32];
  orm_step_t steps[N];
  issue_inserts(rows, emails, steps, "a");
  wait_all(steps, N);
  for (int i = 0; i < N; i++) {
    assert_int_equal(steps[i].status, 0);
    assert_true(rows[i].id > 0);
    if (i > 0)
      assert_true(rows[i].id > rows[i - 1].id); /* in the order issued */
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM entries"), N);
  /* One flight, one transaction: one sync, one commit for all of them. */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(DISTINCT xid) FROM entries"), 1);
  assert_int_equal(resends(), 0);
  orm_fx_close(&fx);
}

/* The issue's proof: 100 inserts with one unique violation in the middle
 * end with exactly 99 new rows, each insert's callback fired once. */
static void test_failed_insert_fails_alone(void **state) {
  open_pool(1);
  orm_fx_sql(&fx, "INSERT INTO entries (email) VALUES ('b50@example.com')");
  uint64_t before = resends();
  entry_t rows[N];
  char emails[N][32];
  orm_step_t steps[N];
  issue_inserts(rows, emails, steps, "b"); /* b50 is taken */
  wait_all(steps, N);
  for (int i = 0; i < N; i++) {
    if (i == 50) {
      assert_int_equal(steps[i].status, ORM_ESERVER);
      assert_string_equal(steps[i].sqlstate, "23505");
      assert_int_equal(rows[i].id, 0); /* nothing written back */
      continue;
    }
    if (steps[i].status != 0)
      fail_msg("neighbour %d failed: %s %s", i, orm_err_name(steps[i].status),
               steps[i].sqlstate);
    int64_t id;
    char q[128];
    snprintf(q, sizeof q, "SELECT id FROM entries WHERE email = '%s'", emails[i]);
    id = orm_fx_int(&fx, q);
    assert_int_equal(rows[i].id, id); /* the row that landed, written back */
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM entries"), N);
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(*) FROM entries WHERE email LIKE 'b%'"), N);
  /* They had shared the failed segment: the 99 went again, each once. */
  assert_int_equal(resends() - before, N - 1);
  orm_fx_close(&fx);
}

static void update_slot(slot_t *row, int32_t id, int32_t v, double delay,
                        orm_step_t *step) {
  *row = (slot_t){.id = id, .v = v, .delay = delay};
  *step = (orm_step_t){0};
  assert_int_equal(orm_update_async(fx.pool, slot_model(), row, 0,
                                    orm_fx_on_step, step, NULL),
                   0);
}

static void test_keyed_writes_share_in_key_order(void **state) {
  open_pool(1);
  enum { K = 10 };
  slot_t rows[K];
  orm_step_t steps[K];
  /* Ascending keys: one segment. */
  for (int i = 0; i < K; i++)
    update_slot(&rows[i], i + 1, 1, 0, &steps[i]);
  wait_all(steps, K);
  for (int i = 0; i < K; i++)
    assert_int_equal(steps[i].status, 0);
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(DISTINCT xid) FROM slots WHERE v = 1"), 1);
  /* Descending: each its own. */
  for (int i = 0; i < K; i++)
    update_slot(&rows[i], K - i, 2, 0, &steps[i]);
  wait_all(steps, K);
  for (int i = 0; i < K; i++)
    assert_int_equal(steps[i].status, 0);
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(DISTINCT xid) FROM slots WHERE v = 2"), K);
  /* The same key twice, then a raw UPDATE (no key the pool knows): the
   * repeat shares, the raw one goes alone, and so does what follows it. */
  update_slot(&rows[0], 11, 3, 0, &steps[0]);
  update_slot(&rows[1], 11, 3, 0, &steps[1]);
  update_slot(&rows[2], 12, 3, 0, &steps[2]);
  steps[3] = (orm_step_t){0};
  assert_int_equal(orm_query_async(fx.pool,
                                   "UPDATE slots SET v = 3 WHERE id = 13",
                                   NULL, 0, orm_fx_on_step, &steps[3], NULL),
                   0);
  update_slot(&rows[4], 14, 3, 0, &steps[4]);
  wait_all(steps, 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(steps[i].status, 0);
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(DISTINCT xid) FROM slots WHERE id IN (11, 12)"),
      1);
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(DISTINCT xid) FROM slots WHERE v = 3"), 3);
  /* Deletes by key share the same way (they leave no row to read the
   * transaction off: counted by their outcome). */
  for (int i = 0; i < 5; i++) {
    steps[i] = (orm_step_t){0};
    assert_int_equal(orm_delete_async(fx.pool, slot_model(), ORM_INT4(16 + i),
                                      orm_fx_on_step, &steps[i], NULL),
                     0);
  }
  wait_all(steps, 5);
  for (int i = 0; i < 5; i++)
    assert_int_equal(steps[i].status, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM slots"), 15);
  assert_int_equal(resends(), 0);
  orm_fx_close(&fx);
}

/* Two connections, least-loaded dispatch alternating between them: A gets
 * keys (1, 2-slow), B gets (2, 1-slow). A's pair ascends and shares a
 * segment; B's descends, so B's first write commits on its own before its
 * second waits for A. Grouped in any order, B would hold 2 and wait for 1
 * while A holds 1 and waits for 2: a deadlock the server breaks after
 * deadlock_timeout, and a retry. */
static void test_keyed_writes_do_not_deadlock(void **state) {
  open_pool(2);
  uint64_t before = resends();
  for (int round = 0; round < 3; round++) {
    slot_t rows[4];
    orm_step_t steps[4];
    update_slot(&rows[0], 1, round, 0, &steps[0]);
    update_slot(&rows[1], 2, round, 0, &steps[1]);
    update_slot(&rows[2], 2, round, 0.2, &steps[2]);
    update_slot(&rows[3], 1, round, 0.2, &steps[3]);
    wait_all(steps, 4);
    for (int i = 0; i < 4; i++)
      if (steps[i].status != 0)
        fail_msg("round %d, write %d: %s %s", round, i,
                 orm_err_name(steps[i].status), steps[i].sqlstate);
  }
  assert_int_equal(resends() - before, 0);
  orm_fx_close(&fx);
}

/* A connection lost while a flight of grouped inserts is out: each of them
 * fails with ORM_ECONNLOST (it may or may not have committed: never sent
 * again), and the rows in the table are exactly the ones whose inserts
 * said so, none twice. */
static void test_lost_connection_never_replays_writes(void **state) {
  open_pool(1);
  int pid = -1;
  orm_step_t probe = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT pg_backend_pid()", NULL, 0,
                                   orm_fx_on_step, &probe, NULL),
                   0);
  orm_fx_wait(&fx, &probe, 1);
  pid = (int)probe.value;
  entry_t rows[N];
  char emails[N][32];
  orm_step_t steps[N];
  issue_inserts(rows, emails, steps, "c");
  /* The flight goes out on the next turn; the backend dies under it. */
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  char kill[96];
  snprintf(kill, sizeof kill, "SELECT pg_terminate_backend(%d)", pid);
  orm_fx_sql(&fx, kill);
  wait_all(steps, N);
  int ok = 0;
  for (int i = 0; i < N; i++) {
    if (steps[i].status == 0) {
      ok++;
      continue;
    }
    if (steps[i].status != ORM_ECONNLOST)
      fail_msg("insert %d: %s %s", i, orm_err_name(steps[i].status),
               steps[i].sqlstate);
  }
  int64_t landed =
      orm_fx_int(&fx, "SELECT count(*) FROM entries WHERE email LIKE 'c%'");
  /* Those that failed may have committed (the server finished them before
   * it died): never more rows than inserts, never one twice, and every
   * insert that succeeded is there. */
  assert_true(landed >= ok && landed <= N);
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(DISTINCT email) FROM entries WHERE email "
                      "LIKE 'c%'"),
      landed);
  /* The pool recovered: the next insert lands. */
  entry_t after = {.email = "after@example.com"};
  orm_step_t step = {0};
  assert_int_equal(orm_insert_async(fx.pool, entry_model(), &after,
                                    orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  assert_int_equal(step.status, 0);
  orm_fx_close(&fx);
}

/* ---- transactions sharing segments ------------------------------------------ */

static uint64_t syncs(void) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  return st.syncs;
}

typedef struct {
  orm_tx_t *tx;
  entry_t row;
  char email[32];
  orm_step_t insert;
  orm_step_t commit;
} tx_unit_t;

/* BEGIN, an insert and COMMIT, issued at once. */
static void issue_tx(tx_unit_t *u, const char *email) {
  snprintf(u->email, sizeof u->email, "%s", email);
  u->row = (entry_t){.email = u->email};
  u->insert = (orm_step_t){0};
  u->commit = (orm_step_t){0};
  assert_int_equal(orm_tx_begin(fx.pool, &u->tx), 0);
  assert_int_equal(orm_insert_async(orm_tx_exec(u->tx), entry_model(), &u->row,
                                    orm_fx_on_step, &u->insert, NULL),
                   0);
  assert_int_equal(
      orm_tx_commit_async(u->tx, orm_fx_on_step, &u->commit, NULL), 0);
}

/* `n` of them, emails PREFIX0@example.com ... */
static void issue_txs(tx_unit_t *u, int n, const char *prefix) {
  for (int i = 0; i < n; i++) {
    char email[32];
    snprintf(email, sizeof email, "%s%d@example.com", prefix, i);
    issue_tx(&u[i], email);
  }
}

static void wait_units(tx_unit_t *u, size_t n) {
  for (size_t i = 0; i < n; i++) {
    orm_fx_wait(&fx, &u[i].insert, 1);
    orm_fx_wait(&fx, &u[i].commit, 1);
  }
  orm_fx_run_ms(&fx, 50);
  for (size_t i = 0; i < n; i++)
    if (u[i].insert.done != 1 || u[i].commit.done != 1)
      fail_msg("transaction %zu: callbacks ran %d and %d times", i,
               u[i].insert.done, u[i].commit.done);
}

static int64_t email_count(const char *email) {
  char q[256];
  snprintf(q, sizeof q, "SELECT count(*) FROM entries WHERE email = '%s'", email);
  return orm_fx_int(&fx, q);
}

/* Transactions issued together go in one flight, each its own transaction
 * on the server (BEGIN ... COMMIT), with one sync for all. */
static void test_transactions_share_a_segment(void **state) {
  open_pool(1);
  enum { T = 20 };
  tx_unit_t u[T];
  uint64_t before = syncs();
  issue_txs(u, T, "t");
  wait_units(u, T);
  for (int i = 0; i < T; i++) {
    assert_int_equal(u[i].insert.status, 0);
    assert_int_equal(u[i].commit.status, 0);
    assert_true(u[i].row.id > 0);
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(DISTINCT xid) FROM entries"), T);
  assert_true(syncs() - before <= 2);
  assert_int_equal(resends(), 0);
  orm_fx_close(&fx);
}

/* One transaction of twenty fails in the middle of their shared flight:
 * it fails alone (its COMMIT reports the rollback), the ones before it
 * committed, the ones after it, which the server skipped, go again and
 * commit exactly once, and the session the failure left in a failed
 * transaction is rolled back without losing the connection. */
static void test_failed_transaction_fails_alone(void **state) {
  open_pool(1);
  orm_fx_sql(&fx, "INSERT INTO entries (email) VALUES ('u10@example.com')");
  enum { T = 20 };
  tx_unit_t u[T];
  uint64_t before = resends();
  issue_txs(u, T, "u");
  /* Autocommit inserts behind them in the same flight. */
  entry_t rows[5];
  char emails[5][32];
  orm_step_t steps[5];
  issue_inserts_n(rows, emails, steps, 5, "v");
  wait_units(u, T);
  wait_all(steps, 5);
  for (int i = 0; i < T; i++) {
    if (i == 10) {
      assert_int_equal(u[i].insert.status, ORM_ESERVER);
      assert_string_equal(u[i].insert.sqlstate, "23505");
      assert_int_equal(u[i].commit.status, ORM_ESERVER);
      assert_string_equal(u[i].commit.sqlstate, "25P02");
      continue;
    }
    if (u[i].insert.status != 0 || u[i].commit.status != 0)
      fail_msg("transaction %d: insert %s, commit %s", i,
               orm_err_name(u[i].insert.status),
               orm_err_name(u[i].commit.status));
    assert_int_equal(email_count(u[i].email), 1);
  }
  for (int i = 0; i < 5; i++) {
    assert_int_equal(steps[i].status, 0);
    assert_int_equal(email_count(emails[i]), 1);
  }
  assert_int_equal(email_count("u10@example.com"), 1);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM entries"), T + 5);
  /* The nine after it went again whole: BEGIN, insert, COMMIT. */
  assert_true(resends() - before >= 9 * 3);
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_int_equal(st.reconnects, 0);
  assert_int_equal(st.connects, 1);
  orm_fx_close(&fx);
}

/* A transaction whose BEGIN shares a flight behind another's COMMIT sends
 * nothing more until that flight is answered: had its BEGIN been skipped,
 * a statement sent after it would run outside any transaction. Here the
 * first transaction fails, the second's BEGIN is skipped and goes again,
 * and its later statement still lands in its own transaction. */
static void test_statements_wait_for_a_shared_begin(void **state) {
  open_pool(1);
  orm_fx_sql(&fx, "INSERT INTO entries (email) VALUES ('w0@example.com')");
  tx_unit_t first;
  issue_tx(&first, "w0@example.com"); /* fails: taken */
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  entry_t x = {.email = "w1@example.com"}, y = {.email = "w2@example.com"};
  orm_step_t sx = {0}, sy = {0}, commit = {0};
  assert_int_equal(orm_insert_async(orm_tx_exec(tx), entry_model(), &x,
                                    orm_fx_on_step, &sx, NULL),
                   0);
  /* Out on the wire, unanswered: the next statement comes a turn later. */
  uv_run(&fx.loop, UV_RUN_NOWAIT);
  assert_int_equal(sx.done, 0);
  assert_int_equal(orm_insert_async(orm_tx_exec(tx), entry_model(), &y,
                                    orm_fx_on_step, &sy, NULL),
                   0);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &commit, NULL), 0);
  wait_units(&first, 1);
  orm_fx_wait(&fx, &sx, 1);
  orm_fx_wait(&fx, &sy, 1);
  orm_fx_wait(&fx, &commit, 1);
  assert_int_equal(first.insert.status, ORM_ESERVER);
  assert_int_equal(first.commit.status, ORM_ESERVER);
  assert_int_equal(sx.status, 0);
  assert_int_equal(sy.status, 0);
  assert_int_equal(commit.status, 0);
  assert_true(resends() > 0); /* the second's BEGIN went again */
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(DISTINCT xid) FROM entries WHERE email IN "
                      "('w1@example.com', 'w2@example.com')"),
      1);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM entries"), 3);
  orm_fx_close(&fx);
}

/* A COMMIT that fails itself (a deferred unique constraint) with the next
 * transaction behind it in the flight: it reports its error, the next one
 * goes again and commits. */
static void test_failed_commit_replays_the_next(void **state) {
  open_pool(1);
  orm_fx_sql(&fx, "CREATE TABLE deferred (id int, CONSTRAINT deferred_u "
                  "UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)");
  orm_tx_t *t1;
  assert_int_equal(orm_tx_begin(fx.pool, &t1), 0);
  orm_step_t a = {0}, b = {0}, c1 = {0};
  assert_int_equal(orm_query_async(orm_tx_exec(t1),
                                   "INSERT INTO deferred VALUES (1), (1)", NULL,
                                   0, orm_fx_on_step, &a, NULL),
                   0);
  assert_int_equal(orm_tx_commit_async(t1, orm_fx_on_step, &c1, NULL), 0);
  tx_unit_t second;
  issue_tx(&second, "x1@example.com");
  (void)b;
  orm_fx_wait(&fx, &a, 1);
  orm_fx_wait(&fx, &c1, 1);
  wait_units(&second, 1);
  assert_int_equal(a.status, 0);
  assert_int_equal(c1.status, ORM_ESERVER);
  assert_string_equal(c1.sqlstate, "23505");
  assert_int_equal(second.insert.status, 0);
  assert_int_equal(second.commit.status, 0);
  assert_int_equal(email_count("x1@example.com"), 1);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM deferred"), 0);
  assert_true(resends() > 0);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inserts_share_a_segment),
      cmocka_unit_test(test_failed_insert_fails_alone),
      cmocka_unit_test(test_keyed_writes_share_in_key_order),
      cmocka_unit_test(test_keyed_writes_do_not_deadlock),
      cmocka_unit_test(test_lost_connection_never_replays_writes),
      cmocka_unit_test(test_transactions_share_a_segment),
      cmocka_unit_test(test_failed_transaction_fails_alone),
      cmocka_unit_test(test_statements_wait_for_a_shared_begin),
      cmocka_unit_test(test_failed_commit_replays_the_next),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
