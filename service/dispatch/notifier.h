// Notifier: accepts a notification request. It validates it, resolves the
// targets to topics (one database round trip), encodes the payload once, and
// commits the notification with all its deliveries before returning, so
// that nothing it acknowledged can be lost. With a DeliveryHandoff, as many
// deliveries as the local dispatcher can take are claimed in that same
// transaction and handed straight to it; for the rest it wakes the delivery
// workers. The API layer is a thin translation over it.
//
//   Notifier notifier(devices, notifications, metrics, wake, options);
//   absl::StatusOr<SendOutcome> sent = notifier.Send(request);
#ifndef HERALD_SERVICE_DISPATCH_NOTIFIER_H_
#define HERALD_SERVICE_DISPATCH_NOTIFIER_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "service/core/device_store.h"
#include "service/core/notification_store.h"
#include "service/core/types.h"
#include "service/core/validation.h"
#include "service/dispatch/delivery_handoff.h"
#include "service/metrics/herald_metrics.h"

namespace herald {

struct NotifierOptions {
  std::string notification_topic_template = "devices/{device_id}/notifications";
  size_t max_payload_bytes = 65536;
  RequestLimits limits;
  // How many resolved targets a validate_only response lists.
  size_t max_preview_targets = 1000;
  // Where deliveries claimed at insert go (the local dispatcher); none: every
  // delivery waits in the outbox for a worker's claim.
  DeliveryHandoff* handoff = nullptr;
};

// What Send reports back.
struct SendOutcome {
  NotificationRecord notification;  // id, state and counts as stored
  int64_t target_count = 0;
  std::vector<std::string> unresolved_device_ids;
  bool duplicate = false;
  std::vector<ResolvedTarget> preview;  // validate_only: the targets and topics
};

// Thread-safe (the stores are; the rest is immutable).
class Notifier {
 public:
  // `wake_workers` is called after each commit (it must not block).
  Notifier(DeviceStore& devices, NotificationStore& notifications, HeraldMetrics& metrics,
           std::function<void()> wake_workers, NotifierOptions options);

  // kInvalidArgument for a malformed request (naming the field), kNotFound
  // when no target resolves, kFailedPrecondition for a reused idempotency
  // key with different content, kUnavailable when the database is down.
  absl::StatusOr<SendOutcome> Send(const NotificationRequest& request);

  // Several independent requests (a SendNotifications batch): each outcome
  // as Send would give it, in order, but the accepted ones are committed
  // together (NotificationStore::InsertNotifications), so a batch of 100
  // costs a transaction or two, not 100.
  std::vector<absl::StatusOr<SendOutcome>> SendMany(
      const std::vector<NotificationRequest>& requests);

 private:
  // A request validated, resolved and encoded, ready to insert.
  struct Prepared {
    int qos = -1;  // the metrics label
    NotificationRecord record;
    std::vector<ResolvedTarget> targets;
    SendOutcome outcome;          // filled as far as known before the insert
    bool validated_only = false;  // validate_only: `outcome` is the answer
  };

  // The devices of a batch's device_ids targets, looked up together.
  using DevicesById = absl::flat_hash_map<std::string, Device>;

  // `prefetched`, if set, holds every device that a device_ids target can
  // resolve to (SendMany looks them up in one query).
  absl::StatusOr<Prepared> Prepare(const NotificationRequest& request,
                                   const DevicesById* prefetched = nullptr);
  // Inserts the prepared notifications together, hands what was claimed at
  // insert to the dispatcher and wakes the workers for the rest.
  std::vector<absl::StatusOr<InsertedNotification>> Insert(
      const std::vector<Prepared*>& batch);
  // Completes `prepared` with the insert's result (metrics and logs included).
  absl::StatusOr<SendOutcome> Finish(Prepared& prepared,
                                     absl::StatusOr<InsertedNotification> inserted);

  absl::StatusOr<std::vector<ResolvedTarget>> Resolve(const NotificationRequest& request,
                                                      const DevicesById* prefetched,
                                                      std::vector<std::string>* unresolved);

  DeviceStore& devices_;
  NotificationStore& notifications_;
  HeraldMetrics& metrics_;
  std::function<void()> wake_workers_;
  NotifierOptions options_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_NOTIFIER_H_
