/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <stdio.h>

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

const char *orm_test_dsn(void) {
  const char *dsn = getenv("UVORM_TEST_DSN");
  if (dsn == NULL) {
    fail_msg("UVORM_TEST_DSN is not set: run integration tests with ctest, "
             "or as scripts/pg-test-server exec STATE_DIR -- %s",
             "./integration_test_...");
  }
  return dsn;
}

/* Appends key='value' with libpq's quoting. */
static void append_pair(char **out, size_t *len, const char *key,
                        const char *value) {
  size_t need = *len + strlen(key) + 2 * strlen(value) + 8;
  *out = realloc(*out, need);
  assert_non_null(*out);
  char *p = *out + *len;
  p += sprintf(p, "%s%s='", *len ? " " : "", key);
  for (const char *v = value; *v; v++) {
    if (*v == '\\' || *v == '\'')
      *p++ = '\\';
    *p++ = *v;
  }
  *p++ = '\'';
  *p = '\0';
  *len = (size_t)(p - *out);
}

char *orm_test_dsn_with(const char *key, ...) {
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(orm_test_dsn(), &err);
  if (opts == NULL)
    fail_msg("cannot parse UVORM_TEST_DSN: %s", err ? err : "out of memory");
  char *out = NULL;
  size_t len = 0;
  for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
    int replaced = 0;
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k != NULL; k = va_arg(ap, const char *)) {
      (void)va_arg(ap, const char *);
      replaced |= strcmp(o->keyword, k) == 0;
    }
    va_end(ap);
    if (o->val != NULL && !replaced)
      append_pair(&out, &len, o->keyword, o->val);
  }
  va_list ap;
  va_start(ap, key);
  for (const char *k = key; k != NULL; k = va_arg(ap, const char *))
    append_pair(&out, &len, k, va_arg(ap, const char *));
  va_end(ap);
  PQconninfoFree(opts);
  return out;
}

int orm_test_server_managed(void) {
  const char *external = getenv("UVORM_TEST_EXTERNAL");
  return getenv("UVORM_TEST_SERVER") != NULL && external != NULL &&
         strcmp(external, "0") == 0;
}

void orm_test_server(const char *action) {
  assert_true(orm_test_server_managed());
  char cmd[4096];
  int n = snprintf(cmd, sizeof cmd, "'%s' %s '%s'", getenv("UVORM_TEST_SERVER"),
                   action, getenv("UVORM_TEST_STATE"));
  assert_true(n > 0 && (size_t)n < sizeof cmd);
  int rc = system(cmd);
  if (rc != 0)
    fail_msg("pg-test-server %s failed (%d)", action, rc);
}

static void guard_expired(uv_timer_t *timer) {
  fail_msg("the loop still had work after %llu ms",
           (unsigned long long)uv_timer_get_repeat(timer));
}

void orm_test_run(uv_loop_t *loop, uint64_t timeout_ms) {
  uv_timer_t guard;
  assert_int_equal(uv_timer_init(loop, &guard), 0);
  uv_timer_set_repeat(&guard, timeout_ms);
  assert_int_equal(uv_timer_start(&guard, guard_expired, timeout_ms, 0), 0);
  /* The guard must not keep the loop alive by itself. */
  uv_unref((uv_handle_t *)&guard);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
}

static void report_handle(uv_handle_t *handle, void *arg) {
  int *open = arg;
  if (!uv_is_closing(handle)) {
    fprintf(stderr, "leaked handle: %s (%p)\n", uv_handle_type_name(handle->type),
            (void *)handle);
    (*open)++;
  }
}

void orm_test_loop_close(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  int open = 0;
  uv_walk(loop, report_handle, &open);
  assert_int_equal(open, 0);
  assert_int_equal(uv_loop_close(loop), 0);
}

/* The group's own setup and teardown, and whether each ran to its end and
 * returned 0: a failed assertion inside one leaves its flag clear. */
static CMFixtureFunction group_setup, group_teardown;
static int group_setup_ok, group_teardown_ok;

static int checked_group_setup(void **state) {
  int rc = group_setup != NULL ? group_setup(state) : 0;
  group_setup_ok = rc == 0;
  return rc;
}

static int checked_group_teardown(void **state) {
  int rc = group_teardown != NULL ? group_teardown(state) : 0;
  group_teardown_ok = rc == 0;
  return rc;
}

int orm_test_run_group(const char *name, const struct CMUnitTest *tests,
                       size_t n, CMFixtureFunction setup,
                       CMFixtureFunction teardown) {
  group_setup = setup;
  group_teardown = teardown;
  group_setup_ok = group_teardown_ok = 0;
  int failed = _cmocka_run_group_tests(name, tests, n, checked_group_setup,
                                       checked_group_teardown);
  if (group_setup_ok && group_teardown_ok)
    return failed;
  fprintf(stderr, "%s: the group %s failed\n", name,
          group_setup_ok ? "teardown" : "setup");
  return failed + 1;
}
