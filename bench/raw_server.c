/* SPDX-License-Identifier: MIT */
/* raw_server: the example server's raw twin, the baseline bench/server.sh
 * measures it against. The same H2O workers (examples/server/httpd.c: a
 * loop, a SO_REUSEPORT socket and an H2O context per thread) and the same
 * TechEmpower pages (tfb_http.c: the JSON, the clamping, the fortunes
 * template), but the database reached directly through libpq, the way the
 * fastest TechEmpower C entries do it: per thread, --conns non-blocking
 * connections in pipeline mode, prepared statements, binary parameters and
 * results decoded by hand, each statement sent to the connection with the
 * fewest waiting, a Sync after each statement (--sync-each) or one per
 * connection per loop turn.
 *
 *   raw_server [--database URL] [--host ADDR] [--port N] [--threads N]
 *              [--conns N] [--sync-each] [--accept-one]
 *
 * It serves /plaintext, /json, /db, /queries, /fortunes and /updates on the
 * tables the example server's migrations create (run that first). It is a
 * measuring stick, not a service: a connection that fails fails what it
 * carries and stays failed. */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "httpd.h"
#include "tfb.h"
#include "tfb_http.h"

typedef void (*raw_cb)(PGresult *res, void *data); /* res NULL: the connection failed */

typedef struct {
  raw_cb cb; /* NULL: a Sync */
  void *data;
  int answered; /* its result is in; the NULL after it is next */
} item_t;

typedef struct rconn_s {
  PGconn *pg;
  uv_poll_t poll;
  int events;
  item_t *q; /* a ring of what awaits an answer, in order */
  size_t head, len, cap;
  size_t unsynced;
  int dead;
} rconn_t;

typedef struct {
  worker_t *w;
  rconn_t *conns;
  unsigned n;
  uv_check_t check; /* end of a loop turn: Sync and flush */
  int closing;
} rdb_t;

static const char *conninfo = "";
static unsigned nconns = 2;
static int sync_each;
static tpl_t *fortunes_tpl;

/* ---- the pipeline ------------------------------------------------------------------ */

static void conn_fail(rconn_t *c);

static int push(rconn_t *c, raw_cb cb, void *data) {
  if (c->len == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 256;
    item_t *q = malloc(cap * sizeof *q);
    if (q == NULL)
      return -1;
    for (size_t i = 0; i < c->len; i++)
      q[i] = c->q[(c->head + i) % c->cap];
    free(c->q);
    c->q = q;
    c->head = 0;
    c->cap = cap;
  }
  c->q[(c->head + c->len++) % c->cap] = (item_t){cb, data, 0};
  return 0;
}

static void on_io(uv_poll_t *p, int status, int events);

static void flush(rconn_t *c) {
  int rc = PQflush(c->pg);
  if (rc < 0)
    conn_fail(c);
  else if (rc == 1 && c->events != (UV_READABLE | UV_WRITABLE)) {
    c->events = UV_READABLE | UV_WRITABLE;
    uv_poll_start(&c->poll, c->events, on_io);
  } else if (rc == 0 && c->events != UV_READABLE) {
    c->events = UV_READABLE;
    uv_poll_start(&c->poll, c->events, on_io);
  }
}

static void sync_conn(rconn_t *c) {
  if (c->unsynced == 0)
    return;
  if (PQpipelineSync(c->pg) != 1 || push(c, NULL, NULL) != 0) {
    conn_fail(c);
    return;
  }
  c->unsynced = 0;
}

/* Reads every answer that is in. */
static void drain(rconn_t *c) {
  while (c->len > 0 && !PQisBusy(c->pg)) {
    item_t *it = &c->q[c->head];
    PGresult *res = PQgetResult(c->pg);
    if (it->cb == NULL) { /* a Sync */
      PQclear(res);
      c->head = (c->head + 1) % c->cap;
      c->len--;
    } else if (!it->answered) {
      it->answered = 1;
      it->cb(res, it->data);
      PQclear(res);
    } else { /* the NULL that ends a statement's results */
      c->head = (c->head + 1) % c->cap;
      c->len--;
    }
  }
}

static void on_io(uv_poll_t *p, int status, int events) {
  rconn_t *c = p->data;
  if (status < 0) {
    conn_fail(c);
    return;
  }
  if (events & UV_WRITABLE)
    flush(c);
  if ((events & UV_READABLE) && PQconsumeInput(c->pg) != 1) {
    conn_fail(c);
    return;
  }
  drain(c);
}

static void conn_fail(rconn_t *c) {
  if (c->dead)
    return;
  c->dead = 1;
  fprintf(stderr, "raw_server: connection failed: %s", PQerrorMessage(c->pg));
  uv_poll_stop(&c->poll);
  while (c->len > 0) {
    item_t it = c->q[c->head];
    c->head = (c->head + 1) % c->cap;
    c->len--;
    if (it.cb != NULL && !it.answered)
      it.cb(NULL, it.data);
  }
}

static void on_check(uv_check_t *h) {
  rdb_t *db = h->data;
  for (unsigned i = 0; i < db->n; i++) {
    rconn_t *c = &db->conns[i];
    if (c->dead)
      continue;
    sync_conn(c);
    if (!c->dead)
      flush(c);
  }
}

/* Sends prepared statement `name` with int4 parameters; `cb` runs with its
 * result. A write ends its segment (a Sync after it): writes of different
 * requests sharing one implicit transaction would hold each other's row
 * locks, and wait on each other in opposite orders until the deadlock
 * detector breaks the tie (uvorm gives each write a segment of its own, as
 * here). 0, or -1 (no connection). */
static int send_int4(worker_t *w, const char *name, const int32_t *args, int n, int write,
                     raw_cb cb, void *data) {
  rdb_t *db = w->db;
  rconn_t *best = NULL;
  for (unsigned i = 0; i < db->n; i++)
    if (!db->conns[i].dead && (best == NULL || db->conns[i].len < best->len))
      best = &db->conns[i];
  if (best == NULL)
    return -1;
  uint32_t be[2];
  const char *values[2];
  int lengths[2] = {4, 4}, formats[2] = {1, 1};
  for (int i = 0; i < n; i++) {
    be[i] = htonl((uint32_t)args[i]);
    values[i] = (const char *)&be[i];
  }
  if (PQsendQueryPrepared(best->pg, name, n, values, lengths, formats, 1) != 1 ||
      push(best, cb, data) != 0) {
    conn_fail(best);
    return -1;
  }
  best->unsynced++;
  if (sync_each || write)
    sync_conn(best);
  return 0;
}

static int32_t int4_at(const PGresult *res, int row, int col) {
  uint32_t v;
  memcpy(&v, PQgetvalue(res, row, col), 4);
  return (int32_t)ntohl(v);
}

/* ---- opening and closing ------------------------------------------------------------ */

static int db_open(worker_t *w) {
  rdb_t *db = calloc(1, sizeof *db);
  db->conns = calloc(nconns, sizeof *db->conns);
  db->n = nconns;
  db->w = w;
  static const struct {
    const char *name, *sql;
    int n;
  } stmts[] = {{"world", "SELECT id, randomnumber FROM world WHERE id = $1", 1},
               {"fortunes", "SELECT id, message FROM fortune", 0},
               {"update", "UPDATE world SET randomnumber = $2 WHERE id = $1", 2}};
  for (unsigned i = 0; i < nconns; i++) {
    rconn_t *c = &db->conns[i];
    c->pg = PQconnectdb(conninfo);
    if (PQstatus(c->pg) != CONNECTION_OK) {
      fprintf(stderr, "raw_server: connect: %s", PQerrorMessage(c->pg));
      return -1;
    }
    for (size_t k = 0; k < sizeof stmts / sizeof stmts[0]; k++) {
      Oid types[2] = {23, 23};
      PGresult *r = PQprepare(c->pg, stmts[k].name, stmts[k].sql, stmts[k].n, types);
      if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "raw_server: prepare %s: %s", stmts[k].name, PQerrorMessage(c->pg));
        PQclear(r);
        return -1;
      }
      PQclear(r);
    }
    if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
      fprintf(stderr, "raw_server: pipeline mode: %s", PQerrorMessage(c->pg));
      return -1;
    }
    uv_poll_init(&w->loop, &c->poll, PQsocket(c->pg));
    c->poll.data = c;
    c->events = UV_READABLE;
    uv_poll_start(&c->poll, UV_READABLE, on_io);
  }
  uv_check_init(&w->loop, &db->check);
  db->check.data = db;
  uv_check_start(&db->check, on_check);
  w->db = db;
  return 0;
}

static void on_closed(uv_handle_t *h) {
  rdb_t *db = h->data;
  worker_t *w = db->w;
  if (--db->closing > 0)
    return;
  for (unsigned i = 0; i < db->n; i++) {
    PQfinish(db->conns[i].pg);
    free(db->conns[i].q);
  }
  free(db->conns);
  free(db);
  w->db = NULL;
  httpd_db_closed(w);
}

static void db_close(worker_t *w) {
  rdb_t *db = w->db;
  db->closing = (int)db->n + 1;
  for (unsigned i = 0; i < db->n; i++) {
    db->conns[i].poll.data = db;
    uv_close((uv_handle_t *)&db->conns[i].poll, on_closed);
  }
  uv_close((uv_handle_t *)&db->check, on_closed);
}

/* ---- the endpoints ---------------------------------------------------------------------- */

typedef struct {
  unsigned n, read, written;
  int single, update;
  int32_t ids[TFB_MAX_QUERIES], numbers[TFB_MAX_QUERIES];
} worlds_t;

static void worlds_reply(call_t *c) {
  worlds_t *s = call_state(c);
  h2o_req_t *req = call_req(c);
  if (req != NULL && c->failed)
    reply_error(req, 503, "unavailable", "the database failed", NULL);
  else if (req != NULL && s->single)
    reply_json(req, 200, tfb_world_json(s->ids[0], s->numbers[0]));
  else if (req != NULL) {
    json_t *a = json_array();
    for (unsigned i = 0; i < s->n; i++)
      json_array_append_new(a, tfb_world_json(s->ids[i], s->numbers[i]));
    reply_json(req, 200, a);
  }
  call_end(c);
}

static void on_written(PGresult *res, void *data) {
  call_t *c = data;
  worlds_t *s = call_state(c);
  if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
    c->failed = 1;
  if (++s->written == s->n)
    worlds_reply(c);
}

static void on_read(PGresult *res, void *data) {
  call_t *c = data;
  worlds_t *s = call_state(c);
  unsigned i = s->read++;
  if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
    c->failed = 1;
  } else {
    s->ids[i] = int4_at(res, 0, 0);
    s->numbers[i] = int4_at(res, 0, 1);
  }
  if (s->read < s->n)
    return;
  if (!s->update || c->failed || call_req(c) == NULL) {
    worlds_reply(c);
    return;
  }
  for (unsigned k = 0; k < s->n; k++) {
    s->numbers[k] = (int32_t)worker_random(c->w, WORLD_ROWS);
    int32_t args[2] = {s->ids[k], s->numbers[k]};
    if (send_int4(c->w, "update", args, 2, 1, on_written, c) != 0) {
      c->failed = 1;
      s->written += s->n - k;
      if (s->written == s->n)
        worlds_reply(c);
      return;
    }
  }
}

static void worlds(worker_t *w, h2o_req_t *req, unsigned n, int single, int update) {
  call_t *c = call_begin(w, req, sizeof(worlds_t));
  if (c == NULL)
    return;
  worlds_t *s = call_state(c);
  s->n = n;
  s->single = single;
  s->update = update;
  for (unsigned i = 0; i < n; i++) {
    int32_t id = (int32_t)worker_random(w, WORLD_ROWS);
    if (send_int4(w, "world", &id, 1, 0, on_read, c) != 0) {
      c->failed = 1;
      s->read += n - i;
      if (s->read == n)
        worlds_reply(c);
      return;
    }
  }
}

static void on_fortunes(PGresult *res, void *data) {
  call_t *c = data;
  h2o_req_t *req = call_req(c);
  if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
    if (req != NULL)
      reply_error(req, 503, "unavailable", "the database failed", NULL);
  } else if (req != NULL) {
    size_t n = (size_t)PQntuples(res);
    tfb_fortune_t *items = h2o_mem_alloc_pool(&req->pool, (n + 1) * sizeof *items);
    for (size_t i = 0; i < n; i++)
      items[i] = (tfb_fortune_t){int4_at(res, (int)i, 0), PQgetvalue(res, (int)i, 1)};
    tfb_reply_fortunes(c->w, req, fortunes_tpl, items, n); /* before the result goes */
  }
  call_end(c);
}

static int is(h2o_iovec_t path, const char *s) {
  return h2o_memis(path.base, path.len, s, strlen(s));
}

static int route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query) {
  if (tfb_route_static(req, path) == 0)
    return 0;
  if (is(path, "/db")) {
    worlds(w, req, 1, 1, 0);
  } else if (is(path, "/queries")) {
    worlds(w, req, tfb_queries_count(query), 0, 0);
  } else if (is(path, "/updates")) {
    worlds(w, req, tfb_queries_count(query), 0, 1);
  } else if (is(path, "/fortunes")) {
    call_t *c = call_begin(w, req, 0);
    if (c != NULL && send_int4(w, "fortunes", NULL, 0, 0, on_fortunes, c) != 0) {
      reply_error(req, 503, "unavailable", "no database connection", NULL);
      call_end(c);
    }
  } else {
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  enum { OPT_DATABASE = 1, OPT_HOST, OPT_PORT, OPT_THREADS, OPT_CONNS, OPT_SYNC, OPT_ACCEPT1 };
  static const struct option opts[] = {{"database", required_argument, NULL, OPT_DATABASE},
                                       {"host", required_argument, NULL, OPT_HOST},
                                       {"port", required_argument, NULL, OPT_PORT},
                                       {"threads", required_argument, NULL, OPT_THREADS},
                                       {"conns", required_argument, NULL, OPT_CONNS},
                                       {"sync-each", no_argument, NULL, OPT_SYNC},
                                       {"accept-one", no_argument, NULL, OPT_ACCEPT1},
                                       {NULL, 0, NULL, 0}};
  static httpd_t http = {.host = "127.0.0.1", .port = 8081};
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  http.threads = cores > 0 ? (unsigned)cores : 1;
  int c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DATABASE: conninfo = optarg; break;
    case OPT_HOST: http.host = optarg; break;
    case OPT_PORT: http.port = (int)option_number(optarg, "--port", 65535); break;
    case OPT_THREADS: http.threads = option_number(optarg, "--threads", 256); break;
    case OPT_CONNS: nconns = option_number(optarg, "--conns", 1000); break;
    case OPT_SYNC: sync_each = 1; break;
    case OPT_ACCEPT1: http.accept_one = true; break;
    default:
      fprintf(stderr, "usage: raw_server [--database URL] [--host ADDR] [--port N] "
                      "[--threads N] [--conns N] [--sync-each] [--accept-one]\n");
      return 2;
    }
  }
  if (optind != argc || http.threads == 0 || nconns == 0)
    return 2;
  if (strcmp(conninfo, "") == 0 && getenv("DATABASE_URL") != NULL)
    conninfo = getenv("DATABASE_URL");
  char err[256], banner[96];
  if ((fortunes_tpl = tfb_fortunes_template(err, sizeof err)) == NULL) {
    fprintf(stderr, "raw_server: %s\n", err);
    return 1;
  }
  snprintf(banner, sizeof banner, ", raw libpq, %u connections each%s", nconns,
           sync_each ? ", a Sync per statement" : "");
  http.banner = banner;
  http.route = route;
  http.db_open = db_open;
  http.db_close = db_close;
  httpd_init(&http);
  int status = httpd_run(&http);
  tpl_free(fortunes_tpl);
  return status;
}
