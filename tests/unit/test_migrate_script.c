/* SPDX-License-Identifier: MIT */
/* Migration files as statements, without a server: where the splitter cuts
 * a file (quotes, comments, dollar quotes, BEGIN ATOMIC bodies), what it
 * refuses, how an error position maps to a line, the no-transaction
 * marker, and the SHA-256 behind the checksums. */
#include "harness.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm.h>

#include "base/alloc.h"
#include "base/sha256.h"
#include "migrate/script.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
  orm__sql_stmt_t *st;
  size_t n;
} split_t;

/* Splits `text`, which must succeed. */
static split_t split_ok(const char *text) {
  split_t r = {NULL, 0};
  orm__sql_split_error_t e = {NULL, 0};
  int rc = orm__sql_split(text, strlen(text), &r.st, &r.n, &e);
  if (rc != 0)
    fail_msg("split of <%s>: %d (%s, line %u)", text, rc,
             e.why != NULL ? e.why : "?", e.line);
  if (r.n == 0)
    assert_null(r.st);
  return r;
}

/* Splits `text`, which must fail with ORM_EINVAL on `line`, with a reason
 * that contains `why`. */
static void split_fails(const char *text, unsigned line, const char *why) {
  orm__sql_stmt_t *st = (orm__sql_stmt_t *)(uintptr_t)1;
  size_t n = 99;
  orm__sql_split_error_t e = {NULL, 0};
  int rc = orm__sql_split(text, strlen(text), &st, &n, &e);
  if (rc != ORM_EINVAL)
    fail_msg("split of <%s>: %d, expected ORM_EINVAL", text, rc);
  assert_null(st);
  assert_int_equal(n, 0);
  assert_non_null(e.why);
  if (e.line != line)
    fail_msg("split of <%s>: line %u, expected %u (%s)", text, e.line, line,
             e.why);
  if (strstr(e.why, why) == NULL)
    fail_msg("split of <%s>: \"%s\" does not mention \"%s\"", text, e.why,
             why);
}

/* Where `needle` starts in `text`; it must occur exactly once. */
static size_t at(const char *text, const char *needle) {
  const char *p = strstr(text, needle);
  assert_non_null(p);
  assert_null(strstr(p + 1, needle));
  return (size_t)(p - text);
}

/* Statement `st` is exactly `sql`, at `off`, beginning on `line`. */
static void expect_stmt(const char *text, const orm__sql_stmt_t *st,
                        size_t off, const char *sql, unsigned line) {
  size_t len = strlen(sql);
  if (st->off != off || st->len != len || st->line != line ||
      memcmp(text + st->off, sql, len) != 0)
    fail_msg("statement <%.*s> at %zu, len %zu, line %u; expected <%s> at "
             "%zu, len %zu, line %u",
             (int)st->len, text + st->off, st->off, st->len, st->line, sql,
             off, len, line);
}

/* ---- splitting ---------------------------------------------------------- */

static void test_split_simple(void **state) {
  const char *t1 = "CREATE TABLE a (id int);\nCREATE TABLE b (id int)";
  split_t r = split_ok(t1);
  assert_int_equal(r.n, 2);
  expect_stmt(t1, &r.st[0], 0, "CREATE TABLE a (id int)", 1);
  expect_stmt(t1, &r.st[1], 25, "CREATE TABLE b (id int)", 2);
  orm__free(r.st);

  /* Leading and trailing blanks are no part of a statement. */
  const char *t2 = "  SELECT 1 ;\n\n\tSELECT 2;\n";
  r = split_ok(t2);
  assert_int_equal(r.n, 2);
  expect_stmt(t2, &r.st[0], 2, "SELECT 1", 1);
  expect_stmt(t2, &r.st[1], 15, "SELECT 2", 3);
  orm__free(r.st);

  /* Empty statements vanish. */
  const char *t3 = ";;\n ; SELECT 1;;";
  r = split_ok(t3);
  assert_int_equal(r.n, 1);
  expect_stmt(t3, &r.st[0], 6, "SELECT 1", 2);
  orm__free(r.st);

  /* One statement over several lines. */
  const char *t4 = "\nCREATE TABLE t (\n  a int,\n  b text\n);\n";
  r = split_ok(t4);
  assert_int_equal(r.n, 1);
  expect_stmt(t4, &r.st[0], 1, "CREATE TABLE t (\n  a int,\n  b text\n)", 2);
  orm__free(r.st);

  /* Nothing at all. */
  r = split_ok("");
  assert_int_equal(r.n, 0);
  r = split_ok("  \n\t\r\n;\n");
  assert_int_equal(r.n, 0);

  /* Only `len` bytes count. */
  orm__sql_stmt_t *st = NULL;
  size_t n = 0;
  orm__sql_split_error_t e = {NULL, 0};
  assert_int_equal(orm__sql_split("SELECT 1; SELECT 'open", 9, &st, &n, &e), 0);
  assert_int_equal(n, 1);
  assert_int_equal(st[0].off, 0);
  assert_int_equal(st[0].len, 8);
  orm__free(st);

  /* Many statements: the array grows. */
  char big[64 * 12 + 1];
  size_t used = 0;
  for (int i = 0; i < 64; i++)
    used += (size_t)snprintf(big + used, sizeof big - used, "SELECT %02d;\n", i);
  r = split_ok(big);
  assert_int_equal(r.n, 64);
  for (size_t i = 0; i < 64; i++) {
    char sql[16];
    snprintf(sql, sizeof sql, "SELECT %02zu", i);
    expect_stmt(big, &r.st[i], i * 11, sql, (unsigned)i + 1);
  }
  orm__free(r.st);
}

static void test_split_quotes(void **state) {
  /* Semicolons in string literals, '' inside them. */
  const char *t1 = "INSERT INTO t VALUES ('a;b', 'it''s;');\nSELECT 2;";
  split_t r = split_ok(t1);
  assert_int_equal(r.n, 2);
  expect_stmt(t1, &r.st[0], 0, "INSERT INTO t VALUES ('a;b', 'it''s;')", 1);
  expect_stmt(t1, &r.st[1], at(t1, "SELECT 2"), "SELECT 2", 2);
  orm__free(r.st);

  /* E'...' takes backslash escapes: \' does not end it. */
  const char *t2 = "SELECT E'it\\'s;';\nSELECT e'a\\\\';SELECT 3";
  r = split_ok(t2);
  assert_int_equal(r.n, 3);
  expect_stmt(t2, &r.st[0], 0, "SELECT E'it\\'s;'", 1);
  expect_stmt(t2, &r.st[1], at(t2, "SELECT e'"), "SELECT e'a\\\\'", 2);
  expect_stmt(t2, &r.st[2], at(t2, "SELECT 3"), "SELECT 3", 2);
  orm__free(r.st);

  /* A plain '...' does not (standard_conforming_strings), nor does a
   * string after a word that merely ends in E. */
  const char *t3 = "SELECT 'a\\';SELECT 2;SELECT DATE'b\\';SELECT 4";
  r = split_ok(t3);
  assert_int_equal(r.n, 4);
  expect_stmt(t3, &r.st[0], 0, "SELECT 'a\\'", 1);
  expect_stmt(t3, &r.st[1], at(t3, "SELECT 2"), "SELECT 2", 1);
  expect_stmt(t3, &r.st[2], at(t3, "SELECT DATE"), "SELECT DATE'b\\'", 1);
  expect_stmt(t3, &r.st[3], at(t3, "SELECT 4"), "SELECT 4", 1);
  orm__free(r.st);

  /* Quoted identifiers, "" inside them. */
  const char *t4 = "CREATE TABLE \"a;b\" (\"c\"\"d;\" int);\nSELECT 1";
  r = split_ok(t4);
  assert_int_equal(r.n, 2);
  expect_stmt(t4, &r.st[0], 0, "CREATE TABLE \"a;b\" (\"c\"\"d;\" int)", 1);
  expect_stmt(t4, &r.st[1], at(t4, "SELECT 1"), "SELECT 1", 2);
  orm__free(r.st);

  /* Newlines inside quotes still count for the lines that follow. */
  const char *t5 = "SELECT 'a\nb\nc';\nSELECT 2";
  r = split_ok(t5);
  assert_int_equal(r.n, 2);
  expect_stmt(t5, &r.st[1], at(t5, "SELECT 2"), "SELECT 2", 4);
  orm__free(r.st);
}

static void test_split_comments(void **state) {
  const char *t1 = "-- header; not a statement\n"
                   "SELECT 1; -- trailing; comment\n"
                   "/* block; */ SELECT /* inner; */ 2 /* after; */;\n"
                   "SELECT 3 -- before the semicolon;\n"
                   ";\n"
                   "-- only a comment;\n"
                   "/* only a block; */;\n"
                   "SELECT 4 -- at the end, no newline";
  split_t r = split_ok(t1);
  assert_int_equal(r.n, 4);
  expect_stmt(t1, &r.st[0], 27, "SELECT 1", 2);
  expect_stmt(t1, &r.st[1], at(t1, "SELECT /*"), "SELECT /* inner; */ 2", 3);
  expect_stmt(t1, &r.st[2], at(t1, "SELECT 3"), "SELECT 3", 4);
  expect_stmt(t1, &r.st[3], at(t1, "SELECT 4"), "SELECT 4", 8);
  orm__free(r.st);

  /* Block comments nest: the first close does not end the outer one. */
  const char *t2 = "/* outer /* inner; */ still; comment */ SELECT 1;\n"
                   "/*\n * several; lines\n */\nSELECT 2";
  r = split_ok(t2);
  assert_int_equal(r.n, 2);
  expect_stmt(t2, &r.st[0], at(t2, "SELECT 1"), "SELECT 1", 1);
  expect_stmt(t2, &r.st[1], at(t2, "SELECT 2"), "SELECT 2", 5);
  orm__free(r.st);

  /* A minus is not a comment; a comment in the middle stays. */
  const char *t3 = "SELECT 1 - -3, 4-2 /* a */ + 2;";
  r = split_ok(t3);
  assert_int_equal(r.n, 1);
  expect_stmt(t3, &r.st[0], 0, "SELECT 1 - -3, 4-2 /* a */ + 2", 1);
  orm__free(r.st);

  /* Pieces of only comments and blanks are dropped. */
  r = split_ok("-- a\n/* b; */\n  -- c;\n;\n/* d /* e */ f */");
  assert_int_equal(r.n, 0);
  r = split_ok("SELECT 1;\n-- done\n/* really; done */\n");
  assert_int_equal(r.n, 1);
  orm__free(r.st);
}

static void test_split_dollar_quotes(void **state) {
  const char *t1 = "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$;\nSELECT 1;";
  split_t r = split_ok(t1);
  assert_int_equal(r.n, 2);
  expect_stmt(t1, &r.st[0], 0, "DO $$ BEGIN PERFORM 1; PERFORM 2; END $$", 1);
  expect_stmt(t1, &r.st[1], at(t1, "SELECT 1"), "SELECT 1", 2);
  orm__free(r.st);

  /* A tagged body holds $$ and semicolons; only $fn$ ends it. */
  const char *f = "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $fn$\n"
                  "BEGIN\n"
                  "  RETURN $$a;b$$ || 'c;';\n"
                  "END;\n"
                  "$fn$";
  char t2[512];
  snprintf(t2, sizeof t2, "%s;\nSELECT f();\nSELECT $_x1$ ; $_x$ $_x1$;", f);
  r = split_ok(t2);
  assert_int_equal(r.n, 3);
  expect_stmt(t2, &r.st[0], 0, f, 1);
  expect_stmt(t2, &r.st[1], at(t2, "SELECT f()"), "SELECT f()", 6);
  expect_stmt(t2, &r.st[2], at(t2, "SELECT $_x1$"), "SELECT $_x1$ ; $_x$ $_x1$",
              7);
  orm__free(r.st);

  /* $1 is a parameter, a$b$ an identifier: neither opens a quote. */
  const char *t3 = "PREPARE p(int) AS SELECT $1;\nSELECT a$b$;SELECT 3";
  r = split_ok(t3);
  assert_int_equal(r.n, 3);
  expect_stmt(t3, &r.st[0], 0, "PREPARE p(int) AS SELECT $1", 1);
  expect_stmt(t3, &r.st[1], at(t3, "SELECT a$"), "SELECT a$b$", 2);
  expect_stmt(t3, &r.st[2], at(t3, "SELECT 3"), "SELECT 3", 2);
  orm__free(r.st);

  /* Quote characters inside a dollar-quoted body mean nothing. */
  const char *t4 = "SELECT $q$ it's \"; /* -- $q$;\nSELECT 2";
  r = split_ok(t4);
  assert_int_equal(r.n, 2);
  expect_stmt(t4, &r.st[0], 0, "SELECT $q$ it's \"; /* -- $q$", 1);
  orm__free(r.st);
}

static void test_split_begin_atomic(void **state) {
  const char *fn = "CREATE FUNCTION add(a int, b int) RETURNS int\n"
                   "LANGUAGE sql\n"
                   "BEGIN ATOMIC\n"
                   "  SELECT 1;\n"
                   "  SELECT CASE WHEN a > 0 THEN a + b ELSE b END;\n"
                   "END";
  const char *proc = "create or replace procedure p()\n"
                     "begin atomic\n"
                     "  insert into t values (1);\n"
                     "  insert into t values (2);\n"
                     "end";
  char text[1024];
  snprintf(text, sizeof text, "%s;\n%s;\nSELECT add(1, 2);\nCALL p()", fn,
           proc);
  split_t r = split_ok(text);
  assert_int_equal(r.n, 4);
  expect_stmt(text, &r.st[0], 0, fn, 1);
  expect_stmt(text, &r.st[1], at(text, "create or"), proc, 7);
  expect_stmt(text, &r.st[2], at(text, "SELECT add"), "SELECT add(1, 2)", 12);
  expect_stmt(text, &r.st[3], at(text, "CALL p()"), "CALL p()", 13);
  orm__free(r.st);

  /* Outside CREATE FUNCTION / PROCEDURE an END does not wait for a BEGIN:
   * CASE ... END in a plain statement splits as usual. */
  const char *t2 = "SELECT CASE WHEN true THEN 1 END;\nSELECT 2";
  r = split_ok(t2);
  assert_int_equal(r.n, 2);
  expect_stmt(t2, &r.st[0], 0, "SELECT CASE WHEN true THEN 1 END", 1);
  orm__free(r.st);
}

/* ---- errors ------------------------------------------------------------- */

static void test_split_unterminated(void **state) {
  split_fails("SELECT 1;\nSELECT 'abc;\nSELECT 2;\n", 2, "string literal");
  split_fails("SELECT 1;\n\nSELECT E'it\\'s;\n", 3, "string literal");
  split_fails("SELECT 'it''s", 1, "string literal");
  split_fails("SELECT 1;\nSELECT \"a;b\nFROM t;\n", 2, "quoted identifier");
  split_fails("SELECT 1;\n\n/* outer /* inner */ still open;\nSELECT 2;", 3,
              "block comment");
  split_fails("SELECT 1 /*", 1, "block comment");
  split_fails("SELECT 1;\nDO $x$\nBEGIN\n  NULL;\nEND $$;\n", 2,
              "dollar-quoted");
  split_fails("SELECT 1;\nSELECT $$ a;", 2, "dollar-quoted");
}

static void test_split_transaction_control(void **state) {
  const char *why = "transaction control";
  split_fails("BEGIN;\nSELECT 1;", 1, why);
  split_fails("begin;", 1, why);
  split_fails("SELECT 1;\n\nCOMMIT;\n", 3, why);
  split_fails("SELECT 1;\nCOMMIT", 2, why);
  split_fails("START TRANSACTION;", 1, why);
  split_fails("SELECT 1;\nstart transaction isolation level serializable;", 2,
              why);
  split_fails("END;", 1, why);
  split_fails("ROLLBACK;", 1, why);
  split_fails("ABORT;", 1, why);
  split_fails("-- first\n/* a comment */ BEGIN;", 2, why);
  /* BEGIN ATOMIC outside a function is a transaction's BEGIN. */
  split_fails("SELECT 1;\nBEGIN ATOMIC;\n", 2, why);

  /* Words that only start like those, and BEGIN ATOMIC in a function, are
   * fine. */
  const char *ok = "ALTER TABLE t ADD COLUMN begin_at timestamptz;\n"
                   "UPDATE t SET begin_at = now(), end_at = now();\n"
                   "SELECT commit_sha, rollback_count, \"begin\" FROM t;\n"
                   "CREATE FUNCTION one() RETURNS int LANGUAGE sql\n"
                   "  BEGIN ATOMIC SELECT 1; END;\n"
                   "ALTER TABLE t RENAME begin_at TO started;\n";
  split_t r = split_ok(ok);
  assert_int_equal(r.n, 5);
  expect_stmt(ok, &r.st[3], at(ok, "CREATE"),
              "CREATE FUNCTION one() RETURNS int LANGUAGE sql\n"
              "  BEGIN ATOMIC SELECT 1; END",
              4);
  expect_stmt(ok, &r.st[4], at(ok, "ALTER TABLE t RENAME"),
              "ALTER TABLE t RENAME begin_at TO started", 6);
  orm__free(r.st);
}

/* psql never ends a statement at a ';' inside parentheses: a rule with
 * several actions is one statement. */
static void test_split_rule_parentheses(void **state) {
  const char *rule = "CREATE RULE r AS ON INSERT TO t DO ALSO (\n"
                     "  INSERT INTO a VALUES (1);\n"
                     "  INSERT INTO b VALUES (2)\n"
                     ")";
  char text[256];
  snprintf(text, sizeof text, "%s;\nSELECT 1;", rule);
  orm__sql_stmt_t *st = NULL;
  size_t n = 0;
  orm__sql_split_error_t e = {NULL, 0};
  assert_int_equal(orm__sql_split(text, strlen(text), &st, &n, &e), 0);
  assert_int_equal(n, 2);
  assert_int_equal(st[0].len, strlen(rule));
  assert_int_equal(st[1].line, 5);
  orm__free(st);
}

/* ---- error positions ---------------------------------------------------- */

static void test_error_line(void **state) {
  const char *text = "SELECT 1;\n\nSELECT a,\n       b,\n       nope\nFROM t;\n";
  split_t r = split_ok(text);
  assert_int_equal(r.n, 2);
  const orm__sql_stmt_t *st = &r.st[1];
  expect_stmt(text, st, 11, "SELECT a,\n       b,\n       nope\nFROM t", 3);
  assert_int_equal(orm__sql_error_line(text, st, 0), 3);
  assert_int_equal(orm__sql_error_line(text, st, -5), 3);
  assert_int_equal(orm__sql_error_line(text, st, 1), 3);
  assert_int_equal(orm__sql_error_line(text, st, 9), 3);  /* the ',' */
  assert_int_equal(orm__sql_error_line(text, st, 10), 3); /* its newline */
  assert_int_equal(orm__sql_error_line(text, st, 11), 4);
  assert_int_equal(orm__sql_error_line(text, st, 20), 4);
  assert_int_equal(orm__sql_error_line(text, st, 28), 5); /* "nope" */
  assert_int_equal(orm__sql_error_line(text, st, 38), 6); /* the last 't' */
  assert_int_equal(orm__sql_error_line(text, st, 39), 3); /* beyond it */
  assert_int_equal(orm__sql_error_line(text, st, 1000), 3);
  assert_int_equal(orm__sql_error_line(text, st, INT_MAX), 3);
  assert_int_equal(orm__sql_error_line(text, &r.st[0], 8), 1);
  orm__free(r.st);

  /* Characters, not bytes: é takes two bytes and counts once. Counting
   * bytes, position 17 would be the newline on line 2. */
  const char *u = "SELECT 1;\nSELECT '\xc3\xa9\xc3\xa9\xc3\xa9',\n  bad;";
  r = split_ok(u);
  assert_int_equal(r.n, 2);
  st = &r.st[1];
  assert_int_equal(st->line, 2);
  assert_int_equal(orm__sql_error_line(u, st, 12), 2); /* the closing ' */
  assert_int_equal(orm__sql_error_line(u, st, 14), 2); /* the newline */
  assert_int_equal(orm__sql_error_line(u, st, 15), 3);
  assert_int_equal(orm__sql_error_line(u, st, 17), 3); /* 'b' */
  assert_int_equal(orm__sql_error_line(u, st, 19), 3); /* 'd' */
  assert_int_equal(orm__sql_error_line(u, st, 20), 2); /* beyond */
  orm__free(r.st);

  /* Three- and four-byte characters likewise (19 bytes, 14 characters). */
  const char *w = "SELECT '\xe2\x82\xac\xf0\x9f\x98\x80',\nx";
  r = split_ok(w);
  assert_int_equal(r.n, 1);
  st = &r.st[0];
  assert_int_equal(st->len, 19);
  assert_int_equal(orm__sql_error_line(w, st, 13), 1);
  assert_int_equal(orm__sql_error_line(w, st, 14), 2);
  assert_int_equal(orm__sql_error_line(w, st, 15), 1);
  assert_int_equal(orm__sql_error_line(w, st, 19), 1);
  orm__free(r.st);
}

/* ---- the no-transaction marker ------------------------------------------ */

static bool no_tx(const char *text) {
  return orm__sql_no_transaction(text, strlen(text));
}

static void test_no_transaction(void **state) {
  assert_true(no_tx("-- uvorm:no-transaction\n"
                    "CREATE INDEX CONCURRENTLY i ON t (a);\n"));
  assert_true(no_tx("-- uvorm:no-transaction\r\n"
                    "CREATE INDEX CONCURRENTLY i ON t (a);\r\n"));
  assert_true(no_tx("-- uvorm:no-transaction"));
  assert_true(no_tx("-- uvorm:no-transaction\n-- more\n"));

  assert_false(no_tx(""));
  assert_false(no_tx("-- uvorm:no-trans"));
  assert_false(no_tx("SELECT 1;\n-- uvorm:no-transaction\n"));
  assert_false(no_tx("\n-- uvorm:no-transaction\n"));
  assert_false(no_tx("-- header\n-- uvorm:no-transaction\n"));
  assert_false(no_tx(" -- uvorm:no-transaction\n"));
  assert_false(no_tx("-- uvorm:no-transactions\n"));
  assert_false(no_tx("-- uvorm:no-transaction x\n"));
  assert_false(no_tx("-- uvorm:no-transaction; SELECT 1;\n"));
  assert_false(no_tx("--uvorm:no-transaction\n"));
  assert_false(no_tx("/* uvorm:no-transaction */\n"));
  /* Only `len` bytes count. */
  assert_false(orm__sql_no_transaction("-- uvorm:no-transaction\n", 10));
}

/* ---- SHA-256 ------------------------------------------------------------ */

static void hex_of(const unsigned char d[32], char out[65]) {
  for (int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_sha256_vectors(void **state) {
  static const struct {
    const char *in;
    const char *hex;
  } v[] = {
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abc",
       "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char hex[65];
    memset(hex, 'x', sizeof hex);
    orm__sha256_hex(v[i].in, strlen(v[i].in), hex);
    assert_string_equal(hex, v[i].hex);

    orm__sha256_t s;
    unsigned char d[32];
    orm__sha256_init(&s);
    for (size_t k = 0; v[i].in[k] != '\0'; k++)
      orm__sha256_update(&s, v[i].in + k, 1);
    orm__sha256_final(&s, d);
    hex_of(d, hex);
    assert_string_equal(hex, v[i].hex);
  }
}

/* Lengths around the padding boundaries (digests from sha256sum). */
static void test_sha256_boundaries(void **state) {
  static const struct {
    size_t n;
    const char *hex;
  } v[] = {
      {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
      {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
      {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
      {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
      {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
      {119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"},
      {120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"},
      {128, "6836cf13bac400e9105071cd6af47084dfacad4e5e302c94bfed24e013afb73e"},
  };
  char a[128];
  memset(a, 'a', sizeof a);
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
    char hex[65];
    orm__sha256_hex(a, v[i].n, hex);
    if (strcmp(hex, v[i].hex) != 0)
      fail_msg("%zu x 'a': %s, expected %s", v[i].n, hex, v[i].hex);
  }

  /* Streaming, cut anywhere, gives the one-shot digest. */
  unsigned char data[200];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (unsigned char)(i * 131 + 7);
  for (size_t len = 0; len <= sizeof data; len += 7) {
    char whole[65], parts[65];
    orm__sha256_hex(data, len, whole);
    for (size_t cut = 0; cut <= len; cut += 13) {
      orm__sha256_t s;
      unsigned char d[32];
      orm__sha256_init(&s);
      orm__sha256_update(&s, data, cut);
      orm__sha256_update(&s, data + cut, 0);
      orm__sha256_update(&s, data + cut, len - cut);
      orm__sha256_final(&s, d);
      hex_of(d, parts);
      if (strcmp(whole, parts) != 0)
        fail_msg("len %zu cut at %zu: %s, whole %s", len, cut, parts, whole);
    }
  }
}

static void test_sha256_million(void **state) {
  static const size_t chunks[] = {1, 3, 7, 13, 61, 63, 64, 65, 127, 1001, 4099};
  char a[4099];
  memset(a, 'a', sizeof a);
  orm__sha256_t s;
  orm__sha256_init(&s);
  size_t left = 1000000;
  for (size_t i = 0; left > 0; i++) {
    size_t n = chunks[i % (sizeof chunks / sizeof chunks[0])];
    if (n > left)
      n = left;
    orm__sha256_update(&s, a, n);
    left -= n;
  }
  unsigned char d[32];
  char hex[65];
  orm__sha256_final(&s, d);
  hex_of(d, hex);
  assert_string_equal(
      hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_split_simple),
      cmocka_unit_test(test_split_quotes),
      cmocka_unit_test(test_split_comments),
      cmocka_unit_test(test_split_dollar_quotes),
      cmocka_unit_test(test_split_begin_atomic),
      cmocka_unit_test(test_split_unterminated),
      cmocka_unit_test(test_split_transaction_control),
      cmocka_unit_test(test_split_rule_parentheses),
      cmocka_unit_test(test_error_line),
      cmocka_unit_test(test_no_transaction),
      cmocka_unit_test(test_sha256_vectors),
      cmocka_unit_test(test_sha256_boundaries),
      cmocka_unit_test(test_sha256_million),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
