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
status=0
ctest --test-dir "${build_dir}" --output-on-failure --timeout 600 -j 2 "$@" \
  | tee "${build_dir}/ctest-output.log" || status=$?
# The fault-injection suite's figures (one line per scenario), also when it
# passed; then ctest's verdict again, as the last line.
grep -h "^fault scenario=" "${build_dir}"/Testing/Temporary/LastTest*.log 2>/dev/null | sort -u || true
grep -E "tests passed, [0-9]+ tests failed out of" "${build_dir}/ctest-output.log" | tail -n 1 || true
exit "${status}"
