// Tests of service/core/topic.h: publish-topic rules and topic templates.
#include "service/core/topic.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::IsOkAndHolds;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kHomeSyncTemplate[] = "homesync/{meta.home_id}/nodes/{device_id}/command/relay";
constexpr char kShellyTemplate[] = "shellies/{device_id}/command/switch:0/set";

// kInvalidArgument whose message starts with the field name.
::testing::Matcher<absl::Status> InvalidNaming(const std::string& field) {
  return StatusIs(absl::StatusCode::kInvalidArgument, StartsWith(field + ": "));
}

Device MakeDevice(std::string device_id) {
  Device device;
  device.tenant_id = kDefaultTenant;
  device.device_id = std::move(device_id);
  device.owner_id = "alice";
  return device;
}

// --- ValidatePublishTopic -------------------------------------------------

TEST(ValidatePublishTopicTest, AcceptsOrdinaryTopics) {
  EXPECT_THAT(ValidatePublishTopic("devices/sensor-001/notifications", "f"), IsOk());
  EXPECT_THAT(ValidatePublishTopic("a", "f"), IsOk());
  EXPECT_THAT(ValidatePublishTopic("shellies/s1/command/switch:0/set", "f"), IsOk());
  EXPECT_THAT(ValidatePublishTopic("a/$b", "f"), IsOk()) << "'$' only matters first";
}

TEST(ValidatePublishTopicTest, AllowsEmptyLevels) {
  EXPECT_THAT(ValidatePublishTopic("a//b", "f"), IsOk());
  EXPECT_THAT(ValidatePublishTopic("/a", "f"), IsOk());
  EXPECT_THAT(ValidatePublishTopic("a/", "f"), IsOk());
  EXPECT_THAT(ValidatePublishTopic("/", "f"), IsOk());
}

TEST(ValidatePublishTopicTest, RejectsEmpty) {
  EXPECT_THAT(ValidatePublishTopic("", "target.topic"), InvalidNaming("target.topic"));
}

TEST(ValidatePublishTopicTest, RejectsWildcards) {
  EXPECT_THAT(ValidatePublishTopic("devices/+/notifications", "target.topic"),
              InvalidNaming("target.topic"));
  EXPECT_THAT(ValidatePublishTopic("devices/#", "target.topic"), InvalidNaming("target.topic"));
  EXPECT_THAT(ValidatePublishTopic("a+b", "target.topic"), InvalidNaming("target.topic"));
  EXPECT_THAT(ValidatePublishTopic("#", "target.topic"), InvalidNaming("target.topic"));
}

TEST(ValidatePublishTopicTest, RejectsNul) {
  EXPECT_THAT(ValidatePublishTopic(std::string("a\0b", 3), "target.topic"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
}

TEST(ValidatePublishTopicTest, RejectsLeadingDollar) {
  EXPECT_THAT(ValidatePublishTopic("$SYS/broker/uptime", "target.topic"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'$'")));
  EXPECT_THAT(ValidatePublishTopic("$", "target.topic"), InvalidNaming("target.topic"));
}

TEST(ValidatePublishTopicTest, LengthLimitIs65535Bytes) {
  EXPECT_THAT(ValidatePublishTopic(std::string(kMaxTopicBytes, 'a'), "f"), IsOk());
  EXPECT_THAT(ValidatePublishTopic(std::string(kMaxTopicBytes + 1, 'a'), "f"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("65535")));
  // The limit counts bytes, not characters: 21846 three-byte characters
  // are 65538 bytes.
  std::string wide;
  for (int i = 0; i < 21846; ++i) wide += "\xE2\x82\xAC";  // U+20AC
  EXPECT_THAT(ValidatePublishTopic(wide, "f"), InvalidNaming("f"));
}

TEST(ValidatePublishTopicTest, AcceptsMultibyteUtf8) {
  EXPECT_THAT(ValidatePublishTopic("caf\xC3\xA9/\xE6\x97\xA5\xE6\x9C\xAC/\xF0\x9F\x98\x80", "f"),
              IsOk());
}

TEST(ValidatePublishTopicTest, RejectsInvalidUtf8) {
  const std::string cases[] = {
      "\xFF",                  // never valid in UTF-8
      "a/\xC3",                // truncated two-byte sequence
      "\xC3\x28",              // bad continuation byte
      "\xC0\xAF",              // overlong '/'
      "\xE0\x80\xAF",          // overlong three-byte form
      "\xED\xA0\x80",          // UTF-16 surrogate U+D800
      "\xF4\x90\x80\x80",      // beyond U+10FFFF
      "\x80",                  // lone continuation byte
  };
  for (const std::string& topic : cases) {
    EXPECT_THAT(ValidatePublishTopic(topic, "target.topic"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UTF-8")))
        << "topic bytes: " << ::testing::PrintToString(topic);
  }
}

// --- ValidateTopicLevel ---------------------------------------------------

TEST(ValidateTopicLevelTest, AcceptsOneLevel) {
  EXPECT_THAT(ValidateTopicLevel("home-42", "f"), IsOk());
  EXPECT_THAT(ValidateTopicLevel("switch:0", "f"), IsOk());
}

TEST(ValidateTopicLevelTest, RejectsWhatWouldChangeTheTopicShape) {
  EXPECT_THAT(ValidateTopicLevel("", "meta"), InvalidNaming("meta"));
  EXPECT_THAT(ValidateTopicLevel("a/b", "meta"), InvalidNaming("meta"));
  EXPECT_THAT(ValidateTopicLevel("a+", "meta"), InvalidNaming("meta"));
  EXPECT_THAT(ValidateTopicLevel("#", "meta"), InvalidNaming("meta"));
  EXPECT_THAT(ValidateTopicLevel(std::string("a\0", 2), "meta"), InvalidNaming("meta"));
  EXPECT_THAT(ValidateTopicLevel("\xFF", "meta"), InvalidNaming("meta"));
}

// --- ValidateTopicTemplate ------------------------------------------------

TEST(ValidateTopicTemplateTest, AcceptsTheDocumentedTemplates) {
  for (const char* topic_template :
       {kHomeSyncTemplate, kShellyTemplate, kDefaultNotificationTopicTemplate,
        kDefaultCommandTopicTemplate, kDefaultResponseTopicTemplate,
        kDefaultPresenceTopicTemplate, kDefaultReceiptTopicTemplate,
        "{owner_id}/{platform}/{device_id}", "{device_id}"}) {
    EXPECT_THAT(ValidateTopicTemplate(topic_template, "f"), IsOk()) << topic_template;
  }
}

TEST(ValidateTopicTemplateTest, RejectsUnknownPlaceholders) {
  EXPECT_THAT(ValidateTopicTemplate("devices/{device}/n", "mqtt.notification_topic"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(StartsWith("mqtt.notification_topic: "),
                             HasSubstr("unknown placeholder {device}"))));
  EXPECT_THAT(ValidateTopicTemplate("devices/{meta.}/n", "f"), InvalidNaming("f"))
      << "{meta.} names no key";
  EXPECT_THAT(ValidateTopicTemplate("devices/{}/n", "f"), InvalidNaming("f"));
  EXPECT_THAT(ValidateTopicTemplate("devices/{DEVICE_ID}/n", "f"), InvalidNaming("f"));
}

// Found by tests/fuzz/topic_pattern_fuzzer: a metadata key may not hide a
// level separator or a second placeholder.
TEST(ValidateTopicTemplateTest, RejectsMetadataKeysThatCouldSpanLevels) {
  for (const std::string& topic_template : std::vector<std::string>{
           "a/{meta.x/{dev}/b", "a/{meta.x/y}/b", "{meta.{}", "{meta.a+}", "{meta.#}",
        std::string("{meta.a\0}", 9), "{meta.\xFF}"}) {
    EXPECT_THAT(ValidateTopicTemplate(topic_template, "f"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(StartsWith("f: "), HasSubstr("must be UTF-8 without '/'"))))
        << topic_template;
  }
  EXPECT_THAT(ValidateTopicTemplate("a/{meta.home-id.v2}/b", "f"), IsOk());
}

TEST(ValidateTopicTemplateTest, RejectsUnbalancedBraces) {
  EXPECT_THAT(ValidateTopicTemplate("devices/{device_id/n", "f"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unclosed '{'")));
  EXPECT_THAT(ValidateTopicTemplate("devices/device_id}/n", "f"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unbalanced '}'")));
  EXPECT_THAT(ValidateTopicTemplate("devices/{device_id}}", "f"), InvalidNaming("f"));
  EXPECT_THAT(ValidateTopicTemplate("{{device_id}}", "f"), InvalidNaming("f"));
}

TEST(ValidateTopicTemplateTest, RejectsLiteralsThatAreNoPublishTopic) {
  EXPECT_THAT(ValidateTopicTemplate("", "f"), InvalidNaming("f"));
  EXPECT_THAT(ValidateTopicTemplate("devices/+/{device_id}", "f"), InvalidNaming("f"));
  EXPECT_THAT(ValidateTopicTemplate("devices/{device_id}/#", "f"), InvalidNaming("f"));
  EXPECT_THAT(ValidateTopicTemplate("$SYS/{device_id}", "f"), InvalidNaming("f"));
  EXPECT_THAT(ValidateTopicTemplate(std::string("a\0/{device_id}", 14), "f"), InvalidNaming("f"));
}

// --- ExpandTopicTemplate --------------------------------------------------

TEST(ExpandTopicTemplateTest, HomeSync) {
  Device device = MakeDevice("relay-7");
  device.metadata["home_id"] = "home-42";
  EXPECT_THAT(ExpandTopicTemplate(kHomeSyncTemplate, device),
              IsOkAndHolds("homesync/home-42/nodes/relay-7/command/relay"));
}

TEST(ExpandTopicTemplateTest, Shelly) {
  EXPECT_THAT(ExpandTopicTemplate(kShellyTemplate, MakeDevice("shelly1-98CDAC2F")),
              IsOkAndHolds("shellies/shelly1-98CDAC2F/command/switch:0/set"));
}

TEST(ExpandTopicTemplateTest, OwnerPlatformAndDefaults) {
  const Device device = MakeDevice("s1");
  EXPECT_THAT(ExpandTopicTemplate("{owner_id}/{platform}/{device_id}", device),
              IsOkAndHolds("alice/mqtt/s1"));
  EXPECT_THAT(ExpandTopicTemplate(kDefaultNotificationTopicTemplate, device),
              IsOkAndHolds("devices/s1/notifications"));
  EXPECT_THAT(ExpandTopicTemplate("static/topic", device), IsOkAndHolds("static/topic"));
}

TEST(ExpandTopicTemplateTest, MissingMetadataKeyIsFailedPrecondition) {
  Device device = MakeDevice("relay-7");
  device.metadata["site"] = "x";
  EXPECT_THAT(ExpandTopicTemplate(kHomeSyncTemplate, device),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("relay-7"), HasSubstr("home_id"))));
}

TEST(ExpandTopicTemplateTest, EmptyOwnerIsFailedPrecondition) {
  Device device = MakeDevice("s1");
  device.owner_id.clear();
  EXPECT_THAT(ExpandTopicTemplate("owners/{owner_id}/n", device),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("owner_id")));
}

TEST(ExpandTopicTemplateTest, ValueThatIsNotOneLevelIsRejected) {
  for (const char* value : {"a/b", "a+", "#", ""}) {
    Device device = MakeDevice("relay-7");
    device.metadata["home_id"] = value;
    EXPECT_THAT(ExpandTopicTemplate(kHomeSyncTemplate, device),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("home_id")))
        << "value \"" << value << "\"";
  }
}

TEST(ExpandTopicTemplateTest, ExpansionThatStartsWithDollarIsRejected) {
  Device device = MakeDevice("s1");
  device.metadata["root"] = "$SYS";  // a fine level, but not at the start
  EXPECT_THAT(ExpandTopicTemplate("{meta.root}/x", device),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ExpandTopicTemplate("x/{meta.root}", device), IsOkAndHolds("x/$SYS"));
}

TEST(ExpandTopicTemplateTest, MalformedTemplateIsInvalidArgument) {
  EXPECT_THAT(ExpandTopicTemplate("devices/{nope}", MakeDevice("s1")),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ExpandTopicTemplate("devices/{device_id", MakeDevice("s1")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// --- NotificationTopicFor -------------------------------------------------

TEST(NotificationTopicForTest, DeviceTopicWinsOverTemplate) {
  Device device = MakeDevice("relay-7");
  device.topic = "custom/relay-7";
  // The template would fail (no home_id); the device's own topic is used.
  EXPECT_THAT(NotificationTopicFor(device, kHomeSyncTemplate), IsOkAndHolds("custom/relay-7"));
}

TEST(NotificationTopicForTest, FallsBackToTemplate) {
  Device device = MakeDevice("relay-7");
  device.metadata["home_id"] = "h1";
  EXPECT_THAT(NotificationTopicFor(device, kHomeSyncTemplate),
              IsOkAndHolds("homesync/h1/nodes/relay-7/command/relay"));
  device.metadata.clear();
  EXPECT_THAT(NotificationTopicFor(device, kHomeSyncTemplate),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace herald
