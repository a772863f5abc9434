#include "service/metrics/herald_metrics.h"

#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace herald {
namespace {

// Debian's absl::string_view is not std::string_view.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

// 0.5 ms to 30 s: a local publish acknowledgement at the bottom, a command
// that waits for its device's retries at the top.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  return *buckets;
}

double Seconds(absl::Duration elapsed) {
  return elapsed < absl::ZeroDuration() ? 0.0 : absl::ToDoubleSeconds(elapsed);
}

std::string QosLabel(int qos) { return absl::StrCat(qos); }

// The children of one family, keyed by their label values, created on first
// use. prometheus::Family::Add takes the family's lock and builds a label
// map on every call; this cache makes a repeated label set a hash lookup
// under a reader lock.
template <typename T>
class Children {
 public:
  Children(prometheus::Family<T>& family, std::vector<std::string> label_names)
      : family_(family), label_names_(std::move(label_names)) {}

  // REQUIRES: values.size() == the number of label names.
  T& Get(std::initializer_list<std::string_view> values) {
    // Length-prefixed, so that no two label sets share a key.
    std::string key;
    for (std::string_view value : values) absl::StrAppend(&key, value.size(), ":", Av(value));
    {
      absl::ReaderMutexLock lock(&mu_);
      if (auto it = cache_.find(key); it != cache_.end()) return *it->second;
    }
    prometheus::Labels labels;
    auto name = label_names_.begin();
    for (std::string_view value : values) labels.emplace(*name++, std::string(value));
    T* child = AddChild(labels);
    absl::MutexLock lock(&mu_);
    // Family::Add returns the existing child for known labels, so a race
    // between two first uses yields the same pointer.
    return *cache_.try_emplace(std::move(key), child).first->second;
  }

 private:
  T* AddChild(const prometheus::Labels& labels) {
    if constexpr (std::is_same_v<T, prometheus::Histogram>) {
      return &family_.Add(labels, LatencyBuckets());
    } else {
      return &family_.Add(labels);
    }
  }

  prometheus::Family<T>& family_;
  const std::vector<std::string> label_names_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, T*> cache_ ABSL_GUARDED_BY(mu_);
};

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Histogram>& HistogramFamily(prometheus::Registry& registry,
                                                           const std::string& name,
                                                           const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry);
}

}  // namespace

struct HeraldMetrics::Impl {
  explicit Impl(prometheus::Registry& registry)
      : notifications_accepted(
            CounterFamily(registry, "herald_notifications_accepted_total",
                          "Notifications handled by SendNotification(s), by QoS and outcome "
                          "(accepted, duplicate, rejected, validated)."),
            {"qos", "outcome"}),
        notification_targets(
            CounterFamily(registry, "herald_notification_targets_total",
                          "Targets (resolved devices or topics) of accepted notifications."),
            {"qos"}),
        deliveries(CounterFamily(registry, "herald_deliveries_total",
                                 "Delivery attempts by provider, QoS and outcome (delivered, "
                                 "no_subscriber, retried, failed, expired)."),
                   {"provider", "qos", "outcome"}),
        delivery_latency(
            HistogramFamily(registry, "herald_delivery_latency_seconds",
                            "Time from accepting a notification to the broker's "
                            "acknowledgement of one target's message."),
            {"provider", "qos"}),
        publish_latency(HistogramFamily(registry, "herald_publish_latency_seconds",
                                        "Time from the publish call to the broker's "
                                        "acknowledgement."),
                        {"provider", "qos"}),
        commands(CounterFamily(registry, "herald_commands_total",
                               "SendCommand calls by outcome (succeeded, error, timed_out, "
                               "offline, rejected, unavailable, overloaded, cancelled)."),
                 {"outcome"}),
        command_duration(
            HistogramFamily(registry, "herald_command_duration_seconds",
                            "Round trip of a command, from its first publish to the device's "
                            "response.")
                .Add({}, LatencyBuckets())),
        commands_waiting(GaugeFamily(registry, "herald_commands_waiting",
                                     "SendCommand calls on this replica waiting for their "
                                     "device's response.")
                             .Add({})),
        command_responses(
            CounterFamily(registry, "herald_command_responses_total",
                          "Messages received on command response topics, by outcome (matched, "
                          "handed_over, duplicate, late, unknown, not_waiting_here, "
                          "wrong_device, malformed, dropped)."),
            {"outcome"}),
        presence_messages(CounterFamily(registry, "herald_presence_messages_total",
                                        "Presence messages received, by outcome (online, "
                                        "offline, not_applied, malformed, dropped)."),
                          {"outcome"}),
        auth_requests(CounterFamily(registry, "herald_auth_requests_total",
                                    "Calls by what authentication and admission decided "
                                    "(accepted, unauthenticated, permission_denied, "
                                    "unavailable, rate_limited)."),
                      {"outcome"}),
        auth_enabled(GaugeFamily(registry, "herald_auth_enabled",
                                 "1 when callers must present an API key; 0 when "
                                 "authentication is switched off.")
                         .Add({})),
        mqtt_connected(GaugeFamily(registry, "herald_mqtt_connected",
                                   "1 while connected to the MQTT broker, else 0.")
                           .Add({})),
        mqtt_connections(CounterFamily(registry, "herald_mqtt_connections_total",
                                       "Successful connections to the MQTT broker.")
                             .Add({})),
        mqtt_reconnects(CounterFamily(registry, "herald_mqtt_reconnects_total",
                                      "Reconnections to the MQTT broker after a lost "
                                      "connection.")
                            .Add({})),
        mqtt_in_flight(GaugeFamily(registry, "herald_mqtt_in_flight",
                                   "Publishes awaiting the broker's acknowledgement.")
                           .Add({})),
        deliveries_released(
            CounterFamily(registry, "herald_deliveries_released_total",
                          "Claimed deliveries given back to the outbox unpublished, due at "
                          "once for any replica, by reason (lease: held in memory until two "
                          "thirds of the lease passed; shutdown)."),
            {"reason"}),
        backlog(GaugeFamily(registry, "herald_backlog_deliveries",
                            "Pending targets not yet delivered, retried ones included.")
                    .Add({})),
        query_duration(HistogramFamily(registry, "herald_db_query_duration_seconds",
                                       "Duration of database operations, failed ones "
                                       "included."),
                       {"operation"}),
        query_errors(CounterFamily(registry, "herald_db_query_errors_total",
                                   "Database operations that failed."),
                     {"operation"}),
        rpcs_started(CounterFamily(registry, "grpc_server_started_total",
                                   "RPCs started on the server."),
                     {"grpc_type", "grpc_service", "grpc_method"}),
        rpcs_handled(CounterFamily(registry, "grpc_server_handled_total",
                                   "RPCs completed on the server, by status code."),
                     {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
        rpc_duration(HistogramFamily(registry, "grpc_server_handling_seconds",
                                     "Time from the start of an RPC to its completion on the "
                                     "server."),
                     {"grpc_type", "grpc_service", "grpc_method"}),
        build_info(GaugeFamily(registry, "herald_build_info",
                               "Always 1; its version label says which Herald is running.")) {}

  Children<prometheus::Counter> notifications_accepted;
  Children<prometheus::Counter> notification_targets;
  Children<prometheus::Counter> deliveries;
  Children<prometheus::Histogram> delivery_latency;
  Children<prometheus::Histogram> publish_latency;
  Children<prometheus::Counter> commands;
  prometheus::Histogram& command_duration;
  prometheus::Gauge& commands_waiting;
  Children<prometheus::Counter> command_responses;
  Children<prometheus::Counter> presence_messages;
  Children<prometheus::Counter> auth_requests;
  prometheus::Gauge& auth_enabled;
  prometheus::Gauge& mqtt_connected;
  prometheus::Counter& mqtt_connections;
  prometheus::Counter& mqtt_reconnects;
  prometheus::Gauge& mqtt_in_flight;
  Children<prometheus::Counter> deliveries_released;
  prometheus::Gauge& backlog;
  Children<prometheus::Histogram> query_duration;
  Children<prometheus::Counter> query_errors;
  Children<prometheus::Counter> rpcs_started;
  Children<prometheus::Counter> rpcs_handled;
  Children<prometheus::Histogram> rpc_duration;
  prometheus::Family<prometheus::Gauge>& build_info;

  // The provider's cumulative totals at the previous SetMqttConnection.
  absl::Mutex mqtt_mu;
  int64_t last_connections ABSL_GUARDED_BY(mqtt_mu) = 0;
  int64_t last_reconnects ABSL_GUARDED_BY(mqtt_mu) = 0;
};

HeraldMetrics::HeraldMetrics(prometheus::Registry& registry, std::string_view version)
    : impl_(std::make_unique<Impl>(registry)) {
  impl_->build_info.Add({{"version", std::string(version)}}).Set(1);
  // Known label sets exist from the start, so that rate() and ratios see a
  // zero rather than no series before the first event.
  for (int qos = 0; qos <= 2; ++qos) {
    const std::string qos_label = QosLabel(qos);
    for (std::string_view outcome : {kNotificationAccepted, kNotificationDuplicate,
                                     kNotificationRejected, kNotificationValidated}) {
      impl_->notifications_accepted.Get({qos_label, outcome});
    }
    impl_->notification_targets.Get({qos_label});
  }
  for (std::string_view outcome :
       {kCommandSucceeded, kCommandError, kCommandTimedOut, kCommandOffline, kCommandRejected,
        kCommandUnavailable, kCommandOverloaded, kCommandCancelled}) {
    impl_->commands.Get({outcome});
  }
  for (std::string_view outcome :
       {kResponseMatched, kResponseHandedOver, kResponseDuplicate, kResponseLate,
        kResponseUnknown, kResponseNotWaitingHere, kResponseWrongDevice, kResponseMalformed,
        kResponseDropped}) {
    impl_->command_responses.Get({outcome});
  }
  for (std::string_view outcome : {kPresenceOnline, kPresenceOffline, kPresenceNotApplied,
                                   kPresenceMalformed, kPresenceDropped}) {
    impl_->presence_messages.Get({outcome});
  }
  for (std::string_view outcome : {kAuthAccepted, kAuthUnauthenticated, kAuthPermissionDenied,
                                   kAuthUnavailable, kAuthRateLimited}) {
    impl_->auth_requests.Get({outcome});
  }
}

HeraldMetrics::~HeraldMetrics() = default;

void HeraldMetrics::NotificationAccepted(int qos, std::string_view outcome, int64_t targets) {
  const std::string qos_label = QosLabel(qos);
  impl_->notifications_accepted.Get({qos_label, outcome}).Increment();
  if (outcome == kNotificationAccepted && targets > 0) {
    impl_->notification_targets.Get({qos_label}).Increment(static_cast<double>(targets));
  }
}

void HeraldMetrics::DeliveryFinished(std::string_view provider, int qos, std::string_view outcome,
                                     std::optional<absl::Duration> since_accept,
                                     std::optional<absl::Duration> since_publish) {
  const std::string qos_label = QosLabel(qos);
  impl_->deliveries.Get({provider, qos_label, outcome}).Increment();
  if (since_accept.has_value()) {
    impl_->delivery_latency.Get({provider, qos_label}).Observe(Seconds(*since_accept));
  }
  if (since_publish.has_value()) {
    impl_->publish_latency.Get({provider, qos_label}).Observe(Seconds(*since_publish));
  }
}

void HeraldMetrics::CommandFinished(std::string_view outcome,
                                    std::optional<absl::Duration> round_trip) {
  impl_->commands.Get({outcome}).Increment();
  if (round_trip.has_value()) impl_->command_duration.Observe(Seconds(*round_trip));
}

void HeraldMetrics::SetCommandsWaiting(int64_t waiting) {
  impl_->commands_waiting.Set(static_cast<double>(waiting));
}

void HeraldMetrics::CommandResponseReceived(std::string_view outcome) {
  impl_->command_responses.Get({outcome}).Increment();
}

void HeraldMetrics::PresenceReceived(std::string_view outcome) {
  impl_->presence_messages.Get({outcome}).Increment();
}

void HeraldMetrics::CallAdmitted(std::string_view outcome) {
  impl_->auth_requests.Get({outcome}).Increment();
}

void HeraldMetrics::SetAuthEnabled(bool enabled) { impl_->auth_enabled.Set(enabled ? 1 : 0); }

void HeraldMetrics::SetMqttConnection(bool connected, int64_t connections, int64_t reconnects,
                                      int64_t in_flight) {
  impl_->mqtt_connected.Set(connected ? 1 : 0);
  impl_->mqtt_in_flight.Set(static_cast<double>(in_flight));
  // Delta of a cumulative total; a smaller total means the source restarted
  // from zero, so all of it is new.
  auto advance = [](int64_t& last, int64_t total) {
    const int64_t delta = total >= last ? total - last : total;
    last = total;
    return delta;
  };
  int64_t new_connections;
  int64_t new_reconnects;
  {
    absl::MutexLock lock(&impl_->mqtt_mu);
    new_connections = advance(impl_->last_connections, connections);
    new_reconnects = advance(impl_->last_reconnects, reconnects);
  }
  if (new_connections > 0) impl_->mqtt_connections.Increment(static_cast<double>(new_connections));
  if (new_reconnects > 0) impl_->mqtt_reconnects.Increment(static_cast<double>(new_reconnects));
}

void HeraldMetrics::DeliveriesReleased(std::string_view reason, int64_t count) {
  impl_->deliveries_released.Get({reason}).Increment(static_cast<double>(count));
}

void HeraldMetrics::SetBacklog(int64_t pending_deliveries) {
  impl_->backlog.Set(static_cast<double>(pending_deliveries));
}

void HeraldMetrics::RpcStarted(std::string_view type, std::string_view service,
                               std::string_view method) {
  impl_->rpcs_started.Get({type, service, method}).Increment();
}

void HeraldMetrics::RpcHandled(std::string_view type, std::string_view service,
                               std::string_view method, std::string_view code,
                               absl::Duration elapsed) {
  impl_->rpcs_handled.Get({type, service, method, code}).Increment();
  impl_->rpc_duration.Get({type, service, method}).Observe(Seconds(elapsed));
}

void HeraldMetrics::RpcHandled(std::string_view type, std::string_view service,
                               std::string_view method, absl::StatusCode code,
                               absl::Duration elapsed) {
  std::string name = absl::StatusCodeToString(code);
  if (name.empty()) name = "UNKNOWN";  // a number outside the canonical codes
  RpcHandled(type, service, method, name, elapsed);
}

void HeraldMetrics::ObserveQuery(std::string_view operation, absl::Duration elapsed, bool ok) {
  impl_->query_duration.Get({operation}).Observe(Seconds(elapsed));
  // Created on success too, so error ratios have a zero to start from.
  prometheus::Counter& errors = impl_->query_errors.Get({operation});
  if (!ok) errors.Increment();
}

}  // namespace herald
