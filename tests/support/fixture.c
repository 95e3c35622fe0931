/* SPDX-License-Identifier: MIT */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

static void on_closed(orm_pool_t *pool, void *data) {
  (void)pool;
  ((orm_fx_t *)data)->closed++;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

typedef struct {
  int done;
  int code;
  char message[1024];
} migrated_t;

static void on_migrated(const orm_migrate_report_t *r, void *data) {
  migrated_t *m = data;
  m->done = 1;
  m->code = r->code;
  if (r->code != 0)
    snprintf(m->message, sizeof m->message, "%s:%u: %s (SQLSTATE %s)",
             r->file != NULL ? r->file : "-", r->line, r->message, r->sqlstate);
}

/* The sample domain's tables, in `schema`, the way a service creates them:
 * its embedded migrations, applied through the API on a loop of its own. */
static void apply_domain(const char *schema) {
  orm_migrations_t *set = NULL;
  char err[512];
  if (orm_migrations_load_embedded(domain_migrations, domain_migrations_count,
                                   &set, err, sizeof err) != 0)
    fail_msg("the domain's migrations: %s", err);
  char opt[160];
  snprintf(opt, sizeof opt, "-c search_path=%s -c client_min_messages=warning",
           schema);
  char *dsn = orm_test_dsn_with("options", opt, NULL);
  uv_loop_t loop;
  assert_int_equal(uv_loop_init(&loop), 0);
  orm_pool_t *pool = NULL;
  assert_int_equal(
      orm_pool_open(&pool, &loop,
                    &(orm_pool_config_t){.conninfo = dsn, .max_conns = 2}),
      0);
  free(dsn);
  migrated_t m = {0};
  assert_int_equal(orm_migrate_async(pool, set,
                                     &(orm_migrate_options_t){.action = ORM_MIGRATE_UP},
                                     on_migrated, &m),
                   0);
  while (!m.done)
    uv_run(&loop, UV_RUN_ONCE);
  if (m.code != 0)
    fail_msg("the domain's migrations failed: %s", m.message);
  orm_pool_close(pool, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&loop), 0);
  orm_migrations_free(set);
}

void orm_fx_open(orm_fx_t *fx, const char *schema, int domain,
                 const orm_pool_config_t *cfg) {
  orm_fx_open_admin(fx, schema, domain);
  orm_pool_config_t c = cfg != NULL ? *cfg : (orm_pool_config_t){0};
  c.conninfo = NULL; /* the test server's, for the schema */
  orm_fx_open_pool(fx, &c);
}

void orm_fx_close(orm_fx_t *fx) {
  if (fx->pool != NULL) {
    assert_int_equal(orm_pool_close(fx->pool, on_closed), 0);
    fx->pool = NULL;
  }
  orm_test_run(&fx->loop, 15000);
  assert_int_equal(fx->closed, 1);
  orm_test_loop_close(&fx->loop);
  orm_fx_close_admin(fx);
}

static PGresult *admin_exec(orm_fx_t *fx, const char *sql) {
  PGresult *r = PQexec(fx->admin, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(fx->admin));
  return r;
}

void orm_fx_sql(orm_fx_t *fx, const char *sql) { PQclear(admin_exec(fx, sql)); }

int64_t orm_fx_int(orm_fx_t *fx, const char *sql) {
  PGresult *r = admin_exec(fx, sql);
  int64_t v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)
                  ? strtoll(PQgetvalue(r, 0, 0), NULL, 10)
                  : -1;
  PQclear(r);
  return v;
}

void orm_fx_run_ms(orm_fx_t *fx, uint64_t ms) {
  uv_update_time(&fx->loop);
  uint64_t end = uv_now(&fx->loop) + ms;
  while (uv_now(&fx->loop) < end) {
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    uv_sleep(1);
    uv_update_time(&fx->loop);
  }
}

void orm_fx_on_step(orm_future_t *f, void *data) {
  orm_step_t *s = data;
  s->done++;
  s->status = orm_future_status(f);
  s->value = -1;
  const orm_error_t *e = orm_future_error(f);
  if (e != NULL) {
    snprintf(s->sqlstate, sizeof s->sqlstate, "%s",
             e->sqlstate != NULL ? e->sqlstate : "");
    snprintf(s->message, sizeof s->message, "%s",
             e->message != NULL ? e->message : "");
    s->applied = e->applied;
    return;
  }
  if (s->result) {
    orm_result_t *r = orm_future_value(f);
    bool b;
    if (orm_result_nrows(r) > 0 && orm_result_int(r, 0, 0, &s->value) != 0)
      s->value = orm_result_bool(r, 0, 0, &b) == 0 ? b : -1;
  }
  if (s->take)
    s->taken = orm_future_take(f);
}

void orm_fx_wait(orm_fx_t *fx, orm_step_t *steps, size_t n) {
  uv_update_time(&fx->loop);
  uint64_t end = uv_now(&fx->loop) + 10000;
  for (size_t i = 0; i < n; i++) {
    while (!steps[i].done) {
      uv_run(&fx->loop, UV_RUN_ONCE);
      if (uv_now(&fx->loop) > end)
        fail_msg("step %zu of %zu did not complete", i, n);
    }
  }
}

void orm_fx_open_admin(orm_fx_t *fx, const char *schema, int domain) {
  memset(fx, 0, sizeof *fx);
  fx->admin = PQconnectdb(orm_test_dsn());
  assert_int_equal(PQstatus(fx->admin), CONNECTION_OK);
  PQsetNoticeProcessor(fx->admin, quiet, NULL);
  if (schema == NULL)
    return;
  assert_true(strlen(schema) < sizeof fx->schema);
  snprintf(fx->schema, sizeof fx->schema, "%s", schema);
  char sql[256];
  snprintf(sql, sizeof sql,
           "DROP SCHEMA IF EXISTS %s CASCADE; CREATE SCHEMA %s; "
           "SET search_path = %s",
           schema, schema, schema);
  orm_fx_sql(fx, sql);
  if (domain)
    apply_domain(schema);
}

void orm_fx_open_pool(orm_fx_t *fx, const orm_pool_config_t *cfg) {
  orm_pool_config_t c = cfg != NULL ? *cfg : (orm_pool_config_t){0};
  char *dsn = NULL;
  if (c.conninfo == NULL) {
    if (fx->schema[0] != '\0') {
      char opt[128];
      snprintf(opt, sizeof opt, "-c search_path=%s", fx->schema);
      dsn = orm_test_dsn_with("options", opt, "application_name", fx->schema,
                              NULL);
    } else {
      dsn = orm_test_dsn_with(NULL, NULL);
    }
    c.conninfo = dsn;
  }
  c.data = fx;
  assert_int_equal(uv_loop_init(&fx->loop), 0);
  assert_int_equal(orm_pool_open(&fx->pool, &fx->loop, &c), 0);
  free(dsn);
}

void orm_fx_close_admin(orm_fx_t *fx) {
  if (fx->schema[0] != '\0') {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", fx->schema);
    orm_fx_sql(fx, sql);
  }
  PQfinish(fx->admin);
  fx->admin = NULL;
}

char *orm_fx_text(orm_fx_t *fx, const char *sql) {
  PGresult *r = admin_exec(fx, sql);
  if (PQntuples(r) != 1)
    fail_msg("%s: %d rows, not 1", sql, PQntuples(r));
  char *v = strdup(PQgetisnull(r, 0, 0) ? "<null>" : PQgetvalue(r, 0, 0));
  PQclear(r);
  assert_non_null(v);
  return v;
}
