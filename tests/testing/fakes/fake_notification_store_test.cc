// Tests of FakeNotificationStore: the outbox contract (idempotency, claims
// with leases, expiry, outcomes, cancel, lists, stats) that the dispatch
// tests rely on.
#include "tests/testing/fakes/fake_notification_store.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/fake_clock.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

DeliveryOutcome Outcome(int64_t id, DeliveryState state,
                        absl::Duration retry_after = absl::ZeroDuration(),
                        std::string error = "") {
  DeliveryOutcome outcome;
  outcome.delivery_id = id;
  outcome.state = state;
  outcome.retry_after = retry_after;
  outcome.error = std::move(error);
  return outcome;
}

class FakeNotificationStoreTest : public ::testing::Test {
 protected:
  FakeNotificationStoreTest() : store_(clock_.AsFunction()) {}

  NotificationRecord Record(const std::string& id, const std::string& key = "") {
    NotificationRecord record;
    record.tenant_id = kDefaultTenant;
    record.notification_id = id;
    record.options.idempotency_key = key;
    record.request_fingerprint = "fp";
    record.payload = "{}";
    return record;
  }

  static std::vector<ResolvedTarget> Targets(int count) {
    std::vector<ResolvedTarget> targets;
    for (int i = 0; i < count; ++i) {
      targets.push_back({.device_id = absl::StrCat("d", i), .topic = absl::StrCat("t/", i)});
    }
    return targets;
  }

  std::vector<int64_t> ClaimIds(int max) {
    std::vector<int64_t> ids;
    auto claimed = store_.ClaimDueDeliveries(max, absl::Seconds(30));
    EXPECT_TRUE(claimed.ok()) << claimed.status();
    if (claimed.ok()) {
      for (const ClaimedDelivery& delivery : *claimed) ids.push_back(delivery.delivery_id);
    }
    return ids;
  }

  FakeClock clock_;
  FakeNotificationStore store_;
};

TEST_F(FakeNotificationStoreTest, InsertReturnsCountsAndIdempotency) {
  ASSERT_OK_AND_ASSIGN(InsertedNotification first,
                       store_.InsertNotification(Record("n1", "k"), Targets(2)));
  EXPECT_FALSE(first.duplicate);
  EXPECT_EQ(first.notification.counts.pending, 2);
  EXPECT_EQ(first.notification.create_time, clock_.Now());
  EXPECT_EQ(first.notification.state, NotificationState::kAccepted);

  ASSERT_OK_AND_ASSIGN(InsertedNotification again,
                       store_.InsertNotification(Record("n2", "k"), Targets(5)));
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.notification.notification_id, "n1");
  EXPECT_EQ(again.notification.counts.Total(), 2);

  NotificationRecord other = Record("n3", "k");
  other.request_fingerprint = "different";
  EXPECT_THAT(store_.InsertNotification(other, Targets(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  NotificationRecord other_tenant = Record("n4", "k");
  other_tenant.tenant_id = "t2";
  ASSERT_OK_AND_ASSIGN(InsertedNotification theirs,
                       store_.InsertNotification(other_tenant, Targets(1)));
  EXPECT_FALSE(theirs.duplicate);
  EXPECT_EQ(store_.stored_notifications(), 2);
  EXPECT_EQ(store_.AllDeliveries().size(), 3u);
}

TEST_F(FakeNotificationStoreTest, ClaimCountsAttemptsAndHoldsALease) {
  ASSERT_OK(store_.InsertNotification(Record("n1"), Targets(3)));
  ASSERT_OK_AND_ASSIGN(std::vector<ClaimedDelivery> claimed,
                       store_.ClaimDueDeliveries(2, absl::Seconds(30)));
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0].notification_id, "n1");
  EXPECT_EQ(claimed[0].topic, "t/0");
  EXPECT_EQ(*claimed[0].payload, "{}");
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_EQ(claimed[0].accept_time, clock_.Now());
  EXPECT_EQ(ClaimIds(10).size(), 1u) << "held rows are skipped";
  EXPECT_THAT(ClaimIds(10), IsEmpty());
  clock_.Advance(absl::Seconds(30));
  EXPECT_EQ(ClaimIds(10).size(), 3u) << "the leases ended";
  EXPECT_EQ(store_.GetDelivery(claimed[0].delivery_id)->attempts, 2);
  EXPECT_THAT(store_.ClaimDueDeliveries(0, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(FakeNotificationStoreTest, ScheduledAndExpired) {
  NotificationRecord later = Record("later");
  later.options.send_time = clock_.Now() + absl::Minutes(5);
  ASSERT_OK_AND_ASSIGN(InsertedNotification inserted, store_.InsertNotification(later, Targets(1)));
  EXPECT_EQ(inserted.notification.state, NotificationState::kScheduled);
  NotificationRecord expiring = Record("expiring");
  expiring.expire_time = clock_.Now() + absl::Minutes(1);
  ASSERT_OK(store_.InsertNotification(expiring, Targets(1)));

  clock_.Advance(absl::Minutes(2));
  EXPECT_THAT(ClaimIds(10), IsEmpty()) << "one not yet due, one expired";
  ASSERT_OK_AND_ASSIGN(NotificationRecord expired,
                       store_.GetNotification(kDefaultTenant, "expiring"));
  EXPECT_EQ(expired.state, NotificationState::kExpired);
  clock_.Advance(absl::Minutes(3));
  EXPECT_EQ(ClaimIds(10).size(), 1u);
}

TEST_F(FakeNotificationStoreTest, OutcomesAndStates) {
  ASSERT_OK(store_.InsertNotification(Record("n1"), Targets(3)));
  const std::vector<int64_t> ids = ClaimIds(10);
  ASSERT_EQ(ids.size(), 3u);
  ASSERT_OK(store_.RecordOutcomes(
      {Outcome(ids[0], DeliveryState::kDelivered),
       Outcome(ids[1], DeliveryState::kPending, absl::Seconds(5), "lost"),
       Outcome(999, DeliveryState::kDelivered)}));
  ASSERT_OK_AND_ASSIGN(NotificationRecord n1, store_.GetNotification(kDefaultTenant, "n1"));
  EXPECT_EQ(n1.state, NotificationState::kDelivering);
  EXPECT_EQ(n1.counts.delivered, 1);
  EXPECT_EQ(n1.counts.pending, 2);
  EXPECT_EQ(store_.GetDelivery(ids[1])->last_error, "lost");
  EXPECT_EQ(store_.recorded_outcomes().size(), 3u);

  // A settled delivery is never changed again.
  ASSERT_OK(store_.RecordOutcomes({Outcome(ids[0], DeliveryState::kFailed)}));
  EXPECT_EQ(store_.GetDelivery(ids[0])->state, DeliveryState::kDelivered);

  clock_.Advance(absl::Seconds(5));
  EXPECT_THAT(ClaimIds(10), ElementsAre(ids[1])) << "ids[2] is still leased";

  ASSERT_OK_AND_ASSIGN(int64_t cancelled, store_.CancelNotification(kDefaultTenant, "n1"));
  EXPECT_EQ(cancelled, 2);
  ASSERT_OK_AND_ASSIGN(n1, store_.GetNotification(kDefaultTenant, "n1"));
  EXPECT_EQ(n1.state, NotificationState::kPartiallyDelivered);
  EXPECT_THAT(store_.CancelNotification(kDefaultTenant, "nope"),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_.GetNotification("other", "n1"), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(FakeNotificationStoreTest, ListsWithPageTokens) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(store_.InsertNotification(Record(absl::StrCat("n", i)), Targets(3)));
    clock_.Advance(absl::Seconds(1));
  }
  ASSERT_OK_AND_ASSIGN(Page<NotificationRecord> newest,
                       store_.ListNotifications(kDefaultTenant, 2, ""));
  ASSERT_EQ(newest.items.size(), 2u);
  EXPECT_EQ(newest.items[0].notification_id, "n2");
  EXPECT_EQ(newest.items[1].notification_id, "n1");
  ASSERT_OK_AND_ASSIGN(Page<NotificationRecord> rest,
                       store_.ListNotifications(kDefaultTenant, 2, newest.next_page_token));
  ASSERT_EQ(rest.items.size(), 1u);
  EXPECT_EQ(rest.items[0].notification_id, "n0");
  EXPECT_THAT(rest.next_page_token, IsEmpty());

  ASSERT_OK_AND_ASSIGN(Page<DeliveryRecord> deliveries,
                       store_.ListDeliveries(kDefaultTenant, "n1", 2, ""));
  ASSERT_EQ(deliveries.items.size(), 2u);
  EXPECT_EQ(deliveries.items[0].device_id, "d0");
  ASSERT_OK_AND_ASSIGN(Page<DeliveryRecord> more,
                       store_.ListDeliveries(kDefaultTenant, "n1", 2, deliveries.next_page_token));
  ASSERT_EQ(more.items.size(), 1u);
  EXPECT_EQ(more.items[0].device_id, "d2");
  EXPECT_THAT(store_.ListDeliveries(kDefaultTenant, "n1", 2, newest.next_page_token),
              StatusIs(absl::StatusCode::kInvalidArgument))
      << "a token of another list";
  EXPECT_THAT(store_.ListDeliveries(kDefaultTenant, "nope", 2, ""),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(FakeNotificationStoreTest, StatsAndBacklog) {
  NotificationRecord qos2 = Record("n1");
  qos2.options.qos = 2;
  ASSERT_OK(store_.InsertNotification(qos2, Targets(2)));
  ASSERT_OK(store_.InsertNotification(Record("n2"), Targets(1)));
  const std::vector<int64_t> ids = ClaimIds(1);
  ASSERT_OK(store_.RecordOutcomes({Outcome(ids[0], DeliveryState::kFailed)}));
  store_.set_device_count(7);
  ASSERT_OK_AND_ASSIGN(StoredStats stats, store_.GetStats(kDefaultTenant));
  EXPECT_EQ(stats.notifications, 2);
  EXPECT_EQ(stats.devices, 7);
  EXPECT_EQ(stats.total.sent, 1);
  EXPECT_EQ(stats.total.failed, 1);
  EXPECT_EQ(stats.total.pending, 2);
  EXPECT_EQ(stats.by_qos[2].failed, 1);
  EXPECT_EQ(stats.by_qos[1].pending, 1);
  EXPECT_EQ(stats.by_provider["mqtt"].pending, 2);
  EXPECT_EQ(stats.last_sent_time, clock_.Now());
  EXPECT_THAT(store_.CountBacklog(), IsOkAndHolds(2));
}

TEST_F(FakeNotificationStoreTest, InjectedFailuresChangeNothing) {
  store_.FailNextCalls(absl::UnavailableError("db down"), 1, "InsertNotification");
  EXPECT_THAT(store_.InsertNotification(Record("n1"), Targets(1)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(store_.stored_notifications(), 0);
  ASSERT_OK(store_.InsertNotification(Record("n1"), Targets(1)));
  store_.FailNextCalls(absl::UnavailableError("db down"), 1);
  EXPECT_THAT(store_.ClaimDueDeliveries(1, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(store_.AllDeliveries()[0].attempts, 0);
  EXPECT_THAT(store_.claim_requests(), IsEmpty());
}

TEST_F(FakeNotificationStoreTest, AwaitTimesOutWhenNothingHappens) {
  EXPECT_FALSE(store_.AwaitRecordedOutcomes(1, absl::ZeroDuration()));
  ASSERT_OK(store_.RecordOutcomes({Outcome(1, DeliveryState::kDelivered)}));
  EXPECT_TRUE(store_.AwaitRecordedOutcomes(1, absl::ZeroDuration()));
}

}  // namespace
}  // namespace herald::testing
