/* SPDX-License-Identifier: MIT */
/* The TechEmpower Framework Benchmarks endpoints, to their rules:
 *
 *   /json       {"message":"Hello, World!"}, serialized per request
 *   /plaintext  Hello, World!
 *   /db         one random world row
 *   /queries    ?queries=N (clamped to 1..500; missing or bad: 1) random
 *               rows, each read by its own statement
 *   /fortunes   every fortune plus one added at request time, sorted by
 *               message, through the HTML-escaping template
 *   /updates    ?queries=N rows read, each given a new random number and
 *               written back, each by its own statement
 *
 * Every query goes through the models of tfb.h. */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "tfb.h"

#define MAX_QUERIES 500

static int is(h2o_iovec_t path, const char *s) {
  return h2o_memis(path.base, path.len, s, strlen(s));
}

/* N from ?queries=N: missing, empty or not a number gives 1; below 1
 * gives 1; above 500 gives 500. */
static unsigned queries_count(h2o_iovec_t query) {
  h2o_iovec_t v = query_param(query, "queries");
  if (v.base == NULL || v.len == 0)
    return 1;
  size_t i = 0;
  int negative = v.base[0] == '-';
  i += negative || v.base[0] == '+';
  if (i == v.len)
    return 1;
  unsigned long n = 0;
  for (; i < v.len; i++) {
    if (v.base[i] < '0' || v.base[i] > '9')
      return 1;
    if (n <= MAX_QUERIES)
      n = n * 10 + (unsigned long)(v.base[i] - '0');
  }
  if (negative || n < 1)
    return 1;
  return n > MAX_QUERIES ? MAX_QUERIES : (unsigned)n;
}

/* ---- /json, /plaintext ------------------------------------------------------ */

static void json_hello(h2o_req_t *req) {
  reply_json(req, 200, json_pack("{s:s}", "message", "Hello, World!"));
}

/* ---- /db, /queries, /updates ------------------------------------------------- */

typedef struct {
  unsigned n, read, written;
  int single;  /* /db: an object, not an array */
  int update;  /* /updates: write after reading */
  world_t rows[];
} worlds_t;

static json_t *world_json(const world_t *w) {
  return json_pack("{s:i, s:i}", "id", (json_int_t)w->id, "randomNumber",
                   (json_int_t)w->randomnumber);
}

static void worlds_reply(call_t *c) {
  worlds_t *s = call_state(c);
  h2o_req_t *req = call_req(c);
  if (req != NULL) {
    if (c->failed != 0) {
      reply_failed(c);
    } else if (s->single) {
      reply_json(req, 200, world_json(&s->rows[0]));
    } else {
      json_t *a = json_array();
      for (unsigned i = 0; i < s->n && a != NULL; i++)
        json_array_append_new(a, world_json(&s->rows[i]));
      reply_json(req, 200, a);
    }
  }
  call_end(c);
}

static void on_written(orm_future_t *f, void *data) {
  call_t *c = data;
  worlds_t *s = call_state(c);
  call_note(c, f);
  if (++s->written == s->n)
    worlds_reply(c);
}

static void write_worlds(call_t *c) {
  worlds_t *s = call_state(c);
  const uint64_t mask = ORM_FIELD_BIT(world, randomnumber);
  for (unsigned i = 0; i < s->n; i++) {
    s->rows[i].randomnumber = (int32_t)worker_random(c->w, WORLD_ROWS);
    int rc = orm_update_async(c->w->pool, world_model(), &s->rows[i], mask, on_written,
                              c, NULL);
    if (rc != 0) { /* no callback for this one, nor for the rest */
      if (c->failed == 0) {
        c->failed = rc;
        snprintf(c->message, sizeof c->message, "%s", orm_strerror(rc));
      }
      s->written += s->n - i;
      if (s->written == s->n)
        worlds_reply(c);
      return;
    }
  }
}

static void on_read(orm_future_t *f, void *data) {
  call_t *c = data;
  worlds_t *s = call_state(c);
  unsigned i = s->read++;
  if (call_note(c, f) == 0) {
    const world_t *row = orm_future_row(f);
    s->rows[i] = *row;
  }
  if (s->read < s->n)
    return;
  if (s->update && c->failed == 0 && call_req(c) != NULL)
    write_worlds(c);
  else
    worlds_reply(c);
}

static void worlds(worker_t *w, h2o_req_t *req, unsigned n, int single, int update) {
  call_t *c = call_begin(w, req, sizeof(worlds_t) + n * sizeof(world_t));
  if (c == NULL)
    return;
  worlds_t *s = call_state(c);
  s->n = n;
  s->single = single;
  s->update = update;
  for (unsigned i = 0; i < n; i++) {
    int32_t id = (int32_t)worker_random(w, WORLD_ROWS);
    int rc = orm_find_async(w->pool, world_model(), ORM_INT4(id), on_read, c, NULL);
    if (rc != 0) {
      if (c->failed == 0) {
        c->failed = rc;
        snprintf(c->message, sizeof c->message, "%s", orm_strerror(rc));
      }
      s->read += n - i;
      if (s->read == n)
        worlds_reply(c);
      return;
    }
  }
}

/* ---- /fortunes ------------------------------------------------------------------ */

static const char fortunes_page[] =
    "<!DOCTYPE html>\n"
    "<html>\n"
    "<head><title>Fortunes</title></head>\n"
    "<body>\n"
    "<table>\n"
    "<tr><th>id</th><th>message</th></tr>\n"
    "{{#fortunes}}<tr><td>{{id}}</td><td>{{message}}</td></tr>\n"
    "{{/fortunes}}</table>\n"
    "</body>\n"
    "</html>\n";

tpl_t *fortunes_template(char *err, size_t errlen) {
  static const char *const columns[] = {"id", "message"};
  tpl_names_t names = {.list = "fortunes", .columns = columns, .ncolumns = 2};
  return tpl_compile(fortunes_page, &names, err, errlen);
}

typedef struct {
  int32_t id;
  const char *message;
} fortune_item_t;

static int by_message(const void *a, const void *b) {
  return strcmp(((const fortune_item_t *)a)->message,
                ((const fortune_item_t *)b)->message);
}

static void on_fortunes(orm_future_t *f, void *data) {
  call_t *c = data;
  h2o_req_t *req = call_req(c);
  if (call_note(c, f) != 0 || req == NULL) {
    reply_failed(c);
    call_end(c);
    return;
  }
  const orm_rows_t *rows = orm_future_value(f);
  size_t n = orm_rows_count(rows);
  const fortune_t *row = orm_rows_array(rows);
  fortune_item_t *items = h2o_mem_alloc_pool(&req->pool, (n + 1) * sizeof *items);
  const char **cells = h2o_mem_alloc_pool(&req->pool, (n + 1) * 2 * sizeof *cells);
  char *ids = h2o_mem_alloc_pool(&req->pool, (n + 1) * 12);
  for (size_t i = 0; i < n; i++)
    items[i] = (fortune_item_t){row[i].id, row[i].message};
  items[n] = (fortune_item_t){0, TFB_FORTUNE_ADDED};
  qsort(items, n + 1, sizeof *items, by_message);
  for (size_t i = 0; i <= n; i++) {
    snprintf(ids + 12 * i, 12, "%d", (int)items[i].id);
    cells[2 * i] = ids + 12 * i;
    cells[2 * i + 1] = items[i].message;
  }
  worker_t *w = c->w;
  tpl_data_t d = {.cells = cells, .nrows = n + 1};
  if (tpl_render(w->app->fortunes, &d, &w->out) != 0)
    reply_error(req, 500, "internal", "out of memory", NULL);
  else /* copied into the request's memory: the buffer is reused */
    reply(req, 200, "text/html; charset=utf-8", w->out.data, w->out.len);
  call_end(c);
}

static void fortunes(worker_t *w, h2o_req_t *req) {
  call_t *c = call_begin(w, req, 0);
  if (c == NULL)
    return;
  int rc = orm_find_all_async(w->pool, fortune_model(), NULL, on_fortunes, c, NULL);
  if (rc != 0) {
    c->failed = rc;
    snprintf(c->message, sizeof c->message, "%s", orm_strerror(rc));
    reply_failed(c);
    call_end(c);
  }
}

int tfb_route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query) {
  if (is(path, "/plaintext"))
    reply(req, 200, "text/plain", H2O_STRLIT("Hello, World!"));
  else if (is(path, "/json"))
    json_hello(req);
  else if (is(path, "/db"))
    worlds(w, req, 1, 1, 0);
  else if (is(path, "/queries"))
    worlds(w, req, queries_count(query), 0, 0);
  else if (is(path, "/updates"))
    worlds(w, req, queries_count(query), 0, 1);
  else if (is(path, "/fortunes"))
    fortunes(w, req);
  else
    return -1;
  return 0;
}
