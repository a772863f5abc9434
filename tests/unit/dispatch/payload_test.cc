// Tests of service/dispatch/payload.h: the published JSON (parsed back with
// protobuf's JSON parser, not compared as text) and request fingerprints.
#include "service/dispatch/payload.h"

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/fake_clock.h"

namespace herald {
namespace {

using ::herald::testing::kFakeEpoch;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::UnorderedElementsAre;

google::protobuf::Struct Parse(const std::string& json) {
  google::protobuf::Struct parsed;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &parsed);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in " << json;
  return parsed;
}

std::string StringField(const google::protobuf::Struct& object, const std::string& name) {
  const auto it = object.fields().find(name);
  if (it == object.fields().end()) {
    ADD_FAILURE() << "no field " << name;
    return "";
  }
  EXPECT_EQ(it->second.kind_case(), google::protobuf::Value::kStringValue) << name;
  return it->second.string_value();
}

std::vector<std::string> FieldNames(const google::protobuf::Struct& object) {
  std::vector<std::string> names;
  for (const auto& [name, value] : object.fields()) names.push_back(name);
  return names;
}

NotificationContent Content() {
  return {.title = "Door",
          .body = "The front door opened",
          .data = {{"door", "front"}, {"battery", "87"}},
          .priority = Priority::kHigh};
}

// --- EncodeNotificationPayload --------------------------------------------

TEST(EncodeNotificationPayloadTest, HasTheDocumentedFields) {
  const google::protobuf::Struct payload =
      Parse(EncodeNotificationPayload("n-1", Content(), kFakeEpoch, std::nullopt));
  EXPECT_THAT(FieldNames(payload),
              UnorderedElementsAre("id", "title", "body", "data", "priority", "sent_at"));
  EXPECT_EQ(StringField(payload, "id"), "n-1");
  EXPECT_EQ(StringField(payload, "title"), "Door");
  EXPECT_EQ(StringField(payload, "body"), "The front door opened");
  EXPECT_EQ(StringField(payload, "priority"), "high");
  EXPECT_EQ(StringField(payload, "sent_at"), "2026-01-24T10:30:00.000Z");
  const google::protobuf::Struct& data = payload.fields().at("data").struct_value();
  EXPECT_THAT(FieldNames(data), UnorderedElementsAre("door", "battery"));
  EXPECT_EQ(StringField(data, "door"), "front");
  EXPECT_EQ(StringField(data, "battery"), "87") << "data values stay strings";
}

// Compact, in the order PRODUCT.md documents, data keys sorted: the same
// content always gives the same bytes.
TEST(EncodeNotificationPayloadTest, IsCompactInTheDocumentedOrder) {
  NotificationContent content = Content();
  content.priority = Priority::kHigh;
  EXPECT_EQ(EncodeNotificationPayload("n-1", content, kFakeEpoch, kFakeEpoch + absl::Hours(1)),
            absl::StrCat(R"({"id":"n-1","title":"Door","body":"The front door opened",)",
                         R"("data":{"battery":"87","door":"front"},"priority":"high",)",
                         R"("sent_at":")", FormatRfc3339(kFakeEpoch), R"(","expires_at":")",
                         FormatRfc3339(kFakeEpoch + absl::Hours(1)), R"("})"));
}

TEST(EncodeNotificationPayloadTest, ExpiresAtOnlyWithTtl) {
  const absl::Time expires = kFakeEpoch + absl::Minutes(5);
  const google::protobuf::Struct with_ttl =
      Parse(EncodeNotificationPayload("n-1", Content(), kFakeEpoch, expires));
  EXPECT_EQ(StringField(with_ttl, "expires_at"), "2026-01-24T10:35:00.000Z");

  const google::protobuf::Struct without =
      Parse(EncodeNotificationPayload("n-1", Content(), kFakeEpoch, std::nullopt));
  EXPECT_FALSE(without.fields().contains("expires_at"));
}

TEST(EncodeNotificationPayloadTest, EmptyDataIsAnEmptyObject) {
  NotificationContent content = Content();
  content.data.clear();
  const google::protobuf::Struct payload =
      Parse(EncodeNotificationPayload("n-1", content, kFakeEpoch, std::nullopt));
  ASSERT_TRUE(payload.fields().contains("data"));
  EXPECT_EQ(payload.fields().at("data").kind_case(), google::protobuf::Value::kStructValue);
  EXPECT_THAT(FieldNames(payload.fields().at("data").struct_value()), IsEmpty());
}

TEST(EncodeNotificationPayloadTest, EscapesAnyText) {
  NotificationContent content;
  content.title = "say \"hi\"\\ </script>";
  content.body = "line 1\nline 2\t\x01 caf\xC3\xA9 \xF0\x9F\x98\x80";
  content.data = {{"we\"ird key", "{\"json\": [1,2]}"}};
  const std::string json = EncodeNotificationPayload("n-1", content, kFakeEpoch, std::nullopt);
  const google::protobuf::Struct payload = Parse(json);
  EXPECT_EQ(StringField(payload, "title"), content.title);
  EXPECT_EQ(StringField(payload, "body"), content.body);
  EXPECT_EQ(StringField(payload.fields().at("data").struct_value(), "we\"ird key"),
            "{\"json\": [1,2]}");
}

TEST(EncodeNotificationPayloadTest, PriorityNames) {
  const std::pair<Priority, std::string> cases[] = {{Priority::kLow, "low"},
                                                    {Priority::kNormal, "normal"},
                                                    {Priority::kHigh, "high"},
                                                    {Priority::kUrgent, "urgent"}};
  for (const auto& [priority, name] : cases) {
    NotificationContent content = Content();
    content.priority = priority;
    EXPECT_EQ(StringField(Parse(EncodeNotificationPayload("n", content, kFakeEpoch, {})),
                          "priority"),
              name);
  }
}

TEST(FormatRfc3339Test, UtcWithMilliseconds) {
  EXPECT_EQ(FormatRfc3339(kFakeEpoch + absl::Milliseconds(123) + absl::Microseconds(999)),
            "2026-01-24T10:30:00.123Z");
  EXPECT_EQ(FormatRfc3339(absl::UnixEpoch()), "1970-01-01T00:00:00.000Z");
}

// --- RequestFingerprint ---------------------------------------------------

NotificationRequest Request() {
  NotificationRequest request;
  request.tenant_id = kDefaultTenant;
  request.target = {.kind = TargetKind::kDeviceIds, .values = {"s1", "s2"}};
  request.content = {.title = "Door", .body = "Open", .data = {{"door", "front"}}};
  request.options.qos = 1;
  request.options.idempotency_key = "key-1";
  return request;
}

TEST(RequestFingerprintTest, EqualRequestsGiveEqualFingerprints) {
  EXPECT_EQ(RequestFingerprint(Request()), RequestFingerprint(Request()));
  NotificationRequest validate_only = Request();
  validate_only.validate_only = true;
  EXPECT_EQ(RequestFingerprint(validate_only), RequestFingerprint(Request()))
      << "validate_only changes nothing that is sent";
  EXPECT_THAT(RequestFingerprint(Request()), MatchesRegex("[0-9a-f]{32}"));
}

TEST(RequestFingerprintTest, IsStable) {
  // Stored with each notification and compared on every retried request,
  // so it must not change between processes or releases. Computed
  // independently: the two FNV-1a-64 digests (offset bases
  // 0xcbf29ce484222325 and 0x84222325cbf29ce4) of the length-prefixed
  // fields "herald-notification-v1;10:device_ids;1:2;2:s1;2:s2;4:Door;4:Open;
  // 1:1;4:door;5:front;6:normal;2:1-;0:;0:;".
  EXPECT_EQ(RequestFingerprint(Request()), "c015f7f4e2a2ca7c10dbe552ed74105b");
}

TEST(RequestFingerprintTest, DiffersWhenAnyFieldDiffers) {
  const std::string base = RequestFingerprint(Request());
  const std::vector<std::pair<std::string, std::function<void(NotificationRequest&)>>> changes = {
      {"target kind", [](auto& r) { r.target.kind = TargetKind::kOwnerIds; }},
      {"target value", [](auto& r) { r.target.values[1] = "s3"; }},
      {"extra target", [](auto& r) { r.target.values.push_back("s3"); }},
      {"target order", [](auto& r) { std::swap(r.target.values[0], r.target.values[1]); }},
      {"title", [](auto& r) { r.content.title = "Window"; }},
      {"body", [](auto& r) { r.content.body = "Closed"; }},
      {"data value", [](auto& r) { r.content.data["door"] = "back"; }},
      {"data key", [](auto& r) { r.content.data = {{"gate", "front"}}; }},
      {"extra data", [](auto& r) { r.content.data["x"] = ""; }},
      {"no data", [](auto& r) { r.content.data.clear(); }},
      {"priority", [](auto& r) { r.content.priority = Priority::kUrgent; }},
      {"qos", [](auto& r) { r.options.qos = 2; }},
      {"retain", [](auto& r) { r.options.retain = true; }},
      {"ttl set", [](auto& r) { r.options.ttl = absl::Minutes(5); }},
      {"send_time set", [](auto& r) { r.options.send_time = kFakeEpoch; }},
  };
  for (const auto& [what, change] : changes) {
    NotificationRequest changed = Request();
    change(changed);
    EXPECT_NE(RequestFingerprint(changed), base) << what;
  }

  NotificationRequest a = Request();
  NotificationRequest b = Request();
  a.options.ttl = absl::Minutes(5);
  b.options.ttl = absl::Minutes(6);
  EXPECT_NE(RequestFingerprint(a), RequestFingerprint(b)) << "ttl value";
  a.options.send_time = kFakeEpoch;
  b = a;
  b.options.send_time = kFakeEpoch + absl::Seconds(1);
  EXPECT_NE(RequestFingerprint(a), RequestFingerprint(b)) << "send_time value";
}

TEST(RequestFingerprintTest, FieldBoundariesCannotBeShifted) {
  // Moving characters between neighbouring fields must change the digest.
  NotificationRequest a = Request();
  NotificationRequest b = Request();
  a.content.title = "ab";
  a.content.body = "c";
  b.content.title = "a";
  b.content.body = "bc";
  EXPECT_NE(RequestFingerprint(a), RequestFingerprint(b));

  a = Request();
  b = Request();
  a.target.values = {"s1,s2"};
  b.target.values = {"s1", "s2"};
  EXPECT_NE(RequestFingerprint(a), RequestFingerprint(b));
}

TEST(RequestFingerprintTest, ValuesCannotShiftIntoContent) {
  // Groups are free text, so a group may be any string. Two different
  // requests whose fields, read in order, are the same list of strings:
  //   a: groups [g, "|", "X"], title "k", body "v", data {}
  //   b: groups [g],           title "X", body "|", data {k: v}
  // A fingerprint that does not record how many values and data entries
  // there are cannot tell them apart, and a reused idempotency key with the
  // other content would then be taken for a retry.
  NotificationRequest a = Request();
  a.target = {.kind = TargetKind::kGroups, .values = {"g", "|", "X"}};
  a.content = {.title = "k", .body = "v", .data = {}};
  NotificationRequest b = Request();
  b.target = {.kind = TargetKind::kGroups, .values = {"g"}};
  b.content = {.title = "X", .body = "|", .data = {{"k", "v"}}};
  EXPECT_NE(RequestFingerprint(a), RequestFingerprint(b));
}

}  // namespace
}  // namespace herald
