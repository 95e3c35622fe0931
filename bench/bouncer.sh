#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bouncer.sh: throughput through PgBouncer (transaction mode) against direct,
# side by side in one run.
#
#   bench/bouncer.sh [-P N] [-C N] [--pool N] [-d SECONDS] [-w SECONDS]
#                    [-r REPS] [--workloads a,b,c] [--build-dir DIR] [--out DIR]
#
# Starts its own topology (scripts/pg-test-cluster: a primary and PgBouncer
# 1.18 with a pool of --pool server connections, default 4), builds
# bench_load and bench_workloads (Release), loads the tables, then for each
# workload runs R times in turn, each with P client connections and C in
# flight:
#   uvorm    direct      bench_workloads --mode pipeline on the primary
#   uvorm    unnamed     --mode txpool (transaction_pooling: unnamed
#                        statements) on the primary: what the switch costs
#   uvorm    bouncer     --mode txpool through PgBouncer
#   pgbench  direct      pgbench -M extended -c P on the primary
#   pgbench  bouncer     the same through PgBouncer
# (pgbench -M extended: PgBouncer 1.18 in transaction mode cannot keep named
# prepared statements.) Prints the medians per workload and driver and the
# ratio bouncer / direct. PgBouncer ignores the `options` startup parameter
# that bench_workloads sets the search_path with, so the role's search_path
# is set on this throwaway server instead.
#
# Defaults: P=4 C=64, 2 s measured after 0.5 s warm-up, 3 reps, workloads
# find,insert,tx. Needs what bench/run.sh needs, and pgbouncer.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
P=4 C=64 POOL=4 DURATION=2 WARMUP=0.5 REPS=3 WORKLOADS="find insert tx"
BUILD_DIR=$ROOT/build-bench OUT=""

die() { echo "bouncer.sh: $*" >&2; exit 1; }
note() { echo "bouncer.sh: $*" >&2; }
usage() { sed -n '3,25p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

while [ $# -gt 0 ]; do
  case $1 in
    -P) P=$2; shift 2 ;;
    -C) C=$2; shift 2 ;;
    --pool) POOL=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    -w) WARMUP=$2; shift 2 ;;
    -r) REPS=$2; shift 2 ;;
    --workloads) WORKLOADS=${2//,/ }; shift 2 ;;
    --build-dir) BUILD_DIR=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) usage 0 ;;
    *) usage ;;
  esac
done
for n in "$P" "$C" "$POOL" "$REPS"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "-P, -C, --pool and -r take a positive number"
done
for w in $WORKLOADS; do
  case $w in find | queries | insert | tx | update | fortunes | select) ;;
    *) die "workload '$w': one of select find queries fortunes update insert tx" ;; esac
done
[ -z "${DATABASE_URL:-}" ] || note "DATABASE_URL is ignored: PgBouncer needs a topology of its own"
command -v pgbouncer >/dev/null || die "pgbouncer not found (scripts/install-deps.sh)"
command -v pgbench >/dev/null || die "pgbench not found"

[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/uvorm-bouncer-bench.XXXXXX)
mkdir -p "$OUT/logs"
CSV=$OUT/results.csv
rm -f "$CSV"
STATE=$(mktemp -d /tmp/uvorm-bouncer-topology.XXXXXX)
cleanup() { "$ROOT/scripts/pg-test-cluster" teardown "$STATE" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

note "building bench_load bench_workloads (Release) in $BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release \
  -DUVORM_BUILD_TESTS=OFF -DUVORM_BUILD_EXAMPLES=OFF >"$OUT/logs/cmake.log" 2>&1 &&
  cmake --build "$BUILD_DIR" -j2 --target bench_load bench_workloads >>"$OUT/logs/cmake.log" 2>&1 ||
  { tail -n 40 "$OUT/logs/cmake.log" >&2; die "build failed"; }

note "starting a primary and PgBouncer (pool $POOL)"
# Unset: pg-test-cluster refuses to start beside a server named by them.
env -u DATABASE_URL -u PGHOST -u PGPORT -u PGDATABASE -u PGUSER -u PGSERVICE \
  "$ROOT/scripts/pg-test-cluster" setup "$STATE" --replicas 0 --bouncer \
  --bouncer-pool "$POOL" --watch-parent >"$OUT/logs/topology.log" 2>&1 ||
  { tail -n 20 "$OUT/logs/topology.log" >&2; die "could not start the topology"; }
# shellcheck disable=SC1091
. "$STATE/env"
DIRECT=$UVORM_TEST_PRIMARY_DSN BOUNCER=$UVORM_TEST_BOUNCER_DSN
[ -n "$DIRECT" ] && [ -n "$BOUNCER" ] || die "no DSNs in the topology's env"

note "loading the data (bench_load)"
"$BUILD_DIR/bench/bench_load" --conninfo "$DIRECT" >"$OUT/logs/bench_load.log" 2>&1 ||
  { tail -n 20 "$OUT/logs/bench_load.log" >&2; die "bench_load failed"; }
psql -X -q -v ON_ERROR_STOP=1 -d "$DIRECT" \
  -c "ALTER ROLE CURRENT_USER IN DATABASE uvorm SET search_path = bench, public" \
  >>"$OUT/logs/bench_load.log" 2>&1 || die "could not set the role's search_path"

HEADER="driver,mode,conns,inflight,ops,seconds,ops_per_sec,cpu_us_per_op,p50_us,p90_us,p99_us,p999_us,peak_rss_kb,failures"
echo "$HEADER" >"$CSV"
PGB_SECONDS=$(awk -v d="$DURATION" 'BEGIN { s = int(d); if (s < d) s++; if (s < 1) s = 1; print s }')

run_uvorm() { # rep workload where
  local mode=pipeline dsn=$DIRECT log=$OUT/logs/uvorm-$2-$3-$1.log before
  [ "$3" = unnamed ] && mode=txpool
  [ "$3" = bouncer ] && { mode=txpool; dsn=$BOUNCER; }
  before=$(wc -l <"$CSV")
  "$BUILD_DIR/bench/bench_workloads" --conninfo "$dsn" --workload "$2" --mode "$mode" \
    -P "$P" -C "$C" --duration "$DURATION" --warmup "$WARMUP" --csv "$CSV" >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; die "uvorm $2 $3 failed (log: $log)"; }
  [ "$(wc -l <"$CSV")" -eq $((before + 1)) ] || die "uvorm $2 $3 wrote no CSV line (log: $log)"
  # The driver column says where it ran.
  sed -i "\$s/^[^,]*,/uvorm-$3,/" "$CSV"
}

run_pgbench() { # rep workload where
  local dsn=$DIRECT log=$OUT/logs/pgbench-$2-$3-$1.log
  [ "$3" = bouncer ] && dsn=$BOUNCER
  [ -f "$ROOT/bench/pgbench/$2.sql" ] || return 0
  pgbench -n -M extended -c "$P" -j "$((P < 2 ? P : 2))" -T "$PGB_SECONDS" \
    -f "$ROOT/bench/pgbench/$2.sql" "$dsn" >"$log" 2>&1 ||
    { tail -n 20 "$log" >&2; die "pgbench $2 $3 failed (log: $log)"; }
  if [ "$2" = insert ]; then
    psql -X -q -d "$DIRECT" -c "DELETE FROM bench.users WHERE email LIKE '%@pgbench.bench'" \
      >>"$log" 2>&1 || die "could not delete pgbench's users"
  fi
  awk -v P="$P" -v w="$2" -v where="$3" '
    /^number of transactions actually processed:/ { ops = $6 }
    /^number of failed transactions:/ { failed = $5 }
    /^duration:/ { secs = $2 }
    /^tps = / { tps = $3 }
    /^latency average = / { lat = $4 * 1000 }
    END {
      if (ops == 0) exit 1
      printf "pgbench-%s,extended/%s,%d,%d,%d,%.3f,%.1f,,%.1f,,,,,%d\n",
        where, w, P, P, ops, secs, tps, lat, failed + 0
    }' "$log" >>"$CSV" || die "could not read pgbench's output (log: $log)"
}

for rep in $(seq "$REPS"); do
  for w in $WORKLOADS; do
    for where in direct unnamed bouncer; do
      run_uvorm "$rep" "$w" "$where"
      note "$(tail -n 1 "$CSV" | awk -F, -v r="$rep" '{ printf "rep %d %-16s %-22s %9.0f ops/s  %6.2f us CPU/op  p99 %7.0f us", r, $1, $2, $7, $8, $11 }')"
      [ "$where" = unnamed ] || run_pgbench "$rep" "$w" "$where"
    done
  done
done

# Medians per driver and workload, then bouncer / direct.
echo
printf 'P=%d C=%d, PgBouncer pool %d, %s s measured, %d reps (medians; output in %s)\n' \
  "$P" "$C" "$POOL" "$DURATION" "$REPS" "$OUT"
awk -F, 'NR > 1 {
    split($2, m, "/"); w = m[2]; key = $1 SUBSEP w
    n[key]++; v[key, n[key]] = $7; c[key, n[key]] = $8; q[key, n[key]] = $11
    if (!(w in seen)) { seen[w] = 1; order[++nw] = w }
  }
  function med(arr, key, k,   i, j, t, a) {
    for (i = 1; i <= k; i++) a[i] = arr[key, i] + 0
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
  }
  END {
    printf "%-9s %12s %12s %12s %8s %12s %12s %8s %14s\n", "workload", "uvorm direct", "unnamed",
      "via bouncer", "ratio", "pgb direct", "via bouncer", "ratio", "uvorm CPU/op"
    for (i = 1; i <= nw; i++) {
      w = order[i]
      ud = med(v, "uvorm-direct" SUBSEP w, n["uvorm-direct" SUBSEP w])
      ub = med(v, "uvorm-bouncer" SUBSEP w, n["uvorm-bouncer" SUBSEP w])
      un = med(v, "uvorm-unnamed" SUBSEP w, n["uvorm-unnamed" SUBSEP w])
      cd = med(c, "uvorm-direct" SUBSEP w, n["uvorm-direct" SUBSEP w])
      cb = med(c, "uvorm-bouncer" SUBSEP w, n["uvorm-bouncer" SUBSEP w])
      pk = "pgbench-direct" SUBSEP w
      if (n[pk] > 0) {
        pd = med(v, pk, n[pk]); pb = med(v, "pgbench-bouncer" SUBSEP w, n["pgbench-bouncer" SUBSEP w])
        pr = sprintf("%8.2f", pb / pd); pds = sprintf("%12.0f", pd); pbs = sprintf("%12.0f", pb)
      } else { pr = sprintf("%8s", "NA"); pds = sprintf("%12s", "NA"); pbs = pds }
      printf "%-9s %12.0f %12.0f %12.0f %8.2f %s %s %s %6.2f / %5.2f\n", w, ud, un, ub, ub / ud, pds, pbs, pr, cd, cb
      printf "BENCH bouncer %s uvorm %.2f pgbench %s\n", w, ub / ud, pr > "/dev/stderr"
    }
  }' "$CSV"
