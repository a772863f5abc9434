// PgConnectionPool and the stores' error handling against a real (or a
// missing) PostgreSQL: unavailability, secrets in messages, pool exhaustion,
// and recovery from connections that the server dropped.
#include "service/store/pg_connection_pool.h"

#include <memory>
#include <pqxx/pqxx>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/store/pg_device_store.h"
#include "service/store/pg_notification_store.h"
#include "service/store/pg_session.h"
#include "tests/integration/store/store_test_support.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateScratchDatabase;
using ::herald::testing::MakePool;
using ::herald::testing::RecordingQueryObserver;
using ::herald::testing::TestServers;
using ::herald::testing::UnusedLocalPort;

constexpr char kPassword[] = "Sup3rS3cretPassw0rd";

std::string DeadDatabaseUrl() {
  return absl::StrCat("postgresql://herald:", kPassword, "@127.0.0.1:", UnusedLocalPort(),
                      "/herald");
}

TEST(PgConnectionPoolTest, CreateRefusesBadOptions) {
  EXPECT_EQ(PgConnectionPool::Create("postgresql://db/x", {.size = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PgConnectionPool::Create("postgresql://db/x", {.acquire_timeout = absl::Seconds(-1)})
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PgConnectionPoolTest, CreateDoesNotConnect) {
  // A replica must start (and report itself not ready) while the database
  // is down.
  absl::StatusOr<std::unique_ptr<PgConnectionPool>> pool =
      PgConnectionPool::Create(DeadDatabaseUrl());
  ASSERT_TRUE(pool.ok()) << pool.status();
  EXPECT_EQ((*pool)->redacted_url().find(kPassword), std::string::npos);
  EXPECT_NE((*pool)->redacted_url().find("127.0.0.1"), std::string::npos);
}

TEST(PgConnectionPoolTest, UnreachableDatabaseIsUnavailableWithoutThePassword) {
  std::unique_ptr<PgConnectionPool> pool = MakePool(DeadDatabaseUrl());
  ASSERT_NE(pool, nullptr);
  RecordingQueryObserver observer;
  PgDeviceStore devices(pool.get(), &observer);
  PgNotificationStore notifications(pool.get(), &observer);

  const absl::Status check = pool->CheckConnection();
  EXPECT_EQ(check.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(check.message().find("cannot connect"), std::string::npos) << check;

  const absl::Status get = devices.GetDevice(kDefaultTenant, "d").status();
  EXPECT_EQ(get.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(get.message().find(kPassword), std::string::npos) << get;
  EXPECT_NE(get.message().find("127.0.0.1"), std::string::npos) << get;

  const absl::Status claim = notifications.ClaimDueDeliveries(10, absl::Seconds(1)).status();
  EXPECT_EQ(claim.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(claim.message().find(kPassword), std::string::npos) << claim;

  EXPECT_TRUE(observer.Saw("get_device", /*ok=*/false));
  EXPECT_TRUE(observer.Saw("claim_deliveries", /*ok=*/false));
}

TEST(PgConnectionPoolTest, WrongPasswordIsUnavailableWithoutThePassword) {
  // The test server trusts everyone, so use a user that does not exist: the
  // server refuses the login, and the message must still hide the password.
  const TestServers& servers = TestServers::Get();
  const std::string url =
      absl::StrCat("postgresql://nobody:", kPassword, "@127.0.0.1:", servers.pg_port, "/postgres");
  std::unique_ptr<PgConnectionPool> pool = MakePool(url);
  ASSERT_NE(pool, nullptr);
  const absl::Status check = pool->CheckConnection();
  EXPECT_EQ(check.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(check.message().find(kPassword), std::string::npos) << check;
}

TEST(PgConnectionPoolTest, CheckConnectionSucceedsOnALiveDatabase) {
  std::unique_ptr<PgConnectionPool> pool = MakePool(TestServers::Get().database_url);
  ASSERT_NE(pool, nullptr);
  EXPECT_TRUE(pool->CheckConnection().ok());
}

TEST(PgConnectionPoolTest, ExhaustedPoolTimesOutWithUnavailable) {
  std::unique_ptr<PgConnectionPool> pool = MakePool(
      TestServers::Get().database_url, {.size = 1, .acquire_timeout = absl::Milliseconds(200)});
  ASSERT_NE(pool, nullptr);
  PgDeviceStore devices(pool.get(), nullptr);

  absl::StatusOr<PgSession> held = PgSession::Open(*pool);  // the only connection
  ASSERT_TRUE(held.ok()) << held.status();
  const absl::Time start = absl::Now();
  const absl::Status status = devices.GetDevice(kDefaultTenant, "d").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("no connection free"), std::string::npos) << status;
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
}

// Kills the server side of the pool's connections to the database of `url`
// (and only those: other tests run in parallel), as a restart would.
void TerminateHeraldBackends(const std::string& url) {
  pqxx::connection admin(url);
  pqxx::nontransaction tx(admin);
  tx.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
      " WHERE application_name = 'herald' AND datname = current_database()"
      " AND pid <> pg_backend_pid()");
}

TEST(PgConnectionPoolTest, DroppedConnectionIsReplacedAndIdempotentReadsRetry) {
  const std::string url = CreateScratchDatabase("pool_recovery");
  std::unique_ptr<PgConnectionPool> pool = MakePool(url, {.size = 1});
  ASSERT_NE(pool, nullptr);
  PgDeviceStore devices(pool.get(), nullptr);
  ASSERT_TRUE(devices.CreateDevice({.tenant_id = kDefaultTenant, .device_id = "d1"}).ok());

  TerminateHeraldBackends(url);
  // A read notices the dead connection, reconnects (preparing its statements
  // again) and retries, so the caller sees no error.
  absl::StatusOr<Device> device = devices.GetDevice(kDefaultTenant, "d1");
  EXPECT_TRUE(device.ok()) << device.status();

  TerminateHeraldBackends(url);
  // A non-idempotent write is not retried: the caller learns that the
  // database was unavailable...
  const absl::Status create =
      devices.CreateDevice({.tenant_id = kDefaultTenant, .device_id = "d2"}).status();
  EXPECT_EQ(create.code(), absl::StatusCode::kUnavailable) << create;
  // ...and the next call gets a fresh connection.
  EXPECT_TRUE(devices.CreateDevice({.tenant_id = kDefaultTenant, .device_id = "d2"}).ok());
  EXPECT_TRUE(devices.GetDevice(kDefaultTenant, "d2").ok());
}

TEST(PgConnectionPoolTest, TransactionalInsertRetriesAfterADroppedConnection) {
  const std::string url = CreateScratchDatabase("pool_insert_retry");
  std::unique_ptr<PgConnectionPool> pool = MakePool(url, {.size = 1});
  ASSERT_NE(pool, nullptr);
  PgNotificationStore notifications(pool.get(), nullptr);
  ASSERT_TRUE(notifications.CountBacklog().ok());  // opens the connection

  TerminateHeraldBackends(url);
  NotificationRecord record;
  record.tenant_id = kDefaultTenant;
  record.notification_id = "n1";
  record.target = {.kind = TargetKind::kDeviceIds, .values = {"d"}};
  record.payload = "{}";
  absl::StatusOr<InsertedNotification> inserted =
      notifications.InsertNotification(record, {{.device_id = "d", .topic = "devices/d/n"}});
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  absl::StatusOr<int64_t> backlog = notifications.CountBacklog();
  ASSERT_TRUE(backlog.ok());
  EXPECT_EQ(*backlog, 1);
}

TEST(PgConnectionPoolTest, ServesManyThreadsWithFewConnections) {
  const std::string url = CreateScratchDatabase("pool_threads");
  std::unique_ptr<PgConnectionPool> pool = MakePool(url, {.size = 2});
  ASSERT_NE(pool, nullptr);
  PgDeviceStore devices(pool.get(), nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        const std::string id = absl::StrCat("t", t, "-", i);
        if (!devices.CreateDevice({.tenant_id = kDefaultTenant, .device_id = id}).ok() ||
            !devices.GetDevice(kDefaultTenant, id).ok()) {
          ++failures;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  absl::StatusOr<Page<Device>> page = devices.ListDevices(kDefaultTenant, {}, 1000, "");
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->items.size(), 200u);
}

}  // namespace
}  // namespace herald
