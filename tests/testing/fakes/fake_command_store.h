// FakeCommandStore: an in-memory CommandStore for unit tests. It keeps the
// interface's contracts as PgCommandStore does: unique command and request
// ids, CompleteCommand applying the waiter's outcome only while the row is
// pending, RecordResponse classifying what it could not record, and
// WatchResponses callbacks for every recorded response (called inline from
// RecordResponse, as NOTIFY would reach every replica). It can also play
// "another replica" for a test: RecordResponse is exactly what that replica
// would call.
//
//   herald::testing::FakeCommandStore commands;
//   commands.FailNextCalls(absl::UnavailableError("db down"), 1, "InsertCommand");
//   ...
//   commands.RecordResponse({.request_id = id, .status = "success"}, "node-001");
//   std::vector<CommandRecord> all = commands.Commands();
#ifndef HERALD_TESTS_TESTING_FAKES_FAKE_COMMAND_STORE_H_
#define HERALD_TESTS_TESTING_FAKES_FAKE_COMMAND_STORE_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/command_store.h"
#include "tests/testing/fakes/fault_injector.h"

namespace herald::testing {

// Thread-safe. Callbacks run without the fake's lock held.
class FakeCommandStore final : public CommandStore {
 public:
  // `clock` is "the database's clock"; null means the real clock (the
  // Commander measures waits on the real clock too).
  explicit FakeCommandStore(std::function<absl::Time()> clock = nullptr);

  // CommandStore.
  absl::StatusOr<CommandRecord> InsertCommand(const CommandRecord& command) override;
  absl::Status RecordAttempt(const std::string& tenant_id, const std::string& command_id,
                             int attempts) override;
  absl::StatusOr<CommandRecord> CompleteCommand(const CommandCompletion& completion) override;
  absl::StatusOr<ResponseDisposition> RecordResponse(const CommandResponse& response,
                                                     const std::string& device_id) override;
  absl::StatusOr<CommandRecord> GetCommand(const std::string& tenant_id,
                                           const std::string& command_id) override;
  absl::Status WatchResponses(ResponseRecordedCallback on_recorded) override;
  void StopWatching() override;

  // Test controls.

  // The next `n` calls (of `method` only, when given) fail with `status`.
  void FailNextCalls(absl::Status status, int n, std::string method = "") {
    faults_.FailNextCalls(std::move(status), n, std::move(method));
  }
  // While true, RecordResponse stores the response but tells no watcher:
  // a lost NOTIFY.
  void set_drop_notifications(bool drop);

  // Inspection.
  std::vector<CommandRecord> Commands() const;  // in insertion order
  bool watching() const;
  // Waits until a command was inserted / `count` GetCommand calls were made.
  bool AwaitInserted(size_t count, absl::Duration timeout) const;
  bool AwaitGetCalls(int count, absl::Duration timeout) const;

 private:
  absl::Time Now() const { return clock_(); }

  const std::function<absl::Time()> clock_;
  FaultInjector faults_;
  absl::Mutex callback_mu_;  // held while a watch callback runs; taken before mu_
  mutable absl::Mutex mu_;
  std::vector<CommandRecord> commands_ ABSL_GUARDED_BY(mu_);
  ResponseRecordedCallback on_recorded_ ABSL_GUARDED_BY(mu_);
  bool drop_notifications_ ABSL_GUARDED_BY(mu_) = false;
  int get_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_FAKE_COMMAND_STORE_H_
