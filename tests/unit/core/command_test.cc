// Tests of service/core/command.h: request validation (every error names
// the field and the rule) and the stable state names.
#include "service/core/command.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/command_store.h"
#include "service/core/types.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

CommandRequest ValidRequest() {
  return CommandRequest{.tenant_id = kDefaultTenant, .device_id = "node-001", .action = "on"};
}

::testing::Matcher<absl::Status> InvalidNaming(const std::string& field, const std::string& rule) {
  return StatusIs(absl::StatusCode::kInvalidArgument,
                  AllOf(StartsWith(field + ": "), HasSubstr(rule)));
}

TEST(CommandTest, DefaultsArePRODUCTmd) {
  const CommandRequest request;
  EXPECT_EQ(request.qos, 1);
  EXPECT_EQ(request.timeout, absl::Seconds(5));
  EXPECT_EQ(request.max_retries, 3);
  EXPECT_FALSE(request.send_if_offline);
}

TEST(CommandTest, ValidRequests) {
  EXPECT_THAT(ValidateCommandRequest(ValidRequest()), IsOk());
  CommandRequest edges = ValidRequest();
  edges.action = std::string(64, 'a');
  edges.qos = 2;
  edges.timeout = absl::Milliseconds(100);
  edges.max_retries = 10;
  edges.params = {{std::string(64, 'k'), std::string(4096, 'v')}};
  EXPECT_THAT(ValidateCommandRequest(edges), IsOk());
  edges.qos = 0;
  edges.timeout = absl::Seconds(60);
  edges.max_retries = 0;
  edges.action = "set brightness ☀";  // UTF-8 and spaces are fine
  EXPECT_THAT(ValidateCommandRequest(edges), IsOk());
}

TEST(CommandTest, EachBrokenRuleNamesItsField) {
  CommandRequest request = ValidRequest();
  request.device_id = "";
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("device_id", "required"));
  request.device_id = "a/b";
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("device_id", "topic level"));

  request = ValidRequest();
  request.action = "";
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("action", "required"));
  request.action = std::string(65, 'a');
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("action", "at most 64 bytes"));
  request.action = "on\n";
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("action", "control characters"));

  request = ValidRequest();
  request.qos = 3;
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("qos", "0, 1 or 2 (got 3)"));
  request.qos = -1;
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("qos", "got -1"));

  request = ValidRequest();
  request.timeout = absl::Milliseconds(99);
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("timeout", "between 100ms and 1m"));
  request.timeout = absl::Seconds(61);
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("timeout", "got 1m1s"));

  request = ValidRequest();
  request.max_retries = 11;
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("max_retries", "between 0 and 10"));
  request.max_retries = -1;
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("max_retries", "got -1"));
}

TEST(CommandTest, ParamsLimits) {
  CommandRequest request = ValidRequest();
  for (int i = 0; i < 65; ++i) request.params["k" + std::to_string(i)] = "v";
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("params", "at most 64 entries"));

  request = ValidRequest();
  request.params = {{"", "v"}};
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("params", "keys must be 1-64"));
  request.params = {{std::string(65, 'k'), "v"}};
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("params", "keys must be 1-64"));
  request.params = {{"brightness", std::string(4097, '9')}};
  EXPECT_THAT(ValidateCommandRequest(request),
              InvalidNaming("params[\"brightness\"]", "at most 4096 bytes"));
  request.params = {{"x", std::string("a\0b", 3)}};
  EXPECT_THAT(ValidateCommandRequest(request), InvalidNaming("params[\"x\"]", "NUL"));
}

TEST(CommandTest, StateNamesRoundTrip) {
  for (CommandState state : {CommandState::kPending, CommandState::kSucceeded,
                             CommandState::kError, CommandState::kTimedOut}) {
    EXPECT_EQ(CommandStateFromName(CommandStateName(state)), state);
  }
  EXPECT_EQ(CommandStateName(CommandState::kTimedOut), "timed_out");
  EXPECT_EQ(CommandStateFromName("nope"), std::nullopt);
  EXPECT_EQ(ResponseDispositionName(ResponseDisposition::kAlreadyAnswered), "already_answered");
}

TEST(CommandTest, DeviceStatusMapsToState) {
  EXPECT_EQ(StateForDeviceStatus("success"), CommandState::kSucceeded);
  EXPECT_EQ(StateForDeviceStatus("error"), CommandState::kError);
  EXPECT_EQ(StateForDeviceStatus("busy"), CommandState::kError);
  EXPECT_EQ(StateForDeviceStatus("SUCCESS"), CommandState::kError) << "the contract's word is exact";
}

TEST(CommandTest, IsFinal) {
  CommandRecord record;
  EXPECT_FALSE(record.IsFinal());
  record.state = CommandState::kTimedOut;
  EXPECT_TRUE(record.IsFinal());
}

}  // namespace
}  // namespace herald
