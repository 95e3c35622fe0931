/* SPDX-License-Identifier: MIT */
/* uvorm_server: the example HTTP server (see README.md here).
 *
 *   uvorm_server [--database URL] [--host ADDR] [--port N] [--threads N]
 *                [--conns N] [--sync-each] [--no-pipeline] [--metrics]
 *                [--no-migrate]
 *
 * Applies its migrations (the sample domain's and the TechEmpower tables')
 * on a pool of its own, then starts --threads workers, each a loop with
 * its own listening socket on the shared port (SO_REUSEPORT), H2O context
 * and pool, and prints "listening on http://HOST:PORT". SIGINT or SIGTERM:
 * stop accepting, finish the requests in flight, close the pools, exit 0. */
#include "server.h"

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

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
    "  --no-migrate     do not apply the migrations first\n";

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

/* ---- listening sockets -------------------------------------------------------- */

/* A socket bound to host:*port with SO_REUSEPORT, listening; *port is set
 * to the port bound (for 0). -1 on failure, said. */
static int listen_socket(const char *host, int *port) {
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)*port)};
  if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    fprintf(stderr, "server: --host %s is not an IPv4 address\n", host);
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
    fprintf(stderr, "server: listen on %s:%d: %s\n", host, *port, strerror(errno));
    if (fd >= 0)
      close(fd);
    return -1;
  }
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  *port = ntohs(sa.sin_port);
  return fd;
}

/* ---- running ------------------------------------------------------------------- */

/* Workers that exited with connections still open: kept reachable. */
static worker_t *leftover;

typedef struct {
  worker_t *workers;
  unsigned n;
  int signals;
  uv_signal_t sigint, sigterm;
} runner_t;

static void on_signal(uv_signal_t *s, int signum) {
  runner_t *r = s->data;
  (void)signum;
  if (r->signals++ == 0) {
    fprintf(stderr, "server: shutting down: finishing requests in flight\n");
    for (unsigned i = 0; i < r->n; i++)
      uv_async_send(&r->workers[i].stop);
  }
  uv_close((uv_handle_t *)&r->sigint, NULL);
  uv_close((uv_handle_t *)&r->sigterm, NULL);
}

static int server_run(app_t *app) {
  runner_t r = {.n = app->threads};
  r.workers = calloc(app->threads, sizeof *r.workers);
  if (r.workers == NULL)
    return 1;
  int port = app->port, status = 0;
  for (unsigned i = 0; i < app->threads; i++) {
    worker_t *w = &r.workers[i];
    w->app = app;
    w->id = i;
    if ((w->listen_fd = listen_socket(app->host, &port)) < 0 || worker_init(w) != 0)
      return 1;
  }
  uv_loop_t main_loop;
  uv_loop_init(&main_loop);
  uv_signal_init(&main_loop, &r.sigint);
  uv_signal_init(&main_loop, &r.sigterm);
  r.sigint.data = r.sigterm.data = &r;
  uv_signal_start(&r.sigint, on_signal, SIGINT);
  uv_signal_start(&r.sigterm, on_signal, SIGTERM);
  for (unsigned i = 0; i < app->threads; i++)
    if (uv_thread_create(&r.workers[i].thread, worker_run, &r.workers[i]) != 0)
      return 1;
  printf("listening on http://%s:%d (%u threads, %u connections each%s)\n", app->host, port,
         app->threads, app->conns, app->sync_each ? ", a Sync per statement" : "");
  fflush(stdout);
  uv_run(&main_loop, UV_RUN_DEFAULT);
  size_t abandoned = 0;
  int all_disposed = 1;
  for (unsigned i = 0; i < app->threads; i++) {
    uv_thread_join(&r.workers[i].thread);
    if (!r.workers[i].pool_closed)
      status = 1;
    abandoned += r.workers[i].abandoned;
    all_disposed &= r.workers[i].disposed;
  }
  uv_loop_close(&main_loop);
  if (abandoned > 0)
    fprintf(stderr, "server: stopped (%zu idle connections closed by the exit)\n", abandoned);
  else
    fprintf(stderr, "server: stopped\n");
  /* A worker that had to leave connections open still has them in its
   * loop: its memory goes with the process. */
  if (all_disposed)
    free(r.workers);
  else
    leftover = r.workers;
  return status;
}

static unsigned number(const char *s, const char *what, unsigned max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || end == s || v > max || s[0] == '-') {
    fprintf(stderr, "server: %s: not a number within 0..%u: %s\n", what, max, s);
    exit(2);
  }
  return (unsigned)v;
}

int main(int argc, char **argv) {
  enum { OPT_DATABASE = 1, OPT_HOST, OPT_PORT, OPT_THREADS, OPT_CONNS, OPT_SYNC, OPT_NOPIPE, OPT_METRICS,
         OPT_NOMIGRATE, OPT_HELP };
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
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  /* Static: what the workers point into stays reachable to the end. */
  static app_t app = {.host = "127.0.0.1", .port = 8080, .conns = 2};
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  app.threads = cores > 0 ? (unsigned)cores : 1;
  int do_migrate = 1, c;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case OPT_DATABASE: app.conninfo = optarg; break;
    case OPT_HOST: app.host = optarg; break;
    case OPT_PORT: app.port = (int)number(optarg, "--port", 65535); break;
    case OPT_THREADS: app.threads = number(optarg, "--threads", 256); break;
    case OPT_CONNS: app.conns = number(optarg, "--conns", 1000); break;
    case OPT_SYNC: app.sync_each = true; break;
    case OPT_NOPIPE: app.no_pipeline = true; break;
    case OPT_METRICS: app.metrics = true; break;
    case OPT_NOMIGRATE: do_migrate = 0; break;
    case OPT_HELP: fputs(usage, stdout); return 0;
    default: fputs(usage, stderr); return 2;
    }
  }
  if (optind != argc || app.threads == 0 || app.conns == 0) {
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

  char err[256];
  if ((app.fortunes = fortunes_template(err, sizeof err)) == NULL) {
    fprintf(stderr, "server: fortunes template: %s\n", err);
    return 1;
  }
  h2o_config_init(&app.h2o);
  app.h2o.server_name = h2o_iovec_init(H2O_STRLIT("uvorm"));
  app.h2o.max_request_entity_size = 64 * 1024;
  http_register(&app);
  int status = server_run(&app);
  if (leftover == NULL)
    h2o_config_dispose(&app.h2o);
  tpl_free(app.fortunes);
  return status;
}
