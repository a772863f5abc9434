#include "tests/integration/mqtt/mqtt_test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "mqtt/async_client.h"
#include "mqtt/properties.h"
#include "providers/mqtt/tcp_probe.h"

namespace herald::testing {

std::string FixtureMqttUri(std::string* error) {
  const char* path = std::getenv("HERALD_TEST_SERVERS_ENV");
  if (path == nullptr || *path == '\0') {
    *error = "HERALD_TEST_SERVERS_ENV is not set: run through ctest (the `servers` fixture)";
    return "";
  }
  std::ifstream file(path);
  if (!file) {
    *error = absl::StrCat("cannot read ", path, ": did the servers_start fixture run?");
    return "";
  }
  std::string line;
  constexpr std::string_view kKey = "HERALD_TEST_MQTT_URI=";
  while (std::getline(file, line)) {
    if (line.starts_with(kKey)) return line.substr(kKey.size());
  }
  *error = absl::StrCat(path, " has no HERALD_TEST_MQTT_URI");
  return "";
}

std::string MakeTempDir() {
  std::string pattern = ::testing::TempDir() + "/herald-mqtt-XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp(" << pattern << ") failed";
  }
  return pattern;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  EXPECT_NE(port, 0) << "no free port";
  return port;
}

bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return condition();
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

absl::StatusOr<std::string> RunCommand(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return absl::InternalError(absl::StrCat("cannot run: ", command));
  std::string output;
  std::array<char, 4096> buffer;
  while (size_t n = fread(buffer.data(), 1, buffer.size(), pipe)) output.append(buffer.data(), n);
  const int status = pclose(pipe);
  if (status != 0) {
    return absl::InternalError(absl::StrCat("`", command, "` failed (", status, "): ", output));
  }
  return output;
}

MosquittoProcess::MosquittoProcess(std::string dir) : dir_(std::move(dir)), port_(FreePort()) {}

MosquittoProcess::~MosquittoProcess() { Kill(); }

std::string MosquittoProcess::uri(const std::string& scheme, const std::string& host) const {
  return absl::StrCat(scheme, "://", host, ":", port_);
}

absl::Status MosquittoProcess::Start(const std::vector<std::string>& extra_lines) {
  extra_lines_ = extra_lines;
  return Launch();
}

absl::Status MosquittoProcess::Restart() { return Launch(); }

absl::Status MosquittoProcess::Launch() {
  Kill();
  const std::string config_path = dir_ + "/mosquitto.conf";
  {
    std::ofstream config(config_path);
    config << "user root\n"  // started as root, it would switch to user mosquitto
           << "persistence false\n"
           << "max_queued_messages 100000\n"
           << "max_inflight_messages 1000\n"
           << "log_dest file " << dir_ << "/mosquitto.log\n"
           << "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
           << "listener " << port_ << " 127.0.0.1\n";
    for (const std::string& line : extra_lines_) config << line << "\n";
    if (!config) return absl::InternalError(absl::StrCat("cannot write ", config_path));
  }
  const std::string output_path = dir_ + "/mosquitto.out";
  pid_ = fork();
  if (pid_ < 0) return absl::InternalError("fork failed");
  if (pid_ == 0) {
    // Die with the test, even if it crashes.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const int out = open(output_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      dup2(out, STDOUT_FILENO);
      dup2(out, STDERR_FILENO);
    }
    execlp("mosquitto", "mosquitto", "-c", config_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const bool listening = WaitUntil(
      [&] {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          return true;  // exited: reported below
        }
        return ProbeTcpConnect("127.0.0.1", port_, absl::Milliseconds(100)).ok();
      },
      absl::Seconds(10));
  if (pid_ < 0 || !listening) {
    Kill();
    return absl::InternalError(absl::StrCat("mosquitto did not start on port ", port_, ":\n",
                                            Log()));
  }
  return absl::OkStatus();
}

void MosquittoProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void MosquittoProcess::Freeze() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void MosquittoProcess::Thaw() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

std::string MosquittoProcess::Log() const {
  std::string log;
  for (const char* name : {"/mosquitto.out", "/mosquitto.log"}) {
    std::ifstream file(dir_ + name);
    std::stringstream content;
    content << file.rdbuf();
    log += content.str();
  }
  return log;
}

TestClient::TestClient(std::string uri, int mqtt_version)
    : uri_(std::move(uri)), mqtt_version_(mqtt_version) {}

TestClient::~TestClient() {
  if (client_ == nullptr) return;
  try {
    if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(5));
  } catch (const mqtt::exception&) {
  }
}

absl::Status TestClient::Connect(absl::Duration timeout) {
  absl::BitGen random;
  const std::string id = absl::StrFormat("herald-test-%08x", absl::Uniform<uint32_t>(random));
  try {
    client_ = std::make_unique<mqtt::async_client>(uri_, id, mqtt::create_options(mqtt_version_),
                                                   static_cast<mqtt::iclient_persistence*>(nullptr));
    client_->set_message_callback([this](mqtt::const_message_ptr message) {
      ReceivedMessage received;
      received.topic = message->get_topic();
      received.payload = message->get_payload_str();
      received.qos = message->get_qos();
      received.retained = message->is_retained();
      const mqtt::properties& properties = message->get_properties();
      if (properties.contains(mqtt::property::CONTENT_TYPE)) {
        received.content_type = mqtt::get<std::string>(properties, mqtt::property::CONTENT_TYPE);
      }
      if (properties.contains(mqtt::property::RESPONSE_TOPIC)) {
        received.response_topic =
            mqtt::get<std::string>(properties, mqtt::property::RESPONSE_TOPIC);
      }
      if (properties.contains(mqtt::property::CORRELATION_DATA)) {
        received.correlation_data =
            mqtt::get<std::string>(properties, mqtt::property::CORRELATION_DATA);
      }
      if (properties.contains(mqtt::property::MESSAGE_EXPIRY_INTERVAL)) {
        received.message_expiry_seconds =
            mqtt::get<int32_t>(properties, mqtt::property::MESSAGE_EXPIRY_INTERVAL);
      }
      for (size_t i = 0; i < properties.count(mqtt::property::USER_PROPERTY); ++i) {
        auto [name, value] =
            mqtt::get<mqtt::string_pair>(properties, mqtt::property::USER_PROPERTY, i);
        received.user_properties[name] = value;
      }
      absl::MutexLock lock(&mu_);
      messages_.push_back(std::move(received));
    });
    mqtt::connect_options_builder options;
    options.mqtt_version(mqtt_version_);
    if (mqtt_version_ == 5) {
      options.clean_start(true);
    } else {
      options.clean_session(true);
    }
    if (!client_->connect(options.finalize())
             ->wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)))) {
      return absl::DeadlineExceededError(absl::StrCat("test client: no CONNACK from ", uri_));
    }
  } catch (const mqtt::exception& e) {
    return absl::UnavailableError(absl::StrCat("test client cannot connect to ", uri_, ": ",
                                               e.what()));
  }
  return absl::OkStatus();
}

absl::Status TestClient::Subscribe(const std::string& filter, int qos) {
  try {
    mqtt::token_ptr token = client_->subscribe(filter, qos);
    if (!token->wait_for(std::chrono::seconds(10))) {
      return absl::DeadlineExceededError(absl::StrCat("test client: no SUBACK for ", filter));
    }
  } catch (const mqtt::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("test client cannot subscribe to ", filter, ": ", e.what()));
  }
  return absl::OkStatus();
}

absl::Status TestClient::Publish(const std::string& topic, const std::string& payload, int qos,
                                 bool retain, const std::string& response_topic,
                                 const std::string& correlation_data) {
  try {
    mqtt::properties properties;
    if (!response_topic.empty()) {
      properties.add(mqtt::property(mqtt::property::RESPONSE_TOPIC, response_topic));
    }
    if (!correlation_data.empty()) {
      properties.add(mqtt::property(mqtt::property::CORRELATION_DATA, correlation_data));
    }
    auto message = mqtt::message::create(topic, payload, qos, retain, properties);
    if (!client_->publish(message)->wait_for(std::chrono::seconds(10))) {
      return absl::DeadlineExceededError(absl::StrCat("test client: no ack for ", topic));
    }
  } catch (const mqtt::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("test client cannot publish to ", topic, ": ", e.what()));
  }
  return absl::OkStatus();
}

bool TestClient::WaitForCount(size_t count, absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return messages_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

std::vector<ReceivedMessage> TestClient::Messages() const {
  absl::MutexLock lock(&mu_);
  return messages_;
}

}  // namespace herald::testing
