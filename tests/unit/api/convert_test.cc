// Tests of service/api/convert.h: proto <-> core translation.
#include "service/api/convert.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "service/core/validation.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald::api {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;

template <typename Message>
Message ParseText(const std::string& text) {
  Message message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message)) << text;
  return message;
}

// A fixed instant with sub-second precision.
const absl::Time kTime = absl::FromUnixSeconds(1769250600) + absl::Nanoseconds(123456789);

// --- Timestamps -------------------------------------------------------------

TEST(SetTimestampTest, KeepsNanoseconds) {
  google::protobuf::Timestamp proto;
  SetTimestamp(kTime, &proto);
  EXPECT_EQ(proto.seconds(), 1769250600);
  EXPECT_EQ(proto.nanos(), 123456789);
}

TEST(SetTimestampTest, BeforeTheEpochNanosStayPositive) {
  google::protobuf::Timestamp proto;
  SetTimestamp(absl::UnixEpoch() - absl::Milliseconds(1500), &proto);
  EXPECT_EQ(proto.seconds(), -2);
  EXPECT_EQ(proto.nanos(), 500000000);
}

// --- Devices ------------------------------------------------------------------

TEST(DeviceFromProtoTest, CopiesTheWritableFields) {
  const auto proto = ParseText<v1::Device>(R"pb(
    device_id: "relay-7"
    owner_id: "alice"
    platform: "mqtt"
    topic: "custom/relay-7"
    groups: "floor-1"
    groups: "all"
    metadata { key: "home_id" value: "h1" }
    enabled: false
    online: true
    create_time { seconds: 5 }
  )pb");
  const Device device = DeviceFromProto(proto, "tenant-a");
  EXPECT_EQ(device.tenant_id, "tenant-a");
  EXPECT_EQ(device.device_id, "relay-7");
  EXPECT_EQ(device.owner_id, "alice");
  EXPECT_EQ(device.platform, "mqtt");
  EXPECT_EQ(device.topic, "custom/relay-7");
  EXPECT_THAT(device.groups, ElementsAre("floor-1", "all"));
  EXPECT_THAT(device.metadata, ElementsAre(Pair("home_id", "h1")));
  EXPECT_FALSE(device.enabled);
  EXPECT_FALSE(device.online) << "online is output only";
  EXPECT_EQ(device.create_time, absl::InfinitePast()) << "create_time is output only";
}

TEST(DeviceFromProtoTest, Defaults) {
  const Device device = DeviceFromProto(ParseText<v1::Device>(R"pb(device_id: "s1")pb"), "t");
  EXPECT_EQ(device.platform, "mqtt") << "empty platform means mqtt";
  EXPECT_TRUE(device.enabled) << "unset enabled means true";
}

TEST(DeviceToProtoTest, RoundTripsAndSetsOutputFields) {
  Device device;
  device.tenant_id = "t";
  device.device_id = "relay-7";
  device.owner_id = "alice";
  device.topic = "custom/relay-7";
  device.groups = {"floor-1", "all"};
  device.metadata = {{"home_id", "h1"}, {"room", "hall"}};
  device.enabled = false;
  device.online = true;
  device.last_seen_time = kTime;
  device.create_time = kTime - absl::Hours(1);
  device.update_time = kTime - absl::Minutes(1);

  v1::Device proto;
  DeviceToProto(device, &proto);
  EXPECT_TRUE(proto.has_enabled());
  EXPECT_FALSE(proto.enabled());
  EXPECT_TRUE(proto.online());
  EXPECT_EQ(proto.last_seen_time().nanos(), 123456789);
  EXPECT_EQ(proto.create_time().seconds(), 1769250600 - 3600);
  EXPECT_EQ(proto.update_time().seconds(), 1769250600 - 60);

  const Device back = DeviceFromProto(proto, "t");
  EXPECT_EQ(back.device_id, device.device_id);
  EXPECT_EQ(back.owner_id, device.owner_id);
  EXPECT_EQ(back.platform, device.platform);
  EXPECT_EQ(back.topic, device.topic);
  EXPECT_EQ(back.groups, device.groups);
  EXPECT_EQ(back.metadata, device.metadata);
  EXPECT_EQ(back.enabled, device.enabled);
}

TEST(DeviceToProtoTest, NoLastSeenTimeLeavesItUnset) {
  Device device;
  device.device_id = "s1";
  device.create_time = kTime;
  device.update_time = kTime;
  v1::Device proto;
  DeviceToProto(device, &proto);
  EXPECT_FALSE(proto.has_last_seen_time());
  EXPECT_TRUE(proto.enabled());
}

// --- Field masks ---------------------------------------------------------------

TEST(DeviceFieldsFromMaskTest, EmptyMaskMeansEveryField) {
  EXPECT_THAT(DeviceFieldsFromMask({}),
              IsOkAndHolds(UnorderedElementsAre(DeviceField::kOwnerId, DeviceField::kPlatform,
                                                DeviceField::kTopic, DeviceField::kGroups,
                                                DeviceField::kMetadata, DeviceField::kEnabled)));
}

TEST(DeviceFieldsFromMaskTest, MapsEachPath) {
  google::protobuf::FieldMask mask;
  for (const char* path : {"enabled", "owner_id", "platform", "topic", "groups", "metadata"}) {
    mask.add_paths(path);
  }
  EXPECT_THAT(DeviceFieldsFromMask(mask),
              IsOkAndHolds(ElementsAre(DeviceField::kEnabled, DeviceField::kOwnerId,
                                       DeviceField::kPlatform, DeviceField::kTopic,
                                       DeviceField::kGroups, DeviceField::kMetadata)));
}

TEST(DeviceFieldsFromMaskTest, RefusesUnknownAndOutputOnlyPaths) {
  for (const char* path :
       {"device_id", "online", "create_time", "last_seen_time", "nope", "metadata.home_id", ""}) {
    google::protobuf::FieldMask mask;
    mask.add_paths("topic");
    mask.add_paths(path);
    EXPECT_THAT(DeviceFieldsFromMask(mask),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(StartsWith("update_mask: "), HasSubstr(std::string("\"") + path))))
        << path;
  }
}

// --- Notification requests ------------------------------------------------------

TEST(NotificationRequestFromProtoTest, CopiesEverything) {
  const auto proto = ParseText<v1::SendNotificationRequest>(R"pb(
    target { device_ids { values: "s1" values: "s2" } }
    content {
      title: "Door"
      body: "Open"
      data { key: "door" value: "front" }
      priority: URGENT
    }
    options {
      qos: 2
      retain: true
      ttl { seconds: 90 nanos: 500000000 }
      send_time { seconds: 1769250600 nanos: 123456789 }
      idempotency_key: "order-42"
    }
    validate_only: true
  )pb");
  ASSERT_OK_AND_ASSIGN(NotificationRequest request,
                       NotificationRequestFromProto(proto, "tenant-a"));
  EXPECT_EQ(request.tenant_id, "tenant-a");
  EXPECT_EQ(request.target.kind, TargetKind::kDeviceIds);
  EXPECT_THAT(request.target.values, ElementsAre("s1", "s2"));
  EXPECT_EQ(request.content.title, "Door");
  EXPECT_EQ(request.content.body, "Open");
  EXPECT_THAT(request.content.data, ElementsAre(Pair("door", "front")));
  EXPECT_EQ(request.content.priority, Priority::kUrgent);
  EXPECT_EQ(request.options.qos, 2);
  EXPECT_TRUE(request.options.retain);
  EXPECT_EQ(request.options.ttl, absl::Seconds(90) + absl::Milliseconds(500));
  EXPECT_EQ(request.options.send_time, kTime);
  EXPECT_EQ(request.options.idempotency_key, "order-42");
  EXPECT_TRUE(request.validate_only);
}

TEST(NotificationRequestFromProtoTest, EachTargetKind) {
  struct Case {
    std::string text;
    TargetKind kind;
    std::vector<std::string> values;
  };
  const Case cases[] = {
      {R"pb(target { owner_ids { values: "alice" } })pb", TargetKind::kOwnerIds, {"alice"}},
      {R"pb(target { groups { values: "a/b" values: "c" } })pb", TargetKind::kGroups,
       {"a/b", "c"}},
      {R"pb(target { topic: "broadcast/all" })pb", TargetKind::kTopic, {"broadcast/all"}},
      {R"pb(target { topic: "" })pb", TargetKind::kTopic, {""}},
      {R"pb(target { device_ids {} })pb", TargetKind::kDeviceIds, {}},
  };
  for (const Case& c : cases) {
    ASSERT_OK_AND_ASSIGN(
        NotificationRequest request,
        NotificationRequestFromProto(ParseText<v1::SendNotificationRequest>(c.text), "t"));
    EXPECT_EQ(request.target.kind, c.kind) << c.text;
    EXPECT_EQ(request.target.values, c.values) << c.text;
  }
}

TEST(NotificationRequestFromProtoTest, TargetKindNotSetIsAnError) {
  EXPECT_THAT(NotificationRequestFromProto(
                  ParseText<v1::SendNotificationRequest>(R"pb(content { title: "x" })pb"), "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("target: ")));
}

TEST(NotificationRequestFromProtoTest, QosDefaultsToOneOnlyWhenUnset) {
  auto convert = [](const std::string& text) {
    return NotificationRequestFromProto(ParseText<v1::SendNotificationRequest>(text), "t");
  };
  ASSERT_OK_AND_ASSIGN(NotificationRequest unset,
                       convert(R"pb(target { topic: "a" })pb"));
  EXPECT_EQ(unset.options.qos, 1);
  ASSERT_OK_AND_ASSIGN(NotificationRequest no_options_qos,
                       convert(R"pb(target { topic: "a" } options { retain: true })pb"));
  EXPECT_EQ(no_options_qos.options.qos, 1);
  ASSERT_OK_AND_ASSIGN(NotificationRequest zero,
                       convert(R"pb(target { topic: "a" } options { qos: 0 })pb"));
  EXPECT_EQ(zero.options.qos, 0) << "an explicit 0 is QoS 0, not the default";
}

TEST(NotificationRequestFromProtoTest, Priorities) {
  const std::pair<v1::Priority, Priority> cases[] = {{v1::PRIORITY_UNSPECIFIED, Priority::kNormal},
                                                     {v1::LOW, Priority::kLow},
                                                     {v1::NORMAL, Priority::kNormal},
                                                     {v1::HIGH, Priority::kHigh},
                                                     {v1::URGENT, Priority::kUrgent}};
  for (const auto& [proto_priority, priority] : cases) {
    v1::SendNotificationRequest proto;
    proto.mutable_target()->set_topic("a");
    proto.mutable_content()->set_priority(proto_priority);
    ASSERT_OK_AND_ASSIGN(NotificationRequest request, NotificationRequestFromProto(proto, "t"));
    EXPECT_EQ(request.content.priority, priority) << proto_priority;
  }
}

TEST(NotificationRequestFromProtoTest, UnknownPriorityIsAnError) {
  v1::SendNotificationRequest proto;
  proto.mutable_target()->set_topic("a");
  proto.mutable_content()->set_priority(static_cast<v1::Priority>(42));
  EXPECT_THAT(NotificationRequestFromProto(proto, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("content.priority: "), HasSubstr("42"))));
}

TEST(NotificationRequestFromProtoTest, MalformedTimesAreErrors) {
  v1::SendNotificationRequest proto;
  proto.mutable_target()->set_topic("a");
  proto.mutable_options()->mutable_ttl()->set_seconds(1);
  proto.mutable_options()->mutable_ttl()->set_nanos(1000000000);  // out of range
  EXPECT_THAT(NotificationRequestFromProto(proto, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("options.ttl: ")));
  proto.mutable_options()->mutable_ttl()->set_nanos(0);
  proto.mutable_options()->mutable_ttl()->set_seconds(315576000001);  // beyond 10,000 years
  EXPECT_THAT(NotificationRequestFromProto(proto, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("options.ttl: ")));

  proto.mutable_options()->clear_ttl();
  proto.mutable_options()->mutable_send_time()->set_nanos(1000000000);  // out of range
  EXPECT_THAT(NotificationRequestFromProto(proto, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("options.send_time: ")));
  proto.mutable_options()->mutable_send_time()->set_nanos(-1);
  EXPECT_THAT(NotificationRequestFromProto(proto, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("options.send_time: ")));
  proto.mutable_options()->mutable_send_time()->set_nanos(0);
  proto.mutable_options()->mutable_send_time()->set_seconds(253402300800);  // year 10000
  EXPECT_THAT(NotificationRequestFromProto(proto, "t"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("options.send_time: ")));
}

TEST(NotificationRequestFromProtoTest, RangeRulesAreLeftToValidation) {
  // Representable but out of range: converted as given, then refused by
  // ValidateNotificationRequest with the field named.
  ASSERT_OK_AND_ASSIGN(NotificationRequest request,
                       NotificationRequestFromProto(ParseText<v1::SendNotificationRequest>(R"pb(
                                                      target { topic: "a" }
                                                      content { title: "x" }
                                                      options { qos: 7 ttl { seconds: -5 } }
                                                    )pb"),
                                                    "t"));
  EXPECT_EQ(request.options.qos, 7);
  EXPECT_EQ(request.options.ttl, absl::Seconds(-5));
  EXPECT_THAT(ValidateNotificationRequest(request, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("options.qos: ")));
  request.options.qos = 1;
  EXPECT_THAT(ValidateNotificationRequest(request, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("options.ttl: ")));
}

TEST(NotificationRequestFromProtoTest, UnsetTimesStayUnset) {
  ASSERT_OK_AND_ASSIGN(NotificationRequest request,
                       NotificationRequestFromProto(
                           ParseText<v1::SendNotificationRequest>(R"pb(target { topic: "a" })pb"),
                           "t"));
  EXPECT_EQ(request.options.ttl, std::nullopt);
  EXPECT_EQ(request.options.send_time, std::nullopt);
  EXPECT_FALSE(request.validate_only);
}

// --- Notifications and deliveries -------------------------------------------------

TEST(NotificationToProtoTest, RequestRoundTrips) {
  // A request as a caller sends it comes back unchanged in the stored
  // notification's target, content and options.
  for (const std::string target :
       {R"pb(device_ids { values: "s1" values: "s2" })pb", R"pb(owner_ids { values: "alice" })pb",
        R"pb(groups { values: "floor-1" })pb", R"pb(topic: "broadcast/all")pb"}) {
    const auto proto = ParseText<v1::SendNotificationRequest>(absl::StrCat(
        "target {", target, "}", R"pb(
          content {
            title: "Door"
            body: "Open"
            data { key: "door" value: "front" }
            data { key: "level" value: "2" }
            priority: HIGH
          }
          options {
            qos: 0
            retain: true
            ttl { seconds: 90 nanos: 500000000 }
            send_time { seconds: 1769250600 nanos: 123456789 }
            idempotency_key: "order-42"
          }
        )pb"));
    ASSERT_OK_AND_ASSIGN(NotificationRequest request, NotificationRequestFromProto(proto, "t"));
    NotificationRecord record;
    record.notification_id = "n-1";
    record.target = request.target;
    record.content = request.content;
    record.options = request.options;
    record.create_time = kTime;
    v1::Notification out;
    NotificationToProto(record, &out);
    std::string difference;
    MessageDifferencer differencer;
    differencer.ReportDifferencesToString(&difference);
    EXPECT_TRUE(differencer.Compare(out.target(), proto.target())) << difference;
    EXPECT_TRUE(differencer.Compare(out.content(), proto.content())) << difference;
    EXPECT_TRUE(differencer.Compare(out.options(), proto.options())) << difference;
  }
}

TEST(NotificationToProtoTest, StateCountsAndTimes) {
  NotificationRecord record;
  record.notification_id = "n-1";
  record.target = {.kind = TargetKind::kDeviceIds, .values = {"s1"}};
  record.counts = {.pending = 1,
                   .pending_attempted = 1,
                   .delivered = 2,
                   .no_subscriber = 1,
                   .received = 1,
                   .failed = 3,
                   .expired = 4,
                   .cancelled = 5};
  record.state = NotificationState::kDelivering;
  record.create_time = kTime;
  v1::Notification proto;
  NotificationToProto(record, &proto);
  EXPECT_EQ(proto.notification_id(), "n-1");
  EXPECT_EQ(proto.state(), v1::DELIVERING);
  EXPECT_EQ(proto.target_count(), 17);
  EXPECT_EQ(proto.delivered_count(), 4) << "delivered + no_subscriber + received";
  EXPECT_EQ(proto.failed_count(), 7) << "failed + expired";
  EXPECT_EQ(proto.pending_count(), 1);
  EXPECT_EQ(proto.create_time().nanos(), 123456789);
  EXPECT_FALSE(proto.has_expire_time());
  EXPECT_FALSE(proto.options().has_ttl());
  EXPECT_FALSE(proto.options().has_send_time());

  record.expire_time = kTime + absl::Minutes(5);
  NotificationToProto(record, &proto);
  EXPECT_EQ(proto.expire_time().seconds(), 1769250600 + 300);
}

TEST(NotificationStateToProtoTest, EveryState) {
  const std::pair<NotificationState, v1::NotificationState> cases[] = {
      {NotificationState::kScheduled, v1::SCHEDULED},
      {NotificationState::kAccepted, v1::ACCEPTED},
      {NotificationState::kDelivering, v1::DELIVERING},
      {NotificationState::kDelivered, v1::DELIVERED},
      {NotificationState::kPartiallyDelivered, v1::PARTIALLY_DELIVERED},
      {NotificationState::kFailed, v1::FAILED},
      {NotificationState::kExpired, v1::EXPIRED},
      {NotificationState::kCancelled, v1::CANCELLED}};
  for (const auto& [state, proto_state] : cases) {
    EXPECT_EQ(NotificationStateToProto(state), proto_state) << NotificationStateName(state);
  }
}

TEST(DeliveryToProtoTest, EveryStateAndOptionalTimes) {
  const std::pair<DeliveryState, v1::DeliveryState> cases[] = {
      {DeliveryState::kPending, v1::PENDING},
      {DeliveryState::kDelivered, v1::DELIVERED_TO_BROKER},
      {DeliveryState::kNoSubscriber, v1::NO_SUBSCRIBER},
      {DeliveryState::kReceived, v1::RECEIVED},
      {DeliveryState::kFailed, v1::DELIVERY_FAILED},
      {DeliveryState::kExpired, v1::DELIVERY_EXPIRED},
      {DeliveryState::kCancelled, v1::DELIVERY_CANCELLED}};
  for (const auto& [state, proto_state] : cases) {
    DeliveryRecord record;
    record.device_id = "s1";
    record.topic = "devices/s1/notifications";
    record.state = state;
    record.attempts = 3;
    record.last_error = "connection lost";
    v1::Delivery proto;
    DeliveryToProto(record, &proto);
    EXPECT_EQ(proto.state(), proto_state) << DeliveryStateName(state);
    EXPECT_EQ(proto.device_id(), "s1");
    EXPECT_EQ(proto.topic(), "devices/s1/notifications");
    EXPECT_EQ(proto.attempts(), 3);
    EXPECT_EQ(proto.last_error(), "connection lost");
    EXPECT_FALSE(proto.has_last_attempt_time());
    EXPECT_FALSE(proto.has_complete_time());
  }
  DeliveryRecord record;
  record.last_attempt_time = kTime;
  record.complete_time = kTime + absl::Seconds(1);
  v1::Delivery proto;
  DeliveryToProto(record, &proto);
  EXPECT_EQ(proto.last_attempt_time().nanos(), 123456789);
  EXPECT_EQ(proto.complete_time().seconds(), 1769250601);
}

}  // namespace
}  // namespace herald::api
