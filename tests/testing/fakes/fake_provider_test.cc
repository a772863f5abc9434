// Tests of FakeProvider: publish outcomes driven by the test, connection
// state, capacity and subscriptions.
#include "tests/testing/fakes/fake_provider.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fakes/status_matchers.h"

namespace herald::testing {
namespace {

using ::testing::ElementsAre;

class FakeProviderTest : public ::testing::Test {
 protected:
  // Publishes to `topic`, recording the outcome in results_.
  void Publish(const std::string& topic) {
    OutgoingMessage message;
    message.topic = topic;
    message.payload = "{}";
    provider_.Publish(std::move(message),
                      [this](const PublishResult& result) { results_.push_back(result.status); });
  }

  FakeProvider provider_;
  std::vector<absl::Status> results_;
};

TEST_F(FakeProviderTest, PublishesWaitForTheTest) {
  Publish("a");
  Publish("b");
  EXPECT_TRUE(results_.empty());
  EXPECT_EQ(provider_.outstanding(), 2u);
  EXPECT_EQ(provider_.GetConnectionStatus().in_flight, 2);
  EXPECT_TRUE(provider_.CompleteNext({.status = absl::OkStatus()}));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_OK(results_[0]);
  EXPECT_EQ(provider_.CompleteAll({.status = absl::UnavailableError("x")}), 1);
  ASSERT_EQ(results_.size(), 2u);
  EXPECT_THAT(results_[1], StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(provider_.CompleteNext({}));
  EXPECT_EQ(provider_.published_count(), 2u);
  EXPECT_EQ(provider_.published()[1].topic, "b");
}

TEST_F(FakeProviderTest, AutoComplete) {
  provider_.set_auto_complete(PublishResult{.status = absl::PermissionDeniedError("acl")});
  Publish("a");
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_THAT(results_[0], StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(provider_.outstanding(), 0u);
}

TEST_F(FakeProviderTest, DisconnectedPublishFailsAtOnce) {
  provider_.set_connection_state(ConnectionState::kDisconnected);
  EXPECT_THAT(provider_.WaitConnected(absl::Seconds(1)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  Publish("a");
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_THAT(results_[0], StatusIs(absl::StatusCode::kUnavailable));
  provider_.set_connection_state(ConnectionState::kConnected);
  EXPECT_OK(provider_.WaitConnected(absl::Seconds(1)));
  const ConnectionStatus status = provider_.GetConnectionStatus();
  EXPECT_EQ(status.connections, 2);
  EXPECT_EQ(status.reconnects, 1);
}

TEST_F(FakeProviderTest, CapacityShrinksWithOutstandingPublishes) {
  provider_.set_max_in_flight(2);
  EXPECT_EQ(provider_.AvailableCapacity(), 2);
  Publish("a");
  Publish("b");
  Publish("c");
  EXPECT_EQ(provider_.AvailableCapacity(), 0) << "never negative";
  provider_.CompleteNext({});
  provider_.CompleteNext({});
  EXPECT_EQ(provider_.AvailableCapacity(), 1);
}

TEST_F(FakeProviderTest, StopReportsOutstandingAsUnavailable) {
  Publish("a");
  provider_.Stop(absl::Seconds(1));
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_THAT(results_[0], StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(provider_.stopped());
  Publish("b");
  EXPECT_EQ(results_.size(), 2u);
}

IncomingMessage Incoming(const std::string& topic) {
  IncomingMessage message;
  message.topic = topic;
  return message;
}

TEST_F(FakeProviderTest, DeliversIncomingToMatchingSubscriptions) {
  std::vector<std::string> seen;
  ASSERT_OK(provider_.Subscribe("devices/+/responses", 1, [&](const IncomingMessage& message) {
    seen.push_back("plus:" + message.topic);
  }));
  ASSERT_OK(provider_.Subscribe("devices/#", 1, [&](const IncomingMessage& message) {
    seen.push_back("hash:" + message.topic);
  }));
  EXPECT_EQ(provider_.DeliverIncoming(Incoming("devices/s1/responses")), 2);
  EXPECT_EQ(provider_.DeliverIncoming(Incoming("devices/s1/status/online")), 1);
  EXPECT_EQ(provider_.DeliverIncoming(Incoming("other")), 0);
  EXPECT_THAT(seen, ElementsAre("plus:devices/s1/responses", "hash:devices/s1/responses",
                                "hash:devices/s1/status/online"));
  EXPECT_THAT(provider_.subscriptions(), ElementsAre("devices/+/responses", "devices/#"));
}

}  // namespace
}  // namespace herald::testing
