// RetryPolicy: what becomes of a delivery after a publish attempt. Pure and
// deterministic apart from the jitter source, so it is unit-tested directly.
//
//   RetryPolicy policy({.max_attempts = 5, .initial_backoff = absl::Seconds(1)});
//   DeliveryOutcome outcome = policy.Decide(delivery_id, attempts, result_status, no_subscriber);
#ifndef HERALD_SERVICE_DISPATCH_RETRY_POLICY_H_
#define HERALD_SERVICE_DISPATCH_RETRY_POLICY_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/core/types.h"

namespace herald {

struct RetryOptions {
  int max_attempts = 5;
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
};

// Thread-compatible (const methods are thread-safe if the jitter source is).
class RetryPolicy {
 public:
  // `jitter` returns a factor in [0, 1); the default draws from a thread-local
  // generator. Tests pass a constant.
  explicit RetryPolicy(RetryOptions options, std::function<double()> jitter = nullptr);

  // Backoff before attempt `attempts + 1`: initial * 2^(attempts-1), capped,
  // then scaled into [backoff/2, backoff) by the jitter ("equal jitter").
  absl::Duration BackoffAfter(int attempts) const;

  // The outcome of attempt number `attempts` that ended with `status`:
  // delivered (or no_subscriber) on OK; failed at once for errors a retry
  // cannot fix (permission denied, invalid message); otherwise pending with
  // a backoff, or failed once `attempts` reaches max_attempts.
  DeliveryOutcome Decide(int64_t delivery_id, int attempts, const absl::Status& status,
                         bool no_subscriber) const;

  const RetryOptions& options() const { return options_; }

 private:
  RetryOptions options_;
  std::function<double()> jitter_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_RETRY_POLICY_H_
