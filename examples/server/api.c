/* SPDX-License-Identifier: MIT */
/* The sample domain as a small JSON API, and the server's own endpoints:
 *
 *   GET  /users/:id                  the user
 *   GET  /conversations/:id          the conversation with its messages,
 *                                    each with its usage: one eager load
 *   POST /conversations/:id/messages {"role": ..., "content": ...,
 *                                    "tokens"?: n, "metadata"?: {...},
 *                                    "author_id"?: n} -> 201 and the row
 *   GET  /users/:id/conversations?after=ID&limit=N   keyset pages, by id
 *   GET  /health                     the pool's state: 200 or 503
 *   GET  /metrics                    the pool's stats, Prometheus text
 *
 * Errors are JSON: {"error": code, "message": ..., "field"?: ...} with
 * 400 (bad input), 404, 405, 413 (body over the limit), 422 (validation:
 * the model's rules, with the field), 503 (database unavailable). */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define PAGE_DEFAULT 20
#define PAGE_MAX 100

/* `path` is prefix + id + suffix: the id's bytes, or {NULL, 0}. */
static h2o_iovec_t id_between(h2o_iovec_t path, const char *prefix, const char *suffix) {
  size_t p = strlen(prefix), s = strlen(suffix);
  if (path.len <= p + s || memcmp(path.base, prefix, p) != 0 ||
      memcmp(path.base + path.len - s, suffix, s) != 0)
    return h2o_iovec_init(NULL, 0);
  h2o_iovec_t id = h2o_iovec_init(path.base + p, path.len - p - s);
  if (memchr(id.base, '/', id.len) != NULL)
    return h2o_iovec_init(NULL, 0);
  return id;
}

static int method_is(h2o_req_t *req, const char *m) {
  return h2o_memis(req->method.base, req->method.len, m, strlen(m));
}

static int bad_id(h2o_req_t *req) {
  reply_error(req, 400, "bad_request", "the id must be a positive integer", "id");
  return 0;
}

static int start_failed(call_t *c, int rc) {
  c->failed = rc;
  snprintf(c->message, sizeof c->message, "%s", orm_strerror(rc));
  reply_failed(c);
  call_end(c);
  return 0;
}

/* ---- GET /users/:id ------------------------------------------------------------ */

static void on_user(orm_future_t *f, void *data) {
  call_t *c = data;
  h2o_req_t *req = call_req(c);
  if (call_note(c, f) != 0)
    reply_failed(c);
  else if (req != NULL)
    reply_json(req, 200, row_json(user_model(), orm_future_row(f)));
  call_end(c);
}

static int get_user(worker_t *w, h2o_req_t *req, int64_t id) {
  call_t *c = call_begin(w, req, 0);
  if (c == NULL)
    return 0;
  int rc = orm_find_async(pool_of(w), user_model(), ORM_INT8(id), on_user, c, NULL);
  return rc != 0 ? start_failed(c, rc) : 0;
}

/* ---- GET /conversations/:id ------------------------------------------------------ */

static void on_conversation(orm_future_t *f, void *data) {
  call_t *c = data;
  h2o_req_t *req = call_req(c);
  if (call_note(c, f) != 0) {
    reply_failed(c);
  } else if (req != NULL) {
    const conversation_t *conv = orm_future_row(f);
    message_t *msgs = NULL;
    size_t n = 0;
    if (conv == NULL) {
      reply_error(req, 404, "not_found", "no such conversation", NULL);
    } else if (ORM_REL_MANY(conv, messages, &msgs, &n) != 0) {
      reply_error(req, 500, "internal", "messages not loaded", NULL);
    } else {
      json_t *j = row_json(conversation_model(), conv);
      json_t *list = json_array();
      for (size_t i = 0; i < n && list != NULL; i++) {
        json_t *m = row_json(message_model(), &msgs[i]);
        usage_record_t *usage = NULL;
        if (ORM_REL_ONE(&msgs[i], usage, &usage) == 0 && m != NULL)
          json_object_set_new(m, "usage", usage != NULL
                                              ? row_json(usage_record_model(), usage)
                                              : json_null());
        json_array_append_new(list, m);
      }
      json_object_set_new(j, "messages", list);
      reply_json(req, 200, j);
    }
  }
  call_end(c);
}

static int get_conversation(worker_t *w, h2o_req_t *req, int64_t id) {
  orm_query_t *q = NULL;
  int rc = orm_query_new(&q, conversation_model());
  if (rc == 0) {
    orm_query_where(q, "id", ORM_OP_EQ, ORM_INT8(id));
    orm_query_include(q, "messages.usage");
    rc = orm_query_error(q);
  }
  if (rc != 0) {
    orm_query_free(q);
    reply_error(req, 500, "internal", orm_strerror(rc), NULL);
    return 0;
  }
  call_t *c = call_begin(w, req, 0);
  if (c != NULL) {
    rc = orm_find_all_async(pool_of(w), NULL, q, on_conversation, c, NULL);
    if (rc != 0)
      start_failed(c, rc);
  }
  orm_query_free(q);
  return 0;
}

/* ---- POST /conversations/:id/messages -------------------------------------------------- */

typedef struct {
  message_t row;
  char *role, *content, *metadata; /* owned copies */
} new_message_t;

static void on_created(orm_future_t *f, void *data) {
  call_t *c = data;
  new_message_t *s = call_state(c);
  h2o_req_t *req = call_req(c);
  if (call_note(c, f) != 0) {
    /* The conversation's foreign key: the parent is missing. */
    if (strcmp(c->sqlstate, "23503") == 0 && req != NULL &&
        strstr(c->message, "conversation") != NULL)
      reply_error(req, 404, "not_found", "no such conversation", NULL);
    else if (strcmp(c->sqlstate, "23503") == 0 && req != NULL)
      reply_error(req, 422, "constraint", c->message, "author_id");
    else
      reply_failed(c);
  } else if (req != NULL) {
    const message_t *row = orm_future_row(f);
    char where[64];
    int n = snprintf(where, sizeof where, "/messages/%lld", (long long)row->id);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                   h2o_strdup(&req->pool, where, (size_t)n).base, (size_t)n);
    reply_json(req, 201, row_json(message_model(), row));
  }
  free(s->role);
  free(s->content);
  free(s->metadata);
  call_end(c);
}

/* Reads the body into `m`; 0, or -1 after replying 400. */
static int message_from_json(h2o_req_t *req, new_message_t *m) {
  json_error_t err;
  json_t *body = req->entity.base != NULL
                     ? json_loadb(req->entity.base, req->entity.len, 0, &err)
                     : NULL;
  const char *bad = NULL, *why = NULL;
  if (body == NULL) {
    reply_error(req, 400, "bad_json",
                req->entity.base == NULL ? "a JSON body is required" : err.text, NULL);
    return -1;
  }
  if (!json_is_object(body)) {
    why = "the body must be a JSON object";
  } else {
    json_t *role = json_object_get(body, "role"), *content = json_object_get(body, "content");
    json_t *tokens = json_object_get(body, "tokens"), *meta = json_object_get(body, "metadata");
    json_t *author = json_object_get(body, "author_id");
    m->row.orm_nulls = ORM_FIELD_BIT(message, tokens) | ORM_FIELD_BIT(message, metadata) |
                       ORM_FIELD_BIT(message, author_id) | ORM_FIELD_BIT(message, editor_id);
    if (!json_is_string(role))
      bad = "role", why = "role must be a string";
    else if (!json_is_string(content))
      bad = "content", why = "content must be a string";
    else if (tokens != NULL && !json_is_null(tokens) &&
             (!json_is_integer(tokens) || json_integer_value(tokens) < INT32_MIN ||
              json_integer_value(tokens) > INT32_MAX))
      bad = "tokens", why = "tokens must be a 32-bit integer";
    else if (meta != NULL && !json_is_null(meta) && !json_is_object(meta))
      bad = "metadata", why = "metadata must be an object";
    else if (author != NULL && !json_is_null(author) &&
             (!json_is_integer(author) || json_integer_value(author) <= 0))
      bad = "author_id", why = "author_id must be a positive integer";
    if (bad == NULL) {
      /* jansson refuses \u0000 in strings: no NUL inside them. */
      m->role = strdup(json_string_value(role));
      m->content = strdup(json_string_value(content));
      if (tokens != NULL && json_is_integer(tokens)) {
        m->row.tokens = (int32_t)json_integer_value(tokens);
        m->row.orm_nulls &= ~ORM_FIELD_BIT(message, tokens);
      }
      if (meta != NULL && json_is_object(meta)) {
        m->metadata = json_dumps(meta, JSON_COMPACT);
        m->row.metadata = m->metadata;
        m->row.orm_nulls &= ~ORM_FIELD_BIT(message, metadata);
      }
      if (author != NULL && json_is_integer(author)) {
        m->row.author_id = json_integer_value(author);
        m->row.orm_nulls &= ~ORM_FIELD_BIT(message, author_id);
      }
      m->row.role = m->role;
      m->row.content = m->content;
      if (m->role == NULL || m->content == NULL)
        why = "out of memory";
    }
  }
  json_decref(body);
  if (why == NULL)
    return 0;
  reply_error(req, 400, "bad_request", why, bad);
  free(m->role);
  free(m->content);
  free(m->metadata);
  return -1;
}

static int post_message(worker_t *w, h2o_req_t *req, int64_t conversation) {
  new_message_t m = {0};
  if (message_from_json(req, &m) != 0)
    return 0;
  m.row.conversation_id = conversation;
  call_t *c = call_begin(w, req, sizeof m);
  if (c == NULL) {
    free(m.role);
    free(m.content);
    free(m.metadata);
    return 0;
  }
  new_message_t *s = call_state(c);
  *s = m;
  int rc = orm_insert_async(pool_of(w), message_model(), &s->row, on_created, c, NULL);
  if (rc != 0) {
    free(s->role);
    free(s->content);
    free(s->metadata);
    return start_failed(c, rc);
  }
  return 0;
}

/* ---- GET /users/:id/conversations?after=&limit= ------------------------------------------ */

static void on_page(orm_future_t *f, void *data) {
  call_t *c = data;
  h2o_req_t *req = call_req(c);
  if (call_note(c, f) != 0) {
    reply_failed(c);
  } else if (req != NULL) {
    const orm_rows_t *rows = orm_future_value(f);
    size_t *limit = call_state(c);
    size_t n = orm_rows_count(rows);
    const conversation_t *conv = orm_rows_array(rows);
    json_t *items = json_array();
    for (size_t i = 0; i < n && items != NULL; i++)
      json_array_append_new(items, row_json(conversation_model(), &conv[i]));
    json_t *j = json_object();
    json_object_set_new(j, "items", items);
    /* A full page may have a next one. */
    json_object_set_new(j, "next_after",
                        n == *limit ? json_integer(conv[n - 1].id) : json_null());
    reply_json(req, 200, j);
  }
  call_end(c);
}

static int list_conversations(worker_t *w, h2o_req_t *req, int64_t user, h2o_iovec_t query) {
  h2o_iovec_t after_s = query_param(query, "after"), limit_s = query_param(query, "limit");
  int64_t after = 0, limit = PAGE_DEFAULT;
  if (after_s.base != NULL && (after = parse_id(after_s)) < 0) {
    reply_error(req, 400, "bad_request", "after must be a positive integer", "after");
    return 0;
  }
  if (limit_s.base != NULL && ((limit = parse_id(limit_s)) < 1 || limit > PAGE_MAX)) {
    reply_error(req, 400, "bad_request", "limit must be within 1..100", "limit");
    return 0;
  }
  orm_query_t *q = NULL;
  int rc = orm_query_new(&q, conversation_model());
  if (rc == 0) {
    orm_query_where(q, "user_id", ORM_OP_EQ, ORM_INT8(user));
    orm_query_order_by(q, "id", ORM_ASC);
    if (after > 0)
      orm_query_after(q, &ORM_INT8(after), 1);
    orm_query_limit(q, limit);
    rc = orm_query_error(q);
  }
  if (rc != 0) {
    orm_query_free(q);
    reply_error(req, 500, "internal", orm_strerror(rc), NULL);
    return 0;
  }
  call_t *c = call_begin(w, req, sizeof(size_t));
  if (c != NULL) {
    *(size_t *)call_state(c) = (size_t)limit;
    rc = orm_find_all_async(pool_of(w), NULL, q, on_page, c, NULL);
    if (rc != 0)
      start_failed(c, rc);
  }
  orm_query_free(q);
  return 0;
}

/* ---- /health, /metrics ------------------------------------------------------------------- */

static void health(worker_t *w, h2o_req_t *req) {
  orm_pool_stats_t st;
  orm_pool_stats(pool_of(w), &st);
  unsigned up = st.conns_idle + st.conns_busy + st.conns_in_tx;
  json_t *j = json_pack("{s:s, s:i, s:{s:i, s:i, s:i, s:i, s:i}, s:i, s:i}",
                        "status", up > 0 ? "ok" : "unavailable", "thread", (json_int_t)w->id,
                        "connections", "up", (json_int_t)up, "idle",
                        (json_int_t)st.conns_idle, "busy", (json_int_t)st.conns_busy,
                        "connecting", (json_int_t)st.conns_connecting, "broken",
                        (json_int_t)st.conns_broken, "queued", (json_int_t)st.queued,
                        "in_flight", (json_int_t)st.in_flight);
  reply_json(req, up > 0 ? 200 : 503, j);
}

static void metrics(worker_t *w, h2o_req_t *req) {
  char labels[32];
  snprintf(labels, sizeof labels, "thread=\"%u\"", w->id);
  int n = orm_pool_metrics(pool_of(w), labels, NULL, 0);
  char *buf = n > 0 ? h2o_mem_alloc_pool(&req->pool, (size_t)n + 1) : NULL;
  if (buf == NULL || orm_pool_metrics(pool_of(w), labels, buf, (size_t)n + 1) != n) {
    reply_error(req, 500, "internal", "metrics", NULL);
    return;
  }
  reply(req, 200, "text/plain; version=0.0.4; charset=utf-8", buf, (size_t)n);
}

/* ---- routing ------------------------------------------------------------------------------- */

int api_route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query) {
  h2o_iovec_t id;
  int get = method_is(req, "GET") || method_is(req, "HEAD");
  if (h2o_memis(path.base, path.len, H2O_STRLIT("/health"))) {
    health(w, req);
  } else if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
    metrics(w, req);
  } else if ((id = id_between(path, "/users/", "/conversations")).base != NULL) {
    int64_t v = parse_id(id);
    if (!get)
      reply_error(req, 405, "method_not_allowed", "GET only", NULL);
    else
      return v < 0 ? bad_id(req) : list_conversations(w, req, v, query);
  } else if ((id = id_between(path, "/users/", "")).base != NULL) {
    int64_t v = parse_id(id);
    if (!get)
      reply_error(req, 405, "method_not_allowed", "GET only", NULL);
    else
      return v < 0 ? bad_id(req) : get_user(w, req, v);
  } else if ((id = id_between(path, "/conversations/", "/messages")).base != NULL) {
    int64_t v = parse_id(id);
    if (!method_is(req, "POST"))
      reply_error(req, 405, "method_not_allowed", "POST only", NULL);
    else
      return v < 0 ? bad_id(req) : post_message(w, req, v);
  } else if ((id = id_between(path, "/conversations/", "")).base != NULL) {
    int64_t v = parse_id(id);
    if (!get)
      reply_error(req, 405, "method_not_allowed", "GET only", NULL);
    else
      return v < 0 ? bad_id(req) : get_conversation(w, req, v);
  } else {
    return -1;
  }
  return 0;
}
