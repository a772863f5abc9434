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
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Field;
using ::testing::Ge;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Le;
using ::testing::Lt;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::UnorderedElementsAreArray;
using ::testing::UnorderedElementsAre;

// Deadline for conditions that background threads bring about: long enough
// never to be hit on a loaded machine, and only reached when a test fails.
constexpr absl::Duration kWait = absl::Seconds(20);

const PublishResult kAck{.status = absl::OkStatus()};

std::vector<int64_t> IdsOf(const std::vector<ClaimedDelivery>& deliveries) {
  std::vector<int64_t> ids;
  for (const ClaimedDelivery& delivery : deliveries) ids.push_back(delivery.delivery_id);
  return ids;
}

// A release: the delivery is due again at once, with no error recorded.
auto Released(int64_t delivery_id) {
  return AllOf(Field(&DeliveryOutcome::delivery_id, delivery_id),
               Field(&DeliveryOutcome::state, DeliveryState::kPending),
               Field(&DeliveryOutcome::retry_after, absl::ZeroDuration()),
               Field(&DeliveryOutcome::error, IsEmpty()));
}

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
    // Claims no further than the provider's free window: the tests below
    // that count claims and publishes assume it; those of claiming ahead
    // and of handoffs set what they need.
    options.claim_ahead = 0;
    return options;
  }

  // Stores a notification to `count` devices <prefix>0, <prefix>1, ... and
  // returns it as stored.
  NotificationRecord Store(int count, const std::string& prefix,
                           std::optional<absl::Time> expire_time, int qos,
                           std::optional<absl::Time> send_time) {
    NotificationRecord record;
    record.tenant_id = kDefaultTenant;
    record.notification_id = absl::StrCat("n", ++notifications_);
    record.options.qos = qos;
    record.options.send_time = send_time;
    record.expire_time = expire_time;
    record.payload = absl::StrCat("{\"id\":\"", record.notification_id, "\"}");
    std::vector<ResolvedTarget> targets;
    for (int i = 0; i < count; ++i) {
      targets.push_back({.device_id = absl::StrCat(prefix, i),
                         .topic = absl::StrCat("devices/", prefix, i, "/notifications")});
    }
    auto inserted = store_.InsertNotification(record, targets);
    EXPECT_TRUE(inserted.ok()) << inserted.status();
    return inserted.ok() ? inserted->notification : record;
  }

  // Stores a notification to `count` devices d0, d1, ... and returns its id.
  std::string Insert(int count, std::optional<absl::Time> expire_time = std::nullopt,
                     int qos = 1) {
    return Store(count, "d", expire_time, qos, std::nullopt).notification_id;
  }

  // Stores a notification to `count` devices that no worker can claim (its
  // send time never comes on the store's clock) and returns its deliveries
  // as the Notifier hands them over once it has claimed them at insert. The
  // fake cannot claim at insert: the store counts no attempt for them, so
  // an attempt in the store shows that a worker claimed one.
  std::vector<ClaimedDelivery> InsertForHandoff(int count) {
    const NotificationRecord record =
        Store(count, "h", std::nullopt, /*qos=*/1, clock_.Now() + absl::Hours(1));
    auto page = store_.ListDeliveries(kDefaultTenant, record.notification_id, 1000, "");
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<ClaimedDelivery> claimed;
    if (!page.ok()) return claimed;
    for (const DeliveryRecord& delivery : page->items) {
      claimed.push_back({.delivery_id = delivery.delivery_id,
                         .notification_id = record.notification_id,
                         .topic = delivery.topic,
                         .qos = delivery.qos,
                         .payload = std::make_shared<const std::string>(record.payload),
                         .attempts = 1,
                         .accept_time = record.create_time});
    }
    return claimed;
  }

  // Hands `count` new deliveries to `dispatcher` as the Notifier does
  // (reserve, then hand over what was claimed at `claim_started`).
  std::vector<ClaimedDelivery> HandOver(DeliveryDispatcher& dispatcher, int count,
                                        absl::Time claim_started) {
    std::vector<ClaimedDelivery> handed = InsertForHandoff(count);
    EXPECT_EQ(dispatcher.ReserveHandoff(count), count);
    dispatcher.Handoff(handed, count, claim_started);
    return handed;
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

TEST_F(DeliveryDispatcherTest, PublishesCarryTheContentTypeAndNotificationIdProperty) {
  const std::string id = Insert(1);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitPublished(1, kWait));
  const OutgoingMessage message = provider_.published().at(0);
  EXPECT_EQ(message.content_type, "application/json");
  EXPECT_THAT(message.user_properties, ElementsAre(Pair("notification_id", id)));
}

TEST_F(DeliveryDispatcherTest, WithoutMessagePropertiesOnlyThePayloadNamesTheNotification) {
  const absl::Time expires = clock_.Now() + absl::Hours(1);
  const std::string id = Insert(1, expires);
  DispatcherOptions options = Options();
  options.message_properties = false;
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitPublished(1, kWait));
  const OutgoingMessage message = provider_.published().at(0);
  EXPECT_EQ(message.content_type, "");
  EXPECT_THAT(message.user_properties, IsEmpty());
  EXPECT_EQ(message.payload, absl::StrCat("{\"id\":\"", id, "\"}"));
  EXPECT_THAT(message.message_expiry, Optional(Ge(absl::Seconds(1))))
      << "the expiry is part of delivery, not metadata";
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

// --- Claiming ahead -----------------------------------------------------------

TEST_F(DeliveryDispatcherTest, ClaimsAheadOfTheWindowAndPublishesAsAcksFreeIt) {
  DispatcherOptions options = Options();
  options.claim_ahead = 3;
  provider_.set_max_in_flight(2);
  Insert(5);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  ASSERT_TRUE(provider_.AwaitPublished(2, kWait));
  // One claim took the free window and three more, held ready in memory.
  ASSERT_TRUE(store_.AwaitDeliveries(
      [](const std::vector<DeliveryRecord>& all) {
        return all.size() == 5 &&
               std::all_of(all.begin(), all.end(),
                           [](const DeliveryRecord& d) { return d.attempts == 1; });
      },
      kWait));
  ASSERT_FALSE(store_.claim_requests().empty());
  EXPECT_EQ(store_.claim_requests().front(), 5) << "the free window (2) plus claim_ahead (3)";
  // The window stays the limit of what is in flight.
  ASSERT_TRUE(provider_.AwaitCapacityQueries(provider_.capacity_queries() + 5, kWait));
  EXPECT_EQ(provider_.published_count(), 2u);

  // Each acknowledgement lets a delivery claimed ahead through.
  ASSERT_TRUE(provider_.CompleteNext(kAck));
  ASSERT_TRUE(provider_.AwaitPublished(3, kWait));
  ASSERT_TRUE(provider_.AwaitOutstanding(2, kWait));
  EXPECT_EQ(provider_.published_count(), 3u);

  provider_.set_auto_complete(kAck);
  provider_.CompleteAll(kAck);
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  EXPECT_EQ(provider_.published_count(), 5u) << "nothing published twice";
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) {
    EXPECT_EQ(delivery.attempts, 1) << "claimed once, published once";
  }
  EXPECT_EQ(Deliveries("delivered"), 5);
}

// --- Handoff ------------------------------------------------------------------

TEST_F(DeliveryDispatcherTest, HandedOverDeliveriesArePublishedWithoutAClaim) {
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  const std::vector<ClaimedDelivery> handed = InsertForHandoff(3);
  ASSERT_EQ(handed.size(), 3u);
  ASSERT_EQ(dispatcher.ReserveHandoff(3), 3);
  dispatcher.Handoff(handed, 3, absl::Now());
  ASSERT_TRUE(provider_.AwaitOutstanding(3, kWait));

  const std::vector<OutgoingMessage> published = provider_.published();
  ASSERT_EQ(published.size(), 3u);
  for (size_t i = 0; i < published.size(); ++i) {
    EXPECT_EQ(published[i].topic, handed[i].topic) << "published in the order handed over";
    EXPECT_EQ(published[i].payload, *handed[i].payload);
    EXPECT_EQ(published[i].qos, 1);
    EXPECT_EQ(published[i].user_properties.at("notification_id"), handed[i].notification_id);
  }
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) {
    EXPECT_EQ(delivery.attempts, 0) << "no worker claimed it: the insert did";
  }

  EXPECT_EQ(provider_.CompleteAll(kAck), 3);
  ASSERT_TRUE(AwaitAll(DeliveryState::kDelivered));
  std::vector<int64_t> recorded;
  for (const DeliveryOutcome& outcome : store_.recorded_outcomes()) {
    EXPECT_EQ(outcome.state, DeliveryState::kDelivered);
    recorded.push_back(outcome.delivery_id);
  }
  EXPECT_THAT(recorded, UnorderedElementsAreArray(IdsOf(handed)));
  EXPECT_EQ(Deliveries("delivered"), 3);
  EXPECT_EQ(provider_.published_count(), 3u);
}

TEST_F(DeliveryDispatcherTest, ReserveHandoffRefusesWhatItCannotPublishSoon) {
  DispatcherOptions options = Options();
  options.max_ready = 5;
  options.drain_timeout = absl::Milliseconds(10);
  // A window of 0: nothing leaves the ready queue, and no claim reserves
  // room that would be counted against max_ready.
  provider_.set_max_in_flight(0);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  EXPECT_EQ(dispatcher.ReserveHandoff(1), 0) << "before Start";
  dispatcher.Start();
  provider_.set_connection_state(ConnectionState::kDisconnected);
  EXPECT_EQ(dispatcher.ReserveHandoff(1), 0) << "while the provider is disconnected";
  provider_.set_connection_state(ConnectionState::kConnected);

  EXPECT_EQ(dispatcher.ReserveHandoff(0), 0);
  EXPECT_EQ(dispatcher.ReserveHandoff(3), 3);
  EXPECT_EQ(dispatcher.ReserveHandoff(5), 2) << "capped by max_ready";
  EXPECT_EQ(dispatcher.ReserveHandoff(1), 0) << "max_ready reached";
  // Settling frees what was not handed over; what was stays counted while
  // it waits in memory.
  const std::vector<ClaimedDelivery> handed = InsertForHandoff(2);
  dispatcher.Handoff(handed, 3, absl::Now());
  dispatcher.Handoff({}, 2, absl::Now());
  EXPECT_EQ(dispatcher.ReserveHandoff(10), 3) << "max_ready minus the 2 held ready";
  dispatcher.Handoff({}, 3, absl::Now());

  dispatcher.StopClaiming();
  EXPECT_EQ(dispatcher.ReserveHandoff(1), 0) << "after StopClaiming";
  dispatcher.Stop();
  EXPECT_EQ(provider_.published_count(), 0u);
}

TEST_F(DeliveryDispatcherTest, StopClaimingHandsWhatIsReadyToTheProvider) {
  provider_.set_max_in_flight(0);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  const std::vector<ClaimedDelivery> handed = HandOver(dispatcher, 3, absl::Now());
  LetClaimLoopRun(3);
  EXPECT_EQ(provider_.published_count(), 0u) << "the window is full";

  // The window opens: StopClaiming returns once all that was ready is out.
  provider_.set_max_in_flight(10);
  dispatcher.StopClaiming();
  EXPECT_EQ(provider_.published_count(), 3u);
  EXPECT_EQ(dispatcher.in_flight(), 3);
  provider_.CompleteAll(kAck);
  dispatcher.Stop();
  std::vector<int64_t> recorded;
  for (const DeliveryOutcome& outcome : store_.recorded_outcomes()) {
    EXPECT_EQ(outcome.state, DeliveryState::kDelivered) << "published, not released";
    recorded.push_back(outcome.delivery_id);
  }
  EXPECT_THAT(recorded, UnorderedElementsAreArray(IdsOf(handed)));
}

TEST_F(DeliveryDispatcherTest, StopLeavesDeliveriesPastTheirLeaseAlone) {
  // The store cannot extend leases and the window never opens: at Stop,
  // one delivery's lease is over (it is due in the outbox already, perhaps
  // another replica's), the other's still runs.
  store_.FailNextCalls(absl::UnavailableError("db down"), 100, "ExtendLeases");
  DispatcherOptions options = Options();
  options.drain_timeout = absl::Milliseconds(20);
  provider_.set_max_in_flight(0);
  provider_.set_connection_state(ConnectionState::kConnected);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  const std::vector<ClaimedDelivery> lapsed = InsertForHandoff(1);
  const std::vector<ClaimedDelivery> held = InsertForHandoff(1);
  ASSERT_EQ(dispatcher.ReserveHandoff(2), 2);
  dispatcher.Handoff(held, 1, absl::Now());
  dispatcher.StopClaiming();  // the publisher is gone: nothing renews or drops
  dispatcher.Handoff(lapsed, 1, absl::Now() - options.lease - absl::Seconds(1));
  dispatcher.Stop();
  EXPECT_THAT(store_.recorded_outcomes(), ElementsAre(Released(held[0].delivery_id)));
  EXPECT_EQ(provider_.published_count(), 0u);
}

TEST_F(DeliveryDispatcherTest, StopReleasesDeliveriesStillReady) {
  DispatcherOptions options = Options();
  options.drain_timeout = absl::Milliseconds(20);
  provider_.set_max_in_flight(0);  // the window never opens
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  const std::vector<ClaimedDelivery> handed = HandOver(dispatcher, 3, absl::Now());

  dispatcher.StopClaiming();
  EXPECT_THAT(store_.recorded_outcomes(), IsEmpty()) << "held until Stop";
  dispatcher.Stop();
  EXPECT_THAT(store_.recorded_outcomes(),
              ElementsAre(Released(handed[0].delivery_id), Released(handed[1].delivery_id),
                          Released(handed[2].delivery_id)));
  EXPECT_EQ(provider_.published_count(), 0u);
  // Due again at once, for whichever replica claims next.
  absl::StatusOr<std::vector<ClaimedDelivery>> again =
      store_.ClaimDueDeliveries(10, absl::Seconds(30));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(IdsOf(*again), ElementsAreArray(IdsOf(handed)));
}

TEST_F(DeliveryDispatcherTest, HeldDeliveriesWhoseLeaseCannotBeExtendedAreReleased) {
  // The provider is away and the store cannot extend leases: what waits in
  // memory goes back to the outbox before its lease ends.
  store_.FailNextCalls(absl::UnavailableError("db down"), 100, "ExtendLeases");
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  const std::vector<ClaimedDelivery> handed = InsertForHandoff(2);
  ASSERT_EQ(dispatcher.ReserveHandoff(2), 2);
  provider_.set_connection_state(ConnectionState::kDisconnected);
  // Three quarters of the lease gone: past the time to renew it.
  dispatcher.Handoff(handed, 2, absl::Now() - Options().lease * 3 / 4);
  ASSERT_TRUE(store_.AwaitRecordedOutcomes(2, kWait));
  EXPECT_THAT(store_.recorded_outcomes(),
              ElementsAre(Released(handed[0].delivery_id), Released(handed[1].delivery_id)));
  EXPECT_EQ(provider_.published_count(), 0u);
  EXPECT_EQ(MetricValue(registry_, "herald_deliveries_released_total", {{"reason", "lease"}}), 2);

  // Back in the outbox: a worker claims them once the provider is back.
  provider_.set_connection_state(ConnectionState::kConnected);
  dispatcher.Wake();
  ASSERT_TRUE(provider_.AwaitPublished(2, kWait));
  LetClaimLoopRun(3);
  EXPECT_EQ(provider_.published_count(), 2u) << "each published once";
  for (const DeliveryRecord& delivery : store_.AllDeliveries()) {
    EXPECT_EQ(delivery.attempts, 1) << "published by the worker's claim";
  }
}

TEST_F(DeliveryDispatcherTest, HeldDeliveriesHaveTheirLeaseExtendedWhileTheWindowStaysFull) {
  // Connected, but the window does not free (a slow broker): the deliveries
  // waiting in memory keep their lease instead of bouncing to the outbox.
  provider_.set_max_in_flight(0);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, Options());
  dispatcher.Start();
  const std::vector<ClaimedDelivery> handed = HandOver(dispatcher, 2, absl::Now() - Options().lease * 3 / 4);
  const absl::Time deadline = absl::Now() + kWait;
  while (store_.extended_leases() < 2 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(store_.extended_leases(), 2);
  EXPECT_TRUE(store_.recorded_outcomes().empty()) << "nothing released";
  EXPECT_EQ(MetricValue(registry_, "herald_deliveries_released_total", {{"reason", "lease"}}), 0);

  provider_.set_max_in_flight(10);
  provider_.CompleteAll(kAck);
  provider_.set_auto_complete(kAck);
  ASSERT_TRUE(provider_.AwaitPublished(2, kWait));
  ASSERT_TRUE(store_.AwaitRecordedOutcomes(2, kWait));
  for (const DeliveryOutcome& outcome : store_.recorded_outcomes()) {
    EXPECT_EQ(outcome.state, DeliveryState::kDelivered);
  }
  EXPECT_EQ(store_.GetDelivery(handed[0].delivery_id)->attempts, 0) << "never claimed by a worker";
}

TEST_F(DeliveryDispatcherTest, HeldDeliveryPastItsLeaseIsLeftToTheOutbox) {
  DispatcherOptions options = Options();
  options.lease = absl::Minutes(10);  // minutes to spare either side of the limit
  provider_.set_max_in_flight(0);
  DeliveryDispatcher dispatcher(store_, provider_, metrics_, options);
  dispatcher.Start();
  const std::vector<ClaimedDelivery> fresh = InsertForHandoff(1);
  const std::vector<ClaimedDelivery> lapsed = InsertForHandoff(1);
  ASSERT_EQ(dispatcher.ReserveHandoff(2), 2);
  dispatcher.Handoff(fresh, 1, absl::Now() - options.lease / 2);
  // Its lease is over: the outbox has it due again, perhaps another replica
  // already; publishing or releasing it could only duplicate it.
  dispatcher.Handoff(lapsed, 1, absl::Now() - options.lease - absl::Minutes(1));

  provider_.set_max_in_flight(10);
  ASSERT_TRUE(provider_.AwaitPublished(1, kWait));
  LetClaimLoopRun(3);
  const std::vector<OutgoingMessage> published = provider_.published();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].user_properties.at("notification_id"), fresh[0].notification_id);
  EXPECT_TRUE(store_.recorded_outcomes().empty()) << "no release for a lapsed lease";
  EXPECT_EQ(MetricValue(registry_, "herald_deliveries_released_total", {{"reason", "lease"}}), 1);
}

}  // namespace
}  // namespace herald
