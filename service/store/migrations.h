// Database schema migrations: the files of migrations/ (NNNN_description.sql,
// forward only), compiled into the binary so that `herald migrate` and
// `herald serve --migrate` need no files at run time and always apply exactly
// the schema that the binary was built against.
//
// Each migration runs in its own transaction together with its row in
// `schema_migrations (version, name, applied_at)`: it is applied entirely or
// not at all. Applied migrations are skipped, so running again is a no-op,
// and a session advisory lock serializes replicas that start with --migrate
// at the same moment (the second waits, then finds nothing to do).
//
//   absl::Status migrated = ApplyMigrations(config.database_url);
//   if (!migrated.ok()) { LogError("migration failed", ...); return 1; }
//
// A migration must not contain BEGIN/COMMIT or statements that cannot run in
// a transaction block (CREATE INDEX CONCURRENTLY, VACUUM).
#ifndef HERALD_SERVICE_STORE_MIGRATIONS_H_
#define HERALD_SERVICE_STORE_MIGRATIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace herald {

struct Migration {
  int version = 0;   // the NNNN prefix of the file name
  std::string name;  // the file name, e.g. "0001_initial.sql"
  std::string sql;   // the file's contents
};

// The migrations compiled into this binary (generated from migrations/ at
// build time), in version order.
const std::vector<Migration>& EmbeddedMigrations();

// Applies EmbeddedMigrations() to the database at `database_url`.
absl::Status ApplyMigrations(const std::string& database_url);

// Applies `migrations` (REQUIRES: ascending, distinct versions;
// kInvalidArgument otherwise) that are not yet recorded in schema_migrations,
// in order, each in its own transaction. Stops at the first failure, which
// is rolled back: kInternal naming the file and the database's reason
// (kUnavailable if the database cannot be reached). kFailedPrecondition if
// the database recorded a version under another file name, which means the
// migrations/ folder was edited after release. Versions recorded in the
// database but unknown here (a newer binary migrated it) are left alone.
// Thread-safe; safe to run from several processes at once.
absl::Status ApplyMigrations(const std::string& database_url,
                             const std::vector<Migration>& migrations);

// The file names recorded in schema_migrations, in version order; empty for
// a database that was never migrated.
absl::StatusOr<std::vector<std::string>> AppliedMigrations(const std::string& database_url);

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_MIGRATIONS_H_
