/* SPDX-License-Identifier: MIT */
/* Transactions: BEGIN pins a connection, statements follow on it in order
 * (those sent in one loop turn sharing one sync: inside BEGIN a sync
 * commits nothing), COMMIT or ROLLBACK unpins it. Statements issued before
 * BEGIN has gone out wait in the transaction's queue and follow it in the
 * same flight. */
#include <assert.h>
#include <string.h>

#include "base/alloc.h"
#include "pool_int.h"

static void tx_free(orm_tx_t *tx) {
  if (tx->conn != NULL && tx->conn->tx == tx)
    tx->conn->tx = NULL;
  orm__list_remove(&tx->link); /* the pool's list, live or closed */
  if (tx->end != NULL)
    orm__pool_req_discard(tx->end);
  if (tx->sink != NULL)
    orm__lsn_sink_unref(tx->sink);
  orm__free(tx);
}

void orm__tx_free_closed(orm_tx_t *tx) {
  /* Every request of the pool has completed by now, BEGIN too. */
  assert(tx->begin == NULL);
  tx_free(tx);
}

/* COMMIT or ROLLBACK is over; the transaction goes once BEGIN, which
 * points at it, has left the machine too. */
static void tx_finish(orm_tx_t *tx) {
  if (tx->begin != NULL)
    tx->phase = TX_ENDED;
  else
    tx_free(tx);
}

void orm__tx_unpin(orm_tx_t *tx) {
  orm__conn_t *conn = tx->conn;
  tx->conn = NULL;
  if (conn == NULL)
    return;
  conn->tx = NULL;
  if (conn->state != CONN_PINNED || conn->pg == NULL || tx->pool == NULL ||
      tx->pool->state != POOL_OPEN)
    return;
  /* A connection goes back only outside any transaction: one whose
   * ROLLBACK failed (a stray cancel) would fail everything after it. */
  if (PQtransactionStatus(conn->pg) == PQTRANS_IDLE)
    orm__pool_conn_ready(tx->pool, conn);
  else
    orm__pool_conn_failed(tx->pool, conn, NULL);
}

/* What `req` of a transaction that cannot go on (for `code`) completes
 * with: nothing of the transaction is left on the server, so a ROLLBACK
 * has done its job. */
static int dead_status(const orm__request_t *req, int code) {
  return req->kind == REQ_ROLLBACK && code != ORM_ECANCELED ? 0 : code;
}

/* Fails `req` of a dead transaction from inside a public call. */
static void fail_dead(orm_tx_t *tx, orm__request_t *req) {
  int status = dead_status(req, tx->dead);
  if (status != 0)
    orm__future_set_message(&req->future, "%s", tx->why);
  orm__pool_req_fail_deferred(req, status);
}

/* The transaction cannot go on, for `code` (tx->why says why): fails what
 * waits for its connection, and whatever is issued on it from now on. */
static void tx_die(orm_tx_t *tx, int code, orm__when_t when) {
  tx->dead = code;
  /* Completing COMMIT or ROLLBACK frees the transaction: walk a list of
   * our own, never tx->queue. */
  orm__link_t waiting;
  orm__list_init(&waiting);
  while (!orm__list_empty(&tx->queue)) {
    orm__link_t *l = tx->queue.next;
    orm__list_remove(l);
    orm__list_push_back(&waiting, l);
  }
  while (!orm__list_empty(&waiting)) {
    orm__request_t *req = ORM__CONTAINER_OF(waiting.next, orm__request_t, link);
    orm__list_remove(&req->link);
    if (req->abandoned) { /* a cancelled COMMIT turned ROLLBACK */
      orm__req_drop(req);
      continue;
    }
    int status = dead_status(req, code);
    if (status != 0)
      orm__future_set_message(&req->future, "%s", tx->why);
    orm__req_complete(req, status, when);
  }
}

void orm__tx_conn_lost(orm_tx_t *tx) {
  tx->conn = NULL;
  snprintf(tx->why, sizeof tx->why, "the transaction's connection was lost");
  tx_die(tx, ORM_ECONNLOST, ORM__NOW);
}

void orm__tx_pool_closing(orm_tx_t *tx, orm__when_t when) {
  /* A handle the caller holds stays valid until the close callback has
   * run; the pool frees what is still on its closed list then. */
  orm__list_remove(&tx->link);
  orm__list_push_back(&tx->pool->closed_txs, &tx->link);
  tx->pool = NULL;
  if (tx->conn != NULL) {
    tx->conn->tx = NULL;
    tx->conn = NULL;
  }
  snprintf(tx->why, sizeof tx->why, "the pool was closed");
  tx_die(tx, ORM_ECANCELED, when);
}

void orm__tx_begin_done(orm__request_t *begin, int status, int abandoned,
                        orm__when_t when) {
  orm_tx_t *tx = begin->tx;
  tx->begin = NULL;
  if (tx->phase == TX_ENDED) { /* ended (it had died) while BEGIN was out */
    orm__tx_unpin(tx);
    tx_free(tx);
    return;
  }
  if (status == 0 && !abandoned)
    return; /* begun: what waits behind BEGIN is on its way */
  if (status == 0 && tx->conn != NULL && tx->end != NULL) {
    /* Begun on the server, but nobody waits for it any more. */
    orm__request_t *end = tx->end;
    tx->end = NULL;
    tx->phase = TX_ENDING;
    end->kind = REQ_ROLLBACK;
    end->future.cb = NULL;
    orm__pool_prepare_request(end, "ROLLBACK", NULL, 0, NULL);
    orm__list_push_back(&tx->queue, &end->link);
    orm__pool_kick(end->pool);
    return;
  }
  if (tx->mode == TX_ON_BEGIN) { /* nobody has the handle */
    orm__tx_unpin(tx);
    tx_free(tx);
    return;
  }
  /* The caller holds the handle: what it queued fails with BEGIN's error,
   * and the handle stays until the caller ends it (which may be now: a
   * ROLLBACK waiting in the queue frees the transaction). */
  orm__tx_unpin(tx);
  if (tx->dead == 0) {
    int code = status != 0 ? status : ORM_ECANCELED;
    const char *msg = begin->future.error.message;
    snprintf(tx->why, sizeof tx->why, "the transaction did not begin: %s",
             msg != NULL ? msg : orm_strerror(code));
    tx_die(tx, code, when);
  }
}

void orm__tx_end_done(orm_tx_t *tx, int status) {
  (void)status; /* COMMIT failing still ends the transaction */
  orm__tx_unpin(tx);
  tx_finish(tx);
}

/* COMMIT or ROLLBACK is on its way: nothing of the transaction can follow
 * it, so the next transaction (or any statement) may. */
static void release_conn(orm_tx_t *tx, orm__conn_t *conn) {
  tx->conn = NULL;
  conn->tx = NULL;
  orm__pool_conn_ready(tx->pool, conn);
}

/* Sends what waits in `tx`'s queue on its pinned connection, as far as
 * the connection takes it. 0, or 1 when a failure may have ended other
 * transactions, this one among them (it may be gone). */
static int pump(orm_pool_t *pool, orm_tx_t *tx) {
  orm__conn_t *conn = tx->conn;
  while (conn != NULL && conn->state == CONN_PINNED && conn->pg != NULL &&
         !orm__list_empty(&tx->queue) &&
         conn->in_flight < orm__conn_capacity(conn)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(tx->queue.next, orm__request_t, link);
    if (req->kind == REQ_LEASE) {
      /* Not before BEGIN has completed: a BEGIN skipped in a shared
       * segment goes again, and nothing of the lease may run outside
       * its transaction meanwhile. Then the connection is the lease's
       * until it ends, and the rest follows. */
      if (tx->begin != NULL)
        return 0;
      orm__list_remove(&req->link);
      orm__lease_assign(conn, req);
      return 1; /* its start may have failed the transaction */
    }
    orm__list_remove(&req->link);
    int rc = orm__conn_send(conn, req);
    if (rc == ORM_ENOMEM) {
      /* Not sent. What follows it must not run without it, and the
       * callbacks run later: this is no place for one to close the
       * pool. COMMIT or ROLLBACK that could not go out ends the
       * transaction as a lost connection does (the connection is reset
       * when it comes back in a transaction). */
      int end = orm__req_ends_tx(req);
      orm__req_complete(req, ORM_ENOMEM, ORM__LATER);
      if (!end) {
        snprintf(tx->why, sizeof tx->why,
                 "an earlier statement of the transaction could not be "
                 "sent: out of memory");
        tx_die(tx, ORM_ENOMEM, ORM__LATER);
      }
      return 1; /* either may have freed the transaction */
    } else if (rc != 0) {
      /* Back in the queue only if it never reached a slot: one that did
       * is failed with the connection (and would complete twice). */
      if (req->state == REQ_QUEUED)
        orm__list_push_front(&tx->queue, &req->link);
      orm__pool_conn_failed(pool, conn, NULL); /* fails the transaction */
      /* That may have ended other transactions (their COMMIT was still
       * in the connection's slots). */
      return 1;
    } else {
      orm__future_owner_deadline(&req->future,
                                 pool->cfg.statement_timeout_ms);
      if (orm__req_ends_tx(req)) {
        release_conn(tx, conn);
        return 0;
      }
    }
  }
  return 0;
}

void orm__tx_pump(orm_tx_t *tx) { (void)pump(tx->pool, tx); }

void orm__tx_pump_all(orm_pool_t *pool) {
restart:
  for (orm__link_t *l = pool->txs.next; l != &pool->txs;) {
    orm_tx_t *tx = ORM__CONTAINER_OF(l, orm_tx_t, link);
    l = l->next;
    if (pump(pool, tx))
      goto restart;
  }
}

/* ---- public calls ---------------------------------------------------------- */

/* A transaction and its BEGIN, queued for a connection. */
static int tx_open(orm_pool_t *pool, const char *begin_sql, orm__tx_mode_t mode,
                   orm_future_cb cb, void *data, orm_future_t **begin_out,
                   orm_tx_t **out) {
  int rc = orm__pool_usable(pool);
  if (rc != 0)
    return rc;
  if (pool->queued >= pool->cfg.queue_max)
    return ORM_EQUEUEFULL;
  orm_tx_t *tx = orm__calloc(1, sizeof *tx);
  if (tx == NULL)
    return ORM_ENOMEM;
  /* COMMIT / ROLLBACK is allocated now so that ending can never fail. */
  orm__request_t *begin = orm__pool_req_new(pool, REQ_BEGIN, cb, data);
  orm__request_t *end =
      begin ? orm__pool_req_new(pool, REQ_ROLLBACK, NULL, NULL) : NULL;
  if (end == NULL ||
      (rc = orm__pool_prepare_request(begin, begin_sql, NULL, 0, NULL)) !=
          0) {
    if (begin != NULL)
      orm__pool_req_discard(begin);
    if (end != NULL)
      orm__pool_req_discard(end);
    orm__free(tx);
    return rc != 0 ? rc : ORM_ENOMEM;
  }
  /* BEGIN opens the segment the statements behind it join: should it
   * fail, they are skipped rather than run outside a transaction. */
  begin->seg = ORM_SEG_READ;
  tx->exec.tx = tx;
  tx->pool = pool;
  tx->begin = begin;
  tx->end = end;
  tx->mode = mode;
  tx->phase = TX_OPEN;
  orm__list_init(&tx->queue);
  orm__list_push_back(&pool->txs, &tx->link);
  begin->tx = tx;
  end->tx = tx;
  if (!pool->down && (rc = orm__pool_enqueue(pool, begin)) != 0) {
    tx->begin = NULL;
    orm__pool_req_discard(begin);
    tx_free(tx);
    return rc;
  }
  if (begin_out != NULL) {
    orm__future_ref(&begin->future);
    *begin_out = &begin->future;
  }
  if (out != NULL)
    *out = tx;
  if (pool->down)
    orm__pool_req_fail_down(begin);
  return 0;
}

/* The BEGIN statement for `options`, or NULL for a bad combination. */
static const char *begin_sql(unsigned options) {
  static const char *const sql[4][3] = {
      /* read write, READ ONLY, READ ONLY DEFERRABLE */
      {"BEGIN", "BEGIN READ ONLY", NULL},
      {"BEGIN ISOLATION LEVEL REPEATABLE READ",
       "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", NULL},
      {"BEGIN ISOLATION LEVEL SERIALIZABLE",
       "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY",
       "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE"},
      {"BEGIN ISOLATION LEVEL READ COMMITTED",
       "BEGIN ISOLATION LEVEL READ COMMITTED, READ ONLY", NULL},
  };
  const unsigned levels =
      ORM_TX_READ_COMMITTED | ORM_TX_REPEATABLE_READ | ORM_TX_SERIALIZABLE;
  if ((options & ~(unsigned)(levels | ORM_TX_READ_ONLY | ORM_TX_DEFERRABLE)) != 0)
    return NULL;
  unsigned l = options & levels;
  if ((l & (l - 1)) != 0)
    return NULL; /* two levels */
  unsigned level = l == ORM_TX_SERIALIZABLE      ? 2
                   : l == ORM_TX_REPEATABLE_READ ? 1
                   : l == ORM_TX_READ_COMMITTED  ? 3
                                                 : 0;
  unsigned access = (options & ORM_TX_DEFERRABLE) ? 2
                    : (options & ORM_TX_READ_ONLY) ? 1
                                                   : 0;
  if (access == 2 && !(options & ORM_TX_READ_ONLY))
    return NULL;
  return sql[level][access];
}

int orm_tx_begin_with(orm_pool_t *pool, unsigned options, orm_tx_t **out) {
  if (out == NULL)
    return ORM_EINVAL;
  *out = NULL;
  const char *sql = begin_sql(options);
  if (sql == NULL)
    return ORM_EINVAL;
  return tx_open(pool, sql, TX_HANDED_OUT, NULL, NULL, NULL, out);
}

int orm_tx_begin(orm_pool_t *pool, orm_tx_t **out) {
  return orm_tx_begin_with(pool, 0, out);
}

int orm_tx_begin_async(orm_pool_t *pool, orm_future_cb cb, void *data,
                       orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  return tx_open(pool, "BEGIN", TX_ON_BEGIN, cb, data, out, NULL);
}

static int tx_usable(const orm_tx_t *tx) {
  if (tx == NULL)
    return ORM_EINVAL;
  if (tx->phase != TX_OPEN)
    return ORM_ESTATE;
  if (tx->pool == NULL || tx->pool->state != POOL_OPEN)
    return ORM_ECLOSED;
  return 0;
}

int orm__exec_usable(const orm_exec_t *exec) {
  if (exec == NULL)
    return ORM_EINVAL;
  if (exec->cluster != NULL)
    return orm__cluster_usable(exec->cluster);
  return exec->tx != NULL ? tx_usable(exec->tx) : orm__pool_usable(exec->pool);
}

/* Hands `req` to `tx` (its future to the caller, if asked for): queued
 * for the pinned connection, or failed if the transaction cannot go on. */
static void tx_enqueue(orm_tx_t *tx, orm__request_t *req, orm_future_t **out) {
  if (out != NULL) {
    orm__future_ref(&req->future);
    *out = &req->future;
  }
  if (tx->dead) {
    fail_dead(tx, req);
  } else {
    orm__list_push_back(&tx->queue, &req->link);
    orm__pool_kick(tx->pool);
  }
}

/* Queues a statement of `tx`; `sql` is copied unless `named`. `seg`:
 * ORM_SEG_READ joins the statements sent in the same loop turn,
 * ORM_SEG_OWN starts a segment of its own. */
static int tx_submit(orm_tx_t *tx, orm__seg_class_t seg, const char *sql,
                     orm__stmt_hint_t *hint, const orm__params_in_t *in,
                     int named, orm__transform_fn transform, void *const *ctx,
                     orm_future_cb cb, void *data, orm_future_t **out) {
  orm__request_t *req = orm__pool_req_new(tx->pool, REQ_TX_QUERY, cb, data);
  if (req == NULL)
    return ORM_ENOMEM;
  orm__req_set_transform(req, transform, ctx);
  int rc = orm__pool_prepare_request(req, sql, in, named, hint);
  if (rc != 0) {
    orm__pool_req_discard(req);
    return rc;
  }
  req->tx = tx;
  /* Inside BEGIN ... COMMIT a sync commits nothing, so the statements sent
   * in one loop turn share one: the first that fails reports its error,
   * the ones after it are reported skipped, as the server skipped them. */
  req->seg = seg;
  tx_enqueue(tx, req, out);
  return 0;
}

int orm__tx_submit_lease(orm_tx_t *tx, orm__request_t *req) {
  req->tx = tx;
  tx_enqueue(tx, req, NULL);
  return 0;
}

orm_exec_t *orm_tx_exec(orm_tx_t *tx) { return tx != NULL ? &tx->exec : NULL; }

void orm_tx_set_data(orm_tx_t *tx, void *data) {
  if (tx != NULL)
    tx->data = data;
}

void *orm_tx_data(const orm_tx_t *tx) { return tx != NULL ? tx->data : NULL; }

int orm__tx_submit(orm_tx_t *tx, const char *sql, orm__stmt_hint_t *hint,
                   const orm__params_in_t *in, orm__transform_fn transform,
                   void *const *ctx,
                   orm_future_cb cb, void *data, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  int rc = tx_usable(tx);
  if (rc == 0)
    rc = orm__statement_args(sql, in);
  if (rc != 0)
    return rc;
  return tx_submit(tx, ORM_SEG_READ, sql, hint, in, !tx->pool->cfg.no_prepare,
                   transform, ctx, cb, data, out);
}

static int tx_end(orm_tx_t *tx, orm__req_kind_t kind, orm_future_cb cb,
                  void *data, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (tx == NULL)
    return ORM_EINVAL;
  if (tx->phase != TX_OPEN)
    return ORM_ESTATE;
  tx->phase = TX_ENDING;
  if (tx->pool == NULL) {
    tx_finish(tx);
    return ORM_ECLOSED;
  }
  orm__request_t *req = tx->end;
  tx->end = NULL;
  req->future.cb = cb;
  req->future.data = data;
  req->kind = kind;
  orm__pool_prepare_request(req, kind == REQ_COMMIT ? "COMMIT" : "ROLLBACK",
                            NULL, 0, NULL);
  if (kind == REQ_COMMIT && tx->sink != NULL) {
    req->sink = tx->sink; /* the reference moves */
    tx->sink = NULL;
  }
  tx_enqueue(tx, req, out);
  return 0;
}

int orm_tx_commit_async(orm_tx_t *tx, orm_future_cb cb, void *data,
                        orm_future_t **out) {
  return tx_end(tx, REQ_COMMIT, cb, data, out);
}

int orm_tx_rollback_async(orm_tx_t *tx, orm_future_cb cb, void *data,
                          orm_future_t **out) {
  return tx_end(tx, REQ_ROLLBACK, cb, data, out);
}

/* `seg`: ROLLBACK TO SAVEPOINT starts a segment of its own. A statement
 * that failed makes the server skip the rest of its segment, and this one
 * exists to run right after a failure: behind the segment's sync the
 * server runs it in the aborted transaction, as it should. */
static int savepoint(orm_tx_t *tx, const char *verb, const char *name,
                     orm__seg_class_t seg, orm_future_cb cb, void *data,
                     orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  int rc = tx_usable(tx);
  if (rc != 0)
    return rc;
  size_t n = name != NULL ? strlen(name) : 0;
  if (n == 0 || n > 63 || (name[0] >= '0' && name[0] <= '9'))
    return ORM_EINVAL;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_'))
      return ORM_EINVAL;
  }
  char sql[128];
  /* Quoted, so the name is taken exactly as given. */
  snprintf(sql, sizeof sql, "%s \"%s\"", verb, name);
  return tx_submit(tx, seg, sql, NULL, NULL, 0, NULL, NULL, cb, data, out);
}

int orm_tx_savepoint_async(orm_tx_t *tx, const char *name, orm_future_cb cb,
                           void *data, orm_future_t **out) {
  return savepoint(tx, "SAVEPOINT", name, ORM_SEG_READ, cb, data, out);
}

int orm_tx_release_async(orm_tx_t *tx, const char *name, orm_future_cb cb,
                         void *data, orm_future_t **out) {
  return savepoint(tx, "RELEASE SAVEPOINT", name, ORM_SEG_READ, cb, data,
                   out);
}

int orm_tx_rollback_to_async(orm_tx_t *tx, const char *name, orm_future_cb cb,
                             void *data, orm_future_t **out) {
  return savepoint(tx, "ROLLBACK TO SAVEPOINT", name, ORM_SEG_OWN, cb, data,
                   out);
}
