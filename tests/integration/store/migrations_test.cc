// ApplyMigrations / AppliedMigrations against a real PostgreSQL.
#include "service/store/migrations.h"

#include <fstream>
#include <pqxx/pqxx>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/store/store_test_support.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateScratchDatabase;
using ::herald::testing::SourceDir;
using ::herald::testing::UnusedLocalPort;

bool TableExists(const std::string& url, const std::string& table) {
  pqxx::connection connection(url);
  pqxx::nontransaction tx(connection);
  return !tx.exec_params("SELECT to_regclass($1) IS NULL", table)[0][0].as<bool>();
}

std::vector<std::string> Applied(const std::string& url) {
  absl::StatusOr<std::vector<std::string>> applied = AppliedMigrations(url);
  EXPECT_TRUE(applied.ok()) << applied.status();
  return applied.ok() ? *applied : std::vector<std::string>{};
}

std::vector<std::string> EmbeddedNames() {
  std::vector<std::string> names;
  for (const Migration& migration : EmbeddedMigrations()) names.push_back(migration.name);
  return names;
}

TEST(MigrationsTest, EmbeddedMigrationsAreTheFilesOfMigrationsFolder) {
  ASSERT_FALSE(EmbeddedMigrations().empty());
  EXPECT_EQ(EmbeddedMigrations()[0].name, "0001_initial.sql");
  EXPECT_EQ(EmbeddedMigrations()[0].version, 1);
  for (const Migration& migration : EmbeddedMigrations()) {
    std::ifstream file(absl::StrCat(SourceDir(), "/migrations/", migration.name), std::ios::binary);
    ASSERT_TRUE(file) << migration.name;
    std::stringstream contents;
    contents << file.rdbuf();
    EXPECT_EQ(migration.sql, contents.str()) << migration.name << " is embedded inexactly";
  }
}

TEST(MigrationsTest, AppliesOnceAndRerunningIsANoOp) {
  const std::string url = CreateScratchDatabase("migrate_once", /*migrate=*/false);
  EXPECT_TRUE(Applied(url).empty());

  ASSERT_TRUE(ApplyMigrations(url).ok());
  EXPECT_EQ(Applied(url), EmbeddedNames());
  for (const char* table : {"devices", "notifications", "deliveries", "schema_migrations"}) {
    EXPECT_TRUE(TableExists(url, table)) << table;
  }

  const absl::Status again = ApplyMigrations(url);
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_EQ(Applied(url), EmbeddedNames());
}

TEST(MigrationsTest, AppliesOnlyNewMigrations) {
  const std::string url = CreateScratchDatabase("migrate_new", /*migrate=*/true);
  std::vector<Migration> migrations = EmbeddedMigrations();
  migrations.push_back({.version = 9001,
                        .name = "9001_add_extra.sql",
                        .sql = "CREATE TABLE extra (id integer PRIMARY KEY);"});
  ASSERT_TRUE(ApplyMigrations(url, migrations).ok());
  EXPECT_TRUE(TableExists(url, "extra"));
  std::vector<std::string> expected = EmbeddedNames();
  expected.push_back("9001_add_extra.sql");
  EXPECT_EQ(Applied(url), expected);
  // An older binary that does not know 9001 leaves it alone.
  EXPECT_TRUE(ApplyMigrations(url).ok());
  EXPECT_EQ(Applied(url), expected);
}

TEST(MigrationsTest, FailingMigrationIsRolledBackAndNamed) {
  const std::string url = CreateScratchDatabase("migrate_fail", /*migrate=*/false);
  std::vector<Migration> migrations = EmbeddedMigrations();
  migrations.push_back({.version = 9001,
                        .name = "9001_broken.sql",
                        .sql = "CREATE TABLE half_done (id integer);\n"
                               "ALTER TABLE no_such_table ADD COLUMN x integer;\n"});
  migrations.push_back({.version = 9002,
                        .name = "9002_after.sql",
                        .sql = "CREATE TABLE after_broken (id integer);"});

  const absl::Status status = ApplyMigrations(url, migrations);
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("9001_broken.sql"), std::string::npos) << status;
  EXPECT_NE(status.message().find("no_such_table"), std::string::npos) << status;
  // The earlier migrations stay; nothing of the broken one (nor anything
  // after it) is applied.
  EXPECT_EQ(Applied(url), EmbeddedNames());
  EXPECT_TRUE(TableExists(url, "devices"));
  EXPECT_FALSE(TableExists(url, "half_done"));
  EXPECT_FALSE(TableExists(url, "after_broken"));

  // Fixed, it applies.
  migrations[migrations.size() - 2].sql = "CREATE TABLE half_done (id integer);";
  ASSERT_TRUE(ApplyMigrations(url, migrations).ok());
  EXPECT_TRUE(TableExists(url, "half_done"));
  EXPECT_TRUE(TableExists(url, "after_broken"));
}

TEST(MigrationsTest, RenamedMigrationIsFailedPrecondition) {
  const std::string url = CreateScratchDatabase("migrate_renamed", /*migrate=*/true);
  std::vector<Migration> migrations = EmbeddedMigrations();
  migrations[0].name = "0001_renamed.sql";
  const absl::Status status = ApplyMigrations(url, migrations);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("0001_initial.sql"), std::string::npos) << status;
}

TEST(MigrationsTest, RefusesUnorderedMigrations) {
  const std::vector<Migration> unordered = {
      {.version = 2, .name = "0002_b.sql", .sql = "SELECT 1;"},
      {.version = 1, .name = "0001_a.sql", .sql = "SELECT 1;"},
  };
  EXPECT_EQ(ApplyMigrations("postgresql://unused/x", unordered).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MigrationsTest, ConcurrentRunnersApplyEachMigrationOnce) {
  // Replicas starting with --migrate at the same moment: without the
  // advisory lock, the second CREATE TABLE (or schema_migrations row) fails.
  const std::string url = CreateScratchDatabase("migrate_race", /*migrate=*/false);
  constexpr int kRunners = 4;
  std::vector<absl::Status> results(kRunners);
  std::vector<std::thread> runners;
  for (int i = 0; i < kRunners; ++i) {
    runners.emplace_back([&, i] { results[i] = ApplyMigrations(url); });
  }
  for (std::thread& runner : runners) runner.join();
  for (const absl::Status& result : results) EXPECT_TRUE(result.ok()) << result;
  EXPECT_EQ(Applied(url), EmbeddedNames());
}

TEST(MigrationsTest, UnreachableDatabaseIsUnavailableWithoutThePassword) {
  const std::string url =
      absl::StrCat("postgresql://herald:MigrationSecret@127.0.0.1:", UnusedLocalPort(), "/x");
  const absl::Status status = ApplyMigrations(url);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message().find("MigrationSecret"), std::string::npos) << status;
  EXPECT_EQ(AppliedMigrations(url).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace herald
