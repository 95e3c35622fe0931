#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The example server under HTTP load, against its raw twin (bench/raw_server.c:
# the same H2O workers and pages, the database through libpq by hand).
#
#   bench/server.sh [--duration S] [--runs N] [--connections N] [--threads N]
#                   [--conns N] [--modes "batch sync"] [--endpoints "/db ..."]
#                   [--accept-one]
#
# Installs what is missing, builds both (Release), starts a throwaway
# PostgreSQL (or uses DATABASE_URL) with a fresh schema uvorm_server_bench,
# which the example server's migrations fill. Then for each mode (batch:
# reads share a pipeline Sync; sync: a Sync after every statement, as
# TechEmpower's rule 7 asks), each endpoint, each run: wrk at --connections
# (256) for --duration (5 s) against uvorm, then the same against raw,
# interleaved, so drift of this noisy machine hits both. Prints a table of
# medians: requests/s, p50/p99 latency, the ratio uvorm/raw, the servers'
# own CPU time per request; then each server's peak memory. Any non-2xx
# answer fails the run. --accept-one: both servers with one thread accepting
# and handing connections over, instead of a SO_REUSEPORT socket each.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

duration=5 runs=3 connections=256 threads=$(nproc) conns=2
modes="batch sync" accept=()
endpoints="/json /plaintext /db /queries?queries=20 /fortunes /updates?queries=20"
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --conns) conns=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --endpoints) endpoints=$2; shift 2 ;;
    --accept-one) accept=(--accept-one); shift ;;
    *) sed -n '3,6s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
  esac
done

scripts/install-deps.sh
cmake -S . -B build/bench-server -DCMAKE_BUILD_TYPE=Release -DUVORM_BUILD_TESTS=OFF >/dev/null
cmake --build build/bench-server -j "$(nproc)" --target uvorm_server raw_server >/dev/null
bin=build/bench-server

state=$bin/pg
trap 'scripts/pg-test-server teardown "$state" >/dev/null' EXIT
scripts/pg-test-server setup "$state" --watch $$ >/dev/null
# shellcheck disable=SC1090,SC1091
eval "$(scripts/pg-test-server env "$state")"
export PGOPTIONS="-c search_path=uvorm_server_bench"
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$UVORM_TEST_DSN" \
  -c "DROP SCHEMA IF EXISTS uvorm_server_bench CASCADE" -c "CREATE SCHEMA uvorm_server_bench"

work=$(mktemp -d)
pids=()
cleanup_servers() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap 'cleanup_servers; rm -rf "$work"; scripts/pg-test-server teardown "$state" >/dev/null' EXIT

# start NAME EXE ARGS...: starts a server on a free port; sets port_NAME, pid_NAME.
start() {
  local name=$1 exe=$2
  shift 2
  "$exe" --database "$UVORM_TEST_DSN" --port 0 --threads "$threads" --conns "$conns" "$@" \
    "${accept[@]}" >"$work/$name.out" 2>"$work/$name.err" &
  local pid=$! port=""
  pids+=("$pid")
  for _ in $(seq 300); do
    port=$(sed -n 's/^listening on http:\/\/[0-9.]*:\([0-9]*\).*/\1/p' "$work/$name.out")
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  [ -n "$port" ] || { echo "server.sh: $name did not start" >&2; exit 1; }
  printf -v "port_$name" %s "$port"
  printf -v "pid_$name" %s "$pid"
}

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
peak_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status"; }
clk=$(getconf CLK_TCK)

# measure NAME PATH: one wrk run; prints "rps p50_ms p99_ms cpu_us_per_request".
measure() {
  local name=$1 path=$2 port pid out t0 t1
  port=port_$name pid=pid_$name
  t0=$(ticks "${!pid}")
  out=$(wrk -t "$threads" -c "$connections" -d "${duration}s" --latency \
    "http://127.0.0.1:${!port}$path")
  t1=$(ticks "${!pid}")
  if grep -q 'Non-2xx' <<<"$out"; then
    echo "server.sh: $name $path: answers that were not 2xx:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk -v dt=$((t1 - t0)) -v clk="$clk" '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    / 50% / { p50 = ms($2) } / 99% / { p99 = ms($2) }
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    END { printf "%.0f %.2f %.2f %.1f\n", rps, p50, p99, (n > 0 ? dt * 1e6 / clk / n : 0) }' <<<"$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "# bench/server.sh: $(nproc) cores, $threads server threads, $conns database connections each,"
echo "# wrk $connections connections, ${duration}s, median of $runs interleaved runs;" \
  "${accept[*]:-SO_REUSEPORT}; $(date -u +%F)"
echo
echo "| mode | endpoint | uvorm req/s | raw req/s | uvorm/raw | uvorm p50 / p99 ms | raw p50 / p99 ms | CPU µs/req uvorm / raw |"
echo "|---|---|---|---|---|---|---|---|"
peaks=""
for mode in $modes; do
  flags=()
  [ "$mode" = sync ] && flags=(--sync-each)
  start uvorm "$bin/examples/server/uvorm_server" "${flags[@]}"
  start raw "$bin/bench/raw_server" "${flags[@]}"
  for ep in $endpoints; do
    wrk -t "$threads" -c "$connections" -d 1s "http://127.0.0.1:$port_uvorm$ep" >/dev/null
    wrk -t "$threads" -c "$connections" -d 1s "http://127.0.0.1:$port_raw$ep" >/dev/null
    : >"$work/u" && : >"$work/r"
    for _ in $(seq "$runs"); do
      measure uvorm "$ep" >>"$work/u"
      measure raw "$ep" >>"$work/r"
    done
    col() { awk -v c="$2" '{ print $c }' "$1" | median; }
    ur=$(col "$work/u" 1) rr=$(col "$work/r" 1)
    printf '| %s | `%s` | %.0f | %.0f | %.2f | %s / %s | %s / %s | %s / %s |\n' "$mode" "$ep" \
      "$ur" "$rr" "$(awk -v a="$ur" -v b="$rr" 'BEGIN { print (b > 0 ? a / b : 0) }')" \
      "$(col "$work/u" 2)" "$(col "$work/u" 3)" "$(col "$work/r" 2)" "$(col "$work/r" 3)" \
      "$(col "$work/u" 4)" "$(col "$work/r" 4)"
  done
  peaks+="$mode: uvorm $(peak_kib "$pid_uvorm") KiB, raw $(peak_kib "$pid_raw") KiB; "
  cleanup_servers
done
echo
echo "Peak RSS of the servers (VmHWM): $peaks"
