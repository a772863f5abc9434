// Callers and tenants end to end (issue 6): the real herald binary with
// authentication on, API keys made with the real `herald keys`, a real
// PostgreSQL, a real Mosquitto and a real subscriber that sees which topics
// a tenant's notifications reach. Also: the rate limit's RESOURCE_EXHAUSTED,
// revocation, probes without a key, and no secret in a full run's log.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "herald/v1/command.grpc.pb.h"
#include "herald/v1/device.grpc.pb.h"
#include "herald/v1/notification.grpc.pb.h"
#include "herald/v1/stats.grpc.pb.h"
#include "tests/testing/api_key_channel.h"
#include "tests/testing/device_simulator.h"
#include "tests/testing/herald_process.h"
#include "tests/testing/mqtt_recorder.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateApiKeyChannel;
using ::herald::testing::DeviceSimulator;
using ::herald::testing::HeraldProcess;
using ::herald::testing::MqttRecorder;
using ::herald::testing::RunHerald;
using ::herald::testing::TestServers;

// Secrets handed to Herald in this suite: none may show in its log.
constexpr char kDatabasePassword[] = "Db-Pa55word-never-logged";
constexpr char kMqttPassword[] = "Mqtt-Pa55word-never-logged";

std::string WithPassword(const std::string& url) {
  return absl::StrCat(url, absl::StrContains(url, '?') ? "&" : "?", "password=",
                      kDatabasePassword);
}

class SecurityEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setup_error_ = new std::string();
    database_url_ = new std::string(
        WithPassword(herald::testing::CreateScratchDatabase("security", false)));
    herald_ = new HeraldProcess({"--database_url=" + *database_url_,
                                 "--mqtt_uri=" + TestServers::Get().mqtt_uri,
                                 "--mqtt_username=herald-security-test",
                                 absl::StrCat("--mqtt_client_id=herald-security-", getpid()),
                                 "--log_level=debug"});
    herald_->SetEnv("HERALD_MQTT_PASSWORD", kMqttPassword);
    if (absl::Status started = herald_->Start(); !started.ok()) {
      *setup_error_ = started.ToString();
      return;
    }
    secrets_ = new std::vector<std::string>{kDatabasePassword, kMqttPassword,
                                            SecretOf(herald_->api_key())};
  }

  static void TearDownTestSuite() {
    if (herald_ != nullptr && herald_->Running()) {
      EXPECT_EQ(herald_->Stop(), 0) << herald_->ReadLog();
      // The whole run's log, debug lines included, after every test's
      // traffic (valid keys, wrong keys, revoked keys): no secret in it.
      const std::string log = herald_->ReadLog();
      EXPECT_TRUE(absl::StrContains(log, "herald stopped")) << log;
      for (const std::string& secret : *secrets_) {
        EXPECT_FALSE(absl::StrContains(log, secret)) << "a secret is in the log: " << secret;
      }
    }
    delete herald_;
    delete database_url_;
    delete secrets_;
    delete setup_error_;
  }

  void SetUp() override {
    ASSERT_TRUE(setup_error_->empty()) << *setup_error_;
    prefix_ = absl::StrCat(getpid() % 100000, "-",
                           ::testing::UnitTest::GetInstance()->current_test_info()->line(), "-");
  }

  void TearDown() override {
    if (HasFailure() && herald_ != nullptr) {
      std::fprintf(stderr, "--- herald log ---\n%s\n", herald_->ReadLog().c_str());
    }
  }

  // The secret part of a key: hk_<12 hex>_<secret>.
  static std::string SecretOf(const std::string& key) {
    return key.size() > 16 ? key.substr(16) : key;
  }

  // `herald keys create` for `tenant` with `scopes`; the key, recorded as a
  // secret that the log must not show.
  std::string MakeKey(const std::string& tenant, const std::string& scopes) {
    std::string output;
    absl::StatusOr<int> code = RunHerald({"keys", "create", "--database_url=" + *database_url_,
                                          "--tenant=" + tenant, "--scopes=" + scopes,
                                          "--key_name=security-test"},
                                         &output);
    EXPECT_TRUE(code.ok() && *code == 0) << output;
    for (absl::string_view line : absl::StrSplit(output, '\n')) {
      if (absl::StartsWith(line, "hk_")) {
        secrets_->push_back(SecretOf(std::string(line)));
        return std::string(line);
      }
    }
    ADD_FAILURE() << "no key printed:\n" << output;
    return "";
  }

  std::shared_ptr<grpc::Channel> ChannelWith(const std::string& key) const {
    return CreateApiKeyChannel(herald_->grpc_target(), key);
  }

  static grpc::Status CreateDevice(const std::shared_ptr<grpc::Channel>& channel,
                                   const std::string& id,
                                   const std::string& topic = "") {
    v1::CreateDeviceRequest request;
    request.mutable_device()->set_device_id(id);
    request.mutable_device()->set_owner_id("owner");
    request.mutable_device()->set_topic(topic);
    v1::Device created;
    grpc::ClientContext context;
    return v1::DeviceService::NewStub(channel)->CreateDevice(&context, request, &created);
  }

  static grpc::Status Notify(const std::shared_ptr<grpc::Channel>& channel,
                             const v1::SendNotificationRequest& request,
                             v1::SendNotificationResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    return v1::NotificationService::NewStub(channel)->SendNotification(&context, request,
                                                                       response);
  }

  static v1::SendNotificationRequest ToDevice(const std::string& device_id) {
    v1::SendNotificationRequest request;
    request.mutable_target()->mutable_device_ids()->add_values(device_id);
    request.mutable_content()->set_title("hello");
    return request;
  }

  static std::string* setup_error_;
  static std::string* database_url_;
  static HeraldProcess* herald_;
  static std::vector<std::string>* secrets_;
  std::string prefix_;
};

std::string* SecurityEndToEndTest::setup_error_ = nullptr;
std::string* SecurityEndToEndTest::database_url_ = nullptr;
HeraldProcess* SecurityEndToEndTest::herald_ = nullptr;
std::vector<std::string>* SecurityEndToEndTest::secrets_ = nullptr;

TEST_F(SecurityEndToEndTest, CallsWithoutAValidKeyAreUnauthenticatedButProbesAnswer) {
  v1::ListDevicesRequest request;
  v1::ListDevicesResponse response;
  {
    grpc::ClientContext context;
    grpc::Status status =
        v1::DeviceService::NewStub(ChannelWith(""))->ListDevices(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_TRUE(absl::StrContains(status.error_message(), "authorization: Bearer"))
        << status.error_message();
  }
  const std::string valid = herald_->api_key();
  std::string wrong = valid;
  wrong.back() = wrong.back() == 'A' ? 'B' : 'A';
  for (const std::string& key : {wrong, std::string("hk_not-a-key"), std::string("x")}) {
    grpc::ClientContext context;
    grpc::Status status =
        v1::DeviceService::NewStub(ChannelWith(key))->ListDevices(&context, request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << key;
    EXPECT_FALSE(absl::StrContains(status.error_message(), SecretOf(wrong)));
  }
  {
    // Nothing was written for the refused calls: a notification without a
    // key is not accepted.
    v1::SendNotificationResponse sent;
    v1::SendNotificationRequest broadcast;
    broadcast.mutable_content()->set_title("hello");
    broadcast.mutable_target()->set_topic(prefix_ + "broadcast");
    EXPECT_EQ(Notify(ChannelWith(""), broadcast, &sent).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  // Kubernetes' probes carry no key: health stays reachable.
  grpc::health::v1::HealthCheckRequest health_request;
  grpc::health::v1::HealthCheckResponse health;
  grpc::ClientContext context;
  grpc::Status status = grpc::health::v1::Health::NewStub(ChannelWith(""))
                            ->Check(&context, health_request, &health);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(SecurityEndToEndTest, AMissingScopeIsPermissionDenied) {
  const std::string reader = MakeKey("default", "devices:read");
  auto channel = ChannelWith(reader);
  grpc::Status created = CreateDevice(channel, prefix_ + "device");
  EXPECT_EQ(created.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(absl::StrContains(created.error_message(), "devices:write"))
      << created.error_message();
  v1::SendNotificationResponse sent;
  grpc::Status notified = Notify(channel, ToDevice(prefix_ + "device"), &sent);
  EXPECT_EQ(notified.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(absl::StrContains(notified.error_message(), "notify")) << notified.error_message();
  // What the key may do, it does.
  v1::ListDevicesRequest request;
  v1::ListDevicesResponse response;
  grpc::ClientContext context;
  grpc::Status listed =
      v1::DeviceService::NewStub(channel)->ListDevices(&context, request, &response);
  EXPECT_TRUE(listed.ok()) << listed.error_message();
}

TEST_F(SecurityEndToEndTest, TenantsNeitherSeeNorReachEachOther) {
  const std::string acme_tenant = "acme" + prefix_.substr(0, prefix_.size() - 1);
  const std::string globex_tenant = "globex" + prefix_.substr(0, prefix_.size() - 1);
  auto acme = ChannelWith(MakeKey(acme_tenant, "all"));
  auto globex = ChannelWith(MakeKey(globex_tenant, "all"));
  MqttRecorder recorder(TestServers::Get().mqtt_uri, {"#"}, 1);
  ASSERT_TRUE(recorder.Connect().ok());

  // The same device id in both tenants, and one device only globex has.
  ASSERT_TRUE(CreateDevice(acme, "sensor-1").ok());
  ASSERT_TRUE(CreateDevice(globex, "sensor-1").ok());
  ASSERT_TRUE(CreateDevice(globex, "globex-only").ok());

  // acme cannot read globex's device, nor find it in a list.
  {
    v1::GetDeviceRequest request;
    request.set_device_id("globex-only");
    v1::Device device;
    grpc::ClientContext context;
    EXPECT_EQ(v1::DeviceService::NewStub(acme)->GetDevice(&context, request, &device).error_code(),
              grpc::StatusCode::NOT_FOUND);
    v1::ListDevicesRequest list;
    v1::ListDevicesResponse listed;
    grpc::ClientContext list_context;
    ASSERT_TRUE(v1::DeviceService::NewStub(acme)->ListDevices(&list_context, list, &listed).ok());
    ASSERT_EQ(listed.devices_size(), 1);
    EXPECT_EQ(listed.devices(0).device_id(), "sensor-1");
  }
  // ... nor target it: nothing resolves.
  v1::SendNotificationResponse sent;
  EXPECT_EQ(Notify(acme, ToDevice("globex-only"), &sent).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A raw topic outside acme's prefix, or a device topic there, is refused.
  v1::SendNotificationRequest outside;
  outside.mutable_content()->set_title("hello");
  outside.mutable_target()->set_topic(globex_tenant + "/devices/sensor-1/notifications");
  grpc::Status refused = Notify(acme, outside, &sent);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(absl::StrContains(refused.error_message(), "target.topic"))
      << refused.error_message();
  outside.mutable_target()->set_topic("devices/sensor-1/notifications");
  EXPECT_EQ(Notify(acme, outside, &sent).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(CreateDevice(acme, "sneaky", globex_tenant + "/devices/sensor-1/notifications")
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  // acme's notification to its sensor-1 reaches acme's topic only.
  ASSERT_TRUE(Notify(acme, ToDevice("sensor-1"), &sent).ok());
  const std::string acme_id = sent.notification_id();
  v1::SendNotificationRequest broadcast;
  broadcast.mutable_content()->set_title("hello");
  broadcast.mutable_target()->set_topic(acme_tenant + "/broadcast");
  ASSERT_TRUE(Notify(acme, broadcast, &sent).ok());
  ASSERT_TRUE(recorder.WaitForCount(2, absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(300));  // anything stray would have come by now
  std::vector<std::string> topics;
  for (const auto& message : recorder.Messages()) {
    if (absl::StrContains(message.topic, "sensor-1") ||
        absl::EndsWith(message.topic, "broadcast")) {
      topics.push_back(message.topic);
    }
  }
  EXPECT_EQ(topics, (std::vector<std::string>{acme_tenant + "/devices/sensor-1/notifications",
                                              acme_tenant + "/broadcast"}));

  // globex cannot read acme's notification; its statistics count none of it.
  v1::GetNotificationRequest get;
  get.set_notification_id(acme_id);
  v1::Notification notification;
  grpc::ClientContext get_context;
  EXPECT_EQ(v1::NotificationService::NewStub(globex)
                ->GetNotification(&get_context, get, &notification)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  v1::GetStatsRequest stats_request;
  v1::GetStatsResponse stats;
  grpc::ClientContext stats_context;
  ASSERT_TRUE(
      v1::StatsService::NewStub(globex)->GetStats(&stats_context, stats_request, &stats).ok());
  EXPECT_EQ(stats.notifications(), 0);
  EXPECT_EQ(stats.total().sent(), 0);
}

TEST_F(SecurityEndToEndTest, ARevokedKeyIsRefusedWithinTheCacheTime) {
  const std::string key = MakeKey("default", "devices:read");
  auto channel = ChannelWith(key);
  v1::ListDevicesRequest request;
  v1::ListDevicesResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(
        v1::DeviceService::NewStub(channel)->ListDevices(&context, request, &response).ok());
  }
  std::string output;
  absl::StatusOr<int> revoked = RunHerald(
      {"keys", "revoke", "--database_url=" + *database_url_, key.substr(3, 12)}, &output);
  ASSERT_TRUE(revoked.ok() && *revoked == 0) << output;
  // Replicas cache keys for 10 s.
  const absl::Time deadline = absl::Now() + absl::Seconds(15);
  grpc::Status status;
  do {
    absl::SleepFor(absl::Milliseconds(500));
    grpc::ClientContext context;
    status = v1::DeviceService::NewStub(channel)->ListDevices(&context, request, &response);
  } while (status.ok() && absl::Now() < deadline);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "revoked")) << status.error_message();
}

TEST_F(SecurityEndToEndTest, OverTheRateLimitIsResourceExhaustedWithARetryHint) {
  HeraldProcess limited({"--database_url=" + *database_url_,
                         "--mqtt_uri=" + TestServers::Get().mqtt_uri,
                         absl::StrCat("--mqtt_client_id=herald-security-limited-", getpid()),
                         "--tenant_rate_limit=5", "--tenant_rate_burst=5"});
  ASSERT_TRUE(limited.Start().ok()) << limited.ReadLog();
  auto stub = v1::DeviceService::NewStub(limited.NewChannel());
  v1::ListDevicesRequest request;
  v1::ListDevicesResponse response;
  int accepted = 0;
  grpc::Status status;
  std::string retry_after;
  for (int i = 0; i < 20 && status.ok(); ++i) {
    grpc::ClientContext context;
    status = stub->ListDevices(&context, request, &response);
    if (status.ok()) ++accepted;
    for (const auto& [key, value] : context.GetServerTrailingMetadata()) {
      if (key == "retry-after-ms") retry_after = std::string(value.data(), value.size());
    }
  }
  EXPECT_GE(accepted, 5);
  EXPECT_LE(accepted, 7);  // the bucket refills a little while the calls run
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "retry in")) << status.error_message();
  int retry_ms = 0;
  ASSERT_TRUE(absl::SimpleAtoi(retry_after, &retry_ms)) << retry_after;
  EXPECT_GT(retry_ms, 0);
  EXPECT_LE(retry_ms, 200);  // one call at 5/s
  absl::SleepFor(absl::Milliseconds(retry_ms + 50));
  grpc::ClientContext context;
  EXPECT_TRUE(stub->ListDevices(&context, request, &response).ok());
  EXPECT_EQ(limited.Stop(), 0);
}

TEST_F(SecurityEndToEndTest, ATenantsCommandsAndPresenceLiveUnderItsPrefix) {
  const std::string tenant = "initech" + prefix_.substr(0, prefix_.size() - 1);
  auto channel = ChannelWith(MakeKey(tenant, "all"));
  const std::string id = "relay-1";
  ASSERT_TRUE(CreateDevice(channel, id).ok());
  // The same id in the default tenant, which must stay untouched.
  auto operator_channel = herald_->NewChannel();
  ASSERT_TRUE(CreateDevice(operator_channel, id).ok());

  const std::string base = tenant + "/devices/" + id;
  DeviceSimulator device({.uri = TestServers::Get().mqtt_uri,
                          .client_id = absl::StrCat("security-", tenant),
                          .command_topic = base + "/commands",
                          .response_topic = base + "/responses",
                          .presence_topic = base + "/status/online"});
  ASSERT_TRUE(device.Connect().ok());

  // The device's presence, under the prefix, reaches the tenant's device.
  auto online_in = [&](const std::shared_ptr<grpc::Channel>& in) {
    v1::GetDeviceRequest request;
    request.set_device_id(id);
    v1::Device got;
    grpc::ClientContext context;
    EXPECT_TRUE(v1::DeviceService::NewStub(in)->GetDevice(&context, request, &got).ok());
    return got.online();
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!online_in(channel) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
  EXPECT_TRUE(online_in(channel));
  EXPECT_FALSE(online_in(operator_channel));

  // A command goes to the prefixed command topic; the answer on the
  // prefixed response topic completes it.
  v1::SendCommandRequest request;
  request.set_device_id(id);
  request.set_action("on");
  v1::Command command;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  grpc::Status status =
      v1::CommandService::NewStub(channel)->SendCommand(&context, request, &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
  ASSERT_FALSE(device.commands().empty());
  EXPECT_EQ(device.commands()[0].topic, base + "/commands");
  EXPECT_EQ(device.commands()[0].response_topic, base + "/responses");
}

// A flood from one tenant: 16 callers firing 3,200 notifications at a
// tenant limited to 100/s. What exceeds the budget is refused at once,
// what was accepted is all stored, and memory stays small.
TEST_F(SecurityEndToEndTest, AFloodIsRefusedCheaplyAndWhatWasAcceptedIsStored) {
  HeraldProcess limited({"--database_url=" + *database_url_,
                         "--mqtt_uri=" + TestServers::Get().mqtt_uri,
                         absl::StrCat("--mqtt_client_id=herald-security-flood-", getpid()),
                         "--tenant_rate_limit=100", "--tenant_rate_burst=100"});
  ASSERT_TRUE(limited.Start().ok()) << limited.ReadLog();
  const std::string tenant = "flood" + prefix_.substr(0, prefix_.size() - 1);
  auto channel = CreateApiKeyChannel(limited.grpc_target(), MakeKey(tenant, "notify,stats"));

  constexpr int kCallers = 16;
  constexpr int kCallsEach = 200;
  std::atomic<int> accepted{0};
  std::atomic<int> exhausted{0};
  std::atomic<int> other{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&] {
      auto stub = v1::NotificationService::NewStub(channel);
      v1::SendNotificationRequest request;
      request.mutable_target()->set_topic(tenant + "/flood");
      request.mutable_content()->set_title("flood");
      request.mutable_options()->set_qos(0);
      for (int i = 0; i < kCallsEach; ++i) {
        v1::SendNotificationResponse response;
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
        const grpc::Status status = stub->SendNotification(&context, request, &response);
        if (status.ok()) {
          ++accepted;
        } else if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          ++exhausted;
        } else {
          ++other;
        }
      }
    });
  }
  for (std::thread& caller : callers) caller.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("flood: %d calls in %.2f s: %d accepted, %d refused\n", kCallers * kCallsEach,
              seconds, accepted.load(), exhausted.load());
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(accepted + exhausted, kCallers * kCallsEach);
  EXPECT_GE(accepted.load(), 100);
  EXPECT_LE(accepted.load(), 100 + static_cast<int>(100 * seconds) + 5);

  // Every accepted notification is stored, for this tenant.
  v1::GetStatsRequest stats_request;
  v1::GetStatsResponse stats;
  grpc::ClientContext stats_context;
  // The stats call itself may need to wait for a token.
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(
      v1::StatsService::NewStub(channel)->GetStats(&stats_context, stats_request, &stats).ok());
  EXPECT_EQ(stats.notifications(), accepted.load());

  // Peak resident memory of the flooded replica.
  std::ifstream status_file(absl::StrCat("/proc/", limited.pid(), "/status"));
  std::string line;
  int64_t peak_kb = 0;
  while (std::getline(status_file, line)) {
    if (absl::StartsWith(line, "VmHWM:")) {
      ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(
                                       absl::StripSuffix(line.substr(6), "kB")),
                                   &peak_kb))
          << line;
    }
  }
  std::printf("flood: peak resident memory %lld MB\n", static_cast<long long>(peak_kb / 1024));
  EXPECT_GT(peak_kb, 0);
  EXPECT_LT(peak_kb, 150 * 1024);
  EXPECT_EQ(limited.Stop(), 0);
}

}  // namespace
}  // namespace herald
