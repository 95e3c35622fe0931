/* SPDX-License-Identifier: MIT */
/* bench_copy_stream: bulk loads and large reads, side by side in one run.
 *
 *   bench_copy_stream CONNINFO copy [ROWS] [REPS]
 *     loads ROWS usage records (default 100000) REPS times (default 3) each
 *     way, interleaved: raw libpq binary COPY (blocking, rows encoded by
 *     hand), orm_copy_in_rows_async, and orm_insert_many_async in
 *     statements of 1000 rows (on 4 connections, and on 1 as COPY has).
 *     Prints per way the median
 *     rows/s, client CPU per row and the ratios.
 *   bench_copy_stream CONNINFO stream [ROWS]
 *     reads ROWS generated rows (default 10000000) through a model with
 *     orm_stream_async (chunks of 1000) and orm_copy_out_rows_async, then
 *     the same rows with raw libpq in single-row mode and with a cursor
 *     (FETCH 1000 in a transaction):
 *     rows/s, client CPU per row, and the peak RSS of the process.
 *
 * Creates and drops the schema bench_copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <libpq-fe.h>
#include <uv.h>

#include <uvorm.h>

#define USAGE_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK | ORM_F_GENERATED)                       \
  X(model, ORM_T_TEXT, const char *, 0)                                        \
  X(tokens, ORM_T_INT4, int32_t, 0)                                            \
  X(cost, ORM_T_FLOAT8, double, 0)                                             \
  X(at, ORM_T_TIMESTAMPTZ, int64_t, 0)
ORM_MODEL_DECLARE(bu, USAGE_FIELDS);
ORM_MODEL_DEFINE_IN(bu, "bench_copy", "usage", USAGE_FIELDS);

#define ITEM_FIELDS(X)                                                         \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)                                         \
  X(score, ORM_T_FLOAT8, double, 0)
ORM_MODEL_DECLARE(bi, ITEM_FIELDS);
ORM_MODEL_DEFINE(bi, "items", ITEM_FIELDS);

static const char *conninfo;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long peak_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static void admin(PGconn *pg, const char *sql) {
  PGresult *r = PQexec(pg, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK &&
      PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "%s: %s", sql, PQerrorMessage(pg));
    exit(1);
  }
  PQclear(r);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- copy ----------------------------------------------------------------- */

static void put_be32(char *p, uint32_t v) {
  p[0] = (char)(v >> 24);
  p[1] = (char)(v >> 16);
  p[2] = (char)(v >> 8);
  p[3] = (char)v;
}

static void put_be64(char *p, uint64_t v) {
  put_be32(p, (uint32_t)(v >> 32));
  put_be32(p + 4, (uint32_t)v);
}

/* Raw libpq: the same rows in binary COPY, encoded by hand. */
static void raw_copy(PGconn *pg, const bu_t *rows, size_t n) {
  PGresult *start = PQexec(pg, "COPY bench_copy.usage (model, tokens, cost, "
                               "at) FROM STDIN (FORMAT binary)");
  if (PQresultStatus(start) != PGRES_COPY_IN) {
    fprintf(stderr, "raw COPY: %s", PQerrorMessage(pg));
    exit(1);
  }
  PQclear(start);
  size_t cap = 256 * 1024 + 256;
  char *buf = malloc(cap);
  size_t len = 0;
  memcpy(buf, "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0", 19);
  len = 19;
  for (size_t i = 0; i < n; i++) {
    size_t ml = strlen(rows[i].model);
    char *p = buf + len;
    p[0] = 0;
    p[1] = 4;
    put_be32(p + 2, (uint32_t)ml);
    memcpy(p + 6, rows[i].model, ml);
    p += 6 + ml;
    put_be32(p, 4);
    put_be32(p + 4, (uint32_t)rows[i].tokens);
    put_be32(p + 8, 8);
    uint64_t bits;
    memcpy(&bits, &rows[i].cost, 8);
    put_be64(p + 12, bits);
    put_be32(p + 20, 8);
    put_be64(p + 24, (uint64_t)(rows[i].at - 946684800000000LL));
    len = (size_t)(p + 32 - buf);
    if (len > 256 * 1024) {
      PQputCopyData(pg, buf, (int)len);
      len = 0;
    }
  }
  buf[len++] = (char)0xff;
  buf[len++] = (char)0xff;
  PQputCopyData(pg, buf, (int)len);
  PQputCopyEnd(pg, NULL);
  PGresult *r = PQgetResult(pg);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "raw COPY: %s", PQerrorMessage(pg));
    exit(1);
  }
  PQclear(r);
  while ((r = PQgetResult(pg)) != NULL)
    PQclear(r);
  free(buf);
}

typedef struct {
  int pending;
  int failed;
} waiter_t;

static void on_done(orm_future_t *f, void *data) {
  waiter_t *w = data;
  if (orm_future_status(f) != 0) {
    fprintf(stderr, "uvorm: %s\n", orm_future_error(f)->message);
    w->failed = 1;
  }
  w->pending--;
}

static void uvorm_copy(uv_loop_t *loop, orm_pool_t *pool, bu_t *rows,
                       size_t n) {
  waiter_t w = {1, 0};
  if (orm_copy_in_rows_async(pool, bu_model(), rows, n, on_done, &w, NULL))
    exit(1);
  while (w.pending > 0)
    uv_run(loop, UV_RUN_ONCE);
  if (w.failed)
    exit(1);
}

static void uvorm_insert_many(uv_loop_t *loop, orm_pool_t *pool, bu_t *rows,
                              size_t n) {
  waiter_t w = {0, 0};
  for (size_t i = 0; i < n; i += 1000) {
    size_t k = n - i < 1000 ? n - i : 1000;
    if (orm_insert_many_async(pool, bu_model(), rows + i, k, on_done, &w,
                              NULL))
      exit(1);
    w.pending++;
  }
  while (w.pending > 0)
    uv_run(loop, UV_RUN_ONCE);
  if (w.failed)
    exit(1);
}

static void bench_copy(size_t n, int reps) {
  PGconn *pg = PQconnectdb(conninfo);
  if (PQstatus(pg) != CONNECTION_OK) {
    fprintf(stderr, "%s", PQerrorMessage(pg));
    exit(1);
  }
  admin(pg, "SET client_min_messages = warning");
  admin(pg, "DROP SCHEMA IF EXISTS bench_copy CASCADE");
  admin(pg, "CREATE SCHEMA bench_copy");
  admin(pg, "CREATE UNLOGGED TABLE bench_copy.usage (id bigserial PRIMARY "
            "KEY, model text NOT NULL, tokens int NOT NULL, cost float8 NOT "
            "NULL, at timestamptz NOT NULL)");
  bu_t *rows = calloc(n, sizeof *rows);
  char(*names)[16] = calloc(n, sizeof *names);
  for (size_t i = 0; i < n; i++) {
    snprintf(names[i], sizeof names[i], "model-%zu", i % 97);
    rows[i] = (bu_t){.model = names[i],
                     .tokens = (int32_t)(i % 5000),
                     .cost = (double)(i % 1000) / 100,
                     .at = 1700000000000000LL + (int64_t)i * 1000};
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  orm_pool_t *pool, *one;
  if (orm_pool_open(&pool, &loop,
                    &(orm_pool_config_t){.conninfo = conninfo,
                                         .min_conns = 4,
                                         .max_conns = 4}) != 0 ||
      orm_pool_open(&one, &loop,
                    &(orm_pool_config_t){.conninfo = conninfo,
                                         .min_conns = 1,
                                         .max_conns = 1}) != 0)
    exit(1);
  enum { WAYS = 4 };
  double rate[WAYS][16], cpu[WAYS][16];
  const char *names3[WAYS] = {"raw libpq COPY", "uvorm copy_in_rows",
                              "uvorm insert_many x1000", "  ... on 1 connection"};
  if (reps > 16)
    reps = 16;
  for (int r = 0; r < reps; r++) {
    for (int way = 0; way < WAYS; way++) {
      admin(pg, "TRUNCATE bench_copy.usage");
      double t0 = now_s(), c0 = cpu_s();
      if (way == 0)
        raw_copy(pg, rows, n);
      else if (way == 1)
        uvorm_copy(&loop, pool, rows, n);
      else
        uvorm_insert_many(&loop, way == 2 ? pool : one, rows, n);
      double t = now_s() - t0, c = cpu_s() - c0;
      rate[way][r] = (double)n / t;
      cpu[way][r] = c * 1e9 / (double)n;
    }
  }
  double med[WAYS];
  printf("copy: %zu rows, median of %d\n", n, reps);
  for (int way = 0; way < WAYS; way++) {
    med[way] = median(rate[way], reps);
    printf("  %-26s %10.0f rows/s  %7.0f ns CPU/row\n", names3[way], med[way],
           median(cpu[way], reps));
  }
  printf("  copy_in_rows / raw COPY    %.2fx\n", med[1] / med[0]);
  printf("  copy_in_rows / insert_many %.2fx (4 connections), %.2fx (1)\n",
         med[1] / med[2], med[1] / med[3]);
  orm_pool_close(pool, NULL);
  orm_pool_close(one, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  admin(pg, "DROP SCHEMA bench_copy CASCADE");
  PQfinish(pg);
  free(rows);
  free(names);
}

/* ---- stream --------------------------------------------------------------- */

typedef struct {
  uint64_t rows;
  int64_t sum;
  int done;
  int status;
} sink_t;

static void on_rows(orm_stream_t *s, const orm_rows_t *rows, void *data) {
  (void)s;
  sink_t *k = data;
  const bi_t *it = orm_rows_array(rows);
  size_t n = orm_rows_count(rows);
  for (size_t i = 0; i < n; i++)
    k->sum += it[i].id;
  k->rows += n;
}

static void on_stream_done(orm_future_t *f, void *data) {
  sink_t *k = data;
  k->status = orm_future_status(f);
  if (k->status != 0)
    fprintf(stderr, "stream: %s\n", orm_future_error(f)->message);
  k->done = 1;
}

#define SERIES                                                                 \
  "SELECT g::int8 AS id, 'item-' || g AS name, g::float8 AS score FROM "      \
  "(SELECT generate_series(1, %zu) AS g) s"

static void report(const char *what, size_t n, double t, double c) {
  printf("  %-30s %10.0f rows/s  %6.0f ns CPU/row  peak RSS %ld MB\n", what,
         (double)n / t, c * 1e9 / (double)n, peak_kb() / 1024);
}

static void bench_stream(size_t n) {
  char sql[256];
  snprintf(sql, sizeof sql, SERIES, n);
  printf("stream: %zu rows\n", n);
  uv_loop_t loop;
  uv_loop_init(&loop);
  orm_pool_t *pool;
  if (orm_pool_open(&pool, &loop,
                    &(orm_pool_config_t){.conninfo = conninfo}) != 0)
    exit(1);
  sink_t k = {0};
  double t0 = now_s(), c0 = cpu_s();
  if (orm_stream_async(pool, bi_model(), sql, NULL, 0, 1000, on_rows,
                       on_stream_done, &k, NULL, NULL) != 0)
    exit(1);
  while (!k.done)
    uv_run(&loop, UV_RUN_ONCE);
  if (k.status != 0 || k.rows != n)
    exit(1);
  report("uvorm orm_stream_async", n, now_s() - t0, cpu_s() - c0);
  sink_t c = {0};
  t0 = now_s();
  c0 = cpu_s();
  if (orm_copy_out_rows_async(pool, bi_model(), sql, 1000, on_rows,
                              on_stream_done, &c, NULL, NULL) != 0)
    exit(1);
  while (!c.done)
    uv_run(&loop, UV_RUN_ONCE);
  if (c.status != 0 || c.rows != n || c.sum != k.sum)
    exit(1);
  report("uvorm orm_copy_out_rows_async", n, now_s() - t0, cpu_s() - c0);
  orm_pool_close(pool, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);

  /* Raw libpq, single-row mode, binary, blocking. */
  PGconn *pg = PQconnectdb(conninfo);
  t0 = now_s();
  c0 = cpu_s();
  PQsendQueryParams(pg, sql, 0, NULL, NULL, NULL, NULL, 1);
  PQsetSingleRowMode(pg);
  size_t got = 0;
  PGresult *r;
  while ((r = PQgetResult(pg)) != NULL) {
    if (PQresultStatus(r) == PGRES_SINGLE_TUPLE)
      got++;
    PQclear(r);
  }
  if (got != n)
    exit(1);
  report("raw libpq single-row mode", n, now_s() - t0, cpu_s() - c0);

  /* Raw libpq, a cursor fetched 1000 rows at a time. */
  char decl[320];
  snprintf(decl, sizeof decl, "DECLARE c NO SCROLL CURSOR FOR %s", sql);
  t0 = now_s();
  c0 = cpu_s();
  admin(pg, "BEGIN");
  admin(pg, decl);
  got = 0;
  for (;;) {
    r = PQexecParams(pg, "FETCH 1000 FROM c", 0, NULL, NULL, NULL, NULL, 1);
    int rows = PQntuples(r);
    PQclear(r);
    if (rows == 0)
      break;
    got += (size_t)rows;
  }
  admin(pg, "COMMIT");
  if (got != n)
    exit(1);
  report("raw libpq cursor FETCH 1000", n, now_s() - t0, cpu_s() - c0);
  PQfinish(pg);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s CONNINFO copy [ROWS] [REPS] | stream [ROWS]\n",
            argv[0]);
    return 2;
  }
  conninfo = argv[1];
  if (strcmp(argv[2], "copy") == 0) {
    size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : 100000;
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    bench_copy(n, reps);
  } else {
    size_t n = argc > 3 ? strtoul(argv[3], NULL, 10) : 10000000;
    bench_stream(n);
  }
  return 0;
}
