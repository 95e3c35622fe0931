/* SPDX-License-Identifier: MIT */
/* Through PgBouncer 1.18 in transaction mode (scripts/pg-test-cluster
 * --bouncer: a pool of 4 server connections), with the pool's
 * transaction_pooling switch: migrations (one run in a transaction, one
 * with CREATE INDEX CONCURRENTLY outside one), CRUD, the query builder,
 * relations (include and preload), a pipelined burst of 1000 finds and a
 * batch of inserts with a failure in the middle, binary COPY in and out and
 * a stream in chunks, transactions with a
 * savepoint; LISTEN refused with ORM_ENOTSUP; PgBouncer restarted under
 * load; PgBouncer's pool exhausted until its query_wait_timeout. */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEAM_FIELDS(X)                                                         \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)
#define TEAM_RELATIONS(R) R(players, ORM_HAS_MANY, player, team_id, "id")
ORM_MODEL_DECLARE_REL(team, TEAM_FIELDS, TEAM_RELATIONS);

#define PLAYER_FIELDS(X)                                                       \
  X(id, ORM_T_INT4, int32_t, ORM_F_PK)                                         \
  X(team_id, ORM_T_INT4, int32_t, 0)                                           \
  X(name, ORM_T_TEXT, const char *, 0)
#define PLAYER_RELATIONS(R) R(team, ORM_BELONGS_TO, team, team_id, NULL)
ORM_MODEL_DECLARE_REL(player, PLAYER_FIELDS, PLAYER_RELATIONS);

ORM_MODEL_DEFINE_REL(team, "bnc_teams", TEAM_FIELDS, TEAM_RELATIONS);
ORM_MODEL_DEFINE_REL(player, "bnc_players", PLAYER_FIELDS, PLAYER_RELATIONS);

#define S(text) text, sizeof text - 1
static const orm_migration_source_t migrations[] = {
    {"20261206000000", "teams_and_players",
     S("CREATE TABLE bnc_teams (id int4 PRIMARY KEY, name text NOT NULL);\n"
       "CREATE TABLE bnc_players (id int4 PRIMARY KEY,\n"
       "  team_id int4 NOT NULL REFERENCES bnc_teams,\n"
       "  name text NOT NULL UNIQUE);\n"),
     S("DROP TABLE bnc_players;\nDROP TABLE bnc_teams;\n")},
    {"20261206000100", "players_by_team",
     S("-- uvorm:no-transaction\n"
       "CREATE INDEX CONCURRENTLY bnc_players_team ON bnc_players (team_id);\n"),
     S("-- uvorm:no-transaction\n"
       "DROP INDEX CONCURRENTLY bnc_players_team;\n")},
};

static const char *bouncer_dsn;
static PGconn *admin; /* the primary, directly */
static orm_pool_t *pool;

static orm_pool_t *open_pool(unsigned max_conns) {
  orm_pool_t *p;
  orm_pool_config_t cfg = {.conninfo = bouncer_dsn,
                           .min_conns = 1,
                           .max_conns = max_conns,
                           .reconnect_min_ms = 20,
                           .reconnect_max_ms = 200,
                           .transaction_pooling = true};
  assert_int_equal(orm_pool_open(&p, &loop, &cfg), 0);
  return p;
}

static int closed;
static void on_pool_closed(orm_pool_t *p, void *data) {
  (void)p;
  (void)data;
  closed = 1;
}

static int flag_set(void *arg) { return *(int *)arg; }

/* Other pools stay open on the loop: runs it until this one has closed. */
static void close_pool(orm_pool_t *p) {
  closed = 0;
  assert_int_equal(orm_pool_close(p, on_pool_closed), 0);
  run_until(flag_set, &closed, 15000, "the pool to close");
}

/* ---- migrations ------------------------------------------------------------ */

typedef struct {
  int done, code;
  size_t nsteps;
  char message[256];
} migrated_t;

static void on_migrated(const orm_migrate_report_t *r, void *data) {
  migrated_t *m = data;
  m->done = 1;
  m->code = r->code;
  m->nsteps = r->nsteps;
  snprintf(m->message, sizeof m->message, "%s", r->code ? r->message : "");
}

static int migrated_done(void *arg) { return ((migrated_t *)arg)->done; }

static size_t migrate(orm_migrate_action_t action, unsigned steps) {
  orm_migrations_t *set;
  char err[256];
  assert_int_equal(orm_migrations_load_embedded(
                       migrations, sizeof migrations / sizeof *migrations,
                       &set, err, sizeof err),
                   0);
  migrated_t m = {0};
  orm_migrate_options_t opt = {
      .action = action, .steps = steps, .table = "bnc_migrations"};
  assert_int_equal(orm_migrate_async(pool, set, &opt, on_migrated, &m), 0);
  run_until(migrated_done, &m, 30000, "migrations");
  orm_migrations_free(set);
  if (m.code != 0)
    fail_msg("migrations: %s: %s", orm_err_name(m.code), m.message);
  return m.nsteps;
}

static int setup(void **state) {
  (void)state;
  pg_sql(admin, "SET client_min_messages = warning");
  pg_sql(admin, "DROP TABLE IF EXISTS bnc_players, bnc_teams, bnc_migrations, "
                "bnc_load");
  pool = open_pool(4);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  close_pool(pool);
  return 0;
}

static void test_migrations(void **state) {
  (void)state;
  assert_int_equal(migrate(ORM_MIGRATE_UP, 0), 2);
  assert_int_equal(migrate(ORM_MIGRATE_UP, 0), 0); /* nothing left */
  assert_int_equal(pg_int(admin, "SELECT count(*) FROM pg_indexes "
                                 "WHERE indexname = 'bnc_players_team'"),
                   1);
  /* Down and up again: both directions work behind the pooler. */
  assert_int_equal(migrate(ORM_MIGRATE_DOWN, 2), 2);
  assert_int_equal(pg_int(admin, "SELECT count(*) FROM pg_tables "
                                 "WHERE tablename = 'bnc_teams'"),
                   0);
  assert_int_equal(migrate(ORM_MIGRATE_UP, 0), 2);
}

/* ---- CRUD, builder, relations --------------------------------------------- */

/* Waits for the future a call put in *fp; fails the test if the call or
 * the future failed. */
static orm_future_t *await_future(int rc, orm_future_t **fp) {
  assert_int_equal(rc, 0);
  orm_future_t *f = *fp;
  while (orm_future_state(f) == ORM_FUTURE_PENDING)
    uv_run(&loop, UV_RUN_ONCE);
  if (orm_future_status(f) != 0)
    fail_msg("%s: %s", orm_err_name(orm_future_status(f)),
             orm_future_error(f)->message);
  return f;
}
/* `call` ends with `&f` (an orm_future_t *f in scope). */
#define AWAIT(call) await_future((call), &f)

static void test_crud_builder_relations(void **state) {
  (void)state;
  orm_future_t *f;
  team_t teams[3] = {{.id = 1, .name = "red"}, {.id = 2, .name = "green"},
                      {.id = 3, .name = "blue"}};
  player_t players[9];
  char names[9][16];
  for (int i = 0; i < 9; i++) {
    snprintf(names[i], sizeof names[i], "player %d", i + 1);
    players[i] = (player_t){.id = i + 1, .team_id = i % 3 + 1, .name = names[i]};
  }
  f = AWAIT(orm_insert_many_async(pool, team_model(), teams, 3, NULL,
                                        NULL, &f));
  orm_future_release(f);
  f = AWAIT(orm_insert_many_async(pool, player_model(), players, 9, NULL,
                                        NULL, &f));
  orm_future_release(f);

  /* find, update, find again, delete. */
  f = AWAIT(orm_find_async(pool, player_model(), ORM_INT4(5), NULL, NULL,
                                 &f));
  assert_string_equal(((player_t *)orm_future_row(f))->name, "player 5");
  orm_future_release(f);
  player_t p5 = {.id = 5, .team_id = 1, .name = "player five"};
  f = AWAIT(orm_update_async(pool, player_model(), &p5, 0, NULL, NULL,
                                   &f));
  orm_future_release(f);
  f = AWAIT(orm_find_async(pool, player_model(), ORM_INT4(5), NULL, NULL,
                                 &f));
  assert_string_equal(((player_t *)orm_future_row(f))->name, "player five");
  assert_int_equal(((player_t *)orm_future_row(f))->team_id, 1);
  orm_future_release(f);
  f = AWAIT(orm_delete_async(pool, player_model(), ORM_INT4(9), NULL,
                                   NULL, &f));
  orm_future_release(f);

  /* The builder: team 1's players by id, counted and listed. */
  orm_query_t *q;
  assert_int_equal(orm_query_new(&q, player_model()), 0);
  orm_query_where(q, "team_id", ORM_OP_EQ, ORM_INT4(1));
  orm_query_order_by(q, "id", ORM_ASC);
  f = AWAIT(orm_count_async(pool, NULL, q, NULL, NULL, &f));
  int64_t n = -1;
  orm_result_int(orm_future_value(f), 0, 0, &n);
  orm_future_release(f);
  f = AWAIT(orm_find_all_async(pool, NULL, q, NULL, NULL, &f));
  orm_query_free(q);
  orm_rows_t *rows = orm_future_value(f);
  assert_int_equal(orm_rows_count(rows), 4); /* 1, 4, 5 (moved), 7 */
  assert_int_equal(n, 4);
  assert_int_equal(((player_t *)orm_rows_at(rows, 2))->id, 5);
  orm_future_release(f);

  /* Relations: teams with their players in one query tree; then players'
   * teams preloaded onto rows in hand. */
  assert_int_equal(orm_query_new(&q, team_model()), 0);
  orm_query_order_by(q, "id", ORM_ASC);
  orm_query_include(q, "players");
  f = AWAIT(orm_find_all_async(pool, NULL, q, NULL, NULL, &f));
  orm_query_free(q);
  rows = orm_future_value(f);
  assert_int_equal(orm_rows_count(rows), 3);
  size_t per_team[3] = {4, 2, 2}; /* 9 deleted (team 3), 5 moved to team 1 */
  for (size_t i = 0; i < 3; i++) {
    team_t *t = orm_rows_at(rows, i);
    assert_true(t->players.loaded);
    assert_int_equal(t->players.len, per_team[i]);
  }
  orm_future_release(f);

  f = AWAIT(orm_find_all_async(pool, player_model(), NULL, NULL, NULL,
                                     &f));
  rows = orm_future_take(f);
  orm_future_release(f);
  f = AWAIT(orm_preload_async(pool, rows, "team", NULL, NULL, &f));
  orm_future_release(f);
  assert_int_equal(orm_rows_count(rows), 8);
  for (size_t i = 0; i < orm_rows_count(rows); i++) {
    player_t *p = orm_rows_at(rows, i);
    assert_true(p->team.loaded);
    assert_int_equal(p->team.item->id, p->team_id);
  }
  orm_rows_free(rows);
}

/* ---- pipelining ----------------------------------------------------------- */

typedef struct {
  int64_t want;
  int done, status;
  int64_t got;
} one_t;

static void on_one(orm_future_t *f, void *data) {
  one_t *o = data;
  o->done = 1;
  o->status = orm_future_status(f);
  if (o->status == 0)
    orm_result_int(orm_future_value(f), 0, 0, &o->got);
}

static int all_done(void *arg) {
  one_t *o = arg;
  for (; o->want >= 0; o++)
    if (!o->done)
      return 0;
  return 1;
}

static void test_pipelining(void **state) {
  (void)state;
  enum { N = 1000 };
  one_t *o = calloc(N + 1, sizeof *o);
  o[N].want = -1;
  for (int i = 0; i < N; i++) {
    o[i].want = i;
    orm_param_t p = ORM_INT8(i);
    /* The value and a server process: each answer must be its own. */
    assert_int_equal(orm_query_async(pool, "SELECT $1::int8 * 3", &p, 1,
                                     on_one, &o[i], NULL),
                     0);
  }
  run_until(all_done, o, 30000, "1000 pipelined queries");
  for (int i = 0; i < N; i++) {
    assert_int_equal(o[i].status, 0);
    assert_int_equal(o[i].got, (int64_t)i * 3);
  }
  free(o);
  /* 100 inserts sent together, number 50 a duplicate name: it fails alone,
   * the 99 others land once each. */
  static player_t batch[100];
  static char bnames[100][16];
  orm_step_t steps[100];
  memset(steps, 0, sizeof steps);
  for (int i = 0; i < 100; i++) {
    snprintf(bnames[i], sizeof bnames[i], "batch %d", i);
    batch[i] = (player_t){.id = 1000 + i, .team_id = 2,
                          .name = i == 50 ? "player 1" : bnames[i]};
    assert_int_equal(orm_insert_async(pool, player_model(), &batch[i],
                                      orm_fx_on_step, &steps[i], NULL),
                     0);
  }
  for (int i = 0; i < 100; i++)
    wait_step(&steps[i]);
  for (int i = 0; i < 100; i++) {
    if (i == 50) {
      assert_int_equal(steps[i].status, ORM_ESERVER);
      assert_string_equal(steps[i].sqlstate, "23505");
    } else {
      assert_int_equal(steps[i].status, 0);
    }
  }
  assert_int_equal(pg_int(admin, "SELECT count(*) FROM bnc_players "
                                 "WHERE id >= 1000"),
                   99);
}

/* ---- streams and COPY -------------------------------------------------------- */

static size_t streamed;
static void on_chunk(orm_stream_t *st, const orm_rows_t *rows, void *data) {
  (void)st;
  (void)data;
  streamed += orm_rows_count(rows);
}

static void test_streams_and_copy(void **state) {
  (void)state;
  enum { N = 500 };
  static player_t rows[N];
  static char names[N][16];
  for (int i = 0; i < N; i++) {
    snprintf(names[i], sizeof names[i], "copy %d", i);
    rows[i] = (player_t){.id = 2000 + i, .team_id = 1, .name = names[i]};
  }
  orm_future_t *f;
  f = AWAIT(orm_copy_in_rows_async(pool, player_model(), rows, N, NULL, NULL,
                                   &f));
  orm_future_release(f);
  assert_int_equal(pg_int(admin, "SELECT count(*) FROM bnc_players "
                                 "WHERE id >= 2000"),
                   N);
  /* Streamed in chunks of 100, in single-row mode. */
  streamed = 0;
  orm_param_t from = ORM_INT4(2000);
  f = AWAIT(orm_stream_async(pool, player_model(),
                             "SELECT id, team_id, name FROM bnc_players "
                             "WHERE id >= $1 ORDER BY id",
                             &from, 1, 100, on_chunk, NULL, NULL, NULL, &f));
  orm_future_release(f);
  assert_int_equal(streamed, N);
  /* The whole table by binary COPY out. */
  streamed = 0;
  f = AWAIT(orm_copy_out_rows_async(pool, player_model(), NULL, 100, on_chunk,
                                    NULL, NULL, NULL, &f));
  orm_future_release(f);
  assert_int_equal((int64_t)streamed,
                   pg_int(admin, "SELECT count(*) FROM bnc_players"));
}

/* ---- transactions ---------------------------------------------------------- */

static orm_tx_t *begin(void) {
  orm_future_t *f;
  f = AWAIT(orm_tx_begin_async(pool, NULL, NULL, &f));
  orm_tx_t *tx = orm_future_take(f);
  orm_future_release(f);
  return tx;
}

static void tx_end(orm_tx_t *tx, bool commit) {
  orm_future_t *f;
  int rc = commit ? orm_tx_commit_async(tx, NULL, NULL, &f)
                  : orm_tx_rollback_async(tx, NULL, NULL, &f);
  f = await_future(rc, &f);
  orm_future_release(f);
}

static void test_transactions(void **state) {
  (void)state;
  orm_future_t *f;
  /* Rolled back: its insert is gone; inside, it saw it. */
  orm_tx_t *tx = begin();
  team_t t = {.id = 10, .name = "rolled back"};
  f = AWAIT(orm_insert_async(tx, team_model(), &t, NULL, NULL, &f));
  orm_future_release(f);
  assert_int_equal(raw_int(orm_tx_exec(tx), "SELECT count(*) FROM bnc_teams "
                                            "WHERE id = 10"),
                   1);
  tx_end(tx, false);
  assert_int_equal(pg_int(admin, "SELECT count(*) FROM bnc_teams WHERE id = 10"),
                   0);

  /* A savepoint rolled back inside a committed transaction. */
  tx = begin();
  team_t kept = {.id = 11, .name = "kept"};
  team_t dropped = {.id = 12, .name = "dropped"};
  f = AWAIT(orm_insert_async(tx, team_model(), &kept, NULL, NULL, &f));
  orm_future_release(f);
  f = AWAIT(orm_tx_savepoint_async(tx, "sp", NULL, NULL, &f));
  orm_future_release(f);
  f = AWAIT(orm_insert_async(tx, team_model(), &dropped, NULL, NULL, &f));
  orm_future_release(f);
  f = AWAIT(orm_tx_rollback_to_async(tx, "sp", NULL, NULL, &f));
  orm_future_release(f);
  tx_end(tx, true);
  assert_int_equal(pg_int(admin, "SELECT count(*) FROM bnc_teams "
                                 "WHERE id IN (11, 12)"),
                   1);

  /* Eight at once on 8 connections, more than the pooler's 4 server
   * connections: PgBouncer holds 4 back until others commit. Each is queued
   * whole (BEGIN, an insert, COMMIT) and commits its own row. */
  orm_pool_t *p8 = open_pool(8);
  team_t rows[8];
  char names[8][16];
  orm_step_t inserted[8], committed[8];
  memset(inserted, 0, sizeof inserted);
  memset(committed, 0, sizeof committed);
  for (int i = 0; i < 8; i++) {
    orm_tx_t *t8;
    snprintf(names[i], sizeof names[i], "tx %d", i);
    rows[i] = (team_t){.id = 20 + i, .name = names[i]};
    assert_int_equal(orm_tx_begin(p8, &t8), 0);
    assert_int_equal(orm_insert_async(t8, team_model(), &rows[i], orm_fx_on_step,
                                      &inserted[i], NULL),
                     0);
    assert_int_equal(orm_tx_commit_async(t8, orm_fx_on_step, &committed[i], NULL),
                     0);
  }
  for (int i = 0; i < 8; i++) {
      wait_step(&committed[i]);
    assert_int_equal(inserted[i].status, 0);
    assert_int_equal(committed[i].status, 0);
  }
  close_pool(p8);
  assert_int_equal(pg_int(admin, "SELECT count(*) FROM bnc_teams "
                                 "WHERE id BETWEEN 20 AND 27"),
                   8);
}

static void on_note(orm_listen_t *l, const orm_notification_t *n, void *data) {
  (void)l;
  (void)n;
  (void)data;
  fail_msg("no notification can arrive");
}

static void test_listen_refused(void **state) {
  (void)state;
  orm_listen_t *l = NULL;
  assert_int_equal(orm_listen(pool, "bnc", on_note, NULL, &l), ORM_ENOTSUP);
  assert_null(l);
  /* NOTIFY is an ordinary statement: it works. */
  assert_int_equal(raw_int(orm_pool_exec(pool),
                           "SELECT count(*) FROM (SELECT pg_notify('bnc', "
                           "'x')) n"),
                   1);
}

/* ---- faults ----------------------------------------------------------------- */

typedef struct {
  int running, in_flight, ok, lost, refused, other, other_code;
  int64_t issued, callbacks;
  uint64_t first_ok_after; /* ms from `mark` to the first success after it */
  uint64_t mark;
  uv_timer_t timer;
} load_t;

static load_t load;

static void on_loaded(orm_future_t *f, void *data) {
  load_t *l = data;
  l->in_flight--;
  l->callbacks++;
  int st = orm_future_status(f);
  if (st == 0) {
    l->ok++;
    if (l->mark != 0 && l->first_ok_after == 0)
      l->first_ok_after = uv_now(&loop) - l->mark;
  } else if (st == ORM_ECONNLOST) {
    l->lost++;
  } else if (st == ORM_ECONNECT) {
    l->refused++;
  } else {
    l->other++;
    l->other_code = st;
    print_message("other: %s %s\n", orm_err_name(st),
                  orm_future_error(f)->message);
  }
}

static void top_up(uv_timer_t *t) {
  load_t *l = t->data;
  while (l->running && l->in_flight < 16) {
    orm_param_t p = ORM_INT4((int32_t)(l->issued % 3 + 1));
    if (orm_find_async(pool, team_model(), p, on_loaded, l, NULL) != 0)
      break;
    l->in_flight++;
    l->issued++;
  }
}

static int load_recovered(void *arg) {
  return ((load_t *)arg)->first_ok_after != 0;
}

static int load_idle(void *arg) { return ((load_t *)arg)->in_flight == 0; }

static void test_restart_under_load(void **state) {
  (void)state;
  memset(&load, 0, sizeof load);
  load.running = 1;
  uv_timer_init(&loop, &load.timer);
  load.timer.data = &load;
  uv_timer_start(&load.timer, top_up, 0, 2);
  run_ms(300);
  assert_true(load.ok > 0);
  /* On another thread: the load goes on while PgBouncer stops and starts. */
  int restarted = 0;
  topology_async("restart", "bouncer", &restarted);
  run_until(flag_set, &restarted, 30000, "PgBouncer's restart");
  uv_update_time(&loop);
  load.mark = uv_now(&loop);
  run_until(load_recovered, &load, 15000, "a success after the restart");
  run_ms(300);
  load.running = 0;
  uv_close((uv_handle_t *)&load.timer, NULL);
  run_until(load_idle, &load, 15000, "the load to finish");
  print_message("PgBouncer restarted under load: %d ok, %d lost, %d refused, "
                "%d other; ok again %llu ms after it was back\n",
                load.ok, load.lost, load.refused, load.other,
                (unsigned long long)load.first_ok_after);
  assert_int_equal(load.other, 0);
  assert_int_equal(load.callbacks, load.issued);
  assert_true(load.lost + load.refused > 0); /* the restart was seen */
  assert_true(load.first_ok_after < 5000);
}

static void test_pool_exhausted(void **state) {
  (void)state;
  /* PgBouncer's admin console: a short query_wait_timeout for this test. */
  char dsn[512];
  snprintf(dsn, sizeof dsn, "%s dbname=pgbouncer", bouncer_dsn);
  PGconn *console = pg_connect(dsn);
  pg_sql(console, "SET query_wait_timeout = 1");
  /* Its 4 server connections held by open transactions. */
  PGconn *hold[4];
  for (int i = 0; i < 4; i++) {
    hold[i] = pg_connect(bouncer_dsn);
    pg_sql(hold[i], "BEGIN");
    pg_sql(hold[i], "SELECT 1");
  }
  orm_pool_t *p = open_pool(2);
  orm_step_t s = {0};
  uv_update_time(&loop);
  uint64_t t0 = uv_now(&loop);
  assert_int_equal(orm_query_async(p, "SELECT 1", NULL, 0, orm_fx_on_step, &s, NULL),
                   0);
  wait_step(&s);
  uint64_t waited = uv_now(&loop) - t0;
  print_message("PgBouncer's pool exhausted: %s (%s) after %llu ms: %s\n",
                orm_err_name(s.status), s.sqlstate,
                (unsigned long long)waited, s.message);
  /* PgBouncer 1.18 ends the client's session: the request's connection is
   * lost, with PgBouncer's reason. */
  assert_true(s.status == ORM_ECONNLOST || s.status == ORM_ESERVER);
  assert_non_null(strstr(s.message, "query_wait_timeout"));
  assert_true(waited >= 900);
  /* Released: the same pool recovers by itself. */
  for (int i = 0; i < 4; i++) {
    pg_sql(hold[i], "COMMIT");
    PQfinish(hold[i]);
  }
  pg_sql(console, "SET query_wait_timeout = 120");
  PQfinish(console);
  assert_int_equal(raw_int(orm_pool_exec(p), "SELECT 7"), 7);
  close_pool(p);
}

int main(void) {
  bouncer_dsn = getenv("UVORM_TEST_BOUNCER_DSN");
  const char *primary = getenv("UVORM_TEST_PRIMARY_DSN");
  if (bouncer_dsn == NULL || primary == NULL) {
    fprintf(stderr, "run through scripts/pg-test-cluster exec (--bouncer)\n");
    return 77;
  }
  assert_int_equal(uv_loop_init(&loop), 0);
  admin = pg_connect(primary);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_migrations),
      cmocka_unit_test(test_crud_builder_relations),
      cmocka_unit_test(test_pipelining),
      cmocka_unit_test(test_streams_and_copy),
      cmocka_unit_test(test_transactions),
      cmocka_unit_test(test_listen_refused),
      cmocka_unit_test(test_restart_under_load),
      cmocka_unit_test(test_pool_exhausted),
  };
  int rc = cmocka_run_group_tests(tests, setup, teardown);
  PQfinish(admin);
  uv_loop_close(&loop);
  return rc;
}
