// MqttOptions: everything MqttProvider needs to reach a broker. Filled by
// service/config from flags, environment and secret files; validated by
// ValidateMqttOptions before the provider is built.
//
//   MqttOptions options;
//   options.server_uris = {"ssl://broker.example.com:8883"};
//   options.ca_file = "/etc/herald/ca.pem";
#ifndef HERALD_PROVIDERS_MQTT_MQTT_OPTIONS_H_
#define HERALD_PROVIDERS_MQTT_MQTT_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace herald {

struct MqttOptions {
  // tcp://, mqtt://, ssl://, mqtts://, ws:// or wss:// URIs; several = failover.
  std::vector<std::string> server_uris = {"tcp://127.0.0.1:1883"};
  std::string client_id;  // empty: "herald-" + host name + random suffix
  std::string username;
  std::string password;   // a secret: never logged
  // TLS (ssl:// and wss://): CA bundle, optional client certificate and key.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string key_password;  // a secret: never logged
  bool tls_verify = true;    // verify the broker's certificate and host name
  int mqtt_version = 5;      // 4 (= 3.1.1) or 5
  absl::Duration keep_alive = absl::Seconds(60);
  // A clean session by default: with Debian's Paho C 1.3, resuming a
  // session makes Paho resend unacknowledged MQTT 5 publishes with broken
  // properties, which Mosquitto refuses as a malformed packet, on every
  // reconnect (found by the fault suite's broker restart). Herald does not
  // need the session for its publishes (the outbox retries them) and
  // re-subscribes after every clean reconnect.
  bool clean_session = true;
  absl::Duration connect_timeout = absl::Seconds(10);
  absl::Duration reconnect_min = absl::Seconds(1);
  absl::Duration reconnect_max = absl::Seconds(60);
  // Publishes awaiting their acknowledgement, at most. 400 rather than the
  // 100 that suits a bare publisher: each of Herald's publishes spends
  // longer between its dispatcher, Paho's threads and the outcome it
  // records, and QoS 2 fan-out ran 14,000 -> 16,700/s with 400
  // (docs/performance.md).
  int max_in_flight = 400;
};

// kInvalidArgument naming the flag (e.g. "--mqtt_uri") and the rule.
absl::Status ValidateMqttOptions(const MqttOptions& options);

}  // namespace herald

#endif  // HERALD_PROVIDERS_MQTT_MQTT_OPTIONS_H_
