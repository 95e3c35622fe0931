/* SPDX-License-Identifier: MIT */
/* `uvorm migrate`: the library's migrations (include/uvorm/migrate.h) from
 * the command line, on a loop and a pool of two connections (one holds
 * the lock while the other runs a no-transaction migration). */
#include <errno.h>
#include <dirent.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <uv.h>
#include <uvorm.h>

#include "cli.h"

static const char usage[] =
    "usage: uvorm migrate <command> [options]\n"
    "\n"
    "commands:\n"
    "  new NAME             create DIR/<version>_<NAME>.up.sql and .down.sql\n"
    "                       (version: the UTC time, yyyymmddHHMMSS)\n"
    "  up [--to VERSION]    apply pending migrations in version order\n"
    "     [--allow-out-of-order]  also one older than the newest applied\n"
    "  down [N]             revert the last N applied (default 1) with their\n"
    "                       .down.sql\n"
    "  status               one line per migration: version, name, state\n"
    "                       (applied, pending, changed, dirty, missing),\n"
    "                       applied_at\n"
    "  verify               exit 1 if an applied migration's file changed or\n"
    "                       is missing, or one is dirty\n"
    "  resolve VERSION      after a human check, mark a dirty no-transaction\n"
    "     [--retry]         migration applied (or with --retry, pending again)\n"
    "  embed --out FILE.c   write DIR as a C source a service links\n"
    "     [--symbol NAME]   (default uvorm_migrations); load it with\n"
    "                       orm_migrations_load_embedded()\n"
    "\n"
    "options:\n"
    "  --database URL       the database (default: DATABASE_URL, then libpq's\n"
    "                       PG* variables)\n"
    "  --dir DIR            the migrations directory (default: migrations)\n"
    "  --dry-run            print what would run; change nothing\n"
    "  --lock-timeout MS    each migration's lock_timeout: fail rather than\n"
    "                       wait longer for a lock a busy table holds\n"
    "  --table NAME         the history table (default: uvorm_migrations)\n"
    "  --schema NAME        its schema (default: the first on search_path)\n"
    "  -q, --quiet          print errors only\n"
    "  -h, --help           this text\n"
    "\n"
    "Files: <version>_<name>.up.sql, optionally .down.sql. Each runs in one\n"
    "transaction with its history row; a file whose first line is\n"
    "  -- uvorm:no-transaction\n"
    "runs outside one (CREATE INDEX CONCURRENTLY) and, if it fails midway,\n"
    "stays dirty until `resolve`. Instances never migrate at once.\n"
    "Exit status: 0 success, 1 failure, 2 bad usage.\n";

typedef struct {
  const char *database;
  const char *dir;
  const char *out;
  const char *symbol;
  const char *table;
  const char *schema;
  const char *to;
  uint64_t lock_timeout_ms;
  int dry_run;
  int quiet;
  int allow_out_of_order;
  int retry;
} args_t;

typedef struct {
  args_t *args;
  orm_migrate_action_t action;
  orm_migrations_t *set;
  orm_pool_t *pool;
  int status;
} run_t;

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("uvorm: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (try uvorm migrate --help)\n", stderr);
  va_end(ap);
  return CLI_USAGE;
}

/* ---- new ----------------------------------------------------------------- */

static int name_ok(const char *s) {
  if (*s == '\0' || strlen(s) > 200)
    return 0;
  for (; *s != '\0'; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
          (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
      return 0;
  return 1;
}

static int write_new(const char *path, const char *text) {
  /* "x": never overwrite a migration someone wrote. */
  FILE *f = fopen(path, "wx");
  if (f == NULL) {
    cli_error("%s: %s", path, strerror(errno));
    return -1;
  }
  fputs(text, f);
  if (fclose(f) != 0) {
    cli_error("%s: write failed", path);
    return -1;
  }
  return 0;
}

/* The largest version among DIR's <digits>_*.sql files; 0 if none. */
static unsigned long long newest_version(const char *dir) {
  unsigned long long newest = 0;
  DIR *d = opendir(dir);
  if (d == NULL)
    return 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    size_t digits = strspn(n, "0123456789"), len = strlen(n);
    if (digits == 0 || digits > 18 || n[digits] != '_' || len < 4 ||
        strcmp(n + len - 4, ".sql") != 0)
      continue;
    unsigned long long v = strtoull(n, NULL, 10);
    if (v > newest)
      newest = v;
  }
  closedir(d);
  return newest;
}

static int cmd_new(args_t *a, const char *name) {
  if (!name_ok(name))
    return usage_error("migration name '%s' must be letters, digits, '_' or "
                       "'-'",
                       name);
  if (mkdir(a->dir, 0777) != 0 && errno != EEXIST) {
    cli_error("%s: %s", a->dir, strerror(errno));
    return CLI_FAILED;
  }
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  char version[32];
  strftime(version, sizeof version, "%Y%m%d%H%M%S", &tm);
  /* Versions must increase: two `new` in one second, or a clock behind the
   * newest file, take the next number. From the names alone: the newest
   * file may still be the unwritten one `new` made a moment ago. */
  unsigned long long v = strtoull(version, NULL, 10), last = newest_version(a->dir);
  if (last >= v)
    snprintf(version, sizeof version, "%llu", last + 1);
  size_t len = strlen(a->dir) + strlen(version) + strlen(name) + 16;
  char *up = malloc(len), *down = malloc(len);
  int status = CLI_FAILED;
  if (up == NULL || down == NULL) {
    cli_error("out of memory");
    goto out;
  }
  snprintf(up, len, "%s/%s_%s.up.sql", a->dir, version, name);
  snprintf(down, len, "%s/%s_%s.down.sql", a->dir, version, name);
  char text[512];
  snprintf(text, sizeof text,
           "-- %s_%s: up. Write the change here; it runs in one transaction\n"
           "-- with its history row. (A first line `-- uvorm:no-transaction`\n"
           "-- runs it outside one, for CREATE INDEX CONCURRENTLY.)\n",
           version, name);
  if (write_new(up, text) != 0)
    goto out;
  snprintf(text, sizeof text,
           "-- %s_%s: down. Undo what the up file does.\n", version, name);
  if (write_new(down, text) != 0) {
    remove(up);
    goto out;
  }
  if (!a->quiet)
    printf("created %s\ncreated %s\n", up, down);
  status = CLI_OK;
out:
  free(up);
  free(down);
  return status;
}

/* ---- running on a pool ------------------------------------------------------ */

static void on_notice(orm_pool_t *pool, const orm_notice_t *n, void *data) {
  (void)pool;
  run_t *run = data;
  /* NOTICEs (DROP ... IF EXISTS skipping) are noise; warnings are not. */
  if (strcmp(n->severity, "WARNING") == 0 && !run->args->quiet)
    fprintf(stderr, "uvorm: server %s: %s\n", n->severity, n->message);
}

static void on_closed(orm_pool_t *pool, void *data) {
  (void)pool;
  (void)data;
}

static void print_sql(const char *file, const char *sql) {
  printf("-- %s\n%s", file, sql);
  size_t n = strlen(sql);
  if (n == 0 || sql[n - 1] != '\n')
    putchar('\n');
}

static void on_step(const orm_migrate_step_t *s, void *data) {
  run_t *run = data;
  const orm_migration_t *m = s->migration;
  if (run->args->quiet && !s->dry_run)
    return;
  if (s->dry_run) {
    printf("would %s %s %s\n", s->down ? "revert" : "apply", m->version,
           m->name);
    if (!run->args->quiet)
      print_sql(s->down ? m->down_file : m->up_file,
                s->down ? m->down_sql : m->up_sql);
  } else {
    printf("%s %s %s (%" PRIu64 ".%03" PRIu64 " s)\n",
           s->down ? "reverted" : "applied", m->version, m->name,
           s->duration_us / 1000000, s->duration_us / 1000 % 1000);
  }
  fflush(stdout);
}

static void print_status(const orm_migrate_report_t *r) {
  for (size_t i = 0; i < r->nstatus; i++) {
    const orm_migration_status_t *s = &r->status[i];
    printf("%-18s %-40s %-8s %s\n", s->version, s->name,
           orm_migration_state_name(s->state),
           s->applied_at != NULL ? s->applied_at : "-");
  }
}

static size_t count_state(const orm_migrate_report_t *r,
                          orm_migration_state_t state) {
  size_t n = 0;
  for (size_t i = 0; i < r->nstatus; i++)
    n += r->status[i].state == state;
  return n;
}

static void print_failure(const orm_migrate_report_t *r) {
  fputs("uvorm: ", stderr);
  if (r->file != NULL && r->line > 0)
    fprintf(stderr, "%s:%u: ", r->file, r->line);
  else if (r->file != NULL && r->code == ORM_ESERVER)
    fprintf(stderr, "%s: ", r->file);
  fputs(r->message, stderr);
  if (r->sqlstate != NULL && r->sqlstate[0] != '\0')
    fprintf(stderr, " (SQLSTATE %s)", r->sqlstate);
  fputc('\n', stderr);
  if (r->detail != NULL)
    fprintf(stderr, "uvorm: detail: %s\n", r->detail);
  if (r->hint != NULL)
    fprintf(stderr, "uvorm: hint: %s\n", r->hint);
  if (r->code == ORM_ESERVER && r->migration != NULL) {
    const orm_migration_t *m = r->migration;
    int no_tx = r->file == m->down_file ? m->down_no_transaction
                                        : m->up_no_transaction;
    fprintf(stderr,
            no_tx ? "uvorm: %s %s ran outside a transaction: it is dirty; "
                    "check the database, then `uvorm migrate resolve %s`\n"
                  : "uvorm: %s %s was rolled back: nothing of it is applied\n",
            m->version, m->name, m->version);
  }
}

static void on_report(const orm_migrate_report_t *r, void *data) {
  run_t *run = data;
  const args_t *a = run->args;
  if (run->action == ORM_MIGRATE_STATUS && r->code == 0 && !a->quiet)
    print_status(r);
  if (r->code != 0) {
    print_failure(r);
    run->status = CLI_FAILED;
  } else if (!a->quiet) {
    switch (run->action) {
    case ORM_MIGRATE_UP:
      if (a->dry_run)
        printf("%zu to apply\n", r->nsteps);
      else if (r->nsteps == 0)
        printf("nothing to apply: up to date (%zu applied)\n",
               count_state(r, ORM_MIGRATION_APPLIED));
      else
        printf("%zu applied now; %zu applied in all, %zu pending\n", r->nsteps,
               count_state(r, ORM_MIGRATION_APPLIED),
               count_state(r, ORM_MIGRATION_PENDING));
      break;
    case ORM_MIGRATE_DOWN:
      if (a->dry_run)
        printf("%zu to revert\n", r->nsteps);
      else if (r->nsteps == 0)
        printf("nothing to revert\n");
      break;
    case ORM_MIGRATE_VERIFY:
      printf("verified: %zu applied migrations match their files, %zu "
             "pending\n",
             count_state(r, ORM_MIGRATION_APPLIED),
             count_state(r, ORM_MIGRATION_PENDING));
      break;
    case ORM_MIGRATE_RESOLVE:
      printf(a->retry ? "%s resolved: pending again\n"
                      : "%s resolved: marked applied\n",
             a->to);
      break;
    default:
      break;
    }
  }
  fflush(stdout);
  orm_pool_close(run->pool, on_closed);
}

static int run_action(args_t *a, orm_migrate_action_t action, unsigned steps) {
  run_t run = {.args = a, .action = action, .status = CLI_OK};
  char err[1024];
  int rc = orm_migrations_load_dir(a->dir, &run.set, err, sizeof err);
  if (rc != 0) {
    cli_error("%s", err);
    return CLI_FAILED;
  }
  const char *db = a->database != NULL ? a->database : getenv("DATABASE_URL");
  uv_loop_t loop;
  uv_loop_init(&loop);
  orm_pool_config_t cfg = {.conninfo = db != NULL ? db : "",
                           .min_conns = 1,
                           .max_conns = 2,
                           /* Each statement runs once: nothing to gain
                            * from preparing, and unnamed statements work
                            * behind PgBouncer in transaction mode. */
                           .no_prepare = true,
                           .on_notice = on_notice,
                           .data = &run};
  rc = orm_pool_open(&run.pool, &loop, &cfg);
  if (rc != 0) {
    /* Never echo the conninfo: it may hold a password. */
    cli_error(rc == ORM_EINVAL ? "the database URL is not one libpq accepts"
                               : "cannot open a pool: %s",
              orm_strerror(rc));
    orm_migrations_free(run.set);
    uv_loop_close(&loop);
    return rc == ORM_EINVAL ? CLI_USAGE : CLI_FAILED;
  }
  unsigned flags = (a->dry_run ? ORM_MIGRATE_DRY_RUN : 0) |
                   (a->allow_out_of_order ? ORM_MIGRATE_ALLOW_OUT_OF_ORDER : 0) |
                   (a->retry ? ORM_MIGRATE_RETRY : 0);
  orm_migrate_options_t opt = {.action = action,
                               .flags = flags,
                               .to = a->to,
                               .steps = steps,
                               .lock_timeout_ms = a->lock_timeout_ms,
                               .schema = a->schema,
                               .table = a->table,
                               .on_step = on_step};
  rc = orm_migrate_async(run.pool, run.set, &opt, on_report, &run);
  if (rc != 0) {
    if (rc == ORM_EINVAL && a->to != NULL)
      cli_error("%s names no migration in %s", a->to, a->dir);
    else
      cli_error("%s", orm_strerror(rc));
    run.status = rc == ORM_EINVAL ? CLI_USAGE : CLI_FAILED;
    orm_pool_close(run.pool, on_closed);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  orm_migrations_free(run.set);
  return run.status;
}

/* ---- arguments ------------------------------------------------------------- */

enum {
  OPT_DATABASE = 256,
  OPT_DIR,
  OPT_DRY_RUN,
  OPT_LOCK_TIMEOUT,
  OPT_TO,
  OPT_OUT_OF_ORDER,
  OPT_RETRY,
  OPT_OUT,
  OPT_SYMBOL,
  OPT_TABLE,
  OPT_SCHEMA
};

static const struct option options[] = {
    {"database", required_argument, NULL, OPT_DATABASE},
    {"dir", required_argument, NULL, OPT_DIR},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"lock-timeout", required_argument, NULL, OPT_LOCK_TIMEOUT},
    {"to", required_argument, NULL, OPT_TO},
    {"allow-out-of-order", no_argument, NULL, OPT_OUT_OF_ORDER},
    {"retry", no_argument, NULL, OPT_RETRY},
    {"out", required_argument, NULL, OPT_OUT},
    {"symbol", required_argument, NULL, OPT_SYMBOL},
    {"table", required_argument, NULL, OPT_TABLE},
    {"schema", required_argument, NULL, OPT_SCHEMA},
    {"quiet", no_argument, NULL, 'q'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

static int parse_uint(const char *s, uint64_t max, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return -1;
  *out = v;
  return 0;
}

/* What the library takes as a history table or schema name. */
static int identifier_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
    return 0;
  return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789_") == n;
}

static int digits_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 18)
    return 0;
  for (; *s != '\0'; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

int cli_migrate(int argc, char **argv) {
  args_t a = {.dir = "migrations", .symbol = "uvorm_migrations"};
  optind = 1;
  opterr = 0;
  int c;
  /* glibc's getopt_long moves the positional arguments after the options:
   * options go anywhere (uvorm migrate up --dry-run, --dry-run up). */
  while ((c = getopt_long(argc, argv, ":qh", options, NULL)) != -1) {
    switch (c) {
    case OPT_DATABASE: a.database = optarg; break;
    case OPT_DIR: a.dir = optarg; break;
    case OPT_DRY_RUN: a.dry_run = 1; break;
    case OPT_LOCK_TIMEOUT:
      if (parse_uint(optarg, INT32_MAX, &a.lock_timeout_ms) != 0)
        return usage_error("--lock-timeout %s: milliseconds expected", optarg);
      break;
    case OPT_TO: a.to = optarg; break;
    case OPT_OUT_OF_ORDER: a.allow_out_of_order = 1; break;
    case OPT_RETRY: a.retry = 1; break;
    case OPT_OUT: a.out = optarg; break;
    case OPT_SYMBOL: a.symbol = optarg; break;
    case OPT_TABLE: a.table = optarg; break;
    case OPT_SCHEMA: a.schema = optarg; break;
    case 'q': a.quiet = 1; break;
    case 'h': fputs(usage, stdout); return CLI_OK;
    case ':':
      return usage_error("option '%s' needs a value", argv[optind - 1]);
    default:
      if (optopt != 0 && optopt < 256)
        return usage_error("unknown option '-%c'", optopt);
      return usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc)
    return usage_error("%s", "a command is needed: new, up, down, status, "
                             "verify, resolve or embed");
  const char *cmd = argv[optind];
  char **pos = argv + optind + 1;
  int npos = argc - optind - 1;
  int up = strcmp(cmd, "up") == 0, resolve = strcmp(cmd, "resolve") == 0,
      embed = strcmp(cmd, "embed") == 0;
  if (a.to != NULL && !up)
    return usage_error("--to is for `up` (%s)", cmd);
  if (a.allow_out_of_order && !up)
    return usage_error("--allow-out-of-order is for `up` (%s)", cmd);
  if (a.retry && !resolve)
    return usage_error("--retry is for `resolve` (%s)", cmd);
  if ((a.out != NULL || strcmp(a.symbol, "uvorm_migrations") != 0) && !embed)
    return usage_error("--out and --symbol are for `embed` (%s)", cmd);
  if (a.to != NULL && !digits_ok(a.to))
    return usage_error("--to %s: a version (digits) expected", a.to);
  if (a.table != NULL && !identifier_ok(a.table))
    return usage_error("--table %s: letters, digits and '_', at most 63", a.table);
  if (a.schema != NULL && !identifier_ok(a.schema))
    return usage_error("--schema %s: letters, digits and '_', at most 63", a.schema);
  if (a.dry_run && (resolve || embed || strcmp(cmd, "new") == 0))
    return usage_error("--dry-run is for up and down (%s)", cmd);

  if (strcmp(cmd, "new") == 0) {
    if (npos != 1)
      return usage_error("%s", "usage: uvorm migrate new NAME");
    return cmd_new(&a, pos[0]);
  }
  if (embed) {
    if (npos != 0 || a.out == NULL)
      return usage_error("%s", "usage: uvorm migrate embed --out FILE.c "
                               "[--symbol NAME]");
    return cli_embed(a.dir, a.out, a.symbol, a.quiet);
  }
  if (up || strcmp(cmd, "status") == 0 || strcmp(cmd, "verify") == 0) {
    if (npos != 0)
      return usage_error("unexpected argument '%s'", pos[0]);
    return run_action(&a, up ? ORM_MIGRATE_UP
                          : cmd[0] == 's' ? ORM_MIGRATE_STATUS
                                          : ORM_MIGRATE_VERIFY,
                      0);
  }
  if (strcmp(cmd, "down") == 0) {
    uint64_t n = 1;
    if (npos > 1 || (npos == 1 && (parse_uint(pos[0], 1000000, &n) != 0 ||
                                   n == 0)))
      return usage_error("%s", "usage: uvorm migrate down [N], N >= 1");
    return run_action(&a, ORM_MIGRATE_DOWN, (unsigned)n);
  }
  if (resolve) {
    if (npos != 1 || !digits_ok(pos[0]))
      return usage_error("%s", "usage: uvorm migrate resolve VERSION [--retry]");
    a.to = pos[0];
    return run_action(&a, ORM_MIGRATE_RESOLVE, 0);
  }
  return usage_error("unknown command '%s'", cmd);
}
