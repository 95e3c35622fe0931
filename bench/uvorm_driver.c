/* bench_uvorm: the same workload as bench_raw, through the uvorm pool. P
 * connections (min = max = P), C requests in flight in total, each request
 * `SELECT $1::int4` with ORM_INT4(i) through orm_query_async(), its answer
 * checked against its own parameter. A request's callback issues the next
 * one, so C stays constant.
 *
 *   bench_uvorm [--mode=pipeline|nopipe] [-P N] [-C N] [--duration S]
 *               [--warmup S] [--conninfo STR] [--csv FILE]
 *
 * Modes:
 *   pipeline  the pool's default: libpq pipeline mode, at most ceil(C/P)
 *             requests in flight per connection, syncs batched per loop turn.
 *   nopipe    the pool's no_pipeline: one request at a time per connection;
 *             the others wait in the pool's queue.
 *
 * A request's latency runs from the orm_query_async() call to its callback;
 * in nopipe mode it includes the wait in the pool's queue. The run starts
 * once all P connections are up. At the end nothing more is issued, the
 * requests in flight finish, the pool is closed, and the loop must close
 * with no handle left.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <uv.h>
#include <uvorm.h>

#include "harness.h"

#define DRIVER "uvorm"
#define QUERY_SQL "SELECT $1::int4"
/* How long the pool gets to bring up its P connections. */
#define CONNECT_WAIT_MS 15000
/* How often the connection count is looked at while waiting. */
#define CONNECT_POLL_MS 2
/* How long the in-flight requests get to finish after the measured phase. */
#define DRAIN_TIMEOUT_MS 10000

typedef enum { MODE_PIPELINE, MODE_NOPIPE } pool_mode_t;

static const char *const mode_names[] = {"pipeline", "nopipe"};

struct driver;

struct request {
  struct driver *drv;
  uint64_t issued_ns;
  int32_t value;
};

typedef enum {
  DRV_CONNECTING, /* waiting for the pool's P connections */
  DRV_RUNNING,    /* issuing requests (warm-up and measured phase) */
  DRV_DRAINING,   /* run over; waiting for the requests in flight */
  DRV_CLOSING     /* orm_pool_close() called */
} driver_state_t;

struct driver {
  uv_loop_t loop;
  bench_opts_t opts;
  bench_run_t run;
  pool_mode_t mode;
  driver_state_t state;
  orm_pool_t *pool;
  /* Polls for the connections, then bounds the drain. */
  uv_timer_t timer;
  uint64_t wait_start_ns;
  struct request *reqs;
  int outstanding; /* requests issued whose callback has not run */
  int probing;     /* a query sent to learn why connecting fails */
  int failed;
  int32_t next_value;
  orm_pool_stats_t stats; /* taken just before the pool is closed */
  int have_stats;
};

static void close_pool(struct driver *d);

BENCH_PRINTF(2, 3)
static void fatal(struct driver *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bench_vwarn(DRIVER, fmt, ap);
  va_end(ap);
  d->failed = 1;
  /* The run's done callback sees `failed` and closes nothing itself. */
  bench_run_stop(&d->run);
  close_pool(d);
}

static void close_timer(struct driver *d) {
  if (!uv_is_closing((uv_handle_t *)&d->timer))
    uv_close((uv_handle_t *)&d->timer, NULL);
}

static void on_pool_closed(orm_pool_t *pool, void *data) {
  struct driver *d = data;
  d->pool = NULL;
}

/* Closing the pool cancels whatever is still in flight (only after a fatal
 * error: otherwise nothing is). Legal from inside the pool's callbacks. */
static void close_pool(struct driver *d) {
  if (d->state == DRV_CLOSING)
    return;
  d->state = DRV_CLOSING;
  close_timer(d);
  if (d->pool == NULL)
    return;
  if (orm_pool_stats(d->pool, &d->stats) == 0)
    d->have_stats = 1;
  int rc = orm_pool_close(d->pool, on_pool_closed);
  if (rc != 0) {
    bench_warn(DRIVER, "orm_pool_close: %s", orm_strerror(rc));
    d->failed = 1;
  }
}

/* ---- requests ------------------------------------------------------------- */

static void on_answer(orm_future_t *future, void *data);

static void issue(struct request *r, uint64_t now) {
  struct driver *d = r->drv;
  orm_param_t param = ORM_INT4(d->next_value);

  r->value = d->next_value;
  d->next_value = d->next_value == INT32_MAX ? 1 : d->next_value + 1;
  r->issued_ns = now;
  int rc = orm_query_async(d->pool, QUERY_SQL, &param, 1, on_answer, r, NULL);
  if (rc != 0) {
    fatal(d, "orm_query_async: %s", orm_strerror(rc));
    return;
  }
  d->outstanding++;
}

/* Why the answer is not the expected one row holding r->value, or NULL. */
static const char *check_answer(const struct request *r, const orm_result_t *res) {
  int64_t got;

  if (res == NULL)
    return "no result";
  if (orm_result_rows(res) != 1 || orm_result_cols(res) != 1)
    return "not one row of one column";
  if (orm_result_int(res, 0, 0, &got) != 0)
    return "not an integer";
  if (got != r->value)
    return "wrong value";
  return NULL;
}

static void on_answer(orm_future_t *future, void *data) {
  struct request *r = data;
  struct driver *d = r->drv;
  uint64_t now = bench_now_ns();

  d->outstanding--;
  int status = orm_future_status(future);
  if (status != 0) {
    /* Cancellations are expected only after a fatal error closed the pool. */
    if (!d->failed) {
      const orm_error_t *e = orm_future_error(future);
      fatal(d, "query %" PRId32 " failed: %s: %s", r->value, orm_err_name(status),
            e != NULL && e->message != NULL ? e->message : orm_strerror(status));
    }
    return;
  }
  const char *why = check_answer(r, orm_future_value(future));
  if (why != NULL)
    bench_run_wrong(&d->run, DRIVER, "answer to %" PRId32 ": %s", r->value, why);
  bench_run_record(&d->run, now - r->issued_ns);
  if (d->state == DRV_RUNNING && bench_run_active(&d->run))
    issue(r, now);
  else if (d->state == DRV_DRAINING && d->outstanding == 0)
    close_pool(d);
}

/* ---- waiting for the connections -------------------------------------------- */

static void on_probe(orm_future_t *future, void *data) {
  struct driver *d = data;
  int status = orm_future_status(future);

  d->probing = 0;
  if (status != 0 && !d->failed && d->state == DRV_CONNECTING) {
    const orm_error_t *e = orm_future_error(future);
    fatal(d, "connect: %s", e != NULL && e->message != NULL ? e->message
                                                             : orm_strerror(status));
  }
}

static void start_run(struct driver *d) {
  uv_timer_stop(&d->timer);
  d->state = DRV_RUNNING;
  bench_run_start(&d->run);
  uint64_t now = bench_now_ns();
  for (int i = 0; i < d->opts.inflight && !d->failed; i++)
    issue(&d->reqs[i], now);
}

static void on_connect_poll(uv_timer_t *timer) {
  struct driver *d = timer->data;
  orm_pool_stats_t st;

  if (orm_pool_stats(d->pool, &st) != 0) {
    fatal(d, "orm_pool_stats failed");
    return;
  }
  if (st.conns_idle + st.conns_busy == (unsigned)d->opts.conns) {
    start_run(d);
    return;
  }
  /* The pool keeps retrying a server it cannot reach; one query fails at
   * once while it is down, and its error says why. */
  if (st.connect_failures > 0 && !d->probing) {
    int rc = orm_query_async(d->pool, "SELECT 1", NULL, 0, on_probe, d, NULL);
    if (rc != 0) {
      fatal(d, "orm_query_async: %s", orm_strerror(rc));
      return;
    }
    d->probing = 1;
  }
  if (bench_now_ns() - d->wait_start_ns > (uint64_t)CONNECT_WAIT_MS * 1000000u)
    fatal(d, "%u of %d connections up after %d ms (%" PRIu64 " failed attempts)",
          st.conns_idle + st.conns_busy, d->opts.conns, CONNECT_WAIT_MS,
          st.connect_failures);
}

/* ---- the end of the run ------------------------------------------------------ */

static void on_drain_timeout(uv_timer_t *timer) {
  struct driver *d = timer->data;
  fatal(d, "%d requests did not finish within %d ms", d->outstanding, DRAIN_TIMEOUT_MS);
}

/* The measured phase is over (or a fatal error stopped the run): issue
 * nothing more, let what is in flight finish, then close the pool. */
static void on_run_done(bench_run_t *run) {
  struct driver *d = run->data;

  if (d->failed || d->state == DRV_CLOSING)
    return;
  d->state = DRV_DRAINING;
  if (d->outstanding == 0) {
    close_pool(d);
    return;
  }
  uv_timer_stop(&d->timer);
  uv_timer_start(&d->timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
}

static void print_stats(const orm_pool_stats_t *st, FILE *out) {
  fprintf(out,
          "uvorm pool: queries %" PRIu64 ", errors %" PRIu64 ", resends %" PRIu64
          ", cancels %" PRIu64 ", timeouts %" PRIu64 ", connects %" PRIu64
          ", reconnects %" PRIu64 ", connect failures %" PRIu64 "\n",
          st->queries, st->errors, st->resends, st->cancels, st->timeouts,
          st->connects, st->reconnects, st->connect_failures);
}

int main(int argc, char **argv) {
  static struct driver drv;
  struct driver *d = &drv;

  int rc = bench_opts_parse(&d->opts, argc, argv, "pipeline",
                            "pipeline | nopipe (default pipeline; see bench/README.md)");
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  int mode = bench_opts_mode(&d->opts, DRIVER, mode_names,
                             sizeof(mode_names) / sizeof(mode_names[0]));
  if (mode < 0)
    return 2;
  d->mode = (pool_mode_t)mode;

  d->reqs = calloc((size_t)d->opts.inflight, sizeof(*d->reqs));
  if (d->reqs == NULL) {
    bench_warn(DRIVER, "out of memory");
    return 1;
  }
  for (int i = 0; i < d->opts.inflight; i++)
    d->reqs[i].drv = d;
  d->next_value = 1;

  if (bench_run_open(&d->run, &d->loop, &d->opts, on_run_done, d, DRIVER) != 0)
    return 1;
  if ((rc = uv_timer_init(&d->loop, &d->timer)) != 0) {
    bench_warn(DRIVER, "%s", uv_strerror(rc));
    return 1;
  }
  d->timer.data = d;

  /* Spread C over P like bench_raw does: the dispatcher picks the
   * connection with the fewest in flight, and the depth caps each at its
   * share. Every request can wait in the queue at once (at the start). */
  unsigned per_conn = (unsigned)((d->opts.inflight + d->opts.conns - 1) / d->opts.conns);
  orm_pool_config_t cfg = {
      .conninfo = d->opts.conninfo,
      .min_conns = (unsigned)d->opts.conns,
      .max_conns = (unsigned)d->opts.conns,
      .pipeline_depth = per_conn,
      .queue_max = (size_t)d->opts.inflight,
      .no_pipeline = d->mode == MODE_NOPIPE,
      .data = d,
  };
  bench_opts_announce(&d->opts, DRIVER);
  rc = orm_pool_open(&d->pool, &d->loop, &cfg);
  if (rc != 0) {
    bench_warn(DRIVER, "orm_pool_open: %s", orm_strerror(rc));
    d->failed = 1;
    bench_run_stop(&d->run);
    d->state = DRV_CLOSING;
    close_timer(d);
  } else {
    d->state = DRV_CONNECTING;
    d->wait_start_ns = bench_now_ns();
    uv_timer_start(&d->timer, on_connect_poll, CONNECT_POLL_MS, CONNECT_POLL_MS);
  }

  uv_run(&d->loop, UV_RUN_DEFAULT);

  if (d->pool != NULL) {
    bench_warn(DRIVER, "the loop ended before the pool was closed");
    d->failed = 1;
  }
  if (bench_loop_close(&d->loop, DRIVER) != 0)
    d->failed = 1;
  free(d->reqs);

  int status = bench_report(&d->run, &d->opts, DRIVER, d->failed);
  if (d->have_stats)
    print_stats(&d->stats, stdout);
  return status;
}
