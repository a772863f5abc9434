// Provider: how Herald reaches devices. The delivery pipeline publishes
// through it and learns each publish's outcome from a callback; the command
// and presence features subscribe through it. MqttProvider (providers/mqtt)
// implements it over Paho; unit tests use FakeProvider (tests/testing).
//
//   provider.Publish({.topic = "devices/s1/notifications", .payload = json, .qos = 1},
//                    [](const PublishResult& result) { /* never blocks */ });
#ifndef HERALD_PROVIDERS_PROVIDER_H_
#define HERALD_PROVIDERS_PROVIDER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace herald {

// One message to publish.
struct OutgoingMessage {
  std::string topic;
  std::string payload;
  int qos = 1;
  bool retain = false;
  // MQTT 5 properties; ignored under MQTT 3.1.1.
  std::optional<absl::Duration> message_expiry;
  std::string content_type = "application/json";
  std::string response_topic;
  std::string correlation_data;
  std::map<std::string, std::string> user_properties;
};

// What became of one publish.
struct PublishResult {
  // OK once the acknowledgement that the QoS promises arrived (QoS 0: written
  // to the connection, 1: PUBACK, 2: PUBCOMP). kUnavailable when not
  // connected or the connection dropped before the acknowledgement (worth a
  // retry); kPermissionDenied when the broker refused it (not authorised);
  // kInvalidArgument for a message the broker or client rejects as malformed
  // or too large; kResourceExhausted when the provider's in-flight window is
  // full.
  absl::Status status;
  // MQTT 5 reason code 16: accepted, but no subscriber matched.
  bool no_subscriber = false;
};

// Called exactly once per Publish, on a provider thread or inline. Must not
// block.
using PublishCallback = std::function<void(const PublishResult&)>;

// A message that arrived on a subscription.
struct IncomingMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retained = false;
  std::string response_topic;    // MQTT 5
  std::string correlation_data;  // MQTT 5
};

// Called on a provider thread for each message; must not block.
using MessageHandler = std::function<void(const IncomingMessage&)>;

enum class ConnectionState { kDisconnected, kConnecting, kConnected };

// "disconnected", "connecting" or "connected": for statistics and logs.
inline std::string_view ConnectionStateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::kDisconnected: return "disconnected";
    case ConnectionState::kConnecting: return "connecting";
    case ConnectionState::kConnected: return "connected";
  }
  return "disconnected";
}

// A snapshot of the provider's connection for statistics and health.
struct ConnectionStatus {
  ConnectionState state = ConnectionState::kDisconnected;
  std::string server_uri;
  int64_t connections = 0;  // successful connects since start
  int64_t reconnects = 0;   // connects after a lost connection
  int64_t in_flight = 0;    // publishes awaiting their acknowledgement
  std::optional<absl::Time> last_connect_time;
  std::string last_error;
};

// Implementations are thread-safe.
class Provider {
 public:
  virtual ~Provider() = default;

  // The provider's name in statistics and metric labels, e.g. "mqtt".
  virtual std::string_view Name() const = 0;

  // Starts connecting and keeps reconnecting with backoff until Stop. Returns
  // an error only for a configuration that can never work; an unreachable
  // broker is not an error (the state says so).
  virtual absl::Status Start() = 0;

  // Waits up to `timeout` for the connection; kDeadlineExceeded if it is not
  // up by then (with the last connection error in the message).
  virtual absl::Status WaitConnected(absl::Duration timeout) = 0;

  // Publishes asynchronously; `done` reports the outcome exactly once.
  virtual void Publish(OutgoingMessage message, PublishCallback done) = 0;

  // Subscribes `handler` to a topic filter (wildcards allowed), also after
  // every reconnect.
  virtual absl::Status Subscribe(const std::string& topic_filter, int qos,
                                 MessageHandler handler) = 0;

  // How many more publishes may be started before the in-flight window is
  // full; callers use it to bound their own work.
  virtual int64_t AvailableCapacity() const = 0;

  virtual ConnectionStatus GetConnectionStatus() const = 0;

  // Waits up to `grace` for in-flight acknowledgements, then disconnects.
  // Publishes still unacknowledged are reported kUnavailable.
  virtual void Stop(absl::Duration grace) = 0;
};

}  // namespace herald

#endif  // HERALD_PROVIDERS_PROVIDER_H_
