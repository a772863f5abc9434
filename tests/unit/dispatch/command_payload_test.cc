// Tests of service/dispatch/command_payload.h: the command that Herald
// publishes, and the responses and presence messages it reads from devices
// (PRODUCT.md section 2, the HomeSync and Shelly seed documents).
#include "service/dispatch/command_payload.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

google::protobuf::Struct Parse(const std::string& json) {
  google::protobuf::Struct parsed;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok()) << json;
  return parsed;
}

::testing::Matcher<absl::StatusOr<CommandResponse>> Malformed(const std::string& reason) {
  return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(reason));
}

TEST(CommandPayloadTest, EncodesTheWireFormat) {
  const std::string json = EncodeCommandPayload(
      "req-1", "on", {{"duration", "30"}, {"mode", "eco"}}, absl::FromUnixMillis(1769250600123));
  const google::protobuf::Struct payload = Parse(json);
  const auto& fields = payload.fields();
  EXPECT_EQ(fields.size(), 4u) << json;
  EXPECT_EQ(fields.at("request_id").string_value(), "req-1");
  EXPECT_EQ(fields.at("action").string_value(), "on");
  EXPECT_EQ(fields.at("sent_at").string_value(), "2026-01-24T10:30:00.123Z");
  const auto& params = fields.at("params").struct_value().fields();
  EXPECT_EQ(params.at("duration").string_value(), "30");
  EXPECT_EQ(params.at("mode").string_value(), "eco");
  // No params is still an object, so that devices can read params.x blindly.
  EXPECT_EQ(Parse(EncodeCommandPayload("r", "off", {}, absl::UnixEpoch()))
                .fields()
                .at("params")
                .kind_case(),
            google::protobuf::Value::kStructValue);
}

TEST(CommandPayloadTest, ReadsAHomeSyncResponse) {
  absl::StatusOr<CommandResponse> response = ParseCommandResponse(
      R"({"request_id": "req-uuid-123", "status": "success", "result": "on",
          "timestamp": "2025-02-06T14:30:01Z"})",
      "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->request_id, "req-uuid-123");
  EXPECT_EQ(response->status, "success");
  EXPECT_EQ(response->result_json, "\"on\"");
  EXPECT_EQ(response->error, "");
}

TEST(CommandPayloadTest, KeepsAnyResultAndTheError) {
  absl::StatusOr<CommandResponse> response = ParseCommandResponse(
      R"({"request_id":"r","status":"error","result":{"relay":[1,2],"ok":false},"error":"overheated"})",
      "");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, "error");
  EXPECT_EQ(response->error, "overheated");
  const google::protobuf::Struct result = Parse(response->result_json);
  EXPECT_FALSE(result.fields().at("ok").bool_value());
  EXPECT_EQ(result.fields().at("relay").list_value().values_size(), 2);

  response = ParseCommandResponse(R"({"request_id":"r","status":"error","error":{"code":7}})", "");
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->error, R"({"code":7})") << "a non-string error keeps its JSON";
  response = ParseCommandResponse(R"({"request_id":"r","status":"success","result":null})", "");
  ASSERT_TRUE(response.ok());
  EXPECT_EQ(response->result_json, "null");
}

TEST(CommandPayloadTest, RequestIdFromTheCorrelationDataUnderMqtt5) {
  EXPECT_THAT(ParseCommandResponse(R"({"status":"success"})", "req-7"),
              IsOkAndHolds(::testing::Field(&CommandResponse::request_id, "req-7")));
  // The payload's own request id wins.
  EXPECT_THAT(ParseCommandResponse(R"({"request_id":"req-1","status":"success"})", "req-7"),
              IsOkAndHolds(::testing::Field(&CommandResponse::request_id, "req-1")));
  EXPECT_THAT(ParseCommandResponse(R"({"status":"success"})", ""), Malformed("no \"request_id\""));
}

// Found by tests/integration/dispatch/hostile_messages_test: 60,000 bytes of
// binary correlation data became the request id, went to the database
// (which refused it as not UTF-8) and into a log line whole.
TEST(CommandPayloadTest, RefusesRequestIdsHeraldCannotHaveIssued) {
  const std::string longest(kMaxRequestIdBytes, 'r');
  EXPECT_THAT(ParseCommandResponse(R"({"status":"success"})", longest),
              IsOkAndHolds(::testing::Field(&CommandResponse::request_id, longest)));
  EXPECT_THAT(ParseCommandResponse(R"({"status":"success"})", longest + "r"),
              Malformed("the request id in the MQTT 5 correlation data must be 1 to 128 "
                        "printable ASCII characters (is 129 bytes)"));
  EXPECT_THAT(ParseCommandResponse(R"({"status":"success"})", std::string(60000, '\xc3')),
              Malformed("(is 60000 bytes)"));
  EXPECT_THAT(ParseCommandResponse(R"({"status":"success"})", std::string("a\0b", 3)),
              Malformed("printable ASCII"));
  for (const char* payload : {R"({"request_id":"a b","status":"success"})",
                              R"({"request_id":"a\u0000b","status":"success"})",
                              R"({"request_id":"caf\u00e9","status":"success"})",
                              R"({"request_id":"a\nb","status":"success"})"}) {
    EXPECT_THAT(ParseCommandResponse(payload, "corr"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         ::testing::AllOf(HasSubstr("\"request_id\" must be 1 to 128 printable"),
                                          ::testing::Not(HasSubstr("caf")))))
        << payload;
  }
}

TEST(CommandPayloadTest, RefusesMalformedResponsesWithAReason) {
  EXPECT_THAT(ParseCommandResponse("", ""), Malformed("empty payload"));
  EXPECT_THAT(ParseCommandResponse("on", ""), Malformed("not a JSON object"));
  EXPECT_THAT(ParseCommandResponse("[1,2]", ""), Malformed("not a JSON object"));
  EXPECT_THAT(ParseCommandResponse("{\"request_id\": \"r\", \"status\": ", ""),
              Malformed("not valid JSON"));
  EXPECT_THAT(ParseCommandResponse("{garbage}", ""), Malformed("not valid JSON"));
  // One line, without the payload: it goes to a log line.
  EXPECT_THAT(ParseCommandResponse("{\"token\": hunter2}", ""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(::testing::Not(HasSubstr("\n")),
                                        ::testing::Not(HasSubstr("hunter2")))));
  EXPECT_THAT(ParseCommandResponse(R"({"request_id":"r"})", ""), Malformed("no \"status\""));
  EXPECT_THAT(ParseCommandResponse(R"({"request_id":"r","status":true})", ""),
              Malformed("\"status\" must be a string, not a boolean"));
  EXPECT_THAT(ParseCommandResponse(R"({"request_id":"r","status":""})", ""),
              Malformed("must not be empty"));
  EXPECT_THAT(ParseCommandResponse(R"({"request_id":42,"status":"success"})", "corr"),
              Malformed("\"request_id\" must be a string, not a number"));
  const std::string huge =
      absl::StrCat(R"({"request_id":"r","status":"success","result":")",
                   std::string(kMaxCommandResponseBytes, 'x'), "\"}");
  EXPECT_THAT(ParseCommandResponse(huge, ""), Malformed("exceeds the limit"));
}

// Found by tests/fuzz/command_payload_fuzzer: Protobuf reads arrays nested
// 33 to 61 deep but cannot write them back, and the response was accepted
// with a truncated "result" that is not JSON (its jsonb column refuses it).
// And found by tests/integration/dispatch/hostile_messages_test: Protobuf's
// parser takes time quadratic in the depth, so 200 KB of brackets held the
// MQTT delivery thread for over a minute. Deep payloads are refused before
// parsing.
TEST(CommandPayloadTest, RefusesJsonNestedTooDeep) {
  const auto arrays = [](int depth) {
    return absl::StrCat(std::string(depth, '['), "1", std::string(depth, ']'));
  };
  const auto objects = [](int depth) {
    std::string open;
    for (int i = 0; i < depth; ++i) open += "{\"k\":";
    return absl::StrCat(open, "1", std::string(depth, '}'));
  };
  const auto response = [](const std::string& result) {
    return absl::StrCat(R"({"request_id":"r","status":"success","result":)", result, "}");
  };
  for (const std::string& result : {arrays(kMaxPayloadNesting), objects(kMaxPayloadNesting)}) {
    absl::StatusOr<CommandResponse> deepest = ParseCommandResponse(response(result), "");
    ASSERT_TRUE(deepest.ok()) << deepest.status();
    EXPECT_EQ(Parse(absl::StrCat("{\"x\":", deepest->result_json, "}")).fields_size(), 1);
  }
  // 100000 levels: 200 KB, under the size limit.
  for (const int depth : {kMaxPayloadNesting + 1, 40, 61, 62, 10000, 100000}) {
    EXPECT_THAT(ParseCommandResponse(response(arrays(depth)), ""),
                Malformed("JSON nested too deeply"))
        << depth;
    EXPECT_THAT(ParseCommandResponse(
                    absl::StrCat(R"({"request_id":"r","status":"error","error":)",
                                 objects(std::min(depth, 10000)), "}"),
                    ""),
                Malformed("JSON nested too deeply"))
        << depth;
    EXPECT_THAT(ParsePresencePayload(absl::StrCat(R"({"online":true,"x":)", arrays(depth), "}")),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nested too deeply")))
        << depth;
  }
  // Brackets inside strings are text.
  EXPECT_THAT(ParseCommandResponse(response(absl::StrCat("\"", std::string(1000, '['), "\"")), ""),
              IsOkAndHolds(::testing::Field(&CommandResponse::status, "success")));
  EXPECT_THAT(ParseCommandResponse(response(R"("\"[[[[")"), ""), IsOkAndHolds(::testing::_));
}

TEST(CommandPayloadTest, PresenceJsonAsHomeSyncSendsIt) {
  EXPECT_THAT(ParsePresencePayload(
                  R"({ "online": false, "reason": "unexpected_disconnect" })"),
              IsOkAndHolds(false));
  EXPECT_THAT(ParsePresencePayload(
                  R"({"online": true, "timestamp": "2025-02-06T14:30:00Z", "uptime": 86400})"),
              IsOkAndHolds(true));
}

TEST(CommandPayloadTest, PresenceBareWordsAsShellySendsThem) {
  EXPECT_THAT(ParsePresencePayload("true"), IsOkAndHolds(true));
  EXPECT_THAT(ParsePresencePayload("false"), IsOkAndHolds(false));
  EXPECT_THAT(ParsePresencePayload("online"), IsOkAndHolds(true));
  EXPECT_THAT(ParsePresencePayload("offline"), IsOkAndHolds(false));
  EXPECT_THAT(ParsePresencePayload(" Offline\n"), IsOkAndHolds(false));
  EXPECT_THAT(ParsePresencePayload("\"online\""), IsOkAndHolds(true));
}

// Found by tests/fuzz/command_payload_fuzzer: the payload "" (two quotes)
// left nothing between the quotes, and the parser read its first character
// (an assertion failure where Abseil's hardening is on).
TEST(CommandPayloadTest, PresenceRefusesAnEmptyQuotedWord) {
  for (const std::string payload : {"\"\"", " \"\"\n", "\"", "\" \""}) {
    EXPECT_THAT(ParsePresencePayload(payload),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected {\"online\"")))
        << payload;
  }
}

TEST(CommandPayloadTest, PresenceRefusesAnythingElse) {
  const auto malformed = [](const std::string& reason) {
    return StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(reason));
  };
  EXPECT_THAT(ParsePresencePayload(""), malformed("empty payload"));
  EXPECT_THAT(ParsePresencePayload("maybe"), malformed("expected {\"online\""));
  EXPECT_THAT(ParsePresencePayload("1"), malformed("expected"));
  EXPECT_THAT(ParsePresencePayload(R"({"status":"online"})"), malformed("no \"online\" field"));
  EXPECT_THAT(ParsePresencePayload(R"({"online":"yes"})"),
              malformed("\"online\" must be a boolean, not a string"));
  EXPECT_THAT(ParsePresencePayload(R"({"online":)"), malformed("not valid JSON"));
}

}  // namespace
}  // namespace herald
