// Tests of service/dispatch/delivery_dispatcher.h with FakeNotificationStore
// and FakeProvider. The dispatcher runs its own threads, so the tests wait
// for conditions on the fakes' state, each with a generous deadline; no test
// sleeps for a fixed time or asserts on elapsed time. The store's clock is a
// FakeClock: backoffs and leases end only when the test advances it.
#include "service/dispatch/delivery_dispatcher.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "service/metrics/herald_metrics.h"
#include "tests/testing/fakes/fake_clock.h"
#include "tests/testing/fakes/fake_notification_store.h"
#include "tests/testing/fakes/fake_provider.h"
#include "tests/testing/fakes/metrics_reader.h"

namespace herald {
namespace {

using ::herald::testing::FakeClock;
using ::herald::testing::FakeNotificationStore;
using ::herald::testing::FakeProvider;
using ::herald::testing::HistogramCount;
using ::herald::testing::MetricValue;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::Le;
using ::testing::Lt;
using ::testing::Optional;
using ::testing::UnorderedElementsAre;

// Deadline for conditions that background threads bring about: long enough
// never to be hit on a loaded machine, and only reached when a test fails.
constexpr absl::Duration kWait = absl::Seconds(20);

const PublishResult kAck{.status = absl::OkStatus()};

bool AllIn(const std::vector<DeliveryRecord>& deliveries, DeliveryState state) {
  return !deliveries.empty() &&
         std::all_of(deliveries.begin(), deliveries.end(),
                     [state](const DeliveryRecord& d) { return d.state == state; });
}

class DeliveryDispatcherTest : public ::testing::Test {
 protected:
  DeliveryDispatcherTest() : store_(clock_.AsFunction()), metrics_(registry_, "test") {}

  static DispatcherOptions Options() {
    DispatcherOptions options;
    options.workers = 1;
    options.batch_size = 100;
    options.lease = absl::Seconds(30);
    options.poll_interval = absl::Milliseconds(10);
    options.retry.max_attempts = 5;
    options.retry.initial_backoff = absl::Seconds(1);
    options.retry.max_backoff = absl::Seconds(60);
    return options;
  }

  // Stores a notification to `count` devices d0, d1, ... and returns its id.
  std::string Insert(int count, std::optional<absl::Time> expire_time = std::nullopt,
                     int qos = 1) {
    NotificationRecord record;
    record.tenant_id = kDefaultTenant;
    record.notification_id = absl::StrCat("n", ++notifications_);
    record.options.qos = qos;
    record.expire_time = expire_time;
    record.payload = absl::StrCat("{\"id\":\"", record.notification_id, "\"}");
    std::vector<ResolvedTarget> targets;
    for (int i = 0; i < count; ++i) {
      targets.push_back({.device_id = absl::StrCat("d", i),
                         .topic = absl::StrCat("devices/d", i, "/notifications")});
    }
    auto inserted = store_.InsertNotification(record, targets);
    EXPECT_TRUE(inserted.ok()) << inserted.status();
    return record.notification_id;
  }

  // Waits until the claim loop has looked at the provider `rounds` more
  // times, so that a test can then assert that it did nothing.
  void LetClaimLoopRun(int rounds) {
    ASSERT_TRUE(provider_.AwaitStatusQueries(provider_.status_queries() + rounds, kWait));
  }

  double Deliveries(const std::string& outcome) {
    return MetricValue(registry_, "herald_deliveries_total",
                       {{"provider", "fake"}, {"outcome", outcome}});
  }

  bool AwaitAll(DeliveryState state) {
    return store_.AwaitDeliveries(
        [state](const std::vector<DeliveryRecord>& all) { return AllIn(all, state); }, kWait);
  }

  FakeClock clock_;
  FakeNotificationStore store_;
  FakeProvider provider_;
  prometheus::Registry registry_;
  HeraldMetrics metrics_;
  int notifications_ = 0;
};

TEST_F(DeliveryDispatcherTest, ClaimsAndPublishesDueDeliveries) {
  const absl::Time expires = clock_.Now() + absl::Hours(24 * 3650);
  const std::string with_ttl = Insert(2, expires, /*qos=*/2);
  const std::string without_ttl = Insert(1);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  dispatcher.Wake();
  ASSERT_TRUE(provider_.AwaitPublished(3, kWait));

  const std::vector<OutgoingMessage> published = provider_.published();
  ASSERT_EQ(published.size(), 3u);
  std::vector<std::string> topics;
  for (const OutgoingMessage& message : published) {
    topics.push_back(message.topic);
    const std::string& id = message.user_properties.at("notification_id");
    EXPECT_EQ(message.payload, absl::StrCat("{\"id\":\"", id, "\"}"));
    EXPECT_FALSE(message.retain);
    if (id == with_ttl) {
      EXPECT_EQ(message.qos, 2);
      EXPECT_THAT(message.message_expiry, Optional(Ge(absl::Seconds(1))));
    } else {
      EXPECT_EQ(id, without_ttl);
      EXPECT_EQ(message.qos, 1);
      EXPECT_EQ(message.message_expiry, std::nullopt) << "no TTL, no MQTT expiry";
    }
  }
  EXPECT_THAT(topics, UnorderedElementsAre("devices/d0/notifications", "devices/d1/notifications",
                                           "devices/d0/notifications"));
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) {
    EXPECT_EQ(delivery.attempts, 1);
    EXPECT_EQ(delivery.state, DeliveryState::kPending) << "claimed, not yet acknowledged";
  }
  // in_flight() also counts the slots that a claim in progress has
  // reserved; with the claimers stopped it is exactly what awaits an ack.
  dispatcher.StopClaiming();
  EXPECT_EQ(dispatcher.in_flight(), 3);
}

TEST_F(DeliveryDispatcherTest, AcknowledgedPublishesAreRecordedDelivered) {
  Insert(3);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitOutstanding(3, kWait));
  EXPECT_EQ(provider_.CompleteAll(kAck), 3);
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) {
    EXPECT_EQ(delivery.attempts, 1);
    EXPECT_TRUE(delivery.complete_time.has_value());
  }
  dispatcher.StopClaiming();  // see ClaimsAndPublishesDueDeliveries
  EXPECT_EQ(dispatcher.in_flight(), 0);
  EXPECT_EQ(Deliveries("delivered"), 3);
  EXPECT_EQ(MetricValue(registry_, "herald_deliveries_total",
                        {{"provider", "fake"}, {"qos", "1"}, {"outcome", "delivered"}}),
            3);
  EXPECT_EQ(HistogramCount(registry_, "herald_delivery_latency_seconds", {{"provider", "fake"}}),
            3u);
  EXPECT_EQ(HistogramCount(registry_, "herald_publish_latency_seconds", {{"provider", "fake"}}),
            3u);
  EXPECT_EQ(provider_.published_count(), 3u) << "nothing published twice";
}

TEST_F(DeliveryDispatcherTest, NoSubscriberIsRecorded) {
  Insert(1);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitOutstanding(1, kWait));
  provider_.CompleteAll({.status = absl::OkStatus(), .no_subscriber = true});
  ASSERT_TRUE(AwaitAll(DeliveryState::kNoSubscriber));
  EXPECT_EQ(Deliveries("no_subscriber"), 1);
}

TEST_F(DeliveryDispatcherTest, TransientFailureIsRetriedAfterBackoff) {
  Insert(1);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitOutstanding(1, kWait));
  provider_.CompleteAll({.status = absl::UnavailableError("connection lost")});
  ASSERT_TRUE(store_.AwaitRecordedOutcomes(1, kWait));

  const DeliveryOutcome outcome = store_.recorded_outcomes().at(0);
  EXPECT_EQ(outcome.state, DeliveryState::kPending);
  EXPECT_THAT(outcome.retry_after, AllOf(Ge(absl::Milliseconds(500)), Lt(absl::Seconds(1))));
  const DeliveryRecord delivery = store_.AllDeliveries().at(0);
  EXPECT_EQ(delivery.state, DeliveryState::kPending);
  EXPECT_EQ(delivery.attempts, 1);
  EXPECT_THAT(delivery.last_error, HasSubstr("connection lost"));
  EXPECT_EQ(Deliveries("retried"), 1);

  // Not due again until the backoff has passed on the store's clock.
  LetClaimLoopRun(5);
  EXPECT_EQ(provider_.published_count(), 1u);

  clock_.Advance(absl::Seconds(1));
  dispatcher.Wake();
  ASSERT_TRUE(provider_.AwaitOutstanding(1, kWait));
  EXPECT_EQ(provider_.published_count(), 2u);
  EXPECT_EQ(store_.AllDeliveries().at(0).attempts, 2);
  provider_.CompleteAll(kAck);
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  EXPECT_EQ(Deliveries("delivered"), 1);
}

TEST_F(DeliveryDispatcherTest, PermanentFailureFailsAtOnce) {
  Insert(1);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitOutstanding(1, kWait));
  provider_.CompleteAll({.status = absl::PermissionDeniedError("not authorised")});
  ASSERT_TRUE(AwaitAll(DeliveryState::kFailed));
  const DeliveryRecord delivery = store_.AllDeliveries().at(0);
  EXPECT_EQ(delivery.attempts, 1);
  EXPECT_THAT(delivery.last_error, HasSubstr("not authorised"));
  EXPECT_EQ(Deliveries("failed"), 1);

  clock_.Advance(absl::Hours(1));
  dispatcher.Wake();
  LetClaimLoopRun(5);
  EXPECT_EQ(provider_.published_count(), 1u) << "a failed delivery is never published again";
}

TEST_F(DeliveryDispatcherTest, GivesUpAfterMaxAttempts) {
  DispatcherOptions options = Options();
  options.retry.max_attempts = 2;
  Insert(1);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitOutstanding(1, kWait));
  provider_.CompleteAll({.status = absl::UnavailableError("connection lost")});
  ASSERT_TRUE(store_.AwaitRecordedOutcomes(1, kWait));
  clock_.Advance(absl::Seconds(10));
  dispatcher.Wake();
  ASSERT_TRUE(provider_.AwaitOutstanding(1, kWait));
  provider_.CompleteAll({.status = absl::UnavailableError("connection lost")});
  ASSERT_TRUE(AwaitAll(DeliveryState::kFailed));
  const DeliveryRecord delivery = store_.AllDeliveries().at(0);
  EXPECT_EQ(delivery.attempts, 2);
  EXPECT_THAT(delivery.last_error, HasSubstr("gave up after 2 attempts"));
  EXPECT_EQ(Deliveries("retried"), 1);
  EXPECT_EQ(Deliveries("failed"), 1);
}

TEST_F(DeliveryDispatcherTest, DoesNotClaimWhileProviderDisconnected) {
  provider_.set_connection_state(ConnectionState::kDisconnected);
  Insert(2);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  dispatcher.Wake();
  LetClaimLoopRun(5);
  EXPECT_TRUE(store_.claim_requests().empty()) << "claiming would only burn attempts";
  EXPECT_EQ(provider_.published_count(), 0u);
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) EXPECT_EQ(delivery.attempts, 0);

  provider_.set_connection_state(ConnectionState::kConnected);
  dispatcher.Wake();
  ASSERT_TRUE(provider_.AwaitPublished(2, kWait));
}

TEST_F(DeliveryDispatcherTest, RespectsProviderCapacity) {
  provider_.set_max_in_flight(2);
  Insert(5);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  dispatcher.Wake();
  ASSERT_TRUE(provider_.AwaitPublished(2, kWait));
  // The window is full: the loop keeps asking and claims nothing more.
  ASSERT_TRUE(provider_.AwaitCapacityQueries(provider_.capacity_queries() + 5, kWait));
  EXPECT_EQ(provider_.published_count(), 2u);
  EXPECT_THAT(store_.claim_requests(), Each(Le(2)));
  int attempted = 0;
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) attempted += delivery.attempts;
  EXPECT_EQ(attempted, 2) << "deliveries beyond the window stay unclaimed";

  // One acknowledgement frees one slot.
  ASSERT_TRUE(provider_.CompleteNext(kAck));
  ASSERT_TRUE(provider_.AwaitPublished(3, kWait));
  ASSERT_TRUE(provider_.AwaitCapacityQueries(provider_.capacity_queries() + 5, kWait));
  EXPECT_EQ(provider_.published_count(), 3u);
  EXPECT_EQ(provider_.outstanding(), 2u);

  provider_.set_auto_complete(kAck);
  provider_.CompleteAll(kAck);
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  EXPECT_EQ(provider_.published_count(), 5u);
  EXPECT_THAT(store_.claim_requests(), Each(Le(2)));
}

TEST_F(DeliveryDispatcherTest, ClaimsInBatches) {
  DispatcherOptions options = Options();
  options.batch_size = 2;
  provider_.set_auto_complete(kAck);
  Insert(5);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  const std::vector<int> requests = store_.claim_requests();
  ASSERT_GE(requests.size(), 3u) << "5 deliveries in batches of 2";
  EXPECT_THAT(requests, Each(Le(2)));
  EXPECT_EQ(provider_.published_count(), 5u);
}

TEST_F(DeliveryDispatcherTest, SeveralWorkersNeverPublishADeliveryTwice) {
  DispatcherOptions options = Options();
  options.workers = 4;
  options.batch_size = 7;
  provider_.set_auto_complete(kAck);
  for (int i = 0; i < 10; ++i) Insert(20);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  EXPECT_EQ(provider_.published_count(), 200u);
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) EXPECT_EQ(delivery.attempts, 1);
  EXPECT_EQ(Deliveries("delivered"), 200);
}

TEST_F(DeliveryDispatcherTest, ExpiredDeliveriesAreNotPublished) {
  Insert(1, clock_.Now() - absl::Seconds(1));
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(AwaitAll(DeliveryState::kExpired));
  LetClaimLoopRun(3);
  EXPECT_EQ(provider_.published_count(), 0u);
}

TEST_F(DeliveryDispatcherTest, StopClaimingThenStopRecordsOutstandingOutcomes) {
  Insert(3);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitOutstanding(3, kWait));

  dispatcher.StopClaiming();
  const size_t claims = store_.claim_requests().size();
  const std::string late = Insert(2);
  dispatcher.Wake();
  EXPECT_EQ(store_.claim_requests().size(), claims) << "no claim after StopClaiming";

  // Shutdown as main.cc does it: one ack arrives, then the provider stops
  // and reports the rest as not acknowledged; Stop records them all.
  ASSERT_TRUE(provider_.CompleteNext(kAck));
  provider_.Stop(absl::ZeroDuration());
  dispatcher.Stop();

  const std::vector<DeliveryOutcome> recorded = store_.recorded_outcomes();
  ASSERT_EQ(recorded.size(), 3u) << "every reported outcome is recorded before Stop returns";
  int delivered = 0;
  int retry = 0;
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) {
    if (delivery.attempts == 0) continue;  // the late notification's deliveries
    if (delivery.state == DeliveryState::kDelivered) ++delivered;
    if (delivery.state == DeliveryState::kPending) {
      ++retry;
      EXPECT_THAT(delivery.last_error, HasSubstr("stopped"));
    }
  }
  EXPECT_EQ(delivered, 1);
  EXPECT_EQ(retry, 2);
  auto late_deliveries = store_.ListDeliveries(kDefaultTenant, late, 10, "");
  ASSERT_TRUE(late_deliveries.ok());
  ASSERT_EQ(late_deliveries->items.size(), 2u);
  for (const DeliveryRecord& delivery : late_deliveries->items) {
    EXPECT_EQ(delivery.attempts, 0) << "left for the next replica";
  }
  EXPECT_EQ(provider_.published_count(), 3u);
  EXPECT_EQ(dispatcher.in_flight(), 0);
}

TEST_F(DeliveryDispatcherTest, StopWithoutStartIsSafe) {
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.StopClaiming();
  dispatcher.Stop();
  EXPECT_TRUE(store_.claim_requests().empty());
}

TEST_F(DeliveryDispatcherTest, RecordingFailuresAreRetried) {
  store_.FailNextCalls(absl::UnavailableError("db down"), 2, "RecordOutcomes");
  provider_.set_auto_complete(kAck);
  Insert(2);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  EXPECT_EQ(store_.recorded_outcomes().size(), 2u) << "each outcome recorded once it worked";
  EXPECT_EQ(provider_.published_count(), 2u) << "a recording failure does not republish";
}

TEST_F(DeliveryDispatcherTest, ClaimFailuresAreRetried) {
  store_.FailNextCalls(absl::UnavailableError("db down"), 2, "ClaimDueDeliveries");
  provider_.set_auto_complete(kAck);
  Insert(2);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  EXPECT_EQ(provider_.published_count(), 2u);
}

TEST_F(DeliveryDispatcherTest, LeaseExpiryLetsAnotherReplicaTakeOver) {
  // Replica A claims and dies without an outcome; once the lease ends on
  // the store's clock, replica B claims the same delivery again.
  Insert(1);
  {
    DeliveryDispatcher a(store_, provider_, metrics_, Options());
    a.Start();
    ASSERT_TRUE(provider_.AwaitOutstanding(1, kWait));
    a.StopClaiming();
    a.Stop();
  }
  FakeProvider provider_b("fake");
  provider_b.set_auto_complete(kAck);
  DeliveryDispatcher b(store_, provider_b, metrics_, Options());
  b.Start();
  ASSERT_TRUE(provider_b.AwaitStatusQueries(5, kWait));
  EXPECT_EQ(provider_b.published_count(), 0u) << "the lease still holds";
  clock_.Advance(Options().lease);
  b.Wake();
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  EXPECT_EQ(store_.AllDeliveries().at(0).attempts, 2);
}

}  // namespace
}  // namespace herald
