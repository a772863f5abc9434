// MqttProvider: the Provider that reaches devices through an MQTT broker,
// built on Paho MQTT C++ (mqtt::async_client, MQTT 3.1.1 or 5, no file
// persistence). It owns the connection: it connects in the background,
// reconnects with exponential backoff (--mqtt_reconnect_min doubling up to
// --mqtt_reconnect_max) across the failover list of --mqtt_uri, renews its
// subscriptions when the broker did not keep the session, and reports every
// publish's outcome exactly once, on the acknowledgement its QoS promises.
//
// Why its own reconnect loop rather than Paho's automatic reconnect: Paho
// 1.3 reports only the first failed attempt, and its reconnect callback says
// neither which server of the failover list answered nor whether the broker
// kept the session, all of which ConnectionStatus and the resubscription
// need.
//
//   absl::StatusOr<std::unique_ptr<Provider>> provider = CreateMqttProvider(options);
//   if (!provider.ok()) return provider.status();      // invalid options
//   HERALD_RETURN_IF_ERROR((*provider)->Start());       // connects in the background
//   (*provider)->WaitConnected(absl::Seconds(10)).IgnoreError();  // optional
//   (*provider)->Publish({.topic = "devices/s1/notifications", .payload = json, .qos = 1},
//                        [](const PublishResult& r) { /* must not block */ });
//   ...
//   (*provider)->Stop(absl::Seconds(5));
//
// Publish outcomes (see PublishResult): OK on PUBACK/PUBCOMP (QoS 1/2) or
// once written to the connection (QoS 0); kUnavailable at once when not
// connected (nothing is queued while disconnected) and for every publish in
// flight when the connection drops (a retry may then deliver a duplicate:
// at-least-once); kResourceExhausted when max_in_flight publishes await
// their acknowledgement; the broker's MQTT 5 refusals (reason 0x80 or more)
// as kPermissionDenied, kInvalidArgument, ... with the reason in the
// message. MQTT 5 reason code 16 (no matching subscribers) gives OK with
// no_subscriber = true when the client library reports it; Paho C 1.3 does
// not pass a successful PUBACK's reason code on, so with the Debian 12
// packages no_subscriber stays false.
//
// Sessions (clean by default; see MqttOptions::clean_session for why): with
// clean_session = false the broker keeps the session across
// reconnects (under MQTT 5 for 5 minutes after a disconnect, so that the
// sessions of replicas that are gone do not pile up on the broker). Stop
// unsubscribes the shared subscriptions ("$share/...") before it
// disconnects, so that the broker stops handing their messages to the
// session of a replica that left.
//
// Thread safety: all public methods are thread-safe. Callbacks (PublishCallback,
// MessageHandler) run on Paho's threads, on the caller's thread (a publish
// refused at once) or on the thread calling Stop; they must not block, and
// several may run at the same time; they may call Publish and Subscribe.
// Start and Publish never block. WaitConnected blocks up to its timeout;
// Subscribe, when connected, up to the connect timeout (not when called
// from a callback); Stop up to its grace period plus a few seconds.
// WaitConnected and Stop must not be called from a callback.
#ifndef HERALD_PROVIDERS_MQTT_MQTT_PROVIDER_H_
#define HERALD_PROVIDERS_MQTT_MQTT_PROVIDER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "providers/mqtt/mqtt_options.h"
#include "providers/provider.h"

namespace mqtt {
class async_client;
class connect_options;
class message;
}  // namespace mqtt

namespace herald {

class MqttProvider final : public Provider {
 public:
  // Validates `options` (ValidateMqttOptions) and builds the Paho client
  // without connecting. kInvalidArgument for options that can never work.
  static absl::StatusOr<std::unique_ptr<MqttProvider>> Create(const MqttOptions& options);

  // Stops (with no grace period) if Stop was not called.
  ~MqttProvider() override;

  MqttProvider(const MqttProvider&) = delete;
  MqttProvider& operator=(const MqttProvider&) = delete;

  // "mqtt".
  std::string_view Name() const override;

  // Starts connecting in the background and returns. kFailedPrecondition if
  // called twice or after Stop.
  absl::Status Start() override;

  // OK once connected; kDeadlineExceeded after `timeout`, naming the broker
  // URIs and the last connection error; kFailedPrecondition before Start or
  // after Stop.
  absl::Status WaitConnected(absl::Duration timeout) override;

  // See the file comment for the outcomes. A topic with '+', '#' or NUL or a
  // QoS outside 0..2 is kInvalidArgument at once. With MQTT 5 the message
  // carries its expiry interval (rounded up to whole seconds), content type,
  // response topic, correlation data and user properties.
  void Publish(OutgoingMessage message, PublishCallback done) override;

  // Registers `handler` for messages whose topic matches `topic_filter`
  // ('+', '#' and "$share/GROUP/..." allowed; every matching handler gets
  // each message). kInvalidArgument for a bad filter, QoS or a null handler.
  // The subscription is remembered and sent again whenever a connection
  // starts without the broker's session. When connected, and not called
  // from a callback, it waits (up to the connect timeout) for the broker's
  // answer: a refusal is returned (kPermissionDenied for "not authorized")
  // and the subscription is dropped; OK otherwise, also when not connected
  // (it is sent on connect). kFailedPrecondition after Stop.
  absl::Status Subscribe(const std::string& topic_filter, int qos,
                         MessageHandler handler) override;

  // max_in_flight minus the publishes awaiting their acknowledgement.
  int64_t AvailableCapacity() const override;

  ConnectionStatus GetConnectionStatus() const override;

  // Refuses new publishes, waits up to `grace` for the acknowledgements of
  // those in flight, disconnects cleanly and reports what is still
  // unacknowledged as kUnavailable. Idempotent.
  void Stop(absl::Duration grace) override;

  // The MQTT client identifier in use (generated when options.client_id is
  // empty).
  const std::string& client_id() const { return client_id_; }

 private:
  class ConnectListener;
  class PublishListener;
  class SubscribeListener;

  struct InFlight {
    PublishCallback done;
    std::string topic;  // for error messages
  };

  struct Subscription {
    uint64_t id = 0;
    std::string filter;        // as given, possibly "$share/GROUP/..."
    std::string match_filter;  // without the $share prefix
    int qos = 0;
    MessageHandler handler;
  };
  using SubscriptionList = std::vector<std::shared_ptr<const Subscription>>;

  MqttProvider(const MqttOptions& options, std::string client_id);

  // Builds the Paho client, its options and callbacks.
  absl::Status Init();

  // Paho callbacks: each returns quickly and never holds mu_ while calling
  // Paho or user code.
  void OnConnectSuccess(uint64_t attempt, const std::string& paho_uri, bool session_present);
  void OnConnectFailure(uint64_t attempt, int rc, int reason_code);
  void OnConnectionLost(const std::string& cause);
  void OnBrokerDisconnect(int reason_code);
  void OnMessage(const std::shared_ptr<const mqtt::message>& message);
  void OnPublishDone(uint64_t id, bool ok, int rc, int reason_code);
  void OnSubscribeDone(uint64_t subscription_id, bool ok, int rc, int reason_code);

  // The background thread: makes a connection attempt whenever one is due
  // and, after a TCP/TLS failure, probes the broker's port (and repeats a
  // TLS handshake) to explain it.
  void ReconnectLoop();
  void ExplainConnectFailure(uint64_t attempt);
  // Why a TLS connection to `host`:`port`, which accepts TCP connections,
  // failed: repeats the handshake with OpenSSL (tls_probe.h). Blocks up to
  // `timeout`.
  std::string ExplainTlsFailure(const std::string& host, int port, absl::Duration timeout) const;

  // Unsubscribes every "$share/..." filter, waiting up to
  // kDisconnectTimeout for the broker's answers (Stop, while connected).
  void LeaveSharedSubscriptions();

  // Sends SUBSCRIBE without waiting; errors are logged (the subscription is
  // sent again on the next connect).
  void SendSubscribe(const Subscription& subscription);
  absl::Status SubscribeAndWait(const Subscription& subscription);
  void RemoveSubscription(uint64_t id);

  // Schedules the next connection attempt after the current backoff and
  // doubles the backoff.
  void ScheduleReconnectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How long until the next attempt, for logs.
  std::string RetryInLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string UrisText() const;
  std::string DisplayUri(const std::string& paho_uri) const;

  const MqttOptions options_;  // holds secrets: never log it
  const std::string client_id_;
  std::vector<std::string> paho_uris_;  // options_.server_uris in Paho's spelling
  bool any_tls_ = false;

  mutable absl::Mutex mu_;
  absl::CondVar reconnect_cv_;  // signalled when an attempt is due or on Stop
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;  // Stop was called: final
  ConnectionState state_ ABSL_GUARDED_BY(mu_) = ConnectionState::kDisconnected;
  std::string server_uri_ ABSL_GUARDED_BY(mu_);
  int64_t connections_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Time> last_connect_time_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::string broker_disconnect_reason_ ABSL_GUARDED_BY(mu_);  // from an MQTT 5 DISCONNECT

  uint64_t attempt_ ABSL_GUARDED_BY(mu_) = 0;  // the current connection attempt
  bool attempt_done_ ABSL_GUARDED_BY(mu_) = true;
  std::optional<absl::Time> next_attempt_ ABSL_GUARDED_BY(mu_);
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  std::optional<uint64_t> explain_attempt_ ABSL_GUARDED_BY(mu_);  // failure to probe

  uint64_t next_publish_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<uint64_t, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);

  uint64_t next_subscription_id_ ABSL_GUARDED_BY(mu_) = 1;
  // Copy-on-write, so that message dispatch copies one pointer under mu_.
  std::shared_ptr<const SubscriptionList> subscriptions_ ABSL_GUARDED_BY(mu_);
  // Subscriptions the broker acknowledged in the current session.
  absl::flat_hash_set<uint64_t> subscribed_ ABSL_GUARDED_BY(mu_);

  std::thread reconnect_thread_;
  std::unique_ptr<ConnectListener> connect_listener_;
  std::unique_ptr<PublishListener> publish_listener_;
  std::unique_ptr<SubscribeListener> subscribe_listener_;
  std::unique_ptr<mqtt::connect_options> connect_options_;
  // Last, so that it is destroyed first: Paho calls back into the members
  // above until the client is gone.
  std::unique_ptr<mqtt::async_client> client_;
};

// The factory that main.cc calls: MqttProvider::Create as a Provider.
absl::StatusOr<std::unique_ptr<Provider>> CreateMqttProvider(const MqttOptions& options);

// A client identifier "herald-<host name>-<8 random hex digits>", unique per
// process, for options.client_id left empty.
std::string GenerateMqttClientId();

}  // namespace herald

#endif  // HERALD_PROVIDERS_MQTT_MQTT_PROVIDER_H_
