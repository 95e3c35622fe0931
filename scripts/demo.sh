#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job: install what is missing, build uvorm, start a throwaway
# PostgreSQL (or use DATABASE_URL), create the sample domain's tables in a
# schema of their own (uvorm_demo) with `uvorm migrate up`, run the demo
# programs, stop the server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVORM_BUILD_TESTS=OFF \
  -DUVORM_BUILD_BENCH=OFF >/dev/null
cmake --build build/demo -j "$(nproc)" --target demo assistant uvorm_cli

state=build/demo/pg
trap 'scripts/pg-test-server teardown "$state"' EXIT
scripts/pg-test-server setup "$state" --watch $$
scripts/pg-test-server exec "$state" -- bash -c '
  set -euo pipefail
  quiet="-c client_min_messages=warning"
  PGOPTIONS="$quiet" psql -X -q -v ON_ERROR_STOP=1 "$UVORM_TEST_DSN" \
    -c "DROP SCHEMA IF EXISTS uvorm_demo CASCADE" -c "CREATE SCHEMA uvorm_demo"
  echo "== uvorm migrate up: the sample domain schema"
  PGOPTIONS="$quiet -c search_path=uvorm_demo" build/demo/tools/uvorm migrate up \
    --database "$UVORM_TEST_DSN" --dir examples/domain/migrations
  echo "== examples/demo.c: the pool"
  build/demo/examples/demo "$UVORM_TEST_DSN"
  echo "== examples/assistant.c: models of the sample AI backend"
  PGOPTIONS="-c search_path=uvorm_demo" build/demo/examples/assistant "$UVORM_TEST_DSN"
'
