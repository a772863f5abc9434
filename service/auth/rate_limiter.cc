#include "service/auth/rate_limiter.h"

#include <algorithm>
#include <utility>

namespace herald {

TenantRateLimiter::TenantRateLimiter(RateLimiterOptions options) : options_(std::move(options)) {
  options_.burst = std::max(options_.burst, options_.rate);
}

bool TenantRateLimiter::TryAcquire(absl::string_view tenant_id, double cost,
                                   absl::Duration* retry_after) {
  if (unlimited()) return true;
  const absl::Time now = options_.clock();
  absl::MutexLock lock(&mu_);
  auto [it, inserted] =
      buckets_.try_emplace(tenant_id, Bucket{.tokens = options_.burst, .updated = now});
  Bucket& bucket = it->second;
  if (!inserted && now > bucket.updated) {
    bucket.tokens = std::min(options_.burst,
                             bucket.tokens + absl::ToDoubleSeconds(now - bucket.updated) *
                                                 options_.rate);
    bucket.updated = now;
  }
  if (cost <= bucket.tokens) {
    bucket.tokens -= cost;
    return true;
  }
  const double missing = std::min(cost, options_.burst) - bucket.tokens;
  *retry_after = absl::Milliseconds(std::max(1.0, 1000.0 * missing / options_.rate));
  return false;
}

}  // namespace herald
