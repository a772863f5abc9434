#include "service/dispatch/presence_tracker.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "service/core/logging.h"
#include "service/dispatch/command_payload.h"

namespace herald {

PresenceTracker::PresenceTracker(DeviceStore& devices, Provider& provider, HeraldMetrics& metrics,
                                 PresenceOptions options)
    : devices_(devices), provider_(provider), metrics_(metrics), options_(std::move(options)) {}

PresenceTracker::~PresenceTracker() { Stop(); }

absl::Status PresenceTracker::Start() {
  absl::StatusOr<TopicPattern> pattern =
      TopicPattern::Compile(options_.topic_template, "--presence_topic_template");
  if (!pattern.ok()) return pattern.status();
  if (!pattern->has_device_id()) {
    return absl::InvalidArgumentError(
        "--presence_topic_template: must contain {device_id}, to tell which device a presence "
        "message is about");
  }
  {
    absl::MutexLock lock(&mu_);
    if (started_ || stopping_) {
      return absl::FailedPreconditionError("the presence tracker was started or stopped before");
    }
    started_ = true;
    pattern_ = *std::move(pattern);
    filters_.push_back(pattern_->filter());
    if (options_.tenant_for_prefix) filters_.push_back(AnyTenantFilter(*pattern_));
  }
  writer_ = std::thread([this] { WriteLoop(); });
  for (const std::string& filter : filters_) {
    if (absl::Status subscribed = provider_.Subscribe(
            filter, 1, [this](const IncomingMessage& message) { HandleMessage(message); });
        !subscribed.ok()) {
      return subscribed;
    }
  }
  LogInfo("presence subscribed", {{"filter", absl::StrJoin(filters_, " ")}});
  return absl::OkStatus();
}

void PresenceTracker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

std::string PresenceTracker::subscription_filter() const {
  absl::MutexLock lock(&mu_);
  return pattern_.has_value() ? pattern_->filter() : std::string();
}

void PresenceTracker::HandleMessage(const IncomingMessage& message) {
  const absl::Time received = absl::Now();
  {
    absl::MutexLock lock(&mu_);
    if (!pattern_.has_value() || stopping_) return;
  }
  // pattern_ is immutable once set.
  std::optional<TenantTopicMatch> tenant_match;
  if (options_.tenant_for_prefix) {
    tenant_match = MatchInAnyTenant(*pattern_, message.topic);
  } else if (std::optional<TopicMatch> plain = pattern_->Match(message.topic)) {
    tenant_match = TenantTopicMatch{.topic_prefix = "", .match = *std::move(plain)};
  }
  if (!tenant_match.has_value()) {
    metrics_.PresenceReceived(kPresenceMalformed);
    if (int64_t suppressed = 0; device_warnings_.Allow(&suppressed)) {
      LogWarning("presence message on a topic outside --presence_topic_template skipped",
                 {{"topic", message.topic},
                  {"similar_lines_suppressed", absl::StrCat(suppressed)}});
    }
    return;
  }
  absl::StatusOr<bool> online = ParsePresencePayload(message.payload);
  if (!online.ok()) {
    metrics_.PresenceReceived(kPresenceMalformed);
    if (message.payload.empty()) {
      // Someone cleared the retained message: not a statement about presence.
      LogDebug("empty presence message skipped", {{"topic", message.topic}});
    } else if (int64_t suppressed = 0; device_warnings_.Allow(&suppressed)) {
      LogWarning("malformed presence message skipped",
                 {{"topic", message.topic},
                  {"error", online.status().message()},
                  {"bytes", absl::StrCat(message.payload.size())},
                  {"similar_lines_suppressed", absl::StrCat(suppressed)}});
    }
    return;
  }
  const TopicMatch* match = &tenant_match->match;
  PresenceUpdate update{.device_id = match->device_id,
                        .online = *online,
                        .seen_time = received,
                        .expected_owner_id = match->owner_id,
                        .expected_platform = match->platform,
                        .expected_metadata = match->metadata};
  std::string_view outcome;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    std::string key = absl::StrCat(tenant_match->topic_prefix, "/", update.device_id);
    if (auto it = queued_.find(key); it != queued_.end()) {
      it->second.update = std::move(update);
      outcome = kPresenceNotApplied;  // the queued one is superseded, never written
    } else if (queued_.size() >= options_.max_queued_devices) {
      outcome = kPresenceDropped;
    } else {
      queued_.emplace(std::move(key), Queued{.topic_prefix = tenant_match->topic_prefix,
                                             .update = std::move(update)});
    }
  }
  if (!outcome.empty()) metrics_.PresenceReceived(outcome);
  if (outcome == kPresenceDropped) {
    LogWarning("presence message dropped: too many devices wait to be written",
               {{"topic", message.topic}});
  }
}

bool PresenceTracker::AwaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const auto idle = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return queued_.empty() && !writing_;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void PresenceTracker::WriteLoop() {
  absl::Duration backoff = options_.retry_min;
  std::optional<absl::Time> stop_deadline;
  while (true) {
    std::vector<Queued> batch;
    {
      absl::MutexLock lock(&mu_);
      const auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queued_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (stopping_ && !stop_deadline.has_value()) stop_deadline = absl::Now() + options_.stop_timeout;
      if (queued_.empty()) return;  // stopping, nothing left
      if (stop_deadline.has_value() && absl::Now() >= *stop_deadline) {
        for (size_t i = 0; i < queued_.size(); ++i) metrics_.PresenceReceived(kPresenceDropped);
        LogWarning("presence updates not written before shutdown",
                   {{"devices", absl::StrCat(queued_.size())}});
        queued_.clear();
        return;
      }
      const size_t count = std::min(queued_.size(), options_.batch_size);
      batch.reserve(count);
      for (auto it = queued_.begin(); batch.size() < count;) {
        batch.push_back(std::move(it->second));
        queued_.erase(it++);
      }
      writing_ = true;
    }

    std::vector<Queued> retry = WriteBatch(std::move(batch));
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (retry.empty()) {
      backoff = options_.retry_min;
      continue;
    }
    // Back into the queue, unless a newer message for the device came meanwhile.
    for (Queued& queued : retry) {
      std::string key = absl::StrCat(queued.topic_prefix, "/", queued.update.device_id);
      auto [it, inserted] = queued_.try_emplace(std::move(key), std::move(queued));
      if (!inserted) metrics_.PresenceReceived(kPresenceNotApplied);  // superseded
    }
    const auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
    const absl::Duration wait =
        stop_deadline.has_value() ? std::min(backoff, *stop_deadline - absl::Now()) : backoff;
    mu_.AwaitWithTimeout(absl::Condition(&stopping), std::max(wait, absl::ZeroDuration()));
    backoff = std::min(backoff * 2, options_.retry_max);
  }
}

absl::StatusOr<std::optional<std::string>> PresenceTracker::TenantForPrefix(
    const std::string& prefix) {
  if (prefix.empty()) return std::optional<std::string>(options_.tenant_id);
  const absl::Time now = absl::Now();
  if (auto it = tenants_.find(prefix);
      it != tenants_.end() && now - it->second.fetched < options_.tenant_cache_ttl) {
    return it->second.tenant_id;
  }
  absl::StatusOr<std::string> tenant = options_.tenant_for_prefix(prefix);
  std::optional<std::string> answer;
  if (tenant.ok()) {
    answer = *std::move(tenant);
  } else if (!absl::IsNotFound(tenant.status())) {
    return tenant.status();
  }
  // Bounded: prefixes come from device messages.
  if (tenants_.size() >= options_.max_queued_devices) tenants_.clear();
  tenants_[prefix] = CachedTenant{.tenant_id = answer, .fetched = now};
  return answer;
}

std::vector<PresenceTracker::Queued> PresenceTracker::WriteBatch(std::vector<Queued> batch) {
  // One UpdatePresence per tenant in the batch.
  absl::flat_hash_map<std::string, std::vector<Queued>> by_prefix;
  for (Queued& queued : batch) by_prefix[queued.topic_prefix].push_back(std::move(queued));
  std::vector<Queued> retry;
  for (auto& [prefix, group] : by_prefix) {
    absl::StatusOr<std::optional<std::string>> tenant = TenantForPrefix(prefix);
    absl::StatusOr<std::vector<std::string>> changed;
    if (tenant.ok() && !tenant->has_value()) {
      for (size_t i = 0; i < group.size(); ++i) metrics_.PresenceReceived(kPresenceNotApplied);
      LogDebug("presence not applied: no tenant has the topic prefix", {{"prefix", prefix}});
      continue;
    }
    if (tenant.ok()) {
      std::vector<PresenceUpdate> updates;
      updates.reserve(group.size());
      for (const Queued& queued : group) updates.push_back(queued.update);
      changed = devices_.UpdatePresence(**tenant, updates);
    } else {
      changed = tenant.status();
    }
    if (!changed.ok()) {
      LogWarning("presence updates not written; retrying",
                 {{"devices", absl::StrCat(group.size())},
                  {"error", changed.status().message()}});
      for (Queued& queued : group) retry.push_back(std::move(queued));
      continue;
    }
    const absl::flat_hash_set<std::string> applied(changed->begin(), changed->end());
    for (const Queued& queued : group) {
      if (!applied.contains(queued.update.device_id)) {
        metrics_.PresenceReceived(kPresenceNotApplied);
        LogDebug("presence not applied (unknown device, other metadata, or older)",
                 {{"device_id", queued.update.device_id}});
      } else {
        metrics_.PresenceReceived(queued.update.online ? kPresenceOnline : kPresenceOffline);
      }
    }
  }
  return retry;
}

}  // namespace herald
