#!/usr/bin/env bash
# Starts (or stops) a throw-away PostgreSQL 15 and Mosquitto 2 on free
# loopback ports for Herald's tests and local runs.
#
#   scripts/test-servers.sh start DIR   # writes DIR/servers.env
#   scripts/test-servers.sh stop DIR
#
# For fault-injection tests, one server at a time:
#   scripts/test-servers.sh stop-mqtt|start-mqtt|restart-pg DIR
#
# DIR/servers.env defines HERALD_TEST_DATABASE_URL (a superuser URL to the
# "postgres" database), HERALD_TEST_MQTT_URI, and a second broker listener,
# HERALD_TEST_MQTT_OBSERVER_PORT, for test subscribers (so that a test can
# cut Herald's listener alone). Mosquitto runs with its queue limits raised
# so that it never drops messages silently under load. With
# HERALD_TEST_MQTT_PERSISTENCE=1 it persists its state to DIR (a restart
# keeps sessions and queued messages). With HERALD_TEST_PG_DURABLE=1,
# PostgreSQL keeps its crash-safe defaults (fsync, synchronous commit).
set -euo pipefail

action=${1:?usage: $0 start|stop DIR}
dir=${2:?usage: $0 start|stop DIR}

pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1)

free_port() {
  local port
  for _ in $(seq 1 200); do
    # Below the kernel's ephemeral range (32768+), so no outgoing
    # connection can be holding the port as its local end.
    port=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
      echo "${port}"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

wait_for_port() {
  local port=$1 what=$2
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "${what} did not start listening on port ${port}" >&2
  return 1
}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  [ -n "${pg_bin}" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
  command -v mosquitto >/dev/null || { echo "mosquitto not found (apt-get install mosquitto)" >&2; exit 1; }
  mkdir -p "${dir}"
  dir=$(cd "${dir}" && pwd)
  stop_quietly
  rm -rf "${dir}/pg" "${dir}/mosquitto"

  # PostgreSQL refuses to run as root: its files belong to user postgres.
  mkdir -p "${dir}/pg"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "${dir}/pg"; chmod 700 "${dir}/pg"; fi
  local pg_port
  pg_port=$(free_port)
  as_postgres "${pg_bin}/initdb" -D "${dir}/pg/data" -U postgres -A trust --no-sync >"${dir}/pg/initdb.log" 2>&1 \
    || { cat "${dir}/pg/initdb.log" >&2; exit 1; }
  cat >>"${dir}/pg/data/postgresql.conf" <<CONF
max_connections = 200
shared_buffers = 256MB
CONF
  # Extra server settings, one per line (the benchmark's --pg-statements).
  if [ -n "${HERALD_TEST_PG_SETTINGS:-}" ]; then
    printf '%s\n' "${HERALD_TEST_PG_SETTINGS}" >>"${dir}/pg/data/postgresql.conf"
  fi
  # Fast but not crash-safe, unless a test crashes the database on purpose.
  if [ "${HERALD_TEST_PG_DURABLE:-0}" != 1 ]; then
    cat >>"${dir}/pg/data/postgresql.conf" <<CONF
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  fi
  as_postgres "${pg_bin}/pg_ctl" -D "${dir}/pg/data" -l "${dir}/pg/server.log" -w -t 60 \
    -o "-p ${pg_port} -h 127.0.0.1 -k ${dir}/pg" start >/dev/null \
    || { cat "${dir}/pg/server.log" >&2; exit 1; }

  # Mosquitto: limits raised (its defaults drop messages silently), no persistence.
  mkdir -p "${dir}/mosquitto"
  local mqtt_port observer_port persistence=false
  mqtt_port=$(free_port)
  observer_port=$(free_port)
  if [ "${HERALD_TEST_MQTT_PERSISTENCE:-0}" = 1 ]; then persistence=true; fi
  cat >"${dir}/mosquitto/mosquitto.conf" <<CONF
user root
pid_file ${dir}/mosquitto/pid
per_listener_settings false
listener ${mqtt_port} 127.0.0.1
listener ${observer_port} 127.0.0.1
allow_anonymous true
persistence ${persistence}
persistence_location ${dir}/mosquitto/
autosave_interval 1
max_queued_messages 1000000
max_queued_bytes 0
max_inflight_messages 1000
max_keepalive 65535
log_dest file ${dir}/mosquitto/mosquitto.log
log_type error
log_type warning
log_type notice
CONF
  start_mqtt "${mqtt_port}"

  cat >"${dir}/servers.env" <<ENV
HERALD_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:${pg_port}/postgres
HERALD_TEST_MQTT_URI=tcp://127.0.0.1:${mqtt_port}
HERALD_TEST_PG_PORT=${pg_port}
HERALD_TEST_MQTT_PORT=${mqtt_port}
HERALD_TEST_MQTT_OBSERVER_PORT=${observer_port}
ENV
  echo "PostgreSQL on 127.0.0.1:${pg_port}, Mosquitto on 127.0.0.1:${mqtt_port} (${dir}/servers.env)"
}

start_mqtt() {
  mosquitto -c "${dir}/mosquitto/mosquitto.conf" -d
  wait_for_port "$1" mosquitto
}

stop_mqtt() {
  if [ -f "${dir}/mosquitto/pid" ]; then
    local pid
    pid=$(cat "${dir}/mosquitto/pid")
    kill "${pid}" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "${pid}" 2>/dev/null || break; sleep 0.05; done
    rm -f "${dir}/mosquitto/pid"
  fi
}

stop_quietly() {
  if [ -f "${dir}/pg/data/postmaster.pid" ]; then
    as_postgres "${pg_bin}/pg_ctl" -D "${dir}/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  stop_mqtt
}

case "${action}" in
  start) start ;;
  stop)
    [ -d "${dir}" ] || exit 0
    dir=$(cd "${dir}" && pwd)
    stop_quietly
    rm -f "${dir}/servers.env"
    ;;
  stop-mqtt) dir=$(cd "${dir}" && pwd); stop_mqtt ;;
  start-mqtt)
    dir=$(cd "${dir}" && pwd)
    # shellcheck source=/dev/null
    . "${dir}/servers.env"
    start_mqtt "${HERALD_TEST_MQTT_PORT}"
    ;;
  restart-pg)
    # Immediate mode: sessions die mid-transaction, as in a crash.
    dir=$(cd "${dir}" && pwd)
    as_postgres "${pg_bin}/pg_ctl" -D "${dir}/pg/data" -m immediate -w -t 60 restart >/dev/null
    ;;
  *) echo "unknown action ${action}" >&2; exit 2 ;;
esac
