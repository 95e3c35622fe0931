/* SPDX-License-Identifier: MIT */
/* What the pool offers the layers above it (models): statements whose
 * answer is turned into the future's value by the caller's code, on the
 * loop, before the callback runs; and a slot for a per-pool cache. */
#ifndef ORM_POOL_SUBMIT_H
#define ORM_POOL_SUBMIT_H

#include <libpq-fe.h>

#include "uvorm/pool.h"

#include "base/buf.h"

/* Turns a successful answer into the future's value. It owns `res` (keep it
 * or PQclear it) and sets the value with orm__future_set_value(). Returns 0,
 * or an ORM_E* code that fails the future (after setting a message with
 * orm__future_set_message(), if it has one to give). `ctx` is the copy of
 * the context given to orm__exec_submit(). */
typedef int (*orm__transform_fn)(PGresult *res, void *const *ctx,
                                 orm_future_t *future);

#define ORM__SUBMIT_CTX 4

/* Kept by a caller next to SQL that it sends again and again and that does
 * not change while the pool lives: the statement the pool interned for it,
 * so that later calls with the same parameter types skip the lookup (which
 * hashes the SQL). Zeroed to start. */
typedef struct {
  void *stmt;
} orm__stmt_hint_t;

/* Given as the hint, runs the statement unnamed and never interns it: for
 * SQL sent once (a migration's statements), which must not fill the
 * statement table and every connection's prepared statements. */
extern orm__stmt_hint_t orm__hint_once;

/* A statement's `n` parameters, in one of two forms:
 * - `values`: a caller's orm_param_t array, which the pool encodes into the
 *   request (the caller's buffers may go once the call returns);
 * - `values` NULL: already encoded by the layer above. Value i is at
 *   `offsets[i]` in `*buf` (SIZE_MAX for NULL), with kind (BINARY, UNTYPED
 *   followed by a NUL, or NULL), oid and length in `items[i]`. The request
 *   takes the bytes by swapping buffers with `*buf`: nothing is copied,
 *   and both sides keep memory they reuse. */
typedef struct {
  const orm_param_t *values;
  size_t n;
  orm__buf_t *buf;
  const orm_param_t *items;
  const size_t *offsets;
  /* For query events: the model call ("find", ...) and its table; NULL
   * for raw SQL. Static or the model's: they outlive the request. */
  const char *op;
  const char *table;
  /* A write of one row by its primary key (model update and delete): 1 +
   * the index of the parameter that holds the key, and the table's schema
   * (NULL: none given) next to `table`; 0 for anything else. Such writes
   * share a pipeline segment when their keys come in ascending order
   * (conn.c, segment_takes()). */
  int row_key;
  const char *schema;
  /* The runtime's own statement (a cluster's check, a session's LSN
   * probe), flagged in its query event. */
  bool internal;
} orm__params_in_t;

/* What a session knows of its writes (cluster.c): an LSN of the primary
 * at or past the commit of each, so that its reads go where they show.
 * Shared by the session and its writes in flight. */
typedef struct orm__lsn_sink_s {
  unsigned refs;
  uint64_t lsn;
  /* A write may have committed without its LSN being learnt (its
   * connection lost, the probe failed): reads go to the primary until a
   * later probe covers it. */
  int blind;
  void (*release)(struct orm__lsn_sink_s *sink); /* refs reached 0 */
} orm__lsn_sink_t;

static inline void orm__lsn_sink_unref(orm__lsn_sink_t *sink) {
  if (--sink->refs == 0)
    sink->release(sink);
}

/* An executor is a pool or a transaction (exactly one of the two set), or
 * a cluster's routed executor (cluster.c): `cluster` set, and each call
 * resolves it to a pool's executor with orm__exec_route(). */
struct orm_exec_s {
  orm_pool_t *pool;
  orm_tx_t *tx;
  struct orm_cluster_s *cluster;
  orm_exec_t *writes;     /* routed: where writes go */
  orm__lsn_sink_t *sink;  /* a session's: its writes' LSNs, for its reads
                             (routed), or to track (its primary executor) */
  int route;              /* routed: ORM__ROUTE_* */
};

enum { ORM__ROUTE_AUTO = 0, ORM__ROUTE_REPLICA = 1 };
enum { ORM__READ = 0, ORM__WRITE = 1 };

/* The executor a call of `intent` (ORM__READ or ORM__WRITE) runs on: the
 * executor itself unless it is a cluster's. A read goes to a replica that
 * is up, not too far behind and (for a session) has replayed the
 * session's writes, else to the primary; a write to the primary. Never
 * NULL for a non-NULL executor. */
orm_exec_t *orm__exec_route(orm_exec_t *exec, int intent);

/* The pool an executor runs on (NULL once a transaction's pool is gone). */
orm_pool_t *orm__exec_pool(const orm_exec_t *exec);
/* What orm__exec_submit() would say of the executor before anything else:
 * 0, ORM_EINVAL, ORM_ECLOSED (pool closing or gone), ORM_ESTATE (the
 * transaction is ending or ended). Model calls ask first, so their hooks
 * run only for a call that can go out. */
int orm__exec_usable(const orm_exec_t *exec);

/* orm_query_async() with a transform and up to ORM__SUBMIT_CTX context
 * pointers, copied. `hint` may be NULL. */
int orm__exec_submit(orm_exec_t *exec, const char *sql, orm__stmt_hint_t *hint,
                     const orm__params_in_t *in, orm__transform_fn transform,
                     void *const *ctx, orm_future_cb cb, void *data,
                     orm_future_t **out);


/* The most connections the pool opens. */
unsigned orm__pool_max_conns(const orm_pool_t *pool);

/* The loop the pool runs on. */
uv_loop_t *orm__pool_loop(orm_pool_t *pool);

/* The scheduler that delivers the pool's futures, for a future of the
 * layer above. */
struct orm__sched_s *orm__pool_sched(orm_pool_t *pool);

/* A cache the layer above keeps per pool, freed with the pool. */
typedef struct {
  void *data;
  void (*free)(void *data);
} orm__pool_cache_t;

orm__pool_cache_t *orm__pool_cache(orm_pool_t *pool);

/* The PGresult behind a result. */
static inline PGresult *orm__result_pg(orm_result_t *result) {
  return (PGresult *)(void *)result;
}

#endif /* ORM_POOL_SUBMIT_H */
