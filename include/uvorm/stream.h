/* SPDX-License-Identifier: MIT */
/* uvorm — results larger than memory, COPY, and LISTEN/NOTIFY.
 *
 * Each of these takes a connection for itself for its duration: a stream
 * whose consumer pauses holds its server process still, a COPY speaks a
 * protocol of its own, and a listener waits for notifications for ever.
 * None can share a pipelined connection, so the pool lends one: the
 * operation waits in the queue like a statement (in a transaction, behind
 * the transaction's statements, on its connection), takes the connection
 * once what was sent on it before is answered, and gives it back when it
 * ends. While it runs the connection carries nothing else; size max_conns
 * for it (docs/streaming.md). statement_timeout_ms does not apply: cancel
 * the operation to stop it. */
#ifndef UVORM_STREAM_H
#define UVORM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "uvorm/async.h"
#include "uvorm/common.h"
#include "uvorm/model.h"
#include "uvorm/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- streaming -----------------------------------------------------------
 * A query's rows, hydrated into the model's structs, a chunk at a time:
 * memory is bounded by the chunk, not by the result. Rows are read in
 * single-row mode, so nothing holds the whole result, on the client or in
 * a server-side cursor.
 *
 * on_rows runs on the loop with each chunk of up to `chunk_rows` rows (the
 * last one may be shorter; a result with no rows gives none). The rows are
 * valid during the call only: their memory is reused for the next chunk
 * (copy what you keep). From inside on_rows, or at any other time until
 * the stream has completed, the stream can be paused, resumed and
 * cancelled.
 *
 * Pausing stops reading the socket: the server blocks once the socket's
 * buffers are full (TCP backpressure), and memory stays where it is. A
 * stream paused for long holds its connection and its server process
 * (and, in a transaction, the transaction's snapshot).
 *
 * The future completes once after the last chunk: with no value on
 * success (orm_stream_count() says how many rows came), ORM_ESERVER with
 * the server's error (rows delivered before it stand), ORM_ETYPE when a
 * column does not fit its field (the query is cancelled on the server),
 * ORM_ECANCELED (orm_stream_cancel() or orm_future_cancel(): the server's
 * query is cancelled, no chunk follows), ORM_ECONNLOST (the connection
 * died mid-stream: the stream fails once, and is never resumed or re-run
 * elsewhere), ORM_ECONNECT.
 *
 * In a transaction, a stream (or COPY) that is cancelled or fails leaves
 * the transaction failed, like any statement that fails in it: its cancel
 * goes to the server, which may also hit the transaction's next statement
 * if the query had just finished. Roll back after it. */
typedef struct orm_stream_s orm_stream_t;

typedef void (*orm_stream_cb)(orm_stream_t *stream, const orm_rows_t *rows,
                              void *data);

/* The default and the greatest chunk_rows. */
#define ORM_STREAM_CHUNK_DEFAULT 1000
#define ORM_STREAM_CHUNK_MAX 1000000

/* Streams the rows of `sql` (a query whose columns are the model's, by
 * name, as for orm_find_all_async) with `nparams` parameters. chunk_rows
 * 0 takes the default. `out`, if not NULL, receives the stream's handle,
 * valid until the future's callback has returned; `fut`, if not NULL, a
 * reference to the future. Call errors: those of orm_query_async(), and
 * ORM_EINVAL (NULL model or on_rows, chunk_rows above
 * ORM_STREAM_CHUNK_MAX), ORM_EMODEL. */
ORM_EXTERN int orm_stream_async(orm_exec_t *exec, const orm_model_t *model,
                                const char *sql, const orm_param_t *params,
                                size_t nparams, size_t chunk_rows,
                                orm_stream_cb on_rows, orm_future_cb cb,
                                void *data, orm_stream_t **out,
                                orm_future_t **fut);

/* Streams the rows a query builder selects (its SQL and values are taken
 * at the call: the query may be freed or changed once it returns). A query
 * that includes relations is refused: ORM_ENOTSUP. (Loading relations per
 * chunk with orm_preload_async works on the pool, whose other connections
 * serve it; not on the stream's own transaction, whose connection the
 * stream holds until it ends.) Call errors: the query's sticky error, and those of
 * orm_stream_async(). */
ORM_EXTERN int orm_stream_query_async(orm_exec_t *exec, orm_query_t *query,
                                      size_t chunk_rows, orm_stream_cb on_rows,
                                      orm_future_cb cb, void *data,
                                      orm_stream_t **out, orm_future_t **fut);

/* Stops delivering chunks and reading the socket until orm_stream_resume().
 * 0, ORM_EINVAL (NULL), ORM_ESTATE (the stream has completed). Pausing a
 * paused stream is a no-op. */
ORM_EXTERN int orm_stream_pause(orm_stream_t *stream);
/* Goes on: chunks follow from the pool's next turn, never from inside this
 * call. 0, ORM_EINVAL, ORM_ESTATE. */
ORM_EXTERN int orm_stream_resume(orm_stream_t *stream);
/* orm_future_cancel() of the stream's future: no chunk follows, the future
 * completes with ORM_ECANCELED, the server's query is cancelled. 0,
 * ORM_EINVAL, ORM_ESTATE (completed already). */
ORM_EXTERN int orm_stream_cancel(orm_stream_t *stream);
/* Rows delivered so far. */
ORM_EXTERN uint64_t orm_stream_count(const orm_stream_t *stream);
ORM_EXTERN bool orm_stream_paused(const orm_stream_t *stream);

/* ---- COPY ------------------------------------------------------------------
 * COPY runs on a lent connection (COPY cannot run in pipeline mode), on
 * the pool or in a transaction. It is all or nothing: a row the server
 * rejects (a constraint, a NULL in a NOT NULL column, a bad value) fails
 * the whole COPY with the server's error and SQLSTATE, and no row of it is
 * kept. Each resolves with an orm_result_t * whose orm_result_affected()
 * is the number of rows copied. Cancelling one stops it on the server:
 * nothing is kept. */

/* Model rows in, by binary COPY through the model's codecs: COPY table
 * (its columns but generated ones) FROM STDIN (FORMAT binary). `rows` is
 * an array of `nrows` structs that must stay alive and untouched until the
 * callback (they are encoded as they are sent, a block at a time: memory
 * stays small whatever nrows). Generated columns take their defaults, and
 * nothing is written back into the rows (use insert_many for that). Call
 * errors: those of orm_query_async(), ORM_EINVAL (NULL model, NULL rows
 * with nrows > 0), ORM_EMODEL, ORM_ENOTSUP (every column is generated). A
 * value that does not encode (ORM_ERANGE, ORM_EINVAL from the codec) fails
 * the future with the row and column named, and the COPY is aborted.
 * Binary COPY carries no casts: each column must have its field's type
 * exactly (an integer field of ORM_T_INT4 into a bigint column fails on
 * the server, where an insert would convert it). The server's verdict on
 * the rows comes once they are all sent. */
ORM_EXTERN int orm_copy_in_rows_async(orm_exec_t *exec,
                                      const orm_model_t *model,
                                      const void *rows, size_t nrows,
                                      orm_future_cb cb, void *data,
                                      orm_future_t **out);

/* Model rows out, by binary COPY, decoded by the model's codecs into
 * chunks exactly as orm_stream_async() delivers them (pause, resume,
 * cancel and orm_stream_count() work the same):
 *   COPY (SELECT "col"::type, ... FROM source) TO STDOUT (FORMAT binary)
 * where source is the model's table (`select_sql` NULL) or the query
 * `select_sql`, whose columns are named as the model's fields (extra
 * columns are ignored). Each column is cast to its field's type on the
 * server, so a column that cannot be one fails there (COPY's binary rows
 * carry no types to check). COPY takes no parameters: `select_sql` is
 * sent as is, so never build it from values. Faster than a stream for
 * whole tables (no per-row result objects); a stream takes parameters.
 * Call errors: those of orm_stream_async(). */
ORM_EXTERN int orm_copy_out_rows_async(orm_exec_t *exec,
                                       const orm_model_t *model,
                                       const char *select_sql,
                                       size_t chunk_rows,
                                       orm_stream_cb on_rows,
                                       orm_future_cb cb, void *data,
                                       orm_stream_t **out,
                                       orm_future_t **fut);

/* Supplies the next piece of a raw COPY FROM STDIN: points *buf at up to
 * any number of bytes (they must stay valid until the next call) and
 * returns 1; returns 0 at the end; or a negative ORM_E* code to abort the
 * COPY (the future fails with it). The pieces are the COPY's bytes in the
 * format its SQL names (text, csv, binary), cut anywhere. */
typedef int (*orm_copy_read_cb)(void *data, const void **buf, size_t *len);
/* Receives each row of a raw COPY TO STDOUT, in the format its SQL names
 * (valid during the call only). */
typedef void (*orm_copy_write_cb)(void *data, const void *buf, size_t len);

/* COPY ... FROM STDIN with the data `read` supplies, for files and buffers
 * in text, CSV or binary format. `data` goes to `read` and `cb`. The SQL
 * is sent as is (COPY takes no parameters: name tables and columns in it,
 * quoted). Call errors: those of orm_query_async(), ORM_EINVAL (NULL sql or
 * read). A statement that is not a COPY FROM STDIN fails the future with
 * ORM_EPROTO. */
ORM_EXTERN int orm_copy_in_async(orm_exec_t *exec, const char *sql,
                                 orm_copy_read_cb read, orm_future_cb cb,
                                 void *data, orm_future_t **out);
/* COPY ... TO STDOUT, each row handed to `write` as it arrives (memory
 * stays small whatever the size). */
ORM_EXTERN int orm_copy_out_async(orm_exec_t *exec, const char *sql,
                                  orm_copy_write_cb write, orm_future_cb cb,
                                  void *data, orm_future_t **out);

/* ---- LISTEN / NOTIFY -------------------------------------------------------
 * orm_listen() subscribes a callback to a channel. The pool's listener, one
 * connection lent to it for as long as anything listens (so max_conns must
 * be at least 2), runs LISTEN for each channel and delivers notifications
 * on the loop, in the order the server sent them, with channel, payload
 * and the sending server process. Several subscriptions may share a
 * channel; each gets every notification.
 *
 * A subscription is told when its LISTEN is in place (ORM_NOTIFY_LISTENING:
 * from then on nothing sent on the channel is missed). If the listener's
 * connection is lost (a server restart, a killed backend, a failover), the
 * pool reconnects and listens again, and each subscription is then told
 * ORM_NOTIFY_GAP: notifications sent while nobody listened are lost, so
 * whatever the service derives from them must be re-read. A LISTEN the
 * server refuses gives ORM_NOTIFY_ERROR with its message; the subscription
 * then stays inactive until it is removed.
 *
 * Channel names are identifiers: 1 to 63 bytes, no control characters;
 * they are sent quoted (case and every character kept), never spliced.
 * Behind a pooler in transaction mode (the transaction_pooling setting)
 * LISTEN cannot work, the session changing under it: ORM_ENOTSUP. */
typedef struct orm_listen_s orm_listen_t;

typedef enum {
  ORM_NOTIFY_MESSAGE = 0, /* a notification */
  ORM_NOTIFY_LISTENING,   /* the LISTEN is in place */
  ORM_NOTIFY_GAP,         /* listening again after the connection was lost:
                             notifications may have been missed */
  ORM_NOTIFY_ERROR        /* the server refused the LISTEN (message in
                             payload) */
} orm_notify_kind_t;

typedef struct {
  orm_notify_kind_t kind;
  const char *channel;
  const char *payload; /* "" when there is none */
  int sender_pid;      /* the notifying server process; 0 for events */
} orm_notification_t;

/* Runs on the loop; may call orm_unlisten() (on any subscription, its own
 * too) and orm_pool_close(). Strings are valid during the call only. */
typedef void (*orm_notify_cb)(orm_listen_t *listen,
                              const orm_notification_t *note, void *data);

/* The largest payload PostgreSQL takes (shorter than 8000 bytes). */
#define ORM_NOTIFY_PAYLOAD_MAX 7999
#define ORM_CHANNEL_MAX 63

/* Subscribes `cb` to `channel`; `out` receives the subscription (it lives
 * until orm_unlisten(), or until the pool's close callback has run). 0,
 * ORM_EINVAL (NULL argument, a channel name that is empty, too long or has
 * control characters), ORM_ENOTSUP (max_conns below 2, or
 * transaction_pooling), ORM_ECLOSED, ORM_ENOMEM. */
ORM_EXTERN int orm_listen(orm_pool_t *pool, const char *channel,
                          orm_notify_cb cb, void *data, orm_listen_t **out);
/* Ends a subscription: no callback follows, even one already read; the
 * last one of a channel UNLISTENs it, the last of all gives the
 * connection back. 0 or ORM_EINVAL. */
ORM_EXTERN int orm_unlisten(orm_listen_t *listen);

/* pg_notify($1, $2): `payload` (NULL for none) goes to the channel's
 * listeners when the executor's transaction commits (at once on the pool).
 * Resolves with no value. Call errors: ORM_EINVAL (a bad channel name),
 * ORM_E2BIG (a payload above ORM_NOTIFY_PAYLOAD_MAX), those of
 * orm_query_async(). */
ORM_EXTERN int orm_notify_async(orm_exec_t *exec, const char *channel,
                                const char *payload, orm_future_cb cb,
                                void *data, orm_future_t **out);

#ifdef ORM__GENERIC
#define orm_copy_in_rows_async(exec, ...)                                      \
  orm_copy_in_rows_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_copy_out_rows_async(exec, ...)                                     \
  orm_copy_out_rows_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_copy_in_async(exec, ...)                                           \
  orm_copy_in_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_copy_out_async(exec, ...)                                          \
  orm_copy_out_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_notify_async(exec, ...) orm_notify_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_stream_async(exec, ...) orm_stream_async(ORM_EXEC(exec), __VA_ARGS__)
#define orm_stream_query_async(exec, ...)                                      \
  orm_stream_query_async(ORM_EXEC(exec), __VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif

#endif /* UVORM_STREAM_H */
