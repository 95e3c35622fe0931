#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The `uvorm gen` program end to end, against a real server:
#
#   scripts/pg-test-server exec STATE -- tests/gen/gen.sh UVORM_EXE WORK_DIR CC [CFLAGS]
#
# CFLAGS: what programs linked with the build's libuvorm.a need (the
# sanitizers of an ASan build).
# UVORM_TEST_DSN names the server (key=value conninfo or URL). Every case
# runs in a schema of its own (the program reaches it through PGOPTIONS'
# search_path); files go under WORK_DIR. tests/gen/rich_schema.sql is
# generated, compiled with -Wall -Wextra -Werror -pedantic into
# tests/gen/roundtrip.c and run: every model verified, written, read back and
# eager-loaded through every relation. Then determinism, names, --check,
# --strict, --table, --exclude, --prefix, --name, and bad input.
#
# GEN_TEST_VIEWS=1 (the default): the view and the materialized view of the
# schema must become read-only models (ORM_MODEL_DEFINE_VIEW_IN: find_all
# works, an insert answers ORM_ENOTSUP). GEN_TEST_VIEWS=0: they are dropped
# before generating, and nothing about views is checked.
# Prints one line per check; exits 1 if any failed.
set -euo pipefail

[ $# -eq 3 ] || [ $# -eq 4 ] || { echo "usage: $0 UVORM_EXE WORK_DIR CC [CFLAGS]" >&2; exit 2; }
EXTRA_CFLAGS=${4:-}
: "${UVORM_TEST_DSN:?run me through scripts/pg-test-server exec}"
UVORM=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WORK=$2 CC=$3 DSN=$UVORM_TEST_DSN
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$(dirname "$UVORM")/.." && pwd) # UVORM is BUILD/tools/uvorm
VIEWS=${GEN_TEST_VIEWS:-1}
[ -x "$UVORM" ] || { echo "gen.sh: $UVORM is not an executable" >&2; exit 2; }
[ "$VIEWS" = 0 ] || [ "$VIEWS" = 1 ] || { echo "gen.sh: GEN_TEST_VIEWS is 0 or 1" >&2; exit 2; }
case $WORK in "" | /) echo "gen.sh: refusing WORK_DIR '$WORK'" >&2; exit 2 ;; esac
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
OUT=$WORK/stdout ERR=$WORK/stderr
: >"$OUT"; : >"$ERR"
# Our sessions, by name: the cleanup ends those a killed run left behind.
export PGAPPNAME=uvgen-$$-
# The models of rich_schema.sql (tables, then the two views).
TABLE_MODELS=8
MODELS=$((TABLE_MODELS + 2 * VIEWS))

# ---- checks ------------------------------------------------------------------

passed=0 failed=0 CASE=setup
ok() { passed=$((passed + 1)); echo "ok $passed - $CASE: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $CASE: $*" >&2; }
bad() { # fail, showing the last command's output
  fail "$@"
  { echo "  --- stdout:"; sed -n '1,25s/^/  | /p' "$OUT"
    echo "  --- stderr:"; sed -n '1,15s/^/  | /p' "$ERR"; } >&2
}
shown() { local d="$*"; d=${d//"$UVORM"/uvorm}; d=${d//"$WORK"/WORK}; d=${d//"$DSN"/DSN}; echo "$d"; }

# expect_exit CODE CMD...: runs CMD with its stdout in $OUT, stderr in $ERR.
expect_exit() {
  local want=$1 rc=0
  shift
  "$@" >"$OUT" 2>"$ERR" || rc=$?
  if [ "$rc" = "$want" ]; then ok "$(shown "$@") -> exit $want"; else bad "$(shown "$@") -> exit $rc, expected $want"; fi
}
# expect_grep out|err|both ERE...: each ERE matches a line of the last
# command's output; expect_nogrep: none does.
files_of() { case $1 in out) echo "$OUT" ;; err) echo "$ERR" ;; *) echo "$OUT $ERR" ;; esac; }
expect_grep() {
  local where=$1 re
  shift
  for re; do
    # shellcheck disable=SC2046
    if grep -Eqh -- "$re" $(files_of "$where"); then ok "$where has /$(shown "$re")/"
    else bad "$where lacks /$(shown "$re")/"; fi
  done
}
expect_nogrep() {
  local where=$1 re
  shift
  for re; do
    # shellcheck disable=SC2046
    if grep -Eqh -- "$re" $(files_of "$where"); then bad "$where has /$(shown "$re")/"
    else ok "$where has no /$(shown "$re")/"; fi
  done
}
expect_count() { # out|err ERE N: N lines match
  local n
  n=$(grep -Ec -- "$2" "$(files_of "$1")" || true)
  if [ "$n" = "$3" ]; then ok "$1 has $3 lines /$(shown "$2")/"
  else bad "$1 has $n lines /$(shown "$2")/, expected $3"; fi
}
expect_empty() { # out|err...
  local w
  for w; do if [ ! -s "$(files_of "$w")" ]; then ok "$w is empty"; else bad "$w is not empty"; fi; done
}
check() { # DESCRIPTION CMD...: CMD succeeds
  local what=$1
  shift
  if "$@"; then ok "$what"; else fail "$what"; fi
}
# in_files FILE...: the files as the "output" the expect_* helpers read.
in_files() { cat "$@" >"$OUT" 2>/dev/null || true; : >"$ERR"; }
# nothing_in DIR: DIR is absent or holds nothing (no file, no .tmp).
nothing_in() { [ ! -e "$1" ] || [ -z "$(files_in "$1")" ]; }
# files_in DIR: the names in DIR, sorted, on one line.
files_in() { find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | paste -sd' '; }

# psql on the test database; -At: bare values.
q() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$DSN" -c "$1"
}
# qs SQL: psql in schema $S.
qs() {
  PGOPTIONS="-c client_min_messages=warning -c search_path=$S" psql -X -q -At \
    -v ON_ERROR_STOP=1 "$DSN" -c "$1"
}

# use_schema NAME: a fresh, empty schema $S for the case.
SCHEMAS=()
use_schema() {
  S=uvgen_$1
  SCHEMAS+=("$S")
  q "DROP SCHEMA IF EXISTS $S CASCADE; CREATE SCHEMA $S" >/dev/null
}
# load_rich NAME: a fresh schema $S holding rich_schema.sql.
load_rich() {
  use_schema "$1"
  PGOPTIONS="-c client_min_messages=warning -c search_path=$S" psql -X -q \
    -v ON_ERROR_STOP=1 "$DSN" -f "$SRC/tests/gen/rich_schema.sql" >/dev/null
  if [ "$VIEWS" = 0 ]; then
    qs "DROP VIEW post_titles; DROP MATERIALIZED VIEW mood_counts"
  fi
}

# g ARGS...: `uvorm gen` on the test database, in schema $S. No run may
# hang the test: timeout's exit 124 fails the check.
T=30
g() { PGOPTIONS="-c search_path=$S" timeout -k 2 $T "$UVORM" gen --database "$DSN" "$@"; }
uvorm() { timeout -k 2 $T "$UVORM" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# build_rt DIR EXE [CFLAGS...]: roundtrip.c with DIR/models.c.
build_rt() {
  local dir=$1 exe=$2
  shift 2
  # -D_POSIX_C_SOURCE: uv.h needs POSIX types strict C11 hides.
  # shellcheck disable=SC2046
  # shellcheck disable=SC2086
  "$CC" $EXTRA_CFLAGS -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic \
    -I"$SRC/include" -I"$dir" $(pkg-config --cflags libuv libpq) -DGEN_TEST_VIEWS="$VIEWS" "$@" \
    -o "$exe" "$SRC/tests/gen/roundtrip.c" "$dir/models.c" \
    "$BUILD/libuvorm.a" $(pkg-config --libs libuv libpq)
}
# rt EXE SALT: runs it on schema $S.
rt() { PGOPTIONS="-c search_path=$S" timeout -k 2 60 "$1" "$DSN" "$2"; }
# rt_check EXE SALT N WHOLE: runs it, for N models. WHOLE=1: it must pass
# whole (exit 0). WHOLE=0: only that it ran to its end and that every
# phase but the verification passed (the first run checks that), so that
# one bug fails one case, not every run.
rt_check() {
  local exe=$1 salt=$2 n=$3 whole=$4 rc=0
  if [ "$whole" = 1 ]; then
    expect_exit 0 rt "$exe" "$salt"
    expect_grep out "^roundtrip: all $n models passed\$"
    expect_nogrep out '^FAIL [^:]+: verify: '
  else
    rt "$exe" "$salt" >"$OUT" 2>"$ERR" || rc=$?
    expect_grep out "^roundtrip: (all $n models passed|[0-9]+ checks FAILED)\$"
  fi
  expect_nogrep out '^FAIL [^:]+: (setup|write): ' '^FAIL [^:]+: read: ' \
    '^FAIL [^:]+: relation [a-z_]+: ' '^FAIL [^:]+: view: '
  expect_nogrep err 'Sanitizer|runtime error'
}

RO_DIR=""
cleanup() {
  local rc=$?
  [ -n "$RO_DIR" ] && chmod 0700 "$RO_DIR" 2>/dev/null
  if [ ${#SCHEMAS[@]} -gt 0 ]; then
    PGOPTIONS="-c client_min_messages=warning -c lock_timeout=5000" psql -X -q "$DSN" \
      -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name LIKE '$PGAPPNAME%' AND pid <> pg_backend_pid()" \
      -c "DROP SCHEMA IF EXISTS $(IFS=,; echo "${SCHEMAS[*]}") CASCADE" >/dev/null 2>&1 || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "gen.sh: line $LINENO: a setup step failed (not a check)" >&2' ERR

# ---- 1. usage ----------------------------------------------------------------
CASE=usage
expect_exit 0 uvorm --help
expect_grep out '^  gen '
expect_exit 0 uvorm gen --help
expect_grep out '^usage: uvorm gen --out DIR' --database --schema --table --exclude --out \
  --name --prefix --qualify --strict --check --quiet
expect_empty err
U=$WORK/usage
while read -r args; do
  eval "expect_exit 2 uvorm gen $args" </dev/null
  expect_grep err '^uvorm gen: .*\(try uvorm gen --help\)$'
  expect_empty out
done <<'ARGS'

--database "$DSN"
--out "$U" --frobnicate
--out "$U" -x
--out
--out "$U" --table
--out "$U" --table ''
--out "$U" --name a/b
--out "$U" --name ''
--out "$U" --prefix app-
--out "$U" --prefix 'a b'
--out "$U" stray
--out "$U" --check extra
ARGS
check "no usage error created $(shown "$U")" test ! -e "$U"
# An unparsable --database: usage, and never echoed.
expect_exit 2 uvorm gen --out "$U" --database "host=a b=c'"
expect_grep err 'not one libpq accepts'
expect_nogrep both "b=c|host=a"
check "nor did it create $(shown "$U")" test ! -e "$U"

# ---- 2. the round trip --------------------------------------------------------
CASE=roundtrip
load_rich rt
D=$WORK/out
H=$D/models.h C=$D/models.c
expect_exit 0 g --out "$D"
expect_grep out "^wrote $H and $C: $MODELS models, 2 enums\$"
expect_grep err "^uvorm gen: $S\\.audit_log: skipped: no primary key" \
  "^uvorm gen: $S\\.post_revisions: skipped: a composite primary key" \
  "^uvorm gen: $S\\.nullable_samples\\.n_tsv: type tsvector has no model type: column skipped\$" \
  "^uvorm gen: $S\\.nullable_samples\\.n_point: type point has no model type: column skipped\$" \
  "^uvorm gen: $S\\.nullable_samples\\.n_moods: type mood\\[\\] has no model type: column skipped\$"
expect_count err . 5
expect_nogrep err 'post_tags|follows' # join tables: relations, silently
check "only models.h and models.c in $(shown "$D")" test "$(files_in "$D")" = "models.c models.h"
expect_exit 0 build_rt "$D" "$WORK/rt"
rt_check "$WORK/rt" r "$MODELS" 1
if [ "$VIEWS" = 1 ]; then
  expect_grep out '^ok post_titles: read-only: ' '^ok mood_counts: read-only: '
fi
# Again, on the same tables (other rows).
rt_check "$WORK/rt" s "$MODELS" 0
expect_exit 0 q "SELECT (SELECT count(*) FROM $S.people) || ' ' || (SELECT count(*) FROM $S.follows)
  || ' ' || (SELECT count(*) FROM $S.post_tags)"
expect_grep out '^6 12 12$'

# ---- 3. determinism ------------------------------------------------------------
CASE=determinism
cp -r "$D" "$WORK/out.1"
expect_exit 0 g --out "$D"
check "a second run: models.h byte for byte" cmp "$H" "$WORK/out.1/models.h"
check "a second run: models.c byte for byte" cmp "$C" "$WORK/out.1/models.c"
in_files "$H" "$C"
# Nothing of the run: no server, no time (the --out in the banner is the
# command to regenerate).
expect_nogrep out 'port=|dbname=|127\.0\.0\.1|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{2}:[0-9]{2}:[0-9]{2}'
load_rich rt # dropped and created again: other oids, the same names
expect_exit 0 g --out "$D"
check "the schema created again: models.h byte for byte" cmp "$H" "$WORK/out.1/models.h"
check "the schema created again: models.c byte for byte" cmp "$C" "$WORK/out.1/models.c"

# ---- 4. names ---------------------------------------------------------------------
CASE=names
in_files "$H"
expect_grep out \
  '^  X\(ORM_COLUMN\(default_, "default"\), ORM_T_TEXT, const char \*, 0\) +\\$' \
  '^  X\(ORM_COLUMN\(Order_Total, "Order Total"\), ORM_T_NUMERIC, const char \*, ORM_F_NULLABLE\) +\\$' \
  '^ORM_MODEL_DECLARE_REL\(select, SELECT_FIELDS, SELECT_RELATIONS\);$' \
  '^  R\(author, ORM_BELONGS_TO, people, author_id, NULL\) +\\$' \
  '^  R\(editor, ORM_BELONGS_TO, people, editor_id, NULL\) +\\$' \
  '^  R\(posts_as_author, ORM_HAS_MANY, post, author_id, NULL\) +\\$' \
  '^  R\(posts_as_editor, ORM_HAS_MANY, post, editor_id, NULL\) +\\$' \
  '^  R\(profile, ORM_HAS_ONE, profile, person_id, NULL\) +\\$' \
  '^  R\(person, ORM_BELONGS_TO, people, person_id, NULL\)$' \
  '^  R\(select, ORM_HAS_MANY, select, person_id, NULL\) +\\$' \
  '^  R\(parent, ORM_BELONGS_TO, category, parent_id, NULL\) +\\$' \
  '^  R\(categories_as_parent, ORM_HAS_MANY, category, parent_id, NULL\) +\\$' \
  '^  R\(posts, ORM_HAS_MANY, post, category_id, NULL\)$' \
  '^  R\(category, ORM_BELONGS_TO, category, category_id, NULL\) +\\$' \
  '^  R\(tags, ORM_MANY_TO_MANY, tag, ORM_THROUGH\("post_tags", "post_id", "tag_slug"\), NULL\)$' \
  '^  R\(posts, ORM_MANY_TO_MANY, post, ORM_THROUGH\("post_tags", "tag_slug", "post_id"\), NULL\)$' \
  '^  R\(follows_followee, ORM_MANY_TO_MANY, people, ORM_THROUGH\("follows", "follower_id", "followee_id"\), NULL\) +\\$' \
  '^  R\(follows_follower, ORM_MANY_TO_MANY, people, ORM_THROUGH\("follows", "followee_id", "follower_id"\), NULL\)$' \
  '^typedef enum \{$' '^  MOOD_HAPPY = 0,$' '^  MOOD_SO_SO = 1,$' '^  MOOD_SAD = 2,$' '^\} mood_t;$' \
  '^#define MOOD_COUNT 3$' '^extern const char \*const mood_labels\[MOOD_COUNT\];$' \
  '^  PRIORITY_HIGH = 2,$' '^\} priority_t;$' '^extern const char \*const priority_labels\[PRIORITY_COUNT\];$' \
  '^extern const orm_model_t \*\(\*const models_all\[\]\)\(void\);$' '^extern const size_t models_count;$' \
  "^/\\* \\($S\\.audit_log: no model: no primary key" \
  "^/\\* \\($S\\.post_revisions: no model: a composite primary key" \
  '^/\* \(column n_tsv, tsvector: no model type; left out\) \*/$' \
  '^ORM_MODEL_DECLARE_REL\(people, PEOPLE_FIELDS, PEOPLE_RELATIONS\);$' \
  '^ORM_MODEL_DECLARE\(type_sample, TYPE_SAMPLE_FIELDS\);$'
# Every relation's name is distinct within its model (the C compiler would
# say so too: they are struct members).
expect_count out '^  R\((posts_as_author|posts_as_editor|profile|select|follows_followee|follows_follower),' 6
# Types and flags, a line each.
while read -r member rest; do
  expect_grep out "^  X\\($member, $rest\\)( +\\\\)?\$"
done <<'TYPES'
id ORM_T_INT4, int32_t, ORM_F_PK \| ORM_F_GENERATED
c_int2 ORM_T_INT2, int16_t, 0
c_int4 ORM_T_INT4, int32_t, 0
c_int8 ORM_T_INT8, int64_t, 0
c_float4 ORM_T_FLOAT4, float, 0
c_float8 ORM_T_FLOAT8, double, 0
c_bool ORM_T_BOOL, bool, 0
c_text ORM_T_TEXT, const char \*, 0
c_varchar ORM_T_TEXT, const char \*, 0
c_char ORM_T_TEXT, const char \*, 0
c_name ORM_T_TEXT, const char \*, 0
c_json ORM_T_JSON, const char \*, 0
c_jsonb ORM_T_JSONB, const char \*, 0
c_bytea ORM_T_BYTEA, orm_bytes_t, 0
c_timestamp ORM_T_TIMESTAMP, int64_t, 0
c_timestamptz ORM_T_TIMESTAMPTZ, int64_t, 0
c_date ORM_T_DATE, int32_t, 0
c_uuid ORM_T_UUID, orm_uuid_t, 0
c_numeric ORM_T_NUMERIC, const char \*, 0
c_int2s ORM_T_INT_ARRAY, orm_int_array_t, 0
c_int4s ORM_T_INT_ARRAY, orm_int_array_t, 0
c_int8s ORM_T_INT_ARRAY, orm_int_array_t, 0
c_texts ORM_T_TEXT_ARRAY, orm_text_array_t, 0
c_varchars ORM_T_TEXT_ARRAY, orm_text_array_t, 0
c_priority ORM_T_ENUM, const char \*, 0
c_positive ORM_T_INT4, int32_t, 0
id ORM_T_INT8, int64_t, ORM_F_PK \| ORM_F_GENERATED
n_int2 ORM_T_INT2, int16_t, ORM_F_NULLABLE
n_char ORM_T_TEXT, const char \*, ORM_F_NULLABLE
n_uuid ORM_T_UUID, orm_uuid_t, ORM_F_NULLABLE
n_mood ORM_T_ENUM, const char \*, ORM_F_NULLABLE
n_email ORM_T_TEXT, const char \*, ORM_F_NULLABLE
n_default ORM_T_INT4, int32_t, ORM_F_GENERATED
n_total ORM_T_NUMERIC, const char \*, ORM_F_GENERATED \| ORM_F_NULLABLE
email ORM_T_TEXT, const char \*, ORM_F_UNIQUE
mood ORM_T_ENUM, const char \*, 0
created_at ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED
id ORM_T_UUID, orm_uuid_t, ORM_F_PK \| ORM_F_GENERATED
person_id ORM_T_INT8, int64_t, ORM_F_UNIQUE
slug ORM_T_TEXT, const char \*, ORM_F_PK
priority ORM_T_ENUM, const char \*, ORM_F_GENERATED
TYPES
# Join tables are no models; skipped columns are no members.
expect_nogrep out '(POST_TAG|FOLLOW|AUDIT_LOG|POST_REVISION)_FIELDS' '^  X\((n_tsv|n_point|n_moods),'
in_files "$C"
expect_grep out '^#include "models.h"$' \
  '^ORM_MODEL_DEFINE_REL_IN\(select, NULL, "select", SELECT_FIELDS, SELECT_RELATIONS\);$' \
  '^ORM_MODEL_DEFINE_REL_IN\(people, NULL, "people", PEOPLE_FIELDS, PEOPLE_RELATIONS\);$' \
  '^ORM_MODEL_DEFINE_IN\(type_sample, NULL, "type_samples", TYPE_SAMPLE_FIELDS\);$' \
  '^const char \*const mood_labels\[MOOD_COUNT\] = \{"happy", "so-so", "sad"\};$' \
  '^const char \*const priority_labels\[PRIORITY_COUNT\] = \{"low", "normal", "high"\};$' \
  "^const size_t models_count = $MODELS;\$"
expect_count out '^    [a-z_]+_model,$' "$MODELS"
if [ "$VIEWS" = 1 ]; then
  expect_grep out '^ORM_MODEL_DEFINE_VIEW_IN\(post_title, NULL, "post_titles", POST_TITLE_FIELDS\);$' \
    '^ORM_MODEL_DEFINE_VIEW_IN\(mood_count, NULL, "mood_counts", MOOD_COUNT_FIELDS\);$'
  in_files "$H"
  expect_nogrep out 'POST_TITLE_RELATIONS|MOOD_COUNT_RELATIONS'
  expect_exit 0 g --out "$D"
  expect_nogrep err 'post_titles|mood_counts'
fi
# --qualify: each model names its schema.
expect_exit 0 g --out "$WORK/qualified" --qualify
in_files "$WORK/qualified/models.c"
expect_grep out "^ORM_MODEL_DEFINE_REL_IN\\(people, \"$S\", \"people\", PEOPLE_FIELDS, PEOPLE_RELATIONS\\);\$"
expect_count out "^ORM_MODEL_DEFINE_[A-Z_]+\\([a-z_]+, \"$S\", " "$MODELS"

# ---- 5. --prefix, --name, -q, DATABASE_URL ------------------------------------------
CASE=prefix
P=$WORK/prefix
expect_exit 0 g --out "$P" --prefix app_
in_files "$P/models.h" "$P/models.c"
expect_grep out '^ORM_MODEL_DECLARE_REL\(app_people, APP_PEOPLE_FIELDS, APP_PEOPLE_RELATIONS\);$' \
  '^  R\(author, ORM_BELONGS_TO, app_people, author_id, NULL\) +\\$' \
  '^\} app_mood_t;$' '^  APP_MOOD_SO_SO = 1,$' '^#define APP_MOOD_COUNT 3$' \
  '^const char \*const app_mood_labels\[APP_MOOD_COUNT\] = ' \
  '^extern const orm_model_t \*\(\*const app_models_all\[\]\)\(void\);$' \
  "^const size_t app_models_count = $MODELS;\$" '^    app_category_model,$' \
  '^ORM_MODEL_DEFINE_REL_IN\(app_select, NULL, "select", APP_SELECT_FIELDS, APP_SELECT_RELATIONS\);$'
expect_count out '^ORM_MODEL_(DECLARE|DEFINE)' $((2 * MODELS))
expect_count out '^ORM_MODEL_(DECLARE|DEFINE)[A-Z_]*\(app_' $((2 * MODELS))
expect_nogrep out '[^_]models_all|(^|[^_])mood_t|(^|[^_])mood_labels'
expect_count out '^#define ' "$(grep -c '^#define APP_' "$P/models.h")"
expect_grep out '^#define APP_TYPE_SAMPLE_FIELDS\(X\)' '^#ifndef APP_MODELS_H$'
expect_exit 0 build_rt "$P" "$WORK/rt_prefix" -DMODELS_ALL=app_models_all -DMODELS_COUNT=app_models_count
rt_check "$WORK/rt_prefix" p "$MODELS" 0
CASE=name
N=$WORK/named
expect_exit 0 g --out "$N" --name my-models.v2
check "my-models.v2.h and my-models.v2.c, nothing else" \
  test "$(files_in "$N")" = "my-models.v2.c my-models.v2.h"
in_files "$N/my-models.v2.h" "$N/my-models.v2.c"
expect_grep out '^#include "my-models.v2.h"$' '^const size_t my_models_v2_count = ' \
  '^#ifndef MY_MODELS_V2_H$' '^ \*   uvorm gen --out <dir> --name my-models\.v2$'
# shellcheck disable=SC2046
# shellcheck disable=SC2086
expect_exit 0 "$CC" $EXTRA_CFLAGS -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -pedantic -I"$SRC/include" \
  $(pkg-config --cflags libuv libpq) -c -o "$WORK/named.o" "$N/my-models.v2.c"
CASE=quiet
expect_exit 0 g --out "$D" -q
expect_empty out err # "print errors only": the skipped tables are no errors
expect_exit 0 env DATABASE_URL="$DSN" PGOPTIONS="-c search_path=$S" timeout $T "$UVORM" gen --out "$WORK/env"
# (The same files, but for the --out in their banner.)
check "DATABASE_URL: the same models.h" cmp <(sed 1,3d "$WORK/env/models.h") <(sed 1,3d "$WORK/out.1/models.h")
check "DATABASE_URL: the same models.c" cmp <(sed 1,3d "$WORK/env/models.c") <(sed 1,3d "$WORK/out.1/models.c")

# ---- 6. --check ---------------------------------------------------------------------
CASE=check
expect_exit 0 g --check --out "$D"
expect_grep out "^$H and $C are up to date \\($MODELS models\\)\$"
cp "$H" "$WORK/models.h.before"
qs "ALTER TABLE people ADD COLUMN shoe_size int2"
expect_exit 1 g --check --out "$D"
expect_grep out "^--- $H" '^\+\+\+ \(from the database\)' '^@@ ' \
  '^\+  X\(shoe_size, ORM_T_INT2, int16_t, ORM_F_NULLABLE\)$' \
  '^-  X\(created_at, ORM_T_TIMESTAMPTZ, int64_t, ORM_F_GENERATED\)$'
expect_count out '^[-+]  X\(' 3 # created_at loses its last-line form, shoe_size comes
expect_nogrep out "^--- $C"
expect_grep err "^uvorm gen: $H differs from the database: regenerate with \`uvorm gen --out <dir>\`\$"
check "--check wrote nothing" cmp "$H" "$WORK/models.h.before"
check "and left no .tmp" test "$(files_in "$D")" = "models.c models.h"
expect_exit 0 g --out "$D"
expect_exit 0 g --check --out "$D"
expect_exit 0 g --check --out "$D" --quiet
expect_empty out
expect_exit 1 g --check --out "$WORK/never-generated"
expect_grep out '^\+#define PEOPLE_FIELDS'
check "--check created no directory" test ! -e "$WORK/never-generated"
# A change of the .c only: a new table.
qs "CREATE TABLE extras (id int PRIMARY KEY)"
expect_exit 1 g --check --out "$D"
expect_grep out "^--- $C" '^\+ORM_MODEL_DEFINE_IN\(extra, NULL, "extras", EXTRA_FIELDS\);$'
expect_grep err 'the models differ from the database'
qs "DROP TABLE extras"
expect_exit 0 g --check --out "$D"

# ---- 7. --strict, --table, --exclude ------------------------------------------------
CASE=strict
expect_exit 1 g --strict --out "$WORK/strict"
expect_grep err "^uvorm gen: $S\\.audit_log: no primary key .*\\(--strict\\)\$"
check "nothing written" nothing_in "$WORK/strict"
expect_exit 1 g --strict --exclude audit_log --exclude post_revisions --out "$WORK/strict"
expect_grep err "^uvorm gen: $S\\.nullable_samples\\.n_tsv: type tsvector has no model type \\(--strict\\)\$"
check "nothing written" nothing_in "$WORK/strict"
expect_exit 0 g --strict --exclude audit_log --exclude post_revisions --exclude nullable_samples \
  --out "$WORK/strict"
expect_empty err
CASE=table
load_rich tables
qs "CREATE TABLE uvorm_migrations (version text PRIMARY KEY)"
TD=$WORK/tables
expect_exit 0 g --out "$TD" --table people --table "$S.profiles" --table tags
expect_grep out "^wrote .*: 3 models, 1 enums\$"
expect_empty err
in_files "$TD/models.c"
expect_grep out '^const size_t models_count = 3;$'
expect_count out '^ORM_MODEL_DEFINE' 3
expect_grep out '^    people_model,$' '^    profile_model,$' '^    tag_model,$'
in_files "$TD/models.h"
expect_grep out '^  R\(profile, ORM_HAS_ONE, profile, person_id, NULL\)$' \
  '^  R\(person, ORM_BELONGS_TO, people, person_id, NULL\)$' \
  '^ORM_MODEL_DECLARE\(tag, TAG_FIELDS\);$' # its many-to-many goes: posts is not read
expect_nogrep out 'posts_as_author|follows_|ORM_MANY_TO_MANY|priority_t'
expect_exit 0 build_rt "$TD" "$WORK/rt_tables"
rt_check "$WORK/rt_tables" t 3 0
expect_grep out '^ok profiles: ' '^ok tags: '
expect_exit 1 g --out "$WORK/nomatch" --table people --table no_such_table
expect_grep err '^uvorm gen: --table no_such_table matches no table or view$'
check "nothing written" nothing_in "$WORK/nomatch"
expect_exit 1 g --out "$WORK/nomatch" --table other_schema.people
expect_grep err 'other_schema\.people matches no'
check "nothing written" nothing_in "$WORK/nomatch"
# The migrations' history: no model, unless asked for.
expect_exit 0 g --out "$WORK/tables_all"
in_files "$WORK/tables_all/models.h" "$WORK/tables_all/models.c"
expect_nogrep out 'uvorm_migration'
expect_exit 0 g --out "$WORK/history" --table uvorm_migrations
in_files "$WORK/history/models.c"
expect_grep out '^ORM_MODEL_DEFINE_IN\(uvorm_migration, NULL, "uvorm_migrations", UVORM_MIGRATION_FIELDS\);$'
CASE=exclude
expect_exit 0 g --out "$WORK/excluded" --exclude type_samples --exclude "$S.nullable_samples" \
  --exclude uvorm_migrations
in_files "$WORK/excluded/models.c"
expect_grep out "^const size_t models_count = $((MODELS - 2));\$"
expect_nogrep out '^ORM_MODEL_DEFINE.*(type_sample|nullable_sample)' '^    (type_sample|nullable_sample)_model,$'
in_files "$WORK/excluded/models.h"
expect_grep out '^  R\(posts_as_author, ORM_HAS_MANY, post, author_id, NULL\) +\\$'
expect_exit 1 g --out "$WORK/all-excluded" --exclude people --exclude posts --exclude profiles \
  --exclude tags --exclude categories --exclude type_samples --exclude nullable_samples \
  --exclude select --exclude audit_log --exclude post_revisions --exclude post_tags \
  --exclude follows --exclude post_titles --exclude mood_counts --exclude uvorm_migrations
expect_grep err 'no table or view in schema .*(after --exclude)'
check "nothing written" nothing_in "$WORK/all-excluded"

# ---- 8. bad input --------------------------------------------------------------------
CASE=database
t0=$(now_ms)
expect_exit 1 uvorm gen --out "$WORK/unreachable" --database "postgresql://u:topsecret@127.0.0.1:1/x"
t1=$(now_ms)
check "it failed within 5 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 5000
expect_grep err '^uvorm gen: cannot connect'
expect_nogrep both topsecret
check "nothing written" nothing_in "$WORK/unreachable"
CASE=empty-schema
use_schema empty
expect_exit 1 g --out "$WORK/empty"
expect_grep err "^uvorm gen: no table or view in schema .*$S"
expect_count err . 1
check "nothing written" nothing_in "$WORK/empty"
# Only tables that can be no model.
qs "CREATE TABLE no_key (a int)"
expect_exit 1 g --out "$WORK/empty"
expect_grep err "$S\\.no_key: skipped: no primary key" '^uvorm gen: no table can be a model'
check "nothing written" nothing_in "$WORK/empty"
# A search_path naming no schema that exists.
expect_exit 1 env PGOPTIONS="-c search_path=uvgen_no_such_schema" timeout $T "$UVORM" gen \
  --database "$DSN" --out "$WORK/empty"
expect_grep err '^uvorm gen: the search_path names no schema that exists: give --schema$'
expect_exit 1 g --out "$WORK/empty" --schema uvgen_no_such_schema
expect_grep err 'no table or view in schema .*uvgen_no_such_schema'
check "nothing written" nothing_in "$WORK/empty"
CASE=unwritable
S=uvgen_rt
: >"$WORK/afile"
expect_exit 1 g --out "$WORK/afile"
expect_grep err "$WORK/afile"
check "the file is still an empty file" test -f "$WORK/afile" -a ! -s "$WORK/afile"
expect_exit 1 g --out "$WORK/afile/sub"
expect_grep err "^uvorm gen: $WORK/afile/sub: Not a directory\$"
check "nothing beside it" test "$(find "$WORK" -maxdepth 1 -name 'afile*' | wc -l)" = 1
if [ "$(id -u)" != 0 ]; then
  RO_DIR=$WORK/readonly
  mkdir "$RO_DIR"
  chmod 0500 "$RO_DIR"
  expect_exit 1 g --out "$RO_DIR"
  expect_grep err "$RO_DIR/models\\.h\\.tmp: Permission denied"
  check "nothing written, no .tmp" nothing_in "$RO_DIR"
  chmod 0700 "$RO_DIR"
else
  echo "# unwritable: root writes into a 0500 directory: only the paths under a file run"
fi
# The second file cannot be written: neither is, and no .tmp is left.
W=$WORK/half
mkdir -p "$W/models.c.tmp"
expect_exit 1 g --out "$W"
expect_grep err "$W/models\\.c\\.tmp: Is a directory"
check "no models.h, no models.h.tmp" test ! -e "$W/models.h" -a ! -e "$W/models.h.tmp"
# The second cannot be renamed into place: the first is not either ("both
# or neither"): the old models.h stays.
W=$WORK/half2
mkdir -p "$W/models.c/x"
echo "/* old */" >"$W/models.h"
expect_exit 1 g --out "$W"
expect_grep err "$W/models\\.c"
check "models.h is still the old one" test "$(cat "$W/models.h")" = "/* old */"
check "no .tmp left" test ! -e "$W/models.h.tmp" -a ! -e "$W/models.c.tmp"
CASE=collisions
use_schema clash
qs 'CREATE TABLE users (id int PRIMARY KEY); CREATE TABLE "user" (id int PRIMARY KEY)'
expect_exit 1 g --out "$WORK/clash"
expect_grep err "^uvorm gen: $S\\.user and $S\\.users both become model user"
check "nothing written" nothing_in "$WORK/clash"
qs 'DROP TABLE "user"; CREATE TABLE "user-data" (id int PRIMARY KEY); CREATE TABLE user_data (id int PRIMARY KEY)'
expect_exit 1 g --out "$WORK/clash"
expect_grep err "^uvorm gen: $S\\.user-data and $S\\.user_data both become model user_data"
check "nothing written" nothing_in "$WORK/clash"
qs 'DROP TABLE "user-data", user_data; CREATE TABLE pairs (id int PRIMARY KEY, "a b" int, a_b int)'
expect_exit 1 g --out "$WORK/clash"
expect_grep err "^uvorm gen: $S\\.pairs: columns \"a b\" and \"a_b\" both become member a_b"
check "nothing written" nothing_in "$WORK/clash"
qs "DROP TABLE pairs; CREATE TYPE mood AS ENUM ('a'); CREATE TABLE moods (id int PRIMARY KEY, m mood)"
expect_exit 1 g --out "$WORK/clash"
expect_grep err "^uvorm gen: enum $S\\.mood and table $S\\.moods both become mood_t"
check "nothing written" nothing_in "$WORK/clash"
qs "DROP TABLE moods"
expect_exit 0 g --out "$WORK/clash"
expect_grep out '^wrote .*: 1 models, 0 enums$'

# ---- the end --------------------------------------------------------------------------
if [ $failed -gt 0 ]; then
  echo "gen.sh: $failed of $((passed + failed)) checks FAILED" >&2
  exit 1
fi
echo "gen.sh: all $passed checks passed"
