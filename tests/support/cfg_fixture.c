/* SPDX-License-Identifier: MIT */
#include "cfg_fixture.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

orm_fx_t *cfg_fx;
void (*cfg_tick_hook)(void);

/* Wakes the loop every few milliseconds so waits can check their deadline
 * (the pool's poll handles keep it alive but may stay silent). */
static uv_timer_t *ticker;

static void on_tick(uv_timer_t *t) {
  (void)t;
  if (cfg_tick_hook != NULL)
    cfg_tick_hook();
}

void cfg_free_handle(uv_handle_t *h) { free(h); }

/* ---- the fixture ------------------------------------------------------ */

static void start_ticker(void) {
  cfg_tick_hook = NULL;
  ticker = malloc(sizeof *ticker);
  assert_non_null(ticker);
  assert_int_equal(uv_timer_init(&cfg_fx->loop, ticker), 0);
  assert_int_equal(uv_timer_start(ticker, on_tick, 5, 5), 0);
}

void cfg_open_admin(const char *schema) {
  cfg_fx = malloc(sizeof *cfg_fx);
  assert_non_null(cfg_fx);
  orm_fx_open_admin(cfg_fx, schema, 0);
}

void cfg_open_pool(orm_pool_config_t cfg) {
  orm_fx_open_pool(cfg_fx, &cfg);
  start_ticker();
}

void cfg_open(const char *schema, orm_pool_config_t cfg) {
  cfg_fx = malloc(sizeof *cfg_fx);
  assert_non_null(cfg_fx);
  orm_fx_open(cfg_fx, schema, 0, &cfg);
  start_ticker();
}

void cfg_close_admin(void) {
  orm_fx_close_admin(cfg_fx);
  free(cfg_fx);
  cfg_fx = NULL;
}

void cfg_close(void) {
  cfg_tick_hook = NULL;
  uv_close((uv_handle_t *)ticker, cfg_free_handle);
  ticker = NULL;
  orm_fx_close(cfg_fx);
  free(cfg_fx);
  cfg_fx = NULL;
}

int cfg_abandon(void **state) {
  (void)state;
  if (cfg_fx != NULL) {
    PQfinish(cfg_fx->admin);
    cfg_fx = NULL;
  }
  ticker = NULL;
  cfg_tick_hook = NULL;
  return 0;
}

/* ---- waiting ---------------------------------------------------------- */

void cfg_run_ms(uint64_t ms) {
  uv_loop_t *loop = &cfg_fx->loop;
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + ms;
  while (uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
}

void cfg_run_until_count(const int *count, int target, uint64_t timeout_ms) {
  uv_loop_t *loop = &cfg_fx->loop;
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + timeout_ms;
  while (*count < target) {
    if (uv_now(loop) > end)
      fail_msg("waited %llu ms for %d of %d", (unsigned long long)timeout_ms,
               *count, target);
    uv_run(loop, UV_RUN_ONCE);
  }
}

void cfg_run_until(const int *flag, uint64_t timeout_ms) {
  cfg_run_until_count(flag, 1, timeout_ms);
}

orm_pool_stats_t cfg_stats(void) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(cfg_fx->pool, &st), 0);
  return st;
}

unsigned cfg_total_conns(const orm_pool_stats_t *st) {
  return st->conns_connecting + st->conns_idle + st->conns_busy +
         st->conns_in_tx + st->conns_broken;
}

int cfg_wait_for(int (*pred)(void), uint64_t timeout_ms) {
  uv_loop_t *loop = &cfg_fx->loop;
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + timeout_ms;
  while (!pred()) {
    if (uv_now(loop) > end)
      return 0;
    cfg_run_ms(10);
  }
  return 1;
}

/* ---- one statement ------------------------------------------------------ */

void cfg_on_probe(orm_future_t *f, void *data) {
  probe_t *p = data;
  p->done++;
  p->status = orm_future_status(f);
  p->completed_at = uv_now(&cfg_fx->loop);
  if (p->status == 0) {
    orm_result_t *r = orm_future_value(f);
    if (orm_result_nrows(r) > 0 && orm_result_ncols(r) > 0)
      orm_result_int(r, 0, 0, &p->value);
    if (orm_result_nrows(r) > 0 && orm_result_ncols(r) > 1)
      orm_result_int(r, 0, 1, &p->pid);
  } else {
    const orm_error_t *e = orm_future_error(f);
    snprintf(p->sqlstate, sizeof p->sqlstate, "%s", e->sqlstate);
    snprintf(p->message, sizeof p->message, "%s", e->message);
  }
}

probe_t cfg_run_sql(const char *sql, const orm_param_t *params, size_t n) {
  probe_t p = {0};
  assert_int_equal(
      orm_query_async(cfg_fx->pool, sql, params, n, cfg_on_probe, &p, NULL), 0);
  cfg_run_until(&p.done, 10000);
  return p;
}

int64_t cfg_scalar(const char *sql) {
  probe_t p = cfg_run_sql(sql, NULL, 0);
  if (p.status != 0)
    fail_msg("%s: %s %s %s", sql, orm_err_name(p.status), p.sqlstate,
             p.message);
  return p.value;
}

int64_t cfg_backend_pid(void) {
  return cfg_scalar("SELECT pg_backend_pid()::int8");
}

/* ---- the server's view -------------------------------------------------- */

int64_t cfg_admin_int(const char *fmt, ...) {
  char sql[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  char *text = orm_fx_text(cfg_fx, sql);
  int64_t v = strcmp(text, "<null>") == 0 ? -1 : atoll(text);
  free(text);
  return v;
}

/* PostgreSQL 14+ takes a timeout. */
void cfg_admin_terminate(int64_t pid) {
  assert_int_equal(cfg_admin_int("SELECT pg_terminate_backend(%lld, 5000)::int",
                                 (long long)pid),
                   1);
}

int64_t cfg_server_conns(void) {
  return cfg_admin_int("SELECT count(*) FROM pg_stat_activity "
                       "WHERE application_name = '%s'",
                       cfg_fx->schema);
}

int64_t cfg_server_idle_in_tx(void) {
  return cfg_admin_int("SELECT count(*) FROM pg_stat_activity "
                       "WHERE application_name = '%s' "
                       "AND state LIKE 'idle in transaction%%'",
                       cfg_fx->schema);
}
