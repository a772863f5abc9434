// PgCommandStore against a real PostgreSQL (a scratch database per test):
// the command row's life, response hand-over between "replicas" (two
// stores on two pools over one database) through LISTEN/NOTIFY, and the
// feed's recovery after its connection is killed.
#include "service/store/pg_command_store.h"

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "service/core/ids.h"
#include "service/core/types.h"
#include "service/store/pg_connection_pool.h"
#include "tests/integration/store/store_test_support.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::herald::testing::CreateScratchDatabase;
using ::herald::testing::MakePool;
using ::herald::testing::RecordingQueryObserver;
using ::herald::testing::RowsReadFrom;
using ::herald::testing::WaitFor;

constexpr absl::Duration kWait = absl::Seconds(15);

// Records what a WatchResponses callback received. Thread-safe.
class Notifications {
 public:
  void Add(const std::string& request_id) {
    absl::MutexLock lock(&mu_);
    received_.push_back(request_id);
  }
  bool Saw(const std::string& request_id) const {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : received_) {
      if (id == request_id) return true;
    }
    return false;
  }
  int Count(const std::string& request_id) const {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const std::string& id : received_) n += id == request_id;
    return n;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> received_ ABSL_GUARDED_BY(mu_);
};

class PgCommandStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = CreateScratchDatabase("command_store");
    pool_ = MakePool(url_);
    ASSERT_NE(pool_, nullptr);
    store_ = std::make_unique<PgCommandStore>(pool_.get(), &observer_);
  }

  CommandRecord NewCommand(const std::string& device_id = "node-001") {
    CommandRecord command;
    command.tenant_id = kDefaultTenant;
    command.command_id = NewUuid();
    command.request_id = NewUuid();
    command.device_id = device_id;
    command.action = "on";
    command.params = {{"duration", "30"}, {"mode", "eco \"quiet\""}};
    command.qos = 1;
    command.topic = "homesync/abc/nodes/" + device_id + "/command/relay";
    command.response_topic = "homesync/abc/nodes/" + device_id + "/response/command";
    command.max_attempts = 4;
    command.attempt_timeout = absl::Milliseconds(1500);
    command.expire_time = absl::Now() + absl::Minutes(1);
    return command;
  }

  CommandRecord MustInsert(const CommandRecord& command) {
    absl::StatusOr<CommandRecord> stored = store_->InsertCommand(command);
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() ? *stored : CommandRecord{};
  }

  std::string url_;
  RecordingQueryObserver observer_;
  std::unique_ptr<PgConnectionPool> pool_;
  std::unique_ptr<PgCommandStore> store_;
};

TEST_F(PgCommandStoreTest, InsertGetRoundTripsEveryField) {
  const absl::Time before = absl::Now() - absl::Seconds(5);
  const CommandRecord command = NewCommand();
  const CommandRecord stored = MustInsert(command);
  absl::StatusOr<CommandRecord> read = store_->GetCommand(kDefaultTenant, command.command_id);
  ASSERT_TRUE(read.ok()) << read.status();
  for (const CommandRecord& record : {stored, *read}) {
    EXPECT_EQ(record.command_id, command.command_id);
    EXPECT_EQ(record.request_id, command.request_id);
    EXPECT_EQ(record.device_id, "node-001");
    EXPECT_EQ(record.action, "on");
    EXPECT_EQ(record.params, command.params);
    EXPECT_EQ(record.qos, 1);
    EXPECT_EQ(record.topic, command.topic);
    EXPECT_EQ(record.response_topic, command.response_topic);
    EXPECT_EQ(record.state, CommandState::kPending);
    EXPECT_EQ(record.attempts, 0);
    EXPECT_EQ(record.max_attempts, 4);
    EXPECT_EQ(record.attempt_timeout, absl::Milliseconds(1500));
    EXPECT_GE(record.create_time, before);
    EXPECT_EQ(record.expire_time, absl::FromUnixMicros(absl::ToUnixMicros(command.expire_time)));
    EXPECT_FALSE(record.round_trip.has_value());
    EXPECT_FALSE(record.complete_time.has_value());
  }
  EXPECT_EQ(store_->InsertCommand(command).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetCommand("other-tenant", command.command_id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(observer_.Saw("insert_command"));
  EXPECT_TRUE(observer_.Saw("get_command"));
}

// A new database: the commands table is analysed while empty, the first
// commands are looked up many times (enough for PostgreSQL to settle on a
// cached plan), then the table grows. A plan made for the empty table used
// the device history index, which leads with the tenant, and read every
// command of the tenant on each lookup.
TEST_F(PgCommandStoreTest, LookupsReadTheirOwnRowAfterTheTableGrowsFromEmpty) {
  std::unique_ptr<PgConnectionPool> one = MakePool(url_, {.size = 1});
  ASSERT_NE(one, nullptr);
  PgCommandStore store(one.get(), &observer_);
  {
    pqxx::connection admin(url_);
    pqxx::nontransaction tx(admin);
    tx.exec("ANALYZE commands");
  }
  const CommandRecord first = MustInsert(NewCommand());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store.GetCommand(kDefaultTenant, first.command_id).ok());
    ASSERT_TRUE(store.RecordAttempt(kDefaultTenant, first.command_id, 1).ok());
  }
  constexpr int kOthers = 3000;
  {
    pqxx::connection admin(url_);
    pqxx::nontransaction tx(admin);
    tx.exec_params(
        "INSERT INTO commands (command_id, tenant_id, request_id, device_id, action, qos, topic,"
        " max_attempts, attempt_timeout, expire_time)"
        " SELECT 'other-' || i, $1, 'request-' || i, 'node-' || (i % 50), 'on', 1, 'cmd/' || i,"
        " 1, interval '1 second', now() + interval '1 minute'"
        " FROM generate_series(1, $2::int) AS i",
        kDefaultTenant, kOthers);
  }

  const int64_t before = RowsReadFrom(*one, "commands");
  constexpr int kLookups = 20;
  for (int i = 0; i < kLookups; ++i) {
    ASSERT_TRUE(store.GetCommand(kDefaultTenant, first.command_id).ok());
    ASSERT_TRUE(store.RecordAttempt(kDefaultTenant, first.command_id, 2).ok());
  }
  const int64_t read = RowsReadFrom(*one, "commands") - before;
  // Each of the 40 statements reads its one row (a sequential scan of all
  // 3,001 rows even once would exceed this).
  EXPECT_GE(read, 2 * kLookups);
  EXPECT_LT(read, kOthers) << "rows of commands read by " << 2 * kLookups << " lookups";
}

TEST_F(PgCommandStoreTest, AttemptsAndCompletionByTheWaiter) {
  const CommandRecord command = MustInsert(NewCommand());
  ASSERT_TRUE(store_->RecordAttempt(kDefaultTenant, command.command_id, 1).ok());
  ASSERT_TRUE(store_->RecordAttempt(kDefaultTenant, command.command_id, 2).ok());
  EXPECT_EQ(store_->RecordAttempt(kDefaultTenant, "nope", 1).code(), absl::StatusCode::kNotFound);

  absl::StatusOr<CommandRecord> done = store_->CompleteCommand(
      {.tenant_id = kDefaultTenant,
       .command_id = command.command_id,
       .state = CommandState::kSucceeded,
       .status = "success",
       .result_json = R"({"relay": "on", "power": [1, 2.5]})",
       .response_time = absl::Now(),
       .attempts = 2,
       .round_trip = absl::Milliseconds(420)});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
  EXPECT_EQ(done->status, "success");
  // jsonb normalises: keys sorted, one space after ':' and ','.
  EXPECT_EQ(done->result_json, R"({"power": [1, 2.5], "relay": "on"})");
  EXPECT_EQ(done->attempts, 2);
  EXPECT_EQ(done->round_trip, absl::Milliseconds(420));
  EXPECT_TRUE(done->first_sent_time.has_value());
  EXPECT_TRUE(done->last_attempt_time.has_value());
  EXPECT_TRUE(done->complete_time.has_value());

  // A repeat changes nothing it already holds.
  absl::StatusOr<CommandRecord> again = store_->CompleteCommand(
      {.tenant_id = kDefaultTenant, .command_id = command.command_id,
       .state = CommandState::kTimedOut, .error = "late", .attempts = 1});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->state, CommandState::kSucceeded);
  EXPECT_EQ(again->attempts, 2);
  EXPECT_EQ(again->error, "");
  EXPECT_EQ(store_->CompleteCommand({.tenant_id = kDefaultTenant, .command_id = "nope"})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PgCommandStoreTest, TimedOutCommandAndItsLateAnswer) {
  const CommandRecord command = MustInsert(NewCommand());
  absl::StatusOr<CommandRecord> done = store_->CompleteCommand(
      {.tenant_id = kDefaultTenant,
       .command_id = command.command_id,
       .state = CommandState::kTimedOut,
       .error = "no answer after 4 attempts of 1.5s each",
       .attempts = 4});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kTimedOut);
  EXPECT_EQ(done->error, "no answer after 4 attempts of 1.5s each");
  EXPECT_FALSE(done->round_trip.has_value());
  EXPECT_EQ(store_->RecordResponse({.request_id = command.request_id, .status = "success"}, "")
                .value_or(ResponseDisposition::kRecorded),
            ResponseDisposition::kTooLate);
}

TEST_F(PgCommandStoreTest, RecordResponseClassifiesWhatItCannotRecord) {
  const CommandRecord command = MustInsert(NewCommand());
  EXPECT_EQ(*store_->RecordResponse({.request_id = "unknown", .status = "success"}, ""),
            ResponseDisposition::kUnknown);
  EXPECT_EQ(*store_->RecordResponse({.request_id = command.request_id, .status = "success"},
                                    "node-002"),
            ResponseDisposition::kWrongDevice);
  EXPECT_EQ(*store_->RecordResponse({.request_id = command.request_id,
                                     .status = "error",
                                     .result_json = "\"stuck\"",
                                     .error = "relay stuck"},
                                    "node-001"),
            ResponseDisposition::kRecorded);
  EXPECT_EQ(*store_->RecordResponse({.request_id = command.request_id, .status = "success"}, ""),
            ResponseDisposition::kAlreadyAnswered);
  absl::StatusOr<CommandRecord> read = store_->GetCommand(kDefaultTenant, command.command_id);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->state, CommandState::kError);
  EXPECT_EQ(read->status, "error");
  EXPECT_EQ(read->result_json, "\"stuck\"");
  EXPECT_EQ(read->error, "relay stuck");
  EXPECT_TRUE(read->response_time.has_value());
  EXPECT_EQ(store_->RecordResponse({.request_id = command.request_id, .status = "success",
                                    .result_json = "{not json"},
                                   "")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(PgCommandStoreTest, ResponseHandedOverToTheWaitingReplica) {
  // Replica A waits; replica B receives the device's answer.
  Notifications a_heard;
  ASSERT_TRUE(store_->WatchResponses([&](const std::string& id) { a_heard.Add(id); }).ok());
  EXPECT_EQ(store_->WatchResponses([](const std::string&) {}).code(),
            absl::StatusCode::kFailedPrecondition);
  std::unique_ptr<PgConnectionPool> b_pool = MakePool(url_);
  PgCommandStore b_store(b_pool.get(), nullptr);

  // The listener says "" once it listens.
  ASSERT_TRUE(WaitFor([&] { return a_heard.Saw(""); }, kWait));
  const CommandRecord command = MustInsert(NewCommand());
  ASSERT_TRUE(store_->RecordAttempt(kDefaultTenant, command.command_id, 1).ok());
  absl::StatusOr<ResponseDisposition> recorded = b_store.RecordResponse(
      {.request_id = command.request_id, .status = "success", .result_json = "42"}, "node-001");
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  EXPECT_EQ(*recorded, ResponseDisposition::kRecorded);
  ASSERT_TRUE(WaitFor([&] { return a_heard.Saw(command.request_id); }, kWait));

  // A's waiter then finishes; the stored answer wins over its own view.
  absl::StatusOr<CommandRecord> done = store_->CompleteCommand(
      {.tenant_id = kDefaultTenant, .command_id = command.command_id,
       .state = CommandState::kTimedOut, .attempts = 1});
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state, CommandState::kSucceeded);
  EXPECT_EQ(done->result_json, "42");
  EXPECT_TRUE(done->round_trip.has_value()) << "from the database's response and send times";

  // A duplicate changes nothing and notifies nobody.
  EXPECT_EQ(*b_store.RecordResponse({.request_id = command.request_id, .status = "error"}, ""),
            ResponseDisposition::kAlreadyAnswered);
  store_->StopWatching();
  EXPECT_EQ(a_heard.Count(command.request_id), 1);
}

TEST_F(PgCommandStoreTest, FeedRecoversAfterItsConnectionIsKilled) {
  Notifications heard;
  ASSERT_TRUE(store_->WatchResponses([&](const std::string& id) { heard.Add(id); }).ok());
  ASSERT_TRUE(WaitFor([&] { return heard.Count("") == 1; }, kWait));
  // An administrator (or a failover) kills the LISTEN session.
  {
    pqxx::connection admin(url_);
    pqxx::nontransaction tx(admin);
    const pqxx::result killed = tx.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND query ILIKE 'LISTEN%'");
    ASSERT_EQ(killed.size(), 1u) << "the listener's session was not found";
  }
  // It reconnects and says "you may have missed some".
  ASSERT_TRUE(WaitFor([&] { return heard.Count("") >= 2; }, kWait));
  const CommandRecord command = MustInsert(NewCommand());
  ASSERT_TRUE(store_->RecordResponse({.request_id = command.request_id, .status = "success"}, "")
                  .ok());
  EXPECT_TRUE(WaitFor([&] { return heard.Saw(command.request_id); }, kWait));
}

TEST_F(PgCommandStoreTest, AbandonedPendingCommandReadsAsTimedOut) {
  CommandRecord command = NewCommand();
  command.expire_time = absl::Now() - kAbandonedCommandGrace - absl::Seconds(5);
  MustInsert(command);
  absl::StatusOr<CommandRecord> read = store_->GetCommand(kDefaultTenant, command.command_id);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->state, CommandState::kTimedOut);
  EXPECT_NE(read->error.find("abandoned"), std::string::npos) << read->error;

  CommandRecord fresh = NewCommand();
  MustInsert(fresh);
  EXPECT_EQ(store_->GetCommand(kDefaultTenant, fresh.command_id)->state, CommandState::kPending);
}

}  // namespace
}  // namespace herald
