/* SPDX-License-Identifier: MIT */
/* Faults for real: killed backends, a stopped and restarted server, a
 * server that is down when the pool starts, transactions across failures,
 * and closing the pool with work queued and in flight. */
#include "fixture.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One at a time, in static storage: the load generators' callbacks reach
 * the pool through it. */
static orm_fx_t fx;

/* For a pool a test closes itself: orm_fx_close() then checks that this
 * ran once. */
static void on_closed(orm_pool_t *p, void *data) {
  ((orm_fx_t *)data)->closed++;
}

/* Servers go away here: reconnect quickly unless the test says otherwise. */
static orm_pool_config_t reconnecting(orm_pool_config_t cfg) {
  if (cfg.reconnect_max_ms == 0) {
    cfg.reconnect_min_ms = 50;
    cfg.reconnect_max_ms = 300;
  }
  return cfg;
}

static void open_fx(orm_pool_config_t cfg) {
  cfg = reconnecting(cfg);
  orm_fx_open(&fx, NULL, 0, &cfg);
}

/* ---- a load generator: keeps `target` requests in flight ----------------- */

typedef struct {
  int target;
  int in_flight;
  int issued;
  int ok;
  int lost;      /* ORM_ECONNLOST */
  int refused;   /* ORM_ECONNECT */
  int other;     /* anything else: a bug */
  int other_code;
  int wrong;     /* an answer that is not its own */
  int running;
  uv_timer_t timer;
  int64_t pids[16];
  int npids;
} load_t;

typedef struct {
  load_t *load;
  int64_t expect;
} ticket_t;

static void issue(load_t *l);

static void on_answer(orm_future_t *f, void *data) {
  ticket_t *t = data;
  load_t *l = t->load;
  l->in_flight--;
  int st = orm_future_status(f);
  if (st == 0) {
    orm_result_t *r = orm_future_value(f);
    int64_t v = -1, pid = 0;
    orm_result_int(r, 0, 0, &v);
    orm_result_int(r, 0, 1, &pid);
    if (v != t->expect)
      l->wrong++;
    l->ok++;
    int known = 0;
    for (int i = 0; i < l->npids; i++)
      known |= l->pids[i] == pid;
    if (!known && l->npids < 16)
      l->pids[l->npids++] = pid;
  } else if (st == ORM_ECONNLOST) {
    l->lost++;
  } else if (st == ORM_ECONNECT) {
    l->refused++;
    assert_non_null(orm_future_error(f)->message);
  } else {
    l->other++;
    l->other_code = st;
  }
  free(t);
}

static void issue(load_t *l) {
  while (l->running && l->in_flight < l->target) {
    ticket_t *t = malloc(sizeof *t);
    t->load = l;
    t->expect = l->issued;
    orm_param_t p = ORM_INT8(l->issued);
    int rc = orm_query_async(fx.pool,
                             "SELECT $1::int8, pg_backend_pid()::int8 "
                             "FROM pg_sleep(0.002)",
                             &p, 1, on_answer, t, NULL);
    if (rc != 0) {
      free(t);
      fail_msg("query refused: %s", orm_err_name(rc));
    }
    l->issued++;
    l->in_flight++;
  }
}

/* Topping up from a timer rather than from callbacks: requests that fail
 * fast while the server is down must not spin the loop. */
static void on_load_timer(uv_timer_t *timer) { issue(timer->data); }

static void load_start(load_t *l, int target) {
  memset(l, 0, sizeof *l);
  l->target = target;
  l->running = 1;
  uv_timer_init(&fx.loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, on_load_timer, 0, 5);
}

static void load_stop(load_t *l) {
  l->running = 0;
  uv_close((uv_handle_t *)&l->timer, NULL);
  while (l->in_flight > 0)
    uv_run(&fx.loop, UV_RUN_ONCE);
}

static int live_conns(void) {
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  return (int)(st.conns_idle + st.conns_busy);
}

/* ---- 5. a killed backend fails only its own requests --------------------- */

static void test_terminate_backend(void **state) {
  open_fx((orm_pool_config_t){.min_conns = 4, .max_conns = 4});
  load_t l;
  load_start(&l, 64);
  while (l.npids < 4)
    uv_run(&fx.loop, UV_RUN_ONCE);
  orm_fx_run_ms(&fx, 200);
  int ok_before = l.ok;
  /* Killed while it runs a statement, so that requests are in flight on
   * it (between two batches it may have none: a slow client, valgrind).
   * Seen active, it may still have answered its last request before the
   * kill lands: then the next backend is killed, until one loses some. */
  char sql[192];
  int killed = 0;
  for (int k = 0; l.lost == 0 && k < l.npids && k < 8; k++) {
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE pid = %lld AND state = 'active'",
             (long long)l.pids[k]);
    for (int tries = 0; tries < 1000; tries++) {
      if (orm_fx_int(&fx, sql) == 1) {
        killed++;
        break;
      }
      orm_fx_run_ms(&fx, 2);
    }
    orm_fx_run_ms(&fx, 300);
  }
  assert_true(killed > 0);
  orm_fx_run_ms(&fx, 1200);
  load_stop(&l);
  print_message("terminate: ok %d lost %d other %d\n", l.ok, l.lost, l.other);
  assert_int_equal(l.wrong, 0);
  assert_int_equal(l.other, 0);
  assert_int_equal(l.refused, 0);
  /* Only what was in flight on that one connection: at most its share. */
  assert_true(l.lost > 0);
  assert_true(l.lost <= 64);
  assert_true(l.ok > ok_before + 100); /* the rest carried on */
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_true(st.reconnects >= 1);
  assert_int_equal(live_conns(), 4);
  orm_fx_close(&fx);
}

/* ---- 6. the server stops under load and comes back ------------------------ */

static void test_server_restart(void **state) {
  if (!orm_test_server_managed())
    skip();
  /* The admin connection goes with the server; nothing uses it after. */
  open_fx((orm_pool_config_t){.min_conns = 2, .max_conns = 4});
  load_t l;
  load_start(&l, 32);
  orm_fx_run_ms(&fx, 300);
  assert_true(l.ok > 0);
  orm_test_server("stop");
  int ok_at_stop = l.ok;
  orm_fx_run_ms(&fx, 1000); /* requests fail cleanly while it is down */
  assert_true(l.lost + l.refused > 0);
  int failed_while_down = l.lost + l.refused;
  assert_true(l.ok - ok_at_stop <= 64);
  orm_test_server("start");
  orm_fx_run_ms(&fx, 2000); /* the pool finds it again by itself */
  int ok_after = l.ok;
  orm_fx_run_ms(&fx, 500);
  load_stop(&l);
  print_message("restart: ok %d lost %d refused %d other %d (%s)\n", l.ok,
                l.lost, l.refused, l.other, orm_err_name(l.other_code));
  assert_int_equal(l.other, 0);
  assert_int_equal(l.wrong, 0);
  assert_true(failed_while_down > 0);
  assert_true(l.ok > ok_after); /* serving again */
  assert_true(live_conns() >= 2);
  orm_fx_close(&fx);
}

static void test_server_down_at_start(void **state) {
  if (!orm_test_server_managed())
    skip();
  orm_test_server("stop");
  /* No admin connection: there is no server to open it on. */
  memset(&fx, 0, sizeof fx);
  orm_pool_config_t cfg =
      reconnecting((orm_pool_config_t){.min_conns = 2, .max_conns = 2});
  orm_fx_open_pool(&fx, &cfg);
  load_t l;
  load_start(&l, 8);
  orm_fx_run_ms(&fx, 800);
  assert_int_equal(l.ok, 0);
  assert_true(l.refused > 0);
  orm_test_server("start");
  orm_fx_run_ms(&fx, 2000);
  load_stop(&l);
  assert_int_equal(l.other, 0);
  assert_true(l.ok > 0);
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_true(st.connect_failures > 0);
  orm_fx_close(&fx);
}

/* ---- 6. a server that refuses the connection says why --------------------- */

/* A pool whose conninfo is the test server's with `key` = `value`: its first
 * query fails with `code` and `sqlstate`, and again while it stays down. */
static void refused_with(const char *key, const char *value, int code,
                         const char *sqlstate) {
  char *dsn = orm_test_dsn_with(key, value, NULL);
  memset(&fx, 0, sizeof fx);
  orm_pool_config_t cfg = reconnecting(
      (orm_pool_config_t){.conninfo = dsn, .min_conns = 1, .max_conns = 1});
  orm_fx_open_pool(&fx, &cfg);
  for (int i = 0; i < 2; i++) {
    orm_step_t s = {0};
    assert_int_equal(
        orm_query_async(fx.pool, "SELECT 1", NULL, 0, orm_fx_on_step, &s, NULL),
        0);
    orm_fx_wait(&fx, &s, 1);
    assert_int_equal(s.status, code);
    assert_string_equal(s.sqlstate, sqlstate);
    /* libpq's default text, without the code or a LOCATION line. */
    assert_non_null(strstr(s.message, "FATAL:  "));
    assert_null(strstr(s.message, sqlstate));
    assert_null(strstr(s.message, "LOCATION"));
    assert_null(strstr(s.message, "dbname="));
    if (i == 0)
      print_message("refused (%s): %s\n", orm_err_name(s.status), s.message);
  }
  orm_fx_close(&fx);
  free(dsn);
}

static void test_refusals_name_their_sqlstate(void **state) {
  /* The suite's own server trusts loopback: an unknown role is refused for
   * who it is (class 28), not for a password. */
  if (!orm_test_server_managed())
    skip();
  refused_with("user", "uvorm_no_such_role", ORM_EAUTH, "28000");
  refused_with("dbname", "uvorm_no_such_db", ORM_ECONNECT, "3D000");
}

/* ---- 7. transactions ---------------------------------------------------- */

static void wait_step(orm_step_t *s) { orm_fx_wait(&fx, s, 1); }

static orm_tx_t *begin(void) {
  orm_step_t s = {.take = 1}; /* BEGIN's value is the transaction */
  assert_int_equal(orm_tx_begin_async(fx.pool, orm_fx_on_step, &s, NULL), 0);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  assert_non_null(s.taken);
  return s.taken;
}

static orm_step_t txq(orm_tx_t *tx, const char *sql) {
  orm_step_t s = {.result = 1};
  assert_int_equal(
      orm_query_async(tx, sql, NULL, 0, orm_fx_on_step, &s, NULL), 0);
  wait_step(&s);
  return s;
}

/* Through the pool, unlike orm_fx_int(). */
static int64_t count_rows(const char *sql) {
  orm_step_t s = {.result = 1};
  assert_int_equal(
      orm_query_async(fx.pool, sql, NULL, 0, orm_fx_on_step, &s, NULL), 0);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  return s.value;
}

static void end_tx(orm_tx_t *tx, int commit, int expect) {
  orm_step_t s = {0};
  int rc = commit ? orm_tx_commit_async(tx, orm_fx_on_step, &s, NULL)
                  : orm_tx_rollback_async(tx, orm_fx_on_step, &s, NULL);
  assert_int_equal(rc, 0);
  wait_step(&s);
  assert_int_equal(s.status, expect);
}

static void test_transactions(void **state) {
  open_fx((orm_pool_config_t){.min_conns = 3, .max_conns = 4});
  orm_fx_sql(&fx,
             "DROP TABLE IF EXISTS txt; CREATE TABLE txt (id int, who text)");

  /* Commit: invisible to others until committed. */
  orm_tx_t *a = begin();
  assert_int_equal(txq(a, "INSERT INTO txt VALUES (1, 'a')").status, 0);
  assert_int_equal(txq(a, "SELECT count(*) FROM txt").value, 1);
  assert_int_equal(count_rows("SELECT count(*) FROM txt"), 0);
  /* A concurrent transaction sees neither. */
  orm_tx_t *b = begin();
  assert_int_equal(txq(b, "INSERT INTO txt VALUES (2, 'b')").status, 0);
  assert_int_equal(txq(b, "SELECT count(*) FROM txt WHERE who = 'a'").value, 0);
  assert_int_equal(txq(a, "SELECT count(*) FROM txt WHERE who = 'b'").value, 0);
  end_tx(a, 1, 0);
  assert_int_equal(count_rows("SELECT count(*) FROM txt WHERE who = 'a'"), 1);
  /* Rollback: nothing of it remains. */
  end_tx(b, 0, 0);
  assert_int_equal(count_rows("SELECT count(*) FROM txt WHERE who = 'b'"), 0);

  /* Savepoints. */
  orm_tx_t *c = begin();
  txq(c, "INSERT INTO txt VALUES (3, 'c')");
  orm_step_t s = {0};
  assert_int_equal(orm_tx_savepoint_async(c, "sp1", orm_fx_on_step, &s, NULL),
                   0);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  txq(c, "INSERT INTO txt VALUES (4, 'c')");
  memset(&s, 0, sizeof s);
  assert_int_equal(orm_tx_rollback_to_async(c, "sp1", orm_fx_on_step, &s, NULL),
                   0);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  memset(&s, 0, sizeof s);
  assert_int_equal(orm_tx_release_async(c, "sp1", orm_fx_on_step, &s, NULL), 0);
  wait_step(&s);
  assert_int_equal(s.status, 0);
  assert_int_equal(
      orm_tx_savepoint_async(c, "bad name", orm_fx_on_step, &s, NULL),
      ORM_EINVAL);
  /* A failing statement aborts the transaction; COMMIT then rolls back. */
  assert_int_equal(txq(c, "SELECT 1/0").status, ORM_ESERVER);
  assert_int_equal(txq(c, "SELECT 1").status, ORM_ESKIPPED); /* 25P02 */
  /* The server answers ROLLBACK to this COMMIT: reported, not hidden. */
  orm_step_t cs = {0};
  assert_int_equal(orm_tx_commit_async(c, orm_fx_on_step, &cs, NULL), 0);
  wait_step(&cs);
  assert_int_equal(cs.status, ORM_ESERVER);
  assert_string_equal(cs.sqlstate, "25P02");
  assert_int_equal(count_rows("SELECT count(*) FROM txt WHERE who = 'c'"), 0);

  /* A connection killed inside a transaction fails it; nothing commits. */
  orm_tx_t *d = begin();
  txq(d, "INSERT INTO txt VALUES (5, 'd')");
  int64_t pid = txq(d, "SELECT pg_backend_pid()").value;
  char sql[96];
  snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", (long long)pid);
  orm_fx_sql(&fx, sql);
  assert_int_equal(txq(d, "INSERT INTO txt VALUES (6, 'd')").status,
                   ORM_ECONNLOST);
  end_tx(d, 1, ORM_ECONNLOST);
  assert_int_equal(count_rows("SELECT count(*) FROM txt WHERE who = 'd'"), 0);

  /* Statements of a transaction sent in one turn share one sync: the
   * failing one reports its error, the one after it is reported skipped,
   * the one before it succeeded; ROLLBACK then ends it cleanly. */
  orm_tx_t *g = begin();
  orm_step_t q[3] = {{0}};
  const char *stmts[3] = {"INSERT INTO txt VALUES (8, 'g')", "SELECT 1/0",
                          "INSERT INTO txt VALUES (9, 'g')"};
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        orm_query_async(g, stmts[i], NULL, 0, orm_fx_on_step, &q[i], NULL),
        0);
  for (int i = 0; i < 3; i++)
    wait_step(&q[i]);
  assert_int_equal(q[0].status, 0);
  assert_int_equal(q[1].status, ORM_ESERVER);
  assert_int_equal(q[2].status, ORM_ESKIPPED);
  end_tx(g, 0, 0);
  assert_int_equal(count_rows("SELECT count(*) FROM txt WHERE who = 'g'"), 0);

  /* The pool still serves, and transactions still work. */
  orm_tx_t *e = begin();
  txq(e, "INSERT INTO txt VALUES (7, 'e')");
  end_tx(e, 1, 0);
  assert_int_equal(count_rows("SELECT count(*) FROM txt"), 2);
  orm_fx_sql(&fx, "DROP TABLE txt");
  orm_fx_close(&fx);
}

/* orm_tx_begin(): the handle at once, everything issued behind BEGIN in
 * one go, nothing run outside the transaction whatever fails. */
static orm_tx_t *tx_now(void) {
  orm_tx_t *tx = (orm_tx_t *)&tx; /* overwritten */
  assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
  assert_non_null(tx);
  return tx;
}

static void tx_issue(orm_tx_t *tx, const char *sql, orm_step_t *s) {
  s->result = 1;
  assert_int_equal(
      orm_query_async(tx, sql, NULL, 0, orm_fx_on_step, s, NULL), 0);
}

static void wait_all(orm_step_t *s, int n) { orm_fx_wait(&fx, s, (size_t)n); }

static void test_tx_one_flight(void **state) {
  open_fx((orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_fx_sql(&fx, "DROP TABLE IF EXISTS txf; CREATE TABLE txf (id int)");
  orm_tx_t *out = (orm_tx_t *)&out;
  assert_int_equal(orm_tx_begin(NULL, &out), ORM_EINVAL);
  assert_int_equal(orm_tx_begin(fx.pool, NULL), ORM_EINVAL);

  /* Issued before the loop runs once: all of it goes behind BEGIN. */
  orm_tx_t *a = tx_now();
  orm_step_t q[4] = {{0}};
  tx_issue(a, "INSERT INTO txf VALUES (1)", &q[0]);
  tx_issue(a, "INSERT INTO txf VALUES (2)", &q[1]);
  tx_issue(a, "SELECT count(*) FROM txf", &q[2]);
  assert_int_equal(orm_tx_commit_async(a, orm_fx_on_step, &q[3], NULL), 0);
  wait_all(q, 4);
  for (int i = 0; i < 4; i++)
    if (q[i].status != 0)
      fail_msg("step %d: %s %s", i, orm_err_name(q[i].status), q[i].message);
  assert_int_equal(q[2].value, 2);
  assert_int_equal(count_rows("SELECT count(*) FROM txf"), 2);

  /* A failure inside: the statement after it is skipped, COMMIT reports
   * the rollback, nothing of the transaction remains. */
  orm_tx_t *b = tx_now();
  orm_step_t r[4] = {{0}};
  tx_issue(b, "INSERT INTO txf VALUES (3)", &r[0]);
  tx_issue(b, "SELECT 1/0", &r[1]);
  tx_issue(b, "INSERT INTO txf VALUES (4)", &r[2]);
  assert_int_equal(orm_tx_commit_async(b, orm_fx_on_step, &r[3], NULL), 0);
  wait_all(r, 4);
  assert_int_equal(r[0].status, 0);
  assert_int_equal(r[1].status, ORM_ESERVER);
  assert_string_equal(r[1].sqlstate, "22012");
  assert_int_equal(r[2].status, ORM_ESKIPPED);
  assert_int_equal(r[3].status, ORM_ESERVER);
  assert_string_equal(r[3].sqlstate, "25P02");
  assert_int_equal(count_rows("SELECT count(*) FROM txf"), 2);

  /* A COMMIT cancelled before BEGIN went out still ends the transaction
   * (as a ROLLBACK), and the only connection comes back clean. */
  orm_tx_t *c = tx_now();
  orm_step_t t[2] = {{0}};
  orm_future_t *cf;
  tx_issue(c, "INSERT INTO txf VALUES (5)", &t[0]);
  assert_int_equal(orm_tx_commit_async(c, orm_fx_on_step, &t[1], &cf), 0);
  assert_int_equal(orm_future_cancel(cf), 0);
  orm_future_release(cf);
  wait_all(t, 2);
  assert_int_equal(t[0].status, 0);
  assert_int_equal(t[1].status, ORM_ECANCELED);
  orm_fx_run_ms(&fx, 50);
  assert_int_equal(count_rows("SELECT count(*) FROM txf"), 2);
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_int_equal(st.conns_in_tx, 0);

  /* A killed connection fails the statements in flight and the COMMIT;
   * the INSERT before the sleep never committed, so it fails too (its
   * answer waits for the sync behind the sleep). */
  orm_tx_t *d = tx_now();
  orm_step_t u[3] = {{0}};
  tx_issue(d, "INSERT INTO txf VALUES (6)", &u[0]);
  tx_issue(d, "SELECT pg_sleep(5)", &u[1]);
  assert_int_equal(orm_tx_commit_async(d, orm_fx_on_step, &u[2], NULL), 0);
  while (orm_fx_int(&fx, "SELECT count(*) FROM pg_stat_activity "
                         "WHERE query = 'SELECT pg_sleep(5)'") == 0)
    orm_fx_run_ms(&fx, 10);
  orm_fx_sql(&fx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE query = 'SELECT pg_sleep(5)'");
  wait_all(u, 3);
  for (int i = 0; i < 3; i++)
    assert_int_equal(u[i].status, ORM_ECONNLOST);
  assert_int_equal(count_rows("SELECT count(*) FROM txf"), 2);
  orm_fx_sql(&fx, "DROP TABLE txf");
  orm_fx_close(&fx);
}

/* Transactions follow one another in one connection's pipeline: the next
 * BEGIN goes out behind the previous COMMIT, even one that fails (a
 * deferred unique constraint): PostgreSQL ends the transaction whatever
 * COMMIT answers, and the next one must not notice. */
static void test_tx_pipelined(void **state) {
  open_fx((orm_pool_config_t){.min_conns = 1, .max_conns = 1});
  orm_fx_sql(&fx, "DROP TABLE IF EXISTS txp; CREATE TABLE txp (id int UNIQUE "
                  "DEFERRABLE INITIALLY DEFERRED, who text)");
  enum { N = 6 };
  orm_step_t ins[N][2], commit[N];
  memset(ins, 0, sizeof ins);
  memset(commit, 0, sizeof commit);
  for (int i = 0; i < N; i++) {
    orm_tx_t *tx = tx_now();
    char sql[96];
    /* Odd ones insert a duplicate: their COMMIT fails. */
    snprintf(sql, sizeof sql, "INSERT INTO txp VALUES (%d, 't%d')", 10 * i, i);
    tx_issue(tx, sql, &ins[i][0]);
    snprintf(sql, sizeof sql, "INSERT INTO txp VALUES (%d, 't%d')",
             i % 2 ? 10 * i : 10 * i + 1, i);
    tx_issue(tx, sql, &ins[i][1]);
    assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &commit[i], NULL),
                     0);
  }
  for (int i = 0; i < N; i++)
    wait_step(&commit[i]);
  for (int i = 0; i < N; i++) {
    assert_int_equal(ins[i][0].status, 0);
    assert_int_equal(ins[i][1].status, 0);
    if (i % 2) {
      assert_int_equal(commit[i].status, ORM_ESERVER);
      assert_string_equal(commit[i].sqlstate, "23505");
    } else if (commit[i].status != 0) {
      fail_msg("transaction %d: %s %s", i, orm_err_name(commit[i].status),
               commit[i].message);
    }
  }
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM txp"), N);
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM txp WHERE who IN "
                                   "('t1', 't3', 't5')"),
                   0);
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_int_equal(st.conns_in_tx, 0);
  assert_int_equal(st.reconnects, 0); /* never reset to get there */
  assert_int_equal(count_rows("SELECT count(*) FROM txp"), N);

  /* A statement that times out with a transaction behind it is not
   * cancelled on the server (a cancel arriving late would land in that
   * transaction): it runs to its end, the transaction after it commits. */
  orm_step_t slow = {0}, late[2] = {{0}};
  orm_future_t *sf;
  assert_int_equal(orm_query_async(fx.pool, "SELECT pg_sleep(0.4)", NULL, 0,
                                   orm_fx_on_step, &slow, &sf),
                   0);
  assert_int_equal(orm_future_timeout(sf, 50), 0);
  orm_future_release(sf);
  orm_tx_t *tx = tx_now();
  tx_issue(tx, "INSERT INTO txp VALUES (100, 'late')", &late[0]);
  assert_int_equal(orm_tx_commit_async(tx, orm_fx_on_step, &late[1], NULL), 0);
  uint64_t t0 = uv_hrtime();
  wait_all(late, 2);
  uint64_t ms = (uv_hrtime() - t0) / 1000000;
  assert_int_equal(slow.status, ORM_ETIMEDOUT);
  assert_int_equal(late[0].status, 0);
  assert_int_equal(late[1].status, 0);
  assert_true(ms >= 300); /* behind the whole sleep */
  assert_int_equal(orm_fx_int(&fx, "SELECT count(*) FROM txp WHERE id = 100"),
                   1);
  orm_fx_sql(&fx, "DROP TABLE txp");
  orm_fx_close(&fx);
}

/* Pipelined transactions while their backends are killed: each one ends
 * exactly once, all or nothing, and the pool carries on. A COMMIT that
 * fails with ORM_ECONNLOST may or may not have committed (its answer was
 * lost); any other failure means nothing of it is there. */
enum { TXL_MAX = 65536 };

typedef struct {
  int ends[TXL_MAX]; /* COMMIT callbacks per transaction */
  int status[TXL_MAX];
  int issued, in_flight, running, target;
  int ok, lost, other, other_code;
  uv_timer_t timer;
} txload_t;

static txload_t txl;

static void on_txl_commit(orm_future_t *f, void *data) {
  int id = (int)(intptr_t)data;
  txl.ends[id]++;
  txl.status[id] = orm_future_status(f);
  txl.in_flight--;
  if (txl.status[id] == 0) {
    txl.ok++;
  } else if (txl.status[id] == ORM_ECONNLOST) {
    txl.lost++;
  } else {
    txl.other++;
    txl.other_code = txl.status[id];
  }
}

static void txl_issue(uv_timer_t *timer) {
  (void)timer;
  while (txl.running && txl.in_flight < txl.target && txl.issued < TXL_MAX) {
    int id = txl.issued++;
    orm_tx_t *tx;
    assert_int_equal(orm_tx_begin(fx.pool, &tx), 0);
    orm_param_t p = ORM_INT4(id);
    assert_int_equal(orm_query_async(tx, "INSERT INTO txl VALUES ($1, 'a')",
                                        &p, 1, NULL, NULL, NULL),
                     0);
    assert_int_equal(orm_query_async(tx,
                                        "INSERT INTO txl SELECT $1, 'b' "
                                        "FROM pg_sleep(0.001)",
                                        &p, 1, NULL, NULL, NULL),
                     0);
    assert_int_equal(orm_tx_commit_async(tx, on_txl_commit,
                                         (void *)(intptr_t)id, NULL),
                     0);
    txl.in_flight++;
  }
}

static void test_tx_pipelined_under_kills(void **state) {
  open_fx((orm_pool_config_t){.min_conns = 4, .max_conns = 4});
  orm_fx_sql(&fx,
             "DROP TABLE IF EXISTS txl; CREATE TABLE txl (tx int, part text)");
  memset(&txl, 0, sizeof txl);
  txl.target = 48;
  txl.running = 1;
  uv_timer_init(&fx.loop, &txl.timer);
  uv_timer_start(&txl.timer, txl_issue, 0, 2);
  for (int round = 0; round < 3; round++) {
    orm_fx_run_ms(&fx, 300);
    /* Every client backend but the admin connection that asks. */
    orm_fx_sql(&fx,
               "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
               "WHERE datname = current_database() AND pid <> pg_backend_pid() "
               "AND backend_type = 'client backend' "
               "AND query NOT LIKE '%pg_stat%'");
  }
  int ok_before = txl.ok;
  orm_fx_run_ms(&fx, 500); /* the pool is back and commits again */
  txl.running = 0;
  uv_close((uv_handle_t *)&txl.timer, NULL);
  uv_update_time(&fx.loop);
  uint64_t end = uv_now(&fx.loop) + 10000;
  while (txl.in_flight > 0 && uv_now(&fx.loop) < end)
    uv_run(&fx.loop, UV_RUN_ONCE);
  print_message("pipelined tx under kills: %d issued, ok %d lost %d other %d "
                "(%s)\n",
                txl.issued, txl.ok, txl.lost, txl.other,
                orm_err_name(txl.other_code));
  assert_int_equal(txl.in_flight, 0);
  assert_int_equal(txl.other, 0);
  assert_true(txl.lost > 0);
  assert_true(txl.ok > ok_before);
  assert_true(txl.issued < TXL_MAX);
  /* Every transaction ended once: all of it there, or none of it. */
  PGresult *r = PQexec(fx.admin, "SELECT tx, count(*) FROM txl GROUP BY tx");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  static int rows[TXL_MAX];
  memset(rows, 0, sizeof rows);
  for (int i = 0; i < PQntuples(r); i++)
    rows[atoi(PQgetvalue(r, i, 0))] = atoi(PQgetvalue(r, i, 1));
  PQclear(r);
  for (int id = 0; id < txl.issued; id++) {
    assert_int_equal(txl.ends[id], 1);
    if (rows[id] != 0 && rows[id] != 2)
      fail_msg("transaction %d left %d of its 2 rows", id, rows[id]);
    if (txl.status[id] == 0 && rows[id] != 2)
      fail_msg("transaction %d committed but left %d rows", id, rows[id]);
    if (txl.status[id] != 0 && txl.status[id] != ORM_ECONNLOST && rows[id])
      fail_msg("transaction %d failed but left rows", id);
  }
  orm_pool_stats_t st;
  orm_pool_stats(fx.pool, &st);
  assert_int_equal(st.conns_in_tx, 0);
  assert_true(st.reconnects >= 4);
  orm_fx_sql(&fx, "DROP TABLE txl");
  orm_fx_close(&fx);
}

/* BEGIN that cannot run: each statement and the COMMIT say why, ROLLBACK
 * succeeds, and the handles leave nothing behind. */
static void test_tx_begin_fails(void **state) {
  /* A server that is not there (and no admin connection: none is used). */
  orm_pool_config_t cfg = {.min_conns = 1,
                           .max_conns = 1,
                           .reconnect_min_ms = 50,
                           .reconnect_max_ms = 100};
  char *nowhere = orm_test_dsn_with("host", "127.0.0.1", "port", "1", NULL);
  cfg.conninfo = nowhere;
  memset(&fx, 0, sizeof fx);
  orm_fx_open_pool(&fx, &cfg);
  free(nowhere);
  orm_fx_run_ms(&fx, 200); /* the first connect has failed: the pool is down */
  orm_tx_t *a = tx_now();
  orm_step_t q[2] = {{0}};
  tx_issue(a, "SELECT 1", &q[0]);
  assert_int_equal(orm_tx_commit_async(a, orm_fx_on_step, &q[1], NULL), 0);
  wait_all(q, 2);
  assert_int_equal(q[0].status, ORM_ECONNECT);
  assert_non_null(strstr(q[0].message, "did not begin"));
  assert_int_equal(q[1].status, ORM_ECONNECT);
  orm_tx_t *b = tx_now();
  orm_step_t rb = {0};
  assert_int_equal(orm_tx_rollback_async(b, orm_fx_on_step, &rb, NULL), 0);
  wait_step(&rb);
  assert_int_equal(rb.status, 0);
  orm_fx_close(&fx);

  /* No connection within acquire_timeout_ms: the one there is, is held
   * by another transaction. */
  open_fx((orm_pool_config_t){
      .min_conns = 1, .max_conns = 1, .acquire_timeout_ms = 150});
  orm_tx_t *holder = begin();
  orm_tx_t *c = tx_now();
  orm_step_t r[2] = {{0}};
  tx_issue(c, "SELECT 1", &r[0]);
  assert_int_equal(orm_tx_commit_async(c, orm_fx_on_step, &r[1], NULL), 0);
  wait_all(r, 2);
  assert_int_equal(r[0].status, ORM_ETIMEDOUT);
  assert_int_equal(r[1].status, ORM_ETIMEDOUT);
  end_tx(holder, 1, 0);

  /* The pool closes with a transaction still waiting for BEGIN. */
  holder = begin();
  orm_tx_t *d = tx_now();
  orm_step_t w = {0};
  tx_issue(d, "SELECT 1", &w);
  assert_int_equal(orm_pool_close(fx.pool, on_closed), 0);
  fx.pool = NULL; /* closing */
  wait_step(&w);
  assert_int_equal(w.status, ORM_ECANCELED);
  assert_int_equal(orm_tx_commit_async(d, NULL, NULL, NULL), ORM_ECLOSED);
  assert_int_equal(orm_tx_rollback_async(holder, NULL, NULL, NULL),
                   ORM_ECLOSED);
  orm_fx_close(&fx); /* the close callback ran once */
}

/* ---- 8. closing with work queued and in flight --------------------------- */

static void test_close_with_work(void **state) {
  open_fx(
      (orm_pool_config_t){.min_conns = 2, .max_conns = 2, .pipeline_depth = 4});
  enum { N = 200 };
  orm_step_t once[N];
  memset(once, 0, sizeof once);
  count_rows("SELECT 1"); /* connected */
  for (int i = 0; i < N; i++) {
    const char *sql = i % 10 == 0 ? "SELECT pg_sleep(5)" : "SELECT 1";
    assert_int_equal(
        orm_query_async(fx.pool, sql, NULL, 0, orm_fx_on_step, &once[i], NULL),
        0);
  }
  orm_fx_run_ms(&fx, 50); /* some are in flight, the rest queued */
  uint64_t start = uv_hrtime();
  orm_fx_close(&fx);
  /* The sleeps were cancelled, not waited for. */
  assert_true(uv_hrtime() - start < 3000000000ULL);
  int ok = 0, cancelled = 0;
  for (int i = 0; i < N; i++) {
    assert_int_equal(once[i].done, 1);
    if (once[i].status == 0)
      ok++;
    else if (once[i].status == ORM_ECANCELED)
      cancelled++;
  }
  assert_int_equal(ok + cancelled, N);
  assert_true(cancelled > 0);
}

static void close_from_callback(orm_future_t *f, void *data) {
  orm_step_t *o = data;
  o->done++;
  assert_int_equal(orm_pool_close(fx.pool, on_closed), 0);
  /* Afterwards the pool refuses work, even here. */
  assert_int_equal(
      orm_query_async(fx.pool, "SELECT 1", NULL, 0, NULL, NULL, NULL),
      ORM_ECLOSED);
  fx.pool = NULL; /* closing */
}

static void test_close_inside_callback(void **state) {
  open_fx((orm_pool_config_t){0});
  orm_step_t first = {0}, later[20];
  memset(later, 0, sizeof later);
  assert_int_equal(orm_query_async(fx.pool, "SELECT 1", NULL, 0,
                                   close_from_callback, &first, NULL),
                   0);
  for (int i = 0; i < 20; i++)
    assert_int_equal(orm_query_async(fx.pool, "SELECT 2", NULL, 0,
                                     orm_fx_on_step, &later[i], NULL),
                     0);
  orm_test_run(&fx.loop, 10000);
  assert_int_equal(first.done, 1);
  assert_int_equal(fx.closed, 1);
  for (int i = 0; i < 20; i++)
    assert_int_equal(later[i].done, 1);
  orm_fx_close(&fx);
}

/* A future the caller holds outlives the pool. */
static void test_future_outlives_pool(void **state) {
  open_fx((orm_pool_config_t){0});
  orm_step_t o = {0};
  orm_future_t *f;
  assert_int_equal(
      orm_query_async(fx.pool, "SELECT 42", NULL, 0, orm_fx_on_step, &o, &f),
      0);
  while (!o.done)
    uv_run(&fx.loop, UV_RUN_ONCE);
  orm_fx_close(&fx);
  assert_int_equal(orm_future_status(f), 0);
  int64_t v;
  assert_int_equal(orm_result_int(orm_future_value(f), 0, 0, &v), 0);
  assert_int_equal(v, 42);
  assert_int_equal(orm_future_cancel(f), ORM_ESTATE);
  orm_future_release(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transactions),
      cmocka_unit_test(test_tx_one_flight),
      cmocka_unit_test(test_tx_pipelined),
      cmocka_unit_test(test_tx_pipelined_under_kills),
      cmocka_unit_test(test_tx_begin_fails),
      cmocka_unit_test(test_close_with_work),
      cmocka_unit_test(test_close_inside_callback),
      cmocka_unit_test(test_future_outlives_pool),
      cmocka_unit_test(test_terminate_backend),
      cmocka_unit_test(test_server_restart),
      cmocka_unit_test(test_server_down_at_start),
      cmocka_unit_test(test_refusals_name_their_sqlstate),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
