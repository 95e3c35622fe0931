/* SPDX-License-Identifier: MIT */
/* What the relations load tests share (test_relations_load.c,
 * test_relations_preload.c): their models, fixture, statement counts from
 * pg_stat_statements, seeds and checks. Define SCHEMA before including it. */
#ifndef ORM_TEST_RELATIONS_LOAD_H
#define ORM_TEST_RELATIONS_LOAD_H

#include "alloc_fault.h"
#include "fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#ifndef SCHEMA
#error "define SCHEMA before including relations_load.h"
#endif

/* ---- test-local models ------------------------------------------------------
 * Table names unique to this file, so that pg_stat_statements' texts that
 * name them are this file's statements. */
#define LCONV_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(title, ORM_T_TEXT, const char *, 0)
#define LCONV_RELATIONS(R) R(messages, ORM_HAS_MANY, lmsg, conv_id, NULL)
ORM_MODEL_DECLARE_REL(lconv, LCONV_FIELDS, LCONV_RELATIONS);

#define LMSG_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(conv_id, ORM_T_INT8, int64_t, 0)                                           \
  X(body, ORM_T_TEXT, const char *, 0)
#define LMSG_RELATIONS(R)                                                      \
  R(usage, ORM_HAS_ONE, lusage, msg_id, NULL)                                  \
  R(conv, ORM_BELONGS_TO, lconv, conv_id, NULL)
ORM_MODEL_DECLARE_REL(lmsg, LMSG_FIELDS, LMSG_RELATIONS);

#define LUSAGE_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(msg_id, ORM_T_INT8, int64_t, 0)                                            \
  X(tokens, ORM_T_INT4, int32_t, 0)
ORM_MODEL_DECLARE(lusage, LUSAGE_FIELDS);

#define BPARENT_FIELDS(X)                                                      \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(label, ORM_T_INT4, int32_t, 0)
#define BPARENT_RELATIONS(R) R(children, ORM_HAS_MANY, bchild, parent_id, NULL)
ORM_MODEL_DECLARE_REL(bparent, BPARENT_FIELDS, BPARENT_RELATIONS);

#define BCHILD_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(parent_id, ORM_T_INT8, int64_t, 0)                                         \
  X(seq, ORM_T_INT4, int32_t, 0)
#define BCHILD_RELATIONS(R) R(grand, ORM_HAS_MANY, bgrand, child_id, NULL)
ORM_MODEL_DECLARE_REL(bchild, BCHILD_FIELDS, BCHILD_RELATIONS);

#define BGRAND_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(child_id, ORM_T_INT8, int64_t, 0)
ORM_MODEL_DECLARE(bgrand, BGRAND_FIELDS);

ORM_MODEL_DEFINE_REL(lconv, "ldc_conv", LCONV_FIELDS, LCONV_RELATIONS);
ORM_MODEL_DEFINE_REL(lmsg, "ldc_msg", LMSG_FIELDS, LMSG_RELATIONS);
ORM_MODEL_DEFINE(lusage, "ldc_usage", LUSAGE_FIELDS);
ORM_MODEL_DEFINE_REL(bparent, "ldb_parent", BPARENT_FIELDS,
                     BPARENT_RELATIONS);
ORM_MODEL_DEFINE_REL(bchild, "ldb_child", BCHILD_FIELDS, BCHILD_RELATIONS);
ORM_MODEL_DEFINE(bgrand, "ldb_grand", BGRAND_FIELDS);

/* ---- fixture and helpers ------------------------------------------------- */

static orm_fx_t fx;
/* A second session holding a lock, closed by the teardown should a test
 * fail while it holds it (the schema could not be dropped otherwise). */
static PGconn *locker;

#define TAKE ((orm_step_t){.take = 1})

static inline int quick(void) { return getenv("UVORM_TEST_QUICK") != NULL; }

static inline void create_ldc_tables(void) {
  orm_fx_sql(&fx,
             "CREATE TABLE ldc_conv (id bigserial PRIMARY KEY, title text NOT "
             "NULL);"
             "CREATE TABLE ldc_msg (id bigserial PRIMARY KEY, conv_id bigint "
             "NOT NULL REFERENCES ldc_conv ON DELETE CASCADE, body text NOT "
             "NULL);"
             "CREATE INDEX ON ldc_msg (conv_id, id);"
             "CREATE TABLE ldc_usage (id bigserial PRIMARY KEY, msg_id bigint "
             "NOT NULL REFERENCES ldc_msg ON DELETE CASCADE, tokens integer "
             "NOT NULL)");
}

static inline int setup(void **state) {
  orm_fx_open(&fx, SCHEMA, 1, NULL);
  create_ldc_tables();
  return 0;
}

static inline int teardown(void **state) {
  if (locker != NULL) {
    PQfinish(locker);
    locker = NULL;
  }
  orm_fx_close(&fx);
  return 0;
}

static inline void expect_ok(const orm_step_t *s, const char *what) {
  if (s->status != 0)
    fail_msg("%s: %s %s %s", what, orm_err_name(s->status), s->sqlstate,
             s->message);
}

/* Runs the loop until `s` is done, failing after `ms`. */
static inline void wait_step(orm_step_t *s, uint64_t ms) {
  uv_update_time(&fx.loop);
  uint64_t end = uv_now(&fx.loop) + ms;
  while (!s->done) {
    uv_run(&fx.loop, UV_RUN_ONCE);
    if (uv_now(&fx.loop) > end)
      fail_msg("the request did not complete in %llu ms",
               (unsigned long long)ms);
  }
}

static inline orm_pool_stats_t stats_now(void) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  return st;
}

/* Runs the loop until nothing is in flight, queued or in a transaction
 * (transactions end after their callbacks: COMMIT's answer comes last). */
static inline void wait_idle(void) {
  for (int i = 0; i < 1000; i++) {
    orm_pool_stats_t st = stats_now();
    if (st.in_flight == 0 && st.queued == 0 && st.conns_in_tx == 0)
      return;
    orm_fx_run_ms(&fx, 5);
  }
  fail_msg("the pool did not become idle");
}

static inline orm_query_t *query_inc(const orm_model_t *model, const char *path,
                              const char *order) {
  orm_query_t *q = NULL;
  assert_int_equal(orm_query_new(&q, model), 0);
  if (path != NULL)
    assert_int_equal(orm_query_include(q, path), 0);
  if (order != NULL)
    assert_int_equal(orm_query_order_by(q, order, ORM_ASC), 0);
  return q;
}

static inline orm_rows_t *fetch_on(orm_exec_t *exec, orm_query_t *q) {
  static orm_step_t s; /* outlives a failed wait: the teardown may run it */
  s = TAKE;
  int rc = orm_find_all_async(exec, NULL, q, orm_fx_on_step, &s, NULL);
  orm_query_free(q);
  if (rc != 0)
    fail_msg("orm_find_all_async: %s", orm_err_name(rc));
  wait_step(&s, 30000);
  expect_ok(&s, "find_all");
  assert_non_null(s.taken);
  return s.taken;
}

static inline orm_rows_t *fetch(orm_query_t *q) {
  return fetch_on(orm_pool_exec(fx.pool), q);
}

/* Preloads `path` into `rows` on `exec`; returns the outcome. */
static inline void preload_on(orm_exec_t *exec, orm_rows_t *rows, const char *path,
                       orm_step_t *s) {
  *s = (orm_step_t){.take = 1};
  int rc = orm_preload_async(exec, rows, path, orm_fx_on_step, s, NULL);
  if (rc != 0)
    fail_msg("orm_preload_async(\"%s\"): %s", path, orm_err_name(rc));
  wait_step(s, 60000);
}

static inline void preload_ok(orm_exec_t *exec, orm_rows_t *rows, const char *path) {
  orm_step_t s;
  preload_on(exec, rows, path, &s);
  expect_ok(&s, path);
  assert_null(s.taken); /* a preload resolves with no value */
}

/* pg_stat_statements: whether it can be read (not on every server given by
 * DATABASE_URL), and the sum of `column` (calls, rows) over this
 * database's reads (SELECT, or WITH ... SELECT) whose text is LIKE
 * `pattern`. */
static inline int have_pss(void) {
  static int have = -1;
  if (have < 0)
    have = orm_fx_int(&fx, "SELECT count(*) FROM pg_extension "
                           "WHERE extname = 'pg_stat_statements'") == 1 &&
           orm_fx_int(&fx, "SELECT count(*) FROM "
                           "(SELECT 1 FROM public.pg_stat_statements "
                           "LIMIT 1) s") >= 0 &&
           orm_fx_int(&fx, "SELECT count(*) FROM pg_class WHERE relname = "
                           "'pg_stat_statements_info'") == 1;
  return have;
}

/* How often pg_stat_statements has evicted entries (when it holds
 * pg_stat_statements.max of them, the least used go, and with them the
 * counts of a statement a test is counting). A window in which this did not
 * change counted reliably. */
static int64_t pss_dealloc(void) {
  return orm_fx_int(&fx, "SELECT dealloc FROM public.pg_stat_statements_info");
}

static inline bool pss_unchanged_since(int64_t dealloc) {
  if (pss_dealloc() == dealloc)
    return true;
  print_message("pg_stat_statements evicted entries meanwhile: the server's "
                "counts are not checked\n");
  return false;
}

static int64_t pss_sum(const char *column, const char *pattern) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT coalesce(sum(%s), 0) FROM public.pg_stat_statements "
           "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = "
           "current_database()) AND query LIKE '%s' "
           "AND (query ILIKE 'SELECT%%' OR query ILIKE 'WITH%%') "
           "AND query NOT LIKE '%%pg_stat_statements%%'",
           column, pattern);
  return orm_fx_int(&fx, sql);
}

/* Statements that name one of this file's ldc_ tables (the library quotes
 * identifiers; the admin SQL of these tests does not). */
#define PSS_LDC "%\"ldc\\_%"
/* ... and those that select from ldc_msg. */
#define PSS_LDC_MSG "%FROM \"ldc\\_msg\" WHERE%"

/* `nconv` conversations with `nmsg` messages each, each message with a
 * usage record when `usage`. */
static inline void seed_ldc(int nconv, int nmsg, int usage) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO ldc_conv (title) SELECT 'c' || g FROM "
           "generate_series(1, %d) g;"
           "INSERT INTO ldc_msg (conv_id, body) SELECT c.id, 'm' || k FROM "
           "ldc_conv c, generate_series(1, %d) k ORDER BY c.id, k;"
           "%s",
           nconv, nmsg,
           usage ? "INSERT INTO ldc_usage (msg_id, tokens) SELECT id, "
                   "id % 100 FROM ldc_msg"
                 : "SELECT 1");
  orm_fx_sql(&fx, sql);
}

/* Every conversation has `nmsg` messages of its own, each with its usage
 * when `usage`; returns the number of conversations. */
static inline size_t check_ldc(const orm_rows_t *rows, size_t nmsg, int usage) {
  const lconv_t *c = orm_rows_array(rows);
  size_t n = orm_rows_count(rows);
  for (size_t i = 0; i < n; i++) {
    lmsg_t *m = NULL;
    size_t len = 0;
    assert_int_equal(ORM_REL_MANY(&c[i], messages, &m, &len), 0);
    if (len != nmsg)
      fail_msg("conversation %lld: %zu messages, expected %zu",
               (long long)c[i].id, len, nmsg);
    for (size_t k = 0; k < len; k++) {
      assert_int_equal(m[k].conv_id, c[i].id);
      if (k > 0)
        assert_true(m[k].id > m[k - 1].id);
      lusage_t *u = NULL;
      if (usage) {
        assert_int_equal(ORM_REL_ONE(&m[k], usage, &u), 0);
        assert_non_null(u);
        assert_int_equal(u->msg_id, m[k].id);
        assert_int_equal(u->tokens, m[k].id % 100);
      } else {
        assert_int_equal(ORM_REL_ONE(&m[k], usage, &u), ORM_ENOTLOADED);
      }
    }
  }
  return n;
}


#endif /* ORM_TEST_RELATIONS_LOAD_H */
