#!/usr/bin/env bash
# The main job: install what is missing, build uvorm, start a throwaway
# PostgreSQL (or use DATABASE_URL), run the demo against it, stop the server.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVORM_BUILD_TESTS=OFF >/dev/null
cmake --build build/demo -j "$(nproc)" --target demo

state=build/demo/pg
trap 'scripts/pg-test-server teardown "$state"' EXIT
scripts/pg-test-server setup "$state" --watch $$
scripts/pg-test-server exec "$state" -- sh -c 'exec build/demo/examples/demo "$UVORM_TEST_DSN"'
