/* SPDX-License-Identifier: MIT */
/* Futures without a server (support/future_owner.h): orm_future_all, out
 * of memory, and futures that outlive their scheduler. */
#include "future_owner.h"

#include <stdlib.h>
#include <string.h>

/* ---- orm_future_all ------------------------------------------------------------------ */

static void test_all_resolved(void **state) {
  fut_start();
  seen_t s[3] = {{0}}, sa = {0};
  orm_future_t *f[3], *all;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  fut_inside_call = 1;
  assert_int_equal(orm_future_all(f, 3, fut_on_done, &sa, &all), 0);
  fut_inside_call = 0;
  assert_non_null(all);
  assert_int_equal(orm_future_state(all), ORM_FUTURE_PENDING);
  job_finish(jobs[2], 0, 1);
  job_finish(jobs[0], 0, 1);
  assert_int_equal(orm_future_state(all), ORM_FUTURE_PENDING);
  job_finish(jobs[1], 0, 1);
  assert_int_equal(sa.calls, 0);
  fut_run();
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
  fut_finish();
}

static void test_all_fails_with_first_in_array_order(void **state) {
  fut_start();
  seen_t s[4] = {{0}}, sa = {0};
  orm_future_t *f[4], *all;
  job_t *jobs[4];
  for (int i = 0; i < 4; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  assert_int_equal(orm_future_all(f, 4, fut_on_done, &sa, &all), 0);
  /* The later failure comes first in time; array order decides. */
  job_finish(jobs[3], ORM_EIO, 1);
  job_finish(jobs[0], 0, 1);
  job_finish(jobs[2], ORM_EPROTO, 1);
  assert_int_equal(orm_future_state(all), ORM_FUTURE_PENDING);
  job_finish(jobs[1], 0, 1);
  fut_run();
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
  fut_finish();
}

static void test_all_complete_at_creation_still_deferred(void **state) {
  fut_start();
  seen_t s[2] = {{0}}, sa = {0}, sb = {0};
  orm_future_t *f[2], *all;
  job_t *jobs[2];
  for (int i = 0; i < 2; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  job_finish(jobs[0], 0, 1);
  job_finish(jobs[1], ORM_EIO, 1);
  fut_run();
  assert_int_equal(s[0].calls + s[1].calls, 2);
  fut_inside_call = 1;
  assert_int_equal(orm_future_all(f, 2, fut_on_done, &sa, &all), 0);
  fut_inside_call = 0;
  assert_int_equal(sa.calls, 0);
  fut_run();
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sa.status, ORM_EIO);
  orm_future_release(all);

  /* Completed but not yet delivered: the combined callback comes after the
   * children's, and still not inside the call; without `out` it is freed
   * once its callback has run. */
  seen_t c[2] = {{0}};
  for (int i = 0; i < 2; i++) {
    orm_future_release(f[i]);
    jobs[i] = job_new(&fut_sched, fut_on_done, &c[i], &f[i]);
    job_finish(jobs[i], 0, 1);
  }
  fut_inside_call = 1;
  assert_int_equal(orm_future_all(f, 2, fut_on_done, &sb, NULL), 0);
  fut_inside_call = 0;
  fut_run();
  assert_int_equal(sb.calls, 1);
  assert_int_equal(sb.status, 0);
  assert_true(c[0].order < sb.order && c[1].order < sb.order);
  for (int i = 0; i < 2; i++)
    orm_future_release(f[i]);
  fut_finish();
}

static void test_all_cancel_cancels_pending_children(void **state) {
  fut_start();
  seen_t s[3] = {{0}}, sa = {0};
  orm_future_t *f[3], *all;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  job_finish(jobs[1], 0, 1);
  assert_int_equal(orm_future_all(f, 3, fut_on_done, &sa, &all), 0);
  fut_inside_call = 1;
  assert_int_equal(orm_future_cancel(all), 0);
  fut_inside_call = 0;
  assert_int_equal(jobs[0]->aborts, 1);
  assert_int_equal(jobs[0]->abort_code, ORM_ECANCELED);
  assert_int_equal(jobs[1]->aborts, 0);
  assert_int_equal(jobs[2]->aborts, 1);
  assert_int_equal(orm_future_cancel(all), ORM_ESTATE);
  fut_run();
  assert_int_equal(s[0].status, ORM_ECANCELED);
  assert_int_equal(s[1].status, 0);
  assert_int_equal(s[2].status, ORM_ECANCELED);
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sa.status, ORM_ECANCELED);
  assert_int_equal(sa.state, ORM_FUTURE_CANCELLED);
  orm_future_release(all);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  fut_finish();
}

static void test_all_timeout(void **state) {
  fut_start();
  seen_t s[2] = {{0}}, sa = {0};
  orm_future_t *f[2], *all;
  job_t *jobs[2];
  for (int i = 0; i < 2; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  assert_int_equal(orm_future_all(f, 2, fut_on_done, &sa, &all), 0);
  uv_update_time(&fut_loop);
  uint64_t t0 = uv_now(&fut_loop);
  assert_int_equal(orm_future_timeout(all, 30), 0);
  fut_run();
  assert_int_equal(jobs[0]->abort_code, ORM_ETIMEDOUT);
  assert_int_equal(jobs[1]->abort_code, ORM_ETIMEDOUT);
  assert_int_equal(sa.status, ORM_ETIMEDOUT);
  assert_true(sa.at - t0 >= 30);
  orm_future_release(all);
  for (int i = 0; i < 2; i++)
    orm_future_release(f[i]);
  fut_finish();
}

static void test_all_nested(void **state) {
  fut_start();
  seen_t s[3] = {{0}}, inner = {0}, outer = {0};
  orm_future_t *f[3], *in, *out;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  assert_int_equal(orm_future_all(f, 2, fut_on_done, &inner, &in), 0);
  orm_future_t *pair[2] = {in, f[2]};
  assert_int_equal(orm_future_all(pair, 2, fut_on_done, &outer, &out), 0);
  job_finish(jobs[2], 0, 1);
  assert_int_equal(orm_future_cancel(out), 0);
  assert_int_equal(jobs[0]->abort_code, ORM_ECANCELED);
  assert_int_equal(jobs[1]->abort_code, ORM_ECANCELED);
  fut_run();
  assert_int_equal(inner.status, ORM_ECANCELED);
  assert_int_equal(outer.status, ORM_ECANCELED);
  assert_true(inner.order < outer.order);
  orm_future_release(out);
  orm_future_release(in);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  fut_finish();
}

static void test_all_busy_and_invalid(void **state) {
  fut_start();
  seen_t s[3] = {{0}}, sa = {0}, sb = {0};
  static int sentinel;
  orm_future_t *f[3], *all, *other = (orm_future_t *)(void *)&sentinel;
  job_t *jobs[3];
  for (int i = 0; i < 3; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  long blocks = orm_test_alloc_live();

  assert_int_equal(orm_future_all(NULL, 1, fut_on_done, &sb, &other),
                   ORM_EINVAL);
  assert_null(other);
  assert_int_equal(orm_future_all(f, 0, fut_on_done, &sb, NULL), ORM_EINVAL);
  orm_future_t *with_null[2] = {f[0], NULL};
  assert_int_equal(orm_future_all(with_null, 2, fut_on_done, &sb, NULL),
                   ORM_EINVAL);
  orm_future_t *dup[3] = {f[0], f[1], f[0]};
  assert_int_equal(orm_future_all(dup, 3, fut_on_done, &sb, NULL), ORM_EINVAL);
  assert_int_equal(orm_test_alloc_live(), blocks);

  assert_int_equal(orm_future_all(f, 2, fut_on_done, &sa, &all), 0);
  orm_future_t *overlap[2] = {f[2], f[1]};
  assert_int_equal(orm_future_all(overlap, 2, fut_on_done, &sb, &other),
                   ORM_EBUSY);
  assert_null(other);
  /* The failed call joined nothing: f[2] is still free to join. */
  assert_null(f[2]->joined_by);
  assert_int_equal(orm_future_all(&f[2], 1, fut_on_done, &sb, NULL), 0);
  assert_int_equal(orm_future_all(&f[2], 1, fut_on_done, &sb, NULL), ORM_EBUSY);

  for (int i = 0; i < 3; i++)
    job_finish(jobs[i], 0, 1);
  fut_run();
  assert_int_equal(sa.calls, 1);
  assert_int_equal(sb.calls, 1);
  assert_int_equal(s[0].calls + s[1].calls + s[2].calls, 3);
  orm_future_release(all);
  /* Once the combined future is gone its children can be joined again. */
  assert_int_equal(orm_future_all(f, 2, fut_on_done, &sb, NULL), 0);
  fut_run();
  assert_int_equal(sb.calls, 2);
  for (int i = 0; i < 3; i++)
    orm_future_release(f[i]);
  fut_finish();
}

/* ---- out of memory --------------------------------------------------------------------
 * The library allocates for orm_future_all() and for its deadline heap (in
 * blocks of 64, grown by doubling). Fail the Nth allocation and every one
 * after it, for N = 0, 1, ... until a run needs no failure. */

static int oom_step(long budget) {
  enum { KIDS = 3, TIMED = 70 };
  fut_start();
  fut_values_freed = 0;
  seen_t s[KIDS] = {{0}}, st[TIMED], sa = {0};
  memset(st, 0, sizeof st);
  orm_future_t *f[KIDS], *ft[TIMED], *all = NULL;
  job_t *jobs[KIDS], *timed[TIMED];
  for (int i = 0; i < KIDS; i++)
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
  for (int i = 0; i < TIMED; i++)
    timed[i] = job_new(&fut_sched, fut_on_done, &st[i], &ft[i]);
  orm__future_set_value(f[0], fut_value_new(1), fut_value_free);

  orm_test_alloc_fail(ORM_TEST_ALLOC_FAIL_FROM_N, budget);
  fut_inside_call = 1;
  int rc = orm_future_all(f, KIDS, fut_on_done, &sa, &all);
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
  fut_inside_call = 0;
  assert_true(fut_sched.heap_len >= timed_in);
  int refused = orm_test_alloc_refusals() > 0;
  orm_test_alloc_fail_none();

  for (int i = 0; i < KIDS; i++)
    job_finish(jobs[i], 0, 1);
  for (int i = 0; i < TIMED; i++)
    job_finish(timed[i], 0, 1);
  assert_int_equal(fut_sched.heap_len, 0);
  fut_run();
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
  assert_int_equal(fut_values_freed, 1);
  fut_finish();
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
  fut_start();
  seen_t s[2] = {{0}}, sa = {0};
  orm_future_t *f[2];
  job_t *jobs[2];
  for (int i = 0; i < 2; i++) {
    jobs[i] = job_new(&fut_sched, fut_on_done, &s[i], &f[i]);
    job_finish(jobs[i], 0, 1);
  }
  fut_run();
  for (int i = 0; i < 2; i++)
    f[i]->sched = NULL; /* what pool_free() does */
  assert_int_equal(orm_future_cancel(f[0]), ORM_ESTATE);
  assert_int_equal(orm_future_timeout(f[0], 10), ORM_ESTATE);
  assert_int_equal(orm_future_status(f[0]), 0);
  /* No loop is left to call back on: this can only fail, cleanly. */
  orm_future_t *all = NULL;
  int rc = orm_future_all(f, 2, fut_on_done, &sa, &all);
  assert_true(rc < 0);
  assert_null(all);
  fut_run();
  assert_int_equal(sa.calls, 0);
  for (int i = 0; i < 2; i++)
    orm_future_release(f[i]);
  fut_finish();
}

int main(void) {
  const struct CMUnitTest tests[] = {
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
  return orm_run_group_tests(tests, fut_group_setup, fut_group_teardown);
}
