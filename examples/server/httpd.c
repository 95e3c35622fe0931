/* SPDX-License-Identifier: MIT */
/* The H2O side of a server (httpd.h): workers, their listeners, calls,
 * replies, shutdown. Nothing is shared between workers but the read-only
 * configuration, so nothing is locked. */
#include "httpd.h"

#include <uvorm/pool.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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

static void maybe_close_db(worker_t *w);

void call_end(call_t *c) {
  worker_t *w = c->w;
  if (c->req != NULL)
    *c->guard = NULL; /* answered: the pool's memory outlives us */
  free(c);
  w->inflight--;
  if (w->stopping)
    maybe_close_db(w);
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

unsigned option_number(const char *s, const char *what, unsigned max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s || v > max || s[0] == '-') {
    fprintf(stderr, "server: %s: not a number within 0..%u: %s\n", what, max, s);
    exit(2);
  }
  return (unsigned)v;
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
  if (w->httpd->route(w, req, path, query) == 0)
    return 0;
  reply_error(req, 404, "not_found", "no such resource", NULL);
  return 0;
}

void httpd_init(httpd_t *h) {
  h2o_config_init(&h->h2o);
  h->h2o.server_name = h2o_iovec_init(H2O_STRLIT("uvorm"));
  h->h2o.max_request_entity_size = 64 * 1024;
  h2o_hostconf_t *host =
      h2o_config_register_host(&h->h2o, h2o_iovec_init(H2O_STRLIT("default")), 65535);
  h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
  h2o_handler_t *handler = h2o_create_handler(path, sizeof *handler);
  handler->on_req = on_req;
}

/* ---- shutting down ----------------------------------------------------------
 * SIGINT/SIGTERM reach each worker as `stop`: it closes its listener and
 * asks H2O to end each connection after its next answer; once no request
 * waits on the database it closes its database client; once that is
 * closed and the connections are gone
 * it disposes of its H2O context, and the loop ends. Connections still
 * idle DRAIN_MS after the stop are left to the process's exit. */
#define DRAIN_MS 2000

static void finish(worker_t *w) {
  if (w->disposed || !w->db_closed || w->conns_open > 0)
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

/* A connection accepted (here or by the accepting worker) becomes H2O's. */
static void adopt(worker_t *w, uv_tcp_t *conn) {
  uv_tcp_nodelay(conn, 1);
  w->conns_open++;
  h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed);
  h2o_accept(&w->accept, sock);
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
  adopt(w, conn);
}

/* ---- one accepting worker (--accept-one) -----------------------------------------
 * Worker 0 alone polls the listening socket, accepts, and hands each
 * connection's descriptor round-robin to a worker through its inbox (a
 * uvorm mailbox); the alternative to every worker accepting on its own
 * SO_REUSEPORT socket. */
typedef struct {
  worker_t *w;
  int fd;
} handoff_t;

static void adopt_fd(worker_t *w, int fd) {
  uv_tcp_t *conn = malloc(sizeof *conn);
  if (conn == NULL || w->stopping) {
    free(conn);
    close(fd);
    return;
  }
  uv_tcp_init(&w->loop, conn);
  if (uv_tcp_open(conn, fd) != 0) {
    uv_close((uv_handle_t *)conn, (uv_close_cb)free);
    return; /* closing the handle closes the descriptor */
  }
  adopt(w, conn);
}

static void on_handoff(void *data) {
  handoff_t *h = data;
  adopt_fd(h->w, h->fd);
  free(h);
}

static void on_acceptable(uv_poll_t *p, int status, int events) {
  worker_t *w = p->data;
  (void)events;
  if (status != 0)
    return;
  for (;;) {
    int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
      return; /* EAGAIN: all taken; anything else: the next wake-up */
    worker_t *to = &w->peers[w->next++ % w->npeers];
    handoff_t *h = to != w ? malloc(sizeof *h) : NULL;
    if (to == w) {
      adopt_fd(w, fd);
    } else if (h == NULL) {
      close(fd);
    } else {
      *h = (handoff_t){to, fd};
      if (orm_mailbox_post(to->inbox, on_handoff, h) != 0) {
        free(h);
        close(fd);
      }
    }
  }
}

void httpd_db_closed(worker_t *w) {
  w->db_closed = true;
  finish(w);
}

static void maybe_close_db(worker_t *w) {
  if (w->inflight == 0 && !w->db_closing) {
    w->db_closing = true;
    w->httpd->db_close(w);
  }
}

static void on_drained(uv_timer_t *t) {
  worker_t *w = t->data;
  if (!w->db_closed)
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
  if (w->inbox != NULL) { /* --accept-one: the accepting worker stops first */
    if (w->id == 0)
      for (unsigned i = 1; i < w->npeers; i++)
        uv_async_send(&w->peers[i].stop);
    orm_mailbox_close(w->inbox);
    w->inbox = NULL;
  }
  if (w->listen_fd >= 0)
    uv_close(w->httpd->accept_one ? (uv_handle_t *)&w->accept_poll
                                  : (uv_handle_t *)&w->listener,
             NULL);
  uv_close((uv_handle_t *)&w->stop, NULL);
  /* Connections still open get "Connection: close" on their next answer. */
  h2o_context_request_shutdown(&w->ctx);
  uv_timer_start(&w->drain, on_drained, DRAIN_MS, 100);
  maybe_close_db(w);
}

static int worker_init(worker_t *w) {
  httpd_t *h = w->httpd;
  int rc = uv_loop_init(&w->loop);
  if (rc != 0) {
    fprintf(stderr, "server: loop: %s\n", uv_strerror(rc));
    return -1;
  }
  w->rng = UINT64_C(0x9E3779B97F4A7C15) ^ ((uint64_t)(w->id + 1) << 32) ^ uv_hrtime();
  if (h->db_open(w) != 0)
    return -1;
  h2o_context_init(&w->ctx, &w->loop, &h->h2o);
  w->accept.ctx = &w->ctx;
  w->accept.hosts = h->h2o.hosts;
  if (h->accept_one) {
    if ((rc = orm_mailbox_open(&w->inbox, &w->loop)) != 0) {
      fprintf(stderr, "server: inbox: %s\n", orm_strerror(rc));
      return -1;
    }
    if (w->listen_fd >= 0) {
      uv_poll_init(&w->loop, &w->accept_poll, w->listen_fd);
      w->accept_poll.data = w;
      uv_poll_start(&w->accept_poll, UV_READABLE, on_acceptable);
    }
  } else {
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if ((rc = uv_tcp_open(&w->listener, w->listen_fd)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&w->listener, 4096, on_accept)) != 0) {
      fprintf(stderr, "server: listen: %s\n", uv_strerror(rc));
      return -1;
    }
  }
  uv_async_init(&w->loop, &w->stop, on_stop);
  w->stop.data = w;
  uv_timer_init(&w->loop, &w->drain);
  w->drain.data = w;
  return 0;
}

static void worker_run(void *arg) {
  worker_t *w = arg;
  uv_run(&w->loop, UV_RUN_DEFAULT);
  free(w->out.data);
  w->out.data = NULL;
  if (w->disposed) /* everything closed: the loop too */
    uv_loop_close(&w->loop);
}

/* ---- listening and running ---------------------------------------------------- */

/* A socket bound to host:*port with SO_REUSEPORT, listening; *port is set
 * to the port bound (for 0). -1 on failure, said. */
static int listen_socket(const char *host, int *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "server: --host %s is not an IPv4 address\n", host);
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
    fprintf(stderr, "server: listen on %s:%d: %s\n", host, *port, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* Workers that exited with connections still open: kept reachable. */
static worker_t *volatile leftover; /* volatile: written, never read, kept */

typedef struct {
  worker_t *workers;
  unsigned n;
  int signals;
  uv_signal_t sigint, sigterm;
} runner_t;

static void on_signal(uv_signal_t *s, int signum) {
  runner_t *r = s->data;
  (void)signum;
  if (r->signals++ == 0) {
    fprintf(stderr, "server: shutting down: finishing requests in flight\n");
    /* With one accepting worker, it stops the others once it has stopped
     * handing them connections. */
    unsigned n = r->workers[0].httpd->accept_one ? 1 : r->n;
    for (unsigned i = 0; i < n; i++)
      uv_async_send(&r->workers[i].stop);
  }
  uv_close((uv_handle_t *)&r->sigint, NULL);
  uv_close((uv_handle_t *)&r->sigterm, NULL);
}

int httpd_run(httpd_t *h) {
  runner_t r = {.n = h->threads};
  r.workers = calloc(h->threads, sizeof *r.workers);
  if (r.workers == NULL)
    return 1;
  int port = h->port, status = 0;
  for (unsigned i = 0; i < h->threads; i++) {
    worker_t *w = &r.workers[i];
    w->httpd = h;
    w->id = i;
    w->peers = r.workers;
    w->npeers = h->threads;
    w->listen_fd = -1;
    if ((i == 0 || !h->accept_one) && (w->listen_fd = listen_socket(h->host, &port)) < 0)
      return 1;
    if (worker_init(w) != 0)
      return 1;
  }
  uv_loop_t main_loop;
  uv_loop_init(&main_loop);
  uv_signal_init(&main_loop, &r.sigint);
  uv_signal_init(&main_loop, &r.sigterm);
  r.sigint.data = r.sigterm.data = &r;
  uv_signal_start(&r.sigint, on_signal, SIGINT);
  uv_signal_start(&r.sigterm, on_signal, SIGTERM);
  for (unsigned i = 0; i < h->threads; i++)
    if (uv_thread_create(&r.workers[i].thread, worker_run, &r.workers[i]) != 0)
      return 1;
  printf("listening on http://%s:%d (%u threads%s)\n", h->host, port, h->threads,
         h->banner != NULL ? h->banner : "");
  fflush(stdout);
  uv_run(&main_loop, UV_RUN_DEFAULT);
  size_t abandoned = 0;
  int all_disposed = 1;
  for (unsigned i = 0; i < h->threads; i++) {
    uv_thread_join(&r.workers[i].thread);
    if (!r.workers[i].db_closed)
      status = 1;
    abandoned += r.workers[i].abandoned;
    all_disposed &= r.workers[i].disposed;
  }
  uv_loop_close(&main_loop);
  if (abandoned > 0)
    fprintf(stderr, "server: stopped (%zu idle connections closed by the exit)\n", abandoned);
  else
    fprintf(stderr, "server: stopped\n");
  /* A worker that had to leave connections open still has them in its
   * loop: its memory goes with the process. */
  if (all_disposed) {
    free(r.workers);
    h2o_config_dispose(&h->h2o);
  } else {
    leftover = r.workers;
  }
  return status;
}
