// MqttRecorder: a real MQTT subscriber for tests. It subscribes to topic
// filters on a broker and records every message it receives, so a test can
// check what actually reached the devices.
//
//   MqttRecorder recorder(mqtt_uri, {"devices/+/notifications"}, /*qos=*/2);
//   ASSERT_TRUE(recorder.Connect().ok());
//   ASSERT_TRUE(recorder.WaitForCount(10, absl::Seconds(10)));
//   auto messages = recorder.MessagesOn("devices/s1/notifications");
#ifndef HERALD_TESTS_TESTING_MQTT_RECORDER_H_
#define HERALD_TESTS_TESTING_MQTT_RECORDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace herald::testing {

struct RecordedMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retained = false;
  std::string user_property_notification_id;  // MQTT 5
  std::string content_type;                   // MQTT 5
};

struct RecorderOptions {
  // A persistent session (clean start off, kept for an hour) that
  // reconnects by itself: with a persistent broker, nothing published to
  // its filters while it or the broker was away is missed.
  bool persistent_session = false;
  std::string client_id;  // empty: a unique one
};

// Thread-safe.
class MqttRecorder {
 public:
  MqttRecorder(std::string uri, std::vector<std::string> topic_filters, int qos,
               RecorderOptions options = {});
  ~MqttRecorder();

  // Connects (MQTT 5) and subscribes; returns once subscribed.
  absl::Status Connect(absl::Duration timeout = absl::Seconds(10));

  // Waits until at least `count` messages arrived; false on timeout.
  bool WaitForCount(size_t count, absl::Duration timeout);

  std::vector<RecordedMessage> Messages() const;
  std::vector<RecordedMessage> MessagesOn(const std::string& topic) const;
  size_t Count() const;
  void Clear();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_MQTT_RECORDER_H_
