// MqttProvider without a broker: construction, argument checks and the
// behaviour before Start and after Stop. Connecting is covered by
// tests/integration/mqtt.
#include "providers/mqtt/mqtt_provider.h"

#include <cctype>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "providers/mqtt/mqtt_options.h"
#include "providers/provider.h"

namespace herald {
namespace {

// Collects publish outcomes; the provider calls back inline for publishes
// it refuses at once.
struct Outcomes {
  std::vector<PublishResult> results;
  PublishCallback Callback() {
    return [this](const PublishResult& result) { results.push_back(result); };
  }
};

// A message with the fields these tests vary.
OutgoingMessage Message(std::string topic, int qos = 1) {
  OutgoingMessage message;
  message.topic = std::move(topic);
  message.payload = "{}";
  message.qos = qos;
  return message;
}

std::unique_ptr<MqttProvider> MakeProvider(MqttOptions options = {}) {
  absl::StatusOr<std::unique_ptr<MqttProvider>> provider = MqttProvider::Create(options);
  EXPECT_TRUE(provider.ok()) << provider.status();
  return provider.ok() ? *std::move(provider) : nullptr;
}

TEST(MqttProviderTest, CreateRejectsInvalidOptions) {
  MqttOptions options;
  options.server_uris = {"tcp://broker"};
  absl::StatusOr<std::unique_ptr<Provider>> provider = CreateMqttProvider(options);
  ASSERT_FALSE(provider.ok());
  EXPECT_EQ(provider.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(provider.status().message(), "--mqtt_uri")) << provider.status();
}

TEST(MqttProviderTest, FactoryBuildsAnMqttProvider) {
  absl::StatusOr<std::unique_ptr<Provider>> provider = CreateMqttProvider(MqttOptions());
  ASSERT_TRUE(provider.ok()) << provider.status();
  EXPECT_EQ((*provider)->Name(), "mqtt");
}

TEST(MqttProviderTest, GeneratesAClientIdWhenNoneIsGiven) {
  std::unique_ptr<MqttProvider> provider = MakeProvider();
  ASSERT_NE(provider, nullptr);
  const std::string& id = provider->client_id();
  EXPECT_TRUE(absl::StartsWith(id, "herald-")) << id;
  ASSERT_GT(id.size(), 9u);
  EXPECT_EQ(id[id.size() - 9], '-') << id;
  for (char c : id.substr(id.size() - 8)) EXPECT_TRUE(std::isxdigit(c)) << id;
  EXPECT_NE(GenerateMqttClientId(), GenerateMqttClientId());

  MqttOptions options;
  options.client_id = "herald-fixed";
  EXPECT_EQ(MakeProvider(options)->client_id(), "herald-fixed");
}

TEST(MqttProviderTest, BeforeStart) {
  MqttOptions options;
  options.max_in_flight = 7;
  std::unique_ptr<MqttProvider> provider = MakeProvider(options);
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->AvailableCapacity(), 7);
  const ConnectionStatus status = provider->GetConnectionStatus();
  EXPECT_EQ(status.state, ConnectionState::kDisconnected);
  EXPECT_EQ(status.connections, 0);
  EXPECT_EQ(status.in_flight, 0);
  EXPECT_FALSE(status.last_connect_time.has_value());
  EXPECT_EQ(provider->WaitConnected(absl::ZeroDuration()).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(MqttProviderTest, PublishWhileNotConnectedFailsAtOnceExactlyOnce) {
  std::unique_ptr<MqttProvider> provider = MakeProvider();
  ASSERT_NE(provider, nullptr);
  Outcomes outcomes;
  provider->Publish(Message("devices/s1/notifications"), outcomes.Callback());
  ASSERT_EQ(outcomes.results.size(), 1u);  // inline, before Publish returned
  EXPECT_EQ(outcomes.results[0].status.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(outcomes.results[0].status.message(), "not connected"))
      << outcomes.results[0].status;
  EXPECT_EQ(provider->AvailableCapacity(), MqttOptions().max_in_flight);
}

TEST(MqttProviderTest, PublishRejectsBadTopicAndQos) {
  std::unique_ptr<MqttProvider> provider = MakeProvider();
  ASSERT_NE(provider, nullptr);
  Outcomes outcomes;
  provider->Publish(Message("devices/+/notifications"), outcomes.Callback());
  provider->Publish(Message("devices/#"), outcomes.Callback());
  provider->Publish(Message(""), outcomes.Callback());
  provider->Publish(Message("devices/s1", 3), outcomes.Callback());
  ASSERT_EQ(outcomes.results.size(), 4u);
  for (const PublishResult& result : outcomes.results) {
    EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument) << result.status;
  }
}

TEST(MqttProviderTest, SubscribeChecksItsArguments) {
  std::unique_ptr<MqttProvider> provider = MakeProvider();
  ASSERT_NE(provider, nullptr);
  auto handler = [](const IncomingMessage&) {};
  EXPECT_EQ(provider->Subscribe("a/#/b", 1, handler).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(provider->Subscribe("a/b", 3, handler).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(provider->Subscribe("a/b", 1, nullptr).code(), absl::StatusCode::kInvalidArgument);
  // Not connected: remembered for the connection, OK.
  EXPECT_TRUE(provider->Subscribe("$share/herald/devices/+/responses", 1, handler).ok());
}

TEST(MqttProviderTest, StopWithoutStartIsQuietAndFinal) {
  std::unique_ptr<MqttProvider> provider = MakeProvider();
  ASSERT_NE(provider, nullptr);
  provider->Stop(absl::Seconds(1));
  provider->Stop(absl::Seconds(1));  // idempotent
  EXPECT_EQ(provider->Start().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(provider->Subscribe("a/b", 1, [](const IncomingMessage&) {}).code(),
            absl::StatusCode::kFailedPrecondition);
  Outcomes outcomes;
  provider->Publish(Message("a/b"), outcomes.Callback());
  ASSERT_EQ(outcomes.results.size(), 1u);
  EXPECT_EQ(outcomes.results[0].status.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace herald
