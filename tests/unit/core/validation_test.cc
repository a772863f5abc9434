// Tests of service/core/validation.h: every refusal is kInvalidArgument and
// its message starts with the field, as the API spells it.
#include "service/core/validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

::testing::Matcher<absl::Status> InvalidNaming(const std::string& field) {
  return StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(field + ": "));
}

// --- ValidateId -----------------------------------------------------------

TEST(ValidateIdTest, AcceptsIdCharacters) {
  EXPECT_THAT(ValidateId("sensor-001", "device_id"), IsOk());
  EXPECT_THAT(ValidateId("A.b_c:D-9", "device_id"), IsOk());
  EXPECT_THAT(ValidateId(std::string(kMaxIdBytes, 'x'), "device_id"), IsOk());
}

TEST(ValidateIdTest, RejectsEmptyLongAndOtherCharacters) {
  EXPECT_THAT(ValidateId("", "device_id"),
              StatusIs(absl::StatusCode::kInvalidArgument, "device_id: is required"));
  EXPECT_THAT(ValidateId(std::string(kMaxIdBytes + 1, 'x'), "device_id"),
              InvalidNaming("device_id"));
  for (const char* id : {"a b", "a/b", "a+b", "a#b", "caf\xC3\xA9", "a\tb", "$x"}) {
    EXPECT_THAT(ValidateId(id, "owner_id"), InvalidNaming("owner_id")) << id;
  }
}

// --- ValidateDevice -------------------------------------------------------

Device GoodDevice() {
  Device device;
  device.tenant_id = kDefaultTenant;
  device.device_id = "sensor-001";
  device.owner_id = "alice";
  device.topic = "custom/sensor-001";
  device.groups = {"factory/floor-3", "all"};
  device.metadata = {{"home_id", "home-42"}, {"room", "kitchen"}};
  return device;
}

TEST(ValidateDeviceTest, AcceptsAGoodDevice) {
  EXPECT_THAT(ValidateDevice(GoodDevice(), "device"), IsOk());
}

TEST(ValidateDeviceTest, OptionalFieldsMayBeEmpty) {
  Device device;
  device.device_id = "s1";
  EXPECT_THAT(ValidateDevice(device, "device"), IsOk());
}

TEST(ValidateDeviceTest, DeviceId) {
  Device device = GoodDevice();
  device.device_id = "";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.device_id"));
  device.device_id = "has/slash";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.device_id"));
}

TEST(ValidateDeviceTest, OwnerId) {
  Device device = GoodDevice();
  device.owner_id = "alice smith";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.owner_id"));
}

TEST(ValidateDeviceTest, Platform) {
  Device device = GoodDevice();
  device.platform = "fcm";
  EXPECT_THAT(ValidateDevice(device, "device"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("device.platform: "), HasSubstr("\"fcm\""))));
}

TEST(ValidateDeviceTest, Topic) {
  Device device = GoodDevice();
  device.topic = "devices/+/n";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.topic"));
  device.topic = "$SYS/x";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.topic"));
}

TEST(ValidateDeviceTest, Groups) {
  Device device = GoodDevice();
  device.groups.assign(kMaxGroupsPerDevice, "g");
  EXPECT_THAT(ValidateDevice(device, "device"), IsOk());
  device.groups.push_back("g");
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.groups"));

  device = GoodDevice();
  device.groups = {"ok", ""};
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.groups[1]"));
  device.groups = {std::string(kMaxGroupBytes, 'g')};
  EXPECT_THAT(ValidateDevice(device, "device"), IsOk());
  device.groups = {std::string(kMaxGroupBytes + 1, 'g')};
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.groups[0]"));
  device.groups = {std::string("a\0b", 3)};
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.groups[0]"));
}

TEST(ValidateDeviceTest, Metadata) {
  Device device = GoodDevice();
  device.metadata.clear();
  for (size_t i = 0; i <= kMaxMetadataEntries; ++i) device.metadata[absl::StrCat("k", i)] = "v";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.metadata"));

  device = GoodDevice();
  device.metadata[""] = "v";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.metadata"));

  device = GoodDevice();
  device.metadata[std::string(kMaxMetadataKeyBytes + 1, 'k')] = "v";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.metadata"));

  device = GoodDevice();
  device.metadata["bad key"] = "v";
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.metadata[\"bad key\"]"));

  device = GoodDevice();
  device.metadata["k"] = std::string(kMaxMetadataValueBytes, 'v');
  EXPECT_THAT(ValidateDevice(device, "device"), IsOk());
  device.metadata["k"] = std::string(kMaxMetadataValueBytes + 1, 'v');
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.metadata[\"k\"]"));
  device.metadata["k"] = std::string("a\0", 2);
  EXPECT_THAT(ValidateDevice(device, "device"), InvalidNaming("device.metadata[\"k\"]"));
}

TEST(ValidateDeviceTest, PrefixIsTheCallersFieldName) {
  Device device = GoodDevice();
  device.device_id = "";
  EXPECT_THAT(ValidateDevice(device, "requests[3].device"),
              InvalidNaming("requests[3].device.device_id"));
}

// --- ValidateNotificationRequest ------------------------------------------

NotificationRequest GoodRequest() {
  NotificationRequest request;
  request.tenant_id = kDefaultTenant;
  request.target = {.kind = TargetKind::kDeviceIds, .values = {"s1", "s2"}};
  request.content.title = "Door";
  request.content.body = "The front door opened";
  request.content.data = {{"door", "front"}};
  request.options.qos = 1;
  request.options.ttl = absl::Minutes(5);
  request.options.idempotency_key = "req-1";
  return request;
}

absl::Status Validate(const NotificationRequest& request, RequestLimits limits = {}) {
  return ValidateNotificationRequest(request, limits);
}

TEST(ValidateNotificationRequestTest, AcceptsAGoodRequest) {
  EXPECT_THAT(Validate(GoodRequest()), IsOk());
}

TEST(ValidateNotificationRequestTest, AcceptsEachTargetKind) {
  NotificationRequest request = GoodRequest();
  request.target = {.kind = TargetKind::kOwnerIds, .values = {"alice"}};
  EXPECT_THAT(Validate(request), IsOk());
  request.target = {.kind = TargetKind::kGroups, .values = {"factory/floor-3"}};
  EXPECT_THAT(Validate(request), IsOk());
  request.target = {.kind = TargetKind::kTopic, .values = {"broadcast/all"}};
  EXPECT_THAT(Validate(request), IsOk());
}

TEST(ValidateNotificationRequestTest, TargetValuesRequired) {
  NotificationRequest request = GoodRequest();
  request.target.values.clear();
  EXPECT_THAT(Validate(request), InvalidNaming("target.device_ids"));
  request.target.kind = TargetKind::kOwnerIds;
  EXPECT_THAT(Validate(request), InvalidNaming("target.owner_ids"));
  request.target.kind = TargetKind::kGroups;
  EXPECT_THAT(Validate(request), InvalidNaming("target.groups"));
}

TEST(ValidateNotificationRequestTest, EachTargetValueIsChecked) {
  NotificationRequest request = GoodRequest();
  request.target.values = {"s1", "not/an/id"};
  EXPECT_THAT(Validate(request), InvalidNaming("target.device_ids[1]"));
  request.target = {.kind = TargetKind::kOwnerIds, .values = {"bad owner"}};
  EXPECT_THAT(Validate(request), InvalidNaming("target.owner_ids[0]"));
  // Groups are free text (they may hold '/'), but not empty.
  request.target = {.kind = TargetKind::kGroups, .values = {"a/b", ""}};
  EXPECT_THAT(Validate(request), InvalidNaming("target.groups[1]"));
}

TEST(ValidateNotificationRequestTest, TargetCountLimits) {
  NotificationRequest request = GoodRequest();
  request.target.values = {"a", "b", "c"};
  EXPECT_THAT(Validate(request, {.max_targets_per_request = 3}), IsOk());
  EXPECT_THAT(Validate(request, {.max_targets_per_request = 2}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("target.device_ids: "), HasSubstr("at most 2"))));

  request.target.kind = TargetKind::kOwnerIds;
  request.target.values.assign(kMaxOwnersOrGroupsPerRequest, "alice");
  EXPECT_THAT(Validate(request), IsOk());
  request.target.values.push_back("alice");
  EXPECT_THAT(Validate(request), InvalidNaming("target.owner_ids"));
}

TEST(ValidateNotificationRequestTest, TopicTarget) {
  NotificationRequest request = GoodRequest();
  request.target = {.kind = TargetKind::kTopic, .values = {"a", "b"}};
  EXPECT_THAT(Validate(request), InvalidNaming("target.topic"));
  request.target.values = {};
  EXPECT_THAT(Validate(request), InvalidNaming("target.topic"));
  request.target.values = {"devices/#"};
  EXPECT_THAT(Validate(request), InvalidNaming("target.topic"));
  request.target.values = {""};
  EXPECT_THAT(Validate(request), InvalidNaming("target.topic"));
}

TEST(ValidateNotificationRequestTest, Content) {
  NotificationRequest request = GoodRequest();
  request.content.title.clear();
  request.content.body.clear();
  EXPECT_THAT(Validate(request), InvalidNaming("content"));
  request.content.title = "only a title";
  EXPECT_THAT(Validate(request), IsOk());
  request.content.title.clear();
  request.content.body = "only a body";
  EXPECT_THAT(Validate(request), IsOk());

  request = GoodRequest();
  request.content.title = std::string(65536, 't');
  EXPECT_THAT(Validate(request), IsOk());
  request.content.title += "t";
  EXPECT_THAT(Validate(request), InvalidNaming("content.title"));
  request.content.title = std::string("a\0", 2);
  EXPECT_THAT(Validate(request), InvalidNaming("content.title"));

  request = GoodRequest();
  request.content.body = std::string((1 << 20) + 1, 'b');
  EXPECT_THAT(Validate(request), InvalidNaming("content.body"));
}

TEST(ValidateNotificationRequestTest, Data) {
  NotificationRequest request = GoodRequest();
  request.content.data[""] = "v";
  EXPECT_THAT(Validate(request), InvalidNaming("content.data"));

  request = GoodRequest();
  request.content.data.clear();
  for (size_t i = 0; i <= kMaxDataEntries; ++i) request.content.data[absl::StrCat("k", i)] = "v";
  EXPECT_THAT(Validate(request), InvalidNaming("content.data"));

  request = GoodRequest();
  request.content.data["door"] = std::string("x\0y", 3);
  EXPECT_THAT(Validate(request), InvalidNaming("content.data[\"door\"]"));

  request = GoodRequest();
  request.content.data[std::string(257, 'k')] = "v";
  EXPECT_THAT(Validate(request), InvalidNaming("content.data key"));
}

TEST(ValidateNotificationRequestTest, Qos) {
  NotificationRequest request = GoodRequest();
  for (int qos : {0, 1, 2}) {
    request.options.qos = qos;
    EXPECT_THAT(Validate(request), IsOk()) << qos;
  }
  for (int qos : {-1, 3, 42}) {
    request.options.qos = qos;
    EXPECT_THAT(Validate(request), InvalidNaming("options.qos")) << qos;
  }
}

TEST(ValidateNotificationRequestTest, Ttl) {
  NotificationRequest request = GoodRequest();
  request.options.ttl.reset();
  EXPECT_THAT(Validate(request), IsOk());
  request.options.ttl = absl::ZeroDuration();
  EXPECT_THAT(Validate(request), InvalidNaming("options.ttl"));
  request.options.ttl = absl::Seconds(-1);
  EXPECT_THAT(Validate(request), InvalidNaming("options.ttl"));
  request.options.ttl = absl::Hours(24 * 365);
  EXPECT_THAT(Validate(request), IsOk());
  request.options.ttl = absl::Hours(24 * 365) + absl::Seconds(1);
  EXPECT_THAT(Validate(request), InvalidNaming("options.ttl"));
}

TEST(ValidateNotificationRequestTest, IdempotencyKey) {
  NotificationRequest request = GoodRequest();
  request.options.idempotency_key = std::string(kMaxIdempotencyKeyBytes, 'k');
  EXPECT_THAT(Validate(request), IsOk());
  request.options.idempotency_key += "k";
  EXPECT_THAT(Validate(request), InvalidNaming("options.idempotency_key"));
  for (const std::string& key : {std::string("a\nb"), std::string("a\0b", 3), std::string("\x7f")}) {
    request.options.idempotency_key = key;
    EXPECT_THAT(Validate(request),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(StartsWith("options.idempotency_key: "), HasSubstr("control"))));
  }
  request.options.idempotency_key = "order 42 / caf\xC3\xA9";  // spaces and UTF-8 are fine
  EXPECT_THAT(Validate(request), IsOk());
}

}  // namespace
}  // namespace herald
