// Hostile MQTT messages on the topics Herald subscribes to: the Commander
// and the PresenceTracker over the real MqttProvider, against the `servers`
// fixture's Mosquitto and PostgreSQL (a scratch database). A plain Paho
// client floods the response and presence topics with what a broken or
// malicious device may publish (bytes that are not UTF-8, payloads far over
// Herald's limits, JSON nested deeper than any parser allows, JSON of the
// wrong shape, empty payloads, binary correlation data, answers from the
// wrong device, retained garbage waiting before Herald subscribes), while a
// command waits for its answer. Herald must count and skip every one of
// them, change nothing because of them, and afterwards still apply a valid
// presence message and complete the command on a valid answer, promptly.
#include <cstdint>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "providers/mqtt/mqtt_options.h"
#include "providers/mqtt/mqtt_provider.h"
#include "service/core/command.h"
#include "service/core/types.h"
#include "service/dispatch/commander.h"
#include "service/dispatch/presence_tracker.h"
#include "service/metrics/herald_metrics.h"
#include "service/store/pg_command_store.h"
#include "service/store/pg_connection_pool.h"
#include "service/store/pg_device_store.h"
#include "tests/integration/mqtt/mqtt_test_support.h"
#include "tests/testing/fakes/metrics_reader.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateScratchDatabase;
using ::herald::testing::MetricValue;
using ::herald::testing::TestClient;
using ::herald::testing::TestServers;
using ::herald::testing::WaitUntil;

constexpr absl::Duration kTimeout = absl::Seconds(60);
// What "promptly" means for the valid messages after the flood: far above
// the milliseconds they take, far below a stall.
constexpr absl::Duration kPromptly = absl::Seconds(5);
constexpr char kDevice[] = "node-001";
constexpr char kHome[] = "home-1";

// One message the flood publishes.
struct Hostile {
  std::string topic;
  std::string payload;
  std::string correlation_data;  // MQTT 5 property, when non-empty
  bool retain = false;
};

// Arrays nested `depth` levels deep.
std::string Nested(int depth) {
  return absl::StrCat(std::string(depth, '['), std::string(depth, ']'));
}

class HostileMessagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const TestServers& servers = TestServers::Get();
    mqtt_uri_ = servers.mqtt_uri;
    absl::StatusOr<std::unique_ptr<PgConnectionPool>> pool =
        PgConnectionPool::Create(CreateScratchDatabase("hostile"), {});
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    devices_ = std::make_unique<PgDeviceStore>(pool_.get(), nullptr);
    commands_ = std::make_unique<PgCommandStore>(pool_.get(), nullptr);
    metrics_ = std::make_unique<HeraldMetrics>(registry_, "test");

    absl::BitGen random;
    prefix_ = absl::StrFormat("herald-hostile/%08x", absl::Uniform<uint32_t>(random));
    Device device;
    device.tenant_id = kDefaultTenant;
    device.device_id = kDevice;
    device.owner_id = "alice";
    device.metadata["home_id"] = kHome;
    ASSERT_TRUE(devices_->CreateDevice(device).ok());

    attacker_ = std::make_unique<TestClient>(mqtt_uri_, 5);
    ASSERT_TRUE(attacker_->Connect().ok());
  }

  void TearDown() override {
    presence_.reset();
    commander_.reset();
    provider_.reset();
    // Leave no retained message behind on the shared broker.
    if (attacker_ != nullptr) {
      for (const std::string& topic : retained_topics_) {
        EXPECT_TRUE(attacker_->Publish(topic, "", 1, /*retain=*/true).ok()) << topic;
      }
    }
  }

  std::string ResponseTopic(const std::string& device_id) const {
    return absl::StrCat(prefix_, "/devices/", device_id, "/responses");
  }
  std::string PresenceTopic(const std::string& device_id, const std::string& home = kHome) const {
    return absl::StrCat(prefix_, "/homes/", home, "/devices/", device_id, "/status/online");
  }

  // Starts Herald's side: the provider, the Commander (shared subscription,
  // as Herald runs under MQTT 5) and the PresenceTracker (HomeSync's layout).
  void StartHerald() {
    MqttOptions options;
    options.server_uris = {mqtt_uri_};
    options.mqtt_version = 5;
    options.connect_timeout = absl::Seconds(5);
    options.reconnect_min = absl::Milliseconds(100);
    options.reconnect_max = absl::Seconds(1);
    absl::StatusOr<std::unique_ptr<MqttProvider>> provider = MqttProvider::Create(options);
    ASSERT_TRUE(provider.ok()) << provider.status();
    provider_ = *std::move(provider);
    ASSERT_TRUE(provider_->Start().ok());
    ASSERT_TRUE(provider_->WaitConnected(kTimeout).ok());

    CommanderOptions commander_options;
    commander_options.command_topic_template =
        absl::StrCat(prefix_, "/devices/{device_id}/commands");
    commander_options.response_topic_template =
        absl::StrCat(prefix_, "/devices/{device_id}/responses");
    commander_options.shared_subscription = true;
    commander_ = std::make_unique<Commander>(*devices_, *commands_, *provider_, *metrics_,
                                             commander_options);
    ASSERT_TRUE(commander_->Start().ok());

    PresenceOptions presence_options;
    presence_options.topic_template =
        absl::StrCat(prefix_, "/homes/{meta.home_id}/devices/{device_id}/status/online");
    presence_ =
        std::make_unique<PresenceTracker>(*devices_, *provider_, *metrics_, presence_options);
    ASSERT_TRUE(presence_->Start().ok());
  }

  absl::Status Publish(const Hostile& message) {
    if (message.retain) retained_topics_.push_back(message.topic);
    return attacker_->Publish(message.topic, message.payload, 1, message.retain,
                              /*response_topic=*/"", message.correlation_data);
  }

  double Responses() const { return MetricValue(registry_, "herald_command_responses_total"); }
  double Presence() const { return MetricValue(registry_, "herald_presence_messages_total"); }

  // What a broken or malicious device publishes on a response topic; some
  // carry the request id of the command that is waiting. With `huge`, also
  // payloads of megabytes (the fixture's broker sets no message_size_limit).
  std::vector<Hostile> HostileResponses(const std::string& request_id, bool huge) const {
    const std::string mine = ResponseTopic(kDevice);
    const std::string id = absl::StrCat("\"", request_id, "\"");
    std::vector<Hostile> messages;
    for (const std::string& payload : std::vector<std::string>{
             "", " \n\t", "\xff\xfe\xfd\xfc", "\xc3\x28{", "{", "}", "{{}}", "{\"a\":}",
             "null", "true", "42", "1e999", "\"success\"", "[]", "[1,2,3]",
             std::string("{\"request_id\":\"\xff\xfe\",\"status\":\"success\"}"),
             "\xEF\xBB\xBF{\"request_id\":\"bom\",\"status\":\"success\"}",
             // A raw NUL (not JSON), and an escaped one (a request id with a NUL).
             std::string("{\"request_id\":\"a\0b\",\"status\":\"success\"}", 39),
             "{\"request_id\":\"a\\u0000b\",\"status\":\"success\"}",
             Nested(100000),
             absl::StrCat("{\"request_id\":", id, ",\"status\":\"success\",\"result\":",
                          Nested(100000), "}"),
             // Over Herald's nesting limit of 32: Protobuf reads 40 levels but cannot
             // write them back for the jsonb column; 100000 levels (above) took its
             // parser over a minute, on the thread that delivers every message.
             absl::StrCat("{\"request_id\":", id, ",\"status\":\"success\",\"result\":",
                          Nested(40), "}"),
             absl::StrCat("{\"request_id\":", id, ",\"status\":42}"),
             absl::StrCat("{\"request_id\":", id, ",\"status\":\"\"}"),
             absl::StrCat("{\"request_id\":", id, "}"),
             absl::StrCat("{\"request_id\":[", id, "],\"status\":\"success\"}"),
             "{\"request_id\":42,\"status\":\"success\"}",
             "{\"request_id\":null,\"status\":\"success\"}",
             "{\"status\":\"success\"}",  // no request id, no correlation data
             // Over Herald's limit of 256 KiB, and far over it.
             absl::StrCat("{\"request_id\":", id, ",\"status\":\"success\",\"result\":\"",
                          std::string(300 * 1024, 'x'), "\"}"),
         }) {
      messages.push_back({.topic = mine, .payload = payload});
    }
    if (huge) {
      messages.push_back({.topic = mine, .payload = std::string(4 * 1024 * 1024, '\xff')});
      messages.push_back({.topic = mine, .payload = std::string(16 * 1024 * 1024, '{')});
    }
    // Binary correlation data standing in for the request id.
    messages.push_back({.topic = mine,
                        .payload = "{\"status\":\"success\"}",
                        .correlation_data = std::string("\x00\xff\xfe\x01", 4)});
    messages.push_back({.topic = mine,
                        .payload = "{\"status\":\"success\"}",
                        .correlation_data = std::string(60000, '\xc3')});
    // Well-formed answers that must not complete the command: for an
    // unknown request, and the right request id from another device.
    messages.push_back(
        {.topic = mine, .payload = "{\"request_id\":\"no-such-request\",\"status\":\"success\"}"});
    messages.push_back(
        {.topic = ResponseTopic("node-002"),
         .payload = absl::StrCat("{\"request_id\":", id, ",\"status\":\"success\"}")});
    messages.push_back({.topic = ResponseTopic("x'; DROP TABLE commands; --"),
                        .payload = absl::StrCat("{\"request_id\":", id, ",\"status\":\"error\"}")});
    return messages;
  }

  // What a broken or malicious device publishes on a presence topic. None
  // of it may mark the device online.
  std::vector<Hostile> HostilePresence(bool huge) const {
    const std::string mine = PresenceTopic(kDevice);
    std::vector<Hostile> messages;
    for (const std::string& payload : std::vector<std::string>{
             "", "\"\"", "\"", "\xff", "\xc3\x28", "maybe", "ONLINE!", "1", "null", "[true]",
             "{\"online\":\"yes\"}", "{\"online\":1}", "{\"online\":null}", "{\"online\":[true]}",
             "{\"status\":\"online\"}", "{\"online\":true", "\xEF\xBB\xBFonline",
             absl::StrCat("{\"online\":true,\"x\":", Nested(100000), "}"),
             absl::StrCat("{\"online\":\"", std::string(300 * 1024, 'y'), "\"}"),
         }) {
      messages.push_back({.topic = mine, .payload = payload});
    }
    if (huge) {
      messages.push_back({.topic = mine, .payload = std::string(4 * 1024 * 1024, '\0')});
      messages.push_back({.topic = mine, .payload = std::string(16 * 1024 * 1024, '[')});
    }
    // Well-formed, but about another home (the device's metadata says
    // home-1), an unknown device, or a device id made to hurt.
    messages.push_back({.topic = PresenceTopic(kDevice, "home-2"), .payload = "{\"online\":true}"});
    messages.push_back({.topic = PresenceTopic("ghost"), .payload = "online"});
    messages.push_back(
        {.topic = PresenceTopic("x'; DROP TABLE devices; --"), .payload = "{\"online\":true}"});
    messages.push_back({.topic = PresenceTopic("\xe2\x98\x83-\xf0\x9f\x92\xa9"),
                        .payload = "{\"online\":true}"});
    messages.push_back({.topic = PresenceTopic(std::string(20000, 'L')), .payload = "true"});
    return messages;
  }

  std::string mqtt_uri_;
  std::string prefix_;  // unique per test: tests share the fixture's broker
  std::unique_ptr<PgConnectionPool> pool_;
  std::unique_ptr<PgDeviceStore> devices_;
  std::unique_ptr<PgCommandStore> commands_;
  prometheus::Registry registry_;
  std::unique_ptr<HeraldMetrics> metrics_;
  std::unique_ptr<MqttProvider> provider_;
  std::unique_ptr<Commander> commander_;
  std::unique_ptr<PresenceTracker> presence_;
  std::unique_ptr<TestClient> attacker_;
  std::vector<std::string> retained_topics_;
};

TEST_F(HostileMessagesTest, FloodIsSkippedAndValidMessagesStillGoThroughPromptly) {
  // Retained garbage waits on the topics before Herald subscribes.
  const std::vector<Hostile> retained = {
      {.topic = PresenceTopic(kDevice), .payload = std::string("\xff\0garbage", 9), .retain = true},
      {.topic = PresenceTopic("ghost"), .payload = "{\"online\":\"maybe\"}", .retain = true},
      {.topic = ResponseTopic(kDevice), .payload = "\xc3\x28 not json", .retain = true},
  };
  for (const Hostile& message : retained) ASSERT_TRUE(Publish(message).ok());
  StartHerald();
  if (HasFatalFailure()) return;

  // A command that waits while the flood goes on. The device's side is a
  // plain client on the command topic.
  TestClient device(mqtt_uri_, 5);
  ASSERT_TRUE(device.Connect().ok());
  ASSERT_TRUE(device.Subscribe(absl::StrCat(prefix_, "/devices/", kDevice, "/commands"), 1).ok());
  CommandRequest request;
  request.tenant_id = kDefaultTenant;
  request.device_id = kDevice;
  request.action = "on";
  request.timeout = kTimeout;
  request.max_retries = 0;
  request.send_if_offline = true;
  std::future<absl::StatusOr<CommandRecord>> sent =
      std::async(std::launch::async, [&] { return commander_->Send(request); });
  // On an early return, wake the call rather than wait out its timeout.
  absl::Cleanup wake_sender = [&] { commander_->Stop(); };
  ASSERT_TRUE(device.WaitForCount(1, kTimeout));
  const std::string request_id = device.Messages().front().correlation_data;
  ASSERT_FALSE(request_id.empty());

  // The flood: the crafted messages three times (the huge ones once), and
  // random bytes.
  std::vector<Hostile> flood;
  for (int round = 0; round < 3; ++round) {
    for (Hostile& message : HostileResponses(request_id, round == 0)) {
      flood.push_back(std::move(message));
    }
    for (Hostile& message : HostilePresence(round == 0)) flood.push_back(std::move(message));
  }
  absl::BitGen random;
  for (int i = 0; i < 400; ++i) {
    std::string bytes(absl::Uniform(random, 0, 3000), '\0');
    for (char& c : bytes) c = static_cast<char>(absl::Uniform<uint8_t>(random));
    flood.push_back({.topic = i % 2 == 0 ? ResponseTopic(kDevice) : PresenceTopic(kDevice),
                     .payload = std::move(bytes)});
  }
  flood.push_back({.topic = PresenceTopic(kDevice), .payload = "\xff retained", .retain = true});
  size_t responses = 0;
  size_t presence = 0;
  for (const Hostile& message : retained) {
    (message.topic == ResponseTopic(kDevice) ? responses : presence) += 1;
  }
  size_t bytes = 0;
  const absl::Time flood_start = absl::Now();
  for (const Hostile& message : flood) {
    const absl::Status published = Publish(message);
    ASSERT_TRUE(published.ok()) << published << " (" << message.payload.size() << " bytes, "
                                << message.correlation_data.size() << " bytes of correlation data)";
    const bool is_response = message.topic.find("/responses") != std::string::npos;
    (is_response ? responses : presence) += 1;
    bytes += message.payload.size();
  }

  // Herald has read and counted every one of them (each ends with exactly
  // one outcome), and none of them answered the command or set presence.
  EXPECT_TRUE(WaitUntil([&] { return Responses() >= responses && Presence() >= presence; },
                        kTimeout))
      << "responses counted " << Responses() << " of " << responses << ", presence " << Presence()
      << " of " << presence;
  const absl::Duration flood_time = absl::Now() - flood_start;
  EXPECT_TRUE(presence_->AwaitIdle(kTimeout));
  EXPECT_GE(MetricValue(registry_, "herald_command_responses_total", {{"outcome", "malformed"}}),
            60);
  EXPECT_GE(MetricValue(registry_, "herald_command_responses_total", {{"outcome", "wrong_device"}}),
            3);
  EXPECT_GE(MetricValue(registry_, "herald_presence_messages_total", {{"outcome", "malformed"}}),
            60);
  EXPECT_EQ(MetricValue(registry_, "herald_presence_messages_total", {{"outcome", "online"}}), 0);
  EXPECT_EQ(MetricValue(registry_, "herald_command_responses_total", {{"outcome", "matched"}}), 0);
  ASSERT_EQ(sent.wait_for(std::chrono::seconds(0)), std::future_status::timeout)
      << "a hostile message completed the command";
  absl::StatusOr<Device> before = devices_->GetDevice(kDefaultTenant, kDevice);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->online);

  // A valid presence message is applied promptly.
  const absl::Time presence_sent = absl::Now();
  ASSERT_TRUE(Publish({.topic = PresenceTopic(kDevice),
                       .payload = "{\"online\": true}",
                       .retain = true})
                  .ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        absl::StatusOr<Device> device = devices_->GetDevice(kDefaultTenant, kDevice);
        return device.ok() && device->online;
      },
      kPromptly));
  const absl::Duration presence_latency = absl::Now() - presence_sent;

  // A valid answer completes the waiting command promptly.
  const absl::Time answer_sent = absl::Now();
  ASSERT_TRUE(Publish({.topic = ResponseTopic(kDevice),
                       .payload = absl::StrCat("{\"request_id\":\"", request_id,
                                               "\",\"status\":\"success\",\"result\":{\"relay\":"
                                               "\"on\"}}")})
                  .ok());
  ASSERT_EQ(sent.wait_for(std::chrono::milliseconds(absl::ToInt64Milliseconds(kPromptly))),
            std::future_status::ready);
  const absl::Duration answer_latency = absl::Now() - answer_sent;
  absl::StatusOr<CommandRecord> done = sent.get();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
  EXPECT_EQ(absl::StrReplaceAll(done->result_json, {{" ", ""}}), "{\"relay\":\"on\"}")
      << "as PostgreSQL's jsonb writes it: " << done->result_json;
  EXPECT_EQ(MetricValue(registry_, "herald_command_responses_total", {{"outcome", "matched"}}), 1);

  // The figures, for the record.
  std::printf(
      "hostile flood: %zu messages (%zu on response topics, %zu on presence topics, %.1f MiB) "
      "counted in %s; then presence applied in %s, command answered in %s\n",
      responses + presence, responses, presence, bytes / (1024.0 * 1024.0),
      absl::FormatDuration(absl::Trunc(flood_time, absl::Milliseconds(1))).c_str(),
      absl::FormatDuration(absl::Trunc(presence_latency, absl::Milliseconds(1))).c_str(),
      absl::FormatDuration(absl::Trunc(answer_latency, absl::Milliseconds(1))).c_str());
}

}  // namespace
}  // namespace herald
