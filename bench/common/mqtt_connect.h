// Creating and connecting the benchmark's Paho clients (subscriber, bare
// publisher, device fleet) the way the toolchain notes say is fast and
// safe: MQTT 5, no file persistence, Paho's publish buffer raised above the
// in-flight window the caller bounds itself (Paho refuses the publish past
// max_buffered, even while connected), clean start.
//
//   absl::StatusOr<std::unique_ptr<mqtt::async_client>> client =
//       ConnectMqtt("tcp://127.0.0.1:1883", "bench-subscriber", {.max_in_flight = 100});
//
// Thread-safe (each call makes its own client).
#ifndef HERALD_BENCH_COMMON_MQTT_CONNECT_H_
#define HERALD_BENCH_COMMON_MQTT_CONNECT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "mqtt/async_client.h"

namespace herald::bench {

struct MqttClientOptions {
  int max_in_flight = 100;     // Paho's receive maximum / in-flight window
  int max_buffered = 100000;   // Paho's queue of unsent publishes
  // MQTT 5 Receive Maximum: QoS 1 and 2 messages the broker may have in
  // flight to this client; 0 leaves Paho's default (65,535).
  int receive_maximum = 0;
  // Set before connecting, so that no message is missed.
  std::function<void(mqtt::const_message_ptr)> on_message;
};

// A connected MQTT 5 client; kUnavailable (with Paho's reason) otherwise.
absl::StatusOr<std::unique_ptr<mqtt::async_client>> ConnectMqtt(const std::string& uri,
                                                                const std::string& client_id,
                                                                const MqttClientOptions& options);

// Disconnects, waiting up to a few seconds; never throws.
void DisconnectMqtt(mqtt::async_client& client);

}  // namespace herald::bench

#endif  // HERALD_BENCH_COMMON_MQTT_CONNECT_H_
