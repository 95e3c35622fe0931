/* SPDX-License-Identifier: MIT */
/* Futures without a server (support/future_owner.h): cancellation and
 * deadlines. */
#include "future_owner.h"

#include <stdlib.h>
#include <string.h>

/* ---- cancellation ---------------------------------------------------------------- */

static void test_cancel(void **state) {
  fut_start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  fut_inside_call = 1;
  assert_int_equal(orm_future_cancel(f), 0);
  fut_inside_call = 0;
  assert_int_equal(job->aborts, 1);
  assert_int_equal(job->abort_code, ORM_ECANCELED);
  assert_int_equal(s.calls, 0);
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  fut_run();
  assert_int_equal(s.calls, 1);
  assert_int_equal(s.status, ORM_ECANCELED);
  assert_int_equal(s.state, ORM_FUTURE_CANCELLED);
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  assert_int_equal(job->aborts, 1);
  orm_future_release(f);

  /* A resolved future cannot be cancelled, not even before its callback. */
  seen_t s2 = {0};
  job = job_new(&fut_sched, fut_on_done, &s2, &f);
  job_finish(job, 0, 1);
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  fut_run();
  assert_int_equal(s2.status, 0);
  orm_future_release(f);
  fut_finish();
}

/* ---- deadlines ---------------------------------------------------------------------- */

static void test_timeout_fires(void **state) {
  fut_start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  assert_int_equal(orm_future_timeout(f, 0), ORM_EINVAL);
  uv_update_time(&fut_loop);
  uint64_t t0 = uv_now(&fut_loop);
  fut_inside_call = 1;
  assert_int_equal(orm_future_timeout(f, 50), 0);
  fut_inside_call = 0;
  fut_run();
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
  fut_finish();
}

static void test_timeout_replaced(void **state) {
  fut_start();
  seen_t sooner = {0}, later = {0};
  orm_future_t *a, *b;
  job_new(&fut_sched, fut_on_done, &sooner, &a);
  job_new(&fut_sched, fut_on_done, &later, &b);
  uv_update_time(&fut_loop);
  uint64_t t0 = uv_now(&fut_loop);
  assert_int_equal(orm_future_timeout(a, 5000), 0);
  assert_int_equal(orm_future_timeout(b, 20), 0);
  assert_int_equal(orm_future_timeout(a, 30), 0);  /* earlier */
  assert_int_equal(orm_future_timeout(b, 150), 0); /* later */
  fut_run();
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
  fut_finish();
}

static void test_timeouts_fire_in_deadline_order(void **state) {
  fut_start();
  enum { N = 100 };
  seen_t s[N];
  orm_future_t *f[N];
  memset(s, 0, sizeof s);
  for (int i = 0; i < N; i++)
    job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  uv_update_time(&fut_loop);
  uint64_t t0 = uv_now(&fut_loop);
  /* Distinct deadlines set out of order: even offsets first, some moved to
   * odd offsets (up or down the heap), some cancelled out of its middle. */
  for (int i = 0; i < N; i++) {
    uint64_t ms = 10 + 2 * (uint64_t)((i * 37) % N);
    s[i].deadline = t0 + ms;
    assert_int_equal(orm_future_timeout(f[i], ms), 0);
  }
  assert_int_equal(fut_sched.heap_len, N);
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
  assert_int_equal(fut_sched.heap_len, N - cancelled);
  fut_run();
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
  fut_finish();
}

static void test_timeout_cleared_on_completion(void **state) {
  fut_start();
  seen_t s = {0};
  orm_future_t *f;
  job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
  uv_update_time(&fut_loop);
  uint64_t t0 = uv_now(&fut_loop);
  assert_int_equal(orm_future_timeout(f, 2000), 0);
  job_finish(job, 0, 1);
  assert_int_equal(f->heap_index, 0);
  assert_int_equal(fut_sched.heap_len, 0);
  /* Nothing left to wait for: the loop ends long before the deadline. */
  fut_run();
  uv_update_time(&fut_loop);
  assert_true(uv_now(&fut_loop) - t0 < 1000);
  assert_int_equal(s.status, 0);
  assert_int_equal(job->aborts, 0);
  orm_future_release(f);
  fut_finish();
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
  assert_int_equal(uv_timer_init(&fut_loop, &l->timer), 0);
  l->timer.data = l;
  assert_int_equal(uv_timer_start(&l->timer, on_later, ms, 0), 0);
}

static void test_timeout_cleared_with_others_left(void **state) {
  fut_start();
  seen_t s[3] = {{0}};
  orm_future_t *f[3];
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  uv_update_time(&fut_loop);
  uint64_t t0 = uv_now(&fut_loop);
  assert_int_equal(orm_future_timeout(f[0], 40), 0);
  assert_int_equal(orm_future_timeout(f[1], 60), 0);
  assert_int_equal(orm_future_timeout(f[2], 100), 0);
  later_t l0, l1;
  finish_later(&l0, jobs[0], 0, 10); /* before its deadline */
  finish_later(&l1, jobs[1], 0, 10);
  fut_run();
  assert_int_equal(s[0].status, 0);
  assert_int_equal(s[1].status, 0);
  assert_int_equal(jobs[0]->aborts + jobs[1]->aborts, 0);
  assert_int_equal(s[2].status, ORM_ETIMEDOUT);
  assert_true(s[2].at - t0 >= 100);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  fut_finish();
}

/* A timeout too long to matter ("never", UINT64_MAX) must not come back
 * around through overflow and fire at once. The call may refuse it; if it
 * takes it, the future must still be pending when its owner completes it. */
static void test_timeout_huge(void **state) {
  fut_start();
  const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX / 2 + 1};
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    seen_t s = {0};
    orm_future_t *f;
    job_t *job = job_new(&fut_sched, fut_on_done, &s, &f);
    uv_update_time(&fut_loop);
    uint64_t t0 = uv_now(&fut_loop);
    int rc = orm_future_timeout(f, huge[i]);
    if (rc != 0) {
      assert_true(rc == ORM_EINVAL || rc == ORM_ERANGE);
    }
    later_t l;
    finish_later(&l, job, 0, 30);
    fut_run();
    assert_int_equal(s.calls, 1);
    if (s.status != 0)
      fail_msg("orm_future_timeout(f, %llu) fired after %llu ms with %s",
               (unsigned long long)huge[i],
               (unsigned long long)(s.at - t0),
               orm_err_name(s.status));
    assert_int_equal(job->aborts, 0);
    orm_future_release(f);
  }
  fut_finish();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_timeout_fires),
      cmocka_unit_test(test_timeout_replaced),
      cmocka_unit_test(test_timeouts_fire_in_deadline_order),
      cmocka_unit_test(test_timeout_cleared_on_completion),
      cmocka_unit_test(test_timeout_cleared_with_others_left),
      cmocka_unit_test(test_timeout_huge),
  };
  return orm_run_group_tests(tests, fut_group_setup, fut_group_teardown);
}
