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

static int is(h2o_iovec_t path, const char *s) {
  return h2o_memis(path.base, path.len, s, strlen(s));
}

/* ---- /db, /queries, /updates ------------------------------------------------- */

typedef struct {
  unsigned n, read, written;
  int single;  /* /db: an object, not an array */
  int update;  /* /updates: write after reading */
  world_t rows[];
} worlds_t;

static json_t *world_json(const world_t *w) { return tfb_world_json(w->id, w->randomnumber); }

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
    int rc = orm_update_async(pool_of(c->w), world_model(), &s->rows[i], mask, on_written,
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
    int rc = orm_find_async(pool_of(w), world_model(), ORM_INT4(id), on_read, c, NULL);
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
  tfb_fortune_t *items = h2o_mem_alloc_pool(&req->pool, (n + 1) * sizeof *items);
  for (size_t i = 0; i < n; i++)
    items[i] = (tfb_fortune_t){row[i].id, row[i].message};
  tfb_reply_fortunes(c->w, req, app_of(c->w)->fortunes, items, n);
  call_end(c);
}

static void fortunes(worker_t *w, h2o_req_t *req) {
  call_t *c = call_begin(w, req, 0);
  if (c == NULL)
    return;
  /* A query with no ORDER BY: find_all with no query orders by the key,
   * a sort on the server that the page does not need (it sorts by message
   * itself, after adding its own). */
  orm_query_t *q = NULL;
  int rc = orm_query_new(&q, fortune_model());
  if (rc == 0)
    rc = orm_find_all_async(pool_of(w), NULL, q, on_fortunes, c, NULL);
  orm_query_free(q);
  if (rc != 0) {
    c->failed = rc;
    snprintf(c->message, sizeof c->message, "%s", orm_strerror(rc));
    reply_failed(c);
    call_end(c);
  }
}

int tfb_route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query) {
  if (tfb_route_static(req, path) == 0)
    return 0;
  if (is(path, "/db"))
    worlds(w, req, 1, 1, 0);
  else if (is(path, "/queries"))
    worlds(w, req, tfb_queries_count(query), 0, 0);
  else if (is(path, "/updates"))
    worlds(w, req, tfb_queries_count(query), 0, 1);
  else if (is(path, "/fortunes"))
    fortunes(w, req);
  else
    return -1;
  return 0;
}
