/* SPDX-License-Identifier: MIT */
/* EXPLAIN for slow statements (the pool's explain_slow): the first time a
 * statement's text is slow, its plan is asked for with the same values, on
 * whichever connection is free, and handed to on_query in a second event
 * (`plan` set). Once per text (the first 1024 texts), one at a time, at
 * most one a second. Plain EXPLAIN: a write is planned, never run. */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "pool_int.h"

#define SEEN_MAX 1024 /* texts remembered; then no more plans */

struct orm__explain_s {
  orm_pool_t *pool;
  orm_query_event_t event; /* the slow statement's, strings below */
  char *sql;               /* "EXPLAIN " + its text */
  char *op, *table, *params;
  int nparams;
  orm_param_t *values; /* into `bytes` */
  char *bytes;
};

static uint64_t text_hash(const char *s) {
  uint64_t h = 1469598103934665603u; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h | 1; /* 0 marks a free slot */
}

/* Whether `h` was seen before; remembers it. */
static bool seen(orm_pool_t *pool, uint64_t h) {
  if (pool->explain_seen == NULL) {
    pool->explain_seen = orm__calloc(2 * SEEN_MAX, sizeof *pool->explain_seen);
    if (pool->explain_seen == NULL)
      return true; /* no memory: no plans */
  }
  size_t mask = 2 * SEEN_MAX - 1, i = h & mask;
  while (pool->explain_seen[i] != 0) {
    if (pool->explain_seen[i] == h)
      return true;
    i = (i + 1) & mask;
  }
  if (pool->explain_nseen == SEEN_MAX)
    return true;
  pool->explain_seen[i] = h;
  pool->explain_nseen++;
  return false;
}

static void explain_free(orm__explain_t *ex) {
  if (ex == NULL)
    return;
  orm__free(ex->sql);
  orm__free(ex->op);
  orm__free(ex->table);
  orm__free(ex->params);
  orm__free(ex->values);
  orm__free(ex->bytes);
  orm__free(ex);
}

static char *dup_or_null(const char *s) { return s != NULL ? orm__strdup(s) : NULL; }

/* Statements EXPLAIN takes. */
static bool explainable(const char *keyword) {
  static const char *const ok[] = {"SELECT", "WITH",   "INSERT", "UPDATE",
                                   "DELETE", "VALUES", "TABLE",  "MERGE"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    if (strcmp(keyword, ok[i]) == 0)
      return true;
  return false;
}

void orm__explain_maybe(orm__request_t *req, const orm_query_event_t *ev,
                        const char *keyword) {
  orm_pool_t *pool = req->pool;
  uint64_t now = uv_now(pool->loop);
  if (pool->explain != NULL || pool->explain_inflight || pool->state != POOL_OPEN ||
      (req->kind != REQ_QUERY && req->kind != REQ_TX_QUERY) ||
      !explainable(keyword) ||
      (pool->explain_last != 0 && now - pool->explain_last < 1000) ||
      seen(pool, text_hash(ev->query_text)))
    return;
  orm__explain_t *ex = orm__calloc(1, sizeof *ex);
  if (ex == NULL)
    return;
  size_t len = strlen(ev->query_text);
  ex->pool = pool;
  ex->sql = orm__malloc(len + 9);
  ex->op = dup_or_null(ev->operation);
  ex->table = dup_or_null(ev->collection);
  ex->params = dup_or_null(ev->params);
  /* The values, copied: the request is reused once this returns. */
  size_t total = 0;
  for (int i = 0; i < req->nparams; i++)
    if (req->values[i] != NULL)
      total += req->formats != NULL && req->formats[i] ? (size_t)req->lengths[i]
                                                       : strlen(req->values[i]) + 1;
  ex->nparams = req->nparams;
  ex->values = req->nparams > 0 ? orm__calloc((size_t)req->nparams, sizeof *ex->values)
                                : NULL;
  ex->bytes = orm__malloc(total + 1);
  if (ex->sql == NULL || ex->bytes == NULL || (req->nparams > 0 && ex->values == NULL) ||
      (ev->operation != NULL && ex->op == NULL) ||
      (ev->collection != NULL && ex->table == NULL) ||
      (ev->params != NULL && ex->params == NULL)) {
    explain_free(ex);
    return;
  }
  memcpy(ex->sql, "EXPLAIN ", 8);
  memcpy(ex->sql + 8, ev->query_text, len + 1);
  char *w = ex->bytes;
  for (int i = 0; i < req->nparams; i++) {
    const char *v = req->values[i];
    if (v == NULL) {
      ex->values[i] = ORM_NULL;
    } else if (req->formats != NULL && req->formats[i]) {
      size_t n = (size_t)req->lengths[i];
      memcpy(w, v, n);
      ex->values[i] = (orm_param_t){.kind = ORM_PARAM_BINARY,
                                    .oid = req->types != NULL ? req->types[i] : 0,
                                    .v.s = {w, n}};
      w += n;
    } else {
      size_t n = strlen(v);
      memcpy(w, v, n + 1);
      ex->values[i] = (orm_param_t){.kind = ORM_PARAM_UNTYPED, .v.s = {w, n}};
      w += n + 1;
    }
  }
  ex->event = *ev;
  ex->event.query_text = ex->sql + 8;
  ex->event.operation = ex->op;
  ex->event.collection = ex->table;
  ex->event.params = ex->params;
  ex->event.status_code = NULL; /* its strings are the request's */
  /* server_address and namespace_name point into the pool's servers. */
  ex->event.tx = NULL;
  pool->explain = ex;
  pool->explain_last = now;
  orm__pool_kick(pool); /* sent from the pool's own turn, not from here */
}

static void on_explained(orm_future_t *f, void *data) {
  orm__explain_t *ex = data;
  orm_pool_t *pool = ex->pool;
  pool->explain_inflight = 0;
  orm_result_t *res = orm_future_status(f) == 0 ? orm_future_value(f) : NULL;
  const orm_error_t *err = orm_future_error(f);
  size_t cap = 64, len = 0;
  int rows = res != NULL ? orm_result_nrows(res) : 0;
  for (int i = 0; i < rows; i++) {
    const char *line = NULL;
    size_t n = 0;
    if (orm_result_text(res, i, 0, &line, &n) == 0)
      cap += n + 1;
  }
  char *plan = orm__malloc(cap + (err != NULL && err->message ? strlen(err->message) : 0));
  if (plan != NULL) {
    plan[0] = '\0';
    if (res == NULL) {
      snprintf(plan, cap + (err != NULL && err->message ? strlen(err->message) : 0),
               "EXPLAIN failed: %s",
               err != NULL && err->message ? err->message : orm_strerror(orm_future_status(f)));
      len = strlen(plan);
    }
    for (int i = 0; i < rows; i++) {
      const char *line = NULL;
      size_t n = 0;
      if (orm_result_text(res, i, 0, &line, &n) != 0)
        continue;
      memcpy(plan + len, line, n);
      len += n;
      plan[len++] = '\n';
      plan[len] = '\0';
    }
    ex->event.plan = plan;
    if (pool->cfg.on_query != NULL && pool->state == POOL_OPEN)
      pool->cfg.on_query(pool, &ex->event, pool->cfg.data);
    orm__free(plan);
  }
  explain_free(ex);
}

void orm__explain_submit(orm_pool_t *pool) {
  orm__explain_t *ex = pool->explain;
  pool->explain = NULL;
  if (ex == NULL)
    return;
  orm__params_in_t in = {.values = ex->values, .n = (size_t)ex->nparams};
  pool->explain_inflight = 1;
  if (orm__exec_submit(orm_pool_exec(pool), ex->sql, &orm__hint_once, &in, NULL, NULL,
                       on_explained, ex, NULL) != 0) {
    pool->explain_inflight = 0;
    explain_free(ex);
  }
}

void orm__explain_free_all(orm_pool_t *pool) {
  explain_free(pool->explain);
  pool->explain = NULL;
  orm__free(pool->explain_seen);
  pool->explain_seen = NULL;
}
