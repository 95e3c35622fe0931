#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what uvorm needs to build, test, run the demo and benchmark, from
# Debian's packages (Debian 12 and later), and prints nothing when all of it
# is already there. Safe to re-run.
#
# Every package is named: apt installs without recommends, so nothing that a
# full system happens to have (libc6-dev behind gcc, procps, ...) is assumed.
set -euo pipefail

packages=(
  # toolchain: gcc alone has no C library headers or crt files
  gcc libc6-dev make cmake pkg-config
  # the library's dependencies
  libuv1-dev libpq-dev
  # tests: cmocka, valgrind (the plain run repeats every test under it)
  libcmocka-dev valgrind
  # the throwaway server: initdb, pg_ctl, psql, pgbench; runuser (util-linux)
  # starts it as the postgres user when we are root; locales for initdb
  postgresql postgresql-client locales util-linux
  # the migration tests run behind a real PgBouncer in transaction mode
  pgbouncer
  # the scale-out tests' throwaway CA (scripts/pg-test-cluster --tls)
  openssl
  # the example HTTP server: H2O built for libuv (its header includes
  # OpenSSL's), jansson for JSON; wrk loads it in bench/server.sh
  libh2o-dev libssl-dev libjansson-dev wrk
  # scripts: ps/kill (procps), awk, the bench's peak-memory figures (time),
  # TLS roots for servers reached over the network
  procps mawk time ca-certificates
)

# One dpkg-query for all of them: quick when nothing is missing.
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${packages[@]}" 2>/dev/null |
  awk '$NF == "installed" && $(NF-1) == "ok" { print $1 }' || true)
missing=()
for p in "${packages[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 ||
    { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
