#include "service/store/pg_command_store.h"

#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "service/store/pg_listener.h"
#include "service/store/pg_session.h"

namespace herald {
namespace {

// The lookups by tenant and command id are planned on each call
// (PgStatement::plan_each_call): planned for an empty table, the device
// history index, which leads with the tenant, looks as cheap as the primary
// key and then reads all of the tenant's commands on every call (5,000 rows
// per command in the benchmark).
struct CommandStatements {
  PgStatement insert, record_attempt, complete, record_response, get;
};

const CommandStatements& Statements() {
  static const CommandStatements* const statements = [] {
    // A row left pending past expire_time + grace was abandoned by its
    // waiter (the replica stopped): it reads as timed out.
    const std::string abandoned = absl::StrCat(
        "(state = 'pending' AND expire_time < now() - ",
        IntervalFromMicrosSql(absl::StrCat(absl::ToInt64Microseconds(kAbandonedCommandGrace))),
        ")");
    const std::string columns = absl::StrCat(
        "tenant_id, command_id, request_id, device_id, action, ", StringMapKeysSql("params"),
        " AS params_keys, ", StringMapValuesSql("params"),
        " AS params_values, qos, topic, response_topic,"
        " CASE WHEN ", abandoned, " THEN 'timed_out' ELSE state END AS state,"
        " CASE WHEN ", abandoned,
        " THEN 'abandoned: the replica that sent the command stopped before the device "
        "answered' ELSE error END AS error,"
        " attempts, max_attempts, ",
        MicrosSql("attempt_timeout"), " AS attempt_timeout_us, status, result::text AS result, ",
        MicrosSql("round_trip"), " AS round_trip_us, ", MicrosSql("create_time"), " AS create_us, ",
        MicrosSql("first_sent_time"), " AS first_sent_us, ", MicrosSql("last_attempt_time"),
        " AS last_attempt_us, ", MicrosSql("response_time"), " AS response_us, ",
        MicrosSql("complete_time"), " AS complete_us, ", MicrosSql("expire_time"),
        " AS expire_us");
    return new CommandStatements{
        .insert = {"herald_insert_command",
                   absl::StrCat("INSERT INTO commands (command_id, tenant_id, request_id, "
                                "device_id, action, params, qos, topic, response_topic, "
                                "max_attempts, attempt_timeout, expire_time) VALUES ($1, $2, $3, "
                                "$4, $5, jsonb_object($6::text[], $7::text[]), $8::int2, $9, $10,"
                                " $11::int4, ",
                                IntervalFromMicrosSql("$12"), ", ", TimestampFromMicrosSql("$13"),
                                ") RETURNING ", columns)},
        .record_attempt = {"herald_record_command_attempt",
                           "UPDATE commands SET attempts = greatest(attempts, $3::int4),"
                           " last_attempt_time = now(),"
                           " first_sent_time = coalesce(first_sent_time, now())"
                           " WHERE tenant_id = $1 AND command_id = $2",
                           /*plan_each_call=*/true},
        // Every SET expression sees the row as it was, so `state = 'pending'`
        // below is the state before this update.
        .complete =
            {"herald_complete_command",
             absl::StrCat(
                 "UPDATE commands SET"
                 " state = CASE WHEN state = 'pending' THEN $3 ELSE state END,"
                 " status = CASE WHEN state = 'pending' THEN nullif($4, '') ELSE status END,"
                 " result = CASE WHEN state = 'pending' THEN $5::jsonb ELSE result END,"
                 " error = CASE WHEN state = 'pending' THEN nullif($6, '') ELSE error END,"
                 " response_time = CASE WHEN state = 'pending' THEN ",
                 TimestampFromMicrosSql("$7"),
                 " ELSE response_time END,"
                 " attempts = greatest(attempts, $8::int4),"
                 " round_trip = coalesce(round_trip, ",
                 IntervalFromMicrosSql("$9"),
                 ", CASE WHEN state <> 'pending' THEN response_time - first_sent_time END),"
                 " complete_time = coalesce(complete_time, now())"
                 " WHERE tenant_id = $1 AND command_id = $2 RETURNING ",
                 columns),
             /*plan_each_call=*/true},
        // One statement: the update, the notification (sent at commit, so a
        // woken waiter finds the row answered) and, for a response that
        // changed nothing, what the row looked like.
        .record_response =
            {"herald_record_command_response",
             absl::StrCat(
                 "WITH target AS (SELECT device_id, state FROM commands WHERE request_id = $1),"
                 " updated AS (UPDATE commands SET state = $3, status = $4, result = $5::jsonb,"
                 " error = nullif($6, ''), response_time = now(), complete_time = now()"
                 " WHERE request_id = $1 AND state = 'pending'"
                 " AND ($2::text IS NULL OR device_id = $2) RETURNING request_id),"
                 " notified AS (SELECT pg_notify('",
                 kCommandResponsesChannel,
                 "', request_id) FROM updated)"
                 " SELECT (SELECT count(*) FROM notified) AS recorded, t.device_id, t.state"
                 " FROM (SELECT 1) AS one LEFT JOIN target AS t ON true")},
        .get = {"herald_get_command",
                absl::StrCat("SELECT ", columns,
                             " FROM commands WHERE tenant_id = $1 AND command_id = $2"),
                /*plan_each_call=*/true},
    };
  }();
  return *statements;
}

CommandRecord CommandOf(const pqxx::row& row) {
  CommandRecord command;
  command.tenant_id = TextOf(row["tenant_id"]);
  command.command_id = TextOf(row["command_id"]);
  command.request_id = TextOf(row["request_id"]);
  command.device_id = TextOf(row["device_id"]);
  command.action = TextOf(row["action"]);
  command.params = StringMapOf(row["params_keys"], row["params_values"]);
  command.qos = row["qos"].as<int>();
  command.topic = TextOf(row["topic"]);
  command.response_topic = TextOf(row["response_topic"]);
  const std::string state = TextOf(row["state"]);
  const std::optional<CommandState> parsed = CommandStateFromName(state);
  if (!parsed.has_value()) {
    throw pqxx::conversion_error(absl::StrCat("column state: unknown command state \"", state, "\""));
  }
  command.state = *parsed;
  command.error = TextOf(row["error"]);
  command.attempts = row["attempts"].as<int>();
  command.max_attempts = row["max_attempts"].as<int>();
  command.attempt_timeout = absl::Microseconds(row["attempt_timeout_us"].as<int64_t>());
  command.status = TextOf(row["status"]);
  command.result_json = TextOf(row["result"]);
  if (!row["round_trip_us"].is_null()) {
    command.round_trip = absl::Microseconds(row["round_trip_us"].as<int64_t>());
  }
  command.create_time = TimeOf(row["create_us"]);
  command.first_sent_time = OptionalTimeOf(row["first_sent_us"]);
  command.last_attempt_time = OptionalTimeOf(row["last_attempt_us"]);
  command.response_time = OptionalTimeOf(row["response_us"]);
  command.complete_time = OptionalTimeOf(row["complete_us"]);
  command.expire_time = TimeOf(row["expire_us"]);
  return command;
}

std::optional<std::string> OptionalText(const std::string& value) {
  if (value.empty()) return std::nullopt;
  return value;
}

absl::Status CommandNotFound(const std::string& command_id) {
  return absl::NotFoundError(absl::StrCat("command_id: no command \"", command_id, "\""));
}

}  // namespace

PgCommandStore::PgCommandStore(PgConnectionPool* pool, QueryObserver* observer)
    : pool_(pool), observer_(observer) {}

PgCommandStore::~PgCommandStore() { StopWatching(); }

absl::StatusOr<CommandRecord> PgCommandStore::InsertCommand(const CommandRecord& command) {
  // Autocommit: a lost reply may hide a successful insert, and a retry would
  // then report kAlreadyExists for our own row, so never retry.
  return RunPgOperation(
      *pool_, observer_, "insert_command", PgRetry::kNever,
      [&](PgSession& session) -> absl::StatusOr<CommandRecord> {
        pqxx::nontransaction tx(session.connection());
        try {
          const pqxx::row row = tx.exec_prepared1(
              session.Prepare(Statements().insert), command.command_id, command.tenant_id,
              command.request_id, command.device_id, command.action,
              MapKeysLiteral(command.params), MapValuesLiteral(command.params), command.qos,
              command.topic, command.response_topic, command.max_attempts,
              absl::ToInt64Microseconds(command.attempt_timeout),
              absl::ToUnixMicros(command.expire_time));
          return CommandOf(row);
        } catch (const pqxx::unique_violation&) {
          return absl::AlreadyExistsError(absl::StrCat("command \"", command.command_id,
                                                       "\" or its request id already exists"));
        }
      });
}

absl::Status PgCommandStore::RecordAttempt(const std::string& tenant_id,
                                           const std::string& command_id, int attempts) {
  // Idempotent (greatest, coalesce): safe to run twice.
  return RunPgOperation(*pool_, observer_, "record_command_attempt", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::Status {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result result = session.Exec(
                              tx, Statements().record_attempt, tenant_id, command_id, attempts);
                          if (result.affected_rows() == 0) return CommandNotFound(command_id);
                          return absl::OkStatus();
                        });
}

absl::StatusOr<CommandRecord> PgCommandStore::CompleteCommand(
    const CommandCompletion& completion) {
  // Idempotent: the second run finds the row final and only re-applies the
  // same attempts and round trip.
  return RunPgOperation(
      *pool_, observer_, "complete_command", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<CommandRecord> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = session.Exec(
            tx, Statements().complete, completion.tenant_id, completion.command_id,
            std::string(CommandStateName(completion.state)), completion.status,
            OptionalText(completion.result_json), completion.error,
            MicrosOf(completion.response_time), completion.attempts,
            MicrosOf(completion.round_trip));
        if (rows.empty()) return CommandNotFound(completion.command_id);
        return CommandOf(rows[0]);
      });
}

absl::StatusOr<ResponseDisposition> PgCommandStore::RecordResponse(
    const CommandResponse& response, const std::string& device_id) {
  if (response.request_id.empty()) {
    return absl::InvalidArgumentError("response without a request id");
  }
  const std::string state(CommandStateName(StateForDeviceStatus(response.status)));
  // A repeat after a lost reply finds the row answered: harmless.
  return RunPgOperation(
      *pool_, observer_, "record_command_response", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<ResponseDisposition> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::row row = tx.exec_prepared1(
            session.Prepare(Statements().record_response), response.request_id,
            OptionalText(device_id), state, response.status,
            OptionalText(response.result_json), response.error);
        if (row["recorded"].as<int64_t>() > 0) return ResponseDisposition::kRecorded;
        if (row["state"].is_null()) return ResponseDisposition::kUnknown;
        if (!device_id.empty() && TextOf(row["device_id"]) != device_id) {
          return ResponseDisposition::kWrongDevice;
        }
        const std::optional<CommandState> stored = CommandStateFromName(TextOf(row["state"]));
        if (stored == CommandState::kTimedOut) return ResponseDisposition::kTooLate;
        if (stored == CommandState::kSucceeded || stored == CommandState::kError) {
          return ResponseDisposition::kAlreadyAnswered;
        }
        return ResponseDisposition::kUnknown;
      });
}

absl::StatusOr<CommandRecord> PgCommandStore::GetCommand(const std::string& tenant_id,
                                                         const std::string& command_id) {
  return RunPgOperation(*pool_, observer_, "get_command", PgRetry::kOnLostConnection,
                        [&](PgSession& session) -> absl::StatusOr<CommandRecord> {
                          pqxx::nontransaction tx(session.connection());
                          const pqxx::result rows =
                              session.Exec(tx, Statements().get, tenant_id, command_id);
                          if (rows.empty()) return CommandNotFound(command_id);
                          return CommandOf(rows[0]);
                        });
}

absl::Status PgCommandStore::WatchResponses(ResponseRecordedCallback on_recorded) {
  if (!on_recorded) return absl::InvalidArgumentError("WatchResponses: no callback");
  absl::MutexLock lock(&mu_);
  if (listener_ != nullptr) {
    return absl::FailedPreconditionError("WatchResponses: already watching");
  }
  listener_ = std::make_unique<PgNotificationListener>(*pool_, kCommandResponsesChannel,
                                                       std::move(on_recorded));
  listener_->Start();
  return absl::OkStatus();
}

void PgCommandStore::StopWatching() {
  std::unique_ptr<PgNotificationListener> listener;
  {
    absl::MutexLock lock(&mu_);
    listener = std::move(listener_);
  }
  if (listener != nullptr) listener->Stop();
}

}  // namespace herald
