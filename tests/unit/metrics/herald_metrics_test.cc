#include "service/metrics/herald_metrics.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace herald {
namespace {

using Labels = std::map<std::string, std::string>;

class HeraldMetricsTest : public ::testing::Test {
 protected:
  HeraldMetricsTest()
      : registry_(std::make_shared<prometheus::Registry>()), metrics_(*registry_, "1.2.3") {}

  // The series of `family` with exactly `labels`, from a fresh Collect();
  // nullopt if there is none.
  std::optional<prometheus::ClientMetric> Series(const std::string& family,
                                                 const Labels& labels) const {
    for (const prometheus::MetricFamily& f : registry_->Collect()) {
      if (f.name != family) continue;
      for (const prometheus::ClientMetric& metric : f.metric) {
        Labels actual;
        for (const prometheus::ClientMetric::Label& label : metric.label) {
          actual[label.name] = label.value;
        }
        if (actual == labels) return metric;
      }
    }
    return std::nullopt;
  }

  double CounterValue(const std::string& family, const Labels& labels = {}) const {
    std::optional<prometheus::ClientMetric> series = Series(family, labels);
    EXPECT_TRUE(series.has_value()) << family;
    return series.has_value() ? series->counter.value : -1;
  }

  double GaugeValue(const std::string& family, const Labels& labels = {}) const {
    std::optional<prometheus::ClientMetric> series = Series(family, labels);
    EXPECT_TRUE(series.has_value()) << family;
    return series.has_value() ? series->gauge.value : -1;
  }

  prometheus::ClientMetric::Histogram HistogramValue(const std::string& family,
                                                     const Labels& labels = {}) const {
    std::optional<prometheus::ClientMetric> series = Series(family, labels);
    EXPECT_TRUE(series.has_value()) << family;
    return series.has_value() ? series->histogram : prometheus::ClientMetric::Histogram{};
  }

  std::shared_ptr<prometheus::Registry> registry_;
  HeraldMetrics metrics_;
};

TEST_F(HeraldMetricsTest, BuildInfo) {
  EXPECT_EQ(GaugeValue("herald_build_info", {{"version", "1.2.3"}}), 1);
}

TEST_F(HeraldMetricsTest, NotificationsCountedByQosAndOutcome) {
  metrics_.NotificationAccepted(1, kNotificationAccepted, 250);
  metrics_.NotificationAccepted(1, kNotificationAccepted, 50);
  metrics_.NotificationAccepted(1, kNotificationDuplicate, 250);
  metrics_.NotificationAccepted(0, kNotificationValidated, 10);
  metrics_.NotificationAccepted(2, kNotificationRejected, 0);

  const std::string accepted = "herald_notifications_accepted_total";
  EXPECT_EQ(CounterValue(accepted, {{"qos", "1"}, {"outcome", "accepted"}}), 2);
  EXPECT_EQ(CounterValue(accepted, {{"qos", "1"}, {"outcome", "duplicate"}}), 1);
  EXPECT_EQ(CounterValue(accepted, {{"qos", "0"}, {"outcome", "validated"}}), 1);
  EXPECT_EQ(CounterValue(accepted, {{"qos", "2"}, {"outcome", "rejected"}}), 1);
  // Only accepted notifications add targets: duplicates and validate-only send nothing.
  EXPECT_EQ(CounterValue("herald_notification_targets_total", {{"qos", "1"}}), 300);
  EXPECT_EQ(CounterValue("herald_notification_targets_total", {{"qos", "0"}}), 0);
}

TEST_F(HeraldMetricsTest, KnownNotificationSeriesStartAtZero) {
  for (const char* qos : {"0", "1", "2"}) {
    for (const char* outcome : {"accepted", "duplicate", "rejected", "validated"}) {
      EXPECT_EQ(CounterValue("herald_notifications_accepted_total",
                             {{"qos", qos}, {"outcome", outcome}}),
                0);
    }
    EXPECT_EQ(CounterValue("herald_notification_targets_total", {{"qos", qos}}), 0);
  }
}

TEST_F(HeraldMetricsTest, DeliveriesAndTheirLatencies) {
  metrics_.DeliveryFinished("mqtt", 1, kDeliveryDelivered, absl::Milliseconds(20),
                            absl::Milliseconds(2));
  metrics_.DeliveryFinished("mqtt", 1, kDeliveryDelivered, absl::Milliseconds(40),
                            absl::Milliseconds(4));
  metrics_.DeliveryFinished("mqtt", 1, kDeliveryRetried, std::nullopt, std::nullopt);
  metrics_.DeliveryFinished("mqtt", 0, kDeliveryExpired, std::nullopt, std::nullopt);

  const std::string deliveries = "herald_deliveries_total";
  EXPECT_EQ(CounterValue(deliveries, {{"provider", "mqtt"}, {"qos", "1"}, {"outcome", "delivered"}}),
            2);
  EXPECT_EQ(CounterValue(deliveries, {{"provider", "mqtt"}, {"qos", "1"}, {"outcome", "retried"}}),
            1);
  EXPECT_EQ(CounterValue(deliveries, {{"provider", "mqtt"}, {"qos", "0"}, {"outcome", "expired"}}),
            1);

  const auto accept = HistogramValue("herald_delivery_latency_seconds",
                                     {{"provider", "mqtt"}, {"qos", "1"}});
  EXPECT_EQ(accept.sample_count, 2u);
  EXPECT_DOUBLE_EQ(accept.sample_sum, 0.060);
  const auto publish = HistogramValue("herald_publish_latency_seconds",
                                      {{"provider", "mqtt"}, {"qos", "1"}});
  EXPECT_EQ(publish.sample_count, 2u);
  EXPECT_DOUBLE_EQ(publish.sample_sum, 0.006);
  // No latency given, no series.
  EXPECT_FALSE(Series("herald_delivery_latency_seconds", {{"provider", "mqtt"}, {"qos", "0"}}));
}

TEST_F(HeraldMetricsTest, LatencyBucketsSpanHalfAMillisecondToThirtySeconds) {
  metrics_.DeliveryFinished("mqtt", 1, kDeliveryDelivered, absl::Milliseconds(3), std::nullopt);
  const auto histogram = HistogramValue("herald_delivery_latency_seconds",
                                        {{"provider", "mqtt"}, {"qos", "1"}});
  ASSERT_GE(histogram.bucket.size(), 3u);
  EXPECT_DOUBLE_EQ(histogram.bucket.front().upper_bound, 0.0005);
  EXPECT_DOUBLE_EQ(histogram.bucket[histogram.bucket.size() - 2].upper_bound, 30);
  EXPECT_EQ(histogram.bucket.back().upper_bound, std::numeric_limits<double>::infinity());
}

TEST_F(HeraldMetricsTest, NegativeDurationsCountAsZero) {
  metrics_.DeliveryFinished("mqtt", 2, kDeliveryDelivered, -absl::Seconds(1), std::nullopt);
  const auto histogram = HistogramValue("herald_delivery_latency_seconds",
                                        {{"provider", "mqtt"}, {"qos", "2"}});
  EXPECT_EQ(histogram.sample_count, 1u);
  EXPECT_EQ(histogram.sample_sum, 0);
}

TEST_F(HeraldMetricsTest, Commands) {
  metrics_.CommandFinished(kCommandSucceeded, absl::Milliseconds(150));
  metrics_.CommandFinished(kCommandTimedOut, std::nullopt);
  EXPECT_EQ(CounterValue("herald_commands_total", {{"outcome", "succeeded"}}), 1);
  EXPECT_EQ(CounterValue("herald_commands_total", {{"outcome", "timed_out"}}), 1);
  const auto duration = HistogramValue("herald_command_duration_seconds");
  EXPECT_EQ(duration.sample_count, 1u);
  EXPECT_DOUBLE_EQ(duration.sample_sum, 0.150);
}

TEST_F(HeraldMetricsTest, KnownCommandSeriesStartAtZero) {
  for (const char* outcome : {"succeeded", "error", "timed_out", "offline", "rejected",
                              "unavailable", "overloaded", "cancelled"}) {
    EXPECT_EQ(CounterValue("herald_commands_total", {{"outcome", outcome}}), 0) << outcome;
  }
  for (const char* outcome : {"matched", "handed_over", "duplicate", "late", "unknown",
                              "not_waiting_here", "wrong_device", "malformed", "dropped"}) {
    EXPECT_EQ(CounterValue("herald_command_responses_total", {{"outcome", outcome}}), 0)
        << outcome;
  }
  for (const char* outcome : {"online", "offline", "not_applied", "malformed", "dropped"}) {
    EXPECT_EQ(CounterValue("herald_presence_messages_total", {{"outcome", outcome}}), 0)
        << outcome;
  }
  EXPECT_EQ(GaugeValue("herald_commands_waiting"), 0);
}

TEST_F(HeraldMetricsTest, CommandResponsesPresenceAndWaitingCommands) {
  metrics_.CommandResponseReceived(kResponseMatched);
  metrics_.CommandResponseReceived(kResponseDuplicate);
  metrics_.CommandResponseReceived(kResponseDuplicate);
  metrics_.CommandResponseReceived(kResponseMalformed);
  EXPECT_EQ(CounterValue("herald_command_responses_total", {{"outcome", "matched"}}), 1);
  EXPECT_EQ(CounterValue("herald_command_responses_total", {{"outcome", "duplicate"}}), 2);
  EXPECT_EQ(CounterValue("herald_command_responses_total", {{"outcome", "malformed"}}), 1);

  metrics_.PresenceReceived(kPresenceOffline);
  metrics_.PresenceReceived(kPresenceNotApplied);
  EXPECT_EQ(CounterValue("herald_presence_messages_total", {{"outcome", "offline"}}), 1);
  EXPECT_EQ(CounterValue("herald_presence_messages_total", {{"outcome", "not_applied"}}), 1);
  EXPECT_EQ(CounterValue("herald_presence_messages_total", {{"outcome", "online"}}), 0);

  metrics_.SetCommandsWaiting(12);
  EXPECT_EQ(GaugeValue("herald_commands_waiting"), 12);
  metrics_.SetCommandsWaiting(0);
  EXPECT_EQ(GaugeValue("herald_commands_waiting"), 0);
}

TEST_F(HeraldMetricsTest, MqttCountersAdvanceByTheIncreaseOfTheProviderTotals) {
  EXPECT_EQ(GaugeValue("herald_mqtt_connected"), 0);
  EXPECT_EQ(CounterValue("herald_mqtt_connections_total"), 0);

  metrics_.SetMqttConnection(true, 1, 0, 5);
  EXPECT_EQ(GaugeValue("herald_mqtt_connected"), 1);
  EXPECT_EQ(GaugeValue("herald_mqtt_in_flight"), 5);
  EXPECT_EQ(CounterValue("herald_mqtt_connections_total"), 1);
  EXPECT_EQ(CounterValue("herald_mqtt_reconnects_total"), 0);

  // The same totals again: nothing new.
  metrics_.SetMqttConnection(true, 1, 0, 7);
  EXPECT_EQ(CounterValue("herald_mqtt_connections_total"), 1);
  EXPECT_EQ(GaugeValue("herald_mqtt_in_flight"), 7);

  metrics_.SetMqttConnection(false, 1, 0, 0);
  EXPECT_EQ(GaugeValue("herald_mqtt_connected"), 0);

  metrics_.SetMqttConnection(true, 3, 2, 0);
  EXPECT_EQ(CounterValue("herald_mqtt_connections_total"), 3);
  EXPECT_EQ(CounterValue("herald_mqtt_reconnects_total"), 2);

  // A provider that starts over from zero (recreated): its new total is new.
  metrics_.SetMqttConnection(true, 1, 0, 0);
  EXPECT_EQ(CounterValue("herald_mqtt_connections_total"), 4);
  EXPECT_EQ(CounterValue("herald_mqtt_reconnects_total"), 2);
  metrics_.SetMqttConnection(true, 2, 1, 0);
  EXPECT_EQ(CounterValue("herald_mqtt_connections_total"), 5);
  EXPECT_EQ(CounterValue("herald_mqtt_reconnects_total"), 3);
}

TEST_F(HeraldMetricsTest, Backlog) {
  metrics_.SetBacklog(1234);
  EXPECT_EQ(GaugeValue("herald_backlog_deliveries"), 1234);
  metrics_.SetBacklog(0);
  EXPECT_EQ(GaugeValue("herald_backlog_deliveries"), 0);
}

TEST_F(HeraldMetricsTest, RpcsUseTheGoGrpcPrometheusNames) {
  const std::string service = "herald.v1.NotificationService";
  metrics_.RpcStarted(kGrpcUnary, service, "SendNotification");
  metrics_.RpcHandled(kGrpcUnary, service, "SendNotification", "OK", absl::Milliseconds(5));
  metrics_.RpcStarted(kGrpcUnary, service, "SendNotification");
  metrics_.RpcHandled(kGrpcUnary, service, "SendNotification",
                      absl::StatusCode::kInvalidArgument, absl::Milliseconds(1));

  const Labels method = {
      {"grpc_type", "unary"}, {"grpc_service", service}, {"grpc_method", "SendNotification"}};
  EXPECT_EQ(CounterValue("grpc_server_started_total", method), 2);
  Labels ok = method;
  ok["grpc_code"] = "OK";
  Labels invalid = method;
  invalid["grpc_code"] = "INVALID_ARGUMENT";
  EXPECT_EQ(CounterValue("grpc_server_handled_total", ok), 1);
  EXPECT_EQ(CounterValue("grpc_server_handled_total", invalid), 1);
  const auto handling = HistogramValue("grpc_server_handling_seconds", method);
  EXPECT_EQ(handling.sample_count, 2u);
  EXPECT_DOUBLE_EQ(handling.sample_sum, 0.006);
}

TEST_F(HeraldMetricsTest, DatabaseQueries) {
  QueryObserver& observer = metrics_;
  observer.ObserveQuery("claim_deliveries", absl::Milliseconds(2), true);
  observer.ObserveQuery("claim_deliveries", absl::Milliseconds(8), false);
  observer.ObserveQuery("get_device", absl::Milliseconds(1), true);

  const auto claim = HistogramValue("herald_db_query_duration_seconds",
                                    {{"operation", "claim_deliveries"}});
  EXPECT_EQ(claim.sample_count, 2u);
  EXPECT_DOUBLE_EQ(claim.sample_sum, 0.010);
  EXPECT_EQ(CounterValue("herald_db_query_errors_total", {{"operation", "claim_deliveries"}}), 1);
  // A successful operation has an error series too, at zero.
  EXPECT_EQ(CounterValue("herald_db_query_errors_total", {{"operation", "get_device"}}), 0);
}

TEST_F(HeraldMetricsTest, LabelValuesDoNotCollide) {
  // "a:b" + "c" and "a" + "b:c" must be different series.
  metrics_.RpcStarted("a:b", "c", "m");
  metrics_.RpcStarted("a", "b:c", "m");
  EXPECT_EQ(CounterValue("grpc_server_started_total",
                         {{"grpc_type", "a:b"}, {"grpc_service", "c"}, {"grpc_method", "m"}}),
            1);
  EXPECT_EQ(CounterValue("grpc_server_started_total",
                         {{"grpc_type", "a"}, {"grpc_service", "b:c"}, {"grpc_method", "m"}}),
            1);
}

TEST_F(HeraldMetricsTest, ConcurrentUpdatesAreAllCounted) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t] {
      const std::string method = absl::StrCat("Method", t % 3);
      for (int i = 0; i < kPerThread; ++i) {
        metrics_.RpcStarted(kGrpcUnary, "svc", method);
        metrics_.DeliveryFinished("mqtt", 1, kDeliveryDelivered, absl::Milliseconds(1),
                                  std::nullopt);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(CounterValue("herald_deliveries_total",
                         {{"provider", "mqtt"}, {"qos", "1"}, {"outcome", "delivered"}}),
            kThreads * kPerThread);
  double started = 0;
  for (int m = 0; m < 3; ++m) {
    started += CounterValue(
        "grpc_server_started_total",
        {{"grpc_type", "unary"}, {"grpc_service", "svc"}, {"grpc_method", absl::StrCat("Method", m)}});
  }
  EXPECT_EQ(started, kThreads * kPerThread);
}

// --- promtool ---------------------------------------------------------------

std::optional<std::string> FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/", program);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

TEST_F(HeraldMetricsTest, ExpositionPassesPromtoolCheckMetrics) {
  const std::optional<std::string> promtool = FindOnPath("promtool");
  if (!promtool.has_value()) GTEST_SKIP() << "promtool is not on PATH";

  // A child in every family.
  metrics_.NotificationAccepted(1, kNotificationAccepted, 3);
  metrics_.DeliveryFinished("mqtt", 1, kDeliveryDelivered, absl::Milliseconds(9),
                            absl::Milliseconds(2));
  metrics_.DeliveryFinished("mqtt", 1, kDeliveryNoSubscriber, absl::Milliseconds(9),
                            absl::Milliseconds(2));
  metrics_.CommandFinished(kCommandSucceeded, absl::Milliseconds(30));
  metrics_.SetCommandsWaiting(2);
  metrics_.CommandResponseReceived(kResponseHandedOver);
  metrics_.PresenceReceived(kPresenceOnline);
  metrics_.SetMqttConnection(true, 2, 1, 4);
  metrics_.SetBacklog(17);
  metrics_.RpcStarted(kGrpcServerStream, "herald.v1.NotificationService", "WatchNotification");
  metrics_.RpcHandled(kGrpcServerStream, "herald.v1.NotificationService", "WatchNotification",
                      absl::StatusCode::kCancelled, absl::Seconds(3));
  metrics_.ObserveQuery("insert_notification", absl::Milliseconds(4), false);

  const std::string exposition = prometheus::TextSerializer().Serialize(registry_->Collect());
  ASSERT_THAT(exposition, ::testing::HasSubstr("grpc_server_handling_seconds_bucket"));
  const std::string file = absl::StrCat(::testing::TempDir(), "/herald_metrics_exposition.txt");
  std::ofstream(file, std::ios::trunc) << exposition;

  const std::string command = absl::StrCat(*promtool, " check metrics < ", file, " 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  ASSERT_TRUE(WIFEXITED(status)) << "promtool did not exit normally: " << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "promtool check metrics:\n" << output << "\n" << exposition;
  EXPECT_EQ(output, "") << "promtool check metrics:\n" << output;
}

}  // namespace
}  // namespace herald
