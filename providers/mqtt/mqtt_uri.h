// Broker URIs as Herald accepts them in --mqtt_uri: SCHEME://HOST:PORT, with
// SCHEME one of tcp and mqtt (plain), ssl and mqtts (TLS), ws and wss
// (WebSocket, which may add a /PATH). The port is required, an IPv6 host
// goes in brackets, and user:password@ is refused so that no secret ever
// sits in a URI that gets logged. ValidateMqttOptions checks every URI with
// ParseMqttUri; MqttProvider uses the parts to talk to Paho and to name the
// broker in errors.
//
//   absl::StatusOr<MqttUri> uri = ParseMqttUri("mqtts://broker.example.com:8883");
//   if (uri.ok() && uri->tls) { ... }  // uri->PahoUri() == "ssl://broker.example.com:8883"
//
// Pure functions and a value type: thread-safe.
#ifndef HERALD_PROVIDERS_MQTT_MQTT_URI_H_
#define HERALD_PROVIDERS_MQTT_MQTT_URI_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace herald {

struct MqttUri {
  std::string scheme;  // as written: "tcp", "mqtt", "ssl", "mqtts", "ws" or "wss"
  std::string host;    // without the brackets of an IPv6 address
  int port = 0;        // 1 to 65535
  std::string path;    // "" or "/..." (ws and wss only)
  bool tls = false;    // ssl, mqtts or wss

  // The URI in the spelling every Paho version understands: mqtt:// as
  // tcp:// and mqtts:// as ssl://.
  std::string PahoUri() const;
};

// Parses `uri`; kInvalidArgument with a message that quotes the URI and
// states the rule (e.g. "\"tcp://broker\": missing port (e.g.
// tcp://broker:1883)"). The message never contains user information.
absl::StatusOr<MqttUri> ParseMqttUri(std::string_view uri);

}  // namespace herald

#endif  // HERALD_PROVIDERS_MQTT_MQTT_URI_H_
