/* SPDX-License-Identifier: MIT */
/* Out of memory over opening a pool and running queries, after libuv's
 * test-loop-oom.c: the allocator fails allocation N and every one after it,
 * for N = 0, 1, 2, ... until a whole run needs no failure. At every step each
 * public call returns 0 or ORM_ENOMEM, each callback that fires reports an
 * outcome we can name, and once the loop is closed nothing of ours is left.
 * libpq allocates with libc's malloc; only uvorm's memory is counted here. */
#include "alloc_fault.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvorm.h>

/* ---- one run: open, two queries, close ---------------------------------- */

#define BIG_LEN (100 * 1024)

/* How often each outcome was seen, by -code (0 is success). */
static unsigned outcomes[-ORM_ERRNO_MAX_ + 1];
static char *big_text;
static char *dsn;

/* Failures whose message does not say what went wrong. */
static unsigned unclear_messages;
static char unclear_example[300];

typedef struct {
  int calls;
  int status;
  int64_t expect;
  int64_t got;
} probe_t;

static void on_query(orm_future_t *f, void *data) {
  probe_t *p = data;
  p->calls++;
  p->status = orm_future_status(f);
  if (p->status > 0 || p->status <= ORM_ERRNO_MAX_)
    fail_msg("callback with status %d", p->status);
  outcomes[-p->status]++;
  if (p->status == 0) {
    assert_null(orm_future_error(f));
    orm_result_t *r = orm_future_take(f);
    assert_non_null(r);
    assert_int_equal(orm_result_int(r, 0, 0, &p->got), 0);
    assert_int_equal(p->got, p->expect);
    orm_result_free(r);
  } else {
    const orm_error_t *e = orm_future_error(f);
    assert_non_null(e);
    assert_int_equal(e->code, p->status);
    assert_non_null(e->message);
    /* A message that stops at a colon ("... failed:") names no cause. */
    size_t len = strlen(e->message);
    if (len == 0 || e->message[len - 1] == ':') {
      unclear_messages++;
      if (unclear_example[0] == '\0')
        snprintf(unclear_example, sizeof unclear_example, "%s \"%s\"",
                 orm_err_name(e->code), e->message);
    }
  }
}

static int pool_closed;

static void on_closed(orm_pool_t *pool, void *data) { pool_closed++; }

/* The outcomes a callback may report under memory pressure: success, out of
 * memory, and the connection errors an allocation failure in the connection
 * machinery turns into. */
static int acceptable(int status) {
  return status == 0 || status == ORM_ENOMEM || status == ORM_ECONNECT ||
         status == ORM_ECONNLOST;
}

static void run_until_answered(uv_loop_t *loop, const probe_t *p, int n,
                               const int *issued, long step) {
  uv_update_time(loop);
  uint64_t start = uv_now(loop);
  for (;;) {
    int waiting = 0;
    for (int i = 0; i < n; i++)
      waiting += issued[i] && p[i].calls == 0;
    if (waiting == 0)
      return;
    uv_run(loop, UV_RUN_ONCE);
    uv_update_time(loop);
    if (uv_now(loop) - start > 20000)
      fail_msg("step %ld: %d request(s) never called back", step, waiting);
  }
}

/* Returns whether any allocation was refused. */
static int oom_step(orm_test_alloc_mode_t mode, long n, long *allocations) {
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  pool_closed = 0;
  orm_test_alloc_fail(mode, n);

  orm_pool_t *pool = (orm_pool_t *)(void *)&pool;
  int rc = orm_pool_open(&pool, &loop,
                         &(orm_pool_config_t){.conninfo = dsn,
                                              .min_conns = 2,
                                              .max_conns = 2});
  probe_t p[2] = {{.expect = 42}, {.expect = BIG_LEN}};
  int issued[2] = {0, 0};
  if (rc != 0) {
    assert_int_equal(rc, ORM_ENOMEM);
    assert_null(pool);
  } else {
    assert_non_null(pool);
    orm_future_t *f = (orm_future_t *)(void *)&f;
    rc = orm_query_async(pool, "SELECT $1::int4 + 1", &ORM_INT4(41), 1,
                         on_query, &p[0], &f);
    if (rc == 0) {
      issued[0] = 1;
      assert_non_null(f);
      orm_future_release(f);
    } else {
      assert_int_equal(rc, ORM_ENOMEM);
      assert_null(f);
    }
    rc = orm_query_async(pool, "SELECT length($1::text)",
                         &ORM_TEXT_N(big_text, BIG_LEN), 1, on_query, &p[1],
                         NULL);
    if (rc == 0)
      issued[1] = 1;
    else
      assert_int_equal(rc, ORM_ENOMEM);
    /* No callback inside the calls. */
    assert_int_equal(p[0].calls + p[1].calls, 0);
    run_until_answered(&loop, p, 2, issued, n);
    assert_int_equal(orm_pool_close(pool, on_closed), 0);
  }
  orm_test_run(&loop, 20000);
  assert_int_equal(pool_closed, pool != NULL ? 1 : 0);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(p[i].calls, issued[i]);
    if (issued[i] && !acceptable(p[i].status))
      fail_msg("step %ld: query %d failed with %s (%s)", n, i,
               orm_err_name(p[i].status), orm_strerror(p[i].status));
  }
  orm_test_loop_close(&loop);

  int refused = orm_test_alloc_refusals() > 0;
  *allocations = orm_test_alloc_calls();
  orm_test_alloc_fail_none();
  if (orm_test_alloc_live() != 0)
    fail_msg("step %ld: %ld block(s) leaked", n, orm_test_alloc_live());
  if (!refused) {
    /* Nothing was refused: the run must have worked end to end. */
    assert_true(pool != NULL && issued[0] && issued[1]);
    assert_int_equal(p[0].status, 0);
    assert_int_equal(p[1].status, 0);
  }
  return refused;
}

static void report(const char *what, long steps, long allocations) {
  fprintf(stderr, "%s: %ld steps, %ld allocations in a full run; outcomes:",
          what, steps, allocations);
  for (int i = 0; i <= -ORM_ERRNO_MAX_; i++)
    if (outcomes[i] > 0)
      fprintf(stderr, " %s=%u", i == 0 ? "ok" : orm_err_name(-i), outcomes[i]);
  fprintf(stderr, "\n");
}

static void sweep(orm_test_alloc_mode_t mode, const char *what) {
  memset(outcomes, 0, sizeof outcomes);
  unclear_messages = 0;
  unclear_example[0] = '\0';
  long n = 0, allocations = 0;
  while (oom_step(mode, n, &allocations)) {
    n++;
    assert_true(n < 10000);
  }
  report(what, n + 1, allocations);
  /* The pool really allocated through us, step after step. */
  assert_true(n > 10);
  assert_true(allocations <= n);
  if (unclear_messages > 0)
    fail_msg("%u failure(s) without a cause in the message, e.g. %s",
             unclear_messages, unclear_example);
}

static void test_oom_from_n(void **state) {
  sweep(ORM_TEST_ALLOC_FAIL_FROM_N, "fail from N on");
}

/* One failure, then memory again: the paths that recover from it. */
static void test_oom_only_n(void **state) {
  sweep(ORM_TEST_ALLOC_FAIL_ONLY_N, "fail only N");
}

/* The DSN and the text are allocated before the counting allocator is in
 * place and freed after it is gone: libc's, not counted. */
static int group_setup(void **state) {
  /* libkrb5, loaded for GSS encryption, keeps memory valgrind reports. */
  dsn = orm_test_dsn_with("gssencmode", "disable", NULL);
  big_text = malloc(BIG_LEN);
  if (big_text == NULL)
    return -1;
  for (size_t i = 0; i < BIG_LEN; i++)
    big_text[i] = (char)('a' + i % 26);
  return orm_test_alloc_install();
}

static int group_teardown(void **state) {
  free(big_text);
  big_text = NULL;
  free(dsn);
  dsn = NULL;
  return orm_test_alloc_restore();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_oom_from_n),
      cmocka_unit_test(test_oom_only_n),
  };
  return orm_run_group_tests(tests, group_setup, group_teardown);
}
