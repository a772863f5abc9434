// Tests of service/core/topic_pattern.h: from a topic template to the
// subscription filter, and from an incoming topic back to its device, with
// the HomeSync and Shelly layouts of the seed documents.
#include "service/core/topic_pattern.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/topic.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::Field;
using ::testing::ElementsAre;
using ::testing::Pair;

TopicPattern MustCompile(const std::string& topic_template) {
  absl::StatusOr<TopicPattern> pattern = TopicPattern::Compile(topic_template, "--t");
  EXPECT_TRUE(pattern.ok()) << pattern.status();
  return *std::move(pattern);
}

TEST(TopicPatternTest, DefaultTemplates) {
  const TopicPattern responses = MustCompile(kDefaultResponseTopicTemplate);
  EXPECT_EQ(responses.filter(), "devices/+/responses");
  EXPECT_TRUE(responses.has_device_id());
  EXPECT_THAT(responses.Match("devices/sensor-001/responses"),
              Optional(Field(&TopicMatch::device_id, "sensor-001")));
  EXPECT_EQ(responses.Match("devices/sensor-001/responses/extra"), std::nullopt);
  EXPECT_EQ(responses.Match("devices/sensor-001"), std::nullopt);
  EXPECT_EQ(responses.Match("other/sensor-001/responses"), std::nullopt);

  EXPECT_EQ(MustCompile(kDefaultPresenceTopicTemplate).filter(), "devices/+/status/online");
}

TEST(TopicPatternTest, HomeSyncLayoutYieldsDeviceAndMetadata) {
  const TopicPattern presence =
      MustCompile("homesync/{meta.home_id}/nodes/{device_id}/status/online");
  EXPECT_EQ(presence.filter(), "homesync/+/nodes/+/status/online");
  const std::optional<TopicMatch> match = presence.Match("homesync/abc123/nodes/node-001/status/online");
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->device_id, "node-001");
  EXPECT_THAT(match->metadata, ElementsAre(Pair("home_id", "abc123")));
  EXPECT_EQ(match->owner_id, "");

  EXPECT_EQ(MustCompile("homesync/{meta.home_id}/nodes/{device_id}/response/command").filter(),
            "homesync/+/nodes/+/response/command");
}

TEST(TopicPatternTest, ShellyLayoutWithPrefixInsideALevel) {
  const TopicPattern online = MustCompile("shellies/shellyproplus3-{device_id}/online");
  EXPECT_EQ(online.filter(), "shellies/+/online");
  EXPECT_THAT(online.Match("shellies/shellyproplus3-abc/online"),
              Optional(Field(&TopicMatch::device_id, "abc")));
  // The level must carry the literal part, and the placeholder must not be empty.
  EXPECT_EQ(online.Match("shellies/shellyplusem3-abc/online"), std::nullopt);
  EXPECT_EQ(online.Match("shellies/shellyproplus3-/online"), std::nullopt);

  const TopicPattern suffix = MustCompile("shellies/{device_id}.relay/events/rpc");
  EXPECT_THAT(suffix.Match("shellies/pro3.relay/events/rpc"),
              Optional(Field(&TopicMatch::device_id, "pro3")));
  EXPECT_EQ(suffix.Match("shellies/pro3/events/rpc"), std::nullopt);
}

TEST(TopicPatternTest, OwnerPlatformAndRepeatedPlaceholders) {
  const TopicPattern pattern = MustCompile("{platform}/{owner_id}/{device_id}/x/{device_id}");
  EXPECT_EQ(pattern.filter(), "+/+/+/x/+");
  const std::optional<TopicMatch> match = pattern.Match("mqtt/alice/d1/x/d1");
  ASSERT_TRUE(match.has_value());
  EXPECT_EQ(match->platform, "mqtt");
  EXPECT_EQ(match->owner_id, "alice");
  EXPECT_EQ(match->device_id, "d1");
  EXPECT_EQ(pattern.Match("mqtt/alice/d1/x/d2"), std::nullopt) << "the same placeholder differs";
}

TEST(TopicPatternTest, TemplateWithoutDeviceId) {
  const TopicPattern pattern = MustCompile("herald/responses");
  EXPECT_FALSE(pattern.has_device_id());
  EXPECT_EQ(pattern.filter(), "herald/responses");
  EXPECT_THAT(pattern.Match("herald/responses"), Optional(Field(&TopicMatch::device_id, "")));
}

TEST(TopicPatternTest, RefusesWhatCannotBeMappedBack) {
  EXPECT_THAT(TopicPattern::Compile("a/{device_id}-{meta.x}/b", "--presence_topic_template"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--presence_topic_template: the topic level")));
  EXPECT_THAT(TopicPattern::Compile("a/{nope}/b", "--t"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown placeholder")));
  EXPECT_THAT(TopicPattern::Compile("a/+/b", "--t"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wildcards")));
  EXPECT_THAT(TopicPattern::Compile("", "--t"), StatusIs(absl::StatusCode::kInvalidArgument));
}

// Found by tests/fuzz/topic_pattern_fuzzer: Compile threw std::out_of_range
// (a crash at start) when a {meta.KEY} placeholder's key held a '/', which
// split the placeholder over two levels.
TEST(TopicPatternTest, RefusesAMetadataKeyThatSpansLevels) {
  EXPECT_THAT(TopicPattern::Compile("a/{meta.x/{dev}/b", "--t"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("{meta.x/{dev}")));
  EXPECT_THAT(TopicPattern::Compile("homesync/{meta.home/id}/nodes/{device_id}", "--t"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("without '/'")));
}

// Found by tests/fuzz/topic_pattern_fuzzer: Match took "$SYS/..." for a
// device, although no expansion of the template starts with '$' and the
// filter ("+/...") never receives such a topic.
TEST(TopicPatternTest, BrokerTopicsNeverMatch) {
  const TopicPattern pattern = MustCompile("{device_id}/rpc-{owner_id}.out/{platform}");
  EXPECT_EQ(pattern.filter(), "+/+/+");
  EXPECT_EQ(pattern.Match("$x/rpc-y.out/z"), std::nullopt);
  EXPECT_EQ(MustCompile("{device_id}").Match("$SYS"), std::nullopt);
  EXPECT_THAT(pattern.Match("x/rpc-y.out/$z"), Optional(Field(&TopicMatch::platform, "$z")));
}

TEST(TopicPatternTest, MatchesDeviceChecksEveryRequiredValue) {
  Device device;
  device.device_id = "node-001";
  device.owner_id = "alice";
  device.metadata = {{"home_id", "abc"}, {"room", "kitchen"}};
  EXPECT_TRUE((TopicMatch{.device_id = "node-001", .metadata = {{"home_id", "abc"}}})
                  .MatchesDevice(device));
  EXPECT_FALSE((TopicMatch{.device_id = "node-001", .metadata = {{"home_id", "xyz"}}})
                   .MatchesDevice(device));
  EXPECT_FALSE((TopicMatch{.metadata = {{"floor", "1"}}}).MatchesDevice(device));
  EXPECT_FALSE((TopicMatch{.device_id = "node-002"}).MatchesDevice(device));
  EXPECT_FALSE((TopicMatch{.owner_id = "bob"}).MatchesDevice(device));
  EXPECT_TRUE(TopicMatch{}.MatchesDevice(device));
}

TEST(TopicPatternTest, ExpandedTopicsMatchTheirOwnPattern) {
  Device device;
  device.device_id = "node-001";
  device.owner_id = "alice";
  device.metadata = {{"home_id", "abc123"}};
  for (const char* topic_template :
       {"homesync/{meta.home_id}/nodes/{device_id}/response/command",
        "shellies/shelly-{device_id}/events/rpc", "{owner_id}/{device_id}/r",
        kDefaultResponseTopicTemplate}) {
    absl::StatusOr<std::string> topic = ExpandTopicTemplate(topic_template, device);
    ASSERT_TRUE(topic.ok()) << topic.status();
    const std::optional<TopicMatch> match = MustCompile(topic_template).Match(*topic);
    ASSERT_TRUE(match.has_value()) << topic_template;
    EXPECT_TRUE(match->MatchesDevice(device)) << topic_template;
  }
}

TEST(TopicPatternTest, MatchInAnyTenantTellsThePrefix) {
  absl::StatusOr<TopicPattern> pattern =
      TopicPattern::Compile("devices/{device_id}/responses", "--t");
  ASSERT_TRUE(pattern.ok()) << pattern.status();
  EXPECT_EQ(AnyTenantFilter(*pattern), "+/devices/+/responses");
  std::optional<TenantTopicMatch> plain = MatchInAnyTenant(*pattern, "devices/d1/responses");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->topic_prefix, "");
  EXPECT_EQ(plain->match.device_id, "d1");
  std::optional<TenantTopicMatch> tenant = MatchInAnyTenant(*pattern, "acme/devices/d1/responses");
  ASSERT_TRUE(tenant.has_value());
  EXPECT_EQ(tenant->topic_prefix, "acme");
  EXPECT_EQ(tenant->match.device_id, "d1");
  EXPECT_FALSE(MatchInAnyTenant(*pattern, "$SYS/devices/d1/responses").has_value());
  EXPECT_FALSE(MatchInAnyTenant(*pattern, "/devices/d1/responses").has_value());
  EXPECT_FALSE(MatchInAnyTenant(*pattern, "a/b/devices/d1/responses").has_value());
}

}  // namespace
}  // namespace herald
