// Tests of service/dispatch/status_reporter.h with the fakes and a fresh
// registry.
#include "service/dispatch/status_reporter.h"

#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"
#include "service/metrics/herald_metrics.h"
#include "tests/testing/fakes/fake_notification_store.h"
#include "tests/testing/fakes/fake_provider.h"
#include "tests/testing/fakes/metrics_reader.h"

namespace herald {
namespace {

using ::herald::testing::FakeNotificationStore;
using ::herald::testing::FakeProvider;
using ::herald::testing::MetricValue;

class StatusReporterTest : public ::testing::Test {
 protected:
  StatusReporterTest() : metrics_(registry_, "test") {}

  void InsertPending(int count) {
    NotificationRecord record;
    record.tenant_id = kDefaultTenant;
    record.notification_id = "n1";
    std::vector<ResolvedTarget> targets(count, ResolvedTarget{.device_id = "d", .topic = "t"});
    ASSERT_TRUE(store_.InsertNotification(record, targets).ok());
  }

  FakeNotificationStore store_;
  FakeProvider provider_;
  prometheus::Registry registry_;
  HeraldMetrics metrics_;
};

TEST_F(StatusReporterTest, ReportsBacklogAndConnection) {
  InsertPending(3);
  std::vector<HealthReport> reports;
  StatusReporter reporter(store_, provider_, metrics_, absl::Hours(1),
                          [&](const HealthReport& report) { reports.push_back(report); });
  const HealthReport report = reporter.ReportOnce();
  EXPECT_TRUE(report.database_ok);
  EXPECT_TRUE(report.provider_connected);
  EXPECT_EQ(report.backlog, 3);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].backlog, 3);
  EXPECT_EQ(MetricValue(registry_, "herald_backlog_deliveries"), 3);
  EXPECT_EQ(MetricValue(registry_, "herald_mqtt_connected"), 1);
  EXPECT_EQ(MetricValue(registry_, "herald_mqtt_connections_total"), 1);
}

TEST_F(StatusReporterTest, DatabaseDownKeepsTheLastBacklog) {
  InsertPending(2);
  StatusReporter reporter(store_, provider_, metrics_, absl::Hours(1), nullptr);
  ASSERT_TRUE(reporter.ReportOnce().database_ok);
  store_.FailNextCalls(absl::UnavailableError("db down"), 1, "CountBacklog");
  const HealthReport down = reporter.ReportOnce();
  EXPECT_FALSE(down.database_ok);
  EXPECT_EQ(MetricValue(registry_, "herald_backlog_deliveries"), 2) << "last known value";
  EXPECT_TRUE(reporter.ReportOnce().database_ok) << "recovers on the next round";
}

TEST_F(StatusReporterTest, FollowsTheProviderConnection) {
  StatusReporter reporter(store_, provider_, metrics_, absl::Hours(1), nullptr);
  provider_.set_connection_state(ConnectionState::kDisconnected);
  EXPECT_FALSE(reporter.ReportOnce().provider_connected);
  EXPECT_EQ(MetricValue(registry_, "herald_mqtt_connected"), 0);
  provider_.set_connection_state(ConnectionState::kConnected);
  EXPECT_TRUE(reporter.ReportOnce().provider_connected);
  EXPECT_EQ(MetricValue(registry_, "herald_mqtt_connections_total"), 2);
  EXPECT_EQ(MetricValue(registry_, "herald_mqtt_reconnects_total"), 1);
}

TEST_F(StatusReporterTest, StartReportsAtOnceAndStopReturnsPromptly) {
  InsertPending(1);
  absl::Mutex mu;
  int reports = 0;
  StatusReporter reporter(store_, provider_, metrics_, absl::Hours(1), [&](const HealthReport&) {
    absl::MutexLock lock(&mu);
    ++reports;
  });
  reporter.Start();
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(reports, 1) << "Start reports before the loop begins";
  }
  // With an interval of an hour, Stop must not wait for the next round.
  reporter.Stop();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(reports, 1);
}

TEST_F(StatusReporterTest, LoopReportsEveryInterval) {
  absl::Mutex mu;
  int reports = 0;
  StatusReporter reporter(store_, provider_, metrics_, absl::Milliseconds(1),
                          [&](const HealthReport&) {
                            absl::MutexLock lock(&mu);
                            ++reports;
                          });
  reporter.Start();
  {
    absl::MutexLock lock(&mu);
    const auto several = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return reports >= 3; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&several), absl::Seconds(20)));
  }
  reporter.Stop();
}

}  // namespace
}  // namespace herald
