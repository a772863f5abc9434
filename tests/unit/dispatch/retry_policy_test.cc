// Tests of service/dispatch/retry_policy.h, with a constant jitter.
#include "service/dispatch/retry_policy.h"

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

RetryOptions Options() {
  return {.max_attempts = 5, .initial_backoff = absl::Seconds(1), .max_backoff = absl::Seconds(60)};
}

TEST(RetryPolicyTest, BackoffDoublesUpToTheCap) {
  // Jitter 0 gives the bottom of the "equal jitter" range: half the backoff.
  const RetryPolicy policy(Options(), [] { return 0.0; });
  EXPECT_EQ(policy.BackoffAfter(1), absl::Milliseconds(500));
  EXPECT_EQ(policy.BackoffAfter(2), absl::Seconds(1));
  EXPECT_EQ(policy.BackoffAfter(3), absl::Seconds(2));
  EXPECT_EQ(policy.BackoffAfter(4), absl::Seconds(4));
  EXPECT_EQ(policy.BackoffAfter(6), absl::Seconds(16));
  EXPECT_EQ(policy.BackoffAfter(7), absl::Seconds(30)) << "64 s capped to 60 s";
  EXPECT_EQ(policy.BackoffAfter(8), absl::Seconds(30));
  EXPECT_EQ(policy.BackoffAfter(1000), absl::Seconds(30)) << "no overflow for many attempts";
}

TEST(RetryPolicyTest, JitterScalesIntoTheUpperHalf) {
  const RetryPolicy half(Options(), [] { return 0.5; });
  EXPECT_EQ(half.BackoffAfter(3), absl::Seconds(3));  // 4 s: 2 + 2 * 0.5
  const RetryPolicy top(Options(), [] { return 0.999; });
  EXPECT_LT(top.BackoffAfter(3), absl::Seconds(4));
  EXPECT_GT(top.BackoffAfter(3), absl::Milliseconds(3990));
  EXPECT_LT(top.BackoffAfter(50), absl::Seconds(60)) << "the cap holds with jitter";
}

TEST(RetryPolicyTest, DefaultJitterStaysInRange) {
  const RetryPolicy policy(Options());
  for (int i = 0; i < 1000; ++i) {
    const absl::Duration backoff = policy.BackoffAfter(3);
    ASSERT_GE(backoff, absl::Seconds(2));
    ASSERT_LT(backoff, absl::Seconds(4));
  }
}

TEST(RetryPolicyTest, NonPowerOfTwoCap) {
  const RetryPolicy policy(
      {.max_attempts = 5, .initial_backoff = absl::Milliseconds(300), .max_backoff = absl::Seconds(1)},
      [] { return 0.0; });
  EXPECT_EQ(policy.BackoffAfter(1), absl::Milliseconds(150));
  EXPECT_EQ(policy.BackoffAfter(2), absl::Milliseconds(300));
  EXPECT_EQ(policy.BackoffAfter(3), absl::Milliseconds(500)) << "1.2 s capped to 1 s";
}

TEST(RetryPolicyTest, AcknowledgedIsDelivered) {
  const RetryPolicy policy(Options(), [] { return 0.0; });
  const DeliveryOutcome outcome = policy.Decide(42, 1, absl::OkStatus(), false);
  EXPECT_EQ(outcome.delivery_id, 42);
  EXPECT_EQ(outcome.state, DeliveryState::kDelivered);
  EXPECT_EQ(outcome.retry_after, absl::ZeroDuration());
  EXPECT_THAT(outcome.error, IsEmpty());
}

TEST(RetryPolicyTest, AcknowledgedWithoutSubscriber) {
  const RetryPolicy policy(Options(), [] { return 0.0; });
  EXPECT_EQ(policy.Decide(42, 5, absl::OkStatus(), true).state, DeliveryState::kNoSubscriber);
}

TEST(RetryPolicyTest, PermanentErrorsFailAtOnce) {
  const RetryPolicy policy(Options(), [] { return 0.0; });
  for (const absl::Status& status :
       {absl::PermissionDeniedError("not authorised"), absl::InvalidArgumentError("too large")}) {
    const DeliveryOutcome outcome = policy.Decide(7, 1, status, false);
    EXPECT_EQ(outcome.state, DeliveryState::kFailed) << status;
    EXPECT_EQ(outcome.delivery_id, 7);
    EXPECT_THAT(outcome.error, HasSubstr(std::string(status.message())));
  }
}

TEST(RetryPolicyTest, TransientErrorsAreRetriedWithBackoff) {
  const RetryPolicy policy(Options(), [] { return 0.0; });
  for (const absl::Status& status :
       {absl::UnavailableError("connection lost"), absl::ResourceExhaustedError("window full"),
        absl::DeadlineExceededError("slow"), absl::InternalError("odd")}) {
    for (int attempts = 1; attempts < 5; ++attempts) {
      const DeliveryOutcome outcome = policy.Decide(7, attempts, status, false);
      EXPECT_EQ(outcome.state, DeliveryState::kPending) << status << " attempt " << attempts;
      EXPECT_EQ(outcome.retry_after, policy.BackoffAfter(attempts));
      EXPECT_THAT(outcome.error, HasSubstr(std::string(status.message())));
    }
  }
}

TEST(RetryPolicyTest, GivesUpAtMaxAttempts) {
  const RetryPolicy policy(Options(), [] { return 0.0; });
  const absl::Status lost = absl::UnavailableError("connection lost");
  EXPECT_EQ(policy.Decide(7, 4, lost, false).state, DeliveryState::kPending);
  const DeliveryOutcome last = policy.Decide(7, 5, lost, false);
  EXPECT_EQ(last.state, DeliveryState::kFailed);
  EXPECT_THAT(last.error, HasSubstr("gave up after 5 attempts"));
  EXPECT_THAT(last.error, HasSubstr("connection lost"));
  EXPECT_EQ(policy.Decide(7, 9, lost, false).state, DeliveryState::kFailed)
      << "a lease-expired extra attempt also fails";
}

TEST(RetryPolicyTest, SingleAttemptPolicy) {
  const RetryPolicy policy({.max_attempts = 1}, [] { return 0.0; });
  EXPECT_EQ(policy.Decide(7, 1, absl::UnavailableError("x"), false).state,
            DeliveryState::kFailed);
}

}  // namespace
}  // namespace herald
