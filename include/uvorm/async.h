/* SPDX-License-Identifier: MIT */
/* uvorm — futures: the one-shot results every asynchronous call returns.
 *
 * A future is pending until it completes exactly once: resolved (with a
 * value, possibly NULL), failed (with an error), or cancelled. Its callback
 * then runs on the loop, never inside the call that created the future.
 *
 * Lifetime. A call that creates a future can hand back a pointer to it (its
 * `out` argument). If it does, the caller holds a reference and must give it
 * back with orm_future_release() exactly once, whenever it likes (before or
 * after completion; releasing early does not cancel). If `out` is NULL the
 * future lives only until its callback returns. Either way the future and its
 * value stay valid for the whole callback.
 *
 * Values. A resolved future owns its value until someone takes it with
 * orm_future_take(); an untaken value is freed with the future. */
#ifndef UVORM_ASYNC_H
#define UVORM_ASYNC_H

#include <stdint.h>

#include "uvorm/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct orm_future_s orm_future_t;

/* Called once, on the loop, when the future completes. */
typedef void (*orm_future_cb)(orm_future_t *future, void *data);

typedef enum {
  ORM_FUTURE_PENDING = 0,
  ORM_FUTURE_RESOLVED,
  ORM_FUTURE_FAILED,
  ORM_FUTURE_CANCELLED
} orm_future_state_t;

/* Why a future failed. `code` is an ORM_E* code. For errors reported by the
 * server (ORM_ESERVER, and ORM_ECONNLOST when the server said why it hung
 * up), `sqlstate` is PostgreSQL's five-character SQLSTATE and the other
 * fields carry what the server sent; absent fields are NULL. `message` is
 * never NULL. The strings live as long as the future. */
typedef struct orm_error_s {
  int code;
  const char *sqlstate; /* "" when the error did not come from the server */
  const char *message;
  const char *detail;
  const char *hint;
  const char *constraint;
  const char *column;
  const char *table;
  const char *schema;
  /* The statement took effect on the server (a write, committed unless it
   * ran in a transaction) although its answer could not be read into the
   * caller's values (ORM_ETYPE, ORM_ENOMEM): do not simply run it again. */
  int applied;
  /* Where in the statement the server places the error: a 1-based
   * character (not byte) index, as PostgreSQL's error position; 0 if none. */
  int position;
  /* ORM_EVALIDATION: the column whose rule or hook refused the row, or
   * NULL when the refusal concerns the row as a whole. */
  const char *field;
} orm_error_t;

ORM_EXTERN orm_future_state_t orm_future_state(const orm_future_t *future);

/* 0 once resolved, ORM_ECANCELED once cancelled, the error code once
 * failed; ORM_EBUSY while pending. */
ORM_EXTERN int orm_future_status(const orm_future_t *future);

/* The value of a resolved future, still owned by the future; NULL if it
 * has none, was taken, or the future did not resolve. */
ORM_EXTERN void *orm_future_value(const orm_future_t *future);

/* Takes ownership of the value: the future forgets it, and the caller frees
 * it with the function the call that created the future names (for
 * orm_query_async(): orm_result_free()). NULL if there is nothing to take. */
ORM_EXTERN void *orm_future_take(orm_future_t *future);

/* The error of a failed or cancelled future; NULL otherwise. */
ORM_EXTERN const orm_error_t *orm_future_error(const orm_future_t *future);

/* The `data` pointer given when the future was created. */
ORM_EXTERN void *orm_future_data(const orm_future_t *future);

/* Gives back the reference obtained through an `out` argument. */
ORM_EXTERN void orm_future_release(orm_future_t *future);

/* Cancels a pending future. A request still queued is dropped and never
 * sent; one already sent is cancelled on the server too, and its result
 * discarded. The callback runs (later, on the loop) with ORM_ECANCELED.
 * Returns 0, or ORM_ESTATE if the future is no longer pending. */
ORM_EXTERN int orm_future_cancel(orm_future_t *future);

/* Fails the future with ORM_ETIMEDOUT if it is still pending `timeout_ms`
 * from now, stopping its request as orm_future_cancel() does (on the server
 * too). Replaces an earlier deadline set on it. Returns 0, ORM_EINVAL for a
 * zero timeout, or ORM_ESTATE if the future is no longer pending. A timeout
 * too large to represent never fires. */
ORM_EXTERN int orm_future_timeout(orm_future_t *future, uint64_t timeout_ms);

/* A future that completes when all `n` (>= 1) futures have completed. It
 * resolves with no value if all of them resolved, and otherwise fails with
 * the error code of the first one (in array order) that did not; read each
 * future for the details. The caller must hold references to the futures
 * (from their `out` arguments) and keep them until this one completes. A
 * future can be joined by one orm_future_all() at a time (ORM_EBUSY).
 * Cancelling the combined future cancels every future still pending.
 * Returns 0, ORM_EINVAL (NULL, n == 0, a future given twice), ORM_EBUSY,
 * ORM_ECLOSED (every future belongs to a pool already closed) or
 * ORM_ENOMEM. */
ORM_EXTERN int orm_future_all(orm_future_t *const *futures, size_t n,
                              orm_future_cb cb, void *data,
                              orm_future_t **out);

#ifdef __cplusplus
}
#endif

#endif /* UVORM_ASYNC_H */
