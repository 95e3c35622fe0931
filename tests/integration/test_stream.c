/* SPDX-License-Identifier: MIT */
/* Streaming against the real server: rows in chunks through a model, by raw
 * SQL and the query builder, in a transaction; pause and resume with the
 * server held by backpressure; cancel (the server's query goes too); an
 * error mid-stream; a connection killed mid-stream; the pool closing under
 * a stream; memory bounded by the chunk. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SCHEMA "stream_test"

#define ITEM_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)                                         \
  X(score, ORM_T_FLOAT8, double, ORM_F_NULLABLE)
ORM_MODEL_DECLARE(item, ITEM_FIELDS);
ORM_MODEL_DEFINE(item, "items", ITEM_FIELDS);

static orm_fx_t fx;

static int quick(void) { return getenv("UVORM_TEST_QUICK") != NULL; }

/* Whether memory figures mean anything: AddressSanitizer keeps freed
 * blocks in quarantine (hundreds of MB), valgrind has its own heap. */
static int rss_meaningful(void) {
#if defined(__SANITIZE_ADDRESS__)
  return 0;
#else
  return !quick();
#endif
}

typedef struct {
  int64_t rows;      /* rows seen */
  int64_t next_id;   /* the id expected next */
  int chunks;
  size_t max_chunk;
  int bad;           /* a row out of order or with a wrong value */
  int64_t pause_at;  /* pause once this many rows are in (0: never) */
  int64_t cancel_at; /* cancel once this many rows are in (0: never) */
  int paused;
  int chunks_while_paused;
  orm_stream_t *stream;
  orm_step_t done;
} sink_t;

static void on_rows(orm_stream_t *stream, const orm_rows_t *rows, void *data) {
  sink_t *k = data;
  if (k->paused)
    k->chunks_while_paused++;
  size_t n = orm_rows_count(rows);
  k->chunks++;
  if (n > k->max_chunk)
    k->max_chunk = n;
  for (size_t i = 0; i < n; i++) {
    const item_t *it = orm_rows_at(rows, i);
    char want[32];
    snprintf(want, sizeof want, "item-%lld", (long long)k->next_id);
    if (it->id != k->next_id || strcmp(it->name, want) != 0)
      k->bad++;
    k->next_id++;
  }
  k->rows += (int64_t)n;
  assert_int_equal(orm_stream_count(stream), (uint64_t)k->rows);
  if (k->pause_at > 0 && k->rows >= k->pause_at && !k->paused) {
    k->pause_at = 0;
    k->paused = 1;
    assert_int_equal(orm_stream_pause(stream), 0);
  }
  if (k->cancel_at > 0 && k->rows >= k->cancel_at) {
    k->cancel_at = 0;
    assert_int_equal(orm_stream_cancel(stream), 0);
  }
}

static void on_done(orm_future_t *f, void *data) {
  sink_t *k = data;
  orm_fx_on_step(f, &k->done);
}

/* generate_series in the select list streams its rows; in FROM it would
 * be materialized first (a function scan), 100M rows taking seconds before
 * the first one leaves the server. */
static const char *series_sql =
    "SELECT g::int8 AS id, 'item-' || g AS name, (g * 0.5)::float8 AS score "
    "FROM (SELECT generate_series(1, $1::int8) AS g) s";

static void open_fx(unsigned conns) {
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = conns, .max_conns = conns});
}

static sink_t new_sink(void) { return (sink_t){.next_id = 1}; }

static void start(sink_t *k, orm_exec_t *exec, int64_t n, size_t chunk) {
  orm_param_t p = ORM_INT8(n);
  assert_int_equal((orm_stream_async)(exec, item_model(), series_sql, &p, 1,
                                      chunk, on_rows, on_done, k, &k->stream,
                                      NULL),
                   0);
}

/* A stream of `n` rows, paused once its first chunk is in. */
static void start_paused(sink_t *k, int64_t n, size_t chunk) {
  k->pause_at = 1;
  start(k, orm_pool_exec(fx.pool), n, chunk);
  while (!k->paused)
    uv_run(&fx.loop, UV_RUN_ONCE);
}

static void test_rows_arrive_in_chunks(void **state) {
  (void)state;
  open_fx(2);
  sink_t k = new_sink();
  int64_t n = quick() ? 5000 : 50000;
  start(&k, orm_pool_exec(fx.pool), n, 1000);
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, 0);
  assert_int_equal(k.rows, n);
  assert_int_equal(k.bad, 0);
  assert_int_equal(k.chunks, (int)(n / 1000));
  assert_int_equal(k.max_chunk, 1000);
  /* The connection is back in the pool and works. */
  orm_step_t step = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 7", NULL, 0,
                                   orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  assert_int_equal(step.value, 7);
  orm_fx_close(&fx);
}

/* On one connection, so the statements after the stream run where it ran:
 * its single-row mode must not outlive it (libpq 15 keeps the flag into
 * pipeline mode, and the first pipelined query after it would come back
 * a row at a time). */
static void test_next_statements_on_its_connection(void **state) {
  (void)state;
  open_fx(1);
  for (int round = 0; round < 3; round++) {
    sink_t k = new_sink();
    start(&k, orm_pool_exec(fx.pool), 50, 10);
    orm_fx_wait(&fx, &k.done, 1);
    assert_int_equal(k.done.status, 0);
    assert_int_equal(k.rows, 50);
    /* A raw query of several rows, then a model read. */
    orm_step_t step = {.result = 1};
    assert_int_equal(orm_query_async(fx.pool,
                                     "SELECT g FROM generate_series(7, 9) g",
                                     NULL, 0, orm_fx_on_step, &step, NULL),
                     0);
    orm_fx_wait(&fx, &step, 1);
    if (step.status != 0)
      fail_msg("round %d: %s %s", round, orm_err_name(step.status),
               step.message);
    assert_int_equal(step.value, 7);
  }
  orm_fx_close(&fx);
}

/* Without pipeline mode a lease has nothing to leave: the same stream. */
static void test_without_pipelining(void **state) {
  (void)state;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.min_conns = 1, .max_conns = 1,
                                   .no_pipeline = true});
  orm_step_t before = {.result = 1}, after = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 1", NULL, 0,
                                   orm_fx_on_step, &before, NULL),
                   0);
  sink_t k = new_sink();
  start(&k, orm_pool_exec(fx.pool), 3000, 1000);
  assert_int_equal(orm_query_async(fx.pool, "SELECT 2", NULL, 0,
                                   orm_fx_on_step, &after, NULL),
                   0);
  orm_fx_wait(&fx, &after, 1);
  assert_int_equal(before.value, 1);
  assert_int_equal(k.done.status, 0);
  assert_int_equal(k.rows, 3000);
  assert_int_equal(after.value, 2);
  orm_fx_close(&fx);
}

static void test_short_last_chunk_and_empty(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  start(&k, orm_pool_exec(fx.pool), 2500, 1000);
  sink_t e = new_sink();
  start(&e, orm_pool_exec(fx.pool), 0, 1000);
  orm_fx_wait(&fx, &k.done, 1);
  orm_fx_wait(&fx, &e.done, 1);
  assert_int_equal(k.done.status, 0);
  assert_int_equal(k.rows, 2500);
  assert_int_equal(k.chunks, 3);
  assert_int_equal(e.done.status, 0);
  assert_int_equal(e.chunks, 0);
  orm_fx_close(&fx);
}

static void test_query_builder(void **state) {
  (void)state;
  open_fx(1);
  orm_fx_sql(&fx, "CREATE TABLE items (id int8 PRIMARY KEY, name text NOT "
                  "NULL, score float8)");
  orm_fx_sql(&fx, "INSERT INTO items SELECT g, 'item-' || g, g FROM "
                  "generate_series(1, 3000) g");
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, item_model()), 0);
  assert_int_equal(orm_query_where(q, "id", ORM_OP_GT, ORM_INT8(1000)), 0);
  assert_int_equal(orm_query_order_by(q, "id", ORM_ASC), 0);
  sink_t k = new_sink();
  k.next_id = 1001;
  assert_int_equal(orm_stream_query_async(fx.pool, q, 300, on_rows, on_done,
                                          &k, NULL, NULL),
                   0);
  orm_query_free(q); /* taken at the call */
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, 0);
  assert_int_equal(k.rows, 2000);
  assert_int_equal(k.bad, 0);
  assert_int_equal(k.max_chunk, 300);
  orm_fx_close(&fx);
}

/* The process's resident memory now (not the peak). */
static long current_rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f != NULL) {
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
      resident = 0;
    fclose(f);
  }
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* How many server processes wait to write to their client. */
static int64_t blocked_on_client(void) {
  return orm_fx_int(&fx, "SELECT count(*) FROM pg_stat_activity WHERE "
                         "wait_event = 'ClientWrite' AND application_name = "
                         "'stream_test' AND query LIKE "
                         "'%generate_series%' AND pid <> pg_backend_pid()");
}

static void test_pause_holds_the_server(void **state) {
  (void)state;
  open_fx(2);
  sink_t k = new_sink();
  /* Enough to overflow every socket buffer between us and the server. */
  int64_t n = quick() ? 200000 : 1000000;
  start_paused(&k, n, 500);
  assert_true(orm_stream_paused(k.stream));
  int64_t seen = k.rows;
  /* The proof: memory holds steady for 5 s while paused. */
  long lo = current_rss_kb(), hi = lo;
  for (int i = 0; i < (quick() ? 2 : 5); i++) {
    orm_fx_run_ms(&fx, 1000);
    long now = current_rss_kb();
    lo = now < lo ? now : lo;
    hi = now > hi ? now : hi;
  }
  print_message("paused 5 s: RSS between %ld and %ld kB\n", lo, hi);
  if (rss_meaningful())
    assert_true(hi - lo < 1024);
  assert_int_equal(k.chunks_while_paused, 0);
  assert_int_equal(k.rows, seen);
  assert_int_equal(k.done.done, 0);
  /* The server is held by backpressure: it waits to write to us. */
  assert_int_equal(blocked_on_client(), 1);
  /* Other work goes on on the other connection meanwhile. */
  orm_step_t step = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 8", NULL, 0,
                                   orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  assert_int_equal(step.value, 8);
  k.paused = 0;
  assert_int_equal(orm_stream_resume(k.stream), 0);
  assert_false(orm_stream_paused(k.stream));
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, 0);
  assert_int_equal(k.rows, n);
  assert_int_equal(k.bad, 0);
  orm_fx_close(&fx);
}

static void test_cancel_stops_the_server(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  k.cancel_at = 2000;
  start(&k, orm_pool_exec(fx.pool), 100000000, 1000); /* never finishes */
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, ORM_ECANCELED);
  assert_int_equal(k.rows, 2000); /* nothing after the cancel */
  assert_int_equal(orm_stream_cancel(k.stream), ORM_ESTATE);
  /* The connection comes back once the server has stopped. */
  orm_step_t step = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 9", NULL, 0,
                                   orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  assert_int_equal(step.value, 9);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM pg_stat_activity "
                                   "WHERE application_name = 'stream_test' AND "
                                   "query LIKE '%generate_series%' AND "
                                   "state = 'active' AND pid <> "
                                   "pg_backend_pid()"),
                   0);
  orm_fx_close(&fx);
}

static void test_cancel_while_paused(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  start_paused(&k, 100000000, 1000);
  orm_fx_run_ms(&fx, 100);
  int64_t seen = k.rows;
  assert_int_equal(orm_stream_cancel(k.stream), 0);
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, ORM_ECANCELED);
  assert_int_equal(k.rows, seen);
  orm_step_t step = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 10", NULL, 0,
                                   orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  assert_int_equal(step.value, 10);
  orm_fx_close(&fx);
}

static void test_error_mid_stream(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  assert_int_equal(
      orm_stream_async(fx.pool, item_model(),
                       "SELECT g::int8 AS id, 'item-' || g AS name, "
                       "(1.0 / (g - 2500))::float8 AS score FROM generate_series(1, "
                       "5000) g",
                       NULL, 0, 1000, on_rows, on_done, &k, NULL, NULL),
      0);
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, ORM_ESERVER);
  assert_string_equal(k.done.sqlstate, "22012");
  assert_int_equal(k.rows, 2499); /* the rows before it stand */
  assert_int_equal(k.bad, 0);
  orm_fx_close(&fx);
}

/* A statement that is no query: the COPY it opens is ended or read away,
 * and the connection goes on. */
static void test_not_a_query(void **state) {
  (void)state;
  open_fx(1);
  orm_fx_sql(&fx, "CREATE TABLE items (id int8 PRIMARY KEY, name text NOT "
                  "NULL, score float8)");
  const char *sqls[] = {"COPY items FROM STDIN", "COPY (SELECT 1) TO STDOUT",
                        "CREATE TEMP TABLE x (a int)"};
  for (int i = 0; i < 3; i++) {
    sink_t k = new_sink();
    assert_int_equal(orm_stream_async(fx.pool, item_model(), sqls[i], NULL, 0,
                                      0, on_rows, on_done, &k, NULL, NULL),
                     0);
    orm_fx_wait(&fx, &k.done, 1);
    if (i < 2)
      assert_int_equal(k.done.status, ORM_EPROTO);
    assert_int_equal(k.chunks, 0);
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items"), 0);
  orm_step_t step = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 12", NULL, 0,
                                   orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  assert_int_equal(step.value, 12);
  orm_fx_close(&fx);
}

/* Paused on a result libpq holds whole: no readable event will come, and
 * the cancel must still end the stream and give the connection back. */
static void test_cancel_paused_small_result(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  start_paused(&k, 30, 10); /* one read takes it all */
  orm_fx_run_ms(&fx, 200);
  assert_int_equal(orm_stream_cancel(k.stream), 0);
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, ORM_ECANCELED);
  assert_int_equal(k.rows, 10);
  orm_step_t step = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 13", NULL, 0,
                                   orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  if (step.status != 0)
    fail_msg("the next statement failed: %s %s %s", orm_err_name(step.status),
             step.sqlstate, step.message);
  assert_int_equal(step.value, 13);
  orm_fx_close(&fx);
}

static void test_type_mismatch(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  assert_int_equal(orm_stream_async(fx.pool, item_model(),
                                    "SELECT 'x'::text AS id, 'y' AS name "
                                    "FROM (SELECT generate_series(1, "
                                    "100000000)) s",
                                    NULL, 0, 0, on_rows, on_done, &k, NULL,
                                    NULL),
                   0);
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, ORM_ETYPE);
  assert_non_null(strstr(k.done.message, "id"));
  assert_int_equal(k.chunks, 0);
  orm_fx_close(&fx);
}

static void test_killed_mid_stream(void **state) {
  (void)state;
  open_fx(2);
  sink_t k = new_sink();
  start_paused(&k, 100000000, 1000);
  orm_fx_run_ms(&fx, 100);
  assert_int_equal(
      orm_fx_int(&fx, "SELECT count(pg_terminate_backend(pid)) FROM "
                      "pg_stat_activity WHERE application_name = "
                      "'stream_test' AND state = 'active' AND query LIKE "
                      "'%generate_series%' "
                      "AND pid <> pg_backend_pid()"),
      1);
  k.paused = 0;
  assert_int_equal(orm_stream_resume(k.stream), 0);
  orm_fx_wait(&fx, &k.done, 1);
  assert_int_equal(k.done.status, ORM_ECONNLOST);
  orm_fx_run_ms(&fx, 100);
  assert_int_equal(k.done.done, 1); /* once */
  /* The pool recovers. */
  orm_step_t step = {.result = 1};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 11", NULL, 0,
                                   orm_fx_on_step, &step, NULL),
                   0);
  orm_fx_wait(&fx, &step, 1);
  assert_int_equal(step.value, 11);
  orm_fx_close(&fx);
}

static void on_tx_step(orm_future_t *f, void *data) { orm_fx_on_step(f, data); }

static void test_in_a_transaction(void **state) {
  (void)state;
  open_fx(1);
  orm_fx_sql(&fx, "CREATE TABLE items (id int8 PRIMARY KEY, name text NOT "
                  "NULL, score float8)");
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t ins = {0}, after = {.result = 1}, commit = {0};
  assert_int_equal(orm_query_async(tx,
                                   "INSERT INTO items SELECT g, 'item-' || g, "
                                   "g FROM generate_series(1, 1500) g",
                                   NULL, 0, on_tx_step, &ins, NULL),
                   0);
  sink_t k = new_sink();
  /* Sees the transaction's own rows, which nobody else can yet. */
  assert_int_equal(orm_stream_async(tx, item_model(),
                                    "SELECT * FROM items ORDER BY id", NULL,
                                    0, 400, on_rows, on_done, &k, NULL, NULL),
                   0);
  assert_int_equal(orm_query_async(tx, "SELECT count(*) FROM items", NULL, 0,
                                   on_tx_step, &after, NULL),
                   0);
  assert_int_equal(orm_tx_commit_async(tx, on_tx_step, &commit, NULL), 0);
  orm_fx_wait(&fx, &commit, 1);
  assert_int_equal(ins.status, 0);
  assert_int_equal(k.done.status, 0);
  assert_int_equal(k.rows, 1500);
  assert_int_equal(k.bad, 0);
  assert_int_equal(after.status, 0);
  assert_int_equal(after.value, 1500);
  assert_int_equal(commit.status, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM items"), 1500);
  orm_fx_close(&fx);
}

static void on_closed_stream(orm_future_t *f, void *data) {
  on_done(f, data);
}

static void test_pool_closed_under_a_stream(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  k.pause_at = 1;
  start(&k, orm_pool_exec(fx.pool), 100000000, 1000);
  sink_t queued = new_sink();
  orm_param_t p = ORM_INT8(10);
  assert_int_equal(orm_stream_async(fx.pool, item_model(), series_sql, &p, 1,
                                    0, on_rows, on_closed_stream, &queued,
                                    NULL, NULL),
                   0);
  while (!k.paused)
    uv_run(&fx.loop, UV_RUN_ONCE);
  orm_fx_close(&fx); /* asserts that every handle is gone */
  assert_int_equal(k.done.status, ORM_ECANCELED);
  assert_int_equal(queued.done.status, ORM_ECANCELED);
}

static void test_bad_arguments(void **state) {
  (void)state;
  open_fx(1);
  sink_t k = new_sink();
  orm_stream_t *s = (orm_stream_t *)&k;
  assert_int_equal(orm_stream_async(fx.pool, NULL, "SELECT 1", NULL, 0, 0,
                                    on_rows, on_done, &k, &s, NULL),
                   ORM_EINVAL);
  assert_null(s);
  assert_int_equal(orm_stream_async(fx.pool, item_model(), "SELECT 1", NULL,
                                    0, 0, NULL, on_done, &k, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_stream_async(fx.pool, item_model(), "SELECT 1", NULL,
                                    0, ORM_STREAM_CHUNK_MAX + 1, on_rows,
                                    on_done, &k, NULL, NULL),
                   ORM_EINVAL);
  assert_int_equal(orm_stream_async(fx.pool, item_model(), "SELECT 1",
                                    &(orm_param_t){.kind = ORM_PARAM_INT4}, 1, 0,
                                    on_rows, on_done, &k, NULL, NULL),
                   ORM_EINVAL); /* a parameter nothing uses */
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, item_model()), 0);
  assert_int_equal(orm_query_where(q, "nope", ORM_OP_EQ, ORM_INT8(1)),
                   ORM_ENOCOLUMN);
  assert_int_equal(orm_stream_query_async(fx.pool, q, 0, on_rows, on_done, &k,
                                          NULL, NULL),
                   ORM_ENOCOLUMN);
  orm_query_free(q);
  assert_int_equal(orm_stream_pause(NULL), ORM_EINVAL);
  assert_int_equal(orm_stream_resume(NULL), ORM_EINVAL);
  assert_int_equal(orm_stream_cancel(NULL), ORM_EINVAL);
  orm_fx_close(&fx);
}

static long max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Memory follows the chunk, not the result: a result many times larger
 * than the bound goes through without the peak moving by much. */
static void test_memory_bounded(void **state) {
  (void)state;
  open_fx(1);
  long before = max_rss_kb();
  sink_t k = new_sink();
  int64_t n = quick() ? 100000 : 2000000; /* ~150 MB of rows as structs */
  start(&k, orm_pool_exec(fx.pool), n, 1000);
  while (!k.done.done)
    uv_run(&fx.loop, UV_RUN_ONCE);
  assert_int_equal(k.done.status, 0);
  assert_int_equal(k.rows, n);
  long grew = max_rss_kb() - before;
  print_message("streamed %lld rows, peak RSS grew by %ld kB\n", (long long)n,
                grew);
  if (rss_meaningful())
    assert_true(grew < 16 * 1024);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_memory_bounded), /* first: the peak is fresh */
      cmocka_unit_test(test_rows_arrive_in_chunks),
      cmocka_unit_test(test_next_statements_on_its_connection),
      cmocka_unit_test(test_short_last_chunk_and_empty),
      cmocka_unit_test(test_without_pipelining),
      cmocka_unit_test(test_query_builder),
      cmocka_unit_test(test_pause_holds_the_server),
      cmocka_unit_test(test_cancel_stops_the_server),
      cmocka_unit_test(test_cancel_while_paused),
      cmocka_unit_test(test_error_mid_stream),
      cmocka_unit_test(test_type_mismatch),
      cmocka_unit_test(test_not_a_query),
      cmocka_unit_test(test_cancel_paused_small_result),
      cmocka_unit_test(test_killed_mid_stream),
      cmocka_unit_test(test_in_a_transaction),
      cmocka_unit_test(test_pool_closed_under_a_stream),
      cmocka_unit_test(test_bad_arguments),
  };
  return orm_run_group_tests(tests, NULL, NULL);
}
