#include "tests/testing/fakes/fake_provider.h"

#include <algorithm>
#include <utility>

#include "providers/mqtt/topic_filter.h"

namespace herald::testing {

FakeProvider::FakeProvider(std::string name) : name_(std::move(name)) {}

absl::Status FakeProvider::Start() {
  absl::MutexLock lock(&mu_);
  ++start_calls_;
  return start_status_;
}

absl::Status FakeProvider::WaitConnected(absl::Duration) {
  absl::MutexLock lock(&mu_);
  if (state_ == ConnectionState::kConnected) return absl::OkStatus();
  return absl::DeadlineExceededError("fake provider: not connected");
}

void FakeProvider::Publish(OutgoingMessage message, PublishCallback done) {
  std::optional<PublishResult> now;
  {
    absl::MutexLock lock(&mu_);
    published_.push_back(message);
    if (stopped_ || state_ != ConnectionState::kConnected) {
      now = PublishResult{.status = absl::UnavailableError("fake provider: not connected")};
    } else if (auto_complete_.has_value()) {
      now = auto_complete_;
    } else {
      outstanding_.push_back({std::move(message), std::move(done)});
      return;
    }
  }
  done(*now);
}

absl::Status FakeProvider::Subscribe(const std::string& topic_filter, int qos,
                                     MessageHandler handler) {
  absl::MutexLock lock(&mu_);
  subscriptions_.push_back({topic_filter, qos, std::move(handler)});
  return absl::OkStatus();
}

int64_t FakeProvider::AvailableCapacity() const {
  absl::MutexLock lock(&mu_);
  ++capacity_queries_;
  return std::max<int64_t>(0, max_in_flight_ - static_cast<int64_t>(outstanding_.size()));
}

ConnectionStatus FakeProvider::GetConnectionStatus() const {
  absl::MutexLock lock(&mu_);
  ++status_queries_;
  ConnectionStatus status;
  status.state = state_;
  status.server_uri = "fake://" + name_;
  status.connections = connections_;
  status.reconnects = reconnects_;
  status.in_flight = static_cast<int64_t>(outstanding_.size());
  return status;
}

void FakeProvider::Stop(absl::Duration) {
  std::deque<Pending> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    state_ = ConnectionState::kDisconnected;
    dropped.swap(outstanding_);
  }
  for (Pending& pending : dropped) {
    pending.done({.status = absl::UnavailableError("fake provider: stopped before the ack")});
  }
}

void FakeProvider::set_connection_state(ConnectionState state) {
  absl::MutexLock lock(&mu_);
  if (state == ConnectionState::kConnected && state_ != ConnectionState::kConnected) {
    if (connections_ > 0) ++reconnects_;
    ++connections_;
  }
  state_ = state;
}

void FakeProvider::set_max_in_flight(int64_t max_in_flight) {
  absl::MutexLock lock(&mu_);
  max_in_flight_ = max_in_flight;
}

void FakeProvider::set_auto_complete(std::optional<PublishResult> result) {
  absl::MutexLock lock(&mu_);
  auto_complete_ = std::move(result);
}

void FakeProvider::set_start_status(absl::Status status) {
  absl::MutexLock lock(&mu_);
  start_status_ = std::move(status);
}

bool FakeProvider::CompleteNext(const PublishResult& result) {
  Pending next;
  {
    absl::MutexLock lock(&mu_);
    if (outstanding_.empty()) return false;
    next = std::move(outstanding_.front());
    outstanding_.pop_front();
  }
  next.done(result);
  return true;
}

int FakeProvider::CompleteAll(const PublishResult& result) {
  std::deque<Pending> all;
  {
    absl::MutexLock lock(&mu_);
    all.swap(outstanding_);
  }
  for (Pending& pending : all) pending.done(result);
  return static_cast<int>(all.size());
}

int FakeProvider::DeliverIncoming(const IncomingMessage& message) {
  std::vector<MessageHandler> handlers;
  {
    absl::MutexLock lock(&mu_);
    for (const Subscription& subscription : subscriptions_) {
      if (TopicFilterMatches(StripSharedSubscription(subscription.filter), message.topic)) {
        handlers.push_back(subscription.handler);
      }
    }
  }
  for (const MessageHandler& handler : handlers) handler(message);
  return static_cast<int>(handlers.size());
}

std::vector<OutgoingMessage> FakeProvider::published() const {
  absl::MutexLock lock(&mu_);
  return published_;
}

size_t FakeProvider::published_count() const {
  absl::MutexLock lock(&mu_);
  return published_.size();
}

size_t FakeProvider::outstanding() const {
  absl::MutexLock lock(&mu_);
  return outstanding_.size();
}

std::vector<std::string> FakeProvider::subscriptions() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> filters;
  for (const Subscription& subscription : subscriptions_) filters.push_back(subscription.filter);
  return filters;
}

int FakeProvider::start_calls() const {
  absl::MutexLock lock(&mu_);
  return start_calls_;
}

bool FakeProvider::stopped() const {
  absl::MutexLock lock(&mu_);
  return stopped_;
}

int64_t FakeProvider::status_queries() const {
  absl::MutexLock lock(&mu_);
  return status_queries_;
}

int64_t FakeProvider::capacity_queries() const {
  absl::MutexLock lock(&mu_);
  return capacity_queries_;
}

bool FakeProvider::AwaitStatusQueries(int64_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return status_queries_ >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeProvider::AwaitCapacityQueries(int64_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return capacity_queries_ >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeProvider::AwaitPublished(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return published_.size() >= count; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeProvider::AwaitOutstanding(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return outstanding_.size() >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace herald::testing
