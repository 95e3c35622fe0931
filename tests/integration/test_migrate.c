/* SPDX-License-Identifier: MIT */
/* Migrations through the API: up, down, status, verify, dry runs, a failing
 * statement in the middle of a file, changed and missing files, versions out
 * of order, the history table, the argument checks, and the sample domain
 * down and up again. (No-transaction migrations, locks and racing
 * instances: test_migrate_locks.c; the CLI: tests/migrate/cli.sh.) */
#include "migrate_fx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define SCHEMA "migrate_test"

static const orm_pool_config_t two = {.max_conns = 2};

static const char *const abc[][4] = {
    {"1", "create_a", "CREATE TABLE a (id int PRIMARY KEY);\n", "DROP TABLE a;"},
    {"2", "create_b",
     "-- b refers to a\nCREATE TABLE b (id int PRIMARY KEY,\n"
     "  a_id int REFERENCES a (id));\nINSERT INTO a VALUES (1);\n"
     "INSERT INTO b VALUES (1, 1)",
     "DROP TABLE b;\nDELETE FROM a;"},
    {"10", "create_c", "CREATE TABLE c (id int);", "DROP TABLE c"},
};

static int64_t exists(orm_fx_t *fx, const char *table) {
  char sql[256];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM pg_tables WHERE schemaname "
                            "= '" SCHEMA "' AND tablename = '%s'",
           table);
  return orm_fx_int(fx, sql);
}

static void test_up_status_down(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  orm_migrations_t *set = mfx_set(3, abc);

  /* Status on a database never migrated: all pending, nothing created. */
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_STATUS});
  mfx_expect_ok(&r);
  assert_int_equal(r.nstatus, 3);
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(r.states[i], ORM_MIGRATION_PENDING);
    assert_false(r.applied_at_set[i]);
  }
  assert_int_equal(exists(&fx, "uvorm_migrations"), 0);

  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 3);
  assert_string_equal(r.steps[0], "1");
  assert_string_equal(r.steps[1], "2");
  assert_string_equal(r.steps[2], "10"); /* by value, not by text */
  for (size_t i = 0; i < 3; i++) {
    assert_false(r.step_down[i]);
    assert_int_equal(r.states[i], ORM_MIGRATION_APPLIED);
    assert_true(r.applied_at_set[i]);
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM b"), 1);
  /* The history: one clean row per migration with the up file's SHA-256. */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations "
                                   "WHERE NOT dirty AND duration_ms >= 0"),
                   3);
  char *sum = orm_fx_text(&fx, "SELECT checksum FROM uvorm_migrations WHERE version = 2");
  assert_string_equal(sum, orm_migrations_at(set, 1)->checksum);
  free(sum);
  char *name = orm_fx_text(&fx, "SELECT name FROM uvorm_migrations WHERE version = 10");
  assert_string_equal(name, "create_c");
  free(name);

  /* Again: nothing to do. Verify: all match. */
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 0);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY});
  mfx_expect_ok(&r);

  /* Down: the last one; then more than are left: all of them. */
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 1);
  assert_string_equal(r.steps[0], "10");
  assert_true(r.step_down[0]);
  assert_int_equal(exists(&fx, "c"), 0);
  assert_int_equal(mfx_state(&r, "10"), ORM_MIGRATION_PENDING);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN, .steps = 5});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 2);
  assert_string_equal(r.steps[0], "2");
  assert_string_equal(r.steps[1], "1");
  assert_int_equal(exists(&fx, "a"), 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations"), 0);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 0);

  /* Up to a version. */
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP, .to = "2"});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 2);
  assert_int_equal(mfx_state(&r, "10"), ORM_MIGRATION_PENDING);
  assert_int_equal(exists(&fx, "c"), 0);

  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* Statement 3 of 4 fails: the migration's first statements are rolled
 * back with it, its row is not written, the one before it stays, and the
 * report names the file and the line the server's error position is on. */
static void test_failing_statement(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  const char *const m[][4] = {
      {"1", "good", "CREATE TABLE good (id int);", NULL},
      {"2", "bad",
       "CREATE TABLE x1 (id int);\n"
       "\n"
       "INSERT INTO x1 VALUES (1);\n"
       "SELECT id\n"
       "  FROM x1 JOIN nosuchtable ON true;\n"
       "CREATE TABLE x2 (id int);\n",
       NULL},
      {"3", "after", "CREATE TABLE after_bad (id int);", NULL},
  };
  orm_migrations_t *set = mfx_set(3, m);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_ESERVER);
  assert_string_equal(r.sqlstate, "42P01");
  assert_non_null(strstr(r.message, "nosuchtable"));
  assert_string_equal(r.file, "2_bad.up.sql");
  assert_int_equal(r.line, 5);
  assert_string_equal(r.failed, "2");
  assert_int_equal(r.nsteps, 1);
  assert_string_equal(r.steps[0], "1");
  assert_int_equal(exists(&fx, "good"), 1);
  assert_int_equal(exists(&fx, "x1"), 0);
  assert_int_equal(exists(&fx, "after_bad"), 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations"), 1);
  orm_migrations_free(set);

  /* A syntax error: 42601, on its line. */
  const char *const syntax[][4] = {
      {"1", "good", "CREATE TABLE good (id int);", NULL},
      {"2", "typo", "SELECT 1;\n-- the next one is wrong\nSELEC 2;", NULL},
  };
  set = mfx_set(2, syntax);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_ESERVER);
  assert_string_equal(r.sqlstate, "42601");
  assert_string_equal(r.file, "2_typo.up.sql");
  assert_int_equal(r.line, 3);
  assert_int_equal(mfx_state(&r, "2"), ORM_MIGRATION_PENDING);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* An applied file that changed: UP and VERIFY refuse, naming it; STATUS
 * says CHANGED. The original passes again. */
static void test_changed_file(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  orm_migrations_t *set = mfx_set(2, abc);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  const char *const changed[][4] = {
      {"1", "create_a", "CREATE TABLE a (id bigint PRIMARY KEY);\n", "DROP TABLE a;"},
      {"2", "create_b", abc[1][2], abc[1][3]},
      {"10", "create_c", abc[2][2], abc[2][3]},
  };
  orm_migrations_t *edited = mfx_set(3, changed);
  r = mfx_run(&fx, edited, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_EMIGRATION);
  assert_non_null(strstr(r.message, "1_create_a.up.sql"));
  assert_non_null(strstr(r.message, "changed"));
  assert_string_equal(r.file, "1_create_a.up.sql");
  assert_int_equal(exists(&fx, "c"), 0); /* nothing applied behind it */
  r = mfx_run(&fx, edited, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY});
  assert_int_equal(r.code, ORM_EMIGRATION);
  assert_non_null(strstr(r.message, "1_create_a.up.sql"));
  assert_int_equal(mfx_state(&r, "1"), ORM_MIGRATION_CHANGED);
  /* A dry VERIFY is a VERIFY (it changes nothing anyway). */
  r = mfx_run(&fx, edited, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY,
                                                   .flags = ORM_MIGRATE_DRY_RUN});
  assert_int_equal(r.code, ORM_EMIGRATION);
  r = mfx_run(&fx, edited, (orm_migrate_options_t){.action = ORM_MIGRATE_STATUS});
  mfx_expect_ok(&r); /* status reports, it does not judge */
  assert_int_equal(mfx_state(&r, "1"), ORM_MIGRATION_CHANGED);
  assert_int_equal(mfx_state(&r, "10"), ORM_MIGRATION_PENDING);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY});
  mfx_expect_ok(&r);
  orm_migrations_free(edited);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* A version older than the newest applied that never ran (a merged
 * branch): refused unless allowed. An applied version no file has: verify
 * fails, down refuses. */
static void test_out_of_order_and_missing(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  const char *const first[][4] = {{abc[0][0], abc[0][1], abc[0][2], abc[0][3]},
                                  {abc[2][0], abc[2][1], abc[2][2], abc[2][3]}};
  orm_migrations_t *set = mfx_set(2, first);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  orm_migrations_free(set);

  set = mfx_set(3, abc);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  assert_int_equal(r.code, ORM_EMIGRATION);
  assert_non_null(strstr(r.message, "2_create_b.up.sql"));
  assert_non_null(strstr(r.message, "--allow-out-of-order"));
  assert_int_equal(exists(&fx, "b"), 0);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP,
                                                .flags = ORM_MIGRATE_ALLOW_OUT_OF_ORDER});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 1);
  assert_string_equal(r.steps[0], "2");
  assert_int_equal(exists(&fx, "b"), 1);
  orm_migrations_free(set);

  /* Version 10's file is gone. */
  set = mfx_set(2, abc);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY});
  assert_int_equal(r.code, ORM_EMIGRATION);
  assert_non_null(strstr(r.message, "10"));
  assert_int_equal(mfx_state(&r, "10"), ORM_MIGRATION_MISSING);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN});
  assert_int_equal(r.code, ORM_EMIGRATION);
  assert_non_null(strstr(r.message, "no file"));
  assert_int_equal(exists(&fx, "c"), 1);
  /* UP with a missing newer version applies nothing and is fine. */
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 0);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* DOWN needs a down file and says which one is missing; UP does not. */
static void test_no_down_file(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  const char *const m[][4] = {{"1", "one_way", "CREATE TABLE one_way (id int);", NULL}};
  orm_migrations_t *set = mfx_set(1, m);
  assert_null(orm_migrations_at(set, 0)->down_file);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN});
  assert_int_equal(r.code, ORM_EMIGRATION);
  assert_non_null(strstr(r.message, "1_one_way.up.sql has no .down.sql"));
  assert_int_equal(exists(&fx, "one_way"), 1);
  assert_int_equal(mfx_state(&r, "1"), ORM_MIGRATION_APPLIED);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* Dry runs decide and report, and change nothing: not even the history
 * table is created. */
static void test_dry_run(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  orm_migrations_t *set = mfx_set(3, abc);
  mfx_report_t r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP,
                                                             .flags = ORM_MIGRATE_DRY_RUN});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 3);
  for (size_t i = 0; i < 3; i++)
    assert_true(r.step_dry[i]);
  assert_int_equal(exists(&fx, "uvorm_migrations"), 0);
  assert_int_equal(exists(&fx, "a"), 0);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP, .to = "1"});
  mfx_expect_ok(&r);
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_UP,
                                                .to = "2",
                                                .flags = ORM_MIGRATE_DRY_RUN});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 1);
  assert_string_equal(r.steps[0], "2");
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN,
                                                .steps = 3,
                                                .flags = ORM_MIGRATE_DRY_RUN});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, 1);
  assert_true(r.step_down[0] && r.step_dry[0]);
  assert_int_equal(exists(&fx, "a"), 1);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM uvorm_migrations"), 1);
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

/* The history in a table and schema of the caller's choosing. */
static void test_table_and_schema(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &two);
  orm_fx_sql(&fx, "CREATE SCHEMA " SCHEMA "_meta");
  orm_migrations_t *set = mfx_set(3, abc);
  orm_migrate_options_t opt = {.action = ORM_MIGRATE_UP,
                               .schema = SCHEMA "_meta",
                               .table = "History"};
  mfx_report_t r = mfx_run(&fx, set, opt);
  mfx_expect_ok(&r);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM " SCHEMA "_meta.\"History\""), 3);
  assert_int_equal(exists(&fx, "uvorm_migrations"), 0);
  opt.action = ORM_MIGRATE_VERIFY;
  r = mfx_run(&fx, set, opt);
  mfx_expect_ok(&r);
  assert_int_equal(mfx_state(&r, "10"), ORM_MIGRATION_APPLIED);
  /* The default table knows nothing of them. */
  r = mfx_run(&fx, set, (orm_migrate_options_t){.action = ORM_MIGRATE_STATUS});
  assert_int_equal(mfx_state(&r, "10"), ORM_MIGRATION_PENDING);
  orm_fx_sql(&fx, "DROP SCHEMA " SCHEMA "_meta CASCADE");
  orm_migrations_free(set);
  orm_fx_close(&fx);
}

static void never(const orm_migrate_report_t *r, void *data) {
  (void)r;
  (void)data;
  fail_msg("a refused call must not call back");
}

/* Every argument is checked before anything is sent. */
static void test_arguments(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0, &two);
  orm_migrations_t *set = mfx_set(3, abc);
  orm_migrate_options_t up = {.action = ORM_MIGRATE_UP};
  assert_int_equal(orm_migrate_async(NULL, set, &up, never, NULL), ORM_EINVAL);
  assert_int_equal(orm_migrate_async(fx.pool, NULL, &up, never, NULL), ORM_EINVAL);
  assert_int_equal(orm_migrate_async(fx.pool, set, NULL, never, NULL), ORM_EINVAL);
  assert_int_equal(orm_migrate_async(fx.pool, set, &up, NULL, NULL), ORM_EINVAL);
  const orm_migrate_options_t bad[] = {
      {.action = 0},
      {.action = 99},
      {.action = ORM_MIGRATE_UP, .flags = 0x100},
      {.action = ORM_MIGRATE_UP, .flags = ORM_MIGRATE_RETRY},
      {.action = ORM_MIGRATE_UP, .to = "3"},   /* no such migration */
      {.action = ORM_MIGRATE_UP, .to = "abc"}, /* not a version */
      {.action = ORM_MIGRATE_UP, .to = ""},
      {.action = ORM_MIGRATE_UP, .schema = "a;b"},
      {.action = ORM_MIGRATE_UP, .schema = ""},
      {.action = ORM_MIGRATE_UP, .table = "x\"y"},
      {.action = ORM_MIGRATE_UP, .table = "1abc"},
      {.action = ORM_MIGRATE_UP,
       .table = "a_name_that_is_longer_than_sixty_three_bytes_which_postgres_cuts"},
      {.action = ORM_MIGRATE_UP, .lock_timeout_ms = UINT64_MAX},
      {.action = ORM_MIGRATE_RESOLVE}, /* which version? */
      {.action = ORM_MIGRATE_RESOLVE, .to = "1", .flags = ORM_MIGRATE_DRY_RUN},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (orm_migrate_async(fx.pool, set, &bad[i], never, NULL) != ORM_EINVAL)
      fail_msg("bad options %zu were accepted", i);
  orm_fx_run_ms(&fx, 20);
  orm_migrations_free(set);
  orm_fx_close(&fx);
  /* A closed pool. */
  orm_fx_open(&fx, NULL, 0, &two);
  set = mfx_set(1, abc);
  orm_pool_t *pool = fx.pool;
  assert_int_equal(orm_pool_close(pool, NULL), 0);
  assert_int_equal(orm_migrate_async(pool, set, &up, never, NULL), ORM_ECLOSED);
  orm_test_run(&fx.loop, 5000);
  orm_test_loop_close(&fx.loop);
  orm_fx_close_admin(&fx);
  orm_migrations_free(set);
}

static void expect_same(const orm_migrations_t *a, const orm_migrations_t *b) {
  assert_int_equal(orm_migrations_count(a), orm_migrations_count(b));
  for (size_t i = 0; i < orm_migrations_count(a); i++) {
    const orm_migration_t *x = orm_migrations_at(a, i), *y = orm_migrations_at(b, i);
    assert_string_equal(x->version, y->version);
    assert_string_equal(x->name, y->name);
    assert_string_equal(x->checksum, y->checksum);
    assert_string_equal(x->up_sql, y->up_sql);
    assert_true((x->down_sql == NULL) == (y->down_sql == NULL));
    if (x->down_sql != NULL)
      assert_string_equal(x->down_sql, y->down_sql);
    assert_int_equal(x->up_statements, y->up_statements);
  }
}

/* The sample domain: its embedded migrations are its directory's, byte
 * for byte; down to nothing and up again leaves the same tables. */
static void test_domain_round_trip(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, &two); /* applied by the fixture */
  orm_migrations_t *embedded = NULL, *dir = NULL;
  char err[512];
  assert_int_equal(orm_migrations_load_embedded(domain_migrations, domain_migrations_count,
                                                &embedded, err, sizeof err),
                   0);
  char path[4096];
  snprintf(path, sizeof path, "%s/examples/domain/migrations", UVORM_TEST_SOURCE_DIR);
  if (orm_migrations_load_dir(path, &dir, err, sizeof err) != 0)
    fail_msg("%s", err);
  expect_same(embedded, dir);
  assert_true(orm_migrations_count(dir) >= 3);

  const char *tables = "SELECT string_agg(tablename, ',' ORDER BY tablename) "
                       "FROM pg_tables WHERE schemaname = '" SCHEMA "' "
                       "AND tablename <> 'uvorm_migrations'";
  const char *columns = "SELECT count(*) FROM information_schema.columns "
                        "WHERE table_schema = '" SCHEMA "'";
  char *before = orm_fx_text(&fx, tables);
  int64_t ncolumns = orm_fx_int(&fx, columns);
  assert_non_null(strstr(before, "messages"));
  mfx_report_t r = mfx_run(&fx, embedded, (orm_migrate_options_t){.action = ORM_MIGRATE_VERIFY});
  mfx_expect_ok(&r);
  r = mfx_run(&fx, dir, (orm_migrate_options_t){.action = ORM_MIGRATE_DOWN,
                                                .steps = (unsigned)orm_migrations_count(dir)});
  mfx_expect_ok(&r);
  assert_int_equal(r.nsteps, orm_migrations_count(dir));
  char *none = orm_fx_text(&fx, tables);
  assert_string_equal(none, "<null>");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM pg_type t JOIN pg_namespace n "
                                   "ON n.oid = t.typnamespace WHERE nspname = '" SCHEMA
                                   "' AND typtype = 'e'"),
                   0);
  r = mfx_run(&fx, embedded, (orm_migrate_options_t){.action = ORM_MIGRATE_UP});
  mfx_expect_ok(&r);
  char *after = orm_fx_text(&fx, tables);
  assert_string_equal(after, before);
  assert_int_equal(orm_fx_int(&fx, columns), ncolumns);
  free(before);
  free(none);
  free(after);
  orm_migrations_free(embedded);
  orm_migrations_free(dir);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_up_status_down),
      cmocka_unit_test(test_failing_statement),
      cmocka_unit_test(test_changed_file),
      cmocka_unit_test(test_out_of_order_and_missing),
      cmocka_unit_test(test_no_down_file),
      cmocka_unit_test(test_dry_run),
      cmocka_unit_test(test_table_and_schema),
      cmocka_unit_test(test_arguments),
      cmocka_unit_test(test_domain_round_trip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
