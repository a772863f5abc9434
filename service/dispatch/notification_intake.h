// NotificationIntake: single notification requests sent together, without a
// thread held per call. Callers (the gRPC callback handler of
// SendNotification) submit a request with a completion callback and return
// at once; a few intake threads take whatever has queued meanwhile, send it
// per tenant through Notifier::SendMany (one device lookup, one insert
// transaction, one handoff for the lot) and call each callback with that
// request's own outcome. Under load a call costs a queue push instead of the
// thread hand-offs of a blocking handler, a device lookup group and a group
// commit; alone, a request is sent at once. While one group is being sent,
// requests gather for the next unless enough wait to justify a second
// group at once (parallel_group_min).
//
//   NotificationIntake intake(notifier, {.threads = 2});
//   intake.Start();
//   intake.Submit(std::move(request), [](absl::StatusOr<SendOutcome> sent) { ... });
//   intake.Stop();  // sends what is queued, then refuses new requests
#ifndef HERALD_SERVICE_DISPATCH_NOTIFICATION_INTAKE_H_
#define HERALD_SERVICE_DISPATCH_NOTIFICATION_INTAKE_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/types.h"
#include "service/dispatch/notifier.h"

namespace herald {

struct NotificationIntakeOptions {
  int threads = 2;            // intake threads; each sends one group at a time
  size_t max_group = 128;     // requests sent together
  size_t max_queued = 10000;  // beyond: kResourceExhausted at once
  // While a group is being sent, another thread starts one only when this
  // many requests wait: a few requests are cheaper added to the next group
  // than sent in a transaction of their own, and a second thread still
  // takes over when the first is slow (e.g. a stalled connection).
  size_t parallel_group_min = 32;
};

// Thread-safe. Start once, Stop once.
class NotificationIntake {
 public:
  // Called exactly once per Submit, on an intake thread (or inline when the
  // request is refused); it must not block for long.
  using Done = std::function<void(absl::StatusOr<SendOutcome>)>;

  NotificationIntake(Notifier& notifier, NotificationIntakeOptions options);
  ~NotificationIntake();

  NotificationIntake(const NotificationIntake&) = delete;
  NotificationIntake& operator=(const NotificationIntake&) = delete;

  void Start();

  // Queues `request`; `done` gets what Notifier::Send would have returned.
  // kResourceExhausted when max_queued requests wait already, kUnavailable
  // before Start or after Stop. A request still waiting when `deadline`
  // (the caller's) passes is answered kDeadlineExceeded and not stored: its
  // caller has given up and may send it again.
  void Submit(NotificationRequest request, Done done,
              absl::Time deadline = absl::InfiniteFuture());

  // Sends everything queued, then stops the threads; later Submits are
  // refused with kUnavailable.
  void Stop();

 private:
  struct Pending {
    NotificationRequest request;
    Done done;
    absl::Time deadline;
  };

  void Loop();
  // Whether a free thread should start a group now.
  bool ShouldStartGroup() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends `group` (any tenants) and reports every outcome.
  void Send(std::vector<Pending>& group);

  Notifier& notifier_;
  const NotificationIntakeOptions options_;

  absl::Mutex mu_;
  absl::CondVar work_cv_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int sending_groups_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> threads_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_NOTIFICATION_INTAKE_H_
