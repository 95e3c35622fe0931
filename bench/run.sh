#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# run.sh: the whole bench in one command: server, build, data, runs, table.
#
#   bench/run.sh [--long] [-P N] [-C N] [-d SECONDS] [-w SECONDS] [-r REPS]
#                [--workloads a,b,c] [--nopipe] [--unix] [--build-dir DIR]
#                [--out DIR]
#
# Starts a throwaway PostgreSQL (scripts/pg-test-server) unless DATABASE_URL
# is set, builds bench_load, bench_workloads and bench_raw_workloads
# (Release), loads the tables with bench_load (it drops and re-creates the
# schema bench, also on a DATABASE_URL server), then for each workload runs
# R times in turn: uvorm (pipeline), raw libpq sync, raw libpq batch and
# pgbench (bench/pgbench/W.sql, where there is one). Prints the medians per
# workload and driver, and one line per workload starting "BENCH".
#
#   (quick profile, the default: 1 s measured after 0.5 s warm-up, 3 reps)
#   --long        5 s measured after 1 s warm-up, 3 reps, and a sweep of
#                 C = 1, 8, 64, 256 for find and queries (uvorm and raw
#                 batch): sweep.csv, and sweep.png when gnuplot is installed
#   -P N          connections (default 4)
#   -C N          requests in flight in total (default 64; bulk always runs
#                 with C=2; pgbench has one per connection, so C = P)
#   -d SECONDS    measured phase of each run (pgbench: rounded up)
#   -w SECONDS    warm-up of each driver run (pgbench has none)
#   -r REPS       repetitions (at least 1; 3 or more for useful medians)
#   --workloads   comma-separated subset of: select find queries fortunes
#                 update update-tx update-many bulk insert tx relations
#                 relations-1k (default all, in that order; relations brings
#                 relations-1k, its 1+K-round-trip variant, along, and update
#                 brings update-many, its one-statement variant)
#   --nopipe      also run uvorm and raw libpq without pipeline mode (--mode
#                 nopipe: one statement in flight per connection); their rows
#                 and ratios are printed, the BENCH lines do not change
#   --unix        use the throwaway server's unix socket instead of TCP
#   --build-dir   where to build (default build-bench in the checkout)
#   --out DIR     keep the CSVs and logs there, replacing an earlier run's
#                 (default a new /tmp directory)
#
# Needs bash, awk, sort, cmake, a C compiler, pgbench and psql (without them
# the pgbench column is NA), gnuplot only for the chart. No python.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# bulk before insert: insert runs leave `users` with dead tuples (millions in
# the long profile) that change what a bulk scan costs.
ALL_WORKLOADS="select find queries fortunes update update-tx update-many bulk insert tx relations relations-1k"
# Workloads only bench_workloads has (no raw libpq or pgbench runs).
UVORM_ONLY="update-tx update-many relations-1k"
# A uvorm-only variant and the workload whose other drivers it is compared
# with: relations-1k loads what relations loads, in 1+K round trips;
# update-many writes what update writes, in one statement. The variant runs
# whenever its base does.
COMPANIONS="relations-1k:relations update-many:update"
SWEEP_CS="1 8 64 256"
SWEEP_WORKLOADS="find queries"
BULK_C=2                       # one bulk op moves 100 000 rows
P=4 C=64 DURATION="" WARMUP="" REPS="" UNIX=0 LONG=0 NOPIPE=0 WORKLOADS=""
BUILD_DIR=$ROOT/build-bench
OUT=""

die() { echo "run.sh: $*" >&2; exit 1; }
note() { echo "run.sh: $*" >&2; }
usage() { sed -n '3,41s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case $1 in
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}"; continue ;;
  esac
  case $1 in
    -P|-C|-d|--duration|-w|--warmup|-r|--reps|--workloads|--build-dir|--out)
      [ $# -ge 2 ] || die "'$1' needs a value" ;;&
    -P) P=$2; shift 2 ;;
    -C) C=$2; shift 2 ;;
    -d|--duration) DURATION=$2; shift 2 ;;
    -w|--warmup) WARMUP=$2; shift 2 ;;
    -r|--reps) REPS=$2; shift 2 ;;
    --workloads) WORKLOADS=${2//,/ }; shift 2 ;;
    --long) LONG=1; shift ;;
    --nopipe) NOPIPE=1; shift ;;
    --unix) UNIX=1; shift ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) usage 0 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
  esac
done

# The profiles: explicit -d/-w/-r win over them.
if [ "$LONG" = 1 ]; then
  PROFILE=long;  : "${DURATION:=5}" "${WARMUP:=1}" "${REPS:=3}"
else
  PROFILE=quick; : "${DURATION:=1}" "${WARMUP:=0.5}" "${REPS:=3}"
fi
for v in P C REPS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done
[[ $DURATION =~ ^[0-9]+([.][0-9]+)?$ ]] || die "bad duration '$DURATION'"
[[ $WARMUP =~ ^[0-9]+([.][0-9]+)?$ ]] || die "bad warm-up '$WARMUP'"
if [ -z "$WORKLOADS" ]; then
  WORKLOADS=$ALL_WORKLOADS
else
  # Validate, drop repeats, and keep the canonical order.
  sel=""
  for w in $WORKLOADS; do
    [[ " $ALL_WORKLOADS " == *" $w "* ]] || die "unknown workload '$w' (one of: $ALL_WORKLOADS)"
  done
  for pair in $COMPANIONS; do
    [[ " $WORKLOADS " == *" ${pair#*:} "* ]] && WORKLOADS="$WORKLOADS ${pair%%:*}"
  done
  for w in $ALL_WORKLOADS; do
    [[ " $WORKLOADS " == *" $w "* ]] && sel="$sel $w"
  done
  WORKLOADS=${sel# }
fi
if [ -n "${DATABASE_URL:-}" ] && [ "$UNIX" = 1 ]; then
  die "--unix needs the throwaway server; unset DATABASE_URL"
fi

if [ -z "$OUT" ]; then
  OUT=$(mktemp -d /tmp/uvorm-bench.XXXXXX)
else
  mkdir -p "$OUT"
fi
OUT=$(cd "$OUT" && pwd)
CSV=$OUT/results.csv
SWEEP_CSV=$OUT/sweep-runs.csv
# An earlier run's results in the same directory are replaced.
rm -rf "$CSV" "$SWEEP_CSV" "$OUT/medians.csv" "$OUT/sweep.csv" "$OUT/sweep.png" "$OUT/sweep.gp" \
  "$OUT/sweep-data" "$OUT/logs"
mkdir -p "$OUT/logs"
START=$SECONDS

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
  note "using DATABASE_URL's server (bench_load drops and re-creates its schema bench)"
else
  note "starting a throwaway server"
  STATE=$(mktemp -d /tmp/uvorm-bench-pg.XXXXXX)
  "$ROOT/scripts/pg-test-server" setup "$STATE" --watch $$ >"$OUT/logs/server.log" 2>&1 ||
    { tail -n 20 "$OUT/logs/server.log" >&2; die "could not start the server"; }
  # The env file holds the unix socket's directory and the port as well.
  # shellcheck disable=SC1091
  . "$STATE/env"
  if [ "$UNIX" = 1 ]; then
    if [ -z "$UVORM_TEST_SOCKDIR" ] || [ -z "$UVORM_TEST_PORT" ]; then die "no unix socket in $STATE/env"; fi
    DSN="host=$UVORM_TEST_SOCKDIR port=$UVORM_TEST_PORT dbname=uvorm user=uvorm"
    TRANSPORT="unix socket $UVORM_TEST_SOCKDIR/.s.PGSQL.$UVORM_TEST_PORT"
  else
    DSN=$UVORM_TEST_DSN
    TRANSPORT="TCP 127.0.0.1:$UVORM_TEST_PORT"
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
note "building bench_load bench_workloads bench_raw_workloads (Release) in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DUVORM_BUILD_TESTS=OFF -DUVORM_BUILD_EXAMPLES=OFF >"$OUT/logs/cmake.log" 2>&1 ||
  { tail -n 40 "$OUT/logs/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD_DIR" -j2 --target bench_load bench_workloads bench_raw_workloads \
  >>"$OUT/logs/cmake.log" 2>&1 ||
  { tail -n 40 "$OUT/logs/cmake.log" >&2; die "build failed"; }
BENCH_LOAD=$BUILD_DIR/bench/bench_load
BENCH_UVORM=$BUILD_DIR/bench/bench_workloads
BENCH_RAW=$BUILD_DIR/bench/bench_raw_workloads

# ---- the data ------------------------------------------------------------
note "loading the data (bench_load)"
client "$BENCH_LOAD" --conninfo "$DSN" >"$OUT/logs/bench_load.log" 2>&1 ||
  { tail -n 20 "$OUT/logs/bench_load.log" >&2; die "bench_load failed (log: $OUT/logs/bench_load.log)"; }
sed 's/^/  /' "$OUT/logs/bench_load.log" >&2

# ---- pgbench -------------------------------------------------------------
PGBENCH=$(command -v pgbench || true)
PSQL=$(command -v psql || true)
[ -n "$PGBENCH" ] || note "pgbench not found: its column is NA"
TIME_BIN=""
[ -x /usr/bin/time ] && /usr/bin/time -f '%U' true >/dev/null 2>&1 && TIME_BIN=/usr/bin/time
# pgbench -T takes whole seconds; -j cannot exceed -c.
PGB_SECONDS=$(awk -v d="$DURATION" 'BEGIN { s = int(d); if (s < d) s++; if (s < 1) s = 1; print s }')
PGB_THREADS=$((P < 2 ? P : 2))

# Whether pgbench runs workload $1.
has_pgbench() {
  [ -n "$PGBENCH" ] && [ -f "$ROOT/bench/pgbench/$1.sql" ] || return 1
  # Its insert rows must be deleted afterwards, with psql.
  [ "$1" != insert ] || [ -n "$PSQL" ]
}

# The share of transactions pgbench logs for its latencies: enough samples,
# without turning pgbench into a log writer at 100k transactions per second.
pgb_sampling() {
  case $1 in
    select|find) echo 0.05 ;;
    insert) echo 0.2 ;;
    *) echo 1 ;;
  esac
}

# ---- the runs ------------------------------------------------------------
HEADER="driver,mode,conns,inflight,ops,seconds,ops_per_sec,cpu_us_per_op,p50_us,p90_us,p99_us,p999_us,peak_rss_kb,failures"
RUN_NO=0 RUNS_TOTAL=0

workload_c() { if [ "$1" = bulk ]; then echo "$BULK_C"; else echo "$C"; fi; }
uvorm_only() { [[ " $UVORM_ONLY " == *" $1 "* ]]; }

# Prints the last line of CSV $1 as one progress line, and stops on failures.
show_last() { # csv tag log
  local line
  line=$(tail -n 1 "$1")
  RUN_NO=$((RUN_NO + 1))
  printf '[%3d/%d %3ds] ' "$RUN_NO" "$RUNS_TOTAL" "$((SECONDS - START))" >&2
  echo "$line" | awk -F, -v tag="$2" '{
    printf "%-34s %10.0f ops/s %9.2f us CPU/op  p50 %9.1f  p99 %9.1f us  RSS %6d kB\n",
      tag, $7, $8, $9, $11, $13 }' >&2
  if ! echo "$line" | awk -F, '{ exit ($14 + 0 != 0) }'; then
    tail -n 20 "$3" >&2
    die "failures in this run (log: $3)"
  fi
}

run_driver() { # csv rep bin mode workload C
  local csv=$1 rep=$2 bin=$3 mode=$4 w=$5 c=$6 name log before after
  name=$(basename "$bin")
  log=$OUT/logs/$name-$w-$mode-C$c-$rep.log
  [ -f "$csv" ] || echo "$HEADER" >"$csv"
  before=$(wc -l <"$csv")
  if ! client "$bin" --conninfo "$DSN" --workload "$w" --mode "$mode" -P "$P" -C "$c" \
      --duration "$DURATION" --warmup "$WARMUP" --csv "$csv" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "$name --workload $w --mode $mode -C $c failed (log: $log)"
  fi
  after=$(wc -l <"$csv")
  [ "$after" -eq $((before + 1)) ] || { tail -n 20 "$log" >&2; die "$name wrote no CSV line (log: $log)"; }
  local who=uvorm
  [ "$name" = bench_raw_workloads ] && who=raw
  show_last "$csv" "$w $rep/$REPS $who $mode C=$c" "$log"
}

run_pgbench() { # rep workload
  local rep=$1 w=$2 log prefix cpu rss u s
  log=$OUT/logs/pgbench-$w-$rep.log
  prefix=$OUT/logs/pgbench-txlog-$w-$rep
  rm -f "$prefix".*
  local cmd=("$PGBENCH" -n -M prepared -c "$P" -j "$PGB_THREADS" -T "$PGB_SECONDS"
             -f "$ROOT/bench/pgbench/$w.sql" -l --sampling-rate="$(pgb_sampling "$w")"
             --log-prefix="$prefix" "$DSN")
  if [ -n "$TIME_BIN" ]; then
    client "$TIME_BIN" -f '%U %S %M' -o "$log.time" "${cmd[@]}" >"$log" 2>&1 ||
      { tail -n 20 "$log" >&2; die "pgbench $w failed (log: $log)"; }
    read -r u s rss <"$log.time"
  else
    local TIMEFORMAT='%U %S'
    { time client "${cmd[@]}" >"$log" 2>&1; } 2>"$log.time" ||
      { tail -n 20 "$log" >&2; die "pgbench $w failed (log: $log)"; }
    read -r u s <"$log.time"
    rss=0
  fi
  if [ "$w" = insert ]; then
    client "$PSQL" -X -v ON_ERROR_STOP=1 -d "$DSN" \
      -c "DELETE FROM bench.users WHERE email LIKE '%@pgbench.bench'" >>"$log" 2>&1 ||
      { tail -n 20 "$log" >&2; die "could not delete pgbench's users (log: $log)"; }
  fi
  cpu=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
  # The sampled per-transaction log: the third field is the latency in us.
  cat "$prefix".[0-9]* 2>/dev/null | awk '{ print $3 }' | sort -n >"$prefix.sorted"
  [ -f "$CSV" ] || echo "$HEADER" >"$CSV"
  awk -v cpu="$cpu" -v rss="$rss" -v P="$P" -v w="$w" -v sorted="$prefix.sorted" '
    function pct(p,   i) {
      if (n == 0) return 0
      i = int(p / 100 * n + 0.999999); if (i < 1) i = 1; if (i > n) i = n; return lat[i]
    }
    /^number of transactions actually processed:/ { ops = $6 }
    /^number of failed transactions:/ { failed = $5 }
    /^duration:/ { secs = $2 }
    /^tps = / { tps = $3 }
    END {
      while ((getline v < sorted) > 0) lat[++n] = v
      if (ops == 0 || tps == 0) exit 1
      printf "pgbench,prepared/%s,%d,%d,%d,%.3f,%.1f,%.3f,%.1f,%.1f,%.1f,%.1f,%d,%d\n",
        w, P, P, ops, secs, tps, cpu * 1e6 / ops, pct(50), pct(90), pct(99), pct(99.9), rss, failed + 0
    }' "$log" >>"$CSV" || { tail -n 20 "$log" >&2; die "could not read pgbench's output (log: $log)"; }
  rm -f "$prefix".*
  show_last "$CSV" "$w $rep/$REPS pgbench prepared C=$P" "$log"
}

# How many runs there will be, for the progress lines.
for w in $WORKLOADS; do
  per=1
  uvorm_only "$w" || per=3
  has_pgbench "$w" && per=$((per + 1))
  if [ "$NOPIPE" = 1 ]; then
    per=$((per + 1))
    uvorm_only "$w" || per=$((per + 1))
  fi
  RUNS_TOTAL=$((RUNS_TOTAL + per * REPS))
done
SWEEP_SEL=""
if [ "$LONG" = 1 ]; then
  for w in $SWEEP_WORKLOADS; do
    [[ " $WORKLOADS " == *" $w "* ]] && SWEEP_SEL="$SWEEP_SEL $w"
  done
  SWEEP_SEL=${SWEEP_SEL# }
  for w in $SWEEP_SEL; do
    for c in $SWEEP_CS; do RUNS_TOTAL=$((RUNS_TOTAL + 2 * REPS)); done
  done
fi

note "$PROFILE profile: P=$P C=$C (bulk C=$BULK_C), ${WARMUP} s warm-up + ${DURATION} s measured" \
  "(pgbench ${PGB_SECONDS} s), $REPS reps, transport: $TRANSPORT; $RUNS_TOTAL runs"
note "workloads: $WORKLOADS; output in $OUT"
for w in $WORKLOADS; do
  c=$(workload_c "$w")
  for rep in $(seq 1 "$REPS"); do
    run_driver "$CSV" "$rep" "$BENCH_UVORM" pipeline "$w" "$c"
    if [ "$NOPIPE" = 1 ]; then run_driver "$CSV" "$rep" "$BENCH_UVORM" nopipe "$w" "$c"; fi
    uvorm_only "$w" && continue             # no raw libpq or pgbench runs
    run_driver "$CSV" "$rep" "$BENCH_RAW" sync "$w" "$c"
    run_driver "$CSV" "$rep" "$BENCH_RAW" batch "$w" "$c"
    if [ "$NOPIPE" = 1 ]; then run_driver "$CSV" "$rep" "$BENCH_RAW" nopipe "$w" "$c"; fi
    if has_pgbench "$w"; then run_pgbench "$rep" "$w"; fi
  done
done

if [ -n "$SWEEP_SEL" ]; then
  note "sweep of C = $SWEEP_CS for: $SWEEP_SEL (uvorm pipeline, raw batch)"
  for w in $SWEEP_SEL; do
    for c in $SWEEP_CS; do
      for rep in $(seq 1 "$REPS"); do
        run_driver "$SWEEP_CSV" "$rep" "$BENCH_UVORM" pipeline "$w" "$c"
        run_driver "$SWEEP_CSV" "$rep" "$BENCH_RAW" batch "$w" "$c"
      done
    done
  done
fi

# ---- the summary ---------------------------------------------------------
# The median of a[k, 1..m], by insertion sort (no asort in POSIX awk); shared
# by the summaries below.
# shellcheck disable=SC2016
AWK_MEDIAN='
  function median(a, k, m,   i, j, v, s) {
    for (i = 1; i <= m; i++) {
      v = a[k, i] + 0
      for (j = i - 1; j >= 1 && s[j] > v; j--) s[j + 1] = s[j]
      s[j + 1] = v
    }
    return m % 2 ? s[(m + 1) / 2] : (s[m / 2] + s[m / 2 + 1]) / 2
  }
  # Collects one CSV row (the drivers columns) under key k = workload SUBSEP label.
  function collect(   mw, k, i) {
    split($2, mw, "/")
    k = mw[2] SUBSEP $1 " " mw[1]
    if (!(k in n)) n[k] = 0
    i = ++n[k]
    ops[k, i] = $7; cpu[k, i] = $8; p50[k, i] = $9; p90[k, i] = $10
    p99[k, i] = $11; p999[k, i] = $12; rss[k, i] = $13
    fail[k] += $14; conns[k] = $3; infl[k] = $4
    return k
  }
  function medians(k) {
    M_ops[k] = median(ops, k, n[k]); M_cpu[k] = median(cpu, k, n[k])
    M_p50[k] = median(p50, k, n[k]); M_p90[k] = median(p90, k, n[k])
    M_p99[k] = median(p99, k, n[k]); M_p999[k] = median(p999, k, n[k])
    M_rss[k] = median(rss, k, n[k])
  }
'

# Pool counters of uvorm's runs, summed.
POOL=$(cat "$OUT"/logs/bench_workloads-*.log 2>/dev/null | awk '
  /^uvorm pool:/ { gsub(",", ""); errors += $6; resends += $8; cancels += $10 }
  END { printf "errors %d, resends %d, cancels %d", errors, resends, cancels }')
CPU_MODEL=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
PG_VERSION=$(client "${PSQL:-psql}" -X -At -d "$DSN" -c 'SHOW server_version' 2>/dev/null | awk '{ print $1 }' || true)

echo
echo "uvorm vs raw libpq (sync, batch) vs pgbench: $PROFILE profile, P=$P C=$C (bulk C=$BULK_C, pgbench C=P)," \
  "${DURATION} s measured after ${WARMUP} s warm-up (pgbench ${PGB_SECONDS} s, no warm-up), medians of $REPS runs"
echo "transport: $TRANSPORT; server: PostgreSQL ${PG_VERSION:-?}; machine: $(nproc) CPUs${CPU_MODEL:+ ($CPU_MODEL)}," \
  "shared with the server; $(date +%F)"
echo "uvorm pool counters over all its runs: $POOL"
awk -F, -v P="$P" -v workloads="$WORKLOADS" -v companions="$COMPANIONS" \
  -v medcsv="$OUT/medians.csv" "$AWK_MEDIAN"'
  NR == 1 { next }
  { collect() }
  function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "NA" }
  function num(k, arr, fmt) { return (k in n) ? sprintf(fmt, arr[k]) : "NA" }
  END {
    nl = split("uvorm pipeline,raw sync,raw batch,pgbench prepared,uvorm nopipe,raw nopipe", labels, ",")
    nw = split(workloads, wl, " ")
    # A companion (uvorm only) is compared with the drivers of its base workload.
    nc = split(companions, cp, " ")
    for (i = 1; i <= nc; i++) { split(cp[i], pr, ":"); base[pr[1]] = pr[2] }
    print "workload,driver,mode,conns,inflight,runs,ops_per_sec,cpu_us_per_op,p50_us,p90_us,p99_us,p999_us,peak_rss_kb,failures" >medcsv
    printf "\n%-12s %-8s %-8s %3s %4s %4s %10s %9s %9s %9s %9s %9s %7s %4s\n", "workload", "driver", "mode",
      "P", "C", "runs", "ops/s", "CPU us/op", "p50 us", "p90 us", "p99 us", "p99.9 us", "RSS kB", "fail"
    for (i = 1; i <= nw; i++) {
      w = wl[i]
      for (l = 1; l <= nl; l++) {
        k = w SUBSEP labels[l]
        if (!(k in n)) continue
        medians(k)
        split(labels[l], dm, " ")
        printf "%-12s %-8s %-8s %3d %4d %4d %10.0f %9.2f %9.1f %9.1f %9.1f %9.1f %7s %4d\n",
          (l == 1 ? w : ""), dm[1], dm[2], conns[k], infl[k], n[k], M_ops[k], M_cpu[k],
          M_p50[k], M_p90[k], M_p99[k], M_p999[k], (M_rss[k] > 0 ? sprintf("%d", M_rss[k]) : "-"), fail[k]
        printf "%s,%s,%s,%d,%d,%d,%.1f,%.3f,%.1f,%.1f,%.1f,%.1f,%d,%d\n", w, dm[1], dm[2], conns[k],
          infl[k], n[k], M_ops[k], M_cpu[k], M_p50[k], M_p90[k], M_p99[k], M_p999[k], M_rss[k], fail[k] >medcsv
      }
    }
    printf "\nratios of medians, uvorm ops/s over: raw sync, raw batch, pgbench\n"
    for (i = 1; i <= nw; i++) {
      w = wl[i]; u = w SUBSEP "uvorm pipeline"; o = (w in base) ? base[w] : w
      r = o SUBSEP "raw sync"; b = o SUBSEP "raw batch"; g = o SUBSEP "pgbench prepared"
      if (!(u in n)) continue
      bench[i] = sprintf("BENCH workload=%s P=%d C=%d uvorm_ops=%s raw_ops=%s rawbatch_ops=%s pgbench_ops=%s ratio_raw=%s ratio_rawbatch=%s ratio_pgbench=%s uvorm_cpu_us=%s raw_cpu_us=%s rawbatch_cpu_us=%s p99_us=%s",
        w, P, infl[u], num(u, M_ops, "%.0f"), num(r, M_ops, "%.0f"), num(b, M_ops, "%.0f"), num(g, M_ops, "%.0f"),
        (r in n) ? ratio(M_ops[u], M_ops[r]) : "NA", (b in n) ? ratio(M_ops[u], M_ops[b]) : "NA",
        (g in n) ? ratio(M_ops[u], M_ops[g]) : "NA",
        num(u, M_cpu, "%.2f"), num(r, M_cpu, "%.2f"), num(b, M_cpu, "%.2f"), num(u, M_p99, "%.1f"))
      vs = ""
      if (w in base) {
        # and over uvorm running the base workload
        ub = o SUBSEP "uvorm pipeline"
        bench[i] = bench[i] sprintf(" base=%s base_uvorm_ops=%s ratio_base=%s", o, num(ub, M_ops, "%.0f"),
          (ub in n) ? ratio(M_ops[u], M_ops[ub]) : "NA")
        vs = sprintf("; raw and pgbench: those of %s; over uvorm %s: ops/s %s, CPU/op %s", o, o,
          (ub in n) ? ratio(M_ops[u], M_ops[ub]) : "NA", (ub in n) ? ratio(M_cpu[u], M_cpu[ub]) "x" : "NA")
      }
      printf "  %-12s %6s %6s %6s   (CPU/op vs raw batch %s%s)\n", w,
        (r in n) ? ratio(M_ops[u], M_ops[r]) : "NA", (b in n) ? ratio(M_ops[u], M_ops[b]) : "NA",
        (g in n) ? ratio(M_ops[u], M_ops[g]) : "NA", (b in n) ? ratio(M_cpu[u], M_cpu[b]) "x" : "NA", vs
    }
    for (i = 1; i <= nw; i++) {
      w = wl[i]; u = w SUBSEP "uvorm nopipe"; r = w SUBSEP "raw nopipe"
      if (!(u in n) || !(r in n)) continue
      if (!nopipe_title++)
        printf "\nratios of medians without pipeline mode, uvorm nopipe over raw nopipe: ops/s, CPU/op\n"
      printf "  %-12s %6s %6s\n", w, ratio(M_ops[u], M_ops[r]), ratio(M_cpu[u], M_cpu[r])
    }
    print ""
    for (i = 1; i <= nw; i++) if (i in bench) print bench[i]
  }' "$CSV"

if [ -s "$SWEEP_CSV" ]; then
  mkdir -p "$OUT/sweep-data"
  echo
  echo "sweep: P=$P, C = $SWEEP_CS, medians of $REPS runs (sweep.csv)"
  awk -F, -v dat="$OUT/sweep-data" -v medcsv="$OUT/sweep.csv" "$AWK_MEDIAN"'
    NR == 1 { next }
    {
      $2 = $2 "@" $4     # one key per C: the mode column then reads pipeline/find@64
      k = collect(); split(k, kk, SUBSEP); split(kk[1], wc, "@")
      if (!(k in seen)) { seen[k] = 1; order[++nk] = k; wk[k] = wc[1]; ck[k] = wc[2]; lk[k] = kk[2] }
    }
    END {
      print "workload,driver,mode,conns,inflight,runs,ops_per_sec,cpu_us_per_op,p50_us,p99_us" >medcsv
      printf "%-10s %-16s %4s %10s %9s %9s %9s\n", "workload", "driver", "C", "ops/s", "CPU us/op", "p50 us", "p99 us"
      for (i = 1; i <= nk; i++) {
        k = order[i]; medians(k); split(lk[k], dm, " ")
        printf "%-10s %-16s %4d %10.0f %9.2f %9.1f %9.1f\n", wk[k], lk[k], ck[k], M_ops[k], M_cpu[k], M_p50[k], M_p99[k]
        printf "%s,%s,%s,%d,%d,%d,%.1f,%.3f,%.1f,%.1f\n", wk[k], dm[1], dm[2], conns[k], ck[k], n[k],
          M_ops[k], M_cpu[k], M_p50[k], M_p99[k] >medcsv
        f = dat "/" wk[k] "-" dm[1] "-" dm[2] ".dat"
        printf "%d %.1f %.1f\n", ck[k], M_ops[k], M_p99[k] >>f
      }
    }' "$SWEEP_CSV"
  if command -v gnuplot >/dev/null 2>&1; then
    TERM_PNG=pngcairo
    gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1 || TERM_PNG=png
    plots_ops="" plots_p99=""
    for f in "$OUT"/sweep-data/*.dat; do
      t=$(basename "$f" .dat); t=${t/-/ }; t=${t/-/ }
      plots_ops="$plots_ops${plots_ops:+, }'$f' using 1:2 with linespoints title '$t'"
      plots_p99="$plots_p99${plots_p99:+, }'$f' using 1:3 with linespoints title '$t'"
    done
    cat >"$OUT/sweep.gp" <<EOF
set terminal $TERM_PNG size 1280,520 noenhanced
set output '$OUT/sweep.png'
set multiplot layout 1,2 title "uvorm vs raw libpq batch: P=$P, ${DURATION} s runs, medians of $REPS, $TRANSPORT"
set logscale x 2
set xtics (1, 8, 64, 256)
set xrange [0.8:320]
set xlabel "C (requests in flight)"
set logscale y
set grid
set key left top
set ylabel "ops/s"
set title "throughput"
plot $plots_ops
set ylabel "p99 latency (us)"
set title "p99 latency"
plot $plots_p99
unset multiplot
EOF
    if gnuplot "$OUT/sweep.gp" >"$OUT/logs/gnuplot.log" 2>&1; then
      echo "chart: $OUT/sweep.png"
    else
      note "gnuplot failed (log: $OUT/logs/gnuplot.log); no chart"
    fi
  else
    echo "gnuplot is not installed: no chart (the data is in $OUT/sweep.csv)"
  fi
fi

echo
echo "CSV: $CSV (every run), $OUT/medians.csv (medians)${SWEEP_SEL:+, $OUT/sweep.csv}; logs in $OUT/logs"
echo "run.sh: done in $((SECONDS - START)) s"
