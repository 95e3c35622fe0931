/* SPDX-License-Identifier: MIT */
/* The example server: HTTP/1.1 on H2O (built for libuv), one loop, one
 * H2O context and one uvorm pool per thread, the listening port shared
 * with SO_REUSEPORT. See README.md in this directory.
 *
 *   main.c     options, migrations, threads, signals, graceful shutdown
 *   http.c     a worker: its loop, listener, H2O context, pool; routing;
 *              replies; requests waiting on the database (call_t)
 *   tfb.c      the TechEmpower endpoints' models; handlers in bench_routes.c
 *   api.c      the sample domain's JSON API, /health, /metrics
 *   template.c the fortunes page's template engine
 */
#ifndef UVORM_EXAMPLE_SERVER_H
#define UVORM_EXAMPLE_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <jansson.h>
#include <uv.h>

#include <uvorm.h>

#include "template.h"

typedef struct {
  const char *conninfo;
  const char *host; /* listen address: 127.0.0.1 */
  int port;         /* 0: a free one, printed */
  unsigned threads; /* loops: the number of cores */
  unsigned conns;   /* database connections per loop */
  bool sync_each;   /* a pipeline Sync per statement (TechEmpower rule 7) */
  bool no_pipeline;
  bool metrics;     /* latency histograms in /metrics */
  h2o_globalconf_t h2o;
  tpl_t *fortunes; /* compiled once, read by every thread */
} app_t;

typedef struct worker_s {
  app_t *app;
  unsigned id;
  uv_loop_t loop;
  uv_thread_t thread;
  int listen_fd; /* bound and listening, SO_REUSEPORT */
  uv_tcp_t listener;
  uv_async_t stop; /* main thread -> this loop: shut down */
  h2o_context_t ctx;
  h2o_accept_ctx_t accept;
  orm_pool_t *pool;
  uint64_t rng;
  size_t inflight;   /* requests waiting on the database */
  size_t conns_open; /* HTTP connections */
  uv_timer_t drain;  /* shutting down: how long idle clients may stay */
  bool stopping;     /* listener closed: finish and close the pool */
  bool pool_closing;
  bool pool_closed;  /* its close callback ran */
  bool disposed;     /* the H2O context too: the loop has ended */
  size_t abandoned;  /* idle connections left open at the exit */
  tpl_buf_t out;    /* the fortunes page, rendered */
} worker_t;

/* ---- a request waiting on the database ----------------------------------
 * The H2O request may go away first (the client hung up): call_req() then
 * says NULL and the answer is dropped. Every call_begin() has one
 * call_end(). */
typedef struct call_s {
  worker_t *w;
  h2o_req_t *req;          /* NULL once the client is gone */
  struct call_s **guard;   /* in the request's memory pool */
  unsigned pending;        /* statements not yet answered */
  int failed;              /* the first error's code, 0 for none */
  char sqlstate[6];
  char message[200];
  char field[64];
  /* the handler's own state follows */
} call_t;

/* A call with `extra` zeroed bytes of state after it (call_state()). NULL
 * when out of memory (the reply is then sent). */
call_t *call_begin(worker_t *w, h2o_req_t *req, size_t extra);
static inline void *call_state(call_t *c) { return c + 1; }
/* The request, or NULL if the client went away. */
h2o_req_t *call_req(const call_t *c);
/* Records the first failure among the call's futures (0 if `f` resolved). */
int call_note(call_t *c, orm_future_t *f);
void call_end(call_t *c);

/* ---- replies ---------------------------------------------------------- */
void reply(h2o_req_t *req, int status, const char *content_type,
           const char *body, size_t len);
/* Steals `body`. */
void reply_json(h2o_req_t *req, int status, json_t *body);
/* {"error": code, "message": message[, "field": field]} */
void reply_error(h2o_req_t *req, int status, const char *code,
                 const char *message, const char *field);
/* The status and error body for a call that failed: 503 when the database
 * is unreachable, 404 not found, 422 validation, 409 conflicts, 400 a
 * value the database refused, 500 otherwise. */
void reply_failed(call_t *c);

/* ---- handlers: 0 when they answered or will, -1 for not theirs ---------- */
int tfb_route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query);
int api_route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query);

/* ---- helpers ----------------------------------------------------------- */
/* A random integer in 1..n. */
uint32_t worker_random(worker_t *w, uint32_t n);
/* The value of `name` in a query string (its bytes, not decoded), or
 * {NULL, 0} if absent. */
h2o_iovec_t query_param(h2o_iovec_t query, const char *name);
/* A positive int64 of decimal digits only; -1 otherwise. */
int64_t parse_id(h2o_iovec_t s);
/* A model row as a JSON object (every field; relations not included). */
json_t *row_json(const orm_model_t *model, const void *row);

/* http.c: the one handler, registered on app->h2o; a worker's loop, pool,
 * H2O context and listener (listen_fd set); its thread's body. */
void http_register(app_t *app);
int worker_init(worker_t *w);
void worker_run(void *arg);
/* bench_routes.c: the fortunes page, compiled. */
tpl_t *fortunes_template(char *err, size_t errlen);

#endif /* UVORM_EXAMPLE_SERVER_H */
