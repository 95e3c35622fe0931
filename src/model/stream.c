/* SPDX-License-Identifier: MIT */
/* Streams: a query's rows in single-row mode on a lent connection,
 * hydrated a chunk at a time into one reused orm_rows_t. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "uvorm/stream.h"

#include "base/alloc.h"
#include "model/hydrate.h"
#include "model/model_int.h"
#include "model/query_int.h"
#include "pool/pool_int.h"

struct orm_stream_s {
  orm__request_t *req;
  orm__conn_t *conn; /* while the lease runs */
  const orm_model_t *model;
  orm_stream_cb on_rows;
  void *data;
  size_t chunk;
  orm_rows_t *rows; /* the chunk: `chunk` structs, count of them filled */
  orm__hydrate_plan_t plan;
  bool planned;
  bool paused;
  bool stopping; /* cancelled, failed or lost: discard what still comes */
  bool in_cb;
  int status;    /* a client-side failure (hydration), or 0 */
  PGresult *error; /* the server's, if any */
  uint64_t count;
  orm_model_error_t err;
};

static void stream_release(void *obj) {
  orm_stream_t *s = obj;
  PQclear(s->error);
  orm_rows_free(s->rows);
  orm__free(s);
}

static void arm(orm_stream_t *s) {
  orm__conn_t *conn = s->conn;
  int flush = PQflush(conn->pg);
  int events = flush == 1 ? UV_WRITABLE : 0;
  if (!s->paused || s->stopping)
    events |= UV_READABLE;
  orm__conn_arm(conn, events);
}

/* The chunk so far goes to on_rows; its memory is then reused. */
static void deliver(orm_stream_t *s) {
  orm_rows_t *rows = s->rows;
  if (rows == NULL || rows->count == 0)
    return;
  if (!s->stopping) {
    s->in_cb = true;
    s->on_rows(s, rows, s->data);
    s->in_cb = false;
  }
  rows->count = 0;
  orm__arena_reset(&rows->arena);
}

/* Nothing more is wanted from the server: cancel the query there, drop
 * whatever still arrives. */
static void stop(orm_stream_t *s) {
  if (s->stopping)
    return;
  s->stopping = true;
  s->paused = false;
  if (s->conn != NULL)
    orm__pool_cancel_on_server(s->conn->pool, s->conn);
}

static void fail_client(orm_stream_t *s, int code) {
  if (s->status == 0) {
    s->status = code;
    orm__future_set_message(&s->req->future, "%s", s->err.message);
  }
  stop(s);
}

static void add_row(orm_stream_t *s, PGresult *res) {
  if (s->stopping)
    return;
  if (!s->planned) {
    int rc = orm__hydrate_plan(&s->plan, s->model, res, &s->err);
    if (rc == 0 && s->rows == NULL)
      rc = orm__rows_new(&s->rows, s->model, s->chunk);
    if (rc != 0) {
      if (rc == ORM_ENOMEM)
        snprintf(s->err.message, sizeof s->err.message, "out of memory");
      fail_client(s, rc);
      return;
    }
    s->rows->count = 0;
    s->planned = true;
  }
  orm_rows_t *rows = s->rows;
  char *dst = rows->data + rows->count * s->model->struct_size;
  int rc = orm__hydrate_row_planned(s->model, &s->plan, res, 0, dst,
                                    &rows->arena, &s->err);
  if (rc != 0) {
    fail_client(s, rc);
    return;
  }
  rows->count++;
  s->count++;
  if (rows->count == s->chunk)
    deliver(s);
}

/* The query is over on the server: the connection goes back, the future
 * completes. */
static void finish(orm_stream_t *s) {
  orm__request_t *req = s->req;
  orm__conn_t *conn = s->conn;
  s->conn = NULL;
  int abandoned = req->abandoned;
  orm__lease_end(conn, NULL); /* drops an abandoned request */
  if (abandoned)
    return;
  req->rows = (int64_t)s->count;
  int status = s->status;
  if (status == 0 && s->error != NULL) {
    const char *state = PQresultErrorField(s->error, PG_DIAG_SQLSTATE);
    req->result = s->error;
    s->error = NULL;
    status = state != NULL && strncmp(state, "57P", 3) == 0 ? ORM_ECONNLOST
                                                            : ORM_ESERVER;
  }
  orm__req_complete(req, status, ORM__NOW);
}

/* Works through what libpq has buffered, as far as the consumer lets it. */
static void drain(orm_stream_t *s) {
  while (s->conn != NULL && (!s->paused || s->stopping)) {
    PGconn *pg = s->conn->pg;
    if (PQisBusy(pg)) {
      arm(s);
      return;
    }
    PGresult *res = PQgetResult(pg);
    if (res == NULL) {
      deliver(s); /* a partial chunk before an error stands */
      finish(s);
      return;
    }
    switch (PQresultStatus(res)) {
    case PGRES_SINGLE_TUPLE:
      add_row(s, res);
      PQclear(res);
      break;
    case PGRES_TUPLES_OK: /* the end of the rows */
    case PGRES_COMMAND_OK:
      PQclear(res);
      deliver(s);
      break;
    case PGRES_FATAL_ERROR:
      if (s->error == NULL)
        s->error = res;
      else
        PQclear(res);
      break;
    default:
      PQclear(res);
      if (s->status == 0) {
        snprintf(s->err.message, sizeof s->err.message,
                 "the statement is not a query (it answers %s)",
                 PQresStatus(PQresultStatus(res)));
        fail_client(s, ORM_EPROTO);
      }
      break;
    }
  }
  if (s->conn != NULL)
    arm(s);
}

static void lost_now(orm_stream_t *s, const char *why) {
  orm__conn_t *conn = s->conn;
  orm__request_t *req = s->req;
  s->conn = NULL;
  s->stopping = true;
  int abandoned = req->abandoned;
  if (!abandoned)
    orm__future_set_message(&req->future,
                            "the connection was lost mid-stream: %s", why);
  orm__lease_end(conn, why);
  if (!abandoned)
    orm__req_complete(req, ORM_ECONNLOST, ORM__NOW);
}

static void on_start(orm__request_t *req, orm__conn_t *conn) {
  orm_stream_t *s = req->lease_obj;
  s->conn = conn;
  if (!PQsendQueryParams(conn->pg, req->sql, req->nparams, req->types,
                         req->values, req->lengths, req->formats, 1) ||
      !PQsetSingleRowMode(conn->pg)) {
    lost_now(s, PQerrorMessage(conn->pg));
    return;
  }
  arm(s);
}

static void on_io(orm__request_t *req, int status, int events) {
  orm_stream_t *s = req->lease_obj;
  PGconn *pg = s->conn->pg;
  if (events & UV_WRITABLE && PQflush(pg) < 0) {
    lost_now(s, PQerrorMessage(pg));
    return;
  }
  if ((events & UV_READABLE || status < 0) && !PQconsumeInput(pg)) {
    lost_now(s, PQerrorMessage(pg));
    return;
  }
  drain(s);
}

static void on_abort(orm__request_t *req, int code) {
  (void)code;
  orm_stream_t *s = req->lease_obj;
  stop(s);
  if (s->conn != NULL)
    arm(s); /* a paused stream reads again, to drain */
}

static void on_lost(orm__request_t *req, int code, const char *why) {
  (void)code;
  (void)why;
  orm_stream_t *s = req->lease_obj;
  s->conn = NULL;
  s->stopping = true;
}

static const orm__lease_ops_t stream_ops = {on_start, on_io, on_abort,
                                            on_lost, stream_release};

static int stream_open(orm_exec_t *exec, const orm_model_t *model,
                       const char *sql, const orm__params_in_t *in,
                       size_t chunk_rows, orm_stream_cb on_rows,
                       orm_future_cb cb, void *data, orm_stream_t **out,
                       orm_future_t **fut) {
  if (chunk_rows == 0)
    chunk_rows = ORM_STREAM_CHUNK_DEFAULT;
  if (model == NULL || on_rows == NULL || sql == NULL ||
      chunk_rows > ORM_STREAM_CHUNK_MAX)
    return ORM_EINVAL;
  if (orm_model_check(model) != 0)
    return ORM_EMODEL;
  orm_stream_t *s = orm__calloc(1, sizeof *s);
  if (s == NULL)
    return ORM_ENOMEM;
  s->model = model;
  s->on_rows = on_rows;
  s->data = data;
  s->chunk = chunk_rows;
  orm__request_t *req;
  int rc = orm__lease_submit(exec, &stream_ops, s, sql, in, cb, data, &req);
  if (rc != 0) {
    orm__free(s);
    return rc;
  }
  s->req = req;
  if (out != NULL)
    *out = s;
  if (fut != NULL) {
    orm__future_ref(&req->future);
    *fut = &req->future;
  }
  return 0;
}

int(orm_stream_async)(orm_exec_t *exec, const orm_model_t *model,
                      const char *sql, const orm_param_t *params,
                      size_t nparams, size_t chunk_rows,
                      orm_stream_cb on_rows, orm_future_cb cb, void *data,
                      orm_stream_t **out, orm_future_t **fut) {
  if (out != NULL)
    *out = NULL;
  if (fut != NULL)
    *fut = NULL;
  orm__params_in_t in = {.values = params, .n = nparams, .op = "stream",
                         .table = model != NULL ? model->table : NULL};
  return stream_open(exec, model, sql, &in, chunk_rows, on_rows, cb, data,
                     out, fut);
}

int(orm_stream_query_async)(orm_exec_t *exec, orm_query_t *query,
                            size_t chunk_rows, orm_stream_cb on_rows,
                            orm_future_cb cb, void *data, orm_stream_t **out,
                            orm_future_t **fut) {
  if (out != NULL)
    *out = NULL;
  if (fut != NULL)
    *fut = NULL;
  if (query == NULL)
    return ORM_EINVAL;
  if (orm__query_includes(query) != NULL)
    return ORM_ENOTSUP;
  const char *sql;
  const orm_param_t *params;
  size_t n;
  int rc = orm_query_sql(query, ORM_QUERY_SELECT, &sql, &params, &n);
  if (rc != 0)
    return rc;
  const orm_model_t *model = orm_query_model(query);
  orm__params_in_t in = {.values = params, .n = n, .op = "stream",
                         .table = model->table};
  return stream_open(exec, model, sql, &in, chunk_rows, on_rows, cb, data,
                     out, fut);
}

static int pending(const orm_stream_t *s) {
  return s->req != NULL &&
         orm_future_state(&s->req->future) == ORM_FUTURE_PENDING;
}

int orm_stream_pause(orm_stream_t *s) {
  if (s == NULL)
    return ORM_EINVAL;
  if (!pending(s))
    return ORM_ESTATE;
  if (!s->paused && !s->stopping) {
    s->paused = true;
    if (s->conn != NULL && !s->in_cb)
      arm(s);
  }
  return 0;
}

int orm_stream_resume(orm_stream_t *s) {
  if (s == NULL)
    return ORM_EINVAL;
  if (!pending(s))
    return ORM_ESTATE;
  if (s->paused) {
    s->paused = false;
    /* libpq may hold rows already read: they go from the pool's turn,
     * not from inside this call. */
    if (s->conn != NULL && !s->in_cb) {
      s->conn->lease_poke = 1;
      orm__pool_kick(s->conn->pool);
    }
  }
  return 0;
}

int orm_stream_cancel(orm_stream_t *s) {
  if (s == NULL)
    return ORM_EINVAL;
  if (!pending(s))
    return ORM_ESTATE;
  return orm_future_cancel(&s->req->future);
}

uint64_t orm_stream_count(const orm_stream_t *s) {
  return s != NULL ? s->count : 0;
}

bool orm_stream_paused(const orm_stream_t *s) {
  return s != NULL && s->paused;
}
