/* SPDX-License-Identifier: MIT */
/* Crossing threads (orm_pool_post, mailboxes): threads with loops of their
 * own hand statements to a pool running on another thread and get each
 * answer back on their own loop; posts run in order, exactly once, also
 * when the pool closes with posts waiting. Run under ThreadSanitizer too
 * (scripts/test.sh, ctest -L threads). */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CALLERS 4
#define JOBS 400

typedef struct caller_s caller_t;

typedef struct {
  caller_t *caller;
  int64_t n;      /* asked: n * 2 */
  int64_t answer; /* -1 until answered */
  int status;
} job_t;

struct caller_s {
  uv_loop_t loop;
  uv_thread_t thread;
  orm_mailbox_t *box;
  orm_pool_t *pool;
  job_t jobs[JOBS];
  int answered;
  int64_t asked_last; /* on the pool's loop: posts run in the order posted */
  int in_order;
  int wrong;
  int post_errors;
};

/* ---- on the pool's loop -------------------------------------------------------- */

static void answered(orm_future_t *f, void *data);
static void deliver(void *data);

static void ask(void *data) {
  job_t *job = data;
  if (job->n != job->caller->asked_last + 1)
    job->caller->in_order = 0;
  job->caller->asked_last = job->n;
  orm_param_t p = ORM_INT8(job->n);
  int rc = orm_query_async(job->caller->pool, "SELECT $1::int8 * 2", &p, 1, answered, job, NULL);
  if (rc != 0) { /* answered at once, with the code */
    job->status = rc;
    if (orm_mailbox_post(job->caller->box, deliver, job) != 0)
      abort();
  }
}

static void answered(orm_future_t *f, void *data) {
  job_t *job = data;
  job->status = orm_future_status(f);
  if (job->status == 0) {
    const orm_result_t *r = orm_future_value(f);
    int64_t v = -1;
    orm_result_int(r, 0, 0, &v);
    job->answer = v;
  }
  /* Back to the caller's loop. */
  if (orm_mailbox_post(job->caller->box, deliver, job) != 0)
    abort();
}

/* ---- on a caller's loop ----------------------------------------------------------- */

static void deliver(void *data) {
  job_t *job = data;
  caller_t *c = job->caller;
  /* Answers may come back in any order (two connections). */
  if (job->status != 0 || job->answer != job->n * 2)
    c->wrong++;
  if (++c->answered == JOBS)
    orm_mailbox_close(c->box);
}

static void caller_main(void *arg) {
  caller_t *c = arg;
  for (int i = 0; i < JOBS; i++) {
    c->jobs[i] = (job_t){.caller = c, .n = i + 1, .answer = -1};
    if (orm_pool_post(c->pool, ask, &c->jobs[i]) != 0)
      c->post_errors++;
  }
  uv_run(&c->loop, UV_RUN_DEFAULT);
}

/* ---- the pool's thread ----------------------------------------------------------- */

typedef struct {
  orm_fx_t fx;
  uv_thread_t thread;
  uv_sem_t ready;
} pool_side_t;

static void pool_main(void *arg) {
  pool_side_t *ps = arg;
  uv_sem_post(&ps->ready);
  /* The pool's handles keep the loop running until it is closed. */
  uv_run(&ps->fx.loop, UV_RUN_DEFAULT);
}

static void on_closed_post(void *data) { *(int *)data += 1; }

typedef struct {
  pool_side_t *ps;
  int ran_late; /* posts that ran during the close */
  int refused;  /* orm_pool_post during the close */
} closing_t;

static void close_pool(void *data) {
  closing_t *cl = data;
  orm_pool_t *pool = cl->ps->fx.pool;
  /* Posted before the close, from here: they still run, once. */
  for (int i = 0; i < 3; i++)
    assert_int_equal(orm_pool_post(pool, on_closed_post, &cl->ran_late), 0);
  assert_int_equal(orm_pool_close(pool, NULL), 0);
  /* Until the close reaches the mailbox, posts are taken and run. */
  assert_int_equal(orm_pool_post(pool, on_closed_post, &cl->ran_late), 0);
}

static void test_callers_on_other_threads(void **state) {
  (void)state;
  pool_side_t ps;
  memset(&ps, 0, sizeof ps);
  orm_fx_open_admin(&ps.fx, NULL, 0);
  orm_fx_open_pool(&ps.fx, &(orm_pool_config_t){.max_conns = 2});
  orm_pool_t *pool = ps.fx.pool;

  /* Bad input. */
  assert_int_equal(orm_pool_post(NULL, ask, NULL), ORM_EINVAL);
  assert_int_equal(orm_pool_post(pool, NULL, NULL), ORM_EINVAL);
  assert_int_equal(orm_mailbox_open(NULL, &ps.fx.loop), ORM_EINVAL);
  orm_mailbox_t *m = NULL;
  assert_int_equal(orm_mailbox_open(&m, NULL), ORM_EINVAL);
  assert_int_equal(orm_mailbox_post(NULL, on_closed_post, NULL), ORM_EINVAL);
  assert_int_equal(orm_mailbox_close(NULL), ORM_EINVAL);

  uv_sem_init(&ps.ready, 0);
  assert_int_equal(uv_thread_create(&ps.thread, pool_main, &ps), 0);
  uv_sem_wait(&ps.ready);

  static caller_t callers[CALLERS];
  for (int i = 0; i < CALLERS; i++) {
    caller_t *c = &callers[i];
    memset(c, 0, sizeof *c);
    c->pool = pool;
    c->in_order = 1;
    assert_int_equal(uv_loop_init(&c->loop), 0);
    assert_int_equal(orm_mailbox_open(&c->box, &c->loop), 0);
  }
  for (int i = 0; i < CALLERS; i++)
    assert_int_equal(uv_thread_create(&callers[i].thread, caller_main, &callers[i]), 0);
  for (int i = 0; i < CALLERS; i++) {
    caller_t *c = &callers[i];
    uv_thread_join(&c->thread);
    assert_int_equal(c->post_errors, 0);
    assert_int_equal(c->answered, JOBS);
    assert_true(c->in_order);
    assert_int_equal(c->wrong, 0);
    orm_test_loop_close(&c->loop);
  }

  /* Close the pool from its own thread, with posts waiting. */
  closing_t cl = {.ps = &ps};
  assert_int_equal(orm_pool_post(pool, close_pool, &cl), 0);
  uv_thread_join(&ps.thread);
  assert_int_equal(cl.ran_late, 4);
  uv_sem_destroy(&ps.ready);
  /* The fixture's close: the pool is gone already. */
  ps.fx.pool = NULL;
  orm_test_loop_close(&ps.fx.loop);
  orm_fx_close_admin(&ps.fx);
}

/* A mailbox on its own: posts from many threads, each thread's in order,
 * every one run once; a post after the close is refused. */
typedef struct {
  orm_mailbox_t *box;
  int id;
  uv_thread_t thread;
} poster_t;

#define POSTERS 4
#define POSTS 5000

static int seen[POSTERS];
static int disorder;

static void tick(void *data) {
  uintptr_t v = (uintptr_t)data;
  int who = (int)(v / POSTS), n = (int)(v % POSTS);
  if (n != seen[who])
    disorder++;
  seen[who] = n + 1;
}

static void poster_main(void *arg) {
  poster_t *p = arg;
  for (int i = 0; i < POSTS; i++)
    if (orm_mailbox_post(p->box, tick, (void *)(uintptr_t)(p->id * POSTS + i)) != 0)
      abort();
}

static void test_mailbox(void **state) {
  (void)state;
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  orm_mailbox_t *box = NULL;
  assert_int_equal(orm_mailbox_open(&box, &loop), 0);
  poster_t posters[POSTERS];
  for (int i = 0; i < POSTERS; i++) {
    posters[i] = (poster_t){.box = box, .id = i};
    assert_int_equal(uv_thread_create(&posters[i].thread, poster_main, &posters[i]), 0);
  }
  /* Run the loop while they post: until every post has run. */
  for (;;) {
    uv_run(&loop, UV_RUN_NOWAIT);
    int done = 1;
    for (int i = 0; i < POSTERS; i++)
      done &= seen[i] == POSTS; /* tick() runs on this thread */
    if (done)
      break;
  }
  for (int i = 0; i < POSTERS; i++)
    uv_thread_join(&posters[i].thread);
  assert_int_equal(disorder, 0);
  assert_int_equal(orm_mailbox_close(box), 0);
  /* Closed: refused (the memory lives until the handle has closed). */
  assert_int_equal(orm_mailbox_post(box, tick, NULL), ORM_ECLOSED);
  assert_int_equal(orm_mailbox_close(box), ORM_ECLOSED);
  uv_run(&loop, UV_RUN_DEFAULT);
  orm_test_loop_close(&loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_mailbox),
      cmocka_unit_test(test_callers_on_other_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
