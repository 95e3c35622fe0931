/* SPDX-License-Identifier: MIT */
/* Transactions issued in one flight: savepoints behind a failure, what a
 * skipped statement reports, and transactions the caller never ended when
 * the pool closes. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "tx_test"

static void issue(orm_tx_t *tx, const char *sql, orm_step_t *s) {
  assert_int_equal(
      orm_query_async(tx, sql, NULL, 0, orm_fx_on_step, s, NULL), 0);
}

static void expect_ok(const orm_step_t *s, int i) {
  if (s->status != 0)
    fail_msg("step %d: %s %s %s", i, orm_err_name(s->status), s->sqlstate,
             s->message);
}

/* Everything issued at once, without waiting: the unique violation fails
 * alone, the statement behind it is skipped, ROLLBACK TO SAVEPOINT runs in
 * the aborted transaction as PostgreSQL allows, and what follows it runs
 * and commits. */
static void test_rollback_to_behind_failure(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, NULL);
  orm_fx_sql(&fx, "CREATE TABLE t (id int PRIMARY KEY)");
  /* All in one flight, then with the failure already answered: either way
   * the same outcome. */
  for (int pass = 0; pass < 2; pass++) {
    orm_fx_sql(&fx, "TRUNCATE t");
    orm_tx_t *tx;
    assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
    orm_step_t s[8] = {{0}};
    issue(tx, "INSERT INTO t VALUES (1)", &s[0]);
    assert_int_equal(orm_tx_savepoint_async(tx, "sp", orm_fx_on_step, &s[1],
                                            NULL),
                     0);
    issue(tx, "INSERT INTO t VALUES (1)", &s[2]); /* duplicate key */
    issue(tx, "INSERT INTO t VALUES (2)", &s[3]); /* skipped */
    if (pass == 1)
      orm_fx_run_ms(&fx, 50); /* the failure is known before what follows */
    assert_int_equal(orm_tx_rollback_to_async(tx, "sp", orm_fx_on_step, &s[4],
                                              NULL),
                     0);
    issue(tx, "INSERT INTO t VALUES (3)", &s[5]);
    assert_int_equal(orm_tx_release_async(tx, "sp", orm_fx_on_step, &s[6],
                                          NULL),
                     0);
    assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &s[7], NULL), 0);
    orm_fx_wait(&fx, s, 8);
    expect_ok(&s[0], 0);
    expect_ok(&s[1], 1);
    assert_int_equal(s[2].status, ORM_ESERVER);
    assert_string_equal(s[2].sqlstate, "23505");
    assert_int_equal(s[3].status, ORM_ESKIPPED);
    assert_string_equal(s[3].sqlstate, "25P02");
    for (int i = 4; i < 8; i++)
      expect_ok(&s[i], i);
    assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM t"), 2);
    assert_int_equal(orm_fx_int(&fx, "SELECT sum(id) FROM t"), 4);
  }
  orm_fx_close(&fx);
}

/* A statement sent after a failure in a later flight is refused by the
 * server (25P02) and reported the same way as one the server skipped. */
static void test_skipped_reports(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0, NULL);
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t s[3] = {{0}};
  issue(tx, "SELECT 1/0", &s[0]);
  issue(tx, "SELECT 1", &s[1]);
  orm_fx_wait(&fx, s, 2);
  assert_int_equal(s[0].status, ORM_ESERVER);
  assert_string_equal(s[0].sqlstate, "22012");
  assert_int_equal(s[1].status, ORM_ESKIPPED);
  assert_string_equal(s[1].sqlstate, "25P02");
  issue(tx, "SELECT 2", &s[2]);
  orm_fx_wait(&fx, &s[2], 1);
  assert_int_equal(s[2].status, ORM_ESKIPPED);
  assert_string_equal(s[2].sqlstate, "25P02");
  orm_step_t end = {0};
  assert_int_equal(orm_tx_rollback_async(tx, orm_fx_on_step, &end, NULL), 0);
  orm_fx_wait(&fx, &end, 1);
  assert_int_equal(end.status, 0);
  orm_fx_close(&fx);
}

/* Transactions still open when the pool closes: their statements fail
 * with ORM_ECANCELED, ending one before the close callback returns
 * ORM_ECLOSED and releases it, and the ones never ended go with the pool
 * (valgrind and LeakSanitizer hold the test to it). */
static void test_pool_closes_under_open_transactions(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, NULL);
  orm_fx_sql(&fx, "CREATE TABLE t (id int PRIMARY KEY)");
  orm_tx_t *begun, *queued, *ended;
  orm_step_t s[3] = {{0}};
  /* One that has run a statement, one whose BEGIN never went out. */
  assert_int_equal(orm_tx_begin(fx.pool, &begun), 0);
  issue(begun, "INSERT INTO t VALUES (1)", &s[0]);
  orm_fx_wait(&fx, s, 1);
  expect_ok(&s[0], 0);
  assert_int_equal(orm_tx_begin(fx.pool, &queued), 0);
  issue(queued, "INSERT INTO t VALUES (2)", &s[1]);
  assert_int_equal(orm_tx_begin(fx.pool, &ended), 0);
  assert_int_equal(orm_pool_close(fx.pool, NULL), 0);
  /* Closing: the handle is still valid; ending it releases it. */
  assert_int_equal(orm_tx_rollback_async(ended, orm_fx_on_step, &s[2], NULL),
                   ORM_ECLOSED);
  fx.pool = NULL;
  fx.closed = 1; /* closed without a callback */
  orm_test_run(&fx.loop, 10000);
  assert_int_equal(s[1].status, ORM_ECANCELED);
  assert_int_equal(s[2].done, 0);
  /* Nothing of the open transactions was committed. */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM t"), 0);
  orm_fx_close(&fx);
}

/* orm_tx_begin_with(): each combination runs with the characteristics it
 * names, whatever the server's defaults (here SERIALIZABLE); a bad one is
 * refused before anything is sent. */
static void test_begin_with(void **state) {
  (void)state;
  orm_fx_t fx;
  memset(&fx, 0, sizeof fx);
  char *dsn = orm_test_dsn_with("options", "-c default_transaction_isolation=serializable",
                                NULL);
  orm_fx_open_pool(&fx, &(orm_pool_config_t){.conninfo = dsn});
  free(dsn);
  static const struct {
    unsigned options;
    int64_t seen; /* isolation 1 RC, 2 RR, 3 SER; +10 read only; +100 deferrable */
  } ok[] = {
      {0, 3},
      {ORM_TX_READ_COMMITTED, 1},
      {ORM_TX_READ_COMMITTED | ORM_TX_READ_ONLY, 11},
      {ORM_TX_REPEATABLE_READ, 2},
      {ORM_TX_REPEATABLE_READ | ORM_TX_READ_ONLY, 12},
      {ORM_TX_SERIALIZABLE, 3},
      {ORM_TX_SERIALIZABLE | ORM_TX_READ_ONLY | ORM_TX_DEFERRABLE, 113},
      {ORM_TX_READ_ONLY, 13},
  };
  const char *sql =
      "SELECT CASE current_setting('transaction_isolation') WHEN 'read committed' "
      "THEN 1 WHEN 'repeatable read' THEN 2 ELSE 3 END + CASE "
      "current_setting('transaction_read_only') WHEN 'on' THEN 10 ELSE 0 END + "
      "CASE current_setting('transaction_deferrable') WHEN 'on' THEN 100 ELSE 0 "
      "END";
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    orm_tx_t *tx;
    assert_int_equal(orm_tx_begin_with(fx.pool, ok[i].options, &tx), 0);
    orm_step_t s[2] = {{.result = 1}, {0}};
    issue(tx, sql, &s[0]);
    assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &s[1], NULL), 0);
    orm_fx_wait(&fx, s, 2);
    expect_ok(&s[0], (int)i);
    if (s[0].value != ok[i].seen)
      fail_msg("options 0x%x: %lld, not %lld", ok[i].options, (long long)s[0].value,
               (long long)ok[i].seen);
  }
  static const unsigned bad[] = {
      ORM_TX_READ_COMMITTED | ORM_TX_SERIALIZABLE,
      ORM_TX_READ_COMMITTED | ORM_TX_REPEATABLE_READ,
      ORM_TX_REPEATABLE_READ | ORM_TX_SERIALIZABLE,
      ORM_TX_READ_COMMITTED | ORM_TX_READ_ONLY | ORM_TX_DEFERRABLE,
      ORM_TX_SERIALIZABLE | ORM_TX_DEFERRABLE,
      0x100,
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    orm_tx_t *tx = (orm_tx_t *)&fx;
    assert_int_equal(orm_tx_begin_with(fx.pool, bad[i], &tx), ORM_EINVAL);
    assert_null(tx);
  }
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rollback_to_behind_failure),
      cmocka_unit_test(test_skipped_reports),
      cmocka_unit_test(test_pool_closes_under_open_transactions),
      cmocka_unit_test(test_begin_with),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
