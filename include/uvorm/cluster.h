/* SPDX-License-Identifier: MIT */
/* uvorm — a primary and its streaming replicas: reads routed to replicas,
 * writes and transactions to the primary, and sessions that read their own
 * writes.
 *
 * A cluster is a pool for the primary and one per replica, on one loop,
 * with the same settings. Its executor (orm_cluster_exec) takes every model
 * call and raw SQL:
 *
 * - a read (find, find_by, find_all, count, exists, include, preload, a
 *   stream, binary COPY out of a model) goes to the least busy replica in
 *   rotation, or to the primary when none is;
 * - everything else goes to the primary: writes, a query FOR UPDATE, raw
 *   SQL (it may write; orm_cluster_replica_exec sends it to a replica),
 *   COPY, NOTIFY. Transactions, migrations and LISTEN take a pool: the
 *   primary's, orm_cluster_primary().
 *
 * A replica is in rotation while its last check (every check_ms) found it
 * a standby (pg_is_in_recovery()) at most max_lag_ms behind the primary,
 * and its pool is up. Lag is measured in time from WAL positions: the
 * cluster keeps the primary's insert position as it was at each check, and
 * a replica is at least as far behind as the oldest of those it has not
 * replayed. Replicas leave and rejoin rotation by themselves; each move is
 * logged (events "replica_out", "replica_in") through the pools' on_log.
 *
 * Read-your-writes: a session (orm_session_open) is a caller's view, e.g.
 * one end user's. Its writes go to the primary, and each completes only
 * once the primary's WAL insert position after its commit is known (one
 * probe per batch of writes, a round trip added to a write's latency, not
 * a sleep). Its reads then go to a replica that has replayed that far, or
 * to the primary when none has: never to a stale one. The position is an
 * LSN the caller can carry elsewhere (a cookie, another process's session)
 * with orm_session_lsn() and orm_session_set_lsn().
 *
 * Failover: give the primary as a multi-host conninfo with
 * target_session_attrs=read-write ("host=a,b ... target_session_attrs=
 * read-write"). When it dies, what was in flight on it fails
 * (ORM_ECONNLOST: never re-sent, it may have committed), its pool
 * reconnects to whichever host is read-write, and a promoted replica
 * leaves rotation (it is no standby). */
#ifndef UVORM_CLUSTER_H
#define UVORM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvorm/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*orm_cluster_close_cb)(orm_cluster_t *cluster, void *data);

typedef struct {
  const char *primary;            /* conninfo; required */
  const char *const *replicas;    /* conninfos of the standbys */
  size_t nreplicas;               /* 0 and more */
  orm_pool_config_t pool;         /* each pool's settings (conninfo unused;
                                     `data` is the cluster's, given to the
                                     close callback too) */
  unsigned replica_max_conns;     /* a replica pool's max_conns: pool's */
  uint64_t max_lag_ms;            /* a replica further behind leaves
                                     rotation: 1000 */
  uint64_t check_ms;              /* each server's WAL position read this
                                     often: 50 */
} orm_cluster_config_t;

/* Opens the pools and starts checking the replicas; returns at once.
 * Until a replica's first check answers, reads go to the primary. Errors:
 * ORM_EINVAL (NULL argument, no primary, a NULL replica conninfo, an
 * invalid pool setting), ORM_ENOMEM. */
ORM_EXTERN int orm_cluster_open(orm_cluster_t **cluster, uv_loop_t *loop,
                                const orm_cluster_config_t *config);

/* Closes every pool (as orm_pool_close) and the checks; then `cb` runs.
 * The cluster's memory goes once `cb` has run and every session is closed.
 * Returns 0, ORM_EINVAL, ORM_ECLOSED. */
ORM_EXTERN int orm_cluster_close(orm_cluster_t *cluster,
                                 orm_cluster_close_cb cb);

/* The routed executor (see above); NULL for NULL. */
ORM_EXTERN orm_exec_t *orm_cluster_exec(orm_cluster_t *cluster);
/* An executor that sends everything, raw SQL too, to a replica in
 * rotation, or to the primary when none is. A write sent there fails on
 * the standby (ORM_ESERVER, SQLSTATE 25006). */
ORM_EXTERN orm_exec_t *orm_cluster_replica_exec(orm_cluster_t *cluster);
/* The primary's pool: transactions, migrations, LISTEN, or any call that
 * must see the primary (orm_pool_exec(orm_cluster_primary(c))). */
ORM_EXTERN orm_pool_t *orm_cluster_primary(orm_cluster_t *cluster);
/* Replica `i`'s pool, in the order configured; NULL past the end. */
ORM_EXTERN orm_pool_t *orm_cluster_replica(orm_cluster_t *cluster, size_t i);

typedef struct {
  bool in_rotation;    /* reads go there */
  bool checked;        /* a check has answered */
  bool standby;        /* ... and found it in recovery */
  int status;          /* 0, or the ORM_E* code of the last check */
  uint64_t replay_lsn; /* WAL replayed, at the last check */
  uint64_t lag_ms;     /* at least this far behind at the last check */
} orm_replica_state_t;

/* Replica `i`'s state. ORM_EINVAL for NULL or past the end. */
ORM_EXTERN int orm_cluster_replica_state(const orm_cluster_t *cluster,
                                         size_t i, orm_replica_state_t *out);

typedef struct {
  uint64_t reads_replica;   /* routed reads sent to a replica */
  uint64_t reads_primary;   /* ... to the primary, of which: */
  uint64_t reads_fallback;  /*   no replica in rotation */
  uint64_t reads_behind;    /*   a session's: replicas in rotation, none
                                 had replayed its writes yet */
  uint64_t writes;          /* routed calls sent to the primary */
  uint64_t rotation_changes;/* replicas taken out of rotation or back */
  uint64_t primary_lsn;     /* the primary's insert position, last read */
} orm_cluster_stats_t;

ORM_EXTERN int orm_cluster_stats(const orm_cluster_t *cluster,
                                 orm_cluster_stats_t *out);

/* ---- sessions: read-your-writes ----------------------------------------- */

/* A new session of `cluster`, knowing no write. ORM_EINVAL, ORM_ECLOSED,
 * ORM_ENOMEM. */
ORM_EXTERN int orm_session_open(orm_cluster_t *cluster, orm_session_t **out);
/* Releases the session; legal with its calls in flight (they complete as
 * usual). */
ORM_EXTERN void orm_session_close(orm_session_t *session);
/* The session's executor: routed as the cluster's, and its reads see every
 * write that completed through it before they were made. NULL for NULL. */
ORM_EXTERN orm_exec_t *orm_session_exec(orm_session_t *session);
/* A transaction on the primary (as orm_tx_begin_with) whose COMMIT the
 * session's later reads see. */
ORM_EXTERN int orm_session_tx_begin(orm_session_t *session, unsigned options,
                                    orm_tx_t **out);
/* The WAL position the session's reads must see: 0 until it writes;
 * UINT64_MAX while a write may have committed without its position known
 * (its connection was lost, say): reads go to the primary until the
 * session's next write completes. */
ORM_EXTERN uint64_t orm_session_lsn(const orm_session_t *session);
/* Makes the session's reads see WAL position `lsn` too (from another
 * session, or from pg_current_wal_insert_lsn() after a write made
 * elsewhere). It only ever moves forward. ORM_EINVAL for NULL. */
ORM_EXTERN int orm_session_set_lsn(orm_session_t *session, uint64_t lsn);

#ifdef __cplusplus
}
#endif
#endif /* UVORM_CLUSTER_H */
