#!/usr/bin/env bash
# Runs Herald locally with a PostgreSQL and a Mosquitto of its own (data in
# .herald-local/, removed on exit). gRPC on :50051, metrics on :9464 unless
# HERALD_GRPC_ADDRESS / HERALD_METRICS_ADDRESS say otherwise. Ctrl-C stops all.
#
#   scripts/run.sh [extra herald flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh herald heraldctl
build_dir=${HERALD_BUILD_DIR:-build}
local_dir=.herald-local

scripts/test-servers.sh start "${local_dir}"
trap 'scripts/test-servers.sh stop "${local_dir}"' EXIT
# shellcheck source=/dev/null
. "${local_dir}/servers.env"

# Callers need an API key (docs/security.md): one for the default tenant,
# every scope, kept with the local servers and gone with them.
"${build_dir}/service/herald" migrate --database_url="${HERALD_TEST_DATABASE_URL}" --log_level=warning
(umask 077 && "${build_dir}/service/herald" keys create --database_url="${HERALD_TEST_DATABASE_URL}" \
  --tenant=default --scopes=all --key_name=local-run 2>/dev/null >"${local_dir}/api-key")

cat <<EOF
Herald: gRPC on ${HERALD_GRPC_ADDRESS:-0.0.0.0:50051}, metrics on ${HERALD_METRICS_ADDRESS:-0.0.0.0:9464}
API key (tenant "default", every scope) in ${local_dir}/api-key.
Broker for devices: ${HERALD_TEST_MQTT_URI}. Try, in another terminal:
  export HERALD_API_KEY=\$(cat ${local_dir}/api-key)
  mosquitto_sub -h 127.0.0.1 -p ${HERALD_TEST_MQTT_PORT} -t 'devices/#' -v &
  ${build_dir}/service/ctl/heraldctl devices create sensor-001 --owner=home-1
  ${build_dir}/service/ctl/heraldctl notify --devices=sensor-001 --title="Door open" --body="Front door" --wait
  ${build_dir}/service/ctl/heraldctl stats
  curl -s 127.0.0.1:9464/metrics | grep herald_deliveries_total
EOF
"${build_dir}/service/herald" serve --migrate \
  --database_url="${HERALD_TEST_DATABASE_URL}" \
  --mqtt_uri="${HERALD_TEST_MQTT_URI}" \
  "$@" &
herald_pid=$!
trap 'kill -TERM ${herald_pid} 2>/dev/null; wait ${herald_pid}; scripts/test-servers.sh stop "${local_dir}"' EXIT
trap 'exit 0' INT TERM
wait ${herald_pid}
