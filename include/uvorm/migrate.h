/* SPDX-License-Identifier: MIT */
/* uvorm — schema migrations.
 *
 * A migration is a pair of SQL files, <version>_<name>.up.sql and
 * (optionally) <version>_<name>.down.sql, where the version is digits (the
 * CLI's `uvorm migrate new` uses the UTC time, yyyymmddHHMMSS) and the name
 * letters, digits, '_' and '-'. A set of them is loaded once, from a
 * directory or from the C source `uvorm migrate embed` generates, and run
 * on a pool:
 *
 *   orm_migrations_t *set;
 *   char err[512];
 *   if (orm_migrations_load_dir("migrations", &set, err, sizeof err) != 0)
 *     die(err);
 *   orm_migrate_options_t opt = {.action = ORM_MIGRATE_UP};
 *   orm_migrate_async(pool, set, &opt, on_migrated, ctx);
 *
 * The database keeps the history in a table (uvorm_migrations by default):
 * version, name, SHA-256 of the up file, applied_at, duration, and a dirty
 * flag. Each migration runs in a transaction of its own together with its
 * history row, so it applies wholly or not at all; a file whose first line
 * is `-- uvorm:no-transaction` runs statement by statement outside one
 * (CREATE INDEX CONCURRENTLY), and its row stays dirty if it fails midway,
 * until ORM_MIGRATE_RESOLVE after a human check.
 *
 * Instances never migrate at once, also behind PgBouncer in transaction
 * mode: every step takes a transaction-scoped advisory lock and reads the
 * history afresh under it (docs/migrations.md). */
#ifndef UVORM_MIGRATE_H
#define UVORM_MIGRATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "uvorm/common.h"
#include "uvorm/pool.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- a set of migrations ------------------------------------------------ */

/* One migration as `uvorm migrate embed` writes it into C: the file texts,
 * NUL-terminated, with their lengths. `down` is NULL when there is none. */
typedef struct {
  const char *version;
  const char *name;
  const char *up;
  size_t up_len;
  const char *down;
  size_t down_len;
} orm_migration_source_t;

/* A migration of a loaded set. Valid as long as its set. */
typedef struct {
  const char *version;    /* digits, as in the file name */
  const char *name;
  const char *up_file;    /* the path it came from (embedded: the file name) */
  const char *down_file;  /* NULL: no down file */
  const char *up_sql;     /* the file's text */
  const char *down_sql;   /* NULL: no down file */
  size_t up_statements;   /* statements in the up file */
  size_t down_statements;
  bool up_no_transaction; /* its first line is -- uvorm:no-transaction */
  bool down_no_transaction;
  char checksum[65];      /* SHA-256 of the up file, lowercase hex */
} orm_migration_t;

typedef struct orm_migrations_s orm_migrations_t;

/* Declares the array and count a generated source defines:
 *   ORM_MIGRATIONS_DECLARE(app_migrations);
 *   orm_migrations_load_embedded(app_migrations, app_migrations_count, ...); */
#define ORM_MIGRATIONS_DECLARE(symbol)                                         \
  extern const orm_migration_source_t symbol[];                                \
  extern const size_t symbol##_count

/* Loads every migration of directory `dir` (synchronous file I/O: call it
 * before the loop runs, as when reading a configuration file). Files not
 * ending in .sql and hidden files are ignored; a .sql file whose name does
 * not match the pattern, two files of one version, a down file without its
 * up file, a file with no statement, transaction control (BEGIN, COMMIT,
 * ...) in a file, or a quote or comment left open are errors.
 * Returns 0, ORM_EINVAL (NULL argument, a bad file: `err` names the file
 * and line), ORM_EIO (the directory or a file cannot be read), ORM_ENOMEM.
 * `err` (may be NULL) receives a NUL-terminated message on failure. */
ORM_EXTERN int orm_migrations_load_dir(const char *dir, orm_migrations_t **out,
                                       char *err, size_t errlen);

/* The same from `n` embedded migrations; the texts are not copied and must
 * outlive the set (the generated arrays are static). */
ORM_EXTERN int orm_migrations_load_embedded(const orm_migration_source_t *list,
                                            size_t n, orm_migrations_t **out,
                                            char *err, size_t errlen);

ORM_EXTERN void orm_migrations_free(orm_migrations_t *set);

/* Migrations in version order. */
ORM_EXTERN size_t orm_migrations_count(const orm_migrations_t *set);
ORM_EXTERN const orm_migration_t *orm_migrations_at(const orm_migrations_t *set,
                                                    size_t i);

/* ---- running them ------------------------------------------------------- */

typedef enum {
  ORM_MIGRATE_UP = 1, /* apply pending migrations up to `to` (NULL: all) */
  ORM_MIGRATE_DOWN,   /* revert the last `steps` applied (0: 1) */
  ORM_MIGRATE_STATUS, /* read the history only */
  ORM_MIGRATE_VERIFY, /* STATUS, and fail if an applied file changed, is
                         missing, or a row is dirty */
  ORM_MIGRATE_RESOLVE /* clear version `to`'s dirty flag after a human check:
                         it counts as applied, or with ORM_MIGRATE_RETRY its
                         row goes and UP runs it again */
} orm_migrate_action_t;

#define ORM_MIGRATE_DRY_RUN 0x1u            /* UP, DOWN: decide, report, change
                                               nothing (STATUS, VERIFY change
                                               nothing anyway) */
#define ORM_MIGRATE_ALLOW_OUT_OF_ORDER 0x2u /* UP applies a pending version
                                               older than the newest applied */
#define ORM_MIGRATE_RETRY 0x4u              /* RESOLVE: run it again */

typedef enum {
  ORM_MIGRATION_PENDING = 0,
  ORM_MIGRATION_APPLIED,
  ORM_MIGRATION_CHANGED, /* applied, and its up file changed since */
  ORM_MIGRATION_DIRTY,   /* started outside a transaction, not finished */
  ORM_MIGRATION_MISSING  /* applied, and no file has its version */
} orm_migration_state_t;

/* "pending", "applied", "changed", "dirty", "missing". */
ORM_EXTERN const char *orm_migration_state_name(orm_migration_state_t state);

/* One migration as the database's history and the set see it. */
typedef struct {
  const char *version;
  const char *name;
  orm_migration_state_t state;
  const char *applied_at; /* the server's ISO 8601 text; NULL if not applied */
  int64_t duration_ms;    /* -1 if not applied */
  const orm_migration_t *migration; /* NULL when MISSING */
} orm_migration_status_t;

/* A migration this run applied or reverted (or, dry, would). */
typedef struct {
  const orm_migration_t *migration;
  bool down;
  bool dry_run;
  uint64_t duration_us;
} orm_migrate_step_t;

/* What a run did. Valid during the callback only. */
typedef struct {
  /* 0, or: ORM_ESERVER (a statement failed: sqlstate, message, file, line),
   * ORM_EMIGRATION (refused: the history does not match the files, a row
   * is dirty, a version is out of order, no down file; `message` says which
   * file), ORM_EINVAL (ORM_MIGRATE_RESOLVE of a version not dirty; a
   * no-transaction migration on a pool of one connection; a search_path
   * naming no schema that exists), ORM_ECONNECT, ORM_ECONNLOST,
   * ORM_ETIMEDOUT (the pool's statement timeout), ORM_ECANCELED (the pool
   * was closed meanwhile), ORM_EQUEUEFULL, ORM_ENOMEM. */
  int code;
  const char *message;  /* never NULL when code != 0 */
  const char *sqlstate; /* "" unless the server reported the error */
  const char *detail;   /* NULL if none */
  const char *hint;     /* NULL if none */
  const char *file;     /* the file the failing statement is in, or NULL */
  unsigned line;        /* where in `file` the server's error position
                           falls (else the statement's first line); 0 */
  const orm_migration_t *migration; /* the migration that failed, or NULL */
  const orm_migrate_step_t *steps;  /* what was applied or reverted */
  size_t nsteps;
  const orm_migration_status_t *status; /* every migration, after the run,
                                           by version */
  size_t nstatus;
} orm_migrate_report_t;

typedef void (*orm_migrate_cb)(const orm_migrate_report_t *report, void *data);

typedef struct {
  orm_migrate_action_t action;
  unsigned flags;           /* ORM_MIGRATE_* flags */
  const char *to;           /* UP: the last version to apply; RESOLVE: the
                               version */
  unsigned steps;           /* DOWN: how many (0: 1) */
  uint64_t lock_timeout_ms; /* each migration's lock_timeout: the server's */
  const char *schema;       /* the history table's schema: NULL, the first
                               on the search_path */
  const char *table;        /* its name: NULL, "uvorm_migrations" */
  /* Called after each migration applied or reverted (or, dry, chosen), in
   * order; NULL for none. */
  void (*on_step)(const orm_migrate_step_t *step, void *data);
} orm_migrate_options_t;

/* Runs `options->action` on `pool`, then calls `cb` once with the report
 * (never from inside this call). `set` must stay alive until then.
 *
 * A run that changes something waits, without limit, while another
 * instance migrates the same history table (retrying a lock, see
 * docs/migrations.md). A no-transaction migration needs a pool of at least
 * 2 connections (one holds the lock while another runs the statements);
 * its statements may each run on a different connection. Migrations run
 * on the pool's connections: a session-level SET in one (not SET LOCAL)
 * stays on its connection, so a service may prefer a pool of its own for
 * migrating, closed afterwards (the uvorm program does so).
 *
 * Returns 0, or without calling `cb`: ORM_EINVAL (NULL argument, bad
 * action or flags, DRY_RUN with RESOLVE, a `schema` or `table` not a plain
 * identifier, RESOLVE without `to`, UP to a version the set does not
 * have), ORM_ECLOSED, ORM_EQUEUEFULL, ORM_ENOMEM. */
ORM_EXTERN int orm_migrate_async(orm_pool_t *pool, const orm_migrations_t *set,
                                 const orm_migrate_options_t *options,
                                 orm_migrate_cb cb, void *data);

#ifdef __cplusplus
}
#endif

#endif /* UVORM_MIGRATE_H */
