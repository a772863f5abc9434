#!/usr/bin/env bash
# Installs what Herald needs to build, test and run locally, from Debian 12
# packages only. Does nothing when everything is already installed.
#
#   scripts/install-deps.sh
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libpaho-mqttpp-dev libpaho-mqtt-dev libssl-dev libpqxx-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libspdlog-dev libssl-dev libjemalloc-dev
  postgresql mosquitto mosquitto-clients prometheus openssl iptables
  clang libclang-rt-14-dev
  shellcheck
)
# The deploy checks (tests/deploy/) run on node and npm. A machine that has
# them from elsewhere (NodeSource's nodejs brings its own npm, which Debian's
# npm package would conflict with) keeps its own.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  packages+=(nodejs npm)
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "${package}" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("${package}")
  fi
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
echo "Installing: ${missing[*]}"
${sudo} apt-get update -q
DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -q --no-install-recommends "${missing[@]}"
# The Debian packages start system-wide servers; Herald's scripts run their own.
for service in mosquitto postgresql prometheus; do
  ${sudo} systemctl disable --now "${service}" >/dev/null 2>&1 || true
done
