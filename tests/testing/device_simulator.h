// DeviceSimulator: a device for end-to-end tests, as a real MQTT client
// (Paho) on the test broker. It behaves like the HomeSync and Shelly
// firmware of the seed documents: it connects with a retained Last Will on
// its presence topic, announces itself online (retained), subscribes to its
// command topic and answers each command on its response topic with
// {"request_id","status","result"}, unless told to misbehave: answer late,
// twice, with garbage, with an error, by MQTT 5 properties only, or never.
//
//   DeviceSimulator device({.uri = servers.mqtt_uri,
//                           .client_id = "node-001",
//                           .command_topic = "homesync/abc/nodes/node-001/command/relay",
//                           .response_topic = "homesync/abc/nodes/node-001/response/command",
//                           .presence_topic = "homesync/abc/nodes/node-001/status/online"});
//   ASSERT_TRUE(device.Connect().ok());
//   device.set_behavior(DeviceBehavior::kAnswerLate, absl::Milliseconds(500));
//   ... SendCommand ...
//   ASSERT_TRUE(device.DropConnection().ok());  // the broker publishes the Last Will
//
// Thread-safe. Answers are published from Paho's callback thread (at once)
// or from the simulator's own timer thread (late answers).
#ifndef HERALD_TESTS_TESTING_DEVICE_SIMULATOR_H_
#define HERALD_TESTS_TESTING_DEVICE_SIMULATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace herald::testing {

enum class DeviceBehavior {
  kAnswer,               // {"request_id","status":"success","result"} to every command
  kAnswerError,          // status "error" with an "error" text
  kAnswerLate,           // answers the first message of each request id after a delay,
                         // ignores its repeats (retries)
  kAnswerTwice,          // two identical answers
  kAnswerGarbage,        // a payload that is not JSON
  kAnswerByCorrelation,  // MQTT 5: no request_id in the payload; replies to the response
                         // topic property with the correlation data
  kSilent,               // never answers
};

struct DeviceSimulatorOptions {
  std::string uri;        // tcp://host:port
  std::string client_id;  // unique on the broker
  int mqtt_version = 5;   // 5 or 4 (3.1.1: no MQTT 5 properties)
  std::string command_topic;
  std::string response_topic;
  std::string presence_topic;  // empty: no Last Will, no announcements
  std::string online_payload = R"({"online": true})";
  std::string offline_payload = R"({"online": false, "reason": "unexpected_disconnect"})";
  bool announce_online = true;  // publish online_payload (retained) after connecting
  std::string result_json = R"("on")";
};

// A command as the device received it.
struct ReceivedCommand {
  std::string topic;
  std::string payload;
  std::string request_id;      // from the payload
  std::string action;          // from the payload
  std::string response_topic;  // MQTT 5 property
  std::string correlation_data;
  std::string command_id;      // MQTT 5 user property
  int qos = 0;
};

class DeviceSimulator {
 public:
  explicit DeviceSimulator(DeviceSimulatorOptions options);
  // Disconnects and clears its retained presence message.
  ~DeviceSimulator();

  DeviceSimulator(const DeviceSimulator&) = delete;
  DeviceSimulator& operator=(const DeviceSimulator&) = delete;

  // Connects (clean start, Last Will set), subscribes to the command topic
  // at QoS 1 and, with announce_online, publishes online_payload retained.
  // May be called again after Disconnect, not after DropConnection.
  absl::Status Connect(absl::Duration timeout = absl::Seconds(10));

  // How the device answers from now on; `delay` is for kAnswerLate.
  void set_behavior(DeviceBehavior behavior, absl::Duration delay = absl::ZeroDuration());

  // Cuts the device's TCP connection without a DISCONNECT, as a power loss
  // does (the device reaches the broker through a TcpProxy of its own, which
  // this closes): the broker publishes the Last Will. Final: to bring the
  // device back, make a new DeviceSimulator with the same options.
  absl::Status DropConnection();

  // A clean disconnect; the Last Will is not published.
  absl::Status Disconnect();

  // Publishes `payload` on the presence topic, retained, QoS 1.
  absl::Status PublishPresence(const std::string& payload);

  std::vector<ReceivedCommand> commands() const;
  size_t answers_sent() const;
  // Wait (with a deadline) until so many commands arrived / answers went out.
  bool AwaitCommands(size_t count, absl::Duration timeout) const;
  bool AwaitAnswers(size_t count, absl::Duration timeout) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_DEVICE_SIMULATOR_H_
