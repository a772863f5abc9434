// Tests of service/api/command_convert.h: SendCommandRequest defaults and
// Command output, the device's JSON result as a google.protobuf.Value.
#include "service/api/command_convert.h"

#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald::api {
namespace {

using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

v1::SendCommandRequest ParseText(const std::string& text) {
  v1::SendCommandRequest message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

TEST(CommandRequestFromProtoTest, DefaultsForUnsetOptionalFields) {
  absl::StatusOr<CommandRequest> request =
      CommandRequestFromProto(ParseText(R"(device_id: "node-001" action: "on")"), "t1");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->tenant_id, "t1");
  EXPECT_EQ(request->device_id, "node-001");
  EXPECT_EQ(request->action, "on");
  EXPECT_EQ(request->qos, 1);
  EXPECT_EQ(request->timeout, absl::Seconds(5));
  EXPECT_EQ(request->max_retries, 3);
  EXPECT_FALSE(request->send_if_offline);
}

TEST(CommandRequestFromProtoTest, ExplicitZerosAreKept) {
  absl::StatusOr<CommandRequest> request = CommandRequestFromProto(
      ParseText(R"(device_id: "d" action: "off" qos: 0 max_retries: 0 send_if_offline: true
                  timeout { seconds: 1 nanos: 500000000 }
                  params { key: "brightness" value: "80" })"),
      "t1");
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->qos, 0);
  EXPECT_EQ(request->max_retries, 0);
  EXPECT_TRUE(request->send_if_offline);
  EXPECT_EQ(request->timeout, absl::Milliseconds(1500));
  EXPECT_THAT(request->params, ElementsAre(Pair("brightness", "80")));
}

TEST(CommandRequestFromProtoTest, MalformedDurationNamesTimeout) {
  EXPECT_THAT(CommandRequestFromProto(
                  ParseText(R"(device_id: "d" action: "on" timeout { seconds: 1 nanos: -5 })"),
                  "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout:")));
  EXPECT_THAT(CommandRequestFromProto(
                  ParseText(R"(device_id: "d" action: "on" timeout { nanos: 1000000000 })"), "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout:")));
}

TEST(CommandToProtoTest, AnsweredCommand) {
  CommandRecord record;
  record.command_id = "c1";
  record.request_id = "r1";
  record.device_id = "node-001";
  record.action = "on";
  record.params = {{"duration", "30"}};
  record.state = CommandState::kSucceeded;
  record.attempts = 2;
  record.status = "success";
  record.result_json = R"({"relay":"on","power":12.5})";
  record.round_trip = absl::Milliseconds(1250);
  record.create_time = absl::FromUnixSeconds(1769250600);
  record.complete_time = absl::FromUnixSeconds(1769250602);
  v1::Command proto;
  CommandToProto(record, &proto);
  EXPECT_EQ(proto.command_id(), "c1");
  EXPECT_EQ(proto.request_id(), "r1");
  EXPECT_EQ(proto.state(), v1::COMMAND_SUCCEEDED);
  EXPECT_EQ(proto.attempts(), 2);
  EXPECT_EQ(proto.status(), "success");
  EXPECT_EQ(proto.result().struct_value().fields().at("relay").string_value(), "on");
  EXPECT_DOUBLE_EQ(proto.result().struct_value().fields().at("power").number_value(), 12.5);
  EXPECT_EQ(proto.round_trip().seconds(), 1);
  EXPECT_EQ(proto.round_trip().nanos(), 250000000);
  EXPECT_EQ(proto.create_time().seconds(), 1769250600);
  EXPECT_EQ(proto.complete_time().seconds(), 1769250602);
  EXPECT_EQ(proto.params().at("duration"), "30");
}

TEST(CommandToProtoTest, ScalarResultsAndNoResult) {
  CommandRecord record;
  record.result_json = "\"on\"";
  v1::Command proto;
  CommandToProto(record, &proto);
  EXPECT_EQ(proto.result().string_value(), "on");
  EXPECT_EQ(proto.state(), v1::COMMAND_PENDING);

  record.result_json = "true";
  proto.Clear();
  CommandToProto(record, &proto);
  EXPECT_TRUE(proto.result().bool_value());

  record.result_json = "";
  record.state = CommandState::kTimedOut;
  record.error = "no answer after 4 attempts";
  proto.Clear();
  CommandToProto(record, &proto);
  EXPECT_FALSE(proto.has_result());
  EXPECT_FALSE(proto.has_round_trip());
  EXPECT_FALSE(proto.has_complete_time());
  EXPECT_EQ(proto.state(), v1::COMMAND_TIMED_OUT);
  EXPECT_EQ(proto.error(), "no answer after 4 attempts");
}

TEST(CommandToProtoTest, EveryStateHasItsProtoValue) {
  EXPECT_EQ(CommandStateToProto(CommandState::kPending), v1::COMMAND_PENDING);
  EXPECT_EQ(CommandStateToProto(CommandState::kSucceeded), v1::COMMAND_SUCCEEDED);
  EXPECT_EQ(CommandStateToProto(CommandState::kError), v1::COMMAND_ERROR);
  EXPECT_EQ(CommandStateToProto(CommandState::kTimedOut), v1::COMMAND_TIMED_OUT);
}

}  // namespace
}  // namespace herald::api
