/* SPDX-License-Identifier: MIT */
/* Migrations outside a transaction (CREATE INDEX CONCURRENTLY, the dirty
 * flag, resolve), lock_timeout, instances racing to migrate one database,
 * and runs the server or the pool cut short. */
#include "migrate_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "migrate_locks"

static const orm_pool_config_t two = {.max_conns = 2};

static int64_t valid_index(orm_fx_t *fx, const char *name) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = "
           "i.indexrelid WHERE c.relname = '%s' AND i.indisvalid",
           name);
  return orm_fx_int(fx, sql);
}

/* CREATE INDEX CONCURRENTLY runs while the run's own transaction holds
 * the lock (it waits for no snapshot of ours), and the row is clean. */
static void test_concurrently(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  const char *const m[][4] = {
      {"1", "table", "CREATE TABLE t (a int, b int);\n"
                     "INSERT INTO t SELECT g, g FROM generate_series(1, 1000) g;",
       "DROP TABLE t;"},
      {"2", "index", "-- uvorm:no-transaction\n"
                     "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
                     "CREATE INDEX CONCURRENTLY t_b ON t (b);\n",
       "-- uvorm:no-transaction\nDROP INDEX CONCURRENTLY t_b;\n"
       "DROP INDEX CONCURRENTLY t_a;"},
  };
  orm_migrations_t *set = mfx_set(2, m);
  assert_true(orm_migrations_at(set, 1)->up_no_transaction);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 2);
  assert_int_equal(valid_index(&fx, "t_a"), 1);
  assert_int_equal(valid_index(&fx, "t_b"), 1);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations WHERE dirty"), 0);
  assert_int_equal(mfx_state(&r, "2"), ORM_MIGRATION_APPLIED);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN});
  mfx_expect_ok(&r);
  assert_int_equal(valid_index(&fx, "t_a"), 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations"), 1);
  orm_migrations_free(set);
  orm_fx_close(&fx);

  /* One connection cannot hold the lock and run the statements. */
  const orm_pool_config_t one = {.max_conns = 1};
  orm_fx_open(&fx, SCHEMA, 0, &one);
  set = mfx_set(2, m);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_EINVAL);
  assert_non_null(strstr(r.message, "at least 2 connections"));
  assert_int_equal(r.nsteps, 1);
  assert_int_equal(mfx_state(&r, "2"), ORM_MIGRATION_PENDING);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

static const char *const dirty_set[][4] = {
    {"1", "table", "CREATE TABLE t (a int, b int);", NULL},
    {"2", "half", "-- uvorm:no-transaction\n"
                  "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
                  "CREATE INDEX CONCURRENTLY t_c ON t (c);\n",
     NULL},
    {"3", "later", "CREATE TABLE later (id int);", NULL},
};

/* A no-transaction migration failing midway: what ran stays, the row is
 * dirty, and nothing goes on until a human resolves it. */
static void test_dirty_then_resolve(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  orm_migrations_t *set = mfx_set(3, dirty_set);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_ESERVER);
  assert_string_equal(r.sqlstate, "42703");
  assert_string_equal(r.file, "2_half.up.sql");
  assert_int_equal(r.line, 3);
  assert_int_equal(valid_index(&fx, "t_a"), 1); /* outside a transaction */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations "
                                   "WHERE version = 2 AND dirty"),
                   1);
  assert_int_equal(mfx_state(&r, "2"), ORM_MIGRATION_DIRTY);

  /* Up, verify and down refuse; the message says what to do. */
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_EMIGRATION);
  assert_non_null(strstr(r.message, "dirty"));
  assert_non_null(strstr(r.message, "resolve 2"));
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM pg_tables WHERE tablename = 'later'"), 0);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY});
  assert_int_equal(r.code, ORM_EMIGRATION);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN});
  assert_int_equal(r.code, ORM_EMIGRATION);

  /* Resolve only a dirty version. */
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_RESOLVE, .to = "1"});
  assert_int_equal(r.code, ORM_EINVAL);
  assert_non_null(strstr(r.message, "not dirty"));
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_RESOLVE, .to = "7"});
  assert_int_equal(r.code, ORM_EINVAL);

  /* The human dropped the half-made index and fixed the file: retry. */
  orm_fx_sql(&fx, "DROP INDEX t_a");
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_RESOLVE,
                                                .to = "2",
                                                .flags = ORM_MIGRATE_RETRY});
  mfx_expect_ok(&r);
  assert_int_equal(mfx_state(&r, "2"), ORM_MIGRATION_PENDING);
  const char *const fixed[][4] = {
      {dirty_set[0][0], dirty_set[0][1], dirty_set[0][2], NULL},
      {"2", "half", "-- uvorm:no-transaction\n"
                    "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
                    "CREATE INDEX CONCURRENTLY t_b ON t (b);\n",
       NULL},
      {dirty_set[2][0], dirty_set[2][1], dirty_set[2][2], NULL},
  };
  orm_migrations_t *good = mfx_set(3, fixed);
  r = mfx_run(&fx, good, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 2);
  assert_int_equal(valid_index(&fx, "t_b"), 1);
  r = mfx_run(&fx, good, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY});
  mfx_expect_ok(&r);
  orm_migrations_free(good);
  orm_migrations_free(set);
  orm_fx_close(&fx);

  /* Or: the human finished it by hand, and it counts as applied. */
  orm_fx_open(&fx, SCHEMA, 0, &two);
  set = mfx_set(3, dirty_set);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_ESERVER);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_RESOLVE, .to = "2"});
  mfx_expect_ok(&r);
  assert_int_equal(mfx_state(&r, "2"), ORM_MIGRATION_APPLIED);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 1);
  assert_string_equal(r.steps[0], "3");
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* lock_timeout: a migration that waits on a table another session holds
 * fails fast with 55P03, and nothing of it stays. */
static void test_lock_timeout(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  orm_fx_sql(&fx, "CREATE TABLE busy (id int)");
  const char *const m[][4] = {
      {"1", "first", "CREATE TABLE first (id int);", NULL},
      {"2", "alter", "CREATE TABLE side (id int);\n"
                     "ALTER TABLE busy ADD COLUMN note text;", NULL},
  };
  orm_migrations_t *set = mfx_set(2, m);
  orm_fx_sql(&fx, "BEGIN; LOCK TABLE busy IN ACCESS SHARE MODE");
  uint64_t t0 = uv_hrtime();
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP,
                                                             .lock_timeout_ms = 150});
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(r.code, ORM_ESERVER);
  assert_string_equal(r.sqlstate, "55P03");
  assert_string_equal(r.file, "2_alter.up.sql");
  assert_int_equal(r.line, 2);
  assert_true(ms < 3000);
  assert_int_equal(r.nsteps, 1);
  orm_fx_sql(&fx, "COMMIT");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM pg_tables WHERE tablename = 'side'"), 0);
  /* The setting was the migration's own (SET LOCAL): the pool's
   * connections do not keep it. */
  orm_step_t s = {.result = 0};
  orm_fx_sql(&fx, "CREATE TABLE probe (v text)");
  assert_int_equal(orm_query_async(fx.pool, "INSERT INTO probe SELECT current_setting('lock_timeout')",
                                   NULL, 0, orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  char *v = orm_fx_text(&fx, "SELECT v FROM probe");
  assert_string_equal(v, "0");
  free(v);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP,
                                                .lock_timeout_ms = 150});
  mfx_expect_ok(&r);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

static char *dsn_for(const char *extra) {
  char opt[256];
  snprintf(opt, sizeof opt, "-c search_path=%s%s", SCHEMA, extra);
  return orm_test_dsn_with("options", opt, NULL);
}

/* Four instances (four pools: services starting together) run UP at once
 * on a database never migrated: each migration is applied exactly once;
 * the others retry the lock, then find nothing to do. The CREATE INDEX
 * CONCURRENTLY of whoever holds the lock is not held up by them. With
 * `extra` server settings on every connection. */
static void race(const char *extra) {
  orm_fx_t fx;
  orm_fx_open_admin(&fx, SCHEMA, 0);
  assert_int_equal(uv_loop_init(&fx.loop), 0);
  const char *const m[][4] = {
      {"1", "log", "CREATE TABLE log (v int);\nINSERT INTO log VALUES (1);", NULL},
      {"2", "slow", "SELECT pg_sleep(0.3);\nINSERT INTO log VALUES (2);", NULL},
      {"3", "idx", "-- uvorm:no-transaction\nINSERT INTO log VALUES (3);\n"
                   "SELECT pg_sleep(0.3);\n"
                   "CREATE INDEX CONCURRENTLY log_v ON log (v);", NULL},
      {"4", "last", "INSERT INTO log VALUES (4);", NULL},
  };
  orm_migrations_t *set = mfx_set(4, m);
  enum { N = 4 };
  orm_pool_t *pools[N];
  char *dsn = dsn_for(extra);
  for (int i = 0; i < N; i++)
    assert_int_equal(orm_pool_open(&pools[i], &fx.loop,
                                   &(orm_pool_config_t){.conninfo = dsn, .max_conns = 2}),
                     0);
  free(dsn);
  mfx_report_t r[N];
  for (int i = 0; i < N; i++)
    mfx_start(pools[i], set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP}, &r[i]);
  size_t steps = 0;
  for (int i = 0; i < N; i++) {
    mfx_wait(&fx, &r[i]);
    mfx_expect_ok(&r[i]);
    steps += r[i].nsteps;
    for (size_t k = 0; k < 4; k++)
      assert_int_equal(r[i].states[k], ORM_MIGRATION_APPLIED);
  }
  assert_int_equal(steps, 4);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM log"), 4);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(DISTINCT v) FROM log"), 4);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations WHERE NOT dirty"), 4);
  assert_int_equal(valid_index(&fx, "log_v"), 1);
  for (int i = 0; i < N; i++)
    assert_int_equal(orm_pool_close(pools[i], NULL), 0);
  orm_test_run(&fx.loop, 5000);
  orm_test_loop_close(&fx.loop);
  orm_migrations_free(set);
  orm_fx_close_admin(&fx);
}

static void test_racing_instances(void **state) {
  (void)state;
  race("");
  /* The server's defaults do not matter: the lock's transactions are READ
   * COMMITTED whatever default_transaction_isolation says (else the
   * history read would see a snapshot older than the lock, and the index
   * build would wait for the holder's own snapshot), and the holder of a
   * no-transaction migration idles longer than this timeout allows. */
  race(" -c default_transaction_isolation=serializable"
       " -c idle_in_transaction_session_timeout=100");
}

/* Another session holds the lock: the run waits (retrying), goes on once
 * it is free; and if its pool closes meanwhile, it reports once and leaves
 * nothing behind. */
static void test_lock_held(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  const char *const m[][4] = {{"1", "a", "CREATE TABLE a (id int);", NULL}};
  orm_migrations_t *set = mfx_set(1, m);
  const char *hold = "BEGIN; SELECT pg_advisory_xact_lock(hashtextextended("
                     "'uvorm.migrate:" SCHEMA ".uvorm_migrations', 0))";
  orm_fx_sql(&fx, hold);
  mfx_report_t r;
  mfx_start(fx.pool, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP}, &r);
  orm_fx_run_ms(&fx, 400);
  assert_false(r.done);
  orm_fx_sql(&fx, "COMMIT");
  mfx_wait(&fx, &r);
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 1);

  const char *const m2[][4] = {{"1", "a", "CREATE TABLE a (id int);", NULL},
                               {"2", "b", "CREATE TABLE b (id int);", NULL}};
  orm_migrations_t *set2 = mfx_set(2, m2);
  orm_fx_sql(&fx, hold);
  mfx_start(fx.pool, set2, (orm_migrate_options_t){.action = ORM_MIGRATE_UP}, &r);
  orm_fx_run_ms(&fx, 300);
  assert_false(r.done);
  assert_int_equal(orm_pool_close(fx.pool, NULL), 0);
  fx.pool = NULL;
  orm_test_run(&fx.loop, 5000);
  orm_test_loop_close(&fx.loop);
  assert_true(r.done);
  assert_int_equal(r.code, ORM_ECANCELED);
  orm_fx_sql(&fx, "COMMIT");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations"), 1);
  orm_fx_close_admin(&fx);
  orm_migrations_free(set);
  orm_migrations_free(set2);
}

/* A migration that changes the search_path (as pg_dump output does) does
 * not send its history row elsewhere: the table is named with the schema
 * resolved when the run began. A search_path naming no schema: UP says
 * so, STATUS shows all pending. */
static void test_search_path(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  const char *const m[][4] = {
      {"1", "dump", "SELECT pg_catalog.set_config('search_path', '', false);\n"
                    "CREATE TABLE " SCHEMA ".dumped (id int);", NULL},
      {"2", "after", "CREATE TABLE " SCHEMA ".after_dump (id int);", NULL},
  };
  orm_migrations_t *set = mfx_set(2, m);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 2);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM " SCHEMA ".uvorm_migrations"), 2);
  orm_migrations_free(set);
  orm_fx_close(&fx);

  orm_fx_open_admin(&fx, SCHEMA, 0);
  char *dsn = orm_test_dsn_with("options", "-c search_path=no_such_schema_here", NULL);
  orm_fx_open_pool(&fx, &(orm_pool_config_t){.conninfo = dsn, .max_conns = 2});
  free(dsn);
  set = mfx_set(2, m);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_STATUS});
  mfx_expect_ok(&r);
  assert_int_equal(mfx_state(&r, "1"), ORM_MIGRATION_PENDING);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_EINVAL);
  assert_non_null(strstr(r.message, "no schema"));
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* No server: the report says why (libpq's reason), never the password. */
static void test_unreachable(void **state) {
  (void)state;
  orm_fx_t fx;
  memset(&fx, 0, sizeof fx);
  orm_fx_open_pool(&fx, &(orm_pool_config_t){
                            .conninfo = "host=127.0.0.1 port=1 user=u "
                                        "password=hunter2-secret connect_timeout=2",
                            .max_conns = 2});
  const char *const m[][4] = {{"1", "a", "CREATE TABLE a (id int);", NULL}};
  orm_migrations_t *set = mfx_set(1, m);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_ECONNECT);
  assert_null(strstr(r.message, "hunter2"));
  assert_non_null(strstr(r.message, "127.0.0.1"));
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_STATUS});
  assert_int_equal(r.code, ORM_ECONNECT);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* The pool closes while a migration runs: the report comes once, with the
 * pool's error, and the migration is rolled back with its connection. */
static void test_pool_closed_midway(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  const char *const m[][4] = {
      {"1", "slow", "CREATE TABLE slow (id int);\nSELECT pg_sleep(2);", NULL},
  };
  orm_migrations_t *set = mfx_set(1, m);
  mfx_report_t r;
  mfx_start(fx.pool, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP}, &r);
  orm_fx_run_ms(&fx, 300);
  assert_false(r.done);
  assert_int_equal(orm_pool_close(fx.pool, NULL), 0);
  fx.pool = NULL;
  orm_test_run(&fx.loop, 5000); /* the report, and the pool's handles */
  orm_test_loop_close(&fx.loop);
  assert_true(r.done);
  if (r.code != ORM_ECANCELED && r.code != ORM_ECLOSED)
    fail_msg("%s: %s", orm_err_name(r.code), r.message);
  /* Rolled back: no table, no history row (the history table itself was
   * made in a transaction of its own, before). */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM pg_tables WHERE tablename = 'slow'"), 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations"), 0);
  orm_fx_close_admin(&fx);
  orm_migrations_free(set);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_concurrently),
      cmocka_unit_test(test_dirty_then_resolve),
      cmocka_unit_test(test_lock_timeout),
      cmocka_unit_test(test_racing_instances),
      cmocka_unit_test(test_lock_held),
      cmocka_unit_test(test_search_path),
      cmocka_unit_test(test_unreachable),
      cmocka_unit_test(test_pool_closed_midway),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
