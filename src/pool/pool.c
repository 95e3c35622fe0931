/* SPDX-License-Identifier: MIT */
/* The pool: configuration, the request queue and its dispatcher,
 * connection life cycle, server-side cancels, maintenance, shutdown. */
#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "async/mailbox.h"
#include "base/wire.h"
#include "pool_int.h"

#define ORM__MAINT_MS 1000
/* How long after a cancel a 57014 on another statement counts as a stray
 * (the signal lands within milliseconds of PQcancel's return; a real
 * statement_timeout error inside the window is run again). */
#define ORM__CANCEL_GUARD_MS 1000

void orm__pool_kick(orm_pool_t *pool) {
  pool->sched.work_wanted = 1;
  orm__sched_kick(&pool->sched);
}

/* ---- queue and dispatch -------------------------------------------------- */

int orm__pool_enqueue(orm_pool_t *pool, orm__request_t *req) {
  if (pool->queued >= pool->cfg.queue_max)
    return ORM_EQUEUEFULL;
  if (orm__future_owner_deadline(&req->future, pool->cfg.acquire_timeout_ms) !=
      0)
    return ORM_ENOMEM;
  req->state = REQ_QUEUED;
  orm__list_push_back(&pool->queue, &req->link);
  pool->queued++;
  orm__pool_kick(pool);
  return 0;
}

void orm__pool_resend(orm_pool_t *pool, orm__request_t *req) {
  if (pool->state != POOL_OPEN) { /* the queue was failed already */
    orm__req_complete(req, ORM_ECANCELED, ORM__LATER);
    return;
  }
  /* Ahead of newer requests: it was accepted first. Order among resends
   * of one segment is kept by the caller inserting them in reverse. */
  req->state = REQ_QUEUED;
  orm__list_push_front(&pool->queue, &req->link);
  pool->queued++;
  orm__pool_kick(pool);
}

static orm__conn_t *new_conn(orm_pool_t *pool) {
  orm__conn_t *conn = orm__conn_new(pool);
  if (conn == NULL)
    return NULL;
  orm__conn_start(conn);
  return conn;
}

static int health_due(orm_pool_t *pool, orm__conn_t *conn, uint64_t now) {
  return pool->cfg.health_check_ms > 0 && conn->in_flight == 0 &&
         now - conn->idle_since >= pool->cfg.health_check_ms;
}

/* The ready connection with the fewest requests in flight and room for one
 * more; `for_begin`: BEGIN, which pins it, avoids one whose cancel guard
 * is up (a stray cancel would abort the new transaction). BEGIN may follow
 * work in flight, another transaction's COMMIT too: transactions pipeline
 * one after the other on a connection. */
static orm__conn_t *pick(orm_pool_t *pool, int for_begin, int *all_busy) {
  orm__conn_t *best = NULL;
  uint64_t now = uv_now(pool->loop);
  orm__link_t *l = pool->ready.next;
  *all_busy = 1;
  while (l != &pool->ready) {
    orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    if (conn->in_flight == 0 && health_due(pool, conn, now)) {
      /* Idle for long: prove it alive before trusting it again. */
      orm__list_remove(&conn->link);
      orm__list_push_back(&pool->connecting, &conn->link);
      orm__conn_check(conn);
      continue;
    }
    if (conn->in_flight == 0)
      *all_busy = 0;
    if (conn->in_flight >= orm__conn_capacity(conn) ||
        (for_begin && now < conn->cancel_guard_until))
      continue;
    if (best == NULL || conn->in_flight < best->in_flight)
      best = conn;
    if (best->in_flight == 0)
      break;
  }
  return best;
}

static void fail_queue(orm_pool_t *pool, int code, const char *why,
                       const char *sqlstate, orm__when_t when) {
  while (!orm__list_empty(&pool->queue)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(pool->queue.next, orm__request_t, link);
    orm__list_remove(&req->link);
    pool->queued--;
    if (why != NULL)
      orm__future_set_message(&req->future, "%s", why);
    req->future.error.sqlstate = sqlstate;
    orm__req_complete(req, code, when);
  }
}

void orm__pool_req_fail_down(orm__request_t *req) {
  orm_pool_t *pool = req->pool;
  orm__future_set_message(&req->future, "%s", pool->last_error);
  req->future.error.sqlstate = pool->last_sqlstate;
  orm__pool_req_fail_deferred(req, pool->last_code);
}

void orm__pool_dispatch(orm_pool_t *pool) {
  if (pool->state != POOL_OPEN)
    return;
  while (!orm__list_empty(&pool->queue)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(pool->queue.next, orm__request_t, link);
    int all_busy;
    orm__conn_t *conn = pick(
        pool, req->kind == REQ_BEGIN || req->kind == REQ_LEASE, &all_busy);
    if (all_busy && pool->nconns < pool->cfg.max_conns &&
        orm__list_empty(&pool->connecting) && orm__list_empty(&pool->broken))
      new_conn(pool);
    if (conn == NULL)
      break;
    orm__list_remove(&req->link);
    pool->queued--;
    if (req->kind == REQ_LEASE) {
      orm__lease_assign(conn, req);
      continue;
    }
    if (req->kind == REQ_BEGIN) {
      orm__list_remove(&conn->link);
      orm__list_push_back(&pool->pinned, &conn->link);
      conn->state = CONN_PINNED;
      conn->tx = req->tx;
      req->tx->conn = conn;
    }
    int rc = orm__conn_send(conn, req);
    if (rc == ORM_ENOMEM) {
      if (req->kind == REQ_BEGIN)
        orm__tx_unpin(req->tx);
      orm__req_complete(req, ORM_ENOMEM, ORM__NOW);
      continue;
    }
    if (rc != 0) {
      if (req->state == REQ_QUEUED) {
        /* Never sent: BEGIN goes back to the queue with its transaction
         * unharmed, rather than failing it with the connection. */
        if (req->kind == REQ_BEGIN) {
          conn->tx = NULL;
          req->tx->conn = NULL;
        }
        orm__list_push_front(&pool->queue, &req->link);
        pool->queued++;
      }
      orm__pool_conn_failed(pool, conn, NULL);
      continue;
    }
    /* Sent: the acquire deadline gives way to the statement's. Without
     * memory for the heap it runs untimed rather than failing. Nobody
     * waits for the BEGIN of orm_tx_begin(): its statements have their
     * own deadlines, and it must not be abandoned under them. */
    orm__future_owner_deadline(&req->future,
                               req->kind == REQ_BEGIN && req->tx->mode == TX_HANDED_OUT
                                   ? 0
                                   : pool->cfg.statement_timeout_ms);
    if (req->kind == REQ_BEGIN && req->tx != NULL && req->tx->conn == conn)
      orm__tx_pump(req->tx);
  }
}

/* Flushes each connection that got statements this turn, with one sync. */
static void sync_all(orm__link_t *list) {
  orm__link_t *l = list->next;
  while (l != list) {
    orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    if (conn->dirty)
      orm__conn_sync(conn);
  }
}

static void finish_close(orm_pool_t *pool);

static void on_work(orm__sched_t *sched) {
  orm_pool_t *pool = ORM__CONTAINER_OF(sched, orm_pool_t, sched);
  if (pool->state != POOL_OPEN) {
    finish_close(pool);
    return;
  }
  if (pool->notices_head != NULL) {
    orm__notices_deliver(pool);
    if (pool->state != POOL_OPEN)
      return; /* closed from on_notice: its own turn comes next */
  }
  if (pool->explain != NULL)
    orm__explain_submit(pool);
  orm__lease_poke_all(pool);
  if (pool->state != POOL_OPEN)
    return; /* closed from a callback: its own turn comes next */
  if (pool->listener != NULL) {
    orm__listener_turn(pool);
    orm__listener_sync(pool);
  }
  orm__pool_dispatch(pool);
  orm__tx_pump_all(pool);
  sync_all(&pool->ready);
  sync_all(&pool->pinned);
}

/* ---- connection life cycle ----------------------------------------------- */

void orm__pool_conn_ready(orm_pool_t *pool, orm__conn_t *conn) {
  uint64_t now = uv_now(pool->loop);
  if (conn->state == CONN_CONNECTING) {
    pool->stats.connects++;
    if (conn->ever_connected)
      pool->stats.reconnects++;
    if (pool->cfg.on_log != NULL) {
      orm__where_t w;
      orm__conn_where(conn, &w);
      orm__pool_log(pool, &w, ORM_LOG_INFO,
                    conn->ever_connected ? "reconnected" : "connected", 0, 0,
                    "%s to %s port %d (server process %d)",
                    conn->ever_connected ? "reconnected" : "connected", w.host,
                    w.port, w.pid);
    }
    conn->ever_connected = 1;
  }
  uv_timer_stop(&conn->timer);
  conn->state = CONN_READY;
  conn->failures = 0;
  conn->idle_since = now;
  orm__list_remove(&conn->link);
  orm__list_push_back(&pool->ready, &conn->link);
  pool->down = 0;
  orm__pool_kick(pool);
}

static uint64_t next_random(orm_pool_t *pool) {
  /* xorshift64: jitter needs spread, not secrecy. */
  uint64_t x = pool->rng;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return pool->rng = x;
}

static uint64_t backoff_ms(orm_pool_t *pool, unsigned failures) {
  uint64_t delay = pool->cfg.reconnect_min_ms;
  for (unsigned i = 1; i < failures && delay < pool->cfg.reconnect_max_ms; i++)
    delay *= 2;
  if (delay > pool->cfg.reconnect_max_ms)
    delay = pool->cfg.reconnect_max_ms;
  /* Full jitter over the upper half: spread, but never immediate. */
  return delay / 2 + next_random(pool) % (delay / 2 + 1);
}

/* The SQLSTATEs a server may refuse a connection with, as static strings a
 * failed request can point at after the pool is gone. */
static const char *const connect_states[] = {
    "28000", /* invalid_authorization_specification: no pg_hba.conf entry,
                role may not log in */
    "28P01", /* invalid_password */
    "3D000", /* invalid_catalog_name: no such database */
    "42501", /* insufficient_privilege: no CONNECT */
    "53300", /* too_many_connections */
    "57P03", /* cannot_connect_now: starting up, shutting down */
    "08P01", /* protocol_violation */
    "0A000", /* feature_not_supported */
};

/* libpq reports a failed connect as text only. Connections try with
 * PQERRORS_VERBOSE, which writes the server's SQLSTATE after the severity
 * ("FATAL:  28P01: password authentication failed ...") and a LOCATION
 * line: takes both out of `msg`, so it reads as libpq's default, and
 * returns the first SQLSTATE found, or "". */
static const char *take_connect_state(char *msg) {
  const char *state = "";
  char *p = msg;
  while ((p = strstr(p, ":  ")) != NULL) {
    p += 3;
    size_t n = 0;
    while (n < 5 && ((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'A' && p[n] <= 'Z')))
      n++;
    if (n != 5 || p[5] != ':' || p[6] != ' ')
      continue;
    for (size_t i = 0; *state == '\0' && i < sizeof connect_states / sizeof *connect_states; i++)
      if (memcmp(p, connect_states[i], 5) == 0)
        state = connect_states[i];
    memmove(p, p + 7, strlen(p + 7) + 1);
  }
  while ((p = strstr(msg, "LOCATION:  ")) != NULL) {
    char *end = strchr(p, '\n');
    memmove(p, end != NULL ? end + 1 : p + strlen(p),
            end != NULL ? strlen(end + 1) + 1 : 1);
  }
  return state;
}

void orm__pool_conn_failed(orm_pool_t *pool, orm__conn_t *conn,
                           const char *why) {
  int was_up = conn->state != CONN_CONNECTING;
  orm__where_t where;
  if (pool->cfg.on_log != NULL)
    orm__conn_where(conn, &where);
  /* The pool keeps the latest reason: requests failed while it is down
   * carry it. Ours beats libpq's, which for an attempt we gave up on names
   * no cause. */
  const char *msg = why;
  char text[1024];
  pool->last_code = was_up ? ORM_ECONNLOST : ORM_ECONNECT;
  pool->last_sqlstate = "";
  if (msg == NULL && conn->pg != NULL) {
    snprintf(text, sizeof text, "%s", PQerrorMessage(conn->pg));
    if (!was_up) {
      pool->last_sqlstate = take_connect_state(text);
      /* Class 28: the server refused the credentials; or it asked for a
       * password the conninfo does not have (libpq's own error). */
      if (strncmp(pool->last_sqlstate, "28", 2) == 0 ||
          PQconnectionNeedsPassword(conn->pg))
        pool->last_code = ORM_EAUTH;
    }
    msg = text;
  }
  if (msg == NULL || *msg == '\0')
    msg = orm_strerror(was_up ? ORM_ECONNLOST : ORM_ECONNECT);
  snprintf(pool->last_error, sizeof pool->last_error, "%.*s",
           (int)sizeof pool->last_error - 1, msg);
  size_t n = strlen(pool->last_error);
  while (n > 0 &&
         (pool->last_error[n - 1] == '\n' || pool->last_error[n - 1] == ' '))
    pool->last_error[--n] = '\0';
  /* Closed first: nothing that completes below can hand the connection
   * back to the pool (a transaction's end) or fail it a second time. */
  orm__conn_shutdown(conn);
  orm__conn_fail_all(conn, ORM_ECONNLOST, pool->last_error, ORM__NOW);
  if (conn->tx != NULL) {
    orm_tx_t *tx = conn->tx;
    conn->tx = NULL;
    orm__tx_conn_lost(tx);
  }
  if (!was_up) {
    pool->stats.connect_failures++;
    conn->failures++;
  }
  conn->state = CONN_BROKEN;
  orm__list_remove(&conn->link);
  orm__list_push_back(&pool->broken, &conn->link);
  if (pool->state != POOL_OPEN)
    return;
  /* A lost connection is retried at once; failed attempts back off. */
  uint64_t delay = conn->failures == 0 ? 0 : backoff_ms(pool, conn->failures);
  orm__conn_retry_in(conn, delay);
  if (pool->cfg.on_log != NULL)
    orm__pool_log(pool, &where, ORM_LOG_WARN,
                  was_up ? "connection_lost" : "connect_failed",
                  was_up ? 0 : conn->failures, delay, "%s; next try in %llu ms",
                  pool->last_error, (unsigned long long)delay);
  if (!was_up && orm__list_empty(&pool->ready) &&
      orm__list_empty(&pool->pinned) && orm__list_empty(&pool->connecting)) {
    /* Nothing can serve the queue: fail it now rather than let it wait
     * out the outage; new requests fail fast until a connection is up. */
    pool->down = 1;
    if (pool->cfg.on_log != NULL)
      orm__pool_log(pool, &where, ORM_LOG_ERROR, "pool_down", conn->failures,
                    delay,
                    "no connection is up: requests fail until one is (%s)",
                    pool->last_error);
    fail_queue(pool, pool->last_code, pool->last_error, pool->last_sqlstate,
               ORM__NOW);
  }
  orm__pool_kick(pool);
}

/* ---- server-side cancel --------------------------------------------------- */

typedef struct {
  uv_work_t work;
  orm_pool_t *pool;
  int backend_pid;
  PGcancel *cancel;
  int ok;
  char err[256];
} cancel_job_t;

static void cancel_work(uv_work_t *work) {
  cancel_job_t *job = work->data;
  /* PQcancel blocks on a connection of its own: thread pool only. */
  job->ok = PQcancel(job->cancel, job->err, sizeof job->err);
}

static void cancel_after(uv_work_t *work, int status) {
  cancel_job_t *job = work->data;
  orm_pool_t *pool = job->pool;
  int pid = job->backend_pid;
  PQfreeCancel(job->cancel);
  orm__free(job);
  pool->pending_cancels--;
  if (pool->state != POOL_OPEN) {
    orm__pool_kick(pool);
    return;
  }
  /* The thread pool may have run it late: the window in which a 57014 on
   * another statement counts as a stray starts again now that the cancel
   * has really gone out. */
  const orm__link_t *lists[] = {&pool->ready, &pool->pinned};
  for (size_t i = 0; i < 2; i++) {
    for (orm__link_t *l = lists[i]->next; l != lists[i]; l = l->next) {
      orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
      if (conn->pg != NULL && PQbackendPID(conn->pg) == pid)
        conn->cancel_guard_until = uv_now(pool->loop) + ORM__CANCEL_GUARD_MS;
    }
  }
}

void orm__pool_cancel_on_server(orm_pool_t *pool, orm__conn_t *conn) {
  if (conn->pg == NULL)
    return;
  cancel_job_t *job = orm__malloc(sizeof *job);
  if (job == NULL)
    return; /* the result is discarded on arrival all the same */
  job->cancel = PQgetCancel(conn->pg);
  if (job->cancel == NULL) {
    orm__free(job);
    return;
  }
  job->pool = pool;
  job->backend_pid = PQbackendPID(conn->pg);
  job->work.data = job;
  if (uv_queue_work(pool->loop, &job->work, cancel_work, cancel_after) != 0) {
    PQfreeCancel(job->cancel);
    orm__free(job);
    return;
  }
  pool->pending_cancels++;
  conn->cancel_guard_until = uv_now(pool->loop) + ORM__CANCEL_GUARD_MS;
}

/* ---- maintenance ---------------------------------------------------------- */

static unsigned list_length(const orm__link_t *list) {
  unsigned n = 0;
  for (const orm__link_t *l = list->next; l != list; l = l->next)
    n++;
  return n;
}

/* Closes the connections of `list` that are broken or connecting again
 * after a failure, while the pool has more than its minimum and nobody
 * waits. */
static void drop_failing(orm_pool_t *pool, orm__link_t *list) {
  orm__link_t *l = list->next;
  while (l != list && pool->nconns > pool->cfg.min_conns &&
         pool->queued == 0) {
    orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    if (conn->state == CONN_BROKEN ||
        (conn->state == CONN_CONNECTING && conn->failures > 0))
      orm__conn_destroy(conn);
  }
}

static void on_maint(uv_timer_t *timer) {
  orm_pool_t *pool = timer->data;
  if (pool->state != POOL_OPEN)
    return;
  uint64_t now = uv_now(pool->loop);
  /* Connections that cannot serve go first, beyond the minimum: broken
   * ones waiting to reconnect, and ones in an attempt after a failed one.
   * Not worth retrying while nobody waits, and never kept in place of a
   * working one. */
  drop_failing(pool, &pool->broken);
  drop_failing(pool, &pool->connecting);
  /* Idle ones go beyond the minimum of working connections (ready or in a
   * transaction): one that merely tries to reconnect does not count, or a
   * working connection would be closed to keep a failing one. */
  unsigned working = list_length(&pool->ready) + list_length(&pool->pinned);
  orm__link_t *l = pool->ready.next;
  while (l != &pool->ready) {
    orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    /* Idle means nothing in its slots and no answer held for a sync. */
    if (conn->slot_count > 0 || !orm__list_empty(&conn->held))
      continue;
    int too_old = pool->cfg.max_lifetime_ms > 0 &&
                  now - conn->created_at >= pool->cfg.max_lifetime_ms;
    int idle_extra = pool->cfg.idle_timeout_ms > 0 &&
                     working > pool->cfg.min_conns &&
                     now - conn->idle_since >= pool->cfg.idle_timeout_ms;
    if (too_old || idle_extra) {
      if (pool->cfg.on_log != NULL) {
        orm__where_t w;
        orm__conn_where(conn, &w);
        orm__pool_log(pool, &w, ORM_LOG_DEBUG, "retired", 0, 0,
                      "connection closed: %s",
                      too_old ? "older than max_lifetime_ms"
                              : "idle longer than idle_timeout_ms");
      }
      orm__conn_destroy(conn);
      working--;
    }
  }
  while (pool->nconns < pool->cfg.min_conns && new_conn(pool) != NULL)
    ;
  /* A BEGIN may be waiting out a connection's cancel guard. */
  if (pool->queued > 0)
    orm__pool_kick(pool);
}

/* ---- open, close, stats --------------------------------------------------- */

static int config_defaults(orm_pool_config_t *c) {
  if (c->max_conns == 0)
    c->max_conns = 4;
  if (c->min_conns == 0)
    c->min_conns = 1;
  if (c->min_conns > c->max_conns)
    return ORM_EINVAL;
  if (c->pipeline_depth == 0)
    c->pipeline_depth = 64;
  if (c->queue_max == 0)
    c->queue_max = 65536;
  if (c->connect_timeout_ms == 0)
    c->connect_timeout_ms = 10000;
  if (c->reconnect_min_ms == 0)
    c->reconnect_min_ms = 100;
  if (c->reconnect_max_ms == 0)
    c->reconnect_max_ms = 5000;
  if (c->reconnect_max_ms < c->reconnect_min_ms)
    return ORM_EINVAL;
  if (c->idle_timeout_ms == 0)
    c->idle_timeout_ms = 300000;
  if (c->health_check_ms == 0)
    c->health_check_ms = 30000;
  if (c->transaction_pooling)
    c->no_prepare = true;
  return 0;
}

static void pool_free(orm_pool_t *pool) {
  /* Transactions the caller never ended: their handles go with the pool. */
  while (!orm__list_empty(&pool->closed_txs))
    orm__tx_free_closed(
        ORM__CONTAINER_OF(pool->closed_txs.next, orm_tx_t, link));
  /* Futures the caller still holds outlive the pool, detached from it. */
  while (!orm__list_empty(&pool->all_reqs)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(pool->all_reqs.next, orm__request_t, all);
    orm__list_remove(&req->all);
    if (req->state == REQ_FREE) {
      orm__req_free(req);
    } else {
      req->pool = NULL;
      req->future.sched = NULL;
    }
  }
  orm__listener_free(pool);
  orm__stmts_free(&pool->stmts);
  orm__metrics_free(pool);
  orm__explain_free_all(pool);
  orm__free(pool->conninfo);
  if (pool->cache.free != NULL)
    pool->cache.free(pool->cache.data);
  orm__free(pool);
}

int orm_pool_open(orm_pool_t **out, uv_loop_t *loop,
                  const orm_pool_config_t *config) {
  if (out != NULL)
    *out = NULL;
  if (out == NULL || loop == NULL || config == NULL ||
      config->conninfo == NULL)
    return ORM_EINVAL;
  orm_pool_config_t cfg = *config;
  int rc = config_defaults(&cfg);
  if (rc != 0)
    return rc;
  /* Reject what libpq cannot parse now, not on every reconnect. */
  char *errmsg = NULL;
  PQconninfoOption *opts = PQconninfoParse(config->conninfo, &errmsg);
  if (opts == NULL) {
    int nomem = errmsg == NULL;
    PQfreemem(errmsg);
    return nomem ? ORM_ENOMEM : ORM_EINVAL;
  }
  PQconninfoFree(opts);

  orm_pool_t *pool = orm__calloc(1, sizeof *pool);
  if (pool == NULL)
    return ORM_ENOMEM;
  pool->conninfo = orm__strdup(config->conninfo);
  if (pool->conninfo == NULL) {
    orm__free(pool);
    return ORM_ENOMEM;
  }
  cfg.conninfo = pool->conninfo;
  pool->cfg = cfg;
  pool->exec.pool = pool;
  pool->loop = loop;
  pool->data = cfg.data;
  pool->rng = uv_hrtime() | 1;
  pool->last_code = ORM_ECONNECT;
  pool->last_sqlstate = "";
  orm__list_init(&pool->queue);
  orm__list_init(&pool->free_reqs);
  orm__list_init(&pool->all_reqs);
  orm__list_init(&pool->connecting);
  orm__list_init(&pool->ready);
  orm__list_init(&pool->pinned);
  orm__list_init(&pool->broken);
  orm__list_init(&pool->txs);
  orm__list_init(&pool->closed_txs);
  orm__list_init(&pool->lsn_next);
  orm__list_init(&pool->lsn_sent);
  /* Allocate everything that can fail before the first handle exists, so
   * that a failure leaves nothing behind on the loop. */
  orm__conn_t **conns = orm__metrics_init(pool) == 0
                            ? orm__calloc(cfg.min_conns, sizeof *conns)
                            : NULL;
  for (unsigned i = 0; conns != NULL && i < cfg.min_conns; i++) {
    conns[i] = orm__malloc(sizeof **conns);
    if (conns[i] == NULL) {
      while (i > 0)
        orm__free(conns[--i]);
      orm__free(conns);
      conns = NULL;
    }
  }
  if (conns == NULL) {
    pool_free(pool);
    return ORM_ENOMEM;
  }
  if (orm__mailbox_open(&pool->mailbox, loop, 0) != 0) {
    for (unsigned i = 0; i < cfg.min_conns; i++)
      orm__free(conns[i]);
    orm__free(conns);
    pool_free(pool);
    return ORM_ENOMEM;
  }
  orm__sched_init(&pool->sched, loop, on_work); /* cannot fail */
  pool->handles_open = 3; /* the scheduler's two and the mailbox */
  uv_timer_init(loop, &pool->maint);
  pool->maint.data = pool;
  pool->handles_open++;
  uv_timer_start(&pool->maint, on_maint, ORM__MAINT_MS, ORM__MAINT_MS);
  /* The maintenance timer alone must not keep the loop running. */
  uv_unref((uv_handle_t *)&pool->maint);
  for (unsigned i = 0; i < cfg.min_conns; i++) {
    orm__conn_init(conns[i], pool);
    orm__conn_start(conns[i]);
  }
  orm__free(conns);
  *out = pool;
  return 0;
}

void *orm_pool_data(const orm_pool_t *pool) {
  return pool != NULL ? pool->data : NULL;
}

static void maybe_free(orm_pool_t *pool) {
  if (pool->handles_open != 0 || pool->pending_cancels != 0)
    return;
  orm_pool_close_cb cb = pool->close_cb;
  if (cb != NULL)
    cb(pool, pool->data);
  pool_free(pool);
}

static void on_handle_closed(uv_handle_t *handle) {
  orm_pool_t *pool = handle->data;
  pool->handles_open--;
  maybe_free(pool);
}

static void on_mailbox_closed(void *data) {
  orm_pool_t *pool = data;
  pool->mailbox = NULL;
  pool->handles_open--;
  maybe_free(pool);
}

int orm_pool_post(orm_pool_t *pool, orm_post_fn fn, void *data) {
  if (pool == NULL || fn == NULL)
    return ORM_EINVAL;
  /* Not pool->state: another thread may be asking. The mailbox's own
   * lock says whether the close has reached it. */
  return orm_mailbox_post(pool->mailbox, fn, data);
}

static void on_sched_closed(orm__sched_t *sched) {
  orm_pool_t *pool = ORM__CONTAINER_OF(sched, orm_pool_t, sched);
  pool->handles_open -= 2;
  maybe_free(pool);
}

static void destroy_all(orm__link_t *list) {
  while (!orm__list_empty(list))
    orm__conn_destroy(ORM__CONTAINER_OF(list->next, orm__conn_t, link));
}

/* Runs from the scheduler once the close call has returned and the
 * callbacks it caused have run. Called again as handles close. */
static void finish_close(orm_pool_t *pool) {
  if (pool->state == POOL_CLOSING) {
    pool->state = POOL_CLOSING_HANDLES;
    destroy_all(&pool->connecting);
    destroy_all(&pool->ready);
    destroy_all(&pool->pinned);
    destroy_all(&pool->broken);
    uv_close((uv_handle_t *)&pool->maint, on_handle_closed);
    /* Posts still waiting run now; what they call returns ORM_ECLOSED. */
    orm__mailbox_close(pool->mailbox, on_mailbox_closed, pool);
  }
  /* The scheduler goes last: it delivers until everything is done. */
  if (pool->state == POOL_CLOSING_HANDLES && pool->handles_open == 2 &&
      pool->pending_cancels == 0 && pool->sched.deferred_head == NULL) {
    pool->state = POOL_CLOSING_SCHED;
    orm__sched_close(&pool->sched, on_sched_closed);
  }
}

static void cancel_conns(orm_pool_t *pool, orm__link_t *list) {
  for (orm__link_t *l = list->next; l != list; l = l->next) {
    orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
    if (conn->in_flight > 0 || conn->lease_started)
      orm__pool_cancel_on_server(pool, conn);
    orm__conn_fail_all(conn, ORM_ECANCELED, "the pool was closed", ORM__LATER);
  }
}

int orm_pool_close(orm_pool_t *pool, orm_pool_close_cb cb) {
  if (pool == NULL)
    return ORM_EINVAL;
  if (pool->state != POOL_OPEN)
    return ORM_ECLOSED;
  pool->state = POOL_CLOSING;
  pool->close_cb = cb;
  orm__notices_drop(pool);
  orm__lsn_close(pool);
  fail_queue(pool, ORM_ECANCELED, "the pool was closed", NULL, ORM__LATER);
  while (!orm__list_empty(&pool->txs)) {
    orm_tx_t *tx = ORM__CONTAINER_OF(pool->txs.next, orm_tx_t, link);
    orm__tx_pool_closing(tx, ORM__LATER);
  }
  cancel_conns(pool, &pool->connecting);
  cancel_conns(pool, &pool->ready);
  cancel_conns(pool, &pool->pinned);
  cancel_conns(pool, &pool->broken);
  orm__pool_kick(pool);
  return 0;
}

int orm_pool_stats(const orm_pool_t *pool, orm_pool_stats_t *stats) {
  if (pool == NULL || stats == NULL)
    return ORM_EINVAL;
  *stats = pool->stats;
  stats->conns_connecting = stats->conns_idle = stats->conns_busy = 0;
  stats->conns_in_tx = stats->conns_broken = 0;
  stats->in_flight = 0;
  const orm__link_t *lists[] = {&pool->connecting, &pool->ready,
                                &pool->pinned, &pool->broken};
  for (size_t i = 0; i < 4; i++) {
    for (const orm__link_t *l = lists[i]->next; l != lists[i]; l = l->next) {
      const orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
      stats->in_flight += conn->in_flight;
      switch (conn->state) {
      case CONN_CONNECTING:
      case CONN_CHECKING:
        stats->conns_connecting++;
        break;
      case CONN_READY:
        if (conn->in_flight > 0)
          stats->conns_busy++;
        else
          stats->conns_idle++;
        break;
      case CONN_PINNED:
        stats->conns_in_tx++;
        break;
      case CONN_LENT: /* a COPY, a stream, the listener */
        if (conn->tx != NULL)
          stats->conns_in_tx++;
        else
          stats->conns_busy++;
        break;
      default:
        stats->conns_broken++;
        break;
      }
    }
  }
  stats->queued = pool->queued;
  return 0;
}

/* ---- raw SQL -------------------------------------------------------------- */

/* Checks shared by every call that makes a request. */
int orm__pool_usable(const orm_pool_t *pool) {
  if (pool == NULL)
    return ORM_EINVAL;
  return pool->state != POOL_OPEN ? ORM_ECLOSED : 0;
}

orm__pool_cache_t *orm__pool_cache(orm_pool_t *pool) { return &pool->cache; }

struct orm__sched_s *orm__pool_sched(orm_pool_t *pool) { return &pool->sched; }

unsigned orm__pool_max_conns(const orm_pool_t *pool) {
  return pool->cfg.max_conns;
}

uv_loop_t *orm__pool_loop(orm_pool_t *pool) { return pool->loop; }

orm_exec_t *orm_pool_exec(orm_pool_t *pool) {
  return pool != NULL ? &pool->exec : NULL;
}

orm_pool_t *orm__exec_pool(const orm_exec_t *exec) {
  if (exec->cluster != NULL)
    exec = exec->writes; /* the primary's: for caches and the loop */
  return exec->tx != NULL ? exec->tx->pool : exec->pool;
}

int (orm_query_async)(orm_exec_t *exec, const char *sql,
                      const orm_param_t *params, size_t nparams,
                      orm_future_cb cb, void *data, orm_future_t **out) {
  orm__params_in_t in = {.values = params, .n = nparams};
  return orm__exec_submit(exec, sql, NULL, &in, NULL, NULL, cb, data, out);
}

int orm__statement_args(const char *sql, const orm__params_in_t *in) {
  if (sql == NULL || in == NULL)
    return ORM_EINVAL;
  if (in->values == NULL && in->n > 0 &&
      (in->buf == NULL || in->items == NULL || in->offsets == NULL))
    return ORM_EINVAL;
  return in->n > ORM_MAX_PARAMS ? ORM_E2BIG : 0;
}

int orm__exec_submit(orm_exec_t *exec, const char *sql, orm__stmt_hint_t *hint,
                     const orm__params_in_t *in, orm__transform_fn transform,
                     void *const *ctx, orm_future_cb cb, void *data,
                     orm_future_t **out) {
  /* A routed executor that reaches here unresolved is raw SQL: it may
   * write, so the primary takes it (or a replica, when asked for). */
  if (exec != NULL && exec->cluster != NULL) {
    int rc = orm__exec_usable(exec);
    if (rc != 0)
      return rc;
    exec = orm__exec_route(exec, ORM__WRITE);
  }
  if (exec != NULL && exec->tx != NULL)
    return orm__tx_submit(exec->tx, sql, hint, in, transform, ctx, cb, data,
                          out);
  if (out != NULL)
    *out = NULL;
  orm_pool_t *pool = exec != NULL ? exec->pool : NULL;
  int rc = orm__pool_usable(pool);
  if (rc == 0)
    rc = orm__statement_args(sql, in);
  if (rc != 0)
    return rc;
  if (pool->queued >= pool->cfg.queue_max)
    return ORM_EQUEUEFULL;
  orm__request_t *req = orm__pool_req_new(pool, REQ_QUERY, cb, data);
  if (req == NULL)
    return ORM_ENOMEM;
  orm__req_set_transform(req, transform, ctx);
  rc = orm__pool_prepare_request(req, sql, in, !pool->cfg.no_prepare, hint);
  if (rc == 0 && exec->sink != NULL && req->writes) {
    req->sink = exec->sink;
    exec->sink->refs++;
  }
  if (rc == 0 && !pool->down)
    rc = orm__pool_enqueue(pool, req);
  if (rc != 0) {
    orm__pool_req_discard(req);
    return rc;
  }
  if (out != NULL) {
    orm__future_ref(&req->future);
    *out = &req->future;
  }
  if (pool->down) {
    orm__future_set_message(&req->future, "%s", pool->last_error);
    req->future.error.sqlstate = pool->last_sqlstate;
    orm__req_complete(req, pool->last_code, ORM__LATER);
  }
  return 0;
}
