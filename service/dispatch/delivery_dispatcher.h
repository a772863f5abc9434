// DeliveryDispatcher: the delivery workers. They claim due deliveries from
// the outbox (NotificationStore) in batches, publish each through the
// Provider, and record every outcome back in the store, retrying failures
// with backoff. Claims carry a lease on the database clock, so any number of
// replicas can run dispatchers over one database, and work held by a replica
// that dies is taken over when its lease ends. The Provider's buffer is only
// an optimisation: a delivery is done when the store says so.
//
//   DeliveryDispatcher dispatcher(store, provider, metrics, options);
//   dispatcher.Start();
//   dispatcher.Wake();             // after committing new deliveries
//   dispatcher.StopClaiming();     // on shutdown, then provider.Stop(grace)
//   dispatcher.Stop();             // records the last outcomes
#ifndef HERALD_SERVICE_DISPATCH_DELIVERY_DISPATCHER_H_
#define HERALD_SERVICE_DISPATCH_DELIVERY_DISPATCHER_H_

#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/provider.h"
#include "service/core/notification_store.h"
#include "service/dispatch/retry_policy.h"
#include "service/metrics/herald_metrics.h"

namespace herald {

struct DispatcherOptions {
  int workers = 2;              // claiming threads
  int batch_size = 500;         // deliveries per claim
  absl::Duration lease = absl::Seconds(30);
  absl::Duration poll_interval = absl::Milliseconds(250);  // for work of other replicas
  RetryOptions retry;
  size_t max_outcomes_per_write = 2000;
};

// Thread-safe. Start once; StopClaiming and Stop once each, in that order.
class DeliveryDispatcher {
 public:
  DeliveryDispatcher(NotificationStore& store, Provider& provider, HeraldMetrics& metrics,
                     DispatcherOptions options);
  ~DeliveryDispatcher();

  DeliveryDispatcher(const DeliveryDispatcher&) = delete;
  DeliveryDispatcher& operator=(const DeliveryDispatcher&) = delete;

  void Start();

  // Tells the workers that new deliveries are due. Never blocks.
  void Wake();

  // Stops claiming new work and waits for the claiming threads to finish
  // handing their batch to the provider. Outcomes keep being recorded.
  void StopClaiming();

  // Records every outcome reported so far and stops the recorder. Publishes
  // whose outcome never arrives are retried by whichever replica claims them
  // once their lease ends.
  void Stop();

  // Publishes handed to the provider whose outcome has not been recorded yet.
  int64_t in_flight() const;

 private:
  struct Attempt {
    int64_t delivery_id;
    std::string notification_id;
    int attempts;
    int qos;
    absl::Time accept_time;
    absl::Time publish_time;
  };

  void ClaimLoop();
  void RecordLoop();
  void Publish(const ClaimedDelivery& delivery);
  void OnPublished(const Attempt& attempt, const PublishResult& result);
  // How many deliveries the next claim may take (0: wait), given the
  // provider's free in-flight window; reserves them.
  int ReserveCapacity(int64_t provider_capacity) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The smallest claim worth a database round trip while publishes are in
  // flight: a quarter of the in-flight window (an idle dispatcher claims
  // whatever is due, however little).
  int64_t WorthwhileClaim(int64_t provider_capacity) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  NotificationStore& store_;
  Provider& provider_;
  HeraldMetrics& metrics_;
  const DispatcherOptions options_;
  const RetryPolicy retry_policy_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;      // claimers wait here for Wake, capacity or stop
  absl::CondVar outcome_cv_;   // the recorder waits here for outcomes
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_for_capacity_ ABSL_GUARDED_BY(mu_) = false;
  int64_t wake_below_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_claiming_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_recording_ ABSL_GUARDED_BY(mu_) = false;
  int64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;   // claimed, not yet handed to the provider
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // handed to the provider, outcome pending
  std::deque<DeliveryOutcome> outcomes_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> claimers_;
  std::thread recorder_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_DELIVERY_DISPATCHER_H_
