/* SPDX-License-Identifier: MIT */
/* Query events (orm_pool_config_t.on_query): one per statement, success or
 * failure, with its text but never its values unless asked, the model call
 * and table, rows, SQLSTATE, timings, the connection, replays, the
 * transaction, the slow flag. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define SCHEMA "observe_test"
#define MAX_EVENTS 64

typedef struct {
  char text[256];
  char op[32];
  char table[64];
  char state[6];
  char address[64];
  char ns[64];
  char params[256];
  bool has_params;
  int status;
  int64_t rows;
  int port;
  int pid;
  uint64_t queued_ns, server_ns, total_ns;
  unsigned replays;
  const orm_tx_t *tx;
  bool slow;
  char plan[1024];
  bool has_plan;
} event_t;

typedef struct {
  event_t ev[MAX_EVENTS];
  size_t n;
} events_t;

static events_t events;

static void copy(char *dst, size_t n, const char *src) {
  snprintf(dst, n, "%s", src != NULL ? src : "");
}

static void on_query(orm_pool_t *pool, const orm_query_event_t *e, void *data) {
  (void)pool;
  (void)data;
  assert_string_equal(e->system, "postgresql");
  if (events.n == MAX_EVENTS)
    return;
  event_t *v = &events.ev[events.n++];
  copy(v->text, sizeof v->text, e->query_text);
  copy(v->op, sizeof v->op, e->operation);
  copy(v->table, sizeof v->table, e->collection);
  copy(v->state, sizeof v->state, e->status_code);
  copy(v->address, sizeof v->address, e->server_address);
  copy(v->ns, sizeof v->ns, e->namespace_name);
  copy(v->params, sizeof v->params, e->params);
  v->has_params = e->params != NULL;
  v->status = e->status;
  v->rows = e->rows;
  v->port = e->server_port;
  v->pid = e->backend_pid;
  v->queued_ns = e->queued_ns;
  v->server_ns = e->server_ns;
  v->total_ns = e->total_ns;
  v->replays = e->replays;
  v->tx = e->tx;
  v->slow = e->slow;
  copy(v->plan, sizeof v->plan, e->plan);
  v->has_plan = e->plan != NULL;
}

/* The event whose text starts with `text` (the last one). */
static const event_t *find(const char *text) {
  for (size_t i = events.n; i-- > 0;)
    if (strncmp(events.ev[i].text, text, strlen(text)) == 0)
      return &events.ev[i];
  fail_msg("no event for \"%s\" (%zu events)", text, events.n);
  return NULL;
}

static void query(orm_fx_t *fx, orm_exec_t *exec, const char *sql,
                  const orm_param_t *p, size_t n, orm_step_t *s) {
  assert_int_equal(orm_query_async(exec, sql, p, n, orm_fx_on_step, s, NULL), 0);
  orm_fx_wait(fx, s, 1);
}

static void test_statements(void **state) {
  (void)state;
  memset(&events, 0, sizeof events);
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0, &(orm_pool_config_t){.on_query = on_query});

  /* A read: its rows, its connection, its times. */
  orm_step_t s = {.result = 1};
  query(&fx, orm_pool_exec(fx.pool), "SELECT pg_backend_pid() FROM generate_series(1, 3)",
        NULL, 0, &s);
  assert_int_equal(s.status, 0);
  const event_t *e = find("SELECT pg_backend_pid()");
  assert_int_equal(e->status, 0);
  assert_string_equal(e->op, "SELECT");
  assert_string_equal(e->table, "");
  assert_string_equal(e->state, "");
  assert_int_equal(e->rows, 3);
  assert_int_equal(e->pid, s.value);
  assert_string_equal(e->ns, "uvorm");
  assert_true(e->address[0] != '\0');
  assert_true(e->port > 0);
  assert_true(e->server_ns > 0);
  assert_true(e->total_ns >= e->server_ns + e->queued_ns);
  assert_int_equal(e->replays, 0);
  assert_null(e->tx);
  assert_false(e->slow);
  assert_false(e->has_params);
  char *port = orm_fx_text(&fx, "SELECT current_setting('port')");
  assert_int_equal(e->port, atoi(port));
  free(port);

  /* A failure: the SQLSTATE, no rows. */
  orm_step_t f = {0};
  query(&fx, orm_pool_exec(fx.pool), "SELECT 1 / 0", NULL, 0, &f);
  e = find("SELECT 1 / 0");
  assert_int_equal(e->status, ORM_ESERVER);
  assert_string_equal(e->state, "22012");
  assert_int_equal(e->rows, -1);

  /* A write: rows affected. Values stay out of the event. */
  orm_fx_sql(&fx, "CREATE TABLE t (v text)");
  orm_step_t w = {0};
  orm_param_t secret = ORM_TEXT("hunter2-secret");
  query(&fx, orm_pool_exec(fx.pool), "INSERT INTO t SELECT $1 FROM generate_series(1, 4)",
        &secret, 1, &w);
  e = find("INSERT INTO t");
  assert_int_equal(e->status, 0);
  assert_string_equal(e->op, "INSERT");
  assert_int_equal(e->rows, 4);
  for (size_t i = 0; i < events.n; i++) {
    assert_null(strstr(events.ev[i].text, "hunter2"));
    assert_false(events.ev[i].has_params);
  }

  /* A transaction: BEGIN, its statement and COMMIT carry it. */
  orm_tx_t *tx;
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  orm_step_t t[2] = {{0}};
  assert_int_equal(orm_query_async(tx, "UPDATE t SET v = 'x'", NULL, 0, orm_fx_on_step, &t[0], NULL), 0);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &t[1], NULL), 0);
  orm_fx_wait(&fx, t, 2);
  const event_t *b = find("BEGIN"), *u = find("UPDATE t"), *c = find("COMMIT");
  assert_ptr_equal(b->tx, tx);
  assert_ptr_equal(u->tx, tx);
  assert_ptr_equal(c->tx, tx);
  assert_string_equal(b->op, "BEGIN");
  assert_string_equal(c->op, "COMMIT");
  assert_int_equal(u->rows, 4);
  assert_true(c->total_ns < 5000000000u);
  orm_fx_close(&fx);
}

/* Reads share a pipeline segment; one failing sends its neighbours again,
 * which their events say. */
static void test_replays(void **state) {
  (void)state;
  memset(&events, 0, sizeof events);
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0, &(orm_pool_config_t){.on_query = on_query, .max_conns = 1});
  orm_step_t s[3] = {{0}};
  const char *sql[3] = {"SELECT 'first'", "SELECT 1 / 0 AS broken", "SELECT 'third'"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(orm_query_async(fx.pool, sql[i], NULL, 0, orm_fx_on_step, &s[i], NULL), 0);
  orm_fx_wait(&fx, s, 3);
  assert_int_equal(s[0].status, 0);
  assert_int_equal(s[1].status, ORM_ESERVER);
  assert_int_equal(s[2].status, 0);
  assert_int_equal(events.n, 3);
  assert_int_equal(find("SELECT 1 / 0")->replays, 0);
  assert_true(find("SELECT 'third'")->replays >= 1);
  orm_fx_close(&fx);
}

/* sync_each: every statement its own segment, so a failing one takes no
 * neighbour with it (none replayed); a transaction spans its segments. */
static void test_sync_each(void **state) {
  (void)state;
  memset(&events, 0, sizeof events);
  orm_fx_t fx;
  orm_fx_open(&fx, "sync_each_test", 0,
              &(orm_pool_config_t){.on_query = on_query, .max_conns = 1,
                                   .sync_each = true});
  orm_fx_sql(&fx, "CREATE TABLE t (id int PRIMARY KEY)");
  orm_step_t s[4] = {{0}};
  const char *sql[4] = {"SELECT 'first'", "SELECT 1 / 0 AS broken", "SELECT 'third'",
                        "INSERT INTO t VALUES (1)"};
  for (int i = 0; i < 4; i++)
    assert_int_equal(orm_query_async(fx.pool, sql[i], NULL, 0, orm_fx_on_step, &s[i], NULL), 0);
  orm_fx_wait(&fx, s, 4);
  assert_int_equal(s[0].status, 0);
  assert_int_equal(s[1].status, ORM_ESERVER);
  assert_string_equal(s[1].sqlstate, "22012");
  assert_int_equal(s[2].status, 0);
  assert_int_equal(s[3].status, 0);
  for (size_t i = 0; i < events.n; i++)
    assert_int_equal(events.ev[i].replays, 0);

  /* A transaction: its statements in their own segments, still one
   * transaction; a failure in it skips the rest and COMMIT rolls back. */
  orm_tx_t *tx = NULL;
  assert_int_equal(orm_tx_begin_with(fx.pool, 0, &tx), 0);
  orm_step_t t[4] = {{0}};
  assert_int_equal(orm_query_async(orm_tx_exec(tx), "INSERT INTO t VALUES (2)", NULL, 0,
                                   orm_fx_on_step, &t[0], NULL),
                   0);
  assert_int_equal(orm_query_async(orm_tx_exec(tx), "INSERT INTO t VALUES (1)", NULL, 0,
                                   orm_fx_on_step, &t[1], NULL),
                   0);
  assert_int_equal(orm_query_async(orm_tx_exec(tx), "SELECT count(*) FROM t", NULL, 0,
                                   orm_fx_on_step, &t[2], NULL),
                   0);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &t[3], NULL), 0);
  orm_fx_wait(&fx, t, 4);
  assert_int_equal(t[0].status, 0);
  assert_int_equal(t[1].status, ORM_ESERVER);
  assert_string_equal(t[1].sqlstate, "23505");
  assert_int_equal(t[2].status, ORM_ESKIPPED);
  assert_int_equal(t[3].status, ORM_ESERVER);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM t"), 1);

  /* And one that commits. */
  assert_int_equal(orm_tx_begin_with(fx.pool, 0, &tx), 0);
  memset(t, 0, sizeof t);
  assert_int_equal(orm_query_async(orm_tx_exec(tx), "INSERT INTO t VALUES (3)", NULL, 0,
                                   orm_fx_on_step, &t[0], NULL),
                   0);
  t[1].result = 1;
  assert_int_equal(orm_query_async(orm_tx_exec(tx), "SELECT count(*)::int8 FROM t", NULL, 0,
                                   orm_fx_on_step, &t[1], NULL),
                   0);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &t[2], NULL), 0);
  orm_fx_wait(&fx, t, 3);
  assert_int_equal(t[0].status, 0);
  assert_int_equal(t[1].value, 2);
  assert_int_equal(t[2].status, 0);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM t"), 2);
  orm_fx_close(&fx);
}

/* Model calls name their operation and table. */
static void test_model_calls(void **state) {
  (void)state;
  memset(&events, 0, sizeof events);
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, &(orm_pool_config_t){.on_query = on_query});
  user_t u = {.email = "obs@example.com", .name = "Obs"};
  orm_step_t s[4] = {{0}};
  assert_int_equal(orm_insert_async(fx.pool, user_model(), &u, orm_fx_on_step, &s[0], NULL), 0);
  orm_fx_wait(&fx, s, 1);
  assert_int_equal(s[0].status, 0);
  assert_int_equal(orm_find_async(fx.pool, user_model(), ORM_INT8(u.id), orm_fx_on_step, &s[1], NULL), 0);
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, user_model()), 0);
  assert_int_equal(orm_query_include(q, "agents"), 0);
  assert_int_equal(orm_find_all_async(fx.pool, user_model(), q, orm_fx_on_step, &s[2], NULL), 0);
  orm_query_free(q);
  assert_int_equal(orm_count_async(fx.pool, agent_model(), NULL, orm_fx_on_step, &s[3], NULL), 0);
  orm_fx_wait(&fx, s + 1, 3);
  struct {
    const char *op, *table;
    int64_t rows;
  } want[] = {{"insert", "users", 1}, {"find", "users", 1},     {"find_all", "users", 1},
              {"include", "agents", 0}, {"count", "agents", 1}};
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    bool seen = false;
    for (size_t i = 0; i < events.n && !seen; i++)
      seen = strcmp(events.ev[i].op, want[k].op) == 0 &&
             strcmp(events.ev[i].table, want[k].table) == 0 &&
             events.ev[i].rows == want[k].rows && events.ev[i].status == 0;
    if (!seen)
      fail_msg("no %s event on %s with %lld rows", want[k].op, want[k].table,
               (long long)want[k].rows);
  }
  orm_fx_close(&fx);
}

/* Slow statements are flagged; values only when the pool asks for them,
 * and cut short. */
static void test_slow_and_params(void **state) {
  (void)state;
  memset(&events, 0, sizeof events);
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.on_query = on_query, .slow_query_ms = 100,
                                   .query_params = true});
  orm_step_t s[2] = {{0}};
  query(&fx, orm_pool_exec(fx.pool), "SELECT pg_sleep(0.15)", NULL, 0, &s[0]);
  char long_text[100];
  memset(long_text, 'z', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  orm_param_t p[4] = {ORM_TEXT("ada"), ORM_INT8(42), ORM_NULL, ORM_TEXT(long_text)};
  query(&fx, orm_pool_exec(fx.pool), "SELECT $1::text, $2::int8, $3::text, $4::text", p, 4,
        &s[1]);
  const event_t *slow = find("SELECT pg_sleep"), *fast = find("SELECT $1::text");
  assert_true(slow->slow);
  assert_true(slow->total_ns >= 100000000u);
  assert_false(fast->slow);
  assert_true(fast->has_params);
  assert_non_null(strstr(fast->params, "$1='ada'"));
  assert_non_null(strstr(fast->params, "$2=42"));
  assert_non_null(strstr(fast->params, "$3=NULL"));
  assert_non_null(strstr(fast->params, "$4='zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz...'"));
  assert_true(strlen(fast->params) < 256);
  orm_fx_close(&fx);
}

/* A statement that times out on the wire, one cancelled there and one
 * cancelled in the queue each give one event, with their code, and the
 * histograms count them. */
static void test_timeouts_and_cancels(void **state) {
  (void)state;
  memset(&events, 0, sizeof events);
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.on_query = on_query, .metrics = true,
                                   .max_conns = 1, .statement_timeout_ms = 100});
  orm_step_t s[3] = {{0}};
  orm_exec_t *exec = orm_pool_exec(fx.pool);
  assert_int_equal(orm_query_async(exec, "SELECT pg_sleep(5) /* t */", NULL, 0,
                                   orm_fx_on_step, &s[0], NULL),
                   0);
  orm_fx_wait(&fx, &s[0], 1);
  assert_int_equal(s[0].status, ORM_ETIMEDOUT);
  const event_t *e = find("SELECT pg_sleep(5) /* t */");
  assert_int_equal(e->status, ORM_ETIMEDOUT);
  assert_int_equal(e->rows, -1);
  assert_true(e->total_ns >= 100000000u);

  /* On the wire, then one behind it in the queue (one connection). */
  orm_future_t *f1 = NULL, *f2 = NULL;
  assert_int_equal(orm_query_async(exec, "SELECT pg_sleep(0.05) /* c1 */", NULL, 0,
                                   orm_fx_on_step, &s[1], &f1),
                   0);
  orm_fx_run_ms(&fx, 20);
  assert_int_equal(orm_query_async(exec, "SELECT 1 /* c2 */", NULL, 0, orm_fx_on_step,
                                   &s[2], &f2),
                   0);
  assert_int_equal(orm_future_cancel(f2), 0);
  assert_int_equal(orm_future_cancel(f1), 0);
  orm_fx_wait(&fx, &s[1], 2);
  assert_int_equal(find("SELECT pg_sleep(0.05) /* c1 */")->status, ORM_ECANCELED);
  assert_int_equal(find("SELECT 1 /* c2 */")->status, ORM_ECANCELED);
  size_t n = 0;
  for (size_t i = 0; i < events.n; i++)
    n += strstr(events.ev[i].text, "/* c") != NULL;
  assert_int_equal(n, 2);

  char buf[32768];
  int len = orm_pool_metrics(fx.pool, NULL, buf, sizeof buf);
  assert_true(len > 0 && (size_t)len < sizeof buf);
  assert_non_null(strstr(buf, "\nuvorm_timeouts_total 1\n"));
  assert_non_null(strstr(buf, "\nuvorm_cancels_total 2\n"));
  /* Three raw statements measured, the one that timed out among them. */
  const char *c = strstr(buf, "uvorm_query_duration_seconds_count{operation=\"query\"}");
  assert_non_null(c);
  assert_true(atoi(strchr(c, '}') + 1) >= 3);
  orm_future_release(f1);
  orm_future_release(f2);
  orm_fx_close(&fx);
}

static size_t plans_for(const char *text) {
  size_t n = 0;
  for (size_t i = 0; i < events.n; i++)
    n += events.ev[i].has_plan && strncmp(events.ev[i].text, text, strlen(text)) == 0;
  return n;
}

static const event_t *plan_for(const char *text) {
  for (size_t i = 0; i < events.n; i++)
    if (events.ev[i].has_plan && strncmp(events.ev[i].text, text, strlen(text)) == 0)
      return &events.ev[i];
  return NULL;
}

static void wait_plan(orm_fx_t *fx, const char *text) {
  uv_update_time(&fx->loop);
  uint64_t end = uv_now(&fx->loop) + 5000;
  while (plan_for(text) == NULL) {
    uv_run(&fx->loop, UV_RUN_ONCE);
    if (uv_now(&fx->loop) > end)
      fail_msg("no plan for \"%s\"", text);
  }
}

/* explain_slow: the first slow run of a text gets its plan, with the same
 * values, once; a write is planned, not run; what EXPLAIN does not take
 * gets none. */
static void test_explain(void **state) {
  (void)state;
  memset(&events, 0, sizeof events);
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 0,
              &(orm_pool_config_t){.on_query = on_query, .slow_query_ms = 50,
                                   .explain_slow = true});
  orm_fx_sql(&fx, "CREATE TABLE t (id int PRIMARY KEY, v text)");
  orm_fx_sql(&fx, "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g");
  orm_param_t p[1] = {ORM_INT8(7)};
  const char *slow_read = "SELECT v, pg_sleep(0.06) FROM t WHERE id = $1::int8";
  for (int i = 0; i < 2; i++) {
    orm_step_t s = {0};
    query(&fx, orm_pool_exec(fx.pool), slow_read, p, 1, &s);
    assert_int_equal(s.status, 0);
  }
  wait_plan(&fx, slow_read);
  orm_fx_run_ms(&fx, 100);
  const event_t *e = plan_for(slow_read);
  assert_true(e->slow);
  assert_string_equal(e->op, "SELECT");
  assert_non_null(strstr(e->plan, "Index Scan"));
  assert_non_null(strstr(e->plan, "t_pkey"));
  assert_int_equal(plans_for(slow_read), 1); /* once per text */
  assert_non_null(find("EXPLAIN SELECT v")); /* the EXPLAIN's own event */

  /* A slow write: planned, not run twice. A second later (the rate). */
  orm_fx_run_ms(&fx, 1000);
  const char *slow_write = "INSERT INTO t SELECT 1000, 'w' FROM pg_sleep(0.06)";
  orm_step_t w = {0};
  query(&fx, orm_pool_exec(fx.pool), slow_write, NULL, 0, &w);
  assert_int_equal(w.status, 0);
  wait_plan(&fx, slow_write);
  assert_non_null(strstr(plan_for(slow_write)->plan, "Insert on t"));
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM t WHERE id = 1000"), 1);

  /* Not a statement EXPLAIN takes: no plan. */
  orm_fx_run_ms(&fx, 1000);
  orm_step_t d = {0};
  query(&fx, orm_pool_exec(fx.pool), "DO $$ BEGIN PERFORM pg_sleep(0.06); END $$", NULL, 0, &d);
  orm_fx_run_ms(&fx, 300);
  assert_true(find("DO $$")->slow);
  assert_int_equal(plans_for("DO $$"), 0);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_statements),
      cmocka_unit_test(test_replays),
      cmocka_unit_test(test_sync_each),
      cmocka_unit_test(test_model_calls),
      cmocka_unit_test(test_slow_and_params),
      cmocka_unit_test(test_timeouts_and_cancels),
      cmocka_unit_test(test_explain),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
