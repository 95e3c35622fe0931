/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "future.h"

struct orm__future_all_s {
  orm_future_t future;
  int abort_code; /* set when the combined future was cancelled or timed out */
  size_t pending;
  size_t n;
  orm_future_t *children[];
};

static void all_child_completed(orm__future_all_t *all, orm__when_t when);

/* What orm_future_all() marks the futures it checks with, for a moment. */
static orm__future_all_t joining;

void orm__future_init(orm_future_t *f, const orm__future_ops_t *ops,
                      orm__sched_t *sched, orm_future_cb cb, void *data) {
  f->ops = ops;
  f->sched = sched;
  f->cb = cb;
  f->data = data;
  f->state = ORM_FUTURE_PENDING;
  f->status = ORM_EBUSY;
  f->refs = 1;
  f->value = NULL;
  f->value_free = NULL;
  f->error_owner = NULL;
  f->error_owner_free = NULL;
  memset(&f->error, 0, sizeof f->error);
  f->error_text[0] = '\0';
  f->joined_by = NULL;
  f->next_deferred = NULL;
  f->deadline = 0;
  f->user_deadline = 0;
  f->owner_deadline = 0;
  f->heap_index = 0;
}

static uint64_t due_in(const orm_future_t *f, uint64_t ms) {
  uint64_t now = uv_now(f->sched->loop);
  return ms > UINT64_MAX - now ? UINT64_MAX : now + ms;
}

/* Arms the earlier of the two deadlines, or none. */
static int arm_deadline(orm_future_t *f) {
  uint64_t due = f->user_deadline;
  if (f->owner_deadline != 0 && (due == 0 || f->owner_deadline < due))
    due = f->owner_deadline;
  if (due == 0) {
    orm__sched_clear_deadline(f->sched, f);
    return 0;
  }
  return orm__sched_set_deadline(f->sched, f, due);
}

int orm__future_owner_deadline(orm_future_t *f, uint64_t ms) {
  f->owner_deadline = ms == 0 ? 0 : due_in(f, ms);
  return arm_deadline(f);
}

void orm__future_ref(orm_future_t *f) { f->refs++; }

void orm__future_unref(orm_future_t *f) {
  assert(f->refs > 0);
  if (--f->refs == 0)
    f->ops->reclaim(f);
}

void orm__future_clear(orm_future_t *f) {
  if (f->value != NULL && f->value_free != NULL)
    f->value_free(f->value);
  f->value = NULL;
  if (f->error_owner != NULL && f->error_owner_free != NULL)
    f->error_owner_free(f->error_owner);
  f->error_owner = NULL;
}

void orm__future_set_value(orm_future_t *f, void *value,
                           void (*value_free)(void *)) {
  f->value = value;
  f->value_free = value_free;
}

void orm__future_set_message(orm_future_t *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(f->error_text, sizeof f->error_text, fmt, ap);
  va_end(ap);
  f->error.message = f->error_text;
}

void orm__future_take_error(orm_future_t *to, orm_future_t *from) {
  if (to->error_owner != NULL && to->error_owner_free != NULL)
    to->error_owner_free(to->error_owner);
  to->error = from->error;
  to->error_owner = from->error_owner;
  to->error_owner_free = from->error_owner_free;
  from->error_owner = NULL;
  if (from->error.message == from->error_text) {
    memcpy(to->error_text, from->error_text, sizeof to->error_text);
    to->error.message = to->error_text;
  }
}

static void deliver(orm_future_t *f) {
  if (f->cb != NULL)
    f->cb(f, f->data);
}

void orm__future_complete(orm_future_t *f, int status, orm__when_t when) {
  assert(f->state == ORM_FUTURE_PENDING);
  if (f->heap_index != 0)
    orm__sched_clear_deadline(f->sched, f);
  f->status = status;
  if (status == 0) {
    f->state = ORM_FUTURE_RESOLVED;
  } else {
    f->state = status == ORM_ECANCELED ? ORM_FUTURE_CANCELLED : ORM_FUTURE_FAILED;
    if (f->value != NULL && f->value_free != NULL)
      f->value_free(f->value);
    f->value = NULL;
    f->error.code = status;
    if (f->error.message == NULL)
      f->error.message = orm_strerror(status);
    if (f->error.sqlstate == NULL)
      f->error.sqlstate = "";
  }
  if (when) {
    /* The deferred list holds a reference until the callback has run. */
    orm__future_ref(f);
    f->next_deferred = NULL;
    orm__sched_t *s = f->sched;
    if (s->deferred_tail != NULL)
      s->deferred_tail->next_deferred = f;
    else
      s->deferred_head = f;
    s->deferred_tail = f;
    orm__sched_kick(s);
  } else {
    orm__future_ref(f);
    deliver(f);
  }
  if (f->joined_by != NULL)
    all_child_completed(f->joined_by, when);
  if (!when)
    orm__future_unref(f);
}

void orm__future_deliver_deferred(orm_future_t *f) {
  deliver(f);
  orm__future_unref(f);
}

/* ---- public accessors --------------------------------------------------- */

orm_future_state_t orm_future_state(const orm_future_t *f) {
  return f != NULL ? f->state : ORM_FUTURE_FAILED;
}

int orm_future_status(const orm_future_t *f) {
  return f != NULL ? f->status : ORM_EINVAL;
}

void *orm_future_value(const orm_future_t *f) {
  return f != NULL && f->state == ORM_FUTURE_RESOLVED ? f->value : NULL;
}

void *orm_future_take(orm_future_t *f) {
  if (f == NULL || f->state != ORM_FUTURE_RESOLVED)
    return NULL;
  void *value = f->value;
  f->value = NULL;
  return value;
}

const orm_error_t *orm_future_error(const orm_future_t *f) {
  if (f == NULL || f->state == ORM_FUTURE_PENDING ||
      f->state == ORM_FUTURE_RESOLVED)
    return NULL;
  return &f->error;
}

void *orm_future_data(const orm_future_t *f) {
  return f != NULL ? f->data : NULL;
}

void orm_future_release(orm_future_t *f) {
  if (f != NULL)
    orm__future_unref(f);
}

int orm_future_cancel(orm_future_t *f) {
  if (f == NULL)
    return ORM_EINVAL;
  if (f->state != ORM_FUTURE_PENDING)
    return ORM_ESTATE;
  f->ops->abort(f, ORM_ECANCELED);
  return 0;
}

int orm_future_timeout(orm_future_t *f, uint64_t timeout_ms) {
  if (f == NULL || timeout_ms == 0)
    return ORM_EINVAL;
  if (f->state != ORM_FUTURE_PENDING)
    return ORM_ESTATE;
  if (f->sched == NULL)
    return ORM_ESTATE;
  uint64_t previous = f->user_deadline;
  f->user_deadline = due_in(f, timeout_ms);
  int rc = arm_deadline(f);
  if (rc != 0)
    f->user_deadline = previous;
  return rc;
}

/* ---- orm_future_all ----------------------------------------------------- */

static void all_abort(orm_future_t *f, int code) {
  orm__future_all_t *all = (orm__future_all_t *)f;
  if (all->abort_code == 0)
    all->abort_code = code;
  for (size_t i = 0; i < all->n; i++)
    if (all->children[i]->state == ORM_FUTURE_PENDING)
      all->children[i]->ops->abort(all->children[i], code);
}

static void all_reclaim(orm_future_t *f) {
  orm__future_all_t *all = (orm__future_all_t *)f;
  orm__future_clear(f);
  for (size_t i = 0; i < all->n; i++) {
    all->children[i]->joined_by = NULL;
    orm__future_unref(all->children[i]);
  }
  orm__free(all);
}

static const orm__future_ops_t all_ops = {all_abort, all_reclaim};

static void all_child_completed(orm__future_all_t *all, orm__when_t when) {
  assert(all->pending > 0);
  if (--all->pending > 0)
    return;
  int status = all->abort_code;
  for (size_t i = 0; status == 0 && i < all->n; i++)
    status = all->children[i]->status;
  orm__future_complete(&all->future, status, when);
  orm__future_unref(&all->future); /* the combinator's own reference */
}

int orm_future_all(orm_future_t *const *futures, size_t n, orm_future_cb cb,
                   void *data, orm_future_t **out) {
  if (out != NULL)
    *out = NULL;
  if (futures == NULL || n == 0 || n > (SIZE_MAX - sizeof(orm__future_all_t)) /
                                           sizeof(orm_future_t *))
    return ORM_EINVAL;
  /* A duplicate is found by the mark its first occurrence left, rather
   * than by comparing every pair. */
  int rc = 0;
  size_t marked = 0;
  for (; rc == 0 && marked < n; marked++) {
    orm_future_t *f = futures[marked];
    if (f == NULL || f->joined_by == &joining)
      rc = ORM_EINVAL;
    else if (f->joined_by != NULL)
      rc = ORM_EBUSY;
    else
      f->joined_by = &joining;
  }
  if (rc != 0)
    marked--; /* the one that failed carries no mark of ours */
  for (size_t i = 0; i < marked; i++)
    futures[i]->joined_by = NULL;
  if (rc != 0)
    return rc;
  /* Any child still attached to a live pool can deliver the result. */
  orm__sched_t *sched = NULL;
  for (size_t i = 0; sched == NULL && i < n; i++)
    sched = futures[i]->sched;
  if (sched == NULL)
    return ORM_ECLOSED;
  orm__future_all_t *all =
      orm__malloc(sizeof *all + n * sizeof(orm_future_t *));
  if (all == NULL)
    return ORM_ENOMEM;
  orm__future_init(&all->future, &all_ops, sched, cb, data);
  all->abort_code = 0;
  all->n = n;
  all->pending = 0;
  for (size_t i = 0; i < n; i++) {
    all->children[i] = futures[i];
    orm__future_ref(futures[i]);
    futures[i]->joined_by = all;
    if (futures[i]->state == ORM_FUTURE_PENDING)
      all->pending++;
  }
  if (out != NULL) {
    orm__future_ref(&all->future);
    *out = &all->future;
  }
  /* The combined future holds its own reference until it completes. */
  if (all->pending == 0) {
    all->pending = 1;
    all_child_completed(all, ORM__LATER);
  }
  return 0;
}
