#include "service/auth/rate_limiter.h"

#include "gtest/gtest.h"
#include "tests/testing/fakes/fake_clock.h"

namespace herald {
namespace {

using ::herald::testing::FakeClock;

TEST(TenantRateLimiterTest, BurstThenRateThenRetryHint) {
  FakeClock clock;
  TenantRateLimiter limiter({.rate = 10, .burst = 20, .clock = [&] { return clock.Now(); }});
  absl::Duration retry_after;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter.TryAcquire("acme", 1, &retry_after)) << i;
  ASSERT_FALSE(limiter.TryAcquire("acme", 1, &retry_after));
  EXPECT_EQ(retry_after, absl::Milliseconds(100));  // one unit at 10/s
  clock.Advance(absl::Milliseconds(100));
  EXPECT_TRUE(limiter.TryAcquire("acme", 1, &retry_after));
  EXPECT_FALSE(limiter.TryAcquire("acme", 1, &retry_after));
  // A second has refilled ten units, not more.
  clock.Advance(absl::Seconds(1));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(limiter.TryAcquire("acme", 1, &retry_after)) << i;
  EXPECT_FALSE(limiter.TryAcquire("acme", 1, &retry_after));
}

TEST(TenantRateLimiterTest, TenantsHaveTheirOwnBuckets) {
  FakeClock clock;
  TenantRateLimiter limiter({.rate = 1, .burst = 2, .clock = [&] { return clock.Now(); }});
  absl::Duration retry_after;
  EXPECT_TRUE(limiter.TryAcquire("acme", 2, &retry_after));
  EXPECT_FALSE(limiter.TryAcquire("acme", 1, &retry_after));
  EXPECT_TRUE(limiter.TryAcquire("globex", 2, &retry_after));
}

TEST(TenantRateLimiterTest, CostsAboveTheBurstWaitForAFullBucket) {
  FakeClock clock;
  TenantRateLimiter limiter({.rate = 100, .burst = 100, .clock = [&] { return clock.Now(); }});
  absl::Duration retry_after;
  ASSERT_TRUE(limiter.TryAcquire("acme", 50, &retry_after));
  ASSERT_FALSE(limiter.TryAcquire("acme", 500, &retry_after));
  EXPECT_EQ(retry_after, absl::Milliseconds(500));  // 50 missing to a full bucket at 100/s
}

TEST(TenantRateLimiterTest, ZeroRateIsUnlimited) {
  TenantRateLimiter limiter({.rate = 0});
  EXPECT_TRUE(limiter.unlimited());
  absl::Duration retry_after;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(limiter.TryAcquire("acme", 1000, &retry_after));
}

}  // namespace
}  // namespace herald
