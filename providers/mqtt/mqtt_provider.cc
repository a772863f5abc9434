#include "providers/mqtt/mqtt_provider.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "mqtt/async_client.h"
#include "mqtt/connect_options.h"
#include "mqtt/properties.h"
#include "mqtt/ssl_options.h"
#include "providers/mqtt/mqtt_uri.h"
#include "providers/mqtt/paho_status.h"
#include "providers/mqtt/tcp_probe.h"
#include "providers/mqtt/tls_probe.h"
#include "providers/mqtt/topic_filter.h"
#include "service/core/topic.h"
#include "service/core/logging.h"
#include "service/core/status_macros.h"

namespace herald {
namespace {

// How ExplainConnectFailure's verdicts begin (see OnConnectFailure).
constexpr char kExplainedPrefix[] = "cannot connect to ";

// MQTT 5 PUBACK/PUBREC reason code: accepted, but nobody subscribed.
constexpr int kReasonNoMatchingSubscribers = 16;

// Under MQTT 5 a session ends with the connection unless the client asks
// for an expiry interval. With clean_session = false Herald asks for five
// minutes: enough to ride out a network blip or a broker fail-over without
// losing queued messages, short enough that the sessions of replicas that
// went away (their generated client ids are never reused) do not pile up
// messages on the broker for long.
constexpr int kSessionExpirySeconds = 300;

// Paho's buffer of publishes not yet written is kept well above the
// in-flight window that MqttProvider enforces itself, so that Paho never
// refuses a publish with "buffer full" (-12).
int PahoMaxBuffered(int max_in_flight) { return 4 * max_in_flight + 1000; }

constexpr absl::Duration kMaxProbeTimeout = absl::Seconds(2);
constexpr absl::Duration kDisconnectTimeout = absl::Seconds(2);

// Set while a thread runs one of our Paho callbacks: blocking there would
// stall Paho (and wait for events only that thread can deliver).
thread_local bool t_in_callback = false;

// Marks the current thread as running a callback and keeps exceptions from
// unwinding into Paho's C code, which cannot handle them.
template <typename F>
void RunCallback(std::string_view what, F&& body) {
  const bool outer = t_in_callback;
  t_in_callback = true;
  try {
    body();
  } catch (const std::exception& e) {
    LogError("unexpected exception in an MQTT callback", {{"callback", what}, {"error", e.what()}});
  } catch (...) {
    LogError("unexpected exception in an MQTT callback", {{"callback", what}});
  }
  t_in_callback = outer;
}

void* ToContext(uint64_t id) { return reinterpret_cast<void*>(static_cast<uintptr_t>(id)); }
uint64_t FromContext(void* context) {
  return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(context));
}

int CeilSeconds(absl::Duration duration) {
  return static_cast<int>(absl::ToInt64Seconds(absl::Ceil(duration, absl::Seconds(1))));
}

// Calls `done` with `result`; a throwing callback is logged, not propagated.
void Report(const PublishCallback& done, const PublishResult& result) {
  try {
    done(result);
  } catch (const std::exception& e) {
    LogError("publish callback threw", {{"error", e.what()}});
  } catch (...) {
    LogError("publish callback threw");
  }
}

}  // namespace

// Completes connection attempts. Paho may call on_success twice for one
// attempt; OnConnectSuccess ignores the repeat.
class MqttProvider::ConnectListener final : public mqtt::iaction_listener {
 public:
  explicit ConnectListener(MqttProvider& provider) : provider_(provider) {}

  void on_success(const mqtt::token& token) override {
    RunCallback("connect success", [&] {
      const mqtt::connect_response response = token.get_connect_response();
      provider_.OnConnectSuccess(FromContext(token.get_user_context()),
                                 response.get_server_uri(), response.is_session_present());
    });
  }

  void on_failure(const mqtt::token& token) override {
    RunCallback("connect failure", [&] {
      provider_.OnConnectFailure(FromContext(token.get_user_context()), token.get_return_code(),
                                 token.get_reason_code());
    });
  }

 private:
  MqttProvider& provider_;
};

// Completes publishes; the token's user context is the publish id.
class MqttProvider::PublishListener final : public mqtt::iaction_listener {
 public:
  explicit PublishListener(MqttProvider& provider) : provider_(provider) {}

  void on_success(const mqtt::token& token) override {
    RunCallback("publish success", [&] {
      provider_.OnPublishDone(FromContext(token.get_user_context()), true,
                              token.get_return_code(), token.get_reason_code());
    });
  }

  void on_failure(const mqtt::token& token) override {
    RunCallback("publish failure", [&] {
      provider_.OnPublishDone(FromContext(token.get_user_context()), false,
                              token.get_return_code(), token.get_reason_code());
    });
  }

 private:
  MqttProvider& provider_;
};

// Records SUBACKs; the token's user context is the subscription id.
class MqttProvider::SubscribeListener final : public mqtt::iaction_listener {
 public:
  explicit SubscribeListener(MqttProvider& provider) : provider_(provider) {}

  void on_success(const mqtt::token& token) override {
    RunCallback("subscribe success", [&] {
      provider_.OnSubscribeDone(FromContext(token.get_user_context()), true,
                                token.get_return_code(), token.get_reason_code());
    });
  }

  void on_failure(const mqtt::token& token) override {
    RunCallback("subscribe failure", [&] {
      provider_.OnSubscribeDone(FromContext(token.get_user_context()), false,
                                token.get_return_code(), token.get_reason_code());
    });
  }

 private:
  MqttProvider& provider_;
};

std::string GenerateMqttClientId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof(host), "unknown");
  }
  // Keep the id readable and free of characters brokers may dislike.
  std::string clean;
  for (const char* c = host; *c != '\0' && clean.size() < 40; ++c) {
    const unsigned char u = static_cast<unsigned char>(*c);
    clean.push_back(absl::ascii_isalnum(u) || *c == '-' || *c == '.' || *c == '_' ? *c : '_');
  }
  absl::BitGen random;
  return absl::StrFormat("herald-%s-%08x", clean, absl::Uniform<uint32_t>(random));
}

absl::StatusOr<std::unique_ptr<Provider>> CreateMqttProvider(const MqttOptions& options) {
  HERALD_ASSIGN_OR_RETURN(std::unique_ptr<MqttProvider> provider, MqttProvider::Create(options));
  return std::unique_ptr<Provider>(std::move(provider));
}

absl::StatusOr<std::unique_ptr<MqttProvider>> MqttProvider::Create(const MqttOptions& options) {
  HERALD_RETURN_IF_ERROR(ValidateMqttOptions(options));
  std::string client_id = options.client_id.empty() ? GenerateMqttClientId() : options.client_id;
  auto provider = absl::WrapUnique(new MqttProvider(options, std::move(client_id)));
  HERALD_RETURN_IF_ERROR(provider->Init());
  return provider;
}

MqttProvider::MqttProvider(const MqttOptions& options, std::string client_id)
    : options_(options),
      client_id_(std::move(client_id)),
      backoff_(options.reconnect_min),
      subscriptions_(std::make_shared<const SubscriptionList>()) {}

absl::Status MqttProvider::Init() {
  for (const std::string& uri : options_.server_uris) {
    HERALD_ASSIGN_OR_RETURN(MqttUri parsed, ParseMqttUri(uri));
    paho_uris_.push_back(parsed.PahoUri());
    any_tls_ = any_tls_ || parsed.tls;
  }

  connect_listener_ = std::make_unique<ConnectListener>(*this);
  publish_listener_ = std::make_unique<PublishListener>(*this);
  subscribe_listener_ = std::make_unique<SubscribeListener>(*this);

  const bool v5 = options_.mqtt_version == MQTTVERSION_5;
  mqtt::connect_options_builder builder;
  builder.mqtt_version(v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1)
      .keep_alive_interval(std::chrono::seconds(absl::ToInt64Seconds(options_.keep_alive)))
      .connect_timeout(std::chrono::seconds(CeilSeconds(options_.connect_timeout)))
      .max_inflight(options_.max_in_flight)
      .automatic_reconnect(false);
  if (v5) {
    builder.clean_start(options_.clean_session);
  } else {
    builder.clean_session(options_.clean_session);
  }
  if (!options_.username.empty()) builder.user_name(options_.username);
  if (!options_.password.empty()) builder.password(options_.password);
  if (paho_uris_.size() > 1) builder.servers(mqtt::string_collection::create(paho_uris_));
  if (any_tls_) {
    // No error_handler: Paho C++ 1.2 hands the C library a pointer to a
    // temporary copy of these options as the handler's context, which is
    // gone by the time the TLS handshake fails. ExplainConnectFailure
    // probes the port instead.
    mqtt::ssl_options_builder ssl;
    ssl.enable_server_cert_auth(options_.tls_verify).verify(options_.tls_verify);
    if (!options_.ca_file.empty()) ssl.trust_store(options_.ca_file);
    if (!options_.cert_file.empty()) ssl.key_store(options_.cert_file);
    if (!options_.key_file.empty()) ssl.private_key(options_.key_file);
    if (!options_.key_password.empty()) ssl.private_keypassword(options_.key_password);
    builder.ssl(ssl.finalize());
  }
  connect_options_ = std::make_unique<mqtt::connect_options>(builder.finalize());
  if (v5 && !options_.clean_session) {
    // Set on the long-lived object, not the builder: Paho C++ 1.2 copies
    // connect_options without re-pointing the C struct at the copy's
    // properties, so properties set on a temporary would dangle. Each
    // connect() copies these options, and Paho C copies the properties
    // during the call, while connect_options_ is alive.
    connect_options_->set_properties(
        {mqtt::property(mqtt::property::SESSION_EXPIRY_INTERVAL, kSessionExpirySeconds)});
  }

  try {
    mqtt::create_options create(options_.mqtt_version,
                                PahoMaxBuffered(options_.max_in_flight));
    // Publishes while disconnected fail at once instead of waiting in Paho.
    create.set_send_while_disconnected(false);
    client_ = std::make_unique<mqtt::async_client>(paho_uris_.front(), client_id_, create,
                                                   static_cast<mqtt::iclient_persistence*>(nullptr));
    client_->set_connection_lost_handler([this](const std::string& cause) {
      RunCallback("connection lost", [&] { OnConnectionLost(cause); });
    });
    client_->set_message_callback([this](mqtt::const_message_ptr message) {
      RunCallback("message", [&] { OnMessage(message); });
    });
    if (v5) {
      client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode reason) {
        RunCallback("disconnected", [&] { OnBrokerDisconnect(static_cast<int>(reason)); });
      });
    }
  } catch (const mqtt::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot create the MQTT client for ",
                                                   UrisText(), ": ", e.what()));
  }
  if (!options_.tls_verify && any_tls_) {
    LogWarning("mqtt TLS certificate verification is disabled (--mqtt_tls_verify=false)",
               {{"uri", UrisText()}});
  }
  return absl::OkStatus();
}

MqttProvider::~MqttProvider() {
  Stop(absl::ZeroDuration());
  if (client_ != nullptr) {
    try {
      client_->disable_callbacks();
    } catch (const mqtt::exception&) {
      // Still connecting: the callbacks are dropped with the client below.
    }
    // Destroying the client waits for Paho's callbacks in progress; all the
    // members they use are still alive here.
    client_.reset();
  }
}

std::string_view MqttProvider::Name() const { return "mqtt"; }

absl::Status MqttProvider::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::FailedPreconditionError("MQTT provider was stopped");
    if (started_) return absl::FailedPreconditionError("MQTT provider already started");
    started_ = true;
    state_ = ConnectionState::kConnecting;
    next_attempt_ = absl::Now();
  }
  LogInfo("mqtt connecting", {{"uri", UrisText()},
                              {"client_id", client_id_},
                              {"mqtt_version", options_.mqtt_version == 5 ? "5" : "3.1.1"}});
  reconnect_thread_ = std::thread([this] { ReconnectLoop(); });
  return absl::OkStatus();
}

void MqttProvider::ReconnectLoop() {
  mu_.Lock();
  while (true) {
    while (!stopping_ && !explain_attempt_.has_value() &&
           !(next_attempt_.has_value() && *next_attempt_ <= absl::Now())) {
      if (next_attempt_.has_value()) {
        reconnect_cv_.WaitWithDeadline(&mu_, *next_attempt_);
      } else {
        reconnect_cv_.Wait(&mu_);
      }
    }
    if (stopping_) break;
    if (explain_attempt_.has_value()) {
      const uint64_t attempt = *explain_attempt_;
      explain_attempt_.reset();
      mu_.Unlock();
      ExplainConnectFailure(attempt);
      mu_.Lock();
      continue;
    }
    next_attempt_.reset();
    const uint64_t attempt = ++attempt_;
    attempt_done_ = false;
    state_ = ConnectionState::kConnecting;
    mu_.Unlock();
    LogDebug("mqtt connection attempt", {{"uri", UrisText()}, {"attempt", absl::StrCat(attempt)}});
    try {
      client_->connect(*connect_options_, ToContext(attempt), *connect_listener_);
    } catch (const mqtt::exception& e) {
      OnConnectFailure(attempt, e.get_return_code(), e.get_reason_code());
    }
    mu_.Lock();
  }
  mu_.Unlock();
}

void MqttProvider::ScheduleReconnectLocked() {
  next_attempt_ = absl::Now() + backoff_;
  backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  reconnect_cv_.Signal();
}

void MqttProvider::OnConnectSuccess(uint64_t attempt, const std::string& paho_uri,
                                    bool session_present) {
  std::vector<std::shared_ptr<const Subscription>> to_subscribe;
  std::string server_uri;
  int64_t reconnects = 0;
  bool stop = false;
  {
    absl::MutexLock lock(&mu_);
    if (attempt != attempt_ || attempt_done_) return;  // repeated or stale
    attempt_done_ = true;
    if (stopping_) {
      stop = true;
    } else {
      state_ = ConnectionState::kConnected;
      server_uri_ = DisplayUri(paho_uri);
      server_uri = server_uri_;
      ++connections_;
      if (connections_ > 1) ++reconnects_;
      reconnects = reconnects_;
      last_connect_time_ = absl::Now();
      backoff_ = options_.reconnect_min;
      if (!session_present) subscribed_.clear();
      for (const auto& subscription : *subscriptions_) {
        if (!subscribed_.contains(subscription->id)) to_subscribe.push_back(subscription);
      }
    }
  }
  if (stop) {
    // Connected while Stop ran: do not leave a connection behind.
    try {
      client_->disconnect();
    } catch (const mqtt::exception&) {
    }
    return;
  }
  LogInfo("mqtt connected", {{"uri", server_uri},
                             {"client_id", client_id_},
                             {"session_present", session_present ? "true" : "false"},
                             {"reconnects", absl::StrCat(reconnects)},
                             {"resubscribing", absl::StrCat(to_subscribe.size())}});
  for (const auto& subscription : to_subscribe) SendSubscribe(*subscription);
}

void MqttProvider::OnConnectFailure(uint64_t attempt, int rc, int reason_code) {
  std::string error;
  std::string retry_in;
  {
    absl::MutexLock lock(&mu_);
    if (attempt != attempt_ || attempt_done_) return;
    attempt_done_ = true;
    state_ = ConnectionState::kDisconnected;
    if (stopping_) return;
    error = ConnectFailureText(rc, reason_code, options_.mqtt_version, any_tls_, "");
    if (paho_uris_.size() > 1) {
      error = absl::StrCat("no broker of ", UrisText(), " accepted the connection: ", error);
    }
    // Paho cannot tell a refused TCP connection from a failed TLS
    // handshake; the reconnect thread probes the port to say which, and
    // logs the result. Until then the previous attempt's explanation, if
    // any, stays the last error: Paho's generic text would hide it from a
    // caller who looks in between.
    const bool will_explain = rc == MQTTASYNC_FAILURE || rc == MQTTASYNC_SUCCESS;
    if (!will_explain || !absl::StartsWith(last_error_, kExplainedPrefix)) last_error_ = error;
    ScheduleReconnectLocked();
    if (will_explain) {
      explain_attempt_ = attempt;
      return;
    }
    retry_in = RetryInLocked();
  }
  LogWarning("mqtt connect failed", {{"uri", UrisText()}, {"error", error}, {"retry_in", retry_in}});
}

std::string MqttProvider::RetryInLocked() const {
  if (!next_attempt_.has_value()) return "-";
  return absl::FormatDuration(
      absl::Trunc(std::max(*next_attempt_ - absl::Now(), absl::ZeroDuration()),
                  absl::Milliseconds(1)));
}

std::string MqttProvider::ExplainTlsFailure(const std::string& host, int port,
                                            absl::Duration timeout) const {
  // The same handshake once more, with OpenSSL directly: Paho does not say
  // which check failed.
  const absl::Status handshake = ProbeTlsHandshake(host, port,
                                                   {.ca_file = options_.ca_file,
                                                    .cert_file = options_.cert_file,
                                                    .key_file = options_.key_file,
                                                    .key_password = options_.key_password,
                                                    .verify = options_.tls_verify},
                                                   timeout);
  switch (handshake.code()) {
    case absl::StatusCode::kFailedPrecondition:
      return absl::StrCat("TLS handshake failed: ", handshake.message(),
                          " (see --mqtt_ca_file and --mqtt_tls_verify)");
    case absl::StatusCode::kPermissionDenied:
      return absl::StrCat("TLS handshake failed: ", handshake.message(),
                          " (see --mqtt_cert_file, --mqtt_key_file and --mqtt_key_password_file)");
    case absl::StatusCode::kInvalidArgument:  // names the file
      return absl::StrCat("cannot set up TLS: ", handshake.message());
    case absl::StatusCode::kOk:
      break;
    default:
      return absl::StrCat("TLS handshake failed: ", handshake.message());
  }
  return "the port accepts TLS connections with these settings (a separate handshake "
         "succeeded), but no MQTT session was established: not an MQTT listener (wss:// needs "
         "a websockets listener), or the broker closed the connection (see its log)";
}

void MqttProvider::ExplainConnectFailure(uint64_t attempt) {
  const absl::Duration timeout = std::min(options_.connect_timeout, kMaxProbeTimeout);
  std::vector<std::string> reasons;
  for (size_t i = 0; i < options_.server_uris.size(); ++i) {
    absl::StatusOr<MqttUri> uri = ParseMqttUri(options_.server_uris[i]);
    if (!uri.ok()) continue;
    const absl::Status reachable = ProbeTcpConnect(uri->host, uri->port, timeout);
    std::string reason;
    if (!reachable.ok()) {
      reason = std::string(reachable.message());
    } else if (uri->tls) {
      reason = ExplainTlsFailure(uri->host, uri->port, timeout);
    } else {
      reason =
          "the port accepts TCP connections, but no MQTT session was established (not an MQTT "
          "listener, a TLS listener, or the broker closed the connection)";
    }
    reasons.push_back(options_.server_uris.size() > 1
                          ? absl::StrCat(options_.server_uris[i], ": ", reason)
                          : reason);
  }
  if (reasons.empty()) return;
  std::string error = absl::StrCat(kExplainedPrefix, UrisText(), ": ",
                                   absl::StrJoin(reasons, "; "));
  std::string retry_in;
  {
    absl::MutexLock lock(&mu_);
    // A later attempt may have finished meanwhile; keep its verdict.
    if (attempt != attempt_ || state_ == ConnectionState::kConnected || stopping_) return;
    last_error_ = error;
    retry_in = RetryInLocked();
  }
  LogWarning("mqtt connect failed", {{"uri", UrisText()}, {"error", error}, {"retry_in", retry_in}});
}

void MqttProvider::OnConnectionLost(const std::string& cause) {
  absl::flat_hash_map<uint64_t, InFlight> failed;
  std::string error;
  std::string server_uri;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != ConnectionState::kConnected) return;
    state_ = ConnectionState::kDisconnected;
    server_uri = server_uri_;
    if (!broker_disconnect_reason_.empty()) {
      error = absl::StrCat("broker closed the connection: ", broker_disconnect_reason_);
      broker_disconnect_reason_.clear();
    } else {
      error = absl::StrCat("connection lost", cause.empty() ? "" : ": ", cause);
    }
    last_error_ = error;
    failed.swap(in_flight_);
    if (!stopping_) ScheduleReconnectLocked();
  }
  LogWarning("mqtt connection lost", {{"uri", server_uri},
                                      {"error", error},
                                      {"unacknowledged", absl::StrCat(failed.size())}});
  for (auto& [id, entry] : failed) {
    Report(entry.done,
           {.status = absl::UnavailableError(absl::StrCat(
                "publish to \"", entry.topic, "\": connection to ", server_uri,
                " lost before the acknowledgement (", error, ")"))});
  }
}

void MqttProvider::OnBrokerDisconnect(int reason_code) {
  absl::MutexLock lock(&mu_);
  broker_disconnect_reason_ =
      absl::StrCat(MqttReasonName(reason_code), " (reason code ", reason_code, ")");
}

absl::Status MqttProvider::WaitConnected(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (!started_ || stopping_) {
    return absl::FailedPreconditionError(started_ ? "MQTT provider was stopped"
                                                  : "MQTT provider not started");
  }
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ == ConnectionState::kConnected || stopping_;
  };
  mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
  if (state_ == ConnectionState::kConnected) return absl::OkStatus();
  return absl::DeadlineExceededError(absl::StrCat(
      "not connected to the MQTT broker ", UrisText(), " after ", absl::FormatDuration(timeout),
      " (state ", std::string(ConnectionStateName(state_)), "; last error: ",
      last_error_.empty() ? "none yet" : last_error_, ")"));
}

void MqttProvider::Publish(OutgoingMessage message, PublishCallback done) {
  if (absl::Status valid = ValidatePublishTopic(message.topic, "topic"); !valid.ok()) {
    Report(done, {.status = std::move(valid)});
    return;
  }
  if (message.qos < 0 || message.qos > 2) {
    Report(done, {.status = absl::InvalidArgumentError(absl::StrCat(
                      "publish to \"", message.topic, "\": QoS must be 0, 1 or 2, got ",
                      message.qos))});
    return;
  }

  uint64_t id = 0;
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || state_ != ConnectionState::kConnected) {
      refused = absl::UnavailableError(absl::StrCat(
          "publish to \"", message.topic, "\": not connected to the MQTT broker (",
          stopping_ ? std::string("provider stopping") : std::string(ConnectionStateName(state_)),
          last_error_.empty() ? "" : "; last error: ", last_error_, ")"));
    } else if (in_flight_.size() >= static_cast<size_t>(options_.max_in_flight)) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          "publish to \"", message.topic, "\": ", in_flight_.size(),
          " publishes await their acknowledgement (--mqtt_max_in_flight)"));
    } else {
      id = next_publish_id_++;
      in_flight_.emplace(id, InFlight{.done = std::move(done), .topic = message.topic});
    }
  }
  if (!refused.ok()) {
    Report(done, {.status = std::move(refused)});
    return;
  }

  try {
    mqtt::properties properties;
    if (options_.mqtt_version == MQTTVERSION_5) {
      if (message.message_expiry.has_value()) {
        // At least one second: 0 would not mean "already expired".
        const int64_t seconds = std::clamp<int64_t>(
            absl::ToInt64Seconds(absl::Ceil(*message.message_expiry, absl::Seconds(1))), 1,
            UINT32_MAX);
        properties.add(mqtt::property(mqtt::property::MESSAGE_EXPIRY_INTERVAL,
                                      static_cast<int32_t>(static_cast<uint32_t>(seconds))));
      }
      if (!message.content_type.empty()) {
        properties.add(mqtt::property(mqtt::property::CONTENT_TYPE, message.content_type));
      }
      if (!message.response_topic.empty()) {
        properties.add(mqtt::property(mqtt::property::RESPONSE_TOPIC, message.response_topic));
      }
      if (!message.correlation_data.empty()) {
        properties.add(
            mqtt::property(mqtt::property::CORRELATION_DATA, message.correlation_data));
      }
      for (const auto& [name, value] : message.user_properties) {
        properties.add(mqtt::property(mqtt::property::USER_PROPERTY, name, value));
      }
    }
    mqtt::message_ptr paho_message = mqtt::message::create(
        std::move(message.topic), std::move(message.payload), message.qos, message.retain);
    // Moved, not copied: Debian's Paho C tracks each of its allocations in
    // a tree under one mutex (Heap.c), and a property list copy is one
    // allocation for the list and one per string.
    if (!properties.empty()) paho_message->set_properties(std::move(properties));
    client_->publish(std::move(paho_message), ToContext(id), *publish_listener_);
  } catch (const mqtt::exception& e) {
    OnPublishDone(id, false, e.get_return_code(), e.get_reason_code());
  }
}

void MqttProvider::OnPublishDone(uint64_t id, bool ok, int rc, int reason_code) {
  InFlight entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = in_flight_.find(id);
    if (it == in_flight_.end()) return;  // already reported (connection lost or Stop)
    entry = std::move(it->second);
    in_flight_.erase(it);
  }
  PublishResult result;
  if (ok) {
    result.no_subscriber = reason_code == kReasonNoMatchingSubscribers;
  } else {
    result.status = PublishFailureStatus(rc, reason_code, entry.topic);
  }
  Report(entry.done, result);
  if (!ok && rc == MQTTASYNC_DISCONNECTED) {
    // Paho says the client is not connected although no connection-lost
    // callback arrived (seen after a broker restart): without this, the
    // provider would believe itself connected forever and never reconnect.
    OnConnectionLost("the client reports it is not connected");
  }
}

absl::Status MqttProvider::Subscribe(const std::string& topic_filter, int qos,
                                     MessageHandler handler) {
  HERALD_RETURN_IF_ERROR(ValidateTopicFilter(topic_filter));
  if (qos < 0 || qos > 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("subscribe to \"", topic_filter, "\": QoS must be 0, 1 or 2, got ", qos));
  }
  if (!handler) {
    return absl::InvalidArgumentError(
        absl::StrCat("subscribe to \"", topic_filter, "\": no handler"));
  }
  auto subscription = std::make_shared<Subscription>();
  subscription->filter = topic_filter;
  subscription->match_filter = std::string(StripSharedSubscription(topic_filter));
  subscription->qos = qos;
  subscription->handler = std::move(handler);
  bool connected = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::FailedPreconditionError("MQTT provider was stopped");
    subscription->id = next_subscription_id_++;
    auto list = std::make_shared<SubscriptionList>(*subscriptions_);
    list->push_back(subscription);
    subscriptions_ = std::move(list);
    connected = state_ == ConnectionState::kConnected;
  }
  if (!connected) return absl::OkStatus();  // sent when the connection is up
  if (t_in_callback) {
    SendSubscribe(*subscription);
    return absl::OkStatus();
  }
  absl::Status answered = SubscribeAndWait(*subscription);
  if (absl::IsPermissionDenied(answered) || absl::IsInvalidArgument(answered) ||
      absl::IsFailedPrecondition(answered)) {
    RemoveSubscription(subscription->id);
    return answered;
  }
  return absl::OkStatus();
}

void MqttProvider::SendSubscribe(const Subscription& subscription) {
  try {
    client_->subscribe(subscription.filter, subscription.qos, ToContext(subscription.id),
                       *subscribe_listener_);
  } catch (const mqtt::exception& e) {
    LogWarning("mqtt subscribe not sent; retried on the next connect",
               {{"filter", subscription.filter}, {"error", e.what()}});
  }
}

absl::Status MqttProvider::SubscribeAndWait(const Subscription& subscription) {
  try {
    mqtt::token_ptr token = client_->subscribe(subscription.filter, subscription.qos,
                                               ToContext(subscription.id), *subscribe_listener_);
    if (!token->wait_for(absl::ToChronoMilliseconds(options_.connect_timeout))) {
      LogWarning("mqtt subscribe not acknowledged in time; kept for the next connect",
                 {{"filter", subscription.filter}});
      return absl::DeadlineExceededError(
          absl::StrCat("subscribe to \"", subscription.filter, "\": no SUBACK in time"));
    }
    return absl::OkStatus();
  } catch (const mqtt::exception& e) {
    return SubscribeFailureStatus(e.get_return_code(), e.get_reason_code(), subscription.filter);
  }
}

void MqttProvider::OnSubscribeDone(uint64_t subscription_id, bool ok, int rc, int reason_code) {
  std::string filter;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& subscription : *subscriptions_) {
      if (subscription->id == subscription_id) filter = subscription->filter;
    }
    if (filter.empty()) return;  // removed meanwhile
    if (ok) subscribed_.insert(subscription_id);
  }
  if (ok) {
    LogDebug("mqtt subscribed", {{"filter", filter}});
  } else {
    LogWarning("mqtt subscription refused",
               {{"filter", filter},
                {"error", std::string(SubscribeFailureStatus(rc, reason_code, filter).message())}});
  }
}

void MqttProvider::RemoveSubscription(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto list = std::make_shared<SubscriptionList>();
  for (const auto& subscription : *subscriptions_) {
    if (subscription->id != id) list->push_back(subscription);
  }
  subscriptions_ = std::move(list);
  subscribed_.erase(id);
}

void MqttProvider::OnMessage(const std::shared_ptr<const mqtt::message>& message) {
  if (message == nullptr) return;
  std::shared_ptr<const SubscriptionList> subscriptions;
  {
    absl::MutexLock lock(&mu_);
    subscriptions = subscriptions_;
  }
  IncomingMessage incoming;
  incoming.topic = message->get_topic();
  incoming.payload = message->get_payload_str();
  incoming.qos = message->get_qos();
  incoming.retained = message->is_retained();
  const mqtt::properties& properties = message->get_properties();
  if (properties.contains(mqtt::property::RESPONSE_TOPIC)) {
    incoming.response_topic = mqtt::get<std::string>(properties, mqtt::property::RESPONSE_TOPIC);
  }
  if (properties.contains(mqtt::property::CORRELATION_DATA)) {
    incoming.correlation_data =
        mqtt::get<std::string>(properties, mqtt::property::CORRELATION_DATA);
  }
  bool handled = false;
  for (const auto& subscription : *subscriptions) {
    if (!TopicFilterMatches(subscription->match_filter, incoming.topic)) continue;
    handled = true;
    try {
      subscription->handler(incoming);
    } catch (const std::exception& e) {
      LogError("mqtt message handler threw",
               {{"filter", subscription->filter}, {"error", e.what()}});
    } catch (...) {
      LogError("mqtt message handler threw", {{"filter", subscription->filter}});
    }
  }
  if (!handled) LogDebug("mqtt message matches no subscription", {{"topic", incoming.topic}});
}

int64_t MqttProvider::AvailableCapacity() const {
  absl::MutexLock lock(&mu_);
  return std::max<int64_t>(0, options_.max_in_flight - static_cast<int64_t>(in_flight_.size()));
}

ConnectionStatus MqttProvider::GetConnectionStatus() const {
  absl::MutexLock lock(&mu_);
  return ConnectionStatus{.state = state_,
                          .server_uri = server_uri_,
                          .connections = connections_,
                          .reconnects = reconnects_,
                          .in_flight = static_cast<int64_t>(in_flight_.size()),
                          .last_connect_time = last_connect_time_,
                          .last_error = last_error_};
}

void MqttProvider::Stop(absl::Duration grace) {
  bool was_connected = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    reconnect_cv_.Signal();
    if (!started_) return;
    auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return in_flight_.empty() || state_ != ConnectionState::kConnected;
    };
    if (!t_in_callback) mu_.AwaitWithTimeout(absl::Condition(&drained), grace);
    was_connected = state_ == ConnectionState::kConnected;
  }
  if (reconnect_thread_.joinable()) reconnect_thread_.join();

  if (was_connected && !t_in_callback) LeaveSharedSubscriptions();

  // Disconnect also when an attempt is in progress, so it does not connect
  // after we are gone (OnConnectSuccess disconnects if it still does).
  // No further delay inside Paho: the grace period is over, and what is
  // still unacknowledged is reported below.
  try {
    mqtt::token_ptr token = client_->disconnect(0);
    if (!t_in_callback) token->wait_for(absl::ToChronoMilliseconds(kDisconnectTimeout));
  } catch (const mqtt::exception& e) {
    if (was_connected) LogWarning("mqtt disconnect failed", {{"error", e.what()}});
  }

  absl::flat_hash_map<uint64_t, InFlight> leftover;
  {
    absl::MutexLock lock(&mu_);
    leftover.swap(in_flight_);
    state_ = ConnectionState::kDisconnected;
  }
  LogInfo("mqtt stopped", {{"uri", UrisText()}, {"unacknowledged", absl::StrCat(leftover.size())}});
  for (auto& [id, entry] : leftover) {
    Report(entry.done, {.status = absl::UnavailableError(absl::StrCat(
                            "publish to \"", entry.topic,
                            "\": MQTT provider stopped before the broker acknowledged it"))});
  }
}

void MqttProvider::LeaveSharedSubscriptions() {
  std::vector<std::string> shared;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& subscription : *subscriptions_) {
      if (subscription->filter != subscription->match_filter) {
        shared.push_back(subscription->filter);
      }
    }
  }
  if (shared.empty()) return;
  // A broker (Mosquitto among them) keeps handing a share of a shared
  // subscription's messages to a disconnected session that still exists,
  // where they sit unread until the session expires (kSessionExpirySeconds
  // under MQTT 5). A replica that stops for good therefore leaves its share
  // groups first. (Ending the session with a DISCONNECT session expiry of 0
  // would be the cleaner way, but Paho C++ 1.2 sends no DISCONNECT
  // properties: its options keep C struct version 0.)
  std::vector<mqtt::token_ptr> tokens;
  for (const std::string& filter : shared) {
    try {
      tokens.push_back(client_->unsubscribe(filter));
    } catch (const mqtt::exception& e) {
      LogWarning("mqtt unsubscribe failed", {{"filter", filter}, {"error", e.what()}});
    }
  }
  const absl::Time deadline = absl::Now() + kDisconnectTimeout;
  for (const mqtt::token_ptr& token : tokens) {
    try {
      token->wait_for(absl::ToChronoMilliseconds(
          std::max(deadline - absl::Now(), absl::ZeroDuration())));
    } catch (const mqtt::exception& e) {
      LogWarning("mqtt unsubscribe failed", {{"error", e.what()}});
    }
  }
  LogDebug("mqtt left shared subscriptions", {{"filters", absl::StrJoin(shared, ",")}});
}

std::string MqttProvider::UrisText() const { return absl::StrJoin(options_.server_uris, ","); }

std::string MqttProvider::DisplayUri(const std::string& paho_uri) const {
  // Paho reports "host:port" (or the URI as given to it); name the broker as
  // the operator configured it.
  for (size_t i = 0; i < paho_uris_.size(); ++i) {
    if (paho_uris_[i] == paho_uri || absl::EndsWith(paho_uris_[i], absl::StrCat("://", paho_uri))) {
      return options_.server_uris[i];
    }
  }
  return paho_uri;
}

}  // namespace herald
