// Tests of service/core/types.h: state names and DeriveNotificationState.
#include "service/core/types.h"

#include <ostream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herald {
namespace {

using ::testing::Optional;

// --- DeriveNotificationState ----------------------------------------------

struct StateCase {
  std::string name;
  DeliveryStateCounts counts;
  bool scheduled;
  NotificationState expected;
};

// gtest prints the case by name instead of as bytes.
void PrintTo(const StateCase& c, std::ostream* os) { *os << c.name; }

class DeriveNotificationStateTest : public ::testing::TestWithParam<StateCase> {};

TEST_P(DeriveNotificationStateTest, FollowsFromDeliveries) {
  const StateCase& c = GetParam();
  EXPECT_EQ(NotificationStateName(DeriveNotificationState(c.counts, c.scheduled)),
            NotificationStateName(c.expected));
}

INSTANTIATE_TEST_SUITE_P(
    Table, DeriveNotificationStateTest,
    ::testing::Values(
        StateCase{"NoDeliveries", {}, false, NotificationState::kAccepted},
        StateCase{"FreshPending", {.pending = 3}, false, NotificationState::kAccepted},
        StateCase{"FreshPendingScheduled", {.pending = 3}, true, NotificationState::kScheduled},
        StateCase{"PendingAttempted", {.pending = 3, .pending_attempted = 1}, false,
                  NotificationState::kDelivering},
        // Being retried outranks "scheduled": sending has begun.
        StateCase{"PendingAttemptedScheduled", {.pending = 3, .pending_attempted = 1}, true,
                  NotificationState::kDelivering},
        StateCase{"PendingAndSomeDone", {.pending = 2, .delivered = 1}, false,
                  NotificationState::kDelivering},
        StateCase{"PendingAndSomeFailed", {.pending = 1, .failed = 1}, true,
                  NotificationState::kDelivering},
        StateCase{"AllDelivered", {.delivered = 3}, false, NotificationState::kDelivered},
        StateCase{"AllSucceededMixed", {.delivered = 1, .no_subscriber = 1, .received = 1}, false,
                  NotificationState::kDelivered},
        StateCase{"OnlyNoSubscriber", {.no_subscriber = 2}, false, NotificationState::kDelivered},
        StateCase{"DeliveredAndFailed", {.delivered = 1, .failed = 1}, false,
                  NotificationState::kPartiallyDelivered},
        StateCase{"ReceivedAndExpired", {.received = 1, .expired = 2}, false,
                  NotificationState::kPartiallyDelivered},
        StateCase{"DeliveredAndCancelled", {.delivered = 1, .cancelled = 1}, false,
                  NotificationState::kPartiallyDelivered},
        StateCase{"AllCancelled", {.cancelled = 2}, false, NotificationState::kCancelled},
        StateCase{"CancelledAndFailed", {.failed = 1, .cancelled = 1}, false,
                  NotificationState::kCancelled},
        StateCase{"CancelledAndExpired", {.expired = 1, .cancelled = 1}, false,
                  NotificationState::kCancelled},
        StateCase{"AllExpired", {.expired = 2}, false, NotificationState::kExpired},
        StateCase{"AllFailed", {.failed = 2}, false, NotificationState::kFailed},
        StateCase{"FailedAndExpired", {.failed = 1, .expired = 1}, false,
                  NotificationState::kFailed}),
    [](const ::testing::TestParamInfo<StateCase>& info) { return info.param.name; });

TEST(DeliveryStateCountsTest, TotalAndSucceeded) {
  const DeliveryStateCounts counts{.pending = 1,
                                   .pending_attempted = 1,  // a subset of pending
                                   .delivered = 2,
                                   .no_subscriber = 3,
                                   .received = 4,
                                   .failed = 5,
                                   .expired = 6,
                                   .cancelled = 7};
  EXPECT_EQ(counts.Total(), 28);
  EXPECT_EQ(counts.Succeeded(), 9);
}

// --- Names ------------------------------------------------------------------

TEST(NamesTest, DeliveryStatesRoundTrip) {
  const DeliveryState all[] = {DeliveryState::kPending,  DeliveryState::kDelivered,
                               DeliveryState::kNoSubscriber, DeliveryState::kReceived,
                               DeliveryState::kFailed,   DeliveryState::kExpired,
                               DeliveryState::kCancelled};
  for (DeliveryState state : all) {
    EXPECT_THAT(DeliveryStateFromName(DeliveryStateName(state)), Optional(state))
        << DeliveryStateName(state);
  }
  // The names are stored in the database: they must not change.
  EXPECT_EQ(DeliveryStateName(DeliveryState::kNoSubscriber), "no_subscriber");
  EXPECT_EQ(DeliveryStateName(DeliveryState::kCancelled), "cancelled");
  EXPECT_EQ(DeliveryStateFromName("DELIVERED"), std::nullopt);
  EXPECT_EQ(DeliveryStateFromName(""), std::nullopt);
}

TEST(NamesTest, TargetKindsRoundTrip) {
  for (TargetKind kind :
       {TargetKind::kDeviceIds, TargetKind::kOwnerIds, TargetKind::kGroups, TargetKind::kTopic}) {
    EXPECT_THAT(TargetKindFromName(TargetKindName(kind)), Optional(kind));
  }
  EXPECT_EQ(TargetKindName(TargetKind::kDeviceIds), "device_ids");
  EXPECT_EQ(TargetKindFromName("devices"), std::nullopt);
}

TEST(NamesTest, PriorityAndNotificationStateNames) {
  EXPECT_EQ(PriorityName(Priority::kLow), "low");
  EXPECT_EQ(PriorityName(Priority::kNormal), "normal");
  EXPECT_EQ(PriorityName(Priority::kHigh), "high");
  EXPECT_EQ(PriorityName(Priority::kUrgent), "urgent");
  EXPECT_EQ(NotificationStateName(NotificationState::kPartiallyDelivered),
            "partially_delivered");
  EXPECT_EQ(NotificationStateName(NotificationState::kScheduled), "scheduled");
}

}  // namespace
}  // namespace herald
