// Paho clients for the benchmark's programs (mqtt_connect.h).
#include "bench/common/mqtt_connect.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace herald::bench {

absl::StatusOr<std::unique_ptr<mqtt::async_client>> ConnectMqtt(const std::string& uri,
                                                                const std::string& client_id,
                                                                const MqttClientOptions& options) {
  try {
    auto client = std::make_unique<mqtt::async_client>(
        uri, client_id, mqtt::create_options(MQTTVERSION_5, options.max_buffered),
        static_cast<mqtt::iclient_persistence*>(nullptr));
    if (options.on_message) client->set_message_callback(options.on_message);
    mqtt::connect_options connect = mqtt::connect_options_builder()
                                        .mqtt_version(MQTTVERSION_5)
                                        .clean_start(true)
                                        .keep_alive_interval(std::chrono::seconds(60))
                                        .connect_timeout(std::chrono::seconds(10))
                                        .max_inflight(options.max_in_flight)
                                        .finalize();
    if (options.receive_maximum > 0) {
      // Set on this object, which outlives the call: Paho C++ 1.2 does not
      // re-point copied options at their properties.
      connect.set_properties(
          {mqtt::property(mqtt::property::RECEIVE_MAXIMUM, options.receive_maximum)});
    }
    client->connect(connect)->wait();
    return client;
  } catch (const mqtt::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", uri, ": ", e.what()));
  }
}

void DisconnectMqtt(mqtt::async_client& client) {
  try {
    if (client.is_connected()) client.disconnect()->wait_for(std::chrono::seconds(5));
  } catch (const mqtt::exception&) {
    // The process is ending; the broker drops the session either way.
  }
}

}  // namespace herald::bench
