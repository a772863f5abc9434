#include "tests/testing/fakes/fake_command_store.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace herald::testing {
namespace {

absl::Status CommandNotFound(const std::string& command_id) {
  return absl::NotFoundError(absl::StrCat("command_id: no command \"", command_id, "\""));
}

}  // namespace

FakeCommandStore::FakeCommandStore(std::function<absl::Time()> clock)
    : clock_(clock ? std::move(clock) : [] { return absl::Now(); }) {}

absl::StatusOr<CommandRecord> FakeCommandStore::InsertCommand(const CommandRecord& command) {
  if (absl::Status fault = faults_.Check("InsertCommand"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  for (const CommandRecord& existing : commands_) {
    if (existing.command_id == command.command_id || existing.request_id == command.request_id) {
      return absl::AlreadyExistsError(absl::StrCat("command \"", command.command_id,
                                                   "\" or its request id already exists"));
    }
  }
  CommandRecord stored = command;
  stored.state = CommandState::kPending;
  stored.attempts = 0;
  stored.status.clear();
  stored.result_json.clear();
  stored.error.clear();
  stored.round_trip.reset();
  stored.create_time = now;
  stored.first_sent_time.reset();
  stored.last_attempt_time.reset();
  stored.response_time.reset();
  stored.complete_time.reset();
  commands_.push_back(stored);
  return stored;
}

absl::Status FakeCommandStore::RecordAttempt(const std::string& tenant_id,
                                             const std::string& command_id, int attempts) {
  if (absl::Status fault = faults_.Check("RecordAttempt"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  for (CommandRecord& command : commands_) {
    if (command.tenant_id != tenant_id || command.command_id != command_id) continue;
    command.attempts = std::max(command.attempts, attempts);
    command.last_attempt_time = now;
    if (!command.first_sent_time.has_value()) command.first_sent_time = now;
    return absl::OkStatus();
  }
  return CommandNotFound(command_id);
}

absl::StatusOr<CommandRecord> FakeCommandStore::CompleteCommand(
    const CommandCompletion& completion) {
  if (absl::Status fault = faults_.Check("CompleteCommand"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  for (CommandRecord& command : commands_) {
    if (command.tenant_id != completion.tenant_id ||
        command.command_id != completion.command_id) {
      continue;
    }
    const bool pending = command.state == CommandState::kPending;
    if (pending) {
      command.state = completion.state;
      command.status = completion.status;
      command.result_json = completion.result_json;
      command.error = completion.error;
      command.response_time = completion.response_time;
    }
    command.attempts = std::max(command.attempts, completion.attempts);
    if (!command.round_trip.has_value()) {
      if (completion.round_trip.has_value()) {
        command.round_trip = completion.round_trip;
      } else if (!pending && command.response_time.has_value() &&
                 command.first_sent_time.has_value()) {
        command.round_trip = *command.response_time - *command.first_sent_time;
      }
    }
    if (!command.complete_time.has_value()) command.complete_time = now;
    return command;
  }
  return CommandNotFound(completion.command_id);
}

absl::StatusOr<ResponseDisposition> FakeCommandStore::RecordResponse(
    const CommandResponse& response, const std::string& device_id) {
  if (absl::Status fault = faults_.Check("RecordResponse"); !fault.ok()) return fault;
  const absl::Time now = Now();
  ResponseRecordedCallback notify;
  {
    absl::MutexLock lock(&mu_);
    CommandRecord* command = nullptr;
    for (CommandRecord& candidate : commands_) {
      if (candidate.request_id == response.request_id) command = &candidate;
    }
    if (command == nullptr) return ResponseDisposition::kUnknown;
    if (!device_id.empty() && command->device_id != device_id) {
      return ResponseDisposition::kWrongDevice;
    }
    if (command->state == CommandState::kTimedOut) return ResponseDisposition::kTooLate;
    if (command->state != CommandState::kPending) return ResponseDisposition::kAlreadyAnswered;
    command->state = StateForDeviceStatus(response.status);
    command->status = response.status;
    command->result_json = response.result_json;
    command->error = response.error;
    command->response_time = now;
    command->complete_time = now;
    if (!drop_notifications_) notify = on_recorded_;
  }
  if (notify) {
    // Held while calling, so that StopWatching waits for a callback running.
    absl::MutexLock calling(&callback_mu_);
    if (watching()) notify(response.request_id);
  }
  return ResponseDisposition::kRecorded;
}

absl::StatusOr<CommandRecord> FakeCommandStore::GetCommand(const std::string& tenant_id,
                                                           const std::string& command_id) {
  {
    absl::MutexLock lock(&mu_);
    ++get_calls_;
  }
  if (absl::Status fault = faults_.Check("GetCommand"); !fault.ok()) return fault;
  absl::MutexLock lock(&mu_);
  for (const CommandRecord& command : commands_) {
    if (command.tenant_id == tenant_id && command.command_id == command_id) return command;
  }
  return CommandNotFound(command_id);
}

absl::Status FakeCommandStore::WatchResponses(ResponseRecordedCallback on_recorded) {
  if (!on_recorded) return absl::InvalidArgumentError("WatchResponses: no callback");
  absl::MutexLock lock(&mu_);
  if (on_recorded_) return absl::FailedPreconditionError("WatchResponses: already watching");
  on_recorded_ = std::move(on_recorded);
  return absl::OkStatus();
}

void FakeCommandStore::StopWatching() {
  absl::MutexLock calling(&callback_mu_);
  absl::MutexLock lock(&mu_);
  on_recorded_ = nullptr;
}

void FakeCommandStore::set_drop_notifications(bool drop) {
  absl::MutexLock lock(&mu_);
  drop_notifications_ = drop;
}

std::vector<CommandRecord> FakeCommandStore::Commands() const {
  absl::MutexLock lock(&mu_);
  return commands_;
}

bool FakeCommandStore::watching() const {
  absl::MutexLock lock(&mu_);
  return static_cast<bool>(on_recorded_);
}

bool FakeCommandStore::AwaitInserted(size_t count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return commands_.size() >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

bool FakeCommandStore::AwaitGetCalls(int count, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  const auto enough = [this, count]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return get_calls_ >= count;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace herald::testing
