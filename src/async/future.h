/* SPDX-License-Identifier: MIT */
/* Internal side of futures and the per-pool scheduler that delivers them.
 * Nothing here knows about PostgreSQL: the owner of a future (a pool
 * request, a combinator) plugs in through orm__future_ops_t. */
#ifndef ORM_FUTURE_H
#define ORM_FUTURE_H

#include <uv.h>

#include "uvorm/async.h"

typedef struct orm__sched_s orm__sched_t;

/* When a completion runs its callback: at once (uvorm is processing on its
 * own loop turn, not inside a caller's call), or from the scheduler's next
 * turn (the caller may be inside a public call, where no callback may run). */
typedef enum { ORM__NOW = 0, ORM__LATER = 1 } orm__when_t;
typedef struct orm__future_all_s orm__future_all_t;

typedef struct {
  /* Stop the work behind a pending future (cancel, deadline). The owner
   * must complete the future with `code`, now or later. */
  void (*abort)(orm_future_t *future, int code);
  /* The last reference is gone: reclaim the memory. */
  void (*reclaim)(orm_future_t *future);
} orm__future_ops_t;

struct orm_future_s {
  const orm__future_ops_t *ops;
  orm__sched_t *sched;
  orm_future_cb cb;
  void *data;
  orm_future_state_t state;
  int status;
  unsigned refs;
  void *value;
  void (*value_free)(void *value);
  /* What the error strings point into (a PGresult), freed with it. */
  void *error_owner;
  void (*error_owner_free)(void *owner);
  orm_error_t error;
  char error_text[192];
  orm__future_all_t *joined_by;
  orm_future_t *next_deferred;
  uint64_t deadline;   /* uv_now() ms; valid while heap_index != 0 */
  /* The two deadlines a future can have, 0 for none: the caller's
   * (orm_future_timeout) and its owner's (a pool's acquire or statement
   * timeout). The earlier one is armed; neither replaces the other. */
  uint64_t user_deadline;
  uint64_t owner_deadline;
  size_t heap_index;   /* 1-based slot in sched's heap, 0 when not there */
};

/* Sets up a pending future with one reference, held by the owner. */
void orm__future_init(orm_future_t *f, const orm__future_ops_t *ops,
                      orm__sched_t *sched, orm_future_cb cb, void *data);

void orm__future_ref(orm_future_t *f);
void orm__future_unref(orm_future_t *f);

/* Completes a pending future with `status` (0, ORM_ECANCELED or an error,
 * whose message falls back to orm_strerror(status)) and runs its callback:
 * now, or from the scheduler (ORM__LATER: whenever the caller may be
 * inside a public call). The value, set beforehand with
 * orm__future_set_value(), is kept only on success. */
void orm__future_complete(orm_future_t *f, int status, orm__when_t when);

void orm__future_set_value(orm_future_t *f, void *value,
                           void (*value_free)(void *));
/* A client-side error message, copied into the future. */
void orm__future_set_message(orm_future_t *f, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Gives the pending `to` the error of the failed `from`: its strings are
 * copied into `to` or, when they point into the server's answer, that
 * answer moves to `to` (`from` must not be read for its error afterwards). */
void orm__future_take_error(orm_future_t *to, orm_future_t *from);
/* Runs a deferred future's callback (the scheduler calls it, in order). */
void orm__future_deliver_deferred(orm_future_t *f);

/* Frees value and error owner: used when a future is recycled. */
void orm__future_clear(orm_future_t *f);

/* ---- scheduler ----------------------------------------------------------
 * One per pool: an idle handle that delivers deferred completions and runs
 * the owner's work hook once per loop turn while there is something to do,
 * and one timer over a min-heap of future deadlines. */
struct orm__sched_s {
  uv_loop_t *loop;
  uv_idle_t idle;
  uv_timer_t timer;
  void (*work)(orm__sched_t *sched);
  void (*closed)(orm__sched_t *sched);
  orm_future_t *deferred_head;
  orm_future_t *deferred_tail;
  orm_future_t **heap;
  size_t heap_len;
  size_t heap_cap;
  uint64_t timer_due; /* when the timer is armed for; UINT64_MAX if not */
  int work_wanted;
  int handles_open;
};

int orm__sched_init(orm__sched_t *s, uv_loop_t *loop,
                    void (*work)(orm__sched_t *));
/* Closes both handles; `closed` runs once they are. Deferred futures must
 * have been delivered and deadlines dropped by then. */
void orm__sched_close(orm__sched_t *s, void (*closed)(orm__sched_t *));
/* Ask for the work hook to run in the next idle phase. */
void orm__sched_kick(orm__sched_t *s);
/* Runs the deferred callbacks now (used while shutting down). */
void orm__sched_drain(orm__sched_t *s);
/* Sets or moves the deadline of `f` (absolute, uv_now() ms); on expiry the
 * owner's abort() runs with ORM_ETIMEDOUT. 0 or ORM_ENOMEM. */
int orm__sched_set_deadline(orm__sched_t *s, orm_future_t *f, uint64_t due);
/* Sets the owner's deadline `ms` from now (0: none) and arms the earlier of
 * it and the caller's. A sum past the end of time saturates. */
int orm__future_owner_deadline(orm_future_t *f, uint64_t ms);
void orm__sched_clear_deadline(orm__sched_t *s, orm_future_t *f);

#endif /* ORM_FUTURE_H */
