#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the example server: installs what is missing, builds it, starts a
# throwaway PostgreSQL (or uses DATABASE_URL), and serves on a free port it
# prints (PORT=8080 to choose). The server migrates and seeds its own tables (in the
# schema uvorm_server, made fresh) on start. Ctrl-C stops the server, then
# the database. Options go to the server: examples/server/run.sh --threads 4
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

scripts/install-deps.sh
cmake -S . -B build/server -DCMAKE_BUILD_TYPE=Release -DUVORM_BUILD_TESTS=OFF \
  -DUVORM_BUILD_BENCH=OFF >/dev/null
cmake --build build/server -j "$(nproc)" --target uvorm_server
[ -x build/server/examples/server/uvorm_server ] || {
  echo "run.sh: the server was not built (see cmake's message above)" >&2; exit 1; }

state=build/server/pg
trap 'scripts/pg-test-server teardown "$state"' EXIT
scripts/pg-test-server setup "$state" --watch $$
scripts/pg-test-server exec "$state" -- bash -c '
  set -euo pipefail
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$UVORM_TEST_DSN" \
    -c "DROP SCHEMA IF EXISTS uvorm_server CASCADE" -c "CREATE SCHEMA uvorm_server"
  PGOPTIONS="-c search_path=uvorm_server" exec build/server/examples/server/uvorm_server \
    --database "$UVORM_TEST_DSN" --port "${PORT:-0}" "$@"
' run.sh "$@"
