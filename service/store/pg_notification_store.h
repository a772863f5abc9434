// PgNotificationStore: notifications and their deliveries in PostgreSQL
// (tables `notifications` and `deliveries`, migrations/0001_initial.sql),
// used as a transactional outbox that any number of replicas work off.
//
// How the outbox behaves:
//   * InsertNotification writes the notification and one `pending` delivery
//     per target in one transaction, so an acknowledged notification is never
//     lost and never half-stored.
//   * A delivery's `next_attempt_time` is its due time: the send time at
//     first, then the end of a worker's lease, then the retry backoff.
//     ClaimDueDeliveries takes due rows with FOR UPDATE SKIP LOCKED, so
//     replicas never claim the same delivery, and a replica that dies
//     mid-publish only delays its deliveries until their lease ends.
//   * All times come from the database's clock, so replicas' clocks need not
//     agree. Times are stored with PostgreSQL's precision: microseconds.
//
//   PgNotificationStore notifications(pool.get(), &query_metrics);
//   absl::StatusOr<InsertedNotification> inserted =
//       notifications.InsertNotification(record, targets);
//   absl::StatusOr<std::vector<ClaimedDelivery>> work =
//       notifications.ClaimDueDeliveries(200, absl::Seconds(30));
#ifndef HERALD_SERVICE_STORE_PG_NOTIFICATION_STORE_H_
#define HERALD_SERVICE_STORE_PG_NOTIFICATION_STORE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/notification_store.h"
#include "service/core/query_observer.h"
#include "service/core/types.h"
#include "service/store/pg_connection_pool.h"

namespace herald {

// Thread-safe: every call borrows its own pooled connection. Operation names
// reported to the observer: insert_notification, get_notification,
// list_deliveries, list_notifications, cancel_notification,
// claim_deliveries, record_outcomes, get_stats, count_backlog.
class PgNotificationStore final : public NotificationStore {
 public:
  // `pool` must outlive the store. `observer` may be null (nothing is
  // reported); otherwise it too must outlive the store.
  PgNotificationStore(PgConnectionPool* pool, QueryObserver* observer,
                      int max_insert_batches = 2);

  // Uses notification.tenant_id, notification_id (REQUIRES: unique, e.g. a
  // UUID; kAlreadyExists if taken), target, content, options, payload,
  // request_fingerprint and expire_time; ignores create_time, counts and
  // state, which it returns as stored. Deliveries are due at the send time,
  // or at once without one. 100,000 targets take one statement.
  //
  // Group commit: concurrent calls share transactions. A caller that finds
  // fewer than `max_insert_batches` transactions running commits whatever is
  // queued (up to 128 notifications) in one transaction; the others wait for
  // it. Alone, a call is one transaction of its own, so nothing waits for a
  // batch to fill. One refused entry (a reused idempotency key) does not
  // affect the others; if a batch fails as a whole, its entries are retried
  // one by one.
  absl::StatusOr<InsertedNotification> InsertNotification(
      const NotificationRecord& notification, const std::vector<ResolvedTarget>& targets) override;

  // Queues every entry for the group commit at once, so a batch of 100
  // takes one or two transactions instead of 100. Claims at insert as asked
  // (NotificationToInsert::claim_count).
  std::vector<absl::StatusOr<InsertedNotification>> InsertNotifications(
      const std::vector<NotificationToInsert>& entries) override;

  absl::StatusOr<NotificationRecord> GetNotification(const std::string& tenant_id,
                                                     const std::string& notification_id) override;

  // Ordered by delivery id (the order of the targets at insertion);
  // page_size <= 0 means 50, at most 1,000. kNotFound if the tenant has no
  // such notification.
  absl::StatusOr<Page<DeliveryRecord>> ListDeliveries(const std::string& tenant_id,
                                                      const std::string& notification_id,
                                                      int page_size,
                                                      const std::string& page_token) override;

  // Newest first; page_size <= 0 means 50, at most 1,000.
  absl::StatusOr<Page<NotificationRecord>> ListNotifications(
      const std::string& tenant_id, int page_size, const std::string& page_token) override;

  // Deliveries being published right now are cancelled too: their outcome,
  // when it comes, is ignored.
  absl::StatusOr<int64_t> CancelNotification(const std::string& tenant_id,
                                             const std::string& notification_id) override;

  // REQUIRES: max >= 1 (kInvalidArgument otherwise), lease > 0.
  absl::StatusOr<std::vector<ClaimedDelivery>> ClaimDueDeliveries(int max,
                                                                  absl::Duration lease) override;

  // Only deliveries still pending change, so a delivery cancelled (or
  // expired) while it was being published keeps that state. An outcome's
  // error, when not empty, becomes the delivery's last_error; an empty one
  // keeps the previous error. kInvalidArgument for an outcome state outside
  // DeliveryState.
  absl::Status RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes) override;

  // One statement for all of them.
  absl::Status ExtendLeases(const std::vector<int64_t>& delivery_ids,
                            absl::Duration lease) override;

  // `sent` counts deliveries published at least once (attempts > 0),
  // whatever became of them; `succeeded` = delivered + no_subscriber +
  // received. Scans the tenant's deliveries: meant for an occasional
  // GetStats call, not for a hot path.
  absl::StatusOr<StoredStats> GetStats(const std::string& tenant_id) override;

  absl::StatusOr<int64_t> CountBacklog() override;

 private:
  struct PendingInsert {
    const NotificationRecord* notification;
    const std::vector<ResolvedTarget>* targets;
    int64_t claim_count = 0;
    absl::Duration claim_lease;
    std::optional<absl::StatusOr<InsertedNotification>> result;
  };

  // Inserts `batch` in one transaction and fills every entry's result.
  void InsertBatch(const std::vector<PendingInsert*>& batch);

  PgConnectionPool* const pool_;
  QueryObserver* const observer_;
  const int max_insert_batches_;

  absl::Mutex batch_mu_;
  absl::CondVar batch_done_;
  std::deque<PendingInsert*> insert_queue_ ABSL_GUARDED_BY(batch_mu_);
  int running_batches_ ABSL_GUARDED_BY(batch_mu_) = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_NOTIFICATION_STORE_H_
