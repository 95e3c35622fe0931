/* Futures and the scheduler without a server. A small test owner ("job")
 * plugs into orm__future_ops_t the way a pool request does, on a real
 * uv_loop_t, so the public contracts of include/uvorm/async.h can be checked
 * one by one: one callback, never inside the call, value ownership,
 * references, cancellation, deadlines, orm_future_all, out of memory. */
#include "alloc_fault.h"
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#include <uvorm.h>

#include "async/future.h"

/* The library's memory goes through the test allocator (alloc_fault.h): it
 * counts live blocks and fails allocations on demand. */
static int group_setup(void **state) { return orm_test_alloc_install(); }

static int group_teardown(void **state) { return orm_test_alloc_restore(); }

/* ---- the test owner ------------------------------------------------------ */

typedef struct {
  orm_future_t future; /* first: a job is a future */
  int aborts;
  int abort_code;
  int owned; /* the owner's reference is still held */
} job_t;

static int jobs_made;
static int jobs_reclaimed;
static int inside_call; /* a callback must not run while this is set */
static int sequence;    /* orders callbacks across futures */

static void job_finish(job_t *job, int status, int defer) {
  orm__future_complete(&job->future, status, defer);
  /* Like a pool request leaving the machine: the owner lets go. */
  job->owned = 0;
  orm__future_unref(&job->future);
}

static void job_abort(orm_future_t *f, int code) {
  job_t *job = (job_t *)f;
  job->aborts++;
  job->abort_code = code;
  job_finish(job, code, 1); /* may run inside a public call: defer */
}

static void job_reclaim(orm_future_t *f) {
  assert_int_equal(((job_t *)f)->owned, 0);
  orm__future_clear(f);
  jobs_reclaimed++;
  free(f);
}

static const orm__future_ops_t job_ops = {job_abort, job_reclaim};

/* The test's own memory: libc, not the library's allocator. */
static job_t *job_new(orm__sched_t *sched, orm_future_cb cb, void *data,
                      orm_future_t **out) {
  job_t *job = calloc(1, sizeof *job);
  assert_non_null(job);
  orm__future_init(&job->future, &job_ops, sched, cb, data);
  job->owned = 1;
  jobs_made++;
  if (out != NULL) {
    orm__future_ref(&job->future);
    *out = &job->future;
  }
  return job;
}

/* What a callback saw. */
typedef struct {
  int calls;
  int status;
  orm_future_state_t state;
  int order;
  uint64_t at;        /* uv_now() when it ran */
  uint64_t deadline;  /* expected expiry, for deadline tests */
  int release_self;   /* give back the caller's reference inside */
  void *value_seen;
  int value_ok;
} seen_t;

static uv_loop_t loop;
static orm__sched_t sched;
static int sched_closed;

static void on_done(orm_future_t *f, void *data) {
  seen_t *s = data;
  if (inside_call)
    fail_msg("a callback ran inside the call that scheduled it");
  assert_ptr_equal(orm_future_data(f), data);
  assert_int_not_equal(orm_future_state(f), ORM_FUTURE_PENDING);
  s->calls++;
  s->status = orm_future_status(f);
  s->state = orm_future_state(f);
  s->order = ++sequence;
  s->at = uv_now(f->sched->loop);
  s->value_seen = orm_future_value(f);
  if (s->release_self) {
    orm_future_release(f);
    /* Still valid for the whole callback. */
    s->value_ok = orm_future_value(f) == s->value_seen &&
                  orm_future_data(f) == data;
  }
}

static long blocks_at_start;

static void start(void) {
  /* Relative, so that a failed test's leftovers do not fail the next. */
  blocks_at_start = orm_test_alloc_live();
  jobs_made = jobs_reclaimed = 0;
  inside_call = 0;
  sequence = 0;
  sched_closed = 0;
  assert_int_equal(uv_loop_init(&loop), 0);
  assert_int_equal(orm__sched_init(&sched, &loop, NULL), 0);
}

static void on_sched_closed(orm__sched_t *s) {
  assert_ptr_equal(s, &sched);
  sched_closed++;
}

/* Closes the scheduler and the loop; every handle closed, every future and
 * every block of the library's memory gone. */
static void finish(void) {
  orm_test_run(&loop, 5000);
  assert_null(sched.deferred_head);
  assert_int_equal(sched.heap_len, 0);
  orm__sched_close(&sched, on_sched_closed);
  orm_test_loop_close(&loop);
  assert_int_equal(sched_closed, 1);
  assert_int_equal(jobs_reclaimed, jobs_made);
  assert_int_equal(orm_test_alloc_live(), blocks_at_start);
}

static void run(void) { orm_test_run(&loop, 5000); }

/* ---- values --------------------------------------------------------------- */

static int values_freed;

static void value_free(void *v) {
  values_freed++;
  free(v);
}

static int *value_new(int n) {
  int *v = malloc(sizeof *v);
  assert_non_null(v);
  *v = n;
  return v;
}

/* ---- one callback, never inside the call ---------------------------------- */

static void test_deferred_runs_once_on_the_loop(void **state) {
  start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  assert_int_equal(orm_future_state(f), ORM_FUTURE_PENDING);
  assert_int_equal(orm_future_status(f), ORM_EBUSY);

  inside_call = 1;
  job_finish(job, 0, 1);
  inside_call = 0;
  assert_int_equal(s.calls, 0);
  /* The state is final at once; only the callback waits for the loop. */
  assert_int_equal(orm_future_state(f), ORM_FUTURE_RESOLVED);

  run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, 0);
  assert_int_equal(s.state, ORM_FUTURE_RESOLVED);

  /* Nothing can make it run again. */
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  assert_int_equal(orm_future_timeout(f, 10), ORM_ESTATE);
  run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(jobs_reclaimed, 0);
  orm_future_release(f);
  assert_int_equal(jobs_reclaimed, 1);
  finish();
}

static void test_deferred_order_and_no_starvation(void **state) {
  start();
  enum { N = 16 };
  seen_t s[N] = {{0}};
  job_t *jobs[N];
  for (int i = 0; i < N; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], NULL);
  inside_call = 1;
  for (int i = N - 1; i >= 0; i--)
    job_finish(jobs[i], 0, 1);
  inside_call = 0;
  run();
  /* Delivered in completion order, each once, each reclaimed after it. */
  for (int i = 0; i < N; i++) {
    assert_int_equal(s[i].calls, 1);
    assert_int_equal(s[i].order, N - i);
  }
  assert_int_equal(jobs_reclaimed, N);
  finish();
}

/* A callback that completes the next future deferred: each one is delivered
 * on a later turn, not inside the previous callback. */
typedef struct {
  seen_t seen;
  job_t *next;
  int *depth;
} chain_t;

static void on_chain(orm_future_t *f, void *data) {
  chain_t *c = data;
  assert_int_equal(*c->depth, 0);
  (*c->depth)++;
  on_done(f, &c->seen);
  if (c->next != NULL)
    job_finish(c->next, 0, 1);
  (*c->depth)--;
}

static void test_callback_that_defers_more(void **state) {
  start();
  int depth = 0;
  chain_t c[3] = {{{0}, NULL, &depth}, {{0}, NULL, &depth}, {{0}, NULL, &depth}};
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&sched, on_chain, &c[i], NULL);
  c[0].next = jobs[1];
  c[1].next = jobs[2];
  job_finish(jobs[0], 0, 1);
  run();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(c[i].seen.calls, 1);
    assert_int_equal(c[i].seen.order, i + 1);
  }
  finish();
}

static void test_immediate_completion(void **state) {
  start();
  seen_t s = {0};
  job_t *job = job_new(&sched, on_done, &s, NULL);
  /* defer = 0 is for the owner on the loop: the callback runs now. */
  job_finish(job, ORM_EIO, 0);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, ORM_EIO);
  assert_int_equal(jobs_reclaimed, 1);
  run();
  assert_int_equal(s.calls, 1);
  finish();
}

/* ---- references ------------------------------------------------------------ */

static void test_release_before_completion(void **state) {
  start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  orm__future_set_value(f, value_new(7), value_free);
  values_freed = 0;
  orm_future_release(f); /* early release does not cancel */
  assert_int_equal(job->aborts, 0);
  assert_int_equal(jobs_reclaimed, 0);
  job_finish(job, 0, 1);
  assert_int_equal(jobs_reclaimed, 0);
  run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, 0);
  /* Future and value were valid during the callback, gone after it. */
  assert_non_null(s.value_seen);
  assert_int_equal(jobs_reclaimed, 1);
  assert_int_equal(values_freed, 1);
  finish();
}

static void test_release_after_completion(void **state) {
  start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  job_finish(job, 0, 1);
  orm_future_release(f); /* completed, callback still to come */
  assert_int_equal(jobs_reclaimed, 0);
  run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(jobs_reclaimed, 1);

  seen_t s2 = {0};
  orm_future_t *f2;
  job = job_new(&sched, on_done, &s2, &f2);
  job_finish(job, 0, 1);
  run();
  assert_int_equal(s2.calls, 1);
  assert_int_equal(jobs_reclaimed, 1); /* the caller still holds it */
  assert_int_equal(orm_future_status(f2), 0);
  orm_future_release(f2);
  assert_int_equal(jobs_reclaimed, 2);
  finish();
}

static void test_release_inside_callback(void **state) {
  start();
  values_freed = 0;
  seen_t s = {.release_self = 1};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  orm__future_set_value(f, value_new(3), value_free);
  job_finish(job, 0, 1);
  run();
  assert_int_equal(s.calls, 1);
  assert_true(s.value_ok);
  assert_int_equal(values_freed, 1);
  assert_int_equal(jobs_reclaimed, 1);

  /* The same from an immediate completion. */
  seen_t s2 = {.release_self = 1};
  job = job_new(&sched, on_done, &s2, &f);
  orm__future_set_value(f, value_new(4), value_free);
  job_finish(job, 0, 0);
  assert_int_equal(s2.calls, 1);
  assert_true(s2.value_ok);
  assert_int_equal(values_freed, 2);
  finish();
}

/* ---- values ------------------------------------------------------------------ */

static void on_take(orm_future_t *f, void *data) {
  int **taken = data;
  int *v = orm_future_value(f);
  assert_non_null(v);
  assert_int_equal(*v, 42);
  *taken = orm_future_take(f);
  assert_ptr_equal(*taken, v);
  /* Taken once: the future has nothing left. */
  assert_null(orm_future_take(f));
  assert_null(orm_future_value(f));
}

static void test_value_taken_is_never_freed(void **state) {
  start();
  values_freed = 0;
  int *taken = NULL;
  job_t *job = job_new(&sched, on_take, &taken, NULL);
  orm__future_set_value(&job->future, value_new(42), value_free);
  job_finish(job, 0, 1);
  run();
  assert_int_equal(jobs_reclaimed, 1);
  assert_int_equal(values_freed, 0);
  assert_non_null(taken);
  assert_int_equal(*taken, 42);
  free(taken);
  finish();
}

static void test_value_not_taken_is_freed_once(void **state) {
  start();
  values_freed = 0;
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  orm__future_set_value(f, value_new(5), value_free);
  job_finish(job, 0, 1);
  run();
  assert_int_equal(s.calls, 1);
  assert_non_null(s.value_seen);
  assert_int_equal(*(int *)orm_future_value(f), 5);
  /* Held by the caller: the value lives as long as the future. */
  assert_int_equal(values_freed, 0);
  orm_future_release(f);
  assert_int_equal(values_freed, 1);

  /* Without a reference the value goes right after the callback. */
  seen_t s2 = {0};
  job = job_new(&sched, on_done, &s2, NULL);
  orm__future_set_value(&job->future, value_new(6), value_free);
  job_finish(job, 0, 1);
  assert_int_equal(values_freed, 1);
  run();
  assert_non_null(s2.value_seen);
  assert_int_equal(values_freed, 2);
  finish();
}

static void test_value_of_failed_future_is_freed_once(void **state) {
  start();
  values_freed = 0;
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  orm__future_set_value(f, value_new(8), value_free);
  job_finish(job, ORM_EPROTO, 1);
  run();
  assert_int_equal(s.calls, 1);
  assert_null(s.value_seen);
  assert_null(orm_future_value(f));
  assert_null(orm_future_take(f));
  assert_int_equal(values_freed, 1);
  orm_future_release(f);
  assert_int_equal(values_freed, 1);
  finish();
}

/* ---- errors -------------------------------------------------------------------- */

static void test_error_accessors(void **state) {
  start();
  seen_t s[4] = {{0}};
  orm_future_t *f[4];
  job_t *jobs[4];
  for (int i = 0; i < 4; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);

  assert_null(orm_future_error(f[0])); /* pending */
  assert_null(orm_future_value(f[0]));
  assert_null(orm_future_take(f[0]));
  assert_int_equal(orm_future_status(f[0]), ORM_EBUSY);

  job_finish(jobs[0], 0, 1);
  job_finish(jobs[1], ORM_EIO, 1);
  orm__future_set_message(f[2], "disk %s at %d", "full", 99);
  job_finish(jobs[2], ORM_ESERVER, 1);
  assert_int_equal(orm_future_cancel(f[3]), 0);
  run();

  assert_null(orm_future_error(f[0]));
  assert_int_equal(orm_future_state(f[0]), ORM_FUTURE_RESOLVED);

  const orm_error_t *e = orm_future_error(f[1]);
  assert_non_null(e);
  assert_int_equal(e->code, ORM_EIO);
  assert_non_null(e->message);
  assert_string_equal(e->message, orm_strerror(ORM_EIO));
  assert_non_null(e->sqlstate);
  assert_string_equal(e->sqlstate, "");
  assert_int_equal(orm_future_state(f[1]), ORM_FUTURE_FAILED);

  e = orm_future_error(f[2]);
  assert_non_null(e);
  assert_int_equal(e->code, ORM_ESERVER);
  assert_string_equal(e->message, "disk full at 99");

  e = orm_future_error(f[3]);
  assert_non_null(e);
  assert_int_equal(e->code, ORM_ECANCELED);
  assert_non_null(e->message);
  assert_int_equal(orm_future_state(f[3]), ORM_FUTURE_CANCELLED);
  assert_int_equal(orm_future_status(f[3]), ORM_ECANCELED);

  for (int i = 0; i < 4; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_null_future(void **state) {
  assert_int_equal(orm_future_status(NULL), ORM_EINVAL);
  assert_int_not_equal(orm_future_state(NULL), ORM_FUTURE_PENDING);
  assert_null(orm_future_value(NULL));
  assert_null(orm_future_take(NULL));
  assert_null(orm_future_error(NULL));
  assert_null(orm_future_data(NULL));
  orm_future_release(NULL);
  assert_int_equal(orm_future_cancel(NULL), ORM_EINVAL);
  assert_int_equal(orm_future_timeout(NULL, 10), ORM_EINVAL);
}

/* ---- cancellation ---------------------------------------------------------------- */

static void test_cancel(void **state) {
  start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  inside_call = 1;
  assert_int_equal(orm_future_cancel(f), 0);
  inside_call = 0;
  assert_int_equal(job->aborts, 1);
  assert_int_equal(job->abort_code, ORM_ECANCELED);
  assert_int_equal(s.calls, 0);
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, ORM_ECANCELED);
  assert_int_equal(s.state, ORM_FUTURE_CANCELLED);
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  assert_int_equal(job->aborts, 1);
  orm_future_release(f);

  /* A resolved future cannot be cancelled, not even before its callback. */
  seen_t s2 = {0};
  job = job_new(&sched, on_done, &s2, &f);
  job_finish(job, 0, 1);
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  run();
  assert_int_equal(s2.status, 0);
  orm_future_release(f);
  finish();
}

/* ---- deadlines ---------------------------------------------------------------------- */

static void test_timeout_fires(void **state) {
  start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  assert_int_equal(orm_future_timeout(f, 0), ORM_EINVAL);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  inside_call = 1;
  assert_int_equal(orm_future_timeout(f, 50), 0);
  inside_call = 0;
  run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, ORM_ETIMEDOUT);
  assert_int_equal(s.state, ORM_FUTURE_FAILED);
  assert_int_equal(job->aborts, 1);
  assert_int_equal(job->abort_code, ORM_ETIMEDOUT);
  assert_true(s.at - t0 >= 50);
  assert_true(s.at - t0 < 50 + 1000);
  assert_int_equal(orm_future_error(f)->code, ORM_ETIMEDOUT);
  assert_int_equal(orm_future_timeout(f, 50), ORM_ESTATE);
  orm_future_release(f);
  finish();
}

static void test_timeout_replaced(void **state) {
  start();
  seen_t sooner = {0}, later = {0};
  orm_future_t *a, *b;
  job_new(&sched, on_done, &sooner, &a);
  job_new(&sched, on_done, &later, &b);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  assert_int_equal(orm_future_timeout(a, 5000), 0);
  assert_int_equal(orm_future_timeout(b, 20), 0);
  assert_int_equal(orm_future_timeout(a, 30), 0);  /* earlier */
  assert_int_equal(orm_future_timeout(b, 150), 0); /* later */
  run();
  assert_int_equal(sooner.calls, 1);
  assert_int_equal(later.calls, 1);
  assert_int_equal(sooner.status, ORM_ETIMEDOUT);
  assert_int_equal(later.status, ORM_ETIMEDOUT);
  assert_true(sooner.at - t0 >= 30);
  assert_true(sooner.at - t0 < 150);
  assert_true(later.at - t0 >= 150);
  assert_true(later.at - t0 < 150 + 1000);
  assert_true(sooner.order < later.order);
  orm_future_release(a);
  orm_future_release(b);
  finish();
}

static void test_timeouts_fire_in_deadline_order(void **state) {
  start();
  enum { N = 100 };
  seen_t s[N];
  orm_future_t *f[N];
  memset(s, 0, sizeof s);
  for (int i = 0; i < N; i++)
    job_new(&sched, on_done, &s[i], &f[i]);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  /* Distinct deadlines set out of order: even offsets first, some moved to
   * odd offsets (up or down the heap), some cancelled out of its middle. */
  for (int i = 0; i < N; i++) {
    uint64_t ms = 10 + 2 * (uint64_t)((i * 37) % N);
    s[i].deadline = t0 + ms;
    assert_int_equal(orm_future_timeout(f[i], ms), 0);
  }
  assert_int_equal(sched.heap_len, N);
  for (int i = 0; i < N; i += 11) {
    uint64_t ms = 11 + 2 * (uint64_t)((i * 53) % N);
    s[i].deadline = t0 + ms;
    assert_int_equal(orm_future_timeout(f[i], ms), 0);
  }
  int cancelled = 0;
  for (int i = 3; i < N; i += 7) {
    assert_int_equal(orm_future_cancel(f[i]), 0);
    s[i].deadline = 0;
    cancelled++;
  }
  assert_int_equal(sched.heap_len, N - cancelled);
  run();
  for (int i = 0; i < N; i++) {
    assert_int_equal(s[i].calls, 1);
    if (s[i].deadline == 0) {
      assert_int_equal(s[i].status, ORM_ECANCELED);
      continue;
    }
    assert_int_equal(s[i].status, ORM_ETIMEDOUT);
    assert_true(s[i].at >= s[i].deadline);
    for (int j = 0; j < N; j++)
      if (s[j].deadline != 0 && s[j].deadline < s[i].deadline &&
          s[j].order > s[i].order)
        fail_msg("deadline %llu fired after %llu",
                 (unsigned long long)(s[j].deadline - t0),
                 (unsigned long long)(s[i].deadline - t0));
  }
  for (int i = 0; i < N; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_timeout_cleared_on_completion(void **state) {
  start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&sched, on_done, &s, &f);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  assert_int_equal(orm_future_timeout(f, 2000), 0);
  job_finish(job, 0, 1);
  assert_int_equal(f->heap_index, 0);
  assert_int_equal(sched.heap_len, 0);
  /* Nothing left to wait for: the loop ends long before the deadline. */
  run();
  uv_update_time(&loop);
  assert_true(uv_now(&loop) - t0 < 1000);
  assert_int_equal(s.status, 0);
  assert_int_equal(job->aborts, 0);
  orm_future_release(f);
  finish();
}

/* Completes a job from a timer, on the loop, as an owner would. */
typedef struct {
  uv_timer_t timer;
  job_t *job;
  int status;
} later_t;

static void on_later(uv_timer_t *t) {
  later_t *l = t->data;
  /* Unless an abort (cancel, deadline) completed it already. */
  if (l->job->owned)
    job_finish(l->job, l->status, 0);
  uv_close((uv_handle_t *)t, NULL);
}

static void finish_later(later_t *l, job_t *job, int status, uint64_t ms) {
  l->job = job;
  l->status = status;
  assert_int_equal(uv_timer_init(&loop, &l->timer), 0);
  l->timer.data = l;
  assert_int_equal(uv_timer_start(&l->timer, on_later, ms, 0), 0);
}

static void test_timeout_cleared_with_others_left(void **state) {
  start();
  seen_t s[3] = {{0}};
  orm_future_t *f[3];
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  assert_int_equal(orm_future_timeout(f[0], 40), 0);
  assert_int_equal(orm_future_timeout(f[1], 60), 0);
  assert_int_equal(orm_future_timeout(f[2], 100), 0);
  later_t l0, l1;
  finish_later(&l0, jobs[0], 0, 10); /* before its deadline */
  finish_later(&l1, jobs[1], 0, 10);
  run();
  assert_int_equal(s[0].status, 0);
  assert_int_equal(s[1].status, 0);
  assert_int_equal(jobs[0]->aborts + jobs[1]->aborts, 0);
  assert_int_equal(s[2].status, ORM_ETIMEDOUT);
  assert_true(s[2].at - t0 >= 100);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  finish();
}

/* A timeout too long to matter ("never", UINT64_MAX) must not come back
 * around through overflow and fire at once. The call may refuse it; if it
 * takes it, the future must still be pending when its owner completes it. */
static void test_timeout_huge(void **state) {
  start();
  const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX / 2 + 1};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    seen_t s = {0};
    orm_future_t *f;
    job_t *job = job_new(&sched, on_done, &s, &f);
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    int rc = orm_future_timeout(f, huge[i]);
    if (rc != 0) {
      assert_true(rc == ORM_EINVAL || rc == ORM_ERANGE);
    }
    later_t l;
    finish_later(&l, job, 0, 30);
    run();
    assert_int_equal(s.calls, 1);
    if (s.status != 0)
      fail_msg("orm_future_timeout(f, %llu) fired after %llu ms with %s",
               (unsigned long long)huge[i],
               (unsigned long long)(s.at - t0),
               orm_err_name(s.status));
    assert_int_equal(job->aborts, 0);
    orm_future_release(f);
  }
  finish();
}

/* ---- orm_future_all ------------------------------------------------------------------ */

static void test_all_resolved(void **state) {
  start();
  seen_t s[3] = {{0}}, sa = {0};
  orm_future_t *f[3], *all;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  inside_call = 1;
  assert_int_equal(orm_future_all(f, 3, on_done, &sa, &all), 0);
  inside_call = 0;
  assert_non_null(all);
  assert_int_equal(orm_future_state(all), ORM_FUTURE_PENDING);
  job_finish(jobs[2], 0, 1);
  job_finish(jobs[0], 0, 1);
  assert_int_equal(orm_future_state(all), ORM_FUTURE_PENDING);
  job_finish(jobs[1], 0, 1);
  assert_int_equal(sa.calls, 0);
  run();
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sa.status, 0);
  assert_int_equal(sa.state, ORM_FUTURE_RESOLVED);
  assert_null(sa.value_seen);
  assert_null(orm_future_error(all));
  for (int i = 0; i < 3; i++) {
    assert_int_equal(s[i].calls, 1);
    assert_true(s[i].order < sa.order); /* children first */
  }
  orm_future_release(all);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_all_fails_with_first_in_array_order(void **state) {
  start();
  seen_t s[4] = {{0}}, sa = {0};
  orm_future_t *f[4], *all;
  job_t *jobs[4];
  for (int i = 0; i < 4; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  assert_int_equal(orm_future_all(f, 4, on_done, &sa, &all), 0);
  /* The later failure comes first in time; array order decides. */
  job_finish(jobs[3], ORM_EIO, 1);
  job_finish(jobs[0], 0, 1);
  job_finish(jobs[2], ORM_EPROTO, 1);
  assert_int_equal(orm_future_state(all), ORM_FUTURE_PENDING);
  job_finish(jobs[1], 0, 1);
  run();
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sa.status, ORM_EPROTO);
  assert_int_equal(sa.state, ORM_FUTURE_FAILED);
  const orm_error_t *e = orm_future_error(all);
  assert_non_null(e);
  assert_int_equal(e->code, ORM_EPROTO);
  assert_non_null(e->message);
  orm_future_release(all);
  for (int i = 0; i < 4; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_all_complete_at_creation_still_deferred(void **state) {
  start();
  seen_t s[2] = {{0}}, sa = {0}, sb = {0};
  orm_future_t *f[2], *all;
  job_t *jobs[2];
  for (int i = 0; i < 2; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  job_finish(jobs[0], 0, 1);
  job_finish(jobs[1], ORM_EIO, 1);
  run();
  assert_int_equal(s[0].calls + s[1].calls, 2);
  inside_call = 1;
  assert_int_equal(orm_future_all(f, 2, on_done, &sa, &all), 0);
  inside_call = 0;
  assert_int_equal(sa.calls, 0);
  run();
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sa.status, ORM_EIO);
  orm_future_release(all);

  /* Completed but not yet delivered: the combined callback comes after the
   * children's, and still not inside the call; without `out` it is freed
   * once its callback has run. */
  seen_t c[2] = {{0}};
  for (int i = 0; i < 2; i++) {
    orm_future_release(f[i]);
    jobs[i] = job_new(&sched, on_done, &c[i], &f[i]);
    job_finish(jobs[i], 0, 1);
  }
  inside_call = 1;
  assert_int_equal(orm_future_all(f, 2, on_done, &sb, NULL), 0);
  inside_call = 0;
  run();
  assert_int_equal(sb.calls, 1);
  assert_int_equal(sb.status, 0);
  assert_true(c[0].order < sb.order && c[1].order < sb.order);
  for (int i = 0; i < 2; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_all_cancel_cancels_pending_children(void **state) {
  start();
  seen_t s[3] = {{0}}, sa = {0};
  orm_future_t *f[3], *all;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  job_finish(jobs[1], 0, 1);
  assert_int_equal(orm_future_all(f, 3, on_done, &sa, &all), 0);
  inside_call = 1;
  assert_int_equal(orm_future_cancel(all), 0);
  inside_call = 0;
  assert_int_equal(jobs[0]->aborts, 1);
  assert_int_equal(jobs[0]->abort_code, ORM_ECANCELED);
  assert_int_equal(jobs[1]->aborts, 0);
  assert_int_equal(jobs[2]->aborts, 1);
  assert_int_equal(orm_future_cancel(all), ORM_ESTATE);
  run();
  assert_int_equal(s[0].status, ORM_ECANCELED);
  assert_int_equal(s[1].status, 0);
  assert_int_equal(s[2].status, ORM_ECANCELED);
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sa.status, ORM_ECANCELED);
  assert_int_equal(sa.state, ORM_FUTURE_CANCELLED);
  orm_future_release(all);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_all_timeout(void **state) {
  start();
  seen_t s[2] = {{0}}, sa = {0};
  orm_future_t *f[2], *all;
  job_t *jobs[2];
  for (int i = 0; i < 2; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  assert_int_equal(orm_future_all(f, 2, on_done, &sa, &all), 0);
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  assert_int_equal(orm_future_timeout(all, 30), 0);
  run();
  assert_int_equal(jobs[0]->abort_code, ORM_ETIMEDOUT);
  assert_int_equal(jobs[1]->abort_code, ORM_ETIMEDOUT);
  assert_int_equal(sa.status, ORM_ETIMEDOUT);
  assert_true(sa.at - t0 >= 30);
  orm_future_release(all);
  for (int i = 0; i < 2; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_all_nested(void **state) {
  start();
  seen_t s[3] = {{0}}, inner = {0}, outer = {0};
  orm_future_t *f[3], *in, *out;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  assert_int_equal(orm_future_all(f, 2, on_done, &inner, &in), 0);
  orm_future_t *pair[2] = {in, f[2]};
  assert_int_equal(orm_future_all(pair, 2, on_done, &outer, &out), 0);
  job_finish(jobs[2], 0, 1);
  assert_int_equal(orm_future_cancel(out), 0);
  assert_int_equal(jobs[0]->abort_code, ORM_ECANCELED);
  assert_int_equal(jobs[1]->abort_code, ORM_ECANCELED);
  run();
  assert_int_equal(inner.status, ORM_ECANCELED);
  assert_int_equal(outer.status, ORM_ECANCELED);
  assert_true(inner.order < outer.order);
  orm_future_release(out);
  orm_future_release(in);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  finish();
}

static void test_all_busy_and_invalid(void **state) {
  start();
  seen_t s[3] = {{0}}, sa = {0}, sb = {0};
  static int sentinel;
  orm_future_t *f[3], *all, *other = (orm_future_t *)(void *)&sentinel;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  long blocks = orm_test_alloc_live();

  assert_int_equal(orm_future_all(NULL, 1, on_done, &sb, &other), ORM_EINVAL);
  assert_null(other);
  assert_int_equal(orm_future_all(f, 0, on_done, &sb, NULL), ORM_EINVAL);
  orm_future_t *with_null[2] = {f[0], NULL};
  assert_int_equal(orm_future_all(with_null, 2, on_done, &sb, NULL),
                   ORM_EINVAL);
  orm_future_t *dup[3] = {f[0], f[1], f[0]};
  assert_int_equal(orm_future_all(dup, 3, on_done, &sb, NULL), ORM_EINVAL);
  assert_int_equal(orm_test_alloc_live(), blocks);

  assert_int_equal(orm_future_all(f, 2, on_done, &sa, &all), 0);
  orm_future_t *overlap[2] = {f[2], f[1]};
  assert_int_equal(orm_future_all(overlap, 2, on_done, &sb, &other),
                   ORM_EBUSY);
  assert_null(other);
  /* The failed call joined nothing: f[2] is still free to join. */
  assert_null(f[2]->joined_by);
  assert_int_equal(orm_future_all(&f[2], 1, on_done, &sb, NULL), 0);
  assert_int_equal(orm_future_all(&f[2], 1, on_done, &sb, NULL), ORM_EBUSY);

  for (int i = 0; i < 3; i++)
    job_finish(jobs[i], 0, 1);
  run();
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sb.calls, 1);
  assert_int_equal(s[0].calls + s[1].calls + s[2].calls, 3);
  orm_future_release(all);
  /* Once the combined future is gone its children can be joined again. */
  assert_int_equal(orm_future_all(f, 2, on_done, &sb, NULL), 0);
  run();
  assert_int_equal(sb.calls, 2);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  finish();
}

/* ---- out of memory --------------------------------------------------------------------
 * The library allocates for orm_future_all() and for its deadline heap (in
 * blocks of 64, grown by doubling). Fail the Nth allocation and every one
 * after it, for N = 0, 1, ... until a run needs no failure. */

static int oom_step(long budget) {
  enum { KIDS = 3, TIMED = 70 };
  start();
  values_freed = 0;
  seen_t s[KIDS] = {{0}}, st[TIMED], sa = {0};
  memset(st, 0, sizeof st);
  orm_future_t *f[KIDS], *ft[TIMED], *all = NULL;
  job_t *jobs[KIDS], *timed[TIMED];
  for (int i = 0; i < KIDS; i++)
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
  for (int i = 0; i < TIMED; i++)
    timed[i] = job_new(&sched, on_done, &st[i], &ft[i]);
  orm__future_set_value(f[0], value_new(1), value_free);

  orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
  inside_call = 1;
  int rc = orm_future_all(f, KIDS, on_done, &sa, &all);
  if (rc != 0) {
    assert_int_equal(rc, ORM_ENOMEM);
    assert_null(all);
    for (int i = 0; i < KIDS; i++)
      assert_null(f[i]->joined_by);
  } else {
    assert_non_null(all);
    rc = orm_future_timeout(all, 5000);
    assert_true(rc == 0 || rc == ORM_ENOMEM);
  }
  size_t timed_in = 0;
  for (int i = 0; i < TIMED; i++) {
    rc = orm_future_timeout(ft[i], 6000 + (uint64_t)i);
    if (rc == 0) {
      timed_in++;
      assert_int_not_equal(ft[i]->heap_index, 0);
    } else {
      assert_int_equal(rc, ORM_ENOMEM);
      assert_int_equal(ft[i]->heap_index, 0);
    }
  }
  inside_call = 0;
  assert_true(sched.heap_len >= timed_in);
  int refused = orm_test_alloc_refusals() > 0;
  orm_test_alloc_fail_none();

  for (int i = 0; i < KIDS; i++)
    job_finish(jobs[i], 0, 1);
  for (int i = 0; i < TIMED; i++)
    job_finish(timed[i], 0, 1);
  assert_int_equal(sched.heap_len, 0);
  run();
  assert_int_equal(sa.calls, all != NULL ? 1 : 0);
  for (int i = 0; i < KIDS; i++)
    assert_int_equal(s[i].calls, 1);
  for (int i = 0; i < TIMED; i++)
    assert_int_equal(st[i].calls, 1);
  orm_future_release(all);
  for (int i = 0; i < KIDS; i++)
    orm_future_release(f[i]);
  for (int i = 0; i < TIMED; i++)
    orm_future_release(ft[i]);
  assert_int_equal(values_freed, 1);
  finish();
  return refused;
}

static void test_oom_sweep(void **state) {
  long budget = 0;
  while (oom_step(budget)) {
    budget++;
    assert_true(budget < 100);
  }
  /* orm_future_all, the first heap block and its growth at least. */
  assert_true(budget >= 3);
}

/* ---- futures that outlive their scheduler -------------------------------
 * A pool that is freed leaves the futures its caller still holds detached:
 * pool_free() (src/pool/pool.c) sets their `sched` to NULL. They are complete,
 * and the public calls on them must still be safe. This does the same
 * detaching by hand. */
static void test_detached_futures(void **state) {
  start();
  seen_t s[2] = {{0}}, sa = {0};
  orm_future_t *f[2];
  job_t *jobs[2];
  for (int i = 0; i < 2; i++) {
    jobs[i] = job_new(&sched, on_done, &s[i], &f[i]);
    job_finish(jobs[i], 0, 1);
  }
  run();
  for (int i = 0; i < 2; i++)
    f[i]->sched = NULL; /* what pool_free() does */
  assert_int_equal(orm_future_cancel(f[0]), ORM_ESTATE);
  assert_int_equal(orm_future_timeout(f[0], 10), ORM_ESTATE);
  assert_int_equal(orm_future_status(f[0]), 0);
  /* No loop is left to call back on: this can only fail, cleanly. */
  orm_future_t *all = NULL;
  int rc = orm_future_all(f, 2, on_done, &sa, &all);
  assert_true(rc < 0);
  assert_null(all);
  run();
  assert_int_equal(sa.calls, 0);
  for (int i = 0; i < 2; i++)
    orm_future_release(f[i]);
  finish();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_deferred_runs_once_on_the_loop),
      cmocka_unit_test(test_deferred_order_and_no_starvation),
      cmocka_unit_test(test_callback_that_defers_more),
      cmocka_unit_test(test_immediate_completion),
      cmocka_unit_test(test_release_before_completion),
      cmocka_unit_test(test_release_after_completion),
      cmocka_unit_test(test_release_inside_callback),
      cmocka_unit_test(test_value_taken_is_never_freed),
      cmocka_unit_test(test_value_not_taken_is_freed_once),
      cmocka_unit_test(test_value_of_failed_future_is_freed_once),
      cmocka_unit_test(test_error_accessors),
      cmocka_unit_test(test_null_future),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_timeout_fires),
      cmocka_unit_test(test_timeout_replaced),
      cmocka_unit_test(test_timeouts_fire_in_deadline_order),
      cmocka_unit_test(test_timeout_cleared_on_completion),
      cmocka_unit_test(test_timeout_cleared_with_others_left),
      cmocka_unit_test(test_timeout_huge),
      cmocka_unit_test(test_all_resolved),
      cmocka_unit_test(test_all_fails_with_first_in_array_order),
      cmocka_unit_test(test_all_complete_at_creation_still_deferred),
      cmocka_unit_test(test_all_cancel_cancels_pending_children),
      cmocka_unit_test(test_all_timeout),
      cmocka_unit_test(test_all_nested),
      cmocka_unit_test(test_all_busy_and_invalid),
      cmocka_unit_test(test_oom_sweep),
      /* Last: while the bug it exposes stands, it crashes the process. */
      cmocka_unit_test(test_detached_futures),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
