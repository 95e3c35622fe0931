/* SPDX-License-Identifier: MIT */
/* A worker: one thread with its own loop, listening socket (the port is
 * shared with SO_REUSEPORT: the kernel spreads new connections), H2O
 * context and uvorm pool. Nothing is shared between workers but the
 * read-only configuration, so nothing is locked. */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- requests waiting on the database ----------------------------------- */

/* The request's memory pool is being freed (answered, or the client went
 * away): the call must not touch it any more. */
static void guard_dispose(void *p) {
  call_t **guard = p;
  if (*guard != NULL)
    (*guard)->req = NULL;
}

call_t *call_begin(worker_t *w, h2o_req_t *req, size_t extra) {
  call_t *c = calloc(1, sizeof *c + extra);
  call_t **guard = c != NULL ? h2o_mem_alloc_shared(&req->pool, sizeof *guard, guard_dispose)
                             : NULL;
  if (guard == NULL) {
    free(c);
    reply_error(req, 503, "overloaded", "out of memory", NULL);
    return NULL;
  }
  *guard = c;
  c->w = w;
  c->req = req;
  c->guard = guard;
  w->inflight++;
  return c;
}

h2o_req_t *call_req(const call_t *c) { return c->req; }

int call_note(call_t *c, orm_future_t *f) {
  int rc = orm_future_status(f);
  if (rc == 0 || c->failed != 0)
    return rc;
  c->failed = rc;
  const orm_error_t *e = orm_future_error(f);
  snprintf(c->sqlstate, sizeof c->sqlstate, "%s",
           e != NULL && e->sqlstate != NULL ? e->sqlstate : "");
  snprintf(c->message, sizeof c->message, "%s",
           e != NULL && e->message != NULL ? e->message : orm_strerror(rc));
  snprintf(c->field, sizeof c->field, "%s",
           e != NULL && e->field != NULL ? e->field : "");
  return rc;
}

static void maybe_close_pool(worker_t *w);

void call_end(call_t *c) {
  worker_t *w = c->w;
  if (c->req != NULL)
    *c->guard = NULL; /* answered: the pool's memory outlives us */
  free(c);
  w->inflight--;
  if (w->stopping)
    maybe_close_pool(w);
}

/* ---- replies ------------------------------------------------------------- */

void reply(h2o_req_t *req, int status, const char *content_type,
           const char *body, size_t len) {
  static const char *const reasons[] = {
      [200] = "OK",          [201] = "Created",         [400] = "Bad Request",
      [404] = "Not Found",   [405] = "Method Not Allowed", [409] = "Conflict",
      [413] = "Payload Too Large", [422] = "Unprocessable Entity",
      [500] = "Internal Server Error", [503] = "Service Unavailable"};
  req->res.status = status;
  req->res.reason = status < 600 && reasons[status] != NULL ? reasons[status] : "";
  req->res.content_length = len; /* not chunked */
  h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                 content_type, strlen(content_type));
  h2o_send_inline(req, body, len);
}

void reply_json(h2o_req_t *req, int status, json_t *body) {
  size_t n = body != NULL ? json_dumpb(body, NULL, 0, JSON_COMPACT) : 0;
  char *buf = n > 0 ? h2o_mem_alloc_pool(&req->pool, n) : NULL;
  if (buf == NULL || json_dumpb(body, buf, n, JSON_COMPACT) != n) {
    json_decref(body);
    reply(req, 500, "application/json", "{\"error\":\"internal\"}", 20);
    return;
  }
  json_decref(body);
  reply(req, status, "application/json", buf, n);
}

void reply_error(h2o_req_t *req, int status, const char *code,
                 const char *message, const char *field) {
  json_t *j = json_pack("{s:s, s:s}", "error", code, "message", message);
  if (j != NULL && field != NULL && field[0] != '\0')
    json_object_set_new(j, "field", json_string(field));
  reply_json(req, status, j);
}

void reply_failed(call_t *c) {
  h2o_req_t *req = c->req;
  if (req == NULL)
    return;
  switch (c->failed) {
  case ORM_ECONNECT:
  case ORM_ECONNLOST:
  case ORM_ETIMEDOUT:
  case ORM_EQUEUEFULL:
  case ORM_ECLOSED:
  case ORM_ECANCELED:
    reply_error(req, 503, "unavailable", c->message, NULL);
    return;
  case ORM_ENOTFOUND:
    reply_error(req, 404, "not_found", "no such row", NULL);
    return;
  case ORM_EVALIDATION:
    reply_error(req, 422, "validation", c->message, c->field);
    return;
  default:
    break;
  }
  /* What the server refused: a value (class 22), a constraint (23). */
  if (strncmp(c->sqlstate, "22", 2) == 0)
    reply_error(req, 400, "bad_value", c->message, NULL);
  else if (strcmp(c->sqlstate, "23505") == 0)
    reply_error(req, 409, "conflict", c->message, NULL);
  else if (strncmp(c->sqlstate, "23", 2) == 0)
    reply_error(req, 422, "constraint", c->message, NULL);
  else
    reply_error(req, 500, "internal", c->message, NULL);
}

/* ---- helpers ------------------------------------------------------------- */

uint32_t worker_random(worker_t *w, uint32_t n) {
  /* xorshift64*: plenty for picking rows. */
  uint64_t x = w->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  w->rng = x;
  return (uint32_t)(((x * UINT64_C(2685821657736338717)) >> 33) % n) + 1;
}

h2o_iovec_t query_param(h2o_iovec_t q, const char *name) {
  size_t n = strlen(name);
  size_t i = 0;
  while (i < q.len) {
    size_t end = i;
    while (end < q.len && q.base[end] != '&')
      end++;
    if (end - i > n && memcmp(q.base + i, name, n) == 0 && q.base[i + n] == '=')
      return h2o_iovec_init(q.base + i + n + 1, end - i - n - 1);
    if (end - i == n && memcmp(q.base + i, name, n) == 0)
      return h2o_iovec_init(q.base + end, 0);
    i = end + 1;
  }
  return h2o_iovec_init(NULL, 0);
}

int64_t parse_id(h2o_iovec_t s) {
  if (s.len == 0 || s.len > 18)
    return -1;
  int64_t v = 0;
  for (size_t i = 0; i < s.len; i++) {
    if (s.base[i] < '0' || s.base[i] > '9')
      return -1;
    v = v * 10 + (s.base[i] - '0');
  }
  return v > 0 ? v : -1;
}

static json_t *timestamp_json(int64_t us, int with_zone) {
  int64_t secs = us / 1000000, frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs--;
  }
  time_t t = (time_t)secs;
  struct tm tm;
  char buf[48];
  if (gmtime_r(&t, &tm) == NULL)
    return json_null();
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%06" PRId64 "%s", frac, with_zone ? "Z" : "");
  return json_string(buf);
}

static json_t *field_json(const orm_field_t *f, const char *m) {
  switch (f->type) {
  case ORM_T_INT2: { int16_t v; memcpy(&v, m, sizeof v); return json_integer(v); }
  case ORM_T_INT4: { int32_t v; memcpy(&v, m, sizeof v); return json_integer(v); }
  case ORM_T_INT8: { int64_t v; memcpy(&v, m, sizeof v); return json_integer(v); }
  case ORM_T_FLOAT4: { float v; memcpy(&v, m, sizeof v); return json_real(v); }
  case ORM_T_FLOAT8: { double v; memcpy(&v, m, sizeof v); return json_real(v); }
  case ORM_T_BOOL: { bool v; memcpy(&v, m, sizeof v); return json_boolean(v); }
  case ORM_T_TEXT:
  case ORM_T_ENUM:
  case ORM_T_NUMERIC: {
    const char *s;
    memcpy(&s, m, sizeof s);
    return s != NULL ? json_string(s) : json_null();
  }
  case ORM_T_JSON:
  case ORM_T_JSONB: { /* a document: embedded as one */
    const char *s;
    memcpy(&s, m, sizeof s);
    json_t *j = s != NULL ? json_loads(s, JSON_DECODE_ANY, NULL) : NULL;
    return j != NULL ? j : json_null();
  }
  case ORM_T_TIMESTAMP:
  case ORM_T_TIMESTAMPTZ: {
    int64_t v;
    memcpy(&v, m, sizeof v);
    return timestamp_json(v, f->type == ORM_T_TIMESTAMPTZ);
  }
  case ORM_T_DATE: {
    int32_t d;
    memcpy(&d, m, sizeof d);
    json_t *j = timestamp_json((int64_t)d * 86400 * 1000000, 0);
    if (j != NULL && json_is_string(j)) {
      char day[11];
      memcpy(day, json_string_value(j), 10);
      day[10] = '\0';
      json_string_set(j, day);
    }
    return j;
  }
  case ORM_T_UUID: {
    const orm_uuid_t *u = (const orm_uuid_t *)m;
    char s[37];
    static const char hex[] = "0123456789abcdef";
    size_t k = 0;
    for (int i = 0; i < 16; i++) {
      if (i == 4 || i == 6 || i == 8 || i == 10)
        s[k++] = '-';
      s[k++] = hex[u->bytes[i] >> 4];
      s[k++] = hex[u->bytes[i] & 15];
    }
    s[k] = '\0';
    return json_string(s);
  }
  case ORM_T_BYTEA: { /* as PostgreSQL writes it: \x and hex */
    const orm_bytes_t *b = (const orm_bytes_t *)m;
    char *s = malloc(b->len * 2 + 3);
    if (s == NULL)
      return json_null();
    static const char hex[] = "0123456789abcdef";
    s[0] = '\\';
    s[1] = 'x';
    for (size_t i = 0; i < b->len; i++) {
      s[2 + 2 * i] = hex[b->data[i] >> 4];
      s[3 + 2 * i] = hex[b->data[i] & 15];
    }
    s[2 + 2 * b->len] = '\0';
    json_t *j = json_string(s);
    free(s);
    return j;
  }
  case ORM_T_INT_ARRAY: {
    const orm_int_array_t *a = (const orm_int_array_t *)m;
    json_t *j = json_array();
    for (size_t i = 0; i < a->len && j != NULL; i++)
      json_array_append_new(j, orm_int_array_is_null(a, i) ? json_null()
                                                            : json_integer(a->items[i]));
    return j;
  }
  case ORM_T_TEXT_ARRAY: {
    const orm_text_array_t *a = (const orm_text_array_t *)m;
    json_t *j = json_array();
    for (size_t i = 0; i < a->len && j != NULL; i++)
      json_array_append_new(j, a->items[i] != NULL ? json_string(a->items[i]) : json_null());
    return j;
  }
  default:
    break;
  }
  return json_null();
}

json_t *row_json(const orm_model_t *model, const void *row) {
  json_t *j = json_object();
  uint64_t nulls;
  memcpy(&nulls, (const char *)row + model->nulls_offset, sizeof nulls);
  for (size_t i = 0; i < model->nfields && j != NULL; i++) {
    const orm_field_t *f = &model->fields[i];
    json_object_set_new(j, f->column,
                        (nulls >> i) & 1 ? json_null()
                                         : field_json(f, (const char *)row + f->offset));
  }
  return j;
}

/* ---- routing -------------------------------------------------------------- */

static int on_req(h2o_handler_t *self, h2o_req_t *req) {
  worker_t *w = (worker_t *)((char *)req->conn->ctx - offsetof(worker_t, ctx));
  (void)self;
  size_t plen = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
  h2o_iovec_t path = h2o_iovec_init(req->path.base, plen);
  h2o_iovec_t query = req->query_at != SIZE_MAX
                          ? h2o_iovec_init(req->path.base + req->query_at + 1,
                                           req->path.len - req->query_at - 1)
                          : h2o_iovec_init(NULL, 0);
  if (tfb_route(w, req, path, query) == 0 || api_route(w, req, path, query) == 0)
    return 0;
  reply_error(req, 404, "not_found", "no such resource", NULL);
  return 0;
}

void http_register(app_t *app) {
  h2o_hostconf_t *host =
      h2o_config_register_host(&app->h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  h2o_handler_t *handler = h2o_create_handler(path, sizeof *handler);
  handler->on_req = on_req;
}

/* ---- the worker ------------------------------------------------------------ */

/* ---- shutting down ----------------------------------------------------------
 * SIGINT/SIGTERM reach each worker as `stop`: it closes its listener and
 * asks H2O to end each connection after its next answer; once no request
 * waits on the database it closes its pool; once the connections are gone
 * it disposes of its H2O context, and the loop ends. Connections still
 * idle DRAIN_MS after the stop are left to the process's exit. */
#define DRAIN_MS 2000

static void finish(worker_t *w) {
  if (w->disposed || !w->pool_closed || w->conns_open > 0)
    return;
  w->disposed = true;
  uv_close((uv_handle_t *)&w->drain, NULL);
  /* h2o_context_request_shutdown() armed HTTP/2's graceful-shutdown
   * timer; libh2o 2.2 does not disarm it when the last connection goes,
   * and disposing of the context asserts that no timer is armed. */
  if (h2o_timeout_is_linked(&w->ctx.http2._graceful_shutdown_timeout))
    h2o_timeout_unlink(&w->ctx.http2._graceful_shutdown_timeout);
  h2o_context_dispose(&w->ctx);
}

static void on_conn_closed(uv_handle_t *h) {
  worker_t *w = (worker_t *)((char *)h->loop - offsetof(worker_t, loop));
  free(h);
  w->conns_open--;
  if (w->stopping)
    finish(w);
}

static void on_accept(uv_stream_t *listener, int status) {
  worker_t *w = listener->data;
  if (status != 0 || w->stopping)
    return;
  uv_tcp_t *conn = malloc(sizeof *conn);
  if (conn == NULL)
    return;
  uv_tcp_init(listener->loop, conn);
  if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
    uv_close((uv_handle_t *)conn, (uv_close_cb)free);
    return;
  }
  uv_tcp_nodelay(conn, 1);
  w->conns_open++;
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed);
  h2o_accept(&w->accept, sock);
}

static void on_pool_closed(orm_pool_t *pool, void *data) {
  (void)pool;
  worker_t *w = data;
  w->pool_closed = true;
  w->pool = NULL;
  finish(w);
}

static void maybe_close_pool(worker_t *w) {
  if (w->inflight == 0 && !w->pool_closing) {
    w->pool_closing = true;
    orm_pool_close(w->pool, on_pool_closed);
  }
}

static void on_drained(uv_timer_t *t) {
  worker_t *w = t->data;
  if (!w->pool_closed)
    return; /* requests still wait on the database (bounded by its timeouts) */
  uv_timer_stop(t);
  /* Idle clients hold connections H2O would keep until its timeout. */
  w->abandoned = w->conns_open;
  uv_stop(&w->loop);
}

static void on_stop(uv_async_t *a) {
  worker_t *w = a->data;
  if (w->stopping)
    return;
  w->stopping = true;
  uv_close((uv_handle_t *)&w->listener, NULL);
  uv_close((uv_handle_t *)&w->stop, NULL);
  /* Connections still open get "Connection: close" on their next answer. */
  h2o_context_request_shutdown(&w->ctx);
  uv_timer_start(&w->drain, on_drained, DRAIN_MS, 100);
  maybe_close_pool(w);
}

int worker_init(worker_t *w) {
  app_t *app = w->app;
  int rc = uv_loop_init(&w->loop);
  if (rc != 0) {
    fprintf(stderr, "server: loop: %s\n", uv_strerror(rc));
    return -1;
  }
  w->rng = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)(w->id + 1) << 32) ^ uv_hrtime();
  orm_pool_config_t cfg = {
      .conninfo = app->conninfo,
      .min_conns = app->conns,
      .max_conns = app->conns,
      .sync_each = app->sync_each,
      .no_pipeline = app->no_pipeline,
      .metrics = app->metrics,
      .acquire_timeout_ms = 5000,
      .statement_timeout_ms = 10000,
      .connect_timeout_ms = 5000,
      .reconnect_max_ms = 1000,
      .data = w,
  };
  if ((rc = orm_pool_open(&w->pool, &w->loop, &cfg)) != 0) {
    fprintf(stderr, "server: pool: %s\n", orm_strerror(rc));
    return -1;
  }
  h2o_context_init(&w->ctx, &w->loop, &app->h2o);
  w->accept.ctx = &w->ctx;
  w->accept.hosts = app->h2o.hosts;
  uv_tcp_init(&w->loop, &w->listener);
  w->listener.data = w;
  if ((rc = uv_tcp_open(&w->listener, w->listen_fd)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_accept)) != 0) {
    fprintf(stderr, "server: listen: %s\n", uv_strerror(rc));
    return -1;
  }
  uv_async_init(&w->loop, &w->stop, on_stop);
  w->stop.data = w;
  uv_timer_init(&w->loop, &w->drain);
  w->drain.data = w;
  return 0;
}

void worker_run(void *arg) {
  worker_t *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  free(w->out.data);
  w->out.data = NULL;
  if (w->disposed) /* everything closed: the loop too */
    uv_loop_close(&w->loop);
}
