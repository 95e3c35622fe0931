#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The `uvorm migrate` program end to end, against a real server:
#
#   scripts/pg-test-server exec STATE -- tests/migrate/cli.sh UVORM_EXE WORK_DIR CC [CFLAGS]
#
# CFLAGS: what programs linked with the build's libuvorm.a need (the
# sanitizers of an ASan build).
# UVORM_TEST_DSN names the server (key=value conninfo or URL). Every case
# runs in a schema of its own (the program reaches it through PGOPTIONS'
# search_path), with its migration files under WORK_DIR. Prints one line per
# check; exits 1 if any failed.
set -euo pipefail

[ $# -eq 3 ] || [ $# -eq 4 ] || { echo "usage: $0 UVORM_EXE WORK_DIR CC [CFLAGS]" >&2; exit 2; }
EXTRA_CFLAGS=${4:-}
: "${UVORM_TEST_DSN:?run me through scripts/pg-test-server exec}"
UVORM=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
WORK=$2 CC=$3 DSN=$UVORM_TEST_DSN
SRC=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$(dirname "$UVORM")/.." && pwd) # UVORM is BUILD/tools/uvorm
[ -x "$UVORM" ] || { echo "cli.sh: $UVORM is not an executable" >&2; exit 2; }
case $WORK in "" | /) echo "cli.sh: refusing WORK_DIR '$WORK'" >&2; exit 2 ;; esac
rm -rf "$WORK"
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
OUT=$WORK/stdout ERR=$WORK/stderr
: >"$OUT"; : >"$ERR"
# Our sessions, by name: the cleanup ends those a killed run left behind.
export PGAPPNAME=uvcli-$$-

# ---- checks ------------------------------------------------------------------

passed=0 failed=0 CASE=setup
ok() { passed=$((passed + 1)); echo "ok $passed - $CASE: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $CASE: $*" >&2; }
bad() { # fail, showing the last command's output
  fail "$@"
  { echo "  --- stdout:"; sed -n '1,15s/^/  | /p' "$OUT"
    echo "  --- stderr:"; sed -n '1,15s/^/  | /p' "$ERR"; } >&2
}
shown() { local d="$*"; d=${d//"$UVORM"/uvorm}; d=${d//"$WORK"/WORK}; echo "$d"; }

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
  # shellcheck disable=SC2046
  if grep -Eqh -- "$2" $(files_of "$1"); then bad "$1 has /$(shown "$2")/"
  else ok "$1 has no /$(shown "$2")/"; fi
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

# psql on the test database; -At: bare values.
q() {
  PGOPTIONS="-c client_min_messages=warning" psql -X -q -At -v ON_ERROR_STOP=1 "$DSN" -c "$1"
}
expect_sql() { # SQL EXPECTED
  local got
  got=$(q "$1" 2>&1) || true
  if [ "$got" = "$2" ]; then ok "psql: $1 = $(echo "$2" | paste -sd' ')"; else fail "psql: $1 = '$got', expected '$2'"; fi
}

# use_schema NAME: a fresh schema $S for the case.
SCHEMAS=()
use_schema() {
  S=uvcli_$1
  SCHEMAS+=("$S")
  q "DROP SCHEMA IF EXISTS $S CASCADE; CREATE SCHEMA $S" >/dev/null
}

# m ARGS...: `uvorm migrate` on the test database, in schema $S. No run may
# hang the test: timeout's exit 124 fails the check.
T=30
m() { PGOPTIONS="-c search_path=$S" timeout -k 2 $T "$UVORM" migrate --database "$DSN" "$@"; }
uvorm() { timeout -k 2 $T "$UVORM" "$@"; }
# put DIR FILE LINES...: writes DIR/FILE.
put() { local d=$1 f=$2; shift 2; mkdir -p "$d"; printf '%s\n' "$@" >"$d/$f"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

BOUNCER_PID_FILE="" BOUNCER_TMP="" LOCKER=""
cleanup() {
  local rc=$?
  [ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null
  if [ -n "$BOUNCER_PID_FILE" ] && [ -s "$BOUNCER_PID_FILE" ]; then
    kill "$(cat "$BOUNCER_PID_FILE")" 2>/dev/null || true
  fi
  [ -n "$BOUNCER_TMP" ] && rm -rf "$BOUNCER_TMP"
  if [ ${#SCHEMAS[@]} -gt 0 ]; then
    PGOPTIONS="-c client_min_messages=warning -c lock_timeout=5000" psql -X -q "$DSN" \
      -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE application_name LIKE '$PGAPPNAME%' AND pid <> pg_backend_pid()" \
      -c "DROP SCHEMA IF EXISTS $(IFS=,; echo "${SCHEMAS[*]}") CASCADE" >/dev/null 2>&1 || true
  fi
  exit $rc
}
trap cleanup EXIT
trap 'echo "cli.sh: line $LINENO: a setup step failed (not a check)" >&2' ERR

# Where the server is, as psql sees it (for PG* variables and PgBouncer).
read -r PG_HOST PG_PORT PG_USER PG_DB < <(psql -X -At "$DSN" -c '\echo :HOST :PORT :USER :DBNAME')

# ---- 1. usage ----------------------------------------------------------------
CASE=usage
expect_exit 0 uvorm --help
expect_grep out '^  migrate '
expect_exit 0 uvorm migrate --help
for c in new up down status verify resolve embed; do expect_grep out "^  $c "; done
expect_grep out --database --dir --dry-run --lock-timeout --table --schema --quiet --to \
  --allow-out-of-order --retry --out --symbol
while read -r args; do
  eval "expect_exit 2 uvorm $args" </dev/null
  expect_grep err '^uvorm: |^usage: uvorm'
  expect_empty out
done <<'ARGS'

migrate
frobnicate
migrate frobnicate
migrate up --no-such-option
migrate up --dir
migrate down x
migrate down 0
migrate down 1 2
migrate new 'bad name' --dir "$WORK/usage"
migrate new
migrate up extra
migrate up --lock-timeout abc
migrate up --lock-timeout -5
migrate embed
migrate status --to 1
migrate up --to 12x
migrate down --allow-out-of-order
migrate up --retry
migrate up --out x.c
migrate resolve
migrate resolve abc
ARGS
check "new 'bad name' created nothing" test ! -e "$WORK/usage"

# ---- 2. new ------------------------------------------------------------------
CASE=new
use_schema new
D=$WORK/new
expect_exit 0 uvorm migrate new create_things --dir "$D"
newest() { find "$D" -regextype posix-extended -regex ".*/[0-9]{14}_$1\.up\.sql" -printf '%f\n'; }
up1=$(newest create_things)
check "created <14 digits>_create_things.up.sql" test -n "$up1"
check "and its .down.sql" test -f "$D/${up1%.up.sql}.down.sql"
expect_grep out "^created $D/${up1}\$"
v1=${up1%%_*}
vt=$(date -u -d "${v1:0:8} ${v1:8:2}:${v1:10:2}:${v1:12:2}" +%s 2>/dev/null || echo 0)
check "version $v1 is the UTC time (within 60 s)" \
  test $((vt - $(date -u +%s))) -le 60 -a $(($(date -u +%s) - vt)) -le 60
# The fresh (comment-only) file: an error, naming it.
expect_exit 1 m up --dir "$D"
expect_grep err "^uvorm: $D/${up1}: holds no SQL statement\$"
expect_exit 0 uvorm migrate new create_more --dir "$D"
up2=$(newest create_more)
check "a second new gets a larger version (${up2%%_*} > $v1)" test "${up2%%_*}" -gt "$v1"
# A clock behind the newest file: the next number, each time.
put "$WORK/new2" 99990101000000_future.up.sql 'SELECT 1;'
expect_exit 0 uvorm migrate new after --dir "$WORK/new2"
check "new after 99990101000000 is 99990101000001" test -f "$WORK/new2/99990101000001_after.up.sql"
expect_exit 0 uvorm migrate new again --dir "$WORK/new2"
check "then new again is 99990101000002" test -f "$WORK/new2/99990101000002_again.up.sql"

# ---- 3. up, status, verify, down ----------------------------------------------
CASE=up-down
use_schema updown
D=$WORK/updown
for x in a:1001 b:1002 c:1003; do
  n=${x%:*} v=${x#*:}
  put "$D" "${v}_create_$n.up.sql" "-- table $n" "CREATE TABLE t_$n (id int);" "INSERT INTO t_$n VALUES ($v);"
  put "$D" "${v}_create_$n.down.sql" "DROP TABLE t_$n;"
done
expect_exit 0 m status --dir "$D"
expect_count out '^100[123] +create_[abc] +pending +-$' 3
expect_exit 0 m up --dry-run --dir "$D"
expect_grep out '^would apply 1001 create_a$' '^would apply 1003 create_c$' \
  "^-- $D/1002_create_b.up.sql\$" '^CREATE TABLE t_b \(id int\);$' '^3 to apply$'
expect_sql "SELECT to_regclass('$S.t_a') IS NULL, to_regclass('$S.uvorm_migrations') IS NULL" 't|t'
expect_exit 0 m up --dir "$D"
expect_count out '^applied 100[123] create_[abc] \([0-9]+\.[0-9]{3} s\)$' 3
expect_grep out '^3 applied now; 3 applied in all, 0 pending$'
expect_sql "SELECT version, name, length(checksum), dirty, duration_ms >= 0 FROM $S.uvorm_migrations ORDER BY 1" \
  "$(printf '1001|create_a|64|f|t\n1002|create_b|64|f|t\n1003|create_c|64|f|t')"
expect_sql "SELECT (SELECT id FROM $S.t_a) + (SELECT id FROM $S.t_c)" 2004
expect_sql "SELECT checksum FROM $S.uvorm_migrations WHERE version = 1002" \
  "$(sha256sum "$D/1002_create_b.up.sql" | cut -d' ' -f1)"
expect_exit 0 m status --dir "$D"
expect_count out '^100[123] +create_[abc] +applied +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' 3
expect_exit 0 m verify --dir "$D"
expect_grep out '^verified: 3 applied migrations match their files, 0 pending$'
expect_exit 0 m up --dir "$D"
expect_grep out '^nothing to apply: up to date \(3 applied\)$'
expect_exit 0 m down --dry-run --dir "$D"
expect_grep out '^would revert 1003 create_c$' '^DROP TABLE t_c;$'
expect_sql "SELECT count(*), to_regclass('$S.t_c') IS NOT NULL FROM $S.uvorm_migrations" '3|t'
expect_exit 0 m down --dir "$D"
expect_grep out '^reverted 1003 create_c \([0-9]+\.[0-9]{3} s\)$'
expect_count out '^reverted' 1
expect_sql "SELECT count(*), max(version), to_regclass('$S.t_c') IS NULL FROM $S.uvorm_migrations" '2|1002|t'
expect_exit 0 m status --dir "$D"
expect_grep out '^1003 +create_c +pending +-$'
expect_exit 0 m down 2 --dir "$D"
expect_grep out '^reverted 1002 create_b ' '^reverted 1001 create_a '
expect_sql "SELECT count(*), to_regclass('$S.t_a') IS NULL FROM $S.uvorm_migrations" '0|t'
expect_exit 0 m down --dir "$D"
expect_grep out '^nothing to revert$'
expect_exit 2 m up --to 1004 --dir "$D"
expect_grep err '^uvorm: 1004 names no migration in '
expect_exit 0 m up --to 1002 --dir "$D"
expect_count out '^applied' 2
expect_grep out '^2 applied now; 2 applied in all, 1 pending$'
expect_sql "SELECT string_agg(version::text, ',' ORDER BY version) FROM $S.uvorm_migrations" '1001,1002'
expect_exit 0 m --quiet up --dir "$D"
expect_empty out err
expect_sql "SELECT count(*) FROM $S.uvorm_migrations" 3
expect_exit 0 m -q down 3 --dir "$D"
expect_empty out err
expect_exit 0 m up --dir "$D" --table hist_x --schema "$S"
expect_sql "SELECT count(*) FROM $S.hist_x" 3
expect_exit 2 m up --dir "$D" --table 'bad-name'

# ---- 4. a syntax error in the middle of a file --------------------------------
CASE=syntax-error
use_schema syntax
D=$WORK/syntax
put "$D" 2001_bad.up.sql '-- statement 2 of 3 has a syntax error on line 7' \
  'CREATE TABLE first_t (id int);' '' 'INSERT INTO first_t' '  (id)' 'VALUES' \
  '  (1,, 2);' 'CREATE TABLE third_t (id int);'
expect_exit 1 m up --dir "$D"
expect_grep err "^uvorm: $D/2001_bad.up.sql:7: .*syntax error.* \\(SQLSTATE 42601\\)\$" \
  '2001 bad was rolled back: nothing of it is applied'
expect_sql "SELECT to_regclass('$S.first_t') IS NULL, to_regclass('$S.third_t') IS NULL" 't|t'
expect_sql "SELECT count(*) FROM $S.uvorm_migrations" 0
# A run-time error: the line of the position the server reports.
put "$D" 2001_bad.up.sql 'CREATE TABLE first_t (id int);' 'SELECT 1;' '' 'SELECT id,' \
  '       no_such_column' 'FROM first_t;'
expect_exit 1 m up --dir "$D"
expect_grep err "^uvorm: $D/2001_bad.up.sql:5: .*no_such_column.* \\(SQLSTATE 42703\\)\$"

# ---- 5. checksums ---------------------------------------------------------------
CASE=checksum
use_schema checksum
D=$WORK/checksum
put "$D" 3001_one.up.sql 'CREATE TABLE one (id int);'
put "$D" 3002_two.up.sql 'CREATE TABLE two (id int);'
expect_exit 0 m up --dir "$D"
cp "$D/3002_two.up.sql" "$WORK/3002.saved"
echo '-- edited after it was applied' >>"$D/3002_two.up.sql"
put "$D" 3003_three.up.sql 'CREATE TABLE three (id int);'
expect_exit 1 m up --dir "$D"
expect_grep err "^uvorm: $D/3002_two.up.sql.* changed after it was applied"
expect_sql "SELECT count(*) FROM $S.uvorm_migrations" 2
expect_exit 1 m verify --dir "$D"
expect_grep err "^uvorm: $D/3002_two.up.sql.* changed"
expect_exit 0 m status --dir "$D"
expect_grep out '^3002 +two +changed '
cp "$WORK/3002.saved" "$D/3002_two.up.sql"
expect_exit 0 m verify --dir "$D"
expect_grep out 'verified: 2 applied migrations match their files, 1 pending'
mv "$D/3001_one.up.sql" "$WORK/"
expect_exit 1 m verify --dir "$D"
expect_grep err 'version 3001 was applied but no file has it'
expect_exit 0 m status --dir "$D"
expect_grep out '^3001 +one +missing +[0-9T:Z-]+$'

# ---- 6. out of order --------------------------------------------------------------
CASE=out-of-order
use_schema order
D=$WORK/order
put "$D" 4002_second.up.sql 'CREATE TABLE second (id int);'
expect_exit 0 m up --dir "$D"
put "$D" 4001_first.up.sql 'CREATE TABLE first (id int);'
expect_exit 1 m up --dir "$D"
expect_grep err "$D/4001_first.up.sql.*--allow-out-of-order"
expect_sql "SELECT count(*), to_regclass('$S.first') IS NULL FROM $S.uvorm_migrations" '1|t'
expect_exit 0 m up --allow-out-of-order --dir "$D"
expect_grep out '^applied 4001 first '
expect_sql "SELECT string_agg(version::text, ',' ORDER BY version) FROM $S.uvorm_migrations" '4001,4002'
expect_exit 0 m verify --dir "$D"

# ---- 7. no-transaction migrations ---------------------------------------------------
# (CREATE INDEX CONCURRENTLY waits for older transactions: runs get 10 s.)
CASE=no-transaction
use_schema notx
D=$WORK/notx
put "$D" 5001_t7.up.sql 'CREATE TABLE t7 (a int, b int);' \
  'INSERT INTO t7 SELECT g, g FROM generate_series(1, 100) g;'
put "$D" 5002_idx.up.sql '-- uvorm:no-transaction' 'CREATE INDEX CONCURRENTLY t7_a_idx ON t7 (a);' \
  'SELECT * FROM t7_no_such_table;'
T=10 expect_exit 1 m up --dir "$D"
expect_grep out '^applied 5001 t7 '
expect_grep err "^uvorm: $D/5002_idx.up.sql:3: .*t7_no_such_table.*\\(SQLSTATE 42P01\\)" \
  'outside a transaction: it is dirty; .*uvorm migrate resolve 5002'
expect_exit 0 m status --dir "$D"
expect_grep out '^5002 +idx +dirty '
expect_exit 1 m up --dir "$D"
expect_grep err '5002_idx.up.sql \(version 5002\) is dirty.*resolve 5002'
expect_exit 1 m verify --dir "$D"
expect_grep err '5002_idx.up.sql is dirty'
expect_exit 1 m down --dir "$D"
expect_grep err 'version 5002 is dirty'
expect_exit 0 m resolve 5002 --retry --dir "$D"
expect_grep out '^5002 resolved: pending again$'
expect_sql "SELECT count(*) FROM $S.uvorm_migrations WHERE version = 5002" 0
put "$D" 5002_idx.up.sql '-- uvorm:no-transaction' \
  'CREATE INDEX CONCURRENTLY IF NOT EXISTS t7_a_idx ON t7 (a);' 'SELECT 1;'
T=10 expect_exit 0 m up --dir "$D"
expect_grep out '^applied 5002 idx '
expect_sql "SELECT dirty FROM $S.uvorm_migrations WHERE version = 5002" f
put "$D" 5003_half.up.sql '-- uvorm:no-transaction' 'ALTER TABLE t7 ADD COLUMN c int;' 'SELECT 1 / 0;'
expect_exit 1 m up --dir "$D"
expect_grep err '5003_half.up.sql:3: .*\(SQLSTATE 22012\)'
expect_sql "SELECT dirty FROM $S.uvorm_migrations WHERE version = 5003" t
expect_exit 0 m resolve 5003 --dir "$D"
expect_grep out '^5003 resolved: marked applied$'
expect_exit 0 m status --dir "$D"
expect_grep out '^5003 +half +applied '
expect_exit 0 m verify --dir "$D"
expect_exit 1 m resolve 5003 --dir "$D"
expect_grep err 'version 5003 is not dirty'
expect_exit 1 m resolve 5999 --dir "$D"
expect_grep err 'version 5999 is not in the history'
put "$D" 5004_idx_b.up.sql '-- uvorm:no-transaction' 'CREATE INDEX CONCURRENTLY t7_b_idx ON t7 (b);'
put "$D" 5004_idx_b.down.sql '-- uvorm:no-transaction' 'DROP INDEX CONCURRENTLY t7_b_idx;'
T=10 expect_exit 0 m up --dir "$D"
expect_grep out '^applied 5004 idx_b '
expect_sql "SELECT string_agg(c.relname || '=' || i.indisvalid, ',' ORDER BY c.relname)
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  WHERE c.relnamespace = '$S'::regnamespace AND c.relname LIKE 't7_%'" 't7_a_idx=true,t7_b_idx=true'
expect_sql "SELECT count(*) FROM $S.uvorm_migrations WHERE dirty" 0
T=10 expect_exit 0 m down --dir "$D"
expect_grep out '^reverted 5004 idx_b '
expect_sql "SELECT to_regclass('$S.t7_b_idx') IS NULL, count(*) FROM $S.uvorm_migrations" 't|3'

# ---- 8. --lock-timeout ------------------------------------------------------------------
CASE=lock-timeout
use_schema locks
D=$WORK/locks
put "$D" 6001_t8.up.sql 'CREATE TABLE t8 (a int);'
expect_exit 0 m up --dir "$D"
put "$D" 6002_alter.up.sql 'CREATE TABLE t8_side (a int);' 'ALTER TABLE t8 ADD COLUMN b int;'
PGAPPNAME=${PGAPPNAME}locker psql -X -q "$DSN" \
  -c "BEGIN; LOCK TABLE $S.t8 IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(10); COMMIT" \
  >/dev/null 2>&1 &
LOCKER=$!
for _ in $(seq 100); do
  held=$(q "SELECT count(*) FROM pg_locks WHERE relation = '$S.t8'::regclass AND granted")
  if [ "$held" = 1 ]; then break; fi; sleep 0.05
done
check "a background transaction holds t8" test "$held" = 1
t0=$(now_ms)
expect_exit 1 m up --lock-timeout 200 --dir "$D"
t1=$(now_ms)
check "it failed within 2 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 2000
expect_grep err "^uvorm: $D/6002_alter.up.sql:2: .*\\(SQLSTATE 55P03\\)"
expect_sql "SELECT count(*), to_regclass('$S.t8_side') IS NULL FROM $S.uvorm_migrations" '1|t'
q "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = '${PGAPPNAME}locker'" >/dev/null
wait "$LOCKER" || true
LOCKER=""
expect_exit 0 m up --lock-timeout 200 --dir "$D"
expect_grep out '^applied 6002 alter '

# ---- 9. down without a .down.sql -----------------------------------------------------------
CASE=no-down-file
use_schema nodown
D=$WORK/nodown
put "$D" 7001_nodown.up.sql 'CREATE TABLE t9 (a int);'
expect_exit 0 m up --dir "$D"
expect_exit 1 m down --dir "$D"
expect_grep err "^uvorm: $D/7001_nodown.up.sql has no .down.sql"
expect_sql "SELECT count(*), to_regclass('$S.t9') IS NOT NULL FROM $S.uvorm_migrations" '1|t'

# ---- 10. racing processes ------------------------------------------------------------------
race_dir() { # DIR: 3 migrations writing to a log table
  put "$1" 8001_log.up.sql 'CREATE TABLE race_log (v int);' 'INSERT INTO race_log VALUES (8001);'
  put "$1" 8002_slow.up.sql 'INSERT INTO race_log VALUES (8002);' 'SELECT pg_sleep(0.5);'
  put "$1" 8003_last.up.sql 'INSERT INTO race_log VALUES (8003);'
}
race() { # DIR CMD...: 6 `CMD up` at once; each migration applied once
  local dir=$1 pids=() i rc codes=""
  shift
  for i in 1 2 3 4 5 6; do
    "$@" up --dir "$dir" >"$WORK/race.$i.out" 2>"$WORK/race.$i.err" &
    pids+=($!)
  done
  for i in 0 1 2 3 4 5; do rc=0; wait "${pids[$i]}" || rc=$?; codes="$codes $rc"; done
  cat "$WORK"/race.?.out >"$OUT"
  cat "$WORK"/race.?.err >"$ERR"
  if [ "$codes" = " 0 0 0 0 0 0" ]; then ok "6 racing up exited 0"; else bad "6 racing up exited$codes"; fi
  expect_count out '^applied 800[123] ' 3
  expect_sql "SELECT string_agg(v || ':' || n, ',' ORDER BY v)
    FROM (SELECT v, count(*) n FROM $S.race_log GROUP BY v) x" '8001:1,8002:1,8003:1'
  expect_sql "SELECT count(*) FROM $S.uvorm_migrations" 3
}
CASE=race
use_schema race
race_dir "$WORK/race"
race "$WORK/race" m

# ---- 11. through PgBouncer in transaction mode ----------------------------------------------
CASE=pgbouncer
if [ "${UVORM_TEST_EXTERNAL:-0}" = 1 ] &&
  ! [[ $PG_HOST =~ ^(/.*|127\.0\.0\.1|localhost|::1)$ ]]; then
  echo "# pgbouncer: skipped (the server, $PG_HOST, is not on this machine)"
else
  use_schema bouncer
  # PgBouncer does not pass a client's `options` (search_path) on: it would
  # hold for whichever server connection a transaction gets. So the alias
  # uvorm_b sets the schema on each of its server connections
  # (connect_query; transaction mode never resets them), and its clients,
  # the program included, send no options (ignored if they do).
  BDIR=$WORK/bouncer
  mkdir -p "$BDIR"
  as_bouncer() { "$@"; }
  if [ "$(id -u)" = 0 ]; then # pgbouncer refuses to run as root
    chown postgres: "$BDIR"
    if ! runuser -u postgres -- test -w "$BDIR" 2>/dev/null; then
      BDIR=$(mktemp -d /tmp/uvorm-bouncer.XXXXXX)
      BOUNCER_TMP=$BDIR
      chown postgres: "$BDIR"
    fi
    as_bouncer() { (cd / && runuser -u postgres -- "$@"); }
  fi
  echo '"uvorm" "secretpw-123"' >"$BDIR/userlist.txt"
  chmod 0600 "$BDIR/userlist.txt"
  # A free port: asked of the kernel when python3 is there, else a random
  # one below the ephemeral range (client sockets take ports above it);
  # another process may take it first, so up to 5 tries.
  started=0
  for _try in 1 2 3 4 5; do
    rm -f "$BDIR/pgbouncer.log"
    BPORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' \
      2>/dev/null || echo $((20000 + RANDOM % 12000)))
    cat >"$BDIR/pgbouncer.ini" <<INI
[databases]
uvorm_b = host=$PG_HOST port=$PG_PORT dbname=$PG_DB user=$PG_USER connect_query='SET search_path = $S'
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BPORT
unix_socket_dir = ''
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
auth_type = md5
auth_file = $BDIR/userlist.txt
logfile = $BDIR/pgbouncer.log
pidfile = $BDIR/pgbouncer.pid
ignore_startup_parameters = extra_float_digits,options
INI
    [ "$(id -u)" = 0 ] && chown postgres: "$BDIR"/*
    BOUNCER_PID_FILE=$BDIR/pgbouncer.pid
    BDSN="host=127.0.0.1 port=$BPORT dbname=uvorm_b user=uvorm"
    if as_bouncer pgbouncer -d "$BDIR/pgbouncer.ini" >"$BDIR/start.log" 2>&1; then
      for _ in $(seq 100); do
        PGPASSWORD=secretpw-123 psql -X -At "$BDSN" -c 'SELECT 1' >/dev/null 2>&1 && { started=1; break; }
        sleep 0.05
      done
    fi
    [ $started = 1 ] && break
    grep -q 'Address already in use' "$BDIR/start.log" "$BDIR/pgbouncer.log" 2>/dev/null || break
  done
  if [ $started = 0 ]; then
    fail "pgbouncer did not start: $(cat "$BDIR/start.log" "$BDIR/pgbouncer.log" 2>/dev/null | tail -5)"
  else
    ok "pgbouncer on 127.0.0.1:$BPORT (transaction mode, pool of 2) accepts"
    b() { PGAPPNAME=${PGAPPNAME}b timeout -k 2 $T "$UVORM" migrate --database "$BDSN password=secretpw-123" "$@"; }
    BD=$WORK/bouncer_m
    race_dir "$BD"
    race "$BD" b
    expect_exit 0 b status --dir "$BD"
    expect_count out '^800[123] +[a-z]+ +applied ' 3
    put "$BD" 8004_idx.up.sql '-- uvorm:no-transaction' 'CREATE INDEX CONCURRENTLY race_log_v_idx ON race_log (v);'
    put "$BD" 8004_idx.down.sql '-- uvorm:no-transaction' 'DROP INDEX CONCURRENTLY race_log_v_idx;'
    T=10 expect_exit 0 b up --dir "$BD"
    expect_grep out '^applied 8004 idx '
    expect_sql "SELECT indisvalid FROM pg_index WHERE indexrelid = '$S.race_log_v_idx'::regclass" t
    expect_exit 0 b verify --dir "$BD"
    T=10 expect_exit 0 b down --dir "$BD"
    expect_grep out '^reverted 8004 idx '
    expect_exit 1 b down --dir "$BD" # 8003 has no down file
    expect_grep err '8003_last.up.sql has no .down.sql'
    expect_sql "SELECT to_regclass('$S.race_log_v_idx') IS NULL, count(*) FROM $S.uvorm_migrations" 't|3'
    T=10 expect_exit 0 b up --dir "$BD"
    expect_grep out '^applied 8004 idx '
    expect_exit 1 uvorm migrate status --dir "$BD" --database "$BDSN password=wrong-pw-999"
    expect_grep err 'authentication|28P01'
    expect_nogrep both 'wrong-pw-999|secretpw-123'
  fi
fi

# ---- 12. the database ---------------------------------------------------------------------
CASE=database
use_schema database
D=$WORK/database
put "$D" 9001_x.up.sql 'CREATE TABLE x (a int);'
t0=$(now_ms)
expect_exit 1 uvorm migrate up --dir "$D" --database "postgresql://u:topsecret@127.0.0.1:1/x"
t1=$(now_ms)
check "it failed within 5 s ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 5000
expect_nogrep both topsecret
expect_exit 2 uvorm migrate up --dir "$D" --database "host=a b=c'"
expect_nogrep both "b=c|host=a"
expect_grep err 'not one libpq accepts'
# Without --database: DATABASE_URL, else libpq's PG* variables.
expect_exit 0 env DATABASE_URL="$DSN" PGOPTIONS="-c search_path=$S" timeout $T "$UVORM" migrate up --dir "$D"
expect_grep out '^applied 9001 x '
if [ "${UVORM_TEST_EXTERNAL:-0}" != 1 ]; then # (an external server's password is unknown here)
  expect_exit 0 env -u DATABASE_URL PGHOST="$PG_HOST" PGPORT="$PG_PORT" PGUSER="$PG_USER" \
    PGDATABASE="$PG_DB" PGOPTIONS="-c search_path=$S" timeout $T "$UVORM" migrate status --dir "$D"
  expect_grep out '^9001 +x +applied '
fi
expect_exit 1 uvorm migrate status --dir "$WORK/no-such-dir" --database "$DSN"
expect_grep err "^uvorm: $WORK/no-such-dir: No such file or directory"

# ---- 13. embed -----------------------------------------------------------------------------
CASE=embed
D=$WORK/embed
put "$D" 0001_create.up.sql '-- é, a UTF-8 comment' "CREATE TABLE e (s text DEFAULT 'it''s');"
put "$D" 0001_create.down.sql 'DROP TABLE e;'
put "$D" 0002_idx.up.sql '-- uvorm:no-transaction' 'CREATE INDEX CONCURRENTLY e_idx ON e (s);'
{ echo 'INSERT INTO e VALUES'; for i in $(seq 400); do echo "  ('row $i padding padding'),"; done
  echo "  ('last');"; } >"$D/0010_big.up.sql" # longer than C's 4095-byte literal
expect_exit 0 uvorm migrate embed --dir "$D" --out "$WORK/m.c" --symbol my_migs
expect_grep out "^embedded 3 migrations of $D into $WORK/m.c \\(my_migs\\)\$"
cat >"$WORK/prog.c" <<'C'
#include <stdio.h>
#include <string.h>

#include <uvorm.h>

/* SYM (-D): expanded before the macros paste it. */
#define COUNT_(s) s##_count
#define COUNT(s) COUNT_(s)
#define DECLARE(s) ORM_MIGRATIONS_DECLARE(s)
DECLARE(SYM);

static int same(const char *a, const char *b) { return a == b || (a && b && !strcmp(a, b)); }

int main(int argc, char **argv) {
  orm_migrations_t *emb = NULL, *dir = NULL;
  char err[1024];
  if (argc != 2 || orm_migrations_load_embedded(SYM, COUNT(SYM), &emb, err, sizeof err) != 0 ||
      orm_migrations_load_dir(argv[1], &dir, err, sizeof err) != 0) {
    fprintf(stderr, "prog: %s\n", argc != 2 ? "usage: prog DIR" : err);
    return 1;
  }
  int bad = orm_migrations_count(emb) != orm_migrations_count(dir);
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < orm_migrations_count(k ? dir : emb); i++) {
      const orm_migration_t *m = orm_migrations_at(k ? dir : emb, i);
      printf("%s %s %s %s %s\n", k ? "dir" : "embedded", m->version, m->name, m->checksum,
             m->up_no_transaction ? "no-tx" : "tx");
    }
  for (size_t i = 0; !bad && i < orm_migrations_count(emb); i++) {
    const orm_migration_t *a = orm_migrations_at(emb, i), *b = orm_migrations_at(dir, i);
    bad = !same(a->version, b->version) || !same(a->name, b->name) ||
          !same(a->checksum, b->checksum) || !same(a->up_sql, b->up_sql) ||
          !same(a->down_sql, b->down_sql) || a->up_statements != b->up_statements ||
          a->up_no_transaction != b->up_no_transaction;
  }
  printf("count %zu %s\n", orm_migrations_count(emb), bad ? "DIFFER" : "same");
  orm_migrations_free(emb);
  orm_migrations_free(dir);
  return bad;
}
C
build_prog() { # SYMBOL GENERATED.c EXE
  # -D_POSIX_C_SOURCE: uv.h needs POSIX types strict C11 hides (the
  # project's own compile checks define it too).
  # shellcheck disable=SC2046
  # shellcheck disable=SC2086
  "$CC" $EXTRA_CFLAGS -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror -I"$SRC/include" \
    $(pkg-config --cflags libuv libpq) -DSYM="$1" -o "$3" "$WORK/prog.c" "$2" \
    "$BUILD/libuvorm.a" $(pkg-config --libs libuv libpq)
}
expect_exit 0 build_prog my_migs "$WORK/m.c" "$WORK/prog"
expect_exit 0 "$WORK/prog" "$D"
expect_grep out '^count 3 same$' \
  "^embedded 0001 create $(sha256sum "$D/0001_create.up.sql" | cut -d' ' -f1) tx\$" \
  "^embedded 0010 big $(sha256sum "$D/0010_big.up.sql" | cut -d' ' -f1) tx\$" \
  "^dir 0010 big $(sha256sum "$D/0010_big.up.sql" | cut -d' ' -f1) tx\$"
expect_count out '^(embedded|dir) 0002 idx [0-9a-f]{64} no-tx$' 2
# A bad file: exit 1, and no output file (nor a half one) left.
put "$WORK/embed_bad" 0001_ok.up.sql 'SELECT 1;'
put "$WORK/embed_bad" 0002_bad.up.sql "SELECT 'not closed;"
expect_exit 1 uvorm migrate embed --dir "$WORK/embed_bad" --out "$WORK/bad.c"
expect_grep err "^uvorm: $WORK/embed_bad/0002_bad.up.sql:1: .*not closed"
check "no bad.c nor bad.c.tmp" test ! -e "$WORK/bad.c" -a ! -e "$WORK/bad.c.tmp"
expect_exit 2 uvorm migrate embed --dir "$D" --out "$WORK/x.c" --symbol 1bad
check "no x.c" test ! -e "$WORK/x.c"
# An empty directory: a source that compiles, of no migrations.
mkdir -p "$WORK/embed_empty"
expect_exit 0 uvorm migrate embed --dir "$WORK/embed_empty" --out "$WORK/empty.c" --symbol empty_migs
expect_exit 0 build_prog empty_migs "$WORK/empty.c" "$WORK/prog_empty"
expect_exit 0 "$WORK/prog_empty" "$WORK/embed_empty"
expect_grep out '^count 0 same$'

# ---- the end --------------------------------------------------------------------------------
if [ $failed -gt 0 ]; then
  echo "cli.sh: $failed of $((passed + failed)) checks FAILED" >&2
  exit 1
fi
echo "cli.sh: all $passed checks passed"
