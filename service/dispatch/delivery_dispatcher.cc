#include "service/dispatch/delivery_dispatcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/core/crash_points.h"
#include "service/core/logging.h"

namespace herald {
namespace {

std::string_view OutcomeLabel(DeliveryState state) {
  switch (state) {
    case DeliveryState::kDelivered: return "delivered";
    case DeliveryState::kNoSubscriber: return "no_subscriber";
    case DeliveryState::kPending: return "retried";
    case DeliveryState::kExpired: return "expired";
    default: return "failed";
  }
}

}  // namespace

DeliveryDispatcher::DeliveryDispatcher(NotificationStore& store, Provider& provider,
                                       HeraldMetrics& metrics, DispatcherOptions options)
    : store_(store),
      provider_(provider),
      metrics_(metrics),
      options_(options),
      retry_policy_(options.retry) {}

DeliveryDispatcher::~DeliveryDispatcher() {
  StopClaiming();
  Stop();
}

void DeliveryDispatcher::Start() {
  recorder_ = std::thread([this] { RecordLoop(); });
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    claimers_.emplace_back([this] { ClaimLoop(); });
  }
}

void DeliveryDispatcher::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
  work_cv_.SignalAll();
}

void DeliveryDispatcher::StopClaiming() {
  {
    absl::MutexLock lock(&mu_);
    stop_claiming_ = true;
    work_cv_.SignalAll();
  }
  for (std::thread& claimer : claimers_) {
    if (claimer.joinable()) claimer.join();
  }
  claimers_.clear();
}

void DeliveryDispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_recording_ = true;
    outcome_cv_.SignalAll();
  }
  if (recorder_.joinable()) recorder_.join();
}

int64_t DeliveryDispatcher::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

int64_t DeliveryDispatcher::WorthwhileClaim(int64_t provider_capacity) const {
  const int64_t window = provider_capacity + in_flight_ + reserved_;
  return std::clamp<int64_t>(window / 4, 1, options_.batch_size);
}

int DeliveryDispatcher::ReserveCapacity(int64_t provider_capacity) {
  const int64_t take = std::min<int64_t>(options_.batch_size, provider_capacity - reserved_);
  if (take <= 0) return 0;
  // Under load, wait for a worthwhile batch (a quarter of the window)
  // instead of paying a database round trip for every acknowledgement that
  // frees one slot.
  if (take < WorthwhileClaim(provider_capacity) && in_flight_ + reserved_ > 0) return 0;
  reserved_ += take;
  return static_cast<int>(take);
}

void DeliveryDispatcher::ClaimLoop() {
  absl::Duration error_backoff = absl::Milliseconds(100);
  bool more_due = true;  // the last claim was full: claim again at once
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!more_due && !woken_ && !stop_claiming_) {
        work_cv_.WaitWithTimeout(&mu_, options_.poll_interval);
      }
      if (stop_claiming_) return;
      woken_ = false;
    }
    // The provider is asked outside mu_: its callbacks take mu_.
    if (provider_.GetConnectionStatus().state != ConnectionState::kConnected) {
      more_due = false;  // poll until the provider is back
      continue;
    }
    const int64_t available = provider_.AvailableCapacity();
    int reserved = 0;
    {
      absl::MutexLock lock(&mu_);
      reserved = ReserveCapacity(available);
    }
    if (reserved == 0) {
      // In-flight window full: the next outcome wakes us.
      absl::MutexLock lock(&mu_);
      waiting_for_capacity_ = true;
      // The window is what is in flight plus what the provider still takes.
      wake_below_in_flight_ = in_flight_ + available - WorthwhileClaim(available);
      more_due = false;
      continue;
    }
    absl::StatusOr<std::vector<ClaimedDelivery>> claimed =
        store_.ClaimDueDeliveries(reserved, options_.lease);
    if (!claimed.ok()) {
      {
        absl::MutexLock lock(&mu_);
        reserved_ -= reserved;
      }
      LogWarning("claiming deliveries failed; retrying",
                 {{"error", claimed.status().message()},
                  {"retry_in", absl::FormatDuration(error_backoff)}});
      absl::MutexLock lock(&mu_);
      work_cv_.WaitWithTimeout(&mu_, error_backoff);
      error_backoff = std::min(error_backoff * 2, absl::Seconds(5));
      more_due = true;
      continue;
    }
    error_backoff = absl::Milliseconds(100);
    if (!claimed->empty()) HERALD_CRASH_POINT("after_claim");
    {
      absl::MutexLock lock(&mu_);
      reserved_ -= reserved - static_cast<int64_t>(claimed->size());
    }
    for (const ClaimedDelivery& delivery : *claimed) Publish(delivery);
    more_due = static_cast<int>(claimed->size()) == reserved;
  }
}

void DeliveryDispatcher::Publish(const ClaimedDelivery& delivery) {
  const absl::Time now = absl::Now();
  OutgoingMessage message;
  message.topic = delivery.topic;
  message.payload = delivery.payload;
  message.qos = delivery.qos;
  message.retain = delivery.retain;
  if (delivery.expire_time.has_value()) {
    message.message_expiry = std::max(*delivery.expire_time - now, absl::Seconds(1));
  }
  message.user_properties["notification_id"] = delivery.notification_id;
  Attempt attempt{.delivery_id = delivery.delivery_id,
                  .notification_id = delivery.notification_id,
                  .attempts = delivery.attempts,
                  .qos = delivery.qos,
                  .accept_time = delivery.accept_time,
                  .publish_time = now};
  {
    absl::MutexLock lock(&mu_);
    --reserved_;
    ++in_flight_;
  }
  provider_.Publish(std::move(message),
                    [this, attempt](const PublishResult& result) { OnPublished(attempt, result); });
}

void DeliveryDispatcher::OnPublished(const Attempt& attempt, const PublishResult& result) {
  if (result.status.ok()) HERALD_CRASH_POINT("after_ack");
  DeliveryOutcome outcome =
      retry_policy_.Decide(attempt.delivery_id, attempt.attempts, result.status,
                           result.no_subscriber);
  const absl::Time now = absl::Now();
  const bool acknowledged = result.status.ok();
  metrics_.DeliveryFinished(provider_.Name(), attempt.qos, OutcomeLabel(outcome.state),
                            acknowledged ? std::optional(now - attempt.accept_time) : std::nullopt,
                            acknowledged ? std::optional(now - attempt.publish_time)
                                         : std::nullopt);
  if (outcome.state == DeliveryState::kFailed) {
    LogWarning("delivery failed", {{"notification_id", attempt.notification_id},
                                   {"delivery_id", absl::StrCat(attempt.delivery_id)},
                                   {"attempts", absl::StrCat(attempt.attempts)},
                                   {"error", outcome.error}});
  } else if (outcome.state == DeliveryState::kPending) {
    LogInfo("delivery will be retried", {{"notification_id", attempt.notification_id},
                                         {"delivery_id", absl::StrCat(attempt.delivery_id)},
                                         {"attempts", absl::StrCat(attempt.attempts)},
                                         {"retry_in", absl::FormatDuration(outcome.retry_after)},
                                         {"error", outcome.error}});
  } else if (LogEnabled(LogLevel::kDebug)) {
    LogDebug("delivered", {{"notification_id", attempt.notification_id},
                           {"delivery_id", absl::StrCat(attempt.delivery_id)},
                           {"qos", absl::StrCat(attempt.qos)},
                           {"outcome", OutcomeLabel(outcome.state)}});
  }
  absl::MutexLock lock(&mu_);
  --in_flight_;
  outcomes_.push_back(std::move(outcome));
  outcome_cv_.Signal();
  if (waiting_for_capacity_ && in_flight_ <= wake_below_in_flight_) {
    // Enough capacity was freed for a worthwhile claim: claim again at once.
    waiting_for_capacity_ = false;
    woken_ = true;
    work_cv_.Signal();
  }
}

void DeliveryDispatcher::RecordLoop() {
  absl::Duration error_backoff = absl::Milliseconds(100);
  while (true) {
    std::vector<DeliveryOutcome> batch;
    {
      absl::MutexLock lock(&mu_);
      while (outcomes_.empty() && !stop_recording_) outcome_cv_.Wait(&mu_);
      if (outcomes_.empty()) return;  // stopping and nothing left
      const size_t take = std::min(outcomes_.size(), options_.max_outcomes_per_write);
      batch.assign(std::make_move_iterator(outcomes_.begin()),
                   std::make_move_iterator(outcomes_.begin() + take));
      outcomes_.erase(outcomes_.begin(), outcomes_.begin() + take);
    }
    absl::Status status = store_.RecordOutcomes(batch);
    if (status.ok()) {
      error_backoff = absl::Milliseconds(100);
      continue;
    }
    LogWarning("recording delivery outcomes failed; retrying",
               {{"error", status.message()}, {"outcomes", absl::StrCat(batch.size())}});
    absl::MutexLock lock(&mu_);
    outcomes_.insert(outcomes_.begin(), std::make_move_iterator(batch.begin()),
                     std::make_move_iterator(batch.end()));
    if (stop_recording_) {
      // Give up only when stopping: the leases bring these deliveries back.
      LogError("unrecorded outcomes left to lease expiry",
               {{"outcomes", absl::StrCat(outcomes_.size())}});
      outcomes_.clear();
      return;
    }
    outcome_cv_.WaitWithTimeout(&mu_, error_backoff);
    error_backoff = std::min(error_backoff * 2, absl::Seconds(5));
  }
}

}  // namespace herald
