/* SPDX-License-Identifier: MIT */
/* Streams: a query's rows in single-row mode on a lent connection,
 * hydrated a chunk at a time into one reused orm_rows_t; or the rows of a
 * binary COPY TO STDOUT, decoded by the model's codecs into the same
 * chunks (orm_copy_out_rows_async). */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "uvorm/stream.h"

#include "base/alloc.h"
#include "base/wire.h"
#include "model/codec.h"
#include "model/hydrate.h"
#include "model/model_int.h"
#include "model/query_int.h"
#include "model/sql.h"
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
  bool copy;        /* COPY ... TO STDOUT (FORMAT binary) */
  bool copy_open;   /* its data flows (PGRES_COPY_OUT seen) */
  bool copy_header; /* its header was read */
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

/* One binary COPY message: the header, a tuple, or the trailer. */
static void add_copy_data(orm_stream_t *s, const char *p, int len) {
  const orm_model_t *model = s->model;
  if (s->stopping)
    return;
  if (!s->copy_header) {
    /* PGCOPY\n\377\r\n\0, flags, header extension length, extension. */
    if (len < 19 || memcmp(p, "PGCOPY\n\377\r\n", 11) != 0) {
      snprintf(s->err.message, sizeof s->err.message,
               "COPY sent no binary header");
      fail_client(s, ORM_EPROTO);
      return;
    }
    uint32_t ext = orm__load_u32(p + 15);
    if (ext > (uint32_t)len - 19) {
      snprintf(s->err.message, sizeof s->err.message,
               "COPY's binary header is cut short");
      fail_client(s, ORM_EPROTO);
      return;
    }
    s->copy_header = true;
    p += 19 + ext;
    len -= (int)(19 + ext);
  }
  while (len >= 2) {
    int16_t n = (int16_t)orm__load_u16(p);
    p += 2;
    len -= 2;
    if (n == -1)
      return; /* the trailer */
    if (s->rows == NULL && orm__rows_new(&s->rows, model, s->chunk) != 0) {
      snprintf(s->err.message, sizeof s->err.message, "out of memory");
      fail_client(s, ORM_ENOMEM);
      return;
    }
    if (!s->planned) {
      s->rows->count = 0;
      s->planned = true;
    }
    if (n != (int16_t)model->nfields) {
      snprintf(s->err.message, sizeof s->err.message,
               "COPY sent %d columns, the model has %zu", n, model->nfields);
      fail_client(s, ORM_ETYPE);
      return;
    }
    orm_rows_t *rows = s->rows;
    char *dst = rows->data + rows->count * model->struct_size;
    memset(dst, 0, model->struct_size);
    uint64_t nulls = 0;
    for (size_t f = 0; f < model->nfields; f++) {
      if (len < 4)
        goto short_row;
      int32_t vlen = (int32_t)orm__load_u32(p);
      p += 4;
      len -= 4;
      if (vlen == -1) {
        nulls |= UINT64_C(1) << f;
        continue;
      }
      if (vlen < 0 || vlen > len)
        goto short_row;
      const orm_field_t *field = &model->fields[f];
      int rc = orm__codec_decode(field->type, p, vlen, dst + field->offset,
                                 &rows->arena);
      if (rc != 0) {
        snprintf(s->err.message, sizeof s->err.message,
                 "column \"%s\", row %llu: %s", field->column,
                 (unsigned long long)s->count, orm_strerror(rc));
        fail_client(s, rc);
        return;
      }
      p += vlen;
      len -= vlen;
    }
    orm__row_set_nulls(model, dst, nulls);
    rows->count++;
    s->count++;
    if (rows->count == s->chunk) {
      deliver(s);
      if (s->stopping)
        return;
    }
  }
  return;
short_row:
  snprintf(s->err.message, sizeof s->err.message,
           "a COPY row is cut short");
  fail_client(s, ORM_EPROTO);
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

static void lost_now(orm_stream_t *s, const char *why);

/* COPY's rows, while it is open: 1 when the data has ended (results
 * follow), 0 to wait for the socket or the consumer. */
static int drain_copy(orm_stream_t *s) {
  while (s->conn != NULL && (!s->paused || s->stopping)) {
    char *buf = NULL;
    int n = PQgetCopyData(s->conn->pg, &buf, 1);
    if (n > 0) {
      add_copy_data(s, buf, n);
      PQfreemem(buf);
      continue;
    }
    if (n == 0)
      return 0;
    if (n == -2) {
      lost_now(s, PQerrorMessage(s->conn->pg));
      return 0;
    }
    s->copy_open = false;
    return 1;
  }
  return 0;
}

/* Works through what libpq has buffered, as far as the consumer lets it. */
static void drain(orm_stream_t *s) {
  while (s->conn != NULL && (!s->paused || s->stopping)) {
    if (s->copy_open && !drain_copy(s))
      break;
    if (s->conn == NULL)
      return;
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
    default: {
      ExecStatusType st = PQresultStatus(res);
      PQclear(res);
      if (st == PGRES_COPY_OUT && s->copy) {
        s->copy_open = true;
        break;
      }
      if (s->status == 0) {
        snprintf(s->err.message, sizeof s->err.message,
                 "the statement is not a query (it answers %s)",
                 PQresStatus(st));
        fail_client(s, ORM_EPROTO);
      }
      /* A COPY it started is ended (FROM STDIN) or read away (TO STDOUT,
       * cancelled by fail_client), so that its results can end. */
      if (st == PGRES_COPY_OUT) {
        s->copy_open = true;
      } else if (st == PGRES_COPY_IN &&
                 PQputCopyEnd(pg, "a stream takes a query") != 1) {
        lost_now(s, PQerrorMessage(pg));
        return;
      }
      break;
    }
    }
  }
  if (s->conn != NULL)
    arm(s);
}

static void lost_now(orm_stream_t *s, const char *why) {
  orm__conn_t *conn = s->conn;
  s->conn = NULL;
  s->stopping = true;
  orm__lease_lost(conn, "the connection was lost mid-stream", why);
}

static void on_start(orm__request_t *req, orm__conn_t *conn) {
  orm_stream_t *s = req->lease_obj;
  s->conn = conn;
  if (!PQsendQueryParams(conn->pg, req->sql, req->nparams, req->types,
                         req->values, req->lengths, req->formats, 1) ||
      (!s->copy && !PQsetSingleRowMode(conn->pg))) {
    lost_now(s, PQerrorMessage(conn->pg));
    return;
  }
  arm(s);
}

static void on_io(orm__request_t *req, int status, int events) {
  orm_stream_t *s = req->lease_obj;
  const char *why;
  if (orm__lease_io(s->conn, status, events, &why) < 0) {
    lost_now(s, why);
    return;
  }
  drain(s);
}

static void on_abort(orm__request_t *req, int code) {
  (void)code;
  orm_stream_t *s = req->lease_obj;
  stop(s);
  /* A paused stream drains again, from the pool's turn: libpq may hold
   * the rest already, and no readable event would come for it. */
  if (s->conn != NULL) {
    s->conn->lease_poke = 1;
    orm__pool_kick(s->conn->pool);
  }
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

static int stream_open(orm_exec_t *exec, const orm_model_t *model, bool copy,
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
  s->copy = copy;
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
  return stream_open(exec, model, false, sql, &in, chunk_rows, on_rows, cb,
                     data, out, fut);
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
  exec = orm__exec_route(exec, orm__query_for_update(query) ? ORM__WRITE
                                                            : ORM__READ);
  return stream_open(exec, model, false, sql, &in, chunk_rows, on_rows, cb,
                     data, out, fut);
}

/* The type a column is cast to, so that its binary form is the one the
 * field's codec reads (COPY's binary rows carry no types). */
static const char *cast_type(orm_type_t type) {
  switch (type) {
  case ORM_T_TEXT:
  case ORM_T_ENUM:
    return "text";
  case ORM_T_INT_ARRAY:
    return "int8[]";
  case ORM_T_TEXT_ARRAY:
    return "text[]";
  default: {
    static const char *const names[] = {
        [ORM_T_INT2] = "int2",           [ORM_T_INT4] = "int4",
        [ORM_T_INT8] = "int8",           [ORM_T_FLOAT4] = "float4",
        [ORM_T_FLOAT8] = "float8",       [ORM_T_BOOL] = "bool",
        [ORM_T_JSON] = "json",           [ORM_T_JSONB] = "jsonb",
        [ORM_T_BYTEA] = "bytea",         [ORM_T_TIMESTAMP] = "timestamp",
        [ORM_T_TIMESTAMPTZ] = "timestamptz", [ORM_T_DATE] = "date",
        [ORM_T_UUID] = "uuid",           [ORM_T_NUMERIC] = "numeric"};
    if ((size_t)type < sizeof names / sizeof names[0] && names[type] != NULL)
      return names[type];
    return "text";
  }
  }
}

int(orm_copy_out_rows_async)(orm_exec_t *exec, const orm_model_t *model,
                             const char *select_sql, size_t chunk_rows,
                             orm_stream_cb on_rows, orm_future_cb cb,
                             void *data, orm_stream_t **out,
                             orm_future_t **fut) {
  if (out != NULL)
    *out = NULL;
  if (fut != NULL)
    *fut = NULL;
  if (model == NULL)
    return ORM_EINVAL;
  if (orm_model_check(model) != 0)
    return ORM_EMODEL;
  /* COPY (SELECT "a"::int8, "b"::text, ... FROM source) TO STDOUT
   * (FORMAT binary): the casts make each column's binary form the one its
   * codec reads, or fail on the server. */
  orm__sql_text_t t = {0};
  orm__buf_init(&t.buf);
  orm__sql_put(&t, "COPY (SELECT ");
  for (size_t f = 0; f < model->nfields; f++) {
    if (f > 0)
      orm__sql_put(&t, ", ");
    orm__sql_ident(&t, model->fields[f].column);
    orm__sql_put(&t, "::");
    orm__sql_put(&t, cast_type(model->fields[f].type));
  }
  orm__sql_put(&t, " FROM ");
  if (select_sql != NULL) {
    orm__sql_put(&t, "(");
    orm__sql_put(&t, select_sql);
    orm__sql_put(&t, ") AS q");
  } else {
    orm__sql_table(&t, model);
  }
  orm__sql_put(&t, ") TO STDOUT (FORMAT binary)");
  int rc;
  char *sql = orm__sql_take(&t, &rc);
  if (sql == NULL)
    return rc;
  orm__params_in_t in = {.op = "copy", .table = model->table};
  /* A read, whatever select_sql is: a subquery cannot write. */
  rc = stream_open(orm__exec_route(exec, ORM__READ), model, true, sql, &in,
                   chunk_rows, on_rows, cb, data, out, fut);
  orm__free(sql);
  return rc;
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
