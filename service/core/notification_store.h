// NotificationStore: notifications and their per-target deliveries, stored as
// a transactional outbox. The API inserts a notification with all of its
// deliveries in one transaction; delivery workers (on any replica) claim due
// deliveries with a lease on the database's clock, publish them, and record
// the outcomes. PgNotificationStore (service/store) implements it.
//
//   auto inserted = store.InsertNotification(record, targets);
//   auto claimed = store.ClaimDueDeliveries(200, absl::Seconds(30));
//   store.RecordOutcomes({{.delivery_id = id, .state = DeliveryState::kDelivered}});
#ifndef HERALD_SERVICE_CORE_NOTIFICATION_STORE_H_
#define HERALD_SERVICE_CORE_NOTIFICATION_STORE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/core/types.h"

namespace herald {

// The result of InsertNotification.
struct InsertedNotification {
  NotificationRecord notification;  // as stored (the earlier one for a duplicate)
  bool duplicate = false;           // an earlier request had the same idempotency key
  // The delivery ids of the targets claimed at insert (the first
  // `claim_count` of them, in target order); empty for a duplicate or when
  // the store does not claim at insert.
  std::vector<int64_t> claimed_delivery_ids;
};

// One entry of InsertNotifications; both pointers must stay valid for the call.
struct NotificationToInsert {
  const NotificationRecord* notification;
  const std::vector<ResolvedTarget>* targets;
  // Claim the first `claim_count` deliveries in the same transaction, as
  // ClaimDueDeliveries would (one attempt counted, leased for `claim_lease`),
  // so that the caller can publish them without a claim round trip. Only for
  // a notification due now; a store may claim none (InsertNotification does).
  int64_t claim_count = 0;
  absl::Duration claim_lease = absl::ZeroDuration();
};

// Implementations are thread-safe. Errors: kUnavailable when the database
// cannot be reached, kInternal for anything unexpected, plus those named below.
class NotificationStore {
 public:
  virtual ~NotificationStore() = default;

  // Atomically stores `notification` (tenant, id, target, content, options,
  // payload, fingerprint, expire time) and one pending delivery per target.
  // With an idempotency key that the tenant used before: stores nothing and
  // returns the earlier notification with duplicate = true, or
  // kFailedPrecondition if its request fingerprint differs. Safe against
  // concurrent inserts of the same key from several replicas. The same
  // notification again (same tenant, id and payload: a retry whose first
  // reply was lost) stores nothing more and returns it, not as a duplicate;
  // another notification under a stored id is kAlreadyExists.
  virtual absl::StatusOr<InsertedNotification> InsertNotification(
      const NotificationRecord& notification, const std::vector<ResolvedTarget>& targets) = 0;

  // Several notifications, each with the result InsertNotification would
  // give it, in order; a SendNotifications batch. An implementation may
  // commit them in shared transactions (PostgreSQL does); this default
  // inserts them one by one.
  virtual std::vector<absl::StatusOr<InsertedNotification>> InsertNotifications(
      const std::vector<NotificationToInsert>& entries) {
    std::vector<absl::StatusOr<InsertedNotification>> results;
    results.reserve(entries.size());
    for (const NotificationToInsert& entry : entries) {
      results.push_back(InsertNotification(*entry.notification, *entry.targets));
    }
    return results;
  }

  // The notification with its delivery counts and derived state.
  // kNotFound if the tenant has no such notification.
  virtual absl::StatusOr<NotificationRecord> GetNotification(
      const std::string& tenant_id, const std::string& notification_id) = 0;

  // A page of the notification's deliveries in target order.
  // kInvalidArgument for a token not issued by this method.
  virtual absl::StatusOr<Page<DeliveryRecord>> ListDeliveries(
      const std::string& tenant_id, const std::string& notification_id, int page_size,
      const std::string& page_token) = 0;

  // The tenant's notifications, newest first, with counts and state.
  // kInvalidArgument for a token not issued by this method.
  virtual absl::StatusOr<Page<NotificationRecord>> ListNotifications(
      const std::string& tenant_id, int page_size, const std::string& page_token) = 0;

  // Marks the notification's pending deliveries cancelled; returns how many.
  // kNotFound if the tenant has no such notification.
  virtual absl::StatusOr<int64_t> CancelNotification(const std::string& tenant_id,
                                                     const std::string& notification_id) = 0;

  // Claims up to `max` pending deliveries that are due (send time reached,
  // retry backoff over, no live lease), oldest first, skipping rows that
  // other workers hold. Each claim counts one attempt and holds a lease of
  // `lease` on the database's clock: if no outcome is recorded by then, the
  // delivery becomes due again (so a dead replica's work is taken over).
  // Deliveries whose expire time has passed are marked expired, not returned.
  virtual absl::StatusOr<std::vector<ClaimedDelivery>> ClaimDueDeliveries(int max,
                                                                         absl::Duration lease) = 0;

  // Records the outcomes of publish attempts in one transaction: terminal
  // states complete the delivery; kPending releases it to be retried after
  // `retry_after` (database clock). Unknown ids are ignored.
  virtual absl::Status RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes) = 0;

  // Moves the lease of deliveries this caller claimed and still holds (not
  // yet published) to now() + `lease`, so that a slow broker does not send
  // them back to the outbox unpublished; only pending rows change. Call it
  // while the previous lease still runs. This default says kUnimplemented:
  // the dispatcher then releases such deliveries instead.
  virtual absl::Status ExtendLeases(const std::vector<int64_t>& delivery_ids,
                                    absl::Duration lease) {
    (void)delivery_ids;
    (void)lease;
    return absl::UnimplementedError("extend_leases: not supported by this store");
  }

  // Totals of the tenant's deliveries (sent, succeeded, failed, by QoS and
  // provider), last sent time, and the number of notifications and devices.
  virtual absl::StatusOr<StoredStats> GetStats(const std::string& tenant_id) = 0;

  // Pending deliveries of all tenants: the backlog.
  virtual absl::StatusOr<int64_t> CountBacklog() = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_NOTIFICATION_STORE_H_
