#!/usr/bin/env bash
# Installs what uvorm needs to build, test and benchmark from Debian's
# packages, and nothing when all of it is already there. Safe to re-run.
set -euo pipefail

packages=(
  gcc make cmake pkg-config  # toolchain
  libuv1-dev libpq-dev        # the library's dependencies
  libcmocka-dev valgrind      # tests
  postgresql                  # the throwaway server (initdb, pg_ctl, psql, pgbench)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all dependencies present"
  exit 0
fi

sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
