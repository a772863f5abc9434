#!/usr/bin/env bash
# Builds Herald's libFuzzer targets with clang (ASan + UBSan) in build-fuzz/
# and runs each for a bounded time. Crashes are kept under
# build-fuzz/artifacts/ and fail the run: turn each into a regression test.
#
#   scripts/fuzz.sh                 # 10 s per target (the test suite's run)
#   scripts/fuzz.sh --seconds 600   # a longer run
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=10
if [ "${1:-}" = "--seconds" ]; then seconds=${2:?--seconds needs a value}; fi
build_dir=${HERALD_FUZZ_BUILD_DIR:-build-fuzz}

CXX=clang++ cmake -S tests/fuzz -B "${build_dir}" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "${build_dir}" -j "$(nproc)"
mkdir -p "${build_dir}/artifacts" "${build_dir}/corpus"
status=0
# Keep this list in step with tests/fuzz/CMakeLists.txt.
for fuzzer in topic_fuzzer validation_fuzzer page_token_fuzzer topic_pattern_fuzzer \
    command_payload_fuzzer; do
  mkdir -p "${build_dir}/corpus/${fuzzer}"
  echo "fuzzing ${fuzzer} for ${seconds}s"
  if ! "${build_dir}/${fuzzer}" -max_total_time="${seconds}" -print_final_stats=0 \
      -artifact_prefix="${build_dir}/artifacts/${fuzzer}-" "${build_dir}/corpus/${fuzzer}" \
      >"${build_dir}/${fuzzer}.log" 2>&1; then
    echo "${fuzzer} found a problem:" >&2
    tail -n 40 "${build_dir}/${fuzzer}.log" >&2
    status=1
  fi
done
exit "${status}"
