// HeraldMetrics: every Prometheus family Herald exports, behind methods that
// take plain C++ values, so the rest of the service reports what happened
// without including prometheus-cpp. The names and labels are the contract of
// PRODUCT.md section 5: dashboards and alerts depend on them.
//
// The families live in an injected prometheus::Registry (MetricsServer serves
// it at /metrics; tests build a fresh one and Collect() it).
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   herald::HeraldMetrics metrics(*registry, /*version=*/"0.1.0");
//   metrics.NotificationAccepted(1, herald::kNotificationAccepted, 250);
//   metrics.DeliveryFinished("mqtt", 1, herald::kDeliveryDelivered,
//                            /*since_accept=*/absl::Milliseconds(12),
//                            /*since_publish=*/absl::Milliseconds(3));
//   metrics.RpcHandled("unary", "herald.v1.NotificationService", "SendNotification",
//                      absl::StatusCode::kOk, elapsed);
//
// Families (durations are histograms in seconds, buckets 0.5 ms .. 30 s):
//   herald_notifications_accepted_total{qos,outcome}
//   herald_notification_targets_total{qos}
//   herald_deliveries_total{provider,qos,outcome}
//   herald_delivery_latency_seconds{provider,qos}     accept -> broker ack
//   herald_publish_latency_seconds{provider,qos}      publish -> broker ack
//   herald_commands_total{outcome}, herald_command_duration_seconds
//   herald_commands_waiting
//   herald_command_responses_total{outcome}
//   herald_presence_messages_total{outcome}
//   herald_mqtt_connected, herald_mqtt_connections_total,
//   herald_mqtt_reconnects_total, herald_mqtt_in_flight
//   herald_backlog_deliveries, herald_deliveries_released_total{reason}
//   herald_db_query_duration_seconds{operation}, herald_db_query_errors_total{operation}
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}
//   herald_build_info{version}
#ifndef HERALD_SERVICE_METRICS_HERALD_METRICS_H_
#define HERALD_SERVICE_METRICS_HERALD_METRICS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/core/query_observer.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace herald {

// Values of the `outcome` label of herald_notifications_accepted_total.
inline constexpr std::string_view kNotificationAccepted = "accepted";    // stored, will be sent
inline constexpr std::string_view kNotificationDuplicate = "duplicate";  // idempotency key seen
inline constexpr std::string_view kNotificationRejected = "rejected";    // invalid or unresolved
inline constexpr std::string_view kNotificationValidated = "validated";  // validate_only

// Values of the `outcome` label of herald_deliveries_total.
inline constexpr std::string_view kDeliveryDelivered = "delivered";
inline constexpr std::string_view kDeliveryNoSubscriber = "no_subscriber";
inline constexpr std::string_view kDeliveryRetried = "retried";  // failed, will be retried
inline constexpr std::string_view kDeliveryFailed = "failed";    // out of attempts or refused
inline constexpr std::string_view kDeliveryExpired = "expired";  // TTL passed before sending

// Values of the `outcome` label of herald_commands_total: how a SendCommand
// call ended.
inline constexpr std::string_view kCommandSucceeded = "succeeded";  // device said "success"
inline constexpr std::string_view kCommandError = "error";          // device said otherwise
inline constexpr std::string_view kCommandTimedOut = "timed_out";   // no answer in time
inline constexpr std::string_view kCommandOffline = "offline";      // refused: device offline
inline constexpr std::string_view kCommandRejected = "rejected";    // invalid, unknown device...
inline constexpr std::string_view kCommandUnavailable = "unavailable";  // broker or database down
inline constexpr std::string_view kCommandOverloaded = "overloaded";    // too many waiting
inline constexpr std::string_view kCommandCancelled = "cancelled";  // caller went away, shutdown

// Values of the `outcome` label of herald_command_responses_total: what
// became of each message on a response topic that this replica received.
inline constexpr std::string_view kResponseMatched = "matched";  // answered a waiting command
inline constexpr std::string_view kResponseHandedOver = "handed_over";  // to another replica
inline constexpr std::string_view kResponseDuplicate = "duplicate";  // command already answered
inline constexpr std::string_view kResponseLate = "late";            // command already timed out
inline constexpr std::string_view kResponseUnknown = "unknown";      // no such request id
// MQTT 3.1.1 (no shared subscription): every replica sees every response,
// and this one has no caller waiting for it.
inline constexpr std::string_view kResponseNotWaitingHere = "not_waiting_here";
inline constexpr std::string_view kResponseWrongDevice = "wrong_device";  // topic names another
inline constexpr std::string_view kResponseMalformed = "malformed";  // not a valid response
inline constexpr std::string_view kResponseDropped = "dropped";  // hand-over failed or overloaded

// Values of the `outcome` label of herald_presence_messages_total.
inline constexpr std::string_view kPresenceOnline = "online";    // applied: online
inline constexpr std::string_view kPresenceOffline = "offline";  // applied: offline
// A valid message that changed nothing: unknown device, a metadata value
// that differs from the topic's, or older than what is stored.
inline constexpr std::string_view kPresenceNotApplied = "not_applied";
inline constexpr std::string_view kPresenceMalformed = "malformed";  // payload or topic invalid
inline constexpr std::string_view kPresenceDropped = "dropped";  // queue full or write failed

// Values of the `outcome` label of herald_auth_requests_total: how a call's
// API key was judged.
inline constexpr std::string_view kAuthAccepted = "accepted";
inline constexpr std::string_view kAuthUnauthenticated = "unauthenticated";  // missing, wrong, revoked
inline constexpr std::string_view kAuthPermissionDenied = "permission_denied";  // scope missing
inline constexpr std::string_view kAuthUnavailable = "unavailable";  // key not checkable now
inline constexpr std::string_view kAuthRateLimited = "rate_limited";  // tenant over its limit

// Values of the `grpc_type` label.
inline constexpr std::string_view kGrpcUnary = "unary";
inline constexpr std::string_view kGrpcClientStream = "client_stream";
inline constexpr std::string_view kGrpcServerStream = "server_stream";
inline constexpr std::string_view kGrpcBidiStream = "bidi_stream";

// Thread-safe: every method may be called from any thread. Label children are
// created on first use and cached, so a repeated label set costs a hash
// lookup under a reader lock. Methods never fail: metrics must not break the
// service.
class HeraldMetrics final : public QueryObserver {
 public:
  // Registers the families in `registry` and sets herald_build_info{version}
  // to 1. REQUIRES: `registry` outlives this object and holds none of these
  // families yet (with its default InsertBehavior::Merge, prometheus-cpp
  // would share a family of the same name and type, and throws
  // std::invalid_argument for any other clash). One HeraldMetrics per
  // registry.
  HeraldMetrics(prometheus::Registry& registry, std::string_view version);
  ~HeraldMetrics() override;

  HeraldMetrics(const HeraldMetrics&) = delete;
  HeraldMetrics& operator=(const HeraldMetrics&) = delete;

  // A SendNotification(s) request for one notification ended with `outcome`
  // (kNotification*). `targets` resolved targets are added to
  // herald_notification_targets_total only when the outcome is "accepted":
  // duplicates and validate-only requests send nothing.
  void NotificationAccepted(int qos, std::string_view outcome, int64_t targets);

  // One delivery attempt of one target ended with `outcome` (kDelivery*).
  // `since_accept` (notification accepted -> broker acknowledgement) and
  // `since_publish` (publish call -> acknowledgement) are observed when
  // given; give them only for acknowledged publishes (delivered,
  // no_subscriber). Negative durations (clock steps) count as zero.
  void DeliveryFinished(std::string_view provider, int qos, std::string_view outcome,
                        std::optional<absl::Duration> since_accept,
                        std::optional<absl::Duration> since_publish);

  // A SendCommand ended with `outcome` (kCommand*); `round_trip` is first
  // publish -> device response, when there was one.
  void CommandFinished(std::string_view outcome, std::optional<absl::Duration> round_trip);

  // SendCommand calls on this replica waiting for their device right now.
  void SetCommandsWaiting(int64_t waiting);

  // One message on a response topic ended with `outcome` (kResponse*).
  void CommandResponseReceived(std::string_view outcome);

  // One presence message ended with `outcome` (kPresence*).
  void PresenceReceived(std::string_view outcome);

  // A call's authentication and admission ended with `outcome` (kAuth*).
  void CallAdmitted(std::string_view outcome);
  // 1 when callers must authenticate, 0 when --insecure_disable_auth is on.
  void SetAuthEnabled(bool enabled);

  // The MQTT provider's state. `connections` and `reconnects` are the
  // provider's cumulative totals; the counters advance by the increase since
  // the previous call (a total lower than the previous one, as after the
  // provider was recreated, counts as a reset: the counter advances by the
  // new total).
  void SetMqttConnection(bool connected, int64_t connections, int64_t reconnects,
                         int64_t in_flight);

  // Pending targets not yet delivered, across the deployment.
  void SetBacklog(int64_t pending_deliveries);

  // `count` claimed deliveries given back to the outbox unpublished; reason
  // "lease" (held in memory too long) or "shutdown".
  void DeliveriesReleased(std::string_view reason, int64_t count);

  // An RPC started / finished. `type` is one of kGrpc*; `service` the full
  // service name ("herald.v1.DeviceService"); `method` the bare method name
  // ("CreateDevice"); `code` the canonical code name ("OK",
  // "INVALID_ARGUMENT"), as go-grpc-prometheus dashboards expect.
  void RpcStarted(std::string_view type, std::string_view service, std::string_view method);
  void RpcHandled(std::string_view type, std::string_view service, std::string_view method,
                  std::string_view code, absl::Duration elapsed);
  // As above, with the code name derived from `code` (gRPC and absl codes
  // share their numbers and names).
  void RpcHandled(std::string_view type, std::string_view service, std::string_view method,
                  absl::StatusCode code, absl::Duration elapsed);

  // QueryObserver: observes herald_db_query_duration_seconds{operation} and,
  // unless `ok`, counts herald_db_query_errors_total{operation}.
  void ObserveQuery(std::string_view operation, absl::Duration elapsed, bool ok) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_METRICS_HERALD_METRICS_H_
