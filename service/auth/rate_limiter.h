// TenantRateLimiter: a token bucket per tenant, so that one tenant's flood
// cannot starve the others or the database (issue 6).
//
// Each tenant may spend `rate` units per second on average and `burst` at
// once; a notification, a command or any other call costs one unit (a
// SendNotifications batch one per entry). A refused call learns how long to
// wait: RESOURCE_EXHAUSTED with that retry hint.
//
//   TenantRateLimiter limiter({.rate = 1000, .burst = 2000});
//   absl::Duration retry_after;
//   if (!limiter.TryAcquire("acme", 1, &retry_after)) ...
//
// Thread-safe. Memory: one bucket per tenant that has made a call.
#ifndef HERALD_SERVICE_AUTH_RATE_LIMITER_H_
#define HERALD_SERVICE_AUTH_RATE_LIMITER_H_

#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald {

struct RateLimiterOptions {
  double rate = 0;   // units per second per tenant; <= 0: unlimited
  double burst = 0;  // bucket size; < rate is raised to rate
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class TenantRateLimiter {
 public:
  explicit TenantRateLimiter(RateLimiterOptions options);

  bool unlimited() const { return options_.rate <= 0; }

  // Takes `cost` units from the tenant's bucket, or none when it holds too
  // few; then `retry_after` is when it will hold enough (a cost above the
  // burst can never be paid at once: it is refused with the time to fill the
  // whole bucket).
  bool TryAcquire(absl::string_view tenant_id, double cost, absl::Duration* retry_after);

 private:
  struct Bucket {
    double tokens;
    absl::Time updated;
  };

  RateLimiterOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald

#endif  // HERALD_SERVICE_AUTH_RATE_LIMITER_H_
