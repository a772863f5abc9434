// Tests of service/dispatch/log_limiter.h with a fake clock.
#include "service/dispatch/log_limiter.h"

#include <cstdint>

#include "gtest/gtest.h"
#include "tests/testing/fakes/fake_clock.h"

namespace herald {
namespace {

TEST(LogLimiterTest, LetsABurstThroughPerWindowAndCountsTheRest) {
  testing::FakeClock clock;
  LogLimiter limiter(2, absl::Seconds(10), clock.AsFunction());
  int64_t suppressed = -1;
  EXPECT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0);
  EXPECT_TRUE(limiter.Allow(&suppressed));
  EXPECT_FALSE(limiter.Allow(&suppressed));
  EXPECT_FALSE(limiter.Allow(&suppressed));
  EXPECT_FALSE(limiter.Allow(&suppressed));
  clock.Advance(absl::Seconds(9));
  EXPECT_FALSE(limiter.Allow(&suppressed)) << "the window has not ended";
  clock.Advance(absl::Seconds(1));
  EXPECT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 4) << "the first line of the new window tells what was left out";
  EXPECT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 0);
}

}  // namespace
}  // namespace herald
