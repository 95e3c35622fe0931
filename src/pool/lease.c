/* SPDX-License-Identifier: MIT */
/* Leases: a connection lent to one operation for its duration. COPY, a
 * stream paused by its consumer and the listener cannot share a pipelined
 * connection: each waits in the queue like a statement (its transaction's
 * queue in a transaction), takes the connection it is given for itself
 * once what was sent on it before is answered, leaves pipeline mode, and
 * gives it back (or fails it) when done.
 *
 * Ownership: the lease request is in the machine from its submission until
 * it has completed and, once started, until its operation ended the lease.
 * A lease cancelled while it runs completes at once; its operation stops
 * the server (cancel, CopyFail), drains, and then ends the lease, which
 * drops the machinery's reference. */
#include <string.h>

#include "base/alloc.h"
#include "pool_int.h"

static int pipelined(const orm__conn_t *conn) {
  return !conn->pool->cfg.no_pipeline;
}

/* The connection goes back where it came from: its transaction or the
 * pool. */
static void give_back(orm__conn_t *conn) {
  orm_pool_t *pool = conn->pool;
  if (conn->tx != NULL) {
    conn->state = CONN_PINNED;
    orm__pool_kick(pool); /* its transaction's statements follow */
  } else {
    orm__pool_conn_ready(pool, conn);
  }
}

void orm__lease_assign(orm__conn_t *conn, orm__request_t *req) {
  orm_pool_t *pool = conn->pool;
  conn->lease = req;
  conn->lease_started = 0;
  req->conn = conn;
  req->state = REQ_SENT;
  if (conn->tx == NULL) {
    orm__list_remove(&conn->link);
    orm__list_push_back(&pool->pinned, &conn->link);
  }
  conn->state = CONN_LENT;
  /* A stream or COPY runs as long as it takes: statement_timeout_ms is
   * for statements. Cancelling it is the caller's call. */
  orm__future_owner_deadline(&req->future, 0);
  orm__lease_maybe_start(conn);
}

void orm__lease_maybe_start(orm__conn_t *conn) {
  orm__request_t *req = conn->lease;
  if (req == NULL || conn->lease_started || conn->pg == NULL ||
      conn->slot_count > 0)
    return;
  conn->dirty = 0;
  if (pipelined(conn) && PQpipelineStatus(conn->pg) != PQ_PIPELINE_OFF &&
      PQexitPipelineMode(conn->pg) != 1) {
    orm__future_set_message(&req->future, "could not leave pipeline mode: %s",
                            PQerrorMessage(conn->pg));
    conn->lease = NULL;
    req->conn = NULL;
    orm__pool_conn_failed(conn->pool, conn, "could not leave pipeline mode");
    orm__req_complete(req, ORM_EPROTO, ORM__NOW);
    return;
  }
  conn->lease_started = 1;
  if (req->t_start != 0)
    orm__req_sent_event(req, conn->pg);
  req->lease_ops->start(req, conn);
}

void orm__lease_end(orm__conn_t *conn, const char *broken) {
  orm__request_t *req = conn->lease;
  conn->lease = NULL;
  conn->lease_started = 0;
  conn->lease_poke = 0;
  if (req != NULL) {
    req->conn = NULL;
    /* Its operation completes it next: a cancel from a callback that
     * giving the connection back runs (a transaction failed with it)
     * must not complete it first. */
    req->state = REQ_DONE;
  }
  if (broken == NULL && conn->pg != NULL && pipelined(conn)) {
    /* libpq keeps a stream's single-row mode after its query has ended,
     * and resets it only when a query starts outside pipeline mode (or a
     * pipeline moves on to a queued query): the first pipelined query
     * after the stream would come back a row at a time. Starting a query
     * with no command resets the mode, then fails on the argument before
     * anything is sent (test_stream's test_next_statements_on_its_connection
     * fails if that ever changes). */
    (void)PQsendQueryParams(conn->pg, NULL, 0, NULL, NULL, NULL, NULL, 0);
    if (PQenterPipelineMode(conn->pg) != 1)
      broken = "could not enter pipeline mode again";
  }
  if (broken == NULL && conn->pg != NULL &&
      PQtransactionStatus(conn->pg) != (conn->tx != NULL ? PQTRANS_INTRANS
                                                         : PQTRANS_IDLE) &&
      !(conn->tx != NULL &&
        PQtransactionStatus(conn->pg) == PQTRANS_INERROR))
    broken = "the session is not in the state it was lent in";
  if (broken != NULL || conn->pg == NULL) {
    if (conn->state != CONN_BROKEN && conn->state != CONN_CLOSED)
      orm__pool_conn_failed(conn->pool, conn, broken);
  } else {
    orm__conn_arm(conn, UV_READABLE);
    give_back(conn);
  }
  if (req != NULL && req->abandoned)
    orm__req_drop(req);
}

void orm__lease_abort(orm__request_t *req, int code) {
  orm__conn_t *conn = req->conn;
  if (conn != NULL && !conn->lease_started) {
    /* Never ran: the connection goes back untouched. */
    conn->lease = NULL;
    req->conn = NULL;
    give_back(conn);
    return;
  }
  req->abandoned = 1;
  if (conn != NULL)
    req->lease_ops->abort(req, code);
}

void orm__lease_conn_lost(orm__conn_t *conn, int code, const char *why,
                          orm__when_t when) {
  orm__request_t *req = conn->lease;
  int started = conn->lease_started;
  orm_pool_t *pool = conn->pool;
  conn->lease = NULL;
  conn->lease_started = 0;
  conn->lease_poke = 0;
  req->conn = NULL;
  if (started)
    req->lease_ops->lost(req, code, why);
  if (req->abandoned) {
    orm__req_drop(req);
    return;
  }
  if (!started && req->tx == NULL && code == ORM_ECONNLOST &&
      pool->state == POOL_OPEN) {
    /* Nothing of it ran: it waits for another connection. */
    orm__pool_resend(pool, req);
    return;
  }
  if (why != NULL && req->future.error.message == NULL)
    orm__future_set_message(&req->future, "%s", why);
  orm__req_complete(req, code, when);
}

int orm__lease_submit(orm_exec_t *exec, const orm__lease_ops_t *ops,
                      void *obj, const char *sql, const orm__params_in_t *in,
                      orm_future_cb cb, void *data, orm__request_t **out) {
  *out = NULL;
  orm__params_in_t none = {0};
  if (in == NULL)
    in = &none;
  int rc = orm__exec_usable(exec);
  if (rc == 0 && exec->cluster != NULL)
    exec = orm__exec_route(exec, ORM__WRITE); /* raw: the primary */
  if (rc == 0)
    rc = orm__statement_args(sql, in);
  if (rc != 0)
    return rc;
  orm_pool_t *pool = orm__exec_pool(exec);
  if (exec->tx == NULL && pool->queued >= pool->cfg.queue_max)
    return ORM_EQUEUEFULL;
  orm__request_t *req = orm__pool_req_new(pool, REQ_LEASE, cb, data);
  if (req == NULL)
    return ORM_ENOMEM;
  rc = orm__pool_prepare_request(req, sql, in, 0, NULL);
  if (rc == 0 && exec->tx == NULL && !pool->down)
    rc = orm__pool_enqueue(pool, req);
  if (rc != 0) {
    orm__pool_req_discard(req); /* `obj` is not the request's yet */
    return rc;
  }
  req->lease_ops = ops;
  req->lease_obj = obj;
  req->seg = ORM_SEG_OWN;
  req->writes = 1;
  *out = req;
  if (exec->tx != NULL)
    return orm__tx_submit_lease(exec->tx, req);
  if (pool->down)
    orm__pool_req_fail_down(req);
  return 0;
}

void orm__lease_poke_all(orm_pool_t *pool) {
  orm__link_t *l = pool->pinned.next;
  while (l != &pool->pinned) {
    orm__conn_t *conn = ORM__CONTAINER_OF(l, orm__conn_t, link);
    l = l->next;
    if (conn->lease_poke && conn->lease_started) {
      conn->lease_poke = 0;
      /* It may end the lease and move the connection: start over. */
      conn->lease->lease_ops->io(conn->lease, 0, 0);
      l = pool->pinned.next;
    }
  }
}

int orm__lease_io(orm__conn_t *conn, int status, int events,
                  const char **why) {
  PGconn *pg = conn->pg;
  int pending = 0;
  if (events & UV_WRITABLE && (pending = PQflush(pg)) < 0) {
    *why = PQerrorMessage(pg);
    return -1;
  }
  if ((events & UV_READABLE || status < 0) && !PQconsumeInput(pg)) {
    *why = PQerrorMessage(pg);
    return -1;
  }
  return pending;
}

void orm__lease_lost(orm__conn_t *conn, const char *what, const char *why) {
  orm__request_t *req = conn->lease;
  int abandoned = req->abandoned;
  /* Copied before the connection goes: `why` may be libpq's. */
  if (!abandoned)
    orm__future_set_message(&req->future, "%s: %s", what, why);
  orm__lease_end(conn, why);
  if (!abandoned)
    orm__req_complete(req, ORM_ECONNLOST, ORM__NOW);
}
