// The fault-injection harness: a Herald deployment of its own (PostgreSQL,
// a persistent Mosquitto, one or more herald replicas), a real load of
// notifications sent the way a careful client sends them (idempotency keys,
// retries), a real MQTT subscriber recording every message, and the check
// that compares what the subscriber got with what PostgreSQL says.
//
//   FaultHarness harness("broker_restart", {.replicas = 1});
//   ASSERT_OK(harness.Start());
//   harness.RunLoad({.notifications = 2000}, [&] { harness.RestartBroker(); });
//   Figures figures = harness.Verify();
//   EXPECT_EQ(figures.lost, 0);
#ifndef HERALD_TESTS_FAULT_FAULT_HARNESS_H_
#define HERALD_TESTS_FAULT_FAULT_HARNESS_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "tests/testing/herald_process.h"
#include "tests/testing/mqtt_recorder.h"
#include "tests/testing/tcp_proxy.h"

namespace herald::testing {

struct HarnessOptions {
  int replicas = 1;
  int devices = 2000;
  bool through_proxy = false;    // Herald reaches the broker through a TcpProxy
  std::vector<std::string> extra_flags;
};

struct LoadOptions {
  int notifications = 2000;
  int client_threads = 8;
  double per_second = 1000;       // pacing of the whole load
  double fault_at = 0.3;          // the fault fires after this share was sent
  absl::Duration send_deadline = absl::Seconds(90);
};

// What a scenario reports: each must end with lost == 0.
struct Figures {
  int64_t accepted = 0;        // notifications acknowledged to the client
  int64_t targets = 0;         // their deliveries in PostgreSQL
  int64_t delivered = 0;       // acknowledged by the broker per PostgreSQL
  int64_t expired = 0;
  int64_t failed = 0;
  int64_t lost = 0;            // acknowledged but neither received nor accounted for
  int64_t duplicates = 0;      // extra copies the subscriber got
  int64_t qos2_duplicates = 0;
  int64_t republished = 0;     // deliveries attempted more than once
  int64_t qos2_republished = 0;
  int64_t unexpected = 0;      // received but not in PostgreSQL
  int64_t client_retries = 0;  // RPCs the client had to repeat
  double seconds = 0;
  std::string ToString(const std::string& scenario) const;
};

// Not thread-safe, except where noted; one test drives it.
class FaultHarness {
 public:
  FaultHarness(std::string name, HarnessOptions options);
  ~FaultHarness();

  // Starts the servers, migrates, starts the replicas and the subscriber,
  // and registers the devices.
  absl::Status Start();

  // Sends the load from several client threads; `fault` runs once on its own
  // thread when `fault_at` of the load was sent. Returns when every
  // notification was acknowledged (or the deadline passed).
  void RunLoad(const LoadOptions& load, const std::function<void()>& fault);

  // Waits for every delivery to settle, then compares.
  Figures Verify(absl::Duration settle_timeout = absl::Seconds(90));

  // --- faults and their repairs (thread-safe) ---
  HeraldProcess& replica(int i) { return *replicas_[i]; }
  int replica_count() const { return static_cast<int>(replicas_.size()); }
  // Keeps restarting replicas that died (as Kubernetes would) until Verify.
  void SuperviseReplicas();
  absl::Status StopBroker();
  absl::Status StartBroker();
  absl::Status RestartDatabase();
  // Drops every packet between Herald and the broker (or the database) on
  // loopback with iptables, without closing anything: a network partition.
  absl::Status CutBroker(bool cut);
  absl::Status CutDatabase(bool cut);
  TcpProxy* proxy() { return proxy_.get(); }
  const std::string& database_url() const { return database_url_; }
  // Peak resident memory of replica `i` so far, in bytes (from /proc).
  int64_t ResidentBytes(int i);

  // The acknowledged notification ids, by request index.
  std::vector<std::string> AcceptedIds();

  // Sends the same request to several replicas at once (idempotency race).
  absl::StatusOr<std::vector<std::string>> SendConcurrently(int request_index,
                                                            const std::vector<int>& replicas);

 private:
  absl::Status Servers(const std::string& action);
  absl::Status Iptables(bool add, int port);
  absl::Status RegisterDevices();
  void SendOne(int index, std::atomic<int64_t>* retries);

  const std::string name_;
  const HarnessOptions options_;
  std::string dir_;
  std::string database_url_;
  int mqtt_port_ = 0;
  int observer_port_ = 0;
  int pg_port_ = 0;
  std::unique_ptr<TcpProxy> proxy_;
  std::vector<std::unique_ptr<HeraldProcess>> replicas_;
  // One channel per replica: its port stays the same across restarts.
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::unique_ptr<MqttRecorder> recorder_;
  std::vector<int> cut_ports_;
  std::atomic<bool> supervising_{false};
  std::thread supervisor_;

  absl::Mutex mu_;
  std::vector<std::string> accepted_ ABSL_GUARDED_BY(mu_);
  int64_t client_retries_ = 0;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_FAULT_FAULT_HARNESS_H_
