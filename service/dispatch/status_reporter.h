// StatusReporter: a background loop that keeps the slow-moving gauges and
// the health of this replica current: the outbox backlog (from the
// database), the provider's connection state, and whether the database
// answers. Metrics scrapes and health probes then read cached values and
// never wait on the database.
//
//   StatusReporter reporter(store, provider, metrics, absl::Seconds(2),
//                           [&](const HealthReport& report) { health.Set(report); });
//   reporter.Start();  ...  reporter.Stop();
#ifndef HERALD_SERVICE_DISPATCH_STATUS_REPORTER_H_
#define HERALD_SERVICE_DISPATCH_STATUS_REPORTER_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/provider.h"
#include "service/core/notification_store.h"
#include "service/metrics/herald_metrics.h"

namespace herald {

struct HealthReport {
  bool database_ok = false;
  bool provider_connected = false;
  int64_t backlog = 0;
};

// Thread-safe. Start and Stop once each.
class StatusReporter {
 public:
  StatusReporter(NotificationStore& store, Provider& provider, HeraldMetrics& metrics,
                 absl::Duration interval, std::function<void(const HealthReport&)> on_report);
  ~StatusReporter();

  void Start();
  void Stop();

  // Refreshes everything now (also used by Start before the loop begins).
  HealthReport ReportOnce();

 private:
  void Loop();

  NotificationStore& store_;
  Provider& provider_;
  HeraldMetrics& metrics_;
  const absl::Duration interval_;
  std::function<void(const HealthReport&)> on_report_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool last_database_ok_ ABSL_GUARDED_BY(mu_) = true;
  std::thread thread_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_STATUS_REPORTER_H_
