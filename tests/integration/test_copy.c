/* SPDX-License-Identifier: MIT */
/* COPY against the real server: model rows in by binary COPY, raw CSV in
 * from a reader and out to a writer, all or nothing on a bad row, inside a
 * transaction, 0 rows, a reader that aborts, a statement that is not the
 * COPY asked for, a cancelled COPY. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "copy_test"

#define USAGE_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(model, ORM_T_TEXT, const char *, 0)                                        \
  X(tokens, ORM_T_INT4, int32_t, 0)                                            \
  X(cost, ORM_T_FLOAT8, double, ORM_F_NULLABLE)                                \
  X(at, ORM_T_TIMESTAMPTZ, int64_t, 0)
ORM_MODEL_DECLARE(usage, USAGE_FIELDS);
ORM_MODEL_DEFINE(usage, "usage", USAGE_FIELDS);

static orm_fx_t fx;

static void open_fx(void) {
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 2});
  orm_fx_sql(&fx, "CREATE TABLE usage (id bigserial PRIMARY KEY, model text "
                  "NOT NULL, tokens int NOT NULL CHECK (tokens >= 0), cost "
                  "float8, at timestamptz NOT NULL)");
}

static usage_t *make_rows(size_t n, char (**names)[24]) {
  usage_t *rows = calloc(n ? n : 1, sizeof *rows);
  *names = calloc(n ? n : 1, sizeof **names);
  for (size_t i = 0; i < n; i++) {
    snprintf((*names)[i], sizeof (*names)[i], "m-%zu", i);
    rows[i] = (usage_t){.model = (*names)[i],
                        .tokens = (int32_t)i,
                        .cost = (double)i / 4,
                        .at = 1700000000000000LL + (int64_t)i};
    if (i % 7 == 0)
      orm_row_set_null(usage_model(), &rows[i], 3, true);
  }
  return rows;
}

static void test_rows_in(void **state) {
  (void)state;
  open_fx();
  size_t n = getenv("UVORM_TEST_QUICK") ? 3000 : 30000;
  char(*names)[24];
  usage_t *rows = make_rows(n, &names);
  orm_step_t s = {.take = 1};
  assert_int_equal(orm_copy_in_rows_async(fx.pool, usage_model(), rows, n,
                                          orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  assert_int_equal(orm_result_affected(s.taken), (int64_t)n);
  orm_result_free(s.taken);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM usage"), (int64_t)n);
  /* Values and NULLs as sent, through the codecs. */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM usage WHERE cost IS "
                                   "NULL"),
                   (int64_t)((n + 6) / 7));
  char *v = orm_fx_text(&fx, "SELECT model || ',' || tokens || ',' || cost "
                             "|| ',' || (extract(epoch FROM at) * 1000000)"
                             "::int8 FROM usage WHERE tokens = 9");
  assert_string_equal(v, "m-9,9,2.25,1700000000000009");
  free(v);
  /* Generated columns took their defaults. */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(DISTINCT id) FROM usage"),
                   (int64_t)n);
  free(rows);
  free(names);
  orm_fx_close(&fx);
}

static void test_bad_row_keeps_nothing(void **state) {
  (void)state;
  open_fx();
  char(*names)[24];
  usage_t *rows = make_rows(1000, &names);
  rows[500].model = NULL; /* NULL into NOT NULL */
  orm_step_t s = {0};
  assert_int_equal(orm_copy_in_rows_async(fx.pool, usage_model(), rows, 1000,
                                          orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, ORM_ESERVER);
  assert_string_equal(s.sqlstate, "23502");
  rows[500].model = names[500];
  rows[700].tokens = -1; /* the CHECK */
  orm_step_t c = {0};
  assert_int_equal(orm_copy_in_rows_async(fx.pool, usage_model(), rows, 1000,
                                          orm_fx_on_step, &c, NULL),
                   0);
  orm_fx_wait(&fx, &c, 1);
  assert_int_equal(c.status, ORM_ESERVER);
  assert_string_equal(c.sqlstate, "23514");
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM usage"), 0);
  /* 0 rows: a COPY of nothing. */
  orm_step_t z = {.take = 1};
  assert_int_equal(orm_copy_in_rows_async(fx.pool, usage_model(), NULL, 0,
                                          orm_fx_on_step, &z, NULL),
                   0);
  orm_fx_wait(&fx, &z, 1);
  assert_int_equal(z.status, 0);
  assert_int_equal(orm_result_affected(z.taken), 0);
  orm_result_free(z.taken);
  /* The connection is fine afterwards. */
  orm_step_t q = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 5", NULL, 0,
                                   orm_fx_on_step, &q, NULL),
                   0);
  orm_fx_wait(&fx, &q, 1);
  assert_int_equal(q.value, 5);
  free(rows);
  free(names);
  orm_fx_close(&fx);
}

static void test_in_a_transaction(void **state) {
  (void)state;
  open_fx();
  char(*names)[24], (*names2)[24];
  usage_t *rows = make_rows(100, &names);
  /* Rows stay untouched until their COPY's callback: a second set. */
  usage_t *bad = make_rows(100, &names2);
  bad[50].tokens = -5;
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t c1 = {0}, cnt = {.result = 1}, c2 = {0}, after = {0}, rb = {0};
  assert_int_equal(orm_copy_in_rows_async(tx, usage_model(), rows, 100,
                                          orm_fx_on_step, &c1, NULL),
                   0);
  assert_int_equal(orm_query_async(tx, "SELECT count(*) FROM usage", NULL, 0,
                                   orm_fx_on_step, &cnt, NULL),
                   0);
  assert_int_equal(orm_copy_in_rows_async(tx, usage_model(), bad, 100,
                                          orm_fx_on_step, &c2, NULL),
                   0);
  assert_int_equal(orm_query_async(tx, "SELECT 1", NULL, 0, orm_fx_on_step,
                                   &after, NULL),
                   0);
  assert_int_equal(orm_tx_rollback_async(tx, orm_fx_on_step, &rb, NULL), 0);
  orm_fx_wait(&fx, &rb, 1);
  assert_int_equal(c1.status, 0);
  assert_int_equal(cnt.value, 100); /* seen inside the transaction */
  assert_int_equal(c2.status, ORM_ESERVER);
  assert_string_equal(c2.sqlstate, "23514");
  /* The failed COPY failed the transaction, as any statement does. */
  assert_int_equal(after.status, ORM_ESKIPPED);
  assert_string_equal(after.sqlstate, "25P02");
  assert_int_equal(rb.status, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM usage"), 0);
  free(rows);
  free(names);
  free(bad);
  free(names2);
  orm_fx_close(&fx);
}

typedef struct {
  const char *text;
  size_t len, at, piece;
  int fail_at; /* abort on this call (0: never) */
  int calls;
  char out[4096];
  size_t out_len;
  orm_step_t step;
} pipe_t;

static int reader(void *data, const void **buf, size_t *len) {
  pipe_t *p = data;
  p->calls++;
  if (p->fail_at > 0 && p->calls == p->fail_at)
    return ORM_EIO;
  if (p->at >= p->len)
    return 0;
  size_t n = p->len - p->at < p->piece ? p->len - p->at : p->piece;
  *buf = p->text + p->at;
  *len = n;
  p->at += n;
  return 1;
}

static void writer(void *data, const void *buf, size_t len) {
  pipe_t *p = data;
  assert_true(p->out_len + len < sizeof p->out);
  memcpy(p->out + p->out_len, buf, len);
  p->out_len += len;
}

static void on_pipe(orm_future_t *f, void *data) {
  pipe_t *p = data;
  orm_fx_on_step(f, &p->step);
}

static void test_raw_csv_in_and_out(void **state) {
  (void)state;
  open_fx();
  const char *csv = "gpt,10,0.5,2024-01-01 00:00:00+00\n"
                    "\"we,ird\",20,,2024-01-02 00:00:00+00\n"
                    "claude,30,1.25,2024-01-03 00:00:00+00\n";
  pipe_t in = {.text = csv, .len = strlen(csv), .piece = 7};
  in.step.take = 1;
  assert_int_equal(orm_copy_in_async(fx.pool,
                                     "COPY usage (model, tokens, cost, at) "
                                     "FROM STDIN (FORMAT csv)",
                                     reader, on_pipe, &in, NULL),
                   0);
  orm_fx_wait(&fx, &in.step, 1);
  assert_int_equal(in.step.status, 0);
  assert_int_equal(orm_result_affected(in.step.taken), 3);
  orm_result_free(in.step.taken);
  pipe_t out = {0};
  out.step.take = 1;
  assert_int_equal(
      orm_copy_out_async(fx.pool,
                         "COPY (SELECT model, tokens, cost, at FROM usage "
                         "ORDER BY tokens) TO STDOUT (FORMAT csv)",
                         writer, on_pipe, &out, NULL),
      0);
  orm_fx_wait(&fx, &out.step, 1);
  assert_int_equal(out.step.status, 0);
  assert_int_equal(orm_result_affected(out.step.taken), 3);
  orm_result_free(out.step.taken);
  out.out[out.out_len] = '\0';
  assert_string_equal(out.out,
                      "gpt,10,0.5,2024-01-01 00:00:00+00\n"
                      "\"we,ird\",20,,2024-01-02 00:00:00+00\n"
                      "claude,30,1.25,2024-01-03 00:00:00+00\n");
  /* A reader that gives up: the COPY keeps nothing. */
  pipe_t bad = {.text = csv, .len = strlen(csv), .piece = 40, .fail_at = 2};
  assert_int_equal(orm_copy_in_async(fx.pool,
                                     "COPY usage (model, tokens, cost, at) "
                                     "FROM STDIN (FORMAT csv)",
                                     reader, on_pipe, &bad, NULL),
                   0);
  orm_fx_wait(&fx, &bad.step, 1);
  assert_int_equal(bad.step.status, ORM_EIO);
  assert_non_null(strstr(bad.step.message, "reader"));
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM usage"), 3);
  /* A malformed line: the server's error. */
  pipe_t mal = {.text = "x,notanumber,1,2024-01-01\n", .piece = 100};
  mal.len = strlen(mal.text);
  assert_int_equal(orm_copy_in_async(fx.pool,
                                     "COPY usage (model, tokens, cost, at) "
                                     "FROM STDIN (FORMAT csv)",
                                     reader, on_pipe, &mal, NULL),
                   0);
  orm_fx_wait(&fx, &mal.step, 1);
  assert_int_equal(mal.step.status, ORM_ESERVER);
  assert_string_equal(mal.step.sqlstate, "22P02");
  orm_fx_close(&fx);
}

static void test_wrong_statements(void **state) {
  (void)state;
  open_fx();
  pipe_t p = {.text = "", .piece = 1};
  assert_int_equal(orm_copy_in_async(fx.pool, "SELECT 1", reader, on_pipe, &p,
                                     NULL),
                   0);
  orm_fx_wait(&fx, &p.step, 1);
  assert_int_equal(p.step.status, ORM_EPROTO);
  pipe_t o = {0};
  assert_int_equal(orm_copy_out_async(fx.pool,
                                      "COPY usage FROM STDIN (FORMAT csv)",
                                      writer, on_pipe, &o, NULL),
                   0);
  orm_fx_wait(&fx, &o.step, 1);
  assert_int_equal(o.step.status, ORM_EPROTO);
  /* In the other direction: the COPY TO is read away, not fatal. */
  pipe_t w = {.text = "", .piece = 1};
  assert_int_equal(orm_copy_in_async(fx.pool, "COPY usage TO STDOUT", reader,
                                     on_pipe, &w, NULL),
                   0);
  orm_fx_wait(&fx, &w.step, 1);
  assert_int_equal(w.step.status, ORM_EPROTO);
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  assert_int_equal(st.reconnects, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM usage"), 0);
  pipe_t e = {0};
  assert_int_equal(orm_copy_out_async(fx.pool, "COPY nosuch TO STDOUT",
                                      writer, on_pipe, &e, NULL),
                   0);
  orm_fx_wait(&fx, &e.step, 1);
  assert_int_equal(e.step.status, ORM_ESERVER);
  assert_string_equal(e.step.sqlstate, "42P01");
  /* Bad arguments. */
  assert_int_equal(orm_copy_in_async(fx.pool, NULL, reader, on_pipe, &p,
                                     NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_copy_in_async(fx.pool, "COPY usage FROM STDIN", NULL,
                                     on_pipe, &p, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_copy_out_async(fx.pool, "COPY usage TO STDOUT", NULL,
                                      on_pipe, &p, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_copy_in_rows_async(fx.pool, NULL, NULL, 0,
                                          orm_fx_on_step, &p.step, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_copy_in_rows_async(fx.pool, usage_model(), NULL, 3,
                                          orm_fx_on_step, &p.step, NULL),
                   ORM_EINVAL);
  orm_fx_close(&fx);
}

typedef struct {
  size_t bytes;
  orm_future_t *f;
  orm_step_t step;
} counter_t;

static void count_and_cancel(void *data, const void *buf, size_t len) {
  (void)buf;
  counter_t *c = data;
  c->bytes += len;
  if (c->bytes > 100000 && c->f != NULL) {
    assert_int_equal(orm_future_cancel(c->f), 0);
    orm_future_release(c->f);
    c->f = NULL;
  }
}

static void on_counter(orm_future_t *f, void *data) {
  counter_t *c = data;
  orm_fx_on_step(f, &c->step);
}

static void test_cancel_copy_out(void **state) {
  (void)state;
  open_fx();
  counter_t c = {0};
  assert_int_equal(orm_copy_out_async(fx.pool,
                                      "COPY (SELECT generate_series(1, "
                                      "100000000) g) TO STDOUT",
                                      count_and_cancel, on_counter, &c, &c.f),
                   0);
  orm_fx_wait(&fx, &c.step, 1);
  assert_int_equal(c.step.status, ORM_ECANCELED);
  size_t seen = c.bytes;
  orm_step_t q = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 6", NULL, 0,
                                   orm_fx_on_step, &q, NULL),
                   0);
  orm_fx_wait(&fx, &q, 1);
  assert_int_equal(q.value, 6);
  assert_int_equal(c.bytes, seen); /* nothing after the cancel */
  orm_fx_close(&fx);
}

typedef struct {
  int64_t rows;
  int bad;
  int64_t cancel_at;
  int unchecked; /* rows not from make_rows() */
  orm_step_t step;
} out_t;

static void on_out_rows(orm_stream_t *s, const orm_rows_t *rows, void *data) {
  out_t *o = data;
  for (size_t i = 0; !o->unchecked && i < orm_rows_count(rows); i++) {
    const usage_t *u = orm_rows_at(rows, i);
    char want[16];
    snprintf(want, sizeof want, "m-%d", u->tokens);
    bool null_cost = orm_row_is_null(usage_model(), u, 3);
    if (strcmp(u->model, want) != 0 || null_cost != (u->tokens % 7 == 0) ||
        (!null_cost && u->cost != (double)u->tokens / 4) ||
        u->at != 1700000000000000LL + u->tokens || u->id <= 0)
      o->bad++;
  }
  o->rows += (int64_t)orm_rows_count(rows);
  if (o->cancel_at > 0 && o->rows >= o->cancel_at) {
    o->cancel_at = 0;
    assert_int_equal(orm_stream_cancel(s), 0);
  }
}

static void on_out_done(orm_future_t *f, void *data) {
  out_t *o = data;
  orm_fx_on_step(f, &o->step);
}

static void test_rows_out(void **state) {
  (void)state;
  open_fx();
  char(*names)[24];
  size_t n = 3000;
  usage_t *rows = make_rows(n, &names);
  orm_step_t s = {0};
  assert_int_equal(orm_copy_in_rows_async(fx.pool, usage_model(), rows, n,
                                          orm_fx_on_step, &s, NULL),
                   0);
  orm_fx_wait(&fx, &s, 1);
  assert_int_equal(s.status, 0);
  /* The whole table, through the codecs, NULLs and all. */
  out_t all = {0};
  orm_stream_t *st;
  assert_int_equal(orm_copy_out_rows_async(fx.pool, usage_model(), NULL, 500,
                                           on_out_rows, on_out_done, &all,
                                           &st, NULL),
                   0);
  orm_fx_wait(&fx, &all.step, 1);
  assert_int_equal(all.step.status, 0);
  assert_int_equal(all.rows, (int64_t)n);
  assert_int_equal(all.bad, 0);
  /* A query of the caller's; its columns are cast to the fields' types. */
  out_t some = {0};
  assert_int_equal(
      orm_copy_out_rows_async(fx.pool, usage_model(),
                              "SELECT id, model, tokens::int2 AS tokens, "
                              "cost, at FROM usage WHERE tokens < 100",
                              0, on_out_rows, on_out_done, &some, NULL, NULL),
      0);
  orm_fx_wait(&fx, &some.step, 1);
  assert_int_equal(some.step.status, 0);
  assert_int_equal(some.rows, 100);
  assert_int_equal(some.bad, 0);
  /* A column that cannot be its field's type fails on the server. */
  out_t wrong = {0};
  assert_int_equal(
      orm_copy_out_rows_async(fx.pool, usage_model(),
                              "SELECT id, model, 'many' AS tokens, cost, at "
                              "FROM usage",
                              0, on_out_rows, on_out_done, &wrong, NULL,
                              NULL),
      0);
  orm_fx_wait(&fx, &wrong.step, 1);
  assert_int_equal(wrong.step.status, ORM_ESERVER);
  assert_string_equal(wrong.step.sqlstate, "22P02");
  assert_int_equal(wrong.rows, 0);
  /* Cancelled half way through a very long one. */
  out_t big = {.cancel_at = 5000, .unchecked = 1};
  assert_int_equal(
      orm_copy_out_rows_async(
          fx.pool, usage_model(),
          "SELECT g AS id, 'm' AS model, 1 AS tokens, NULL::float8 AS cost, "
          "now() AS at FROM (SELECT generate_series(1, 100000000) AS g) s",
          1000, on_out_rows, on_out_done, &big, NULL, NULL),
      0);
  orm_fx_wait(&fx, &big.step, 1);
  assert_int_equal(big.step.status, ORM_ECANCELED);
  assert_int_equal(big.rows, 5000);
  orm_step_t q = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 4", NULL, 0,
                                   orm_fx_on_step, &q, NULL),
                   0);
  orm_fx_wait(&fx, &q, 1);
  assert_int_equal(q.value, 4);
  assert_int_equal(orm_copy_out_rows_async(fx.pool, NULL, NULL, 0,
                                           on_out_rows, on_out_done, &big,
                                           NULL, NULL),
                   ORM_EINVAL);
  free(rows);
  free(names);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rows_in),
      cmocka_unit_test(test_bad_row_keeps_nothing),
      cmocka_unit_test(test_in_a_transaction),
      cmocka_unit_test(test_raw_csv_in_and_out),
      cmocka_unit_test(test_wrong_statements),
      cmocka_unit_test(test_cancel_copy_out),
      cmocka_unit_test(test_rows_out),
  };
  return orm_run_group_tests(tests, NULL, NULL);
}
