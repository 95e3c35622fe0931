/* SPDX-License-Identifier: MIT */
/* Read-your-writes, the pool's half: a session's write (a request with a
 * sink) that succeeds does not complete at once. It waits for a probe of
 * the primary's WAL insert position sent after it committed, and the sink
 * learns that position before the write's callback runs: an LSN at or past
 * the commit, which a replica must have replayed for the session's reads
 * to go there (cluster.c).
 *
 * One probe is in flight at a time. Writes completing while it is out wait
 * for the next: the one out may have been answered before they committed.
 * So under load one probe covers a whole batch of writes, and a write pays
 * one round trip more, not one statement more each. */
#include <string.h>

#include "pool_int.h"

static const char probe_sql[] =
    "SELECT pg_catalog.pg_current_wal_insert_lsn()";

static void probe(orm_pool_t *pool);

void orm__lsn_sink_drop(orm__request_t *req, int blind) {
  orm__lsn_sink_t *sink = req->sink;
  req->sink = NULL;
  if (blind)
    sink->blind = 1;
  orm__lsn_sink_unref(sink);
}

/* Only a connection lost or a statement stopped after it was sent leaves a
 * write's outcome unknown; a server error or a skip rolled it back. */
static int may_have_committed(int status) {
  return status == ORM_ECONNLOST || status == ORM_ETIMEDOUT ||
         status == ORM_ECANCELED || status == ORM_EPROTO;
}

int orm__lsn_hold(orm__request_t *req, int status) {
  orm_pool_t *pool = req->pool;
  if (status != 0 || pool == NULL || pool->state != POOL_OPEN) {
    orm__lsn_sink_drop(req, status == 0 || may_have_committed(status));
    return 0;
  }
  req->state = REQ_LSN;
  orm__list_push_back(&pool->lsn_next, &req->lsn_link);
  probe(pool);
  return 1;
}

void orm__lsn_unhold(orm__request_t *req) {
  orm__list_remove(&req->lsn_link);
  orm__lsn_sink_drop(req, 1);
}

int orm__lsn_read(const orm_result_t *res, int col, uint64_t *out) {
  const uint8_t *v;
  size_t len;
  if (orm_result_bytes(res, 0, col, &v, &len) != 0 || len != 8)
    return -1;
  uint64_t lsn = 0;
  for (int i = 0; i < 8; i++)
    lsn = lsn << 8 | v[i];
  *out = lsn;
  return 0;
}

/* Completes every write of `list`: with the LSN the probe read, or blind. */
static void release(orm__link_t *list, int found, uint64_t lsn,
                    orm__when_t when) {
  while (!orm__list_empty(list)) {
    orm__request_t *req =
        ORM__CONTAINER_OF(list->next, orm__request_t, lsn_link);
    orm__list_remove(&req->lsn_link);
    orm__lsn_sink_t *sink = req->sink;
    if (found) {
      if (lsn > sink->lsn)
        sink->lsn = lsn;
      /* Sent after every write the sink saw go blind had completed (one
       * probe at a time), so it covers them too. */
      sink->blind = 0;
    }
    orm__lsn_sink_drop(req, !found);
    orm__req_complete(req, 0, when);
  }
}

static void on_probe(orm_future_t *f, void *data) {
  orm_pool_t *pool = data;
  pool->lsn_probing = 0;
  uint64_t lsn = 0;
  int found = orm_future_status(f) == 0 &&
              orm__lsn_read(orm_future_value(f), 0, &lsn) == 0;
  release(&pool->lsn_sent, found, lsn, ORM__NOW);
  if (pool->state != POOL_OPEN)
    return;
  /* The sessions will read next: see what the replicas replayed. */
  if (found && pool->owner != NULL)
    orm__cluster_kick(pool->owner);
  probe(pool);
}

static void probe(orm_pool_t *pool) {
  if (pool->lsn_probing || orm__list_empty(&pool->lsn_next))
    return;
  /* Everything waiting now is covered by this probe. */
  while (!orm__list_empty(&pool->lsn_next)) {
    orm__link_t *l = pool->lsn_next.next;
    orm__list_remove(l);
    orm__list_push_back(&pool->lsn_sent, l);
  }
  orm__params_in_t in = {.op = "lsn_probe", .internal = true};
  int rc = orm__exec_submit(&pool->exec, probe_sql, &pool->lsn_hint, &in,
                            NULL, NULL, on_probe, pool, NULL);
  if (rc != 0) {
    release(&pool->lsn_sent, 0, 0, ORM__LATER);
    return;
  }
  pool->lsn_probing = 1;
}

void orm__lsn_close(orm_pool_t *pool) {
  release(&pool->lsn_next, 0, 0, ORM__LATER);
  release(&pool->lsn_sent, 0, 0, ORM__LATER);
}
