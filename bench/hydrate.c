/* SPDX-License-Identifier: MIT */
/* bench_hydrate: what hydration costs per row.
 *
 * Loads N users (examples/domain/migrations/'s users table, in a schema of
 * its own, 10% NULL names) with one server-side INSERT ... SELECT, fetches
 * them once in binary, checks that both decoders below agree on every value,
 * then alternates R rounds of
 *   - a hand-written libpq loop: the same binary columns decoded into a plain
 *     struct array, strings into one bump-allocated block list; the same
 *     work as uvorm's, without its genericity, and
 *   - orm__hydrate() on the same PGresult,
 * each timed from the first decoded value to the last byte freed, by wall
 * clock and by this process's CPU (user and system apart). Decode only: the
 * fetch is not timed. Prints one line per round, the medians, and one BENCH
 * line.
 *
 * The heap: with glibc's defaults every run hands its ~8 MB back to the
 * kernel when it frees, and the next run faults it in again, about 2,000
 * page faults per run for either decoder. That kernel time is the same for
 * both and would dilute the ratio towards 1, so by default the bench keeps
 * freed memory in the heap (mallopt; glibc only), as a long-running process
 * that hydrates result after result mostly does. --cold-heap keeps glibc's
 * defaults to show the other regime. */
#include "harness.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <libpq-fe.h>

#include <uvorm.h>
#include <uvorm/model.h>

#include "model/hydrate.h"

#include "domain.h"

#define SCHEMA "bench_hydrate"

/* PostgreSQL's epoch (2000-01-01) in microseconds since the Unix epoch. */
#define PG_EPOCH_USECS INT64_C(946684800000000)

#if defined(__GNUC__)
#define BENCH_NOINLINE __attribute__((noinline))
#else
#define BENCH_NOINLINE
#endif

/* ---- the hand-written decoder ------------------------------------------- */

typedef struct raw_chunk_s {
  struct raw_chunk_s *next;
  size_t used, size;
  char data[];
} raw_chunk_t;

typedef struct {
  int64_t id;
  char *email;
  char *name;
  int64_t created_at;
  bool name_null, created_at_null;
} raw_user_t;

typedef struct {
  raw_user_t *rows;
  size_t count;
  raw_chunk_t *chunks; /* the strings of every row */
} raw_users_t;

static char *raw_copy(raw_chunk_t **chunks, const char *s, size_t len) {
  raw_chunk_t *c = *chunks;
  if (c == NULL || c->size - c->used < len + 1) {
    size_t size = len + 1 > (1 << 20) ? len + 1 : (1 << 20);
    c = malloc(sizeof *c + size);
    if (c == NULL)
      return NULL;
    c->next = *chunks, c->used = 0, c->size = size;
    *chunks = c;
  }
  char *out = c->data + c->used;
  memcpy(out, s, len);
  out[len] = '\0';
  c->used += len + 1;
  return out;
}

static uint64_t load64(const char *p) {
  const unsigned char *u = (const unsigned char *)p;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | u[i];
  return v;
}

static void hand_free(raw_users_t *out) {
  free(out->rows);
  while (out->chunks != NULL) {
    raw_chunk_t *next = out->chunks->next;
    free(out->chunks);
    out->chunks = next;
  }
}

/* What a careful hand-written loop does for the users' select list (id,
 * email, name, created_at). It trusts the column order and types, which the
 * caller checked once. Not inlined, so callgrind counts it apart. */
static BENCH_NOINLINE int hand_decode(raw_users_t *out, const PGresult *res) {
  int n = PQntuples(res);
  out->count = (size_t)n;
  out->chunks = NULL;
  out->rows = malloc((size_t)n * sizeof *out->rows + 1);
  if (out->rows == NULL)
    return -1;
  for (int r = 0; r < n; r++) {
    raw_user_t *u = &out->rows[r];
    u->id = (int64_t)load64(PQgetvalue(res, r, 0));
    u->email = raw_copy(&out->chunks, PQgetvalue(res, r, 1),
                        (size_t)PQgetlength(res, r, 1));
    u->name_null = PQgetisnull(res, r, 2);
    u->name = u->name_null ? NULL
                           : raw_copy(&out->chunks, PQgetvalue(res, r, 2),
                                      (size_t)PQgetlength(res, r, 2));
    u->created_at_null = PQgetisnull(res, r, 3);
    u->created_at = u->created_at_null
                        ? 0
                        : (int64_t)load64(PQgetvalue(res, r, 3)) +
                              PG_EPOCH_USECS;
    if (u->email == NULL || (!u->name_null && u->name == NULL)) {
      hand_free(out);
      return -1;
    }
  }
  return 0;
}

/* ---- one timed run ------------------------------------------------------- */

typedef struct {
  double wall_ms;
  double user_ms, sys_ms;
  long faults; /* minor page faults */
} sample_t;

typedef struct {
  uint64_t wall_ns;
  struct rusage ru;
} mark_t;

static double tv_ms(struct timeval tv) {
  return (double)tv.tv_sec * 1e3 + (double)tv.tv_usec / 1e3;
}

static mark_t mark(void) {
  mark_t m;
  getrusage(RUSAGE_SELF, &m.ru);
  m.wall_ns = bench_now_ns();
  return m;
}

static sample_t since(const mark_t *a) {
  uint64_t now = bench_now_ns();
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (sample_t){(double)(now - a->wall_ns) / 1e6,
                    tv_ms(ru.ru_utime) - tv_ms(a->ru.ru_utime),
                    tv_ms(ru.ru_stime) - tv_ms(a->ru.ru_stime),
                    ru.ru_minflt - a->ru.ru_minflt};
}

/* Read after every run and before the free, so no decoded value is dead. */
static volatile uint64_t sink;

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_hydrate: %s: %s\n", what, why);
  exit(1);
}

static sample_t time_hand(const PGresult *res) {
  mark_t t0 = mark();
  raw_users_t users;
  if (hand_decode(&users, res) != 0)
    die("hand-written decoder", "out of memory");
  const raw_user_t *last = &users.rows[users.count - 1];
  sink += (uint64_t)last->id + (unsigned char)last->email[0];
  hand_free(&users);
  return since(&t0);
}

static sample_t time_uvorm(const PGresult *res) {
  mark_t t0 = mark();
  orm_rows_t *rows;
  orm_model_error_t err;
  if (orm__hydrate(&rows, user_model(), res, &err) != 0)
    die("orm__hydrate", err.message);
  const user_t *last = orm_rows_at(rows, orm_rows_count(rows) - 1);
  sink += (uint64_t)last->id + (unsigned char)last->email[0];
  orm_rows_free(rows);
  return since(&t0);
}

/* ---- both decoders agree ------------------------------------------------- */

static void verify(const PGresult *res, size_t n) {
  raw_users_t hand;
  if (hand_decode(&hand, res) != 0)
    die("hand-written decoder", "out of memory");
  orm_rows_t *rows;
  orm_model_error_t err;
  if (orm__hydrate(&rows, user_model(), res, &err) != 0)
    die("orm__hydrate", err.message);
  if (hand.count != n || orm_rows_count(rows) != n)
    die("verify", "row counts differ");
  size_t null_names = 0;
  for (size_t i = 0; i < n; i++) {
    const raw_user_t *h = &hand.rows[i];
    const user_t *u = orm_rows_at(rows, i);
    bool u_name_null = ORM_IS_NULL(u, user, name);
    bool same = h->id == u->id && strcmp(h->email, u->email) == 0 &&
                h->name_null == u_name_null &&
                (h->name_null ? u->name == NULL
                              : u->name != NULL &&
                                    strcmp(h->name, u->name) == 0) &&
                !ORM_IS_NULL(u, user, id) && !ORM_IS_NULL(u, user, email) &&
                h->created_at_null == ORM_IS_NULL(u, user, created_at) &&
                h->created_at == u->created_at;
    if (!same) {
      fprintf(stderr,
              "bench_hydrate: row %zu differs: hand-written id=%" PRId64
              " email=%s name=%s created_at=%" PRId64 "; uvorm id=%" PRId64
              " email=%s name=%s created_at=%" PRId64 "\n",
              i, h->id, h->email, h->name_null ? "NULL" : h->name,
              h->created_at, u->id, u->email,
              u_name_null ? "NULL" : (u->name ? u->name : "(null)"),
              u->created_at);
      exit(1);
    }
    null_names += h->name_null;
  }
  if (null_names != n / 10)
    die("verify", "the share of NULL names is not 10%");
  orm_rows_free(rows);
  hand_free(&hand);
}

/* ---- setup --------------------------------------------------------------- */

static void exec_ok(PGconn *conn, const char *sql) {
  PGresult *res = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(res);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
    die(sql, PQerrorMessage(conn));
  PQclear(res);
}

/* The users table of examples/domain/migrations/, in a schema of our own. */
static void load(PGconn *conn, size_t n) {
  exec_ok(conn, "SET client_min_messages = 'warning'");
  exec_ok(conn, "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE");
  exec_ok(conn, "CREATE SCHEMA " SCHEMA);
  exec_ok(conn, "SET search_path = " SCHEMA);
  exec_ok(conn, "CREATE TABLE users ("
                "  id         bigserial PRIMARY KEY,"
                "  email      text NOT NULL UNIQUE,"
                "  name       text,"
                "  created_at timestamptz NOT NULL DEFAULT now()"
                ")");
  char sql[512];
  snprintf(sql, sizeof sql,
           "INSERT INTO users (email, name, created_at) "
           "SELECT 'user' || i || '@example.com', "
           "CASE WHEN i %% 10 = 0 THEN NULL ELSE 'Benchmark User ' || i END, "
           "timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second' "
           "FROM generate_series(1, %zu) AS i",
           n);
  exec_ok(conn, sql);
  exec_ok(conn, "ANALYZE users");
}

/* Every user, in binary, columns in the model's order. */
static PGresult *fetch(PGconn *conn, size_t n) {
  PGresult *res = PQexecParams(conn,
                               "SELECT \"id\", \"email\", \"name\", "
                               "\"created_at\" FROM \"users\" ORDER BY \"id\"",
                               0, NULL, NULL, NULL, NULL, 1);
  if (PQresultStatus(res) != PGRES_TUPLES_OK)
    die("fetch", PQerrorMessage(conn));
  if ((size_t)PQntuples(res) != n)
    die("fetch", "wrong number of rows");
  /* What the hand-written loop assumes without checking. */
  static const Oid types[] = {20, 25, 25, 1184}; /* int8 text text tstz */
  if (PQnfields(res) != 4)
    die("fetch", "wrong number of columns");
  for (int c = 0; c < 4; c++)
    if (PQftype(res, c) != types[c] || PQfformat(res, c) != 1)
      die("fetch", "unexpected column type or format");
  return res;
}

/* ---- figures ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- command line -------------------------------------------------------- */

typedef struct {
  const char *conninfo;
  size_t rows;
  int rounds;
  bool cold_heap;
} options_t;

static void usage(FILE *out) {
  fprintf(out,
          "usage: bench_hydrate [--conninfo=STR] [-n ROWS] [-r ROUNDS] "
          "[--cold-heap]\n"
          "  --conninfo STR  default $UVORM_TEST_DSN, then $DATABASE_URL\n"
          "  -n, --rows N    users to load and hydrate (default 100000)\n"
          "  -r, --rounds R  timed rounds of each decoder (default 11)\n"
          "  --cold-heap     keep glibc's malloc defaults: freed memory goes\n"
          "                  back to the kernel and each run faults it in\n");
}

/* "--name=V", "--name V", "-x V" or "-xV"; NULL when arg is another
 * option. */
static const char *value_of(const char *arg, const char *lng, char shrt,
                            int *i, int argc, char **argv) {
  size_t len = strlen(lng);
  const char *v = NULL;
  if (strncmp(arg, lng, len) == 0 && arg[len] == '=')
    v = arg + len + 1;
  else if (strcmp(arg, lng) == 0 || (shrt && arg[0] == '-' &&
                                     arg[1] == shrt && arg[2] == '\0'))
    v = *i + 1 < argc ? argv[++*i] : "";
  else if (shrt && arg[0] == '-' && arg[1] == shrt)
    v = arg + 2;
  return v;
}

static long positive(const char *v, const char *name) {
  char *end;
  long n = strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || n <= 0 || n > 100000000) {
    fprintf(stderr, "bench_hydrate: %s: not a positive number: \"%s\"\n",
            name, v);
    usage(stderr);
    exit(2);
  }
  return n;
}

static void parse(options_t *o, int argc, char **argv) {
  o->conninfo = getenv("UVORM_TEST_DSN");
  if (o->conninfo == NULL)
    o->conninfo = getenv("DATABASE_URL");
  if (o->conninfo == NULL)
    o->conninfo = "";
  o->rows = 100000;
  o->rounds = 11;
  o->cold_heap = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(a, "--cold-heap") == 0) {
      o->cold_heap = true;
    } else if ((v = value_of(a, "--conninfo", 0, &i, argc, argv)) != NULL) {
      o->conninfo = v;
    } else if ((v = value_of(a, "--rows", 'n', &i, argc, argv)) != NULL) {
      o->rows = (size_t)positive(v, "rows");
    } else if ((v = value_of(a, "--rounds", 'r', &i, argc, argv)) != NULL) {
      o->rounds = (int)positive(v, "rounds");
    } else {
      fprintf(stderr, "bench_hydrate: unknown option \"%s\"\n", a);
      usage(stderr);
      exit(2);
    }
  }
}

/* Keeps freed memory in the heap: no mmap'ed blocks, no trimming. */
static const char *keep_heap(void) {
#if defined(__GLIBC__)
  if (mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT32_MAX) == 1)
    return "warm (mallopt: no mmap, no trim)";
  return "malloc defaults (mallopt failed)";
#else
  return "malloc defaults (not glibc)";
#endif
}

/* The median of one figure over the rounds; sorts `scratch`. */
typedef enum { WALL, CPU, USER, SYS, FAULTS } figure_t;

static double median_of(const sample_t *s, size_t n, figure_t what,
                        double *scratch) {
  for (size_t i = 0; i < n; i++) {
    const sample_t *x = &s[i];
    scratch[i] = what == WALL   ? x->wall_ms
                 : what == CPU  ? x->user_ms + x->sys_ms
                 : what == USER ? x->user_ms
                 : what == SYS  ? x->sys_ms
                                : (double)x->faults;
  }
  return median(scratch, n);
}

static void print_medians(const char *name, const sample_t *s, size_t n,
                          double per100k, double *scratch) {
  double wall = median_of(s, n, WALL, scratch);
  printf("  %-12s %6.2f ms/100k rows wall (%5.1f ns/row), CPU %6.2f "
         "(user %5.2f, sys %5.2f), %4.0f page faults/run\n",
         name, wall * per100k, wall * 1e6 / 100000.0 * per100k,
         median_of(s, n, CPU, scratch) * per100k,
         median_of(s, n, USER, scratch) * per100k,
         median_of(s, n, SYS, scratch) * per100k,
         median_of(s, n, FAULTS, scratch));
}

int main(int argc, char **argv) {
  options_t o;
  parse(&o, argc, argv);
  const char *heap = o.cold_heap ? "cold (malloc defaults)" : keep_heap();

  PGconn *conn = PQconnectdb(o.conninfo);
  if (PQstatus(conn) != CONNECTION_OK)
    die("connect", PQerrorMessage(conn));
  uint64_t t0 = bench_now_ns();
  load(conn, o.rows);
  double load_ms = (double)(bench_now_ns() - t0) / 1e6;
  t0 = bench_now_ns();
  PGresult *res = fetch(conn, o.rows);
  double fetch_ms = (double)(bench_now_ns() - t0) / 1e6;
  printf("loaded %zu users in %.0f ms, fetched them in binary in %.0f ms; "
         "heap: %s\n",
         o.rows, load_ms, fetch_ms, heap);

  verify(res, o.rows);
  printf("both decoders agree on every id, email, name (%zu NULL) and "
         "created_at\n",
         o.rows / 10);

  /* One untimed run each: the first touches fresh pages. */
  (void)time_hand(res);
  (void)time_uvorm(res);

  size_t rounds = (size_t)o.rounds;
  sample_t *hand = calloc(rounds, sizeof *hand);
  sample_t *uvorm = calloc(rounds, sizeof *uvorm);
  double *ratios = calloc(rounds, sizeof *ratios);
  double *scratch = calloc(rounds, sizeof *scratch);
  if (!hand || !uvorm || !ratios || !scratch)
    die("calloc", "out of memory");
  double per100k = 100000.0 / (double)o.rows;
  printf("round   hand-written wall/user/sys ms      uvorm wall/user/sys ms"
         "  ratio (wall)\n");
  for (size_t i = 0; i < rounds; i++) {
    /* Who goes first alternates, so neither always inherits a warm cache
     * or a just-freed heap. */
    sample_t *h = &hand[i], *u = &uvorm[i];
    if (i % 2 == 0) {
      *h = time_hand(res);
      *u = time_uvorm(res);
    } else {
      *u = time_uvorm(res);
      *h = time_hand(res);
    }
    ratios[i] = u->wall_ms / h->wall_ms;
    printf("%5zu  %7.2f / %6.2f / %6.2f    %7.2f / %6.2f / %6.2f  %5.2f\n",
           i + 1, h->wall_ms, h->user_ms, h->sys_ms, u->wall_ms, u->user_ms,
           u->sys_ms, ratios[i]);
  }
  PQclear(res);
  exec_ok(conn, "DROP SCHEMA IF EXISTS " SCHEMA " CASCADE");
  PQfinish(conn);

  double hand_ms = median_of(hand, rounds, WALL, scratch);
  double uvorm_ms = median_of(uvorm, rounds, WALL, scratch);
  double hand_cpu = median_of(hand, rounds, CPU, scratch);
  double uvorm_cpu = median_of(uvorm, rounds, CPU, scratch);
  double ratio = uvorm_ms / hand_ms;
  printf("medians of %zu rounds of %zu rows, decode + free, heap %s:\n",
         rounds, o.rows, o.cold_heap ? "cold" : "warm");
  print_medians("hand-written", hand, rounds, per100k, scratch);
  print_medians("uvorm", uvorm, rounds, per100k, scratch);
  printf("  uvorm / hand-written: wall %.2fx (median of the per-round ratios "
         "%.2fx), CPU %.2fx; target <= 1.25x\n",
         ratio, median(ratios, rounds),
         hand_cpu > 0 ? uvorm_cpu / hand_cpu : 0.0);
  printf("  peak RSS %ld kB\n", bench_peak_rss_kb());
  printf("BENCH workload=hydrate rows=%zu hand_ms=%.2f uvorm_ms=%.2f "
         "ratio=%.2f\n",
         o.rows, hand_ms, uvorm_ms, ratio);
  free(hand), free(uvorm), free(ratios), free(scratch);
  return 0;
}
