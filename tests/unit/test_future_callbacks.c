/* SPDX-License-Identifier: MIT */
/* Futures without a server (support/future_owner.h): one callback, never
 * inside the call; references; value ownership; errors. */
#include "future_owner.h"

#include <stdlib.h>
#include <string.h>

/* ---- one callback, never inside the call ---------------------------------- */

static void test_deferred_runs_once_on_the_loop(void **state) {
  fut_start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  assert_int_equal(orm_future_state(f), ORM_FUTURE_PENDING);
  assert_int_equal(orm_future_status(f), ORM_EBUSY);

  fut_inside_call = 1;
  job_finish(job, 0, 1);
  fut_inside_call = 0;
  assert_int_equal(s.calls, 0);
  /* The state is final at once; only the callback waits for the loop. */
  assert_int_equal(orm_future_state(f), ORM_FUTURE_RESOLVED);

  fut_run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, 0);
  assert_int_equal(s.state, ORM_FUTURE_RESOLVED);

  /* Nothing can make it run again. */
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  assert_int_equal(orm_future_timeout(f, 10), ORM_ESTATE);
  fut_run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(jobs_reclaimed, 0);
  orm_future_release(f);
  assert_int_equal(jobs_reclaimed, 1);
  fut_finish();
}

static void test_deferred_order_and_no_starvation(void **state) {
  fut_start();
  enum { N = 16 };
  seen_t s[N] = {{0}};
  job_t *jobs[N];
  for (int i = 0; i < N; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], NULL);
  fut_inside_call = 1;
  for (int i = N - 1; i >= 0; i--)
    job_finish(jobs[i], 0, 1);
  fut_inside_call = 0;
  fut_run();
  /* Delivered in completion order, each once, each reclaimed after it. */
  for (int i = 0; i < N; i++) {
    assert_int_equal(s[i].calls, 1);
    assert_int_equal(s[i].order, N - i);
  }
  assert_int_equal(jobs_reclaimed, N);
  fut_finish();
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
  fut_on_done(f, &c->seen);
  if (c->next != NULL)
    job_finish(c->next, 0, 1);
  (*c->depth)--;
}

static void test_callback_that_defers_more(void **state) {
  fut_start();
  int depth = 0;
  chain_t c[3] = {{{0}, NULL, &depth}, {{0}, NULL, &depth}, {{0}, NULL, &depth}};
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&fut_sched, on_chain, &c[i], NULL);
  c[0].next = jobs[1];
  c[1].next = jobs[2];
  job_finish(jobs[0], 0, 1);
  fut_run();
  for (int i = 0; i < 3; i++) {
    assert_int_equal(c[i].seen.calls, 1);
    assert_int_equal(c[i].seen.order, i + 1);
  }
  fut_finish();
}

static void test_immediate_completion(void **state) {
  fut_start();
  seen_t s = {0};
  job_t *job = job_new(&fut_sched, fut_on_done, &s, NULL);
  /* defer = 0 is for the owner on the loop: the callback runs now. */
  job_finish(job, ORM_EIO, 0);
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, ORM_EIO);
  assert_int_equal(jobs_reclaimed, 1);
  fut_run();
  assert_int_equal(s.calls, 1);
  fut_finish();
}

/* ---- references ------------------------------------------------------------ */

static void test_release_before_completion(void **state) {
  fut_start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  orm__future_set_value(f, fut_value_new(7), fut_value_free);
  fut_values_freed = 0;
  orm_future_release(f); /* early release does not cancel */
  assert_int_equal(job->aborts, 0);
  assert_int_equal(jobs_reclaimed, 0);
  job_finish(job, 0, 1);
  assert_int_equal(jobs_reclaimed, 0);
  fut_run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, 0);
  /* Future and value were valid during the callback, gone after it. */
  assert_non_null(s.value_seen);
  assert_int_equal(jobs_reclaimed, 1);
  assert_int_equal(fut_values_freed, 1);
  fut_finish();
}

static void test_release_after_completion(void **state) {
  fut_start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  job_finish(job, 0, 1);
  orm_future_release(f); /* completed, callback still to come */
  assert_int_equal(jobs_reclaimed, 0);
  fut_run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(jobs_reclaimed, 1);

  seen_t s2 = {0};
  orm_future_t *f2;
  job = job_new(&fut_sched, fut_on_done, &s2, &f2);
  job_finish(job, 0, 1);
  fut_run();
  assert_int_equal(s2.calls, 1);
  assert_int_equal(jobs_reclaimed, 1); /* the caller still holds it */
  assert_int_equal(orm_future_status(f2), 0);
  orm_future_release(f2);
  assert_int_equal(jobs_reclaimed, 2);
  fut_finish();
}

static void test_release_inside_callback(void **state) {
  fut_start();
  fut_values_freed = 0;
  seen_t s = {.release_self = 1};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  orm__future_set_value(f, fut_value_new(3), fut_value_free);
  job_finish(job, 0, 1);
  fut_run();
  assert_int_equal(s.calls, 1);
  assert_true(s.value_ok);
  assert_int_equal(fut_values_freed, 1);
  assert_int_equal(jobs_reclaimed, 1);

  /* The same from an immediate completion. */
  seen_t s2 = {.release_self = 1};
  job = job_new(&fut_sched, fut_on_done, &s2, &f);
  orm__future_set_value(f, fut_value_new(4), fut_value_free);
  job_finish(job, 0, 0);
  assert_int_equal(s2.calls, 1);
  assert_true(s2.value_ok);
  assert_int_equal(fut_values_freed, 2);
  fut_finish();
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
  fut_start();
  fut_values_freed = 0;
  int *taken = NULL;
  job_t *job = job_new(&fut_sched, on_take, &taken, NULL);
  orm__future_set_value(&job->future, fut_value_new(42), fut_value_free);
  job_finish(job, 0, 1);
  fut_run();
  assert_int_equal(jobs_reclaimed, 1);
  assert_int_equal(fut_values_freed, 0);
  assert_non_null(taken);
  assert_int_equal(*taken, 42);
  free(taken);
  fut_finish();
}

static void test_value_not_taken_is_freed_once(void **state) {
  fut_start();
  fut_values_freed = 0;
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  orm__future_set_value(f, fut_value_new(5), fut_value_free);
  job_finish(job, 0, 1);
  fut_run();
  assert_int_equal(s.calls, 1);
  assert_non_null(s.value_seen);
  assert_int_equal(*(int *)orm_future_value(f), 5);
  /* Held by the caller: the value lives as long as the future. */
  assert_int_equal(fut_values_freed, 0);
  orm_future_release(f);
  assert_int_equal(fut_values_freed, 1);

  /* Without a reference the value goes right after the callback. */
  seen_t s2 = {0};
  job = job_new(&fut_sched, fut_on_done, &s2, NULL);
  orm__future_set_value(&job->future, fut_value_new(6), fut_value_free);
  job_finish(job, 0, 1);
  assert_int_equal(fut_values_freed, 1);
  fut_run();
  assert_non_null(s2.value_seen);
  assert_int_equal(fut_values_freed, 2);
  fut_finish();
}

static void test_value_of_failed_future_is_freed_once(void **state) {
  fut_start();
  fut_values_freed = 0;
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  orm__future_set_value(f, fut_value_new(8), fut_value_free);
  job_finish(job, ORM_EPROTO, 1);
  fut_run();
  assert_int_equal(s.calls, 1);
  assert_null(s.value_seen);
  assert_null(orm_future_value(f));
  assert_null(orm_future_take(f));
  assert_int_equal(fut_values_freed, 1);
  orm_future_release(f);
  assert_int_equal(fut_values_freed, 1);
  fut_finish();
}

/* ---- errors -------------------------------------------------------------------- */

static void test_error_accessors(void **state) {
  fut_start();
  seen_t s[4] = {{0}};
  orm_future_t *f[4];
  job_t *jobs[4];
  for (int i = 0; i < 4; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);

  assert_null(orm_future_error(f[0])); /* pending */
  assert_null(orm_future_value(f[0]));
  assert_null(orm_future_take(f[0]));
  assert_int_equal(orm_future_status(f[0]), ORM_EBUSY);

  job_finish(jobs[0], 0, 1);
  job_finish(jobs[1], ORM_EIO, 1);
  orm__future_set_message(f[2], "disk %s at %d", "full", 99);
  job_finish(jobs[2], ORM_ESERVER, 1);
  assert_int_equal(orm_future_cancel(f[3]), 0);
  fut_run();

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
  fut_finish();
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
  };
  return orm_run_group_tests(tests, fut_group_setup, fut_group_teardown);
}
