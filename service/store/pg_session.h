// Internal to service/store: the glue between the stores and libpqxx. Not a
// public header (it includes libpqxx, which must stay in this folder).
//
// Every store method is one call of RunPgOperation: it borrows a connection
// from the pool, runs the body, turns libpqxx exceptions into absl::Status
// (the adapter is where exceptions stop, per the house rules), retries when
// that is safe, and reports the latency to the QueryObserver.
//
//   return RunPgOperation(*pool_, observer_, "get_device", PgRetry::kOnLostConnection,
//       [&](PgSession& session) -> absl::StatusOr<Device> {
//         pqxx::nontransaction tx(session.connection());
//         pqxx::result rows = tx.exec_prepared(session.Prepare(kGetDevice), tenant_id, id);
//         ...
//       });
#ifndef HERALD_SERVICE_STORE_PG_SESSION_H_
#define HERALD_SERVICE_STORE_PG_SESSION_H_

#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/core/query_observer.h"
#include "service/store/pg_connection_pool.h"

namespace herald {

// One pooled connection and the statements prepared on it. Owned by the
// pool; used by one PgSession at a time.
struct PgPoolSlot {
  std::unique_ptr<pqxx::connection> connection;  // null until first use or after a break
  absl::flat_hash_set<std::string> prepared;     // names prepared on `connection`
};

// A named SQL statement, prepared on each connection at its first use there
// and from then on run with a plan PostgreSQL may cache for the session.
// plan_each_call: run unprepared instead, planned with this call's
// parameters and the tables' size now. For statements whose best plan
// depends on that: a plan cached while a table was empty (a new database,
// or one whose statistics say so) keeps scanning it as it grows until
// autovacuum analyses it again.
struct PgStatement {
  std::string name;
  std::string sql;
  bool plan_each_call = false;
};

// A connection borrowed from the pool for one operation; returns it when
// destroyed. Not thread-safe: one thread uses a session at a time.
class PgSession {
 public:
  // Waits for a free connection (up to the pool's acquire_timeout) and opens
  // it if needed. kUnavailable if none frees up or the database is down.
  static absl::StatusOr<PgSession> Open(PgConnectionPool& pool);

  PgSession(PgSession&& other) noexcept;
  PgSession& operator=(PgSession&&) = delete;
  ~PgSession();

  pqxx::connection& connection() { return *slot_->connection; }

  // Prepares `statement` on this connection unless it already is, and
  // returns its name for exec_prepared. (libpqxx sends the PREPARE together
  // with the first execution, so this costs no round trip.)
  std::string Prepare(const PgStatement& statement);

  // Runs `statement` in `tx`: prepared (see Prepare), or unprepared when it
  // is marked plan_each_call.
  template <typename... Args>
  pqxx::result Exec(pqxx::transaction_base& tx, const PgStatement& statement, Args&&... args) {
    if (statement.plan_each_call) return tx.exec_params(statement.sql, std::forward<Args>(args)...);
    return tx.exec_prepared(Prepare(statement), std::forward<Args>(args)...);
  }

  // The connection is unusable: the pool closes it and opens a new one on
  // the slot's next use.
  void MarkBroken() { broken_ = true; }

 private:
  PgSession(PgConnectionPool* pool, PgPoolSlot* slot) : pool_(pool), slot_(slot) {}

  PgConnectionPool* pool_;
  PgPoolSlot* slot_;  // null once moved from
  bool broken_ = false;
};

// Whether RunPgOperation may run the body a second time on a fresh
// connection after the first one broke mid-operation.
enum class PgRetry {
  // The body is not idempotent and may have taken effect (an autocommit
  // INSERT whose reply was lost): report kUnavailable instead.
  kNever,
  // Running the body again is harmless: it only reads, its writes are
  // idempotent, or it writes inside one pqxx::work transaction (a connection
  // lost before COMMIT rolls it back; a loss during COMMIT is reported as
  // in doubt and never retried).
  kOnLostConnection,
};

// What went wrong in a body, as a Status plus what the caller may do.
struct PgFailure {
  absl::Status status;
  bool lost_connection = false;  // the connection broke; nothing else was wrong
  bool conflict = false;         // deadlock or serialization failure: rolled back, retry
};

// Translates the exception in flight (call from a catch block). Messages
// name the operation and never contain the database password.
PgFailure TranslateCurrentException(std::string_view operation, const PgConnectionPool& pool);

// The canonical code for a PostgreSQL SQLSTATE.
absl::StatusCode StatusCodeForSqlState(std::string_view sqlstate);

// True unless `status` says that the database failed (as opposed to a
// request that the database rightly refused: not found, already exists...).
bool DatabaseDidItsJob(const absl::Status& status);

inline const absl::Status& StatusOf(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

// Runs `body(PgSession&)`, which returns absl::Status or absl::StatusOr<T>,
// on a pooled connection. Exceptions become a Status; deadlocks and
// serialization failures are retried (the database rolled the work back);
// a lost connection is retried once when `retry` allows. The operation's
// total latency, waiting for a connection included, goes to `observer`.
template <typename Body>
auto RunPgOperation(PgConnectionPool& pool, QueryObserver* observer, std::string_view operation,
                    PgRetry retry, Body&& body) -> std::invoke_result_t<Body&, PgSession&> {
  using Result = std::invoke_result_t<Body&, PgSession&>;
  constexpr int kMaxAttempts = 3;
  const absl::Time start = absl::Now();
  Result result = [&]() -> Result {
    bool retried_lost_connection = false;
    for (int attempt = 1;; ++attempt) {
      absl::StatusOr<PgSession> session = PgSession::Open(pool);
      if (!session.ok()) return session.status();
      PgFailure failure;
      try {
        return body(*session);
      } catch (...) {
        failure = TranslateCurrentException(operation, pool);
        if (failure.lost_connection || !session->connection().is_open()) session->MarkBroken();
      }
      const bool again =
          attempt < kMaxAttempts &&
          (failure.conflict || (failure.lost_connection && retry == PgRetry::kOnLostConnection &&
                                !retried_lost_connection));
      if (!again) return failure.status;
      if (failure.lost_connection) retried_lost_connection = true;
    }
  }();
  if (observer != nullptr) {
    observer->ObserveQuery(operation, absl::Now() - start, DatabaseDidItsJob(StatusOf(result)));
  }
  return result;
}

// --- Reading and writing values --------------------------------------------

// SQL for the microseconds since the Unix epoch of a timestamptz (or
// interval) expression, and back: times cross the wire as int8 so that no
// time zone or text format is involved.
std::string MicrosSql(absl::string_view expression);
std::string TimestampFromMicrosSql(absl::string_view parameter);  // e.g. "$3"
std::string IntervalFromMicrosSql(absl::string_view parameter);

std::optional<int64_t> MicrosOf(const std::optional<absl::Time>& time);
std::optional<int64_t> MicrosOf(const std::optional<absl::Duration>& duration);

// Field readers. They throw pqxx::conversion_error on malformed values, which
// RunPgOperation reports as kInternal.
std::string TextOf(const pqxx::field& field);  // NULL reads as ""
absl::Time TimeOf(const pqxx::field& micros);
std::optional<absl::Time> OptionalTimeOf(const pqxx::field& micros);
std::vector<std::string> TextArrayOf(const pqxx::field& field);
// A string map stored as jsonb, read as two parallel text[] columns (keys and
// values; see StringMapKeysSql) so that no JSON parser is needed here.
std::map<std::string, std::string> StringMapOf(const pqxx::field& keys, const pqxx::field& values);
std::string BytesOf(const pqxx::field& bytea);

// SQL for the keys, and the values in key order, of a jsonb string map.
std::string StringMapKeysSql(absl::string_view column);
std::string StringMapValuesSql(absl::string_view column);

// The literals binding a std::map to `jsonb_object($k::text[], $v::text[])`.
std::string MapKeysLiteral(const std::map<std::string, std::string>& map);
std::string MapValuesLiteral(const std::map<std::string, std::string>& map);

// Page sizes: <= 0 means the default; larger than the maximum is capped.
inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;
int EffectivePageSize(int page_size);

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_SESSION_H_
