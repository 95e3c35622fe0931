/* SPDX-License-Identifier: MIT */
/* bench_preload_chunk: how long orm_preload_async() takes for 100,000
 * parents with the chunk size compiled into the library, to choose
 * ORM_PRELOAD_CHUNK. Prints one line: parents, children, median and min
 * wall ms over REPS preloads (after one warm-up), peak RSS. Creates and
 * drops the schema preload_chunk.
 *
 *   bench_preload_chunk CONNINFO [PARENTS] [CHILDREN_PER_PARENT] [REPS]
 *
 * To compare chunk sizes, build the library once per size, e.g.
 *   cmake -S . -B /tmp/chunk5000 -DCMAKE_BUILD_TYPE=Release \
 *     -DCMAKE_C_FLAGS=-DORM__PRELOAD_CHUNK=5000
 *   cmake --build /tmp/chunk5000 --target bench_preload_chunk
 * (bench/README.md has the figures behind the chosen size). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <libpq-fe.h>
#include <uv.h>

#include <uvorm.h>

#define CHILD_FIELDS(X)                                                        \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(parent_id, ORM_T_INT8, int64_t, 0)                                         \
  X(label, ORM_T_TEXT, const char *, 0)
ORM_MODEL_DECLARE(pc_child, CHILD_FIELDS);
ORM_MODEL_DEFINE_IN(pc_child, "preload_chunk", "children", CHILD_FIELDS);

#define PARENT_FIELDS(X)                                                       \
  X(id, ORM_T_INT8, int64_t, ORM_F_PK)                                         \
  X(name, ORM_T_TEXT, const char *, 0)
#define PARENT_RELATIONS(R)                                                    \
  R(children, ORM_HAS_MANY, pc_child, parent_id, NULL)
ORM_MODEL_DECLARE_REL(pc_parent, PARENT_FIELDS, PARENT_RELATIONS);
ORM_MODEL_DEFINE_REL_IN(pc_parent, "preload_chunk", "parents", PARENT_FIELDS,
                        PARENT_RELATIONS);

typedef struct {
  int done;
  int status;
  orm_rows_t *rows;
} wait_t;

static void on_done(orm_future_t *f, void *data) {
  wait_t *w = data;
  w->status = orm_future_status(f);
  if (w->status != 0)
    fprintf(stderr, "preload_chunk: %s\n", orm_future_error(f)->message);
  else if (orm_future_value(f) != NULL)
    w->rows = orm_future_take(f);
  w->done = 1;
}

static void run(uv_loop_t *loop, wait_t *w) {
  while (!w->done)
    uv_run(loop, UV_RUN_ONCE);
  if (w->status != 0)
    exit(1);
}

static void on_closed(orm_pool_t *p, void *d) { (void)p, (void)d; }

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  const char *conninfo = argc > 1 ? argv[1] : "";
  long parents = argc > 2 ? atol(argv[2]) : 100000;
  long per = argc > 3 ? atol(argv[3]) : 3;
  int reps = argc > 4 ? atoi(argv[4]) : 7;
  PGconn *pg = PQconnectdb(conninfo);
  char sql[1024];
  snprintf(sql, sizeof sql,
           "SET client_min_messages = warning;"
           "DROP SCHEMA IF EXISTS preload_chunk CASCADE;"
           "CREATE SCHEMA preload_chunk;"
           "CREATE TABLE preload_chunk.parents (id int8 PRIMARY KEY, name "
           "text NOT NULL);"
           "CREATE TABLE preload_chunk.children (id int8 PRIMARY KEY, "
           "parent_id int8 NOT NULL, label text NOT NULL);"
           "INSERT INTO preload_chunk.parents SELECT g, 'p' || g FROM "
           "generate_series(1, %ld) g;"
           "INSERT INTO preload_chunk.children SELECT g, (g - 1) / %ld + 1, "
           "'child ' || g FROM generate_series(1, %ld) g;"
           "CREATE INDEX ON preload_chunk.children (parent_id, id);"
           "ANALYZE preload_chunk.parents; ANALYZE preload_chunk.children;",
           parents, per, parents * per);
  PGresult *res = PQexec(pg, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    fprintf(stderr, "preload_chunk: %s", PQerrorMessage(pg));
    return 1;
  }
  PQclear(res);
  uv_loop_t loop;
  uv_loop_init(&loop);
  orm_pool_t *pool;
  if (orm_pool_open(&pool, &loop,
                    &(orm_pool_config_t){.conninfo = conninfo,
                                         .max_conns = 1}) != 0)
    return 1;
  wait_t w = {0};
  orm_find_all_async(pool, pc_parent_model(), NULL, on_done, &w, NULL);
  run(&loop, &w);
  orm_rows_t *rows = w.rows;
  double ms[64];
  reps = reps > 64 ? 64 : reps;
  for (int r = -1; r < reps; r++) { /* one warm-up */
    wait_t p = {0};
    uint64_t t0 = uv_hrtime();
    if (orm_preload_async(pool, rows, "children", on_done, &p, NULL) != 0)
      return 1;
    run(&loop, &p);
    if (r >= 0)
      ms[r] = (double)(uv_hrtime() - t0) / 1e6;
  }
  pc_parent_t *last = orm_rows_at(rows, orm_rows_count(rows) - 1);
  pc_child_t *kids;
  size_t n;
  if (ORM_REL_MANY(last, children, &kids, &n) != 0 || (long)n != per) {
    fprintf(stderr, "preload_chunk: wrong children\n");
    return 1;
  }
  qsort(ms, (size_t)reps, sizeof ms[0], cmp);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("parents=%ld children=%ld median_ms=%.1f min_ms=%.1f "
         "max_rss_kb=%ld\n",
         parents, parents * per, ms[reps / 2], ms[0], ru.ru_maxrss);
  orm_rows_free(rows);
  orm_pool_close(pool, on_closed);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  res = PQexec(pg, "DROP SCHEMA preload_chunk CASCADE");
  PQclear(res);
  PQfinish(pg);
  return 0;
}
