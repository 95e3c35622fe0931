/* SPDX-License-Identifier: MIT */
/* The H2O side of a server, with no database in it: worker threads, each a
 * libuv loop with its own listening socket on a shared port (SO_REUSEPORT:
 * the kernel spreads new connections), its own H2O context and whatever
 * database client the application opens on that loop; requests waiting on
 * the database (call_t); replies; graceful shutdown on SIGINT/SIGTERM.
 *
 * The example server (uvorm) and its raw twin in bench/ (libpq by hand)
 * are both built on it, so the two differ only in their data layer. */
#ifndef UVORM_EXAMPLE_HTTPD_H
#define UVORM_EXAMPLE_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <h2o.h>
#include <jansson.h>
#include <uv.h>

#include "template.h"

typedef struct worker_s worker_t;

typedef struct httpd_s {
  const char *host; /* IPv4 address to listen on */
  int port;         /* 0: a free one */
  unsigned threads;
  /* Answers `req` (now or later), or returns -1: not found (404). */
  int (*route)(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query);
  /* Opens the worker's database client on w->loop, into w->db: 0 or -1
   * (after saying why). Runs before the worker's thread starts. */
  int (*db_open)(worker_t *w);
  /* Shutting down, no call waiting: close w->db, then (later, on the
   * loop) call httpd_db_closed(w). */
  void (*db_close)(worker_t *w);
  bool accept_one;    /* one worker accepts and hands connections over
                         (else each accepts on its own SO_REUSEPORT socket) */
  const char *banner; /* printed after the address: " (uvorm, ...)" */
  void *data;         /* the application's */
  h2o_globalconf_t h2o;
} httpd_t;

struct worker_s {
  httpd_t *httpd;
  unsigned id;
  void *db; /* the application's database client for this loop */
  uv_loop_t loop;
  uv_thread_t thread;
  int listen_fd; /* -1: none (--accept-one, not worker 0) */
  uv_tcp_t listener;
  uv_poll_t accept_poll;   /* --accept-one: worker 0's listening socket */
  struct orm_mailbox_s *inbox; /* --accept-one: connections handed over */
  worker_t *peers;         /* every worker, this one included */
  unsigned npeers, next;
  uv_async_t stop;  /* main thread -> this loop: shut down */
  uv_timer_t drain; /* shutting down: how long idle clients may stay */
  h2o_context_t ctx;
  h2o_accept_ctx_t accept;
  uint64_t rng;
  size_t inflight;   /* calls waiting on the database */
  size_t conns_open; /* HTTP connections */
  size_t abandoned;  /* idle connections left open at the exit */
  bool stopping, db_closing, db_closed, disposed;
  tpl_buf_t out; /* a page being rendered */
};

/* Fills the H2O configuration (server name, 64 KiB request bodies) and
 * registers the one handler that calls `route`. */
void httpd_init(httpd_t *h);
/* Listens, starts the workers, prints "listening on http://HOST:PORT...",
 * runs until SIGINT/SIGTERM and a graceful stop; frees what it made. The
 * exit status: 0, or 1 if something failed. */
int httpd_run(httpd_t *h);
void httpd_db_closed(worker_t *w);

/* ---- a request waiting on the database ------------------------------------
 * The H2O request may go away first (the client hung up): call_req() then
 * says NULL and the answer is dropped. Every call_begin() has one
 * call_end(). */
typedef struct call_s {
  worker_t *w;
  h2o_req_t *req;        /* NULL once the client is gone */
  struct call_s **guard; /* in the request's memory pool */
  int failed;            /* the first error's code, 0 for none */
  char sqlstate[6];
  char message[200];
  char field[64];
  /* the handler's own state follows */
} call_t;

/* A call with `extra` zeroed bytes of state after it (call_state()). NULL
 * when out of memory (a 503 is then sent). */
call_t *call_begin(worker_t *w, h2o_req_t *req, size_t extra);
static inline void *call_state(call_t *c) { return c + 1; }
/* The request, or NULL if the client went away. */
h2o_req_t *call_req(const call_t *c);
void call_end(call_t *c);

/* ---- replies ------------------------------------------------------------------- */
void reply(h2o_req_t *req, int status, const char *content_type,
           const char *body, size_t len);
/* Steals `body`. */
void reply_json(h2o_req_t *req, int status, json_t *body);
/* {"error": code, "message": message[, "field": field]} */
void reply_error(h2o_req_t *req, int status, const char *code,
                 const char *message, const char *field);

/* ---- helpers ------------------------------------------------------------------- */
/* A random integer in 1..n (the worker's own generator). */
uint32_t worker_random(worker_t *w, uint32_t n);
/* The value of `name` in a query string (its bytes, not decoded), or
 * {NULL, 0} if absent. */
h2o_iovec_t query_param(h2o_iovec_t query, const char *name);
/* A positive int64 of decimal digits only; -1 otherwise. */
int64_t parse_id(h2o_iovec_t s);
/* A number within 0..max for an option, or exit(2) after saying why. */
unsigned option_number(const char *s, const char *what, unsigned max);

#endif /* UVORM_EXAMPLE_HTTPD_H */
