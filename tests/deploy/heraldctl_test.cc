// heraldctl end to end: the real heraldctl binary against the real herald
// binary, with a real PostgreSQL and Mosquitto, a real subscriber for the
// notifications and a real device that answers commands. Checks the text
// and --json outputs, the exit codes and the error messages.
//
// Needs the `servers` CTest fixture; $HERALDCTL_BINARY names heraldctl.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mqtt/async_client.h"
#include "tests/deploy/deploy_test_support.h"
#include "tests/testing/herald_process.h"
#include "tests/testing/mqtt_recorder.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::google::protobuf::Value;
using ::herald::testing::CommandResult;
using ::herald::testing::HeraldProcess;
using ::herald::testing::MqttRecorder;
using ::herald::testing::TestServers;

// A device that answers every command on devices/<id>/commands with
// success, on the response topic the command names (MQTT 5) or the default
// one.
class CommandResponder : public mqtt::callback {
 public:
  CommandResponder(const std::string& uri, std::string device_id)
      : client_(uri, absl::StrCat("heraldctl-test-device-", getpid()),
                mqtt::create_options(MQTTVERSION_5, 1000), nullptr),
        device_id_(std::move(device_id)) {
    client_.set_callback(*this);
  }

  ~CommandResponder() override {
    try {
      if (client_.is_connected()) client_.disconnect()->wait_for(std::chrono::seconds(5));
    } catch (const std::exception&) {
    }
  }

  absl::Status Connect() {
    try {
      client_.connect(mqtt::connect_options_builder()
                          .mqtt_version(MQTTVERSION_5)
                          .clean_start(true)
                          .connect_timeout(std::chrono::seconds(10))
                          .finalize())
          ->wait();
      client_.subscribe(absl::StrCat("devices/", device_id_, "/commands"), 1)->wait();
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("test device cannot connect: ", e.what()));
    }
  }

  int answered() const {
    absl::MutexLock lock(&mu_);
    return answered_;
  }

  void message_arrived(mqtt::const_message_ptr message) override {
    static const std::regex* const request_id = new std::regex(R"re("request_id"\s*:\s*"([^"]+)")re");
    static const std::regex* const device = new std::regex(R"(^devices/([^/]+)/commands$)");
    const std::string payload = message->to_string();
    const std::string topic = message->get_topic();
    std::smatch id_match;
    std::smatch device_match;
    if (!std::regex_search(payload, id_match, *request_id) || !std::regex_match(topic, device_match, *device)) {
      return;
    }
    const mqtt::properties& props = message->get_properties();
    std::string response_topic = absl::StrCat("devices/", device_match[1].str(), "/responses");
    if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
      response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
    }
    auto response = mqtt::make_message(
        response_topic, absl::StrCat(R"({"request_id": ")", id_match[1].str(),
                                     R"(", "status": "success", "result": {"pong": true}})"));
    response->set_qos(1);
    if (props.contains(mqtt::property::CORRELATION_DATA)) {
      mqtt::properties reply;
      reply.add({mqtt::property::CORRELATION_DATA,
                 mqtt::get<mqtt::binary>(props, mqtt::property::CORRELATION_DATA)});
      response->set_properties(reply);
    }
    try {
      client_.publish(response);
      absl::MutexLock lock(&mu_);
      ++answered_;
    } catch (const std::exception&) {
    }
  }

 private:
  mqtt::async_client client_;
  const std::string device_id_;
  mutable absl::Mutex mu_;
  int answered_ ABSL_GUARDED_BY(mu_) = 0;
};

const Value& Field(const Value& value, const std::string& name) {
  static const auto* const null = new Value();
  if (!value.has_struct_value()) return *null;
  auto it = value.struct_value().fields().find(name);
  return it == value.struct_value().fields().end() ? *null : it->second;
}

class HeraldctlTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    error_ = new std::string();
    const std::string database_url = testing::CreateScratchDatabase("heraldctl", true);
    // Command responses come through an MQTT 5 shared subscription. The
    // broker is shared by every test of the run, and the persistent sessions
    // of heralds that are gone stay members of the share group (and get
    // their turn at the responses): this herald uses a clean session and,
    // where Herald has the flag, a share group of its own.
    std::vector<std::string> args = {"--database_url=" + database_url,
                                      "--mqtt_uri=" + TestServers::Get().mqtt_uri,
                                      "--mqtt_clean_session=true"};
    std::string help;
    (void)testing::RunHerald({"--help"}, &help);
    if (absl::StrContains(help, "--mqtt_share_group")) {
      args.push_back(absl::StrCat("--mqtt_share_group=heraldctl-test-", getpid()));
    }
    herald_ = new HeraldProcess(args);
    if (absl::Status started = herald_->Start(); !started.ok()) *error_ = started.ToString();
    // heraldctl reads the key from the environment, as an operator's shell would pass it.
    setenv("HERALD_API_KEY", herald_->api_key().c_str(), 1);
  }

  static void TearDownTestSuite() {
    if (herald_->pid() > 0) {
      const int code = herald_->Stop();
      EXPECT_EQ(code, 0) << herald_->ReadLog();
    }
    delete herald_;
    delete error_;
  }

  void SetUp() override {
    ASSERT_TRUE(error_->empty()) << *error_;
    const char* binary = std::getenv("HERALDCTL_BINARY");
    ASSERT_TRUE(binary != nullptr && *binary) << "HERALDCTL_BINARY must name heraldctl (CTest sets it)";
    binary_ = binary;
    prefix_ = absl::StrCat(::testing::UnitTest::GetInstance()->current_test_info()->name(), "-");
  }

  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "--- herald log ---\n%s\n", herald_->ReadLog().c_str());
  }

  // heraldctl --address=<herald> args...
  CommandResult Ctl(std::vector<std::string> args, bool with_address = true) {
    std::vector<std::string> argv = {binary_};
    if (with_address) argv.push_back("--address=" + herald_->grpc_target());
    argv.insert(argv.end(), args.begin(), args.end());
    absl::StatusOr<CommandResult> result = testing::RunCommand(argv, absl::Seconds(60));
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return CommandResult{};
    return *result;
  }

  // Runs, expects exit 0 and stdout as JSON.
  Value CtlJson(std::vector<std::string> args) {
    args.insert(args.begin(), "--json");
    CommandResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, 0) << absl::StrJoin(args, " ") << "\n" << result.err;
    absl::StatusOr<Value> json = testing::ParseJson(result.out);
    EXPECT_TRUE(json.ok()) << json.status();
    return json.ok() ? *json : Value();
  }

  std::string Id(const std::string& name) const { return prefix_ + name; }

  static std::string* error_;
  static HeraldProcess* herald_;
  std::string binary_;
  std::string prefix_;
};

std::string* HeraldctlTest::error_ = nullptr;
HeraldProcess* HeraldctlTest::herald_ = nullptr;

std::string Describe(const CommandResult& result) {
  return absl::StrCat("exit ", result.exit_code, "\nstdout:\n", result.out, "stderr:\n", result.err);
}

TEST_F(HeraldctlTest, DevicesCreateListGetDelete) {
  CommandResult created = Ctl({"devices", "create", Id("a"), "--owner=" + Id("home"),
                               "--groups=floor-1,floor-2", "room=kitchen", "home_id=h1"});
  ASSERT_EQ(created.exit_code, 0) << Describe(created);
  EXPECT_TRUE(absl::StrContains(created.out, "device:    " + Id("a"))) << created.out;
  EXPECT_TRUE(absl::StrContains(created.out, "home_id=h1, room=kitchen")) << created.out;
  EXPECT_TRUE(absl::StrContains(created.out, "floor-1, floor-2")) << created.out;
  ASSERT_EQ(Ctl({"devices", "create", Id("b"), "--owner=" + Id("home"), "--disabled"}).exit_code, 0);

  CommandResult duplicate = Ctl({"devices", "create", Id("a")});
  EXPECT_EQ(duplicate.exit_code, 1) << Describe(duplicate);
  EXPECT_TRUE(absl::StrContains(duplicate.err, "CreateDevice: ALREADY_EXISTS")) << duplicate.err;

  CommandResult table = Ctl({"devices", "list", "--owner=" + Id("home")});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StartsWith(table.out, "DEVICE ")) << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex(Id("a") + R"( +)" + Id("home") + R"( +mqtt +\(template\) +floor-1, floor-2 +yes +no)")))
      << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex(Id("b") + R"( +.* no +no +-\n)"))) << table.out;

  // One page at a time, all pages, as JSON.
  Value page = CtlJson({"devices", "list", "--owner=" + Id("home"), "--page_size=1"});
  EXPECT_EQ(Field(page, "devices").list_value().values_size(), 1);
  EXPECT_FALSE(Field(page, "nextPageToken").string_value().empty());
  Value all = CtlJson({"devices", "list", "--owner=" + Id("home"), "--page_size=1", "--all"});
  ASSERT_EQ(Field(all, "devices").list_value().values_size(), 2);
  EXPECT_EQ(Field(Field(all, "devices").list_value().values(0), "deviceId").string_value(), Id("a"));

  Value got = CtlJson({"devices", "get", Id("a")});
  EXPECT_EQ(Field(got, "ownerId").string_value(), Id("home"));
  EXPECT_EQ(Field(Field(got, "metadata"), "room").string_value(), "kitchen");

  CommandResult deleted = Ctl({"devices", "delete", Id("a")});
  EXPECT_EQ(deleted.exit_code, 0) << Describe(deleted);
  EXPECT_EQ(deleted.out, "deleted device " + Id("a") + "\n");
  CommandResult missing = Ctl({"devices", "get", Id("a")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(missing.err, "GetDevice: NOT_FOUND")) << missing.err;
}

TEST_F(HeraldctlTest, NotifyWaitsForDeliveryAndShowsIt) {
  MqttRecorder subscriber(TestServers::Get().mqtt_uri, {"devices/+/notifications"}, 1);
  ASSERT_TRUE(subscriber.Connect().ok());
  ASSERT_EQ(Ctl({"devices", "create", Id("a"), "--owner=" + Id("home")}).exit_code, 0);
  ASSERT_EQ(Ctl({"devices", "create", Id("b"), "--owner=" + Id("home")}).exit_code, 0);

  CommandResult sent = Ctl({"notify", "--devices=" + Id("a") + "," + Id("b") + "," + Id("nope"),
                            "--title=Door open", "--body=Front door", "--priority=high", "--qos=2",
                            "--ttl=10m", "door=front", "--wait"});
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  EXPECT_TRUE(absl::StrContains(sent.out, "state:        DELIVERED")) << sent.out;
  EXPECT_TRUE(absl::StrContains(sent.out, "unresolved:   " + Id("nope"))) << sent.out;
  EXPECT_TRUE(std::regex_search(sent.out, std::regex(Id("a") + R"( +devices/)" + Id("a") + R"(/notifications +DELIVERED_TO_BROKER +1 )")))
      << sent.out;
  ASSERT_TRUE(subscriber.WaitForCount(2, absl::Seconds(10)));
  std::vector<testing::RecordedMessage> received = subscriber.MessagesOn("devices/" + Id("a") + "/notifications");
  for (const auto& message : subscriber.MessagesOn("devices/" + Id("b") + "/notifications")) received.push_back(message);
  ASSERT_EQ(received.size(), 2u);
  for (const auto& message : received) {
    EXPECT_EQ(message.qos, 1) << "subscribed at QoS 1";
    absl::StatusOr<Value> payload = testing::ParseJson(message.payload);
    ASSERT_TRUE(payload.ok()) << payload.status();
    EXPECT_EQ(Field(*payload, "title").string_value(), "Door open");
    EXPECT_EQ(Field(*payload, "priority").string_value(), "high");
    EXPECT_EQ(Field(Field(*payload, "data"), "door").string_value(), "front");
    EXPECT_FALSE(Field(*payload, "expires_at").string_value().empty()) << "--ttl sets expires_at";
  }

  // Without --wait, as JSON; then read it back.
  Value response = CtlJson({"notify", "--owners=" + Id("home"), "--title=Hi", "--idempotency_key=" + Id("k")});
  const std::string id = Field(response, "notificationId").string_value();
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(Field(response, "targetCount").string_value(), "2");
  CommandResult again = Ctl({"notify", "--owners=" + Id("home"), "--title=Hi", "--idempotency_key=" + Id("k")});
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
  EXPECT_TRUE(absl::StrContains(again.out, "duplicate:")) << again.out;
  EXPECT_TRUE(absl::StrContains(again.out, id)) << again.out;

  Value notification = CtlJson({"notification", "get", id});
  EXPECT_EQ(Field(notification, "notificationId").string_value(), id);
  EXPECT_EQ(Field(notification, "deliveries").list_value().values_size(), 2);
  CommandResult listed = Ctl({"notification", "list", "--page_size=5"});
  EXPECT_EQ(listed.exit_code, 0) << Describe(listed);
  EXPECT_TRUE(absl::StartsWith(listed.out, "NOTIFICATION ")) << listed.out;
  EXPECT_TRUE(absl::StrContains(listed.out, id)) << listed.out;

  // validate_only: the topics, nothing sent.
  CommandResult validated = Ctl({"notify", "--devices=" + Id("a"), "--title=x", "--validate_only"});
  EXPECT_EQ(validated.exit_code, 0) << Describe(validated);
  EXPECT_TRUE(absl::StrContains(validated.out, "devices/" + Id("a") + "/notifications")) << validated.out;
}

TEST_F(HeraldctlTest, StatsAsTableAndJson) {
  ASSERT_EQ(Ctl({"devices", "create", Id("a")}).exit_code, 0);
  ASSERT_EQ(Ctl({"notify", "--devices=" + Id("a"), "--title=x", "--qos=1", "--wait"}).exit_code, 0);
  CommandResult table = Ctl({"stats"});
  ASSERT_EQ(table.exit_code, 0) << Describe(table);
  EXPECT_TRUE(absl::StrContains(table.out, "backlog:")) << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex(R"(\nDELIVERIES +SENT +SUCCEEDED)"))) << table.out;
  EXPECT_TRUE(std::regex_search(table.out, std::regex(R"(\nmqtt +connected +tcp://)"))) << table.out;
  Value stats = CtlJson({"stats"});
  int64_t succeeded = 0;
  ASSERT_TRUE(absl::SimpleAtoi(Field(Field(stats, "total"), "succeeded").string_value(), &succeeded));
  EXPECT_GE(succeeded, 1);
}

TEST_F(HeraldctlTest, CommandSendShowsTheDevicesAnswerOrTheServersError) {
  CommandResponder device(TestServers::Get().mqtt_uri, Id("relay"));
  ASSERT_TRUE(device.Connect().ok());
  ASSERT_EQ(Ctl({"devices", "create", Id("relay")}).exit_code, 0);
  CommandResult sent = Ctl({"command", "send", Id("relay"), "on", "channel=1", "--command_timeout=5s",
                            "--max_retries=1", "--send_if_offline"});
  if (sent.exit_code == 1 && absl::StrContains(sent.err, "SendCommand: UNIMPLEMENTED")) {
    // CommandService not in this Herald yet: heraldctl says so.
    EXPECT_TRUE(absl::StrContains(sent.err, "does not implement SendCommand")) << sent.err;
    std::printf("NOTE: this Herald does not implement CommandService; heraldctl showed: %s", sent.err.c_str());
    return;
  }
  ASSERT_EQ(sent.exit_code, 0) << Describe(sent);
  EXPECT_TRUE(absl::StrContains(sent.out, "state:      COMMAND_SUCCEEDED")) << sent.out;
  EXPECT_TRUE(absl::StrContains(sent.out, "status:     success")) << sent.out;
  EXPECT_TRUE(absl::StrContains(sent.out, R"(result:     {"pong":true})")) << sent.out;
  EXPECT_TRUE(absl::StrContains(sent.out, "params:     channel=1")) << sent.out;
  EXPECT_GE(device.answered(), 1);
  std::smatch id;
  ASSERT_TRUE(std::regex_search(sent.out, id, std::regex(R"(command: +(\S+))"))) << sent.out;
  Value command = CtlJson({"command", "get", id[1].str()});
  EXPECT_EQ(Field(command, "state").string_value(), "COMMAND_SUCCEEDED");

  // No device at all: the server's DEADLINE_EXCEEDED, shown as such.
  ASSERT_EQ(Ctl({"devices", "create", Id("silent")}).exit_code, 0);
  CommandResult unanswered = Ctl({"command", "send", Id("silent"), "on", "--command_timeout=300ms",
                                  "--max_retries=0", "--send_if_offline"});
  EXPECT_EQ(unanswered.exit_code, 1) << Describe(unanswered);
}

TEST_F(HeraldctlTest, ErrorsAndUsage) {
  // A wrong command line: exit 2, a message, nothing sent.
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"devices"},
                                             {"devices", "frobnicate"},
                                             {"devices", "get"},
                                             {"devices", "list", "--title=x"},
                                             {"notify", "--title=x"},
                                             {"notify", "--devices=a", "--topic=t", "--title=x"},
                                             {"notify", "--devices=a", "notkeyvalue"},
                                             {"notify", "--devices=a", "--priority=extreme"},
                                             {"devices", "list", "--online=maybe"}}) {
    CommandResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, 2) << absl::StrJoin(args, " ") << "\n" << Describe(result);
    EXPECT_TRUE(absl::StartsWith(result.err, "heraldctl: ")) << result.err;
    EXPECT_TRUE(result.out.empty()) << result.out;
  }
  CommandResult no_args = Ctl({}, /*with_address=*/false);
  EXPECT_EQ(no_args.exit_code, 2);
  EXPECT_TRUE(absl::StrContains(no_args.err, "Usage: heraldctl")) << no_args.err;
  CommandResult help = Ctl({"help"}, false);
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(help.out, "command send DEVICE ACTION")) << help.out;

  // The server's refusal: exit 1, its code and message.
  CommandResult invalid = Ctl({"devices", "create", "bad id with spaces"});
  EXPECT_EQ(invalid.exit_code, 1) << Describe(invalid);
  EXPECT_TRUE(absl::StrContains(invalid.err, "CreateDevice: INVALID_ARGUMENT: ")) << invalid.err;

  // Nobody there: UNAVAILABLE with a hint, within the deadline.
  const int closed = testing::FreeLoopbackPort();
  CommandResult unreachable =
      Ctl({"--address=127.0.0.1:" + std::to_string(closed), "--timeout=3s", "stats"}, false);
  EXPECT_EQ(unreachable.exit_code, 1) << Describe(unreachable);
  EXPECT_TRUE(absl::StrContains(unreachable.err, "GetStats: UNAVAILABLE")) << unreachable.err;
  EXPECT_TRUE(absl::StrContains(unreachable.err, "is Herald running")) << unreachable.err;

  // $HERALDCTL_ADDRESS stands in for --address.
  absl::StatusOr<CommandResult> from_env = testing::RunCommand(
      {binary_, "stats"}, absl::Seconds(30), {"HERALDCTL_ADDRESS=" + herald_->grpc_target()});
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  EXPECT_EQ(from_env->exit_code, 0) << Describe(*from_env);

  CommandResult version = Ctl({"version"}, false);
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_TRUE(absl::StartsWith(version.out, "heraldctl ")) << version.out;
}

TEST_F(HeraldctlTest, WithoutAnApiKeyTheCallIsRefusedWithAHint) {
  unsetenv("HERALD_API_KEY");
  CommandResult refused = Ctl({"stats"});
  setenv("HERALD_API_KEY", herald_->api_key().c_str(), 1);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(refused.err, "UNAUTHENTICATED")) << refused.err;
  EXPECT_TRUE(absl::StrContains(refused.err, "--api_key_file")) << refused.err;

  // The same key from a file works.
  const std::string key_file = absl::StrCat(::testing::TempDir(), "/heraldctl-key-", getpid());
  {
    std::ofstream out(key_file);
    out << herald_->api_key() << "\n";
  }
  unsetenv("HERALD_API_KEY");
  CommandResult from_file = Ctl({"--api_key_file=" + key_file, "stats"});
  setenv("HERALD_API_KEY", herald_->api_key().c_str(), 1);
  std::remove(key_file.c_str());
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
}

}  // namespace
}  // namespace herald
