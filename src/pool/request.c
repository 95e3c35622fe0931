/* SPDX-License-Identifier: MIT */
/* Requests: a request is a future with what the pool needs to send one
 * statement; made, recycled through a free list, and completed here from
 * the server's answer or a client-side status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "pool_int.h"

/* Requests kept for reuse at most. */
#define ORM__FREE_REQS_MAX 4096

static void req_abort(orm_future_t *f, int code);
static void req_reclaim(orm_future_t *f);
static const orm__future_ops_t req_ops = {req_abort, req_reclaim};

void orm__req_free(orm__request_t *req) {
  orm__free((void *)req->values);
  orm__buf_free(&req->buf);
  orm__free(req);
}

orm__request_t *orm__pool_req_new(orm_pool_t *pool, orm__req_kind_t kind,
                                  orm_future_cb cb, void *data) {
  orm__request_t *req;
  if (!orm__list_empty(&pool->free_reqs)) {
    req = ORM__CONTAINER_OF(pool->free_reqs.next, orm__request_t, link);
    orm__list_remove(&req->link);
    pool->nfree--;
  } else {
    req = orm__calloc(1, sizeof *req);
    if (req == NULL)
      return NULL;
    orm__list_init(&req->link);
    orm__list_push_back(&pool->all_reqs, &req->all);
  }
  orm__future_init(&req->future, &req_ops, &pool->sched, cb, data);
  req->pool = pool;
  req->kind = kind;
  req->state = REQ_QUEUED;
  req->tx = NULL;
  req->conn = NULL;
  req->stmt = NULL;
  req->sql = NULL;
  req->result = NULL;
  req->prepare_error = NULL;
  req->abandoned = 0;
  req->cancel_sent = 0;
  req->transformed = 0;
  req->seg = ORM_SEG_READ;
  req->row_key = 0;
  req->retries = 0;
  req->strays = 0;
  req->transform = NULL;
  req->nparams = 0;
  req->buf.len = 0;
  req->op = req->table = NULL;
  req->t_start =
      pool->cfg.on_query != NULL || pool->cfg.metrics ? uv_hrtime() : 0;
  req->t_sent = req->t_answered = 0;
  req->rows = -1;
  req->backend_pid = 0;
  req->replays = 0;
  req->server = 0;
  req->lease_ops = NULL;
  req->lease_obj = NULL;
  req->sink = NULL;
  return req;
}

static void req_reclaim(orm_future_t *f) {
  orm__request_t *req = (orm__request_t *)f;
  orm__future_clear(f);
  if (req->kind == REQ_LEASE && req->lease_obj != NULL)
    req->lease_ops->release(req->lease_obj);
  req->lease_obj = NULL;
  /* Abandoned after it was sent: it may have committed. */
  orm__lsn_drop(req, 1);
  PQclear(req->result);
  PQclear(req->prepare_error);
  req->result = req->prepare_error = NULL;
  orm_pool_t *pool = req->pool;
  if (pool == NULL) {
    orm__req_free(req);
    return;
  }
  req->state = REQ_FREE;
  if (pool->nfree >= ORM__FREE_REQS_MAX || pool->state != POOL_OPEN) {
    orm__list_remove(&req->all);
    orm__req_free(req);
    return;
  }
  /* Keep parameter space for reuse, but not a huge one-off. */
  if (req->buf.cap > 65536)
    orm__buf_free(&req->buf);
  orm__list_push_front(&pool->free_reqs, &req->link);
  pool->nfree++;
}

void orm__req_drop(orm__request_t *req) {
  /* An abandoned BEGIN or COMMIT still changed the connection's state:
   * settle the transaction by what the server answered. */
  if (req->kind == REQ_BEGIN || orm__req_ends_tx(req)) {
    int ok = req->result != NULL && req->prepare_error == NULL &&
             PQresultStatus(req->result) == PGRES_COMMAND_OK;
    if (req->kind == REQ_BEGIN)
      orm__tx_begin_done(req, ok ? 0 : ORM_ESERVER, 1, ORM__NOW);
    else
      orm__tx_end_done(req->tx, ok ? 0 : ORM_ESERVER);
  }
  req->state = REQ_DONE;
  req->conn = NULL;
  orm__future_unref(&req->future);
}

static void count_outcome(orm_pool_t *pool, int status) {
  pool->stats.queries++;
  if (status == ORM_ECANCELED)
    pool->stats.cancels++;
  else if (status != 0)
    pool->stats.errors++;
  if (status == ORM_ETIMEDOUT)
    pool->stats.timeouts++;
}

/* Points the future's error at what the server said in `res`. */
static void take_server_error(orm__request_t *req, PGresult *res) {
  orm_error_t *e = &req->future.error;
  e->sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  e->message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  if (e->message == NULL)
    e->message = PQresultErrorMessage(res);
  e->detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
  e->hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
  e->constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
  e->column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME);
  e->table = PQresultErrorField(res, PG_DIAG_TABLE_NAME);
  e->schema = PQresultErrorField(res, PG_DIAG_SCHEMA_NAME);
  const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
  e->position = pos != NULL ? atoi(pos) : 0;
  req->future.error_owner = res;
  req->future.error_owner_free = (void (*)(void *))PQclear;
}

/* Counts a request's outcome and hands it to the histograms and the query
 * hook: once per request, whether answered, failed, timed out or cancelled. */
static void settle(orm_pool_t *pool, orm__request_t *req, int status) {
  count_outcome(pool, status);
  if (pool != NULL && req->t_start != 0) {
    if (pool->cfg.metrics)
      orm__req_measure(req);
    if (pool->cfg.on_query != NULL)
      orm__req_event(req, status);
  }
}

static void complete(orm__request_t *req, int status, orm__when_t when) {
  orm_pool_t *pool = req->pool;
  int tx_ended = req->state == REQ_LSN;
  if (req->sink != NULL) {
    /* A session's write. Its transaction ends first: the probe it waits
     * for may need the connection. */
    if (orm__req_ends_tx(req)) {
      orm__tx_end_done(req->tx, status);
      tx_ended = 1;
    }
    if (orm__lsn_hold(req, status))
      return;
  }
  req->state = REQ_DONE;
  settle(pool, req, status);
  if (req->kind == REQ_BEGIN) {
    if (status == 0)
      orm__future_set_value(&req->future, req->tx, NULL);
    orm__tx_begin_done(req, status, 0, when);
  } else if (!tx_ended && orm__req_ends_tx(req)) {
    orm__tx_end_done(req->tx, status);
  }
  orm__future_complete(&req->future, status, when);
  orm__future_unref(&req->future); /* the machinery's reference */
}

void orm__req_complete(orm__request_t *req, int status, orm__when_t when) {
  /* A server error received on the way explains a lost connection. */
  PGresult *err = req->prepare_error ? req->prepare_error : req->result;
  if (status != 0 && err != NULL &&
      PQresultStatus(err) == PGRES_FATAL_ERROR) {
    take_server_error(req, err);
    if (err == req->result)
      req->result = NULL;
    else
      req->prepare_error = NULL;
  }
  complete(req, status, when);
}

/* A pipeline holds the answers of a segment until its sync, hundreds of
 * PGresults with deep pipelines: far more than malloc's per-thread cache
 * keeps, so every one of their blocks took malloc's slow path. A read's
 * answer is turned into its value as it arrives instead, and its PGresult
 * freed at once. Reads' transforms have no effect outside the future, so
 * if the segment fails, dropping the value undoes it. Writes' transforms
 * (RETURNING written back into the caller's rows) wait for the sync. */
void orm__req_transform_early(orm__request_t *req) {
  PGresult *res = req->result;
  if (req->transform == NULL || req->seg != ORM_SEG_READ ||
      req->abandoned || req->prepare_error != NULL || res == NULL ||
      PQresultStatus(res) != PGRES_TUPLES_OK)
    return;
  req->result = NULL;
  req->transformed = 1;
  req->transform_status = req->transform(res, req->tctx, &req->future);
}

void orm__req_untransform(orm__request_t *req) {
  if (!req->transformed)
    return;
  req->transformed = 0;
  orm_future_t *f = &req->future;
  if (f->value != NULL && f->value_free != NULL)
    f->value_free(f->value);
  f->value = NULL;
  f->error.message = NULL;
  f->error_text[0] = '\0';
}

/* A COMMIT that committed nothing: a statement of its transaction failed.
 * Reported as an error, so that success always means committed. */
static int commit_rolled_back(orm__request_t *req) {
  req->future.error.sqlstate = "25P02";
  orm__future_set_message(&req->future, "COMMIT rolled back: a statement of "
                                        "the transaction had failed");
  return ORM_ESERVER;
}

/* A write ran, but its answer could not be made into the value: say so,
 * or a caller that retries writes twice. */
static void mark_applied(orm_future_t *f) {
  char why[sizeof f->error_text];
  snprintf(why, sizeof why, "%s",
           f->error.message != NULL ? f->error.message : "");
  f->error.applied = 1;
  orm__future_set_message(f, "the statement took effect, but its answer "
                              "could not be read: %s", why);
}

void orm__req_finish(orm__request_t *req, orm__when_t when) {
  if (req->transformed) {
    req->transformed = 0;
    orm__req_complete(req, req->transform_status, when);
    return;
  }
  PGresult *res = req->prepare_error ? req->prepare_error : req->result;
  int status = 0;
  switch (res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR) {
  case PGRES_TUPLES_OK:
  case PGRES_COMMAND_OK:
  case PGRES_EMPTY_QUERY:
    if (req->kind == REQ_QUERY || req->kind == REQ_TX_QUERY) {
      req->result = NULL;
      if (req->transform != NULL) {
        status = req->transform(res, req->tctx, &req->future);
        if (status != 0 && req->writes)
          mark_applied(&req->future);
      } else
        orm__future_set_value(&req->future, res,
                              (void (*)(void *))orm_result_free);
    } else if (req->kind == REQ_COMMIT &&
               strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
      /* The server answers COMMIT of a failed transaction by rolling it
       * back, without an error: nothing was committed. */
      status = commit_rolled_back(req);
    }
    break;
  case PGRES_FATAL_ERROR:
    if (res == NULL) {
      orm__future_set_message(&req->future, "no answer from the server");
      status = ORM_EPROTO;
      break;
    }
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    if (state == NULL)
      state = "";
    /* Class 57P: the server is shutting down or cut us off. 25P02: the
     * statement did not run, the transaction had failed before it. */
    status = strncmp(state, "57P", 3) == 0 ? ORM_ECONNLOST
             : strcmp(state, "25P02") == 0 ? ORM_ESKIPPED
                                           : ORM_ESERVER;
    break;
  case PGRES_PIPELINE_ABORTED:
    /* Behind a statement of its transaction that failed: the transaction
     * is rolled back all the same (the connection's session is, before
     * anything else runs on it: see segment_done). */
    if (req->kind == REQ_ROLLBACK)
      break;
    if (req->kind == REQ_COMMIT) {
      /* Rolled back, as the server answers a COMMIT sent after the
       * failure. */
      status = commit_rolled_back(req);
      break;
    }
    /* Sent in the same segment behind a statement that failed: the server
     * skipped it. Inside a transaction that is "in failed transaction". */
    if (req->tx != NULL)
      req->future.error.sqlstate = "25P02";
    orm__future_set_message(
        &req->future, "statement skipped: an earlier statement failed");
    status = ORM_ESKIPPED;
    break;
  default:
    orm__future_set_message(&req->future, "unexpected result status %s",
                            PQresStatus(PQresultStatus(res)));
    status = ORM_EPROTO;
    break;
  }
  orm__req_complete(req, status, when);
}

/* Cancel or deadline. Always deferred: this can run inside a public call. */
static void req_abort(orm_future_t *f, int code) {
  orm__request_t *req = (orm__request_t *)f;
  orm_pool_t *pool = req->pool;
  switch (req->state) {
  case REQ_QUEUED:
    if (orm__req_ends_tx(req) && !req->tx->dead) {
      /* Not sent yet, but the transaction must still end on the server
       * (or once BEGIN has gone out): a cancelled COMMIT becomes a
       * ROLLBACK nobody waits for. The caller's statement is the one
       * reported. */
      settle(pool, req, code);
      req->kind = REQ_ROLLBACK;
      orm__pool_prepare_request(req, "ROLLBACK", NULL, 0, NULL);
      req->abandoned = 1;
      orm__future_complete(&req->future, code, ORM__LATER);
      orm__pool_kick(pool);
      break;
    }
    orm__list_remove(&req->link);
    if (req->kind == REQ_QUERY || req->kind == REQ_BEGIN ||
        (req->kind == REQ_LEASE && req->tx == NULL))
      pool->queued--;
    complete(req, code, ORM__LATER);
    break;
  case REQ_LSN:
    /* It took effect; only its commit position is not known yet. */
    orm__lsn_unhold(req);
    f->error.applied = 1;
    orm__future_set_message(f, "the statement took effect; it was stopped "
                               "while the primary's WAL position was read");
    complete(req, code, ORM__LATER);
    break;
  case REQ_SENT:
  case REQ_HELD:
    if (req->kind == REQ_LEASE) {
      /* Not started: back to the pool at once. Running: its operation
       * stops the server and ends the lease (orm__req_drop then). */
      int started = req->conn != NULL && req->conn->lease_started;
      orm__lease_abort(req, code);
      if (!started) {
        complete(req, code, ORM__LATER);
        break;
      }
      settle(pool, req, code);
      orm__future_complete(&req->future, code, ORM__LATER);
      break;
    }
    /* It stays in its connection until answered (orm__req_drop). */
    orm__req_untransform(req);
    orm__conn_abandon(req->conn, req);
    settle(pool, req, code);
    orm__future_complete(&req->future, code, ORM__LATER);
    break;
  default:
    break;
  }
}

void orm__req_set_transform(orm__request_t *req, orm__transform_fn fn,
                            void *const *ctx) {
  req->transform = fn;
  for (int i = 0; i < ORM__SUBMIT_CTX; i++)
    req->tctx[i] = ctx != NULL ? ctx[i] : NULL;
}

void orm__pool_req_fail_deferred(orm__request_t *req, int code) {
  complete(req, code, ORM__LATER);
}

void orm__pool_req_discard(orm__request_t *req) {
  req->state = REQ_DONE;
  orm__future_unref(&req->future);
}
