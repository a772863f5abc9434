#include "providers/mqtt/topic_filter.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

TEST(MqttTopicFilterMatchesTest, ExactTopics) {
  EXPECT_TRUE(TopicFilterMatches("devices/s1/responses", "devices/s1/responses"));
  EXPECT_FALSE(TopicFilterMatches("devices/s1/responses", "devices/s2/responses"));
  EXPECT_FALSE(TopicFilterMatches("devices/s1", "devices/s1/responses"));
  EXPECT_FALSE(TopicFilterMatches("devices/s1/responses", "devices/s1"));
  EXPECT_FALSE(TopicFilterMatches("a/b", "a/b/"));
}

TEST(MqttTopicFilterMatchesTest, PlusMatchesExactlyOneLevel) {
  EXPECT_TRUE(TopicFilterMatches("devices/+/responses", "devices/s1/responses"));
  EXPECT_TRUE(TopicFilterMatches("devices/+/responses", "devices//responses"));  // empty level
  EXPECT_FALSE(TopicFilterMatches("devices/+/responses", "devices/a/b/responses"));
  EXPECT_FALSE(TopicFilterMatches("devices/+", "devices"));
  EXPECT_TRUE(TopicFilterMatches("+/+", "a/b"));
  EXPECT_TRUE(TopicFilterMatches("+", "a"));
  EXPECT_FALSE(TopicFilterMatches("+", "a/b"));
  EXPECT_TRUE(TopicFilterMatches("+/b", "/b"));
}

TEST(MqttTopicFilterMatchesTest, HashMatchesTheParentAndEverythingBelow) {
  EXPECT_TRUE(TopicFilterMatches("#", "a"));
  EXPECT_TRUE(TopicFilterMatches("#", "a/b/c"));
  EXPECT_TRUE(TopicFilterMatches("devices/#", "devices"));
  EXPECT_TRUE(TopicFilterMatches("devices/#", "devices/s1"));
  EXPECT_TRUE(TopicFilterMatches("devices/#", "devices/s1/status/online"));
  EXPECT_FALSE(TopicFilterMatches("devices/#", "device"));
  EXPECT_FALSE(TopicFilterMatches("devices/#", "other/s1"));
  EXPECT_TRUE(TopicFilterMatches("devices/+/status/#", "devices/s1/status"));
  EXPECT_TRUE(TopicFilterMatches("devices/+/status/#", "devices/s1/status/online"));
  EXPECT_FALSE(TopicFilterMatches("devices/+/status/#", "devices/s1/receipts"));
}

TEST(MqttTopicFilterMatchesTest, LeadingWildcardsSkipDollarTopics) {
  EXPECT_FALSE(TopicFilterMatches("#", "$SYS/broker/uptime"));
  EXPECT_FALSE(TopicFilterMatches("+/broker/uptime", "$SYS/broker/uptime"));
  EXPECT_TRUE(TopicFilterMatches("$SYS/#", "$SYS/broker/uptime"));
  EXPECT_TRUE(TopicFilterMatches("$SYS/+/uptime", "$SYS/broker/uptime"));
}

TEST(MqttStripSharedSubscriptionTest, RemovesShareGroup) {
  EXPECT_EQ(StripSharedSubscription("$share/herald/devices/+/responses"), "devices/+/responses");
  EXPECT_EQ(StripSharedSubscription("$share/g/#"), "#");
  EXPECT_EQ(StripSharedSubscription("devices/+/responses"), "devices/+/responses");
  EXPECT_EQ(StripSharedSubscription("$SYS/#"), "$SYS/#");
  EXPECT_TRUE(TopicFilterMatches(StripSharedSubscription("$share/herald/devices/+/responses"),
                                 "devices/s1/responses"));
}

TEST(MqttValidateTopicFilterTest, AcceptsValidFilters) {
  for (const char* filter :
       {"a", "a/b", "+", "#", "a/+/c", "a/#", "+/+/#", "/", "a//b", "$SYS/#",
        "$share/herald/devices/+/responses", "$share/g/#"}) {
    EXPECT_TRUE(ValidateTopicFilter(filter).ok()) << filter << ": " << ValidateTopicFilter(filter);
  }
}

TEST(MqttValidateTopicFilterTest, RejectsInvalidFilters) {
  const std::pair<std::string, const char*> cases[] = {
      {"", "empty"},
      {"a/#/b", "'#' is only allowed as the last level"},
      {"a/b#", "must stand alone"},
      {"a+/b", "must stand alone"},
      {"$share/g", "$share/GROUP/FILTER"},
      {"$share//a", "$share/GROUP/FILTER"},
      {"$share/g+/a", "$share/GROUP/FILTER"},
      {"$share/g/", "empty"},
      {std::string("a\0b", 3), "NUL"},
      {std::string(65536, 'a'), "longer than 65535 bytes"},
  };
  for (const auto& [filter, rule] : cases) {
    const absl::Status status = ValidateTopicFilter(filter);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << filter;
    EXPECT_TRUE(absl::StrContains(status.message(), rule)) << status;
  }
}

}  // namespace
}  // namespace herald
