// End to end: CommandService and presence over real gRPC, the real herald
// binary (one or two replicas sharing PostgreSQL and the broker), a real
// Mosquitto and simulated devices that are real MQTT clients
// (tests/testing/device_simulator.h), with the HomeSync and Shelly topic
// layouts of the seed documents.
//
// Each test starts its own replicas with their own MQTT 5 share group, and
// its devices carry a random suffix, so tests running at the same time on
// the shared broker do not see each other's answers. Waits have deadlines;
// attempt timeouts are short (200-300 ms) to keep the suite fast.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "herald/v1/command.grpc.pb.h"
#include "herald/v1/device.grpc.pb.h"
#include "tests/testing/device_simulator.h"
#include "tests/testing/herald_process.h"
#include "tests/testing/http_get.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::DeviceBehavior;
using ::herald::testing::DeviceSimulator;
using ::herald::testing::DeviceSimulatorOptions;
using ::herald::testing::HeraldProcess;
using ::herald::testing::ReceivedCommand;
using ::herald::testing::TestServers;

constexpr absl::Duration kWait = absl::Seconds(15);

// The seed documents' layouts (PRODUCT.md section 3).
struct Layout {
  std::string command;
  std::string response;
  std::string presence;
};
const Layout kHomeSync{"homesync/{meta.home_id}/nodes/{device_id}/command/relay",
                       "homesync/{meta.home_id}/nodes/{device_id}/response/command",
                       "homesync/{meta.home_id}/nodes/{device_id}/status/online"};
const Layout kShelly{"shellies/{device_id}/command/switch:0/set", "shellies/{device_id}/events/rpc",
                     "shellies/{device_id}/online"};
const Layout kDefault{"devices/{device_id}/commands", "devices/{device_id}/responses",
                      "devices/{device_id}/status/online"};

std::string Expand(std::string topic_template, const std::string& device_id,
                   const std::string& home_id) {
  topic_template = absl::StrReplaceAll(topic_template, {{"{device_id}", device_id}});
  return absl::StrReplaceAll(topic_template, {{"{meta.home_id}", home_id}});
}

// One replica: the process and its stubs.
struct Replica {
  std::unique_ptr<HeraldProcess> process;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::DeviceService::Stub> devices;
  std::unique_ptr<v1::CommandService::Stub> commands;
  bool running = false;
};

class CommandE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::BitGen random;
    suffix_ = absl::StrFormat("%06x", absl::Uniform<uint32_t>(random, 0, 1 << 24));
    database_url_ = herald::testing::CreateScratchDatabase("command_e2e");
  }

  void TearDown() override {
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (replicas_[i].process == nullptr) continue;
      if (replicas_[i].running) {
        EXPECT_EQ(StopReplica(i), 0) << "replica " << i << " should exit 0 on SIGTERM";
      }
      // HERALD_E2E_LOGS=1 prints the logs of passing tests too.
      if (HasFailure() || std::getenv("HERALD_E2E_LOGS") != nullptr) {
        std::fprintf(stderr, "--- herald replica %zu log ---\n%s\n", i,
                     replicas_[i].process->ReadLog().c_str());
      }
    }
  }

  // Starts `count` replicas over this test's database with `layout`'s
  // templates, `--mqtt_version=version` and `extra` flags; waits until each
  // has its command-response subscription in place.
  void StartReplicas(int count, const Layout& layout, const std::string& version,
                     std::vector<std::string> extra = {}) {
    layout_ = layout;
    mqtt5_ = version == "5";
    for (int i = 0; i < count; ++i) {
      std::vector<std::string> flags = {
          "--database_url=" + database_url_,
          "--mqtt_uri=" + TestServers::Get().mqtt_uri,
          "--mqtt_version=" + version,
          "--mqtt_share_group=e2e-" + suffix_,
          "--command_topic_template=" + layout.command,
          "--response_topic_template=" + layout.response,
          "--presence_topic_template=" + layout.presence,
          "--command_backoff_initial=100ms",
          "--command_backoff_max=400ms",
          "--command_poll_interval=200ms",
          "--log_level=debug"};
      flags.insert(flags.end(), extra.begin(), extra.end());
      Replica replica;
      replica.process = std::make_unique<HeraldProcess>(flags);
      absl::Status started = replica.process->Start();
      ASSERT_TRUE(started.ok()) << started << "\n" << replica.process->ReadLog();
      replica.running = true;
      replica.channel = replica.process->NewChannel();
      replica.devices = v1::DeviceService::NewStub(replica.channel);
      replica.commands = v1::CommandService::NewStub(replica.channel);
      replicas_.push_back(std::move(replica));
      ASSERT_TRUE(WaitForLog(i, "mqtt subscribed")) << "replica " << i << " never subscribed";
      const std::string filter = absl::StrCat(
          mqtt5_ ? absl::StrCat("$share/e2e-", suffix_, "/") : "",
          absl::StrReplaceAll(layout.response, {{"{meta.home_id}", "+"}, {"{device_id}", "+"}}));
      ASSERT_TRUE(WaitForLog(i, filter)) << "replica " << i << " has no subscription " << filter;
    }
  }

  // Closes the test's channel first: gRPC's shutdown waits for open client
  // connections to go away (for seconds) before it completes.
  int StopReplica(size_t replica) {
    replicas_[replica].devices.reset();
    replicas_[replica].commands.reset();
    replicas_[replica].channel.reset();
    replicas_[replica].running = false;
    return replicas_[replica].process->Stop();
  }

  bool WaitForLog(int replica, const std::string& text) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      if (absl::StrContains(replicas_[replica].process->ReadLog(), text)) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  std::string Id(const std::string& name) const { return absl::StrCat(name, "-", suffix_); }
  std::string HomeId() const { return "home-" + suffix_; }

  // Registers a device and returns a simulator for it (not yet connected).
  std::unique_ptr<DeviceSimulator> Device(const std::string& name, int mqtt_version = 5,
                                          bool announce_online = true,
                                          const std::string& online = R"({"online": true})",
                                          const std::string& offline =
                                              R"({"online": false, "reason": "unexpected_disconnect"})") {
    const std::string id = Id(name);
    v1::CreateDeviceRequest request;
    request.mutable_device()->set_device_id(id);
    request.mutable_device()->set_owner_id("owner-" + suffix_);
    (*request.mutable_device()->mutable_metadata())["home_id"] = HomeId();
    grpc::ClientContext context;
    v1::Device created;
    const grpc::Status status = replicas_[0].devices->CreateDevice(&context, request, &created);
    EXPECT_TRUE(status.ok() || status.error_code() == grpc::StatusCode::ALREADY_EXISTS)
        << status.error_message();
    return DeviceFor(name, mqtt_version, announce_online, online, offline);
  }

  std::unique_ptr<DeviceSimulator> DeviceFor(const std::string& name, int mqtt_version,
                                             bool announce_online, const std::string& online,
                                             const std::string& offline) {
    const std::string id = Id(name);
    DeviceSimulatorOptions options;
    options.uri = TestServers::Get().mqtt_uri;
    options.client_id = "sim-" + id;
    options.mqtt_version = mqtt_version;
    options.command_topic = Expand(layout_.command, id, HomeId());
    options.response_topic = Expand(layout_.response, id, HomeId());
    options.presence_topic = Expand(layout_.presence, id, HomeId());
    options.online_payload = online;
    options.offline_payload = offline;
    options.announce_online = announce_online;
    return std::make_unique<DeviceSimulator>(options);
  }

  // Connects `device` and waits until Herald saw its presence.
  void Connect(DeviceSimulator& device, const std::string& name) {
    ASSERT_TRUE(device.Connect().ok());
    ASSERT_TRUE(WaitForDevice(name, [](const v1::Device& d) { return d.online(); }))
        << name << " never showed up online";
  }

  // Connects several devices at once and waits until Herald saw each one.
  // (Paho C takes about two seconds to connect a client while another one
  // of the process is connected, but not for clients that connect
  // together.)
  void ConnectAll(const std::vector<std::pair<DeviceSimulator*, std::string>>& devices) {
    std::vector<std::future<absl::Status>> connecting;
    for (const auto& [device, name] : devices) {
      connecting.push_back(
          std::async(std::launch::async, [device = device] { return device->Connect(); }));
    }
    for (auto& connected : connecting) ASSERT_TRUE(connected.get().ok());
    for (const auto& [device, name] : devices) {
      ASSERT_TRUE(WaitForDevice(name, [](const v1::Device& d) { return d.online(); }))
          << name << " never showed up online";
    }
  }

  template <typename Predicate>
  bool WaitForDevice(const std::string& name, Predicate predicate, int replica = 0) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      grpc::ClientContext context;
      v1::GetDeviceRequest request;
      request.set_device_id(Id(name));
      v1::Device device;
      if (replicas_[replica].devices->GetDevice(&context, request, &device).ok() &&
          predicate(device)) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  v1::SendCommandRequest Command(const std::string& name, const std::string& action = "on",
                                 absl::Duration timeout = absl::Seconds(5), int retries = 0) {
    v1::SendCommandRequest request;
    request.set_device_id(Id(name));
    request.set_action(action);
    (*request.mutable_params())["channel"] = "0";
    request.mutable_timeout()->set_seconds(absl::ToInt64Seconds(timeout));
    request.mutable_timeout()->set_nanos(static_cast<int32_t>(
        absl::ToInt64Nanoseconds(timeout - absl::Seconds(absl::ToInt64Seconds(timeout)))));
    request.set_max_retries(retries);
    return request;
  }

  grpc::Status Send(const v1::SendCommandRequest& request, v1::Command* response,
                    int replica = 0) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    return replicas_[replica].commands->SendCommand(&context, request, response);
  }

  std::future<std::pair<grpc::Status, v1::Command>> SendAsync(v1::SendCommandRequest request,
                                                              int replica = 0) {
    return std::async(std::launch::async, [this, request, replica] {
      v1::Command command;
      grpc::Status status = Send(request, &command, replica);
      return std::make_pair(status, command);
    });
  }

  v1::Command Get(const std::string& command_id, int replica = 0) {
    grpc::ClientContext context;
    v1::GetCommandRequest request;
    request.set_command_id(command_id);
    v1::Command command;
    const grpc::Status status = replicas_[replica].commands->GetCommand(&context, request, &command);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return command;
  }

  // The value of one series on a replica's /metrics, e.g.
  // herald_command_responses_total{outcome="duplicate"}; -1 if absent.
  double Metric(int replica, const std::string& series) {
    absl::StatusOr<std::string> text =
        herald::testing::HttpGet(replicas_[replica].process->metrics_port(), "/metrics");
    if (!text.ok()) return -1;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      if (!absl::StartsWith(line, series + " ")) continue;
      double value = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
    return -1;
  }

  bool WaitForMetric(int replica, const std::string& series, double at_least) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      if (Metric(replica, series) >= at_least) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  static std::string Responses(const std::string& outcome) {
    return absl::StrCat("herald_command_responses_total{outcome=\"", outcome, "\"}");
  }

  // The command id a DEADLINE_EXCEEDED message names.
  static std::string CommandIdIn(const std::string& message) {
    std::smatch match;
    static const std::regex kId("command ([0-9a-f-]{36})");
    return std::regex_search(message, match, kId) ? match[1].str() : "";
  }

  std::string suffix_;
  std::string database_url_;
  Layout layout_ = kDefault;
  bool mqtt5_ = true;
  std::vector<Replica> replicas_;
};

google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  return parsed;
}

TEST_F(CommandE2ETest, HomeSyncDeviceSwitchesItsRelayOverMqtt5) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas(1, kHomeSync, "5"));
  {
    auto health = grpc::health::v1::Health::NewStub(replicas_[0].channel);
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest check;
    check.set_service("herald.v1.CommandService");
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, check, &response).ok());
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  auto relay = Device("relay");
  auto by_properties = Device("props");
  auto stuck = Device("stuck");
  auto chatty = Device("chatty");
  ASSERT_NO_FATAL_FAILURE(ConnectAll({{relay.get(), "relay"},
                                      {by_properties.get(), "props"},
                                      {stuck.get(), "stuck"},
                                      {chatty.get(), "chatty"}}));

  v1::SendCommandRequest request = Command("relay", "on");
  request.set_qos(1);
  v1::Command command;
  const absl::Time before = absl::Now();
  grpc::Status status = Send(request, &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
  EXPECT_EQ(command.status(), "success");
  EXPECT_EQ(command.result().string_value(), "on");
  EXPECT_EQ(command.attempts(), 1);
  EXPECT_EQ(command.device_id(), Id("relay"));
  ASSERT_TRUE(command.has_round_trip());
  EXPECT_LE(absl::Seconds(command.round_trip().seconds()) +
                absl::Nanoseconds(command.round_trip().nanos()),
            absl::Now() - before);
  EXPECT_FALSE(command.command_id().empty());

  // What the device got: the wire format, on its HomeSync topic, with the
  // MQTT 5 response topic and correlation data.
  ASSERT_EQ(relay->commands().size(), 1u);
  const ReceivedCommand received = relay->commands()[0];
  EXPECT_EQ(received.topic, Expand(kHomeSync.command, Id("relay"), HomeId()));
  const google::protobuf::Struct payload = ParseJson(received.payload);
  EXPECT_EQ(payload.fields().at("request_id").string_value(), command.request_id());
  EXPECT_EQ(payload.fields().at("action").string_value(), "on");
  EXPECT_EQ(payload.fields().at("params").struct_value().fields().at("channel").string_value(), "0");
  EXPECT_FALSE(payload.fields().at("sent_at").string_value().empty());
  EXPECT_EQ(received.response_topic, Expand(kHomeSync.response, Id("relay"), HomeId()));
  EXPECT_EQ(received.correlation_data, command.request_id());
  EXPECT_EQ(received.command_id, command.command_id());

  // Stored and readable; a watch of a finished command shows it and ends.
  const v1::Command stored = Get(command.command_id());
  EXPECT_EQ(stored.state(), v1::COMMAND_SUCCEEDED);
  EXPECT_EQ(stored.result().string_value(), "on");
  EXPECT_TRUE(stored.has_complete_time());
  {
    grpc::ClientContext context;
    v1::WatchCommandRequest watch;
    watch.set_command_id(command.command_id());
    auto reader = replicas_[0].commands->WatchCommand(&context, watch);
    v1::Command event;
    ASSERT_TRUE(reader->Read(&event));
    EXPECT_EQ(event.state(), v1::COMMAND_SUCCEEDED);
    EXPECT_FALSE(reader->Read(&event));
    EXPECT_TRUE(reader->Finish().ok());
  }

  // A device that answers by MQTT 5 properties only (no request_id).
  by_properties->set_behavior(DeviceBehavior::kAnswerByCorrelation);
  status = Send(Command("props", "off"), &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);

  // A device that answers "error" is still an answer: OK, COMMAND_ERROR.
  stuck->set_behavior(DeviceBehavior::kAnswerError);
  status = Send(Command("stuck", "on"), &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_ERROR);
  EXPECT_EQ(command.error(), "relay stuck");

  // A device that answers twice: the second answer is counted and ignored.
  chatty->set_behavior(DeviceBehavior::kAnswerTwice);
  status = Send(Command("chatty", "on"), &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
  EXPECT_TRUE(WaitForMetric(0, Responses("duplicate"), 1));
  EXPECT_EQ(Get(command.command_id()).state(), v1::COMMAND_SUCCEEDED);
  EXPECT_GE(Metric(0, "herald_commands_total{outcome=\"succeeded\"}"), 3);
  EXPECT_GE(Metric(0, "herald_commands_total{outcome=\"error\"}"), 1);
  EXPECT_GE(Metric(0, "herald_command_duration_seconds_count"), 4);
}

TEST_F(CommandE2ETest, LateGarbageAndSilentDevices) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas(1, kDefault, "5"));
  auto late = Device("late");
  auto garbage = Device("garbage");
  auto silent = Device("silent");
  ASSERT_NO_FATAL_FAILURE(
      ConnectAll({{late.get(), "late"}, {garbage.get(), "garbage"}, {silent.get(), "silent"}}));
  late->set_behavior(DeviceBehavior::kAnswerLate, absl::Milliseconds(600));
  garbage->set_behavior(DeviceBehavior::kAnswerGarbage);
  silent->set_behavior(DeviceBehavior::kSilent);

  // All three at once; each waits on its own handler thread.
  auto late_sent = SendAsync(Command("late", "on", absl::Milliseconds(300), 3));
  auto garbage_sent = SendAsync(Command("garbage", "on", absl::Milliseconds(200), 1));
  auto silent_sent = SendAsync(Command("silent", "reboot", absl::Milliseconds(200), 2));

  // While the silent device is being retried, a watcher sees it pending,
  // then timed out.
  ASSERT_TRUE(silent->AwaitCommands(1, kWait));
  const std::string silent_id = silent->commands()[0].command_id;
  ASSERT_FALSE(silent_id.empty());
  {
    grpc::ClientContext context;
    v1::WatchCommandRequest watch;
    watch.set_command_id(silent_id);
    auto reader = replicas_[0].commands->WatchCommand(&context, watch);
    std::vector<v1::Command> events;
    v1::Command event;
    while (reader->Read(&event)) events.push_back(event);
    EXPECT_TRUE(reader->Finish().ok());
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.front().state(), v1::COMMAND_PENDING);
    EXPECT_EQ(events.back().state(), v1::COMMAND_TIMED_OUT);
    EXPECT_EQ(events.back().attempts(), 3);
  }

  // Late: the answer to attempt 1 arrives while attempt 2 waits; it counts.
  auto [late_status, late_command] = late_sent.get();
  ASSERT_TRUE(late_status.ok()) << late_status.error_message();
  EXPECT_EQ(late_command.state(), v1::COMMAND_SUCCEEDED);
  EXPECT_GE(late_command.attempts(), 2);
  ASSERT_GE(late->commands().size(), 2u);
  EXPECT_EQ(late->commands()[0].request_id, late->commands()[1].request_id)
      << "a retry carries the same request id";

  // Garbage is skipped; the command times out naming its attempts.
  auto [garbage_status, garbage_command] = garbage_sent.get();
  EXPECT_EQ(garbage_status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(absl::StrContains(garbage_status.error_message(), "no answer after 2 attempts"))
      << garbage_status.error_message();
  EXPECT_GE(Metric(0, Responses("malformed")), 2);
  EXPECT_TRUE(WaitForLog(0, "malformed command response skipped"));
  EXPECT_TRUE(absl::StrContains(replicas_[0].process->ReadLog(),
                                Expand(kDefault.response, Id("garbage"), HomeId())))
      << "the log names the topic";

  // Silent: every attempt made, then DEADLINE_EXCEEDED; stored as timed out.
  auto [silent_status, silent_command] = silent_sent.get();
  EXPECT_EQ(silent_status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(absl::StrContains(silent_status.error_message(), "no answer after 3 attempts"))
      << silent_status.error_message();
  EXPECT_EQ(CommandIdIn(silent_status.error_message()), silent_id);
  EXPECT_EQ(silent->commands().size(), 3u);
  const v1::Command stored = Get(silent_id);
  EXPECT_EQ(stored.state(), v1::COMMAND_TIMED_OUT);
  EXPECT_EQ(stored.attempts(), 3);
  EXPECT_GE(Metric(0, "herald_commands_total{outcome=\"timed_out\"}"), 2);

  // Requests Herald refuses, naming the field.
  v1::Command command;
  v1::SendCommandRequest bad = Command("late");
  bad.set_qos(3);
  grpc::Status refused = Send(bad, &command);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(refused.error_message(), "qos:")) << refused.error_message();
  bad = Command("late", "on", absl::Milliseconds(50));
  refused = Send(bad, &command);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(refused.error_message(), "timeout:")) << refused.error_message();
  refused = Send(Command("nobody"), &command);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::NOT_FOUND) << refused.error_message();
  {
    grpc::ClientContext context;
    v1::GetCommandRequest get;
    get.set_command_id("no-such-command");
    EXPECT_EQ(replicas_[0].commands->GetCommand(&context, get, &command).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
}

TEST_F(CommandE2ETest, PresenceThroughTheLastWill) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas(1, kHomeSync, "5"));
  auto node = Device("node");
  const absl::Time before = absl::Now();
  ASSERT_NO_FATAL_FAILURE(Connect(*node, "node"));
  {
    grpc::ClientContext context;
    v1::GetDeviceRequest request;
    request.set_device_id(Id("node"));
    v1::Device device;
    ASSERT_TRUE(replicas_[0].devices->GetDevice(&context, request, &device).ok());
    EXPECT_TRUE(device.online());
    EXPECT_GE(device.last_seen_time().seconds(), absl::ToUnixSeconds(before) - 1);
  }
  const auto online_ids = [&](bool online) {
    grpc::ClientContext context;
    v1::ListDevicesRequest request;
    request.set_owner_id("owner-" + suffix_);
    request.set_online(online);
    v1::ListDevicesResponse response;
    EXPECT_TRUE(replicas_[0].devices->ListDevices(&context, request, &response).ok());
    std::vector<std::string> ids;
    for (const v1::Device& device : response.devices()) ids.push_back(device.device_id());
    return ids;
  };
  EXPECT_EQ(online_ids(true), std::vector<std::string>{Id("node")});

  // The device loses power: the broker publishes its retained Last Will.
  ASSERT_TRUE(node->DropConnection().ok());
  ASSERT_TRUE(WaitForDevice("node", [](const v1::Device& d) { return !d.online(); }));
  EXPECT_TRUE(online_ids(true).empty());
  EXPECT_EQ(online_ids(false), std::vector<std::string>{Id("node")});

  v1::Command command;
  grpc::Status status = Send(Command("node", "on", absl::Milliseconds(300)), &command);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_TRUE(absl::StrContains(status.error_message(), "offline")) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "send_if_offline"));
  EXPECT_GE(Metric(0, "herald_commands_total{outcome=\"offline\"}"), 1);

  // The device comes back without announcing itself; Herald still thinks it
  // is offline, but the caller says to send anyway.
  auto quiet = DeviceFor("node", 5, /*announce_online=*/false, R"({"online": true})",
                         R"({"online": false})");
  ASSERT_TRUE(quiet->Connect().ok());
  v1::SendCommandRequest anyway = Command("node", "on");
  anyway.set_send_if_offline(true);
  status = Send(anyway, &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
  EXPECT_GE(Metric(0, "herald_presence_messages_total{outcome=\"offline\"}"), 1);
}

// The device-side example of docs/commands.md, a shell loop over
// mosquitto_sub/mosquitto_pub, switched with one gRPC call.
TEST_F(CommandE2ETest, TheDocumentedShellDeviceAnswers) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas(1, kHomeSync, "5"));
  Device("shell");  // registered with metadata home_id; the script is the device
  const std::string script = herald::testing::SourceDir() + "/docs/examples/homesync_device.sh";
  const std::string host_port = TestServers::Get().mqtt_uri.substr(std::string("tcp://").size());
  const std::string host = host_port.substr(0, host_port.rfind(':'));
  const std::string port = host_port.substr(host_port.rfind(':') + 1);
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls (other threads may hold malloc's lock).
  std::vector<std::string> env = {"MQTT_HOST=" + host, "MQTT_PORT=" + port,
                                  "DEVICE_ID=" + Id("shell"), "HOME_ID=" + HomeId(),
                                  "PATH=/usr/local/bin:/usr/bin:/bin"};
  std::vector<char*> envp;
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::string sh = "/bin/sh";
  std::string script_arg = script;
  char* argv[] = {sh.data(), script_arg.data(), nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);  // its own process group: mosquitto_sub dies with it
    execve(argv[0], argv, envp.data());
    _exit(127);
  }
  ASSERT_GT(pid, 0);
  setpgid(pid, pid);
  ASSERT_TRUE(WaitForDevice("shell", [](const v1::Device& d) { return d.online(); }));

  // Its subscription may come a moment after its presence: a retry covers that.
  v1::Command command;
  grpc::Status status = Send(Command("shell", "on", absl::Seconds(1), 5), &command);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
  EXPECT_EQ(command.result().string_value(), "on");

  // Pulling the plug: the broker publishes mosquitto_sub's Last Will.
  kill(-pid, SIGKILL);
  int wait_status = 0;
  waitpid(pid, &wait_status, 0);
  EXPECT_TRUE(WaitForDevice("shell", [](const v1::Device& d) { return !d.online(); }));
}

TEST_F(CommandE2ETest, ShellyDeviceOverMqtt311) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas(1, kShelly, "3.1.1"));
  // A Shelly-like device: MQTT 3.1.1, "true"/"false" on its online topic.
  auto shelly = Device("shellyproplus3", /*mqtt_version=*/4, true, "true", "false");
  ASSERT_NO_FATAL_FAILURE(Connect(*shelly, "shellyproplus3"));

  v1::Command command;
  grpc::Status status = Send(Command("shellyproplus3", "on"), &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
  ASSERT_EQ(shelly->commands().size(), 1u);
  EXPECT_EQ(shelly->commands()[0].topic,
            absl::StrCat("shellies/", Id("shellyproplus3"), "/command/switch:0/set"));
  EXPECT_TRUE(shelly->commands()[0].response_topic.empty()) << "no properties under 3.1.1";

  shelly->set_behavior(DeviceBehavior::kAnswerGarbage);
  status = Send(Command("shellyproplus3", "off", absl::Milliseconds(200), 1), &command);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_TRUE(absl::StrContains(status.error_message(), "2 attempts")) << status.error_message();

  // Bare "false" marks it offline; "true" back online.
  ASSERT_TRUE(shelly->PublishPresence("false").ok());
  ASSERT_TRUE(WaitForDevice("shellyproplus3", [](const v1::Device& d) { return !d.online(); }));
  status = Send(Command("shellyproplus3", "on"), &command);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  shelly->set_behavior(DeviceBehavior::kAnswer);
  ASSERT_TRUE(shelly->PublishPresence("true").ok());
  ASSERT_TRUE(WaitForDevice("shellyproplus3", [](const v1::Device& d) { return d.online(); }));
  status = Send(Command("shellyproplus3", "on"), &command);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
}

TEST_F(CommandE2ETest, TwoReplicasHandResponsesOverThroughTheDatabase) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas(2, kDefault, "5"));
  auto device = Device("shared");
  ASSERT_NO_FATAL_FAILURE(Connect(*device, "shared"));

  // The broker spreads the answers over both replicas' shared subscription:
  // sooner or later replica 1 receives the answer to a command that a caller
  // of replica 0 waits for, and the answer must still reach that caller.
  int sent = 0;
  for (; sent < 20 && Metric(1, Responses("handed_over")) < 2; ++sent) {
    v1::Command command;
    grpc::Status status = Send(Command("shared", "toggle"), &command, 0);
    ASSERT_TRUE(status.ok()) << "command " << sent << ": " << status.error_message();
    EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
    EXPECT_EQ(command.attempts(), 1) << "answered without a retry";
  }
  EXPECT_GE(Metric(1, Responses("handed_over")), 2) << "after " << sent << " commands";
  EXPECT_GE(Metric(0, Responses("matched")), 1);

  // A late answer counts across replicas too.
  device->set_behavior(DeviceBehavior::kAnswerLate, absl::Milliseconds(600));
  for (int replica = 0; replica < 2; ++replica) {
    v1::Command command;
    grpc::Status status =
        Send(Command("shared", "late", absl::Milliseconds(300), 3), &command, replica);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
    EXPECT_GE(command.attempts(), 2);
  }

  // Replica 1 stops (a rolling update). It ends its MQTT session, so the
  // broker no longer hands it a share of the answers: every command through
  // replica 0 succeeds at its first attempt.
  EXPECT_EQ(StopReplica(1), 0);
  device->set_behavior(DeviceBehavior::kAnswer);
  for (int i = 0; i < 4; ++i) {
    v1::Command command;
    grpc::Status status = Send(Command("shared", "on", absl::Seconds(3), 0), &command, 0);
    ASSERT_TRUE(status.ok()) << "command " << i << " after replica 1 stopped: "
                             << status.error_message();
    EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
  }
}

TEST_F(CommandE2ETest, TwoReplicasOverMqtt311) {
  ASSERT_NO_FATAL_FAILURE(StartReplicas(2, kDefault, "3.1.1"));
  auto device = Device("plain");
  ASSERT_NO_FATAL_FAILURE(Connect(*device, "plain"));
  for (int replica = 0; replica < 2; ++replica) {
    v1::Command command;
    grpc::Status status = Send(Command("plain", "on"), &command, replica);
    ASSERT_TRUE(status.ok()) << "via replica " << replica << ": " << status.error_message();
    EXPECT_EQ(command.state(), v1::COMMAND_SUCCEEDED);
    // Without shared subscriptions every replica receives every answer; the
    // one with no caller waiting counts it and moves on.
    EXPECT_TRUE(WaitForMetric(1 - replica, Responses("not_waiting_here"), 1));
  }
}

}  // namespace
}  // namespace herald
