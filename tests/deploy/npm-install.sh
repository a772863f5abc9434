#!/usr/bin/env bash
# Installs the npm packages of the deploy checks (tests/deploy/package.json,
# pinned by package-lock.json) into DIR/node_modules, with npm's cache in
# DIR/npm-cache. Does nothing when DIR already holds exactly these versions,
# so the checks run offline after the first install.
#
#   tests/deploy/npm-install.sh build/deploy-node
set -euo pipefail

dir=${1:?usage: $0 DIR}
here=$(cd "$(dirname "$0")" && pwd)

for tool in node npm; do
  command -v "${tool}" >/dev/null || { echo "${tool} not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

mkdir -p "${dir}"
stamp="${dir}/installed.sha256"
wanted=$(cat "${here}/package.json" "${here}/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -d "${dir}/node_modules" ] && [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${wanted}" ]; then
  echo "npm packages of the deploy checks are up to date in ${dir}"
  exit 0
fi

rm -f "${stamp}"
cp "${here}/package.json" "${here}/package-lock.json" "${dir}/"
# Two tries: a registry hiccup should not fail the suite.
for attempt in 1 2; do
  if (cd "${dir}" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error --cache "${dir}/npm-cache"); then
    echo "${wanted}" >"${stamp}"
    echo "installed the npm packages of the deploy checks in ${dir}"
    exit 0
  fi
  echo "npm ci failed (attempt ${attempt})" >&2
  sleep 2
done
exit 1
