/* SPDX-License-Identifier: MIT */
/* Running migrations on a pool, on the loop.
 *
 * Every step that changes the database is one transaction that first takes
 * a transaction-scoped advisory lock (so it holds behind PgBouncer in
 * transaction mode, where a session lock would stay on a server connection
 * other clients then get), then reads the history afresh and decides what
 * to do under the lock:
 *
 *   BEGIN; lock; CREATE TABLE IF NOT EXISTS; COMMIT      (first, once)
 *   BEGIN; lock; read the history;
 *     a migration:     [SET LOCAL lock_timeout]; its statements; its row
 *     no-transaction:  (this transaction only holds the lock) its row,
 *                      dirty; its statements; its row, clean: each
 *                      autocommitted on another connection
 *   COMMIT
 *
 * and repeats until nothing is left. "lock" is pg_try_advisory_xact_lock:
 * when another instance holds it, the transaction ends and a new one tries
 * again a little later (see submit_locked() for why it never waits in a
 * statement); then it reads a history that already has the migration, and
 * moves on. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "uvorm/migrate.h"

#include "base/alloc.h"
#include "migrate/migrate_int.h"
#include "pool/submit.h"

/* A row of the history table. */
typedef struct {
  uint64_t version;
  char *version_text;
  char *name;
  char *checksum;
  char *applied_at;
  int64_t duration_ms;
  bool dirty;
} row_t;

typedef struct run_s run_t;
typedef void (*next_fn)(run_t *run, orm_result_t *res);

struct run_s {
  orm_pool_t *pool;
  const orm_migrations_t *set;
  orm_migrate_options_t opt;
  orm_migrate_cb cb;
  void *data;
  char *schema; /* copies of the options' strings */
  char *table;
  char *to;
  uint64_t to_version;
  char *qualified; /* "schema"."table" or "table", quoted */

  row_t *rows; /* the history, by version */
  size_t nrows;
  bool table_exists;
  bool table_ready; /* created (if it was not) by this run */

  orm_tx_t *tx; /* the step's transaction: holds the lock */
  uint64_t lock_wait_ms; /* the latest wait for a busy lock */
  next_fn next; /* what the answer being waited for goes to */
  const orm__migration_t *cur;
  bool cur_down;
  bool cur_no_tx;
  const orm__sql_stmt_t *stmts;
  size_t nstmts;
  size_t at; /* the statement running */
  uint64_t started;
  unsigned downs_left;
  char *sql; /* the running statement's text, NUL-terminated */
  size_t sql_cap;

  orm_migrate_step_t *steps;
  size_t nsteps;
  orm_migration_status_t *status;
  size_t nstatus;

  int code;
  char *message;
  char sqlstate[6];
  char *detail;
  char *hint;
  int position; /* the failed statement's error position */
  const char *file;
  unsigned line;
  const orm_migration_t *failed;
};

static void finish(run_t *run);
static void step_begin(run_t *run);

/* ---- bookkeeping ---------------------------------------------------------- */

static void rows_free(run_t *run) {
  for (size_t i = 0; i < run->nrows; i++) {
    orm__free(run->rows[i].version_text);
    orm__free(run->rows[i].name);
    orm__free(run->rows[i].checksum);
    orm__free(run->rows[i].applied_at);
  }
  orm__free(run->rows);
  run->rows = NULL;
  run->nrows = 0;
}

static void run_free(run_t *run) {
  rows_free(run);
  orm__free(run->schema);
  orm__free(run->table);
  orm__free(run->to);
  orm__free(run->qualified);
  orm__free(run->sql);
  orm__free(run->steps);
  orm__free(run->status);
  orm__free(run->message);
  orm__free(run->detail);
  orm__free(run->hint);
  orm__free(run);
}

static char *vformat(const char *fmt, va_list ap) {
  va_list again;
  va_copy(again, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  char *s = n >= 0 ? orm__malloc((size_t)n + 1) : NULL;
  if (s != NULL)
    vsnprintf(s, (size_t)n + 1, fmt, again);
  va_end(again);
  return s;
}

/* Records the run's error (the first one wins). */
static void set_error(run_t *run, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_error(run_t *run, int code, const char *fmt, ...) {
  if (run->code != 0)
    return;
  run->code = code;
  va_list ap;
  va_start(ap, fmt);
  run->message = vformat(fmt, ap);
  va_end(ap);
}

static const orm__migration_t *find_migration(const run_t *run, uint64_t v) {
  size_t lo = 0, hi = run->set->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t mv = run->set->items[mid].version;
    if (mv == v)
      return &run->set->items[mid];
    if (mv < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static const row_t *find_row(const run_t *run, uint64_t v) {
  for (size_t i = 0; i < run->nrows; i++)
    if (run->rows[i].version == v)
      return &run->rows[i];
  return NULL;
}

static orm_migration_state_t state_of(const orm__migration_t *m,
                                      const row_t *row) {
  if (row == NULL)
    return ORM_MIGRATION_PENDING;
  if (m == NULL)
    return ORM_MIGRATION_MISSING;
  if (row->dirty)
    return ORM_MIGRATION_DIRTY;
  return strcmp(row->checksum, m->pub.checksum) == 0 ? ORM_MIGRATION_APPLIED
                                                     : ORM_MIGRATION_CHANGED;
}

/* The status list: the set's migrations and the history's rows, merged by
 * version. */
static int build_status(run_t *run) {
  orm__free(run->status);
  run->status = NULL;
  run->nstatus = 0;
  size_t cap = run->set->n + run->nrows;
  if (cap == 0)
    return 0;
  orm_migration_status_t *st = orm__calloc(cap, sizeof *st);
  if (st == NULL)
    return ORM_ENOMEM;
  size_t n = 0, i = 0, j = 0;
  while (i < run->set->n || j < run->nrows) {
    const orm__migration_t *m = i < run->set->n ? &run->set->items[i] : NULL;
    const row_t *r = j < run->nrows ? &run->rows[j] : NULL;
    if (m != NULL && r != NULL && m->version != r->version) {
      if (m->version < r->version)
        r = NULL;
      else
        m = NULL;
    }
    orm_migration_status_t *s = &st[n++];
    s->state = state_of(m, r);
    s->migration = m != NULL ? &m->pub : NULL;
    s->version = m != NULL ? m->pub.version : r->version_text;
    s->name = m != NULL ? m->pub.name : r->name;
    s->applied_at = r != NULL ? r->applied_at : NULL;
    s->duration_ms = r != NULL ? r->duration_ms : -1;
    i += m != NULL;
    j += r != NULL;
  }
  run->status = st;
  run->nstatus = n;
  return 0;
}

static int add_step(run_t *run, const orm__migration_t *m, bool down,
                    bool dry, uint64_t duration_us) {
  orm_migrate_step_t *g =
      orm__reallocarray(run->steps, run->nsteps + 1, sizeof *g);
  if (g == NULL)
    return ORM_ENOMEM;
  run->steps = g;
  orm_migrate_step_t *s = &g[run->nsteps++];
  *s = (orm_migrate_step_t){.migration = &m->pub,
                            .down = down,
                            .dry_run = dry,
                            .duration_us = duration_us};
  if (run->opt.on_step != NULL)
    run->opt.on_step(s, run->data);
  return 0;
}

/* ---- talking to the server ------------------------------------------------ */

static char *dup_or_null(const char *s) {
  return s != NULL ? orm__strdup(s) : NULL;
}

/* Keeps what the server (or the pool) said about a failed statement. */
static void take_future_error(run_t *run, orm_future_t *f, const char *what) {
  const orm_error_t *e = orm_future_error(f);
  int code = orm_future_status(f);
  if (run->code != 0)
    return;
  set_error(run, code, "%s%s", what != NULL ? what : "",
            e != NULL && e->message != NULL ? e->message : orm_strerror(code));
  if (e == NULL)
    return;
  run->position = e->position;
  if (e->sqlstate != NULL)
    snprintf(run->sqlstate, sizeof run->sqlstate, "%s", e->sqlstate);
  run->detail = dup_or_null(e->detail);
  run->hint = dup_or_null(e->hint);
}

static void on_answer(orm_future_t *f, void *data) {
  run_t *run = data;
  next_fn next = run->next;
  run->next = NULL;
  if (orm_future_status(f) != 0) {
    take_future_error(run, f, NULL);
    next(run, NULL);
    return;
  }
  next(run, orm_future_value(f));
}

/* Sends `sql` (run once, unnamed) on the step's transaction, or on the
 * pool when `autocommit`; the answer goes to `next`. 0 or the code the
 * submission failed with (then `next` is not called). */
static int submit(run_t *run, bool autocommit, const char *sql,
                  const orm_param_t *params, size_t n, next_fn next) {
  orm_exec_t *exec = autocommit ? orm_pool_exec(run->pool) : orm_tx_exec(run->tx);
  orm__params_in_t in = {.values = params, .n = n};
  run->next = next;
  int rc = orm__exec_submit(exec, sql, &orm__hint_once, &in, NULL, NULL,
                            on_answer, run, NULL);
  if (rc != 0)
    run->next = NULL;
  return rc;
}

/* submit(), with a failure going to `next` as a NULL result with the run's
 * error set. */
static void run_send(run_t *run, bool autocommit, const char *sql,
                 const orm_param_t *params, size_t n, next_fn next) {
  int rc = submit(run, autocommit, sql, params, n, next);
  if (rc != 0) {
    set_error(run, rc, "%s", orm_strerror(rc));
    next(run, NULL);
  }
}

/* Ends the step's transaction, then goes to `then` (with the run's error
 * set if COMMIT failed). */
static void on_tx_end(orm_future_t *f, void *data) {
  run_t *run = data;
  next_fn then = run->next;
  run->next = NULL;
  if (orm_future_status(f) != 0)
    take_future_error(run, f, "COMMIT: ");
  then(run, NULL);
}

static void tx_end(run_t *run, bool commit, next_fn then) {
  orm_tx_t *tx = run->tx;
  run->tx = NULL;
  if (tx == NULL) {
    then(run, NULL);
    return;
  }
  run->next = then;
  int rc = commit ? orm_tx_commit_async(tx, on_tx_end, run, NULL)
                  : orm_tx_rollback_async(tx, on_tx_end, run, NULL);
  if (rc != 0) {
    run->next = NULL;
    if (commit)
      set_error(run, rc, "COMMIT: %s", orm_strerror(rc));
    then(run, NULL);
  }
}

static void read_plain(run_t *run);

/* The run failed (its error is set): the report still gives the status
 * after it, read afresh (if that fails too, the first error stands). */
static void status_then_finish(run_t *run, orm_result_t *res) {
  (void)res;
  read_plain(run);
}

/* The run failed (its error is set): roll the step back and report. */
static void abort_run(run_t *run) { tx_end(run, false, status_then_finish); }

/* ---- reading the history -------------------------------------------------- */

static char *result_text(orm_result_t *res, int row, int col) {
  const char *s = NULL;
  if (orm_result_text(res, row, col, &s, NULL) != 0)
    return NULL;
  return orm__strdup(s);
}

/* Takes the rows of the history query (see read_history). */
static int take_rows(run_t *run, orm_result_t *res) {
  rows_free(run);
  int n = orm_result_nrows(res);
  if (n <= 0)
    return 0;
  run->rows = orm__calloc((size_t)n, sizeof *run->rows);
  if (run->rows == NULL)
    return ORM_ENOMEM;
  for (int i = 0; i < n; i++) {
    row_t *r = &run->rows[run->nrows++];
    int64_t v = 0;
    if (orm_result_int(res, i, 0, &v) != 0 ||
        orm_result_int(res, i, 5, &r->duration_ms) != 0 ||
        orm_result_bool(res, i, 6, &r->dirty) != 0)
      return ORM_EPROTO;
    r->version = (uint64_t)v;
    r->version_text = result_text(res, i, 1);
    r->name = result_text(res, i, 2);
    r->checksum = result_text(res, i, 3);
    r->applied_at = result_text(res, i, 4);
    if (r->version_text == NULL || r->name == NULL || r->checksum == NULL ||
        r->applied_at == NULL)
      return ORM_ENOMEM;
  }
  return 0;
}

static void read_history(run_t *run, bool autocommit, next_fn next) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT version, version::text AS version_text, name, checksum, "
           "to_char(applied_at AT TIME ZONE 'UTC', "
           "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), duration_ms, dirty "
           "FROM %s ORDER BY version",
           run->qualified);
  run_send(run, autocommit, sql, NULL, 0, next);
}

/* ---- status and verify: no lock, nothing written ------------------------- */

static void report_verify(run_t *run) {
  size_t bad = 0;
  for (size_t i = 0; i < run->nstatus; i++) {
    const orm_migration_status_t *s = &run->status[i];
    if (s->state != ORM_MIGRATION_CHANGED && s->state != ORM_MIGRATION_MISSING &&
        s->state != ORM_MIGRATION_DIRTY)
      continue;
    if (bad++ == 0) {
      const orm__migration_t *m = find_migration(run, strtoull(s->version, NULL, 10));
      run->failed = s->migration;
      run->file = s->migration != NULL ? s->migration->up_file : NULL;
      set_error(run, ORM_EMIGRATION,
                s->state == ORM_MIGRATION_CHANGED
                    ? "%s changed after it was applied (checksum %.12s..., "
                      "applied %.12s...)"
                : s->state == ORM_MIGRATION_MISSING
                    ? "version %s%s was applied but no file has it"
                    : "%s is dirty: it ran outside a transaction and did not "
                      "finish",
                s->state == ORM_MIGRATION_MISSING ? s->version
                                                  : s->migration->up_file,
                s->state == ORM_MIGRATION_CHANGED ? m->pub.checksum : "",
                s->state == ORM_MIGRATION_CHANGED
                    ? find_row(run, m->version)->checksum
                    : "");
    }
  }
}

static void read_done(run_t *run, orm_result_t *res);

/* From now on the history table is named with the schema the server
 * resolved (current_schema() when none was given), so that a migration
 * changing the search_path cannot send its history row elsewhere. 0 or
 * ORM_ENOMEM. */
static int adopt_schema(run_t *run, const char *schema) {
  if (run->schema == NULL) {
    run->schema = orm__strdup(schema);
    if (run->schema == NULL)
      return ORM_ENOMEM;
  }
  /* Quoted: a name from the server may hold any character. */
  size_t n = 2 * (strlen(run->schema) + strlen(run->table)) + 6;
  char *q = orm__malloc(n), *w = q;
  if (q == NULL)
    return ORM_ENOMEM;
  for (int part = 0; part < 2; part++) {
    *w++ = '"';
    for (const char *c = part == 0 ? run->schema : run->table; *c; c++) {
      if (*c == '"')
        *w++ = '"';
      *w++ = *c;
    }
    *w++ = '"';
    if (part == 0)
      *w++ = '.';
  }
  *w = '\0';
  orm__free(run->qualified);
  run->qualified = q;
  return 0;
}

/* The schema to use (column 0: NULL when the search_path names no schema
 * that exists) and whether the table exists (column 1); see submit_plain. */
static void plain_exists(run_t *run, orm_result_t *res) {
  if (res == NULL) {
    finish(run);
    return;
  }
  if (orm_result_is_null(res, 0, 0)) {
    read_done(run, NULL); /* no schema, no history: all pending */
    return;
  }
  const char *schema = NULL;
  if (orm_result_text(res, 0, 0, &schema, NULL) != 0 ||
      adopt_schema(run, schema) != 0) {
    set_error(run, ORM_ENOMEM, "out of memory");
    finish(run);
    return;
  }
  run->table_exists = !orm_result_is_null(res, 0, 1);
  if (!run->table_exists) {
    read_done(run, NULL);
    return;
  }
  read_history(run, true, read_done);
}

/* Status, verify and dry runs read without the lock (as does the status
 * after a run). */
static int submit_plain(run_t *run) {
  orm_param_t p[2] = {run->schema != NULL ? ORM_TEXT(run->schema) : ORM_NULL,
                      ORM_TEXT(run->table)};
  return submit(run, true,
                "SELECT s, to_regclass(quote_ident(s) || '.' || "
                "quote_ident($2::text))::text "
                "FROM (SELECT coalesce($1::text, current_schema()) AS s) x",
                p, 2, plain_exists);
}

static void read_plain(run_t *run) {
  run->table_exists = false;
  int rc = submit_plain(run);
  if (rc != 0) {
    set_error(run, rc, "%s", orm_strerror(rc));
    finish(run);
  }
}

static void plan_dry(run_t *run);

static void read_done(run_t *run, orm_result_t *res) {
  if (res == NULL && run->table_exists) { /* the read failed */
    finish(run);
    return;
  }
  int rc = 0;
  if (res != NULL)
    rc = take_rows(run, res);
  else
    rows_free(run);
  if (rc != 0) {
    set_error(run, rc, "reading %s: %s", run->qualified, orm_strerror(rc));
    finish(run);
    return;
  }
  if (run->code == 0 && (run->opt.flags & ORM_MIGRATE_DRY_RUN) &&
      (run->opt.action == ORM_MIGRATE_UP || run->opt.action == ORM_MIGRATE_DOWN)) {
    plan_dry(run);
    return;
  }
  if (build_status(run) != 0)
    set_error(run, ORM_ENOMEM, "out of memory");
  else if (run->code == 0 && run->opt.action == ORM_MIGRATE_VERIFY)
    report_verify(run);
  finish(run);
}

/* ---- deciding ---------------------------------------------------------------- */

/* What UP refuses to go past, else the next migration to apply (NULL:
 * none). */
static const orm__migration_t *plan_up(run_t *run, size_t skip) {
  for (size_t i = 0; i < run->nrows; i++) {
    const row_t *r = &run->rows[i];
    const orm__migration_t *m = find_migration(run, r->version);
    if (r->dirty) {
      run->failed = m != NULL ? &m->pub : NULL;
      run->file = m != NULL ? m->pub.up_file : NULL;
      set_error(run, ORM_EMIGRATION,
                "%s (version %s) is dirty: it ran outside a transaction and "
                "did not finish. Check the database by hand, then run "
                "`uvorm migrate resolve %s` (or with --retry to run it again)",
                m != NULL ? m->pub.up_file : r->name, r->version_text,
                r->version_text);
      return NULL;
    }
    if (m != NULL && strcmp(m->pub.checksum, r->checksum) != 0) {
      run->failed = &m->pub;
      run->file = m->pub.up_file;
      set_error(run, ORM_EMIGRATION,
                "%s was changed after it was applied (on %s): a migration "
                "applied must never change; restore the file and put the "
                "change in a new migration",
                m->pub.up_file, r->applied_at);
      return NULL;
    }
  }
  uint64_t newest = run->nrows > 0 ? run->rows[run->nrows - 1].version : 0;
  for (size_t i = 0; i < run->set->n; i++) {
    const orm__migration_t *m = &run->set->items[i];
    if (run->to != NULL && m->version > run->to_version)
      break;
    if (find_row(run, m->version) != NULL)
      continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    if (m->version < newest && !(run->opt.flags & ORM_MIGRATE_ALLOW_OUT_OF_ORDER)) {
      run->failed = &m->pub;
      run->file = m->pub.up_file;
      set_error(run, ORM_EMIGRATION,
                "%s was never applied and is older than the newest applied "
                "version %s (a merged branch?): give it a newer version, or "
                "apply it with --allow-out-of-order",
                m->pub.up_file, run->rows[run->nrows - 1].version_text);
      return NULL;
    }
    return m;
  }
  return NULL;
}

/* The applied migration DOWN reverts next (skipping `skip` of them). */
static const row_t *plan_down(run_t *run, size_t skip) {
  for (size_t i = 0; i < run->nrows; i++)
    if (run->rows[i].dirty) {
      set_error(run, ORM_EMIGRATION,
                "version %s is dirty: resolve it before reverting anything "
                "(`uvorm migrate resolve %s`)",
                run->rows[i].version_text, run->rows[i].version_text);
      return NULL;
    }
  if (skip >= run->nrows)
    return NULL;
  const row_t *r = &run->rows[run->nrows - 1 - skip];
  const orm__migration_t *m = find_migration(run, r->version);
  if (m == NULL) {
    set_error(run, ORM_EMIGRATION,
              "version %s (%s) is applied but no file has it: it cannot be "
              "reverted",
              r->version_text, r->name);
    return NULL;
  }
  if (m->pub.down_sql == NULL) {
    run->failed = &m->pub;
    run->file = m->pub.up_file;
    set_error(run, ORM_EMIGRATION,
              "%s has no .down.sql: it cannot be reverted", m->pub.up_file);
    return NULL;
  }
  return r;
}

static void plan_dry(run_t *run) {
  unsigned n = run->opt.steps > 0 ? run->opt.steps : 1;
  for (size_t k = 0;; k++) {
    const orm__migration_t *m = NULL;
    if (run->opt.action == ORM_MIGRATE_UP) {
      m = plan_up(run, k);
    } else if (run->opt.action == ORM_MIGRATE_DOWN && k < n) {
      const row_t *r = plan_down(run, k);
      m = r != NULL ? find_migration(run, r->version) : NULL;
    }
    if (m == NULL || run->code != 0)
      break;
    if (add_step(run, m, run->opt.action == ORM_MIGRATE_DOWN, true, 0) != 0) {
      set_error(run, ORM_ENOMEM, "out of memory");
      break;
    }
  }
  if (build_status(run) != 0)
    set_error(run, ORM_ENOMEM, "out of memory");
  finish(run);
}

/* ---- one step under the lock ------------------------------------------------- */

static void run_statement(run_t *run);
static void locked_history(run_t *run, orm_result_t *res);

/* The table is created in a transaction of its own: a no-transaction
 * migration's rows are written from another connection, which must see
 * it. */
static void created_committed(run_t *run, orm_result_t *res) {
  if (run->code != 0) {
    status_then_finish(run, res);
    return;
  }
  run->table_ready = true;
  step_begin(run);
}

static void locked_created(run_t *run, orm_result_t *res) {
  if (res == NULL)
    abort_run(run);
  else
    tx_end(run, true, created_committed);
}

static void slept(run_t *run, orm_result_t *res) {
  if (res == NULL)
    finish(run); /* the pool closed, the server went away, ... */
  else
    step_begin(run);
}

/* The lock was taken: try again in a new transaction, after a while (5 ms
 * doubling to 250 ms, with jitter). The wait is a pg_sleep on the pool,
 * not a timer of ours: the pool fails it if it closes meanwhile, and the
 * run ends with it. (Its implicit transaction ends with it too, so a
 * CREATE INDEX CONCURRENTLY of the holder waits for it 250 ms at most.) */
static void lock_busy(run_t *run, orm_result_t *res) {
  (void)res;
  if (run->code != 0) {
    finish(run);
    return;
  }
  uint64_t ms = run->lock_wait_ms == 0 ? 5 : run->lock_wait_ms * 2;
  run->lock_wait_ms = ms > 250 ? 250 : ms;
  uint64_t delay = run->lock_wait_ms / 2 + uv_hrtime() % (run->lock_wait_ms / 2 + 1);
  char secs[32];
  snprintf(secs, sizeof secs, "%.3f", (double)delay / 1000.0);
  orm_param_t p = ORM_TEXT(secs);
  run_send(run, true, "SELECT pg_sleep($1::float8)", &p, 1, slept);
}

static void locked(run_t *run, orm_result_t *res) {
  bool got = false;
  if (res == NULL) {
    abort_run(run);
    return;
  }
  if (orm_result_is_null(res, 0, 1)) {
    set_error(run, ORM_EINVAL,
              "the search_path names no schema that exists: create one, or "
              "name the history table's schema");
    abort_run(run);
    return;
  }
  const char *schema = NULL;
  if (orm_result_bool(res, 0, 0, &got) != 0 ||
      orm_result_text(res, 0, 1, &schema, NULL) != 0) {
    set_error(run, ORM_EPROTO, "pg_try_advisory_xact_lock: no answer");
    abort_run(run);
    return;
  }
  if (adopt_schema(run, schema) != 0) {
    set_error(run, ORM_ENOMEM, "out of memory");
    abort_run(run);
    return;
  }
  if (!got) {
    tx_end(run, false, lock_busy);
    return;
  }
  run->lock_wait_ms = 0;
  if (run->table_ready) {
    read_history(run, false, locked_history);
    return;
  }
  char sql[768];
  snprintf(sql, sizeof sql,
           "CREATE TABLE IF NOT EXISTS %s (\n"
           "  version     bigint PRIMARY KEY,\n"
           "  name        text NOT NULL,\n"
           "  checksum    text NOT NULL,\n"
           "  applied_at  timestamptz NOT NULL DEFAULT now(),\n"
           "  duration_ms bigint NOT NULL DEFAULT 0,\n"
           "  dirty       boolean NOT NULL DEFAULT false\n"
           ")",
           run->qualified);
  run_send(run, false, sql, NULL, 0, locked_created);
}

/* BEGIN and the lock. 0 or the code of a failed submission (then nothing
 * is left behind). */
static int submit_locked(run_t *run) {
  /* READ COMMITTED whatever the server's default: each statement sees
   * what committed before it (the history read after the lock is taken),
   * and no snapshot outlives its statement. */
  int rc = orm_tx_begin_with(run->pool, ORM_TX_READ_COMMITTED, &run->tx);
  if (rc != 0) {
    run->tx = NULL;
    return rc;
  }
  /* The key: the table's identity, resolved on the server when the schema
   * is the search_path's. Tried, not waited for: a statement waiting on
   * the lock would hold a snapshot, and a CREATE INDEX CONCURRENTLY of
   * the instance holding it waits for every transaction with an older
   * snapshot to end, which this one would not do before the lock is
   * free: a deadlock the server cannot see. A busy lock ends this
   * transaction, and the next try is a new one. */
  orm_param_t p[2] = {run->schema != NULL ? ORM_TEXT(run->schema) : ORM_NULL,
                      ORM_TEXT(run->table)};
  rc = submit(run, false,
              "SELECT pg_try_advisory_xact_lock(hashtextextended("
              "'uvorm.migrate:' || s || '.' || $2::text, 0)), s "
              "FROM (SELECT coalesce($1::text, current_schema()) AS s) x",
              p, 2, locked);
  if (rc != 0) {
    orm_tx_rollback_async(run->tx, NULL, NULL, NULL);
    run->tx = NULL;
  }
  return rc;
}

static void step_begin(run_t *run) {
  int rc = submit_locked(run);
  if (rc != 0) {
    set_error(run, rc, "BEGIN: %s", orm_strerror(rc));
    finish(run);
  }
}

/* The status after a run that changed something. */
static void committed_then_status(run_t *run, orm_result_t *res) {
  (void)res;
  read_plain(run); /* after a failed COMMIT too */
}

static void step_committed(run_t *run, orm_result_t *res) {
  if (run->code != 0) {
    committed_then_status(run, res);
    return;
  }
  uint64_t us = (uv_hrtime() - run->started) / 1000;
  if (add_step(run, run->cur, run->cur_down, false, us) != 0) {
    set_error(run, ORM_ENOMEM, "out of memory");
    finish(run);
    return;
  }
  run->cur = NULL;
  if (run->opt.action == ORM_MIGRATE_DOWN && --run->downs_left == 0)
    read_plain(run);
  else
    step_begin(run);
}

static void step_written(run_t *run, orm_result_t *res) {
  if (res == NULL)
    abort_run(run);
  else
    tx_end(run, true, step_committed);
}

/* A migration's statements ran: its history row, in its transaction (or,
 * outside one, autocommitted), then COMMIT. */
static void statements_done(run_t *run) {
  const orm__migration_t *m = run->cur;
  char version[24], ms[24], sql[512];
  snprintf(version, sizeof version, "%" PRIu64, m->version);
  snprintf(ms, sizeof ms, "%" PRIu64, (uv_hrtime() - run->started) / 1000000);
  if (run->cur_down) {
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE version = $1::bigint",
             run->qualified);
    orm_param_t p[1] = {ORM_TEXT(version)};
    run_send(run, run->cur_no_tx, sql, p, 1, step_written);
  } else if (run->cur_no_tx) {
    snprintf(sql, sizeof sql,
             "UPDATE %s SET dirty = false, applied_at = now(), "
             "duration_ms = $2::bigint WHERE version = $1::bigint",
             run->qualified);
    orm_param_t p[2] = {ORM_TEXT(version), ORM_TEXT(ms)};
    run_send(run, true, sql, p, 2, step_written);
  } else {
    snprintf(sql, sizeof sql,
             "INSERT INTO %s (version, name, checksum, duration_ms) "
             "VALUES ($1::bigint, $2, $3, $4::bigint)",
             run->qualified);
    orm_param_t p[4] = {ORM_TEXT(version), ORM_TEXT(m->pub.name),
                        ORM_TEXT(m->pub.checksum), ORM_TEXT(ms)};
    run_send(run, false, sql, p, 4, step_written);
  }
}

static void statement_done(run_t *run, orm_result_t *res) {
  if (res != NULL) {
    run->at++;
    run_statement(run);
    return;
  }
  const orm__migration_t *m = run->cur;
  const char *text = run->cur_down ? m->pub.down_sql : m->pub.up_sql;
  run->failed = &m->pub;
  run->file = run->cur_down ? m->pub.down_file : m->pub.up_file;
  run->line = orm__sql_error_line(text, &run->stmts[run->at], run->position);
  abort_run(run);
}

static void run_statement(run_t *run) {
  if (run->at == run->nstmts) {
    statements_done(run);
    return;
  }
  const orm__sql_stmt_t *st = &run->stmts[run->at];
  const char *text = run->cur_down ? run->cur->pub.down_sql : run->cur->pub.up_sql;
  if (st->len + 1 > run->sql_cap) {
    char *g = orm__realloc(run->sql, st->len + 1);
    if (g == NULL) {
      set_error(run, ORM_ENOMEM, "out of memory");
      abort_run(run);
      return;
    }
    run->sql = g;
    run->sql_cap = st->len + 1;
  }
  memcpy(run->sql, text + st->off, st->len);
  run->sql[st->len] = '\0';
  run_send(run, run->cur_no_tx, run->sql, NULL, 0, statement_done);
}

static void then_statements(run_t *run, orm_result_t *res) {
  if (res == NULL)
    abort_run(run);
  else
    run_statement(run);
}

static void no_tx_guarded(run_t *run, orm_result_t *res);
static void no_tx_guard_kept(run_t *run, orm_result_t *res);

static void start_migration(run_t *run, const orm__migration_t *m, bool down) {
  run->cur = m;
  run->cur_down = down;
  run->cur_no_tx = down ? m->pub.down_no_transaction : m->pub.up_no_transaction;
  run->stmts = down ? m->down_stmts : m->up_stmts;
  run->nstmts = down ? m->pub.down_statements : m->pub.up_statements;
  run->at = 0;
  run->started = uv_hrtime();
  char sql[512];
  if (!run->cur_no_tx) {
    if (run->opt.lock_timeout_ms == 0) {
      run_statement(run);
      return;
    }
    snprintf(sql, sizeof sql, "SET LOCAL lock_timeout = '%" PRIu64 "ms'",
             run->opt.lock_timeout_ms);
    run_send(run, false, sql, NULL, 0, then_statements);
    return;
  }
  /* Outside a transaction: this step's transaction keeps the lock while
   * another connection runs the statements, under a dirty row. */
  if (orm__pool_max_conns(run->pool) < 2) {
    set_error(run, ORM_EINVAL,
              "%s runs outside a transaction: that needs a pool of at least "
              "2 connections (one holds the lock)",
              down ? m->pub.down_file : m->pub.up_file);
    abort_run(run);
    return;
  }
  /* The history read left its portal open, holding a snapshot until the
   * next statement of this transaction: a CREATE INDEX CONCURRENTLY would
   * wait for it. A statement that needs none replaces it (and names the
   * migration the lock guards, for whoever looks at pg_settings). */
  run_send(run, false, "SET LOCAL idle_in_transaction_session_timeout = 0",
           NULL, 0, no_tx_guard_kept);
}

/* The guard idles while the statements run elsewhere: a server's
 * idle_in_transaction_session_timeout must not end it (and the lock). */
static void no_tx_guard_kept(run_t *run, orm_result_t *res) {
  if (res == NULL) {
    abort_run(run);
    return;
  }
  char sql[128];
  snprintf(sql, sizeof sql, "SET LOCAL uvorm.migration = '%" PRIu64 "%s'",
           run->cur->version, run->cur_down ? " down" : "");
  run_send(run, false, sql, NULL, 0, no_tx_guarded);
}

/* No snapshot held: the dirty row, autocommitted, then the statements. */
static void no_tx_guarded(run_t *run, orm_result_t *res) {
  if (res == NULL) {
    abort_run(run);
    return;
  }
  const orm__migration_t *m = run->cur;
  bool down = run->cur_down;
  char version[24], sql[512];
  snprintf(version, sizeof version, "%" PRIu64, m->version);
  if (down) {
    snprintf(sql, sizeof sql,
             "UPDATE %s SET dirty = true WHERE version = $1::bigint",
             run->qualified);
    orm_param_t p[1] = {ORM_TEXT(version)};
    run_send(run, true, sql, p, 1, then_statements);
  } else {
    snprintf(sql, sizeof sql,
             "INSERT INTO %s (version, name, checksum, dirty) "
             "VALUES ($1::bigint, $2, $3, true)",
             run->qualified);
    orm_param_t p[3] = {ORM_TEXT(version), ORM_TEXT(m->pub.name),
                        ORM_TEXT(m->pub.checksum)};
    run_send(run, true, sql, p, 3, then_statements);
  }
}

static void step_resolved(run_t *run, orm_result_t *res) {
  if (res == NULL)
    abort_run(run);
  else
    tx_end(run, true, committed_then_status);
}

static void resolve(run_t *run) {
  const row_t *r = find_row(run, run->to_version);
  if (r == NULL || !r->dirty) {
    set_error(run, ORM_EINVAL, "version %s is %s: only a dirty one is resolved",
              run->to, r == NULL ? "not in the history" : "not dirty");
    abort_run(run);
    return;
  }
  char sql[512];
  snprintf(sql, sizeof sql,
           (run->opt.flags & ORM_MIGRATE_RETRY)
               ? "DELETE FROM %s WHERE version = $1::bigint"
               : "UPDATE %s SET dirty = false WHERE version = $1::bigint",
           run->qualified);
  orm_param_t p[1] = {ORM_TEXT(run->to)};
  run_send(run, false, sql, p, 1, step_resolved);
}

static void locked_history(run_t *run, orm_result_t *res) {
  if (res == NULL) {
    abort_run(run);
    return;
  }
  int rc = take_rows(run, res);
  if (rc != 0) {
    set_error(run, rc, "reading %s: %s", run->qualified, orm_strerror(rc));
    abort_run(run);
    return;
  }
  switch (run->opt.action) {
  case ORM_MIGRATE_UP: {
    const orm__migration_t *m = plan_up(run, 0);
    if (run->code != 0)
      abort_run(run);
    else if (m == NULL)
      tx_end(run, true, committed_then_status);
    else
      start_migration(run, m, false);
    return;
  }
  case ORM_MIGRATE_DOWN: {
    const row_t *r = plan_down(run, 0);
    if (run->code != 0)
      abort_run(run);
    else if (r == NULL)
      tx_end(run, true, committed_then_status);
    else
      start_migration(run, find_migration(run, r->version), true);
    return;
  }
  default:
    resolve(run);
    return;
  }
}

/* ---- the report ---------------------------------------------------------------- */

static void finish(run_t *run) {
  if (run->code != 0 && run->message == NULL)
    run->code = ORM_ENOMEM; /* the message itself could not be made */
  orm_migrate_report_t report = {
      .code = run->code,
      .message = run->code != 0 ? run->message : NULL,
      .sqlstate = run->sqlstate,
      .detail = run->detail,
      .hint = run->hint,
      .file = run->file,
      .line = run->line,
      .migration = run->failed,
      .steps = run->steps,
      .nsteps = run->nsteps,
      .status = run->status,
      .nstatus = run->nstatus};
  if (report.message == NULL && report.code != 0)
    report.message = orm_strerror(report.code);
  run->cb(&report, run->data);
  run_free(run);
}

const char *orm_migration_state_name(orm_migration_state_t state) {
  switch (state) {
  case ORM_MIGRATION_PENDING:
    return "pending";
  case ORM_MIGRATION_APPLIED:
    return "applied";
  case ORM_MIGRATION_CHANGED:
    return "changed";
  case ORM_MIGRATION_DIRTY:
    return "dirty";
  case ORM_MIGRATION_MISSING:
    return "missing";
  }
  return "unknown";
}

/* Identifiers taken as options: plain ones only, quoted when used. */
static bool identifier_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
    return false;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
      return false;
  return true;
}

static int check_options(const orm_migrations_t *set,
                         const orm_migrate_options_t *o, uint64_t *to) {
  if (o->action < ORM_MIGRATE_UP || o->action > ORM_MIGRATE_RESOLVE ||
      (o->flags & ~(ORM_MIGRATE_DRY_RUN | ORM_MIGRATE_ALLOW_OUT_OF_ORDER |
                    ORM_MIGRATE_RETRY)) != 0 ||
      ((o->flags & ORM_MIGRATE_RETRY) && o->action != ORM_MIGRATE_RESOLVE) ||
      ((o->flags & ORM_MIGRATE_DRY_RUN) && o->action == ORM_MIGRATE_RESOLVE) ||
      (o->schema != NULL && !identifier_ok(o->schema)) ||
      (o->table != NULL && !identifier_ok(o->table)) ||
      o->lock_timeout_ms > INT32_MAX)
    return ORM_EINVAL;
  if (o->action == ORM_MIGRATE_RESOLVE && o->to == NULL)
    return ORM_EINVAL;
  if (o->to != NULL) {
    if (orm__migration_version(o->to, strlen(o->to), to) != 0)
      return ORM_EINVAL;
    if (o->action == ORM_MIGRATE_UP) {
      size_t i = 0;
      while (i < set->n && set->items[i].version != *to)
        i++;
      if (i == set->n)
        return ORM_EINVAL; /* UP to a version no file has */
    }
  }
  return 0;
}

int orm_migrate_async(orm_pool_t *pool, const orm_migrations_t *set,
                      const orm_migrate_options_t *options, orm_migrate_cb cb,
                      void *data) {
  if (pool == NULL || set == NULL || options == NULL || cb == NULL)
    return ORM_EINVAL;
  uint64_t to = 0;
  int rc = check_options(set, options, &to);
  if (rc != 0)
    return rc;
  run_t *run = orm__calloc(1, sizeof *run);
  if (run == NULL)
    return ORM_ENOMEM;
  run->pool = pool;
  run->set = set;
  run->opt = *options;
  run->cb = cb;
  run->data = data;
  run->to_version = to;
  run->downs_left = options->steps > 0 ? options->steps : 1;
  const char *table = options->table != NULL ? options->table : "uvorm_migrations";
  run->table = orm__strdup(table);
  run->schema = dup_or_null(options->schema);
  run->to = dup_or_null(options->to);
  size_t qlen = strlen(table) + (options->schema ? strlen(options->schema) : 0) + 8;
  run->qualified = orm__malloc(qlen);
  if (run->table == NULL || run->qualified == NULL ||
      (options->schema != NULL && run->schema == NULL) ||
      (options->to != NULL && run->to == NULL)) {
    run_free(run);
    return ORM_ENOMEM;
  }
  if (options->schema != NULL)
    snprintf(run->qualified, qlen, "\"%s\".\"%s\"", options->schema, table);
  else
    snprintf(run->qualified, qlen, "\"%s\"", table);
  /* The first step's errors are the caller's, returned: no callback. */
  if (options->action == ORM_MIGRATE_STATUS ||
      options->action == ORM_MIGRATE_VERIFY ||
      (options->flags & ORM_MIGRATE_DRY_RUN))
    rc = submit_plain(run);
  else
    rc = submit_locked(run);
  if (rc != 0) {
    run_free(run);
    return rc;
  }
  return 0;
}
