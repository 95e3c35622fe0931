/* SPDX-License-Identifier: MIT */
#include "future_owner.h"

#include <stdlib.h>

int fut_group_setup(void **state) { return orm_test_alloc_install(); }

int fut_group_teardown(void **state) { return orm_test_alloc_restore(); }

/* ---- the test owner ------------------------------------------------------ */

static int jobs_made;
int jobs_reclaimed;
int fut_inside_call;
static int sequence;    /* orders callbacks across futures */

void job_finish(job_t *job, int status, int defer) {
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
job_t *job_new(orm__sched_t *sched, orm_future_cb cb, void *data,
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

uv_loop_t fut_loop;
orm__sched_t fut_sched;
static int sched_closed;

void fut_on_done(orm_future_t *f, void *data) {
  seen_t *s = data;
  if (fut_inside_call)
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

void fut_start(void) {
  /* Relative, so that a failed test's leftovers do not fail the next. */
  blocks_at_start = orm_test_alloc_live();
  jobs_made = jobs_reclaimed = 0;
  fut_inside_call = 0;
  sequence = 0;
  sched_closed = 0;
  assert_int_equal(uv_loop_init(&fut_loop), 0);
  assert_int_equal(orm__sched_init(&fut_sched, &fut_loop, NULL), 0);
}

static void on_sched_closed(orm__sched_t *s) {
  assert_ptr_equal(s, &fut_sched);
  sched_closed++;
}

/* Closes the scheduler and the loop; every handle closed, every future and
 * every block of the library's memory gone. */
void fut_finish(void) {
  orm_test_run(&fut_loop, 5000);
  assert_null(fut_sched.deferred_head);
  assert_int_equal(fut_sched.heap_len, 0);
  orm__sched_close(&fut_sched, on_sched_closed);
  orm_test_loop_close(&fut_loop);
  assert_int_equal(sched_closed, 1);
  assert_int_equal(jobs_reclaimed, jobs_made);
  assert_int_equal(orm_test_alloc_live(), blocks_at_start);
}

void fut_run(void) { orm_test_run(&fut_loop, 5000); }

/* ---- values --------------------------------------------------------------- */

int fut_values_freed;

void fut_value_free(void *v) {
  fut_values_freed++;
  free(v);
}

int *fut_value_new(int n) {
  int *v = malloc(sizeof *v);
  assert_non_null(v);
  *v = n;
  return v;
}
