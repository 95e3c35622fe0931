/* SPDX-License-Identifier: MIT */
/* demo: a libuv program that opens a uvorm pool and uses it without ever
 * blocking its loop: the server's version, a pipelined burst of queries each
 * checked against its own parameter, a failure that fails alone, and a
 * transaction.
 *
 *   demo [CONNINFO]     (default: $DATABASE_URL, else libpq's PG* defaults)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>

#include <uvorm.h>

enum { BURST = 10000 };

typedef struct {
  orm_pool_t *pool;
  orm_tx_t *tx;
  int pending;
  int wrong;
  int status;
  uint64_t started;
} demo_t;

static void finish(demo_t *d);

static void fail(demo_t *d, const char *what, orm_future_t *f) {
  const orm_error_t *e = orm_future_error(f);
  fprintf(stderr, "demo: %s: %s%s%s\n", what, e->message,
          *e->sqlstate ? " SQLSTATE " : "", e->sqlstate);
  d->status = 1;
}

static void on_committed(orm_future_t *f, void *data) {
  demo_t *d = data;
  if (orm_future_status(f) != 0)
    fail(d, "commit", f);
  else
    printf("transaction committed\n");
  finish(d);
}

static void on_inserted(orm_future_t *f, void *data) {
  demo_t *d = data;
  if (orm_future_status(f) != 0)
    fail(d, "insert", f);
  else
    printf("inserted %" PRId64 " rows inside the transaction\n",
           orm_result_affected(orm_future_value(f)));
  orm_tx_commit_async(d->tx, on_committed, d, NULL);
}

static void on_begun(orm_future_t *f, void *data) {
  demo_t *d = data;
  if (orm_future_status(f) != 0) {
    fail(d, "begin", f);
    finish(d);
    return;
  }
  orm_tx_t *tx = d->tx = orm_future_value(f);
  /* Statements of a transaction run in order on its connection. */
  orm_query_async(tx, "CREATE TEMP TABLE demo_t (n int) ON COMMIT DROP",
                     NULL, 0, NULL, NULL, NULL);
  orm_query_async(tx, "INSERT INTO demo_t SELECT generate_series(1, 3)",
                     NULL, 0, on_inserted, d, NULL);
}

static void on_failure_alone(orm_future_t *f, void *data) {
  const orm_error_t *e = orm_future_error(f);
  printf("a bad statement failed alone: SQLSTATE %s (%s)\n", e->sqlstate,
         e->message);
}

typedef struct {
  demo_t *demo;
  int64_t n;
} ticket_t;

static void on_answer(orm_future_t *f, void *data) {
  ticket_t *t = data;
  demo_t *d = t->demo;
  int64_t got = -1;
  if (orm_future_status(f) != 0 ||
      orm_result_int(orm_future_value(f), 0, 0, &got) != 0 || got != t->n * 2)
    d->wrong++;
  if (--d->pending == 0) {
    double ms = (uv_hrtime() - d->started) / 1e6;
    printf("%d pipelined queries in %.1f ms, %d wrong answers\n", BURST, ms,
           d->wrong);
    if (d->wrong)
      d->status = 1;
    orm_tx_begin_async(d->pool, on_begun, d, NULL);
  }
}

static void on_version(orm_future_t *f, void *data) {
  demo_t *d = data;
  const char *version;
  if (orm_future_status(f) != 0) {
    fail(d, "connect", f);
    finish(d);
    return;
  }
  orm_result_text(orm_future_value(f), 0, 0, &version, NULL);
  printf("connected without blocking the loop: %s\n", version);

  static ticket_t tickets[BURST];
  d->started = uv_hrtime();
  d->pending = BURST;
  for (int i = 0; i < BURST; i++) {
    tickets[i] = (ticket_t){d, i};
    orm_param_t p = ORM_INT8(i);
    orm_query_async(d->pool, "SELECT $1::int8 * 2", &p, 1, on_answer,
                    &tickets[i], NULL);
    if (i == BURST / 2) /* in the middle of the burst */
      orm_query_async(d->pool, "SELECT 1 / 0", NULL, 0, on_failure_alone,
                      NULL, NULL);
  }
}

static void on_closed(orm_pool_t *pool, void *data) {
  printf("pool closed\n");
}

static void finish(demo_t *d) {
  orm_pool_stats_t st;
  orm_pool_stats(d->pool, &st);
  printf("stats: %" PRIu64 " queries, %" PRIu64 " errors, %" PRIu64
         " re-sent, %" PRIu64 " connections made\n",
         st.queries, st.errors, st.resends, st.connects);
  orm_pool_close(d->pool, on_closed);
}

int main(int argc, char **argv) {
  const char *conninfo = argc > 1 ? argv[1] : getenv("DATABASE_URL");
  uv_loop_t *loop = uv_default_loop();
  demo_t d = {0};
  printf("uvorm %s on libuv %s\n", orm_version_string(), uv_version_string());

  int rc = orm_pool_open(&d.pool, loop,
                         &(orm_pool_config_t){.conninfo = conninfo ? conninfo : "",
                                              .min_conns = 4,
                                              .max_conns = 4,
                                              .queue_max = 2 * BURST});
  if (rc != 0) {
    fprintf(stderr, "demo: %s\n", orm_strerror(rc));
    return 1;
  }
  orm_query_async(d.pool, "SELECT version()", NULL, 0, on_version, &d, NULL);
  uv_run(loop, UV_RUN_DEFAULT); /* returns once the pool has closed */
  uv_loop_close(loop);
  return d.status;
}
