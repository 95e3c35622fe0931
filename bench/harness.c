/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* ---- messages -------------------------------------------------------------- */

void bench_vwarn(const char *driver, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  size_t len = strlen(msg);
  while (len > 0 && msg[len - 1] == '\n')
    msg[--len] = '\0';
  fprintf(stderr, "bench_%s: %s\n", driver, msg);
}

void bench_warn(const char *driver, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bench_vwarn(driver, fmt, ap);
  va_end(ap);
}

/* ---- clock and process figures ------------------------------------------ */

uint64_t bench_now_ns(void) {
  return uv_hrtime();
}

uint64_t bench_cpu_us(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
         (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

long bench_peak_rss_kb(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return ru.ru_maxrss; /* kilobytes on Linux */
}

/* ---- latency histogram --------------------------------------------------- */

#define SUB_COUNT (1u << BENCH_HIST_SUB_BITS)

static unsigned msb64(uint64_t v) {
  return 63u - (unsigned)__builtin_clzll(v);
}

/* Bucket i < SUB_COUNT holds the value i. Above, a value v with top bit b
 * is shifted right by s = b - SUB_BITS, leaving SUB_BITS + 1 significant
 * bits in [SUB_COUNT, 2 * SUB_COUNT); index = s * SUB_COUNT + (v >> s)
 * lays the octaves out one after the other. */
static size_t bucket_of(uint64_t v) {
  if (v < SUB_COUNT)
    return (size_t)v;
  unsigned s = msb64(v) - BENCH_HIST_SUB_BITS;
  size_t i = (size_t)s * SUB_COUNT + (size_t)(v >> s);
  return i < BENCH_HIST_BUCKETS ? i : BENCH_HIST_BUCKETS - 1;
}

static uint64_t bucket_low(size_t i) {
  if (i < SUB_COUNT)
    return i;
  unsigned s = (unsigned)(i / SUB_COUNT) - 1;
  return (uint64_t)(i - (size_t)s * SUB_COUNT) << s;
}

static uint64_t bucket_mid(size_t i) {
  if (i < SUB_COUNT)
    return i;
  unsigned s = (unsigned)(i / SUB_COUNT) - 1;
  return bucket_low(i) + (((uint64_t)1 << s) >> 1);
}

void bench_hist_init(bench_hist_t *h) {
  memset(h, 0, sizeof(*h));
  h->min_ns = UINT64_MAX;
}

void bench_hist_record(bench_hist_t *h, uint64_t ns) {
  h->buckets[bucket_of(ns)]++;
  h->count++;
  h->sum_ns += (double)ns;
  if (ns < h->min_ns)
    h->min_ns = ns;
  if (ns > h->max_ns)
    h->max_ns = ns;
}

void bench_hist_merge(bench_hist_t *dst, const bench_hist_t *src) {
  for (size_t i = 0; i < BENCH_HIST_BUCKETS; i++)
    dst->buckets[i] += src->buckets[i];
  dst->count += src->count;
  dst->sum_ns += src->sum_ns;
  if (src->min_ns < dst->min_ns)
    dst->min_ns = src->min_ns;
  if (src->max_ns > dst->max_ns)
    dst->max_ns = src->max_ns;
}

uint64_t bench_hist_percentile(const bench_hist_t *h, double pct) {
  if (h->count == 0)
    return 0;
  if (pct > 100.0)
    pct = 100.0;
  /* The rank of the value asked for, counting from 1. */
  double exact = pct / 100.0 * (double)h->count;
  uint64_t rank = (uint64_t)exact;
  if ((double)rank < exact)
    rank++;
  if (rank < 1)
    rank = 1;
  uint64_t seen = 0;
  size_t i = 0;
  for (; i < BENCH_HIST_BUCKETS; i++) {
    seen += h->buckets[i];
    if (seen >= rank)
      break;
  }
  /* The last bucket also holds everything beyond the range. */
  if (i >= BENCH_HIST_BUCKETS - 1)
    return h->max_ns;
  uint64_t v = bucket_mid(i);
  if (v < h->min_ns)
    v = h->min_ns;
  if (v > h->max_ns)
    v = h->max_ns;
  return v;
}

double bench_hist_mean_ns(const bench_hist_t *h) {
  return h->count ? h->sum_ns / (double)h->count : 0.0;
}

/* ---- command line -------------------------------------------------------- */

/* Prints names as "a", "a or b", "a, b or c". */
static void print_names(FILE *out, const char *const *names, size_t count) {
  for (size_t i = 0; i < count; i++)
    fprintf(out, "%s%s", i == 0 ? "" : i + 1 == count ? " or " : ", ", names[i]);
}

/* Prints "--OPTION=NAME  a | b | c (default a)", wrapped to the usage's
 * columns. */
static void usage_choice(FILE *out, const char *option, const char *const *names,
                         size_t count) {
  enum { INDENT = 19, WIDTH = 79 };
  int col = fprintf(out, "  --%s=NAME", option);
  fprintf(out, "%*s", INDENT - col, "");
  col = INDENT + fprintf(out, "%s", names[0]);
  for (size_t i = 1; i < count; i++) {
    if (col + 3 + (int)strlen(names[i]) > WIDTH) {
      fprintf(out, " |\n%*s", INDENT, "");
      col = INDENT;
    } else {
      col += fprintf(out, " | ");
    }
    col += fprintf(out, "%s", names[i]);
  }
  fprintf(out, " (default %s)\n", names[0]);
}

static void usage(FILE *out, const char *prog, const bench_choices_t *choices) {
  fprintf(out,
          "usage: %s [options]  (see bench/README.md)\n"
          "  --conninfo=STR   libpq connection string (default: $UVORM_TEST_DSN,\n"
          "                   then $DATABASE_URL, then libpq's PG* defaults)\n",
          prog);
  usage_choice(out, "workload", choices->workloads, choices->nworkloads);
  usage_choice(out, "mode", choices->modes, choices->nmodes);
  fputs("  -P, --conns=N    connections (default 4)\n"
        "  -C, --inflight=N requests in flight in total (default 64)\n"
        "  --duration=S     measured seconds (default 10)\n"
        "  --warmup=S       warm-up seconds, not measured (default 2)\n"
        "  --csv=FILE       append the result as one CSV line to FILE\n"
        "  -h, --help       this text\n",
        out);
}

static int parse_int(const char *s, int lo, int *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > INT_MAX)
    return -1;
  *out = (int)v;
  return 0;
}

static int parse_seconds(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || end == s || *end || !(v >= 0.0) || v > 1e6)
    return -1;
  *out = v;
  return 0;
}

/* The index of name in names[0 .. count-1]; -1 after printing, e.g.,
 * "PROG: unknown mode 'x' (batch, sync or nopipe)" to stderr. */
static int choose(const char *prog, const char *what, const char *name,
                  const char *const *names, size_t count) {
  for (size_t i = 0; i < count; i++)
    if (strcmp(name, names[i]) == 0)
      return (int)i;
  fprintf(stderr, "%s: unknown %s '%s' (", prog, what, name);
  print_names(stderr, names, count);
  fputs(")\n", stderr);
  return -1;
}

enum opt_id { OPT_CONNINFO, OPT_WORKLOAD, OPT_MODE, OPT_CONNS, OPT_INFLIGHT,
              OPT_DURATION, OPT_WARMUP, OPT_CSV, OPT_HELP };

static const struct {
  const char *long_name;
  char short_name;
  enum opt_id id;
} option_table[] = {
  {"conninfo", 0, OPT_CONNINFO}, {"workload", 0, OPT_WORKLOAD},
  {"mode", 0, OPT_MODE},         {"conns", 'P', OPT_CONNS},
  {"inflight", 'C', OPT_INFLIGHT}, {"duration", 0, OPT_DURATION},
  {"warmup", 0, OPT_WARMUP},     {"csv", 0, OPT_CSV},
  {"help", 'h', OPT_HELP},
};

#define OPTION_COUNT (sizeof(option_table) / sizeof(option_table[0]))

static void set_defaults(bench_opts_t *opts, const bench_choices_t *choices) {
  const char *env;

  opts->conninfo = "";
  if ((env = getenv("UVORM_TEST_DSN")) != NULL && *env)
    opts->conninfo = env;
  else if ((env = getenv("DATABASE_URL")) != NULL && *env)
    opts->conninfo = env;
  opts->workload = choices->workloads[0];
  opts->mode = choices->modes[0];
  opts->conns = 4;
  opts->inflight = 64;
  opts->duration_s = 10.0;
  opts->warmup_s = 2.0;
  opts->csv_path = NULL;
}

/* The option_table index arg names (OPTION_COUNT for none), and its value
 * when the argument holds it ("--name=V", "-PV"). */
static size_t find_option(const char *arg, const char **value) {
  size_t k = OPTION_COUNT;
  *value = NULL;
  if (arg[0] == '-' && arg[1] == '-' && arg[2]) {
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    for (k = 0; k < OPTION_COUNT; k++)
      if (strlen(option_table[k].long_name) == len &&
          memcmp(option_table[k].long_name, name, len) == 0)
        break;
    if (eq)
      *value = eq + 1;
  } else if (arg[0] == '-' && arg[1] && arg[1] != '-') {
    for (k = 0; k < OPTION_COUNT; k++)
      if (option_table[k].short_name == arg[1])
        break;
    if (arg[2])
      *value = arg + 2;
  }
  return k;
}

/* Stores one option's value; nonzero when the value is bad. */
static int set_option(bench_opts_t *opts, enum opt_id id, const char *value) {
  switch (id) {
  case OPT_CONNINFO: opts->conninfo = value; return 0;
  case OPT_WORKLOAD: opts->workload = value; return 0;
  case OPT_MODE: opts->mode = value; return 0;
  case OPT_CONNS: return parse_int(value, 1, &opts->conns);
  case OPT_INFLIGHT: return parse_int(value, 1, &opts->inflight);
  case OPT_DURATION: return parse_seconds(value, &opts->duration_s);
  case OPT_WARMUP: return parse_seconds(value, &opts->warmup_s);
  case OPT_CSV: opts->csv_path = value; return 0;
  case OPT_HELP: return 0;
  }
  return 1;
}

/* Checks what the options say as a whole: the names, the duration. Fills
 * in the indexes and the label. */
static int check_opts(bench_opts_t *opts, const char *prog,
                      const bench_choices_t *choices) {
  opts->workload_id = choose(prog, "workload", opts->workload, choices->workloads,
                             choices->nworkloads);
  opts->mode_id = choose(prog, "mode", opts->mode, choices->modes, choices->nmodes);
  if (opts->workload_id < 0 || opts->mode_id < 0)
    return -1;
  if (opts->duration_s <= 0.0) {
    fprintf(stderr, "%s: --duration must be more than 0\n", prog);
    return -1;
  }
  snprintf(opts->label, sizeof opts->label, "%s/%s", opts->mode, opts->workload);
  return 0;
}

int bench_opts_parse(bench_opts_t *opts, int argc, char **argv,
                     const bench_choices_t *choices) {
  const char *prog = argc > 0 ? argv[0] : "bench";

  set_defaults(opts, choices);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value;
    size_t k = find_option(arg, &value);

    if (k == OPTION_COUNT) {
      usage(stderr, prog, choices);
      fprintf(stderr, "%s: unknown argument '%s'\n", prog, arg);
      return -1;
    }
    if (option_table[k].id == OPT_HELP) {
      usage(stdout, prog, choices);
      return 1;
    }
    if (value == NULL) {
      if (i + 1 >= argc) {
        usage(stderr, prog, choices);
        fprintf(stderr, "%s: '%s' needs a value\n", prog, arg);
        return -1;
      }
      value = argv[++i];
    }
    if (set_option(opts, option_table[k].id, value) != 0) {
      usage(stderr, prog, choices);
      fprintf(stderr, "%s: bad value '%s' for '%s'\n", prog, value, arg);
      return -1;
    }
  }
  return check_opts(opts, prog, choices);
}

void bench_opts_announce(const bench_opts_t *opts, const char *driver) {
  fprintf(stderr, "bench_%s: mode=%s P=%d C=%d, %.1f s warm-up + %.1f s measured\n",
          driver, opts->label, opts->conns, opts->inflight, opts->warmup_s,
          opts->duration_s);
}

/* ---- results ------------------------------------------------------------- */

void bench_result_print(const bench_result_t *r, FILE *out) {
  fprintf(out,
          "%s mode=%s P=%d C=%d: %.0f ops/s (%" PRIu64 " ops in %.2f s), "
          "%.2f us CPU/op, latency us p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f, "
          "peak RSS %ld kB, failures %" PRIu64 "\n",
          r->driver, r->mode, r->conns, r->inflight, r->ops_per_sec, r->ops,
          r->seconds, r->cpu_us_per_op, r->p50_us, r->p90_us, r->p99_us,
          r->p999_us, r->peak_rss_kb, r->failures);
}

void bench_result_print_csv_header(FILE *out) {
  fputs("driver,mode,conns,inflight,ops,seconds,ops_per_sec,cpu_us_per_op,"
        "p50_us,p90_us,p99_us,p999_us,peak_rss_kb,failures\n",
        out);
}

void bench_result_print_csv(const bench_result_t *r, FILE *out) {
  fprintf(out, "%s,%s,%d,%d,%" PRIu64 ",%.3f,%.1f,%.3f,%.1f,%.1f,%.1f,%.1f,%ld,%" PRIu64 "\n",
          r->driver, r->mode, r->conns, r->inflight, r->ops, r->seconds,
          r->ops_per_sec, r->cpu_us_per_op, r->p50_us, r->p90_us, r->p99_us,
          r->p999_us, r->peak_rss_kb, r->failures);
}

int bench_result_append_csv(const bench_result_t *r, const char *path) {
  FILE *f = fopen(path, "a");
  if (f == NULL)
    return -1;
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && st.st_size == 0)
    bench_result_print_csv_header(f);
  bench_result_print_csv(r, f);
  if (fclose(f) != 0)
    return -1;
  return 0;
}

/* ---- the run -------------------------------------------------------------- */

#define NS_PER_S 1000000000ull
/* The loop's clock (ms, cached per iteration) lags uv_hrtime(), so a timer
 * can fire a little before its deadline by uv_hrtime(); within this much, the
 * deadline counts as reached. */
#define DEADLINE_SLACK_NS 2000000ull

static void run_on_timer(uv_timer_t *timer);

int bench_run_init(bench_run_t *run, uv_loop_t *loop, const bench_opts_t *opts,
                   bench_done_cb done_cb) {
  memset(run, 0, sizeof(*run));
  bench_hist_init(&run->hist);
  run->loop = loop;
  run->done_cb = done_cb;
  run->warmup_ns = (uint64_t)(opts->warmup_s * (double)NS_PER_S);
  run->duration_ns = (uint64_t)(opts->duration_s * (double)NS_PER_S);
  run->phase = BENCH_IDLE;
  int rc = uv_timer_init(loop, &run->timer);
  if (rc == 0)
    run->timer.data = run;
  return rc;
}

int bench_run_open(bench_run_t *run, uv_loop_t *loop, const bench_opts_t *opts,
                   bench_done_cb done_cb, void *data, const char *driver) {
  int rc = uv_loop_init(loop);
  if (rc != 0) {
    bench_warn(driver, "uv_loop_init: %s", uv_strerror(rc));
    return -1;
  }
  rc = bench_run_init(run, loop, opts, done_cb);
  if (rc != 0) {
    bench_warn(driver, "%s", uv_strerror(rc));
    return -1;
  }
  run->data = data;
  return 0;
}

static void begin_phase(bench_run_t *run, bench_phase_t phase, uint64_t now) {
  run->phase = phase;
  run->phase_start_ns = now;
  run->phase_end_ns = now + (phase == BENCH_WARMUP ? run->warmup_ns : run->duration_ns);
  run->phase_ops = 0;
  run->tick_ns = now;
  run->tick_ops = 0;
  if (phase == BENCH_MEASURE) {
    bench_hist_init(&run->hist);
    run->ops = 0;
    run->measure_start_ns = now;
    run->cpu_start_us = bench_cpu_us();
  }
}

/* One timer, re-armed for whichever comes first: the next progress line or
 * the end of the phase. */
static void arm_timer(bench_run_t *run, uint64_t now) {
  uint64_t next = run->tick_ns + NS_PER_S;
  if (run->phase_end_ns < next)
    next = run->phase_end_ns;
  uint64_t delay_ms = next > now ? (next - now + 999999u) / 1000000u : 0;
  uv_timer_start(&run->timer, run_on_timer, delay_ms, 0);
}

static void print_progress(bench_run_t *run, uint64_t now) {
  double dt = (double)(now - run->tick_ns) / (double)NS_PER_S;
  double rate = dt > 0 ? (double)(run->phase_ops - run->tick_ops) / dt : 0.0;
  double in_phase = (double)(now - run->phase_start_ns) / (double)NS_PER_S;
  double avg = in_phase > 0 ? (double)run->phase_ops / in_phase : 0.0;
  fprintf(stderr, "bench: %-7s %5.1f s  %9.0f ops/s  (phase average %.0f)\n",
          run->phase == BENCH_WARMUP ? "warm-up" : "measure", in_phase, rate, avg);
  run->tick_ns = now;
  run->tick_ops = run->phase_ops;
}

static void close_timer(bench_run_t *run) {
  if (!run->timer_closing) {
    run->timer_closing = 1;
    uv_close((uv_handle_t *)&run->timer, NULL);
  }
}

static void finish(bench_run_t *run, uint64_t now) {
  if (run->phase == BENCH_MEASURE) {
    run->measure_end_ns = now;
    run->cpu_end_us = bench_cpu_us();
  }
  int had_finished = run->phase == BENCH_DONE;
  run->phase = BENCH_DONE;
  close_timer(run);
  if (!had_finished && run->done_cb)
    run->done_cb(run);
}

static void run_on_timer(uv_timer_t *timer) {
  bench_run_t *run = timer->data;
  uint64_t now = bench_now_ns();

  if (now + DEADLINE_SLACK_NS >= run->phase_end_ns) {
    if (run->phase == BENCH_WARMUP) {
      print_progress(run, now);
      begin_phase(run, BENCH_MEASURE, now);
    } else {
      print_progress(run, now);
      finish(run, now);
      return;
    }
  } else if (now + DEADLINE_SLACK_NS >= run->tick_ns + NS_PER_S) {
    print_progress(run, now);
  }
  arm_timer(run, now);
}

void bench_run_start(bench_run_t *run) {
  if (run->phase != BENCH_IDLE)
    return;
  uint64_t now = bench_now_ns();
  begin_phase(run, run->warmup_ns > 0 ? BENCH_WARMUP : BENCH_MEASURE, now);
  arm_timer(run, now);
}

void bench_run_fail(bench_run_t *run) {
  run->failures++;
}

void bench_run_wrong(bench_run_t *run, const char *driver, const char *fmt, ...) {
  bench_run_fail(run);
  if (run->failures > BENCH_WRONG_SHOWN)
    return;
  va_list ap;
  va_start(ap, fmt);
  bench_vwarn(driver, fmt, ap);
  va_end(ap);
}

void bench_run_stop(bench_run_t *run) {
  finish(run, bench_now_ns());
}

void bench_run_result(const bench_run_t *run, const bench_opts_t *opts,
                      const char *driver, bench_result_t *r) {
  memset(r, 0, sizeof(*r));
  r->driver = driver;
  r->mode = opts->label;
  r->conns = opts->conns;
  r->inflight = opts->inflight;
  r->ops = run->ops;
  r->failures = run->failures;
  if (run->measure_end_ns > run->measure_start_ns)
    r->seconds = (double)(run->measure_end_ns - run->measure_start_ns) / (double)NS_PER_S;
  if (r->seconds > 0)
    r->ops_per_sec = (double)r->ops / r->seconds;
  if (r->ops > 0 && run->cpu_end_us >= run->cpu_start_us)
    r->cpu_us_per_op = (double)(run->cpu_end_us - run->cpu_start_us) / (double)r->ops;
  r->p50_us = (double)bench_hist_percentile(&run->hist, 50.0) / 1000.0;
  r->p90_us = (double)bench_hist_percentile(&run->hist, 90.0) / 1000.0;
  r->p99_us = (double)bench_hist_percentile(&run->hist, 99.0) / 1000.0;
  r->p999_us = (double)bench_hist_percentile(&run->hist, 99.9) / 1000.0;
  r->peak_rss_kb = bench_peak_rss_kb();
}

/* ---- the end of a driver ---------------------------------------------------- */

int bench_loop_close(uv_loop_t *loop, const char *driver) {
  int rc = uv_loop_close(loop);
  if (rc == 0)
    return 0;
  bench_warn(driver, "uv_loop_close: %s (a handle was left open)", uv_strerror(rc));
  return -1;
}

int bench_report(const bench_run_t *run, const bench_opts_t *opts,
                 const char *driver, int failed) {
  bench_result_t result;
  bench_run_result(run, opts, driver, &result);
  if (!failed) {
    bench_result_print(&result, stdout);
    if (opts->csv_path && bench_result_append_csv(&result, opts->csv_path) != 0) {
      perror(opts->csv_path);
      failed = 1;
    }
  }
  if (!failed && result.ops == 0) {
    bench_warn(driver, "no query completed in the measured phase");
    failed = 1;
  }
  if (!failed && result.failures > 0)
    bench_warn(driver, "%" PRIu64 " wrong answers", result.failures);
  return failed || result.failures > 0 ? 1 : 0;
}
