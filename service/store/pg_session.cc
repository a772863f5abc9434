#include "service/store/pg_session.h"

#include <exception>
#include <pqxx/pqxx>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "service/core/database_url.h"
#include "service/store/pg_array.h"

namespace herald {
namespace {

// The first line of a server or libpq message, without libpq's "ERROR:  "
// prefix: the rest (DETAIL, HINT, the query) may quote row contents.
std::string FirstLine(absl::string_view message) {
  message = message.substr(0, message.find('\n'));
  absl::ConsumePrefix(&message, "ERROR:");
  absl::ConsumePrefix(&message, "FATAL:");
  return std::string(absl::StripAsciiWhitespace(message));
}

}  // namespace

absl::StatusOr<PgSession> PgSession::Open(PgConnectionPool& pool) {
  absl::StatusOr<PgPoolSlot*> slot = pool.Take();
  if (!slot.ok()) return slot.status();
  return PgSession(&pool, *slot);
}

PgSession::PgSession(PgSession&& other) noexcept
    : pool_(other.pool_), slot_(std::exchange(other.slot_, nullptr)), broken_(other.broken_) {}

PgSession::~PgSession() {
  if (slot_ != nullptr) pool_->Give(slot_, broken_);
}

std::string PgSession::Prepare(const PgStatement& statement) {
  if (!slot_->prepared.contains(statement.name)) {
    slot_->connection->prepare(statement.name, statement.sql);
    slot_->prepared.insert(statement.name);
  }
  return statement.name;
}

absl::StatusCode StatusCodeForSqlState(std::string_view sqlstate) {
  if (sqlstate == "23505") return absl::StatusCode::kAlreadyExists;       // unique_violation
  if (sqlstate == "23503") return absl::StatusCode::kFailedPrecondition;  // foreign_key_violation
  if (sqlstate == "40001" || sqlstate == "40P01") return absl::StatusCode::kAborted;
  if (sqlstate == "57014") return absl::StatusCode::kDeadlineExceeded;  // query_canceled
  if (sqlstate == "55P03") return absl::StatusCode::kUnavailable;       // lock_not_available
  const std::string_view sqlclass = sqlstate.substr(0, 2);
  if (sqlclass == "22" || sqlclass == "23") return absl::StatusCode::kInvalidArgument;
  if (sqlclass == "08" || sqlclass == "57") return absl::StatusCode::kUnavailable;
  if (sqlclass == "53") return absl::StatusCode::kResourceExhausted;
  if (sqlclass == "28") return absl::StatusCode::kPermissionDenied;
  return absl::StatusCode::kInternal;
}

bool DatabaseDidItsJob(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument: return true;
    default: return false;
  }
}

PgFailure TranslateCurrentException(std::string_view operation_name, const PgConnectionPool& pool) {
  const std::string operation(operation_name);
  const auto first_line = [&](const char* what) {
    const std::string line = FirstLine(what);
    return pool.RedactSecrets(line);
  };
  const auto unavailable = [&](const char* what, const char* why) {
    return absl::UnavailableError(absl::StrCat("database ", pool.redacted_url(), " ", why,
                                               " during ", operation, ": ", first_line(what)));
  };
  PgFailure failure;
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    failure.lost_connection = true;
    failure.status = unavailable(e.what(), "connection lost");
  } catch (const pqxx::in_doubt_error& e) {
    failure.status = unavailable(
        e.what(), "connection lost while committing; the outcome is unknown (retry if idempotent)");
  } catch (const pqxx::statement_completion_unknown& e) {
    failure.status = unavailable(e.what(), "lost track of a statement; its outcome is unknown");
  } catch (const pqxx::deadlock_detected& e) {
    failure.conflict = true;
    failure.status = absl::AbortedError(
        absl::StrCat("database deadlock during ", operation, ": ", first_line(e.what())));
  } catch (const pqxx::transaction_rollback& e) {
    failure.conflict = true;
    failure.status = absl::AbortedError(
        absl::StrCat("database conflict during ", operation, ": ", first_line(e.what())));
  } catch (const pqxx::sql_error& e) {
    const absl::StatusCode code = StatusCodeForSqlState(e.sqlstate());
    if (code == absl::StatusCode::kUnavailable) {
      failure.status = unavailable(e.what(), "unavailable");
    } else {
      failure.status =
          absl::Status(code, absl::StrCat("database error during ", operation, " (SQLSTATE ",
                                          e.sqlstate(), "): ", first_line(e.what())));
    }
  } catch (const std::exception& e) {
    failure.status = absl::InternalError(
        absl::StrCat("database client error during ", operation, ": ", first_line(e.what())));
  } catch (...) {
    failure.status = absl::InternalError(
        absl::StrCat("database client error during ", operation, ": unknown exception"));
  }
  return failure;
}

std::string MicrosSql(absl::string_view expression) {
  return absl::StrCat("(extract(epoch FROM ", expression, ") * 1000000)::int8");
}

std::string TimestampFromMicrosSql(absl::string_view parameter) {
  return absl::StrCat("(timestamptz 'epoch' + ", parameter, "::int8 * interval '1 microsecond')");
}

std::string IntervalFromMicrosSql(absl::string_view parameter) {
  return absl::StrCat("(", parameter, "::int8 * interval '1 microsecond')");
}

std::optional<int64_t> MicrosOf(const std::optional<absl::Time>& time) {
  if (!time.has_value()) return std::nullopt;
  return absl::ToUnixMicros(*time);
}

std::optional<int64_t> MicrosOf(const std::optional<absl::Duration>& duration) {
  if (!duration.has_value()) return std::nullopt;
  return absl::ToInt64Microseconds(*duration);
}

std::string TextOf(const pqxx::field& field) {
  if (field.is_null()) return std::string();
  return std::string(field.c_str(), field.size());
}

absl::Time TimeOf(const pqxx::field& micros) {
  if (micros.is_null()) {
    throw pqxx::conversion_error(absl::StrCat("column ", micros.name(), ": unexpected NULL time"));
  }
  return absl::FromUnixMicros(micros.as<int64_t>());
}

std::optional<absl::Time> OptionalTimeOf(const pqxx::field& micros) {
  if (micros.is_null()) return std::nullopt;
  return absl::FromUnixMicros(micros.as<int64_t>());
}

std::vector<std::string> TextArrayOf(const pqxx::field& field) {
  if (field.is_null()) return {};
  absl::StatusOr<std::vector<std::string>> values = ParsePgTextArray(field.c_str());
  if (!values.ok()) {
    throw pqxx::conversion_error(
        absl::StrCat("column ", field.name(), ": ", values.status().message()));
  }
  return *std::move(values);
}

std::map<std::string, std::string> StringMapOf(const pqxx::field& keys, const pqxx::field& values) {
  std::vector<std::string> key_list = TextArrayOf(keys);
  std::vector<std::string> value_list = TextArrayOf(values);
  if (key_list.size() != value_list.size()) {
    throw pqxx::conversion_error(absl::StrCat("columns ", keys.name(), "/", values.name(),
                                              ": keys and values differ in number"));
  }
  std::map<std::string, std::string> map;
  for (size_t i = 0; i < key_list.size(); ++i) {
    map.emplace(std::move(key_list[i]), std::move(value_list[i]));
  }
  return map;
}

std::string BytesOf(const pqxx::field& bytea) {
  if (bytea.is_null()) return std::string();
  return pqxx::binarystring(bytea).str();
}

std::string StringMapKeysSql(absl::string_view column) {
  return absl::StrCat("ARRAY(SELECT k FROM jsonb_object_keys(", column, ") AS k ORDER BY k)");
}

std::string StringMapValuesSql(absl::string_view column) {
  return absl::StrCat("ARRAY(SELECT e.value FROM jsonb_each_text(", column,
                      ") AS e ORDER BY e.key)");
}

std::string MapKeysLiteral(const std::map<std::string, std::string>& map) {
  std::vector<std::string> keys;
  keys.reserve(map.size());
  for (const auto& [key, value] : map) keys.push_back(key);
  return PgTextArrayLiteral(keys);
}

std::string MapValuesLiteral(const std::map<std::string, std::string>& map) {
  std::vector<std::string> values;
  values.reserve(map.size());
  for (const auto& [key, value] : map) values.push_back(value);
  return PgTextArrayLiteral(values);
}

int EffectivePageSize(int page_size) {
  if (page_size <= 0) return kDefaultPageSize;
  return page_size > kMaxPageSize ? kMaxPageSize : page_size;
}

}  // namespace herald
