/* SPDX-License-Identifier: MIT */
/* Faults under load, with the bookkeeping a reliability engineer keeps:
 * two-row transactions and single-row writes through models while
 * backends are killed and the server restarts; deadlines racing each
 * other's cancels. Every callback must run exactly once, no acknowledged
 * write may be lost, no transaction may be half applied. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA "fault_load"
#define APP SCHEMA /* the fixture's application_name */

#define LEDGER_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(tx_id, ORM_T_INT8, int64_t, 0)                                             \
  X(part, ORM_T_INT4, int32_t, 0)
ORM_MODEL_DECLARE(ledger, LEDGER_FIELDS);
ORM_MODEL_DEFINE(ledger, "ledger", LEDGER_FIELDS);

static int quick(void) { return getenv("UVORM_TEST_QUICK") != NULL; }

static void open_fx(orm_fx_t *fx, const orm_pool_config_t *cfg) {
  orm_fx_open(fx, SCHEMA, 0, cfg);
  orm_fx_sql(fx, "CREATE TABLE ledger (id bigserial PRIMARY KEY, "
                 "tx_id int8 NOT NULL, part int4 NOT NULL, "
                 "UNIQUE (tx_id, part))");
}

/* ---- the load --------------------------------------------------------- */

enum { OP_INSERT, OP_COMMIT, OP_PART };

typedef struct load_s load_t;

typedef struct {
  load_t *load;
  int64_t id;   /* tx_id of the transaction, or of a single write */
  int kind;     /* OP_* */
  int calls;    /* callbacks run: must end at exactly 1 */
  int status;
  ledger_t row; /* the row a single write or a part inserts */
} op_t;

struct load_s {
  orm_fx_t *fx;
  op_t **ops;
  size_t nops, cap;
  int in_flight;
  int target;
  int running;
  int64_t next_id;
  uv_timer_t timer;
  int by_code[32]; /* outcomes by -code */
};

static void op_done(orm_future_t *f, void *data) {
  op_t *op = data;
  op->calls++;
  op->status = orm_future_status(f);
  if (op->kind != OP_PART) {
    op->load->in_flight--;
    op->load->by_code[-op->status]++;
  }
}

static op_t *new_op(load_t *l, int kind, int64_t id) {
  if (l->nops == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 1024;
    l->ops = realloc(l->ops, l->cap * sizeof *l->ops);
    assert_non_null(l->ops);
  }
  op_t *op = calloc(1, sizeof *op);
  assert_non_null(op);
  op->load = l;
  op->kind = kind;
  op->id = id;
  l->ops[l->nops++] = op;
  return op;
}

static void issue_one(load_t *l) {
  int64_t id = l->next_id++;
  orm_pool_t *pool = l->fx->pool;
  if (id % 2 == 0) {
    op_t *op = new_op(l, OP_INSERT, id);
    op->row = (ledger_t){.tx_id = id, .part = 0};
    assert_int_equal(
        orm_insert_async(pool, ledger_model(), &op->row, op_done, op, NULL), 0);
  } else {
    orm_tx_t *tx;
    assert_int_equal(orm_tx_begin(pool, &tx), 0);
    for (int part = 1; part <= 2; part++) {
      op_t *p = new_op(l, OP_PART, id);
      p->row = (ledger_t){.tx_id = id, .part = part};
      assert_int_equal(
          orm_insert_async(tx, ledger_model(), &p->row, op_done, p, NULL),
          0);
    }
    op_t *op = new_op(l, OP_COMMIT, id);
    assert_int_equal(orm_tx_commit_async(tx, op_done, op, NULL), 0);
  }
  l->in_flight++;
}

/* Topped up from a timer: requests that fail fast while the server is
 * down must not spin the loop. */
static void on_load_timer(uv_timer_t *timer) {
  load_t *l = timer->data;
  while (l->running && l->in_flight < l->target)
    issue_one(l);
}

static void load_start(load_t *l, orm_fx_t *fx, int target) {
  memset(l, 0, sizeof *l);
  l->fx = fx;
  l->target = target;
  l->running = 1;
  l->next_id = 1;
  uv_timer_init(&fx->loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, on_load_timer, 0, 2);
}

static void load_stop(load_t *l) {
  l->running = 0;
  uv_close((uv_handle_t *)&l->timer, NULL);
  uv_update_time(&l->fx->loop);
  uint64_t end = uv_now(&l->fx->loop) + 30000;
  while (l->in_flight > 0) {
    uv_run(&l->fx->loop, UV_RUN_ONCE);
    if (uv_now(&l->fx->loop) > end)
      fail_msg("%d requests never completed", l->in_flight);
  }
  orm_fx_run_ms(l->fx, 50); /* parts complete with their transaction */
}

static void kill_backends(orm_fx_t *fx, int max) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT count(pg_terminate_backend(pid)) FROM (SELECT pid FROM "
           "pg_stat_activity WHERE application_name = '" APP "' "
           "ORDER BY random() LIMIT %d) k",
           max);
  (void)orm_fx_int(fx, sql);
}

/* Checks the books against the table and prints the figures. */
static void audit(load_t *l, const char *what) {
  orm_fx_t *fx = l->fx;
  int missing = 0, extra = 0, lost = 0, half = 0, committed = 0;
  int in_doubt = 0, singles = 0, written = 0, txs = 0;
  PGresult *r = PQexec(fx->admin, "SELECT tx_id, count(*) FROM ledger "
                                  "GROUP BY tx_id ORDER BY tx_id");
  assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
  int64_t max_id = l->next_id;
  unsigned char *rows = calloc((size_t)max_id + 1, 1);
  for (int i = 0; i < PQntuples(r); i++) {
    int64_t id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    assert_true(id > 0 && id < max_id);
    rows[id] = (unsigned char)atoi(PQgetvalue(r, i, 1));
  }
  PQclear(r);
  for (size_t i = 0; i < l->nops; i++) {
    op_t *op = l->ops[i];
    if (op->calls == 0)
      missing++;
    if (op->calls > 1)
      extra++;
    if (op->kind == OP_INSERT) {
      singles++;
      written += op->status == 0;
      if (op->status == 0 && rows[op->id] != 1)
        lost++;
      if (op->status == 0 && op->row.id <= 0)
        lost++; /* acknowledged without its generated key */
    } else if (op->kind == OP_COMMIT) {
      txs++;
      if (rows[op->id] == 1)
        half++;
      if (op->status == 0) {
        committed++;
        if (rows[op->id] != 2)
          lost++;
      } else if (rows[op->id] == 2) {
        /* The connection died after COMMIT went out: it may have
         * committed, and ORM_ECONNLOST says exactly that. */
        assert_int_equal(op->status, ORM_ECONNLOST);
        in_doubt++;
      }
    }
  }
  free(rows);
  char codes[512] = "";
  size_t at = 0;
  for (int c = 0; c < 32; c++)
    if (l->by_code[c] > 0)
      at += (size_t)snprintf(codes + at, sizeof codes - at, " %s=%d",
                             c == 0 ? "ok" : orm_err_name(-c), l->by_code[c]);
  print_message("%s: %zu callbacks expected (%d single writes, %d "
                "acknowledged; %d two-row transactions, %d committed, %d in "
                "doubt after ORM_ECONNLOST on COMMIT); outcomes of writes "
                "and COMMITs:%s; callbacks missing %d, extra %d; "
                "acknowledged writes lost %d; half-applied transactions %d\n",
                what, l->nops, singles, written, txs, committed, in_doubt,
                codes, missing, extra, lost, half);
  assert_int_equal(missing, 0);
  assert_int_equal(extra, 0);
  assert_int_equal(lost, 0);
  assert_int_equal(half, 0);
  assert_true(written > 0);
  assert_true(committed > 0);
  for (size_t i = 0; i < l->nops; i++)
    free(l->ops[i]);
  free(l->ops);
}

/* Only what a connection loss explains: lost, refused while down,
 * skipped behind a failure in the same transaction, or a transaction
 * whose BEGIN could not run. */
static void expect_codes(const load_t *l) {
  for (int c = 1; c < 32; c++) {
    int code = -c;
    if (l->by_code[c] > 0 && code != ORM_ECONNLOST && code != ORM_ECONNECT &&
        code != ORM_ESKIPPED)
      fail_msg("%d requests failed with %s", l->by_code[c], orm_err_name(code));
  }
}

static void test_transactions_while_backends_die(void **state) {
  orm_fx_t fx;
  orm_pool_config_t cfg = {.min_conns = 4, .max_conns = 4,
                           .reconnect_min_ms = 20, .reconnect_max_ms = 200};
  open_fx(&fx, &cfg);
  load_t l;
  load_start(&l, &fx, 48);
  int kills = quick() ? 8 : 25;
  for (int i = 0; i < kills; i++) {
    orm_fx_run_ms(&fx, quick() ? 150 : 80);
    kill_backends(&fx, 2);
  }
  orm_fx_run_ms(&fx, 300);
  load_stop(&l);
  expect_codes(&l);
  audit(&l, "killed backends");
  orm_fx_close(&fx);
}

static void test_transactions_across_restarts(void **state) {
  if (!orm_test_server_managed())
    skip();
  orm_fx_t fx;
  orm_pool_config_t cfg = {.min_conns = 2, .max_conns = 4,
                           .reconnect_min_ms = 20, .reconnect_max_ms = 200};
  open_fx(&fx, &cfg);
  load_t l;
  load_start(&l, &fx, 32);
  int restarts = quick() ? 1 : 3;
  for (int i = 0; i < restarts; i++) {
    orm_fx_run_ms(&fx, 400);
    orm_test_server("restart");
    /* The admin connection went with the server. */
    PQreset(fx.admin);
    assert_int_equal(PQstatus(fx.admin), CONNECTION_OK);
    orm_fx_sql(&fx, "SET search_path = " SCHEMA);
  }
  orm_fx_run_ms(&fx, 800);
  load_stop(&l);
  expect_codes(&l);
  audit(&l, "server restarts");
  orm_fx_close(&fx);
}

/* ---- deadlines racing each other's cancels ----------------------------- */

typedef struct {
  int done;
  int status;
  char sqlstate[6];
  uint64_t issued, ended, deadline;
  uv_loop_t *loop;
} timed_t;

static void on_timed(orm_future_t *f, void *data) {
  timed_t *t = data;
  t->done = 1;
  t->status = orm_future_status(f);
  t->ended = uv_now(t->loop);
  const orm_error_t *e = orm_future_error(f);
  snprintf(t->sqlstate, sizeof t->sqlstate, "%s", e ? e->sqlstate : "");
}

/* 100 short requests of varied length, each with a deadline of its own,
 * close to how long it takes: deadlines expire while statements run, and
 * each cancel races the end of its statement (a late one lands on the
 * next). Each request ends with its own answer or ORM_ETIMEDOUT at its own
 * deadline, never with a cancel meant for a neighbour (57014 "canceling
 * statement due to user request"). */
static void test_deadlines_never_hit_neighbours(void **state) {
  orm_fx_t fx;
  orm_fx_open(&fx, NULL, 0,
              &(orm_pool_config_t){.min_conns = 4, .max_conns = 4});
  enum { N = 100 };
  int rounds = quick() ? 4 : 12, timed_out = 0, answered = 0;
  for (int round = 0; round < rounds; round++) {
    static timed_t t[N];
    uv_update_time(&fx.loop);
    for (int i = 0; i < N; i++) {
      t[i] = (timed_t){.loop = &fx.loop, .issued = uv_now(&fx.loop),
                       .deadline = 20 + (uint64_t)((i * 7 + round) % 60)};
      orm_param_t p = ORM_FLOAT8(0.001 * (1 + (i * 13 + round) % 8));
      orm_future_t *f;
      assert_int_equal(orm_query_async(fx.pool, "SELECT pg_sleep($1)", &p, 1,
                                       on_timed, &t[i], &f),
                       0);
      assert_int_equal(orm_future_timeout(f, t[i].deadline), 0);
      orm_future_release(f);
    }
    for (int i = 0; i < N; i++) {
      while (!t[i].done)
        uv_run(&fx.loop, UV_RUN_ONCE);
    }
    for (int i = 0; i < N; i++) {
      if (t[i].status == ORM_ETIMEDOUT) {
        timed_out++;
        /* Never before its own deadline (timer granularity aside). */
        assert_true(t[i].ended - t[i].issued >= t[i].deadline - 1);
      } else if (t[i].status == 0) {
        answered++;
      } else {
        fail_msg("round %d, request %d: %s %s after %llu ms", round, i,
                 orm_err_name(t[i].status), t[i].sqlstate,
                 (unsigned long long)(t[i].ended - t[i].issued));
      }
    }
  }
  orm_pool_stats_t st;
  assert_int_equal(orm_pool_stats(fx.pool, &st), 0);
  print_message("deadlines: %d answered, %d timed out, 0 hit by a stray "
                "cancel (%llu statements re-sent)\n",
                answered, timed_out, (unsigned long long)st.resends);
  assert_true(timed_out > 0);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_transactions_while_backends_die),
      cmocka_unit_test(test_transactions_across_restarts),
      cmocka_unit_test(test_deadlines_never_hit_neighbours),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
