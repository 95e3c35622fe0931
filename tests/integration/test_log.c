/* SPDX-License-Identifier: MIT */
/* The runtime's log (orm_pool_config_t.on_log): connections made, lost
 * (a killed backend) and failing with their backoff, the pool down,
 * statements replayed; filtered by level; never a password, though the
 * conninfo has one. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORDS 64
#define SECRET "Sup3r-Secret-pw"

typedef struct {
  orm_log_level_t level;
  char event[32];
  char message[512];
  char address[128];
  int port;
  int pid;
  unsigned attempt;
  uint64_t retry_in_ms;
} record_t;

static record_t records[MAX_RECORDS];
static size_t nrecords;

static void on_log(orm_pool_t *pool, const orm_log_record_t *r, void *data) {
  (void)pool;
  (void)data;
  assert_non_null(r->event);
  assert_non_null(r->message);
  /* Never the password, in any field. */
  assert_null(strstr(r->message, SECRET));
  if (r->server_address != NULL)
    assert_null(strstr(r->server_address, SECRET));
  if (nrecords == MAX_RECORDS)
    return;
  record_t *c = &records[nrecords++];
  c->level = r->level;
  snprintf(c->event, sizeof c->event, "%s", r->event);
  snprintf(c->message, sizeof c->message, "%s", r->message);
  snprintf(c->address, sizeof c->address, "%s",
           r->server_address != NULL ? r->server_address : "");
  c->port = r->server_port;
  c->pid = r->backend_pid;
  c->attempt = r->attempt;
  c->retry_in_ms = r->retry_in_ms;
}

static const record_t *find(const char *event) {
  for (size_t i = 0; i < nrecords; i++)
    if (strcmp(records[i].event, event) == 0)
      return &records[i];
  return NULL;
}

static void wait_for(orm_fx_t *fx, const char *event) {
  uv_update_time(&fx->loop);
  uint64_t end = uv_now(&fx->loop) + 10000;
  while (find(event) == NULL) {
    uv_run(&fx->loop, UV_RUN_ONCE);
    if (uv_now(&fx->loop) > end)
      fail_msg("no \"%s\" record within 10 s (%zu records)", event, nrecords);
  }
}

static void test_connections(void **state) {
  (void)state;
  nrecords = 0;
  orm_fx_t fx;
  orm_fx_open_admin(&fx, NULL, 0);
  char *dsn = orm_test_dsn_with("password", SECRET, NULL);
  orm_fx_open_pool(&fx, &(orm_pool_config_t){.conninfo = dsn, .on_log = on_log});
  free(dsn);
  wait_for(&fx, "connected");
  const record_t *c = find("connected");
  assert_int_equal(c->level, ORM_LOG_INFO);
  assert_true(c->pid > 0);
  assert_true(c->address[0] != '\0');
  assert_true(c->port > 0);

  /* The server ends the backend: lost, then made again at once. */
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", c->pid);
  orm_fx_sql(&fx, sql);
  orm_step_t s = {0};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 1", NULL, 0, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  wait_for(&fx, "reconnected");
  const record_t *lost = find("connection_lost");
  assert_non_null(lost);
  assert_int_equal(lost->level, ORM_LOG_WARN);
  assert_int_equal(lost->pid, c->pid);
  assert_int_equal(lost->retry_in_ms, 0);
  assert_true(find("reconnected")->pid != c->pid);
  orm_fx_close(&fx);
}

static void test_unreachable(void **state) {
  (void)state;
  nrecords = 0;
  orm_fx_t fx;
  memset(&fx, 0, sizeof fx);
  orm_fx_open_pool(&fx, &(orm_pool_config_t){
                            .conninfo = "host=127.0.0.1 port=1 user=u password=" SECRET
                                        " connect_timeout=2",
                            .on_log = on_log,
                            .reconnect_min_ms = 20,
                            .reconnect_max_ms = 40});
  wait_for(&fx, "pool_down");
  orm_fx_run_ms(&fx, 200); /* a few more attempts */
  const record_t *f = find("connect_failed");
  assert_non_null(f);
  assert_int_equal(f->level, ORM_LOG_WARN);
  assert_int_equal(f->attempt, 1);
  assert_true(f->retry_in_ms > 0);
  assert_non_null(strstr(f->message, "127.0.0.1"));
  assert_string_equal(f->address, "127.0.0.1");
  assert_int_equal(f->port, 1);
  assert_int_equal(find("pool_down")->level, ORM_LOG_ERROR);
  unsigned most = 0;
  for (size_t i = 0; i < nrecords; i++)
    if (strcmp(records[i].event, "connect_failed") == 0 && records[i].attempt > most)
      most = records[i].attempt;
  assert_true(most >= 2); /* counted in a row */
  orm_fx_close(&fx);
}

/* log_level keeps the lesser records out; DEBUG shows replays. */
static void test_levels(void **state) {
  (void)state;
  nrecords = 0;
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.on_log = on_log, .log_level = ORM_LOG_WARN});
  orm_step_t s = {0};
  assert_int_equal(orm_query_async(fx.pool, "SELECT 1", NULL, 0, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(&fx, &s, 1);
  assert_null(find("connected"));
  orm_fx_close(&fx);

  nrecords = 0;
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.on_log = on_log, .max_conns = 1});
  orm_step_t r[3] = {{0}};
  const char *sql[3] = {"SELECT 'a'", "SELECT 1 / 0", "SELECT 'b'"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(orm_query_async(fx.pool, sql[i], NULL, 0, orm_fx_on_step, &r[i], NULL), 0);
  orm_fx_wait(&fx, r, 3);
  const record_t *replay = find("replay");
  assert_non_null(replay);
  assert_int_equal(replay->level, ORM_LOG_DEBUG);
  assert_non_null(strstr(replay->message, "segment failed"));
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_connections),
      cmocka_unit_test(test_unreachable),
      cmocka_unit_test(test_levels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
