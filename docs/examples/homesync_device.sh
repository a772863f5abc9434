#!/bin/sh
# A HomeSync-style device as a shell loop, for trying Herald's commands and
# presence without firmware (docs/commands.md). It needs only the Mosquitto
# clients (apt install mosquitto-clients) and speaks the contract a firmware
# author implements:
#   * presence: {"online": true} retained on .../status/online when it starts;
#     the broker publishes the retained Last Will {"online": false} if the
#     connection drops;
#   * commands: {"request_id","action","params","sent_at"} on .../command/relay;
#   * answers:  {"request_id","status","result"} on .../response/command.
#
#   MQTT_HOST=localhost MQTT_PORT=1883 DEVICE_ID=node-001 HOME_ID=abc123 \
#     sh docs/examples/homesync_device.sh
#
# Herald runs with the matching templates:
#   --command_topic_template='homesync/{meta.home_id}/nodes/{device_id}/command/relay'
#   --response_topic_template='homesync/{meta.home_id}/nodes/{device_id}/response/command'
#   --presence_topic_template='homesync/{meta.home_id}/nodes/{device_id}/status/online'
# and the device is registered with metadata home_id = $HOME_ID.
set -eu

host=${MQTT_HOST:-localhost}
port=${MQTT_PORT:-1883}
device=${DEVICE_ID:-node-001}
home=${HOME_ID:-abc123}
base="homesync/$home/nodes/$device"

# Presence: online now (retained, so Herald also learns it after a restart).
mosquitto_pub -h "$host" -p "$port" -q 1 -r -t "$base/status/online" -m '{"online": true}'
# A clean exit says goodbye itself; the Last Will below covers a crash.
trap 'mosquitto_pub -h "$host" -p "$port" -q 1 -r -t "$base/status/online" -m "{\"online\": false}"' EXIT

# Commands arrive one JSON object per line. Answer each with its request_id.
mosquitto_sub -h "$host" -p "$port" -q 1 -i "$device" -t "$base/command/relay" \
    --will-topic "$base/status/online" --will-qos 1 --will-retain \
    --will-payload '{"online": false, "reason": "unexpected_disconnect"}' |
while IFS= read -r command; do
  request_id=$(printf '%s\n' "$command" | sed -n 's/.*"request_id":"\([^"]*\)".*/\1/p')
  action=$(printf '%s\n' "$command" | sed -n 's/.*"action":"\([^"]*\)".*/\1/p')
  [ -n "$request_id" ] || continue  # not a command: ignore it
  echo "$device: relay $action" >&2  # a real device switches its relay here
  mosquitto_pub -h "$host" -p "$port" -q 1 -t "$base/response/command" \
      -m "{\"request_id\":\"$request_id\",\"status\":\"success\",\"result\":\"$action\"}"
done
