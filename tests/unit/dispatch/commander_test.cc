// Tests of service/dispatch/commander.h against FakeDeviceStore,
// FakeCommandStore and FakeProvider. A test plays the device by handing
// responses to the provider's subscribers, and "another replica" by
// recording responses in the command store.
//
// Send blocks, so each test runs it on a thread of its own and drives the
// device meanwhile; every wait has a deadline. Timeouts are the shortest
// the API allows (100 ms) where a test needs an attempt to run out.
#include "service/dispatch/commander.h"

#include <atomic>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "service/metrics/herald_metrics.h"
#include "tests/testing/fakes/fake_command_store.h"
#include "tests/testing/fakes/fake_device_store.h"
#include "tests/testing/fakes/fake_provider.h"
#include "tests/testing/fakes/metrics_reader.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeCommandStore;
using ::herald::testing::FakeDeviceStore;
using ::herald::testing::FakeProvider;
using ::herald::testing::MetricValue;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);  // a bound for what should take ms

std::string FieldOf(const std::string& json, const std::string& name) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  const auto it = parsed.fields().find(name);
  return it == parsed.fields().end() ? std::string() : it->second.string_value();
}

CommanderOptions Options(bool shared) {
  CommanderOptions options;
  options.shared_subscription = shared;
  options.backoff_initial = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(100);
  options.poll_interval = absl::Milliseconds(50);
  options.cancel_check_interval = absl::Milliseconds(10);
  options.jitter = [] { return 0.0; };  // backoffs at half their size: 10, 20, 40 ms
  return options;
}

CommandRequest Request(const std::string& device_id = "d1") {
  return CommandRequest{.tenant_id = kDefaultTenant,
                        .device_id = device_id,
                        .action = "on",
                        .params = {{"duration", "30"}},
                        .timeout = absl::Seconds(5),
                        .max_retries = 0};
}

class CommanderTest : public ::testing::Test {
 protected:
  CommanderTest() : metrics_(registry_, "test") {
    provider_.set_auto_complete(PublishResult{});  // the broker acknowledges at once
    AddDevice("d1");
    AddDevice("d2");
  }

  ~CommanderTest() override {
    if (commander_ != nullptr) commander_->Stop();
  }

  void AddDevice(const std::string& id, std::map<std::string, std::string> metadata = {},
                 bool enabled = true) {
    Device device;
    device.tenant_id = kDefaultTenant;
    device.device_id = id;
    device.metadata = std::move(metadata);
    device.enabled = enabled;
    ASSERT_TRUE(devices_.CreateDevice(device).ok());
  }

  void StartCommander(CommanderOptions options) {
    commander_ = std::make_unique<Commander>(devices_, commands_, provider_, metrics_,
                                             std::move(options));
    ASSERT_TRUE(commander_->Start().ok());
  }

  std::future<absl::StatusOr<CommandRecord>> SendAsync(CommandRequest request,
                                                       CallContext call = {}) {
    return std::async(std::launch::async, [this, request, call] {
      return commander_->Send(request, call);
    });
  }

  // The request id of the `n`th publish (1-based), once it happened.
  std::string RequestIdOfPublish(size_t n) {
    EXPECT_TRUE(provider_.AwaitPublished(n, kWait)) << "publish " << n << " never came";
    const std::vector<OutgoingMessage> published = provider_.published();
    if (published.size() < n) return "";
    return FieldOf(published[n - 1].payload, "request_id");
  }

  int Answer(const std::string& request_id, const std::string& status = "success",
             const std::string& device_id = "d1", const std::string& extra = "") {
    IncomingMessage message;
    message.topic = absl::StrCat("devices/", device_id, "/responses");
    message.payload = absl::StrCat(R"({"request_id":")", request_id, R"(","status":")", status,
                                   R"(","result":"on")", extra, "}");
    return provider_.DeliverIncoming(message);
  }

  double Responses(const std::string& outcome) {
    return MetricValue(registry_, "herald_command_responses_total", {{"outcome", outcome}});
  }
  double Commands(const std::string& outcome) {
    return MetricValue(registry_, "herald_commands_total", {{"outcome", outcome}});
  }

  // Waits (with a deadline) until the responses counter reaches `value`:
  // hand-overs are counted on the Commander's own thread.
  bool AwaitResponses(const std::string& outcome, double value) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      if (Responses(outcome) >= value) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return false;
  }

  prometheus::Registry registry_;
  HeraldMetrics metrics_;
  FakeDeviceStore devices_;
  FakeCommandStore commands_;
  FakeProvider provider_;
  std::unique_ptr<Commander> commander_;
};

TEST_F(CommanderTest, SubscribesToTheResponseFilter) {
  StartCommander(Options(/*shared=*/true));
  EXPECT_EQ(commander_->subscription_filter(), "$share/herald/devices/+/responses");
  EXPECT_THAT(provider_.subscriptions(), ElementsAre("$share/herald/devices/+/responses"));
  EXPECT_TRUE(commands_.watching()) << "a shared subscription needs the hand-over feed";
}

TEST_F(CommanderTest, PlainSubscriptionUnderMqtt311) {
  StartCommander(Options(/*shared=*/false));
  EXPECT_THAT(provider_.subscriptions(), ElementsAre("devices/+/responses"));
  EXPECT_FALSE(commands_.watching());
}

TEST_F(CommanderTest, PublishesTheCommandAndReturnsTheAnswer) {
  StartCommander(Options(false));
  CommandRequest request = Request();
  request.qos = 2;
  auto sent = SendAsync(request);
  const std::string request_id = RequestIdOfPublish(1);
  const OutgoingMessage message = provider_.published()[0];
  EXPECT_EQ(message.topic, "devices/d1/commands");
  EXPECT_EQ(message.qos, 2);
  EXPECT_FALSE(message.retain);
  EXPECT_EQ(message.response_topic, "devices/d1/responses");
  EXPECT_EQ(message.correlation_data, request_id);
  EXPECT_EQ(FieldOf(message.payload, "action"), "on");
  EXPECT_FALSE(FieldOf(message.payload, "sent_at").empty());

  EXPECT_EQ(Answer(request_id), 1);
  absl::StatusOr<CommandRecord> done = sent.get();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
  EXPECT_EQ(done->status, "success");
  EXPECT_EQ(done->result_json, "\"on\"");
  EXPECT_EQ(done->attempts, 1);
  EXPECT_EQ(done->request_id, request_id);
  ASSERT_TRUE(done->round_trip.has_value());
  EXPECT_GE(*done->round_trip, absl::ZeroDuration());
  EXPECT_EQ(done->params.at("duration"), "30");

  // Stored as returned.
  ASSERT_EQ(commands_.Commands().size(), 1u);
  EXPECT_EQ(commands_.Commands()[0].state, CommandState::kSucceeded);
  EXPECT_EQ(Commands("succeeded"), 1);
  EXPECT_EQ(Responses("matched"), 1);
  EXPECT_EQ(testing::HistogramCount(registry_, "herald_command_duration_seconds"), 1u);
  EXPECT_EQ(commander_->waiting(), 0);
}

TEST_F(CommanderTest, AnErrorAnswerIsStillAnAnswer) {
  StartCommander(Options(false));
  auto sent = SendAsync(Request());
  Answer(RequestIdOfPublish(1), "error", "d1", R"(,"error":"relay stuck")");
  absl::StatusOr<CommandRecord> done = sent.get();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kError);
  EXPECT_EQ(done->error, "relay stuck");
  EXPECT_EQ(Commands("error"), 1);
}

TEST_F(CommanderTest, MatchesByCorrelationDataAlone) {
  StartCommander(Options(true));
  auto sent = SendAsync(Request());
  const std::string request_id = RequestIdOfPublish(1);
  IncomingMessage message;
  message.topic = "devices/d1/responses";
  message.payload = R"({"status":"success"})";
  message.correlation_data = request_id;
  provider_.DeliverIncoming(message);
  absl::StatusOr<CommandRecord> done = sent.get();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
}

TEST_F(CommanderTest, RetriesWithTheSameRequestIdAndALateAnswerCounts) {
  StartCommander(Options(false));
  CommandRequest request = Request();
  request.timeout = absl::Milliseconds(100);
  request.max_retries = 3;
  auto sent = SendAsync(request);
  const std::string first = RequestIdOfPublish(1);
  const std::string second = RequestIdOfPublish(2);
  EXPECT_EQ(first, second) << "every attempt carries the same request id";
  Answer(first);  // an answer to attempt 1, while attempt 2 waits
  absl::StatusOr<CommandRecord> done = sent.get();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
  EXPECT_GE(done->attempts, 2);
  EXPECT_LE(done->attempts, 4);
}

TEST_F(CommanderTest, NoAnswerIsDeadlineExceededNamingTheAttempts) {
  StartCommander(Options(false));
  CommandRequest request = Request();
  request.timeout = absl::Milliseconds(100);
  request.max_retries = 2;
  const absl::Time start = absl::Now();
  absl::StatusOr<CommandRecord> done = commander_->Send(request);
  EXPECT_THAT(done, StatusIs(absl::StatusCode::kDeadlineExceeded,
                             AllOf(HasSubstr("no answer after 3 attempts of 100ms each"),
                                   HasSubstr("to device \"d1\""), HasSubstr("GetCommand("))));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300)) << "three full timeouts";
  EXPECT_EQ(provider_.published_count(), 3u);
  ASSERT_EQ(commands_.Commands().size(), 1u);
  const CommandRecord stored = commands_.Commands()[0];
  EXPECT_EQ(stored.state, CommandState::kTimedOut);
  EXPECT_EQ(stored.attempts, 3);
  EXPECT_THAT(stored.error, HasSubstr("no answer after 3 attempts"));
  EXPECT_EQ(Commands("timed_out"), 1);

  // An answer after the end is late: counted, ignored.
  Answer(stored.request_id);
  EXPECT_EQ(Responses("late"), 1);
  EXPECT_EQ(commands_.Commands()[0].state, CommandState::kTimedOut);
}

TEST_F(CommanderTest, DuplicateUnknownAndWrongDeviceAnswersAreCountedAndIgnored) {
  StartCommander(Options(false));
  auto sent = SendAsync(Request());
  const std::string request_id = RequestIdOfPublish(1);
  Answer(request_id, "success", "d2");  // names another device: ignored
  EXPECT_EQ(Responses("wrong_device"), 1);
  Answer(request_id);
  ASSERT_TRUE(sent.get().ok());
  Answer(request_id);                   // a second answer
  Answer("no-such-request");            // not ours (3.1.1: maybe another replica's)
  EXPECT_EQ(Responses("matched"), 1);
  EXPECT_EQ(Responses("duplicate"), 1);
  EXPECT_EQ(Responses("not_waiting_here"), 1);
  EXPECT_EQ(commands_.Commands()[0].state, CommandState::kSucceeded);
}

TEST_F(CommanderTest, MalformedAnswersAreSkipped) {
  StartCommander(Options(false));
  CommandRequest request = Request();
  request.timeout = absl::Milliseconds(150);
  auto sent = SendAsync(request);
  RequestIdOfPublish(1);
  provider_.DeliverIncoming({.topic = "devices/d1/responses", .payload = "{not json"});
  provider_.DeliverIncoming({.topic = "devices/d1/responses", .payload = "on"});
  EXPECT_EQ(Responses("malformed"), 2);
  EXPECT_THAT(sent.get(), StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("1 attempt ")));
}

TEST_F(CommanderTest, OfflineDevicesAreRefusedUnlessSendIfOffline) {
  StartCommander(Options(false));
  ASSERT_TRUE(devices_.SetOnline(kDefaultTenant, "d1", false, absl::Now()).ok());
  EXPECT_THAT(commander_->Send(Request()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("\"d1\" is offline"), HasSubstr("send_if_offline"))));
  EXPECT_EQ(provider_.published_count(), 0u);
  EXPECT_TRUE(commands_.Commands().empty()) << "a refused command is not stored";
  EXPECT_EQ(Commands("offline"), 1);

  CommandRequest anyway = Request();
  anyway.send_if_offline = true;
  auto sent = SendAsync(anyway);
  Answer(RequestIdOfPublish(1));
  EXPECT_TRUE(sent.get().ok());

  // d2 never reported presence: unknown is not offline.
  auto unknown = SendAsync(Request("d2"));
  Answer(RequestIdOfPublish(2), "success", "d2");
  EXPECT_TRUE(unknown.get().ok());
}

TEST_F(CommanderTest, RefusalsNameTheProblem) {
  AddDevice("off", {}, /*enabled=*/false);
  AddDevice("homeless");
  CommanderOptions options = Options(false);
  options.command_topic_template = "homesync/{meta.home_id}/nodes/{device_id}/command/relay";
  options.response_topic_template = "homesync/{meta.home_id}/nodes/{device_id}/response/command";
  StartCommander(options);
  EXPECT_THAT(commander_->Send(Request("nobody")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(commander_->Send(Request("off")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("disabled")));
  EXPECT_THAT(commander_->Send(Request("homeless")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("home_id")));
  CommandRequest bad = Request();
  bad.qos = 5;
  EXPECT_THAT(commander_->Send(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("qos: must be 0, 1 or 2")));
  EXPECT_EQ(provider_.published_count(), 0u);
  EXPECT_EQ(Commands("rejected"), 4);
}

TEST_F(CommanderTest, HomeSyncTopics) {
  AddDevice("node-001", {{"home_id", "abc123"}});
  CommanderOptions options = Options(false);
  options.command_topic_template = "homesync/{meta.home_id}/nodes/{device_id}/command/relay";
  options.response_topic_template = "homesync/{meta.home_id}/nodes/{device_id}/response/command";
  StartCommander(options);
  EXPECT_THAT(provider_.subscriptions(), ElementsAre("homesync/+/nodes/+/response/command"));
  auto sent = SendAsync(Request("node-001"));
  const std::string request_id = RequestIdOfPublish(1);
  EXPECT_EQ(provider_.published()[0].topic, "homesync/abc123/nodes/node-001/command/relay");
  EXPECT_EQ(provider_.published()[0].response_topic,
            "homesync/abc123/nodes/node-001/response/command");
  provider_.DeliverIncoming(
      {.topic = "homesync/abc123/nodes/node-001/response/command",
       .payload = absl::StrCat(R"({"request_id":")", request_id, R"(","status":"success"})")});
  EXPECT_TRUE(sent.get().ok());
}

TEST_F(CommanderTest, PayloadLimit) {
  CommanderOptions options = Options(false);
  options.max_payload_bytes = 100;
  StartCommander(options);
  CommandRequest big = Request();
  big.params["blob"] = std::string(200, 'x');
  EXPECT_THAT(commander_->Send(big),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("params: the encoded command is"),
                             HasSubstr("--max_payload_bytes"))));
}

TEST_F(CommanderTest, TooManyWaitingCallsAreResourceExhausted) {
  CommanderOptions options = Options(false);
  options.max_waiting = 1;
  StartCommander(options);
  auto first = SendAsync(Request());
  const std::string request_id = RequestIdOfPublish(1);
  EXPECT_EQ(commander_->waiting(), 1);
  EXPECT_EQ(MetricValue(registry_, "herald_commands_waiting"), 1);
  EXPECT_THAT(commander_->Send(Request("d2")),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max_pending_commands")));
  EXPECT_EQ(Commands("overloaded"), 1);
  Answer(request_id);
  EXPECT_TRUE(first.get().ok());
  EXPECT_EQ(MetricValue(registry_, "herald_commands_waiting"), 0);
}

TEST_F(CommanderTest, NothingReachesTheBrokerIsUnavailable) {
  StartCommander(Options(false));
  provider_.set_connection_state(ConnectionState::kDisconnected);  // publishes fail at once
  CommandRequest request = Request();
  request.max_retries = 2;
  const absl::Time start = absl::Now();
  EXPECT_THAT(commander_->Send(request),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("not delivered to the broker in 3 attempts")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(4)) << "a failed publish does not wait 5 s";
  EXPECT_EQ(commands_.Commands()[0].state, CommandState::kTimedOut);
  EXPECT_EQ(Commands("unavailable"), 1);
}

TEST_F(CommanderTest, DatabaseDownIsUnavailable) {
  StartCommander(Options(false));
  commands_.FailNextCalls(absl::UnavailableError("db down"), 1, "InsertCommand");
  EXPECT_THAT(commander_->Send(Request()), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(provider_.published_count(), 0u) << "not sent when it cannot be stored";
}

TEST_F(CommanderTest, AnswerRecordedByAnotherReplicaWakesTheWaiter) {
  StartCommander(Options(true));
  CommandRequest request = Request();
  request.timeout = absl::Seconds(30);
  auto sent = SendAsync(request);
  const std::string request_id = RequestIdOfPublish(1);
  // The other replica got the answer from the shared subscription.
  ASSERT_THAT(commands_.RecordResponse(
                  {.request_id = request_id, .status = "success", .result_json = "42"}, "d1"),
              testing::IsOkAndHolds(ResponseDisposition::kRecorded));
  absl::StatusOr<CommandRecord> done = sent.get();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
  EXPECT_EQ(done->result_json, "42");
  EXPECT_EQ(Commands("succeeded"), 1);
}

TEST_F(CommanderTest, LostNotificationIsMadeUpForByPolling) {
  StartCommander(Options(true));
  commands_.set_drop_notifications(true);
  CommandRequest request = Request();
  request.timeout = absl::Seconds(30);
  auto sent = SendAsync(request);
  const std::string request_id = RequestIdOfPublish(1);
  ASSERT_TRUE(commands_.RecordResponse({.request_id = request_id, .status = "success"}, "").ok());
  absl::StatusOr<CommandRecord> done = sent.get();  // poll_interval is 50 ms
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
}

TEST_F(CommanderTest, HandsAnswersForOtherReplicasOverThroughTheStore) {
  StartCommander(Options(true));
  // A command that another replica sent and waits for.
  CommandRecord theirs;
  theirs.tenant_id = kDefaultTenant;
  theirs.command_id = "theirs";
  theirs.request_id = "req-theirs";
  theirs.device_id = "d1";
  theirs.action = "on";
  ASSERT_TRUE(commands_.InsertCommand(theirs).ok());
  Answer("req-theirs");
  ASSERT_TRUE(AwaitResponses("handed_over", 1));
  EXPECT_EQ(commands_.Commands()[0].state, CommandState::kSucceeded);
  Answer("req-theirs");
  ASSERT_TRUE(AwaitResponses("duplicate", 1));
  Answer("req-nobody");
  ASSERT_TRUE(AwaitResponses("unknown", 1));
  Answer("req-theirs", "success", "d2");
  ASSERT_TRUE(AwaitResponses("wrong_device", 1));
}

TEST_F(CommanderTest, AStoreFailureDuringHandOverIsCountedAsDropped) {
  StartCommander(Options(true));
  commands_.FailNextCalls(absl::UnavailableError("db down"), 1, "RecordResponse");
  Answer("req-x");
  ASSERT_TRUE(AwaitResponses("dropped", 1));
}

TEST_F(CommanderTest, CallerGoneEndsTheWait) {
  StartCommander(Options(false));
  std::atomic<bool> cancelled = false;
  auto sent = SendAsync(Request(), {.cancelled = [&] { return cancelled.load(); }});
  RequestIdOfPublish(1);
  cancelled = true;
  EXPECT_THAT(sent.get(), StatusIs(absl::StatusCode::kCancelled, HasSubstr("cancelled")));
  EXPECT_EQ(commands_.Commands()[0].state, CommandState::kTimedOut);

  // The call's deadline bounds the attempts too.
  CommandRequest request = Request();
  request.max_retries = 10;
  EXPECT_THAT(commander_->Send(request, {.deadline = absl::Now() + absl::Milliseconds(150)}),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("deadline passed")));
}

TEST_F(CommanderTest, StopReleasesWaitingCalls) {
  StartCommander(Options(false));
  auto sent = SendAsync(Request());
  RequestIdOfPublish(1);
  commander_->Stop();
  EXPECT_THAT(sent.get(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shut down")));
  EXPECT_THAT(commander_->Send(Request()), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(CommanderTest, StoreFailureAtTheEndStillReturnsTheAnswer) {
  StartCommander(Options(false));
  commands_.FailNextCalls(absl::UnavailableError("db down"), 1, "CompleteCommand");
  auto sent = SendAsync(Request());
  Answer(RequestIdOfPublish(1));
  absl::StatusOr<CommandRecord> done = sent.get();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
}

TEST_F(CommanderTest, RefusesTemplatesItCannotUse) {
  CommanderOptions options = Options(false);
  options.response_topic_template = "r/{device_id}{meta.x}";
  Commander commander(devices_, commands_, provider_, metrics_, options);
  EXPECT_THAT(commander.Start(), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("--response_topic_template")));
  CommanderOptions group = Options(true);
  group.share_group = "a/b";
  Commander shared(devices_, commands_, provider_, metrics_, group);
  EXPECT_THAT(shared.Start(), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("share group")));
}

}  // namespace
}  // namespace herald
