/* SPDX-License-Identifier: MIT */
/* bench_workloads: TechEmpower-style database workloads through uvorm's
 * models on the pool, on the tables bench_load creates.
 *
 *   bench_workloads --workload NAME [--mode=pipeline|nopipe|txpool] [-P N]
 *                   [-C N] [--duration S] [--warmup S] [--conninfo STR]
 *                   [--csv FILE]
 *
 * C units of work are in flight in total; each is one operation, timed from
 * its first call to the callback that completes it, and issued again from
 * that callback. Workloads (a "find" is orm_find_async() of a random world
 * row by id, hydrated into a world_t and checked):
 *
 *   select    orm_query_async() of `SELECT $1::int4` with ORM_INT4 of a
 *             counter, the one row checked against it: a round trip through
 *             the pool and nothing else (needs no tables);
 *   find      one find;
 *   queries   BATCH finds joined with orm_future_all();
 *   fortunes  every fortune row (orm_find_all_async()), one more added in
 *             memory, sorted by message;
 *   update    BATCH finds joined, then each row given a new random number
 *             and written back with orm_update_async() (field mask:
 *             randomnumber), the BATCH writes in flight together and joined;
 *   update-many
 *             the same, but the BATCH writes in one
 *             orm_update_many_async() (one statement: UPDATE ... FROM
 *             unnest). Not in TechEmpower's list, which allows it ("batches
 *             of update statements or individual update statements that
 *             affect multiple rows"); compared with raw libpq's `update`;
 *   update-tx the same as update, but the BATCH writes (in key order) go in one
 *             transaction: BEGIN, the writes with orm_update_async() and
 *             COMMIT, issued at once. Not in TechEmpower's list: `update`
 *             deadlocks in pipeline mode (see bench/README.md), this cannot;
 *   insert    one users row with a unique email (orm_insert_async(), which
 *             writes the generated id back);
 *   bulk      every users row in one result (orm_find_all_async() with no
 *             query);
 *   tx        BEGIN; a find of one world row and an update of another;
 *             COMMIT (all four issued at once with orm_tx_begin(): one
 *             flight);
 *   relations REL_BATCH consecutive conversations from a random first id
 *             (WHERE id >= $1 ORDER BY id LIMIT REL_BATCH) with their
 *             messages and each message's usage record, eagerly loaded:
 *             orm_query_include(q, "messages.usage") and
 *             orm_find_all_async(), which sends the query and one statement
 *             per relation in one flight, in a read-only REPEATABLE READ
 *             transaction (see relations.h for the data);
 *   relations-1k
 *             the same rows the way most ORMs load them, 1+K round trips:
 *             the conversations; once they are in, their messages
 *             (orm_query_where_in on conversation_id); once those are in,
 *             their usage records (where_in on message_id); then the
 *             children stitched to their parents by hand, into the same
 *             relation members.
 *
 * The models name no schema: every connection gets
 * `options=-c search_path=BENCH_SCHEMA`, added to the conninfo with
 * PQconninfoParse() (after options already given, or $PGOPTIONS).
 *
 * Modes: `pipeline` (the pool's default; pipeline_depth spreads the
 * requests of C units over the P connections, syncs are batched per loop
 * turn by the pool) and `nopipe` (the pool's no_pipeline: one request at a
 * time per connection, the others wait in the pool's queue, and their
 * latency includes the wait), and `txpool`: pipeline with the pool's
 * transaction_pooling (unnamed statements only), for a server behind
 * PgBouncer in transaction mode (bench/bouncer.sh; PgBouncer ignores the
 * `options` above, so that script sets the role's search_path instead).
 * The result line and CSV row carry the mode as
 * "MODE/WORKLOAD", e.g. "pipeline/find". After it, every run prints the
 * pool's counters ("uvorm pool: queries N, errors N, ...", warm-up
 * included).
 *
 * The run starts once all P connections are up. Before it, the models the
 * workload uses are checked against their tables (orm_model_verify_async():
 * run bench_load first; select uses none), and bulk learns how many users
 * there are. After an insert run the rows it inserted are deleted again, so
 * the tables stay as loaded. Wrong answers and failed operations are
 * failures; any makes the exit status non-zero, and a wrong first answer of
 * a relations workload stops the run at once.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <uv.h>
#include <uvorm.h>

#include "domain.h"
#include "harness.h"
#include "relations.h"
#include "tfb.h"

#define DRIVER "uvorm"
/* Finds per unit of `queries` and rows per unit of `update`, as
 * TechEmpower's runs with queries=20. */
#define BATCH 20
/* How long the pool gets to bring up its P connections. */
#define CONNECT_WAIT_MS 15000
/* How often the connection count is looked at while waiting. */
#define CONNECT_POLL_MS 2
/* How long the units in flight get to finish after the measured phase. */
#define DRAIN_TIMEOUT_MS 15000
/* A run with this many failures stops: something is broken, not noisy. */
#define MAX_FAILURES 1000
/* Inserted users' emails end in this, and are deleted by it afterwards. */
#define INSERT_DOMAIN "@insert.bench"

/* The first is the default. */
typedef enum { MODE_PIPELINE, MODE_NOPIPE, MODE_TXPOOL, MODE_COUNT } pool_mode_t;

static const char *const mode_names[MODE_COUNT] = {
    [MODE_PIPELINE] = "pipeline", [MODE_NOPIPE] = "nopipe",
    [MODE_TXPOOL] = "txpool"};

struct unit;
struct driver;

/* Starts a unit: 0, or an ORM_E* code from a call (nothing then completes
 * the unit). */
typedef int (*unit_start_fn)(struct unit *u);

/* The first is the default. */
typedef enum {
  W_FIND,
  W_SELECT,
  W_QUERIES,
  W_FORTUNES,
  W_UPDATE,
  W_UPDATE_TX,
  W_UPDATE_MANY,
  W_INSERT,
  W_BULK,
  W_TX,
  W_RELATIONS,
  W_RELATIONS_1K,
  W_COUNT
} workload_id_t;

static const char *const workload_names[W_COUNT] = {
    [W_FIND] = "find",         [W_SELECT] = "select", [W_QUERIES] = "queries",
    [W_FORTUNES] = "fortunes", [W_UPDATE] = "update", [W_UPDATE_TX] = "update-tx",
    [W_UPDATE_MANY] = "update-many",
    [W_INSERT] = "insert",     [W_BULK] = "bulk",     [W_TX] = "tx",
    [W_RELATIONS] = "relations", [W_RELATIONS_1K] = "relations-1k",
};

/* ---- the relations workloads' models -------------------------------------- */

/* The tables of relations.h. Prefixes of their own: the sample domain's
 * conversation, message and usage_record (domain.h) are linked in too. */
#define RELCONV_FIELDS(X)                                                      \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(user_id, ORM_T_INT8, int64_t, 0)                                           \
  X(title, ORM_T_TEXT, const char *, 0)                                        \
  X(started_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
#define RELCONV_RELATIONS(R)                                                   \
  R(messages, ORM_HAS_MANY, relmsg, conversation_id, "id")
ORM_MODEL_DECLARE_REL(relconv, RELCONV_FIELDS, RELCONV_RELATIONS);

#define RELMSG_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(conversation_id, ORM_T_INT8, int64_t, 0)                                   \
  X(role, ORM_T_TEXT, const char *, 0)                                         \
  X(content, ORM_T_TEXT, const char *, 0)                                      \
  X(tokens, ORM_T_INT4, int32_t, 0)                                            \
  X(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED)
#define RELMSG_RELATIONS(R) R(usage, ORM_HAS_ONE, relusage, message_id, NULL)
ORM_MODEL_DECLARE_REL(relmsg, RELMSG_FIELDS, RELMSG_RELATIONS);

#define RELUSAGE_FIELDS(X)                                                     \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(message_id, ORM_T_INT8, int64_t, ORM_F_UNIQUE)                             \
  X(prompt_tokens, ORM_T_INT4, int32_t, 0)                                     \
  X(completion_tokens, ORM_T_INT4, int32_t, 0)                                 \
  X(cost, ORM_T_NUMERIC, const char *, 0)
ORM_MODEL_DECLARE(relusage, RELUSAGE_FIELDS);

ORM_MODEL_DEFINE_REL(relconv, "conversations", RELCONV_FIELDS, RELCONV_RELATIONS);
ORM_MODEL_DEFINE_REL(relmsg, "messages", RELMSG_FIELDS, RELMSG_RELATIONS);
ORM_MODEL_DEFINE(relusage, "usage_records", RELUSAGE_FIELDS);

/* Messages (and usage records) of one relations unit. */
#define REL_UNIT_MESSAGES (REL_BATCH * REL_MESSAGES_PER)

/* The most tables one workload uses. */
#define WORKLOAD_MODELS 3

struct workload {
  unit_start_fn start;
  /* The most requests one unit has in flight at once: sizes the pool's
   * pipeline depth and queue. */
  unsigned requests;
  /* The tables the workload reads or writes, checked before the run; NULL
   * after the last. */
  const orm_model_t *(*models[WORKLOAD_MODELS])(void);
};

/* One unit of work in flight; reused for the next one when it completes. */
struct unit {
  struct driver *drv;
  uint64_t issued_ns;
  int32_t ids[BATCH];           /* the world ids asked for */
  orm_future_t *futs[BATCH];    /* references held for orm_future_all() */
  world_t rows[BATCH];          /* update: what is written back */
  user_t user;                  /* insert: the row, id written back */
  char email[64];
  orm_future_t *tx_read, *tx_write; /* tx: references to its statements */
  world_t tx_row;               /* tx: the row written */
  int64_t rel_start;            /* relations: the first conversation's id */
  orm_rows_t *rel_convs, *rel_msgs; /* relations-1k: the answers so far */
  orm_param_t rel_keys[REL_UNIT_MESSAGES]; /* relations-1k: the next keys */
};

typedef enum {
  DRV_CONNECTING, /* waiting for the pool's P connections */
  DRV_PREPARING,  /* checking the tables before the run */
  DRV_RUNNING,    /* issuing units (warm-up and measured phase) */
  DRV_DRAINING,   /* run over; waiting for the units in flight */
  DRV_CLEANING,   /* deleting what an insert run inserted */
  DRV_CLOSING     /* orm_pool_close() called */
} driver_state_t;

struct driver {
  uv_loop_t loop;
  bench_opts_t opts;
  bench_run_t run;
  pool_mode_t mode;
  workload_id_t workload;
  const struct workload *wl; /* workloads[workload] */
  char *conninfo;      /* opts.conninfo with the search_path added */
  driver_state_t state;
  orm_pool_t *pool;
  /* Polls for the connections, then bounds the drain. */
  uv_timer_t timer;
  uint64_t wait_start_ns;
  struct unit *units;
  int outstanding; /* units started whose last callback has not run */
  int probing;     /* a query sent to learn why connecting fails */
  int verifying;   /* model checks not yet answered */
  int rel_checked; /* relations: the first unit's answer was right */
  int failed;      /* fatal: the run stopped */
  uint64_t rng;    /* splitmix64 state */
  int32_t next_value; /* select: the parameter of the next unit */
  /* insert */
  char email_prefix[40];
  uint64_t insert_seq;
  uint64_t inserted; /* rows inserted, warm-up included */
  /* bulk: what one unit must read */
  int64_t users_count, users_id_sum;
  size_t bulk_rows;
  orm_pool_stats_t stats; /* taken just before the pool is closed */
  int have_stats;
};

static void close_pool(struct driver *d);

BENCH_PRINTF(2, 3)
static void fatal(struct driver *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bench_vwarn(DRIVER, fmt, ap);
  va_end(ap);
  d->failed = 1;
  /* The run's done callback sees `failed` and does nothing. */
  bench_run_stop(&d->run);
  close_pool(d);
}

static void on_pool_closed(orm_pool_t *pool, void *data) {
  struct driver *d = data;
  d->pool = NULL;
}

/* Closing the pool cancels whatever is still in flight (only after a fatal
 * error: otherwise nothing is). Legal from inside the pool's callbacks. */
static void close_pool(struct driver *d) {
  if (d->state == DRV_CLOSING)
    return;
  d->state = DRV_CLOSING;
  if (!uv_is_closing((uv_handle_t *)&d->timer))
    uv_close((uv_handle_t *)&d->timer, NULL);
  if (d->pool == NULL)
    return;
  if (orm_pool_stats(d->pool, &d->stats) == 0)
    d->have_stats = 1;
  int rc = orm_pool_close(d->pool, on_pool_closed);
  if (rc != 0) {
    bench_warn(DRIVER, "orm_pool_close: %s", orm_strerror(rc));
    d->failed = 1;
  }
}

/* ---- random numbers ---------------------------------------------------------- */

static uint64_t rand_next(struct driver *d) {
  uint64_t z = (d->rng += UINT64_C(0x9E3779B97F4A7C15));
  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

/* Uniform in 1..WORLD_ROWS: a world id, or a random number for one. */
static int32_t rand_world(struct driver *d) {
  return 1 + (int32_t)(((rand_next(d) >> 32) * WORLD_ROWS) >> 32);
}

/* ---- checking answers ------------------------------------------------------- */

/* Whether `f` failed; counts and shows the failure if so. `what` names
 * the operation. */
static int failed_future(struct unit *u, orm_future_t *f, const char *what) {
  int status = orm_future_status(f);
  if (status == 0)
    return 0;
  const orm_error_t *e = orm_future_error(f);
  bench_run_wrong(&u->drv->run, DRIVER, "%s: %s: %s", what, orm_err_name(status),
                  e != NULL && e->message != NULL ? e->message : orm_strerror(status));
  return 1;
}

/* Checks a find of world row `id`: 1 when it answered (rightly or not),
 * 0 when it failed. Wrong answers are counted as failures. */
static int check_world(struct unit *u, orm_future_t *f, int32_t id) {
  if (failed_future(u, f, "find world"))
    return 0;
  const world_t *row = orm_future_row(f);
  if (row == NULL)
    bench_run_wrong(&u->drv->run, DRIVER, "find world %" PRId32 ": no row", id);
  else if (row->id != id)
    bench_run_wrong(&u->drv->run, DRIVER, "find world %" PRId32 ": got row %" PRId32,
                    id, row->id);
  else if (row->randomnumber < 1 || row->randomnumber > WORLD_ROWS || row->orm_nulls)
    bench_run_wrong(&u->drv->run, DRIVER,
                    "find world %" PRId32 ": randomnumber %" PRId32 " out of range",
                    id, row->randomnumber);
  return 1;
}

/* Checks an update of one world row: 1 when it answered, 0 when it failed. */
static int check_update(struct unit *u, orm_future_t *f, int32_t id) {
  if (failed_future(u, f, "update world"))
    return 0;
  const orm_result_t *res = orm_future_value(f);
  int64_t n = res != NULL ? orm_result_affected(res) : -1;
  if (n != 1)
    bench_run_wrong(&u->drv->run, DRIVER,
                    "update world %" PRId32 ": %" PRId64 " rows updated", id, n);
  return 1;
}

/* ---- units -------------------------------------------------------------------- */

static void finish_run(struct driver *d);

static void unit_start(struct unit *u, uint64_t now) {
  struct driver *d = u->drv;
  u->issued_ns = now;
  int rc = d->wl->start(u);
  if (rc != 0) {
    fatal(d, "%s: starting a unit: %s", d->opts.workload, orm_strerror(rc));
    return;
  }
  d->outstanding++;
}

/* The unit's last callback: `answered` when it got its answers (checked
 * already), 0 when an operation failed. Issues the next unit. */
static void unit_done(struct unit *u, int answered) {
  struct driver *d = u->drv;
  uint64_t now = bench_now_ns();

  d->outstanding--;
  if (d->failed)
    return; /* cancelled by the closing pool */
  if (answered)
    bench_run_record(&d->run, now - u->issued_ns);
  if (d->run.failures >= MAX_FAILURES) {
    fatal(d, "%" PRIu64 " failures: stopping", d->run.failures);
    return;
  }
  if (d->state == DRV_RUNNING && bench_run_active(&d->run))
    unit_start(u, now);
  else if (d->state == DRV_DRAINING && d->outstanding == 0)
    finish_run(d);
}

static void release_futures(struct unit *u, size_t n) {
  for (size_t i = 0; i < n; i++) {
    orm_future_release(u->futs[i]);
    u->futs[i] = NULL;
  }
}

/* BATCH finds of random world rows, joined: `cb` runs once all are in. */
static int start_finds(struct unit *u, orm_future_cb cb) {
  struct driver *d = u->drv;
  for (size_t i = 0; i < BATCH; i++) {
    u->ids[i] = rand_world(d);
    int rc = orm_find_async(d->pool, world_model(), ORM_INT4(u->ids[i]), NULL, NULL,
                            &u->futs[i]);
    if (rc != 0) {
      release_futures(u, i);
      return rc;
    }
  }
  int rc = orm_future_all(u->futs, BATCH, cb, u, NULL);
  if (rc != 0)
    release_futures(u, BATCH);
  return rc;
}

/* select ---------------------------------------------------------------------- */

/* Why the answer is not the one row holding `value`, or NULL. */
static const char *select_mismatch(const orm_result_t *res, int32_t value) {
  int64_t got;

  if (res == NULL)
    return "no result";
  if (orm_result_nrows(res) != 1 || orm_result_ncols(res) != 1)
    return "not one row of one column";
  if (orm_result_int(res, 0, 0, &got) != 0)
    return "not an integer";
  if (got != value)
    return "wrong value";
  return NULL;
}

static void select_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  struct driver *d = u->drv;
  if (d->failed || failed_future(u, f, "select")) {
    unit_done(u, 0);
    return;
  }
  const char *why = select_mismatch(orm_future_value(f), u->ids[0]);
  if (why != NULL)
    bench_run_wrong(&d->run, DRIVER, "answer to %" PRId32 ": %s", u->ids[0], why);
  unit_done(u, 1);
}

static int select_start(struct unit *u) {
  struct driver *d = u->drv;
  orm_param_t param = ORM_INT4(d->next_value);

  u->ids[0] = d->next_value;
  d->next_value = d->next_value == INT32_MAX ? 1 : d->next_value + 1;
  return orm_query_async(d->pool, "SELECT $1::int4", &param, 1, select_done, u, NULL);
}

/* find ------------------------------------------------------------------------ */

static void find_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  unit_done(u, u->drv->failed ? 0 : check_world(u, f, u->ids[0]));
}

static int find_start(struct unit *u) {
  u->ids[0] = rand_world(u->drv);
  return orm_find_async(u->drv->pool, world_model(), ORM_INT4(u->ids[0]), find_done,
                        u, NULL);
}

/* queries ------------------------------------------------------------------------ */

static void queries_done(orm_future_t *all, void *data) {
  struct unit *u = data;
  int answered = 1;
  for (size_t i = 0; i < BATCH && !u->drv->failed; i++)
    if (!check_world(u, u->futs[i], u->ids[i]))
      answered = 0;
  release_futures(u, BATCH);
  unit_done(u, answered);
}

static int queries_start(struct unit *u) {
  return start_finds(u, queries_done);
}

/* fortunes ----------------------------------------------------------------------- */

struct fortune_item {
  int32_t id;
  const char *message;
};

static int fortune_cmp(const void *a, const void *b) {
  return strcmp(((const struct fortune_item *)a)->message,
                ((const struct fortune_item *)b)->message);
}

static void fortunes_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  struct driver *d = u->drv;
  if (d->failed || failed_future(u, f, "fortunes")) {
    unit_done(u, 0);
    return;
  }
  const orm_rows_t *rows = orm_future_value(f);
  size_t n = rows != NULL ? orm_rows_count(rows) : 0;
  if (n != TFB_FORTUNES) {
    bench_run_wrong(&d->run, DRIVER, "fortunes: %zu rows, expected %d", n,
                    TFB_FORTUNES);
    unit_done(u, 1);
    return;
  }
  struct fortune_item list[TFB_FORTUNES + 1];
  unsigned seen = 0;
  const fortune_t *row = orm_rows_array(rows);
  for (size_t i = 0; i < n; i++, row++) {
    int32_t id = row->id;
    if (id < 1 || id > TFB_FORTUNES || (seen & (1u << id)) != 0 ||
        row->message == NULL || strcmp(row->message, tfb_fortune_messages[id - 1]) != 0) {
      bench_run_wrong(&d->run, DRIVER, "fortunes: unexpected row %" PRId32, id);
      unit_done(u, 1);
      return;
    }
    seen |= 1u << id;
    list[i].id = id;
    list[i].message = row->message;
  }
  list[n].id = 0;
  list[n].message = TFB_FORTUNE_ADDED;
  qsort(list, n + 1, sizeof list[0], fortune_cmp);
  /* By bytes, the <script> fortune (11) comes first, the Japanese one (12)
   * last. */
  if (list[0].id != 11 || list[n].id != 12)
    bench_run_wrong(&d->run, DRIVER, "fortunes: sorted wrongly");
  unit_done(u, 1);
}

static int fortunes_start(struct unit *u) {
  return orm_find_all_async(u->drv->pool, fortune_model(), NULL, fortunes_done, u,
                            NULL);
}

/* update ------------------------------------------------------------------------- */

static void update_written(orm_future_t *all, void *data) {
  struct unit *u = data;
  int answered = 1;
  for (size_t i = 0; i < BATCH && !u->drv->failed; i++)
    if (!check_update(u, u->futs[i], u->rows[i].id))
      answered = 0;
  release_futures(u, BATCH);
  unit_done(u, answered);
}

static int world_id_cmp(const void *a, const void *b) {
  int32_t x = ((const world_t *)a)->id, y = ((const world_t *)b)->id;
  return (x > y) - (x < y);
}

/* The rows read, each with a new random number, in key order (as
 * TechEmpower's implementations write them, so that writers lock rows in
 * one order). */
static void new_numbers(struct unit *u) {
  for (size_t i = 0; i < BATCH; i++) {
    u->rows[i].id = u->ids[i];
    u->rows[i].randomnumber = rand_world(u->drv);
    u->rows[i].orm_nulls = 0;
  }
  qsort(u->rows, BATCH, sizeof u->rows[0], world_id_cmp);
}

/* The BATCH writes of u->rows, in flight together and joined. */
static int update_issue(struct unit *u) {
  const uint64_t mask = ORM_FIELD_BIT(world, randomnumber);
  for (size_t i = 0; i < BATCH; i++) {
    int rc = orm_update_async(u->drv->pool, world_model(), &u->rows[i], mask,
                              NULL, NULL, &u->futs[i]);
    if (rc != 0) {
      release_futures(u, i);
      return rc;
    }
  }
  int rc = orm_future_all(u->futs, BATCH, update_written, u, NULL);
  if (rc != 0)
    release_futures(u, BATCH);
  return rc;
}

/* The BATCH finds of an update unit are in: checked, the rows get new
 * numbers and `issue` writes them back. */
static void finds_then_write(struct unit *u, int (*issue)(struct unit *)) {
  struct driver *d = u->drv;
  int answered = 1;
  for (size_t i = 0; i < BATCH && !d->failed; i++)
    if (!check_world(u, u->futs[i], u->ids[i]))
      answered = 0;
  release_futures(u, BATCH);
  if (d->failed || !answered) {
    unit_done(u, 0);
    return;
  }
  new_numbers(u);
  int rc = issue(u);
  if (rc != 0) {
    d->outstanding--;
    fatal(d, "%s: writing: %s", d->opts.workload, orm_strerror(rc));
  }
}

static void update_read(orm_future_t *all, void *data) {
  finds_then_write(data, update_issue);
}

static int update_start(struct unit *u) {
  return start_finds(u, update_read);
}

/* update-many ------------------------------------------------------------------ */

static void update_many_written(orm_future_t *f, void *data) {
  struct unit *u = data;
  int answered = 0;
  if (!failed_future(u, f, "update_many world")) {
    answered = 1;
    /* A key drawn twice is one row (the rows are in key order). */
    int64_t want = 1;
    for (size_t i = 1; i < BATCH; i++)
      want += u->rows[i].id != u->rows[i - 1].id;
    int64_t n = orm_result_affected(orm_future_value(f));
    if (n != want)
      bench_run_wrong(&u->drv->run, DRIVER,
                      "update-many: %" PRId64 " rows updated, not %" PRId64, n,
                      want);
  }
  unit_done(u, answered);
}

/* The BATCH rows (in key order) in one orm_update_many_async(). */
static int update_many_issue(struct unit *u) {
  return orm_update_many_async(u->drv->pool, world_model(), u->rows, BATCH,
                               ORM_FIELD_BIT(world, randomnumber),
                               update_many_written, u, NULL);
}

static void update_many_read(orm_future_t *all, void *data) {
  finds_then_write(data, update_many_issue);
}

static int update_many_start(struct unit *u) {
  return start_finds(u, update_many_read);
}

/* update-tx ------------------------------------------------------------------- */

static void update_tx_committed(orm_future_t *f, void *data) {
  struct unit *u = data;
  struct driver *d = u->drv;
  int answered = 0;
  if (!d->failed && !failed_future(u, f, "commit")) {
    answered = 1;
    for (size_t i = 0; i < BATCH && answered; i++) {
      if (orm_future_state(u->futs[i]) == ORM_FUTURE_PENDING) {
        bench_run_wrong(&d->run, DRIVER, "update-tx: COMMIT answered before its statements");
        break;
      }
      answered = check_update(u, u->futs[i], u->rows[i].id);
    }
  }
  release_futures(u, BATCH);
  unit_done(u, answered);
}

/* BATCH writes of u->rows and COMMIT, issued at once behind BEGIN. */
static int update_tx_issue(struct unit *u) {
  orm_tx_t *tx;
  int rc = orm_tx_begin(u->drv->pool, &tx);
  if (rc != 0)
    return rc;
  const uint64_t mask = ORM_FIELD_BIT(world, randomnumber);
  for (size_t i = 0; i < BATCH; i++) {
    rc = orm_update_async(tx, world_model(), &u->rows[i], mask, NULL, NULL,
                             &u->futs[i]);
    if (rc != 0) {
      release_futures(u, i);
      orm_tx_rollback_async(tx, NULL, NULL, NULL); /* gives the handle back */
      return rc;
    }
  }
  rc = orm_tx_commit_async(tx, update_tx_committed, u, NULL);
  if (rc != 0)
    release_futures(u, BATCH);
  return rc;
}

static void update_tx_read(orm_future_t *all, void *data) {
  finds_then_write(data, update_tx_issue);
}

static int update_tx_start(struct unit *u) {
  return start_finds(u, update_tx_read);
}

/* insert ------------------------------------------------------------------------- */

static void insert_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  struct driver *d = u->drv;
  if (d->failed || failed_future(u, f, "insert user")) {
    unit_done(u, 0);
    return;
  }
  d->inserted++;
  if (u->user.id <= 0 || u->user.created_at == 0 || u->user.orm_nulls != 0)
    bench_run_wrong(&d->run, DRIVER, "insert user %s: id %" PRId64 " not written back",
                    u->email, u->user.id);
  unit_done(u, 1);
}

static int insert_start(struct unit *u) {
  struct driver *d = u->drv;
  snprintf(u->email, sizeof u->email, "%s%" PRIu64 INSERT_DOMAIN, d->email_prefix,
           ++d->insert_seq);
  memset(&u->user, 0, sizeof u->user);
  u->user.email = u->email;
  u->user.name = "Inserted by bench_workloads";
  return orm_insert_async(d->pool, user_model(), &u->user, insert_done, u, NULL);
}

/* bulk --------------------------------------------------------------------------- */

static void bulk_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  struct driver *d = u->drv;
  if (d->failed || failed_future(u, f, "all users")) {
    unit_done(u, 0);
    return;
  }
  const orm_rows_t *rows = orm_future_value(f);
  size_t n = rows != NULL ? orm_rows_count(rows) : 0;
  const user_t *row = n > 0 ? orm_rows_array(rows) : NULL;
  int64_t id_sum = 0;
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    id_sum += row[i].id;
    bad += row[i].email == NULL;
  }
  if ((int64_t)n != d->users_count || id_sum != d->users_id_sum || bad > 0)
    bench_run_wrong(&d->run, DRIVER,
                    "all users: %zu rows, id sum %" PRId64 ", %zu without email; "
                    "expected %" PRId64 " rows, id sum %" PRId64,
                    n, id_sum, bad, d->users_count, d->users_id_sum);
  d->bulk_rows = n;
  unit_done(u, 1);
}

static int bulk_start(struct unit *u) {
  return orm_find_all_async(u->drv->pool, user_model(), NULL, bulk_done, u, NULL);
}

/* tx ----------------------------------------------------------------------------- */

static void tx_committed(orm_future_t *f, void *data) {
  struct unit *u = data;
  struct driver *d = u->drv;
  int answered = 0;
  if (!d->failed && !failed_future(u, f, "commit")) {
    answered = 1;
    if (orm_future_state(u->tx_read) == ORM_FUTURE_PENDING ||
        orm_future_state(u->tx_write) == ORM_FUTURE_PENDING)
      bench_run_wrong(&d->run, DRIVER, "tx: COMMIT answered before its statements");
    else if (!check_world(u, u->tx_read, u->ids[0]) ||
             !check_update(u, u->tx_write, u->tx_row.id))
      answered = 0;
  }
  orm_future_release(u->tx_read);
  orm_future_release(u->tx_write);
  u->tx_read = u->tx_write = NULL;
  unit_done(u, answered);
}

/* BEGIN, the find, the update and COMMIT, issued at once. */
static int tx_start(struct unit *u) {
  struct driver *d = u->drv;
  orm_tx_t *tx;
  int rc = orm_tx_begin(d->pool, &tx);
  if (rc != 0)
    return rc;
  u->ids[0] = rand_world(d);
  do
    u->tx_row.id = rand_world(d);
  while (u->tx_row.id == u->ids[0]);
  u->tx_row.randomnumber = rand_world(d);
  u->tx_row.orm_nulls = 0;
  rc = orm_find_async(tx, world_model(), ORM_INT4(u->ids[0]), NULL, NULL,
                         &u->tx_read);
  if (rc == 0) {
    rc = orm_update_async(tx, world_model(), &u->tx_row,
                             ORM_FIELD_BIT(world, randomnumber), NULL, NULL,
                             &u->tx_write);
    if (rc == 0)
      rc = orm_tx_commit_async(tx, tx_committed, u, NULL);
    else
      orm_tx_rollback_async(tx, NULL, NULL, NULL); /* gives the handle back */
  } else {
    orm_tx_rollback_async(tx, NULL, NULL, NULL);
  }
  if (rc != 0) {
    orm_future_release(u->tx_read);
    orm_future_release(u->tx_write);
    u->tx_read = u->tx_write = NULL;
  }
  return rc;
}

/* relations ---------------------------------------------------------------------- */

/* Uniform in 1..REL_MAX_START: the first conversation of a unit. */
static int64_t rand_rel_start(struct driver *d) {
  return 1 + (int64_t)(((rand_next(d) >> 32) * REL_MAX_START) >> 32);
}

/* Why REL_BATCH conversations from u->rel_start, each with its messages and
 * their usage, are not what `convs` (n of them) holds; or NULL. Sums the
 * tokens into *tokens. */
static const char *rel_mismatch(const struct unit *u, const relconv_t *convs, size_t n,
                                int64_t *tokens) {
  if (n != REL_BATCH)
    return "not REL_BATCH conversations";
  for (size_t i = 0; i < n; i++) {
    const relconv_t *c = &convs[i];
    relmsg_t *m;
    size_t nm;
    if (c->id != u->rel_start + (int64_t)i || c->title == NULL)
      return "a wrong conversation";
    if (ORM_REL_MANY(c, messages, &m, &nm) != 0)
      return "messages not loaded";
    if (nm != REL_MESSAGES_PER)
      return "not REL_MESSAGES_PER messages in a conversation";
    for (size_t k = 0; k < nm; k++) {
      relusage_t *us;
      int64_t id = (c->id - 1) * REL_MESSAGES_PER + (int64_t)k + 1;
      if (m[k].id != id || m[k].conversation_id != c->id || m[k].content == NULL ||
          m[k].role == NULL || m[k].orm_nulls != 0)
        return "a wrong message";
      if (ORM_REL_ONE(&m[k], usage, &us) != 0)
        return "usage not loaded";
      if (us == NULL)
        return "a message without its usage";
      if (us->message_id != id || us->prompt_tokens != REL_PROMPT_TOKENS(id) ||
          us->completion_tokens != REL_COMPLETION_TOKENS(id) || !rel_cost_ok(us->cost, id))
        return "a wrong usage record";
      *tokens += m[k].tokens + us->prompt_tokens + us->completion_tokens;
    }
  }
  return NULL;
}

/* Checks a unit's conversations: a wrong first answer stops the run
 * (something is broken, not noisy); later ones count as failures. */
static void rel_check(struct unit *u, const relconv_t *convs, size_t n) {
  struct driver *d = u->drv;
  int64_t tokens = 0;
  const char *why = rel_mismatch(u, convs, n, &tokens);
  if (why == NULL) {
    d->rel_checked = 1;
    return;
  }
  if (!d->rel_checked)
    fatal(d, "%s: the first answer (from conversation %" PRId64 ", %zu conversations) "
             "is wrong: %s", d->opts.workload, u->rel_start, n, why);
  else
    bench_run_wrong(&d->run, DRIVER, "%s from conversation %" PRId64 ": %s",
                    d->opts.workload, u->rel_start, why);
}

/* The conversations of a unit: WHERE id >= start ORDER BY id LIMIT REL_BATCH.
 * A call's error sticks to the query and comes back from find_all. */
static orm_query_t *rel_conv_query(struct unit *u) {
  orm_query_t *q;
  if (orm_query_new(&q, relconv_model()) != 0)
    return NULL;
  orm_query_where(q, "id", ORM_OP_GE, ORM_INT8(u->rel_start));
  orm_query_order_by(q, "id", ORM_ASC);
  orm_query_limit(q, REL_BATCH);
  return q;
}

static void relations_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  struct driver *d = u->drv;
  if (d->failed || failed_future(u, f, "relations")) {
    unit_done(u, 0);
    return;
  }
  const orm_rows_t *rows = orm_future_value(f);
  size_t n = rows != NULL ? orm_rows_count(rows) : 0;
  rel_check(u, n > 0 ? orm_rows_array(rows) : NULL, n);
  if (d->failed) {
    unit_done(u, 0);
    return;
  }
  unit_done(u, 1); /* the rows go with the future */
}

/* One call: the conversations with "messages.usage" included. */
static int relations_start(struct unit *u) {
  u->rel_start = rand_rel_start(u->drv);
  orm_query_t *q = rel_conv_query(u);
  if (q == NULL)
    return ORM_ENOMEM;
  orm_query_include(q, "messages.usage");
  int rc = orm_find_all_async(u->drv->pool, NULL, q, relations_done, u, NULL);
  orm_query_free(q); /* the call copied what it needs */
  return rc;
}

/* relations-1k -------------------------------------------------------------------- */

static void rel1k_free(struct unit *u) {
  orm_rows_free(u->rel_convs);
  orm_rows_free(u->rel_msgs);
  u->rel_convs = u->rel_msgs = NULL;
}

/* A stage failed, or its answer could not be taken. */
static int rel1k_failed(struct unit *u, orm_future_t *f, const char *what) {
  if (!u->drv->failed && !failed_future(u, f, what))
    return 0;
  rel1k_free(u);
  unit_done(u, 0);
  return 1;
}

/* Issues the next stage: `model`'s rows whose `column` is one of the n keys
 * in u->rel_keys, ordered by `column` then id. Stops the run on a call
 * error. */
static void rel1k_next(struct unit *u, const orm_model_t *model, const char *column,
                       size_t n, orm_future_cb cb) {
  struct driver *d = u->drv;
  orm_query_t *q;
  int rc = orm_query_new(&q, model);
  if (rc == 0) {
    orm_query_where_in(q, column, u->rel_keys, n);
    orm_query_order_by(q, column, ORM_ASC);
    orm_query_order_by(q, "id", ORM_ASC);
    rc = orm_find_all_async(d->pool, NULL, q, cb, u, NULL);
    orm_query_free(q);
  }
  if (rc != 0) {
    rel1k_free(u);
    d->outstanding--;
    fatal(d, "%s: the next query: %s", d->opts.workload, orm_strerror(rc));
  }
}

/* A small open-addressing map from ids to rows, for the stitching. */
#define REL_MAP_SIZE 1024 /* a power of two, at least 2 * REL_UNIT_MESSAGES */

struct rel_map {
  int64_t key[REL_MAP_SIZE];
  void *value[REL_MAP_SIZE];
};

static size_t rel_map_slot(const struct rel_map *m, int64_t key) {
  size_t i = (size_t)((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15) >> 54);
  while (m->value[i] != NULL && m->key[i] != key)
    i = (i + 1) & (REL_MAP_SIZE - 1);
  return i;
}

/* The usage records are in: every message gets its usage, every
 * conversation its run of messages, and the unit is checked. */
static void rel1k_usage_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  if (rel1k_failed(u, f, "relations-1k usage records"))
    return;
  orm_rows_t *usage_rows = orm_future_value(f); /* freed with the future */
  size_t nc = orm_rows_count(u->rel_convs), nm = orm_rows_count(u->rel_msgs);
  size_t nu = usage_rows != NULL ? orm_rows_count(usage_rows) : 0;
  relconv_t *convs = orm_rows_array(u->rel_convs);
  relmsg_t *msgs = orm_rows_array(u->rel_msgs);
  relusage_t *usage = nu > 0 ? orm_rows_array(usage_rows) : NULL;
  static struct rel_map map; /* one loop thread: the units take turns */

  /* Messages come ordered by conversation, so each conversation's are one
   * run; the conversations by id, so the runs follow them in order. */
  memset(map.value, 0, sizeof map.value);
  for (size_t i = 0; i < nc; i++) {
    convs[i].messages.items = NULL;
    convs[i].messages.len = 0;
    convs[i].messages.loaded = true;
    size_t slot = rel_map_slot(&map, convs[i].id);
    map.key[slot] = convs[i].id;
    map.value[slot] = &convs[i];
  }
  for (size_t start = 0, end; start < nm; start = end) {
    for (end = start + 1; end < nm && msgs[end].conversation_id == msgs[start].conversation_id;)
      end++;
    relconv_t *c = map.value[rel_map_slot(&map, msgs[start].conversation_id)];
    if (c != NULL) {
      c->messages.items = &msgs[start];
      c->messages.len = end - start;
    }
  }
  memset(map.value, 0, sizeof map.value);
  for (size_t i = 0; i < nm; i++) {
    msgs[i].usage.item = NULL;
    msgs[i].usage.loaded = true;
    size_t slot = rel_map_slot(&map, msgs[i].id);
    map.key[slot] = msgs[i].id;
    map.value[slot] = &msgs[i];
  }
  for (size_t i = 0; i < nu; i++) {
    relmsg_t *m = map.value[rel_map_slot(&map, usage[i].message_id)];
    if (m != NULL && m->usage.item == NULL)
      m->usage.item = &usage[i];
  }
  rel_check(u, convs, nc);
  rel1k_free(u);
  unit_done(u, !u->drv->failed);
}

/* The messages are in: ask for their usage records. */
static void rel1k_msgs_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  if (rel1k_failed(u, f, "relations-1k messages"))
    return;
  u->rel_msgs = orm_future_take(f);
  size_t n = u->rel_msgs != NULL ? orm_rows_count(u->rel_msgs) : 0;
  if (n == 0 || n > REL_UNIT_MESSAGES) {
    bench_run_wrong(&u->drv->run, DRIVER, "relations-1k: %zu messages", n);
    rel1k_free(u);
    unit_done(u, 1);
    return;
  }
  const relmsg_t *msgs = orm_rows_array(u->rel_msgs);
  for (size_t i = 0; i < n; i++)
    u->rel_keys[i] = ORM_INT8(msgs[i].id);
  rel1k_next(u, relusage_model(), "message_id", n, rel1k_usage_done);
}

/* The conversations are in: ask for their messages. */
static void rel1k_convs_done(orm_future_t *f, void *data) {
  struct unit *u = data;
  if (rel1k_failed(u, f, "relations-1k conversations"))
    return;
  u->rel_convs = orm_future_take(f);
  size_t n = u->rel_convs != NULL ? orm_rows_count(u->rel_convs) : 0;
  if (n == 0 || n > REL_BATCH) {
    bench_run_wrong(&u->drv->run, DRIVER, "relations-1k: %zu conversations", n);
    rel1k_free(u);
    unit_done(u, 1);
    return;
  }
  const relconv_t *convs = orm_rows_array(u->rel_convs);
  for (size_t i = 0; i < n; i++)
    u->rel_keys[i] = ORM_INT8(convs[i].id);
  rel1k_next(u, relmsg_model(), "conversation_id", n, rel1k_msgs_done);
}

static int relations_1k_start(struct unit *u) {
  u->rel_start = rand_rel_start(u->drv);
  orm_query_t *q = rel_conv_query(u);
  if (q == NULL)
    return ORM_ENOMEM;
  int rc = orm_find_all_async(u->drv->pool, NULL, q, rel1k_convs_done, u, NULL);
  orm_query_free(q);
  return rc;
}

static const struct workload workloads[W_COUNT] = {
    [W_FIND] = {find_start, 1, {world_model}},
    [W_SELECT] = {select_start, 1, {NULL}},
    [W_QUERIES] = {queries_start, BATCH, {world_model}},
    [W_FORTUNES] = {fortunes_start, 1, {fortune_model}},
    [W_UPDATE] = {update_start, BATCH, {world_model}},
    [W_UPDATE_TX] = {update_tx_start, BATCH + 1, {world_model}},
    [W_UPDATE_MANY] = {update_many_start, BATCH, {world_model}},
    [W_INSERT] = {insert_start, 1, {user_model}},
    [W_BULK] = {bulk_start, 1, {user_model}},
    [W_TX] = {tx_start, 3, {world_model}},
    /* BEGIN, the query, two relations, COMMIT. */
    [W_RELATIONS] = {relations_start, 5, {relconv_model, relmsg_model, relusage_model}},
    [W_RELATIONS_1K] = {relations_1k_start, 1,
                        {relconv_model, relmsg_model, relusage_model}},
};

/* ---- before the run: the tables ---------------------------------------------- */

static void start_run(struct driver *d) {
  d->state = DRV_RUNNING;
  bench_run_start(&d->run);
  uint64_t now = bench_now_ns();
  for (int i = 0; i < d->opts.inflight && !d->failed; i++)
    unit_start(&d->units[i], now);
}

static void on_users_counted(orm_future_t *f, void *data) {
  struct driver *d = data;
  if (d->failed)
    return;
  int status = orm_future_status(f);
  const orm_result_t *res = orm_future_value(f);
  if (status != 0 || res == NULL || orm_result_int(res, 0, 0, &d->users_count) != 0 ||
      orm_result_int(res, 0, 1, &d->users_id_sum) != 0) {
    fatal(d, "counting users: %s", status != 0 ? orm_future_error(f)->message
                                                : "unexpected answer");
    return;
  }
  if (d->users_count != BENCH_USERS)
    bench_warn(DRIVER, "users holds %" PRId64 " rows, not %d: run bench_load again?",
               d->users_count, BENCH_USERS);
  start_run(d);
}

static void on_verified(orm_future_t *f, void *data) {
  struct driver *d = data;
  if (d->failed)
    return;
  int status = orm_future_status(f);
  if (status != 0) {
    fatal(d, "checking the table: %s", orm_future_error(f)->message);
    return;
  }
  const orm_schema_report_t *report = orm_future_value(f);
  if (!report->table_exists || report->nproblems > 0) {
    fatal(d, "table %s.%s: %s: run bench_load first", BENCH_SCHEMA,
          report->model->table,
          !report->table_exists ? "missing" : report->problems[0].message);
    return;
  }
  if (--d->verifying > 0)
    return;
  if (d->workload != W_BULK) {
    start_run(d);
    return;
  }
  int rc = orm_query_async(d->pool, "SELECT count(*), coalesce(sum(id), 0)::int8 FROM users",
                           NULL, 0, on_users_counted, d, NULL);
  if (rc != 0)
    fatal(d, "orm_query_async: %s", orm_strerror(rc));
}

/* ---- waiting for the connections -------------------------------------------- */

static void on_probe(orm_future_t *future, void *data) {
  struct driver *d = data;
  int status = orm_future_status(future);

  d->probing = 0;
  if (status != 0 && !d->failed && d->state == DRV_CONNECTING) {
    const orm_error_t *e = orm_future_error(future);
    fatal(d, "connect: %s", e != NULL && e->message != NULL ? e->message
                                                             : orm_strerror(status));
  }
}

static void on_connect_poll(uv_timer_t *timer) {
  struct driver *d = timer->data;
  orm_pool_stats_t st;

  if (orm_pool_stats(d->pool, &st) != 0) {
    fatal(d, "orm_pool_stats failed");
    return;
  }
  if (st.conns_idle + st.conns_busy == (unsigned)d->opts.conns) {
    uv_timer_stop(&d->timer);
    if (d->wl->models[0] == NULL) {
      start_run(d);
      return;
    }
    d->state = DRV_PREPARING;
    for (int i = 0; i < WORKLOAD_MODELS && d->wl->models[i] != NULL; i++) {
      int rc = orm_model_verify_async(d->pool, d->wl->models[i](), on_verified, d, NULL);
      if (rc != 0) {
        fatal(d, "orm_model_verify_async: %s", orm_strerror(rc));
        return;
      }
      d->verifying++;
    }
    return;
  }
  /* The pool keeps retrying a server it cannot reach; a query fails at once
   * while it is down, and its error says why. */
  if (st.connect_failures > 0 && !d->probing) {
    int rc = orm_query_async(d->pool, "SELECT 1", NULL, 0, on_probe, d, NULL);
    if (rc != 0) {
      fatal(d, "orm_query_async: %s", orm_strerror(rc));
      return;
    }
    d->probing = 1;
  }
  if (bench_now_ns() - d->wait_start_ns > (uint64_t)CONNECT_WAIT_MS * 1000000u)
    fatal(d, "%u of %d connections up after %d ms (%" PRIu64 " failed attempts)",
          st.conns_idle + st.conns_busy, d->opts.conns, CONNECT_WAIT_MS,
          st.connect_failures);
}

/* ---- the end of the run ------------------------------------------------------ */

static void on_cleaned(orm_future_t *f, void *data) {
  struct driver *d = data;
  if (d->failed)
    return;
  if (orm_future_status(f) != 0) {
    fatal(d, "deleting the inserted users: %s", orm_future_error(f)->message);
    return;
  }
  int64_t deleted = orm_result_affected(orm_future_value(f));
  if (deleted < 0 || (uint64_t)deleted < d->inserted)
    bench_run_wrong(&d->run, DRIVER,
                    "inserted %" PRIu64 " users but found only %" PRId64 " to delete",
                    d->inserted, deleted);
  close_pool(d);
}

/* Every unit is in: tidy up after an insert run, then close the pool. */
static void finish_run(struct driver *d) {
  uv_timer_stop(&d->timer); /* the drain is over */
  if (d->workload != W_INSERT) {
    close_pool(d);
    return;
  }
  d->state = DRV_CLEANING;
  int rc = orm_query_async(d->pool, "DELETE FROM users WHERE email LIKE '%" INSERT_DOMAIN "'",
                           NULL, 0, on_cleaned, d, NULL);
  if (rc != 0)
    fatal(d, "orm_query_async: %s", orm_strerror(rc));
}

static void on_drain_timeout(uv_timer_t *timer) {
  struct driver *d = timer->data;
  fatal(d, "%d units did not finish within %d ms", d->outstanding, DRAIN_TIMEOUT_MS);
}

/* The measured phase is over: issue nothing more, let what is in flight
 * finish, then finish the run. */
static void on_run_done(bench_run_t *run) {
  struct driver *d = run->data;

  if (d->failed || d->state != DRV_RUNNING)
    return;
  d->state = DRV_DRAINING;
  if (d->outstanding == 0) {
    finish_run(d);
    return;
  }
  uv_timer_stop(&d->timer);
  uv_timer_start(&d->timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
}

/* ---- command line and conninfo --------------------------------------------- */

/* Appends s at buf + pos (when buf is not NULL; the length is counted
 * either way), backslash-escaping ' and \ when `quoted`. */
static size_t put(char *buf, size_t pos, const char *s, int quoted) {
  for (; *s; s++) {
    if (quoted && (*s == '\'' || *s == '\\')) {
      if (buf)
        buf[pos] = '\\';
      pos++;
    }
    if (buf)
      buf[pos] = *s;
    pos++;
  }
  return pos;
}

static size_t put_option(char *buf, size_t pos, const char *keyword, const char *value,
                         const char *extra) {
  pos = put(buf, pos, keyword, 0);
  pos = put(buf, pos, "='", 0);
  pos = put(buf, pos, value, 1);
  if (extra != NULL) {
    if (*value)
      pos = put(buf, pos, " ", 0);
    pos = put(buf, pos, extra, 1);
  }
  return put(buf, pos, "' ", 0);
}

/* Renders the parsed options as key='value' pairs, appending `extra` to
 * the server options; returns the length with the NUL. */
static size_t render_conninfo(char *buf, const PQconninfoOption *opts,
                              const char *extra) {
  size_t pos = 0;
  int have_options = 0;
  for (const PQconninfoOption *o = opts; o->keyword != NULL; o++) {
    if (o->val == NULL)
      continue;
    int is_options = strcmp(o->keyword, "options") == 0;
    have_options |= is_options;
    pos = put_option(buf, pos, o->keyword, o->val, is_options ? extra : NULL);
  }
  if (!have_options) {
    /* Setting options overrides $PGOPTIONS: keep what it says. */
    const char *env = getenv("PGOPTIONS");
    pos = put_option(buf, pos, "options", env != NULL ? env : "", extra);
  }
  if (buf)
    buf[pos] = '\0';
  return pos + 1;
}

/* The conninfo with "-c search_path=BENCH_SCHEMA" added to the server
 * options; malloc'ed, or NULL after saying why. */
static char *conninfo_with_schema(const char *conninfo) {
  static const char extra[] = "-c search_path=" BENCH_SCHEMA;
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
  if (opts == NULL) {
    bench_warn(DRIVER, "conninfo: %s", err != NULL ? err : "out of memory");
    PQfreemem(err);
    return NULL;
  }
  size_t len = render_conninfo(NULL, opts, extra);
  char *out = malloc(len);
  if (out != NULL)
    render_conninfo(out, opts, extra);
  else
    bench_warn(DRIVER, "out of memory");
  PQconninfoFree(opts);
  return out;
}

/* A query hook that does the least a real one does: look at the event. */
static uint64_t events_seen;
static void count_event(orm_pool_t *pool, const orm_query_event_t *e, void *data) {
  (void)pool;
  (void)data;
  events_seen += e->total_ns > 0;
}

static void print_stats(const orm_pool_stats_t *st, FILE *out) {
  fprintf(out,
          "uvorm pool: queries %" PRIu64 ", errors %" PRIu64 ", resends %" PRIu64
          ", cancels %" PRIu64 ", timeouts %" PRIu64 ", connects %" PRIu64
          ", reconnects %" PRIu64 ", connect failures %" PRIu64 "\n",
          st->queries, st->errors, st->resends, st->cancels, st->timeouts,
          st->connects, st->reconnects, st->connect_failures);
}

int main(int argc, char **argv) {
  static const bench_choices_t choices = {workload_names, W_COUNT, mode_names,
                                          MODE_COUNT};
  static struct driver drv;
  struct driver *d = &drv;

  int rc = bench_opts_parse(&d->opts, argc, argv, &choices);
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  d->mode = (pool_mode_t)d->opts.mode_id;
  d->workload = (workload_id_t)d->opts.workload_id;
  d->wl = &workloads[d->workload];

  if ((d->conninfo = conninfo_with_schema(d->opts.conninfo)) == NULL)
    return 1;
  d->units = calloc((size_t)d->opts.inflight, sizeof(*d->units));
  if (d->units == NULL) {
    bench_warn(DRIVER, "out of memory");
    free(d->conninfo);
    return 1;
  }
  for (int i = 0; i < d->opts.inflight; i++)
    d->units[i].drv = d;
  uint64_t seed = uv_hrtime();
  d->rng = seed ^ ((uint64_t)uv_os_getpid() << 32);
  d->next_value = 1;
  snprintf(d->email_prefix, sizeof d->email_prefix, "w%d-%" PRIx64 "-",
           (int)uv_os_getpid(), seed);

  if (bench_run_open(&d->run, &d->loop, &d->opts, on_run_done, d, DRIVER) != 0)
    return 1;
  if ((rc = uv_timer_init(&d->loop, &d->timer)) != 0) {
    bench_warn(DRIVER, "%s", uv_strerror(rc));
    return 1;
  }
  d->timer.data = d;

  /* Room for every request of C units on P connections: the dispatcher
   * picks the connection with the fewest in flight and the depth caps each
   * at its share, so C is spread like bench_raw_workloads spreads it. All of
   * them may wait in the queue at the start. */
  size_t requests = (size_t)d->opts.inflight * d->wl->requests;
  /* UVORM_BENCH_OBSERVE=hook|metrics|both: the cost of query events and
   * histograms (a hook that only counts). */
  const char *observe = getenv("UVORM_BENCH_OBSERVE");
  bool hook = observe != NULL && (strcmp(observe, "hook") == 0 || strcmp(observe, "both") == 0);
  bool metrics =
      observe != NULL && (strcmp(observe, "metrics") == 0 || strcmp(observe, "both") == 0);
  orm_pool_config_t cfg = {
      .on_query = hook ? count_event : NULL,
      .metrics = metrics,
      .conninfo = d->conninfo,
      .min_conns = (unsigned)d->opts.conns,
      .max_conns = (unsigned)d->opts.conns,
      .pipeline_depth =
          (unsigned)((requests + (size_t)d->opts.conns - 1) / (size_t)d->opts.conns),
      .queue_max = requests + 16,
      .no_pipeline = d->mode == MODE_NOPIPE,
      .transaction_pooling = d->mode == MODE_TXPOOL,
      .data = d,
  };
  bench_opts_announce(&d->opts, DRIVER);
  rc = orm_pool_open(&d->pool, &d->loop, &cfg);
  if (rc != 0) {
    bench_warn(DRIVER, "orm_pool_open: %s", orm_strerror(rc));
    d->failed = 1;
    bench_run_stop(&d->run);
    d->state = DRV_CLOSING;
    uv_close((uv_handle_t *)&d->timer, NULL);
  } else {
    d->state = DRV_CONNECTING;
    d->wait_start_ns = bench_now_ns();
    uv_timer_start(&d->timer, on_connect_poll, CONNECT_POLL_MS, CONNECT_POLL_MS);
  }

  uv_run(&d->loop, UV_RUN_DEFAULT);

  if (d->pool != NULL) {
    bench_warn(DRIVER, "the loop ended before the pool was closed");
    d->failed = 1;
  }
  if (bench_loop_close(&d->loop, DRIVER) != 0)
    d->failed = 1;
  free(d->units);
  free(d->conninfo);

  int status = bench_report(&d->run, &d->opts, DRIVER, d->failed);
  if (!d->failed && d->workload == W_BULK) {
    bench_result_t r;
    bench_run_result(&d->run, &d->opts, DRIVER, &r);
    printf("uvorm bulk: %zu rows per op, %.0f rows/s, %.1f ns CPU/row\n", d->bulk_rows,
           r.ops_per_sec * (double)d->bulk_rows,
           d->bulk_rows ? r.cpu_us_per_op * 1000.0 / (double)d->bulk_rows : 0.0);
  }
  if (d->have_stats)
    print_stats(&d->stats, stdout);
  return status;
}
