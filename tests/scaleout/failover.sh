#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the failover tests (the C program given) on a topology of its own, a
# primary and two replicas, because they promote replica2 beside a live
# primary, then kill the primary and promote replica1: the shared fixture's
# topology stays as it is.
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
"$cluster" setup "$state" --replicas 2 --watch $$ || rc=$?
[ $rc = 0 ] || exit $rc
"$cluster" exec "$state" -- "$prog" || rc=$?
exit $rc
