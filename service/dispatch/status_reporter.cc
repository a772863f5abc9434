#include "service/dispatch/status_reporter.h"

#include "service/core/logging.h"

namespace herald {

StatusReporter::StatusReporter(NotificationStore& store, Provider& provider,
                               HeraldMetrics& metrics, absl::Duration interval,
                               std::function<void(const HealthReport&)> on_report)
    : store_(store),
      provider_(provider),
      metrics_(metrics),
      interval_(interval),
      on_report_(std::move(on_report)) {}

StatusReporter::~StatusReporter() { Stop(); }

void StatusReporter::Start() {
  ReportOnce();
  thread_ = std::thread([this] { Loop(); });
}

void StatusReporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

HealthReport StatusReporter::ReportOnce() {
  HealthReport report;
  const ConnectionStatus connection = provider_.GetConnectionStatus();
  report.provider_connected = connection.state == ConnectionState::kConnected;
  metrics_.SetMqttConnection(report.provider_connected, connection.connections,
                             connection.reconnects, connection.in_flight);
  absl::StatusOr<int64_t> backlog = store_.CountBacklog();
  report.database_ok = backlog.ok();
  if (backlog.ok()) {
    report.backlog = *backlog;
    metrics_.SetBacklog(*backlog);
  }
  {
    absl::MutexLock lock(&mu_);
    if (report.database_ok != last_database_ok_) {
      if (report.database_ok) {
        LogInfo("database reachable again");
      } else {
        LogError("database unreachable", {{"error", backlog.status().message()}});
      }
      last_database_ok_ = report.database_ok;
    }
  }
  if (on_report_) on_report_(report);
  return report;
}

void StatusReporter::Loop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      const auto stopping = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), interval_)) return;
    }
    ReportOnce();
  }
}

}  // namespace herald
