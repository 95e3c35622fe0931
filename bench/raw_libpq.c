/* bench_raw: the baseline. Plain libpq on one libuv loop, no ORM: P
 * non-blocking connections, C requests in flight spread evenly over them,
 * each request `SELECT $1::int4` through a prepared statement with a binary
 * parameter and a binary result, checked against the parameter.
 *
 *   bench_raw [--mode=nopipe|sync|batch] [-P N] [-C N] [--duration S]
 *             [--warmup S] [--conninfo STR] [--csv FILE]
 *
 * Modes:
 *   nopipe  one query at a time per connection; the other requests wait in
 *           the connection's client-side queue.
 *   sync    pipeline mode, a PQpipelineSync after every query (libpq 15
 *           flushes the socket on every sync: one write per query).
 *   batch   pipeline mode; the queries issued during one poll callback of a
 *           connection share one PQpipelineSync (one write per batch).
 *
 * A request's latency runs from when it is issued (when its predecessor's
 * result was seen, or at the start) to when its result is seen, so in nopipe
 * mode it includes the time spent in the client queue.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>

#include "harness.h"

#define DRIVER "raw"
#define STMT_NAME "bench_raw_select"
#define STMT_SQL "SELECT $1::int4"
#define INT4_OID 23
/* How long the in-flight requests get to finish after the measured phase. */
#define DRAIN_TIMEOUT_MS 10000

typedef enum { MODE_NOPIPE, MODE_SYNC, MODE_BATCH } send_mode_t;

static const char *const mode_names[] = {"nopipe", "sync", "batch"};

struct request {
  struct request *next; /* in the connection's waiting list */
  uint64_t issued_ns;
  uint32_t value;
  uint32_t value_net; /* the parameter as sent: value in network order */
};

/* What the connection has handed to libpq and not yet seen the end of, in
 * the order the server answers: a prepared statement or a query ends with
 * its NULL from PQgetResult, a sync with its PGRES_PIPELINE_SYNC (which libpq
 * does not follow with a NULL). */
typedef enum { EXPECT_PREPARE, EXPECT_QUERY, EXPECT_SYNC } expect_kind_t;

struct expect {
  expect_kind_t kind;
  int got_result;
  struct request *req; /* EXPECT_QUERY only */
};

typedef enum {
  CONN_CONNECTING, /* PQconnectPoll steps */
  CONN_PREPARING,  /* PQsendPrepare sent, answer not yet seen */
  CONN_READY,      /* sending queries */
  CONN_CLOSING,    /* poll handle closing; PQfinish in its close callback */
  CONN_CLOSED
} conn_state_t;

struct driver;

struct conn {
  struct driver *drv;
  int index;
  conn_state_t state;
  PGconn *pg;
  /* On the heap: the socket can change during PQconnectPoll, and a
   * replaced handle lives on until its close callback. */
  uv_poll_t *poll;
  int fd;
  int events; /* armed on poll */

  struct request *reqs; /* this connection's share of the C requests */
  int nreqs;
  struct request *wait_head, *wait_tail; /* issued, not yet sent */

  struct expect *expect; /* ring */
  unsigned expect_cap, expect_first, expect_len;
  unsigned unsynced; /* queries sent since the last PQpipelineSync */
};

struct driver {
  uv_loop_t loop;
  bench_opts_t opts;
  bench_run_t run;
  send_mode_t mode;
  struct conn *conns;
  int nconns;
  int nready;
  int nopen; /* connections not yet CONN_CLOSED */
  int failed;
  uint32_t next_value;
  /* Starts the run one loop turn after the last connection is ready, then
   * bounds the drain. */
  uv_timer_t timer;
};

static void on_poll(uv_poll_t *handle, int status, int events);
static void on_timer(uv_timer_t *timer);
static void conn_close(struct conn *c);

static void close_timer(struct driver *d) {
  if (!uv_is_closing((uv_handle_t *)&d->timer))
    uv_close((uv_handle_t *)&d->timer, NULL);
}

/* The loop ends when the last connection and the timer are closed. */
static void conn_closed(struct conn *c) {
  struct driver *d = c->drv;
  c->pg = NULL;
  c->state = CONN_CLOSED;
  if (--d->nopen == 0 && d->run.phase == BENCH_DONE)
    close_timer(d);
}

BENCH_PRINTF(2, 3)
static void fatal(struct driver *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bench_vwarn(DRIVER, fmt, ap);
  va_end(ap);
  d->failed = 1;
  bench_run_stop(&d->run);
  for (int i = 0; i < d->nconns; i++)
    conn_close(&d->conns[i]);
  close_timer(d);
}

/* ---- the expect ring ------------------------------------------------------ */

static struct expect *expect_front(struct conn *c) {
  return c->expect_len ? &c->expect[c->expect_first] : NULL;
}

static int expect_push(struct conn *c, expect_kind_t kind, struct request *req) {
  if (c->expect_len == c->expect_cap) {
    fatal(c->drv, "conn %d: expect ring full (a bug)", c->index);
    return -1;
  }
  struct expect *e = &c->expect[(c->expect_first + c->expect_len) % c->expect_cap];
  e->kind = kind;
  e->got_result = 0;
  e->req = req;
  c->expect_len++;
  return 0;
}

static void expect_pop(struct conn *c) {
  c->expect_first = (c->expect_first + 1) % c->expect_cap;
  c->expect_len--;
}

/* ---- polling -------------------------------------------------------------- */

static void set_events(struct conn *c, int events) {
  if (events == c->events)
    return;
  int rc = uv_poll_start(c->poll, events, on_poll);
  if (rc != 0) {
    fatal(c->drv, "conn %d: uv_poll_start: %s", c->index, uv_strerror(rc));
    return;
  }
  c->events = events;
}

static void on_poll_closed(uv_handle_t *handle) {
  struct conn *c = handle->data;
  int last = (uv_handle_t *)c->poll == handle;
  free(handle);
  if (!last)
    return; /* a handle replaced while connecting */
  c->poll = NULL;
  PQfinish(c->pg);
  conn_closed(c);
}

/* Makes c->poll watch PQsocket(), replacing the handle when libpq has moved
 * to another socket. Polling must be stopped. */
static int watch_socket(struct conn *c) {
  int fd = PQsocket(c->pg);
  if (fd < 0) {
    fatal(c->drv, "conn %d: no socket: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  if (c->poll != NULL && fd == c->fd)
    return 0;
  if (c->poll != NULL) {
    uv_poll_t *old = c->poll;
    c->poll = NULL;
    uv_close((uv_handle_t *)old, on_poll_closed);
  }
  uv_poll_t *p = malloc(sizeof(*p));
  if (p == NULL) {
    fatal(c->drv, "out of memory");
    return -1;
  }
  int rc = uv_poll_init(&c->drv->loop, p, fd);
  if (rc != 0) {
    free(p);
    fatal(c->drv, "conn %d: uv_poll_init: %s", c->index, uv_strerror(rc));
    return -1;
  }
  p->data = c;
  c->poll = p;
  c->fd = fd;
  c->events = 0;
  return 0;
}

/* Flushes libpq's output buffer; keeps READABLE armed always and WRITABLE
 * while data is left. Returns PQflush's answer. */
static int flush(struct conn *c) {
  int f = PQflush(c->pg);
  if (f < 0) {
    fatal(c->drv, "conn %d: flush: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  set_events(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
  return f;
}

static void conn_close(struct conn *c) {
  if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
    return;
  c->state = CONN_CLOSING;
  c->wait_head = c->wait_tail = NULL;
  if (c->poll != NULL) {
    /* PQfinish only after the handle is closed: libuv must not poll a
     * closed descriptor. */
    uv_close((uv_handle_t *)c->poll, on_poll_closed);
    return;
  }
  PQfinish(c->pg);
  conn_closed(c);
}

/* ---- requests ------------------------------------------------------------- */

static void issue(struct conn *c, struct request *r, uint64_t now) {
  r->value = c->drv->next_value++;
  r->value_net = htonl(r->value);
  r->issued_ns = now;
  r->next = NULL;
  if (c->wait_tail)
    c->wait_tail->next = r;
  else
    c->wait_head = r;
  c->wait_tail = r;
}

static int send_query(struct conn *c, struct request *r) {
  const char *values[1] = {(const char *)&r->value_net};
  const int lengths[1] = {4};
  const int formats[1] = {1};
  return PQsendQueryPrepared(c->pg, STMT_NAME, 1, values, lengths, formats, 1);
}

static int send_sync(struct conn *c) {
  if (!PQpipelineSync(c->pg))
    return 0;
  if (expect_push(c, EXPECT_SYNC, NULL) != 0)
    return 0;
  c->unsynced = 0;
  return 1;
}

/* Hands waiting requests to libpq as the mode allows, syncs, flushes.
 *
 * In sync mode every sync is a write; once the socket takes only part of
 * one, stop and let WRITABLE resume, rather than have every further sync
 * retry a full socket. When libpq refuses a message with the connection
 * still fine, flush and try again on the next writable event (or at once if
 * the flush emptied the buffer; a second refusal then is an error). */
static void pump(struct conn *c) {
  struct driver *d = c->drv;
  int pipelined = d->mode != MODE_NOPIPE;
  int retried = 0;

  if (c->state != CONN_READY)
    return;
  for (;;) {
    int refused = 0;
    int full = 0;
    while (c->wait_head != NULL && !full) {
      if (!pipelined && c->expect_len > 0)
        break;
      /* A sync owed since libpq refused it last time. */
      if (d->mode == MODE_SYNC && c->unsynced > 0 && !send_sync(c)) {
        refused = 1;
        break;
      }
      struct request *r = c->wait_head;
      if (!send_query(c, r)) {
        refused = 1;
        break;
      }
      c->wait_head = r->next;
      if (c->wait_head == NULL)
        c->wait_tail = NULL;
      if (expect_push(c, EXPECT_QUERY, r) != 0)
        return;
      if (!pipelined)
        continue;
      c->unsynced++;
      if (d->mode == MODE_SYNC) {
        if (!send_sync(c)) {
          refused = 1;
          break;
        }
        full = PQflush(c->pg) != 0;
      }
    }
    if (!refused && c->unsynced > 0 && !send_sync(c))
      refused = 1;
    if (c->state != CONN_READY)
      return;
    if (refused && PQstatus(c->pg) != CONNECTION_OK) {
      fatal(d, "conn %d: send: %s", c->index, PQerrorMessage(c->pg));
      return;
    }
    int f = flush(c);
    if (f < 0 || !refused || f == 1)
      return;
    if (retried) {
      fatal(d, "conn %d: send refused: %s", c->index, PQerrorMessage(c->pg));
      return;
    }
    retried = 1;
  }
}

/* ---- results -------------------------------------------------------------- */

static void check_answer(struct conn *c, struct request *r, const PGresult *res) {
  uint32_t got_net;
  const char *why = NULL;

  if (PQntuples(res) != 1 || PQnfields(res) != 1)
    why = "not one row of one column";
  else if (PQfformat(res, 0) != 1 || PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) != 4)
    why = "not a binary int4";
  else {
    memcpy(&got_net, PQgetvalue(res, 0, 0), 4);
    if (ntohl(got_net) != r->value)
      why = "wrong value";
  }
  if (why != NULL)
    bench_run_wrong(&c->drv->run, DRIVER, "conn %d: answer to %" PRIu32 ": %s",
                    c->index, r->value, why);
}

static void conn_ready(struct conn *c) {
  struct driver *d = c->drv;
  c->state = CONN_READY;
  /* Start one loop turn later, outside this connection's result loop. */
  if (++d->nready == d->nconns)
    uv_timer_start(&d->timer, on_timer, 0, 0);
}

/* Reads every result libpq can give without blocking. */
static void read_results(struct conn *c) {
  struct driver *d = c->drv;
  uint64_t now = 0;

  while (!PQisBusy(c->pg)) {
    PGresult *res = PQgetResult(c->pg);
    struct expect *e = expect_front(c);
    if (res == NULL) {
      if (e != NULL && e->kind != EXPECT_SYNC && e->got_result) {
        expect_kind_t kind = e->kind;
        expect_pop(c);
        if (kind == EXPECT_PREPARE)
          conn_ready(c);
        continue;
      }
      return; /* nothing more has arrived */
    }
    ExecStatusType st = PQresultStatus(res);
    const char *bad = NULL;
    if (e == NULL)
      bad = "a result nothing was waiting for";
    else if (e->kind == EXPECT_SYNC) {
      if (st == PGRES_PIPELINE_SYNC)
        expect_pop(c);
      else
        bad = "expected a pipeline sync";
    } else if (e->got_result) {
      bad = "a second result for one statement";
    } else if (e->kind == EXPECT_PREPARE) {
      if (st == PGRES_COMMAND_OK)
        e->got_result = 1;
      else
        bad = "prepare failed";
    } else if (st == PGRES_TUPLES_OK) {
      struct request *r = e->req;
      e->got_result = 1;
      if (now == 0)
        now = bench_now_ns();
      check_answer(c, r, res);
      bench_run_record(&d->run, now - r->issued_ns);
      if (bench_run_active(&d->run))
        issue(c, r, now);
    } else {
      bad = "query failed";
    }
    if (bad != NULL) {
      fatal(d, "conn %d: %s (%s): %s", c->index, bad, PQresStatus(st),
            PQresultErrorMessage(res));
      PQclear(res);
      return;
    }
    PQclear(res);
  }
}

/* ---- connecting ----------------------------------------------------------- */

static void connected(struct conn *c) {
  struct driver *d = c->drv;
  const Oid types[1] = {INT4_OID};

  if (PQsetnonblocking(c->pg, 1) != 0) {
    fatal(d, "conn %d: PQsetnonblocking: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  if (d->mode != MODE_NOPIPE && !PQenterPipelineMode(c->pg)) {
    fatal(d, "conn %d: PQenterPipelineMode: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  if (!PQsendPrepare(c->pg, STMT_NAME, STMT_SQL, 1, types)) {
    fatal(d, "conn %d: PQsendPrepare: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  if (expect_push(c, EXPECT_PREPARE, NULL) != 0)
    return;
  if (d->mode != MODE_NOPIPE && !send_sync(c)) {
    fatal(d, "conn %d: PQpipelineSync: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  c->state = CONN_PREPARING;
  flush(c);
}

static void connect_step(struct conn *c) {
  /* libpq may close the socket and open another in this step. */
  uv_poll_stop(c->poll);
  c->events = 0;
  PostgresPollingStatusType st = PQconnectPoll(c->pg);
  if (st == PGRES_POLLING_FAILED) {
    fatal(c->drv, "conn %d: connect: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  if (watch_socket(c) != 0)
    return;
  if (st == PGRES_POLLING_OK)
    connected(c);
  else
    set_events(c, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  struct conn *c = handle->data;
  struct driver *d = c->drv;

  if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
    return;
  /* libuv reports a socket error (EPOLLERR, e.g. a refused connection) as
   * UV_EBADF and stops the handle; libpq can say what actually happened. */
  if (c->state == CONN_CONNECTING) {
    connect_step(c);
    return;
  }
  if (status < 0) {
    /* Read what the server sent before the error: its message, if any,
     * says more than the socket's state. */
    c->events = 0;
    if (!PQconsumeInput(c->pg)) {
      fatal(d, "conn %d: %s", c->index, PQerrorMessage(c->pg));
      return;
    }
    read_results(c);
    if (c->state != CONN_CLOSING)
      fatal(d, "conn %d: socket error (%s)", c->index, uv_strerror(status));
    return;
  }
  if (events & UV_READABLE) {
    if (!PQconsumeInput(c->pg)) {
      fatal(d, "conn %d: %s", c->index, PQerrorMessage(c->pg));
      return;
    }
    read_results(c);
    if (c->state == CONN_CLOSING)
      return;
  }
  /* Drained after the run: nothing left to read. */
  if (c->state == CONN_READY && d->run.phase == BENCH_DONE && c->expect_len == 0) {
    conn_close(c);
    return;
  }
  if (c->state == CONN_READY)
    pump(c);
  else
    flush(c);
}

static int conn_open(struct driver *d, struct conn *c) {
  c->pg = PQconnectStart(d->opts.conninfo);
  if (c->pg == NULL) {
    fatal(d, "out of memory");
    return -1;
  }
  c->state = CONN_CONNECTING;
  d->nopen++;
  if (PQstatus(c->pg) == CONNECTION_BAD) {
    fatal(d, "conn %d: connect: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  if (watch_socket(c) != 0)
    return -1;
  /* As the libpq manual says: start as if PQconnectPoll had asked to write. */
  set_events(c, UV_WRITABLE);
  return c->state == CONN_CONNECTING ? 0 : -1;
}

/* ---- the run -------------------------------------------------------------- */

/* The measured phase is over (or a fatal error stopped the run): send
 * nothing more, let what is in flight finish, then close. */
static void on_run_done(bench_run_t *run) {
  struct driver *d = run->data;
  int waiting = 0;

  for (int i = 0; i < d->nconns; i++) {
    struct conn *c = &d->conns[i];
    c->wait_head = c->wait_tail = NULL;
    if (c->state == CONN_READY && c->expect_len > 0)
      waiting = 1;
    else
      conn_close(c);
  }
  if (d->failed)
    return;
  if (waiting)
    uv_timer_start(&d->timer, on_timer, DRAIN_TIMEOUT_MS, 0);
  else if (d->nopen == 0)
    close_timer(d);
}

static void on_start(uv_timer_t *timer) {
  struct driver *d = timer->data;
  bench_run_start(&d->run);
  uint64_t now = bench_now_ns();
  for (int i = 0; i < d->nconns; i++) {
    struct conn *c = &d->conns[i];
    for (int k = 0; k < c->nreqs; k++)
      issue(c, &c->reqs[k], now);
  }
  for (int i = 0; i < d->nconns && !d->failed; i++)
    pump(&d->conns[i]);
}

/* The driver's one timer: the start, then the bound on the drain. */
static void on_timer(uv_timer_t *timer) {
  struct driver *d = timer->data;
  if (d->run.phase == BENCH_IDLE)
    on_start(timer);
  else
    fatal(d, "in-flight requests did not finish within %d ms", DRAIN_TIMEOUT_MS);
}

int main(int argc, char **argv) {
  static struct driver drv;
  struct driver *d = &drv;

  int rc = bench_opts_parse(&d->opts, argc, argv, "batch",
                            "nopipe | sync | batch (default batch; see bench/README.md)");
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  int mode = bench_opts_mode(&d->opts, DRIVER, mode_names,
                             sizeof(mode_names) / sizeof(mode_names[0]));
  if (mode < 0)
    return 2;
  d->mode = (send_mode_t)mode;

  if (bench_run_open(&d->run, &d->loop, &d->opts, on_run_done, d, DRIVER) != 0)
    return 1;
  if ((rc = uv_timer_init(&d->loop, &d->timer)) != 0) {
    bench_warn(DRIVER, "%s", uv_strerror(rc));
    return 1;
  }
  d->timer.data = d;
  d->next_value = 1;

  d->nconns = d->opts.conns;
  d->conns = calloc((size_t)d->nconns, sizeof(*d->conns));
  struct request *reqs = calloc((size_t)d->opts.inflight, sizeof(*reqs));
  if (d->conns == NULL || reqs == NULL) {
    bench_warn(DRIVER, "out of memory");
    return 1;
  }
  struct request *next_req = reqs;
  for (int i = 0; i < d->nconns; i++) {
    struct conn *c = &d->conns[i];
    c->drv = d;
    c->index = i;
    c->state = CONN_CLOSED;
    c->fd = -1;
    c->nreqs = d->opts.inflight / d->nconns + (i < d->opts.inflight % d->nconns);
    c->reqs = next_req;
    next_req += c->nreqs;
    /* Every query and every sync is in the ring until its answer is read;
     * a batch has at least one query, so syncs never outnumber queries by
     * more than one; plus the prepare and its sync. */
    c->expect_cap = 2 * (unsigned)c->nreqs + 4;
    c->expect = calloc(c->expect_cap, sizeof(*c->expect));
    if (c->expect == NULL) {
      bench_warn(DRIVER, "out of memory");
      return 1;
    }
  }

  bench_opts_announce(&d->opts, DRIVER);
  for (int i = 0; i < d->nconns && !d->failed; i++)
    if (conn_open(d, &d->conns[i]) != 0)
      break;

  uv_run(&d->loop, UV_RUN_DEFAULT);

  if (bench_loop_close(&d->loop, DRIVER) != 0)
    d->failed = 1;
  for (int i = 0; i < d->nconns; i++)
    free(d->conns[i].expect);
  free(d->conns);
  free(reqs);

  return bench_report(&d->run, &d->opts, DRIVER, d->failed);
}
