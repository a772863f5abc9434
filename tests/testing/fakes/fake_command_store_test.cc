// Tests of FakeCommandStore: the CommandStore contract that the Commander's
// unit tests rely on (PgCommandStore is held to the same one by
// tests/integration/store/pg_command_store_test.cc).
#include "tests/testing/fakes/fake_command_store.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/core/types.h"
#include "tests/testing/fakes/fake_clock.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;

CommandRecord MakeCommand(const std::string& id, const std::string& device = "node-1") {
  CommandRecord command;
  command.tenant_id = kDefaultTenant;
  command.command_id = id;
  command.request_id = "req-" + id;
  command.device_id = device;
  command.action = "on";
  command.topic = "devices/" + device + "/commands";
  command.max_attempts = 2;
  return command;
}

TEST(FakeCommandStoreTest, InsertGetAndUniqueIds) {
  FakeClock clock;
  FakeCommandStore store(clock.AsFunction());
  ASSERT_OK_AND_ASSIGN(CommandRecord stored, store.InsertCommand(MakeCommand("c1")));
  EXPECT_EQ(stored.state, CommandState::kPending);
  EXPECT_EQ(stored.create_time, kFakeEpoch);
  EXPECT_THAT(store.InsertCommand(MakeCommand("c1")), StatusIs(absl::StatusCode::kAlreadyExists));
  CommandRecord same_request = MakeCommand("c2");
  same_request.request_id = "req-c1";
  EXPECT_THAT(store.InsertCommand(same_request), StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store.GetCommand(kDefaultTenant, "nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store.GetCommand("other-tenant", "c1"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK(store.RecordAttempt(kDefaultTenant, "c1", 1));
  ASSERT_OK_AND_ASSIGN(stored, store.GetCommand(kDefaultTenant, "c1"));
  EXPECT_EQ(stored.attempts, 1);
  EXPECT_EQ(stored.first_sent_time, kFakeEpoch);
}

TEST(FakeCommandStoreTest, RecordResponseClassifiesAndNotifies) {
  FakeCommandStore store;
  std::vector<std::string> notified;
  ASSERT_OK(store.WatchResponses([&](const std::string& id) { notified.push_back(id); }));
  EXPECT_THAT(store.WatchResponses([](const std::string&) {}),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  ASSERT_OK(store.InsertCommand(MakeCommand("c1")).status());

  EXPECT_THAT(store.RecordResponse({.request_id = "req-c1", .status = "success"}, "node-2"),
              IsOkAndHolds(ResponseDisposition::kWrongDevice));
  EXPECT_THAT(store.RecordResponse({.request_id = "req-zz", .status = "success"}, ""),
              IsOkAndHolds(ResponseDisposition::kUnknown));
  EXPECT_THAT(store.RecordResponse(
                  {.request_id = "req-c1", .status = "success", .result_json = "\"on\""},
                  "node-1"),
              IsOkAndHolds(ResponseDisposition::kRecorded));
  EXPECT_THAT(store.RecordResponse({.request_id = "req-c1", .status = "error"}, ""),
              IsOkAndHolds(ResponseDisposition::kAlreadyAnswered));
  EXPECT_THAT(notified, ElementsAre("req-c1"));

  // The waiter's own completion does not overwrite the stored answer.
  ASSERT_OK_AND_ASSIGN(CommandRecord done,
                       store.CompleteCommand({.tenant_id = kDefaultTenant,
                                              .command_id = "c1",
                                              .state = CommandState::kTimedOut,
                                              .error = "no answer",
                                              .attempts = 2}));
  EXPECT_EQ(done.state, CommandState::kSucceeded);
  EXPECT_EQ(done.result_json, "\"on\"");
  EXPECT_EQ(done.attempts, 2);

  ASSERT_OK(store.InsertCommand(MakeCommand("c2")).status());
  ASSERT_OK(store.CompleteCommand({.tenant_id = kDefaultTenant,
                                   .command_id = "c2",
                                   .state = CommandState::kTimedOut})
                .status());
  EXPECT_THAT(store.RecordResponse({.request_id = "req-c2", .status = "success"}, ""),
              IsOkAndHolds(ResponseDisposition::kTooLate));

  store.StopWatching();
  EXPECT_FALSE(store.watching());
}

TEST(FakeCommandStoreTest, DroppedNotificationsStillStoreTheResponse) {
  FakeCommandStore store;
  int notified = 0;
  ASSERT_OK(store.WatchResponses([&](const std::string&) { ++notified; }));
  store.set_drop_notifications(true);
  ASSERT_OK(store.InsertCommand(MakeCommand("c1")).status());
  EXPECT_THAT(store.RecordResponse({.request_id = "req-c1", .status = "success"}, ""),
              IsOkAndHolds(ResponseDisposition::kRecorded));
  EXPECT_EQ(notified, 0);
  ASSERT_OK_AND_ASSIGN(CommandRecord stored, store.GetCommand(kDefaultTenant, "c1"));
  EXPECT_EQ(stored.state, CommandState::kSucceeded);
}

TEST(FakeCommandStoreTest, InjectedFailures) {
  FakeCommandStore store;
  store.FailNextCalls(absl::UnavailableError("db down"), 1, "InsertCommand");
  EXPECT_THAT(store.InsertCommand(MakeCommand("c1")), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(store.Commands().empty()) << "a failed call changes nothing";
  EXPECT_OK(store.InsertCommand(MakeCommand("c1")).status());
}

}  // namespace
}  // namespace herald::testing
