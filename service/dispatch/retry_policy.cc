#include "service/dispatch/retry_policy.h"

#include <algorithm>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"

namespace herald {

RetryPolicy::RetryPolicy(RetryOptions options, std::function<double()> jitter)
    : options_(options), jitter_(std::move(jitter)) {
  if (!jitter_) {
    jitter_ = [] {
      thread_local absl::BitGen bit_gen;
      return absl::Uniform<double>(bit_gen, 0.0, 1.0);
    };
  }
}

absl::Duration RetryPolicy::BackoffAfter(int attempts) const {
  absl::Duration backoff = options_.initial_backoff;
  for (int i = 1; i < attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
  backoff = std::min(backoff, options_.max_backoff);
  return backoff / 2 + (backoff / 2) * jitter_();
}

DeliveryOutcome RetryPolicy::Decide(int64_t delivery_id, int attempts, const absl::Status& status,
                                    bool no_subscriber) const {
  DeliveryOutcome outcome;
  outcome.delivery_id = delivery_id;
  if (status.ok()) {
    outcome.state = no_subscriber ? DeliveryState::kNoSubscriber : DeliveryState::kDelivered;
    return outcome;
  }
  outcome.error = std::string(status.message());
  const bool permanent = absl::IsPermissionDenied(status) || absl::IsInvalidArgument(status);
  if (permanent) {
    outcome.state = DeliveryState::kFailed;
  } else if (attempts >= options_.max_attempts) {
    outcome.state = DeliveryState::kFailed;
    outcome.error = absl::StrCat("gave up after ", attempts, " attempts: ", status.message());
  } else {
    outcome.state = DeliveryState::kPending;
    outcome.retry_after = BackoffAfter(attempts);
  }
  return outcome;
}

}  // namespace herald
