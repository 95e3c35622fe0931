/* SPDX-License-Identifier: MIT */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uv_loop_t loop;

void topology(const char *action, const char *node) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "\"%s\" %s \"%s\" %s >/dev/null",
           getenv("UVORM_TEST_CLUSTER"), action,
           getenv("UVORM_TEST_CLUSTER_STATE"), node);
  if (system(cmd) != 0)
    fail_msg("%s failed", cmd);
}

typedef struct {
  uv_work_t work;
  char action[32], node[32];
  int *done, rc;
} topology_job_t;

static void topology_run(uv_work_t *w) {
  topology_job_t *j = (topology_job_t *)w;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "\"%s\" %s \"%s\" %s >/dev/null",
           getenv("UVORM_TEST_CLUSTER"), j->action,
           getenv("UVORM_TEST_CLUSTER_STATE"), j->node);
  j->rc = system(cmd);
}

static void topology_ran(uv_work_t *w, int status) {
  topology_job_t *j = (topology_job_t *)w;
  int rc = j->rc;
  *j->done = 1;
  char what[80];
  snprintf(what, sizeof what, "%s %s", j->action, j->node);
  free(j);
  if (status != 0 || rc != 0)
    fail_msg("topology %s failed", what);
}

void topology_async(const char *action, const char *node, int *done) {
  topology_job_t *j = calloc(1, sizeof *j);
  assert_non_null(j);
  snprintf(j->action, sizeof j->action, "%s", action);
  snprintf(j->node, sizeof j->node, "%s", node);
  j->done = done;
  *done = 0;
  assert_int_equal(uv_queue_work(&loop, &j->work, topology_run, topology_ran),
                   0);
}

void run_until(int (*done)(void *), void *arg, uint64_t ms, const char *what) {
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + ms;
  while (!done(arg)) {
    uv_run(&loop, UV_RUN_ONCE);
    uv_update_time(&loop);
    if (uv_now(&loop) > end)
      fail_msg("timed out waiting for %s", what);
  }
}

void run_ms(uint64_t ms) {
  uv_update_time(&loop);
  uint64_t end = uv_now(&loop) + ms;
  while (uv_now(&loop) < end) {
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&loop);
  }
}

static int step_done(void *arg) { return ((orm_step_t *)arg)->done; }

void wait_step(orm_step_t *s) { run_until(step_done, s, 15000, "a call"); }

int64_t raw_int(orm_exec_t *ex, const char *q) {
  orm_step_t s = {.result = 1};
  assert_int_equal(orm_query_async(ex, q, NULL, 0, orm_fx_on_step, &s, NULL),
                   0);
  wait_step(&s);
  if (s.status != 0)
    fail_msg("%s: %s %s", q, orm_err_name(s.status), s.message);
  return s.value;
}

PGconn *pg_connect(const char *dsn) {
  PGconn *pg = PQconnectdb(dsn);
  if (PQstatus(pg) != CONNECTION_OK)
    fail_msg("connect: %s", PQerrorMessage(pg));
  return pg;
}

void pg_sql(PGconn *pg, const char *q) {
  PGresult *res = PQexec(pg, q);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    fail_msg("%s: %s", q, PQerrorMessage(pg));
  PQclear(res);
}

int64_t pg_int(PGconn *pg, const char *q) {
  PGresult *res = PQexec(pg, q);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", q, PQerrorMessage(pg));
  int64_t v =
      PQgetisnull(res, 0, 0) ? -1 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
  PQclear(res);
  return v;
}
