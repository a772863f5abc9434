// bench/ceiling: the bare Paho C++ async publisher that Herald is measured
// against. It sends the same payload (bench_payload.h: Herald's JSON shape
// and size) to the same topics (devices/dev-NNNNNN/notifications over
// --topics distinct devices) on the same broker, at the given QoS, with an
// in-flight window like Herald's, so that the subscriber's delivered/s for
// this program is the most any publisher on this broker and machine gets.
// It reports its own CPU time, the yardstick for Herald's CPU per message.
//
//   ceiling --uri=tcp://127.0.0.1:PORT --qos=1 --count=100000 --out=ceiling.json
//   ceiling ... --rate=1000     # paced instead of as fast as the window allows
#include <atomic>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/common/bench_clock.h"
#include "bench/common/bench_payload.h"
#include "bench/common/bench_stats.h"
#include "bench/common/mqtt_connect.h"

ABSL_FLAG(std::string, uri, "tcp://127.0.0.1:1883", "Broker to publish to.");
ABSL_FLAG(int, qos, 1, "Publish QoS: 0, 1 or 2.");
ABSL_FLAG(int64_t, count, 100000, "Messages to publish.");
ABSL_FLAG(int64_t, topics, 10000, "Distinct device topics, used round-robin.");
ABSL_FLAG(int, in_flight, 100, "Publishes awaiting their acknowledgement, at most.");
ABSL_FLAG(double, rate, 0, "Messages per second; 0 = as fast as the window allows.");
ABSL_FLAG(std::string, run_tag, "c", "Prefix of each message's bench key.");
ABSL_FLAG(std::string, out, "-", "Where the JSON results go (- = stdout).");

namespace herald::bench {
namespace {

// Bounds the publishes awaiting their acknowledgement; Paho calls back on
// its own thread, the publishing loop waits on the main thread.
class Window : public mqtt::iaction_listener {
 public:
  explicit Window(int size) : size_(size) {}

  void Acquire() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](Window* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) { return w->in_flight_ < w->size_; },
        this));
    ++in_flight_;
  }

  // Waits until nothing is in flight, up to `timeout`; false on timeout.
  bool Drain(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        absl::Condition(
            +[](Window* w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(w->mu_) { return w->in_flight_ == 0; },
            this),
        timeout);
  }

  void on_success(const mqtt::token&) override { Release(true); }
  void on_failure(const mqtt::token&) override { Release(false); }

  // Frees one slot: the publish was acknowledged (`ok`) or failed.
  void Release(bool ok) {
    (ok ? acked_ : failed_).fetch_add(1);
    absl::MutexLock lock(&mu_);
    --in_flight_;
  }

  int64_t acked() const { return acked_.load(); }
  int64_t failed() const { return failed_.load(); }

 private:

  const int size_;
  absl::Mutex mu_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> failed_{0};
};

int Run() {
  const int qos = absl::GetFlag(FLAGS_qos);
  const int64_t count = absl::GetFlag(FLAGS_count);
  const int64_t topics = std::max<int64_t>(1, absl::GetFlag(FLAGS_topics));
  const int window_size = absl::GetFlag(FLAGS_in_flight);
  const double rate = absl::GetFlag(FLAGS_rate);
  const std::string tag = absl::GetFlag(FLAGS_run_tag);

  absl::StatusOr<std::unique_ptr<mqtt::async_client>> client =
      ConnectMqtt(absl::GetFlag(FLAGS_uri), absl::StrCat("bench-ceiling-", getpid()),
                  {.max_in_flight = window_size, .max_buffered = window_size + 10});
  if (!client.ok()) {
    std::cerr << "ceiling: " << client.status().message() << "\n";
    return 1;
  }
  Window window(window_size);
  const double cpu_at_start = ProcessCpuSeconds();
  const int64_t started = MonotonicNs();
  int64_t sent = 0;
  int64_t refused = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (rate > 0) {
      const int64_t due = started + static_cast<int64_t>(static_cast<double>(i) * 1e9 / rate);
      const int64_t wait = due - MonotonicNs();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    }
    window.Acquire();
    const std::string payload = HeraldLikePayload(absl::StrCat(tag, "-", i), MonotonicNs());
    try {
      (*client)->publish(mqtt::make_message(NotificationTopic(i % topics), payload, qos, false),
                         nullptr, window);
      ++sent;
    } catch (const mqtt::exception& e) {
      ++refused;
      window.Release(false);
      if (refused == 1) std::cerr << "ceiling: publish refused: " << e.what() << "\n";
    }
  }
  const bool drained = window.Drain(absl::Seconds(60));
  const int64_t finished = MonotonicNs();
  const double cpu_seconds = ProcessCpuSeconds() - cpu_at_start;
  DisconnectMqtt(**client);

  const double seconds = NsToSeconds(finished - started);
  ResultWriter out;
  out.Set("qos", static_cast<double>(qos));
  out.Set("count", static_cast<double>(count));
  out.Set("sent", static_cast<double>(sent));
  out.Set("acked", static_cast<double>(window.acked()));
  out.Set("failed", static_cast<double>(window.failed()));
  out.Set("drained", drained);
  out.Set("seconds", seconds);
  out.Set("published_per_s", seconds > 0 ? static_cast<double>(window.acked()) / seconds : 0.0);
  out.Set("in_flight", static_cast<double>(window_size));
  out.Set("rate", rate);
  out.Set("payload_bytes", static_cast<double>(HeraldLikePayload(absl::StrCat(tag, "-", 0), started).size()));
  out.Set("cpu_seconds", cpu_seconds);
  out.Set("cpu_seconds_per_10k",
          window.acked() > 0 ? cpu_seconds * 1e4 / static_cast<double>(window.acked()) : 0.0);
  if (absl::Status written = out.WriteTo(absl::GetFlag(FLAGS_out)); !written.ok()) {
    std::cerr << "ceiling: " << written.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("A bare Paho publisher: the broker's ceiling for the benchmark.");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which keeps absl::Mutex's lock
  // order graph on for every acquisition: CPU the harness would take from
  // the processes it measures (service/main.cc does the same).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return herald::bench::Run();
}
