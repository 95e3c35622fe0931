#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite: install what is missing, then build and run every
# test twice, plain and under AddressSanitizer + UndefinedBehaviorSanitizer,
# each against a throwaway PostgreSQL (or DATABASE_URL), and the threaded
# ones a third time under ThreadSanitizer. Warnings are errors.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/install-deps.sh
jobs=$(nproc)
for variant in plain asan; do
  dir=build/test-$variant
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVORM_WERROR=ON)
  [ "$variant" = asan ] && flags+=(-DUVORM_SANITIZE=ON)
  echo "==== $variant build ===="
  cmake -S . -B "$dir" "${flags[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  ctest --test-dir "$dir" --output-on-failure -j "$jobs"
done

# What runs on several threads (ctest -L threads: posting to a pool from
# other threads, the example server's workers), under ThreadSanitizer.
echo "==== tsan build ===="
dir=build/test-tsan
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVORM_WERROR=ON -DUVORM_TSAN=ON \
  -DUVORM_BUILD_BENCH=OFF >/dev/null
targets=(integration_test_pool_post)
# (Not piped into grep -q: with pipefail, grep leaving early fails the pipe.)
cmake --build "$dir" --target help >"$dir/targets.txt"
if grep -qw integration_test_server "$dir/targets.txt"; then
  targets+=(integration_test_server)
fi
cmake --build "$dir" -j "$jobs" --target "${targets[@]}"
ctest --test-dir "$dir" --output-on-failure -L threads
