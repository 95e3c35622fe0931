/* SPDX-License-Identifier: MIT */
/* Query events: one per statement the pool completes, to the pool's
 * on_query hook. Nothing here runs, and nothing is measured, without one
 * (the request's timestamps stay 0). */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/wire.h"
#include "pool_int.h"

/* The first keyword of `sql`, upper case, into `out`: "SELECT". */
static const char *first_keyword(const char *sql, char *out, size_t n) {
  while (*sql != '\0' && (isspace((unsigned char)*sql) || *sql == '('))
    sql++;
  size_t w = 0;
  while (w + 1 < n && isalpha((unsigned char)sql[w])) {
    out[w] = (char)toupper((unsigned char)sql[w]);
    w++;
  }
  out[w] = '\0';
  return w > 0 ? out : "UNKNOWN";
}

static void put(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void put(char *buf, size_t cap, const char *fmt, ...) {
  size_t len = strlen(buf);
  if (len + 1 >= cap)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + len, cap - len, fmt, ap);
  va_end(ap);
}

/* "$1='ada', $2=42, $3=NULL": text values quoted and cut at 32 bytes,
 * binary integers and booleans decoded, other binary values by length. */
static void render_params(const orm__request_t *req, char *buf, size_t cap) {
  buf[0] = '\0';
  for (int i = 0; i < req->nparams; i++) {
    put(buf, cap, "%s$%d=", i > 0 ? ", " : "", i + 1);
    const char *v = req->values[i];
    if (v == NULL) {
      put(buf, cap, "NULL");
      continue;
    }
    int len = req->lengths != NULL ? req->lengths[i] : 0;
    Oid type = req->types != NULL ? req->types[i] : 0;
    bool text = req->formats == NULL || req->formats[i] == 0;
    /* text, varchar, bpchar, name, unknown: their binary form is the text */
    if (text || type == 25 || type == 1043 || type == 1042 || type == 19 ||
        type == 705) {
      size_t n = text ? strlen(v) : (size_t)len;
      put(buf, cap, "'%.*s%s'", (int)(n > 32 ? 32 : n), v, n > 32 ? "..." : "");
      continue;
    }
    if (type == 20 && len == 8)
      put(buf, cap, "%" PRId64, orm__load_i64(v));
    else if (type == 23 && len == 4)
      put(buf, cap, "%" PRId32, orm__load_i32(v));
    else if (type == 21 && len == 2)
      put(buf, cap, "%d", (int)orm__load_i16(v));
    else if (type == 16 && len == 1)
      put(buf, cap, "%s", v[0] ? "true" : "false");
    else
      put(buf, cap, "<%d bytes>", len);
  }
  size_t len = strlen(buf);
  if (len + 1 >= cap && cap > 4)
    memcpy(buf + cap - 4, "...", 4);
}

void orm__req_event(orm__request_t *req, int status) {
  orm_pool_t *pool = req->pool;
  uint64_t now = uv_hrtime();
  char keyword[24], params[256];
  const char *sql = req->sql != NULL ? req->sql : "";
  const char *state = req->future.error.sqlstate;
  uint64_t start = req->t_start != 0 ? req->t_start : now;
  uint64_t sent = req->t_sent != 0 ? req->t_sent : now;
  uint64_t total = now - start;
  const orm__server_t *sv = req->server != 0 ? &pool->servers[req->server - 1] : NULL;
  if (pool->cfg.query_params)
    render_params(req, params, sizeof params);
  orm_query_event_t ev = {
      .system = "postgresql",
      .query_text = sql,
      .operation = req->op != NULL ? req->op
                                   : first_keyword(sql, keyword, sizeof keyword),
      .collection = req->table,
      .namespace_name = sv != NULL && sv->db[0] != '\0' ? sv->db : NULL,
      .status_code = status != 0 && state != NULL && state[0] != '\0' ? state : NULL,
      .status = status,
      .rows = status == 0 ? req->rows : -1,
      .server_address = sv != NULL && sv->host[0] != '\0' ? sv->host : NULL,
      .server_port = sv != NULL ? sv->port : 0,
      .backend_pid = req->backend_pid,
      .queued_ns = sent >= start ? sent - start : 0,
      .server_ns = req->t_answered != 0 && req->t_sent != 0 &&
                           req->t_answered >= req->t_sent
                       ? req->t_answered - req->t_sent
                       : 0,
      .total_ns = total,
      .replays = req->replays,
      .tx = req->tx,
      .slow = pool->cfg.slow_query_ms != 0 &&
              total >= pool->cfg.slow_query_ms * UINT64_C(1000000),
      .params = pool->cfg.query_params ? params : NULL,
      .internal = req->internal,
  };
  pool->cfg.on_query(pool, &ev, pool->cfg.data);
  if (ev.slow && pool->cfg.explain_slow)
    orm__explain_maybe(req, &ev, first_keyword(sql, keyword, sizeof keyword));
}

/* The index + 1 of the server `pg` is connected to in the pool's list,
 * added when new. Past ORM__SERVERS distinct ones, the last slot is reused. */
static unsigned char server_of(orm_pool_t *pool, PGconn *pg) {
  const char *host = PQhost(pg), *port = PQport(pg), *db = PQdb(pg);
  host = host != NULL ? host : "";
  db = db != NULL ? db : "";
  int p = port != NULL ? atoi(port) : 0;
  for (unsigned i = 0; i < pool->nservers; i++) {
    const orm__server_t *s = &pool->servers[i];
    if (s->port == p && strcmp(s->host, host) == 0 && strcmp(s->db, db) == 0)
      return (unsigned char)(i + 1);
  }
  unsigned i = pool->nservers < ORM__SERVERS ? pool->nservers++ : ORM__SERVERS - 1;
  orm__server_t *s = &pool->servers[i];
  snprintf(s->host, sizeof s->host, "%s", host);
  snprintf(s->db, sizeof s->db, "%s", db);
  s->port = p;
  return (unsigned char)(i + 1);
}

void orm__req_sent_event(orm__request_t *req, PGconn *pg) {
  req->t_sent = uv_hrtime();
  req->backend_pid = PQbackendPID(pg);
  req->server = server_of(req->pool, pg);
}

void orm__req_answered_event(orm__request_t *req) {
  req->t_answered = uv_hrtime();
  PGresult *res = req->result;
  if (res == NULL)
    return;
  if (PQresultStatus(res) == PGRES_TUPLES_OK) {
    req->rows = PQntuples(res);
  } else if (PQresultStatus(res) == PGRES_COMMAND_OK) {
    const char *n = PQcmdTuples(res);
    req->rows = n != NULL && n[0] != '\0' ? atoll(n) : -1;
  }
}

/* ---- the runtime's log ------------------------------------------------------ */

void orm__conn_where(const orm__conn_t *conn, orm__where_t *w) {
  memset(w, 0, sizeof *w);
  PGconn *pg = conn != NULL ? conn->pg : NULL;
  if (pg == NULL)
    return;
  const char *host = PQhost(pg), *port = PQport(pg);
  snprintf(w->host, sizeof w->host, "%s", host != NULL ? host : "");
  w->port = port != NULL ? atoi(port) : 0;
  w->pid = conn->backend_pid; /* also once the connection broke */
}

void orm__pool_log(orm_pool_t *pool, const orm__where_t *where,
                   orm_log_level_t level, const char *event, unsigned attempt,
                   uint64_t retry_in_ms, const char *fmt, ...) {
  if (pool->cfg.on_log == NULL || level < pool->cfg.log_level)
    return;
  char message[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  /* libpq's messages end in newlines and may run over two lines. */
  for (char *c = message; *c; c++)
    if (*c == '\n' || *c == '\t')
      *c = ' ';
  size_t n = strlen(message);
  while (n > 0 && message[n - 1] == ' ')
    message[--n] = '\0';
  orm_log_record_t rec = {
      .level = level,
      .event = event,
      .message = message,
      .backend_pid = where != NULL ? where->pid : 0,
      .server_address = where != NULL && where->host[0] != '\0' ? where->host : NULL,
      .server_port = where != NULL ? where->port : 0,
      .attempt = attempt,
      .retry_in_ms = retry_in_ms,
  };
  pool->cfg.on_log(pool, &rec, pool->cfg.data);
}
