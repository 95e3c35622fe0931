/* SPDX-License-Identifier: MIT */
/* Server notices go to the pool's on_notice callback, or nowhere: never
 * to the service's stderr. */
#include "fixture.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
  int n;
  char severity[4][16];
  char sqlstate[4][6];
  char message[4][64];
  char detail[4][16];
  char hint[4][16];
  int pid[4];
  int close_at; /* close the pool from inside the n-th notice (1-based) */
} seen_t;

static void on_notice(orm_pool_t *pool, const orm_notice_t *notice,
                      void *data) {
  orm_fx_t *fx = data;
  seen_t *seen = fx->user;
  assert_ptr_equal(pool, fx->pool);
  if (seen->n < 4) {
    int i = seen->n;
    snprintf(seen->severity[i], 16, "%s", notice->severity);
    snprintf(seen->sqlstate[i], 6, "%s", notice->sqlstate);
    snprintf(seen->message[i], 64, "%s", notice->message);
    snprintf(seen->detail[i], 16, "%s", notice->detail ? notice->detail : "-");
    snprintf(seen->hint[i], 16, "%s", notice->hint ? notice->hint : "-");
    seen->pid[i] = notice->backend_pid;
  }
  if (++seen->n == seen->close_at) {
    assert_int_equal(orm_pool_close(pool, NULL), 0);
    fx->pool = NULL;
    fx->closed = 1;
  }
}

static const char *const RAISE =
    "DO $$ BEGIN RAISE NOTICE 'hello %', 42; "
    "RAISE WARNING 'careful' USING DETAIL = 'the detail', HINT = 'a hint'; "
    "RAISE INFO 'third'; END $$";

static void test_notices_to_callback(void **state) {
  orm_fx_t fx;
  seen_t seen = {0};
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.max_conns = 1, .on_notice = on_notice});
  fx.user = &seen;
  orm_step_t s[2] = {{0}, {.result = 1}};
  assert_int_equal(
      orm_query_async(fx.pool, RAISE, NULL, 0, orm_fx_on_step, &s[0], NULL), 0);
  assert_int_equal(orm_query_async(fx.pool, "SELECT pg_backend_pid()", NULL, 0,
                                   orm_fx_on_step, &s[1], NULL),
                   0);
  orm_fx_wait(&fx, s, 2);
  assert_int_equal(s[0].status, 0);
  /* Delivered in the pool's own turn: run it. */
  orm_fx_run_ms(&fx, 20);
  assert_int_equal(seen.n, 3);
  assert_string_equal(seen.severity[0], "NOTICE");
  assert_string_equal(seen.sqlstate[0], "00000");
  assert_string_equal(seen.message[0], "hello 42");
  assert_string_equal(seen.detail[0], "-");
  assert_string_equal(seen.severity[1], "WARNING");
  assert_string_equal(seen.sqlstate[1], "01000");
  assert_string_equal(seen.message[1], "careful");
  assert_string_equal(seen.detail[1], "the detail");
  assert_string_equal(seen.hint[1], "a hint");
  assert_string_equal(seen.severity[2], "INFO");
  assert_int_equal(seen.pid[0], s[1].value);
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  assert_int_equal(st.notices, 3);
  assert_int_equal(st.notices_dropped, 0);
  orm_fx_close(&fx);
}

/* Closing the pool from inside on_notice is legal; the rest are dropped. */
static void test_close_inside_notice(void **state) {
  orm_fx_t fx;
  seen_t seen = {.close_at = 1};
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.max_conns = 1, .on_notice = on_notice});
  fx.user = &seen;
  orm_step_t s = {0};
  assert_int_equal(
      orm_query_async(fx.pool, RAISE, NULL, 0, orm_fx_on_step, &s, NULL), 0);
  orm_test_run(&fx.loop, 10000);
  /* The notice may come before the statement's answer: closing cancels
   * what is in flight then. */
  assert_int_equal(s.done, 1);
  assert_true(s.status == 0 || s.status == ORM_ECANCELED);
  assert_int_equal(seen.n, 1);
  orm_fx_close(&fx);
}

/* Without a callback nothing reaches stderr (libpq's default would print
 * "NOTICE:  ..." there). */
static void test_silent_by_default(void **state) {
  char path[] = "/tmp/uvorm-stderr-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  fflush(stderr);
  int saved = dup(2);
  assert_true(saved >= 0);
  assert_int_equal(dup2(fd, 2), 2);

  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0, &(orm_pool_config_t){.max_conns = 1});
  orm_step_t s[2] = {{0}};
  assert_int_equal(
      orm_query_async(fx.pool, RAISE, NULL, 0, orm_fx_on_step, &s[0], NULL), 0);
  assert_int_equal(orm_query_async(fx.pool,
                                   "DROP TABLE IF EXISTS no_such_table_here",
                                   NULL, 0, orm_fx_on_step, &s[1], NULL),
                   0);
  orm_fx_wait(&fx, s, 2);
  orm_fx_run_ms(&fx, 20);
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  orm_fx_close(&fx);

  fflush(stderr);
  assert_int_equal(dup2(saved, 2), 2);
  close(saved);
  off_t size = lseek(fd, 0, SEEK_END);
  char text[256] = "";
  if (size > 0) {
    lseek(fd, 0, SEEK_SET);
    ssize_t n = read(fd, text, sizeof text - 1);
    text[n > 0 ? n : 0] = '\0';
  }
  close(fd);
  unlink(path);
  assert_int_equal(s[0].status, 0);
  assert_int_equal(s[1].status, 0);
  if (size != 0)
    fail_msg("written to stderr: %s", text);
  assert_int_equal(st.notices, 4);
  assert_int_equal(st.notices_dropped, 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_notices_to_callback),
      cmocka_unit_test(test_close_inside_notice),
      cmocka_unit_test(test_silent_by_default),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
