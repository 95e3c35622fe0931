/* SPDX-License-Identifier: MIT */
/* One libpq connection: non-blocking connect, a uv_poll_t on its socket, and
 * the pipeline protocol (slots, segments, holding results until their sync
 * confirms them, re-sending the neighbours of a failed statement). */
#include <assert.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/alloc.h"
#include "pool_int.h"

static void on_poll(uv_poll_t *handle, int status, int events);
static void on_timer(uv_timer_t *timer);
static void conn_failed(orm__conn_t *conn, const char *why);

static int pipelined(const orm__conn_t *conn) {
  return !conn->pool->cfg.no_pipeline;
}

size_t orm__conn_capacity(const orm__conn_t *conn) {
  if (conn->awaiting || conn->lease != NULL)
    return 0;
  return pipelined(conn) ? conn->pool->cfg.pipeline_depth : 1;
}

/* ---- slots: a ring of what was sent, answered in order ------------------ */

static int slots_reserve(orm__conn_t *conn, size_t extra) {
  if (conn->slot_count + extra <= conn->slot_cap)
    return 0;
  size_t cap = conn->slot_cap ? conn->slot_cap : 16;
  while (cap < conn->slot_count + extra)
    cap *= 2;
  orm__slot_t *slots = orm__reallocarray(NULL, cap, sizeof *slots);
  if (slots == NULL)
    return ORM_ENOMEM;
  for (size_t i = 0; i < conn->slot_count; i++)
    slots[i] = conn->slots[(conn->slot_head + i) % conn->slot_cap];
  orm__free(conn->slots);
  conn->slots = slots;
  conn->slot_cap = cap;
  conn->slot_head = 0;
  return 0;
}

static orm__slot_t *slot_at(orm__conn_t *conn, size_t i) {
  return &conn->slots[(conn->slot_head + i) % conn->slot_cap];
}

static orm__slot_t *slot_push(orm__conn_t *conn, orm__slot_kind_t kind,
                              orm__request_t *req) {
  assert(conn->slot_count < conn->slot_cap);
  orm__slot_t *s = slot_at(conn, conn->slot_count++);
  s->kind = kind;
  s->req = req;
  return s;
}

static orm__slot_t slot_pop(orm__conn_t *conn) {
  orm__slot_t s = conn->slots[conn->slot_head];
  conn->slot_head = (conn->slot_head + 1) % conn->slot_cap;
  conn->slot_count--;
  return s;
}

/* ---- poll handle -------------------------------------------------------- */

/* The handle watches a duplicate of libpq's socket that the connection owns.
 * libpq closes its socket by itself (the server hung up during
 * PQconsumeInput; the next host during PQconnectPoll), and libuv removes a
 * closed handle's descriptor from epoll by number: on libpq's own number that
 * would name whatever socket reused it since, here or on another thread's
 * loop. The duplicate stays open until the handle is closed. */

static void free_poll(uv_handle_t *handle) {
  orm_pool_t *pool = handle->data;
  pool->handles_open--;
  orm__free(handle);
}

static void poll_close(orm__conn_t *conn) {
  if (conn->poll == NULL)
    return;
  /* uv_close stops watching the descriptor at once, so it may be closed. */
  conn->poll->data = conn->pool;
  uv_close((uv_handle_t *)conn->poll, free_poll);
  conn->poll = NULL;
  conn->poll_events = 0;
  close(conn->fd);
  conn->fd = -1;
}

/* Whether libpq's socket `fd` is still the one being watched: the number
 * alone cannot tell, a new socket may reuse the old one's. */
static int poll_watches(const orm__conn_t *conn, uv_os_sock_t fd) {
  struct stat st;
  return conn->poll != NULL && fstat(fd, &st) == 0 &&
         st.st_ino == conn->sock_ino && st.st_dev == conn->sock_dev;
}

#if defined(__SANITIZE_THREAD__)
#define ORM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ORM__TSAN 1
#endif
#endif

static uv_os_sock_t dup_socket(uv_os_sock_t fd) {
#ifdef ORM__TSAN
  /* ThreadSanitizer follows descriptors made by dup() but not by fcntl(),
   * and would take ours for whatever socket had the number before. */
  fd = dup(fd);
  if (fd >= 0)
    fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#else
  return fcntl(fd, F_DUPFD_CLOEXEC, 0);
#endif
}

static int poll_open(orm__conn_t *conn, uv_os_sock_t pgfd) {
  struct stat st;
  uv_os_sock_t fd = dup_socket(pgfd);
  if (fd < 0)
    return ORM_EIO;
  uv_poll_t *poll = orm__malloc(sizeof *poll);
  if (poll == NULL) {
    close(fd);
    return ORM_ENOMEM;
  }
  if (fstat(fd, &st) != 0 ||
      uv_poll_init_socket(conn->pool->loop, poll, fd) != 0) {
    orm__free(poll);
    close(fd);
    return ORM_EIO;
  }
  conn->pool->handles_open++;
  poll->data = conn;
  conn->poll = poll;
  conn->fd = fd;
  conn->sock_ino = st.st_ino;
  conn->sock_dev = st.st_dev;
  conn->poll_events = 0;
  return 0;
}

static void arm(orm__conn_t *conn, int events) {
  /* uv_poll_start is an epoll_ctl: skip it when nothing changes. */
  if (conn->poll == NULL || events == conn->poll_events)
    return;
  conn->poll_events = events;
  if (events == 0)
    uv_poll_stop(conn->poll);
  else
    uv_poll_start(conn->poll, events, on_poll);
}

void orm__conn_arm(orm__conn_t *conn, int events) { arm(conn, events); }

/* ---- connecting --------------------------------------------------------- */

void orm__conn_init(orm__conn_t *conn, orm_pool_t *pool) {
  memset(conn, 0, sizeof *conn);
  conn->pool = pool;
  conn->fd = -1;
  conn->seg_key_len = -1;
  conn->seg_clean = 1;
  orm__list_init(&conn->link);
  orm__list_init(&conn->held);
  uv_timer_init(pool->loop, &conn->timer); /* cannot fail */
  conn->timer.data = conn;
  conn->timer_open = 1;
  pool->handles_open++;
  pool->nconns++;
}

orm__conn_t *orm__conn_new(orm_pool_t *pool) {
  orm__conn_t *conn = orm__malloc(sizeof *conn);
  if (conn != NULL)
    orm__conn_init(conn, pool);
  return conn;
}

/* The attempt failed, or the live connection died: `why`, or libpq's
 * message when NULL. */
static void conn_failed(orm__conn_t *conn, const char *why) {
  orm__pool_conn_failed(conn->pool, conn, why);
}

static void connected(orm__conn_t *conn) {
  uv_timer_stop(&conn->timer);
  if (PQsetnonblocking(conn->pg, 1) != 0 ||
      (pipelined(conn) && PQenterPipelineMode(conn->pg) != 1)) {
    conn_failed(conn, "could not set up the connection");
    return;
  }
  PQsetErrorVerbosity(conn->pg, PQERRORS_DEFAULT);
  conn->created_at = uv_now(conn->pool->loop);
  conn->backend_pid = PQbackendPID(conn->pg);
  arm(conn, UV_READABLE);
  orm__pool_conn_ready(conn->pool, conn);
}

static void connect_step(orm__conn_t *conn) {
  /* Each host or address libpq tries has a socket of its own, which may
   * reuse the old one's number: when the step changed it, watch the new
   * one. */
  PostgresPollingStatusType st = PQconnectPoll(conn->pg);
  uv_os_sock_t fd = PQsocket(conn->pg);
  if (st != PGRES_POLLING_FAILED && (fd < 0 || !poll_watches(conn, fd))) {
    poll_close(conn);
    int rc = fd < 0 ? ORM_EIO : poll_open(conn, fd);
    if (rc != 0) {
      conn_failed(conn, rc == ORM_ENOMEM ? "out of memory"
                                            : "could not watch the socket");
      return;
    }
  }
  switch (st) {
  case PGRES_POLLING_READING:
    arm(conn, UV_READABLE);
    break;
  case PGRES_POLLING_WRITING:
    arm(conn, UV_WRITABLE);
    break;
  case PGRES_POLLING_OK:
    connected(conn);
    break;
  default:
    conn_failed(conn, NULL);
    break;
  }
}

void orm__conn_start(orm__conn_t *conn) {
  orm_pool_t *pool = conn->pool;
  conn->state = CONN_CONNECTING;
  orm__list_remove(&conn->link);
  orm__list_push_back(&pool->connecting, &conn->link);
  conn->backend_pid = 0;
  conn->pg = PQconnectStart(pool->conninfo);
  if (conn->pg == NULL) {
    conn_failed(conn, "out of memory");
    return;
  }
  if (PQstatus(conn->pg) == CONNECTION_BAD || PQsocket(conn->pg) < 0) {
    conn_failed(conn, NULL);
    return;
  }
  orm__notice_watch(conn);
  /* Until connected: a refusal then names its SQLSTATE (see pool.c). */
  PQsetErrorVerbosity(conn->pg, PQERRORS_VERBOSE);
  int rc = poll_open(conn, PQsocket(conn->pg));
  if (rc != 0) {
    conn_failed(conn, orm_strerror(rc));
    return;
  }
  uv_timer_start(&conn->timer, on_timer, pool->cfg.connect_timeout_ms, 0);
  /* libpq: after PQconnectStart, wait until the socket is writable. */
  arm(conn, UV_WRITABLE);
}

static void on_timer(uv_timer_t *timer) {
  orm__conn_t *conn = timer->data;
  switch (conn->state) {
  case CONN_CONNECTING:
  case CONN_CHECKING:
    if (conn->state == CONN_CHECKING)
      conn_failed(conn, "health check timed out");
    else
      conn_failed(conn, "timeout expired while connecting");
    break;
  case CONN_BROKEN:
    orm__conn_start(conn);
    break;
  default:
    break;
  }
}

/* ---- sending ------------------------------------------------------------- */

void orm__conn_flush(orm__conn_t *conn) {
  int r = PQflush(conn->pg);
  if (r < 0) {
    conn_failed(conn, NULL);
    return;
  }
  arm(conn, r == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

/* A new implicit transaction: no writes, no row keys. */
static void segment_writes_reset(orm__conn_t *conn) {
  conn->seg_writes = SEGW_NONE;
  conn->seg_key_len = -1;
}

static void segment_reset(orm__conn_t *conn) {
  conn->unsynced = 0;
  conn->seg_clean = 1;
  conn->seg_hold = 0;
  segment_writes_reset(conn);
}

/* Ends the open segment: 0, or ORM_ECONNLOST. A slot must be reserved. */
static int segment_end(orm__conn_t *conn) {
  if (PQpipelineSync(conn->pg) != 1)
    return ORM_ECONNLOST;
  orm__slot_t *slot = slot_push(conn, SLOT_SYNC, NULL);
  slot->stmt_id = (uint32_t)conn->seg_hold;
  conn->awaiting |= conn->seg_hold;
  conn->pool->stats.syncs++;
  segment_reset(conn);
  return 0;
}

void orm__conn_sync(orm__conn_t *conn) {
  conn->dirty = 0;
  if (conn->pg == NULL)
    return;
  if (pipelined(conn) && conn->unsynced > 0) {
    if (slots_reserve(conn, 1) != 0 || segment_end(conn) != 0) {
      conn_failed(conn, NULL);
      return;
    }
  }
  orm__conn_flush(conn);
}

static int prepared_reserve(orm__conn_t *conn, uint32_t id) {
  if (id < conn->prepared_cap)
    return 0;
  size_t cap = conn->prepared_cap ? conn->prepared_cap : 32;
  while (cap <= id)
    cap *= 2;
  orm__prepared_t *p = orm__reallocarray(conn->prepared, cap, sizeof *p);
  if (p == NULL)
    return ORM_ENOMEM;
  memset(p + conn->prepared_cap, 0,
         (cap - conn->prepared_cap) * sizeof *p);
  conn->prepared = p;
  conn->prepared_cap = cap;
  return 0;
}

/* Whether `stmt` must be prepared on `conn` before it runs there. */
static int needs_parse(const orm__conn_t *conn, const orm__stmt_t *stmt) {
  const orm__prepared_t *p = &conn->prepared[stmt->id];
  return p->state == STMT_NONE || p->gen != stmt->gen;
}

static int send_query(orm__conn_t *conn, orm__request_t *req) {
  int ok;
  if (req->stmt != NULL && !conn->pool->cfg.no_prepare)
    ok = PQsendQueryPrepared(conn->pg, req->stmt->name, req->nparams,
                             req->values, req->lengths, req->formats, 1);
  else
    ok = PQsendQueryParams(conn->pg, req->sql, req->nparams, req->types,
                           req->values, req->lengths, req->formats, 1);
  return ok ? 0 : ORM_ECONNLOST;
}

/* The bytes of a keyed write's key, or NULL when it has none that fits. */
static const char *row_key(const orm__request_t *req, int *len) {
  if (req->row_key == 0)
    return NULL;
  int i = req->row_key - 1;
  const char *v = req->values[i];
  if (v == NULL)
    return NULL;
  *len = req->formats[i] != 0 ? req->lengths[i] : (int)strlen(v);
  return *len <= ORM__SEG_KEY_MAX ? v : NULL;
}

static int text_cmp(const char *a, const char *b) {
  return a == b ? 0 : strcmp(a != NULL ? a : "", b != NULL ? b : "");
}

/* Whether the open segment can take `req` (an implicit transaction of
 * statements the caller issued one by one). Reads and inserts share
 * freely: they take no lock that another writer waits for. A write of any
 * other kind would hold its row locks with the segment's other writes,
 * and two segments that lock the same rows in different orders deadlock:
 * so writes of single rows by primary key share only while their keys
 * ascend (every segment takes such locks in one global order: key bytes,
 * then schema and table), and any other write goes alone. A deadlock
 * that a trigger or function makes anyway is retried alone (may_retry). */
static int segment_takes(const orm__conn_t *conn, const orm__request_t *req) {
  /* Transactions share segments too, one after the other: BEGIN where
   * nothing before it would become part of its transaction, COMMIT and
   * ROLLBACK with the statements before them (segment_done() sorts out a
   * failure). */
  if (req->kind == REQ_BEGIN)
    return conn->seg_clean;
  if (orm__req_ends_tx(req))
    return 1;
  if (req->seg == ORM_SEG_READ)
    return 1;
  if (req->seg == ORM_SEG_APPEND)
    return conn->seg_writes != SEGW_ONE;
  if (req->seg == ORM_SEG_OWN)
    return 0;
  if (conn->seg_writes == SEGW_NONE)
    return 1;
  int len;
  const char *key = row_key(req, &len);
  if (conn->seg_writes == SEGW_ONE || key == NULL)
    return 0;
  if (conn->seg_key_len < 0)
    return 1;
  int c = len != conn->seg_key_len
              ? (len > conn->seg_key_len ? 1 : -1)
              : memcmp(key, conn->seg_key, (size_t)len);
  if (c == 0)
    c = text_cmp(req->row_schema, conn->seg_schema);
  if (c == 0)
    c = text_cmp(req->row_table, conn->seg_table);
  return c >= 0;
}

/* `req` goes into the open segment (conn->unsynced still counts what was
 * there before it). */
static void segment_joined(orm__conn_t *conn, const orm__request_t *req) {
  int ends = orm__req_ends_tx(req);
  /* A boundary behind other statements: if one of those fails, the server
   * skips it (COMMIT: the session stays in the failed transaction; BEGIN:
   * its transaction does not start), and nothing may follow on the wire
   * until the segment's answer says which. */
  if ((ends || req->kind == REQ_BEGIN) && conn->unsynced > 0)
    conn->seg_hold = 1;
  conn->seg_clean = ends;
  if (ends) {
    segment_writes_reset(conn); /* what follows is a new transaction */
    return;
  }
  if (req->seg == ORM_SEG_APPEND) {
    if (conn->seg_writes == SEGW_NONE)
      conn->seg_writes = SEGW_GROUPED;
    return;
  }
  if (req->seg != ORM_SEG_WRITE)
    return;
  int len;
  const char *key = row_key(req, &len);
  if (key == NULL) {
    conn->seg_writes = SEGW_ONE;
    return;
  }
  conn->seg_writes = SEGW_GROUPED;
  memcpy(conn->seg_key, key, (size_t)len);
  conn->seg_key_len = len;
  conn->seg_schema = req->row_schema;
  conn->seg_table = req->row_table;
}

/* Puts `req` on the wire (into libpq's buffer; orm__conn_sync() flushes).
 * 0, ORM_ENOMEM (nothing was sent), or ORM_ECONNLOST (the connection is
 * unusable; the caller requeues the request and fails the connection). */
int orm__conn_send(orm__conn_t *conn, orm__request_t *req) {
  int pipe = pipelined(conn);
  int named = req->stmt != NULL && !conn->pool->cfg.no_prepare;
  if (slots_reserve(conn, 3) != 0 ||
      (named && prepared_reserve(conn, req->stmt->id) != 0))
    return ORM_ENOMEM;
  /* A statement that cannot share an implicit transaction starts a segment
   * of its own, and ends it; so does a write the open segment cannot take;
   * BEGIN starts the one its transaction's statements join. */
  if (pipe && conn->unsynced > 0 && !segment_takes(conn, req) &&
      segment_end(conn) != 0)
    return ORM_ECONNLOST;
  req->conn = conn;
  req->state = REQ_SENT;
  if (req->t_start != 0)
    orm__req_sent_event(req, conn->pg);
  conn->in_flight++;
  conn->dirty = 1;
  int parse = 0;
  if (named) {
    req->stmt_gen = req->stmt->gen;
    parse = needs_parse(conn, req->stmt);
    if (parse)
      conn->pool->stats.prepared_misses++;
    else
      conn->pool->stats.prepared_hits++;
  }
  if (parse) {
    orm__stmt_t *stmt = req->stmt;
    if (!PQsendPrepare(conn->pg, stmt->name, stmt->sql, stmt->nparams,
                       stmt->types))
      goto lost;
    conn->prepared[stmt->id] =
        (orm__prepared_t){.gen = stmt->gen, .state = STMT_PENDING};
    conn->unsynced += (size_t)pipe;
    /* Outside pipeline mode the statement follows once Parse is answered. */
    orm__slot_t *slot = slot_push(conn, SLOT_PREPARE, pipe ? NULL : req);
    slot->stmt_id = stmt->id;
    slot->stmt_gen = stmt->gen;
    if (!pipe)
      return 0;
  }
  if (send_query(conn, req) != 0)
    goto lost;
  slot_push(conn, SLOT_QUERY, req);
  segment_joined(conn, req);
  conn->unsynced += (size_t)pipe;
  /* Failing, the request is in a slot: conn_lost fails it. */
  if (pipe && ((req->seg == ORM_SEG_OWN && !orm__req_ends_tx(req)) ||
               conn->pool->cfg.sync_each))
    return segment_end(conn);
  return 0;
lost:
  req->conn = NULL;
  req->state = REQ_QUEUED;
  conn->in_flight--;
  return ORM_ECONNLOST;
}

void orm__conn_check(orm__conn_t *conn) {
  conn->state = CONN_CHECKING;
  uv_timer_start(&conn->timer, on_timer, conn->pool->cfg.connect_timeout_ms, 0);
  if (slots_reserve(conn, 2) != 0 ||
      !PQsendQueryParams(conn->pg, "SELECT 1", 0, NULL, NULL, NULL, NULL, 1)) {
    conn_failed(conn, "could not send a health check");
    return;
  }
  slot_push(conn, SLOT_CHECK, NULL);
  conn->unsynced += (size_t)pipelined(conn);
  orm__conn_sync(conn);
}

void orm__conn_retry_in(orm__conn_t *conn, uint64_t delay_ms) {
  uv_timer_start(&conn->timer, on_timer, delay_ms, 0);
}

/* ---- cancellation ------------------------------------------------------- */

/* The first statement among the slots that has no answer yet: the one the
 * server is running now. */
static orm__request_t *executing(orm__conn_t *conn) {
  for (size_t i = 0; i < conn->slot_count; i++) {
    orm__slot_t *s = slot_at(conn, i);
    if (s->kind == SLOT_QUERY)
      return s->req->result == NULL ? s->req : NULL;
  }
  return NULL;
}

/* Whether a statement of another transaction than `req`'s waits behind
 * it. A cancel that arrives late lands on the statement after its target:
 * a pool statement hit that way is re-sent (the cancel guard), but one of
 * a transaction would abort a transaction that did nothing wrong. */
static int other_tx_behind(orm__conn_t *conn, const orm__request_t *req) {
  for (size_t i = 0; i < conn->slot_count; i++) {
    const orm__slot_t *s = slot_at(conn, i);
    if (s->kind == SLOT_QUERY && s->req->kind != REQ_QUERY &&
        s->req->tx != req->tx)
      return 1;
  }
  return 0;
}

/* A cancel request stops whatever the backend runs at that moment, so it
 * goes out only while an abandoned request is that statement, and once.
 * The statement then runs to its end instead when the cancel could
 * stray into another transaction, or when it ends a transaction (which
 * must run: a cancelled COMMIT is a ROLLBACK by now). */
static void cancel_if_abandoned(orm__conn_t *conn) {
  orm__request_t *req = executing(conn);
  if (req != NULL && req->abandoned && !req->cancel_sent &&
      !orm__req_ends_tx(req) && !other_tx_behind(conn, req)) {
    req->cancel_sent = 1;
    orm__pool_cancel_on_server(conn->pool, conn);
  }
}

void orm__conn_abandon(orm__conn_t *conn, orm__request_t *req) {
  req->abandoned = 1;
  /* One still waiting behind others is cancelled when it reaches the
   * front (see process()). */
  if (req->state == REQ_SENT)
    cancel_if_abandoned(conn);
}

/* ---- receiving ---------------------------------------------------------- */

static int is_error(const PGresult *res) {
  return res != NULL && PQresultStatus(res) == PGRES_FATAL_ERROR;
}

static const char *sqlstate(const PGresult *res) {
  const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
  return s ? s : "";
}

/* Whether the server's error for named statement `req` says the prepared
 * statement is unusable, in which case it is prepared again and the
 * statement, which had no effect, may run again:
 * - 26000 naming it: the server no longer has it (DEALLOCATE ALL or
 *   DISCARD ALL by a proxy). Forgotten on this connection, unless a Parse
 *   of it is already on its way: another Parse under the same name would
 *   fail with 42P05. A 26000 the statement raises itself (a DEALLOCATE of
 *   another name) names something else and is the caller's.
 * - 0A000 from the plan cache, "cached plan must not change result type":
 *   a column's type changed under it. Every connection prepares a new
 *   generation (a name not in use anywhere), so the change costs no more
 *   failures on other connections; a transaction that met it fails once.
 *   Told apart from other 0A000 errors by the function that raised it
 *   (never translated), or by the message. */
static int stale_statement(orm__conn_t *conn, const orm__request_t *req,
                           const PGresult *res, const char *state) {
  orm__stmt_t *stmt = req->stmt;
  orm__prepared_t *p = &conn->prepared[stmt->id];
  if (strcmp(state, "26000") == 0) {
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    /* The name it was last sent under, as the message quotes it. */
    char name[sizeof stmt->name + 2];
    name[0] = '"';
    orm__stmt_name(stmt->id, req->stmt_gen, name + 1, sizeof name - 2);
    strcat(name, "\"");
    if (msg == NULL || strstr(msg, name) == NULL)
      return 0;
    if (p->state == STMT_READY && p->gen == req->stmt_gen)
      p->state = STMT_NONE;
    return 1;
  }
  if (strcmp(state, "0A000") == 0) {
    const char *fn = PQresultErrorField(res, PG_DIAG_SOURCE_FUNCTION);
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    int plan_cache =
        (fn != NULL && strcmp(fn, "RevalidateCachedQuery") == 0) ||
        (msg != NULL &&
         strstr(msg, "cached plan must not change result type") != NULL);
    if (!plan_cache)
      return 0;
    if (stmt->gen == req->stmt_gen) /* the first to meet this one */
      orm__stmt_bump(stmt);
    return 1;
  }
  return 0;
}

typedef enum {
  RETRY_NO,
  RETRY_YES,   /* counts towards the limit of ORM__RETRIES_MAX */
  RETRY_FREE   /* not its own failure (a neighbour's, or a cancel meant
                  for another request): not counted with its own; stray
                  cancels have a bound of their own, ORM__STRAYS_MAX */
} retry_t;

#define ORM__RETRIES_MAX 3
/* Re-sends after stray cancels at most: more than one per request a
 * connection's pipeline holds ahead of it. */
#define ORM__STRAYS_MAX 100

/* `shared`: the statement ran in a segment with others, i.e. in an
 * implicit transaction that uvorm made, not the caller. */
static retry_t may_retry(orm__conn_t *conn, orm__request_t *req, int shared) {
  const char *state = sqlstate(req->result);
  int stale = 0;
  if (req->stmt != NULL && !conn->pool->cfg.no_prepare)
    stale = stale_statement(conn, req, req->result, state);
  if (req->kind != REQ_QUERY)
    return RETRY_NO;
  /* A cancel aimed at a neighbour that had just finished lands on the next
   * statement: a 57014 on a request we never cancelled, inside the guard
   * window of a cancel of ours on its connection, is such a stray. A
   * request may meet one per neighbour that times out ahead of it, so
   * these are not counted with its own failures; they are bounded on
   * their own, so that a statement_timeout of its own, inside windows that
   * other cancels keep open, cannot make it go round for ever. */
  if (strcmp(state, "57014") == 0) {
    if (req->cancel_sent || req->strays >= ORM__STRAYS_MAX ||
        uv_now(conn->pool->loop) >= conn->cancel_guard_until)
      return RETRY_NO;
    req->strays++;
    return RETRY_FREE;
  }
  if (req->retries >= ORM__RETRIES_MAX)
    return RETRY_NO;
  /* Statements the caller issued one by one can deadlock (or fail to
   * serialize) only because uvorm grouped them into one transaction with
   * their neighbours: run them again, alone this time. */
  if (shared && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0)) {
    req->seg = ORM_SEG_OWN;
    return RETRY_YES;
  }
  return stale ? RETRY_YES : RETRY_NO;
}

/* Readies `req` to go again. */
static void replay_ready(orm__conn_t *conn, orm__request_t *req, retry_t why) {
  orm__req_untransform(req);
  if (req->result != NULL) {
    PQclear(req->result);
    req->result = NULL;
  }
  req->conn = NULL;
  if (why == RETRY_YES)
    req->retries++;
  /* A closing pool fails it instead (orm__pool_resend): not a replay. */
  if (conn->pool->state == POOL_OPEN) {
    if (req->replays < UINT8_MAX)
      req->replays++;
    conn->pool->stats.resends++;
  }
  if (conn->pool->state == POOL_OPEN && conn->pool->cfg.on_log != NULL &&
      conn->pool->cfg.log_level <= ORM_LOG_DEBUG) {
    orm__where_t w;
    orm__conn_where(conn, &w);
    orm__pool_log(conn->pool, &w, ORM_LOG_DEBUG, "replay", 0, 0,
                  "a statement goes again (%s): %.80s",
                  why == RETRY_YES ? "its own stale statement or deadlock"
                                   : "its pipeline segment failed",
                  req->sql != NULL ? req->sql : "");
  }
}

/* Readies `req` to go again and adds it to `again`, which
 * resend_all() hands back to the pool in order. */
static void resend(orm__conn_t *conn, orm__request_t *req, retry_t why,
                   orm__link_t *again) {
  replay_ready(conn, req, why);
  orm__list_push_back(again, &req->link);
}

/* Each goes to the front of the pool's queue, so the last first: they run
 * again in the order they first ran (a read behind a write must still see
 * it). */
static void resend_all(orm_pool_t *pool, orm__link_t *again) {
  while (!orm__list_empty(again)) {
    orm__request_t *req = ORM__CONTAINER_OF(again->prev, orm__request_t, link);
    orm__list_remove(&req->link);
    orm__pool_resend(pool, req);
  }
}

/* A transaction gives its connection back as soon as COMMIT or ROLLBACK
 * is sent, so that the next one can follow it in the pipeline; that it
 * really ended is checked when its answer is in. One that did not would
 * fail everything after it. libpq can tell only when nothing follows in
 * the pipeline (else it says "active"); PostgreSQL ends the transaction
 * whatever COMMIT or ROLLBACK answers, so that is a second line only. */
static void check_tx_ended(orm__conn_t *conn) {
  if (conn->pg != NULL && PQtransactionStatus(conn->pg) != PQTRANS_IDLE &&
      PQtransactionStatus(conn->pg) != PQTRANS_ACTIVE)
    conn_failed(conn, "a transaction's end left the session in a transaction");
}

/* A statement's answer is in: complete it, or hold it for the sync. */
static void query_answered(orm__conn_t *conn, orm__request_t *req) {
  int ends_tx = orm__req_ends_tx(req); /* req may be gone when finished */
  conn->in_flight--;
  if (req->t_start != 0)
    orm__req_answered_event(req);
  /* In pipeline mode a pool statement's fate depends on its neighbours,
   * and what a transaction's statement did to the session (did COMMIT
   * end it?) is known only at the sync: hold them until then. */
  if (pipelined(conn) && (req->kind != REQ_QUERY || !req->abandoned)) {
    req->state = REQ_HELD;
    orm__list_push_back(&conn->held, &req->link);
    orm__req_transform_early(req);
    return;
  }
  if (req->abandoned) {
    orm__req_drop(req);
    return;
  }
  /* Outside pipeline mode each statement is its own transaction. */
  req->conn = NULL;
  retry_t retry = is_error(req->result) ? may_retry(conn, req, 0) : RETRY_NO;
  if (retry != RETRY_NO) {
    orm__link_t again;
    orm__list_init(&again);
    resend(conn, req, retry, &again);
    resend_all(conn->pool, &again);
  } else
    orm__req_finish(req, ORM__NOW);
  if (ends_tx)
    check_tx_ended(conn);
}

/* BEGIN (just taken off the held list) was skipped for a failure ahead
 * of it in the segment it shared: its transaction never started, and goes
 * again whole, as if just issued. BEGIN joins `again`; the statements of
 * the transaction that followed it go back to the front of its queue, in
 * order, ahead of any issued since; the connection is its no more. */
static void replay_tx(orm__conn_t *conn, orm__request_t *begin,
                      orm__link_t *again) {
  orm_tx_t *tx = begin->tx;
  orm__link_t stmts;
  orm__list_init(&stmts);
  while (!orm__list_empty(&conn->held)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(conn->held.next, orm__request_t, link);
    if (req->tx != tx)
      break;
    orm__list_remove(&req->link);
    req->conn = NULL;
    replay_ready(conn, req, RETRY_FREE);
    req->state = REQ_QUEUED;
    orm__list_push_back(&stmts, &req->link);
  }
  while (!orm__list_empty(&stmts)) {
    orm__link_t *last = stmts.prev;
    orm__list_remove(last);
    orm__list_push_front(&tx->queue, last);
  }
  if (tx->conn == conn) {
    tx->conn = NULL;
    conn->tx = NULL;
    if (conn->state == CONN_PINNED)
      orm__pool_conn_ready(conn->pool, conn);
  }
  resend(conn, begin, RETRY_FREE, again);
}

/* Whether held `req`, a BEGIN, was skipped for another's failure and its
 * transaction can simply go again (nobody gave up on it). */
static int begin_skipped(const orm__request_t *req, int failed) {
  if (!failed || req->kind != REQ_BEGIN || req->abandoned ||
      req->result == NULL ||
      PQresultStatus(req->result) != PGRES_PIPELINE_ABORTED)
    return 0;
  const orm_tx_t *tx = req->tx;
  if (tx == NULL || tx->dead || tx->pool == NULL)
    return 0;
  for (const orm__link_t *l = req->link.next; l != &req->conn->held;
       l = l->next) {
    const orm__request_t *r = ORM__CONTAINER_OF(l, orm__request_t, link);
    if (r->tx != tx)
      break;
    if (r->abandoned)
      return 0;
  }
  return 1;
}

/* A held segment's transaction that failed before its COMMIT, which the
 * server skipped, leaves the session in the failed transaction: roll it
 * back, ahead of anything else. */
static void send_reset(orm__conn_t *conn) {
  if (slots_reserve(conn, 2) != 0 ||
      !PQsendQueryParams(conn->pg, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 1)) {
    conn_failed(conn, "could not roll back a failed transaction");
    return;
  }
  slot_push(conn, SLOT_RESET, NULL);
  if (segment_end(conn) != 0) {
    conn_failed(conn, NULL);
    return;
  }
  orm__conn_flush(conn);
}

/* The sync closing a segment is in: its statements committed together, or,
 * if one failed, none of them took effect. The failed one fails alone; its
 * neighbours (rolled back or skipped) go again. Transactions in it ended
 * by their own COMMIT or ROLLBACK; one skipped whole goes again. `held`:
 * nothing was sent behind it (see segment_joined()). */
static void segment_done(orm__conn_t *conn, int held) {
  orm_pool_t *pool = conn->pool;
  int failed = conn->segment_failed;
  int shared = conn->held.next != conn->held.prev; /* two or more */
  int tx_end = 0;
  orm__link_t again;
  orm__list_init(&again);
  conn->segment_failed = 0;
  while (!orm__list_empty(&conn->held)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(conn->held.next, orm__request_t, link);
    if (begin_skipped(req, failed)) {
      orm__list_remove(&req->link);
      replay_tx(conn, req, &again);
      continue;
    }
    orm__list_remove(&req->link);
    req->conn = NULL;
    tx_end |= orm__req_ends_tx(req);
    if (req->abandoned) {
      orm__req_drop(req);
    } else if (req->prepare_error != NULL || is_error(req->result)) {
      retry_t retry =
          req->prepare_error == NULL ? may_retry(conn, req, shared) : RETRY_NO;
      if (retry != RETRY_NO)
        resend(conn, req, retry, &again);
      else
        orm__req_finish(req, ORM__NOW);
    } else if (failed && req->kind == REQ_QUERY) {
      /* Rolled back or skipped: not its own failure. */
      resend(conn, req, RETRY_FREE, &again);
    } else {
      orm__req_finish(req, ORM__NOW);
    }
    if (conn->pg == NULL) { /* a callback closed the pool */
      resend_all(pool, &again);
      return;
    }
  }
  resend_all(pool, &again);
  if (!held) {
    if (tx_end)
      check_tx_ended(conn);
    return;
  }
  /* Nothing follows on the wire: libpq's word on the session is exact. A
   * transaction still on the connection owns whatever state it is in. */
  conn->awaiting = 0;
  orm__pool_kick(pool);
  if (conn->pg == NULL || conn->tx != NULL)
    return;
  PGTransactionStatusType st = PQtransactionStatus(conn->pg);
  if (st == PQTRANS_INERROR)
    send_reset(conn);
  else if (st != PQTRANS_IDLE)
    conn_failed(conn, "a transaction's end left the session in a transaction");
}

static void prepare_answered(orm__conn_t *conn, orm__slot_t *slot,
                             PGresult *res) {
  ExecStatusType st = PQresultStatus(res);
  orm__prepared_t *p = &conn->prepared[slot->stmt_id];
  /* A Parse of an older generation no longer says anything about it. */
  int current = p->gen == slot->stmt_gen;
  if (st == PGRES_COMMAND_OK) {
    if (current)
      p->state = STMT_READY;
    PQclear(res);
    return;
  }
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  if (current && st == PGRES_FATAL_ERROR && state != NULL &&
      strcmp(state, "42P05") == 0) {
    /* Names are never reused for other text, so the server has this very
     * statement: use it. The segment still failed; what needed this
     * Parse was skipped and goes again (or, in a transaction, is
     * reported skipped). */
    p->state = STMT_READY;
    conn->segment_failed = 1;
    PQclear(res);
    return;
  }
  if (current)
    p->state = STMT_NONE;
  if (st != PGRES_FATAL_ERROR) {
    PQclear(res); /* skipped after an earlier failure: prepared again later */
    return;
  }
  conn->segment_failed = 1;
  /* The statement that needed this Parse fails with its error. */
  orm__request_t *req = slot->req;
  for (size_t i = 1; req == NULL && i < conn->slot_count; i++) {
    orm__slot_t *s = slot_at(conn, i);
    if (s->kind == SLOT_QUERY)
      req = s->req;
  }
  if (req != NULL && req->prepare_error == NULL)
    req->prepare_error = res;
  else
    PQclear(res);
}

/* Outside pipeline mode, a Parse answered lets its statement go. */
static void prepare_done(orm__conn_t *conn, orm__request_t *req) {
  if (req == NULL)
    return;
  if (req->abandoned || req->prepare_error != NULL) {
    conn->in_flight--;
    req->conn = NULL;
    if (req->abandoned)
      orm__req_drop(req);
    else
      orm__req_finish(req, ORM__NOW);
    return;
  }
  /* The slot is free: the PREPARE's was just popped. */
  slot_push(conn, SLOT_QUERY, req);
  if (send_query(conn, req) != 0) {
    conn_failed(conn, NULL); /* fails req with the rest */
    return;
  }
  orm__conn_flush(conn);
}

static void check_done(orm__conn_t *conn, int ok) {
  if (!ok) {
    conn_failed(conn, "health check failed");
    return;
  }
  orm__pool_conn_ready(conn->pool, conn);
}

/* Reads every complete answer libpq has. Callbacks run from here; after
 * each, the connection may have been failed or the pool closed. */
static void process(orm__conn_t *conn) {
  int check_ok = 1, reset_ok = 1;
  while (conn->pg != NULL && conn->slot_count > 0 && !PQisBusy(conn->pg)) {
    PGresult *res = PQgetResult(conn->pg);
    orm__slot_t *slot = slot_at(conn, 0);
    switch (slot->kind) {
    case SLOT_QUERY: {
      orm__request_t *req = slot->req;
      if (res != NULL) {
        if (is_error(res))
          conn->segment_failed = 1;
        if (req->result == NULL || (is_error(res) && !is_error(req->result))) {
          PQclear(req->result);
          req->result = res;
        } else {
          PQclear(res);
        }
        break;
      }
      slot_pop(conn);
      query_answered(conn, req);
      break;
    }
    case SLOT_PREPARE:
      if (res != NULL) {
        prepare_answered(conn, slot, res);
        break;
      }
      orm__request_t *req = slot->req;
      slot_pop(conn);
      prepare_done(conn, req);
      break;
    case SLOT_SYNC: {
      if (res == NULL || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
        PQclear(res);
        conn_failed(conn, "protocol out of step: expected a pipeline sync");
        return;
      }
      PQclear(res);
      int held = slot->stmt_id != 0;
      slot_pop(conn);
      segment_done(conn, held);
      break;
    }
    case SLOT_RESET:
      if (res != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
          reset_ok = 0;
        PQclear(res);
        break;
      }
      slot_pop(conn);
      if (!reset_ok) {
        conn_failed(conn, "could not roll back a failed transaction");
        return;
      }
      break;
    case SLOT_CHECK:
      if (res != NULL) {
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
          check_ok = 0;
        PQclear(res);
        break;
      }
      slot_pop(conn);
      if (!pipelined(conn))
        check_done(conn, check_ok);
      break;
    }
  }
  /* A health check's segment ends with its sync. */
  if (conn->pg != NULL && conn->state == CONN_CHECKING &&
      conn->slot_count == 0)
    check_done(conn, check_ok);
  /* Only now, with everything buffered read, is the first unanswered
   * statement the one the server may be running: a cancel for a request
   * abandoned behind others goes out only when it reaches the front. */
  if (conn->pg != NULL)
    cancel_if_abandoned(conn);
  /* A lease waits for everything sent before it to be answered. */
  if (conn->pg != NULL && conn->lease != NULL && conn->slot_count == 0)
    orm__lease_maybe_start(conn);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  orm__conn_t *conn = handle->data;
  if (conn->state == CONN_CONNECTING) {
    /* libuv reports POLLERR as an error status; libpq reads the cause. */
    connect_step(conn);
    return;
  }
  if (conn->lease_started) {
    conn->lease->lease_ops->io(conn->lease, status, events);
    return;
  }
  if (status < 0)
    events = UV_READABLE; /* let libpq find out what happened */
  if (events & UV_WRITABLE) {
    orm__conn_flush(conn);
    if (conn->pg == NULL)
      return;
  }
  if (events & UV_READABLE) {
    if (!PQconsumeInput(conn->pg)) {
      conn_failed(conn, NULL);
      return;
    }
    size_t before = conn->in_flight;
    process(conn);
    /* Room freed up: let waiting requests in this same loop turn. */
    if (conn->in_flight < before &&
        (conn->pool->queued > 0 || !orm__list_empty(&conn->pool->txs)))
      orm__pool_kick(conn->pool);
    if (conn->pg == NULL)
      return;
    /* libpq may have queued output while reading; keep it moving. */
    if (conn->poll_events & UV_WRITABLE)
      orm__conn_flush(conn);
    else if (status < 0)
      uv_poll_start(conn->poll, conn->poll_events, on_poll);
  }
  if (conn->state == CONN_READY && conn->in_flight == 0)
    conn->idle_since = uv_now(conn->pool->loop);
}

/* ---- failure and teardown ------------------------------------------------ */

static void fail_req(orm__request_t *req, int code, const char *why,
                     orm__when_t when) {
  req->conn = NULL;
  orm__req_untransform(req);
  if (req->abandoned) {
    orm__req_drop(req);
    return;
  }
  if (why != NULL && req->future.error.message == NULL)
    orm__future_set_message(&req->future, "%s", why);
  orm__req_complete(req, code, when);
}

void orm__conn_fail_all(orm__conn_t *conn, int code, const char *why,
                        orm__when_t when) {
  while (conn->slot_count > 0) {
    orm__slot_t slot = slot_pop(conn);
    if ((slot.kind == SLOT_QUERY || slot.kind == SLOT_PREPARE) &&
        slot.req != NULL) {
      conn->in_flight--;
      fail_req(slot.req, code, why, when);
    }
  }
  while (!orm__list_empty(&conn->held)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(conn->held.next, orm__request_t, link);
    orm__list_remove(&req->link);
    fail_req(req, code, why, when);
  }
  assert(conn->in_flight == 0);
  conn->in_flight = 0;
  conn->awaiting = 0;
  segment_reset(conn);
  conn->segment_failed = 0;
  if (conn->lease != NULL)
    orm__lease_conn_lost(conn, code, why, when);
}


void orm__conn_shutdown(orm__conn_t *conn) {
  poll_close(conn);
  if (conn->pg != NULL) {
    PQfinish(conn->pg);
    conn->pg = NULL;
  }
  if (conn->prepared != NULL)
    memset(conn->prepared, 0, conn->prepared_cap * sizeof *conn->prepared);
  if (conn->timer_open)
    uv_timer_stop(&conn->timer);
}

static void conn_timer_closed(uv_handle_t *handle) {
  orm__conn_t *conn = handle->data;
  orm_pool_t *pool = conn->pool;
  orm__free(conn->slots);
  orm__free(conn->prepared);
  orm__free(conn);
  pool->handles_open--;
  orm__pool_kick(pool);
}

void orm__conn_destroy(orm__conn_t *conn) {
  orm__conn_shutdown(conn);
  orm__list_remove(&conn->link);
  conn->state = CONN_CLOSED;
  conn->pool->nconns--;
  conn->timer_open = 0;
  uv_close((uv_handle_t *)&conn->timer, conn_timer_closed);
}
