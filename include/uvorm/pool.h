/* SPDX-License-Identifier: MIT */
/* uvorm — the connection pool: raw SQL, results, transactions, stats.
 *
 * A pool is bound to one uv_loop_t and used from that loop's thread only,
 * like every libuv handle. A loop may carry several pools (to different
 * databases, say); each is independent. A multi-core service runs one loop
 * per thread, each with its own pools. All calls return 0 or a
 * negative ORM_E* code. A call that returns an error never runs its
 * callback; one that returns 0 runs it exactly once, later, on the loop. */
#ifndef UVORM_POOL_H
#define UVORM_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h> /* strlen, for ORM_TEXT */

#include <uv.h>

#include "uvorm/async.h"
#include "uvorm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct orm_pool_s orm_pool_t;
typedef struct orm_tx_s orm_tx_t;
typedef struct orm_exec_s orm_exec_t;
typedef struct orm_result_s orm_result_t;
/* A primary and its replicas, and a caller's view of them (cluster.h). */
typedef struct orm_cluster_s orm_cluster_t;
typedef struct orm_session_s orm_session_t;

/* A message the server sent outside any result: NOTICE, WARNING, INFO,
 * ... (from RAISE NOTICE, DROP TABLE IF EXISTS, a deprecated setting).
 * Strings are valid during the callback only; detail and hint may be NULL. */
typedef struct {
  const char *severity; /* "WARNING", "NOTICE", "INFO", "LOG", "DEBUG":
                           never translated */
  const char *sqlstate; /* "01000", "00000", ... */
  const char *message;
  const char *detail;
  const char *hint;
  int backend_pid; /* the server process of the connection it came on */
} orm_notice_t;

/* Called on the loop, from the pool's own turn (never inside a uvorm
 * call), once per notice, in the order each connection received them.
 * Closing the pool from inside it is legal; notices still waiting are
 * then dropped. */
typedef void (*orm_notice_cb)(orm_pool_t *pool, const orm_notice_t *notice,
                              void *data);

/* One statement's outcome, for tracing, metrics and logs: the pool's
 * on_query hook gets one per statement it completes (a model call's, raw
 * SQL, BEGIN and COMMIT of a transaction), success or failure. The names in
 * brackets are OpenTelemetry's database semantic conventions, so that a
 * tracer is a few lines away (docs/observability.md). Strings are valid
 * during the call only. */
typedef struct {
  const char *system;         /* [db.system.name] "postgresql" */
  const char *query_text;     /* [db.query.text] the statement, its values
                                 as $1, $2, ...: never the values */
  const char *operation;      /* [db.operation.name] a model call's ("find",
                                 "insert", "query", "include", ...), else the
                                 statement's first keyword ("SELECT") */
  const char *collection;     /* [db.collection.name] the model's table, or
                                 NULL */
  const char *namespace_name; /* [db.namespace] the database, or NULL */
  const char *status_code;    /* [db.response.status_code] the SQLSTATE of a
                                 failure the server reported, else NULL */
  int status;                 /* 0 or the ORM_E* code the caller got */
  int64_t rows;               /* [db.response.returned_rows] rows returned,
                                 or affected by a write; -1 if unknown */
  const char *server_address; /* [server.address] host (or socket directory)
                                 of the connection, or NULL */
  int server_port;            /* [server.port], 0 if unknown */
  int backend_pid;            /* the connection's server process; 0 if the
                                 statement was never sent */
  uint64_t queued_ns;         /* from the call until last sent */
  uint64_t server_ns;         /* from last sent until answered (the wire and
                                 the server); 0 if never answered */
  uint64_t total_ns;          /* from the call until completed */
  unsigned replays;           /* times sent again: after a neighbour's
                                 failure in its pipeline segment, a stale
                                 prepared statement, a deadlock of uvorm's
                                 grouping */
  const orm_tx_t *tx;         /* its transaction (compare only: it may be
                                 ended), or NULL */
  bool slow;                  /* total_ns reached the pool's slow_query_ms */
  const char *params;         /* with query_params: the values, each cut at
                                 32 bytes, all at 256; else NULL */
  const char *plan;           /* with explain_slow, in a second event for a
                                 slow statement (once per text): EXPLAIN's
                                 output, one line each; else NULL */
  bool internal;              /* the runtime's own statement, not the
                                 caller's: a cluster's checks (operation
                                 "primary_check", "replica_check") and a
                                 session's LSN probe ("lsn_probe"). They
                                 count in the pool's stats too. */
} orm_query_event_t;

/* Called on the loop as each statement completes, before its callback
 * (possibly from inside a uvorm call that completes statements, such as
 * orm_pool_close): an observer, it must not call into the pool. */
typedef void (*orm_query_cb)(orm_pool_t *pool, const orm_query_event_t *event,
                             void *data);

/* The runtime's own events, for a service's log: a connection made, lost
 * or failing (with the backoff before the next attempt), retired,
 * statements sent again. Strings are valid during the call only; none
 * ever holds the conninfo or a password. */
typedef enum {
  ORM_LOG_DEBUG = 0, /* statements replayed, idle connections closed */
  ORM_LOG_INFO,      /* connections made */
  ORM_LOG_WARN,      /* a connection lost, an attempt failed */
  ORM_LOG_ERROR      /* no connection left: requests fail until one is up */
} orm_log_level_t;

typedef struct {
  orm_log_level_t level;
  const char *event;   /* "connected", "reconnected", "connect_failed",
                          "connection_lost", "pool_down", "retired",
                          "replay" */
  const char *message; /* one line for people (libpq's reason, ...) */
  int backend_pid;     /* the connection's server process, 0 if none */
  const char *server_address; /* host (or socket directory), or NULL */
  int server_port;     /* 0 if unknown */
  unsigned attempt;    /* connect_failed: failures in a row */
  uint64_t retry_in_ms; /* connect_failed, connection_lost: the next try */
} orm_log_record_t;

/* Called on the loop (possibly from inside a uvorm call); an observer: it
 * must not call into the pool. */
typedef void (*orm_log_cb)(orm_pool_t *pool, const orm_log_record_t *record,
                           void *data);

/* Pool settings. A zeroed field takes the default shown. */
typedef struct {
  const char *conninfo;          /* URL or key=value, as libpq takes it; required */
  unsigned min_conns;            /* opened at start and kept: 1 */
  unsigned max_conns;            /* 4 */
  unsigned pipeline_depth;       /* requests in flight per connection: 64 */
  size_t queue_max;              /* requests waiting for a connection: 65536 */
  uint64_t acquire_timeout_ms;   /* longest wait in the queue: none */
  uint64_t statement_timeout_ms; /* longest run once sent: none */
  uint64_t connect_timeout_ms;   /* per connection attempt: 10000 */
  uint64_t reconnect_min_ms;     /* first retry after a failure: 100 */
  uint64_t reconnect_max_ms;     /* backoff ceiling (with jitter): 5000 */
  uint64_t idle_timeout_ms;      /* close connections above min_conns idle this long: 300000 */
  uint64_t max_lifetime_ms;      /* retire a connection this old once idle: none */
  uint64_t health_check_ms;      /* check a connection idle this long before use: 30000 */
  bool no_pipeline;              /* one request at a time per connection */
  bool no_prepare;               /* unnamed statements only (for PgBouncer in
                                    transaction mode and similar proxies) */
  bool sync_each;                /* a pipeline Sync after every statement:
                                    each its own implicit transaction, a
                                    failure never touches a neighbour (no
                                    replays), at some cost in throughput.
                                    TechEmpower's rule 7 asks for it. Off:
                                    reads share a Sync */
  orm_notice_cb on_notice;       /* server notices, with `data`: none, and
                                    then they are dropped (a library never
                                    writes to the service's stderr) */
  void *data;                    /* the pool's user data */
  orm_query_cb on_query;         /* every statement's outcome, with `data`:
                                    none (and then nothing is measured) */
  uint64_t slow_query_ms;        /* events this slow or slower are flagged
                                    slow: none */
  bool explain_slow;             /* the first time a statement's text is
                                    slow, EXPLAIN it (same values; writes are
                                    planned, not run) and hand the plan to
                                    on_query: off. At most one a second. */
  bool query_params;             /* events carry the parameter values (cut
                                    short); off: they may be secrets */
  bool metrics;                  /* measure every statement's latency for
                                    orm_pool_metrics' histograms: off */
  orm_log_cb on_log;             /* the runtime's events, with `data`: none
                                    (silent) */
  orm_log_level_t log_level;     /* the least level logged: ORM_LOG_DEBUG */
  bool transaction_pooling;      /* the server is behind a pooler in
                                    transaction mode (PgBouncer's
                                    pool_mode=transaction): implies
                                    no_prepare, and what needs a session of
                                    its own is refused with ORM_ENOTSUP
                                    (LISTEN). Off */
} orm_pool_config_t;

/* Opens a pool and starts connecting min_conns connections; it returns at
 * once. Errors: ORM_EINVAL (NULL argument, missing or unparseable conninfo,
 * inconsistent limits), ORM_ENOMEM. Requests made before a connection is up
 * wait in the queue. */
ORM_EXTERN int orm_pool_open(orm_pool_t **pool, uv_loop_t *loop,
                             const orm_pool_config_t *config);

typedef void (*orm_pool_close_cb)(orm_pool_t *pool, void *data);

/* Closes the pool: queued requests fail with ORM_ECANCELED, requests in
 * flight are cancelled (on the server too) and fail with ORM_ECANCELED,
 * open transactions are rolled back by closing their connection, every
 * handle is closed; then `cb` runs and the pool's memory is gone, with
 * the handles of transactions never ended (until then, ending one returns
 * ORM_ECLOSED and releases it; after it, the handle must not be used). Legal
 * from inside any uvorm callback. Afterwards every call on the pool returns
 * ORM_ECLOSED. Returns 0, ORM_EINVAL, or ORM_ECLOSED if already closing. */
ORM_EXTERN int orm_pool_close(orm_pool_t *pool, orm_pool_close_cb cb);

ORM_EXTERN void *orm_pool_data(const orm_pool_t *pool);

/* ---- parameters ---------------------------------------------------------
 * Values are bound as parameters, never spliced into SQL. Numbers, booleans
 * and bytes travel in binary; ORM_TEXT as text with type text;
 * ORM_UNTYPED as text whose type the server infers from the SQL
 * ("2024-01-01" for a timestamp parameter, "12.50" for numeric). The
 * call copies what it needs: the caller's buffers can go once it returns. */
typedef enum {
  ORM_PARAM_NULL = 0,
  ORM_PARAM_BOOL,
  ORM_PARAM_INT2,
  ORM_PARAM_INT4,
  ORM_PARAM_INT8,
  ORM_PARAM_FLOAT4,
  ORM_PARAM_FLOAT8,
  ORM_PARAM_TEXT,
  ORM_PARAM_UNTYPED,
  ORM_PARAM_BYTEA,
  ORM_PARAM_BINARY /* pre-encoded binary value of type `oid` */
} orm_param_kind_t;

typedef struct {
  orm_param_kind_t kind;
  uint32_t oid; /* ORM_PARAM_BINARY only */
  union {
    bool b;
    int64_t i;
    double f;
    struct {
      const void *ptr;
      size_t len;
    } s;
  } v;
} orm_param_t;

#define ORM_NULL ((orm_param_t){.kind = ORM_PARAM_NULL})
#define ORM_BOOL(x) ((orm_param_t){.kind = ORM_PARAM_BOOL, .v.b = (x)})
#define ORM_INT2(x) ((orm_param_t){.kind = ORM_PARAM_INT2, .v.i = (int16_t)(x)})
#define ORM_INT4(x) ((orm_param_t){.kind = ORM_PARAM_INT4, .v.i = (int32_t)(x)})
#define ORM_INT8(x) ((orm_param_t){.kind = ORM_PARAM_INT8, .v.i = (int64_t)(x)})
#define ORM_FLOAT4(x) ((orm_param_t){.kind = ORM_PARAM_FLOAT4, .v.f = (x)})
#define ORM_FLOAT8(x) ((orm_param_t){.kind = ORM_PARAM_FLOAT8, .v.f = (x)})
/* NUL-terminated strings; the _N forms take a length. */
#define ORM_TEXT(str) ORM_TEXT_N((str), strlen(str))
#define ORM_TEXT_N(str, n)                                                     \
  ((orm_param_t){.kind = ORM_PARAM_TEXT, .v.s = {(str), (n)}})
#define ORM_UNTYPED(str)                                                       \
  ((orm_param_t){.kind = ORM_PARAM_UNTYPED, .v.s = {(str), strlen(str)}})
#define ORM_BYTEA(ptr, n)                                                      \
  ((orm_param_t){.kind = ORM_PARAM_BYTEA, .v.s = {(ptr), (n)}})
#define ORM_BINARY(type_oid, ptr, n)                                           \
  ((orm_param_t){.kind = ORM_PARAM_BINARY, .oid = (type_oid), .v.s = {(ptr), (n)}})

/* The most parameters one statement takes (PostgreSQL's protocol limit). */
#define ORM_MAX_PARAMS 65535

/* ---- executors ------------------------------------------------------------
 * Where a statement runs: on the pool (autocommit: each statement is its own
 * transaction, pipelined with others) or in a transaction (in the order
 * issued, on the transaction's connection). Raw SQL and every model call
 * take an executor, so each call has one form for both. An executor lives
 * as long as its pool or transaction; these return NULL for NULL. */
ORM_EXTERN orm_exec_t *orm_pool_exec(orm_pool_t *pool);
ORM_EXTERN orm_exec_t *orm_tx_exec(orm_tx_t *tx);

/* In C11 (not C++), ORM_EXEC(x) is the executor of a pool, a transaction,
 * a cluster, a session (cluster.h) or an executor, chosen by x's type; any
 * other type does not compile. Each call that takes an executor is also a
 * macro of the same name that applies it to its first argument, so orm_find_async(pool, ...) and
 * orm_find_async(tx, ...) both work. The functions themselves stay
 * reachable: (orm_find_async)(orm_pool_exec(pool), ...), or define
 * ORM_NO_GENERIC before including uvorm to do without the macros. A bare
 * NULL is none of these types: the macros refuse it at compile time
 * (the functions return ORM_EINVAL for a NULL executor). */
#if !defined(__cplusplus) && !defined(ORM_NO_GENERIC) &&                       \
    defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
static inline orm_exec_t *orm__exec_of_exec(orm_exec_t *ex) { return ex; }
ORM_EXTERN orm_exec_t *orm_cluster_exec(orm_cluster_t *cluster);
ORM_EXTERN orm_exec_t *orm_session_exec(orm_session_t *session);
#define ORM_EXEC(x)                                                            \
  _Generic((x), orm_pool_t *: orm_pool_exec, orm_tx_t *: orm_tx_exec,          \
           orm_cluster_t *: orm_cluster_exec,                                  \
           orm_session_t *: orm_session_exec,                                  \
           orm_exec_t *: orm__exec_of_exec)(x)
#define ORM__GENERIC 1
#endif

/* ---- raw SQL ------------------------------------------------------------
 * Runs one SQL statement with `nparams` parameters ($1, $2, ...). The
 * future resolves with an orm_result_t (take it with orm_future_take() and
 * free it with orm_result_free()), or fails: ORM_ESERVER with SQLSTATE and
 * message in orm_future_error(), ORM_ECONNLOST, ORM_ETIMEDOUT,
 * ORM_ECANCELED, ORM_ECONNECT (the server cannot be reached, or refused
 * the connection: its SQLSTATE, e.g. 3D000 or 53300, when it said why),
 * ORM_EAUTH (it refused the credentials: SQLSTATE 28P01 for a wrong
 * password, 28000 for no pg_hba.conf entry), ORM_ENOMEM.
 * Returns: 0; ORM_EINVAL (NULL executor or sql, params NULL with nparams > 0,
 * a bad parameter kind, `nparams` above the highest $N of `sql`: a
 * parameter nothing uses (placeholders inside literals, quoted names,
 * dollar quotes and comments do not count; statements such as CREATE
 * FUNCTION or PREPARE, whose $N are not theirs, are not checked). Too few
 * parameters the server reports: ORM_ESERVER, SQLSTATE 08P01);
 * ORM_E2BIG (more than ORM_MAX_PARAMS);
 * ORM_EQUEUEFULL (queue_max requests already wait); ORM_ECLOSED; ORM_ENOMEM;
 * in a transaction, ORM_ESTATE once it is ending.
 * `out`, if not NULL, receives a reference to the future. */
ORM_EXTERN int orm_query_async(orm_exec_t *exec, const char *sql,
                               const orm_param_t *params, size_t nparams,
                               orm_future_cb cb, void *data,
                               orm_future_t **out);

/* ---- results ------------------------------------------------------------
 * Values arrive in PostgreSQL's binary format and are read with typed
 * getters. Getters return 0, ORM_ERANGE (no such row or column),
 * ORM_ENOTFOUND (the value is NULL; *out is untouched) or ORM_ETYPE (the
 * column's type cannot be read that way). */
ORM_EXTERN void orm_result_free(orm_result_t *result);
ORM_EXTERN int orm_result_nrows(const orm_result_t *result);
ORM_EXTERN int orm_result_ncols(const orm_result_t *result);
/* Rows inserted, updated, deleted, ... by DML; 0 for other statements. */
ORM_EXTERN int64_t orm_result_affected(const orm_result_t *result);
/* The column's name, or NULL. */
ORM_EXTERN const char *orm_result_name(const orm_result_t *result, int col);
/* The column index for `name`, or -1. */
ORM_EXTERN int orm_result_column_index(const orm_result_t *result,
                                       const char *name);
/* The column's type OID (int4 is 23, text 25, ...). */
ORM_EXTERN uint32_t orm_result_type(const orm_result_t *result, int col);
ORM_EXTERN bool orm_result_is_null(const orm_result_t *result, int row, int col);
/* smallint, integer, bigint (and oid). */
ORM_EXTERN int orm_result_int(const orm_result_t *result, int row, int col,
                              int64_t *out);
/* real, double precision. */
ORM_EXTERN int orm_result_float(const orm_result_t *result, int row, int col,
                                double *out);
ORM_EXTERN int orm_result_bool(const orm_result_t *result, int row, int col,
                               bool *out);
/* text, varchar, char, name, json, enums, ...: NUL-terminated, valid while
 * the result lives. `len` may be NULL. */
ORM_EXTERN int orm_result_text(const orm_result_t *result, int row, int col,
                               const char **out, size_t *len);
/* The raw binary value of any column (bytea: its bytes). */
ORM_EXTERN int orm_result_bytes(const orm_result_t *result, int row, int col,
                                const uint8_t **out, size_t *len);

/* ---- transactions -------------------------------------------------------
 * A transaction pins one connection from BEGIN to COMMIT or ROLLBACK; its
 * statements run in order on it. After a statement fails, the statements
 * behind it fail with ORM_ESKIPPED and SQLSTATE 25P02: PostgreSQL does not
 * run them in an aborted transaction. ROLLBACK ends it; ROLLBACK TO
 * SAVEPOINT returns to a savepoint, and may be issued right behind the
 * statements it undoes, without waiting for their outcome (it goes out
 * after them, where the server runs it even in an aborted transaction).
 * A connection lost inside a transaction fails it (ORM_ECONNLOST) and is
 * never silently retried.
 *
 * A prepared statement whose result type a schema change altered (0A000
 * "cached plan must not change result type") is prepared again on every
 * connection: a pool statement is re-run and succeeds; a transaction's
 * fails once, with that error.
 *
 * orm_tx_begin() gives the handle at once. Statements, savepoints and the
 * COMMIT may follow at once too: they wait behind BEGIN and go out with it
 * in one flight when a connection is free, so a whole transaction costs
 * one round trip. Should BEGIN not run (the pool is down, the wait for a
 * connection times out, the connection is lost), everything issued on the
 * handle fails with that code and the message "the transaction did not
 * begin: ..."; ROLLBACK then succeeds. orm_tx_begin_async() instead
 * resolves with the orm_tx_t * once BEGIN has run (read it with
 * orm_future_value()), for callers that want to know before going on.
 *
 * orm_tx_commit_async() and orm_tx_rollback_async() always consume the
 * handle, whatever they return; until one of them is called the
 * transaction holds its connection. A COMMIT after a failed statement
 * rolls back, and reports it: ORM_ESERVER, SQLSTATE 25P02. */
ORM_EXTERN int orm_tx_begin(orm_pool_t *pool, orm_tx_t **out);
/* orm_tx_begin() with the transaction's characteristics: at most one of
 * ORM_TX_READ_COMMITTED, ORM_TX_REPEATABLE_READ and ORM_TX_SERIALIZABLE
 * (none: the server's default_transaction_isolation, normally READ
 * COMMITTED), ORM_TX_READ_ONLY, and ORM_TX_DEFERRABLE (only with
 * SERIALIZABLE and READ_ONLY). ORM_EINVAL for another combination. */
#define ORM_TX_REPEATABLE_READ 0x1u
#define ORM_TX_SERIALIZABLE 0x2u
#define ORM_TX_READ_ONLY 0x4u
#define ORM_TX_DEFERRABLE 0x8u
#define ORM_TX_READ_COMMITTED 0x10u
ORM_EXTERN int orm_tx_begin_with(orm_pool_t *pool, unsigned options,
                                 orm_tx_t **out);
ORM_EXTERN int orm_tx_begin_async(orm_pool_t *pool, orm_future_cb cb,
                                  void *data, orm_future_t **out);
/* The transaction's user data: NULL until set; uvorm never touches it. */
ORM_EXTERN void orm_tx_set_data(orm_tx_t *tx, void *data);
ORM_EXTERN void *orm_tx_data(const orm_tx_t *tx);
ORM_EXTERN int orm_tx_commit_async(orm_tx_t *tx, orm_future_cb cb, void *data,
                                   orm_future_t **out);
ORM_EXTERN int orm_tx_rollback_async(orm_tx_t *tx, orm_future_cb cb,
                                     void *data, orm_future_t **out);
/* SAVEPOINT name / RELEASE SAVEPOINT name / ROLLBACK TO SAVEPOINT name.
 * `name` is an identifier: letters, digits and '_', at most 63 bytes
 * (ORM_EINVAL otherwise). */
ORM_EXTERN int orm_tx_savepoint_async(orm_tx_t *tx, const char *name,
                                      orm_future_cb cb, void *data,
                                      orm_future_t **out);
ORM_EXTERN int orm_tx_release_async(orm_tx_t *tx, const char *name,
                                    orm_future_cb cb, void *data,
                                    orm_future_t **out);
ORM_EXTERN int orm_tx_rollback_to_async(orm_tx_t *tx, const char *name,
                                        orm_future_cb cb, void *data,
                                        orm_future_t **out);

/* ---- stats --------------------------------------------------------------- */
typedef struct {
  unsigned conns_connecting; /* connecting or checking health */
  unsigned conns_idle;       /* ready, nothing in flight */
  unsigned conns_busy;       /* ready, requests in flight */
  unsigned conns_in_tx;      /* pinned by a transaction */
  unsigned conns_broken;     /* waiting to reconnect */
  size_t queued;             /* requests waiting for a connection */
  size_t in_flight;          /* requests sent, not yet answered */
  uint64_t queries;          /* requests completed, by any outcome */
  uint64_t errors;           /* ... of which failed (not cancelled) */
  uint64_t timeouts;         /* ... of which timed out */
  uint64_t cancels;          /* ... of which were cancelled */
  uint64_t resends;          /* statements re-sent after a neighbour failed */
  uint64_t connects;         /* successful connection set-ups */
  uint64_t reconnects;       /* ... of which replaced a lost connection */
  uint64_t connect_failures; /* failed connection attempts */
  uint64_t notices;          /* server notices received */
  uint64_t notices_dropped;  /* ... not delivered: no on_notice, more than
                                ORM_NOTICES_MAX waiting, or the pool closed */
  uint64_t prepared_hits;    /* named statements sent (each send, replays
                                too) already prepared on their connection */
  uint64_t prepared_misses;  /* ... that had to be prepared there first */
  uint64_t syncs;            /* pipeline syncs sent: segments, each one
                                implicit transaction on the server */
} orm_pool_stats_t;

/* The most notices that wait for delivery; beyond it they are dropped. */
#define ORM_NOTICES_MAX 256

ORM_EXTERN int orm_pool_stats(const orm_pool_t *pool, orm_pool_stats_t *stats);

/* The pool's stats in Prometheus' text exposition format (0.0.4), for a
 * /metrics endpoint: connections by state, queue depth, requests in
 * flight, counters of queries, errors, timeouts, cancels, replays,
 * connects, reconnects, failed connects, notices and prepared-statement
 * hits and misses and, with the `metrics` setting, histograms of latency
 * per operation (uvorm_query_duration_seconds{operation="find"}, ...) and
 * of the time spent waiting to be sent. `labels` (NULL for none) goes
 * into every sample: `pool="main"`. Writes at most `cap` bytes, always
 * NUL-terminated when cap > 0, and returns the length of the whole text
 * (as snprintf does: call again with more room if it is >= cap), or
 * ORM_EINVAL (NULL pool, labels that are not name="value" pairs, or that
 * use a name uvorm writes itself: le, operation, state, result, __*). */
ORM_EXTERN int orm_pool_metrics(const orm_pool_t *pool, const char *labels,
                                char *buf, size_t cap);

/* ---- crossing threads ----------------------------------------------------
 * A pool, its futures and its transactions belong to the thread that runs
 * the pool's loop; none of their calls may be made from another thread.
 * A service runs one loop and one pool per thread (docs/server.md) and
 * needs nothing more. Work that starts on another thread crosses over by
 * posting a function to the pool's loop, and its answer comes back the
 * same way, posted to the caller's own loop through a mailbox:
 *
 *   orm_pool_post(pool, ask, job);             any thread: ask() runs on
 *                                               the pool's loop, calls uvorm
 *   ... in the answer's callback, on the pool's loop:
 *   orm_mailbox_post(job->reply_to, answered, job);   answered() runs on
 *                                                      the caller's loop
 *
 * Posts run in the order they were posted (from one thread; posts of
 * several threads interleave in the order they took the mailbox's lock).
 * A post copies two pointers under a mutex and wakes the loop: no
 * allocation once the mailbox has grown to the traffic. */
typedef void (*orm_post_fn)(void *data);
typedef struct orm_mailbox_s orm_mailbox_t;

/* A mailbox for `loop`, opened on the loop's thread (or before the loop
 * runs). It keeps the loop running until it is closed. 0, ORM_EINVAL,
 * ORM_ENOMEM. */
ORM_EXTERN int orm_mailbox_open(orm_mailbox_t **out, uv_loop_t *loop);
/* From any thread: `fn(data)` will run on the mailbox's loop. 0, or
 * ORM_EINVAL (NULL box or fn), ORM_ECLOSED (closed), ORM_ENOMEM; on an
 * error `fn` never runs. */
ORM_EXTERN int orm_mailbox_post(orm_mailbox_t *box, orm_post_fn fn, void *data);
/* On the loop's thread, once no other thread will post to it again: what
 * was posted before runs now, then the mailbox is freed (after its handle
 * closes). 0, ORM_EINVAL, ORM_ECLOSED (closed already). */
ORM_EXTERN int orm_mailbox_close(orm_mailbox_t *box);

/* From any thread: `fn(data)` will run on the pool's loop, where it may
 * call the pool. Every accepted post runs exactly once: one that is still
 * waiting when the pool closes runs during the close, and the calls it
 * makes then return ORM_ECLOSED. The pool must not be freed while another
 * thread may post: stop the posting threads before closing it. 0, or
 * ORM_EINVAL (NULL pool or fn), ORM_ECLOSED (the pool's close has got as
 * far as its mailbox), ORM_ENOMEM; on an error `fn` never runs. */
ORM_EXTERN int orm_pool_post(orm_pool_t *pool, orm_post_fn fn, void *data);

#ifdef ORM__GENERIC
#define orm_query_async(exec, ...) orm_query_async(ORM_EXEC(exec), __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif

#endif /* UVORM_POOL_H */
