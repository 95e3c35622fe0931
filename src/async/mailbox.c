/* SPDX-License-Identifier: MIT */
/* Mailboxes (uvorm/pool.h): functions posted from any thread, run on one
 * loop in the order they were posted. A mutex guards an array of posts and
 * a uv_async_t wakes the loop; the loop swaps the array for a spare one
 * under the lock and runs the posts outside it, so a post never waits for
 * a function to run, and nothing is allocated once the arrays have grown
 * to the traffic. */
#include <stdlib.h>

#include "base/alloc.h"
#include "mailbox.h"

typedef struct {
  orm_post_fn fn;
  void *data;
} post_t;

struct orm_mailbox_s {
  uv_async_t async;
  uv_mutex_t lock;
  post_t *posts, *spare; /* the lock guards posts, len, cap, closed */
  size_t len, cap, spare_cap;
  int closed;
  void (*on_closed)(void *data);
  void *closed_data;
};

/* Runs what was posted until now. On the loop; a posted function may
 * close the mailbox, which runs this again inside it. */
static void run_posts(orm_mailbox_t *box) {
  uv_mutex_lock(&box->lock);
  post_t *run = box->posts;
  size_t n = box->len, cap = box->cap;
  box->posts = box->spare;
  box->cap = box->spare_cap;
  box->len = 0;
  uv_mutex_unlock(&box->lock);
  /* The loop alone touches the spare. None while `run` runs: a nested run
   * must not take the array posts now go into as its own. */
  box->spare = NULL;
  box->spare_cap = 0;
  for (size_t i = 0; i < n; i++)
    run[i].fn(run[i].data);
  if (box->spare == NULL) {
    box->spare = run;
    box->spare_cap = cap;
  } else { /* a nested run left its array as the spare */
    orm__free(run);
  }
}

static void on_async(uv_async_t *async) { run_posts(async->data); }

int orm__mailbox_open(orm_mailbox_t **out, uv_loop_t *loop, int ref) {
  orm_mailbox_t *box = orm__calloc(1, sizeof *box);
  if (box == NULL)
    return ORM_ENOMEM;
  if (uv_mutex_init(&box->lock) != 0) {
    orm__free(box);
    return ORM_ENOMEM;
  }
  if (uv_async_init(loop, &box->async, on_async) != 0) {
    uv_mutex_destroy(&box->lock);
    orm__free(box);
    return ORM_ENOMEM;
  }
  box->async.data = box;
  if (!ref)
    uv_unref((uv_handle_t *)&box->async);
  *out = box;
  return 0;
}

int orm_mailbox_open(orm_mailbox_t **out, uv_loop_t *loop) {
  if (out == NULL || loop == NULL)
    return ORM_EINVAL;
  *out = NULL;
  return orm__mailbox_open(out, loop, 1);
}

int orm_mailbox_post(orm_mailbox_t *box, orm_post_fn fn, void *data) {
  if (box == NULL || fn == NULL)
    return ORM_EINVAL;
  uv_mutex_lock(&box->lock);
  if (box->closed) {
    uv_mutex_unlock(&box->lock);
    return ORM_ECLOSED;
  }
  if (box->len == box->cap) {
    size_t cap = box->cap ? box->cap * 2 : 64;
    post_t *posts = orm__reallocarray(box->posts, cap, sizeof *posts);
    if (posts == NULL) {
      uv_mutex_unlock(&box->lock);
      return ORM_ENOMEM;
    }
    box->posts = posts;
    box->cap = cap;
  }
  box->posts[box->len++] = (post_t){fn, data};
  int wake = box->len == 1; /* else a wake-up is on its way */
  uv_mutex_unlock(&box->lock);
  if (wake)
    uv_async_send(&box->async);
  return 0;
}

static void on_handle_closed(uv_handle_t *handle) {
  orm_mailbox_t *box = handle->data;
  void (*cb)(void *) = box->on_closed;
  void *data = box->closed_data;
  uv_mutex_destroy(&box->lock);
  orm__free(box->posts);
  orm__free(box->spare);
  orm__free(box);
  if (cb != NULL)
    cb(data);
}

void orm__mailbox_close(orm_mailbox_t *box, void (*cb)(void *data), void *data) {
  uv_mutex_lock(&box->lock);
  box->closed = 1;
  uv_mutex_unlock(&box->lock);
  run_posts(box); /* what was posted before the close still runs */
  box->on_closed = cb;
  box->closed_data = data;
  uv_close((uv_handle_t *)&box->async, on_handle_closed);
}

int orm_mailbox_close(orm_mailbox_t *box) {
  if (box == NULL)
    return ORM_EINVAL;
  uv_mutex_lock(&box->lock);
  int closed = box->closed;
  uv_mutex_unlock(&box->lock);
  if (closed)
    return ORM_ECLOSED;
  orm__mailbox_close(box, NULL, NULL);
  return 0;
}
