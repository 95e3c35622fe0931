#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs a failover test (the C program given) on a topology of its own, a
# primary and one replica, because the test kills the primary and promotes
# the replica: the shared fixture's topology stays as it is.
#
#   tests/scaleout/failover.sh scripts/pg-test-cluster PROGRAM
#
# Exits with the program's status; 77 (skip) where the topology cannot be
# made (DATABASE_URL or PG* set).
set -euo pipefail
cluster=$1 prog=$2
state=$(mktemp -d "${TMPDIR:-/tmp}/uvorm-failover.XXXXXX")
down() { "$cluster" teardown "$state" >/dev/null 2>&1 || true; rm -rf "$state"; }
trap down EXIT
rc=0
"$cluster" setup "$state" --replicas 1 --watch $$ || rc=$?
[ $rc = 0 ] || exit $rc
"$cluster" exec "$state" -- "$prog" || rc=$?
exit $rc
