/* SPDX-License-Identifier: MIT */
/* Sets of migrations, without a server: loading a directory of SQL files
 * (a temporary one under /tmp, removed afterwards) or embedded arrays, and
 * every file the loader refuses. */
#include "harness.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uvorm.h>

#include "base/sha256.h"
#include "migrate/migrate_int.h"

/* ---- a temporary directory ---------------------------------------------- */

typedef struct {
  char dir[64];
} fixture_t;

static int dir_setup(void **state) {
  fixture_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/uvorm_migrate_set_XXXXXX");
  if (mkdtemp(f->dir) == NULL) {
    free(f);
    return -1;
  }
  *state = f;
  return 0;
}

/* Removes every file of the directory (it holds no subdirectories). */
static void empty_dir(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  struct dirent *de;
  char path[512];
  while ((de = readdir(d)) != NULL) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    assert_int_equal(unlink(path), 0);
  }
  closedir(d);
}

static int dir_teardown(void **state) {
  fixture_t *f = *state;
  empty_dir(f->dir);
  int rc = rmdir(f->dir);
  free(f);
  return rc;
}

static const char *dir_of(void **state) {
  return ((fixture_t *)*state)->dir;
}

/* Writes `len` bytes of `text` to dir/name. */
static void put_n(const char *dir, const char *name, const char *text,
                  size_t len) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *fp = fopen(path, "wb");
  assert_non_null(fp);
  assert_int_equal(fwrite(text, 1, len, fp), len);
  assert_int_equal(fclose(fp), 0);
}

static void put(const char *dir, const char *name, const char *text) {
  put_n(dir, name, text, strlen(text));
}

static void path_of(char *out, size_t size, const char *dir, const char *name) {
  snprintf(out, size, "%s/%s", dir, name);
}

/* Loading `dir` fails with `code`, and the message holds each of the
 * `needles` (NULL-terminated); with err NULL it fails alike. */
static void load_fails(const char *dir, int code, const char *const *needles) {
  orm_migrations_t *set = NULL;
  char err[1024] = "";
  int rc = orm_migrations_load_dir(dir, &set, err, sizeof err);
  if (rc != code)
    fail_msg("%s: %d (%s), expected %d", dir, rc, err, code);
  assert_null(set);
  for (size_t i = 0; needles != NULL && needles[i] != NULL; i++)
    if (strstr(err, needles[i]) == NULL)
      fail_msg("\"%s\" does not mention \"%s\"", err, needles[i]);
  assert_int_equal(orm_migrations_load_dir(dir, &set, NULL, 0), code);
  assert_null(set);
}

/* ---- the texts ---------------------------------------------------------- */

static const char create_up[] = "CREATE TABLE t (a int);\n"
                                "CREATE TABLE u (b text);\n";
static const char create_up_sha[] =
    "ef22d8c3acc0cd63635926d461372abc6dca879a512562e15beaff9d4b3157cc";
static const char create_down[] = "DROP TABLE u;\nDROP TABLE t;\n";
static const char index_up[] = "-- uvorm:no-transaction\n"
                               "CREATE INDEX CONCURRENTLY t_a ON t (a);\n";
static const char index_down[] = "-- uvorm:no-transaction\r\n"
                                 "DROP INDEX CONCURRENTLY t_a;\r\n";
static const char seed_up[] = "INSERT INTO t VALUES (1);\n"
                              "INSERT INTO u VALUES ('a;b');\n"
                              "INSERT INTO u VALUES ($$c;d$$);\n"
                              "-- done\n";

/* The three migrations above, whichever way they were loaded. */
static void expect_good_set(const orm_migrations_t *set, const char *dir,
                            bool embedded) {
  assert_int_equal(orm_migrations_count(set), 3);
  const orm_migration_t *m0 = orm_migrations_at(set, 0);
  const orm_migration_t *m1 = orm_migrations_at(set, 1);
  const orm_migration_t *m2 = orm_migrations_at(set, 2);
  assert_non_null(m0);
  assert_non_null(m1);
  assert_non_null(m2);
  assert_null(orm_migrations_at(set, 3));
  assert_null(orm_migrations_at(set, (size_t)-1));

  char path[512];
  /* By version's value: 2, 3, 10 (on disk, by name: 10, 2, 3). */
  assert_string_equal(m0->version, "2");
  assert_string_equal(m0->name, "create_t");
  if (embedded) {
    assert_string_equal(m0->up_file, "2_create_t.up.sql");
    assert_string_equal(m0->down_file, "2_create_t.down.sql");
  } else {
    path_of(path, sizeof path, dir, "2_create_t.up.sql");
    assert_string_equal(m0->up_file, path);
    path_of(path, sizeof path, dir, "2_create_t.down.sql");
    assert_string_equal(m0->down_file, path);
  }
  assert_string_equal(m0->up_sql, create_up);
  assert_string_equal(m0->down_sql, create_down);
  assert_int_equal(m0->up_statements, 2);
  assert_int_equal(m0->down_statements, 2);
  assert_false(m0->up_no_transaction);
  assert_false(m0->down_no_transaction);
  assert_string_equal(m0->checksum, create_up_sha);

  assert_string_equal(m1->version, "3");
  assert_string_equal(m1->name, "add-index");
  if (embedded) {
    assert_string_equal(m1->up_file, "3_add-index.up.sql");
    assert_string_equal(m1->down_file, "3_add-index.down.sql");
  } else {
    path_of(path, sizeof path, dir, "3_add-index.up.sql");
    assert_string_equal(m1->up_file, path);
    path_of(path, sizeof path, dir, "3_add-index.down.sql");
    assert_string_equal(m1->down_file, path);
  }
  assert_string_equal(m1->up_sql, index_up);
  assert_string_equal(m1->down_sql, index_down);
  assert_int_equal(m1->up_statements, 1);
  assert_int_equal(m1->down_statements, 1);
  assert_true(m1->up_no_transaction);
  assert_true(m1->down_no_transaction); /* its first line ends in CRLF */

  assert_string_equal(m2->version, "10");
  assert_string_equal(m2->name, "seed");
  if (embedded) {
    assert_string_equal(m2->up_file, "10_seed.up.sql");
  } else {
    path_of(path, sizeof path, dir, "10_seed.up.sql");
    assert_string_equal(m2->up_file, path);
  }
  assert_null(m2->down_file);
  assert_null(m2->down_sql);
  assert_string_equal(m2->up_sql, seed_up);
  assert_int_equal(m2->up_statements, 3);
  assert_int_equal(m2->down_statements, 0);
  assert_false(m2->up_no_transaction);
  assert_false(m2->down_no_transaction);

  /* Checksums: SHA-256 of each up text. */
  const orm_migration_t *ms[3] = {m0, m1, m2};
  for (int i = 0; i < 3; i++) {
    char hex[65];
    orm__sha256_hex(ms[i]->up_sql, strlen(ms[i]->up_sql), hex);
    assert_string_equal(ms[i]->checksum, hex);
    assert_int_equal(strlen(ms[i]->checksum), 64);
  }
}

/* ---- from a directory --------------------------------------------------- */

static void put_good_set(const char *dir) {
  put(dir, "10_seed.up.sql", seed_up);
  put(dir, "3_add-index.down.sql", index_down);
  put(dir, "2_create_t.up.sql", create_up);
  put(dir, "3_add-index.up.sql", index_up);
  put(dir, "2_create_t.down.sql", create_down);
  /* Ignored: not .sql, or hidden (it would be refused if read). */
  put(dir, "README.md", "# migrations\n");
  put(dir, "notes.txt", "BEGIN;\n");
  put(dir, "2_create_t.up.sql.orig", "");
  put(dir, ".hidden.sql", "BEGIN;\n");
  put(dir, ".4_later.up.sql", "");
}

static void test_dir_good(void **state) {
  const char *dir = dir_of(state);
  put_good_set(dir);
  orm_migrations_t *set = NULL;
  char err[512] = "";
  int rc = orm_migrations_load_dir(dir, &set, err, sizeof err);
  if (rc != 0)
    fail_msg("load: %d (%s)", rc, err);
  assert_non_null(set);
  expect_good_set(set, dir, false);
  orm_migrations_free(set);

  /* err may be NULL; a trailing '/' on the directory is fine. */
  char slash[128];
  snprintf(slash, sizeof slash, "%s/", dir);
  assert_int_equal(orm_migrations_load_dir(slash, &set, NULL, 0), 0);
  assert_int_equal(orm_migrations_count(set), 3);
  orm_migrations_free(set);
}

static void test_dir_versions(void **state) {
  const char *dir = dir_of(state);
  /* An empty directory is an empty set. */
  orm_migrations_t *set = NULL;
  assert_int_equal(orm_migrations_load_dir(dir, &set, NULL, 0), 0);
  assert_non_null(set);
  assert_int_equal(orm_migrations_count(set), 0);
  assert_null(orm_migrations_at(set, 0));
  orm_migrations_free(set);

  /* Versions keep their digits and sort by value; 18 digits are fine. */
  put(dir, "8_b.up.sql", "SELECT 8;");
  put(dir, "007_a.up.sql", "SELECT 7;");
  put(dir, "20240101120000_c_d-e.up.sql", "SELECT 2024;");
  put(dir, "999999999999999999_max.up.sql", "SELECT 9;");
  assert_int_equal(orm_migrations_load_dir(dir, &set, NULL, 0), 0);
  assert_int_equal(orm_migrations_count(set), 4);
  assert_string_equal(orm_migrations_at(set, 0)->version, "007");
  assert_string_equal(orm_migrations_at(set, 0)->name, "a");
  assert_string_equal(orm_migrations_at(set, 1)->version, "8");
  assert_string_equal(orm_migrations_at(set, 2)->version, "20240101120000");
  assert_string_equal(orm_migrations_at(set, 2)->name, "c_d-e");
  assert_string_equal(orm_migrations_at(set, 3)->version,
                      "999999999999999999");
  orm_migrations_free(set);
}

static void test_dir_bad_names(void **state) {
  const char *dir = dir_of(state);
  put(dir, "1_ok.up.sql", "SELECT 1;");
  static const char *const bad[] = {
      "1_x.sql",         "abc_x.up.sql",  "1_bad name.up.sql",
      "1_.up.sql",       "_x.up.sql",     "1-x.up.sql",
      "1_x.UP.sql",      "1_x.sideways.sql",
      "1234567890123456789_x.up.sql", /* 19 digits */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    put(dir, bad[i], "SELECT 1;");
    const char *needles[] = {bad[i], "not a migration file name", NULL};
    load_fails(dir, ORM_EINVAL, needles);
    char path[512];
    path_of(path, sizeof path, dir, bad[i]);
    assert_int_equal(unlink(path), 0);
  }
}

static void test_dir_duplicate_version(void **state) {
  const char *dir = dir_of(state);
  put(dir, "1_a.up.sql", "SELECT 1;");
  put(dir, "1_b.up.sql", "SELECT 2;");
  const char *n1[] = {"1_a.up.sql", "1_b.up.sql", NULL};
  load_fails(dir, ORM_EINVAL, n1);
  empty_dir(dir);

  /* The same value in other digits. */
  put(dir, "1_a.up.sql", "SELECT 1;");
  put(dir, "01_a.up.sql", "SELECT 2;");
  const char *n2[] = {"1_a.up.sql", "01_a.up.sql", NULL};
  load_fails(dir, ORM_EINVAL, n2);
  empty_dir(dir);

  /* A down file of another name for the version. */
  put(dir, "3_c.up.sql", "SELECT 1;");
  put(dir, "3_d.down.sql", "SELECT 2;");
  const char *n3[] = {"3_c.up.sql", "3_d.down.sql", NULL};
  load_fails(dir, ORM_EINVAL, n3);
}

static void test_dir_down_without_up(void **state) {
  const char *dir = dir_of(state);
  put(dir, "1_a.up.sql", "SELECT 1;");
  put(dir, "1_a.down.sql", "SELECT 1;");
  put(dir, "2_b.down.sql", "SELECT 2;");
  const char *needles[] = {"2_b.down.sql", "without", NULL};
  load_fails(dir, ORM_EINVAL, needles);
}

/* Each bad text, as an up file and as a down file, named in the message
 * (with the line where it applies). */
static void test_dir_bad_texts(void **state) {
  const char *dir = dir_of(state);
  static const struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    const char *what; /* in the message after the file name */
  } bad[] = {
      {"", 0, ": holds no SQL statement"},
      {"-- nothing\n/* here; */\n", 0, ": holds no SQL statement"},
      {" ;\n;\n", 0, ": holds no SQL statement"},
      {"SELECT 1;\0SELECT 2;", 19, ": holds a NUL byte"},
      {"SELECT 1;\n\nSELECT 'oops;\n", 0, ":3: a string literal"},
      {"SELECT 1;\n/* open", 0, ":2: a block comment"},
      {"CREATE TABLE a (b int);\nBEGIN;\nCOMMIT;\n", 0,
       ":2: transaction control"},
      {"-- uvorm:no-transaction\nCOMMIT", 0, ":2: transaction control"},
  };
  put(dir, "1_ok.up.sql", "SELECT 1;");
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char needle[128], path[512];
    size_t len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].text);
    /* As the up file of version 5. */
    put_n(dir, "5_bad.up.sql", bad[i].text, len);
    snprintf(needle, sizeof needle, "5_bad.up.sql%s", bad[i].what);
    const char *n1[] = {needle, NULL};
    load_fails(dir, ORM_EINVAL, n1);
    path_of(path, sizeof path, dir, "5_bad.up.sql");
    assert_int_equal(unlink(path), 0);
    /* As the down file of version 1. */
    put_n(dir, "1_ok.down.sql", bad[i].text, len);
    snprintf(needle, sizeof needle, "1_ok.down.sql%s", bad[i].what);
    const char *n2[] = {needle, NULL};
    load_fails(dir, ORM_EINVAL, n2);
    path_of(path, sizeof path, dir, "1_ok.down.sql");
    assert_int_equal(unlink(path), 0);
  }
}

static void test_dir_io_and_arguments(void **state) {
  const char *dir = dir_of(state);
  char path[512];
  path_of(path, sizeof path, dir, "missing");
  const char *n1[] = {path, NULL};
  load_fails(path, ORM_EIO, n1);

  /* A file is not a directory. */
  put(dir, "plain", "x");
  path_of(path, sizeof path, dir, "plain");
  load_fails(path, ORM_EIO, n1);

  orm_migrations_t *set = NULL;
  char err[256] = "";
  assert_int_equal(orm_migrations_load_dir(NULL, &set, err, sizeof err),
                   ORM_EINVAL);
  assert_true(err[0] != '\0');
  assert_null(set);
  assert_int_equal(orm_migrations_load_dir(dir, NULL, err, sizeof err),
                   ORM_EINVAL);
  assert_int_equal(orm_migrations_load_dir(NULL, NULL, NULL, 0), ORM_EINVAL);

  /* A short buffer gets what fits, NUL-terminated; errlen 0 leaves it. */
  char small[8];
  memset(small, 'x', sizeof small);
  assert_int_equal(orm_migrations_load_dir(path, &set, small, sizeof small),
                   ORM_EIO);
  assert_int_equal(strlen(small), sizeof small - 1);
  assert_int_equal(strncmp(small, path, sizeof small - 1), 0);
  memset(small, 'x', sizeof small);
  assert_int_equal(orm_migrations_load_dir(path, &set, small, 0), ORM_EIO);
  assert_int_equal(small[0], 'x');

  orm_migrations_free(NULL);
  assert_int_equal(orm_migrations_count(NULL), 0);
  assert_null(orm_migrations_at(NULL, 0));
}

/* ---- embedded ----------------------------------------------------------- */

static void test_embedded_good(void **state) {
  const orm_migration_source_t list[] = {
      {"10", "seed", seed_up, sizeof seed_up - 1, NULL, 0},
      {"3", "add-index", index_up, sizeof index_up - 1, index_down,
       sizeof index_down - 1},
      {"2", "create_t", create_up, sizeof create_up - 1, create_down,
       sizeof create_down - 1},
  };
  orm_migrations_t *set = NULL;
  char err[512] = "";
  int rc = orm_migrations_load_embedded(list, 3, &set, err, sizeof err);
  if (rc != 0)
    fail_msg("load: %d (%s)", rc, err);
  expect_good_set(set, NULL, true);
  /* The texts are the caller's, not copies. */
  assert_ptr_equal(orm_migrations_at(set, 0)->up_sql, create_up);
  assert_ptr_equal(orm_migrations_at(set, 0)->down_sql, create_down);
  assert_ptr_equal(orm_migrations_at(set, 1)->up_sql, index_up);
  assert_ptr_equal(orm_migrations_at(set, 1)->down_sql, index_down);
  assert_ptr_equal(orm_migrations_at(set, 2)->up_sql, seed_up);
  orm_migrations_free(set);

  /* None at all. */
  assert_int_equal(orm_migrations_load_embedded(NULL, 0, &set, NULL, 0), 0);
  assert_int_equal(orm_migrations_count(set), 0);
  orm_migrations_free(set);
  assert_int_equal(orm_migrations_load_embedded(list, 0, &set, NULL, 0), 0);
  assert_int_equal(orm_migrations_count(set), 0);
  orm_migrations_free(set);
}

static void embedded_fails(const orm_migration_source_t *list, size_t n,
                           int code, const char *const *needles) {
  orm_migrations_t *set = NULL;
  char err[1024] = "";
  int rc = orm_migrations_load_embedded(list, n, &set, err, sizeof err);
  if (rc != code)
    fail_msg("%d (%s), expected %d", rc, err, code);
  assert_null(set);
  for (size_t i = 0; needles != NULL && needles[i] != NULL; i++)
    if (strstr(err, needles[i]) == NULL)
      fail_msg("\"%s\" does not mention \"%s\"", err, needles[i]);
  assert_int_equal(orm_migrations_load_embedded(list, n, &set, NULL, 0), code);
  assert_null(set);
}

static void test_embedded_errors(void **state) {
  static const char ok[] = "SELECT 1;";
  static const char nul[] = "SELECT 1;\0SELECT 2;";
  orm_migrations_t *set = NULL;

  /* Bad versions and names: the message says which entry. */
  static const char *const versions[] = {"", "x", "1a", "-1",
                                         "1234567890123456789"};
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
    orm_migration_source_t l[] = {{"1", "ok", ok, 9, NULL, 0},
                                  {versions[i], "x", ok, 9, NULL, 0}};
    const char *needles[] = {"embedded migration 1", NULL};
    embedded_fails(l, 2, ORM_EINVAL, needles);
  }
  static const char *const names[] = {"", "bad name", "a.b", "x/y"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    orm_migration_source_t l[] = {{"1", names[i], ok, 9, NULL, 0}};
    const char *needles[] = {"embedded migration 0", NULL};
    embedded_fails(l, 1, ORM_EINVAL, needles);
  }
  orm_migration_source_t nulls[][1] = {{{NULL, "x", ok, 9, NULL, 0}},
                                       {{"1", NULL, ok, 9, NULL, 0}},
                                       {{"1", "x", NULL, 0, NULL, 0}}};
  for (size_t i = 0; i < 3; i++)
    embedded_fails(nulls[i], 1, ORM_EINVAL, NULL);

  /* Two of one version. */
  orm_migration_source_t dup[] = {{"1", "a", ok, 9, NULL, 0},
                                  {"2", "b", ok, 9, NULL, 0},
                                  {"01", "c", ok, 9, NULL, 0}};
  const char *ndup[] = {"1_a.up.sql", "01_c.up.sql", NULL};
  embedded_fails(dup, 3, ORM_EINVAL, ndup);

  /* Bad texts, up and down. */
  static const struct {
    const char *text;
    size_t len; /* 0: strlen(text) */
    const char *what;
  } bad[] = {
      {"", 0, ": holds no SQL statement"},
      {"-- nothing\n/* here; */\n", 0, ": holds no SQL statement"},
      {nul, sizeof nul - 1, ": holds a NUL byte"},
      {"SELECT 1;\nSELECT 'oops;\n", 0, ":2: a string literal"},
      {"SELECT 1;\nDO $x$ oops", 0, ":2: a dollar-quoted"},
      {"SELECT 1;\n\nBEGIN;\n", 0, ":3: transaction control"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char needle[128];
    size_t len = bad[i].len != 0 ? bad[i].len : strlen(bad[i].text);
    orm_migration_source_t up[] = {{"1", "ok", ok, 9, NULL, 0},
                                   {"5", "bad", bad[i].text, len, NULL, 0}};
    snprintf(needle, sizeof needle, "5_bad.up.sql%s", bad[i].what);
    const char *n1[] = {needle, NULL};
    embedded_fails(up, 2, ORM_EINVAL, n1);

    orm_migration_source_t down[] = {
        {"1", "ok", ok, 9, bad[i].text, len}};
    snprintf(needle, sizeof needle, "1_ok.down.sql%s", bad[i].what);
    const char *n2[] = {needle, NULL};
    embedded_fails(down, 1, ORM_EINVAL, n2);
  }

  /* NULL arguments. */
  orm_migration_source_t one[] = {{"1", "ok", ok, 9, NULL, 0}};
  char err[64] = "";
  assert_int_equal(orm_migrations_load_embedded(one, 1, NULL, err, sizeof err),
                   ORM_EINVAL);
  assert_true(err[0] != '\0');
  assert_int_equal(orm_migrations_load_embedded(NULL, 2, &set, NULL, 0),
                   ORM_EINVAL);
  assert_null(set);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_dir_good, dir_setup, dir_teardown),
      cmocka_unit_test_setup_teardown(test_dir_versions, dir_setup,
                                      dir_teardown),
      cmocka_unit_test_setup_teardown(test_dir_bad_names, dir_setup,
                                      dir_teardown),
      cmocka_unit_test_setup_teardown(test_dir_duplicate_version, dir_setup,
                                      dir_teardown),
      cmocka_unit_test_setup_teardown(test_dir_down_without_up, dir_setup,
                                      dir_teardown),
      cmocka_unit_test_setup_teardown(test_dir_bad_texts, dir_setup,
                                      dir_teardown),
      cmocka_unit_test_setup_teardown(test_dir_io_and_arguments, dir_setup,
                                      dir_teardown),
      cmocka_unit_test(test_embedded_good),
      cmocka_unit_test(test_embedded_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
