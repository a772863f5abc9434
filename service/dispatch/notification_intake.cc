#include "service/dispatch/notification_intake.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace herald {

NotificationIntake::NotificationIntake(Notifier& notifier, NotificationIntakeOptions options)
    : notifier_(notifier), options_(options) {}

NotificationIntake::~NotificationIntake() { Stop(); }

void NotificationIntake::Start() {
  absl::MutexLock lock(&mu_);
  if (running_ || stopping_) return;
  running_ = true;
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

void NotificationIntake::Submit(NotificationRequest request, Done done, absl::Time deadline) {
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (!running_ || stopping_) {
      refused = absl::UnavailableError(
          "notification intake: not accepting requests (the server is starting or stopping); "
          "retry on another replica");
    } else if (queue_.size() >= options_.max_queued) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "notification intake: ", queue_.size(),
          " requests are already waiting to be stored; retry with backoff"));
    } else {
      queue_.push_back(
          {.request = std::move(request), .done = std::move(done), .deadline = deadline});
      // No wake-up while the request is to join the next group anyway: the
      // thread sending now takes it when it is done.
      if (ShouldStartGroup()) work_cv_.Signal();
      return;
    }
  }
  done(refused);
}

void NotificationIntake::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    work_cv_.SignalAll();
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

bool NotificationIntake::ShouldStartGroup() const {
  if (queue_.empty()) return false;
  return sending_groups_ == 0 || queue_.size() >= std::max<size_t>(1, options_.parallel_group_min);
}

void NotificationIntake::Loop() {
  std::vector<Pending> group;
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!stopping_ && !ShouldStartGroup()) work_cv_.Wait(&mu_);
    if (queue_.empty()) return;  // stopping, and everything queued was sent
    const size_t take = std::min(queue_.size(), options_.max_group);
    group.assign(std::make_move_iterator(queue_.begin()),
                 std::make_move_iterator(queue_.begin() + take));
    queue_.erase(queue_.begin(), queue_.begin() + take);
    ++sending_groups_;
    if (ShouldStartGroup()) work_cv_.Signal();  // more than one group waits
    mu_.Unlock();
    Send(group);
    group.clear();
    mu_.Lock();
    --sending_groups_;
  }
}

void NotificationIntake::Send(std::vector<Pending>& group) {
  // SendMany resolves a batch's device ids for one tenant at a time.
  std::map<std::string, std::vector<Pending*>> by_tenant;
  const absl::Time now = absl::Now();
  for (Pending& pending : group) {
    if (pending.deadline <= now) {
      pending.done(absl::DeadlineExceededError(
          "the call's deadline passed while it waited to be stored; nothing was stored (the "
          "database is slow or unreachable): retry, with an idempotency_key to be safe"));
      continue;
    }
    by_tenant[pending.request.tenant_id].push_back(&pending);
  }
  for (auto& [tenant, pendings] : by_tenant) {
    std::vector<NotificationRequest> requests;
    requests.reserve(pendings.size());
    for (Pending* pending : pendings) requests.push_back(std::move(pending->request));
    std::vector<absl::StatusOr<SendOutcome>> outcomes = notifier_.SendMany(requests);
    for (size_t i = 0; i < pendings.size(); ++i) pendings[i]->done(std::move(outcomes[i]));
  }
}

}  // namespace herald
