/* SPDX-License-Identifier: MIT */
/* Statements as the pool sees them, without a server: how each may share a
 * pipeline segment, how many parameters it takes, and interning. */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#include <uvorm.h>

#include "pool/stmt.h"

static void test_classify(void **state) {
  static const struct {
    const char *sql;
    orm__seg_class_t seg;
  } cases[] = {
      {"SELECT 1", ORM_SEG_READ},
      {"  select * from t", ORM_SEG_READ},
      {"(SELECT 1) UNION (SELECT 2)", ORM_SEG_READ},
      {"-- a comment\nSELECT 1", ORM_SEG_READ},
      {"/* lead */ VALUES (1)", ORM_SEG_READ},
      {"WITH a AS (SELECT 1) SELECT * FROM a", ORM_SEG_READ},
      {"SHOW server_version", ORM_SEG_READ},
      {"TABLE t", ORM_SEG_READ},
      {"SELECT * FROM t FOR UPDATE", ORM_SEG_WRITE},
      {"SELECT * FROM t FOR SHARE", ORM_SEG_WRITE},
      {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ORM_SEG_WRITE},
      {"INSERT INTO t VALUES (1)", ORM_SEG_APPEND},
      {"insert into t select * from s", ORM_SEG_APPEND},
      {"WITH p AS (INSERT INTO t VALUES (1) RETURNING id) INSERT INTO c "
       "SELECT id FROM p",
       ORM_SEG_APPEND},
      {"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", ORM_SEG_WRITE},
      {"INSERT INTO t VALUES (1) ON CONFLICT (a) DO UPDATE SET b = 1",
       ORM_SEG_WRITE},
      {"INSERT INTO t SELECT * FROM s FOR UPDATE", ORM_SEG_WRITE},
      {"WITH d AS (DELETE FROM s RETURNING *) INSERT INTO t SELECT * FROM d",
       ORM_SEG_WRITE},
      {"INSERT INTO t VALUES ('update')", ORM_SEG_WRITE}, /* errs, safely */
      {"INSERT INTO t (updated_at) VALUES (now())", ORM_SEG_APPEND},
      {"update t set a = 1", ORM_SEG_WRITE},
      {"DELETE FROM t", ORM_SEG_WRITE},
      {"MERGE INTO t USING s ON true WHEN MATCHED THEN DO NOTHING",
       ORM_SEG_WRITE},
      {"SELECT selected_at, updates FROM t", ORM_SEG_READ}, /* words only */
      {"BEGIN", ORM_SEG_OWN},
      {"commit", ORM_SEG_OWN},
      {"ROLLBACK TO SAVEPOINT a", ORM_SEG_OWN},
      {"CREATE TABLE t (a int)", ORM_SEG_OWN},
      {"ALTER TABLE t ADD b int", ORM_SEG_OWN},
      {"SET search_path = x", ORM_SEG_OWN},
      {"DISCARD ALL", ORM_SEG_OWN},
      {"VACUUM", ORM_SEG_OWN},
      {"LISTEN x", ORM_SEG_OWN},
      {"COPY t FROM STDIN", ORM_SEG_WRITE},
      {"CALL p()", ORM_SEG_WRITE}, /* unknown: errs towards writes */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    if (orm__sql_classify(cases[i].sql) != cases[i].seg)
      fail_msg("%s: %d, expected %d", cases[i].sql,
               (int)orm__sql_classify(cases[i].sql), (int)cases[i].seg);
  }
}

static void test_placeholders(void **state) {
  static const struct {
    const char *sql;
    int n;
  } cases[] = {
      {"SELECT 1", 0},
      {"SELECT $1", 1},
      {"SELECT $2, $1", 2},
      {"SELECT $10 + $9", 10},
      {"SELECT '$3'", 0},
      {"SELECT 'it''s $3'", 0},
      {"SELECT E'\\'$3'", 0},
      {"SELECT e'\\\\', $1", 1},
      {"SELECT \"a$1\" FROM t", 0},
      {"SELECT \"a\"\"$2\" FROM t", 0},
      {"SELECT a$1 FROM t", 0}, /* $ inside an identifier */
      {"SELECT 1 -- $4\n + $1", 1},
      {"SELECT /* $5 /* $6 */ $7 */ $2", 2},
      {"SELECT $$ $8 $$, $1", 1},
      {"SELECT $fn$ $8 $fn$ || $tag$ $x $tag$, $3", 3},
      {"DO $$ BEGIN PERFORM $1; END $$", 0},
      {"SELECT '$1", -1},     /* unterminated: the server judges */
      {"SELECT /* $1", -1},
      {"SELECT $q$ $1", -1},
      {"SELECT \"$1", -1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int n = orm__sql_placeholders(cases[i].sql);
    if (n != cases[i].n)
      fail_msg("%s: %d, expected %d", cases[i].sql, n, cases[i].n);
  }
}

static void test_intern(void **state) {
  orm__stmt_table_t t = {0};
  int err;
  Oid i8 = 20, t25 = 25;
  orm__stmt_t *a = orm__stmts_intern(&t, "SELECT $1", &i8, 1, &err);
  assert_non_null(a);
  assert_int_equal(err, 0);
  assert_string_equal(a->name, "u0");
  assert_int_equal(a->placeholders, 1);
  assert_int_equal(a->seg, ORM_SEG_READ);
  /* Same text and types: the same statement; other types: another. */
  assert_ptr_equal(orm__stmts_intern(&t, "SELECT $1", &i8, 1, &err), a);
  orm__stmt_t *b = orm__stmts_intern(&t, "SELECT $1", &t25, 1, &err);
  assert_non_null(b);
  assert_ptr_not_equal(b, a);
  assert_string_equal(b->name, "u1");
  /* Enough to grow the table a few times: every one found again. */
  char sql[64];
  for (int i = 0; i < 500; i++) {
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d)", i);
    orm__stmt_t *s = orm__stmts_intern(&t, sql, NULL, 0, &err);
    assert_non_null(s);
    assert_int_equal(s->seg, ORM_SEG_APPEND);
  }
  for (int i = 0; i < 500; i++) {
    snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d)", i);
    orm__stmt_t *s = orm__stmts_intern(&t, sql, NULL, 0, &err);
    assert_int_equal(s->id, (uint32_t)i + 2);
    assert_string_equal(s->sql, sql);
  }
  assert_int_equal(t.nstmts, 502);
  /* A new generation has a name of its own. */
  orm__stmt_bump(a);
  assert_string_equal(a->name, "u0_1");
  orm__stmt_bump(a);
  assert_string_equal(a->name, "u0_2");
  assert_ptr_equal(orm__stmts_intern(&t, "SELECT $1", &i8, 1, &err), a);
  orm__stmts_free(&t);
  assert_int_equal(t.nstmts, 0);
}

/* Beyond the table's limit statements run unnamed: NULL without error. */
static void test_intern_limit(void **state) {
  orm__stmt_table_t t = {0};
  int err = 0;
  char sql[64];
  int named = 0;
  for (int i = 0; i < 5000; i++) {
    snprintf(sql, sizeof sql, "SELECT %d", i);
    orm__stmt_t *s = orm__stmts_intern(&t, sql, NULL, 0, &err);
    assert_int_equal(err, 0);
    named += s != NULL;
  }
  assert_int_equal(named, 4096);
  orm__stmts_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),
      cmocka_unit_test(test_placeholders),
      cmocka_unit_test(test_intern),
      cmocka_unit_test(test_intern_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
