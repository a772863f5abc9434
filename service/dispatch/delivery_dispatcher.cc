#include "service/dispatch/delivery_dispatcher.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/core/crash_points.h"
#include "service/core/logging.h"

namespace herald {
namespace {

// Outcomes enough for one write without waiting for more.
constexpr size_t kWorthwhileOutcomes = 256;

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
  {
    absl::MutexLock lock(&mu_);
    accepting_handoffs_ = true;
  }
  recorder_ = std::thread([this] { RecordLoop(); });
  publisher_ = std::thread([this] { PublishLoop(); });
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
    accepting_handoffs_ = false;
    work_cv_.SignalAll();
  }
  for (std::thread& claimer : claimers_) {
    if (claimer.joinable()) claimer.join();
  }
  claimers_.clear();
  if (!publisher_.joinable()) return;
  // Let the publisher hand what is ready to the provider while it can.
  const absl::Time until = absl::Now() + options_.drain_timeout;
  while (absl::Now() < until &&
         provider_.GetConnectionStatus().state == ConnectionState::kConnected) {
    absl::MutexLock lock(&mu_);
    const auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return ready_.empty() && handoff_reserved_ == 0;
    };
    if (mu_.AwaitWithTimeout(absl::Condition(&drained), absl::Milliseconds(100))) break;
  }
  {
    absl::MutexLock lock(&mu_);
    stop_publishing_ = true;
    publish_cv_.SignalAll();
  }
  publisher_.join();
}

void DeliveryDispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!ready_.empty()) {
      LogInfo("deliveries released for another replica",
              {{"deliveries", absl::StrCat(ready_.size())}});
      metrics_.DeliveriesReleased("shutdown", static_cast<int64_t>(ready_.size()));
    }
    // One whose lease is over is due already (and perhaps another
    // replica's by now): it is left alone.
    const absl::Time now = absl::Now();
    while (!ready_.empty()) {
      if (ready_.front().lease_end > now) Release(ready_.front().delivery.delivery_id);
      ready_.pop_front();
    }
    stop_recording_ = true;
    outcome_cv_.SignalAll();
  }
  if (recorder_.joinable()) recorder_.join();
}

int64_t DeliveryDispatcher::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

int64_t DeliveryDispatcher::ReserveHandoff(int64_t wanted) {
  if (wanted <= 0) return 0;
  // Asked outside mu_: the provider's callbacks take mu_.
  if (provider_.GetConnectionStatus().state != ConnectionState::kConnected) return 0;
  absl::MutexLock lock(&mu_);
  if (!accepting_handoffs_) return 0;
  const int64_t room = options_.max_ready - static_cast<int64_t>(ready_.size()) -
                       handoff_reserved_ - claim_reserved_;
  const int64_t granted = std::clamp<int64_t>(room, 0, wanted);
  handoff_reserved_ += granted;
  return granted;
}

void DeliveryDispatcher::Handoff(std::vector<ClaimedDelivery> deliveries, int64_t reserved,
                                 absl::Time claim_started) {
  // Claimed and committed, not yet published: the same crash as a claim's.
  if (!deliveries.empty()) HERALD_CRASH_POINT("after_claim");
  absl::MutexLock lock(&mu_);
  handoff_reserved_ -= reserved;
  if (deliveries.empty()) return;
  AddReady(std::move(deliveries), claim_started);
}

void DeliveryDispatcher::AddReady(std::vector<ClaimedDelivery> deliveries,
                                  absl::Time claim_started) {
  // Still waiting when two thirds of the lease have passed: the lease is
  // extended (or the delivery given back).
  const absl::Time renew_at = claim_started + options_.lease * 2 / 3;
  const absl::Time lease_end = claim_started + options_.lease;
  for (ClaimedDelivery& delivery : deliveries) {
    ready_.push_back(
        {.delivery = std::move(delivery), .renew_at = renew_at, .lease_end = lease_end});
  }
  publish_cv_.Signal();
}

void DeliveryDispatcher::Release(int64_t delivery_id) {
  outcomes_.push_back({.delivery_id = delivery_id,
                       .state = DeliveryState::kPending,
                       .retry_after = absl::ZeroDuration()});
  outcome_cv_.Signal();
}

int64_t DeliveryDispatcher::Outstanding() const {
  return static_cast<int64_t>(ready_.size()) + claim_reserved_ + handoff_reserved_ + in_flight_;
}

int64_t DeliveryDispatcher::WorthwhileClaim(int64_t provider_capacity) const {
  const int64_t limit = provider_capacity + in_flight_ + options_.claim_ahead;
  return std::clamp<int64_t>(limit / 4, 1, options_.batch_size);
}

int DeliveryDispatcher::ReserveClaim(int64_t provider_capacity) {
  // What may be outstanding: the provider's window (what is in flight plus
  // what it still takes) and a claim ahead of it.
  const int64_t limit = provider_capacity + in_flight_ + options_.claim_ahead;
  const int64_t take = std::min<int64_t>(options_.batch_size, limit - Outstanding());
  if (take <= 0) return 0;
  // Under load, wait for a worthwhile batch instead of paying a database
  // round trip for every acknowledgement that frees one slot.
  if (take < WorthwhileClaim(provider_capacity) && Outstanding() > 0) return 0;
  claim_reserved_ += take;
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
      reserved = ReserveClaim(available);
      if (reserved == 0) {
        // Enough is outstanding: finished deliveries wake us.
        waiting_for_room_ = true;
        wake_claimers_below_ = in_flight_ + available + options_.claim_ahead -
                               WorthwhileClaim(available);
        more_due = false;
        continue;
      }
    }
    const absl::Time claim_started = absl::Now();
    absl::StatusOr<std::vector<ClaimedDelivery>> claimed =
        store_.ClaimDueDeliveries(reserved, options_.lease);
    if (!claimed.ok()) {
      {
        absl::MutexLock lock(&mu_);
        claim_reserved_ -= reserved;
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
    more_due = static_cast<int>(claimed->size()) == reserved;
    absl::MutexLock lock(&mu_);
    claim_reserved_ -= reserved;
    if (!claimed->empty()) AddReady(*std::move(claimed), claim_started);
  }
}

void DeliveryDispatcher::PublishLoop() {
  std::vector<Ready> batch;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      while (ready_.empty() && !stop_publishing_) publish_cv_.Wait(&mu_);
      if (stop_publishing_) return;
    }
    // The provider is asked outside mu_: its callbacks take mu_.
    if (provider_.GetConnectionStatus().state != ConnectionState::kConnected) {
      // While the provider is away, what waits in memory goes back to the
      // outbox once its time is up.
      {
        absl::MutexLock lock(&mu_);
        if (!stop_publishing_) publish_cv_.WaitWithTimeout(&mu_, options_.poll_interval);
      }
      RenewLeases();
      continue;
    }
    const int64_t available = provider_.AvailableCapacity();
    if (available <= 0) {
      // The window is full: wait until an eighth of it is free again (or
      // a moment, when the window is full of other publishes).
      {
        absl::MutexLock lock(&mu_);
        publisher_blocked_ = true;
        wake_publisher_below_ = in_flight_ - std::max<int64_t>(1, in_flight_ / 8);
        // Nothing of ours in flight: the acknowledgements arrived meanwhile,
        // or other publishes fill the window; look again shortly.
        const absl::Duration backstop =
            in_flight_ == 0 ? absl::Milliseconds(1) : absl::Milliseconds(20);
        if (!stop_publishing_) publish_cv_.WaitWithTimeout(&mu_, backstop);
        publisher_blocked_ = false;
      }
      // A window that stays full (a slow broker, acknowledgements stuck)
      // must not keep deliveries past their lease either.
      RenewLeases();
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      const size_t take = std::min<size_t>(ready_.size(), static_cast<size_t>(available));
      batch.assign(std::make_move_iterator(ready_.begin()),
                   std::make_move_iterator(ready_.begin() + take));
      ready_.erase(ready_.begin(), ready_.begin() + take);
      in_flight_ += static_cast<int64_t>(take);
    }
    // A delivery whose lease ended is due in the outbox again (another
    // replica may hold it by now): it is left to whoever claims it next.
    const absl::Time now = absl::Now();
    int64_t dropped = 0;
    for (Ready& ready : batch) {
      if (ready.lease_end <= now) {
        ++dropped;
        continue;
      }
      Publish(std::move(ready.delivery), now);
    }
    batch.clear();
    if (dropped > 0) {
      {
        absl::MutexLock lock(&mu_);
        in_flight_ -= dropped;
      }
      ReportGivenBack(dropped);
    }
  }
}

void DeliveryDispatcher::RenewLeases() {
  std::vector<Ready> due;
  const absl::Time now = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    // Oldest first: the queue is in claim order (renewed ones go to its end).
    while (!ready_.empty() && ready_.front().renew_at <= now) {
      due.push_back(std::move(ready_.front()));
      ready_.pop_front();
    }
  }
  if (due.empty()) return;
  std::vector<int64_t> ids;
  ids.reserve(due.size());
  for (const Ready& ready : due) ids.push_back(ready.delivery.delivery_id);
  const absl::Time started = absl::Now();
  const absl::Status extended = store_.ExtendLeases(ids, options_.lease);
  int64_t given_back = 0;
  {
    absl::MutexLock lock(&mu_);
    for (Ready& ready : due) {
      if (extended.ok()) {
        ready.renew_at = started + options_.lease * 2 / 3;
        ready.lease_end = started + options_.lease;
        ready_.push_back(std::move(ready));
      } else {
        // Due at once for any replica (past its lease it already is).
        if (ready.lease_end > absl::Now()) Release(ready.delivery.delivery_id);
        ++given_back;
      }
    }
    if (extended.ok()) publish_cv_.Signal();
  }
  if (!extended.ok() && !absl::IsUnimplemented(extended)) {
    LogWarning("extending the lease of deliveries waiting for the broker failed",
               {{"error", extended.message()}, {"deliveries", absl::StrCat(due.size())}});
  }
  ReportGivenBack(given_back);
}

void DeliveryDispatcher::ReportGivenBack(int64_t deliveries) {
  if (deliveries == 0) return;
  metrics_.DeliveriesReleased("lease", deliveries);
  LogWarning("deliveries waiting for the broker through their lease given back to the outbox",
             {{"deliveries", absl::StrCat(deliveries)},
              {"lease", absl::FormatDuration(options_.lease)}});
}

void DeliveryDispatcher::Publish(ClaimedDelivery delivery, absl::Time now) {
  OutgoingMessage message;
  message.topic = std::move(delivery.topic);
  // The one copy of the payload per publish: Paho keeps its own buffer
  // until the broker acknowledges, while the deliveries of a fan-out
  // waiting in the ready queue share one.
  message.payload = *delivery.payload;
  message.qos = delivery.qos;
  message.retain = delivery.retain;
  if (delivery.expire_time.has_value()) {
    message.message_expiry = std::max(*delivery.expire_time - now, absl::Seconds(1));
  }
  if (options_.message_properties) {
    message.user_properties["notification_id"] = delivery.notification_id;
  } else {
    message.content_type.clear();
  }
  Attempt attempt{.delivery_id = delivery.delivery_id,
                  .notification_id = std::move(delivery.notification_id),
                  .attempts = delivery.attempts,
                  .qos = delivery.qos,
                  .accept_time = delivery.accept_time,
                  .publish_time = now};
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
  if (outcomes_.size() == 1 || outcomes_.size() == kWorthwhileOutcomes) outcome_cv_.Signal();
  if (publisher_blocked_ && in_flight_ <= wake_publisher_below_) {
    publisher_blocked_ = false;
    publish_cv_.Signal();
  }
  if (waiting_for_room_ && Outstanding() <= wake_claimers_below_) {
    // Enough room was freed for a worthwhile claim: claim again at once.
    waiting_for_room_ = false;
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
      // A few outcomes wait a moment for more, so that a trickle of
      // deliveries shares commits instead of paying one each.
      const absl::Time linger_until = absl::Now() + options_.outcome_linger;
      while (!stop_recording_ && outcomes_.size() < kWorthwhileOutcomes &&
             !outcome_cv_.WaitWithDeadline(&mu_, linger_until)) {
      }
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
