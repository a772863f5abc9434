// FakeNotificationStore: an in-memory NotificationStore (the outbox) for unit
// tests. It keeps the interface's contracts as PgNotificationStore does:
// idempotency keys per tenant with request fingerprints, claims that count
// an attempt and hold a lease, expiry at claim time, RecordOutcomes that only
// touches pending deliveries, page tokens from core/page_token.h. Time comes
// from an injected clock, so leases, backoffs, send times and TTLs move only
// when the test moves the clock.
//
//   herald::testing::FakeClock clock;
//   herald::testing::FakeNotificationStore store(clock.AsFunction());
//   store.InsertNotification(record, {{.device_id = "s1", .topic = "devices/s1/n"}});
//   auto claimed = store.ClaimDueDeliveries(10, absl::Seconds(30));
//   store.FailNextCalls(absl::UnavailableError("db down"), 1, "RecordOutcomes");
//   ASSERT_TRUE(store.AwaitRecordedOutcomes(1, absl::Seconds(10)));
#ifndef HERALD_TESTS_TESTING_FAKES_FAKE_NOTIFICATION_STORE_H_
#define HERALD_TESTS_TESTING_FAKES_FAKE_NOTIFICATION_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/notification_store.h"
#include "service/core/types.h"
#include "tests/testing/fakes/fault_injector.h"

namespace herald::testing {

// Thread-safe.
class FakeNotificationStore final : public NotificationStore {
 public:
  // `clock` is "the database's clock"; null means a fixed kFakeEpoch.
  explicit FakeNotificationStore(std::function<absl::Time()> clock = nullptr);

  // NotificationStore. Page sizes as PgNotificationStore: <= 0 means 50, at
  // most 1000. Every delivery counts under provider "mqtt" in GetStats.
  absl::StatusOr<InsertedNotification> InsertNotification(
      const NotificationRecord& notification, const std::vector<ResolvedTarget>& targets) override;
  absl::StatusOr<NotificationRecord> GetNotification(const std::string& tenant_id,
                                                     const std::string& notification_id) override;
  absl::StatusOr<Page<DeliveryRecord>> ListDeliveries(const std::string& tenant_id,
                                                      const std::string& notification_id,
                                                      int page_size,
                                                      const std::string& page_token) override;
  absl::StatusOr<Page<NotificationRecord>> ListNotifications(
      const std::string& tenant_id, int page_size, const std::string& page_token) override;
  absl::StatusOr<int64_t> CancelNotification(const std::string& tenant_id,
                                             const std::string& notification_id) override;
  // kInvalidArgument if `max` < 1, as PgNotificationStore.
  absl::StatusOr<std::vector<ClaimedDelivery>> ClaimDueDeliveries(int max,
                                                                 absl::Duration lease) override;
  absl::Status RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes) override;
  absl::Status ExtendLeases(const std::vector<int64_t>& delivery_ids,
                            absl::Duration lease) override;
  absl::StatusOr<StoredStats> GetStats(const std::string& tenant_id) override;
  absl::StatusOr<int64_t> CountBacklog() override;

  // Test controls and inspection.

  // The next `n` calls (of `method` only, e.g. "RecordOutcomes", when given)
  // fail with `status` and change nothing.
  void FailNextCalls(absl::Status status, int n, std::string method = "") {
    faults_.FailNextCalls(std::move(status), n, std::move(method));
  }

  // Devices reported by GetStats (the fake holds no devices).
  void set_device_count(int64_t devices);

  // One delivery, or nullopt for an unknown id.
  std::optional<DeliveryRecord> GetDelivery(int64_t delivery_id) const;
  // Every delivery of every tenant, in id order.
  std::vector<DeliveryRecord> AllDeliveries() const;
  // Every outcome that RecordOutcomes accepted, in order (also those for
  // unknown or no longer pending deliveries, which changed nothing).
  std::vector<DeliveryOutcome> recorded_outcomes() const;
  // How many deliveries successful ExtendLeases calls extended, in total.
  int64_t extended_leases() const;

  // Successful ClaimDueDeliveries calls, and the `max` each asked for.
  std::vector<int> claim_requests() const;
  // Successful inserts that stored a new notification.
  int stored_notifications() const;

  // Waits (on the fake's own state, with a deadline, never a fixed sleep)
  // until RecordOutcomes has accepted at least `count` outcomes; false on
  // timeout. For tests of background workers.
  bool AwaitRecordedOutcomes(size_t count, absl::Duration timeout) const;
  // Waits until at least `count` successful claims returned something.
  bool AwaitClaims(int count, absl::Duration timeout) const;
  // Waits until `predicate` holds for the list of all deliveries.
  bool AwaitDeliveries(const std::function<bool(const std::vector<DeliveryRecord>&)>& predicate,
                       absl::Duration timeout) const;

 private:
  struct StoredNotification {
    NotificationRecord record;  // counts and state are derived on read
  };
  struct StoredDelivery {
    DeliveryRecord record;
    std::string tenant_id;
    std::string notification_id;
    bool retain = false;
    absl::Time next_attempt_time;
    std::optional<absl::Time> expire_time;
  };

  absl::Time Now() const { return clock_(); }
  NotificationRecord WithCounts(const StoredNotification& stored, absl::Time now) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::vector<DeliveryRecord> AllDeliveriesLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const std::function<absl::Time()> clock_;
  FaultInjector faults_;
  mutable absl::Mutex mu_;
  std::map<std::string, StoredNotification> notifications_ ABSL_GUARDED_BY(mu_);  // by id
  // (tenant, idempotency key) -> notification id.
  std::map<std::pair<std::string, std::string>, std::string> idempotency_keys_
      ABSL_GUARDED_BY(mu_);
  std::map<int64_t, StoredDelivery> deliveries_ ABSL_GUARDED_BY(mu_);  // by id
  int64_t next_delivery_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<DeliveryOutcome> recorded_ ABSL_GUARDED_BY(mu_);
  std::vector<int> claim_requests_ ABSL_GUARDED_BY(mu_);
  int nonempty_claims_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t extended_leases_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t device_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_FAKE_NOTIFICATION_STORE_H_
