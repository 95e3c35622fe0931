/* SPDX-License-Identifier: MIT */
/* TLS and SCRAM from the library, against the topology's primary
 * (ssl = on, a throwaway CA; the role uvorm_scram authenticates with
 * scram-sha-256): sslmode=verify-full connects and the session is
 * encrypted; a wrong CA and a wrong host name fail with ORM_ECONNECT and
 * libpq's reason; a wrong password fails with ORM_EAUTH and SQLSTATE 28P01,
 * no password with ORM_EAUTH. No password, conninfo or certificate path
 * ever shows in an error message, a log line, a query event or the pool's
 * metrics text. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *tls_dsn, *scram_dsn;

/* Strings that must never leave the library. */
static const char *const secrets[] = {
    "uvorm-scram-pw", "wrong-pw", "password=", "dbname=",
    "sslrootcert",    "hostaddr=", "ca.crt",
};

static void no_secret(const char *text, const char *where) {
  for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
    if (strstr(text, secrets[i]) != NULL)
      fail_msg("%s shows \"%s\": %s", where, secrets[i], text);
}

static int logged;
static void on_log(orm_pool_t *pool, const orm_log_record_t *r, void *data) {
  (void)pool;
  (void)data;
  logged++;
  no_secret(r->message, r->event);
  if (r->server_address != NULL)
    no_secret(r->server_address, "a log record's server address");
}

static int queries;
static void on_query(orm_pool_t *pool, const orm_query_event_t *e,
                     void *data) {
  (void)pool;
  (void)data;
  queries++;
  no_secret(e->query_text, "a query event");
  if (e->server_address != NULL)
    no_secret(e->server_address, "a query event's server address");
  if (e->namespace_name != NULL)
    no_secret(e->namespace_name, "a query event's database");
}

/* `base` with more key=value pairs (a repeated key: the last one wins). */
static char *dsn_plus(const char *base, const char *more) {
  size_t n = strlen(base) + strlen(more) + 2;
  char *s = malloc(n);
  snprintf(s, n, "%s %s", base, more);
  return s;
}

static orm_pool_t *open_pool(const char *dsn) {
  orm_pool_t *pool;
  orm_pool_config_t cfg = {.conninfo = dsn,
                           .min_conns = 1,
                           .max_conns = 2,
                           .reconnect_min_ms = 50,
                           .reconnect_max_ms = 200,
                           .connect_timeout_ms = 5000,
                           .metrics = true,
                           .on_log = on_log,
                           .on_query = on_query};
  assert_int_equal(orm_pool_open(&pool, &loop, &cfg), 0);
  return pool;
}

static void close_pool(orm_pool_t *pool) {
  static char buf[1 << 18];
  int n = orm_pool_metrics(pool, "pool=\"secure\"", buf, sizeof buf);
  assert_true(n > 0 && (size_t)n < sizeof buf);
  no_secret(buf, "the metrics text");
  assert_int_equal(orm_pool_close(pool, NULL), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
}

/* The first query on a pool that cannot connect: its outcome. */
static orm_step_t refused(const char *dsn) {
  orm_pool_t *pool = open_pool(dsn);
  orm_step_t s = {0};
  assert_int_equal(
      orm_query_async(pool, "SELECT 1", NULL, 0, orm_fx_on_step, &s, NULL), 0);
  wait_step(&s);
  no_secret(s.message, "the error message");
  print_message("refused (%s%s%s): %s\n", orm_err_name(s.status),
                *s.sqlstate ? " " : "", s.sqlstate, s.message);
  close_pool(pool);
  return s;
}

static void test_verify_full(void **state) {
  (void)state;
  logged = queries = 0;
  orm_pool_t *pool = open_pool(tls_dsn);
  assert_int_equal(raw_int(orm_pool_exec(pool), "SELECT ssl FROM pg_stat_ssl "
                                 "WHERE pid = pg_backend_pid()"),
                   1);
  assert_int_equal(raw_int(orm_pool_exec(pool), "SELECT (current_user = 'uvorm_scram')"), 1);
  /* The authentication method was SCRAM (pg_hba.conf has no other for the
   * role): a wrong password proves it below. */
  close_pool(pool);
  assert_true(logged > 0); /* "connected" at least: it was checked */
  assert_true(queries >= 2);
}

static void test_wrong_ca(void **state) {
  (void)state;
  char opt[512];
  snprintf(opt, sizeof opt, "sslrootcert=%s",
           getenv("UVORM_TEST_TLS_WRONG_CA"));
  char *dsn = dsn_plus(tls_dsn, opt);
  orm_step_t s = refused(dsn);
  free(dsn);
  assert_int_equal(s.status, ORM_ECONNECT);
  assert_string_equal(s.sqlstate, "");
  assert_non_null(strstr(s.message, "certificate verify failed"));
}

static void test_wrong_host_name(void **state) {
  (void)state;
  /* Still 127.0.0.1 (hostaddr), but verified against another name. */
  char *dsn = dsn_plus(tls_dsn, "host=uvorm-wrong-host");
  orm_step_t s = refused(dsn);
  free(dsn);
  assert_int_equal(s.status, ORM_ECONNECT);
  assert_non_null(strstr(s.message, "does not match host name"));
}

static void test_wrong_password(void **state) {
  (void)state;
  const char *bases[] = {scram_dsn, tls_dsn};
  for (int i = 0; i < 2; i++) {
    char *dsn = dsn_plus(bases[i], "password=wrong-pw");
    orm_step_t s = refused(dsn);
    free(dsn);
    assert_int_equal(s.status, ORM_EAUTH);
    assert_string_equal(s.sqlstate, "28P01");
    assert_non_null(strstr(s.message, "authentication failed"));
  }
}

static void test_no_password(void **state) {
  (void)state;
  /* An empty password is none: libpq refuses before the server does. */
  char *dsn = dsn_plus(scram_dsn, "password='' passfile=/nonexistent");
  orm_step_t s = refused(dsn);
  free(dsn);
  assert_int_equal(s.status, ORM_EAUTH);
  assert_string_equal(s.sqlstate, "");
}

int main(void) {
  tls_dsn = getenv("UVORM_TEST_TLS_DSN");
  scram_dsn = getenv("UVORM_TEST_SCRAM_DSN");
  if (tls_dsn == NULL || scram_dsn == NULL) {
    fprintf(stderr, "run through scripts/pg-test-cluster exec (--tls)\n");
    return 77;
  }
  assert_int_equal(uv_loop_init(&loop), 0);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_verify_full),
      cmocka_unit_test(test_wrong_ca),
      cmocka_unit_test(test_wrong_host_name),
      cmocka_unit_test(test_wrong_password),
      cmocka_unit_test(test_no_password),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  uv_loop_close(&loop);
  return rc;
}
