// Tests of service/core/ids.h.
#include "service/core/ids.h"

#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

TEST(NewUuidTest, IsAVersion7Rfc9562Uuid) {
  const std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewUuid();
    ASSERT_EQ(id.size(), 36u) << id;
    ASSERT_TRUE(std::regex_match(id, uuid)) << id;
  }
}

// The first 48 bits are the Unix time in milliseconds when it was made.
TEST(NewUuidTest, StartsWithItsTimeInMilliseconds) {
  const int64_t before = absl::ToUnixMillis(absl::Now());
  const std::string id = NewUuid();
  const int64_t after = absl::ToUnixMillis(absl::Now());
  int64_t millis = 0;
  ASSERT_TRUE(absl::SimpleHexAtoi(id.substr(0, 8) + id.substr(9, 4), &millis)) << id;
  EXPECT_GE(millis, before);
  EXPECT_LE(millis, after);
}

// Ids made one after another in one thread sort in the order they were
// made (to the 1/4096 of a millisecond), so an index of them grows at its end.
TEST(NewUuidTest, LaterIdsSortAfterEarlierOnes) {
  std::string previous = NewUuid();
  int out_of_order = 0;
  for (int i = 0; i < 500; ++i) {
    absl::SleepFor(absl::Microseconds(300));  // more than one sub-millisecond step
    const std::string id = NewUuid();
    if (id.substr(0, 18) <= previous.substr(0, 18)) ++out_of_order;
    previous = id;
  }
  EXPECT_EQ(out_of_order, 0);
}

TEST(NewUuidTest, IsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100000; ++i) ASSERT_TRUE(seen.insert(NewUuid()).second);
}

TEST(NewUuidTest, IsUniqueAcrossThreads) {
  // Each thread has its own generator; they must not share a seed.
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&ids, t] {
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(NewUuid());
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::set<std::string> seen;
  for (const auto& list : ids) seen.insert(list.begin(), list.end());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace herald
