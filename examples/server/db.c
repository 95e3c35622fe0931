/* SPDX-License-Identifier: MIT */
/* The example server's data side: each worker's uvorm pool, a failed
 * call's reply by its error, any model row as JSON. */
#include "server.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the pool of a worker ---------------------------------------------------- */

int db_open(worker_t *w) {
  const app_t *app = w->httpd->data;
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
  orm_pool_t *pool = NULL;
  int rc = orm_pool_open(&pool, &w->loop, &cfg);
  if (rc != 0) {
    fprintf(stderr, "server: pool: %s\n", orm_strerror(rc));
    return -1;
  }
  w->db = pool;
  return 0;
}

static void on_pool_closed(orm_pool_t *pool, void *data) {
  (void)pool;
  worker_t *w = data;
  w->db = NULL;
  httpd_db_closed(w);
}

void db_close(worker_t *w) {
  if (orm_pool_close(w->db, on_pool_closed) != 0)
    httpd_db_closed(w);
}

/* ---- failures ------------------------------------------------------------------- */

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

void reply_failed(call_t *c) {
  h2o_req_t *req = c->req;
  if (req == NULL)
    return;
  switch (c->failed) {
  case ORM_ECONNECT:
  case ORM_EAUTH:
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

/* ---- rows as JSON ----------------------------------------------------------------- */

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

