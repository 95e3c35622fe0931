#!/usr/bin/env bash
# compare.sh: uvorm against raw libpq and pgbench, side by side, in one command.
#
#   bench/compare.sh [-P N] [-C N] [-d SECONDS] [-w SECONDS] [-r REPS] [--unix]
#                    [--build-dir DIR] [--out DIR]
#
# Starts a throwaway PostgreSQL (scripts/pg-test-server) unless DATABASE_URL
# is set, builds bench_uvorm and bench_raw (Release), then runs, R times in
# turn: uvorm pipeline, raw batch, raw sync, uvorm nopipe, raw nopipe, and
# pgbench with the same statement. Prints the median of each figure per
# driver and mode, the ratios, and one line per workload starting "BENCH".
#
#   -P N          connections (default 4)
#   -C N          requests in flight in total (default 64); pgbench has one
#                 per connection, so it runs with C = P
#   -d SECONDS    measured phase of each run (default 5)
#   -w SECONDS    warm-up of each driver run (default 1; pgbench has none)
#   -r REPS       repetitions (default 3)
#   --unix        use the throwaway server's unix socket instead of TCP
#   --build-dir   where to build (default build-bench in the checkout)
#   --out DIR     keep the CSV and logs there (default a new /tmp directory)
#
# Needs bash, awk, sort, cmake, a C compiler, and pgbench (without it the
# pgbench column is skipped). No python.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
P=4 C=64 DURATION=5 WARMUP=1 REPS=3 UNIX=0
BUILD_DIR=$ROOT/build-bench
OUT=""

die() { echo "compare.sh: $*" >&2; exit 1; }
usage() { sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case $1 in
    -P|-C|-d|--duration|-w|--warmup|-r|--reps|--build-dir|--out)
      [ $# -ge 2 ] || die "'$1' needs a value" ;;&
    -P) P=$2; shift 2 ;;
    -C) C=$2; shift 2 ;;
    -d|--duration) DURATION=$2; shift 2 ;;
    -w|--warmup) WARMUP=$2; shift 2 ;;
    -r|--reps) REPS=$2; shift 2 ;;
    --unix) UNIX=1; shift ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "compare.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
  esac
done
for v in P C REPS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $DURATION =~ ^[0-9]+([.][0-9]+)?$ ]] || die "bad duration '$DURATION'"
[[ $WARMUP =~ ^[0-9]+([.][0-9]+)?$ ]] || die "bad warm-up '$WARMUP'"
if [ -n "${DATABASE_URL:-}" ] && [ "$UNIX" = 1 ]; then
  die "--unix needs the throwaway server; unset DATABASE_URL"
fi

if [ -z "$OUT" ]; then
  OUT=$(mktemp -d /tmp/uvorm-compare.XXXXXX)
else
  mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/results.csv
: >"$CSV"
mkdir -p "$OUT/logs"

# ---- the server ----------------------------------------------------------
STATE=""
cleanup() {
  if [ -n "$STATE" ]; then
    "$ROOT/scripts/pg-test-server" teardown "$STATE" >/dev/null 2>&1 || true
    rm -rf "$STATE"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${DATABASE_URL:-}" ]; then
  DSN=$DATABASE_URL
  TRANSPORT="as given by DATABASE_URL"
else
  STATE=$(mktemp -d /tmp/uvorm-bench-pg.XXXXXX)
  "$ROOT/scripts/pg-test-server" setup "$STATE" --watch $$ >&2
  # The env file holds more than `pg-test-server env` prints: the unix
  # socket's directory and the port as well.
  # shellcheck disable=SC1091
  . "$STATE/env"
  DSN_TCP=$UVORM_TEST_DSN SOCKDIR=$UVORM_TEST_SOCKDIR PORT=$UVORM_TEST_PORT
  if [ "$UNIX" = 1 ]; then
    if [ -z "$SOCKDIR" ] || [ -z "$PORT" ]; then die "no unix socket in $STATE/env"; fi
    DSN="host=$SOCKDIR port=$PORT dbname=uvorm user=uvorm"
    TRANSPORT="unix socket $SOCKDIR/.s.PGSQL.$PORT"
  else
    DSN=$DSN_TCP
    TRANSPORT="TCP 127.0.0.1:$PORT"
  fi
fi

# Runs a client: through pg-test-server's exec when the server is ours.
client() {
  if [ -n "$STATE" ]; then
    "$ROOT/scripts/pg-test-server" exec "$STATE" -- "$@"
  else
    "$@"
  fi
}

# ---- the build -----------------------------------------------------------
echo "compare.sh: building bench_uvorm and bench_raw (Release) in $BUILD_DIR" >&2
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DUVORM_BUILD_TESTS=OFF -DUVORM_BUILD_EXAMPLES=OFF >"$OUT/logs/cmake.log" 2>&1 ||
  { cat "$OUT/logs/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD_DIR" -j2 --target bench_uvorm bench_raw >>"$OUT/logs/cmake.log" 2>&1 ||
  { tail -n 40 "$OUT/logs/cmake.log" >&2; die "build failed"; }
BENCH_UVORM=$BUILD_DIR/bench/bench_uvorm
BENCH_RAW=$BUILD_DIR/bench/bench_raw

PGBENCH=$(command -v pgbench || true)
TIME_BIN=""
[ -x /usr/bin/time ] && /usr/bin/time -f '%U' true >/dev/null 2>&1 && TIME_BIN=/usr/bin/time
# pgbench -T takes whole seconds; -j cannot exceed -c.
PGB_SECONDS=$(awk -v d="$DURATION" 'BEGIN { s = int(d); if (s < d) s++; if (s < 1) s = 1; print s }')
PGB_THREADS=$((P < 2 ? P : 2))
printf '\\set v random(1, 1000000)\nSELECT :v::int4;\n' >"$OUT/select.sql"

# ---- the runs ------------------------------------------------------------
# Prints the last CSV line as a progress line.
show_last() {
  tail -n 1 "$CSV" | awk -F, -v tag="$1" \
    '{ printf "%-28s %9.0f ops/s  %6.2f us CPU/op  p50 %7.1f us  p99 %7.1f us\n", tag, $7, $8, $9, $11 }' >&2
}

ensure_header() {
  [ -s "$CSV" ] || echo "driver,mode,conns,inflight,ops,seconds,ops_per_sec,cpu_us_per_op,p50_us,p90_us,p99_us,p999_us,peak_rss_kb,failures" >"$CSV"
}

run_driver() { # rep bin mode
  local rep=$1 bin=$2 mode=$3 name log
  name=$(basename "$bin")
  log=$OUT/logs/$name-$mode-$rep.log
  if ! client "$bin" --conninfo "$DSN" --mode "$mode" -P "$P" -C "$C" \
      --duration "$DURATION" --warmup "$WARMUP" --csv "$CSV" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "$name --mode $mode failed (log: $log)"
  fi
  show_last "[$rep/$REPS] ${name#bench_} $mode"
}

run_pgbench() { # rep
  local rep=$1 log=$OUT/logs/pgbench-$1.log prefix=$OUT/logs/pgbench-txlog-$1 cpu rss u s
  rm -f "$prefix".*
  local cmd=("$PGBENCH" -n -M prepared -c "$P" -j "$PGB_THREADS" -T "$PGB_SECONDS"
             -f "$OUT/select.sql" -l --sampling-rate=0.05 --log-prefix="$prefix" "$DSN")
  if [ -n "$TIME_BIN" ]; then
    client "$TIME_BIN" -f '%U %S %M' -o "$log.time" "${cmd[@]}" >"$log" 2>&1 ||
      { tail -n 20 "$log" >&2; die "pgbench failed (log: $log)"; }
    read -r u s rss <"$log.time"
  else
    local TIMEFORMAT='%U %S'
    { time client "${cmd[@]}" >"$log" 2>&1; } 2>"$log.time" ||
      { tail -n 20 "$log" >&2; die "pgbench failed (log: $log)"; }
    read -r u s <"$log.time"
    rss=0
  fi
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
  # The sampled per-transaction log: the third field is the latency in us.
  cat "$prefix".[0-9]* | awk '{ print $3 }' | sort -n >"$prefix.sorted"
  awk -v cpu="$cpu" -v rss="$rss" -v P="$P" -v sorted="$prefix.sorted" '
    function pct(p,   i) { i = int(p / 100 * n + 0.999999); if (i < 1) i = 1; if (i > n) i = n; return lat[i] }
    /^number of transactions actually processed:/ { ops = $6 }
    /^number of failed transactions:/ { failed = $5 }
    /^duration:/ { secs = $2 }
    /^tps = / { tps = $3 }
    END {
      while ((getline v < sorted) > 0) lat[++n] = v
      if (ops == 0 || tps == 0) exit 1
      printf "pgbench,prepared,%d,%d,%d,%.3f,%.1f,%.3f,%.1f,%.1f,%.1f,%.1f,%d,%d\n",
        P, P, ops, secs, tps, cpu * 1e6 / ops, pct(50), pct(90), pct(99), pct(99.9), rss, failed + 0
    }' "$log" >>"$CSV" || die "could not read pgbench's output (log: $log)"
  rm -f "$prefix".*
  show_last "[$rep/$REPS] pgbench prepared (C=P)"
}

echo "compare.sh: P=$P C=$C, ${WARMUP} s warm-up + ${DURATION} s measured, $REPS reps, transport: $TRANSPORT" >&2
ensure_header
for rep in $(seq 1 "$REPS"); do
  run_driver "$rep" "$BENCH_UVORM" pipeline
  run_driver "$rep" "$BENCH_RAW" batch
  run_driver "$rep" "$BENCH_RAW" sync
  run_driver "$rep" "$BENCH_UVORM" nopipe
  run_driver "$rep" "$BENCH_RAW" nopipe
  if [ -n "$PGBENCH" ]; then
    run_pgbench "$rep"
  elif [ "$rep" = 1 ]; then
    echo "compare.sh: pgbench not found; skipping it" >&2
  fi
done

# The pool's own counters, summed over the runs.
POOL=$(cat "$OUT"/logs/bench_uvorm-*.log | awk '
  /^uvorm pool:/ { gsub(",", ""); errors += $6; resends += $8; cancels += $10 }
  END { printf "errors %d, resends %d, cancels %d", errors, resends, cancels }')

# ---- the summary ---------------------------------------------------------
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
echo
echo "uvorm vs raw libpq vs pgbench: SELECT \$1::int4, P=$P C=$C, ${DURATION} s measured after ${WARMUP} s warm-up, medians of $REPS runs"
echo "transport: $TRANSPORT; machine: $(nproc) CPUs${CPU_MODEL:+ ($CPU_MODEL)}, shared with the server; $(date +%F)"
echo "uvorm pool counters over all its runs: $POOL"
awk -F, -v P="$P" -v C="$C" '
  NR == 1 { next }
  {
    k = $1 "/" $2
    if (!(k in n)) n[k] = 0
    i = ++n[k]
    ops[k, i] = $7; cpu[k, i] = $8; p50[k, i] = $9; p99[k, i] = $11; rss[k, i] = $13
    fail[k] += $14; conns[k] = $3; infl[k] = $4
  }
  # The median of a[k, 1..m], by insertion sort (no asort in POSIX awk).
  function median(a, k, m,   i, j, v, s) {
    for (i = 1; i <= m; i++) {
      v = a[k, i] + 0
      for (j = i - 1; j >= 1 && s[j] > v; j--) s[j + 1] = s[j]
      s[j + 1] = v
    }
    return m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
  }
  function get(k) {
    if (!(k in n)) return 0
    M_ops[k] = median(ops, k, n[k]); M_cpu[k] = median(cpu, k, n[k])
    M_p50[k] = median(p50, k, n[k]); M_p99[k] = median(p99, k, n[k])
    M_rss[k] = median(rss, k, n[k])
    return 1
  }
  function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "NA" }
  function num(k, arr, fmt) { return (k in n) ? sprintf(fmt, arr[k]) : "NA" }
  function line(label, a, b) {
    if (!(a in n) || !(b in n)) return
    printf "  %-32s ops/s %5sx   CPU/op %5sx   p99 %5sx\n", label,
      ratio(M_ops[a], M_ops[b]), ratio(M_cpu[a], M_cpu[b]), ratio(M_p99[a], M_p99[b])
  }
  END {
    split("uvorm/pipeline raw/batch raw/sync uvorm/nopipe raw/nopipe pgbench/prepared", order, " ")
    printf "\n%-8s %-9s %3s %4s %4s %10s %10s %9s %9s %9s %5s\n",
      "driver", "mode", "P", "C", "runs", "ops/s", "CPU us/op", "p50 us", "p99 us", "RSS kB", "fail"
    for (o = 1; o <= 6; o++) {
      k = order[o]
      if (!get(k)) continue
      split(k, dm, "/")
      printf "%-8s %-9s %3d %4d %4d %10.0f %10.2f %9.1f %9.1f %9s %5d\n", dm[1], dm[2],
        conns[k], infl[k], n[k], M_ops[k], M_cpu[k], M_p50[k], M_p99[k],
        (M_rss[k] > 0 ? sprintf("%d", M_rss[k]) : "-"), fail[k]
    }
    if ("pgbench/prepared" in n)
      print "(pgbench: one query in flight per connection, so C = P; text parameters and results)"
    printf "\nratios of medians (above 1 for ops/s is faster; below 1 for CPU/op and p99 is better):\n"
    line("uvorm pipeline / raw batch", "uvorm/pipeline", "raw/batch")
    line("uvorm pipeline / raw sync", "uvorm/pipeline", "raw/sync")
    line("uvorm pipeline / pgbench", "uvorm/pipeline", "pgbench/prepared")
    line("uvorm nopipe / raw nopipe", "uvorm/nopipe", "raw/nopipe")
    u = "uvorm/pipeline"; r = "raw/sync"; b = "raw/batch"; g = "pgbench/prepared"
    printf "\nBENCH workload=select P=%d C=%d uvorm_ops=%s raw_ops=%s rawbatch_ops=%s pgbench_ops=%s ratio_raw=%s ratio_rawbatch=%s ratio_pgbench=%s uvorm_cpu_us=%s raw_cpu_us=%s rawbatch_cpu_us=%s p99_us=%s\n",
      P, C, num(u, M_ops, "%.0f"), num(r, M_ops, "%.0f"), num(b, M_ops, "%.0f"), num(g, M_ops, "%.0f"),
      ratio(M_ops[u], M_ops[r]), ratio(M_ops[u], M_ops[b]), (g in n) ? ratio(M_ops[u], M_ops[g]) : "NA",
      num(u, M_cpu, "%.2f"), num(r, M_cpu, "%.2f"), num(b, M_cpu, "%.2f"), num(u, M_p99, "%.1f")
  }' "$CSV"
echo
echo "per-run CSV: $CSV (logs in $OUT/logs)"
