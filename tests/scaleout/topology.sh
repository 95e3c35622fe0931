#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The scale-out test topology itself, with psql: replication, PgBouncer,
# TLS, SCRAM, a replica killed and restarted, and (on a small topology of
# its own) a promotion.
#
#   scripts/pg-test-cluster exec STATE_DIR -- bash tests/scaleout/topology.sh
#
# Needs the topology of `setup --replicas 2 --bouncer --tls`. TAP output;
# exits 1 if any check failed, 77 (skip) without a topology.
set -euo pipefail

if [ -z "${UVORM_TEST_PRIMARY_DSN:-}" ] || [ -z "${UVORM_TEST_CLUSTER:-}" ]; then
  echo "topology.sh: run me through scripts/pg-test-cluster exec STATE_DIR --" >&2
  exit 77
fi
for v in UVORM_TEST_REPLICA1_DSN UVORM_TEST_REPLICA2_DSN UVORM_TEST_BOUNCER_DSN UVORM_TEST_TLS_DSN; do
  [ -n "${!v:-}" ] || { echo "topology.sh: $v is empty: needs setup --replicas 2 --bouncer --tls" >&2; exit 2; }
done
CLUSTER=$UVORM_TEST_CLUSTER STATE=$UVORM_TEST_CLUSTER_STATE
PRIMARY=$UVORM_TEST_PRIMARY_DSN R1=$UVORM_TEST_REPLICA1_DSN R2=$UVORM_TEST_REPLICA2_DSN
# Nothing of the caller's may steer psql.
unset PGPASSWORD PGSSLMODE PGSSLROOTCERT PGOPTIONS PGTARGETSESSIONATTRS || true
export PGCONNECT_TIMEOUT=10

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { # DESCRIPTION [DETAIL]
  n=$((n + 1)) failed=$((failed + 1))
  echo "not ok $n - $1"
  [ -z "${2:-}" ] || while IFS= read -r line; do echo "#   $line"; done <<<"$2"
  echo "FAIL: $1" >&2
}

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$1" -c "$2" 2>&1; }
expect() { # DESCRIPTION DSN SQL EXPECTED
  local got
  if got=$(q "$2" "$3") && [ "$got" = "$4" ]; then ok "$1"
  else not_ok "$1" "expected '$4', got: $got"; fi
}
expect_fail() { # DESCRIPTION DSN ERE: connecting fails with a message matching ERE
  local got
  if got=$(q "$2" "SELECT 1"); then not_ok "$1" "connected: $got"
  elif grep -Eq -- "$3" <<<"$got"; then ok "$1"
  else not_ok "$1" "failed, but not with /$3/: $got"; fi
}
# until DSN SQL EXPECTED SECONDS: polls until SQL gives EXPECTED.
until_() {
  local deadline=$(($(date +%s%N) + $4 * 1000000000)) got
  while :; do
    got=$(q "$1" "$2" || true)
    [ "$got" = "$3" ] && return 0
    [ "$(date +%s%N)" -lt "$deadline" ] || { echo "$got"; return 1; }
    sleep 0.05
  done
}
expect_within() { # DESCRIPTION DSN SQL EXPECTED SECONDS
  local got
  if got=$(until_ "$2" "$3" "$4" "$5"); then ok "$1"
  else not_ok "$1" "not '$4' within $5 s, last: $got"; fi
}
port_of() { sed -n 's/.*port=\([0-9]*\).*/\1/p' <<<"$1"; } # the first port of a DSN
run() { # DESCRIPTION CMD...: CMD succeeds
  local what=$1 out
  shift
  if out=$("$@" 2>&1); then ok "$what"; else not_ok "$what" "$out"; fi
}

# ---- roles -------------------------------------------------------------------
expect "the primary is not in recovery" "$PRIMARY" "SELECT pg_is_in_recovery()" f
expect "replica1 is in recovery" "$R1" "SELECT pg_is_in_recovery()" t
expect "replica2 is in recovery" "$R2" "SELECT pg_is_in_recovery()" t
expect "both replicas stream from the primary" "$PRIMARY" \
  "SELECT string_agg(application_name || ':' || state, ',' ORDER BY application_name) FROM pg_stat_replication" \
  "replica1:streaming,replica2:streaming"
expect "the failover DSN reaches the primary" "$UVORM_TEST_FAILOVER_DSN" \
  "SELECT inet_server_port() = $(port_of "$PRIMARY"), pg_is_in_recovery()" "t|f"
expect "uvorm may read the statistics" "$PRIMARY" \
  "SELECT pg_has_role('pg_monitor', 'member') AND pg_has_role('pg_signal_backend', 'member')" t

# ---- replication -------------------------------------------------------------
token=topo-$$-$RANDOM
expect "a row is written on the primary" "$PRIMARY" \
  "CREATE TABLE IF NOT EXISTS topology_probe (token text PRIMARY KEY, at timestamptz DEFAULT now());
   INSERT INTO topology_probe (token) VALUES ('$token') RETURNING token" "$token"
for r in 1 2; do
  dsn=UVORM_TEST_REPLICA${r}_DSN
  expect_within "the row reaches replica$r within 5 s" "${!dsn}" \
    "SELECT count(*) FROM topology_probe WHERE token = '$token'" 1 5
done
got=$(q "$R1" "INSERT INTO topology_probe (token) VALUES ('x-$token')" || true)
if grep -q 'read-only transaction' <<<"$got"; then ok "a replica refuses writes (read-only transaction)"
else not_ok "a replica refuses writes (read-only transaction)" "$got"; fi

# ---- PgBouncer ----------------------------------------------------------------
B=$UVORM_TEST_BOUNCER_DSN
BADMIN=${B/dbname=uvorm/dbname=pgbouncer}
expect "a query through PgBouncer's uvorm alias" "$B" \
  "SELECT current_database() || '/' || current_user || '/' || inet_server_port()" \
  "uvorm/uvorm/$(port_of "$PRIMARY")"
got=$(q "$BADMIN" "SHOW POOLS" || true)
if grep -Eq '^uvorm\|uvorm\|.*\|transaction$' <<<"$got"; then ok "SHOW POOLS through the admin db: uvorm/uvorm in transaction mode"
else not_ok "SHOW POOLS through the admin db: uvorm/uvorm in transaction mode" "$got"; fi
got=$(q "$BADMIN" "SHOW CONFIG" || true)
if grep -Eq '^max_client_conn\|500\|' <<<"$got" && grep -Eq '^default_pool_size\|[0-9]+\|' <<<"$got"; then
  ok "SHOW CONFIG: max_client_conn 500"
else not_ok "SHOW CONFIG: max_client_conn 500" "$(grep -E 'max_client_conn|default_pool_size' <<<"$got")"; fi
expect_fail "PgBouncer refuses a wrong password" "${B/uvorm-bouncer-pw/wrong-pw}" \
  'password authentication failed|SASL authentication failed|auth failed'

# ---- TLS ------------------------------------------------------------------------
T=$UVORM_TEST_TLS_DSN
expect "verify-full with the right CA: the session is encrypted" "$T" \
  "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" t
expect "verify-full as host=127.0.0.1 (an IP in the SAN) connects" \
  "${T/host=localhost hostaddr=127.0.0.1/host=127.0.0.1}" "SELECT current_user" uvorm_scram
expect_fail "verify-full with the wrong CA fails certificate verification" \
  "${T/sslrootcert=$UVORM_TEST_TLS_CA/sslrootcert=$UVORM_TEST_TLS_WRONG_CA}" 'certificate verify failed'
expect_fail "verify-full to host 127.0.0.2 (not in the certificate) fails on the name" \
  "${T/host=localhost/host=127.0.0.2}" 'does not match host name'

# ---- SCRAM ----------------------------------------------------------------------
S=$UVORM_TEST_SCRAM_DSN
expect "uvorm_scram logs in with its password and may create in public" "$S" \
  "CREATE TABLE scram_probe_$$ (i int); DROP TABLE scram_probe_$$; SELECT current_user" uvorm_scram
expect_fail "a wrong SCRAM password fails" "${S/uvorm-scram-pw/not-the-pw}" \
  'password authentication failed for user "uvorm_scram"'
expect_fail "uvorm_scram without a password fails" "${S/ password=uvorm-scram-pw/} sslmode=disable" \
  'no password supplied|password authentication failed'

# ---- a replica killed and started again --------------------------------------------
run "kill replica2" "$CLUSTER" kill "$STATE" replica2
expect_fail "replica2 is down" "$R2" 'Connection refused|could not connect|failed'
token2=$token-after
expect "a row is written while replica2 is down" "$PRIMARY" \
  "INSERT INTO topology_probe (token) VALUES ('$token2') RETURNING token" "$token2"
run "start replica2" "$CLUSTER" start "$STATE" replica2
run "wait-streaming" "$CLUSTER" wait-streaming "$STATE"
expect "replica2 streams again" "$PRIMARY" \
  "SELECT state FROM pg_stat_replication WHERE application_name = 'replica2'" streaming
expect_within "replica2 caught up with the row written meanwhile" "$R2" \
  "SELECT count(*) FROM topology_probe WHERE token = '$token2'" 1 5
q "$PRIMARY" "DROP TABLE topology_probe" >/dev/null || true

# ---- promotion, on a topology of its own ---------------------------------------------
SUB=$(mktemp -d "${TMPDIR:-/tmp}/uvorm-topo.XXXXXX")
sub_down() { "$CLUSTER" teardown "$SUB" >/dev/null 2>&1 || true; rm -rf "$SUB"; }
trap sub_down EXIT
if out=$("$CLUSTER" setup "$SUB" --replicas 1 --watch $$ 2>&1); then
  ok "a second topology: ${out#pg-test-cluster: }"
  eval "$("$CLUSTER" env "$SUB" | sed -n 's/^export UVORM_TEST_\(PRIMARY_DSN\|REPLICA1_DSN\|FAILOVER_DSN\)=/SUB_\1=/p')"
  expect "its replica1 is in recovery" "$SUB_REPLICA1_DSN" "SELECT pg_is_in_recovery()" t
  run "kill its primary" "$CLUSTER" kill "$SUB" primary
  run "promote its replica1" "$CLUSTER" promote "$SUB" replica1
  expect "the promoted replica1 is not in recovery" "$SUB_REPLICA1_DSN" "SELECT pg_is_in_recovery()" f
  expect "the promoted replica1 takes writes" "$SUB_REPLICA1_DSN" \
    "CREATE TABLE promoted (i int); INSERT INTO promoted VALUES (42); SELECT i FROM promoted" 42
  expect "the failover DSN now reaches the promoted replica1" "$SUB_FAILOVER_DSN" \
    "SELECT inet_server_port() = $(port_of "$SUB_REPLICA1_DSN") AND NOT pg_is_in_recovery()" t
  run "teardown of the second topology" "$CLUSTER" teardown "$SUB"
  if [ ! -e "$SUB" ] && ! (exec 3<>"/dev/tcp/127.0.0.1/$(port_of "$SUB_REPLICA1_DSN")") 2>/dev/null; then
    ok "the second topology is gone (files and servers)"
  else not_ok "the second topology is gone (files and servers)" "$(ls -la "$SUB" 2>&1)"; fi
else
  not_ok "a second topology (setup --replicas 1)" "$out"
fi

echo "1..$n"
if [ $failed -gt 0 ]; then
  echo "topology.sh: $failed of $n checks failed" >&2
  exit 1
fi
