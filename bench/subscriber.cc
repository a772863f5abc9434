// bench/subscriber: the benchmark's stand-in for the device fleet's
// receiving side. It subscribes to the device topics on the broker's
// observer listener, timestamps every message on arrival, and reports how
// many arrived (distinct, duplicates, lost against the expected count),
// the delivered rate over the steady window, and the latency from the
// sender's RPC start (carried in the payload, bench_payload.h) to receipt.
//
//   subscriber --uri=tcp://127.0.0.1:PORT --qos=1 --ready_file=sub.ready --out=sub.json
//   (then, once the load is sent, write the expected number of distinct
//    messages on its stdin and close it; EOF without a number stops it.)
//
// The MQTT client is libmosquitto when the build found it (the default,
// --client=auto), else Paho MQTT C++; --client=paho picks Paho, the library
// Herald uses. Why libmosquitto by default: see MosquittoReceiver.
//
// It stops when every expected message has arrived, when nothing new
// arrived for --idle_seconds after the expectation was given, on SIGTERM
// or SIGINT, or after --max_seconds; it writes its JSON in every case.
#include <signal.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "bench/common/bench_clock.h"
#include "bench/common/bench_payload.h"
#include "bench/common/bench_stats.h"
#include "bench/common/mqtt_connect.h"
#include "bench/common/payload_fields.h"
#ifdef HERALD_BENCH_HAVE_LIBMOSQUITTO
#include <mosquitto.h>
#include <mqtt_protocol.h>
#endif

ABSL_FLAG(std::string, uri, "tcp://127.0.0.1:1883", "Broker to subscribe on (the observer listener).");
ABSL_FLAG(int, qos, 1, "Subscription QoS: 0, 1 or 2.");
ABSL_FLAG(std::string, filters, "devices/+/notifications,devices/+/commands,bench/#",
          "Comma-separated topic filters.");
ABSL_FLAG(int, receive_maximum, 0,
          "MQTT 5 Receive Maximum: QoS 1/2 messages in flight from the broker; 0 = the "
          "protocol's default, 65,535 (the broker caps it: max_inflight_messages).");
ABSL_FLAG(std::string, client, "auto",
          "MQTT client library: mosquitto (libmosquitto; the default when built with it) or "
          "paho (Paho MQTT C++, as Herald).");
ABSL_FLAG(int, connections, 1, "MQTT connections sharing the subscriptions ($share/...).");
ABSL_FLAG(std::string, client_id, "", "MQTT client id; empty picks one.");
ABSL_FLAG(std::string, ready_file, "", "Created once the subscriptions are acknowledged.");
ABSL_FLAG(std::string, out, "-", "Where the JSON results go (- = stdout).");
ABSL_FLAG(double, idle_seconds, 10, "Give up this long after the last new message once the "
                                    "expected count is known.");
ABSL_FLAG(double, max_seconds, 900, "Stop after this long whatever happens.");
ABSL_FLAG(double, steady_trim, 0.05, "Fraction of messages left out at each end of the steady "
                                     "window (ramp-up and tail).");

namespace herald::bench {
namespace {

std::atomic<bool> g_stop_signal{false};

void OnSignal(int) { g_stop_signal.store(true); }

// What arrived. Messages come in on each connection's network thread; the
// main thread polls the counters and reads the rest after disconnecting.
class Tally {
 public:
  // Called on a client library's network thread for every message.
  void OnMessage(std::string_view topic, std::string_view payload) {
    const int64_t now = MonotonicNs();
    const std::optional<std::string_view> key = FindJsonString(payload, kKeyKey);
    const std::optional<int64_t> start = FindJsonInt(payload, kStartKey);
    absl::MutexLock lock(&mu_);
    ++received_;
    if (!key.has_value() || !start.has_value()) {
      ++foreign_;
      return;
    }
    std::string id(topic);
    id.push_back('|');
    id.append(*key);
    if (!seen_.insert(std::move(id)).second) {
      ++duplicates_;
      return;
    }
    payload_bytes_ += static_cast<int64_t>(payload.size());
    receipts_.push_back(now);
    latencies_.push_back(now - *start);
    first_start_ = std::min(first_start_, *start);
    distinct_.store(static_cast<int64_t>(receipts_.size()), std::memory_order_relaxed);
    last_receipt_.store(now, std::memory_order_relaxed);
  }

  int64_t distinct() const { return distinct_.load(std::memory_order_relaxed); }
  int64_t last_receipt() const { return last_receipt_.load(std::memory_order_relaxed); }

  void Report(ResultWriter& out, int64_t expected) {
    absl::MutexLock lock(&mu_);
    const int64_t distinct = static_cast<int64_t>(receipts_.size());
    out.Set("received", static_cast<double>(received_));
    out.Set("distinct", static_cast<double>(distinct));
    out.Set("duplicates", static_cast<double>(duplicates_));
    out.Set("foreign", static_cast<double>(foreign_));
    out.Set("expected", static_cast<double>(expected));
    out.Set("lost", static_cast<double>(expected > distinct ? expected - distinct : 0));
    out.Set("unexpected", static_cast<double>(expected >= 0 && distinct > expected ? distinct - expected : 0));
    out.Set("payload_bytes_mean",
            distinct > 0 ? static_cast<double>(payload_bytes_) / static_cast<double>(distinct) : 0.0);
    // Steady window: leave out the ramp-up and the tail, where fewer
    // senders or a last straggler distort the rate.
    double steady_rate = 0;
    double steady_seconds = 0;
    int64_t steady_messages = 0;
    if (distinct >= 2) {
      size_t lo = 0;
      size_t hi = receipts_.size() - 1;
      if (distinct >= 1000) {
        const double trim = absl::GetFlag(FLAGS_steady_trim);
        lo = static_cast<size_t>(trim * static_cast<double>(distinct));
        hi = static_cast<size_t>((1.0 - trim) * static_cast<double>(distinct)) - 1;
      }
      steady_messages = static_cast<int64_t>(hi - lo);
      steady_seconds = NsToSeconds(receipts_[hi] - receipts_[lo]);
      if (steady_seconds > 0) steady_rate = static_cast<double>(steady_messages) / steady_seconds;
    }
    out.Set("delivered_per_s", steady_rate);
    out.Set("steady_seconds", steady_seconds);
    out.Set("steady_messages", static_cast<double>(steady_messages));
    // End to end: from the first RPC (or publish) start to the last receipt.
    double e2e_seconds = 0;
    if (distinct > 0) e2e_seconds = NsToSeconds(receipts_.back() - first_start_);
    out.Set("end_to_end_seconds", e2e_seconds);
    out.Set("end_to_end_per_s", e2e_seconds > 0 ? static_cast<double>(distinct) / e2e_seconds : 0.0);
    out.Set("latency_ms", LatencySummary(latencies_));
  }

 private:
  absl::Mutex mu_;
  absl::flat_hash_set<std::string> seen_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> receipts_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> latencies_ ABSL_GUARDED_BY(mu_);
  int64_t received_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t duplicates_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t foreign_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t payload_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t first_start_ ABSL_GUARDED_BY(mu_) = INT64_MAX;
  std::atomic<int64_t> distinct_{0};
  std::atomic<int64_t> last_receipt_{0};
};

// The MQTT side: connects, subscribes and feeds every message to the tally.
class Receiver {
 public:
  virtual ~Receiver() = default;
  // Returns once every subscription is acknowledged.
  virtual absl::Status Start(const std::vector<std::string>& filters, int qos) = 0;
  // Disconnects; no message reaches the tally afterwards.
  virtual void Stop() = 0;
};

// Each of `connections` connections subscribes to "$share/<client id>/<filter>"
// when there are several, so that the broker spreads the messages among them.
std::string FilterFor(const std::string& filter, const std::string& client_id, int connections) {
  return connections > 1 ? absl::StrCat("$share/", client_id, "/", filter) : filter;
}

// Paho MQTT C++ (async), the library Herald itself uses.
class PahoReceiver : public Receiver {
 public:
  PahoReceiver(Tally& tally, std::string client_id, int connections)
      : tally_(tally), client_id_(std::move(client_id)), connections_(connections) {}

  absl::Status Start(const std::vector<std::string>& filters, int qos) override {
    for (int i = 0; i < connections_; ++i) {
      absl::StatusOr<std::unique_ptr<mqtt::async_client>> client = ConnectMqtt(
          absl::GetFlag(FLAGS_uri), absl::StrCat(client_id_, "-", i),
          {.max_in_flight = 1000,
           .receive_maximum = absl::GetFlag(FLAGS_receive_maximum),
           .on_message = [this](mqtt::const_message_ptr message) {
             tally_.OnMessage(message->get_topic(), message->get_payload_str());
           }});
      if (!client.ok()) return client.status();
      clients_.push_back(*std::move(client));
    }
    try {
      for (auto& client : clients_) {
        for (const std::string& filter : filters) {
          client->subscribe(FilterFor(filter, client_id_, connections_), qos)->wait();
        }
      }
    } catch (const mqtt::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot subscribe: ", e.what()));
    }
    return absl::OkStatus();
  }

  void Stop() override {
    for (auto& client : clients_) DisconnectMqtt(*client);
  }

 private:
  Tally& tally_;
  const std::string client_id_;
  const int connections_;
  std::vector<std::unique_ptr<mqtt::async_client>> clients_;
};

#ifdef HERALD_BENCH_HAVE_LIBMOSQUITTO
// libmosquitto, the broker project's own client. The default, because the
// subscriber must never be what limits a run: with Paho C receiving at
// QoS 2, a moment's backlog (the subscriber briefly descheduled on the
// shared cores) makes every later packet slower on both sides (Paho C's
// receive thread and Mosquitto's in-flight search, db__message_update_outgoing)
// and the run collapses to 1,000-3,000 messages a second with tens of
// seconds of latency, in about half the runs; libmosquitto receives the
// same load at about half of Paho's CPU and catches up
// (docs/performance.md).
class MosquittoReceiver : public Receiver {
 public:
  MosquittoReceiver(Tally& tally, std::string client_id, int connections)
      : tally_(tally), client_id_(std::move(client_id)), connections_(connections) {
    mosquitto_lib_init();
  }
  ~MosquittoReceiver() override {
    Stop();
    mosquitto_lib_cleanup();
  }

  absl::Status Start(const std::vector<std::string>& filters, int qos) override {
    std::string address = absl::GetFlag(FLAGS_uri);
    for (const char* scheme : {"tcp://", "mqtt://"}) {
      if (absl::StartsWith(address, scheme)) address = address.substr(strlen(scheme));
    }
    const size_t colon = address.rfind(':');
    int port = 1883;
    if (colon != std::string::npos && !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
      return absl::InvalidArgumentError(absl::StrCat("bad port in ", absl::GetFlag(FLAGS_uri)));
    }
    const std::string host = address.substr(0, colon);
    filters_ = filters;
    qos_ = qos;
    for (int i = 0; i < connections_; ++i) {
      mosquitto* client = mosquitto_new(absl::StrCat(client_id_, "-", i).c_str(), true, this);
      if (client == nullptr) return absl::InternalError("mosquitto_new failed");
      clients_.push_back(client);
      mosquitto_int_option(client, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
      // libmosquitto's own default (20), and 100 too, stall QoS 2 against
      // Mosquitto 2.0.11 after a few hundred messages (PUBRECs go
      // unanswered); the protocol's default (65,535, as Paho sends) does not.
      const int receive_maximum = absl::GetFlag(FLAGS_receive_maximum);
      mosquitto_int_option(client, MOSQ_OPT_RECEIVE_MAXIMUM,
                           receive_maximum > 0 ? receive_maximum : 65535);
      mosquitto_connect_v5_callback_set(client, &MosquittoReceiver::OnConnect);
      mosquitto_subscribe_v5_callback_set(client, &MosquittoReceiver::OnSubscribe);
      mosquitto_message_v5_callback_set(client, &MosquittoReceiver::OnMessage);
      if (const int rc = mosquitto_connect(client, host.c_str(), port, 60); rc != MOSQ_ERR_SUCCESS) {
        return absl::UnavailableError(
            absl::StrCat("cannot connect to ", absl::GetFlag(FLAGS_uri), ": ", mosquitto_strerror(rc)));
      }
      if (const int rc = mosquitto_loop_start(client); rc != MOSQ_ERR_SUCCESS) {
        return absl::InternalError(absl::StrCat("mosquitto_loop_start: ", mosquitto_strerror(rc)));
      }
    }
    absl::MutexLock lock(&mu_);
    want_ = connections_ * static_cast<int>(filters.size());
    const bool done = mu_.AwaitWithTimeout(
        absl::Condition(
            +[](MosquittoReceiver* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
              return self->subscribed_ >= self->want_ || !self->error_.empty();
            },
            this),
        absl::Seconds(10));
    if (!error_.empty()) return absl::UnavailableError(error_);
    if (!done) return absl::DeadlineExceededError("subscriptions not acknowledged in 10 s");
    return absl::OkStatus();
  }

  void Stop() override {
    for (mosquitto* client : clients_) {
      mosquitto_disconnect(client);
      mosquitto_loop_stop(client, false);
      mosquitto_destroy(client);
    }
    clients_.clear();
  }

 private:
  static void OnConnect(mosquitto* client, void* self_ptr, int rc, int, const mosquitto_property*) {
    auto* self = static_cast<MosquittoReceiver*>(self_ptr);
    if (rc != 0) {
      absl::MutexLock lock(&self->mu_);
      self->error_ = absl::StrCat("connection refused: ", mosquitto_reason_string(rc));
      return;
    }
    for (const std::string& filter : self->filters_) {
      mosquitto_subscribe(client, nullptr,
                          FilterFor(filter, self->client_id_, self->connections_).c_str(), self->qos_);
    }
  }

  static void OnSubscribe(mosquitto*, void* self_ptr, int, int count, const int* granted,
                          const mosquitto_property*) {
    auto* self = static_cast<MosquittoReceiver*>(self_ptr);
    absl::MutexLock lock(&self->mu_);
    for (int i = 0; i < count; ++i) {
      if (granted[i] >= 0x80) self->error_ = "subscription refused by the broker";
    }
    ++self->subscribed_;
  }

  static void OnMessage(mosquitto*, void* self_ptr, const mosquitto_message* message,
                        const mosquitto_property*) {
    auto* self = static_cast<MosquittoReceiver*>(self_ptr);
    self->tally_.OnMessage(
        message->topic,
        std::string_view(static_cast<const char*>(message->payload),
                         static_cast<size_t>(message->payloadlen)));
  }

  Tally& tally_;
  const std::string client_id_;
  const int connections_;
  std::vector<std::string> filters_;
  int qos_ = 0;
  std::vector<mosquitto*> clients_;
  absl::Mutex mu_;
  int subscribed_ ABSL_GUARDED_BY(mu_) = 0;
  int want_ ABSL_GUARDED_BY(mu_) = 0;
  std::string error_ ABSL_GUARDED_BY(mu_);
};
#endif  // HERALD_BENCH_HAVE_LIBMOSQUITTO

int Run() {
  const int qos = absl::GetFlag(FLAGS_qos);
  std::string client_id = absl::GetFlag(FLAGS_client_id);
  if (client_id.empty()) client_id = absl::StrCat("bench-subscriber-", getpid());
  const int connections = std::max(1, absl::GetFlag(FLAGS_connections));

  Tally tally;
  std::string library = absl::GetFlag(FLAGS_client);
  std::unique_ptr<Receiver> receiver;
#ifdef HERALD_BENCH_HAVE_LIBMOSQUITTO
  if (library == "auto") library = "mosquitto";
  if (library == "mosquitto") receiver = std::make_unique<MosquittoReceiver>(tally, client_id, connections);
#else
  if (library == "auto") library = "paho";
#endif
  if (library == "paho") receiver = std::make_unique<PahoReceiver>(tally, client_id, connections);
  if (receiver == nullptr) {
    std::cerr << "subscriber: --client=" << library << " is not available in this build\n";
    return 2;
  }
  const std::vector<std::string> filters =
      absl::StrSplit(absl::GetFlag(FLAGS_filters), ',', absl::SkipEmpty());
  if (absl::Status started = receiver->Start(filters, qos); !started.ok()) {
    std::cerr << "subscriber: " << started.message() << "\n";
    return 1;
  }
  const double cpu_at_start = ProcessCpuSeconds();
  if (const std::string ready = absl::GetFlag(FLAGS_ready_file); !ready.empty()) {
    std::ofstream(ready) << "ready\n";
  }

  // The expected count arrives on stdin once the load is sent.
  std::atomic<int64_t> expected{-1};
  std::atomic<int64_t> expected_at{0};
  std::atomic<bool> stdin_closed{false};
  std::thread reader([&] {
    std::string line;
    while (std::getline(std::cin, line)) {
      int64_t n = 0;
      if (absl::SimpleAtoi(line, &n)) {
        expected_at.store(MonotonicNs());
        expected.store(n);
      }
    }
    stdin_closed.store(true);
  });
  reader.detach();

  const int64_t started = MonotonicNs();
  const int64_t max_ns = static_cast<int64_t>(absl::GetFlag(FLAGS_max_seconds) * 1e9);
  const int64_t idle_ns = static_cast<int64_t>(absl::GetFlag(FLAGS_idle_seconds) * 1e9);
  std::string end_reason;
  while (end_reason.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const int64_t now = MonotonicNs();
    const int64_t want = expected.load();
    if (want >= 0 && tally.distinct() >= want) {
      end_reason = "complete";
    } else if (want >= 0 && now - std::max(tally.last_receipt(), expected_at.load()) > idle_ns) {
      end_reason = "idle";
    } else if (want < 0 && stdin_closed.load()) {
      end_reason = "stopped";
    } else if (g_stop_signal.load()) {
      end_reason = "signal";
    } else if (now - started > max_ns) {
      end_reason = "max_seconds";
    }
  }
  const double cpu_seconds = ProcessCpuSeconds() - cpu_at_start;
  receiver->Stop();

  ResultWriter out;
  out.Set("qos", static_cast<double>(qos));
  out.Set("client", library);
  out.Set("connections", static_cast<double>(connections));
  out.Set("end_reason", end_reason);
  out.Set("complete", end_reason == "complete");
  tally.Report(out, expected.load());
  out.Set("cpu_seconds", cpu_seconds);
  if (absl::Status written = out.WriteTo(absl::GetFlag(FLAGS_out)); !written.ok()) {
    std::cerr << "subscriber: " << written.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace herald::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Counts and timestamps the benchmark's MQTT messages.");
  absl::ParseCommandLine(argc, argv);
  // Debian builds Abseil without NDEBUG, which keeps absl::Mutex's lock
  // order graph on for every acquisition: CPU the harness would take from
  // the processes it measures (service/main.cc does the same).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  signal(SIGTERM, herald::bench::OnSignal);
  signal(SIGINT, herald::bench::OnSignal);
  return herald::bench::Run();
}
