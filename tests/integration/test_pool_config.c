/* Pool settings and less travelled paths against a real server: the acquire
 * timeout, growing to max_conns and shrinking back after idle_timeout_ms,
 * max_lifetime_ms, health checks of idle connections, no_prepare, named
 * statements after a reconnect, Parse failures without pipelining, cancels
 * of statements queued behind others on one connection, orm_future_all over
 * real queries, many transactions queueing for few connections; and, found
 * in review: per-future deadlines under pool timeouts, cancelled COMMIT and
 * ROLLBACK, cancels that land on the wrong statement, and which connection
 * idle_timeout_ms closes when another one is broken.
 *
 * Every pool connection carries application_name=APP so that the server's
 * own view (pg_stat_activity) can be checked from a blocking admin
 * connection that is not counted. */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include <uvorm.h>

#define APP "uvorm_cfg_test"

/* Per test, on the heap: a test that fails half-way abandons its loop
 * (never runs it again, so no callback reaches a dead stack frame) and the
 * next test starts on a fresh one. */
static uv_loop_t *loop;
static orm_pool_t *pool;
static int closed;
static char conninfo[4096];
static PGconn *adm;

/* Wakes the loop every few milliseconds so waits can check their deadline
 * (the pool's poll handles keep it alive but may stay silent), and lets a
 * test sample the pool while work runs. */
static uv_timer_t *ticker;
static void (*tick_hook)(void);

static void on_closed(orm_pool_t *p, void *data) {
  (void)p;
  (void)data;
  closed++;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
  if (tick_hook != NULL)
    tick_hook();
}

/* ---- conninfo with our application_name ---------------------------------- */

static size_t put_pair(char *out, size_t cap, const char *key,
                       const char *value) {
  size_t n = 0;
  int w = snprintf(out, cap, "%s='", key);
  assert_true(w > 0 && (size_t)w < cap);
  n = (size_t)w;
  for (const char *v = value; *v != '\0'; v++) {
    assert_true(n + 4 < cap);
    if (*v == '\\' || *v == '\'')
      out[n++] = '\\';
    out[n++] = *v;
  }
  assert_true(n + 3 < cap);
  out[n++] = '\'';
  out[n++] = ' ';
  out[n] = '\0';
  return n;
}

static const char *pool_conninfo(void) {
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(orm_test_dsn(), &err);
  if (opts == NULL)
    fail_msg("cannot parse UVORM_TEST_DSN: %s", err ? err : "out of memory");
  size_t len = 0;
  conninfo[0] = '\0';
  for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
    if (o->val != NULL && strcmp(o->keyword, "application_name") != 0)
      len += put_pair(conninfo + len, sizeof conninfo - len, o->keyword,
                      o->val);
  put_pair(conninfo + len, sizeof conninfo - len, "application_name", APP);
  PQconninfoFree(opts);
  return conninfo;
}

/* ---- the admin connection: blocking, outside the pool ------------------- */

static PGconn *admin_conn(void) {
  if (adm == NULL) {
    adm = PQconnectdb(orm_test_dsn());
    if (PQstatus(adm) != CONNECTION_OK)
      fail_msg("admin connection: %s", PQerrorMessage(adm));
  }
  return adm;
}

static void admin_exec(const char *sql) {
  PGresult *r = PQexec(admin_conn(), sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK &&
      PQresultStatus(r) != PGRES_TUPLES_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(adm));
  PQclear(r);
}

/* The first value of a one-row answer, as an integer. */
static int64_t admin_int(const char *fmt, ...) {
  char sql[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  PGresult *r = PQexec(admin_conn(), sql);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
    fail_msg("%s: %s", sql, PQerrorMessage(adm));
  int64_t v = PQgetisnull(r, 0, 0) ? -1 : atoll(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

/* Waits until the backend is gone (PostgreSQL 14+ takes a timeout). */
static void admin_terminate(int64_t pid) {
  assert_int_equal(
      admin_int("SELECT pg_terminate_backend(%lld, 5000)::int", (long long)pid),
      1);
}

static int64_t server_conns(void) {
  return admin_int("SELECT count(*) FROM pg_stat_activity "
                   "WHERE application_name = '" APP "'");
}

static int64_t server_idle_in_tx(void) {
  return admin_int("SELECT count(*) FROM pg_stat_activity "
                   "WHERE application_name = '" APP "' "
                   "AND state LIKE 'idle in transaction%%'");
}

/* ---- pool and loop ------------------------------------------------------ */

static void free_handle(uv_handle_t *h) { free(h); }

static void start_loop(void) {
  loop = malloc(sizeof *loop);
  ticker = malloc(sizeof *ticker);
  assert_non_null(loop);
  assert_non_null(ticker);
  assert_int_equal(uv_loop_init(loop), 0);
  closed = 0;
  tick_hook = NULL;
  assert_int_equal(uv_timer_init(loop, ticker), 0);
  assert_int_equal(uv_timer_start(ticker, on_tick, 5, 5), 0);
}

static void open_pool(orm_pool_config_t cfg) {
  start_loop();
  cfg.conninfo = pool_conninfo();
  assert_int_equal(orm_pool_open(&pool, loop, &cfg), 0);
}

static void admin_close(void) {
  if (adm != NULL) {
    PQfinish(adm);
    adm = NULL;
  }
}

static void close_pool(void) {
  tick_hook = NULL;
  uv_close((uv_handle_t *)ticker, free_handle);
  ticker = NULL;
  assert_int_equal(orm_pool_close(pool, on_closed), 0);
  orm_test_run(loop, 10000);
  assert_int_equal(closed, 1);
  orm_test_loop_close(loop);
  free(loop);
  loop = NULL;
  pool = NULL;
  admin_close();
}

/* After a failure: leave the loop, its pool and handles as they are. */
static int abandon_leftovers(void **state) {
  (void)state;
  loop = NULL;
  pool = NULL;
  ticker = NULL;
  tick_hook = NULL;
  admin_close();
  return 0;
}

static void run_ms(uint64_t ms) {
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + ms;
  while (uv_now(loop) < end)
    uv_run(loop, UV_RUN_ONCE);
}

static void run_until_count(const int *count, int target, uint64_t timeout_ms) {
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + timeout_ms;
  while (*count < target) {
    if (uv_now(loop) > end)
      fail_msg("waited %llu ms for %d of %d", (unsigned long long)timeout_ms,
               *count, target);
    uv_run(loop, UV_RUN_ONCE);
  }
}

static void run_until(const int *flag, uint64_t timeout_ms) {
  run_until_count(flag, 1, timeout_ms);
}

static orm_pool_stats_t stats(void) {
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(pool, &st), 0);
  return st;
}

static unsigned total_conns(const orm_pool_stats_t *st) {
  return st->conns_connecting + st->conns_idle + st->conns_busy +
         st->conns_in_tx + st->conns_broken;
}

/* Runs the loop until `pred` holds, checking every few milliseconds. */
static int wait_for(int (*pred)(void), uint64_t timeout_ms) {
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + timeout_ms;
  while (!pred()) {
    if (uv_now(loop) > end)
      return 0;
    run_ms(10);
  }
  return 1;
}

/* ---- one statement ------------------------------------------------------ */

typedef struct {
  int done;
  int status;
  char sqlstate[6];
  char message[160];
  int64_t value; /* column 0 of row 0, when it is an integer */
  int64_t pid;   /* column 1 of row 0, when there is one */
  uint64_t completed_at;
} probe_t;

static void on_probe(orm_future_t *f, void *data) {
  probe_t *p = data;
  p->done++;
  p->status = orm_future_status(f);
  p->completed_at = uv_now(loop);
  if (p->status == 0) {
    orm_result_t *r = orm_future_value(f);
    if (orm_result_rows(r) > 0 && orm_result_cols(r) > 0)
      orm_result_int(r, 0, 0, &p->value);
    if (orm_result_rows(r) > 0 && orm_result_cols(r) > 1)
      orm_result_int(r, 0, 1, &p->pid);
  } else {
    const orm_error_t *e = orm_future_error(f);
    snprintf(p->sqlstate, sizeof p->sqlstate, "%s", e->sqlstate);
    snprintf(p->message, sizeof p->message, "%s", e->message);
  }
}

static probe_t run_sql(const char *sql, const orm_param_t *params, size_t n) {
  probe_t p = {0};
  assert_int_equal(orm_query_async(pool, sql, params, n, on_probe, &p, NULL), 0);
  run_until(&p.done, 10000);
  return p;
}

static int64_t scalar(const char *sql) {
  probe_t p = run_sql(sql, NULL, 0);
  if (p.status != 0)
    fail_msg("%s: %s %s %s", sql, orm_err_name(p.status), p.sqlstate,
             p.message);
  return p.value;
}

static int64_t backend_pid(void) {
  return scalar("SELECT pg_backend_pid()::int8");
}

/* ---- 1. acquire_timeout_ms ---------------------------------------------- */

static void test_acquire_timeout(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){.min_conns = 1,
                                .max_conns = 1,
                                .no_pipeline = true,
                                .acquire_timeout_ms = 200});
  admin_exec("DROP TABLE IF EXISTS cfg_acq; CREATE TABLE cfg_acq (id int)");
  backend_pid(); /* connected */
  probe_t sleeper = {0}, queued = {0};
  orm_param_t v = ORM_INT4(1);
  uv_update_time(loop);
  uint64_t start = uv_now(loop);
  assert_int_equal(orm_query_async(pool, "SELECT 7 FROM pg_sleep(1)", NULL, 0,
                                   on_probe, &sleeper, NULL),
                   0);
  assert_int_equal(orm_query_async(pool, "INSERT INTO cfg_acq VALUES ($1)", &v,
                                   1, on_probe, &queued, NULL),
                   0);
  run_until(&queued.done, 3000);
  uint64_t waited = queued.completed_at - start;
  assert_int_equal(queued.status, ORM_ETIMEDOUT);
  assert_true(waited >= 180 && waited < 700);
  assert_int_equal(sleeper.done, 0); /* the connection really was busy */
  /* Once sent, a request is past its acquire deadline: the second-long
   * sleep must not time out at 200 ms. */
  run_until(&sleeper.done, 3000);
  assert_int_equal(sleeper.status, 0);
  assert_int_equal(sleeper.value, 7);
  /* The timed-out INSERT was never sent, not even late. */
  run_ms(100);
  assert_int_equal(admin_int("SELECT count(*) FROM cfg_acq"), 0);
  assert_int_equal(queued.done, 1);
  orm_pool_stats_t st = stats();
  assert_int_equal(st.timeouts, 1);
  assert_int_equal(scalar("SELECT 5"), 5); /* and the pool carries on */
  admin_exec("DROP TABLE cfg_acq");
  close_pool();
}

/* ---- 2. growing from min_conns to max_conns ------------------------------ */

static unsigned seen_max_conns;
static int64_t seen_max_server;

static void sample_growth(void) {
  orm_pool_stats_t st = stats();
  if (total_conns(&st) > seen_max_conns)
    seen_max_conns = total_conns(&st);
  int64_t n = server_conns();
  if (n > seen_max_server)
    seen_max_server = n;
}

/* Issues `n` slow statements at once, each answering its own value. */
static void slow_burst(int n, const char *sql, uint64_t timeout_ms) {
  probe_t *p = calloc((size_t)n, sizeof *p);
  int done = 0;
  for (int i = 0; i < n; i++) {
    orm_param_t v = ORM_INT4(i * 11);
    assert_int_equal(orm_query_async(pool, sql, &v, 1, on_probe, &p[i], NULL),
                     0);
  }
  uv_update_time(loop);
  uint64_t end = uv_now(loop) + timeout_ms;
  while (done < n) {
    if (uv_now(loop) > end)
      fail_msg("burst: %d of %d done", done, n);
    uv_run(loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < n; i++)
      done += p[i].done;
  }
  for (int i = 0; i < n; i++) {
    if (p[i].status != 0)
      fail_msg("burst %d: %s %s", i, orm_err_name(p[i].status), p[i].message);
    assert_int_equal(p[i].done, 1);
    assert_int_equal(p[i].value, i * 11);
  }
  free(p);
}

static void test_grows_to_max(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){
      .min_conns = 1, .max_conns = 4, .no_pipeline = true});
  backend_pid();
  orm_pool_stats_t st = stats();
  assert_int_equal(total_conns(&st), 1);
  assert_int_equal(server_conns(), 1);

  seen_max_conns = 0;
  seen_max_server = 0;
  tick_hook = sample_growth;
  uint64_t t0 = uv_hrtime();
  slow_burst(12, "SELECT $1::int FROM pg_sleep(0.2)", 5000);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  tick_hook = NULL;
  print_message("12 x 200 ms on up to 4 connections: %llu ms\n",
                (unsigned long long)ms);
  /* Serially it would take 2.4 s; four connections need three rounds. */
  assert_true(ms < 1500);
  assert_int_equal(seen_max_conns, 4);
  assert_true(seen_max_server <= 4);
  assert_true(seen_max_server >= 3);
  st = stats();
  assert_int_equal(st.connects, 4);
  assert_int_equal(total_conns(&st), 4);
  assert_int_equal(server_conns(), 4);
  assert_int_equal(st.errors, 0);
  close_pool();
}

/* ---- 3. idle_timeout_ms --------------------------------------------------- */

static int shrunk_to_one(void) {
  orm_pool_stats_t st = stats();
  return total_conns(&st) == 1 && server_conns() == 1;
}

static void test_idle_timeout_shrinks_to_min(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){.min_conns = 1,
                                .max_conns = 4,
                                .no_pipeline = true,
                                .idle_timeout_ms = 300});
  backend_pid();
  slow_burst(8, "SELECT $1::int FROM pg_sleep(0.1)", 5000);
  orm_pool_stats_t st = stats();
  assert_int_equal(total_conns(&st), 4);
  /* The maintenance timer runs every second. */
  assert_true(wait_for(shrunk_to_one, 3000));
  st = stats();
  uint64_t connects = st.connects;
  assert_int_equal(st.conns_idle, 1);
  /* The minimum stays: not closed, not churned. */
  run_ms(1500);
  st = stats();
  assert_int_equal(total_conns(&st), 1);
  assert_int_equal(st.connects, connects);
  assert_int_equal(server_conns(), 1);
  assert_int_equal(scalar("SELECT 3"), 3);
  close_pool();
}

/* ---- 4. max_lifetime_ms --------------------------------------------------- */

typedef struct {
  int outstanding;
  int ok;
  int failed;
  int last_error;
  int64_t pids[32];
  int npids;
} lifetime_load_t;

static lifetime_load_t lload;

static void on_lifetime(orm_future_t *f, void *data) {
  (void)data;
  lload.outstanding = 0;
  int st = orm_future_status(f);
  if (st != 0) {
    lload.failed++;
    lload.last_error = st;
    return;
  }
  lload.ok++;
  int64_t pid = 0;
  orm_result_int(orm_future_value(f), 0, 0, &pid);
  if (lload.npids == 0 || lload.pids[lload.npids - 1] != pid) {
    if (lload.npids < 32)
      lload.pids[lload.npids++] = pid;
  }
}

/* One statement at a time, so the connection is mostly idle. */
static void lifetime_tick(void) {
  if (lload.outstanding)
    return;
  lload.outstanding = 1;
  assert_int_equal(orm_query_async(pool, "SELECT pg_backend_pid()::int8",
                                   NULL, 0, on_lifetime, NULL, NULL),
                   0);
}

static void test_max_lifetime_retires(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){
      .min_conns = 1, .max_conns = 1, .max_lifetime_ms = 400});
  int64_t first = backend_pid();
  memset(&lload, 0, sizeof lload);
  tick_hook = lifetime_tick;
  run_ms(2600);
  tick_hook = NULL;
  while (lload.outstanding)
    uv_run(loop, UV_RUN_ONCE);
  print_message("lifetime: %d ok, %d failed, %d backends\n", lload.ok,
                lload.failed, lload.npids);
  if (lload.failed)
    fail_msg("%d requests failed (last %s)", lload.failed,
             orm_err_name(lload.last_error));
  assert_true(lload.ok > 20);
  /* Replaced at least once, and never went back to an old backend. */
  assert_true(lload.npids >= 2);
  for (int i = 0; i < lload.npids; i++)
    for (int j = 0; j < i; j++)
      assert_true(lload.pids[i] != lload.pids[j]);
  assert_true(lload.pids[lload.npids - 1] != first);
  orm_pool_stats_t st = stats();
  assert_true(st.connects >= 2);
  assert_int_equal(st.errors, 0);
  assert_true(server_conns() <= 1);
  /* Retired only once idle: a statement outliving the lifetime finishes. */
  probe_t p = run_sql("SELECT 9, pg_backend_pid()::int8 FROM pg_sleep(1.3)",
                      NULL, 0);
  assert_int_equal(p.status, 0);
  assert_int_equal(p.value, 9);
  close_pool();
}

/* ---- 5. health_check_ms --------------------------------------------------- */

static void health_check_case(bool no_pipeline) {
  open_pool((orm_pool_config_t){.min_conns = 1,
                                .max_conns = 1,
                                .no_pipeline = no_pipeline,
                                .health_check_ms = 200});
  int64_t pid = backend_pid();
  run_ms(400); /* idle longer than health_check_ms */
  /* Killed while the loop does not run: the pool cannot have noticed by the
   * time the next request is dispatched; only the health check can. */
  admin_terminate(pid);
  probe_t p = {0};
  assert_int_equal(orm_query_async(pool,
                                   "SELECT 21 * 2, pg_backend_pid()::int8",
                                   NULL, 0, on_probe, &p, NULL),
                   0);
  run_until(&p.done, 5000);
  if (p.status != 0)
    fail_msg("%s: the request went to the dead connection: %s %s",
             no_pipeline ? "no_pipeline" : "pipelined",
             orm_err_name(p.status), p.message);
  assert_int_equal(p.value, 42);
  assert_true(p.pid != pid);
  orm_pool_stats_t st = stats();
  assert_int_equal(st.errors, 0);
  assert_true(st.reconnects >= 1);
  close_pool();
}

static void test_health_check_pipelined(void **state) {
  (void)state;
  health_check_case(false);
}

static void test_health_check_unpipelined(void **state) {
  (void)state;
  health_check_case(true);
}

/* ---- 6. no_prepare ---------------------------------------------------------- */

static void test_no_prepare(void **state) {
  (void)state;
  /* Control: with named statements the same check does see them. */
  open_pool((orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_param_t v = ORM_INT4(20);
  assert_int_equal(run_sql("SELECT $1::int * 2", &v, 1).value, 40);
  assert_true(scalar("SELECT count(*) FROM pg_prepared_statements") >= 1);
  close_pool();

  open_pool((orm_pool_config_t){
      .min_conns = 1, .max_conns = 1, .no_prepare = true});
  for (int i = 0; i < 5; i++) {
    orm_param_t p = ORM_INT4(i);
    probe_t r = run_sql("SELECT $1::int * 2", &p, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.value, 2 * i);
  }
  /* One connection: this is the session that ran the statements above. */
  assert_int_equal(scalar("SELECT count(*) FROM pg_prepared_statements"), 0);

  run_sql("DROP TABLE IF EXISTS cfg_np", NULL, 0);
  assert_int_equal(
      run_sql("CREATE TABLE cfg_np (id int PRIMARY KEY)", NULL, 0).status, 0);
  assert_int_equal(
      run_sql("INSERT INTO cfg_np VALUES (1000000)", NULL, 0).status, 0);
  enum { N = 60 };
  probe_t probes[N];
  memset(probes, 0, sizeof probes);
  int done = 0;
  for (int i = 0; i < N; i++) {
    const char *sql = "INSERT INTO cfg_np VALUES ($1) RETURNING id";
    orm_param_t p = ORM_INT4(i);
    if (i == 10)
      sql = "INSRT INTO cfg_np VALUES ($1)"; /* 42601 */
    else if (i == 25)
      p = ORM_INT4(1000000); /* 23505 */
    else if (i == 40)
      sql = "SELECT 1 / ($1::int - 40)"; /* 22012 */
    assert_int_equal(
        orm_query_async(pool, sql, &p, 1, on_probe, &probes[i], NULL), 0);
  }
  while (done < N) {
    uv_run(loop, UV_RUN_ONCE);
    done = 0;
    for (int i = 0; i < N; i++)
      done += probes[i].done;
  }
  for (int i = 0; i < N; i++) {
    assert_int_equal(probes[i].done, 1);
    if (i == 10 || i == 25 || i == 40) {
      assert_int_equal(probes[i].status, ORM_ESERVER);
      continue;
    }
    if (probes[i].status != 0)
      fail_msg("neighbour %d failed: %s %s", i, probes[i].sqlstate,
               probes[i].message);
    assert_int_equal(probes[i].value, i);
  }
  assert_string_equal(probes[10].sqlstate, "42601");
  assert_string_equal(probes[25].sqlstate, "23505");
  assert_string_equal(probes[40].sqlstate, "22012");
  assert_int_equal(admin_int("SELECT count(*) FROM cfg_np"), N - 3 + 1);
  assert_int_equal(admin_int("SELECT count(DISTINCT id) FROM cfg_np"), N - 3 + 1);
  assert_true(stats().resends > 0); /* they did share segments */
  assert_int_equal(scalar("SELECT count(*) FROM pg_prepared_statements"), 0);
  admin_exec("DROP TABLE cfg_np");
  close_pool();
}

/* ---- 7. named statements after a reconnect -------------------------------- */

static int reconnected_idle(void) {
  orm_pool_stats_t st = stats();
  return st.reconnects >= 1 && st.conns_idle == 1;
}

static void reprepare_case(bool no_pipeline) {
  open_pool((orm_pool_config_t){
      .min_conns = 1, .max_conns = 1, .no_pipeline = no_pipeline});
  const char *sql = "SELECT $1::int + 1, pg_backend_pid()::int8";
  orm_param_t v = ORM_INT4(41);
  probe_t a = run_sql(sql, &v, 1);
  assert_int_equal(a.status, 0);
  assert_int_equal(a.value, 42);
  assert_int_equal(
      admin_int("SELECT count(*) FROM pg_stat_activity WHERE pid = %lld",
                (long long)a.pid),
      1);
  admin_terminate(a.pid);
  assert_true(wait_for(reconnected_idle, 3000));
  v = ORM_INT4(99);
  probe_t b = run_sql(sql, &v, 1);
  if (b.status != 0)
    fail_msg("after reconnect: %s %s %s", orm_err_name(b.status), b.sqlstate,
             b.message);
  assert_int_equal(b.value, 100);
  assert_true(b.pid != a.pid);
  orm_pool_stats_t st = stats();
  /* Prepared afresh, not rescued from "prepared statement does not exist". */
  assert_int_equal(st.resends, 0);
  assert_int_equal(st.errors, 0);
  probe_t c = run_sql("SELECT count(*) FROM pg_prepared_statements "
                      "WHERE statement = $1",
                      &ORM_TEXT(sql), 1);
  assert_int_equal(c.status, 0);
  assert_int_equal(c.value, 1);
  close_pool();
}

static void test_reprepare_after_reconnect(void **state) {
  (void)state;
  reprepare_case(false);
  reprepare_case(true);
}

/* ---- 8. a failed Parse without pipelining --------------------------------- */

static void test_parse_error_unpipelined(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){
      .min_conns = 1, .max_conns = 1, .no_pipeline = true});
  int64_t pid = backend_pid();
  orm_param_t v = ORM_INT4(1);
  for (int round = 0; round < 2; round++) {
    /* Twice: the statement's Parse is tried again, and fails the same. */
    probe_t bad = run_sql("SELEC $1::int", &v, 1);
    assert_int_equal(bad.status, ORM_ESERVER);
    assert_string_equal(bad.sqlstate, "42601");
    assert_non_null(strstr(bad.message, "syntax"));
    probe_t good = run_sql("SELECT $1::int + 1, pg_backend_pid()::int8", &v, 1);
    assert_int_equal(good.status, 0);
    assert_int_equal(good.value, 2);
    assert_int_equal(good.pid, pid); /* the same connection served it */
  }
  orm_pool_stats_t st = stats();
  assert_int_equal(st.connects, 1);
  assert_int_equal(st.errors, 2);
  /* Failed where it failed: not sent on to Bind/Execute and retried. */
  assert_int_equal(st.resends, 0);
  close_pool();
}

/* ---- 9. cancelling a statement queued behind others on its connection ----- */

static void test_cancel_behind_others(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  backend_pid();
  probe_t sleeper = {0}, q[5];
  memset(q, 0, sizeof q);
  orm_future_t *f[5];
  assert_int_equal(orm_query_async(pool, "SELECT 100 FROM pg_sleep(0.3)", NULL,
                                   0, on_probe, &sleeper, NULL),
                   0);
  for (int i = 0; i < 5; i++) {
    orm_param_t v = ORM_INT4(i + 1);
    assert_int_equal(orm_query_async(pool, "SELECT $1::int * 10", &v, 1,
                                     on_probe, &q[i], &f[i]),
                     0);
  }
  run_ms(60);
  orm_pool_stats_t st = stats();
  assert_int_equal(st.in_flight, 6); /* all sent, behind the sleep */
  assert_int_equal(orm_future_cancel(f[2]), 0);
  assert_int_equal(q[2].done, 0); /* never inside the call */
  int done = 0;
  while (done < 6) {
    uv_run(loop, UV_RUN_ONCE);
    done = sleeper.done;
    for (int i = 0; i < 5; i++)
      done += q[i].done;
  }
  run_ms(100); /* nothing arrives twice */
  assert_int_equal(sleeper.done, 1);
  assert_int_equal(sleeper.status, 0);
  assert_int_equal(sleeper.value, 100);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(q[i].done, 1);
    if (i == 2) {
      assert_int_equal(q[i].status, ORM_ECANCELED);
      continue;
    }
    assert_int_equal(q[i].status, 0);
    assert_int_equal(q[i].value, (i + 1) * 10);
  }
  assert_int_equal(orm_future_state(f[2]), ORM_FUTURE_CANCELLED);
  assert_int_equal(orm_future_cancel(f[2]), ORM_ESTATE);
  for (int i = 0; i < 5; i++)
    orm_future_release(f[i]);
  st = stats();
  assert_int_equal(st.cancels, 1);
  assert_int_equal(st.errors, 0);
  assert_int_equal(scalar("SELECT 8"), 8);
  close_pool();
}

/* A cancel for a statement the server already finished must not land on
 * what the connection runs next. Here that is a transaction's statement,
 * which the pool never re-sends. */
typedef struct {
  probe_t begin, sleep, commit;
  orm_tx_t *tx;
  int last_burst_done;
} stray_t;

static stray_t stray;

static void stray_on_commit(orm_future_t *f, void *data) {
  on_probe(f, &stray.commit);
}

static void stray_on_sleep(orm_future_t *f, void *data) {
  on_probe(f, &stray.sleep);
  assert_int_equal(orm_tx_commit_async(stray.tx, stray_on_commit, NULL, NULL),
                   0);
}

static void stray_on_begin(orm_future_t *f, void *data) {
  stray.begin.done++;
  stray.begin.status = orm_future_status(f);
  if (stray.begin.status != 0) {
    snprintf(stray.begin.sqlstate, sizeof stray.begin.sqlstate, "%s",
             orm_future_error(f)->sqlstate);
    stray.sleep.done = stray.commit.done = 1;
    return;
  }
  stray.tx = orm_future_value(f);
  assert_int_equal(orm_tx_query_async(stray.tx,
                                      "SELECT 5 FROM pg_sleep(0.2)", NULL, 0,
                                      stray_on_sleep, NULL, NULL),
                   0);
}

static void stray_on_last(orm_future_t *f, void *data) {
  on_probe(f, data);
  /* The burst is over: the connection's next work is a transaction. */
  assert_int_equal(orm_tx_begin_async(pool, stray_on_begin, NULL, NULL), 0);
}

static void test_cancel_does_not_stray(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  backend_pid();
  memset(&stray, 0, sizeof stray);
  probe_t sleeper = {0}, q[5];
  memset(q, 0, sizeof q);
  orm_future_t *victim;
  assert_int_equal(orm_query_async(pool, "SELECT 1 FROM pg_sleep(0.3)", NULL,
                                   0, on_probe, &sleeper, NULL),
                   0);
  for (int i = 0; i < 5; i++) {
    orm_param_t v = ORM_INT4(i);
    assert_int_equal(
        orm_query_async(pool, "SELECT $1::int", &v, 1,
                        i == 4 ? stray_on_last : on_probe, &q[i],
                        i == 2 ? &victim : NULL),
        0);
  }
  run_ms(60);
  assert_int_equal(orm_future_cancel(victim), 0);
  orm_future_release(victim);
  run_until(&stray.commit.done, 5000);
  close_pool(); /* before asserting: a failure must not leave work behind */
  if (stray.begin.status != 0)
    fail_msg("BEGIN failed: %s %s", orm_err_name(stray.begin.status),
             stray.begin.sqlstate);
  if (stray.sleep.status != 0)
    fail_msg("the transaction's statement was hit by a cancel meant for "
             "another one: %s %s %s",
             orm_err_name(stray.sleep.status), stray.sleep.sqlstate,
             stray.sleep.message);
  assert_int_equal(stray.sleep.value, 5);
  assert_int_equal(stray.commit.status, 0);
}

/* ---- 10. orm_future_all over real queries -------------------------------- */

typedef struct {
  int children_done;
  int all_calls;
  int children_done_at_all;
  int all_status;
} join_t;

static join_t join;

static void on_child(orm_future_t *f, void *data) {
  (void)f;
  (void)data;
  join.children_done++;
}

static void on_all(orm_future_t *f, void *data) {
  (void)data;
  join.all_calls++;
  join.all_status = orm_future_status(f);
  join.children_done_at_all = join.children_done;
}

static void test_future_all_real(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){.min_conns = 4, .max_conns = 4});
  enum { N = 100, BAD = 57 };
  for (int round = 0; round < 2; round++) {
    orm_future_t *f[N];
    memset(&join, 0, sizeof join);
    for (int i = 0; i < N; i++) {
      orm_param_t v = ORM_INT8(i);
      const char *sql = round == 0 && i == BAD ? "SELECT 1 / ($1::int8 - 57)"
                                               : "SELECT $1::int8 * 3 + 7";
      assert_int_equal(
          orm_query_async(pool, sql, &v, 1, on_child, NULL, &f[i]), 0);
    }
    orm_future_t *all;
    assert_int_equal(orm_future_all(f, N, on_all, NULL, &all), 0);
    run_until(&join.all_calls, 5000);
    run_ms(20);
    assert_int_equal(join.all_calls, 1);
    assert_int_equal(join.children_done_at_all, N);
    if (round == 0) {
      assert_int_equal(join.all_status, ORM_ESERVER);
      assert_int_equal(orm_future_state(all), ORM_FUTURE_FAILED);
    } else {
      assert_int_equal(join.all_status, 0);
      assert_int_equal(orm_future_state(all), ORM_FUTURE_RESOLVED);
    }
    for (int i = 0; i < N; i++) {
      if (round == 0 && i == BAD) {
        assert_int_equal(orm_future_status(f[i]), ORM_ESERVER);
        assert_string_equal(orm_future_error(f[i])->sqlstate, "22012");
      } else {
        int64_t got = -1;
        assert_int_equal(orm_future_status(f[i]), 0);
        assert_int_equal(orm_result_int(orm_future_value(f[i]), 0, 0, &got),
                         0);
        assert_int_equal(got, i * 3 + 7);
      }
      orm_future_release(f[i]);
    }
    orm_future_release(all);
  }
  close_pool();
}

/* ---- 11. many transactions, few connections ------------------------------ */

enum { NTX = 20, NCANCEL = 3 };

typedef struct {
  int id;
  int begin_calls;
  int begin_status;
  int status; /* of the last step */
  int committed;
  int finished;
  orm_tx_t *tx;
  orm_future_t *begin;
} txjob_t;

static txjob_t jobs[NTX];
static int jobs_finished;
static int cancels_done;
static unsigned seen_max_in_tx;
static unsigned seen_max_total;

static void sample_tx(void) {
  orm_pool_stats_t st = stats();
  if (st.conns_in_tx > seen_max_in_tx)
    seen_max_in_tx = st.conns_in_tx;
  if (total_conns(&st) > seen_max_total)
    seen_max_total = total_conns(&st);
}

static void job_finish(txjob_t *j, int status) {
  j->status = status;
  j->finished++;
  jobs_finished++;
}

static void on_job_commit(orm_future_t *f, void *data) {
  txjob_t *j = data;
  int st = orm_future_status(f);
  j->committed = st == 0;
  job_finish(j, st);
}

static void on_job_sleep(orm_future_t *f, void *data) {
  txjob_t *j = data;
  int st = orm_future_status(f);
  if (st != 0) {
    job_finish(j, st);
    assert_int_equal(orm_tx_rollback_async(j->tx, NULL, NULL, NULL), 0);
    return;
  }
  assert_int_equal(orm_tx_commit_async(j->tx, on_job_commit, j, NULL), 0);
}

static void on_job_insert(orm_future_t *f, void *data) {
  txjob_t *j = data;
  int st = orm_future_status(f);
  if (st != 0) {
    job_finish(j, st);
    assert_int_equal(orm_tx_rollback_async(j->tx, NULL, NULL, NULL), 0);
    return;
  }
  /* Hold the connection a little so that the others really queue. */
  assert_int_equal(orm_tx_query_async(j->tx, "SELECT pg_sleep(0.05)", NULL, 0,
                                      on_job_sleep, j, NULL),
                   0);
}

static void on_job_begin(orm_future_t *f, void *data) {
  txjob_t *j = data;
  j->begin_calls++;
  j->begin_status = orm_future_status(f);
  if (j->begin_status != 0) {
    job_finish(j, j->begin_status);
    return;
  }
  if (!cancels_done) {
    /* The first BEGIN is in: the last ones still wait for a connection. */
    cancels_done = 1;
    for (int i = NTX - NCANCEL; i < NTX; i++) {
      assert_int_equal(orm_future_state(jobs[i].begin), ORM_FUTURE_PENDING);
      assert_int_equal(orm_future_cancel(jobs[i].begin), 0);
    }
  }
  j->tx = orm_future_value(f);
  orm_param_t v = ORM_INT4(j->id);
  assert_int_equal(orm_tx_query_async(j->tx, "INSERT INTO cfg_tx VALUES ($1)",
                                      &v, 1, on_job_insert, j, NULL),
                   0);
}

static void test_many_transactions(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){.min_conns = 1, .max_conns = 4});
  admin_exec("DROP TABLE IF EXISTS cfg_tx; CREATE TABLE cfg_tx (id int)");
  backend_pid();
  memset(jobs, 0, sizeof jobs);
  jobs_finished = 0;
  cancels_done = 0;
  seen_max_in_tx = seen_max_total = 0;
  tick_hook = sample_tx;
  for (int i = 0; i < NTX; i++) {
    jobs[i].id = i;
    assert_int_equal(
        orm_tx_begin_async(pool, on_job_begin, &jobs[i], &jobs[i].begin), 0);
  }
  assert_int_equal(stats().queued, NTX);
  run_until_count(&jobs_finished, NTX, 10000);
  tick_hook = NULL;
  run_ms(50);
  int committed = 0;
  for (int i = 0; i < NTX; i++) {
    assert_int_equal(jobs[i].begin_calls, 1);
    assert_int_equal(jobs[i].finished, 1);
    if (i >= NTX - NCANCEL) {
      assert_int_equal(jobs[i].begin_status, ORM_ECANCELED);
    } else {
      if (!jobs[i].committed)
        fail_msg("transaction %d: %s", i, orm_err_name(jobs[i].status));
      committed++;
    }
    orm_future_release(jobs[i].begin);
  }
  assert_int_equal(committed, NTX - NCANCEL);
  assert_int_equal(admin_int("SELECT count(*) FROM cfg_tx"), NTX - NCANCEL);
  assert_int_equal(admin_int("SELECT count(DISTINCT id) FROM cfg_tx"),
                   NTX - NCANCEL);
  assert_int_equal(admin_int("SELECT count(*) FROM cfg_tx WHERE id >= %d",
                             NTX - NCANCEL),
                   0);
  assert_int_equal(seen_max_in_tx, 4);
  assert_true(seen_max_total <= 4);
  orm_pool_stats_t st = stats();
  assert_int_equal(st.conns_in_tx, 0);
  assert_true(total_conns(&st) <= 4);
  assert_int_equal(server_idle_in_tx(), 0);
  assert_true(server_conns() <= 4);
  admin_exec("DROP TABLE cfg_tx");
  close_pool();
}

/* ---- 12. found in review ---------------------------------------------------- */

/* orm_future_timeout() promises ETIMEDOUT `timeout_ms` from now. A pool with
 * an acquire or statement timeout of its own must not drop or replace that
 * deadline when it sends the request. */
static void deadline_case(orm_pool_config_t cfg, const char *what) {
  open_pool(cfg);
  backend_pid();
  probe_t p = {0};
  orm_future_t *f;
  uv_update_time(loop);
  uint64_t start = uv_now(loop);
  assert_int_equal(orm_query_async(pool, "SELECT 1 FROM pg_sleep(1.5)", NULL,
                                   0, on_probe, &p, &f),
                   0);
  assert_int_equal(orm_future_timeout(f, 200), 0);
  run_until(&p.done, 6000);
  uint64_t took = p.completed_at - start;
  orm_future_release(f);
  close_pool();
  if (p.status != ORM_ETIMEDOUT)
    fail_msg("%s: a 200 ms orm_future_timeout ended as %s after %llu ms", what,
             orm_err_name(p.status), (unsigned long long)took);
  assert_true(took < 1000);
}

static void test_future_timeout_kept_by_acquire_timeout(void **state) {
  (void)state;
  deadline_case((orm_pool_config_t){.min_conns = 1,
                                    .max_conns = 1,
                                    .acquire_timeout_ms = 5000},
                "acquire_timeout_ms");
}

static void test_future_timeout_kept_by_statement_timeout(void **state) {
  (void)state;
  deadline_case((orm_pool_config_t){.min_conns = 1,
                                    .max_conns = 1,
                                    .statement_timeout_ms = 5000},
                "statement_timeout_ms");
}

/* A COMMIT or ROLLBACK cancelled before it was sent ends the transaction's
 * hold on the connection; the connection must not go back to the pool with
 * the transaction still open on the server. */
static void tx_end_cancelled_case(int commit) {
  open_pool((orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  admin_exec("DROP TABLE IF EXISTS cfg_end; CREATE TABLE cfg_end (id int)");
  probe_t b = {0};
  orm_future_t *bf;
  assert_int_equal(orm_tx_begin_async(pool, on_probe, &b, &bf), 0);
  run_until(&b.done, 5000);
  assert_int_equal(b.status, 0);
  orm_tx_t *tx = orm_future_value(bf);
  orm_future_release(bf);
  probe_t ins = {0};
  assert_int_equal(orm_tx_query_async(tx, "INSERT INTO cfg_end VALUES (1)",
                                      NULL, 0, on_probe, &ins, NULL),
                   0);
  run_until(&ins.done, 5000);
  assert_int_equal(ins.status, 0);

  probe_t end = {0};
  orm_future_t *ef;
  assert_int_equal(commit ? orm_tx_commit_async(tx, on_probe, &end, &ef)
                          : orm_tx_rollback_async(tx, on_probe, &end, &ef),
                   0);
  assert_int_equal(orm_future_cancel(ef), 0);
  orm_future_release(ef);
  run_until(&end.done, 5000);
  assert_int_equal(end.status, ORM_ECANCELED);
  run_ms(50);

  /* The pool's only connection, used by the next request. */
  probe_t after = run_sql("INSERT INTO cfg_end VALUES (2)", NULL, 0);
  assert_int_equal(after.status, 0);
  run_ms(50);
  int64_t open_tx = server_idle_in_tx();
  int64_t seen = admin_int("SELECT count(*) FROM cfg_end WHERE id = 2");
  int64_t leaked = admin_int("SELECT count(*) FROM cfg_end WHERE id = 1");
  close_pool(); /* ends the session, whatever state it was left in */
  admin_exec("DROP TABLE cfg_end");
  admin_close();
  if (open_tx != 0 || seen != 1)
    fail_msg("after a cancelled %s: %lld connection(s) idle in transaction; "
             "a later autocommit INSERT is %s to others",
             commit ? "COMMIT" : "ROLLBACK", (long long)open_tx,
             seen == 1 ? "visible" : "invisible");
  /* Never sent, so the transaction did not commit. */
  assert_int_equal(leaked, 0);
}

static void test_cancelled_commit_releases_clean_conn(void **state) {
  (void)state;
  tx_end_cancelled_case(1);
}

static void test_cancelled_rollback_releases_clean_conn(void **state) {
  (void)state;
  tx_end_cancelled_case(0);
}

/* A BEGIN cancelled after it was sent: the pool rolls back behind the
 * caller's back and the connection comes back clean. */
static orm_future_t *inflight_begin;
static int inflight_cancelled;

static void cancel_sent_begin(uv_prepare_t *h) {
  (void)h;
  /* After the idle phase has sent it, before the poll phase reads the
   * answer. */
  if (!inflight_cancelled && stats().in_flight > 0) {
    inflight_cancelled = 1;
    assert_int_equal(orm_future_cancel(inflight_begin), 0);
  }
}

static int back_to_idle(void) {
  orm_pool_stats_t st = stats();
  return st.conns_in_tx == 0 && st.conns_idle == 1;
}

static void test_begin_cancelled_in_flight(void **state) {
  (void)state;
  open_pool((orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  admin_exec("DROP TABLE IF EXISTS cfg_bg; CREATE TABLE cfg_bg (id int)");
  backend_pid();
  uv_prepare_t *hook = malloc(sizeof *hook);
  assert_non_null(hook);
  assert_int_equal(uv_prepare_init(loop, hook), 0);
  assert_int_equal(uv_prepare_start(hook, cancel_sent_begin), 0);
  inflight_cancelled = 0;
  probe_t b = {0};
  assert_int_equal(orm_tx_begin_async(pool, on_probe, &b, &inflight_begin), 0);
  run_until(&b.done, 5000);
  uv_close((uv_handle_t *)hook, free_handle);
  assert_true(inflight_cancelled);
  assert_int_equal(b.status, ORM_ECANCELED);
  assert_null(orm_future_value(inflight_begin));
  orm_future_release(inflight_begin);
  assert_true(wait_for(back_to_idle, 3000));
  run_ms(50);
  assert_int_equal(b.done, 1);
  probe_t after = run_sql("INSERT INTO cfg_bg VALUES (1)", NULL, 0);
  assert_int_equal(after.status, 0);
  assert_int_equal(admin_int("SELECT count(*) FROM cfg_bg"), 1);
  assert_int_equal(server_idle_in_tx(), 0);
  admin_exec("DROP TABLE cfg_bg");
  close_pool();
}

/* When connections above min_conns are idle past idle_timeout_ms and one of
 * them is broken (its reconnects fail), the broken one is the one to drop:
 * closing the working connection leaves the pool with nothing that serves.
 * Reconnects are made to fail with a database connection limit, on a
 * database of this test's own so that nothing else is refused. */
static const char *limited_conninfo(void) {
  pool_conninfo();
  size_t len = strlen(conninfo);
  put_pair(conninfo + len, sizeof conninfo - len, "dbname", "cfg_limit");
  return conninfo;
}

static void test_idle_timeout_keeps_working_conn(void **state) {
  (void)state;
  if (admin_int("SELECT rolcreatedb::int FROM pg_roles "
                "WHERE rolname = current_user") != 1) {
    admin_close();
    skip();
  }
  admin_exec("DROP DATABASE IF EXISTS cfg_limit WITH (FORCE)");
  admin_exec("CREATE DATABASE cfg_limit CONNECTION LIMIT 2");
  orm_pool_config_t cfg = {.min_conns = 1,
                           .max_conns = 2,
                           .no_pipeline = true,
                           .idle_timeout_ms = 300,
                           .reconnect_min_ms = 100,
                           .reconnect_max_ms = 300};
  start_loop();
  cfg.conninfo = limited_conninfo(); /* dbname given twice: the last wins */
  assert_int_equal(orm_pool_open(&pool, loop, &cfg), 0);
  backend_pid();
  slow_burst(4, "SELECT $1::int FROM pg_sleep(0.1)", 5000);
  orm_pool_stats_t st = stats();
  assert_int_equal(total_conns(&st), 2);
  int64_t victim = admin_int(
      "SELECT min(pid) FROM pg_stat_activity WHERE datname = 'cfg_limit'");
  int64_t keeper = admin_int(
      "SELECT max(pid) FROM pg_stat_activity WHERE datname = 'cfg_limit'");
  /* From now on only one connection fits: the victim's reconnects fail. */
  admin_exec("ALTER DATABASE cfg_limit CONNECTION LIMIT 1");
  admin_terminate(victim);
  run_ms(2300); /* two maintenance rounds */
  st = stats();
  int64_t keeper_alive = admin_int(
      "SELECT count(*) FROM pg_stat_activity WHERE pid = %lld",
      (long long)keeper);
  uint64_t failures = st.connect_failures;
  unsigned idle = st.conns_idle, total = total_conns(&st);
  uint64_t connects = st.connects;
  close_pool();
  admin_exec("DROP DATABASE IF EXISTS cfg_limit WITH (FORCE)");
  admin_close();
  print_message("idle/broken: %llu failed reconnects, %llu connects, "
                "working backend %s\n",
                (unsigned long long)failures, (unsigned long long)connects,
                keeper_alive ? "kept" : "closed");
  assert_true(failures >= 1); /* the scenario happened */
  if (keeper_alive != 1)
    fail_msg("idle_timeout closed the working connection and kept the broken "
             "one (idle %u of %u, %llu connects)",
             idle, total, (unsigned long long)connects);
  assert_int_equal(idle, 1);
  assert_int_equal(total, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(test_acquire_timeout, abandon_leftovers),
      cmocka_unit_test_teardown(test_grows_to_max, abandon_leftovers),
      cmocka_unit_test_teardown(test_idle_timeout_shrinks_to_min, abandon_leftovers),
      cmocka_unit_test_teardown(test_max_lifetime_retires, abandon_leftovers),
      cmocka_unit_test_teardown(test_health_check_pipelined, abandon_leftovers),
      cmocka_unit_test_teardown(test_health_check_unpipelined, abandon_leftovers),
      cmocka_unit_test_teardown(test_no_prepare, abandon_leftovers),
      cmocka_unit_test_teardown(test_reprepare_after_reconnect, abandon_leftovers),
      cmocka_unit_test_teardown(test_parse_error_unpipelined, abandon_leftovers),
      cmocka_unit_test_teardown(test_cancel_behind_others, abandon_leftovers),
      cmocka_unit_test_teardown(test_cancel_does_not_stray, abandon_leftovers),
      cmocka_unit_test_teardown(test_future_all_real, abandon_leftovers),
      cmocka_unit_test_teardown(test_many_transactions, abandon_leftovers),
      cmocka_unit_test_teardown(test_future_timeout_kept_by_acquire_timeout, abandon_leftovers),
      cmocka_unit_test_teardown(test_future_timeout_kept_by_statement_timeout, abandon_leftovers),
      cmocka_unit_test_teardown(test_cancelled_commit_releases_clean_conn, abandon_leftovers),
      cmocka_unit_test_teardown(test_cancelled_rollback_releases_clean_conn, abandon_leftovers),
      cmocka_unit_test_teardown(test_begin_cancelled_in_flight, abandon_leftovers),
      cmocka_unit_test_teardown(test_idle_timeout_keeps_working_conn, abandon_leftovers),
  };
  /* UVORM_TEST_FILTER=test_name runs one test (cmocka's pattern). */
  const char *only = getenv("UVORM_TEST_FILTER");
  if (only != NULL)
    cmocka_set_test_filter(only);
  return cmocka_run_group_tests(tests, NULL, NULL);
}
