/* SPDX-License-Identifier: MIT */
/* The example server: the H2O workers of httpd.h, each with a uvorm pool
 * on its loop. See README.md in this directory.
 *
 *   main.c          options, migrations, start
 *   httpd.c         workers, listeners, calls, replies, shutdown (no database)
 *   db.c            each worker's pool; a failed call's reply; rows as JSON
 *   bench_routes.c  the TechEmpower endpoints through the tfb models
 *   tfb_http.c      what they share with the raw twin (bench/raw_server.c)
 *   api.c           the sample domain's JSON API, /health, /metrics
 *   template.c      the fortunes page's template engine
 */
#ifndef UVORM_EXAMPLE_SERVER_H
#define UVORM_EXAMPLE_SERVER_H

#include <uvorm.h>

#include "httpd.h"
#include "tfb_http.h"

typedef struct {
  httpd_t http;
  const char *conninfo;
  unsigned conns;   /* database connections per loop */
  bool sync_each;   /* a pipeline Sync per statement (TechEmpower rule 7) */
  bool no_pipeline;
  bool metrics;     /* latency histograms in /metrics */
  tpl_t *fortunes;  /* compiled once, read by every thread */
} app_t;

static inline orm_pool_t *pool_of(const worker_t *w) { return (orm_pool_t *)w->db; }
static inline const app_t *app_of(const worker_t *w) { return (const app_t *)w->httpd->data; }

/* db.c */
int db_open(worker_t *w);
void db_close(worker_t *w);
/* Records the first failure among a call's futures (0 if `f` resolved). */
int call_note(call_t *c, orm_future_t *f);
/* The reply for a call that failed: 503 when the database is unreachable,
 * 404 not found, 422 validation (with the field), 409 a duplicate, 400 a
 * value the database refused, 500 otherwise. */
void reply_failed(call_t *c);
/* A model row as a JSON object (every field; relations not included). */
json_t *row_json(const orm_model_t *model, const void *row);

/* 0 when they answered or will, -1 for a path not theirs. */
int tfb_route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query);
int api_route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query);

#endif /* UVORM_EXAMPLE_SERVER_H */
