/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <stdint.h>

#include "base/alloc.h"
#include "future.h"

static void on_idle(uv_idle_t *idle) {
  orm__sched_t *s = idle->data;
  /* Deliver what was deferred before this turn; callbacks that defer more
   * are served next turn, so a callback loop cannot starve the loop. */
  orm_future_t *f = s->deferred_head;
  s->deferred_head = s->deferred_tail = NULL;
  while (f != NULL) {
    orm_future_t *next = f->next_deferred;
    orm__future_deliver_deferred(f);
    f = next;
  }
  if (s->work_wanted && s->work != NULL) {
    s->work_wanted = 0;
    s->work(s);
  }
  if (s->deferred_head == NULL && !s->work_wanted)
    uv_idle_stop(&s->idle);
}

void orm__sched_drain(orm__sched_t *s) {
  while (s->deferred_head != NULL) {
    orm_future_t *f = s->deferred_head;
    s->deferred_head = f->next_deferred;
    if (s->deferred_head == NULL)
      s->deferred_tail = NULL;
    orm__future_deliver_deferred(f);
  }
}

void orm__sched_kick(orm__sched_t *s) {
  if (s->handles_open == 2 && !uv_is_active((uv_handle_t *)&s->idle))
    uv_idle_start(&s->idle, on_idle);
}

/* ---- deadlines: a binary min-heap of futures, 1-based indexes ---------- */

static void heap_place(orm__sched_t *s, size_t i, orm_future_t *f) {
  s->heap[i - 1] = f;
  f->heap_index = i;
}

static void heap_up(orm__sched_t *s, size_t i) {
  orm_future_t *f = s->heap[i - 1];
  while (i > 1 && s->heap[i / 2 - 1]->deadline > f->deadline) {
    heap_place(s, i, s->heap[i / 2 - 1]);
    i /= 2;
  }
  heap_place(s, i, f);
}

static void heap_down(orm__sched_t *s, size_t i) {
  orm_future_t *f = s->heap[i - 1];
  for (;;) {
    size_t c = 2 * i;
    if (c > s->heap_len)
      break;
    if (c < s->heap_len && s->heap[c]->deadline < s->heap[c - 1]->deadline)
      c++;
    if (s->heap[c - 1]->deadline >= f->deadline)
      break;
    heap_place(s, i, s->heap[c - 1]);
    i = c;
  }
  heap_place(s, i, f);
}

static void on_timer(uv_timer_t *timer);

static void arm_timer(orm__sched_t *s) {
  if (s->handles_open != 2)
    return;
  if (s->heap_len == 0) {
    if (s->timer_due != UINT64_MAX) {
      uv_timer_stop(&s->timer);
      s->timer_due = UINT64_MAX;
    }
    return;
  }
  uint64_t due = s->heap[0]->deadline;
  if (due == s->timer_due)
    return;
  uint64_t now = uv_now(s->loop);
  s->timer_due = due;
  uv_timer_start(&s->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *timer) {
  orm__sched_t *s = timer->data;
  s->timer_due = UINT64_MAX;
  uint64_t now = uv_now(s->loop);
  while (s->heap_len > 0 && s->heap[0]->deadline <= now) {
    orm_future_t *f = s->heap[0];
    orm__sched_clear_deadline(s, f);
    orm__future_ref(f);
    if (f->state == ORM_FUTURE_PENDING)
      f->ops->abort(f, ORM_ETIMEDOUT);
    orm__future_unref(f);
  }
  arm_timer(s);
}

int orm__sched_set_deadline(orm__sched_t *s, orm_future_t *f, uint64_t due) {
  if (f->heap_index != 0) {
    uint64_t old = f->deadline;
    f->deadline = due;
    if (due < old)
      heap_up(s, f->heap_index);
    else
      heap_down(s, f->heap_index);
  } else {
    if (s->heap_len == s->heap_cap) {
      size_t cap = s->heap_cap ? s->heap_cap * 2 : 64;
      orm_future_t **heap = orm__reallocarray(s->heap, cap, sizeof *heap);
      if (heap == NULL)
        return ORM_ENOMEM;
      s->heap = heap;
      s->heap_cap = cap;
    }
    f->deadline = due;
    s->heap_len++;
    heap_place(s, s->heap_len, f);
    heap_up(s, s->heap_len);
  }
  arm_timer(s);
  return 0;
}

void orm__sched_clear_deadline(orm__sched_t *s, orm_future_t *f) {
  size_t i = f->heap_index;
  if (i == 0)
    return;
  f->heap_index = 0;
  orm_future_t *last = s->heap[--s->heap_len];
  if (last != f) {
    heap_place(s, i, last);
    heap_up(s, i);
    heap_down(s, last->heap_index);
  }
  /* The timer is re-armed lazily: an early wake-up finds nothing due. */
  if (s->heap_len == 0)
    arm_timer(s);
}

/* ---- lifecycle ---------------------------------------------------------- */

int orm__sched_init(orm__sched_t *s, uv_loop_t *loop,
                    void (*work)(orm__sched_t *)) {
  s->loop = loop;
  s->work = work;
  s->closed = NULL;
  s->deferred_head = s->deferred_tail = NULL;
  s->heap = NULL;
  s->heap_len = s->heap_cap = 0;
  s->timer_due = UINT64_MAX;
  s->work_wanted = 0;
  s->handles_open = 0;
  int rc = uv_idle_init(loop, &s->idle);
  if (rc != 0)
    return ORM_EIO;
  rc = uv_timer_init(loop, &s->timer);
  if (rc != 0) {
    uv_close((uv_handle_t *)&s->idle, NULL);
    return ORM_EIO;
  }
  s->idle.data = s;
  s->timer.data = s;
  s->handles_open = 2;
  return 0;
}

static void on_handle_closed(uv_handle_t *handle) {
  orm__sched_t *s = handle->data;
  if (--s->handles_open == 0) {
    orm__free(s->heap);
    s->heap = NULL;
    if (s->closed != NULL)
      s->closed(s);
  }
}

void orm__sched_close(orm__sched_t *s, void (*closed)(orm__sched_t *)) {
  assert(s->deferred_head == NULL);
  s->closed = closed;
  s->work = NULL;
  uv_close((uv_handle_t *)&s->idle, on_handle_closed);
  uv_close((uv_handle_t *)&s->timer, on_handle_closed);
}
