/* SPDX-License-Identifier: MIT */
/* Shared helpers for uvorm's cmocka tests. Include after cmocka's own
 * prerequisites (stdarg.h, stddef.h, stdint.h, setjmp.h). */
#ifndef ORM_TEST_HARNESS_H
#define ORM_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <uv.h>

/* The conninfo of the test server (UVORM_TEST_DSN). Fails the test with a
 * hint when it is not set: run integration tests through ctest, or through
 * `scripts/pg-test-server exec STATE -- ./test`. */
const char *orm_test_dsn(void);

/* The test server's conninfo as key=value pairs, whatever form
 * UVORM_TEST_DSN has, with the given keys set to the given values: pairs of
 * strings ending with NULL, e.g. ("options", "-c search_path=mine", NULL).
 * Free it with free(). */
char *orm_test_dsn_with(const char *key, ...)
#if defined(__GNUC__)
    __attribute__((sentinel))
#endif
    ;

/* Whether the server is one the suite started itself, which tests may stop,
 * start and restart. False with DATABASE_URL / PG* variables. */
int orm_test_server_managed(void);

/* Runs `scripts/pg-test-server ACTION` ("stop", "start", "restart") on the
 * suite's own cluster; fails the test if it does not succeed. */
void orm_test_server(const char *action);

/* Runs `loop` until it has nothing left to do, failing the test if that takes
 * longer than `timeout_ms`. The guard timer is closed before returning. */
void orm_test_run(uv_loop_t *loop, uint64_t timeout_ms);

/* Asserts that every handle on `loop` is closed and closes it: a handle the
 * code under test leaked fails the test (libuv's MAKE_VALGRIND_HAPPY). */
void orm_test_loop_close(uv_loop_t *loop);

/* cmocka_run_group_tests() for a group with a setup or teardown: cmocka
 * 1.1.5 reports a failing group teardown ("[  FAILED  ] GROUP TEARDOWN")
 * and still returns 0, so a fixture that cannot clean up would pass. Here a
 * group setup or teardown that fails (returns non-zero or fails an
 * assertion) makes the result non-zero. Either may be NULL. */
#define orm_run_group_tests(tests, setup, teardown)                            \
  orm_test_run_group(#tests, tests, sizeof(tests) / sizeof((tests)[0]),       \
                     setup, teardown)
int orm_test_run_group(const char *name, const struct CMUnitTest *tests,
                       size_t n, CMFixtureFunction setup,
                       CMFixtureFunction teardown);

#endif /* ORM_TEST_HARNESS_H */
