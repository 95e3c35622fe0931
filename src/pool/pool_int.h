/* SPDX-License-Identifier: MIT */
/* Internal structures of the pool: requests, connections, statements.
 *
 * Ownership in one paragraph. A request is a future. It is created with one
 * reference held by the pool machinery ("in the machine") and optionally a
 * second for the caller. The machinery reference is dropped when the request
 * has left every queue and slot; the last reference returns the request to
 * the pool's free list (or frees it once the pool is gone). A request can be
 * completed (its callback run) while still in a connection's slots: that is
 * a cancelled or timed-out request whose result is discarded on arrival. */
#ifndef ORM_POOL_INT_H
#define ORM_POOL_INT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <uv.h>

#include "uvorm/pool.h"

#include "async/future.h"
#include "base/list.h"
#include "pool/stmt.h"
#include "submit.h"

typedef enum {
  REQ_QUERY,    /* a statement from the pool queue */
  REQ_TX_QUERY, /* a statement of a transaction, on its pinned connection */
  REQ_BEGIN,    /* BEGIN: pins an idle connection */
  REQ_COMMIT,   /* ends the transaction: unpins its connection */
  REQ_ROLLBACK, /* ... as does this */
  REQ_LEASE     /* takes a connection for itself: COPY, a stream, the
                   listener (lease.c); on the pool or in a transaction */
} orm__req_kind_t;

typedef enum {
  REQ_FREE,   /* in the free list */
  REQ_QUEUED, /* in the pool queue, or a transaction's */
  REQ_SENT,   /* in a connection's slots */
  REQ_HELD,   /* answered; waiting for its segment's sync */
  REQ_LSN,    /* a write that succeeded, waiting for a probe of the
                 primary's WAL position (lsn.c) */
  REQ_DONE    /* out of the machine */
} orm__req_state_t;

typedef struct orm__conn_s orm__conn_t;
typedef struct orm__notice_s orm__notice_t;
typedef struct orm__lease_ops_s orm__lease_ops_t;

typedef struct orm__request_s {
  orm_future_t future; /* first: a request is a future */
  orm_pool_t *pool;    /* NULL once the pool is gone */
  orm__link_t link;    /* queue, held list or free list */
  orm__link_t all;     /* every request of the pool */
  orm__req_kind_t kind;
  orm__req_state_t state;
  orm_tx_t *tx;
  orm__conn_t *conn; /* while SENT or HELD */
  orm__stmt_t *stmt; /* NULL: run `sql_copy` unnamed */
  uint32_t stmt_gen;  /* the generation of `stmt` it was last sent as */
  const char *sql;
  PGresult *result;
  PGresult *prepare_error; /* the PREPARE before it failed */
  unsigned char abandoned; /* completed early; drop the result */
  unsigned char cancel_sent; /* a server cancel went out for it */
  unsigned char transformed; /* held with its value: see transform_early */
  unsigned char writes;      /* not a plain read (by its text) */
  orm__seg_class_t seg;
  /* A write of one row by primary key: 1 + its key's parameter, or 0; and
   * the row's table (see orm__params_in_t). */
  unsigned short row_key;
  const char *row_schema;
  const char *row_table;
  unsigned char retries; /* re-sent for its own failures */
  unsigned char strays;  /* re-sent after other requests' cancels */
  orm__transform_fn transform; /* answer -> value, or NULL: the result */
  int transform_status;        /* what it returned, while `transformed` */
  void *tctx[ORM__SUBMIT_CTX];
  int nparams;
  int param_cap;
  Oid *types;
  const char **values;
  int *lengths;
  int *formats;
  orm__buf_t buf; /* parameter bytes (and the SQL of an unnamed one) */
  /* For the query event and the histograms (measured only when the pool
   * has on_query or metrics). */
  const char *op;
  const char *table;
  uint64_t t_start;    /* the call */
  uint64_t t_sent;     /* last sent */
  uint64_t t_answered; /* its answer in */
  int64_t rows;
  int backend_pid;
  unsigned char replays;
  unsigned char server; /* 1 + its index in the pool's servers; 0: unsent */
  unsigned char internal; /* the runtime's own statement (query events) */
  /* REQ_LEASE: what runs on the lent connection, and its state. */
  const orm__lease_ops_t *lease_ops;
  void *lease_obj;
  /* A session's write (cluster.c): before its callback runs, the sink
   * learns an LSN at or past its commit (lsn.c). */
  orm__lsn_sink_t *sink;
  orm__link_t lsn_link;
} orm__request_t;

/* COMMIT or ROLLBACK. */
static inline int orm__req_ends_tx(const orm__request_t *req) {
  return req->kind == REQ_COMMIT || req->kind == REQ_ROLLBACK;
}

typedef enum {
  SLOT_QUERY,   /* a request's statement */
  SLOT_PREPARE, /* Parse of a statement, ahead of its first use */
  SLOT_SYNC,    /* end of a segment (stmt_id 1: a held one) */
  SLOT_RESET,   /* ROLLBACK of a transaction a held segment left failed */
  SLOT_CHECK    /* health check */
} orm__slot_kind_t;

typedef struct {
  orm__slot_kind_t kind;
  orm__request_t *req; /* SLOT_QUERY; for PREPARE without pipeline mode too */
  uint32_t stmt_id;    /* SLOT_PREPARE: the statement ... */
  uint32_t stmt_gen;   /* ... and the generation it prepares */
} orm__slot_t;

typedef enum {
  CONN_CONNECTING, /* PQconnectPoll in progress */
  CONN_CHECKING,   /* connected; health check in flight */
  CONN_READY,      /* serving requests (idle when nothing is in flight) */
  CONN_PINNED,     /* owned by a transaction */
  CONN_LENT,       /* owned by a lease (lease.c), on the pool's behalf or
                      a transaction's (then `tx` is set) */
  CONN_BROKEN,     /* lost or failed to connect; waiting to reconnect */
  CONN_CLOSED      /* being torn down */
} orm__conn_state_t;

/* A statement on one connection: not prepared, Parse sent, or prepared
 * (as generation `gen` of it). */
typedef enum { STMT_NONE = 0, STMT_PENDING, STMT_READY } orm__prep_state_t;

typedef struct {
  uint32_t gen;
  unsigned char state; /* orm__prep_state_t */
} orm__prepared_t;

typedef enum {
  SEGW_NONE,    /* reads only */
  SEGW_GROUPED, /* inserts, and writes of rows by key in ascending order */
  SEGW_ONE      /* one write of any other kind */
} orm__seg_writes_t;

/* A row key longer than this makes its write one of its own. */
#define ORM__SEG_KEY_MAX 64

struct orm__conn_s {
  orm_pool_t *pool;
  orm__link_t link; /* the pool list for its state */
  orm__conn_state_t state;
  PGconn *pg;
  int backend_pid; /* its server process, once connected (libpq forgets it
                      when the connection breaks) */
  uv_poll_t *poll; /* re-created whenever libpq's socket changes */
  uv_os_sock_t fd;  /* the connection's own duplicate of libpq's socket */
  unsigned long long sock_ino, sock_dev; /* which socket it is */
  int poll_events;
  uv_timer_t timer; /* connect timeout, reconnect backoff */
  int timer_open;
  /* What was sent and not yet answered, in order. */
  orm__slot_t *slots;
  size_t slot_head;
  size_t slot_count;
  size_t slot_cap;
  size_t in_flight;  /* requests among the slots */
  size_t unsynced;   /* statements sent since the last sync */
  /* The writes of the open segment (conn.c, segment_takes()): none, any
   * number of inserts and keyed writes, or one other write; and the
   * greatest row key written, as bytes (length -1: none yet). */
  orm__seg_writes_t seg_writes;
  /* Transactions in the open segment: it is empty or ends with COMMIT or
   * ROLLBACK (a BEGIN may join: nothing before it would become part of
   * its transaction); it holds a transaction boundary after other
   * statements, whose fate hangs on theirs (its sync must be answered
   * before anything follows: see segment_done()). */
  int seg_clean;
  int seg_hold;
  /* Such a sync is on the wire: nothing more is sent until it is in. */
  int awaiting;
  int seg_key_len;
  const char *seg_schema;
  const char *seg_table;
  char seg_key[ORM__SEG_KEY_MAX];
  int dirty;         /* sent something this loop turn: sync and flush */
  orm__link_t held;  /* answered requests of the open segment */
  int segment_failed;
  orm__prepared_t *prepared; /* by statement id */
  size_t prepared_cap;
  orm_tx_t *tx;
  uint64_t created_at;
  uint64_t idle_since;
  uint64_t cancel_guard_until; /* 57014 errors until then may be strays */
  unsigned failures;           /* consecutive failed connects */
  int ever_connected;
  /* The lease the connection is lent to (CONN_LENT); it starts once
   * everything sent before it is answered, out of pipeline mode. */
  orm__request_t *lease;
  int lease_started;
  int lease_poke; /* run the lease's io from the pool's turn (a resume) */
};

/* Where a transaction is in the caller's eyes. Independent of it, `dead`
 * says whether it can still go on. */
typedef enum {
  TX_OPEN,   /* statements may be issued */
  TX_ENDING, /* commit or rollback was called: its request is on its way */
  TX_ENDED   /* that request has completed; the transaction is freed as
                soon as BEGIN, which points at it, has left the machine */
} orm__tx_phase_t;

typedef enum {
  TX_HANDED_OUT, /* orm_tx_begin(): the caller holds the handle from the
                    start, until it ends it */
  TX_ON_BEGIN    /* orm_tx_begin_async(): the handle is BEGIN's value,
                    nobody holds it until BEGIN has run */
} orm__tx_mode_t;

struct orm_tx_s {
  orm_exec_t exec;  /* exec.tx is the transaction */
  void *data;       /* the caller's */
  orm_pool_t *pool; /* NULL once the pool is gone */
  orm__conn_t *conn;
  orm__link_t link;  /* pool's transactions */
  orm__link_t queue; /* statements waiting for the pinned connection */
  orm__request_t *begin; /* until BEGIN has completed */
  orm__request_t *end;   /* COMMIT / ROLLBACK, allocated up front */
  /* Why it cannot go on (ORM_ECONNLOST once its connection died, BEGIN's
   * error when it did not begin), or 0. */
  int dead;
  char why[200];          /* ... and what to tell the statements behind */
  orm__tx_phase_t phase;
  orm__tx_mode_t mode;
  orm__lsn_sink_t *sink; /* a session's: its COMMIT is tracked (lsn.c) */
};

/* A pool's life. orm_pool_close() moves it from OPEN to CLOSING; the
 * rest runs from the scheduler, once the close call has returned. */
typedef enum {
  POOL_OPEN,
  POOL_CLOSING,         /* close called: queue and slots failed, callbacks
                           of that still to run */
  POOL_CLOSING_HANDLES, /* connections and the maintenance timer closing,
                           cancels finishing */
  POOL_CLOSING_SCHED    /* only the scheduler left; then the close
                           callback, then the memory */
} orm__pool_state_t;

/* A server as a connection saw it (PQhost, PQport, PQdb). */
typedef struct {
  char host[128];
  char db[64];
  int port;
} orm__server_t;
#define ORM__SERVERS 8

struct orm_pool_s {
  orm_exec_t exec; /* exec.pool is the pool */
  orm__sched_t sched;
  uv_loop_t *loop;
  orm_pool_config_t cfg;
  char *conninfo;
  void *data;
  /* Requests waiting for a connection, first in first out. */
  orm__link_t queue;
  size_t queued;
  orm__link_t free_reqs;
  size_t nfree;
  orm__link_t all_reqs;
  /* Connections by state, each in exactly one list. */
  orm__link_t connecting; /* CONNECTING and CHECKING */
  orm__link_t ready;      /* READY */
  orm__link_t pinned;     /* PINNED */
  orm__link_t broken;     /* BROKEN: reconnect timer running */
  unsigned nconns;
  orm__link_t txs;        /* transactions, until ended */
  orm__link_t closed_txs; /* detached by orm_pool_close, not yet ended:
                             freed with the pool */
  uv_timer_t maint;
  orm__stmt_table_t stmts;
  orm_pool_stats_t stats;
  orm__pool_state_t state;
  int down; /* the last connect failed and no connection is up */
  char last_error[256];
  int last_code;             /* the code requests fail with while down */
  const char *last_sqlstate; /* the server's SQLSTATE for it, or "" */
  /* Latency histograms (the `metrics` setting): per operation, and the
   * wait before being sent. */
  struct orm__histogram_s *latency; /* ORM__OPS of them, or NULL */
  struct orm__histogram_s *queue_wait;
  /* EXPLAIN of slow statements (explain.c): the one waiting to be sent,
   * one in flight, when the last went, the texts seen (hashes). */
  struct orm__explain_s *explain;
  int explain_inflight;
  uint64_t explain_last;
  uint64_t *explain_seen;
  size_t explain_nseen;
  /* For query events: the servers connections were seen on (a multi-host
   * conninfo gives several), each kept for the pool's life so events can
   * point at them. */
  orm__server_t servers[ORM__SERVERS];
  unsigned nservers;
  orm_mailbox_t *mailbox;   /* orm_pool_post: functions from other threads */
  unsigned pending_cancels; /* PQcancel jobs on the thread pool */
  unsigned handles_open;
  orm_pool_close_cb close_cb;
  /* Server notices waiting for delivery (notice.c). */
  orm__notice_t *notices_head;
  orm__notice_t *notices_tail;
  unsigned nnotices;
  orm__pool_cache_t cache; /* the model layer's */
  uint64_t rng;
  struct orm__listener_s *listener; /* listen.c, once anything listened */
  /* Sessions' writes waiting for the WAL position (lsn.c): for the next
   * probe, and for the one in flight. */
  orm__link_t lsn_next;
  orm__link_t lsn_sent;
  int lsn_probing;
  orm__stmt_hint_t lsn_hint;
  struct orm_cluster_s *owner; /* the cluster it belongs to, or NULL */
};

/* cluster.c: 0, or ORM_ECLOSED once the cluster is closing. */
int orm__cluster_usable(const struct orm_cluster_s *cluster);
/* Checks the replicas now (at most every check_ms / 5): a session's write
 * completed, and its reads follow. */
void orm__cluster_kick(struct orm_cluster_s *cluster);

/* lsn.c */
/* Called as a tracked write completes with `status`: 1 if it now waits for
 * a probe (completed later by lsn.c), 0 if it completes now (the sink is
 * dropped, and told the write may have committed when that is so). */
int orm__lsn_hold(orm__request_t *req, int status);
/* A request leaving the machine still holding a sink (abandoned). Inline:
 * every request passes here, few hold a sink. */
void orm__lsn_sink_drop(orm__request_t *req, int may_have_committed);
static inline void orm__lsn_drop(orm__request_t *req, int may_have_committed) {
  if (req->sink != NULL)
    orm__lsn_sink_drop(req, may_have_committed);
}
/* A pg_lsn in binary (8 bytes, big-endian) at row 0, column `col`: 0, or -1
 * when it is NULL or not 8 bytes. */
int orm__lsn_read(const orm_result_t *res, int col, uint64_t *out);
/* A tracked write cancelled while it waited: out of the lists. */
void orm__lsn_unhold(orm__request_t *req);
/* The pool is closing: writes waiting complete, their sinks blind. */
void orm__lsn_close(orm_pool_t *pool);

/* request.c */
/* Frees a request that is in no list (the pool is gone, or keeps enough). */
void orm__req_free(orm__request_t *req);

/* pool.c */
void orm__pool_kick(orm_pool_t *pool);
/* Completes with a client-side status (0 or ORM_E*), keeping any server
 * error the request received for the details. */
void orm__req_complete(orm__request_t *req, int status, orm__when_t when);

/* Query events (observe.c), only when the pool has an on_query hook: the
 * event of a completing request; a request put on the wire of `pg`; its
 * answer in (req->result, before any transform takes it). */
void orm__req_event(orm__request_t *req, int status);
/* The runtime's log (observe.c): where a connection goes, caught before it
 * is torn down, and one record to on_log when the level is wanted. */
typedef struct {
  char host[128];
  int port;
  int pid;
} orm__where_t;
void orm__conn_where(const orm__conn_t *conn, orm__where_t *where);
void orm__pool_log(orm_pool_t *pool, const orm__where_t *where,
                   orm_log_level_t level, const char *event, unsigned attempt,
                   uint64_t retry_in_ms, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
/* EXPLAIN of a slow statement, once per text (explain.c): readied from
 * its event, sent from the pool's own turn. */
typedef struct orm__explain_s orm__explain_t;
void orm__explain_maybe(orm__request_t *req, const orm_query_event_t *event,
                        const char *keyword);
void orm__explain_submit(orm_pool_t *pool);
void orm__explain_free_all(orm_pool_t *pool);
/* Its latency into the pool's histograms (metrics.c). */
void orm__req_measure(orm__request_t *req);
int orm__metrics_init(orm_pool_t *pool);
void orm__metrics_free(orm_pool_t *pool);
void orm__req_sent_event(orm__request_t *req, PGconn *pg);
void orm__req_answered_event(orm__request_t *req);
/* Completes from the server's answer in req->result / prepare_error, or
 * with what orm__req_transform_early() made of it. */
void orm__req_finish(orm__request_t *req, orm__when_t when);
/* A held read's successful answer becomes its value now, ahead of its
 * segment's sync (no-op for anything else). */
void orm__req_transform_early(orm__request_t *req);
/* Drops the value and message of an early transform: the answer will not
 * count (re-sent, failed, cancelled). */
void orm__req_untransform(orm__request_t *req);
void orm__req_drop(orm__request_t *req);
void orm__pool_dispatch(orm_pool_t *pool);
void orm__pool_conn_ready(orm_pool_t *pool, orm__conn_t *conn);
/* A connection attempt failed, or a live connection died: for `why`, or
 * for what libpq says when it is NULL. Fails what the connection carried
 * and schedules a reconnect. */
void orm__pool_conn_failed(orm_pool_t *pool, orm__conn_t *conn,
                           const char *why);
void orm__pool_resend(orm_pool_t *pool, orm__request_t *req);
void orm__pool_cancel_on_server(orm_pool_t *pool, orm__conn_t *conn);

/* conn.c */
orm__conn_t *orm__conn_new(orm_pool_t *pool);
/* Sets up memory allocated by the caller (for all-or-nothing opens). */
void orm__conn_init(orm__conn_t *conn, orm_pool_t *pool);
void orm__conn_start(orm__conn_t *conn);
int orm__conn_send(orm__conn_t *conn, orm__request_t *req);
/* Sends a health check; the connection is ready again once it answers. */
void orm__conn_check(orm__conn_t *conn);
/* Starts connecting again after `delay_ms`. */
void orm__conn_retry_in(orm__conn_t *conn, uint64_t delay_ms);
void orm__conn_sync(orm__conn_t *conn);
void orm__conn_flush(orm__conn_t *conn);
void orm__conn_abandon(orm__conn_t *conn, orm__request_t *req);
void orm__conn_fail_all(orm__conn_t *conn, int code, const char *why,
                        orm__when_t when);
void orm__conn_shutdown(orm__conn_t *conn);
void orm__conn_destroy(orm__conn_t *conn);
size_t orm__conn_capacity(const orm__conn_t *conn);

int orm__pool_usable(const orm_pool_t *pool);
/* A statement's arguments: 0, ORM_EINVAL or ORM_E2BIG. */
int orm__statement_args(const char *sql, const orm__params_in_t *in);
int orm__pool_enqueue(orm_pool_t *pool, orm__request_t *req);
/* `in` may be NULL for none. `named`: run it as a prepared statement,
 * found through `hint` (may be NULL) or interned. */
int orm__pool_prepare_request(orm__request_t *req, const char *sql,
                              const orm__params_in_t *in, int named,
                              orm__stmt_hint_t *hint);
orm__request_t *orm__pool_req_new(orm_pool_t *pool, orm__req_kind_t kind,
                                  orm_future_cb cb, void *data);
/* Fails a request that never entered the machine, from inside a call. */
void orm__pool_req_fail_deferred(orm__request_t *req, int code);
/* Fails `req` (later) with why the pool is down: no connection is up. */
void orm__pool_req_fail_down(orm__request_t *req);
void orm__pool_req_discard(orm__request_t *req);
void orm__req_set_transform(orm__request_t *req, orm__transform_fn fn,
                            void *const *ctx);

/* lease.c: a connection lent to one operation (COPY, a stream, the
 * listener) for its duration, out of pipeline mode. */
struct orm__lease_ops_s {
  /* The connection is the operation's: nothing in flight, out of
   * pipeline mode. Send the first command and arm the poll. */
  void (*start)(orm__request_t *req, orm__conn_t *conn);
  /* Its socket is ready: UV_READABLE / UV_WRITABLE (status < 0: an
   * error, for libpq to find). */
  void (*io)(orm__request_t *req, int status, int events);
  /* Cancelled or timed out once started; the future is completed with
   * `code` by the caller. Stop, and end the lease when the connection is
   * back in a known state. */
  void (*abort)(orm__request_t *req, int code);
  /* The connection is gone (lost, the pool closing): the lease is over
   * already. Complete the future with `code` unless done, release what it
   * holds. */
  void (*lost)(orm__request_t *req, int code, const char *why);
  /* The request is reclaimed: free the operation's state (req->lease_obj). */
  void (*release)(void *obj);
};
/* From dispatch (pool) or the transaction's pump: `conn` is lent to `req`. */
void orm__lease_assign(orm__conn_t *conn, orm__request_t *req);
/* Starts the lease of `conn` if nothing is left on the wire before it. */
void orm__lease_maybe_start(orm__conn_t *conn);
/* The operation is over: the connection goes back (to the pool or its
 * transaction) or, with `broken` set, is failed for that reason. */
void orm__lease_end(orm__conn_t *conn, const char *broken);
/* The operation found its connection failed (`why`, libpq's message):
 * the lease ends with the connection failed, and the request fails with
 * ORM_ECONNLOST ("`what`: `why`") unless it was abandoned. The operation
 * lets go of `conn` first. */
void orm__lease_lost(orm__conn_t *conn, const char *what, const char *why);
/* Cancel or deadline of a lease (request.c). */
void orm__lease_abort(orm__request_t *req, int code);
/* The connection failed under the lease (conn.c, from fail_all). The
 * operation is told (lost); the future completes with `code`, unless
 * nothing ran yet and another connection can take it. */
void orm__lease_conn_lost(orm__conn_t *conn, int code, const char *why,
                          orm__when_t when);
/* Lent connections whose lease asked for a turn (lease_poke): their io
 * runs with no events, to work through what libpq has buffered. */
void orm__lease_poke_all(orm_pool_t *pool);
/* The common part of a lease's io: flushes on UV_WRITABLE, reads on
 * UV_READABLE (or a poll error). -1 with *why set (libpq's message) when
 * the connection failed, else 1 when output is still pending, 0 when not. */
int orm__lease_io(orm__conn_t *conn, int status, int events,
                  const char **why);
/* Arms the lent connection's poll: 0 stops it (pause). */
void orm__conn_arm(orm__conn_t *conn, int events);
/* Queues a lease on `exec` (the pool's queue, or the transaction's) for
 * `sql` with parameters `in` (NULL: none), encoded into the request (sent
 * unnamed: req->sql, types, values, lengths, formats). 0, or the call's
 * error: nothing was queued, and `obj` is still the caller's. On 0 the
 * request owns `obj` (ops->release frees it when the request goes). */
int orm__lease_submit(orm_exec_t *exec, const orm__lease_ops_t *ops,
                      void *obj, const char *sql, const orm__params_in_t *in,
                      orm_future_cb cb, void *data, orm__request_t **out);

/* listen.c: from the pool's turn, the listener asks for its lease (when
 * something listens and it has none) and sends LISTEN / UNLISTEN for
 * subscriptions that changed; freed with the pool. */
void orm__listener_turn(orm_pool_t *pool);
void orm__listener_sync(orm_pool_t *pool);
void orm__listener_free(orm_pool_t *pool);

/* notice.c */
/* Routes the connection's notices to the pool (call after PQconnectStart). */
void orm__notice_watch(orm__conn_t *conn);
/* Runs on_notice for each waiting notice; stops if the pool closes. */
void orm__notices_deliver(orm_pool_t *pool);
void orm__notices_drop(orm_pool_t *pool);

/* tx.c */
/* The transaction's connection died: fail what waits, remember it. */
void orm__tx_conn_lost(orm_tx_t *tx);
/* BEGIN / COMMIT / ROLLBACK completed with `status`. */
void orm__tx_begin_done(orm__request_t *begin, int status, int abandoned,
                        orm__when_t when);
void orm__tx_end_done(orm_tx_t *tx, int status);
/* Gives the pinned connection back to the pool. */
void orm__tx_unpin(orm_tx_t *tx);
/* Sends waiting transaction statements on their pinned connections. */
void orm__tx_pump_all(orm_pool_t *pool);
/* ... of one transaction, whose BEGIN was just sent: statements issued
 * with it follow at once, and once its COMMIT is out the connection can
 * take the next BEGIN in the same turn. `tx` may be gone after. */
void orm__tx_pump(orm_tx_t *tx);
/* Queues `req` (a lease) behind the transaction's statements. */
int orm__tx_submit_lease(orm_tx_t *tx, orm__request_t *req);
int orm__tx_submit(orm_tx_t *tx, const char *sql, orm__stmt_hint_t *hint,
                   const orm__params_in_t *in, orm__transform_fn transform,
                   void *const *ctx,
                   orm_future_cb cb, void *data, orm_future_t **out);
/* The pool is closing: fail what waits, detach from the pool (onto its
 * closed_txs list). */
void orm__tx_pool_closing(orm_tx_t *tx, orm__when_t when);
/* Frees a transaction of a pool that is being freed. */
void orm__tx_free_closed(orm_tx_t *tx);

#endif /* ORM_POOL_INT_H */
