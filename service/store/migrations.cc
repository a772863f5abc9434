#include "service/store/migrations.h"

#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "service/core/logging.h"
#include "service/core/database_url.h"

namespace herald {
namespace {

// Key of the session advisory lock held while migrating: "herald" in ASCII,
// so that it is recognisable in pg_locks and unlikely to collide.
constexpr int64_t kMigrationLockKey = 0x686572616c64;

constexpr char kCreateMigrationsTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version integer PRIMARY KEY,"
    " name text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

// A libpq or server message on one line, without the password.
std::string Reason(const std::exception& e, const std::string& database_url) {
  std::string message =
      absl::StrReplaceAll(RedactPassword(e.what(), database_url), {{"\n\t", " "}, {"\n", " "}});
  return std::string(absl::StripAsciiWhitespace(message));
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect(const std::string& database_url) {
  try {
    return std::make_unique<pqxx::connection>(
        WithDefaultParameter(WithDefaultParameter(database_url, "connect_timeout", "10"),
                             "fallback_application_name", "herald-migrate"));
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("database ", RedactDatabaseUrl(database_url),
                                               ": cannot connect: ", Reason(e, database_url)));
  }
}

// kUnavailable for a lost connection, kInternal for the rest, naming `what`.
absl::Status ErrorDuring(const std::string& what, const std::exception& e,
                         const std::string& database_url) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr ||
      dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) {
    return absl::UnavailableError(absl::StrCat("database ", RedactDatabaseUrl(database_url),
                                               ": connection lost during ", what, ": ",
                                               Reason(e, database_url)));
  }
  return absl::InternalError(absl::StrCat(what, ": ", Reason(e, database_url)));
}

absl::Status CheckOrder(const std::vector<Migration>& migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration ", migrations[i].name, ": version must be at least 1"));
    }
    if (i > 0 && migrations[i].version <= migrations[i - 1].version) {
      return absl::InvalidArgumentError(
          absl::StrCat("migrations: versions must ascend without repeats: ", migrations[i - 1].name,
                       " is followed by ", migrations[i].name));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyMigrations(const std::string& database_url) {
  return ApplyMigrations(database_url, EmbeddedMigrations());
}

absl::Status ApplyMigrations(const std::string& database_url,
                             const std::vector<Migration>& migrations) {
  if (absl::Status order = CheckOrder(migrations); !order.ok()) return order;
  absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = Connect(database_url);
  if (!connection.ok()) return connection.status();
  pqxx::connection& db = **connection;

  // The lock belongs to the session: closing the connection (on any return
  // path) releases it, even if we never reach the unlock.
  std::map<int, std::string> applied;
  try {
    pqxx::nontransaction tx(db);
    tx.exec_params("SELECT pg_advisory_lock($1)", kMigrationLockKey);
    tx.exec(kCreateMigrationsTable);
    for (const pqxx::row& row : tx.exec("SELECT version, name FROM schema_migrations")) {
      applied[row[0].as<int>()] = row[1].as<std::string>();
    }
  } catch (const std::exception& e) {
    return ErrorDuring("reading schema_migrations", e, database_url);
  }

  for (const Migration& migration : migrations) {
    if (const auto it = applied.find(migration.version); it != applied.end()) {
      if (it->second != migration.name) {
        return absl::FailedPreconditionError(absl::StrCat(
            "migration ", migration.name, ": version ", migration.version, " was applied as ",
            it->second, "; released migrations must never be renamed or replaced (add a new one)"));
      }
      continue;
    }
    try {
      pqxx::work tx(db);
      tx.exec(migration.sql);
      tx.exec_params("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                     migration.version, migration.name);
      tx.commit();
    } catch (const std::exception& e) {
      return ErrorDuring(absl::StrCat("migration ", migration.name,
                                      " failed and was rolled back (nothing of it applied)"),
                         e, database_url);
    }
    LogInfo("applied database migration",
            {{"migration", migration.name}, {"database", RedactDatabaseUrl(database_url)}});
  }

  try {
    pqxx::nontransaction tx(db);
    tx.exec_params("SELECT pg_advisory_unlock($1)", kMigrationLockKey);
  } catch (const std::exception&) {
    // The lock goes with the session, which ends when `db` is destroyed.
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> AppliedMigrations(const std::string& database_url) {
  absl::StatusOr<std::unique_ptr<pqxx::connection>> connection = Connect(database_url);
  if (!connection.ok()) return connection.status();
  try {
    pqxx::nontransaction tx(**connection);
    std::vector<std::string> names;
    if (tx.exec("SELECT to_regclass('schema_migrations') IS NULL")[0][0].as<bool>()) {
      return names;
    }
    for (const pqxx::row& row : tx.exec("SELECT name FROM schema_migrations ORDER BY version")) {
      names.push_back(row[0].as<std::string>());
    }
    return names;
  } catch (const std::exception& e) {
    return ErrorDuring("reading schema_migrations", e, database_url);
  }
}

}  // namespace herald
