#include "service/config/config.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A fake environment for ApplyEnvironment and ConfigFromFlags.
EnvLookup FakeEnv(std::map<std::string, std::string> values) {
  auto env = std::make_shared<const std::map<std::string, std::string>>(std::move(values));
  return [env](const char* name) -> const char* {
    auto it = env->find(name);
    return it == env->end() ? nullptr : it->second.c_str();
  };
}

const EnvLookup kNoEnv = [](const char*) -> const char* { return nullptr; };

// Every test starts from the default flags and leaves them as it found them.
class ConfigTest : public ::testing::Test {
 protected:
  static void SetFlag(const std::string& name, const std::string& value) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    ASSERT_NE(flag, nullptr) << name;
    std::string error;
    ASSERT_TRUE(flag->ParseFrom(value, &error)) << name << ": " << error;
  }

  // Writes `content` to a fresh file under the test's temporary directory.
  std::string WriteFile(const std::string& name, const std::string& content) {
    const std::string path = absl::StrCat(::testing::TempDir(), "/herald_config_test_", name);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    return path;
  }

  // A configuration `serve` accepts.
  static Config ValidServeConfig() {
    Config config;
    config.database_url = "postgresql://herald@localhost/herald";
    return config;
  }

 private:
  absl::FlagSaver saver_;
};

// --- environment ------------------------------------------------------------

TEST_F(ConfigTest, EnvironmentVariableNames) {
  EXPECT_EQ(EnvironmentVariableFor("database_url"), "HERALD_DATABASE_URL");
  EXPECT_EQ(EnvironmentVariableFor("mqtt_uri"), "HERALD_MQTT_URI");
}

TEST_F(ConfigTest, EnvironmentSetsFlags) {
  const EnvLookup env = FakeEnv({{"HERALD_DATABASE_URL", "host=db dbname=herald"},
               {"HERALD_DELIVERY_WORKERS", "7"},
               {"HERALD_DELIVERY_LEASE", "45s"},
               {"HERALD_DELIVERY_POLL_INTERVAL", "100ms"},
               {"HERALD_MQTT_URI", "tcp://a:1883, ssl://b:8883"},
               {"HERALD_MQTT_TLS_VERIFY", "false"},
               {"HERALD_MQTT_VERSION", "3.1.1"},
               {"HERALD_MQTT_NOTIFICATION_PROPERTIES", "false"},
               {"HERALD_MIGRATE", "true"},
               {"HERALD_LOG_FORMAT", "json"},
               {"HERALD_LOG_LEVEL", "debug"}});
  ASSERT_TRUE(ApplyEnvironment(env).ok());
  absl::StatusOr<Config> config = ConfigFromFlags("serve", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->database_url, "host=db dbname=herald");
  EXPECT_EQ(config->delivery_workers, 7);
  EXPECT_EQ(config->delivery_lease, absl::Seconds(45));
  EXPECT_EQ(config->delivery_poll_interval, absl::Milliseconds(100));
  EXPECT_THAT(config->mqtt.server_uris, ElementsAre("tcp://a:1883", "ssl://b:8883"));
  EXPECT_FALSE(config->mqtt.tls_verify);
  EXPECT_EQ(config->mqtt.mqtt_version, 4);
  EXPECT_FALSE(config->mqtt_notification_properties);
  EXPECT_TRUE(config->migrate_on_start);
  EXPECT_EQ(config->log_format, LogFormat::kJson);
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
}

TEST_F(ConfigTest, EmptyEnvironmentVariableCountsAsUnset) {
  const EnvLookup env = FakeEnv({{"HERALD_DELIVERY_WORKERS", ""}, {"HERALD_GRPC_ADDRESS", ""}});
  ASSERT_TRUE(ApplyEnvironment(env).ok());
  absl::StatusOr<Config> config = ConfigFromFlags("serve", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->delivery_workers, 2);
  EXPECT_EQ(config->grpc_address, "0.0.0.0:50051");
}

TEST_F(ConfigTest, BadEnvironmentValueNamesVariableAndFlag) {
  const EnvLookup env = FakeEnv({{"HERALD_DELIVERY_WORKERS", "two"}, {"HERALD_DELIVERY_LEASE", "soon"}});
  absl::Status status = ApplyEnvironment(env);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("HERALD_DELIVERY_WORKERS"), HasSubstr("--delivery_workers"),
                    HasSubstr("HERALD_DELIVERY_LEASE"), HasSubstr("--delivery_lease")));
}

TEST_F(ConfigTest, DefaultsMatchTheConfigStruct) {
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  const Config defaults;
  EXPECT_EQ(config->grpc_address, defaults.grpc_address);
  EXPECT_EQ(config->metrics_address, "0.0.0.0:9464");
  EXPECT_EQ(config->mqtt.server_uris, defaults.mqtt.server_uris);
  EXPECT_EQ(config->mqtt.mqtt_version, 5);
  EXPECT_EQ(config->mqtt.keep_alive, absl::Seconds(60));
  EXPECT_TRUE(config->mqtt.clean_session);  // see MqttOptions::clean_session
  EXPECT_TRUE(config->mqtt_notification_properties);  // PRODUCT.md: content type, id property
  EXPECT_EQ(config->notification_topic_template, "devices/{device_id}/notifications");
  EXPECT_EQ(config->presence_topic_template, "devices/{device_id}/status/online");
  EXPECT_EQ(config->delivery_batch_size, 500);
  EXPECT_EQ(config->delivery_poll_interval, absl::Milliseconds(250));
  EXPECT_EQ(config->retry_backoff_max, absl::Seconds(60));
  EXPECT_EQ(config->grpc_max_message_bytes, 4 * 1024 * 1024);
  EXPECT_EQ(config->shutdown_grace, absl::Seconds(20));
  EXPECT_EQ(config->max_pending_commands, 256);
  EXPECT_EQ(config->command_backoff_initial, absl::Milliseconds(500));
  EXPECT_EQ(config->command_backoff_max, absl::Seconds(5));
  EXPECT_EQ(config->command_poll_interval, absl::Seconds(1));
  EXPECT_EQ(config->mqtt_share_group, "herald");
  EXPECT_EQ(config->log_level, LogLevel::kInfo);
  EXPECT_EQ(config->log_format, LogFormat::kText);
}

TEST_F(ConfigTest, ConversionErrorsNameTheFlag) {
  SetFlag("mqtt_version", "4");
  SetFlag("log_level", "loud");
  SetFlag("log_format", "xml");
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("--mqtt_version"), HasSubstr("--log_level"),
                    HasSubstr("--log_format")));
}

TEST_F(ConfigTest, UnknownCommandIsRejected) {
  EXPECT_EQ(ConfigFromFlags("run", kNoEnv).status().code(), absl::StatusCode::kInvalidArgument);
}

// --- secrets ----------------------------------------------------------------

TEST_F(ConfigTest, ReadSecretFileStripsTrailingLineBreaks) {
  EXPECT_EQ(*ReadSecretFile(WriteFile("lf", "s3cret\n"), "--x"), "s3cret");
  EXPECT_EQ(*ReadSecretFile(WriteFile("crlf", "s3cret\r\n"), "--x"), "s3cret");
  EXPECT_EQ(*ReadSecretFile(WriteFile("none", "s3cret"), "--x"), "s3cret");
  EXPECT_EQ(*ReadSecretFile(WriteFile("inner", " a b\nc \n"), "--x"), " a b\nc ");
}

TEST_F(ConfigTest, MissingSecretFileNamesFlagAndPath) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/herald_config_test_absent");
  std::remove(path.c_str());
  absl::StatusOr<std::string> secret = ReadSecretFile(path, "--mqtt_password_file");
  EXPECT_EQ(secret.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(secret.status().message(),
              AllOf(HasSubstr("--mqtt_password_file"), HasSubstr(path)));
}

TEST_F(ConfigTest, DirectoryIsNotASecretFile) {
  absl::StatusOr<std::string> secret = ReadSecretFile(::testing::TempDir(), "--x");
  EXPECT_EQ(secret.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(secret.status().message(), HasSubstr("is a directory"));
}

TEST_F(ConfigTest, EmptySecretFileIsAnError) {
  absl::StatusOr<std::string> secret = ReadSecretFile(WriteFile("empty", "\n"), "--x");
  EXPECT_EQ(secret.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(secret.status().message(), HasSubstr("empty"));
}

TEST_F(ConfigTest, OversizedSecretFileIsAnErrorWithoutItsContent) {
  const std::string content(70 * 1024, 'k');
  absl::StatusOr<std::string> secret = ReadSecretFile(WriteFile("big", content), "--x");
  EXPECT_EQ(secret.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(secret.status().message(), Not(HasSubstr("kkkk")));
}

TEST_F(ConfigTest, MqttPasswordFromFile) {
  SetFlag("mqtt_password_file", WriteFile("mqtt_password", "broker-pw\n"));
  SetFlag("mqtt_key_password_file", WriteFile("key_password", "key-pw\n"));
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->mqtt.password, "broker-pw");
  EXPECT_EQ(config->mqtt.key_password, "key-pw");
}

TEST_F(ConfigTest, MqttPasswordFromEnvironment) {
  const EnvLookup env = FakeEnv({{"HERALD_MQTT_PASSWORD", "env-pw"}});
  absl::StatusOr<Config> config = ConfigFromFlags("serve", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->mqtt.password, "env-pw");
}

TEST_F(ConfigTest, MqttPasswordFromBothEnvironmentAndFileIsAmbiguous) {
  // Neither came from the command line, so neither wins.
  const EnvLookup env = FakeEnv({{"HERALD_MQTT_PASSWORD", "env-pw"},
               {"HERALD_MQTT_PASSWORD_FILE", WriteFile("pw_both", "file-pw")}});
  ASSERT_TRUE(ApplyEnvironment(env).ok());
  absl::StatusOr<Config> config = ConfigFromFlags("serve", env);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("HERALD_MQTT_PASSWORD"), HasSubstr("--mqtt_password_file"),
                    Not(HasSubstr("env-pw")), Not(HasSubstr("file-pw"))));
}

TEST_F(ConfigTest, MissingMqttPasswordFileFailsServe) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/herald_config_test_no_pw");
  std::remove(path.c_str());
  SetFlag("mqtt_password_file", path);
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), AllOf(HasSubstr("--mqtt_password_file"), HasSubstr(path)));
}

TEST_F(ConfigTest, MigrateNeedsNoMqttSecret) {
  SetFlag("mqtt_password_file", "/nonexistent/herald/mqtt_password");
  SetFlag("database_url", "host=db");
  absl::StatusOr<Config> config = ConfigFromFlags("migrate", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->mqtt.password.empty());
  EXPECT_TRUE(ValidateConfig(*config).ok());
}

TEST_F(ConfigTest, DatabaseUrlFromFile) {
  SetFlag("database_url_file", WriteFile("db_url", "postgresql://app:pw@db/herald\n"));
  absl::StatusOr<Config> config = ConfigFromFlags("migrate", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->database_url, "postgresql://app:pw@db/herald");
}

TEST_F(ConfigTest, DatabaseUrlAndItsFileFromTheSameSourceAreAmbiguous) {
  const EnvLookup env = FakeEnv({{"HERALD_DATABASE_URL", "host=a"},
               {"HERALD_DATABASE_URL_FILE", WriteFile("db_both", "host=b")}});
  ASSERT_TRUE(ApplyEnvironment(env).ok());
  absl::StatusOr<Config> config = ConfigFromFlags("serve", env);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("--database_url"), HasSubstr("--database_url_file")));
}

// --- validation -------------------------------------------------------------

TEST_F(ConfigTest, ValidConfigPasses) {
  EXPECT_TRUE(ValidateConfig(ValidServeConfig()).ok()) << ValidateConfig(ValidServeConfig());
}

TEST_F(ConfigTest, DatabaseUrlIsRequiredForServeAndMigrate) {
  Config config;
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--database_url: required for `herald serve`"));
  config.command = "migrate";
  EXPECT_THAT(ValidateConfig(config).message(),
              HasSubstr("--database_url: required for `herald migrate`"));
}

TEST_F(ConfigTest, VersionNeedsNothing) {
  Config config;
  config.command = "version";
  config.delivery_workers = 0;
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST_F(ConfigTest, DatabaseUrlMustLookLikeOne) {
  Config config = ValidServeConfig();
  config.database_url = "db.example.com";
  EXPECT_THAT(ValidateConfig(config).message(), HasSubstr("--database_url: must be"));
  config.database_url = "postgres://db/herald";
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.database_url = "host=db dbname=herald";
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST_F(ConfigTest, RangeErrorsNameTheFlagAndRule) {
  Config config = ValidServeConfig();
  config.delivery_workers = 0;
  config.delivery_batch_size = 20000;
  config.database_pool_size = 0;
  config.delivery_lease = absl::ZeroDuration();
  config.max_delivery_attempts = 0;
  config.max_payload_bytes = 0;
  config.max_targets_per_request = 0;
  config.max_batch_notifications = 0;
  config.grpc_max_message_bytes = 10;
  config.shutdown_grace = -absl::Seconds(1);
  config.delivery_poll_interval = absl::ZeroDuration();
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("--delivery_workers: must be between 1 and 64, got 0"),
                    HasSubstr("--delivery_batch_size: must be between 1 and 10000, got 20000"),
                    HasSubstr("--database_pool_size: must be between 1 and 256"),
                    HasSubstr("--delivery_lease: must be between 1s and 1h, got 0"),
                    HasSubstr("--max_delivery_attempts"), HasSubstr("--max_payload_bytes"),
                    HasSubstr("--max_targets_per_request"),
                    HasSubstr("--max_batch_notifications"),
                    HasSubstr("--grpc_max_message_bytes"), HasSubstr("--shutdown_grace"),
                    HasSubstr("--delivery_poll_interval")));
}

TEST_F(ConfigTest, RetryBackoffMaxMustNotBeBelowInitial) {
  Config config = ValidServeConfig();
  config.retry_backoff_initial = absl::Seconds(10);
  config.retry_backoff_max = absl::Seconds(5);
  EXPECT_THAT(ValidateConfig(config).message(),
              HasSubstr("--retry_backoff_max: must be at least --retry_backoff_initial"));
}

TEST_F(ConfigTest, AddressesAreChecked) {
  Config config = ValidServeConfig();
  config.grpc_address = "localhost";
  config.metrics_address = "0.0.0.0:99999";
  absl::Status status = ValidateConfig(config);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("--grpc_address: must be HOST:PORT"),
                                      HasSubstr("--metrics_address: the port must be")));

  config.grpc_address = "unix:/run/herald.sock";
  config.metrics_address = "[::]:9464";
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);

  config.grpc_address = "127.0.0.1:0";
  config.metrics_address = "127.0.0.1:0";
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);
}

TEST_F(ConfigTest, GrpcAndMetricsMustNotShareAPort) {
  Config config = ValidServeConfig();
  config.grpc_address = "0.0.0.0:9000";
  config.metrics_address = "127.0.0.1:9000";
  EXPECT_THAT(ValidateConfig(config).message(),
              HasSubstr("--metrics_address: must not use the port of --grpc_address"));
}

TEST_F(ConfigTest, TopicTemplatesAreChecked) {
  Config config = ValidServeConfig();
  config.command_topic_template = "devices/{device_id}/#";
  config.receipt_topic_template = "devices/{nope}/receipts";
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("--command_topic_template"),
                                      HasSubstr("--receipt_topic_template")));
  EXPECT_THAT(status.message(), Not(HasSubstr("--notification_topic_template")));
}

TEST_F(ConfigTest, CommandSettingsFromTheEnvironment) {
  ASSERT_TRUE(ApplyEnvironment(FakeEnv({{"HERALD_MAX_PENDING_COMMANDS", "32"},
                                        {"HERALD_COMMAND_BACKOFF_INITIAL", "100ms"},
                                        {"HERALD_COMMAND_BACKOFF_MAX", "2s"},
                                        {"HERALD_COMMAND_POLL_INTERVAL", "250ms"},
                                        {"HERALD_MQTT_SHARE_GROUP", "herald-prod"}}))
                  .ok());
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_pending_commands, 32);
  EXPECT_EQ(config->command_backoff_initial, absl::Milliseconds(100));
  EXPECT_EQ(config->command_backoff_max, absl::Seconds(2));
  EXPECT_EQ(config->command_poll_interval, absl::Milliseconds(250));
  EXPECT_EQ(config->mqtt_share_group, "herald-prod");
  EXPECT_THAT(DescribeConfig(*config),
              AllOf(HasSubstr("max_pending_commands=32"), HasSubstr("command_backoff=100ms..2s"),
                    HasSubstr("mqtt_share_group=herald-prod")));
}

TEST_F(ConfigTest, CommandSettingsAreChecked) {
  Config config = ValidServeConfig();
  config.max_pending_commands = 0;
  config.command_backoff_initial = absl::Seconds(2);
  config.command_backoff_max = absl::Seconds(1);
  config.command_poll_interval = absl::Milliseconds(1);
  config.mqtt_share_group = "a/b";
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("--max_pending_commands: must be between 1 and 100000, got 0"),
                    HasSubstr("--command_backoff_max: must be at least --command_backoff_initial"),
                    HasSubstr("--command_poll_interval: must be between 10ms and 1m"),
                    HasSubstr("--mqtt_share_group: must be 1-256 characters without '/'")));
  config = ValidServeConfig();
  config.mqtt_share_group = "";
  EXPECT_THAT(ValidateConfig(config).message(), HasSubstr("--mqtt_share_group"));
}

TEST_F(ConfigTest, SubscribedTemplatesMustMapBackToADevice) {
  Config config = ValidServeConfig();
  config.presence_topic_template = "homes/{meta.home_id}/online";
  config.response_topic_template = "r/{device_id}-{owner_id}";
  absl::Status status = ValidateConfig(config);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("--presence_topic_template: must contain {device_id}"),
                    HasSubstr("--response_topic_template: the topic level")));

  // The seed documents' layouts are fine.
  config.command_topic_template = "homesync/{meta.home_id}/nodes/{device_id}/command/relay";
  config.response_topic_template = "homesync/{meta.home_id}/nodes/{device_id}/response/command";
  config.presence_topic_template = "homesync/{meta.home_id}/nodes/{device_id}/status/online";
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);
  config.command_topic_template = "shellies/{device_id}/command/switch:0/set";
  config.response_topic_template = "shellies/{device_id}/events/rpc";
  config.presence_topic_template = "shellies/{device_id}/online";
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);
}

TEST_F(ConfigTest, MqttOptionsAreCheckedForServeOnly) {
  Config config = ValidServeConfig();
  config.mqtt.server_uris.clear();
  EXPECT_EQ(ValidateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  config.command = "migrate";
  EXPECT_TRUE(ValidateConfig(config).ok());
}

// --- TLS on the gRPC port -------------------------------------------------
// The PEM here is only shaped like PEM: what it holds is checked where the
// credentials are built (tests/unit/api/server_credentials_test.cc).

constexpr char kFakeCertificate[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
constexpr char kFakeKey[] = "-----BEGIN PRIVATE KEY-----\nkey-material\n-----END PRIVATE KEY-----\n";

TEST_F(ConfigTest, GrpcTlsIsOffByDefault) {
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->grpc_tls_cert_file.empty());
  EXPECT_TRUE(config->grpc_tls_key_pem.empty());
  EXPECT_TRUE(config->grpc_tls_client_ca_file.empty());
}

TEST_F(ConfigTest, GrpcTlsFilesAreReadForServe) {
  const std::string cert = WriteFile("tls_cert", kFakeCertificate);
  const std::string key = WriteFile("tls_key", kFakeKey);
  const std::string ca = WriteFile("tls_ca", kFakeCertificate);
  SetFlag("grpc_tls_cert_file", cert);
  SetFlag("grpc_tls_key_file", key);
  SetFlag("grpc_tls_client_ca_file", ca);
  SetFlag("database_url", "host=db");
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->grpc_tls_cert_file, cert);
  EXPECT_EQ(config->grpc_tls_key_file, key);
  EXPECT_EQ(config->grpc_tls_client_ca_file, ca);
  EXPECT_THAT(config->grpc_tls_cert_pem, HasSubstr("-----BEGIN CERTIFICATE-----"));
  EXPECT_THAT(config->grpc_tls_key_pem, HasSubstr("key-material"));
  EXPECT_THAT(config->grpc_tls_client_ca_pem, HasSubstr("-----BEGIN CERTIFICATE-----"));
  EXPECT_TRUE(ValidateConfig(*config).ok()) << ValidateConfig(*config);
}

TEST_F(ConfigTest, GrpcTlsFilesFromTheEnvironment) {
  const EnvLookup env =
      FakeEnv({{"HERALD_GRPC_TLS_CERT_FILE", WriteFile("tls_cert_env", kFakeCertificate)},
               {"HERALD_GRPC_TLS_KEY_FILE", WriteFile("tls_key_env", kFakeKey)},
               {"HERALD_GRPC_TLS_CLIENT_CA_FILE", WriteFile("tls_ca_env", kFakeCertificate)}});
  ASSERT_TRUE(ApplyEnvironment(env).ok());
  absl::StatusOr<Config> config = ConfigFromFlags("serve", env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->grpc_tls_cert_pem.empty());
  EXPECT_FALSE(config->grpc_tls_key_pem.empty());
  EXPECT_FALSE(config->grpc_tls_client_ca_pem.empty());
}

TEST_F(ConfigTest, MissingGrpcTlsFileNamesFlagAndPath) {
  const std::string absent = absl::StrCat(::testing::TempDir(), "/herald_config_test_no_key");
  std::remove(absent.c_str());
  SetFlag("grpc_tls_cert_file", WriteFile("tls_cert_ok", kFakeCertificate));
  SetFlag("grpc_tls_key_file", absent);
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("--grpc_tls_key_file: cannot read"), HasSubstr(absent)));
  EXPECT_THAT(config.status().message(), Not(HasSubstr("--grpc_tls_cert_file")));
}

TEST_F(ConfigTest, UnreadableGrpcTlsFilesAreEachReported) {
  SetFlag("grpc_tls_cert_file", ::testing::TempDir());  // a directory
  SetFlag("grpc_tls_key_file", WriteFile("tls_key_empty", "\n"));
  SetFlag("grpc_tls_client_ca_file", "/nonexistent/herald/ca.pem");
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("--grpc_tls_cert_file: "), HasSubstr("is a directory"),
                    HasSubstr("--grpc_tls_key_file: "), HasSubstr("is empty"),
                    HasSubstr("--grpc_tls_client_ca_file: cannot read")));
}

TEST_F(ConfigTest, GrpcTlsFileMustBePem) {
  // DER starts with a SEQUENCE tag; the bytes stand in for a key.
  SetFlag("grpc_tls_cert_file", WriteFile("tls_cert_der", kFakeCertificate));
  SetFlag("grpc_tls_key_file", WriteFile("tls_key_der", "\x30\x82\x01\x22secret-der-bytes"));
  absl::StatusOr<Config> config = ConfigFromFlags("serve", kNoEnv);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("--grpc_tls_key_file"), HasSubstr("holds no PEM block"),
                    Not(HasSubstr("secret-der-bytes"))));
}

TEST_F(ConfigTest, MigrateDoesNotReadGrpcTlsFiles) {
  SetFlag("grpc_tls_cert_file", "/nonexistent/herald/tls.crt");
  SetFlag("grpc_tls_key_file", "/nonexistent/herald/tls.key");
  SetFlag("database_url", "host=db");
  absl::StatusOr<Config> config = ConfigFromFlags("migrate", kNoEnv);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(ValidateConfig(*config).ok());
}

TEST_F(ConfigTest, GrpcTlsCertificateAndKeyGoTogether) {
  Config config = ValidServeConfig();
  config.grpc_tls_cert_file = "/etc/herald/tls/tls.crt";
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("--grpc_tls_key_file: required with --grpc_tls_cert_file"));

  config.grpc_tls_cert_file.clear();
  config.grpc_tls_key_file = "/etc/herald/tls/tls.key";
  status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("--grpc_tls_cert_file: required with --grpc_tls_key_file"));

  config.grpc_tls_cert_file = "/etc/herald/tls/tls.crt";
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);
}

TEST_F(ConfigTest, GrpcTlsClientCaNeedsTheServerCertificate) {
  Config config = ValidServeConfig();
  config.grpc_tls_client_ca_file = "/etc/herald/tls/ca.crt";
  absl::Status status = ValidateConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("--grpc_tls_client_ca_file: mutual TLS needs TLS"),
                    HasSubstr("--grpc_tls_cert_file"), HasSubstr("--grpc_tls_key_file")));

  config.grpc_tls_cert_file = "/etc/herald/tls/tls.crt";
  config.grpc_tls_key_file = "/etc/herald/tls/tls.key";
  EXPECT_TRUE(ValidateConfig(config).ok()) << ValidateConfig(config);
}

// --- redaction --------------------------------------------------------------

TEST(DescribeConfigTest, HoldsNoSecrets) {
  Config config;
  config.database_url = "postgresql://app:db-secret@db/herald";
  config.mqtt.server_uris = {"ssl://user:uri-secret@broker:8883"};
  config.mqtt.username = "herald";
  config.mqtt.password = "mqtt-secret";
  config.mqtt.key_password = "key-secret";
  const std::string description = DescribeConfig(config);
  EXPECT_THAT(description, AllOf(Not(HasSubstr("db-secret")), Not(HasSubstr("uri-secret")),
                                 Not(HasSubstr("mqtt-secret")), Not(HasSubstr("key-secret"))));
  EXPECT_THAT(description,
              AllOf(HasSubstr("command=serve"), HasSubstr("mqtt_password=set"),
                    HasSubstr("mqtt_username=herald"), HasSubstr("delivery_workers=2"),
                    HasSubstr("postgresql://app:***@db/herald")));
  EXPECT_THAT(description, Not(HasSubstr("\n")));
}

TEST(DescribeConfigTest, ReportsGrpcTlsWithPathsButNoKeyMaterial) {
  Config config;
  EXPECT_THAT(DescribeConfig(config), AllOf(HasSubstr(" grpc_tls=off "),
                                            HasSubstr(" grpc_tls_cert_file=- ")));
  config.grpc_tls_cert_file = "/etc/herald/tls/tls.crt";
  config.grpc_tls_key_file = "/etc/herald/tls/tls.key";
  config.grpc_tls_key_pem = "-----BEGIN PRIVATE KEY-----\nkey-secret\n-----END PRIVATE KEY-----";
  EXPECT_THAT(DescribeConfig(config),
              AllOf(HasSubstr(" grpc_tls=tls "),
                    HasSubstr(" grpc_tls_cert_file=/etc/herald/tls/tls.crt "),
                    HasSubstr(" grpc_tls_key_file=/etc/herald/tls/tls.key "),
                    Not(HasSubstr("key-secret")), Not(HasSubstr("BEGIN"))));
  config.grpc_tls_client_ca_file = "/etc/herald/tls/ca.crt";
  EXPECT_THAT(DescribeConfig(config),
              AllOf(HasSubstr(" grpc_tls=mtls "),
                    HasSubstr(" grpc_tls_client_ca_file=/etc/herald/tls/ca.crt ")));
}

// --- flags and help ---------------------------------------------------------

TEST(ConfigFlagsTest, EveryFlagExistsAndDocumentsItsEnvironmentVariable) {
  for (const std::string& name : ConfigFlagNames()) {
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    ASSERT_NE(flag, nullptr) << name;
    EXPECT_THAT(flag->Help(), HasSubstr(absl::StrCat("Env ", EnvironmentVariableFor(name))))
        << name;
  }
}

TEST(ConfigFlagsTest, EveryFlagOfConfigIsListed) {
  std::vector<std::string> listed = ConfigFlagNames();
  int defined_in_config = 0;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!absl::StrContains(flag->Filename(), "service/config/config.cc")) continue;
    ++defined_in_config;
    EXPECT_NE(std::find(listed.begin(), listed.end(), std::string(name)), listed.end())
        << name << " is defined in config.cc but missing from ConfigFlagNames()";
  }
  EXPECT_EQ(defined_in_config, static_cast<int>(listed.size()));
}

TEST(ConfigFlagsTest, NoPasswordFlag) {
  EXPECT_EQ(absl::FindCommandLineFlag("mqtt_password"), nullptr);
}

// --- ParseConfig ------------------------------------------------------------
// ParseConfig reads the real process environment and command-line state.

class ParseConfigTest : public ConfigTest {
 protected:
  void SetEnv(const std::string& name, const std::string& value) {
    ::setenv(name.c_str(), value.c_str(), 1);
    set_.push_back(name);
  }
  void TearDown() override {
    for (const std::string& name : set_) ::unsetenv(name.c_str());
  }

  static absl::StatusOr<Config> Parse(std::vector<std::string> args) {
    args.insert(args.begin(), "herald");
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    return ParseConfig(static_cast<int>(args.size()), argv.data());
  }

 private:
  std::vector<std::string> set_;
};

TEST_F(ParseConfigTest, CommandLineWinsOverEnvironment) {
  SetEnv("HERALD_DATABASE_URL", "host=db");
  SetEnv("HERALD_DELIVERY_WORKERS", "3");
  SetEnv("HERALD_DELIVERY_BATCH_SIZE", "100");
  absl::StatusOr<Config> config = Parse({"migrate", "--delivery_workers=5"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->command, "migrate");
  EXPECT_EQ(config->database_url, "host=db");
  EXPECT_EQ(config->delivery_workers, 5);      // flag wins
  EXPECT_EQ(config->delivery_batch_size, 100);  // environment applies
}

TEST_F(ParseConfigTest, ServeIsTheDefaultCommand) {
  SetEnv("HERALD_DATABASE_URL", "host=db");
  absl::StatusOr<Config> config = Parse({"--grpc_address=127.0.0.1:0"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->command, "serve");
  EXPECT_EQ(config->grpc_address, "127.0.0.1:0");
}

TEST_F(ParseConfigTest, RepeatedMqttUriFlagsAreMerged) {
  SetEnv("HERALD_DATABASE_URL", "host=db");
  SetEnv("HERALD_MQTT_URI", "tcp://from-env:1883");
  absl::StatusOr<Config> config =
      Parse({"serve", "--mqtt_uri=tcp://a:1883", "-mqtt_uri", "ssl://b:8883",
             "--mqtt_uri=tcp://c:1883,tcp://d:1883"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->mqtt.server_uris,
              ElementsAre("tcp://a:1883", "ssl://b:8883", "tcp://c:1883", "tcp://d:1883"));
}

TEST_F(ParseConfigTest, UnknownCommandIsRejected) {
  absl::StatusOr<Config> config = Parse({"run"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("unknown command \"run\""));
}

TEST_F(ParseConfigTest, StrayArgumentIsRejected) {
  absl::StatusOr<Config> config = Parse({"migrate", "now"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("unexpected argument \"now\""));
}

TEST_F(ParseConfigTest, PasswordFlagIsRefusedWithAHint) {
  absl::StatusOr<Config> config = Parse({"serve", "--mqtt_password=hunter2"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("--mqtt_password_file"), HasSubstr("HERALD_MQTT_PASSWORD"),
                    Not(HasSubstr("hunter2"))));
}

TEST_F(ParseConfigTest, BadEnvironmentIsReported) {
  SetEnv("HERALD_MAX_DELIVERY_ATTEMPTS", "many");
  absl::StatusOr<Config> config = Parse({"version"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("HERALD_MAX_DELIVERY_ATTEMPTS"));
}

TEST_F(ParseConfigTest, ValidationFailureIsReturned) {
  absl::StatusOr<Config> config = Parse({"serve"});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("--database_url: required"));
}

TEST_F(ParseConfigTest, CommandLineSecretFileWinsOverEnvironmentValue) {
  SetEnv("HERALD_DATABASE_URL", "host=from-env");
  SetEnv("HERALD_MQTT_PASSWORD", "pw-from-env");
  absl::StatusOr<Config> config =
      Parse({"serve", "--database_url_file", WriteFile("db_url_cli", "host=from-file\n"),
             absl::StrCat("--mqtt_password_file=", WriteFile("pw_cli", "pw-from-file\n"))});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->database_url, "host=from-file");
  EXPECT_EQ(config->mqtt.password, "pw-from-file");
}

TEST_F(ParseConfigTest, CommandLineValueWinsOverEnvironmentFile) {
  SetEnv("HERALD_DATABASE_URL_FILE", WriteFile("db_url_env", "host=from-file"));
  absl::StatusOr<Config> config = Parse({"migrate", "--database_url=host=from-cli"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->database_url, "host=from-cli");
}

TEST_F(ParseConfigTest, GrpcTlsCertificateWithoutKeyIsRefused) {
  absl::StatusOr<Config> config =
      Parse({"serve", "--database_url=host=db",
             absl::StrCat("--grpc_tls_cert_file=", WriteFile("tls_cert_alone", kFakeCertificate))});
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              HasSubstr("--grpc_tls_key_file: required with --grpc_tls_cert_file"));
}

}  // namespace
}  // namespace herald
