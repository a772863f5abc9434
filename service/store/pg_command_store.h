// PgCommandStore: commands and their outcomes in PostgreSQL (table
// `commands`, migrations/0002_commands.sql), and the hand-over of device
// responses between replicas through the command row and LISTEN/NOTIFY.
//
// How a response reaches the waiting caller when another replica received
// it:
//   1. that replica calls RecordResponse: one statement updates the row
//      (only while it is pending) and runs pg_notify on the channel
//      herald_command_responses with the request id; the notification is
//      delivered when the statement commits, so a waiter that wakes up
//      always finds the response in the row;
//   2. every replica's WatchResponses listener (a dedicated connection,
//      PgNotificationListener) hears it and calls back with the request id;
//   3. the waiting replica reads the row (GetCommand) and answers its
//      caller. A notification lost while a listener reconnects costs only
//      latency: waiters also re-read their row periodically.
//
//   PgCommandStore commands(pool.get(), &query_metrics);
//   commands.WatchResponses([&](const std::string& request_id) { commander.Wake(request_id); });
//   absl::StatusOr<CommandRecord> stored = commands.InsertCommand(record);
//   ...
//   commands.StopWatching();
#ifndef HERALD_SERVICE_STORE_PG_COMMAND_STORE_H_
#define HERALD_SERVICE_STORE_PG_COMMAND_STORE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "service/core/command_store.h"
#include "service/core/query_observer.h"
#include "service/store/pg_connection_pool.h"

namespace herald {

class PgNotificationListener;

// The NOTIFY channel of recorded responses; the payload is the request id.
inline constexpr char kCommandResponsesChannel[] = "herald_command_responses";

// How long past its expire time a pending row must be before GetCommand
// reports it timed out (abandoned): room for replicas' clocks to differ and
// for the waiter's final write.
inline constexpr absl::Duration kAbandonedCommandGrace = absl::Minutes(1);

// Thread-safe: every call borrows its own pooled connection; the response
// feed has a connection of its own. Operation names reported to the
// observer: insert_command, record_command_attempt, complete_command,
// record_command_response, get_command.
class PgCommandStore final : public CommandStore {
 public:
  // `pool` must outlive the store. `observer` may be null (nothing is
  // reported); otherwise it too must outlive the store.
  PgCommandStore(PgConnectionPool* pool, QueryObserver* observer);
  // Stops watching.
  ~PgCommandStore() override;

  PgCommandStore(const PgCommandStore&) = delete;
  PgCommandStore& operator=(const PgCommandStore&) = delete;

  // Uses tenant_id, command_id, request_id, device_id, action, params, qos,
  // topic, response_topic, max_attempts, attempt_timeout and expire_time;
  // the row starts pending with no attempts.
  absl::StatusOr<CommandRecord> InsertCommand(const CommandRecord& command) override;
  absl::Status RecordAttempt(const std::string& tenant_id, const std::string& command_id,
                             int attempts) override;
  // When another replica recorded the response and the completion brings no
  // round trip, the round trip is the database's response_time minus
  // first_sent_time.
  absl::StatusOr<CommandRecord> CompleteCommand(const CommandCompletion& completion) override;
  // kInvalidArgument if result_json is not valid JSON.
  absl::StatusOr<ResponseDisposition> RecordResponse(const CommandResponse& response,
                                                     const std::string& device_id) override;
  absl::StatusOr<CommandRecord> GetCommand(const std::string& tenant_id,
                                           const std::string& command_id) override;
  absl::Status WatchResponses(ResponseRecordedCallback on_recorded) override;
  void StopWatching() override;

 private:
  PgConnectionPool* const pool_;
  QueryObserver* const observer_;

  absl::Mutex mu_;
  std::unique_ptr<PgNotificationListener> listener_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_COMMAND_STORE_H_
