/* SPDX-License-Identifier: MIT */
/* harness.h: what every bench driver shares.
 *
 * A driver parses its command line with bench_opts_parse(), which also picks
 * the workload and the mode from the driver's lists, and opens its libuv
 * loop and a bench_run_t on it with bench_run_open(). The run times a
 * warm-up and then a measured phase with one timer, prints progress to
 * stderr once a second, and calls the driver back when the measured phase is
 * over. The driver reports each completed operation with bench_run_record()
 * (and each wrong answer with bench_run_wrong()) and, when everything is
 * closed and uv_run() has returned, ends with bench_loop_close() and
 * bench_report(), or asks for the figures itself with bench_run_result().
 *
 * A driver has a short name ("raw", "uvorm"): the result line and the CSV's
 * driver column show it, and its messages on stderr start with
 * "bench_<name>: ".
 *
 * Everything here is single-threaded: call it from the loop's thread only.
 */
#ifndef UVORM_BENCH_HARNESS_H
#define UVORM_BENCH_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#if defined(__GNUC__)
#define BENCH_PRINTF(fmt_arg, first_arg) \
  __attribute__((format(printf, fmt_arg, first_arg)))
#else
#define BENCH_PRINTF(fmt_arg, first_arg)
#endif

/* ---- messages -------------------------------------------------------------- */

/* Prints "bench_<driver>: " and the formatted message to stderr, with exactly
 * one newline: newlines ending the message (libpq's messages end in one) are
 * dropped first. Messages are cut at 1 KB. */
void bench_warn(const char *driver, const char *fmt, ...) BENCH_PRINTF(2, 3);
void bench_vwarn(const char *driver, const char *fmt, va_list ap)
    BENCH_PRINTF(2, 0);

/* ---- clock and process figures ------------------------------------------ */

/* A monotonic clock in nanoseconds (uv_hrtime()). */
uint64_t bench_now_ns(void);

/* CPU time this process has used so far, user plus system, in microseconds
 * (getrusage(RUSAGE_SELF)). */
uint64_t bench_cpu_us(void);

/* The process's peak resident set size in kilobytes (ru_maxrss). */
long bench_peak_rss_kb(void);

/* ---- latency histogram --------------------------------------------------- */

/* Log-linear buckets: values below 128 ns are exact; above, each power of
 * two is split into 128 buckets, so a bucket is at most 1/128 (0.8%) of the
 * value it holds. Values are nanoseconds; the range ends at 2^34 ns (about
 * 17 s) and larger values are counted in the last bucket. 28 KB, no
 * allocation: embed it or put it on the stack. */
#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_MAX_BITS 34
#define BENCH_HIST_BUCKETS \
  ((BENCH_HIST_MAX_BITS - BENCH_HIST_SUB_BITS + 1) << BENCH_HIST_SUB_BITS)

typedef struct bench_hist_s {
  uint64_t count;
  uint64_t min_ns; /* exact; UINT64_MAX while empty */
  uint64_t max_ns; /* exact */
  double sum_ns;   /* for the mean */
  uint64_t buckets[BENCH_HIST_BUCKETS];
} bench_hist_t;

/* Empties the histogram. */
void bench_hist_init(bench_hist_t *h);

/* Counts one value, in nanoseconds. */
void bench_hist_record(bench_hist_t *h, uint64_t ns);

/* Adds every value counted in src to dst. */
void bench_hist_merge(bench_hist_t *dst, const bench_hist_t *src);

/* The value below which pct percent (0 < pct <= 100) of the values lie, in
 * nanoseconds, to within a bucket (the middle of the bucket is returned,
 * clamped to the exact minimum and maximum; the exact maximum for the last
 * bucket, which also holds values beyond the range). 0 when empty. */
uint64_t bench_hist_percentile(const bench_hist_t *h, double pct);

/* The mean in nanoseconds, 0 when empty. */
double bench_hist_mean_ns(const bench_hist_t *h);

/* ---- command line -------------------------------------------------------- */

/* The names of a driver's workloads and of its modes; the first of each
 * list is the default. */
typedef struct bench_choices_s {
  const char *const *workloads;
  size_t nworkloads;
  const char *const *modes;
  size_t nmodes;
} bench_choices_t;

/* The knobs every driver understands. bench_opts_parse() fills in defaults
 * first: conninfo from $UVORM_TEST_DSN, else $DATABASE_URL, else "" (libpq's
 * PG* defaults); the driver's first workload and mode; 4 connections; 64 in
 * flight; 10 s measured after 2 s of warm-up; no CSV file. Strings point
 * into argv, the environment or the driver's lists. */
typedef struct bench_opts_s {
  const char *conninfo; /* --conninfo=STR */
  const char *workload; /* --workload=NAME, one of the driver's */
  const char *mode;     /* --mode=NAME, one of the driver's */
  int workload_id;      /* the index of workload in the driver's list */
  int mode_id;          /* the index of mode in the driver's list */
  int conns;            /* -P N, --conns=N */
  int inflight;         /* -C N, --inflight=N: requests in flight in total */
  double duration_s;    /* --duration=S: the measured phase */
  double warmup_s;      /* --warmup=S: not measured */
  const char *csv_path; /* --csv FILE: append one line per run */
  /* "MODE/WORKLOAD", e.g. "batch/find": what the result line and the CSV's
   * mode column say. */
  char label[64];
} bench_opts_t;

/* Parses argv. Options take their value as "--name=V", "--name V", "-P V"
 * or "-PV". --workload and --mode must name one of choices' workloads and
 * modes; the usage text lists them. Returns 0 on success, 1 after printing
 * the usage to stdout for --help, -1 after printing the usage or the problem
 * to stderr. */
int bench_opts_parse(bench_opts_t *opts, int argc, char **argv,
                     const bench_choices_t *choices);

/* Prints what is about to run to stderr: "bench_<driver>: mode=MODE/WORKLOAD
 * P=N C=N, W s warm-up + D s measured". */
void bench_opts_announce(const bench_opts_t *opts, const char *driver);

/* ---- results ------------------------------------------------------------- */

typedef struct bench_result_s {
  const char *driver;   /* "raw", "uvorm", ... */
  const char *mode;
  int conns;
  int inflight;
  uint64_t ops;         /* completed in the measured phase */
  uint64_t failures;    /* wrong answers and failed operations, measured or not */
  double seconds;       /* length of the measured phase */
  double ops_per_sec;
  double cpu_us_per_op; /* this process's user+sys CPU in the measured phase */
  double p50_us, p90_us, p99_us, p999_us;
  long peak_rss_kb;
} bench_result_t;

/* One human-readable line, ending in a newline. */
void bench_result_print(const bench_result_t *r, FILE *out);

/* The CSV header line and one CSV line, each ending in a newline. */
void bench_result_print_csv_header(FILE *out);
void bench_result_print_csv(const bench_result_t *r, FILE *out);

/* Appends one CSV line to the file at path, writing the header first when
 * the file is new or empty. Returns 0, or -1 with errno set. */
int bench_result_append_csv(const bench_result_t *r, const char *path);

/* ---- the run: warm-up, measured phase, progress ---------------------------- */

typedef enum {
  BENCH_IDLE,    /* initialised, not started */
  BENCH_WARMUP,  /* operations are counted for progress only */
  BENCH_MEASURE, /* operations go into the histogram */
  BENCH_DONE     /* the measured phase is over; stop issuing work */
} bench_phase_t;

typedef struct bench_run_s bench_run_t;

/* Called once, from the loop, when the measured phase ends (or from
 * bench_run_stop()). The driver stops issuing work and closes its handles;
 * the harness has already closed its own timer. */
typedef void (*bench_done_cb)(bench_run_t *run);

struct bench_run_s {
  void *data; /* the driver's; the harness never touches it */

  /* Read-only for drivers. */
  bench_phase_t phase;
  uint64_t ops;      /* completed in the measured phase */
  uint64_t failures; /* bench_run_fail() calls */
  bench_hist_t hist; /* latencies of the measured phase */

  /* Private. */
  uv_loop_t *loop;
  uv_timer_t timer;
  bench_done_cb done_cb;
  uint64_t warmup_ns, duration_ns;
  uint64_t phase_start_ns, phase_end_ns;
  uint64_t measure_start_ns, measure_end_ns;
  uint64_t cpu_start_us, cpu_end_us;
  uint64_t phase_ops;      /* completed since the phase began */
  uint64_t tick_ns, tick_ops; /* at the last progress line */
  int timer_closing;
};

/* Initialises a run on loop; opens its timer handle. Returns 0 or a libuv
 * error code. */
int bench_run_init(bench_run_t *run, uv_loop_t *loop, const bench_opts_t *opts,
                   bench_done_cb done_cb);

/* Initialises loop, then a run on it as bench_run_init() does, with
 * run->data set to data. Returns 0, or -1 after printing the libuv error to
 * stderr. */
int bench_run_open(bench_run_t *run, uv_loop_t *loop, const bench_opts_t *opts,
                   bench_done_cb done_cb, void *data, const char *driver);

/* Starts the clock: the warm-up begins now (or, with no warm-up, the
 * measured phase). Call it when the driver is connected and about to issue
 * its first operation. */
void bench_run_start(bench_run_t *run);

/* Records one completed operation that took latency_ns (from when it was
 * issued to when its result was seen). Ignored unless the run is in its
 * warm-up or measured phase. */
static inline void bench_run_record(bench_run_t *run, uint64_t latency_ns) {
  if (run->phase == BENCH_MEASURE) {
    bench_hist_record(&run->hist, latency_ns);
    run->ops++;
  }
  run->phase_ops++;
}

/* Counts one failed or wrong operation; the run's exit status should then be
 * non-zero (see bench_result_t.failures). */
void bench_run_fail(bench_run_t *run);

/* Wrong answers bench_run_wrong() prints before it only counts them. */
#define BENCH_WRONG_SHOWN 5

/* Counts one wrong answer as bench_run_fail() does and, for the first
 * BENCH_WRONG_SHOWN failures only, prints the formatted message as
 * bench_warn() does. */
void bench_run_wrong(bench_run_t *run, const char *driver, const char *fmt, ...)
    BENCH_PRINTF(3, 4);

/* Ends the run early (for a fatal error): closes the timer and calls the
 * done callback if it has not been called. Safe to call more than once. */
void bench_run_stop(bench_run_t *run);

/* Nonzero while operations should be issued (warm-up or measured phase). */
static inline int bench_run_active(const bench_run_t *run) {
  return run->phase == BENCH_WARMUP || run->phase == BENCH_MEASURE;
}

/* Fills r with the figures of a finished run; driver, mode (opts->label),
 * conns and inflight come from opts and driver. Call after uv_run() has
 * returned. */
void bench_run_result(const bench_run_t *run, const bench_opts_t *opts,
                      const char *driver, bench_result_t *r);

/* ---- the end of a driver ---------------------------------------------------- */

/* Closes loop once uv_run() has returned. Returns 0, or -1 after printing to
 * stderr that a handle was left open. */
int bench_loop_close(uv_loop_t *loop, const char *driver);

/* Reports a finished run and returns the driver's exit status. Unless failed
 * is set (the driver has already said why), prints the result line to
 * stdout and appends it to opts->csv_path when one was given; a run in which
 * no operation completed in the measured phase, or whose CSV line could not
 * be written, fails. Wrong answers are counted on stderr. Returns 0, or 1 for
 * a failure or any wrong answer. */
int bench_report(const bench_run_t *run, const bench_opts_t *opts,
                 const char *driver, int failed);

#endif /* UVORM_BENCH_HARNESS_H */
