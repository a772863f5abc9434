// Helpers for MqttProvider's integration tests: the fixture's Mosquitto URI,
// private Mosquitto brokers that a test can stop, freeze, kill and restart
// (for reconnects, credentials and TLS), a plain Paho client that plays the
// device side, and polling with a deadline.
//
//   MosquittoProcess broker(TempDir());
//   ASSERT_TRUE(broker.Start({"allow_anonymous true"}).ok());
//   TestClient device(broker.uri(), 5);
//   ASSERT_TRUE(device.Connect().ok());
//   ASSERT_TRUE(device.Subscribe("devices/#", 2).ok());
//   ASSERT_TRUE(device.WaitForCount(1, absl::Seconds(10)));
//
// Each class is for one test thread, except TestClient's message log, which
// Paho fills from its own thread (guarded).
#ifndef HERALD_TESTS_INTEGRATION_MQTT_MQTT_TEST_SUPPORT_H_
#define HERALD_TESTS_INTEGRATION_MQTT_MQTT_TEST_SUPPORT_H_

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace mqtt {
class async_client;
}  // namespace mqtt

namespace herald::testing {

// The URI of the `servers` fixture's Mosquitto (HERALD_TEST_MQTT_URI in the
// file named by $HERALD_TEST_SERVERS_ENV); empty, with a message in *error,
// when the fixture did not run.
std::string FixtureMqttUri(std::string* error);

// A new empty directory under the test's temporary directory.
std::string MakeTempDir();

// A TCP port on 127.0.0.1 that nothing listens on right now.
int FreePort();

// Polls `condition` every few milliseconds until it holds or `timeout`
// passes; returns its last value.
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout);

// Runs `command` with /bin/sh and returns its output (stdout and stderr);
// kInternal with the output if it exits with an error.
absl::StatusOr<std::string> RunCommand(const std::string& command);

// A Mosquitto broker of the test's own on 127.0.0.1:port(), run in the
// foreground as a child process. Stopped by the destructor.
class MosquittoProcess {
 public:
  // Files (config, log) go to `dir`. The port is chosen now and kept across
  // restarts.
  explicit MosquittoProcess(std::string dir);
  ~MosquittoProcess();

  // Writes a config with the listener, "user root", no persistence, raised
  // queue limits and `extra_lines` (e.g. "allow_anonymous true"), starts
  // the broker and waits until it accepts connections.
  absl::Status Start(const std::vector<std::string>& extra_lines);
  // Starts again with the last config, on the same port.
  absl::Status Restart();
  // SIGKILL: connections drop at once, as when a broker crashes.
  void Kill();
  // SIGSTOP / SIGCONT: the broker keeps its connections but answers nothing.
  void Freeze();
  void Thaw();

  int port() const { return port_; }
  std::string uri(const std::string& scheme = "tcp", const std::string& host = "127.0.0.1") const;
  const std::string& dir() const { return dir_; }
  std::string Log() const;  // the broker's log, for failure messages

 private:
  absl::Status Launch();

  std::string dir_;
  int port_;
  std::vector<std::string> extra_lines_;
  pid_t pid_ = -1;
};

// What the device side received.
struct ReceivedMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retained = false;
  // MQTT 5 properties.
  std::string content_type;
  std::string response_topic;
  std::string correlation_data;
  std::optional<int> message_expiry_seconds;
  std::map<std::string, std::string> user_properties;
};

// A plain Paho client: subscribes and records, or publishes, as a device
// would.
class TestClient {
 public:
  TestClient(std::string uri, int mqtt_version);
  ~TestClient();

  absl::Status Connect(absl::Duration timeout = absl::Seconds(10));
  absl::Status Subscribe(const std::string& filter, int qos);
  // Publishes and waits for the acknowledgement. `response_topic` and
  // `correlation_data` are sent as MQTT 5 properties when non-empty.
  absl::Status Publish(const std::string& topic, const std::string& payload, int qos,
                       bool retain = false, const std::string& response_topic = "",
                       const std::string& correlation_data = "");

  bool WaitForCount(size_t count, absl::Duration timeout);
  std::vector<ReceivedMessage> Messages() const;

 private:
  std::string uri_;
  int mqtt_version_;
  std::unique_ptr<mqtt::async_client> client_;
  mutable absl::Mutex mu_;
  std::vector<ReceivedMessage> messages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_INTEGRATION_MQTT_MQTT_TEST_SUPPORT_H_
