// Herald as its users watch it: a real Prometheus (Debian's) scrapes a real
// herald every second and evaluates deploy/prometheus/herald.rules.yaml,
// while notifications flow through a real PostgreSQL and Mosquitto. Then:
//   - herald_* series arrive in Prometheus and answer queries;
//   - every metric that the Grafana dashboard and the alert rules use is a
//     family Herald exports, with the labels they select on;
//   - every dashboard query runs in Prometheus and returns data;
//   - the alert rules evaluate without errors, stay quiet on a healthy
//     Herald and go pending for a replica that cannot reach its broker.
//
// Needs the `servers` CTest fixture and `prometheus` in PATH.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "herald/v1/command.grpc.pb.h"
#include "herald/v1/device.grpc.pb.h"
#include "herald/v1/notification.grpc.pb.h"
#include "tests/deploy/deploy_test_support.h"
#include "tests/testing/herald_process.h"
#include "tests/testing/mqtt_recorder.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::google::protobuf::Value;
using ::herald::testing::ChildProcess;
using ::herald::testing::HeraldProcess;
using ::herald::testing::MqttRecorder;
using ::herald::testing::TestServers;

constexpr int kNotificationsPerQos = 3;
constexpr int kDevices = 2;

// The fields of a JSON object (empty for anything else).
const google::protobuf::Map<std::string, Value>& Fields(const Value& value) {
  static const auto* const empty = new google::protobuf::Struct();
  return value.has_struct_value() ? value.struct_value().fields() : empty->fields();
}

const Value& Field(const Value& value, const std::string& name) {
  static const auto* const null = new Value();
  const auto& fields = Fields(value);
  auto it = fields.find(name);
  return it == fields.end() ? *null : it->second;
}

std::vector<Value> Items(const Value& value) {
  if (!value.has_list_value()) return {};
  return {value.list_value().values().begin(), value.list_value().values().end()};
}

// Grafana's variables, replaced so that a dashboard query runs as is.
std::string Substitute(std::string query) {
  return absl::StrReplaceAll(query, {{"$__rate_interval", "1m"},
                                     {"$__interval", "15s"},
                                     {"$__range", "5m"},
                                     {"${job}", ".+"},
                                     {"$job", ".+"},
                                     {"${instance}", ".+"},
                                     {"$instance", ".+"}});
}

// label_values(metric{...}, label) -> the selector (Grafana's variable syntax).
std::string VariableSelector(const std::string& query) {
  static const std::regex* const pattern = new std::regex(R"(^label_values\((.*),\s*\w+\)$)");
  std::smatch match;
  if (std::regex_match(query, match, *pattern)) return match[1].str();
  return query;
}

class ObservabilityTest : public ::testing::Test {
 protected:
  // Failures are recorded, not asserted (gtest would skip the tests).
  static void SetUpTestSuite() {
    env_ = new Environment();
    env_->error = env_->SetUp();
  }

  static void TearDownTestSuite() {
    if (env_->prometheus) env_->prometheus->Stop();
    for (auto* herald : {env_->herald.get(), env_->broken.get()}) {
      if (herald != nullptr && herald->pid() > 0) {
        const int code = herald->Stop();
        EXPECT_EQ(code, 0) << "herald should exit 0 on SIGTERM\n" << herald->ReadLog();
      }
    }
    delete env_;
  }

  void SetUp() override { ASSERT_TRUE(env_->error.empty()) << env_->error << Logs(); }

  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "%s\n", Logs().c_str());
  }

  static std::string Logs() {
    std::string logs;
    if (env_->herald) absl::StrAppend(&logs, "--- herald log ---\n", env_->herald->ReadLog());
    if (env_->prometheus) absl::StrAppend(&logs, "--- prometheus log ---\n", env_->prometheus->ReadLog());
    return logs;
  }

  // GET /api/v1/query; the `data.result` array, or a failure naming the query.
  static absl::StatusOr<std::vector<Value>> Query(const std::string& promql) {
    absl::StatusOr<testing::HttpResponse> answer = testing::HttpGetFull(
        env_->prometheus_port, "/api/v1/query?query=" + testing::UrlEncode(promql));
    if (!answer.ok()) return answer.status();
    absl::StatusOr<Value> json = testing::ParseJson(answer->body);
    if (!json.ok()) return json.status();
    if (answer->status != 200 || Field(*json, "status").string_value() != "success") {
      return absl::InvalidArgumentError(absl::StrCat("Prometheus refused `", promql, "`: HTTP ",
                                                     answer->status, " ", answer->body));
    }
    return Items(Field(Field(*json, "data"), "result"));
  }

  // Polls `promql` until `accept` holds for its result, up to `timeout`.
  static bool Eventually(const std::string& promql,
                         const std::function<bool(const std::vector<Value>&)>& accept,
                         std::string* last, absl::Duration timeout = absl::Seconds(30)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      absl::StatusOr<std::vector<Value>> result = Query(promql);
      if (result.ok()) {
        *last = absl::StrCat(result->size(), " series");
        for (const Value& sample : *result) {
          std::string json;
          (void)google::protobuf::util::MessageToJsonString(sample, &json);
          absl::StrAppend(last, "\n  ", json);
        }
        if (accept(*result)) return true;
      } else {
        *last = result.status().ToString();
      }
      if (absl::Now() >= deadline) return false;
      absl::SleepFor(absl::Milliseconds(250));
    }
  }

  // The answer to `promql`, for failure messages.
  static std::string Dump(const std::string& promql) {
    std::string last;
    Eventually(promql, [](const auto&) { return true; }, &last, absl::ZeroDuration());
    return last;
  }

  static double SampleValue(const Value& sample) {
    double value = NAN;
    const std::vector<Value> pair = Items(Field(sample, "value"));
    if (pair.size() == 2) (void)absl::SimpleAtod(pair[1].string_value(), &value);
    return value;
  }

  struct Environment {
    std::string error;
    std::string dir;
    std::string database_url;
    std::unique_ptr<HeraldProcess> herald;   // connected to the broker
    std::unique_ptr<HeraldProcess> broken;   // pointed at a port where no broker listens
    std::unique_ptr<ChildProcess> prometheus;
    int prometheus_port = 0;
    std::unique_ptr<MqttRecorder> devices;
    grpc::StatusCode command_status = grpc::StatusCode::OK;
    std::string command_message;
    int delivered = 0;

    // Returns what went wrong, or "".
    std::string SetUp() {
      dir = testing::MakeTempDir("herald-observability");
      if (dir.empty()) return "cannot create a temporary directory";
      database_url = testing::CreateScratchDatabase("observability", false);
      std::string output;
      absl::StatusOr<int> migrated = testing::RunHerald({"migrate", "--database_url=" + database_url}, &output);
      if (!migrated.ok() || *migrated != 0) return absl::StrCat("herald migrate failed:\n", output);

      herald = std::make_unique<HeraldProcess>(std::vector<std::string>{
          "--database_url=" + database_url, "--mqtt_uri=" + TestServers::Get().mqtt_uri});
      if (absl::Status started = herald->Start(); !started.ok()) return started.ToString();
      broken = std::make_unique<HeraldProcess>(std::vector<std::string>{
          "--database_url=" + database_url,
          absl::StrCat("--mqtt_uri=tcp://127.0.0.1:", testing::FreeLoopbackPort()),
          "--mqtt_connect_timeout=1s", "--mqtt_reconnect_max=2s"});
      if (absl::Status started = broken->Start(); !started.ok()) {
        return absl::StrCat("a herald without a broker should still start: ", started.ToString(),
                            "\n", broken->ReadLog());
      }

      if (std::string started = StartPrometheus(); !started.empty()) return started;
      // Prometheus scrapes a few seconds after it starts. Traffic before its
      // first scrape would be invisible to rate(): the series would start at
      // their final values.
      if (std::string scraped = WaitForFirstScrapes(); !scraped.empty()) return scraped;
      return SendTraffic();
    }

    std::string StartPrometheus() {
      const std::string rules = testing::SourceDir() + "/deploy/prometheus/herald.rules.yaml";
      const std::string config_path = dir + "/prometheus.yml";
      {
        std::ofstream config(config_path);
        config << "global:\n"
               << "  scrape_interval: 1s\n"
               << "  scrape_timeout: 1s\n"
               << "  evaluation_interval: 1s\n"
               << "rule_files:\n"
               << "  - " << rules << "\n"
               << "scrape_configs:\n"
               << "  - job_name: herald\n"
               << "    static_configs:\n"
               << "      - targets: ['127.0.0.1:" << herald->metrics_port() << "', '127.0.0.1:"
               << broken->metrics_port() << "']\n";
      }
      // A port picked here may be taken before Prometheus binds it: retry.
      for (int attempt = 0; attempt < 3; ++attempt) {
        prometheus_port = testing::FreeLoopbackPort();
        prometheus = std::make_unique<ChildProcess>(
            std::vector<std::string>{
                "prometheus", "--config.file=" + config_path,
                absl::StrCat("--web.listen-address=127.0.0.1:", prometheus_port),
                "--storage.tsdb.path=" + dir + "/data", "--log.level=warn"},
            dir + "/prometheus.log");
        if (absl::Status started = prometheus->Start(); !started.ok()) return started.ToString();
        const absl::Time deadline = absl::Now() + absl::Seconds(30);
        while (absl::Now() < deadline && prometheus->Running()) {
          absl::StatusOr<testing::HttpResponse> ready = testing::HttpGetFull(prometheus_port, "/-/ready");
          if (ready.ok() && ready->status == 200) return "";
          absl::SleepFor(absl::Milliseconds(100));
        }
        if (prometheus->Running()) return "Prometheus did not become ready in 30 s\n" + prometheus->ReadLog();
        if (!absl::StrContains(prometheus->ReadLog(), "address already in use")) {
          return "Prometheus exited (is Debian's prometheus installed?)\n" + prometheus->ReadLog();
        }
      }
      return "Prometheus could not bind a port";
    }

    std::string WaitForFirstScrapes() {
      const std::string query = testing::UrlEncode("count(up{job=\"herald\"} == 1) == 2");
      const absl::Time deadline = absl::Now() + absl::Seconds(60);
      std::string last;
      while (absl::Now() < deadline) {
        absl::StatusOr<testing::HttpResponse> answer =
            testing::HttpGetFull(prometheus_port, "/api/v1/query?query=" + query);
        if (answer.ok()) {
          last = answer->body;
          absl::StatusOr<Value> json = testing::ParseJson(answer->body);
          if (json.ok() && !Items(Field(Field(*json, "data"), "result")).empty()) return "";
        }
        absl::SleepFor(absl::Milliseconds(200));
      }
      return "Prometheus did not scrape both herald replicas within 60 s: " + last + "\n" + prometheus->ReadLog();
    }

    // Devices, notifications at every QoS to a real subscriber, a failed
    // lookup (a non-OK code), and one command (to a device that will not
    // answer).
    std::string SendTraffic() {
      auto channel = herald->NewChannel();
      auto device_stub = v1::DeviceService::NewStub(channel);
      auto notification_stub = v1::NotificationService::NewStub(channel);
      devices = std::make_unique<MqttRecorder>(TestServers::Get().mqtt_uri,
                                               std::vector<std::string>{"observed/+/notifications"}, 2);
      if (absl::Status connected = devices->Connect(); !connected.ok()) return connected.ToString();

      for (int i = 0; i < kDevices; ++i) {
        v1::CreateDeviceRequest request;
        request.mutable_device()->set_device_id(absl::StrCat("observed-", i));
        request.mutable_device()->set_owner_id("observer");
        request.mutable_device()->set_topic(absl::StrCat("observed/", i, "/notifications"));
        v1::Device created;
        grpc::ClientContext context;
        grpc::Status status = device_stub->CreateDevice(&context, request, &created);
        if (!status.ok()) return "CreateDevice: " + status.error_message();
      }
      {
        v1::GetDeviceRequest request;
        request.set_device_id("no-such-device");
        v1::Device device;
        grpc::ClientContext context;
        if (device_stub->GetDevice(&context, request, &device).error_code() != grpc::StatusCode::NOT_FOUND) {
          return "GetDevice of an unknown device should be NOT_FOUND";
        }
      }
      std::vector<std::string> ids;
      for (int qos = 0; qos <= 2; ++qos) {
        for (int n = 0; n < kNotificationsPerQos; ++n) {
          v1::SendNotificationRequest request;
          request.mutable_target()->mutable_owner_ids()->add_values("observer");
          request.mutable_content()->set_title(absl::StrCat("observed ", qos, "/", n));
          request.mutable_options()->set_qos(qos);
          v1::SendNotificationResponse response;
          grpc::ClientContext context;
          context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
          grpc::Status status = notification_stub->SendNotification(&context, request, &response);
          if (!status.ok()) return "SendNotification: " + status.error_message();
          ids.push_back(response.notification_id());
        }
      }
      for (const std::string& id : ids) {
        const absl::Time deadline = absl::Now() + absl::Seconds(20);
        v1::Notification notification;
        while (true) {
          v1::GetNotificationRequest request;
          request.set_notification_id(id);
          grpc::ClientContext context;
          grpc::Status status = notification_stub->GetNotification(&context, request, &notification);
          if (!status.ok()) return "GetNotification: " + status.error_message();
          if (notification.state() == v1::DELIVERED) break;
          if (absl::Now() >= deadline) {
            return absl::StrCat("notification ", id, " is ", v1::NotificationState_Name(notification.state()),
                                " after 20 s");
          }
          absl::SleepFor(absl::Milliseconds(50));
        }
        delivered += static_cast<int>(notification.delivered_count());
      }
      if (!devices->WaitForCount(static_cast<size_t>(delivered), absl::Seconds(10))) {
        return absl::StrCat("the subscriber got ", devices->Count(), " of ", delivered, " messages");
      }

      v1::SendCommandRequest command;
      command.set_device_id("observed-0");
      command.set_action("ping");
      command.mutable_timeout()->set_nanos(300'000'000);
      command.set_max_retries(0);
      command.set_send_if_offline(true);
      v1::Command answer;
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
      grpc::Status status = v1::CommandService::NewStub(channel)->SendCommand(&context, command, &answer);
      command_status = status.error_code();
      command_message = status.error_message();
      return "";
    }
  };

  static bool CommandsUnimplemented() { return env_->command_status == grpc::StatusCode::UNIMPLEMENTED; }

  // Every PromQL expression of the dashboard (panels and variables).
  static std::vector<std::string> DashboardQueries() {
    const std::string path = testing::SourceDir() + "/deploy/grafana/dashboards/herald.json";
    absl::StatusOr<Value> dashboard = testing::ParseJson(testing::ReadFileOrEmpty(path));
    EXPECT_TRUE(dashboard.ok()) << dashboard.status();
    std::vector<std::string> queries;
    std::vector<Value> panels = Items(Field(*dashboard, "panels"));
    for (size_t i = 0; i < panels.size(); ++i) {
      for (const Value& nested : Items(Field(panels[i], "panels"))) panels.push_back(nested);
      for (const Value& target : Items(Field(panels[i], "targets"))) {
        queries.push_back(Field(target, "expr").string_value());
      }
    }
    for (const Value& variable : Items(Field(Field(*dashboard, "templating"), "list"))) {
      if (Field(variable, "type").string_value() != "query") continue;
      queries.push_back(VariableSelector(Field(variable, "definition").string_value()));
    }
    EXPECT_GT(queries.size(), 20u) << "the dashboard has fewer queries than expected";
    return queries;
  }

  // Every expression of the alert rules, as Prometheus loaded them.
  static std::vector<std::string> RuleQueries() {
    absl::StatusOr<testing::HttpResponse> answer = testing::HttpGetFull(env_->prometheus_port, "/api/v1/rules");
    EXPECT_TRUE(answer.ok()) << answer.status();
    if (!answer.ok()) return {};
    absl::StatusOr<Value> json = testing::ParseJson(answer->body);
    EXPECT_TRUE(json.ok()) << json.status();
    std::vector<std::string> queries;
    for (const Value& group : Items(Field(Field(*json, "data"), "groups"))) {
      for (const Value& rule : Items(Field(group, "rules"))) queries.push_back(Field(rule, "query").string_value());
    }
    return queries;
  }

  static Environment* env_;
};

ObservabilityTest::Environment* ObservabilityTest::env_ = nullptr;

TEST_F(ObservabilityTest, PrometheusScrapesBothReplicas) {
  std::string last;
  EXPECT_TRUE(Eventually(
      "up{job=\"herald\"} == 1", [](const auto& result) { return result.size() == 2; }, &last))
      << "both herald targets should be up; last answer: " << last;
}

TEST_F(ObservabilityTest, HeraldSeriesAnswerQueries) {
  const std::string good = absl::StrCat("127.0.0.1:", env_->herald->metrics_port());
  const std::string bad = absl::StrCat("127.0.0.1:", env_->broken->metrics_port());
  std::string last;
  EXPECT_TRUE(Eventually(
      "sum(herald_deliveries_total{job=\"herald\", outcome=\"delivered\"})",
      [](const auto& result) { return result.size() == 1 && SampleValue(result[0]) >= env_->delivered; },
      &last))
      << "expected " << env_->delivered << " deliveries; last answer: " << last;
  EXPECT_TRUE(Eventually(
      "sum by (qos) (herald_notifications_accepted_total{outcome=\"accepted\"})",
      [](const auto& result) {
        return result.size() == 3 &&
               std::all_of(result.begin(), result.end(),
                           [](const Value& s) { return SampleValue(s) == kNotificationsPerQos; });
      },
      &last))
      << "expected " << kNotificationsPerQos << " accepted notifications per QoS; " << last;
  EXPECT_TRUE(Eventually(
      "sum(grpc_server_handled_total{grpc_service=\"herald.v1.NotificationService\", "
      "grpc_method=\"SendNotification\", grpc_code=\"OK\"})",
      [](const auto& result) { return result.size() == 1 && SampleValue(result[0]) == 3 * kNotificationsPerQos; },
      &last))
      << last;
  EXPECT_TRUE(Eventually(
      "grpc_server_handled_total{grpc_method=\"GetDevice\", grpc_code=\"NOT_FOUND\"}",
      [](const auto& result) { return result.size() == 1; }, &last))
      << last;
  EXPECT_TRUE(Eventually(
      "herald_mqtt_connected{instance=\"" + good + "\"} == 1", [](const auto& result) { return result.size() == 1; },
      &last))
      << last;
  EXPECT_TRUE(Eventually(
      "herald_mqtt_connected{instance=\"" + bad + "\"} == 0", [](const auto& result) { return result.size() == 1; },
      &last))
      << last;
  EXPECT_TRUE(Eventually(
      "count(herald_build_info{version!=\"\"})", [](const auto& result) {
        return result.size() == 1 && SampleValue(result[0]) == 2;
      },
      &last))
      << last;
  EXPECT_TRUE(Eventually(
      // Over everything observed: rate() would miss observations made
      // before Prometheus first saw the series (created by the first one).
      "histogram_quantile(0.5, sum by (le) (herald_delivery_latency_seconds_bucket))",
      [](const auto& result) {
        return result.size() == 1 && SampleValue(result[0]) > 0 && SampleValue(result[0]) < 30;
      },
      &last))
      << "the delivery latency histogram should give a median; " << last;
}

TEST_F(ObservabilityTest, DashboardAndAlertsUseOnlyMetricsHeraldExports) {
  absl::StatusOr<std::string> exposition = testing::HttpGet(env_->herald->metrics_port(), "/metrics");
  ASSERT_TRUE(exposition.ok()) << exposition.status();
  const std::set<std::string> families = testing::ScrapedFamilies(*exposition);
  ASSERT_TRUE(families.contains("herald_deliveries_total")) << *exposition;

  std::vector<std::string> queries = DashboardQueries();
  const std::vector<std::string> rules = RuleQueries();
  ASSERT_GE(rules.size(), 6u) << "Prometheus should have loaded the alert rules";
  queries.insert(queries.end(), rules.begin(), rules.end());

  std::set<std::string> used;
  for (const std::string& query : queries) {
    for (const std::string& name : testing::HeraldMetricNames(query)) used.insert(name);
  }
  // The issue's list: API, deliveries, latency, backlog, broker, commands, database.
  for (const char* required : {"grpc_server_started_total", "grpc_server_handled_total",
                               "grpc_server_handling_seconds_bucket", "herald_deliveries_total",
                               "herald_delivery_latency_seconds_bucket", "herald_backlog_deliveries",
                               "herald_mqtt_connected", "herald_mqtt_reconnects_total",
                               "herald_commands_total", "herald_command_duration_seconds_bucket",
                               "herald_db_query_duration_seconds_bucket"}) {
    EXPECT_TRUE(used.contains(required)) << "the dashboard and alerts should use " << required;
  }
  for (const std::string& name : used) {
    if (!testing::FamilyOf(name, families).empty()) continue;
    if (CommandsUnimplemented() && absl::StartsWith(name, "herald_command")) {
      // Families without a labelled child are not exported until used.
      std::printf("NOTE: %s is not exported yet: this Herald answers SendCommand with UNIMPLEMENTED\n",
                  name.c_str());
      continue;
    }
    ADD_FAILURE() << name << " is used by the dashboard or the alerts but Herald does not export it";
  }

  // Label names that a selector matches on exist on the family's series.
  static const std::regex* const selector = new std::regex(R"(((herald_|grpc_server_)[a-z0-9_]+)\{([^}]*)\})");
  static const std::regex* const matcher = new std::regex(R"(([a-z_]+)\s*(=~|!~|!=|=)\s*")");
  for (const std::string& query : queries) {
    for (auto it = std::sregex_iterator(query.begin(), query.end(), *selector); it != std::sregex_iterator(); ++it) {
      const std::string metric = (*it)[1].str();
      const std::string matchers = (*it)[3].str();
      for (auto m = std::sregex_iterator(matchers.begin(), matchers.end(), *matcher); m != std::sregex_iterator(); ++m) {
        const std::string label = (*m)[1].str();
        if (label == "job" || label == "instance" || label == "namespace" || label == "le") continue;
        if (testing::FamilyOf(metric, families).empty()) continue;  // reported above
        const std::regex has_label(absl::StrCat("(^|\n)", metric, "\\{[^}]*\\b", label, "=\""));
        EXPECT_TRUE(std::regex_search(*exposition, has_label))
            << "`" << query << "` selects on label " << label << ", which " << metric << " does not have";
      }
    }
  }
}

TEST_F(ObservabilityTest, EveryDashboardQueryRunsAndReturnsData) {
  for (const std::string& raw : DashboardQueries()) {
    const std::string query = Substitute(raw);
    const bool about_commands = absl::StrContains(query, "herald_command");
    std::string last;
    const bool ok = Eventually(query, [](const auto& result) { return !result.empty(); }, &last,
                               absl::Seconds(about_commands && CommandsUnimplemented() ? 0 : 20));
    if (!ok && about_commands && CommandsUnimplemented()) {
      EXPECT_FALSE(absl::StartsWith(last, "INVALID_ARGUMENT")) << query << ": " << last;
      continue;
    }
    EXPECT_TRUE(ok) << "dashboard query `" << raw << "` returned no data; last answer: " << last;
  }
}

TEST_F(ObservabilityTest, AlertRulesEvaluateWithoutErrors) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::vector<std::string> problems;
  while (true) {
    problems.clear();
    absl::StatusOr<testing::HttpResponse> answer = testing::HttpGetFull(env_->prometheus_port, "/api/v1/rules");
    ASSERT_TRUE(answer.ok()) << answer.status();
    absl::StatusOr<Value> json = testing::ParseJson(answer->body);
    ASSERT_TRUE(json.ok()) << json.status();
    int rules = 0;
    for (const Value& group : Items(Field(Field(*json, "data"), "groups"))) {
      for (const Value& rule : Items(Field(group, "rules"))) {
        ++rules;
        const std::string name = Field(rule, "name").string_value();
        if (Field(rule, "health").string_value() != "ok") {
          problems.push_back(absl::StrCat(name, ": health ", Field(rule, "health").string_value(), " ",
                                          Field(rule, "lastError").string_value()));
        }
        if (absl::StartsWith(Field(rule, "lastEvaluation").string_value(), "0001-")) {
          problems.push_back(absl::StrCat(name, ": not evaluated yet"));
        }
      }
    }
    if (rules == 0) problems.push_back("no rules loaded");
    if (problems.empty() || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
}

TEST_F(ObservabilityTest, AlertsQuietWhenHealthyPendingWhenTheBrokerIsUnreachable) {
  const std::string good = absl::StrCat("127.0.0.1:", env_->herald->metrics_port());
  const std::string bad = absl::StrCat("127.0.0.1:", env_->broken->metrics_port());
  std::string last;
  EXPECT_TRUE(Eventually(
      "ALERTS{alertname=\"HeraldMqttDisconnected\", instance=\"" + bad + "\", alertstate=\"pending\"}",
      [](const auto& result) { return result.size() == 1; }, &last))
      << "the replica without a broker should have a pending HeraldMqttDisconnected; " << last;
  // The healthy replica may show a startup transient (connected a moment
  // after its first scrape); it must clear.
  EXPECT_TRUE(Eventually(
      "ALERTS{instance=\"" + good + "\"}", [](const auto& result) { return result.empty(); }, &last))
      << "alerts about a healthy replica: " << last;
  // The command of the set-up got no answer: every command timed out.
  if (env_->command_status == grpc::StatusCode::DEADLINE_EXCEEDED) {
    EXPECT_TRUE(Eventually(
        "ALERTS{alertname=\"HeraldCommandTimeoutsHigh\", alertstate=\"pending\"}",
        [](const auto& result) { return result.size() == 1; }, &last))
        << "a command that timed out should make HeraldCommandTimeoutsHigh pending; " << last
        << "\nherald_commands_total: " << Dump("herald_commands_total") << "\nALERTS: " << Dump("ALERTS");
  } else {
    std::printf("NOTE: SendCommand answered %d (%s), not DEADLINE_EXCEEDED: HeraldCommandTimeoutsHigh not exercised\n",
                static_cast<int>(env_->command_status), env_->command_message.c_str());
  }
  EXPECT_TRUE(Eventually(
      "ALERTS{alertname!~\"HeraldMqttDisconnected|HeraldCommandTimeoutsHigh\"}",
      [](const auto& result) { return result.empty(); }, &last))
      << "no other alert should be pending or firing: " << last;
}

}  // namespace
}  // namespace herald
