#!/usr/bin/env bash
# Herald's benchmark: the one command (docs/performance.md).
#
#   bench/run.sh                      # every scenario at QoS 0, 1 and 2 (under 10 minutes;
#                                     # the rate scenarios three times, the median reported)
#   bench/run.sh --quick              # small counts, QoS 1 only: a smoke run of about a minute
#   bench/run.sh --scenario group100k --scenario single --qos 1
#   bench/run.sh --herald-flag=--delivery_workers=4    # try a Herald setting
#   bench/run.sh --perf               # also sample every CPU with perf during each scenario
#   bench/run.sh --pg-statements      # also list each scenario's costliest SQL statements
#
# It installs what it needs (Debian packages; nothing when all are there),
# builds Herald and the benchmark's programs in Release in build-bench/,
# starts its own PostgreSQL and Mosquitto (scripts/test-servers.sh) in the
# run's results folder, seeds 100,000 devices, runs the bare-publisher
# ceiling and every scenario (bench/orchestrate.py), stops everything, and
# prints the Markdown table. Results: bench/results/<UTC timestamp>/
# (results.json, results.md, plot.png, raw/ per-program JSON, logs/).
# Exit status 1 if any message was lost.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HERALD_BENCH_BUILD_DIR:-${repo}/build-bench}

perf=0
for arg in "$@"; do
  case "${arg}" in
    --perf) perf=1 ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  esac
done

# --- packages: Herald's build dependencies and servers, plus the bench's own.
"${repo}/scripts/install-deps.sh"
extra=(python3 gnuplot-nox libmosquitto-dev)
if [ "${perf}" = 1 ]; then extra+=(linux-perf); fi
missing=()
for package in "${extra[@]}"; do
  if ! dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("${package}")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "Installing: ${missing[*]}"
  ${sudo} apt-get update -q
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- build: Release, without the tests (the bench does not need them).
cmake -S "${repo}" -B "${build}" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DHERALD_BUILD_TESTS=OFF -DHERALD_BUILD_BENCH=ON >/dev/null
cmake --build "${build}" -j"$(nproc)" --target bench

# --- run.
results=${repo}/bench/results/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "${results}"
echo "Results in ${results}" >&2
exec /usr/bin/python3 "${repo}/bench/orchestrate.py" --build "${build}" --results "${results}" "$@"
