#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: installs the packages,
# builds, starts its own PostgreSQL and Mosquitto (the CTest `servers`
# fixture), and runs every test: unit, integration and end to end.
#
#   scripts/test.sh              # everything
#   scripts/test.sh -L unit      # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
build_dir=${HERALD_BUILD_DIR:-build}
ctest --test-dir "${build_dir}" --output-on-failure --timeout 600 -j 2 "$@"
