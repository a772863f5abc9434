// DeliveryDispatcher: the delivery workers. Deliveries reach it two ways:
// handed over by the Notifier, claimed in the insert's own transaction
// (DeliveryHandoff), or claimed from the outbox (NotificationStore) in
// batches by its claiming threads, which keep a batch ahead of the
// provider's in-flight window so that it never drains while a claim runs.
// A publishing thread feeds the window from that ready queue; every outcome
// is recorded back in the store, failures retried with backoff. Claims carry
// a lease on the database clock, so any number of replicas can run
// dispatchers over one database, and work held by a replica that dies is
// taken over when its lease ends. What is held in memory is only an
// optimisation: a delivery is done when the store says so.
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
#include "service/dispatch/delivery_handoff.h"
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
  // How long a few outcomes wait for more before they are written, so that
  // a trickle of deliveries does not cost a commit each.
  absl::Duration outcome_linger = absl::Milliseconds(10);
  // Claimed beyond the provider's free in-flight window, so that the next
  // claim's round trip overlaps publishing instead of stalling it.
  int claim_ahead = 500;
  // At most this many deliveries held in memory, waiting for the window
  // (claimed ahead plus handed over); a handoff beyond it stays in the outbox.
  int64_t max_ready = 100000;
  // On StopClaiming, how long the publishing thread may take to hand what
  // is ready to the provider; the rest is released for another replica.
  absl::Duration drain_timeout = absl::Seconds(5);
  // Each publish carries the content type and a notification_id user
  // property (MQTT 5). Without them a publish costs Paho C about half as
  // many allocations, each of which Debian's build tracks under one lock.
  bool message_properties = true;
};

// Thread-safe. Start once; StopClaiming and Stop once each, in that order.
class DeliveryDispatcher : public DeliveryHandoff {
 public:
  DeliveryDispatcher(NotificationStore& store, Provider& provider, HeraldMetrics& metrics,
                     DispatcherOptions options);
  ~DeliveryDispatcher() override;

  DeliveryDispatcher(const DeliveryDispatcher&) = delete;
  DeliveryDispatcher& operator=(const DeliveryDispatcher&) = delete;

  void Start();

  // Tells the workers that new deliveries are due. Never blocks.
  void Wake();

  // Stops claiming and accepting handoffs, then lets the publishing thread
  // hand what is ready to the provider (up to drain_timeout, while
  // connected). Outcomes keep being recorded.
  void StopClaiming();

  // Releases deliveries still held in memory (due again at once, for any
  // replica), records every outcome reported so far and stops the recorder.
  // Publishes whose outcome never arrives are retried by whichever replica
  // claims them once their lease ends.
  void Stop();

  // DeliveryHandoff. Refuses (0) once stopping or while the provider is not
  // connected; handed-over deliveries are published before those claimed
  // later. Deliveries still waiting when two thirds of their lease have
  // passed get their lease extended (NotificationStore::ExtendLeases), or
  // are released to the outbox if that fails.
  int64_t ReserveHandoff(int64_t wanted) override;
  absl::Duration HandoffLease() const override { return options_.lease; }
  void Handoff(std::vector<ClaimedDelivery> deliveries, int64_t reserved,
               absl::Time claim_started) override;

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

  // A claimed delivery waiting for the in-flight window.
  struct Ready {
    ClaimedDelivery delivery;
    absl::Time renew_at;   // two thirds of its lease: extend it then
    absl::Time lease_end;  // local estimate, never later than the database's
  };

  void ClaimLoop();
  void PublishLoop();
  void RecordLoop();
  void Publish(ClaimedDelivery delivery, absl::Time now);
  void OnPublished(const Attempt& attempt, const PublishResult& result);
  // Queues deliveries claimed at `claim_started` for the publishing thread.
  void AddReady(std::vector<ClaimedDelivery> deliveries, absl::Time claim_started)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives a delivery that will not be published now back to the outbox,
  // due at once (no attempt is recorded against it beyond the claim's).
  void Release(int64_t delivery_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Extends the lease of ready deliveries at two thirds of it (a slow
  // broker); if the store cannot, gives them back to the outbox.
  void RenewLeases();
  // Counts and logs deliveries given back because their lease ran out.
  void ReportGivenBack(int64_t deliveries);
  // Deliveries claimed or handed over and not finished: ready, reserved
  // for a claim or a handoff, or in flight.
  int64_t Outstanding() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How many deliveries the next claim may take (0: wait), given the
  // provider's free in-flight window; reserves them.
  int ReserveClaim(int64_t provider_capacity) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The smallest claim worth a database round trip while deliveries are
  // outstanding: a quarter of what may be outstanding (an idle dispatcher
  // claims whatever is due, however little).
  int64_t WorthwhileClaim(int64_t provider_capacity) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  NotificationStore& store_;
  Provider& provider_;
  HeraldMetrics& metrics_;
  const DispatcherOptions options_;
  const RetryPolicy retry_policy_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;      // claimers wait here for Wake, room or stop
  absl::CondVar publish_cv_;   // the publisher waits here for ready work or window
  absl::CondVar outcome_cv_;   // the recorder waits here for outcomes
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_for_room_ ABSL_GUARDED_BY(mu_) = false;
  int64_t wake_claimers_below_ ABSL_GUARDED_BY(mu_) = 0;  // outstanding deliveries
  bool publisher_blocked_ ABSL_GUARDED_BY(mu_) = false;   // the window is full
  int64_t wake_publisher_below_ ABSL_GUARDED_BY(mu_) = 0;  // in flight
  bool stop_claiming_ ABSL_GUARDED_BY(mu_) = false;
  bool accepting_handoffs_ ABSL_GUARDED_BY(mu_) = false;  // between Start and StopClaiming
  bool stop_publishing_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_recording_ ABSL_GUARDED_BY(mu_) = false;
  int64_t claim_reserved_ ABSL_GUARDED_BY(mu_) = 0;    // a claim is running for them
  int64_t handoff_reserved_ ABSL_GUARDED_BY(mu_) = 0;  // an insert is claiming them
  std::deque<Ready> ready_ ABSL_GUARDED_BY(mu_);
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;  // taken by the publisher, outcome pending
  std::deque<DeliveryOutcome> outcomes_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> claimers_;
  std::thread publisher_;
  std::thread recorder_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_DELIVERY_DISPATCHER_H_
