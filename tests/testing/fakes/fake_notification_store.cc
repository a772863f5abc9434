#include "tests/testing/fakes/fake_notification_store.h"

#include <algorithm>
#include <functional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "service/core/page_token.h"
#include "tests/testing/fakes/fake_clock.h"

namespace herald::testing {
namespace {

// The list names in page tokens, as PgNotificationStore spells them.
constexpr char kNotificationsList[] = "notifications";
constexpr char kDeliveriesList[] = "deliveries";
// The provider every delivery counts under in GetStats.
constexpr char kProvider[] = "mqtt";

int EffectivePageSize(int page_size) {
  if (page_size <= 0) return 50;
  return std::min(page_size, 1000);
}

absl::Status NotificationNotFound(const std::string& notification_id) {
  return absl::NotFoundError(
      absl::StrCat("notification_id: no notification \"", notification_id, "\""));
}

absl::Status InvalidPosition() {
  return absl::InvalidArgumentError(
      "page_token: not a token issued by this list method; pass the next_page_token of the "
      "previous response, or an empty token for the first page");
}

void CountState(const DeliveryRecord& delivery, DeliveryStateCounts* counts) {
  switch (delivery.state) {
    case DeliveryState::kPending:
      ++counts->pending;
      if (delivery.attempts > 0) ++counts->pending_attempted;
      break;
    case DeliveryState::kDelivered: ++counts->delivered; break;
    case DeliveryState::kNoSubscriber: ++counts->no_subscriber; break;
    case DeliveryState::kReceived: ++counts->received; break;
    case DeliveryState::kFailed: ++counts->failed; break;
    case DeliveryState::kExpired: ++counts->expired; break;
    case DeliveryState::kCancelled: ++counts->cancelled; break;
  }
}

void AddTo(const DeliveryRecord& delivery, DeliveryTotals* totals) {
  if (delivery.attempts > 0) ++totals->sent;
  switch (delivery.state) {
    case DeliveryState::kDelivered:
    case DeliveryState::kNoSubscriber:
    case DeliveryState::kReceived: ++totals->succeeded; break;
    case DeliveryState::kFailed: ++totals->failed; break;
    case DeliveryState::kExpired: ++totals->expired; break;
    case DeliveryState::kCancelled: ++totals->cancelled; break;
    case DeliveryState::kPending: ++totals->pending; break;
  }
}

bool IsScheduled(const NotificationRecord& record, absl::Time now) {
  return record.options.send_time.has_value() && *record.options.send_time > now;
}

}  // namespace

FakeNotificationStore::FakeNotificationStore(std::function<absl::Time()> clock)
    : clock_(clock ? std::move(clock) : [] { return kFakeEpoch; }) {}

NotificationRecord FakeNotificationStore::WithCounts(const StoredNotification& stored,
                                                     absl::Time now) const {
  NotificationRecord record = stored.record;
  record.counts = DeliveryStateCounts{};
  for (const auto& [id, delivery] : deliveries_) {
    if (delivery.notification_id == record.notification_id) {
      CountState(delivery.record, &record.counts);
    }
  }
  record.state = DeriveNotificationState(record.counts, IsScheduled(record, now));
  return record;
}

absl::StatusOr<InsertedNotification> FakeNotificationStore::InsertNotification(
    const NotificationRecord& notification, const std::vector<ResolvedTarget>& targets) {
  if (absl::Status fault = faults_.Check("InsertNotification"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  if (const auto it = notifications_.find(notification.notification_id);
      it != notifications_.end()) {
    const NotificationRecord& stored = it->second.record;
    if (stored.tenant_id != notification.tenant_id || stored.payload != notification.payload) {
      return absl::AlreadyExistsError(
          absl::StrCat("notification_id: \"", notification.notification_id, "\" exists"));
    }
    // The same notification again: what a retry after a lost reply sends.
    return InsertedNotification{.notification = WithCounts(it->second, now), .duplicate = false};
  }
  const std::string& key = notification.options.idempotency_key;
  if (!key.empty()) {
    const auto it = idempotency_keys_.find({notification.tenant_id, key});
    if (it != idempotency_keys_.end()) {
      NotificationRecord earlier = WithCounts(notifications_.at(it->second), now);
      if (earlier.request_fingerprint != notification.request_fingerprint) {
        return absl::FailedPreconditionError(
            absl::StrCat("idempotency_key: already used by notification ",
                         earlier.notification_id, " with different content"));
      }
      return InsertedNotification{.notification = std::move(earlier), .duplicate = true};
    }
  }

  StoredNotification stored{.record = notification};
  stored.record.create_time = now;
  stored.record.counts = DeliveryStateCounts{};
  const absl::Time first_attempt = notification.options.send_time.value_or(now);
  for (const ResolvedTarget& target : targets) {
    StoredDelivery delivery;
    delivery.record.delivery_id = next_delivery_id_++;
    delivery.record.device_id = target.device_id;
    delivery.record.topic = target.topic;
    delivery.record.qos = notification.options.qos;
    delivery.tenant_id = notification.tenant_id;
    delivery.notification_id = notification.notification_id;
    delivery.retain = notification.options.retain;
    delivery.next_attempt_time = first_attempt;
    delivery.expire_time = notification.expire_time;
    deliveries_.emplace(delivery.record.delivery_id, std::move(delivery));
  }
  if (!key.empty()) {
    idempotency_keys_.emplace(std::make_pair(notification.tenant_id, key),
                              notification.notification_id);
  }
  const auto [it, inserted] = notifications_.emplace(notification.notification_id, stored);
  return InsertedNotification{.notification = WithCounts(it->second, now), .duplicate = false};
}

absl::StatusOr<NotificationRecord> FakeNotificationStore::GetNotification(
    const std::string& tenant_id, const std::string& notification_id) {
  if (absl::Status fault = faults_.Check("GetNotification"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  const auto it = notifications_.find(notification_id);
  if (it == notifications_.end() || it->second.record.tenant_id != tenant_id) {
    return NotificationNotFound(notification_id);
  }
  return WithCounts(it->second, now);
}

absl::StatusOr<Page<DeliveryRecord>> FakeNotificationStore::ListDeliveries(
    const std::string& tenant_id, const std::string& notification_id, int page_size,
    const std::string& page_token) {
  if (absl::Status fault = faults_.Check("ListDeliveries"); !fault.ok()) return fault;
  int64_t after = 0;
  if (!page_token.empty()) {
    absl::StatusOr<std::string> position = DecodePageToken(kDeliveriesList, page_token);
    if (!position.ok()) return position.status();
    if (!absl::SimpleAtoi(*position, &after)) return InvalidPosition();
  }
  const size_t limit = static_cast<size_t>(EffectivePageSize(page_size));
  absl::MutexLock lock(&mu_);
  const auto it = notifications_.find(notification_id);
  if (it == notifications_.end() || it->second.record.tenant_id != tenant_id) {
    return NotificationNotFound(notification_id);
  }
  Page<DeliveryRecord> page;
  for (auto d = deliveries_.upper_bound(after); d != deliveries_.end(); ++d) {
    if (d->second.notification_id != notification_id) continue;
    if (page.items.size() == limit) {
      page.next_page_token =
          EncodePageToken(kDeliveriesList, absl::StrCat(page.items.back().delivery_id));
      break;
    }
    page.items.push_back(d->second.record);
  }
  return page;
}

absl::StatusOr<Page<NotificationRecord>> FakeNotificationStore::ListNotifications(
    const std::string& tenant_id, int page_size, const std::string& page_token) {
  if (absl::Status fault = faults_.Check("ListNotifications"); !fault.ok()) return fault;
  std::optional<std::pair<int64_t, std::string>> after;  // (create time in µs, id)
  if (!page_token.empty()) {
    absl::StatusOr<std::string> position = DecodePageToken(kNotificationsList, page_token);
    if (!position.ok()) return position.status();
    const size_t slash = position->find('/');
    int64_t micros = 0;
    if (slash == std::string::npos || !absl::SimpleAtoi(position->substr(0, slash), &micros)) {
      return InvalidPosition();
    }
    after.emplace(micros, position->substr(slash + 1));
  }
  const size_t limit = static_cast<size_t>(EffectivePageSize(page_size));
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  // Newest first; the id breaks ties, as in PgNotificationStore.
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [id, stored] : notifications_) {
    if (stored.record.tenant_id != tenant_id) continue;
    order.emplace_back(absl::ToUnixMicros(stored.record.create_time), id);
  }
  std::sort(order.begin(), order.end(), std::greater<>());
  Page<NotificationRecord> page;
  for (const auto& position : order) {
    if (after.has_value() && !(position < *after)) continue;
    if (page.items.size() == limit) {
      const NotificationRecord& last = page.items.back();
      page.next_page_token = EncodePageToken(
          kNotificationsList,
          absl::StrCat(absl::ToUnixMicros(last.create_time), "/", last.notification_id));
      break;
    }
    page.items.push_back(WithCounts(notifications_.at(position.second), now));
  }
  return page;
}

absl::StatusOr<int64_t> FakeNotificationStore::CancelNotification(
    const std::string& tenant_id, const std::string& notification_id) {
  if (absl::Status fault = faults_.Check("CancelNotification"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  const auto it = notifications_.find(notification_id);
  if (it == notifications_.end() || it->second.record.tenant_id != tenant_id) {
    return NotificationNotFound(notification_id);
  }
  int64_t cancelled = 0;
  for (auto& [id, delivery] : deliveries_) {
    if (delivery.notification_id != notification_id ||
        delivery.record.state != DeliveryState::kPending) {
      continue;
    }
    delivery.record.state = DeliveryState::kCancelled;
    delivery.record.complete_time = now;
    ++cancelled;
  }
  return cancelled;
}

absl::StatusOr<std::vector<ClaimedDelivery>> FakeNotificationStore::ClaimDueDeliveries(
    int max, absl::Duration lease) {
  if (absl::Status fault = faults_.Check("ClaimDueDeliveries"); !fault.ok()) return fault;
  if (max < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("claim_deliveries: max must be at least 1, got ", max));
  }
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  // Due rows, oldest first (the id breaks ties), at most `max` of them;
  // expired ones among them are completed and not handed out.
  std::vector<std::pair<absl::Time, int64_t>> due;
  for (const auto& [id, delivery] : deliveries_) {
    if (delivery.record.state == DeliveryState::kPending && delivery.next_attempt_time <= now) {
      due.emplace_back(delivery.next_attempt_time, id);
    }
  }
  std::sort(due.begin(), due.end());
  if (due.size() > static_cast<size_t>(max)) due.resize(max);
  std::sort(due.begin(), due.end(),
            [](const auto& a, const auto& b) { return a.second < b.second; });

  std::vector<ClaimedDelivery> claimed;
  for (const auto& [time, id] : due) {
    StoredDelivery& delivery = deliveries_.at(id);
    if (delivery.expire_time.has_value() && *delivery.expire_time <= now) {
      delivery.record.state = DeliveryState::kExpired;
      delivery.record.complete_time = now;
      if (delivery.record.last_error.empty()) {
        delivery.record.last_error = "expired: its ttl passed before it could be delivered";
      }
      continue;
    }
    ++delivery.record.attempts;
    delivery.record.last_attempt_time = now;
    delivery.next_attempt_time = now + std::max(lease, absl::ZeroDuration());
    const NotificationRecord& notification = notifications_.at(delivery.notification_id).record;
    claimed.push_back(ClaimedDelivery{.delivery_id = id,
                                      .notification_id = delivery.notification_id,
                                      .topic = delivery.record.topic,
                                      .qos = delivery.record.qos,
                                      .retain = delivery.retain,
                                      .payload = std::make_shared<const std::string>(
                                          notification.payload),
                                      .attempts = delivery.record.attempts,
                                      .accept_time = notification.create_time,
                                      .expire_time = delivery.expire_time});
  }
  claim_requests_.push_back(max);
  if (!claimed.empty()) ++nonempty_claims_;
  return claimed;
}

absl::Status FakeNotificationStore::ExtendLeases(const std::vector<int64_t>& delivery_ids,
                                                absl::Duration lease) {
  if (absl::Status fault = faults_.Check("ExtendLeases"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  for (int64_t id : delivery_ids) {
    const auto it = deliveries_.find(id);
    if (it == deliveries_.end() || it->second.record.state != DeliveryState::kPending) continue;
    it->second.next_attempt_time = now + std::max(lease, absl::ZeroDuration());
    ++extended_leases_;
  }
  return absl::OkStatus();
}

int64_t FakeNotificationStore::extended_leases() const {
  absl::MutexLock lock(&mu_);
  return extended_leases_;
}

absl::Status FakeNotificationStore::RecordOutcomes(const std::vector<DeliveryOutcome>& outcomes) {
  if (absl::Status fault = faults_.Check("RecordOutcomes"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  for (const DeliveryOutcome& outcome : outcomes) {
    recorded_.push_back(outcome);
    const auto it = deliveries_.find(outcome.delivery_id);
    if (it == deliveries_.end() || it->second.record.state != DeliveryState::kPending) continue;
    StoredDelivery& delivery = it->second;
    delivery.record.state = outcome.state;
    if (outcome.state == DeliveryState::kPending) {
      delivery.record.complete_time.reset();
      delivery.next_attempt_time = now + std::max(outcome.retry_after, absl::ZeroDuration());
    } else {
      delivery.record.complete_time = now;
    }
    if (!outcome.error.empty()) delivery.record.last_error = outcome.error;
  }
  return absl::OkStatus();
}

absl::StatusOr<StoredStats> FakeNotificationStore::GetStats(const std::string& tenant_id) {
  if (absl::Status fault = faults_.Check("GetStats"); !fault.ok()) return fault;
  absl::MutexLock lock(&mu_);
  StoredStats stats;
  for (const auto& [id, stored] : notifications_) {
    if (stored.record.tenant_id == tenant_id) ++stats.notifications;
  }
  stats.devices = device_count_;
  for (const auto& [id, delivery] : deliveries_) {
    if (delivery.tenant_id != tenant_id) continue;
    const DeliveryRecord& record = delivery.record;
    AddTo(record, &stats.total);
    AddTo(record, &stats.by_qos[record.qos]);
    AddTo(record, &stats.by_provider[kProvider]);
    if (record.last_attempt_time.has_value() &&
        (!stats.last_sent_time.has_value() || *record.last_attempt_time > *stats.last_sent_time)) {
      stats.last_sent_time = record.last_attempt_time;
    }
  }
  return stats;
}

absl::StatusOr<int64_t> FakeNotificationStore::CountBacklog() {
  if (absl::Status fault = faults_.Check("CountBacklog"); !fault.ok()) return fault;
  absl::MutexLock lock(&mu_);
  int64_t pending = 0;
  for (const auto& [id, delivery] : deliveries_) {
    if (delivery.record.state == DeliveryState::kPending) ++pending;
  }
  return pending;
}

void FakeNotificationStore::set_device_count(int64_t devices) {
  absl::MutexLock lock(&mu_);
  device_count_ = devices;
}

std::optional<DeliveryRecord> FakeNotificationStore::GetDelivery(int64_t delivery_id) const {
  absl::MutexLock lock(&mu_);
  const auto it = deliveries_.find(delivery_id);
  if (it == deliveries_.end()) return std::nullopt;
  return it->second.record;
}

std::vector<DeliveryRecord> FakeNotificationStore::AllDeliveriesLocked() const {
  std::vector<DeliveryRecord> all;
  all.reserve(deliveries_.size());
  for (const auto& [id, delivery] : deliveries_) all.push_back(delivery.record);
  return all;
}

std::vector<DeliveryRecord> FakeNotificationStore::AllDeliveries() const {
  absl::MutexLock lock(&mu_);
  return AllDeliveriesLocked();
}

std::vector<DeliveryOutcome> FakeNotificationStore::recorded_outcomes() const {
  absl::MutexLock lock(&mu_);
  return recorded_;
}

std::vector<int> FakeNotificationStore::claim_requests() const {
  absl::MutexLock lock(&mu_);
  return claim_requests_;
}

int FakeNotificationStore::stored_notifications() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(notifications_.size());
}

bool FakeNotificationStore::AwaitRecordedOutcomes(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return recorded_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeNotificationStore::AwaitClaims(int count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return nonempty_claims_ >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeNotificationStore::AwaitDeliveries(
    const std::function<bool(const std::vector<DeliveryRecord>&)>& predicate,
    absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto holds = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return predicate(AllDeliveriesLocked());
  };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

}  // namespace herald::testing
