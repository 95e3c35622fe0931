#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole test suite: install what is missing, then build and run every
# test twice, plain and under AddressSanitizer + UndefinedBehaviorSanitizer,
# each against a throwaway PostgreSQL (or DATABASE_URL). Warnings are errors.
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
