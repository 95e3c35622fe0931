/* SPDX-License-Identifier: MIT */
/* The futures of the test_future_* tests, without a server. A small test
 * owner ("job") plugs into orm__future_ops_t the way a pool request does,
 * on a real uv_loop_t, so the public contracts of include/uvorm/async.h can
 * be checked one by one. The library's memory goes through the test
 * allocator (alloc_fault.h): it counts live blocks and fails allocations on
 * demand. */
#ifndef ORM_TEST_FUTURE_OWNER_H
#define ORM_TEST_FUTURE_OWNER_H

#include "alloc_fault.h"
#include "harness.h"

#include <uvorm.h>

#include "async/future.h"

/* The group's setup and teardown: install the test allocator and put
 * libc's back. */
int fut_group_setup(void **state);
int fut_group_teardown(void **state);

/* ---- the test owner ------------------------------------------------------ */

typedef struct {
  orm_future_t future; /* first: a job is a future */
  int aborts;
  int abort_code;
  int owned; /* the owner's reference is still held */
} job_t;

extern int jobs_reclaimed;
extern int fut_inside_call; /* a callback must not run while this is set */

/* A job on `sched` whose callback is `cb(data)`; with `out`, the caller
 * holds a reference to it there. */
job_t *job_new(orm__sched_t *sched, orm_future_cb cb, void *data,
               orm_future_t **out);
/* Completes the job (deferred or not) and drops the owner's reference. */
void job_finish(job_t *job, int status, int defer);

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

/* The loop and the scheduler of the test. */
extern uv_loop_t fut_loop;
extern orm__sched_t fut_sched;

/* Records what the callback saw in the seen_t `data`. */
void fut_on_done(orm_future_t *f, void *data);
/* A test's start: a fresh loop and scheduler. */
void fut_start(void);
/* A test's end: closes the scheduler and the loop; every handle closed,
 * every future and every block of the library's memory gone. */
void fut_finish(void);
/* Runs the loop until it has nothing left to do. */
void fut_run(void);

/* ---- values --------------------------------------------------------------- */

/* fut_value_free() counts the values it frees. */
extern int fut_values_freed;
void fut_value_free(void *v);
int *fut_value_new(int n);

#endif /* ORM_TEST_FUTURE_OWNER_H */
