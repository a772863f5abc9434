#include "providers/mqtt/mqtt_options.h"

#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

// The status message, for substring checks.
std::string Message(const absl::Status& status) { return std::string(status.message()); }

class ValidateMqttOptionsTest : public ::testing::Test {
 protected:
  // A readable PEM-looking file in the test's temporary directory.
  static std::string WriteFile(const std::string& name) {
    const std::string path = ::testing::TempDir() + "/" + name;
    std::ofstream(path) << "-----BEGIN CERTIFICATE-----\n";
    return path;
  }

  MqttOptions options_;
};

TEST_F(ValidateMqttOptionsTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateMqttOptions(options_).ok());
}

TEST_F(ValidateMqttOptionsTest, AcceptsEverySchemeWithHostAndPort) {
  options_.server_uris = {"tcp://broker:1883", "mqtt://broker:1883", "ssl://broker:8883",
                          "mqtts://broker:8883", "ws://broker:80/mqtt", "wss://[::1]:443/mqtt"};
  EXPECT_TRUE(ValidateMqttOptions(options_).ok()) << ValidateMqttOptions(options_);
}

TEST_F(ValidateMqttOptionsTest, UriErrorsNameTheFlag) {
  const std::pair<const char*, const char*> cases[] = {
      {"broker:1883", "missing scheme"},
      {"http://broker:1883", "unsupported scheme \"http\""},
      {"tcp://broker", "missing port (e.g. tcp://broker:1883)"},
      {"ssl://broker", "missing port (e.g. ssl://broker:8883)"},
      {"tcp://:1883", "missing host"},
      {"tcp://broker:0", "port must be a number between 1 and 65535"},
      {"tcp://broker:65536", "port must be a number between 1 and 65535"},
      {"tcp://broker:x", "port must be a number between 1 and 65535"},
      {"tcp://broker:1883/path", "a path is only allowed for ws:// and wss://"},
      {"tcp://::1:1883", "IPv6 address must be in brackets"},
      {"tcp://broker :1883", "spaces"},
      {"", "empty URI"},
  };
  for (const auto& [uri, rule] : cases) {
    options_.server_uris = {uri};
    const absl::Status status = ValidateMqttOptions(options_);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << uri;
    EXPECT_TRUE(absl::StartsWith(Message(status), "--mqtt_uri: ")) << status;
    EXPECT_TRUE(absl::StrContains(Message(status), rule)) << uri << ": " << status;
  }
}

TEST_F(ValidateMqttOptionsTest, RefusesCredentialsInTheUriWithoutEchoingThem) {
  options_.server_uris = {"tcp://alice:s3cret@broker:1883"};
  const absl::Status status = ValidateMqttOptions(options_);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(Message(status), "--mqtt_password_file")) << status;
  EXPECT_FALSE(absl::StrContains(Message(status), "s3cret")) << status;
}

TEST_F(ValidateMqttOptionsTest, RequiresAtLeastOneUri) {
  options_.server_uris.clear();
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)), "--mqtt_uri: at least"));
}

TEST_F(ValidateMqttOptionsTest, VersionMustBe311Or5) {
  options_.mqtt_version = 3;
  const absl::Status status = ValidateMqttOptions(options_);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(Message(status), "--mqtt_version")) << status;
  options_.mqtt_version = 4;
  EXPECT_TRUE(ValidateMqttOptions(options_).ok());
}

TEST_F(ValidateMqttOptionsTest, KeepAliveMustBeWholeSecondsUpTo65535) {
  for (absl::Duration bad : {absl::Seconds(-1), absl::Seconds(65536), absl::Milliseconds(1500)}) {
    options_.keep_alive = bad;
    EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)), "--mqtt_keepalive"))
        << bad;
  }
  for (absl::Duration good : {absl::ZeroDuration(), absl::Seconds(1), absl::Seconds(65535)}) {
    options_.keep_alive = good;
    EXPECT_TRUE(ValidateMqttOptions(options_).ok()) << good;
  }
}

TEST_F(ValidateMqttOptionsTest, MaxInFlightBetween1And65535) {
  for (int bad : {0, -1, 65536}) {
    options_.max_in_flight = bad;
    EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)),
                                  "--mqtt_max_in_flight: must be between 1 and 65535"))
        << bad;
  }
  options_.max_in_flight = 65535;
  EXPECT_TRUE(ValidateMqttOptions(options_).ok());
}

TEST_F(ValidateMqttOptionsTest, TimeoutsAndBackoff) {
  options_.connect_timeout = absl::ZeroDuration();
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)), "--mqtt_connect_timeout"));
  options_ = MqttOptions();
  options_.reconnect_min = absl::ZeroDuration();
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)), "--mqtt_reconnect_min"));
  options_ = MqttOptions();
  options_.reconnect_max = absl::Milliseconds(500);  // below reconnect_min (1s)
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)), "--mqtt_reconnect_max"));
}

TEST_F(ValidateMqttOptionsTest, TlsFilesMustBeReadable) {
  options_.server_uris = {"ssl://broker:8883"};
  options_.ca_file = "/nonexistent/ca.pem";
  const absl::Status status = ValidateMqttOptions(options_);
  EXPECT_TRUE(absl::StrContains(Message(status), "--mqtt_ca_file: \"/nonexistent/ca.pem\" does not exist"))
      << status;
  options_.ca_file = ::testing::TempDir();  // a directory
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)), "not a regular file"));
  options_.ca_file = WriteFile("ca.pem");
  EXPECT_TRUE(ValidateMqttOptions(options_).ok()) << ValidateMqttOptions(options_);
}

TEST_F(ValidateMqttOptionsTest, ClientCertificateNeedsItsKeyAndViceVersa) {
  options_.server_uris = {"mqtts://broker:8883"};
  options_.cert_file = WriteFile("client.pem");
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)),
                                "--mqtt_cert_file: requires --mqtt_key_file"));
  options_.key_file = WriteFile("client.key");
  EXPECT_TRUE(ValidateMqttOptions(options_).ok()) << ValidateMqttOptions(options_);
  options_.cert_file.clear();
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)),
                                "--mqtt_key_file: requires --mqtt_cert_file"));
}

TEST_F(ValidateMqttOptionsTest, KeyPasswordNeedsAKey) {
  options_.key_password = "secret";
  const absl::Status status = ValidateMqttOptions(options_);
  EXPECT_TRUE(absl::StrContains(Message(status), "--mqtt_key_password_file: requires --mqtt_key_file"));
  EXPECT_FALSE(absl::StrContains(Message(status), "secret")) << status;
}

TEST_F(ValidateMqttOptionsTest, TlsFilesWithoutATlsUriAreAMistake) {
  options_.server_uris = {"tcp://broker:1883"};
  options_.ca_file = WriteFile("ca2.pem");
  EXPECT_TRUE(absl::StrContains(Message(ValidateMqttOptions(options_)),
                                "--mqtt_ca_file: set, but no --mqtt_uri uses TLS"));
}

TEST_F(ValidateMqttOptionsTest, Mqtt311ForbidsPasswordWithoutUserName) {
  options_.password = "secret";
  EXPECT_TRUE(ValidateMqttOptions(options_).ok());  // MQTT 5 allows it
  options_.mqtt_version = 4;
  const absl::Status status = ValidateMqttOptions(options_);
  EXPECT_TRUE(absl::StrContains(Message(status), "--mqtt_password_file")) << status;
  EXPECT_FALSE(absl::StrContains(Message(status), "secret")) << status;
}

TEST_F(ValidateMqttOptionsTest, ReportsEveryBrokenRuleAtOnce) {
  options_.server_uris = {"tcp://broker"};
  options_.mqtt_version = 6;
  options_.max_in_flight = 0;
  const std::string message = Message(ValidateMqttOptions(options_));
  EXPECT_TRUE(absl::StrContains(message, "--mqtt_uri")) << message;
  EXPECT_TRUE(absl::StrContains(message, "--mqtt_version")) << message;
  EXPECT_TRUE(absl::StrContains(message, "--mqtt_max_in_flight")) << message;
  EXPECT_TRUE(absl::StrContains(message, "; ")) << message;
}

}  // namespace
}  // namespace herald
