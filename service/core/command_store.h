// CommandStore: every command and its outcome, and the hand-over of a
// device's response between replicas. PgCommandStore (service/store)
// implements it over PostgreSQL; unit tests use FakeCommandStore
// (tests/testing/fakes).
//
// Why the hand-over lives here: with several replicas and an MQTT 5 shared
// subscription, the broker gives each response to one replica, which need
// not be the one whose caller waits for it. That replica writes the
// response into the command's row (RecordResponse), and the store tells the
// waiting replica (WatchResponses: PostgreSQL LISTEN/NOTIFY); a waiter also
// re-reads its row now and then (GetCommand), so a lost notification costs
// latency, never the answer.
//
//   CommandRecord stored = *store.InsertCommand(record);   // state pending
//   store.RecordAttempt(tenant, stored.command_id, 1);
//   ...                                                    // on another replica:
//   store.RecordResponse(response, "node-001");            //   row answered + NOTIFY
//   ...                                                    // on the waiting one:
//   CommandRecord done = *store.CompleteCommand(completion);
#ifndef HERALD_SERVICE_CORE_COMMAND_STORE_H_
#define HERALD_SERVICE_CORE_COMMAND_STORE_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/core/command.h"

namespace herald {

// What RecordResponse did with a response.
enum class ResponseDisposition {
  kRecorded,         // a pending command took it; its waiter has been told
  kAlreadyAnswered,  // the command was answered before: a duplicate
  kTooLate,          // the command had timed out already
  kUnknown,          // no command has this request id
  kWrongDevice,      // the command went to another device than the topic names
};

// "recorded", "already_answered", "too_late", "unknown", "wrong_device".
std::string_view ResponseDispositionName(ResponseDisposition disposition);

// The end of a command, as its waiter reports it to CompleteCommand.
struct CommandCompletion {
  std::string tenant_id;
  std::string command_id;
  // Applied only while the row is still pending; a response that another
  // replica recorded first wins (the waiter then returns that one).
  CommandState state = CommandState::kTimedOut;
  std::string status;
  std::string result_json;
  std::string error;
  std::optional<absl::Time> response_time;
  // Always applied.
  int attempts = 0;
  std::optional<absl::Duration> round_trip;
};

// Called with the request id of a response that RecordResponse stored (on
// any replica), or with "" after the feed may have missed some (it
// reconnected): then every waiter should re-read its command. Runs on a
// store thread; must not block.
using ResponseRecordedCallback = std::function<void(const std::string& request_id)>;

// Implementations are thread-safe. Errors: kUnavailable when the database
// cannot be reached, kInternal for anything unexpected, plus those named below.
class CommandStore {
 public:
  virtual ~CommandStore() = default;

  // Stores a new pending command (tenant, ids, device, action, params, qos,
  // topics, max_attempts, attempt_timeout, expire_time) and returns it with
  // create_time set. kAlreadyExists if the command id or request id is taken.
  virtual absl::StatusOr<CommandRecord> InsertCommand(const CommandRecord& command) = 0;

  // Notes that attempt number `attempts` was published now (the first one
  // also sets first_sent_time). kNotFound if there is no such command.
  virtual absl::Status RecordAttempt(const std::string& tenant_id, const std::string& command_id,
                                     int attempts) = 0;

  // Finishes a command and returns it as stored: the completion's state and
  // device answer while the row is pending, else the answer already stored;
  // attempts, round trip and complete time either way. kNotFound if there is
  // no such command.
  virtual absl::StatusOr<CommandRecord> CompleteCommand(const CommandCompletion& completion) = 0;

  // Stores a device's response for the pending command with its request id
  // (any tenant: request ids are unique) and tells every replica's
  // WatchResponses callback. `device_id`, when not empty, is the device the
  // response topic names: a command for another device is not touched
  // (kWrongDevice). Idempotent for a given response: a repeat finds the row
  // answered (kAlreadyAnswered).
  virtual absl::StatusOr<ResponseDisposition> RecordResponse(const CommandResponse& response,
                                                             const std::string& device_id) = 0;

  // kNotFound if the tenant has no such command. A row left pending for
  // well over its expire time reads as kTimedOut (its waiter is gone).
  virtual absl::StatusOr<CommandRecord> GetCommand(const std::string& tenant_id,
                                                   const std::string& command_id) = 0;

  // Starts calling `on_recorded` for the responses RecordResponse stores,
  // on this and every other replica, until StopWatching. Returns at once;
  // while the feed is down (the database is away) nothing is reported, and
  // "" is reported once it is back. kFailedPrecondition if already
  // watching.
  virtual absl::Status WatchResponses(ResponseRecordedCallback on_recorded) = 0;

  // Stops the feed; no callback runs after it returns. Idempotent.
  virtual void StopWatching() = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_COMMAND_STORE_H_
