/* SPDX-License-Identifier: MIT */
/* bench_raw_workloads: the TechEmpower-style workloads of bench/workloads.c
 * in plain libpq on one libuv loop, no ORM, as the baseline uvorm is judged
 * against. P non-blocking connections in pipeline mode, C units of work in
 * flight spread evenly over them, prepared statements with binary parameters
 * and binary results decoded by hand.
 *
 *   bench_raw_workloads [--workload=NAME] [--mode=batch|sync|nopipe] [-P N]
 *                       [-C N] [--duration S] [--warmup S] [--conninfo STR]
 *                       [--csv FILE]
 *
 * Workloads (one unit = one op; its latency runs from when the unit is
 * issued to when its last answer is read):
 *   select    SELECT $1::int4 with a counter, its answer checked against
 *             it: one round trip and nothing else (needs no tables).
 *   find      SELECT id, randomnumber FROM bench.world WHERE id = $1, a
 *             random id in 1..10000; both ints decoded, id checked.
 *   queries   20 such finds, all in flight together.
 *   fortunes  every bench.fortune row decoded into structs (strings copied),
 *             one added at request time, sorted by message.
 *   update    20 finds, then 20 UPDATE bench.world SET randomnumber = $2
 *             WHERE id = $1 with new random numbers, in flight together.
 *   insert    INSERT INTO bench.users (email, name) ... RETURNING id,
 *             created_at, with an email unique to the op. After the run the
 *             rows it inserted are deleted again, so bulk keeps reading the
 *             users bench_load put there.
 *   bulk      every bench.users row decoded into structs, strings in a bump
 *             allocator; also reports rows/s.
 *   tx        BEGIN, a find, an update of another random row, COMMIT, sent
 *             together.
 *   relations REL_BATCH consecutive conversations from a random first id,
 *             their messages and each message's usage record (relations.h):
 *             the statements uvorm's eager loading sends, with the tables
 *             schema-qualified (BEGIN ISOLATION LEVEL REPEATABLE READ, READ
 *             ONLY; the conversations; their messages and the messages'
 *             usage, each selected by a subquery over the conversations'
 *             query; COMMIT), sent together. Rows are decoded into structs
 *             (strings copied, the numeric cost turned into its decimal
 *             text, as uvorm does) in buffers each unit reuses, and
 *             stitched: each conversation points at its run of messages
 *             (merged: both come in conversation order), each message at
 *             its usage record (through a hash map of message ids). In
 *             batch mode this is one write and one round trip for a batch
 *             of units; in sync mode each statement gets its sync.
 *
 * Modes:
 *   batch   pipeline mode; the statements issued during one poll callback
 *           of a connection share one PQpipelineSync: one write per batch.
 *   sync    pipeline mode, a PQpipelineSync after every statement (libpq 15
 *           writes to the socket on every sync).
 *   nopipe  no pipeline mode: one statement at a time per connection. A
 *           unit's statements go one after the other; the other units wait
 *           in the connection's queue, and their latency includes the wait.
 *
 * The result line's mode is "MODE/WORKLOAD" (e.g. "batch/find"), so the CSV
 * tells the workloads apart. Wrong answers and failed statements count as
 * failures and make the exit status non-zero.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <uv.h>

#include "harness.h"
#include "relations.h"

#define DRIVER "raw"
/* How long the in-flight units get to finish after the measured phase. */
#define DRAIN_TIMEOUT_MS 10000
#define WORLD_ROWS 10000
/* Finds (and updates) per unit of `queries` and `update`. */
#define UNIT_QUERIES 20
#define EXTRA_FORTUNE "Additional fortune added at request time."

#define INT4_OID 23
#define INT8_OID 20
#define TEXT_OID 25
#define TIMESTAMPTZ_OID 1184
#define NUMERIC_OID 1700

/* ---- statements and workloads ----------------------------------------------- */

typedef enum {
  ST_SELECT, ST_FIND, ST_UPDATE, ST_FORTUNES, ST_INSERT, ST_BULK, ST_BEGIN,
  ST_COMMIT, ST_REL_BEGIN, ST_REL_CONVS, ST_REL_MSGS, ST_REL_USAGE, ST_COUNT
} stmt_id_t;

/* The relations workload's statements: uvorm's (src/model/load.c), the
 * tables qualified with the schema instead of a search_path. Each statement
 * whose rows have children leaves the children's keys in a setting local to
 * the transaction, which the next statement reads: all go in one flight. */
#define REL_CONVS_SQL                                                          \
  "WITH r AS (SELECT \"id\", \"user_id\", \"title\", \"started_at\" "             \
  "FROM bench.\"conversations\" WHERE \"id\" >= $1 ORDER BY \"id\" LIMIT $2), "   \
  "k AS (SELECT set_config('uvorm.k0', coalesce(array_agg(r.\"id\")::text, "      \
  "'{}'), true) FROM r) SELECT r.* FROM k LEFT JOIN r ON true"
#define REL_MSGS_SQL                                                           \
  "WITH r AS (SELECT \"id\", \"conversation_id\", \"role\", \"content\", "        \
  "\"tokens\", \"created_at\" FROM bench.\"messages\" WHERE \"conversation_id\" " \
  "= ANY(current_setting('uvorm.k0')::int8[]) ORDER BY \"conversation_id\", "    \
  "\"id\"), k AS (SELECT set_config('uvorm.k1', coalesce(array_agg(r.\"id\")::"  \
  "text, '{}'), true) FROM r) SELECT r.* FROM k LEFT JOIN r ON true"
#define REL_USAGE_SQL                                                          \
  "SELECT \"id\", \"message_id\", \"prompt_tokens\", \"completion_tokens\", "     \
  "\"cost\" FROM bench.\"usage_records\" WHERE \"message_id\" = "                 \
  "ANY(current_setting('uvorm.k1')::int8[]) ORDER BY \"message_id\", \"id\""

static const struct {
  const char *name;
  const char *sql;
  int nparams;
  Oid types[2];
} stmt_table[ST_COUNT] = {
  [ST_SELECT] = {"rw_select", "SELECT $1::int4", 1, {INT4_OID}},
  [ST_FIND] = {"rw_find", "SELECT id, randomnumber FROM bench.world WHERE id = $1",
               1, {INT4_OID}},
  [ST_UPDATE] = {"rw_update", "UPDATE bench.world SET randomnumber = $2 WHERE id = $1",
                 2, {INT4_OID, INT4_OID}},
  [ST_FORTUNES] = {"rw_fortunes", "SELECT id, message FROM bench.fortune", 0, {0}},
  [ST_INSERT] = {"rw_insert",
                 "INSERT INTO bench.users (email, name) VALUES ($1, $2) "
                 "RETURNING id, created_at",
                 2, {TEXT_OID, TEXT_OID}},
  [ST_BULK] = {"rw_bulk", "SELECT id, email, name, created_at FROM bench.users", 0, {0}},
  [ST_BEGIN] = {"rw_begin", "BEGIN", 0, {0}},
  [ST_COMMIT] = {"rw_commit", "COMMIT", 0, {0}},
  [ST_REL_BEGIN] = {"rw_rel_begin", "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", 0,
                    {0}},
  [ST_REL_CONVS] = {"rw_rel_convs", REL_CONVS_SQL, 2, {INT8_OID, INT8_OID}},
  [ST_REL_MSGS] = {"rw_rel_msgs", REL_MSGS_SQL, 0, {0}},
  [ST_REL_USAGE] = {"rw_rel_usage", REL_USAGE_SQL, 0, {0}},
};

/* The first is the default. */
typedef enum {
  W_FIND, W_SELECT, W_QUERIES, W_FORTUNES, W_UPDATE, W_INSERT, W_BULK, W_TX,
  W_RELATIONS, W_COUNT
} workload_t;

static const char *const workload_names[W_COUNT] = {
  [W_FIND] = "find", [W_SELECT] = "select", [W_QUERIES] = "queries",
  [W_FORTUNES] = "fortunes", [W_UPDATE] = "update", [W_INSERT] = "insert",
  [W_BULK] = "bulk", [W_TX] = "tx", [W_RELATIONS] = "relations",
};

static const struct {
  unsigned stmts;    /* bit per stmt_id_t: what to prepare */
  int max_in_flight; /* statements of one unit in flight at once */
} workload_table[W_COUNT] = {
  [W_FIND] = {1u << ST_FIND, 1},
  [W_SELECT] = {1u << ST_SELECT, 1},
  [W_QUERIES] = {1u << ST_FIND, UNIT_QUERIES},
  [W_FORTUNES] = {1u << ST_FORTUNES, 1},
  [W_UPDATE] = {1u << ST_FIND | 1u << ST_UPDATE, UNIT_QUERIES},
  [W_INSERT] = {1u << ST_INSERT, 1},
  [W_BULK] = {1u << ST_BULK, 1},
  [W_TX] = {1u << ST_BEGIN | 1u << ST_FIND | 1u << ST_UPDATE | 1u << ST_COMMIT, 4},
  [W_RELATIONS] = {1u << ST_REL_BEGIN | 1u << ST_REL_CONVS | 1u << ST_REL_MSGS |
                       1u << ST_REL_USAGE | 1u << ST_COMMIT,
                   5},
};

/* The first is the default. */
typedef enum { MODE_BATCH, MODE_SYNC, MODE_NOPIPE, MODE_COUNT } send_mode_t;

static const char *const mode_names[MODE_COUNT] = {
  [MODE_BATCH] = "batch", [MODE_SYNC] = "sync", [MODE_NOPIPE] = "nopipe",
};

/* ---- units, the expect ring, connections ------------------------------------ */

/* The relations workload's rows, as a hand-written program would hydrate
 * them. Strings point into the unit's text buffers. */
struct rel_usage {
  int64_t id, message_id;
  int32_t prompt_tokens, completion_tokens;
  const char *cost; /* numeric as decimal text */
};

struct rel_message {
  int64_t id, conversation_id;
  const char *role, *content;
  int32_t tokens;
  int64_t created_at; /* microseconds since 2000-01-01 */
  struct rel_usage *usage; /* NULL: none */
};

struct rel_conversation {
  int64_t id, user_id;
  const char *title;
  int64_t started_at;
  struct rel_message *messages; /* a run of the unit's messages */
  size_t nmessages;
};

/* A growable array (or text buffer) a unit reuses from one op to the next. */
struct rel_buf {
  void *p;
  size_t cap; /* in bytes */
};

/* What one relations unit holds between its answers. */
struct rel_unit {
  struct rel_conversation *convs;
  struct rel_message *msgs;
  struct rel_usage *usage;
  size_t nconvs, nmsgs, nusage;
  struct rel_buf convs_buf, msgs_buf, usage_buf;
  /* One text buffer per result: each is sized before its rows are read. */
  struct rel_buf convs_text, msgs_text, usage_text;
  int decoded; /* results decoded so far in this op (0..3) */
};

struct unit {
  struct unit *next; /* in the connection's send queue */
  uint64_t issued_ns;
  int stage;   /* update: 0 while reading, 1 while writing */
  int pending; /* statements of the current stage not yet answered */
  int sent;    /* nopipe: statements of the current stage sent */
  uint64_t serial; /* insert: makes the email unique */
  int32_t ids[UNIT_QUERIES];
  int32_t values[UNIT_QUERIES]; /* new randomnumbers for the updates */
  int64_t rel_start; /* relations: the first conversation's id */
  struct rel_unit *rel; /* relations only */
};

/* What the connection has handed to libpq and not yet seen the end of, in
 * the order the server answers. A statement (or a prepare) ends with the
 * NULL from PQgetResult that follows its result; a sync ends with its
 * PGRES_PIPELINE_SYNC, which no NULL follows. */
typedef enum { EXPECT_PREPARE, EXPECT_STMT, EXPECT_CLEANUP, EXPECT_SYNC } expect_kind_t;

struct expect {
  unsigned char kind; /* expect_kind_t */
  unsigned char stmt; /* stmt_id_t */
  unsigned char got_result;
  unsigned char slot; /* which of the unit's ids */
  struct unit *unit;  /* EXPECT_STMT only */
};

/* One UPDATE waiting to be sent in batch mode; see send_updates_sorted(). */
struct update_item {
  int32_t id;
  int slot;
  struct unit *unit;
};

typedef enum {
  CONN_CONNECTING, /* PQconnectPoll steps */
  CONN_PREPARING,  /* the prepares are sent, not all answered */
  CONN_READY,      /* running units */
  CONN_CLOSING,    /* poll handle closing; PQfinish in its close callback */
  CONN_CLOSED
} conn_state_t;

struct driver;

struct conn {
  struct driver *drv;
  int index;
  conn_state_t state;
  PGconn *pg;
  /* On the heap: the socket can change during PQconnectPoll, and a replaced
   * handle lives on until its close callback. */
  uv_poll_t *poll;
  int fd;
  int events; /* armed on poll */
  int prepares_left; /* prepares not yet answered */
  int next_prepare;  /* the stmt_id_t to look at for the next prepare */

  struct unit *units; /* this connection's share of the C units */
  int nunits;
  struct unit *queue_head, *queue_tail; /* issued, statements not yet sent */

  struct expect *expect; /* ring */
  unsigned expect_cap, expect_first, expect_len;
  unsigned unsynced; /* statements sent since the last PQpipelineSync */

  struct update_item *updates; /* batch-mode scratch, UNIT_QUERIES per unit */
};

struct driver {
  uv_loop_t loop;
  bench_opts_t opts;
  bench_run_t run;
  send_mode_t mode;
  workload_t workload;
  struct conn *conns;
  int nconns;
  int nready;
  int nactive; /* connections CONN_READY */
  int nopen;   /* connections not yet CONN_CLOSED */
  int failed;
  uint64_t rng;
  int32_t next_value; /* select: the parameter of the next unit */
  uint64_t next_serial;
  char email_tag[48]; /* "raw-<pid>-<clock>", unique to this run */
  uint64_t inserted;  /* users inserted by the run, warm-up included */
  int cleanup_sent;
  uint64_t measured_rows; /* bulk: rows decoded in the measured phase */
  int rel_checked; /* relations: a unit's answer was right */
  /* Starts the run one loop turn after the last connection is ready, then
   * bounds the drain. */
  uv_timer_t timer;
};

/* Decoded values end up here so that the compiler cannot drop the decoding
 * of data nothing else reads. */
static volatile uint64_t sink;

static void on_poll(uv_poll_t *handle, int status, int events);
static void on_timer(uv_timer_t *timer);
static void conn_close(struct conn *c);

static void close_timer(struct driver *d) {
  if (!uv_is_closing((uv_handle_t *)&d->timer))
    uv_close((uv_handle_t *)&d->timer, NULL);
}

/* The loop ends when the last connection and the timer are closed. */
static void conn_closed(struct conn *c) {
  struct driver *d = c->drv;
  c->pg = NULL;
  c->state = CONN_CLOSED;
  if (--d->nopen == 0 && d->run.phase == BENCH_DONE)
    close_timer(d);
}

BENCH_PRINTF(2, 3)
static void fatal(struct driver *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bench_vwarn(DRIVER, fmt, ap);
  va_end(ap);
  d->failed = 1;
  bench_run_stop(&d->run);
  for (int i = 0; i < d->nconns; i++)
    conn_close(&d->conns[i]);
  close_timer(d);
}

/* xorshift64*: cheap, and good enough to pick rows. */
static uint32_t rand_u32(struct driver *d) {
  uint64_t x = d->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  d->rng = x;
  return (uint32_t)((x * UINT64_C(2685821657736338717)) >> 32);
}

static int32_t rand_row(struct driver *d) {
  return (int32_t)(1 + rand_u32(d) % WORLD_ROWS);
}

/* ---- binary values ------------------------------------------------------------- */

static uint32_t get_u32(const char *p) {
  const unsigned char *b = (const unsigned char *)p;
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint64_t get_u64(const char *p) {
  return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static void put_u32(char *p, uint32_t v) {
  unsigned char *b = (unsigned char *)p;
  b[0] = (unsigned char)(v >> 24);
  b[1] = (unsigned char)(v >> 16);
  b[2] = (unsigned char)(v >> 8);
  b[3] = (unsigned char)v;
}

static void put_u64(char *p, uint64_t v) {
  put_u32(p, (uint32_t)(v >> 32));
  put_u32(p + 4, (uint32_t)v);
}

/* ---- the expect ring -------------------------------------------------------- */

static struct expect *expect_front(struct conn *c) {
  return c->expect_len ? &c->expect[c->expect_first] : NULL;
}

static int expect_push(struct conn *c, expect_kind_t kind, stmt_id_t stmt,
                       struct unit *u, int slot) {
  if (c->expect_len == c->expect_cap) {
    fatal(c->drv, "conn %d: expect ring full (a bug)", c->index);
    return -1;
  }
  unsigned at = c->expect_first + c->expect_len;
  if (at >= c->expect_cap)
    at -= c->expect_cap;
  struct expect *e = &c->expect[at];
  e->kind = (unsigned char)kind;
  e->stmt = (unsigned char)stmt;
  e->got_result = 0;
  e->slot = (unsigned char)slot;
  e->unit = u;
  c->expect_len++;
  return 0;
}

static void expect_pop(struct conn *c) {
  if (++c->expect_first == c->expect_cap)
    c->expect_first = 0;
  c->expect_len--;
}

/* ---- polling -------------------------------------------------------------- */

static void set_events(struct conn *c, int events) {
  if (events == c->events)
    return;
  int rc = uv_poll_start(c->poll, events, on_poll);
  if (rc != 0) {
    fatal(c->drv, "conn %d: uv_poll_start: %s", c->index, uv_strerror(rc));
    return;
  }
  c->events = events;
}

static void on_poll_closed(uv_handle_t *handle) {
  struct conn *c = handle->data;
  int current = (uv_handle_t *)c->poll == handle;
  free(handle);
  if (!current)
    return; /* replaced while connecting */
  c->poll = NULL;
  PQfinish(c->pg);
  conn_closed(c);
}

/* Points c->poll at PQsocket(), replacing the handle when libpq has moved to
 * another socket. Polling must be stopped. */
static int watch_socket(struct conn *c) {
  int fd = PQsocket(c->pg);
  if (fd < 0) {
    fatal(c->drv, "conn %d: no socket: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  if (c->poll != NULL && fd == c->fd)
    return 0;
  if (c->poll != NULL) {
    uv_poll_t *old = c->poll;
    c->poll = NULL;
    uv_close((uv_handle_t *)old, on_poll_closed);
  }
  uv_poll_t *p = malloc(sizeof(*p));
  if (p == NULL) {
    fatal(c->drv, "out of memory");
    return -1;
  }
  int rc = uv_poll_init(&c->drv->loop, p, fd);
  if (rc != 0) {
    free(p);
    fatal(c->drv, "conn %d: uv_poll_init: %s", c->index, uv_strerror(rc));
    return -1;
  }
  p->data = c;
  c->poll = p;
  c->fd = fd;
  c->events = 0;
  return 0;
}

/* Flushes libpq's output buffer; READABLE stays armed, WRITABLE only while
 * data is left. Returns PQflush's answer. */
static int flush(struct conn *c) {
  int f = PQflush(c->pg);
  if (f < 0) {
    fatal(c->drv, "conn %d: flush: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  set_events(c, UV_READABLE | (f == 1 ? UV_WRITABLE : 0));
  return f;
}

static void conn_close(struct conn *c) {
  if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
    return;
  if (c->state == CONN_READY)
    c->drv->nactive--;
  c->state = CONN_CLOSING;
  c->queue_head = c->queue_tail = NULL;
  if (c->poll != NULL) {
    /* PQfinish only once the handle is closed: libuv must not poll a closed
     * descriptor. */
    uv_close((uv_handle_t *)c->poll, on_poll_closed);
    return;
  }
  PQfinish(c->pg);
  conn_closed(c);
}

/* ---- sending -------------------------------------------------------------- */

static int send_sync(struct conn *c) {
  if (!PQpipelineSync(c->pg)) {
    fatal(c->drv, "conn %d: PQpipelineSync: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  c->unsynced = 0;
  return expect_push(c, EXPECT_SYNC, ST_COUNT, NULL, 0);
}

/* Hands one statement of unit u to libpq; in sync mode, its sync too. In
 * non-blocking mode libpq buffers whatever the socket does not take, so a
 * refusal means the connection is broken or memory ran out. */
static int send_stmt(struct conn *c, stmt_id_t stmt, struct unit *u, int slot) {
  struct driver *d = c->drv;
  char ints[2][4];
  char longs[2][8];
  char email[96], name[48];
  const char *values[2] = {ints[0], ints[1]};
  int lengths[2] = {4, 4};
  static const int formats[2] = {1, 1};

  switch (stmt) {
  case ST_SELECT:
  case ST_FIND:
    put_u32(ints[0], (uint32_t)u->ids[slot]);
    break;
  case ST_UPDATE:
    put_u32(ints[0], (uint32_t)u->ids[slot]);
    put_u32(ints[1], (uint32_t)u->values[slot]);
    break;
  case ST_REL_CONVS:
    put_u64(longs[0], (uint64_t)u->rel_start);
    put_u64(longs[1], REL_BATCH);
    values[0] = longs[0];
    values[1] = longs[1];
    lengths[0] = lengths[1] = 8;
    break;
  case ST_INSERT: {
    int n = snprintf(email, sizeof email, "%s-%" PRIu64 "@raw.bench", d->email_tag,
                     u->serial);
    int m = snprintf(name, sizeof name, "Raw user %" PRIu64, u->serial);
    values[0] = email;
    values[1] = name;
    lengths[0] = n;
    lengths[1] = m;
    break;
  }
  default:
    break;
  }
  if (!PQsendQueryPrepared(c->pg, stmt_table[stmt].name, stmt_table[stmt].nparams,
                           values, lengths, formats, 1)) {
    fatal(d, "conn %d: PQsendQueryPrepared: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  if (expect_push(c, EXPECT_STMT, stmt, u, slot) != 0)
    return -1;
  if (d->mode == MODE_NOPIPE)
    return 0;
  c->unsynced++;
  if (d->mode == MODE_SYNC)
    return send_sync(c);
  return 0;
}

/* How many statements the current stage of a unit of workload w has. */
static int stage_stmts(workload_t w) {
  switch (w) {
  case W_QUERIES:
  case W_UPDATE:
    return UNIT_QUERIES;
  case W_TX:
    return 4;
  case W_RELATIONS:
    return 5;
  default:
    return 1;
  }
}

/* The i-th statement of u's current stage, and which of u's ids it uses. */
static stmt_id_t stage_stmt(workload_t w, const struct unit *u, int i, int *slot) {
  static const stmt_id_t single[W_COUNT] = {
    [W_FIND] = ST_FIND, [W_SELECT] = ST_SELECT, [W_FORTUNES] = ST_FORTUNES,
    [W_INSERT] = ST_INSERT, [W_BULK] = ST_BULK,
  };
  static const stmt_id_t tx[4] = {ST_BEGIN, ST_FIND, ST_UPDATE, ST_COMMIT};
  static const stmt_id_t rel[5] = {ST_REL_BEGIN, ST_REL_CONVS, ST_REL_MSGS, ST_REL_USAGE,
                                   ST_COMMIT};

  *slot = 0;
  switch (w) {
  case W_QUERIES:
  case W_UPDATE:
    *slot = i;
    return u->stage == 0 ? ST_FIND : ST_UPDATE;
  case W_TX:
    *slot = tx[i] == ST_UPDATE; /* the update writes the second row */
    return tx[i];
  case W_RELATIONS:
    return rel[i];
  default:
    return single[w];
  }
}

/* Sends the statements of u's current stage, back to back: a transaction's
 * statements must not interleave with another unit's on the connection. */
static int send_unit(struct conn *c, struct unit *u) {
  workload_t w = c->drv->workload;
  int n = stage_stmts(w);
  u->pending = n;
  for (int i = 0; i < n; i++) {
    int slot;
    stmt_id_t stmt = stage_stmt(w, u, i, &slot);
    if (send_stmt(c, stmt, u, slot) != 0)
      return -1;
  }
  return 0;
}

/* Without pipeline mode: sends the next statement of the unit at the head
 * of the queue once the connection has nothing in flight. The unit stays
 * at the head until its stage's last statement is sent, so a transaction's
 * statements never interleave with another unit's. */
static void pump_nopipe(struct conn *c) {
  struct unit *u = c->queue_head;
  workload_t w = c->drv->workload;

  if (u != NULL && c->expect_len == 0) {
    int n = stage_stmts(w);
    int slot;
    if (u->sent == 0)
      u->pending = n;
    stmt_id_t stmt = stage_stmt(w, u, u->sent, &slot);
    if (++u->sent == n) {
      c->queue_head = u->next;
      if (c->queue_head == NULL)
        c->queue_tail = NULL;
    }
    if (send_stmt(c, stmt, u, slot) != 0)
      return;
  }
  flush(c);
}

static int compare_updates(const void *a, const void *b) {
  const struct update_item *x = a, *y = b;
  return (x->id > y->id) - (x->id < y->id);
}

/* In batch mode the statements between two syncs are one implicit
 * transaction, which keeps every row it updates locked until the sync. Two
 * connections that update the same rows in different orders would deadlock,
 * so a batch's updates go out in ascending id order, across all its units
 * (TechEmpower's implementations sort their ids for the same reason). */
static int send_updates_sorted(struct conn *c, size_t n) {
  qsort(c->updates, n, sizeof(*c->updates), compare_updates);
  for (size_t i = 0; i < n; i++)
    if (send_stmt(c, ST_UPDATE, c->updates[i].unit, c->updates[i].slot) != 0)
      return -1;
  return 0;
}

/* Sends the queued units as the mode allows, syncs, flushes. */
static void pump(struct conn *c) {
  struct driver *d = c->drv;
  size_t nupdates = 0;

  if (c->state != CONN_READY)
    return;
  if (d->mode == MODE_NOPIPE) {
    pump_nopipe(c);
    return;
  }
  while (c->queue_head != NULL) {
    struct unit *u = c->queue_head;
    c->queue_head = u->next;
    if (c->queue_head == NULL)
      c->queue_tail = NULL;
    if (d->mode == MODE_BATCH && d->workload == W_UPDATE && u->stage == 1) {
      u->pending = UNIT_QUERIES;
      for (int i = 0; i < UNIT_QUERIES; i++)
        c->updates[nupdates++] = (struct update_item){u->ids[i], i, u};
      continue;
    }
    if (send_unit(c, u) != 0)
      return;
    /* In sync mode every sync is a write: once the socket takes only part
     * of one, let WRITABLE resume rather than retry a full socket per sync. */
    if (d->mode == MODE_SYNC && PQflush(c->pg) != 0)
      break;
  }
  if (nupdates > 0 && send_updates_sorted(c, nupdates) != 0)
    return;
  if (c->unsynced > 0 && send_sync(c) != 0)
    return;
  flush(c);
}

/* ---- decoding and checking ------------------------------------------------ */

struct fortune {
  int32_t id;
  const char *message;
};

static int compare_fortunes(const void *a, const void *b) {
  const struct fortune *x = a, *y = b;
  return strcmp(x->message, y->message);
}

/* The rows as structs, every message copied into one block after them, one
 * more fortune added, sorted by message: what a Fortunes handler does before
 * it renders. */
static const char *decode_fortunes(const PGresult *res) {
  int n = PQntuples(res);
  if (n < 1 || PQnfields(res) != 2)
    return "not rows of two columns";
  if (PQftype(res, 0) != INT4_OID || PQftype(res, 1) != TEXT_OID || PQfformat(res, 0) != 1)
    return "not binary int4 and text";
  size_t bytes = sizeof(EXTRA_FORTUNE);
  for (int i = 0; i < n; i++)
    bytes += (size_t)PQgetlength(res, i, 1) + 1;
  size_t nf = (size_t)n + 1;
  struct fortune *f = malloc(nf * sizeof(*f) + bytes);
  if (f == NULL)
    return "out of memory";
  char *text = (char *)(f + nf);
  const char *why = NULL;
  for (int i = 0; i < n; i++) {
    if (PQgetisnull(res, i, 0) || PQgetisnull(res, i, 1) || PQgetlength(res, i, 0) != 4) {
      why = "a NULL or malformed column";
      break;
    }
    size_t len = (size_t)PQgetlength(res, i, 1);
    f[i].id = (int32_t)get_u32(PQgetvalue(res, i, 0));
    memcpy(text, PQgetvalue(res, i, 1), len);
    text[len] = '\0';
    f[i].message = text;
    text += len + 1;
  }
  if (why == NULL) {
    memcpy(text, EXTRA_FORTUNE, sizeof(EXTRA_FORTUNE));
    f[n].id = 0;
    f[n].message = text;
    qsort(f, nf, sizeof(*f), compare_fortunes);
    sink += (uint64_t)f[0].id + (unsigned char)f[nf - 1].message[0];
  }
  free(f);
  return why;
}

/* Bulk decoding: rows as structs, strings in a list of bump-allocated
 * blocks freed all at once, as an ORM's result arena does. */
#define ARENA_BLOCK (256 * 1024)

struct arena_block {
  struct arena_block *next;
  size_t used, size;
  char bytes[];
};

struct user_row {
  int64_t id;
  const char *email;
  const char *name; /* NULL for NULL */
  int64_t created_at; /* microseconds since 2000-01-01 */
};

static char *arena_copy(struct arena_block **arena, const char *s, size_t len) {
  struct arena_block *b = *arena;
  if (b == NULL || b->size - b->used < len + 1) {
    size_t size = len + 1 > ARENA_BLOCK ? len + 1 : ARENA_BLOCK;
    struct arena_block *nb = malloc(sizeof(*nb) + size);
    if (nb == NULL)
      return NULL;
    nb->next = b;
    nb->used = 0;
    nb->size = size;
    *arena = b = nb;
  }
  char *p = b->bytes + b->used;
  memcpy(p, s, len);
  p[len] = '\0';
  b->used += len + 1;
  return p;
}

static const char *decode_users(const PGresult *res, uint64_t *rows) {
  int n = PQntuples(res);
  *rows = 0;
  if (n < 1 || PQnfields(res) != 4)
    return "not rows of four columns";
  if (PQftype(res, 0) != INT8_OID || PQftype(res, 1) != TEXT_OID ||
      PQftype(res, 2) != TEXT_OID || PQftype(res, 3) != TIMESTAMPTZ_OID ||
      PQfformat(res, 0) != 1)
    return "not binary int8, text, text, timestamptz";
  struct user_row *u = malloc((size_t)n * sizeof(*u));
  if (u == NULL)
    return "out of memory";
  struct arena_block *arena = NULL;
  const char *why = NULL;
  uint64_t nulls = 0;
  for (int i = 0; i < n; i++) {
    if (PQgetisnull(res, i, 0) || PQgetlength(res, i, 0) != 8 || PQgetisnull(res, i, 1) ||
        PQgetisnull(res, i, 3) || PQgetlength(res, i, 3) != 8) {
      why = "a NULL or malformed column";
      break;
    }
    u[i].id = (int64_t)get_u64(PQgetvalue(res, i, 0));
    u[i].email = arena_copy(&arena, PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1));
    if (PQgetisnull(res, i, 2)) {
      u[i].name = NULL;
      nulls++;
    } else {
      u[i].name = arena_copy(&arena, PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2));
    }
    u[i].created_at = (int64_t)get_u64(PQgetvalue(res, i, 3));
    if (u[i].email == NULL || (u[i].name == NULL && !PQgetisnull(res, i, 2))) {
      why = "out of memory";
      break;
    }
  }
  if (why == NULL) {
    sink += (uint64_t)u[n - 1].id + (uint64_t)u[0].created_at + nulls +
            (unsigned char)u[n - 1].email[0];
    *rows = (uint64_t)n;
  }
  while (arena != NULL) {
    struct arena_block *next = arena->next;
    free(arena);
    arena = next;
  }
  free(u);
  return why;
}

/* ---- relations: decoding, stitching, checking ------------------------------ */

static uint16_t get_u16(const char *p) {
  const unsigned char *b = (const unsigned char *)p;
  return (uint16_t)(b[0] << 8 | b[1]);
}

/* Room for at least `bytes` in b (what it held is not kept), or NULL. */
static void *rel_reserve(struct rel_buf *b, size_t bytes) {
  if (b->cap < bytes) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < bytes)
      cap *= 2;
    void *p = malloc(cap);
    if (p == NULL)
      return NULL;
    free(b->p);
    b->p = p;
    b->cap = cap;
  }
  return b->p;
}

static void rel_unit_free(struct rel_unit *r) {
  if (r == NULL)
    return;
  free(r->convs_buf.p);
  free(r->msgs_buf.p);
  free(r->usage_buf.p);
  free(r->convs_text.p);
  free(r->msgs_text.p);
  free(r->usage_text.p);
  free(r);
}

/* Copies a text value to *text as a C string and moves *text past it. */
static const char *put_text(char **text, const PGresult *res, int row, int col) {
  size_t len = (size_t)PQgetlength(res, row, col);
  char *p = *text;
  memcpy(p, PQgetvalue(res, row, col), len);
  p[len] = '\0';
  *text = p + len + 1;
  return p;
}

/* The size (NUL included) of the decimal text of a binary numeric, or 0
 * when it is malformed or not a finite number. */
static size_t numeric_text_size(const char *v, int len) {
  if (len < 8)
    return 0;
  int ndigits = (int16_t)get_u16(v), weight = (int16_t)get_u16(v + 2);
  unsigned sign = get_u16(v + 4);
  int dscale = (int16_t)get_u16(v + 6);
  if (ndigits < 0 || len != 8 + 2 * ndigits || (sign != 0 && sign != 0x4000) || dscale < 0)
    return 0;
  for (int i = 0; i < ndigits; i++)
    if (get_u16(v + 8 + 2 * i) >= 10000)
      return 0;
  size_t int_groups = weight >= 0 ? (size_t)weight + 1 : 0;
  return 1 + (int_groups ? int_groups * 4 : 1) + 1 + ((size_t)dscale + 3) / 4 * 4 + 1;
}

static void put_digits4(char *p, unsigned d) {
  p[0] = (char)('0' + d / 1000);
  p[1] = (char)('0' + d / 100 % 10);
  p[2] = (char)('0' + d / 10 % 10);
  p[3] = (char)('0' + d % 10);
}

/* Writes the decimal text of a binary numeric that numeric_text_size()
 * accepted to out (as numeric's output function does); returns the end. */
static char *numeric_text(char *out, const char *v) {
  int ndigits = (int16_t)get_u16(v), weight = (int16_t)get_u16(v + 2);
  int dscale = (int16_t)get_u16(v + 6);
  const char *digits = v + 8;
  char *p = out;
  if (get_u16(v + 4) == 0x4000)
    *p++ = '-';
  if (weight < 0) {
    *p++ = '0';
  } else {
    for (int g = 0; g <= weight; g++) {
      unsigned d = g < ndigits ? get_u16(digits + 2 * g) : 0;
      put_digits4(p, d);
      if (g == 0) { /* no leading zeros, but one digit at least */
        int k = 0;
        while (k < 3 && p[k] == '0')
          k++;
        memmove(p, p + k, (size_t)(4 - k));
        p += 4 - k;
      } else {
        p += 4;
      }
    }
  }
  if (dscale > 0) {
    *p++ = '.';
    for (int k = 0; k * 4 < dscale; k++) {
      int g = weight + 1 + k;
      put_digits4(p + 4 * k, g >= 0 && g < ndigits ? get_u16(digits + 2 * g) : 0);
    }
    p += dscale;
  }
  *p = '\0';
  return p + 1;
}

static const char *rel_decode_convs(struct rel_unit *r, const PGresult *res) {
  int n = PQntuples(res);
  if (PQnfields(res) != 4 || PQftype(res, 0) != INT8_OID || PQftype(res, 1) != INT8_OID ||
      PQftype(res, 2) != TEXT_OID || PQftype(res, 3) != TIMESTAMPTZ_OID ||
      PQfformat(res, 0) != 1)
    return "conversations: not binary int8, int8, text, timestamptz";
  size_t bytes = 1;
  for (int i = 0; i < n; i++)
    bytes += (size_t)PQgetlength(res, i, 2) + 1;
  struct rel_conversation *c = rel_reserve(&r->convs_buf, (size_t)n * sizeof(*c) + 1);
  char *text = rel_reserve(&r->convs_text, bytes);
  if (c == NULL || text == NULL)
    return "out of memory";
  for (int i = 0; i < n; i++, c++) {
    if (PQgetlength(res, i, 0) != 8 || PQgetlength(res, i, 1) != 8 ||
        PQgetisnull(res, i, 2) || PQgetlength(res, i, 3) != 8)
      return "conversations: a NULL or malformed column";
    c->id = (int64_t)get_u64(PQgetvalue(res, i, 0));
    c->user_id = (int64_t)get_u64(PQgetvalue(res, i, 1));
    c->title = put_text(&text, res, i, 2);
    c->started_at = (int64_t)get_u64(PQgetvalue(res, i, 3));
    c->messages = NULL;
    c->nmessages = 0;
  }
  r->convs = r->convs_buf.p;
  r->nconvs = (size_t)n;
  return NULL;
}

static const char *rel_decode_msgs(struct rel_unit *r, const PGresult *res) {
  int n = PQntuples(res);
  if (PQnfields(res) != 6 || PQftype(res, 0) != INT8_OID || PQftype(res, 1) != INT8_OID ||
      PQftype(res, 2) != TEXT_OID || PQftype(res, 3) != TEXT_OID ||
      PQftype(res, 4) != INT4_OID || PQftype(res, 5) != TIMESTAMPTZ_OID ||
      PQfformat(res, 0) != 1)
    return "messages: not binary int8, int8, text, text, int4, timestamptz";
  size_t bytes = 1;
  for (int i = 0; i < n; i++)
    bytes += (size_t)PQgetlength(res, i, 2) + (size_t)PQgetlength(res, i, 3) + 2;
  struct rel_message *m = rel_reserve(&r->msgs_buf, (size_t)n * sizeof(*m) + 1);
  char *text = rel_reserve(&r->msgs_text, bytes);
  if (m == NULL || text == NULL)
    return "out of memory";
  for (int i = 0; i < n; i++, m++) {
    if (PQgetlength(res, i, 0) != 8 || PQgetlength(res, i, 1) != 8 ||
        PQgetisnull(res, i, 2) || PQgetisnull(res, i, 3) || PQgetlength(res, i, 4) != 4 ||
        PQgetlength(res, i, 5) != 8)
      return "messages: a NULL or malformed column";
    m->id = (int64_t)get_u64(PQgetvalue(res, i, 0));
    m->conversation_id = (int64_t)get_u64(PQgetvalue(res, i, 1));
    m->role = put_text(&text, res, i, 2);
    m->content = put_text(&text, res, i, 3);
    m->tokens = (int32_t)get_u32(PQgetvalue(res, i, 4));
    m->created_at = (int64_t)get_u64(PQgetvalue(res, i, 5));
    m->usage = NULL;
  }
  r->msgs = r->msgs_buf.p;
  r->nmsgs = (size_t)n;
  return NULL;
}

static const char *rel_decode_usage(struct rel_unit *r, const PGresult *res) {
  int n = PQntuples(res);
  if (PQnfields(res) != 5 || PQftype(res, 0) != INT8_OID || PQftype(res, 1) != INT8_OID ||
      PQftype(res, 2) != INT4_OID || PQftype(res, 3) != INT4_OID ||
      PQftype(res, 4) != NUMERIC_OID || PQfformat(res, 0) != 1)
    return "usage_records: not binary int8, int8, int4, int4, numeric";
  size_t bytes = 1;
  for (int i = 0; i < n; i++) {
    size_t size = numeric_text_size(PQgetvalue(res, i, 4), PQgetlength(res, i, 4));
    if (size == 0 || PQgetisnull(res, i, 4))
      return "usage_records: a NULL or malformed cost";
    bytes += size;
  }
  struct rel_usage *us = rel_reserve(&r->usage_buf, (size_t)n * sizeof(*us) + 1);
  char *text = rel_reserve(&r->usage_text, bytes);
  if (us == NULL || text == NULL)
    return "out of memory";
  for (int i = 0; i < n; i++, us++) {
    if (PQgetlength(res, i, 0) != 8 || PQgetlength(res, i, 1) != 8 ||
        PQgetlength(res, i, 2) != 4 || PQgetlength(res, i, 3) != 4)
      return "usage_records: a NULL or malformed column";
    us->id = (int64_t)get_u64(PQgetvalue(res, i, 0));
    us->message_id = (int64_t)get_u64(PQgetvalue(res, i, 1));
    us->prompt_tokens = (int32_t)get_u32(PQgetvalue(res, i, 2));
    us->completion_tokens = (int32_t)get_u32(PQgetvalue(res, i, 3));
    us->cost = text;
    text = numeric_text(text, PQgetvalue(res, i, 4));
  }
  r->usage = r->usage_buf.p;
  r->nusage = (size_t)n;
  return NULL;
}

/* A map from message ids to messages, for the stitching (open addressing;
 * one loop thread, so one map serves every unit). */
#define REL_MAP_SIZE 1024 /* a power of two */
static struct {
  int64_t key;
  struct rel_message *m;
} rel_map[REL_MAP_SIZE];

static size_t rel_map_slot(int64_t key) {
  size_t i = (size_t)((uint64_t)key * UINT64_C(0x9E3779B97F4A7C15) >> 54);
  while (rel_map[i].m != NULL && rel_map[i].key != key)
    i = (i + 1) & (REL_MAP_SIZE - 1);
  return i;
}

/* Hangs each conversation's messages on it, and each message's usage on
 * the message. */
static const char *rel_stitch(struct rel_unit *r) {
  /* Both come in conversation order: merge. */
  size_t ci = 0;
  for (size_t start = 0, end; start < r->nmsgs; start = end) {
    int64_t cid = r->msgs[start].conversation_id;
    for (end = start + 1; end < r->nmsgs && r->msgs[end].conversation_id == cid;)
      end++;
    while (ci < r->nconvs && r->convs[ci].id < cid)
      ci++;
    if (ci < r->nconvs && r->convs[ci].id == cid) {
      r->convs[ci].messages = &r->msgs[start];
      r->convs[ci].nmessages = end - start;
    }
  }
  if (r->nmsgs > REL_MAP_SIZE / 2)
    return "more messages than the map takes";
  for (size_t i = 0; i < REL_MAP_SIZE; i++)
    rel_map[i].m = NULL;
  for (size_t i = 0; i < r->nmsgs; i++) {
    size_t slot = rel_map_slot(r->msgs[i].id);
    rel_map[slot].key = r->msgs[i].id;
    rel_map[slot].m = &r->msgs[i];
  }
  for (size_t i = 0; i < r->nusage; i++) {
    struct rel_message *m = rel_map[rel_map_slot(r->usage[i].message_id)].m;
    if (m != NULL && m->usage == NULL)
      m->usage = &r->usage[i];
  }
  return NULL;
}

/* Why the unit's stitched rows are not REL_BATCH conversations from
 * rel_start with their messages and usage; or NULL. As bench_workloads
 * checks uvorm's. */
static const char *rel_mismatch(const struct unit *u) {
  const struct rel_unit *r = u->rel;
  uint64_t tokens = 0;
  if (r->nconvs != REL_BATCH)
    return "not REL_BATCH conversations";
  for (size_t i = 0; i < r->nconvs; i++) {
    const struct rel_conversation *c = &r->convs[i];
    if (c->id != u->rel_start + (int64_t)i || c->title == NULL)
      return "a wrong conversation";
    if (c->nmessages != REL_MESSAGES_PER)
      return "not REL_MESSAGES_PER messages in a conversation";
    for (size_t k = 0; k < c->nmessages; k++) {
      const struct rel_message *m = &c->messages[k];
      const struct rel_usage *us = m->usage;
      int64_t id = (c->id - 1) * REL_MESSAGES_PER + (int64_t)k + 1;
      if (m->id != id || m->conversation_id != c->id)
        return "a wrong message";
      if (us == NULL)
        return "a message without its usage";
      if (us->message_id != id || us->prompt_tokens != REL_PROMPT_TOKENS(id) ||
          us->completion_tokens != REL_COMPLETION_TOKENS(id) || !rel_cost_ok(us->cost, id))
        return "a wrong usage record";
      tokens += (uint64_t)m->tokens + (uint64_t)us->prompt_tokens +
                (uint64_t)us->completion_tokens;
    }
  }
  sink += tokens;
  return NULL;
}

/* The last result of a relations unit: decoded, stitched, checked. */
static const char *rel_finish(const struct unit *u, const PGresult *res) {
  struct rel_unit *r = u->rel;
  if (r->decoded != 2)
    return "usage records without the conversations and messages";
  const char *why = rel_decode_usage(r, res);
  if (why == NULL)
    why = rel_stitch(r);
  if (why == NULL)
    why = rel_mismatch(u);
  return why;
}

/* Checks one statement's result; returns why it is wrong, or NULL. */
static const char *check_result(const struct expect *e, PGresult *res,
                                uint64_t *rows) {
  ExecStatusType st = PQresultStatus(res);
  struct unit *u = e->unit;

  switch ((stmt_id_t)e->stmt) {
  case ST_SELECT:
    if (st != PGRES_TUPLES_OK)
      break;
    if (PQntuples(res) != 1 || PQnfields(res) != 1)
      return "not one row of one column";
    if (PQfformat(res, 0) != 1 || PQgetisnull(res, 0, 0) || PQgetlength(res, 0, 0) != 4)
      return "not a binary int4";
    if ((int32_t)get_u32(PQgetvalue(res, 0, 0)) != u->ids[e->slot])
      return "wrong value";
    return NULL;
  case ST_FIND:
    if (st != PGRES_TUPLES_OK)
      break;
    if (PQntuples(res) != 1 || PQnfields(res) != 2)
      return "not one row of two columns";
    if (PQfformat(res, 0) != 1 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1) ||
        PQgetlength(res, 0, 0) != 4 || PQgetlength(res, 0, 1) != 4)
      return "not two binary int4";
    if ((int32_t)get_u32(PQgetvalue(res, 0, 0)) != u->ids[e->slot])
      return "wrong id";
    sink += get_u32(PQgetvalue(res, 0, 1));
    return NULL;
  case ST_UPDATE:
    if (st != PGRES_COMMAND_OK)
      break;
    return strcmp(PQcmdTuples(res), "1") == 0 ? NULL : "not one row updated";
  case ST_FORTUNES:
    if (st != PGRES_TUPLES_OK)
      break;
    return decode_fortunes(res);
  case ST_INSERT:
    if (st != PGRES_TUPLES_OK)
      break;
    if (PQntuples(res) != 1 || PQnfields(res) != 2)
      return "not one row of two columns";
    if (PQfformat(res, 0) != 1 || PQgetisnull(res, 0, 0) || PQgetisnull(res, 0, 1) ||
        PQgetlength(res, 0, 0) != 8 || PQgetlength(res, 0, 1) != 8)
      return "not a binary int8 and timestamptz";
    if ((int64_t)get_u64(PQgetvalue(res, 0, 0)) <= 0)
      return "id not positive";
    sink += get_u64(PQgetvalue(res, 0, 1));
    return NULL;
  case ST_BULK:
    if (st != PGRES_TUPLES_OK)
      break;
    return decode_users(res, rows);
  case ST_BEGIN:
  case ST_REL_BEGIN:
    if (st != PGRES_COMMAND_OK)
      break;
    return NULL;
  case ST_REL_CONVS:
  case ST_REL_MSGS: {
    if (st != PGRES_TUPLES_OK)
      break;
    const char *why = e->stmt == ST_REL_CONVS ? rel_decode_convs(u->rel, res)
                                              : rel_decode_msgs(u->rel, res);
    if (why == NULL)
      u->rel->decoded++;
    return why;
  }
  case ST_REL_USAGE:
    if (st != PGRES_TUPLES_OK)
      break;
    return rel_finish(u, res);
  case ST_COMMIT:
    if (st != PGRES_COMMAND_OK)
      break;
    /* A failed transaction's COMMIT succeeds, as a ROLLBACK. */
    return strcmp(PQcmdStatus(res), "COMMIT") == 0 ? NULL : "rolled back";
  case ST_COUNT:
    break;
  }
  if (st == PGRES_PIPELINE_ABORTED)
    return "skipped after an earlier error in its pipeline segment";
  const char *msg = PQresultErrorMessage(res);
  return *msg ? msg : PQresStatus(st);
}

/* ---- units ---------------------------------------------------------------- */

static void queue_unit(struct conn *c, struct unit *u) {
  u->next = NULL;
  u->sent = 0;
  if (c->queue_tail)
    c->queue_tail->next = u;
  else
    c->queue_head = u;
  c->queue_tail = u;
}

/* Gives u new work and queues it for sending. */
static void issue(struct conn *c, struct unit *u, uint64_t now) {
  struct driver *d = c->drv;
  switch (d->workload) {
  case W_SELECT:
    u->ids[0] = d->next_value;
    d->next_value = d->next_value == INT32_MAX ? 1 : d->next_value + 1;
    break;
  case W_FIND:
    u->ids[0] = rand_row(d);
    break;
  case W_TX:
    u->ids[0] = rand_row(d);
    u->ids[1] = rand_row(d);
    u->values[1] = rand_row(d);
    break;
  case W_QUERIES:
  case W_UPDATE:
    for (int i = 0; i < UNIT_QUERIES; i++)
      u->ids[i] = rand_row(d);
    break;
  case W_INSERT:
    u->serial = d->next_serial++;
    break;
  case W_RELATIONS:
    u->rel_start = (int64_t)(1 + rand_u32(d) % REL_MAX_START);
    u->rel->decoded = 0;
    break;
  default:
    break;
  }
  u->stage = 0;
  u->issued_ns = now;
  queue_unit(c, u);
}

/* The last answer of u's current stage has been read. */
static void stage_done(struct conn *c, struct unit *u, uint64_t now) {
  struct driver *d = c->drv;
  if (d->workload == W_UPDATE && u->stage == 0) {
    /* Read, now write back: TechEmpower's updates test. After the run, a
     * half-done unit is dropped. */
    if (!bench_run_active(&d->run))
      return;
    u->stage = 1;
    for (int i = 0; i < UNIT_QUERIES; i++)
      u->values[i] = rand_row(d);
    queue_unit(c, u);
    return;
  }
  bench_run_record(&d->run, now - u->issued_ns);
  if (bench_run_active(&d->run))
    issue(c, u, now);
}

static void conn_ready(struct conn *c) {
  struct driver *d = c->drv;
  c->state = CONN_READY;
  d->nactive++;
  /* Start one loop turn later, outside this connection's result loop. */
  if (++d->nready == d->nconns)
    uv_timer_start(&d->timer, on_timer, 0, 0);
}

/* Sends the prepare of the next statement the workload uses. */
static int send_prepare(struct conn *c) {
  unsigned need = workload_table[c->drv->workload].stmts;
  int s = c->next_prepare;

  while (s < ST_COUNT && !(need & 1u << s))
    s++;
  if (s == ST_COUNT) {
    fatal(c->drv, "conn %d: no statement left to prepare (a bug)", c->index);
    return -1;
  }
  c->next_prepare = s + 1;
  if (!PQsendPrepare(c->pg, stmt_table[s].name, stmt_table[s].sql,
                     stmt_table[s].nparams, stmt_table[s].types)) {
    fatal(c->drv, "conn %d: PQsendPrepare: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  return expect_push(c, EXPECT_PREPARE, (stmt_id_t)s, NULL, 0);
}

/* One prepare has been answered: the connection is ready after the last;
 * without pipeline mode, the next is sent now. */
static void prepared(struct conn *c) {
  if (--c->prepares_left == 0)
    conn_ready(c);
  else if (c->drv->mode == MODE_NOPIPE)
    send_prepare(c);
}

/* Reads every result libpq can give without blocking. */
static void read_results(struct conn *c) {
  struct driver *d = c->drv;
  uint64_t now = 0;

  while (!PQisBusy(c->pg)) {
    PGresult *res = PQgetResult(c->pg);
    struct expect *e = expect_front(c);
    if (res == NULL) {
      if (e != NULL && e->kind != EXPECT_SYNC && e->got_result) {
        int was_prepare = e->kind == EXPECT_PREPARE;
        expect_pop(c);
        if (was_prepare)
          prepared(c);
        continue;
      }
      return; /* nothing more has arrived */
    }
    ExecStatusType st = PQresultStatus(res);
    const char *bad = NULL;
    if (e == NULL) {
      bad = "a result nothing was waiting for";
    } else if (e->kind == EXPECT_SYNC) {
      if (st == PGRES_PIPELINE_SYNC)
        expect_pop(c);
      else
        bad = "expected a pipeline sync";
    } else if (e->got_result) {
      bad = "a second result for one statement";
    } else if (e->kind == EXPECT_PREPARE) {
      e->got_result = 1;
      if (st != PGRES_COMMAND_OK)
        bad = "prepare failed";
    } else if (e->kind == EXPECT_CLEANUP) {
      e->got_result = 1;
      if (st != PGRES_COMMAND_OK)
        bad = "deleting the inserted users failed";
      else if (strtoull(PQcmdTuples(res), NULL, 10) != d->inserted)
        bench_run_wrong(&d->run, DRIVER, "inserted %" PRIu64 " users but deleted %s",
                        d->inserted, PQcmdTuples(res));
    } else {
      struct unit *u = e->unit;
      uint64_t rows = 0;
      e->got_result = 1;
      const char *why = check_result(e, res, &rows);
      if (why != NULL && d->workload == W_RELATIONS && !d->rel_checked) {
        /* A wrong first answer: something is broken, not noisy. */
        fatal(d, "conn %d: %s: the first answer is wrong: %s", c->index,
              stmt_table[e->stmt].name, why);
        PQclear(res);
        return;
      }
      if (why != NULL)
        bench_run_wrong(&d->run, DRIVER, "conn %d: %s: %s", c->index,
                        stmt_table[e->stmt].name, why);
      else if (e->stmt == ST_INSERT)
        d->inserted++;
      else if (e->stmt == ST_REL_USAGE)
        d->rel_checked = 1;
      if (d->run.phase == BENCH_MEASURE)
        d->measured_rows += rows;
      if (--u->pending == 0) {
        /* One clock read per read_results call: a batch's answers arrive
         * together. */
        if (now == 0)
          now = bench_now_ns();
        stage_done(c, u, now);
      }
    }
    if (bad != NULL) {
      fatal(d, "conn %d: %s (%s): %s", c->index, bad, PQresStatus(st),
            PQresultErrorMessage(res));
      PQclear(res);
      return;
    }
    PQclear(res);
  }
}

/* ---- the end of a connection ------------------------------------------------ */

/* Deletes the users this run inserted. The other connections have drained,
 * so every insert has been committed. */
static void send_cleanup(struct conn *c) {
  struct driver *d = c->drv;
  char pattern[64];
  const char *values[1] = {pattern};

  snprintf(pattern, sizeof pattern, "%s-%%", d->email_tag);
  d->cleanup_sent = 1;
  if (!PQsendQueryParams(c->pg, "DELETE FROM bench.users WHERE email LIKE $1", 1, NULL,
                         values, NULL, NULL, 0)) {
    fatal(d, "conn %d: PQsendQueryParams: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  if (expect_push(c, EXPECT_CLEANUP, ST_COUNT, NULL, 0) != 0)
    return;
  if (d->mode != MODE_NOPIPE && send_sync(c) != 0)
    return;
  flush(c);
}

/* After the run, c has nothing left in flight: it closes, unless it is the
 * last connection of an insert run, which first tidies up. */
static void conn_drained(struct conn *c) {
  struct driver *d = c->drv;
  if (d->workload == W_INSERT && !d->cleanup_sent && !d->failed && d->nactive == 1) {
    send_cleanup(c);
    return;
  }
  conn_close(c);
}

/* ---- connecting ----------------------------------------------------------- */

/* Prepares every statement the workload uses: in pipeline mode all at once
 * behind one sync, without it the first (prepared() sends the others). */
static void connected(struct conn *c) {
  struct driver *d = c->drv;
  unsigned need = workload_table[d->workload].stmts;

  if (PQsetnonblocking(c->pg, 1) != 0) {
    fatal(d, "conn %d: PQsetnonblocking: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  if (d->mode != MODE_NOPIPE && !PQenterPipelineMode(c->pg)) {
    fatal(d, "conn %d: PQenterPipelineMode: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  c->prepares_left = 0;
  for (int s = 0; s < ST_COUNT; s++)
    c->prepares_left += (need & 1u << s) != 0;
  c->next_prepare = 0;
  int to_send = d->mode == MODE_NOPIPE ? 1 : c->prepares_left;
  for (int i = 0; i < to_send; i++)
    if (send_prepare(c) != 0)
      return;
  if (d->mode != MODE_NOPIPE && send_sync(c) != 0)
    return;
  c->state = CONN_PREPARING;
  flush(c);
}

static void connect_step(struct conn *c) {
  /* libpq may close the socket and open another in this step. */
  uv_poll_stop(c->poll);
  c->events = 0;
  PostgresPollingStatusType st = PQconnectPoll(c->pg);
  if (st == PGRES_POLLING_FAILED) {
    fatal(c->drv, "conn %d: connect: %s", c->index, PQerrorMessage(c->pg));
    return;
  }
  if (watch_socket(c) != 0)
    return;
  if (st == PGRES_POLLING_OK)
    connected(c);
  else
    set_events(c, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  struct conn *c = handle->data;
  struct driver *d = c->drv;

  if (c->state == CONN_CLOSING || c->state == CONN_CLOSED)
    return;
  /* During the connect, libpq says what a socket error (libuv's UV_EBADF
   * for EPOLLERR) actually was. */
  if (c->state == CONN_CONNECTING) {
    connect_step(c);
    return;
  }
  if (status < 0) {
    /* What the server sent before the error says more than the socket. */
    c->events = 0;
    if (!PQconsumeInput(c->pg)) {
      fatal(d, "conn %d: %s", c->index, PQerrorMessage(c->pg));
      return;
    }
    read_results(c);
    if (c->state != CONN_CLOSING)
      fatal(d, "conn %d: socket error (%s)", c->index, uv_strerror(status));
    return;
  }
  if (events & UV_READABLE) {
    if (!PQconsumeInput(c->pg)) {
      fatal(d, "conn %d: %s", c->index, PQerrorMessage(c->pg));
      return;
    }
    read_results(c);
    if (c->state == CONN_CLOSING)
      return;
  }
  /* Drained after the run: nothing left to read. */
  if (c->state == CONN_READY && d->run.phase == BENCH_DONE && c->expect_len == 0) {
    conn_drained(c);
    if (c->state != CONN_READY)
      return;
  }
  if (c->state == CONN_READY)
    pump(c);
  else
    flush(c);
}

static int conn_open(struct driver *d, struct conn *c) {
  c->pg = PQconnectStart(d->opts.conninfo);
  if (c->pg == NULL) {
    fatal(d, "out of memory");
    return -1;
  }
  c->state = CONN_CONNECTING;
  d->nopen++;
  if (PQstatus(c->pg) == CONNECTION_BAD) {
    fatal(d, "conn %d: connect: %s", c->index, PQerrorMessage(c->pg));
    return -1;
  }
  if (watch_socket(c) != 0)
    return -1;
  /* As the libpq manual says: start as if PQconnectPoll had asked to write. */
  set_events(c, UV_WRITABLE);
  return c->state == CONN_CONNECTING ? 0 : -1;
}

/* ---- the run -------------------------------------------------------------- */

/* The measured phase is over (or a fatal error stopped the run): send
 * nothing more, let what is in flight finish, then close. */
static void on_run_done(bench_run_t *run) {
  struct driver *d = run->data;
  int waiting = 0;

  for (int i = 0; i < d->nconns; i++) {
    struct conn *c = &d->conns[i];
    c->queue_head = c->queue_tail = NULL;
    if (c->state == CONN_READY && c->expect_len > 0)
      waiting = 1;
    else if (c->state == CONN_READY && !d->failed)
      conn_drained(c);
    else
      conn_close(c);
    if (c->state == CONN_READY)
      waiting = 1;
  }
  if (d->failed)
    return;
  if (waiting)
    uv_timer_start(&d->timer, on_timer, DRAIN_TIMEOUT_MS, 0);
  else if (d->nopen == 0)
    close_timer(d);
}

static void on_start(struct driver *d) {
  bench_run_start(&d->run);
  uint64_t now = bench_now_ns();
  for (int i = 0; i < d->nconns; i++) {
    struct conn *c = &d->conns[i];
    for (int k = 0; k < c->nunits; k++)
      issue(c, &c->units[k], now);
  }
  for (int i = 0; i < d->nconns && !d->failed; i++)
    pump(&d->conns[i]);
}

/* The driver's one timer: the start, then the bound on the drain. */
static void on_timer(uv_timer_t *timer) {
  struct driver *d = timer->data;
  if (d->run.phase == BENCH_IDLE)
    on_start(d);
  else
    fatal(d, "in-flight units did not finish within %d ms", DRAIN_TIMEOUT_MS);
}

int main(int argc, char **argv) {
  static const bench_choices_t choices = {workload_names, W_COUNT, mode_names,
                                          MODE_COUNT};
  static struct driver drv;
  struct driver *d = &drv;

  int rc = bench_opts_parse(&d->opts, argc, argv, &choices);
  if (rc != 0)
    return rc > 0 ? 0 : 2;
  d->workload = (workload_t)d->opts.workload_id;
  d->mode = (send_mode_t)d->opts.mode_id;

  if (bench_run_open(&d->run, &d->loop, &d->opts, on_run_done, d, DRIVER) != 0)
    return 1;
  if ((rc = uv_timer_init(&d->loop, &d->timer)) != 0) {
    bench_warn(DRIVER, "%s", uv_strerror(rc));
    return 1;
  }
  d->timer.data = d;
  uint64_t t0 = uv_hrtime();
  d->rng = (t0 ^ ((uint64_t)getpid() << 32)) | 1;
  d->next_value = 1;
  d->next_serial = 1;
  snprintf(d->email_tag, sizeof d->email_tag, "raw-%ld-%" PRIx64, (long)getpid(), t0);

  d->nconns = d->opts.conns;
  d->conns = calloc((size_t)d->nconns, sizeof(*d->conns));
  struct unit *units = calloc((size_t)d->opts.inflight, sizeof(*units));
  if (d->conns == NULL || units == NULL) {
    bench_warn(DRIVER, "out of memory");
    return 1;
  }
  for (int i = 0; d->workload == W_RELATIONS && i < d->opts.inflight; i++)
    if ((units[i].rel = calloc(1, sizeof(*units[i].rel))) == NULL) {
      bench_warn(DRIVER, "out of memory");
      return 1;
    }
  struct unit *next_unit = units;
  unsigned per_unit = (unsigned)workload_table[d->workload].max_in_flight;
  for (int i = 0; i < d->nconns; i++) {
    struct conn *c = &d->conns[i];
    c->drv = d;
    c->index = i;
    c->state = CONN_CLOSED;
    c->fd = -1;
    c->nunits = d->opts.inflight / d->nconns + (i < d->opts.inflight % d->nconns);
    c->units = next_unit;
    next_unit += c->nunits;
    /* Every statement and every sync is in the ring until its answer is
     * read; a segment holds at least one statement, so syncs never
     * outnumber statements; plus the prepares and their sync. */
    c->expect_cap = 2 * per_unit * (unsigned)c->nunits + ST_COUNT + 2;
    c->expect = calloc(c->expect_cap, sizeof(*c->expect));
    c->updates = calloc((size_t)c->nunits * UNIT_QUERIES + 1, sizeof(*c->updates));
    if (c->expect == NULL || c->updates == NULL) {
      bench_warn(DRIVER, "out of memory");
      return 1;
    }
  }

  bench_opts_announce(&d->opts, DRIVER);
  for (int i = 0; i < d->nconns && !d->failed; i++)
    if (conn_open(d, &d->conns[i]) != 0)
      break;

  uv_run(&d->loop, UV_RUN_DEFAULT);

  if (bench_loop_close(&d->loop, DRIVER) != 0)
    d->failed = 1;
  for (int i = 0; i < d->nconns; i++) {
    free(d->conns[i].expect);
    free(d->conns[i].updates);
  }
  free(d->conns);
  for (int i = 0; i < d->opts.inflight; i++)
    rel_unit_free(units[i].rel);
  free(units);

  rc = bench_report(&d->run, &d->opts, DRIVER, d->failed);
  if (!d->failed && d->workload == W_BULK) {
    bench_result_t r;
    bench_run_result(&d->run, &d->opts, DRIVER, &r);
    printf("%s mode=%s P=%d C=%d: %.0f rows/s (%.0f rows per op)\n", DRIVER, r.mode,
           r.conns, r.inflight, r.seconds > 0 ? (double)d->measured_rows / r.seconds : 0.0,
           r.ops > 0 ? (double)d->measured_rows / (double)r.ops : 0.0);
  }
  return rc;
}
