/* SPDX-License-Identifier: MIT */
/* uvorm_server: the example HTTP server (see README.md here).
 *
 *   uvorm_server [--database URL] [--host ADDR] [--port N] [--threads N]
 *                [--conns N] [--sync-each] [--no-pipeline] [--metrics]
 *                [--no-migrate] [--accept-one]
 *
 * Applies its migrations (the sample domain's and the TechEmpower tables')
 * on a pool of its own, then starts --threads workers, each a loop with
 * its own listening socket on the shared port (SO_REUSEPORT), H2O context
 * and pool (httpd.c), and prints "listening on http://HOST:PORT". SIGINT
 * or SIGTERM: stop accepting, finish the requests in flight, close the
 * pools, exit 0. */
#include "server.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "domain.h"

ORM_MIGRATIONS_DECLARE(server_migrations);

static const char usage[] =
    "usage: uvorm_server [options]\n"
    "  --database URL   the database (default: DATABASE_URL, then libpq's\n"
    "                   PG* variables)\n"
    "  --host ADDR      the IPv4 address to listen on (default 127.0.0.1)\n"
    "  --port N         the port (default 8080; 0: a free one)\n"
    "  --threads N      loops, each with its own pool (default: the cores)\n"
    "  --conns N        database connections per loop (default 2)\n"
    "  --sync-each      a pipeline Sync after every statement (TechEmpower's\n"
    "                   rule 7)\n"
    "  --no-pipeline    one statement at a time per connection\n"
    "  --metrics        latency histograms in /metrics\n"
    "  --no-migrate     do not apply the migrations first\n"
    "  --accept-one     one thread accepts and hands connections over (else\n"
    "                   each accepts on its own SO_REUSEPORT socket)\n";

/* ---- migrations ------------------------------------------------------------ */

typedef struct {
  int done, code;
} migrate_t;

static void on_migrated(const orm_migrate_report_t *r, void *data) {
  migrate_t *m = data;
  m->done = 1;
  m->code = r->code;
  if (r->code != 0)
    fprintf(stderr, "server: migrate: %s%s%s\n", r->message,
            r->sqlstate[0] ? " SQLSTATE " : "", r->sqlstate);
}

static void on_closed(orm_pool_t *pool, void *data) {
  (void)pool;
  *(int *)data = 1;
}

/* Applies `list` with history table `table`: 0 or -1. */
static int migrate_set(uv_loop_t *loop, orm_pool_t *pool, const orm_migration_source_t *list,
                       size_t n, const char *table) {
  char err[256];
  orm_migrations_t *set = NULL;
  if (orm_migrations_load_embedded(list, n, &set, err, sizeof err) != 0) {
    fprintf(stderr, "server: migrations: %s\n", err);
    return -1;
  }
  migrate_t m = {0};
  orm_migrate_options_t opt = {.action = ORM_MIGRATE_UP, .table = table};
  int rc = orm_migrate_async(pool, set, &opt, on_migrated, &m);
  if (rc != 0)
    fprintf(stderr, "server: migrate: %s\n", orm_strerror(rc));
  while (rc == 0 && !m.done)
    uv_run(loop, UV_RUN_ONCE);
  orm_migrations_free(set);
  return rc == 0 && m.code == 0 ? 0 : -1;
}

static int migrate(const app_t *app) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  orm_pool_t *pool = NULL;
  int closed = 0;
  orm_pool_config_t cfg = {.conninfo = app->conninfo, .min_conns = 1, .max_conns = 2,
                           .connect_timeout_ms = 5000, .data = &closed};
  int rc = orm_pool_open(&pool, &loop, &cfg);
  if (rc != 0) {
    fprintf(stderr, "server: database: %s\n", orm_strerror(rc));
    uv_loop_close(&loop);
    return -1;
  }
  rc = migrate_set(&loop, pool, domain_migrations, domain_migrations_count, NULL);
  if (rc == 0)
    rc = migrate_set(&loop, pool, server_migrations, server_migrations_count,
                     "uvorm_server_migrations");
  orm_pool_close(pool, on_closed);
  while (!closed)
    uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}

static int route(worker_t *w, h2o_req_t *req, h2o_iovec_t path, h2o_iovec_t query) {
  return tfb_route(w, req, path, query) == 0 ? 0 : api_route(w, req, path, query);
}

int main(int argc, char **argv) {
  enum { OPT_DATABASE = 1, OPT_HOST, OPT_PORT, OPT_THREADS, OPT_CONNS, OPT_SYNC, OPT_NOPIPE, OPT_METRICS,
         OPT_NOMIGRATE, OPT_HELP, OPT_ACCEPT1 };
  static const struct option opts[] = {
      {"database", required_argument, NULL, OPT_DATABASE},
      {"host", required_argument, NULL, OPT_HOST},
      {"port", required_argument, NULL, OPT_PORT},
      {"threads", required_argument, NULL, OPT_THREADS},
      {"conns", required_argument, NULL, OPT_CONNS},
      {"sync-each", no_argument, NULL, OPT_SYNC},
      {"no-pipeline", no_argument, NULL, OPT_NOPIPE},
      {"metrics", no_argument, NULL, OPT_METRICS},
      {"no-migrate", no_argument, NULL, OPT_NOMIGRATE},
      {"accept-one", no_argument, NULL, OPT_ACCEPT1},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  /* Static: what the workers point into stays reachable to the end. */
  static app_t app = {.http = {.host = "127.0.0.1", .port = 8080}, .conns = 2};
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  app.http.threads = cores > 0 ? (unsigned)cores : 1;
  int do_migrate = 1, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DATABASE: app.conninfo = optarg; break;
    case OPT_HOST: app.http.host = optarg; break;
    case OPT_PORT: app.http.port = (int)option_number(optarg, "--port", 65535); break;
    case OPT_THREADS: app.http.threads = option_number(optarg, "--threads", 256); break;
    case OPT_CONNS: app.conns = option_number(optarg, "--conns", 1000); break;
    case OPT_SYNC: app.sync_each = true; break;
    case OPT_NOPIPE: app.no_pipeline = true; break;
    case OPT_METRICS: app.metrics = true; break;
    case OPT_NOMIGRATE: do_migrate = 0; break;
    case OPT_ACCEPT1: app.http.accept_one = true; break;
    case OPT_HELP: fputs(usage, stdout); return 0;
    default: fputs(usage, stderr); return 2;
    }
  }
  if (optind != argc || app.http.threads == 0 || app.conns == 0) {
    fputs(usage, stderr);
    return 2;
  }
  if (app.conninfo == NULL)
    app.conninfo = getenv("DATABASE_URL") != NULL ? getenv("DATABASE_URL") : "";

  /* Many idle clients each hold a descriptor: take what the system allows. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (do_migrate && migrate(&app) != 0)
    return 1;

  char err[256], banner[96];
  if ((app.fortunes = tfb_fortunes_template(err, sizeof err)) == NULL) {
    fprintf(stderr, "server: fortunes template: %s\n", err);
    return 1;
  }
  snprintf(banner, sizeof banner, ", uvorm, %u connections each%s", app.conns,
           app.sync_each ? ", a Sync per statement" : "");
  app.http.banner = banner;
  app.http.route = route;
  app.http.db_open = db_open;
  app.http.db_close = db_close;
  app.http.data = &app;
  httpd_init(&app.http);
  int status = httpd_run(&app.http);
  tpl_free(app.fortunes);
  return status;
}
