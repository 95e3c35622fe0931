#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The sample domain's models generated from its migrations agree with the
# hand-written ones (tests/gen/domain_agree.c), and --check holds both ways:
#
#   scripts/pg-test-server exec STATE -- tests/gen/domain.sh UVORM_EXE WORK_DIR CC [CFLAGS]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 UVORM_EXE WORK_DIR CC [CFLAGS]" >&2; exit 2; }
: "${UVORM_TEST_DSN:?run me through scripts/pg-test-server exec}"
UVORM=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WORK=$2 CC=$3 CFLAGS=${4:-}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$(dirname "$UVORM")/.." && pwd)
SCHEMA=gen_domain_test
rm -rf "$WORK" && mkdir -p "$WORK"
export PGOPTIONS="-c search_path=$SCHEMA -c client_min_messages=warning"
psql_() { psql -X -q -v ON_ERROR_STOP=1 "$UVORM_TEST_DSN" "$@"; }
trap 'psql_ -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true' EXIT
psql_ -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" -c "CREATE SCHEMA $SCHEMA"

"$UVORM" migrate up --quiet --database "$UVORM_TEST_DSN" --dir "$SRC/examples/domain/migrations"
"$UVORM" gen --quiet --database "$UVORM_TEST_DSN" --prefix gen_ --out "$WORK/out"
echo "ok - generated $(grep -c '^ORM_MODEL_DECLARE' "$WORK/out/models.h") models from the migrations"

# shellcheck disable=SC2046,SC2086
"$CC" $CFLAGS -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic \
  -I"$SRC/include" -I"$SRC/examples/domain" -I"$WORK/out" $(pkg-config --cflags libuv libpq) \
  -o "$WORK/domain_agree" "$SRC/tests/gen/domain_agree.c" "$WORK/out/models.c" \
  "$SRC/examples/domain/domain.c" "$BUILD/libuvorm.a" $(pkg-config --libs libuv libpq)
echo "ok - the generated models compile with -Wall -Wextra -Werror -pedantic"
"$WORK/domain_agree" "$UVORM_TEST_DSN"

# --check: up to date; a column added: a diff and exit 1; regenerated: 0.
"$UVORM" gen --quiet --database "$UVORM_TEST_DSN" --prefix gen_ --out "$WORK/out" --check
echo "ok - --check passes on the unchanged schema"
psql_ -c "ALTER TABLE users ADD COLUMN nickname text"
set +e
"$UVORM" gen --database "$UVORM_TEST_DSN" --prefix gen_ --out "$WORK/out" --check \
  >"$WORK/diff" 2>"$WORK/err"
rc=$?
set -e
[ $rc -eq 1 ] || { echo "FAIL: --check after ADD COLUMN exited $rc" >&2; cat "$WORK/err" >&2; exit 1; }
grep -q '^+  X(nickname, ORM_T_TEXT, const char \*, ORM_F_NULLABLE)' "$WORK/diff" ||
  { echo "FAIL: the diff does not show the new column:" >&2; cat "$WORK/diff" >&2; exit 1; }
grep -q 'regenerate with' "$WORK/err" || { echo "FAIL: no hint on stderr" >&2; exit 1; }
echo "ok - --check after ADD COLUMN: exit 1 and a diff with the new field"
"$UVORM" gen --quiet --database "$UVORM_TEST_DSN" --prefix gen_ --out "$WORK/out"
"$UVORM" gen --quiet --database "$UVORM_TEST_DSN" --prefix gen_ --out "$WORK/out" --check
echo "ok - regenerated: --check passes again"
echo "domain.sh: all checks passed"
