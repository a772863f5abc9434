// Tests of service/dispatch/notifier.h against FakeDeviceStore and
// FakeNotificationStore, with metrics read back from a fresh registry.
#include "service/dispatch/notifier.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "service/dispatch/delivery_handoff.h"
#include "service/dispatch/payload.h"
#include "service/metrics/herald_metrics.h"
#include "tests/testing/fakes/fake_device_store.h"
#include "tests/testing/fakes/fake_notification_store.h"
#include "tests/testing/fakes/metrics_reader.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald {
namespace {

using ::herald::testing::FakeDeviceStore;
using ::herald::testing::FakeNotificationStore;
using ::herald::testing::MetricValue;
using ::herald::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr char kHomeSyncTemplate[] = "homesync/{meta.home_id}/nodes/{device_id}/command/relay";

auto Target(const std::string& device_id, const std::string& topic) {
  return AllOf(Field(&ResolvedTarget::device_id, device_id), Field(&ResolvedTarget::topic, topic));
}

auto DeliveryTo(const std::string& device_id, const std::string& topic) {
  return AllOf(Field(&DeliveryRecord::device_id, device_id),
               Field(&DeliveryRecord::topic, topic),
               Field(&DeliveryRecord::state, DeliveryState::kPending));
}

NotifierOptions WithTemplate(const std::string& topic_template) {
  NotifierOptions options;
  options.notification_topic_template = topic_template;
  return options;
}
NotifierOptions WithTargetLimit(size_t max_targets) {
  NotifierOptions options;
  options.limits.max_targets_per_request = max_targets;
  return options;
}
NotifierOptions WithPayloadLimit(size_t max_bytes) {
  NotifierOptions options;
  options.max_payload_bytes = max_bytes;
  return options;
}
NotifierOptions WithPreviewLimit(size_t max_preview) {
  NotifierOptions options;
  options.max_preview_targets = max_preview;
  return options;
}

// A DeliveryHandoff that grants up to `grant` deliveries per reservation
// and records every call. Thread-safe.
class FakeDeliveryHandoff final : public DeliveryHandoff {
 public:
  struct HandoffCall {
    std::vector<ClaimedDelivery> deliveries;
    int64_t reserved;
    absl::Time claim_started;
  };

  static constexpr absl::Duration kLease = absl::Seconds(42);

  explicit FakeDeliveryHandoff(int64_t grant) : grant_(grant) {}

  int64_t ReserveHandoff(int64_t wanted) override {
    absl::MutexLock lock(&mu_);
    reserve_calls_.push_back(wanted);
    const int64_t granted = std::min(wanted, grant_);
    outstanding_ += granted;
    return granted;
  }
  absl::Duration HandoffLease() const override { return kLease; }
  void Handoff(std::vector<ClaimedDelivery> deliveries, int64_t reserved,
               absl::Time claim_started) override {
    absl::MutexLock lock(&mu_);
    outstanding_ -= reserved;
    handoffs_.push_back({std::move(deliveries), reserved, claim_started});
  }

  // What ReserveHandoff was asked for, in order.
  std::vector<int64_t> reserve_calls() const {
    absl::MutexLock lock(&mu_);
    return reserve_calls_;
  }
  std::vector<HandoffCall> handoffs() const {
    absl::MutexLock lock(&mu_);
    return handoffs_;
  }
  // Granted and not yet settled by a Handoff call.
  int64_t outstanding() const {
    absl::MutexLock lock(&mu_);
    return outstanding_;
  }

 private:
  const int64_t grant_;
  mutable absl::Mutex mu_;
  std::vector<int64_t> reserve_calls_ ABSL_GUARDED_BY(mu_);
  std::vector<HandoffCall> handoffs_ ABSL_GUARDED_BY(mu_);
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
};

// The one handoff of a send that left everything in the outbox: `reserved`
// places reserved, no delivery handed over, nothing still reserved.
void ExpectOneHandoffOfNothing(const FakeDeliveryHandoff& handoff, int64_t reserved) {
  const std::vector<FakeDeliveryHandoff::HandoffCall> handoffs = handoff.handoffs();
  ASSERT_EQ(handoffs.size(), 1u);
  EXPECT_EQ(handoffs[0].reserved, reserved);
  EXPECT_THAT(handoffs[0].deliveries, IsEmpty());
  EXPECT_EQ(handoff.outstanding(), 0);
}

// A NotificationStore over a FakeNotificationStore (which claims nothing at
// insert) whose InsertNotifications reports the first `claim_count`
// deliveries of each new notification as claimed, as PgNotificationStore
// does; the fake underneath counts no attempt for them. Records what each
// insert asked for. Thread-compatible (one test thread).
class ClaimingNotificationStore final : public NotificationStore {
 public:
  explicit ClaimingNotificationStore(FakeNotificationStore& store) : store_(store) {}

  absl::StatusOr<InsertedNotification> InsertNotification(
      const NotificationRecord& notification, const std::vector<ResolvedTarget>& targets) override {
    return store_.InsertNotification(notification, targets);
  }
  std::vector<absl::StatusOr<InsertedNotification>> InsertNotifications(
      const std::vector<NotificationToInsert>& entries) override {
    std::vector<absl::StatusOr<InsertedNotification>> results;
    for (const NotificationToInsert& entry : entries) {
      requests_.push_back({entry.claim_count, entry.claim_lease});
      absl::StatusOr<InsertedNotification> inserted =
          store_.InsertNotification(*entry.notification, *entry.targets);
      if (inserted.ok() && !inserted->duplicate && entry.claim_count > 0) {
        absl::StatusOr<Page<DeliveryRecord>> page = store_.ListDeliveries(
            entry.notification->tenant_id, entry.notification->notification_id, 1000, "");
        EXPECT_TRUE(page.ok()) << page.status();
        for (const DeliveryRecord& delivery : page->items) {
          if (static_cast<int64_t>(inserted->claimed_delivery_ids.size()) == entry.claim_count) {
            break;
          }
          inserted->claimed_delivery_ids.push_back(delivery.delivery_id);
        }
      }
      results.push_back(std::move(inserted));
    }
    return results;
  }
  absl::StatusOr<NotificationRecord> GetNotification(const std::string& tenant_id,
                                                     const std::string& notification_id) override {
    return store_.GetNotification(tenant_id, notification_id);
  }
  absl::StatusOr<Page<DeliveryRecord>> ListDeliveries(const std::string& tenant_id,
                                                      const std::string& notification_id,
                                                      int page_size,
                                                      const std::string& page_token) override {
    return store_.ListDeliveries(tenant_id, notification_id, page_size, page_token);
  }
  absl::StatusOr<Page<NotificationRecord>> ListNotifications(
      const std::string& tenant_id, int page_size, const std::string& page_token) override {
    return store_.ListNotifications(tenant_id, page_size, page_token);
  }
  absl::StatusOr<int64_t> CancelNotification(const std::string& tenant_id,
                                             const std::string& notification_id) override {
    return store_.CancelNotification(tenant_id, notification_id);
  }
  absl::StatusOr<std::vector<ClaimedDelivery>> ClaimDueDeliveries(int max,
                                                                 absl::Duration lease) override {
    return store_.ClaimDueDeliveries(max, lease);
  }
  absl::Status RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes) override {
    return store_.RecordOutcomes(outcomes);
  }
  absl::StatusOr<StoredStats> GetStats(const std::string& tenant_id) override {
    return store_.GetStats(tenant_id);
  }
  absl::StatusOr<int64_t> CountBacklog() override { return store_.CountBacklog(); }

  // (claim_count, claim_lease) of every entry inserted, in order.
  const std::vector<std::pair<int64_t, absl::Duration>>& requests() const { return requests_; }

 private:
  FakeNotificationStore& store_;
  std::vector<std::pair<int64_t, absl::Duration>> requests_;
};

NotifierOptions WithHandoff(DeliveryHandoff* handoff) {
  NotifierOptions options;
  options.handoff = handoff;
  return options;
}

class NotifierTest : public ::testing::Test {
 protected:
  NotifierTest() : metrics_(registry_, "test") {
    AddDevice("s1", "alice", {"floor-1"});
    AddDevice("s2", "alice", {"floor-1", "floor-2"});
    AddDevice("s3", "bob", {"floor-2"});
    AddDevice("off", "alice", {"floor-1"}, /*enabled=*/false);
  }

  void AddDevice(const std::string& id, const std::string& owner,
                 std::vector<std::string> groups, bool enabled = true, std::string topic = "",
                 std::map<std::string, std::string> metadata = {}) {
    Device device;
    device.tenant_id = kDefaultTenant;
    device.device_id = id;
    device.owner_id = owner;
    device.groups = std::move(groups);
    device.enabled = enabled;
    device.topic = std::move(topic);
    device.metadata = std::move(metadata);
    ASSERT_TRUE(devices_.CreateDevice(device).ok());
  }

  Notifier MakeNotifier(NotifierOptions options = {}) {
    return Notifier(devices_, notifications_, metrics_, [this] { ++wakes_; }, std::move(options));
  }
  // A Notifier whose store claims at insert what the handoff reserved.
  Notifier MakeClaimingNotifier(DeliveryHandoff& handoff) {
    return Notifier(devices_, claiming_, metrics_, [this] { ++wakes_; }, WithHandoff(&handoff));
  }

  static NotificationRequest Request(TargetKind kind, std::vector<std::string> values) {
    NotificationRequest request;
    request.tenant_id = kDefaultTenant;
    request.target = {.kind = kind, .values = std::move(values)};
    request.content = {.title = "Door", .body = "Open", .data = {{"door", "front"}}};
    return request;
  }

  std::vector<DeliveryRecord> StoredDeliveries(const std::string& notification_id) {
    auto page = notifications_.ListDeliveries(kDefaultTenant, notification_id, 1000, "");
    EXPECT_TRUE(page.ok()) << page.status();
    return page.ok() ? page->items : std::vector<DeliveryRecord>{};
  }

  double Accepted(const std::string& qos, const std::string& outcome) {
    return MetricValue(registry_, "herald_notifications_accepted_total",
                       {{"qos", qos}, {"outcome", outcome}});
  }
  double Targets(const std::string& qos) {
    return MetricValue(registry_, "herald_notification_targets_total", {{"qos", qos}});
  }

  prometheus::Registry registry_;
  HeraldMetrics metrics_;
  FakeDeviceStore devices_;
  FakeNotificationStore notifications_;
  ClaimingNotificationStore claiming_{notifications_};
  std::atomic<int> wakes_{0};
};

// --- Resolution -------------------------------------------------------------

TEST_F(NotifierTest, ResolvesDeviceIdsAndStoresOneDeliveryEach) {
  Notifier notifier = MakeNotifier();
  ASSERT_OK_AND_ASSIGN(SendOutcome sent,
                       notifier.Send(Request(TargetKind::kDeviceIds, {"s1", "s3"})));
  EXPECT_EQ(sent.target_count, 2);
  EXPECT_THAT(sent.unresolved_device_ids, IsEmpty());
  EXPECT_FALSE(sent.duplicate);
  EXPECT_THAT(sent.preview, IsEmpty()) << "a preview only for validate_only";
  EXPECT_EQ(sent.notification.state, NotificationState::kAccepted);
  EXPECT_EQ(sent.notification.counts.pending, 2);
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("s1", "devices/s1/notifications"),
                          DeliveryTo("s3", "devices/s3/notifications")));
}

// The fingerprint only tells a repeat under the same idempotency key from
// another request; without a key none is computed or stored.
TEST_F(NotifierTest, NoFingerprintWithoutAnIdempotencyKey) {
  Notifier notifier = MakeNotifier();
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(Request(TargetKind::kDeviceIds, {"s1"})));
  ASSERT_OK_AND_ASSIGN(NotificationRecord stored,
                       notifications_.GetNotification(kDefaultTenant,
                                                      sent.notification.notification_id));
  EXPECT_EQ(stored.request_fingerprint, "");
}

TEST_F(NotifierTest, StoresRequestPayloadAndFingerprint) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  request.options.qos = 2;
  request.options.retain = true;
  request.options.idempotency_key = "k1";
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  ASSERT_OK_AND_ASSIGN(NotificationRecord stored,
                       notifications_.GetNotification(kDefaultTenant,
                                                      sent.notification.notification_id));
  EXPECT_EQ(stored.request_fingerprint, RequestFingerprint(request));
  EXPECT_EQ(stored.options.qos, 2);
  EXPECT_TRUE(stored.options.retain);
  EXPECT_EQ(stored.content.title, "Door");
  google::protobuf::Struct payload;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(stored.payload, &payload).ok())
      << stored.payload;
  EXPECT_EQ(payload.fields().at("id").string_value(), sent.notification.notification_id);
  EXPECT_EQ(payload.fields().at("title").string_value(), "Door");
  EXPECT_FALSE(payload.fields().contains("expires_at"));
}

TEST_F(NotifierTest, ReportsUnresolvedDeviceIdsOnce) {
  Notifier notifier = MakeNotifier();
  ASSERT_OK_AND_ASSIGN(
      SendOutcome sent,
      notifier.Send(Request(TargetKind::kDeviceIds, {"s1", "ghost", "off", "ghost", "s1"})));
  EXPECT_EQ(sent.target_count, 1) << "s1 once, even when named twice";
  EXPECT_THAT(sent.unresolved_device_ids, ElementsAre("ghost", "off"))
      << "unknown and disabled devices, each once, in request order";
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("s1", "devices/s1/notifications")));
}

TEST_F(NotifierTest, DeviceTopicOverridesTemplate) {
  AddDevice("custom", "carol", {}, true, "my/own/topic");
  Notifier notifier = MakeNotifier();
  ASSERT_OK_AND_ASSIGN(SendOutcome sent,
                       notifier.Send(Request(TargetKind::kDeviceIds, {"custom"})));
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("custom", "my/own/topic")));
}

TEST_F(NotifierTest, DeviceWhoseTemplateCannotExpandIsUnresolved) {
  AddDevice("relay-1", "carol", {}, true, "", {{"home_id", "h1"}});
  AddDevice("relay-2", "carol", {});  // no home_id
  Notifier notifier = MakeNotifier(WithTemplate(kHomeSyncTemplate));
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(Request(TargetKind::kOwnerIds, {"carol"})));
  EXPECT_EQ(sent.target_count, 1);
  EXPECT_THAT(sent.unresolved_device_ids, ElementsAre("relay-2"));
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("relay-1", "homesync/h1/nodes/relay-1/command/relay")));
}

TEST_F(NotifierTest, ResolvesOwnersToTheirEnabledDevices) {
  Notifier notifier = MakeNotifier();
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(Request(TargetKind::kOwnerIds, {"alice"})));
  EXPECT_EQ(sent.target_count, 2);
  EXPECT_THAT(sent.unresolved_device_ids, IsEmpty()) << "only device_ids report unresolved ids";
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("s1", "devices/s1/notifications"),
                          DeliveryTo("s2", "devices/s2/notifications")));
}

TEST_F(NotifierTest, ResolvesGroupsWithoutDuplicates) {
  Notifier notifier = MakeNotifier();
  ASSERT_OK_AND_ASSIGN(SendOutcome sent,
                       notifier.Send(Request(TargetKind::kGroups, {"floor-1", "floor-2"})));
  EXPECT_EQ(sent.target_count, 3) << "s2 is in both groups; 'off' is disabled";
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("s1", "devices/s1/notifications"),
                          DeliveryTo("s2", "devices/s2/notifications"),
                          DeliveryTo("s3", "devices/s3/notifications")));
}

TEST_F(NotifierTest, RawTopicIsOneTargetWithoutResolving) {
  Notifier notifier = MakeNotifier();
  ASSERT_OK_AND_ASSIGN(SendOutcome sent,
                       notifier.Send(Request(TargetKind::kTopic, {"broadcast/everyone"})));
  EXPECT_EQ(sent.target_count, 1);
  EXPECT_EQ(devices_.resolve_calls(), 0) << "a raw topic needs no device lookup";
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("", "broadcast/everyone")));
}

TEST_F(NotifierTest, ResolvesInOneStoreRoundTrip) {
  Notifier notifier = MakeNotifier();
  ASSERT_TRUE(notifier.Send(Request(TargetKind::kDeviceIds, {"s1", "s2", "s3"})).ok());
  EXPECT_EQ(devices_.resolve_calls(), 1);
}

TEST_F(NotifierTest, NothingResolvedIsNotFoundAndStoresNothing) {
  Notifier notifier = MakeNotifier();
  EXPECT_THAT(notifier.Send(Request(TargetKind::kDeviceIds, {"ghost", "off"})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("target.device_ids")));
  EXPECT_THAT(notifier.Send(Request(TargetKind::kGroups, {"nobody-here"})),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("target.groups")));
  EXPECT_EQ(notifications_.stored_notifications(), 0);
  EXPECT_EQ(wakes_, 0);
  EXPECT_EQ(Accepted("1", "rejected"), 2);
  EXPECT_EQ(Accepted("1", "accepted"), 0);
}

// --- Refusals ---------------------------------------------------------------

TEST_F(NotifierTest, InvalidRequestIsRefusedBeforeResolving) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  request.options.qos = 3;
  EXPECT_THAT(notifier.Send(request),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("options.qos")));
  EXPECT_EQ(devices_.resolve_calls(), 0);
  EXPECT_EQ(notifications_.stored_notifications(), 0);
  EXPECT_EQ(Accepted("-1", "rejected"), 1) << "an invalid qos is counted as -1";
}

TEST_F(NotifierTest, InvalidQosValuesDoNotMultiplySeries) {
  // The qos label must stay bounded whatever callers send: one series per
  // distinct invalid value would let any client grow the registry at will.
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  for (int qos : {3, 4, 1000, -7, 2147483647}) {
    request.options.qos = qos;
    EXPECT_THAT(notifier.Send(request), StatusIs(absl::StatusCode::kInvalidArgument));
    EXPECT_FALSE(::herald::testing::HasMetric(registry_, "herald_notifications_accepted_total",
                                              {{"qos", std::to_string(qos)}}))
        << qos;
  }
  EXPECT_EQ(Accepted("-1", "rejected"), 5);
  request.options.qos = 2;
  request.content.title.clear();
  request.content.body.clear();
  EXPECT_THAT(notifier.Send(request), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(Accepted("2", "rejected"), 1) << "a valid qos keeps its label";
}

TEST_F(NotifierTest, TargetLimitComesFromOptions) {
  Notifier notifier = MakeNotifier(WithTargetLimit(2));
  EXPECT_THAT(notifier.Send(Request(TargetKind::kDeviceIds, {"s1", "s2", "s3"})),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target.device_ids")));
}

TEST_F(NotifierTest, PayloadSizeLimit) {
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  request.content.body = std::string(500, 'b');
  // Learn the encoded size from a validate-only request (it encodes the
  // payload the same way; the time stamp has a fixed width).
  NotificationRequest probe = request;
  probe.validate_only = true;
  ASSERT_OK_AND_ASSIGN(SendOutcome preview, MakeNotifier().Send(probe));
  const size_t size = preview.notification.payload.size();
  ASSERT_GT(size, 500u);

  Notifier too_small = MakeNotifier(WithPayloadLimit(size - 1));
  EXPECT_THAT(too_small.Send(request),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("payload"), HasSubstr(std::to_string(size)))));
  EXPECT_EQ(notifications_.stored_notifications(), 0);
  EXPECT_EQ(Accepted("1", "rejected"), 1);

  Notifier exact = MakeNotifier(WithPayloadLimit(size));
  EXPECT_TRUE(exact.Send(request).ok()) << "the limit itself is allowed";
  EXPECT_EQ(notifications_.stored_notifications(), 1);
}

TEST_F(NotifierTest, StoreFailuresPassThrough) {
  Notifier notifier = MakeNotifier();
  devices_.FailNextCalls(absl::UnavailableError("db down"), 1, "ResolveTargets");
  EXPECT_THAT(notifier.Send(Request(TargetKind::kDeviceIds, {"s1"})),
              StatusIs(absl::StatusCode::kUnavailable));
  notifications_.FailNextCalls(absl::UnavailableError("db down"), 1, "InsertNotification");
  EXPECT_THAT(notifier.Send(Request(TargetKind::kDeviceIds, {"s1"})),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(wakes_, 0) << "nothing committed, nothing to wake for";
  EXPECT_EQ(notifications_.stored_notifications(), 0);
}

// --- validate_only ------------------------------------------------------------

TEST_F(NotifierTest, ValidateOnlyStoresNothingAndPreviewsTargets) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1", "s2", "ghost"});
  request.validate_only = true;
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  EXPECT_EQ(sent.target_count, 2);
  EXPECT_THAT(sent.unresolved_device_ids, ElementsAre("ghost"));
  EXPECT_THAT(sent.preview, ElementsAre(Target("s1", "devices/s1/notifications"),
                                        Target("s2", "devices/s2/notifications")));
  EXPECT_EQ(sent.notification.state, NotificationState::kAccepted);
  EXPECT_EQ(notifications_.stored_notifications(), 0);
  EXPECT_THAT(notifications_.AllDeliveries(), IsEmpty());
  EXPECT_EQ(wakes_, 0);
  EXPECT_EQ(Accepted("1", "validated"), 1);
  EXPECT_EQ(Targets("1"), 0) << "nothing will be sent";
}

TEST_F(NotifierTest, ValidateOnlyPreviewIsCapped) {
  Notifier notifier = MakeNotifier(WithPreviewLimit(2));
  NotificationRequest request = Request(TargetKind::kGroups, {"floor-1", "floor-2"});
  request.validate_only = true;
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  EXPECT_EQ(sent.target_count, 3);
  EXPECT_EQ(sent.preview.size(), 2u);
}

TEST_F(NotifierTest, ValidateOnlyOfAScheduledRequest) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  request.validate_only = true;
  request.options.send_time = absl::FromCivil(absl::CivilSecond(2100, 1, 1, 0, 0, 0),
                                              absl::UTCTimeZone());
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  EXPECT_EQ(sent.notification.state, NotificationState::kScheduled);
}

// --- Scheduling and TTL -------------------------------------------------------

TEST_F(NotifierTest, TtlCountsFromTheSendTime) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  const absl::Time send_time =
      absl::FromCivil(absl::CivilSecond(2100, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  request.options.send_time = send_time;
  request.options.ttl = absl::Minutes(10);
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  EXPECT_EQ(sent.notification.expire_time, send_time + absl::Minutes(10));
  EXPECT_EQ(sent.notification.state, NotificationState::kScheduled);
  google::protobuf::Struct payload;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(sent.notification.payload, &payload).ok());
  EXPECT_EQ(payload.fields().at("sent_at").string_value(), "2100-01-01T00:00:00.000Z");
  EXPECT_EQ(payload.fields().at("expires_at").string_value(), "2100-01-01T00:10:00.000Z");
}

// --- Idempotency --------------------------------------------------------------

TEST_F(NotifierTest, RepeatedIdempotencyKeyReturnsTheFirstAndSendsNothing) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1", "s2", "ghost"});
  request.options.idempotency_key = "order-42";
  ASSERT_OK_AND_ASSIGN(SendOutcome first, notifier.Send(request));
  ASSERT_OK_AND_ASSIGN(SendOutcome again, notifier.Send(request));
  EXPECT_FALSE(first.duplicate);
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.notification.notification_id, first.notification.notification_id);
  EXPECT_EQ(again.target_count, 2);
  EXPECT_EQ(notifications_.stored_notifications(), 1);
  EXPECT_EQ(notifications_.AllDeliveries().size(), 2u);
  EXPECT_EQ(wakes_, 1) << "no wake for a duplicate";
  EXPECT_EQ(Accepted("1", "accepted"), 1);
  EXPECT_EQ(Accepted("1", "duplicate"), 1);
  EXPECT_EQ(Targets("1"), 2);
}

TEST_F(NotifierTest, SameKeyWithOtherContentIsFailedPrecondition) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  request.options.idempotency_key = "order-42";
  ASSERT_TRUE(notifier.Send(request).ok());
  request.content.body = "Closed";
  EXPECT_THAT(notifier.Send(request),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("idempotency_key")));
  EXPECT_EQ(notifications_.stored_notifications(), 1);
  EXPECT_EQ(wakes_, 1);
}

TEST_F(NotifierTest, KeysAreScopedToTheTenant) {
  Device other;
  other.tenant_id = "other";
  other.device_id = "s1";
  ASSERT_TRUE(devices_.CreateDevice(other).ok());
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  request.options.idempotency_key = "order-42";
  ASSERT_OK_AND_ASSIGN(SendOutcome mine, notifier.Send(request));
  request.tenant_id = "other";
  ASSERT_OK_AND_ASSIGN(SendOutcome theirs, notifier.Send(request));
  EXPECT_FALSE(theirs.duplicate);
  EXPECT_NE(theirs.notification.notification_id, mine.notification.notification_id);
}

// --- Waking and metrics -------------------------------------------------------

TEST_F(NotifierTest, WakesOncePerCommit) {
  Notifier notifier = MakeNotifier();
  ASSERT_TRUE(notifier.Send(Request(TargetKind::kDeviceIds, {"s1"})).ok());
  EXPECT_EQ(wakes_, 1);
  ASSERT_TRUE(notifier.Send(Request(TargetKind::kOwnerIds, {"alice", "bob"})).ok());
  EXPECT_EQ(wakes_, 2);
  ASSERT_TRUE(notifier.Send(Request(TargetKind::kTopic, {"broadcast/all"})).ok());
  EXPECT_EQ(wakes_, 3);
}

TEST_F(NotifierTest, WorksWithoutAWakeCallback) {
  Notifier notifier(devices_, notifications_, metrics_, nullptr, {});
  EXPECT_TRUE(notifier.Send(Request(TargetKind::kDeviceIds, {"s1"})).ok());
}

TEST_F(NotifierTest, CountsAcceptedNotificationsAndTargetsByQos) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kOwnerIds, {"alice", "bob"});
  request.options.qos = 2;
  ASSERT_TRUE(notifier.Send(request).ok());
  request.options.qos = 0;
  request.target = {.kind = TargetKind::kDeviceIds, .values = {"s1"}};
  ASSERT_TRUE(notifier.Send(request).ok());
  EXPECT_EQ(Accepted("2", "accepted"), 1);
  EXPECT_EQ(Targets("2"), 3);
  EXPECT_EQ(Accepted("0", "accepted"), 1);
  EXPECT_EQ(Targets("0"), 1);
  EXPECT_EQ(Accepted("1", "accepted"), 0);
}

// --- Tenant topic prefixes --------------------------------------------------

TEST_F(NotifierTest, TemplateTopicsGoUnderTheTenantsPrefix) {
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1"});
  request.topic_prefix = "acme";
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("s1", "acme/devices/s1/notifications")));
}

TEST_F(NotifierTest, RawTopicsOutsideThePrefixArePermissionDenied) {
  Notifier notifier = MakeNotifier();
  NotificationRequest outside = Request(TargetKind::kTopic, {"globex/broadcast"});
  outside.topic_prefix = "acme";
  EXPECT_THAT(notifier.Send(outside),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("target.topic")));
  NotificationRequest inside = Request(TargetKind::kTopic, {"acme/broadcast"});
  inside.topic_prefix = "acme";
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(inside));
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("", "acme/broadcast")));
}

TEST_F(NotifierTest, ADeviceTopicOutsideThePrefixDoesNotResolve) {
  AddDevice("own-topic", "carol", {}, true, "elsewhere/own-topic");
  Notifier notifier = MakeNotifier();
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"own-topic", "s1"});
  request.topic_prefix = "acme";
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  EXPECT_THAT(sent.unresolved_device_ids, ElementsAre("own-topic"));
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              ElementsAre(DeliveryTo("s1", "acme/devices/s1/notifications")));
}

// --- Batches ----------------------------------------------------------------

TEST_F(NotifierTest, SendManyGivesEachRequestItsOwnOutcomeInOrder) {
  Notifier notifier = MakeNotifier();
  NotificationRequest preview = Request(TargetKind::kDeviceIds, {"s2"});
  preview.validate_only = true;
  std::vector<absl::StatusOr<SendOutcome>> sent =
      notifier.SendMany({Request(TargetKind::kDeviceIds, {"s1"}),
                         Request(TargetKind::kDeviceIds, {"nobody"}), preview,
                         Request(TargetKind::kGroups, {"floor-2"})});
  ASSERT_EQ(sent.size(), 4u);
  ASSERT_TRUE(sent[0].ok()) << sent[0].status();
  EXPECT_THAT(StoredDeliveries(sent[0]->notification.notification_id),
              ElementsAre(DeliveryTo("s1", "devices/s1/notifications")));
  EXPECT_THAT(sent[1], StatusIs(absl::StatusCode::kNotFound));
  ASSERT_TRUE(sent[2].ok()) << sent[2].status();
  EXPECT_EQ(sent[2]->target_count, 1);
  EXPECT_THAT(sent[2]->preview, ElementsAre(Field(&ResolvedTarget::device_id, "s2")));
  ASSERT_TRUE(sent[3].ok()) << sent[3].status();
  EXPECT_EQ(sent[3]->target_count, 2);
  EXPECT_NE(sent[0]->notification.notification_id, sent[3]->notification.notification_id);
  EXPECT_EQ(Accepted("1", "accepted"), 2);
  EXPECT_EQ(Accepted("1", "validated"), 1);
  EXPECT_EQ(wakes_, 1) << "one wake for the whole batch";
}

TEST_F(NotifierTest, SendManyReportsAFailedInsertOnItsEntry) {
  Notifier notifier = MakeNotifier();
  notifications_.FailNextCalls(absl::UnavailableError("db down"), 1, "InsertNotification");
  std::vector<absl::StatusOr<SendOutcome>> sent = notifier.SendMany(
      {Request(TargetKind::kDeviceIds, {"s1"}), Request(TargetKind::kDeviceIds, {"s3"})});
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_THAT(sent[0], StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_TRUE(sent[1].ok()) << sent[1].status();
  EXPECT_EQ(sent[1]->target_count, 1);
}

TEST_F(NotifierTest, SendManyResolvesEveryTenantsDevicesInItsOwnTenant) {
  // Another tenant has a device with the same id: a batch that mixes
  // tenants must not resolve it against the first request's tenant.
  Device theirs;
  theirs.tenant_id = "other";
  theirs.device_id = "s1";
  theirs.topic = "other/s1/inbox";
  ASSERT_TRUE(devices_.CreateDevice(theirs).ok());
  Notifier notifier = MakeNotifier();
  NotificationRequest mine = Request(TargetKind::kDeviceIds, {"s1", "s2"});
  NotificationRequest other = Request(TargetKind::kDeviceIds, {"s1"});
  other.tenant_id = "other";
  std::vector<absl::StatusOr<SendOutcome>> sent = notifier.SendMany({mine, other});
  ASSERT_EQ(sent.size(), 2u);
  ASSERT_TRUE(sent[0].ok()) << sent[0].status();
  ASSERT_TRUE(sent[1].ok()) << sent[1].status();
  EXPECT_THAT(StoredDeliveries(sent[0]->notification.notification_id),
              ElementsAre(DeliveryTo("s1", "devices/s1/notifications"),
                          DeliveryTo("s2", "devices/s2/notifications")));
  auto page = notifications_.ListDeliveries("other", sent[1]->notification.notification_id, 10, "");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_THAT(page->items, ElementsAre(DeliveryTo("s1", "other/s1/inbox")));
}

TEST_F(NotifierTest, SendManyResolvesTheBatchsDeviceIdsInOneQuery) {
  Notifier notifier = MakeNotifier();
  std::vector<absl::StatusOr<SendOutcome>> sent = notifier.SendMany(
      {Request(TargetKind::kDeviceIds, {"s3", "s1"}), Request(TargetKind::kDeviceIds, {"s2"}),
       Request(TargetKind::kDeviceIds, {"off", "nobody"}),
       Request(TargetKind::kDeviceIds, {"s1", "nobody"})});
  EXPECT_EQ(devices_.resolve_calls(), 1);
  ASSERT_EQ(sent.size(), 4u);
  ASSERT_TRUE(sent[0].ok()) << sent[0].status();
  EXPECT_THAT(StoredDeliveries(sent[0]->notification.notification_id),
              ElementsAre(DeliveryTo("s1", "devices/s1/notifications"),
                          DeliveryTo("s3", "devices/s3/notifications")));
  ASSERT_TRUE(sent[1].ok()) << sent[1].status();
  EXPECT_EQ(sent[1]->target_count, 1);
  // A disabled and an unknown device: nothing resolves, as with Send.
  EXPECT_THAT(sent[2], StatusIs(absl::StatusCode::kNotFound));
  ASSERT_TRUE(sent[3].ok()) << sent[3].status();
  EXPECT_THAT(sent[3]->unresolved_device_ids, ElementsAre("nobody"));
}

// --- Handoff ------------------------------------------------------------------

TEST_F(NotifierTest, HandsOverWhatTheStoreClaimedAtInsert) {
  FakeDeliveryHandoff handoff(/*grant=*/10);
  Notifier notifier = MakeClaimingNotifier(handoff);
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1", "s3"});
  request.options.qos = 2;
  request.options.retain = true;
  request.options.ttl = absl::Minutes(5);
  const absl::Time before = absl::Now();
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  const absl::Time after = absl::Now();

  EXPECT_THAT(handoff.reserve_calls(), ElementsAre(2)) << "one reservation per notification";
  ASSERT_EQ(claiming_.requests().size(), 1u);
  EXPECT_EQ(claiming_.requests()[0].first, 2) << "the store claims what was reserved";
  EXPECT_EQ(claiming_.requests()[0].second, FakeDeliveryHandoff::kLease);
  const std::vector<FakeDeliveryHandoff::HandoffCall> handoffs = handoff.handoffs();
  ASSERT_EQ(handoffs.size(), 1u);
  EXPECT_EQ(handoffs[0].reserved, 2);
  EXPECT_GE(handoffs[0].claim_started, before);
  EXPECT_LE(handoffs[0].claim_started, after);
  const std::vector<DeliveryRecord> stored = StoredDeliveries(sent.notification.notification_id);
  ASSERT_EQ(stored.size(), 2u);
  const std::vector<ClaimedDelivery>& handed = handoffs[0].deliveries;
  ASSERT_EQ(handed.size(), 2u);
  for (size_t i = 0; i < handed.size(); ++i) {
    EXPECT_EQ(handed[i].delivery_id, stored[i].delivery_id) << "in target order";
    EXPECT_EQ(handed[i].topic, stored[i].topic);
    EXPECT_EQ(handed[i].notification_id, sent.notification.notification_id);
    EXPECT_EQ(handed[i].qos, 2);
    EXPECT_TRUE(handed[i].retain);
    EXPECT_EQ(*handed[i].payload, sent.notification.payload);
    EXPECT_EQ(handed[i].attempts, 1) << "the claim at insert is the first attempt";
    EXPECT_EQ(handed[i].accept_time, sent.notification.create_time);
    EXPECT_EQ(handed[i].expire_time, sent.notification.expire_time);
  }
  EXPECT_EQ(handed[0].topic, "devices/s1/notifications");
  EXPECT_EQ(handed[1].topic, "devices/s3/notifications");
  EXPECT_EQ(handoff.outstanding(), 0) << "the reservation is settled";
  EXPECT_EQ(wakes_, 0) << "nothing left in the outbox for the workers";
}

TEST_F(NotifierTest, WakesTheWorkersForDeliveriesLeftInTheOutbox) {
  FakeDeliveryHandoff handoff(/*grant=*/1);
  Notifier notifier = MakeClaimingNotifier(handoff);
  ASSERT_OK_AND_ASSIGN(SendOutcome sent,
                       notifier.Send(Request(TargetKind::kDeviceIds, {"s1", "s2", "s3"})));
  EXPECT_THAT(handoff.reserve_calls(), ElementsAre(3));
  const std::vector<FakeDeliveryHandoff::HandoffCall> handoffs = handoff.handoffs();
  ASSERT_EQ(handoffs.size(), 1u);
  EXPECT_EQ(handoffs[0].reserved, 1);
  ASSERT_EQ(handoffs[0].deliveries.size(), 1u) << "only what was granted";
  EXPECT_EQ(handoffs[0].deliveries[0].topic, "devices/s1/notifications");
  EXPECT_EQ(wakes_, 1) << "two deliveries wait in the outbox";
}

TEST_F(NotifierTest, SettlesTheReservationWhenTheStoreClaimsNothing) {
  // FakeNotificationStore claims nothing at insert, as a store may.
  FakeDeliveryHandoff handoff(/*grant=*/10);
  Notifier notifier = MakeNotifier(WithHandoff(&handoff));
  ASSERT_OK_AND_ASSIGN(SendOutcome sent,
                       notifier.Send(Request(TargetKind::kDeviceIds, {"s1", "s2"})));
  EXPECT_THAT(handoff.reserve_calls(), ElementsAre(2));
  ExpectOneHandoffOfNothing(handoff, /*reserved=*/2);
  EXPECT_EQ(wakes_, 1) << "every delivery is in the outbox";
  EXPECT_THAT(StoredDeliveries(sent.notification.notification_id),
              Each(Field(&DeliveryRecord::attempts, 0)));
}

TEST_F(NotifierTest, RefusedHandoffLeavesEverythingToTheWorkers) {
  FakeDeliveryHandoff handoff(/*grant=*/0);
  Notifier notifier = MakeClaimingNotifier(handoff);
  ASSERT_TRUE(notifier.Send(Request(TargetKind::kDeviceIds, {"s1", "s2"})).ok());
  EXPECT_THAT(handoff.reserve_calls(), ElementsAre(2));
  EXPECT_THAT(handoff.handoffs(), IsEmpty()) << "nothing reserved, nothing to settle";
  ASSERT_EQ(claiming_.requests().size(), 1u);
  EXPECT_EQ(claiming_.requests()[0].first, 0);
  EXPECT_EQ(wakes_, 1);
}

TEST_F(NotifierTest, ScheduledNotificationReservesNothing) {
  FakeDeliveryHandoff handoff(/*grant=*/10);
  Notifier notifier = MakeClaimingNotifier(handoff);
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1", "s2"});
  request.options.send_time =
      absl::FromCivil(absl::CivilSecond(2100, 1, 1, 0, 0, 0), absl::UTCTimeZone());
  ASSERT_OK_AND_ASSIGN(SendOutcome sent, notifier.Send(request));
  EXPECT_EQ(sent.notification.state, NotificationState::kScheduled);
  EXPECT_THAT(handoff.reserve_calls(), IsEmpty()) << "not due: nothing to publish now";
  EXPECT_THAT(handoff.handoffs(), IsEmpty());
  ASSERT_EQ(claiming_.requests().size(), 1u);
  EXPECT_EQ(claiming_.requests()[0].first, 0) << "the store claims nothing for it";
}

TEST_F(NotifierTest, DuplicateHandsNothingOverButSettlesItsReservation) {
  FakeDeliveryHandoff handoff(/*grant=*/10);
  Notifier notifier = MakeClaimingNotifier(handoff);
  NotificationRequest request = Request(TargetKind::kDeviceIds, {"s1", "s2"});
  request.options.idempotency_key = "order-42";
  ASSERT_OK_AND_ASSIGN(SendOutcome first, notifier.Send(request));
  ASSERT_OK_AND_ASSIGN(SendOutcome again, notifier.Send(request));
  ASSERT_TRUE(again.duplicate);

  EXPECT_THAT(handoff.reserve_calls(), ElementsAre(2, 2));
  const std::vector<FakeDeliveryHandoff::HandoffCall> handoffs = handoff.handoffs();
  ASSERT_EQ(handoffs.size(), 2u);
  EXPECT_EQ(handoffs[0].deliveries.size(), 2u);
  EXPECT_EQ(handoffs[1].reserved, 2);
  EXPECT_THAT(handoffs[1].deliveries, IsEmpty()) << "the first request's deliveries are not ours";
  EXPECT_EQ(handoff.outstanding(), 0);
  EXPECT_EQ(wakes_, 0);
}

TEST_F(NotifierTest, FailedInsertSettlesItsReservation) {
  FakeDeliveryHandoff handoff(/*grant=*/10);
  Notifier notifier = MakeClaimingNotifier(handoff);
  notifications_.FailNextCalls(absl::UnavailableError("db down"), 1, "InsertNotification");
  EXPECT_THAT(notifier.Send(Request(TargetKind::kDeviceIds, {"s1"})),
              StatusIs(absl::StatusCode::kUnavailable));
  ExpectOneHandoffOfNothing(handoff, /*reserved=*/1);
  EXPECT_EQ(wakes_, 0) << "nothing committed";
}

TEST_F(NotifierTest, SendManyReservesAndHandsOverPerNotification) {
  FakeDeliveryHandoff handoff(/*grant=*/2);
  Notifier notifier = MakeClaimingNotifier(handoff);
  std::vector<absl::StatusOr<SendOutcome>> sent =
      notifier.SendMany({Request(TargetKind::kDeviceIds, {"s1"}),
                         Request(TargetKind::kGroups, {"floor-1", "floor-2"})});
  ASSERT_EQ(sent.size(), 2u);
  ASSERT_TRUE(sent[0].ok()) << sent[0].status();
  ASSERT_TRUE(sent[1].ok()) << sent[1].status();
  EXPECT_THAT(handoff.reserve_calls(), ElementsAre(1, 3));
  const std::vector<FakeDeliveryHandoff::HandoffCall> handoffs = handoff.handoffs();
  ASSERT_EQ(handoffs.size(), 2u);
  ASSERT_EQ(handoffs[0].deliveries.size(), 1u);
  EXPECT_EQ(handoffs[0].deliveries[0].notification_id, sent[0]->notification.notification_id);
  ASSERT_EQ(handoffs[1].deliveries.size(), 2u);
  EXPECT_EQ(handoffs[1].deliveries[0].notification_id, sent[1]->notification.notification_id);
  EXPECT_EQ(handoff.outstanding(), 0);
  EXPECT_EQ(wakes_, 1) << "one wake for the delivery the second left in the outbox";
}

}  // namespace
}  // namespace herald
