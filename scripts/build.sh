#!/usr/bin/env bash
# Configures and builds Herald in build/ (or $HERALD_BUILD_DIR).
#
#   scripts/build.sh            # everything, tests included
#   scripts/build.sh herald     # one target
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${HERALD_BUILD_DIR:-build}
cmake -S . -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-RelWithDebInfo}" >/dev/null
cmake --build "${build_dir}" -j "$(nproc)" ${1:+--target "$@"}
