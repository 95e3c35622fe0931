/* SPDX-License-Identifier: MIT */
/* COPY on a lent connection: model rows in by binary COPY (encoded a block
 * at a time as the socket takes them), raw data in from a reader, raw rows
 * out to a writer.
 *
 * One state machine for the three: the COPY statement goes out; its first
 * answer opens the copy (or is its error); data flows (PQputCopyData /
 * PQgetCopyData, non-blocking: a full socket waits for writable); the end
 * (PQputCopyEnd, or -1 from PQgetCopyData) is followed by the final
 * result, then NULL, and the connection goes back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "uvorm/stream.h"

#include "base/alloc.h"
#include "base/wire.h"
#include "model/codec.h"
#include "model/model_int.h"
#include "model/params.h"
#include "model/sql.h"
#include "pool/pool_int.h"

/* Bytes encoded ahead of the socket at most. */
#define COPY_BLOCK (256 * 1024)

typedef enum { COPY_ROWS_IN, COPY_RAW_IN, COPY_RAW_OUT } copy_mode_t;

typedef enum {
  PHASE_START, /* waiting for the COPY to open */
  PHASE_DATA,  /* sending or receiving data */
  PHASE_END,   /* PQputCopyEnd to send (it may block) */
  PHASE_RESULT /* waiting for the final result and NULL */
} copy_phase_t;

typedef struct {
  orm__request_t *req;
  orm__conn_t *conn;
  copy_mode_t mode;
  copy_phase_t phase;
  /* model rows in */
  const orm_model_t *model;
  const char *rows;
  size_t nrows;
  size_t next_row;
  uint64_t fields;
  orm__buf_t buf;
  size_t buf_off;
  int trailer_done;
  /* raw */
  orm_copy_read_cb read;
  orm_copy_write_cb write;
  void *data;
  /* outcome */
  int status;             /* a client-side failure, or 0 */
  char why[200];          /* ... and what to tell the server and caller */
  PGresult *error;        /* the server's */
  PGresult *final;        /* COPY n */
  int aborting;
  int out;                /* the server opened a COPY TO STDOUT */
  int unflushed;          /* blocks handed to libpq since it last had
                             nothing left to send */
} copy_t;

static void copy_release(void *obj) {
  copy_t *c = obj;
  orm__buf_free(&c->buf);
  PQclear(c->error);
  PQclear(c->final);
  orm__free(c);
}

static void arm(copy_t *c, int want_write) {
  int flush = PQflush(c->conn->pg);
  orm__conn_arm(c->conn, UV_READABLE |
                             (flush == 1 || want_write ? UV_WRITABLE : 0));
}

/* The copy is over: the connection goes back, the future completes. */
static void finish(copy_t *c) {
  orm__request_t *req = c->req;
  orm__conn_t *conn = c->conn;
  c->conn = NULL;
  int abandoned = req->abandoned;
  orm__lease_end(conn, NULL);
  if (abandoned)
    return;
  int status = c->status;
  if (status != 0) {
    orm__future_set_message(&req->future, "%s", c->why);
  } else if (c->error != NULL) {
    const char *state = PQresultErrorField(c->error, PG_DIAG_SQLSTATE);
    req->result = c->error;
    c->error = NULL;
    status = state != NULL && strncmp(state, "57P", 3) == 0 ? ORM_ECONNLOST
                                                            : ORM_ESERVER;
  } else if (c->final == NULL) {
    orm__future_set_message(&req->future, "no answer to the COPY");
    status = ORM_EPROTO;
  } else {
    const char *n = PQcmdTuples(c->final);
    req->rows = n != NULL && *n != '\0' ? atoll(n) : -1;
    orm__future_set_value(&req->future, c->final,
                          (void (*)(void *))orm_result_free);
    c->final = NULL;
  }
  orm__req_complete(req, status, ORM__NOW);
}

static void lost_now(copy_t *c, const char *why) {
  orm__conn_t *conn = c->conn;
  c->conn = NULL;
  orm__lease_lost(conn, "the connection was lost during COPY", why);
}

/* A failure on our side: the COPY is ended with an error, so that the
 * server keeps nothing of it. */
static void fail_client(copy_t *c, int code, const char *why) {
  if (c->status == 0) {
    c->status = code;
    snprintf(c->why, sizeof c->why, "%s", why);
  }
  if (c->phase == PHASE_DATA)
    c->phase = PHASE_END;
}

static const char copy_header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";

/* Encodes rows into c->buf until it holds COPY_BLOCK bytes or the rows
 * end (then the trailer). */
static void encode_rows(copy_t *c) {
  orm__buf_reset(&c->buf);
  c->buf_off = 0;
  const orm_model_t *model = c->model;
  int ncols = 0;
  for (size_t f = 0; f < model->nfields; f++)
    ncols += (int)((c->fields >> f) & 1u);
  if (c->next_row == 0 &&
      orm__buf_append(&c->buf, copy_header, sizeof copy_header) != 0) {
    fail_client(c, ORM_ENOMEM, "out of memory");
    return;
  }
  while (c->next_row < c->nrows && c->buf.len < COPY_BLOCK) {
    const char *row = c->rows + c->next_row * model->struct_size;
    uint64_t nulls = orm__row_nulls(model, row);
    if (orm__buf_reserve(&c->buf, 2) != 0) {
      fail_client(c, ORM_ENOMEM, "out of memory");
      return;
    }
    orm__buf_put_u16(&c->buf, (uint16_t)ncols);
    for (size_t f = 0; f < model->nfields; f++) {
      if (!((c->fields >> f) & 1u))
        continue;
      if (orm__buf_reserve(&c->buf, 4) != 0) {
        fail_client(c, ORM_ENOMEM, "out of memory");
        return;
      }
      if (orm__field_is_null(model, row, f, nulls)) {
        orm__buf_put_u32(&c->buf, UINT32_MAX); /* -1: NULL */
        continue;
      }
      size_t at = c->buf.len;
      orm__buf_put_u32(&c->buf, 0);
      const orm_field_t *field = &model->fields[f];
      int rc = orm__codec_encode(field->type, row + field->offset, &c->buf);
      if (rc != 0) {
        char why[160];
        snprintf(why, sizeof why, "column \"%s\" of row %zu: %s",
                 field->column, c->next_row, orm_strerror(rc));
        fail_client(c, rc, why);
        return;
      }
      uint32_t len = (uint32_t)(c->buf.len - at - 4);
      unsigned char be[4] = {(unsigned char)(len >> 24),
                             (unsigned char)(len >> 16),
                             (unsigned char)(len >> 8), (unsigned char)len};
      memcpy(c->buf.data + at, be, 4);
    }
    c->next_row++;
  }
  if (c->next_row == c->nrows && !c->trailer_done) {
    if (orm__buf_reserve(&c->buf, 2) != 0) {
      fail_client(c, ORM_ENOMEM, "out of memory");
      return;
    }
    orm__buf_put_u16(&c->buf, UINT16_MAX); /* -1: the end */
    c->trailer_done = 1;
  }
}

/* The next bytes to send: 1 with some in c->buf, 0 at the end. */
static int next_piece(copy_t *c) {
  if (c->buf_off < c->buf.len)
    return 1;
  if (c->mode == COPY_ROWS_IN) {
    if (c->trailer_done)
      return 0;
    encode_rows(c);
    return c->status == 0 && c->buf.len > 0;
  }
  const void *p = NULL;
  size_t len = 0;
  int r = c->read(c->data, &p, &len);
  if (r < 0) {
    char why[120];
    snprintf(why, sizeof why, "the reader stopped the COPY: %s",
             orm_strerror(r));
    fail_client(c, r, why);
    return 0;
  }
  if (r == 0)
    return 0;
  orm__buf_reset(&c->buf);
  c->buf_off = 0;
  if (len > 0 && orm__buf_append(&c->buf, p, len) != 0) {
    fail_client(c, ORM_ENOMEM, "out of memory");
    return 0;
  }
  return 1;
}

/* Sends as much as the socket takes: 0 to go on, 1 to wait for writable,
 * -1 when the copy is no longer ours (lost, or the pool closed from the
 * reader). At most two blocks wait in libpq for the socket: the next one
 * is encoded while the last drains, and memory stays at a few blocks
 * whatever the server's pace. */
static int pump_in(copy_t *c) {
  PGconn *pg = c->conn->pg;
  while (c->phase == PHASE_DATA) {
    int f = PQflush(pg);
    if (f < 0) {
      lost_now(c, PQerrorMessage(pg));
      return -1;
    }
    if (f == 0)
      c->unflushed = 0;
    else if (c->unflushed >= 2)
      return 1; /* two blocks wait for the socket: enough in the pipe */
    if (c->aborting) {
      c->phase = PHASE_END;
      break;
    }
    int more = next_piece(c); /* may run the caller's reader */
    if (c->conn == NULL)
      return -1;
    if (!more || c->aborting) {
      c->phase = PHASE_END;
      break;
    }
    size_t len = c->buf.len - c->buf_off;
    if (len > INT32_MAX)
      len = INT32_MAX;
    int r = PQputCopyData(pg, c->buf.data + c->buf_off, (int)len);
    if (r < 0) {
      lost_now(c, PQerrorMessage(pg));
      return -1;
    }
    if (r == 0)
      return 1; /* libpq's buffer is full: wait */
    c->buf_off += len;
    c->unflushed++;
  }
  if (c->phase == PHASE_END) {
    const char *err = c->status != 0 ? c->why
                      : c->aborting  ? "cancelled by the client"
                                     : NULL;
    int r = PQputCopyEnd(pg, err);
    if (r < 0) {
      lost_now(c, PQerrorMessage(pg));
      return -1;
    }
    if (r == 0)
      return 1;
    c->phase = PHASE_RESULT;
  }
  return 0;
}

static void step(copy_t *c) {
  while (c->conn != NULL) {
    PGconn *pg = c->conn->pg;
    switch (c->phase) {
    case PHASE_START:
    case PHASE_RESULT: {
      if (PQisBusy(pg)) {
        arm(c, 0);
        return;
      }
      PGresult *res = PQgetResult(pg);
      if (res == NULL) {
        if (c->phase == PHASE_RESULT || c->error != NULL) {
          finish(c);
          return;
        }
        lost_now(c, "the COPY ended before it began");
        return;
      }
      ExecStatusType st = PQresultStatus(res);
      if (c->phase == PHASE_START &&
          ((st == PGRES_COPY_IN && c->mode != COPY_RAW_OUT) ||
           (st == PGRES_COPY_OUT && c->mode == COPY_RAW_OUT))) {
        PQclear(res);
        c->out = st == PGRES_COPY_OUT;
        c->phase = PHASE_DATA;
        continue;
      }
      if (st == PGRES_FATAL_ERROR) {
        if (c->error == NULL)
          c->error = res;
        else
          PQclear(res);
      } else if (st == PGRES_COMMAND_OK && c->phase == PHASE_RESULT) {
        PQclear(c->final);
        c->final = res;
      } else {
        /* Not the COPY we were asked for: a COPY in the other direction
         * is ended, anything else runs to its end. */
        if (c->status == 0) {
          c->status = ORM_EPROTO;
          snprintf(c->why, sizeof c->why,
                   "the statement is not a COPY %s (it answers %s)",
                   c->mode == COPY_RAW_OUT ? "TO STDOUT" : "FROM STDIN",
                   PQresStatus(st));
        }
        PQclear(res);
        if (st == PGRES_COPY_IN) {
          c->phase = PHASE_END;
          continue;
        }
        if (st == PGRES_COPY_OUT) { /* read away, cancelled */
          orm__pool_cancel_on_server(c->conn->pool, c->conn);
          c->aborting = 1;
          c->out = 1;
          c->phase = PHASE_DATA;
          continue;
        }
      }
      c->phase = PHASE_RESULT;
      break;
    }
    case PHASE_DATA:
    case PHASE_END:
      if (!c->out) {
        int r = pump_in(c);
        if (r < 0)
          return;
        if (r == 1) {
          arm(c, 1);
          return;
        }
        break;
      }
      for (;;) {
        char *row = NULL;
        int n = PQgetCopyData(pg, &row, 1);
        if (n > 0) {
          if (!c->aborting && c->status == 0 && c->write != NULL)
            c->write(c->data, row, (size_t)n);
          PQfreemem(row);
          if (c->conn == NULL)
            return;
          continue;
        }
        if (n == 0) {
          arm(c, 0);
          return;
        }
        if (n == -2) {
          lost_now(c, PQerrorMessage(pg));
          return;
        }
        c->phase = PHASE_RESULT;
        break;
      }
      break;
    }
  }
}

static void on_start(orm__request_t *req, orm__conn_t *conn) {
  copy_t *c = req->lease_obj;
  c->conn = conn;
  if (!PQsendQueryParams(conn->pg, req->sql, 0, NULL, NULL, NULL, NULL, 0)) {
    lost_now(c, PQerrorMessage(conn->pg));
    return;
  }
  arm(c, 0);
}

static void on_io(orm__request_t *req, int status, int events) {
  copy_t *c = req->lease_obj;
  const char *why;
  if (orm__lease_io(c->conn, status, events, &why) < 0) {
    lost_now(c, why);
    return;
  }
  step(c);
}

static void on_abort(orm__request_t *req, int code) {
  (void)code;
  copy_t *c = req->lease_obj;
  c->aborting = 1;
  if (c->conn == NULL)
    return;
  if (c->out || c->phase == PHASE_START)
    orm__pool_cancel_on_server(c->conn->pool, c->conn);
  /* From the pool's turn, not inside the caller's call (a cancel from
   * the reader or writer would run the copy inside itself). */
  c->conn->lease_poke = 1;
  orm__pool_kick(c->conn->pool);
}

static void on_lost(orm__request_t *req, int code, const char *why) {
  (void)code;
  (void)why;
  copy_t *c = req->lease_obj;
  c->conn = NULL;
}

static const orm__lease_ops_t copy_ops = {on_start, on_io, on_abort, on_lost,
                                          copy_release};

static int copy_submit(orm_exec_t *exec, copy_t *c, const char *sql,
                       const char *op, const char *table, orm_future_cb cb,
                       void *data, orm_future_t **out) {
  orm__params_in_t in = {.op = op, .table = table};
  orm__request_t *req;
  int rc = orm__lease_submit(exec, &copy_ops, c, sql, &in, cb, data, &req);
  if (rc != 0) {
    copy_release(c);
    return rc;
  }
  c->req = req;
  if (out != NULL) {
    orm__future_ref(&req->future);
    *out = &req->future;
  }
  return 0;
}

int(orm_copy_in_rows_async)(orm_exec_t *exec, const orm_model_t *model,
                            const void *rows, size_t nrows, orm_future_cb cb,
                            void *data, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (model == NULL || (rows == NULL && nrows > 0))
    return ORM_EINVAL;
  if (orm_model_check(model) != 0)
    return ORM_EMODEL;
  uint64_t fields = 0;
  for (size_t f = 0; f < model->nfields; f++)
    if (!(model->fields[f].flags & ORM_F_GENERATED))
      fields |= UINT64_C(1) << f;
  if (fields == 0)
    return ORM_ENOTSUP;
  orm__sql_text_t t = {0};
  orm__buf_init(&t.buf);
  orm__sql_put(&t, "COPY ");
  orm__sql_table(&t, model);
  orm__sql_put(&t, " (");
  orm__sql_columns(&t, model, fields);
  orm__sql_put(&t, ") FROM STDIN (FORMAT binary)");
  int rc;
  char *sql = orm__sql_take(&t, &rc);
  if (sql == NULL)
    return rc;
  copy_t *c = orm__calloc(1, sizeof *c);
  if (c == NULL) {
    orm__free(sql);
    return ORM_ENOMEM;
  }
  c->mode = COPY_ROWS_IN;
  c->model = model;
  c->rows = rows;
  c->nrows = nrows;
  c->fields = fields;
  orm__buf_init(&c->buf);
  rc = copy_submit(exec, c, sql, "copy", model->table, cb, data, out);
  orm__free(sql); /* the request has its copy */
  return rc;
}

/* A raw COPY in either direction. */
static int raw_copy(orm_exec_t *exec, const char *sql, copy_mode_t mode,
                    orm_copy_read_cb read, orm_copy_write_cb write,
                    orm_future_cb cb, void *data, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (sql == NULL || (read == NULL && write == NULL))
    return ORM_EINVAL;
  copy_t *c = orm__calloc(1, sizeof *c);
  if (c == NULL)
    return ORM_ENOMEM;
  c->mode = mode;
  c->read = read;
  c->write = write;
  c->data = data;
  orm__buf_init(&c->buf);
  return copy_submit(exec, c, sql, "copy", NULL, cb, data, out);
}

int(orm_copy_in_async)(orm_exec_t *exec, const char *sql,
                       orm_copy_read_cb read, orm_future_cb cb, void *data,
                       orm_future_t **out) {
  return raw_copy(exec, sql, COPY_RAW_IN, read, NULL, cb, data, out);
}

int(orm_copy_out_async)(orm_exec_t *exec, const char *sql,
                        orm_copy_write_cb write, orm_future_cb cb, void *data,
                        orm_future_t **out) {
  return raw_copy(exec, sql, COPY_RAW_OUT, NULL, write, cb, data, out);
}
