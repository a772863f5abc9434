#include "service/auth/tenant.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/topic.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::IsOk;
using ::herald::testing::StatusIs;
using ::testing::HasSubstr;

TEST(TenantTest, TenantIds) {
  EXPECT_THAT(ValidateTenantId("acme", "--tenant"), IsOk());
  EXPECT_THAT(ValidateTenantId("a-1_b", "--tenant"), IsOk());
  EXPECT_THAT(ValidateTenantId(std::string(64, 'a'), "--tenant"), IsOk());
  for (const char* bad : {"", "Acme", "-acme", "ac me", "acme/x", "a+b", "é"}) {
    EXPECT_THAT(ValidateTenantId(bad, "--tenant"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tenant")))
        << bad;
  }
  EXPECT_THAT(ValidateTenantId(std::string(65, 'a'), "--tenant"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(TenantTest, TopicPrefixesAreOneSafeLevel) {
  EXPECT_THAT(ValidateTenantTopicPrefix("acme", "--topic_prefix"), IsOk());
  EXPECT_THAT(ValidateTenantTopicPrefix("Acme.eu-1_x", "--topic_prefix"), IsOk());
  for (const char* bad : {"", "a/b", "+", "#", "$SYS", "a b", "acme/"}) {
    EXPECT_THAT(ValidateTenantTopicPrefix(bad, "--topic_prefix"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--topic_prefix")))
        << bad;
  }
}

TEST(TenantTest, TopicWithinPrefix) {
  EXPECT_TRUE(TopicWithinPrefix("anything/at/all", ""));
  EXPECT_TRUE(TopicWithinPrefix("acme/devices/x", "acme"));
  EXPECT_TRUE(TopicWithinPrefix("acme/x", "acme"));
  EXPECT_FALSE(TopicWithinPrefix("acme", "acme"));
  EXPECT_FALSE(TopicWithinPrefix("acme/", "acme"));
  EXPECT_FALSE(TopicWithinPrefix("acmecorp/x", "acme"));
  EXPECT_FALSE(TopicWithinPrefix("other/acme/x", "acme"));
  EXPECT_FALSE(TopicWithinPrefix("devices/x/notifications", "acme"));
}

TEST(TenantTest, TopicUnderPrefix) {
  EXPECT_EQ(TopicUnderPrefix("", "devices/x"), "devices/x");
  EXPECT_EQ(TopicUnderPrefix("acme", "devices/x"), "acme/devices/x");
  EXPECT_TRUE(TopicWithinPrefix(TopicUnderPrefix("acme", "devices/x"), "acme"));
}

TEST(TenantTest, OutsidePrefixErrorNamesFieldTopicAndPrefix) {
  const absl::Status error = TopicOutsidePrefixError("target.topic", "other/x", "acme", "acme");
  EXPECT_THAT(error, StatusIs(absl::StatusCode::kPermissionDenied,
                              HasSubstr("target.topic: topic \"other/x\"")));
  EXPECT_THAT(error.message(), HasSubstr("start with \"acme/\""));
}

}  // namespace
}  // namespace herald
