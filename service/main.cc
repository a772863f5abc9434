// The herald binary: reads the configuration, builds the parts, runs them,
// and shuts them down in order on SIGTERM. Composition only: every piece of
// behaviour lives in the modules it wires together.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "prometheus/registry.h"
#include "providers/mqtt/mqtt_provider.h"
#include "service/admin/keys_command.h"
#include "service/api/call_guard.h"
#include "service/api/command_service.h"
#include "service/api/device_service.h"
#include "service/api/metrics_interceptor.h"
#include "service/api/notification_service.h"
#include "service/api/server_credentials.h"
#include "service/api/server_shutdown.h"
#include "service/api/stats_service.h"
#include "service/config/config.h"
#include "service/core/logging.h"
#include "service/dispatch/commander.h"
#include "service/dispatch/delivery_dispatcher.h"
#include "service/dispatch/notification_intake.h"
#include "service/dispatch/notifier.h"
#include "service/dispatch/presence_tracker.h"
#include "service/dispatch/status_reporter.h"
#include "service/metrics/herald_metrics.h"
#include "service/metrics/metrics_server.h"
#include "service/store/migrations.h"
#include "service/auth/authenticator.h"
#include "service/auth/rate_limiter.h"
#include "service/store/pg_auth_store.h"
#include "service/store/pg_command_store.h"
#include "service/store/pg_device_store.h"
#include "service/store/pg_notification_store.h"
#include "service/store/pg_connection_pool.h"

#ifdef HERALD_WITH_JEMALLOC
// jemalloc's settings, read when it starts (MALLOC_CONF in the environment
// still overrides them): a background thread hands freed pages back to the
// system within a second, so that a fan-out's peak is not kept for the
// default ten seconds.
extern "C" const char* malloc_conf;
const char* malloc_conf = "background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0";
#endif

namespace herald {
namespace {

// The services whose health the gRPC health service reports; "" is the
// server as a whole (what Kubernetes probes ask for by default).
constexpr const char* kServedServices[] = {"", "herald.v1.DeviceService",
                                           "herald.v1.NotificationService",
                                           "herald.v1.CommandService",
                                           "herald.v1.StatsService"};

// Health entries beyond the services: "herald.delivery" is SERVING only while
// notifications flow to the broker (the degraded state shows here, not in
// readiness); "herald.liveness" is SERVING while the process runs.
constexpr char kDeliveryHealth[] = "herald.delivery";
constexpr char kLivenessHealth[] = "herald.liveness";

int Migrate(const Config& config) {
  absl::Status status = ApplyMigrations(config.database_url);
  if (!status.ok()) {
    LogError("migration failed", {{"error", status.message()}});
    return 1;
  }
  LogInfo("database schema is up to date");
  return 0;
}

// `herald keys create|list|revoke`: API keys, straight in the database.
int RunKeys(const Config& config) {
  absl::StatusOr<std::unique_ptr<PgConnectionPool>> pool = PgConnectionPool::Create(
      config.database_url, {.size = 1, .acquire_timeout = absl::Seconds(10),
                            .connect_timeout = absl::Seconds(10)});
  if (!pool.ok()) {
    std::fprintf(stderr, "herald keys: %s\n", std::string(pool.status().message()).c_str());
    return 1;
  }
  PgAuthStore store(pool->get(), nullptr);
  return RunKeysCommand({.action = config.keys_action,
                         .key_id = config.keys_key_id,
                         .tenant_id = config.keys_tenant,
                         .scopes = config.keys_scopes,
                         .name = config.keys_name,
                         .topic_prefix = config.keys_topic_prefix},
                        store, std::cout, std::cerr);
}

int Serve(const Config& config) {
  LogInfo("herald starting", {{"version", HeraldVersion()}, {"config", DescribeConfig(config)}});
  // TLS on the gRPC port, checked before anything starts: a wrong file
  // fails the start at once, naming its flag.
  std::shared_ptr<grpc::ServerCredentials> grpc_credentials = grpc::InsecureServerCredentials();
  if (!config.grpc_tls_cert_file.empty()) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
        api::TlsServerCredentials({.cert_chain = config.grpc_tls_cert_pem,
                                   .private_key = config.grpc_tls_key_pem,
                                   .client_ca = config.grpc_tls_client_ca_pem});
    if (!tls.ok()) {
      LogError("invalid TLS configuration of the gRPC port", {{"error", tls.status().message()}});
      return 1;
    }
    grpc_credentials = *std::move(tls);
  }
  if (config.migrate_on_start && Migrate(config) != 0) return 1;

  auto registry = std::make_shared<prometheus::Registry>();
  HeraldMetrics metrics(*registry, HeraldVersion());
  absl::StatusOr<std::unique_ptr<MetricsServer>> metrics_server =
      MetricsServer::Start(config.metrics_address, registry);
  if (!metrics_server.ok()) {
    LogError("cannot serve metrics", {{"error", metrics_server.status().message()}});
    return 1;
  }

  absl::StatusOr<std::unique_ptr<PgConnectionPool>> pool =
      PgConnectionPool::Create(config.database_url,
                               // A caller waits at most this long for a database that is
                               // away: then UNAVAILABLE, so clients can back off.
                               {.size = config.database_pool_size,
                                .acquire_timeout = absl::Seconds(5),
                                .connect_timeout = absl::Seconds(3)});
  if (!pool.ok()) {
    LogError("invalid database configuration", {{"error", pool.status().message()}});
    return 1;
  }
  if (absl::Status reachable = (*pool)->CheckConnection(); !reachable.ok()) {
    // Not fatal: Herald reports NOT_SERVING and recovers when the database returns.
    LogError("database unreachable at start", {{"error", reachable.message()}});
  }
  PgDeviceStore device_store(pool->get(), &metrics);
  PgNotificationStore notification_store(pool->get(), &metrics);
  PgCommandStore command_store(pool->get(), &metrics);
  PgAuthStore auth_store(pool->get(), &metrics);

  // Who may call: API keys unless switched off, loudly.
  std::optional<Authenticator> authenticator;
  if (config.auth_enabled) {
    authenticator.emplace(auth_store, AuthenticatorOptions{});
  } else {
    LogWarning("AUTHENTICATION IS OFF (--insecure_disable_auth): anyone who can reach the gRPC "
               "port can send to every device as tenant \"default\". Never run so in "
               "production.");
  }
  metrics.SetAuthEnabled(config.auth_enabled);
  TenantRateLimiter rate_limiter(
      {.rate = config.tenant_rate_limit, .burst = config.tenant_rate_burst});
  api::CallGuard call_guard(authenticator.has_value() ? &*authenticator : nullptr, rate_limiter,
                            metrics);

  absl::StatusOr<std::unique_ptr<Provider>> provider = CreateMqttProvider(config.mqtt);
  if (!provider.ok()) {
    LogError("invalid MQTT configuration", {{"error", provider.status().message()}});
    return 1;
  }
  if (absl::Status started = (*provider)->Start(); !started.ok()) {
    LogError("cannot start the MQTT provider", {{"error", started.message()}});
    return 1;
  }

  DeliveryDispatcher dispatcher(
      notification_store, **provider, metrics,
      {.workers = config.delivery_workers,
       .batch_size = config.delivery_batch_size,
       .lease = config.delivery_lease,
       .poll_interval = config.delivery_poll_interval,
       .retry = {.max_attempts = config.max_delivery_attempts,
                 .initial_backoff = config.retry_backoff_initial,
                 .max_backoff = config.retry_backoff_max},
       .message_properties = config.mqtt_notification_properties});
  dispatcher.Start();

  Notifier notifier(device_store, notification_store, metrics, [&] { dispatcher.Wake(); },
                    {.notification_topic_template = config.notification_topic_template,
                     .max_payload_bytes = static_cast<size_t>(config.max_payload_bytes),
                     .limits = {.max_targets_per_request =
                                    static_cast<size_t>(config.max_targets_per_request)},
                     .handoff = &dispatcher});

  // Commands and presence subscribe through the provider; the subscriptions
  // are sent once the connection is up, and again after every reconnect
  // that lost the session.
  const bool mqtt5 = config.mqtt.mqtt_version == 5;
  Commander commander(device_store, command_store, **provider, metrics,
                      {.command_topic_template = config.command_topic_template,
                       .response_topic_template = config.response_topic_template,
                       .shared_subscription = mqtt5,
                       .share_group = config.mqtt_share_group,
                       .tenant_subscriptions = config.auth_enabled,
                       .max_waiting = config.max_pending_commands,
                       .backoff_initial = config.command_backoff_initial,
                       .backoff_max = config.command_backoff_max,
                       .poll_interval = config.command_poll_interval,
                       .max_payload_bytes = static_cast<size_t>(config.max_payload_bytes)});
  if (absl::Status started = commander.Start(); !started.ok()) {
    LogError("cannot start commands", {{"error", started.message()}});
    return 1;
  }
  PresenceOptions presence_options{.topic_template = config.presence_topic_template};
  if (config.auth_enabled) {
    presence_options.tenant_for_prefix = [&auth_store](const std::string& prefix) {
      return auth_store.TenantForTopicPrefix(prefix);
    };
  }
  PresenceTracker presence(device_store, **provider, metrics, std::move(presence_options));
  if (absl::Status started = presence.Start(); !started.ok()) {
    LogError("cannot start presence tracking", {{"error", started.message()}});
    return 1;
  }

  api::DeviceServiceImpl device_service(device_store, call_guard);
  // Single SendNotification calls are queued and stored together.
  NotificationIntake intake(notifier, {});
  intake.Start();
  api::NotificationServiceImpl notification_service(notifier, intake, notification_store,
                                                    call_guard,
                                                    {.max_batch = config.max_batch_notifications});
  api::CommandServiceImpl command_service(commander, command_store, call_guard, {});
  api::StatsServiceImpl stats_service(notification_store, call_guard, {provider->get()});

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(config.grpc_address, grpc_credentials, &grpc_port);
  builder.SetMaxReceiveMessageSize(config.grpc_max_message_bytes);
  // Each running call holds a thread of the sync server; bounded, so a flood
  // of connections is refused (RESOURCE_EXHAUSTED), not served into OOM.
  grpc::ResourceQuota quota("herald-grpc");
  quota.SetMaxThreads(config.grpc_max_threads);
  builder.SetResourceQuota(quota);
  // The sync server starts a thread whenever every polling thread is busy
  // and ends threads beyond MAX_POLLERS once idle: with the defaults (1..2)
  // 64 concurrent callers meant a thread created and destroyed per call.
  // Idle pollers are cheap; keep enough for the usual concurrency.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 2);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 128);
  builder.RegisterService(&device_service);
  builder.RegisterService(&notification_service);
  builder.RegisterService(&command_service);
  builder.RegisterService(&stats_service);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<api::MetricsInterceptorFactory>(metrics));
  api::LiveCalls live_calls;
  interceptors.push_back(live_calls.NewInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    LogError("cannot serve gRPC", {{"address", config.grpc_address}});
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  StatusReporter reporter(notification_store, **provider, metrics, absl::Seconds(2),
                          [health](const HealthReport& report) {
                            for (const char* service : kServedServices) {
                              health->SetServingStatus(service, report.database_ok);
                            }
                            // Degraded: accepting, but not delivering (the
                            // backlog waits in PostgreSQL for the broker).
                            health->SetServingStatus(
                                kDeliveryHealth,
                                report.database_ok && report.provider_connected);
                          });
  // Liveness: the process answers. Not tied to the database or the broker,
  // whose outages a restart would not cure.
  health->SetServingStatus(kLivenessHealth, true);
  reporter.Start();
  LogInfo("herald serving", {{"grpc_port", absl::StrCat(grpc_port)},
                             {"metrics_port", absl::StrCat((*metrics_server)->port())}});

  // Signals were blocked in main() before any thread started; wait here.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LogInfo("shutting down", {{"signal", signal_number == SIGTERM ? "SIGTERM" : "SIGINT"},
                            {"grace", absl::FormatDuration(config.shutdown_grace)}});

  // Order: refuse new calls, finish running ones, stop claiming, let the
  // broker acknowledge what is in flight, record the outcomes, disconnect.
  const absl::Time deadline = absl::Now() + config.shutdown_grace;
  health->Shutdown();
  api::ShutdownServer(*server, live_calls, absl::Now() + config.shutdown_grace / 4);
  // SendCommand calls still waiting were cancelled by the server's shutdown;
  // the intake has answered every call it took.
  intake.Stop();
  commander.Stop();
  presence.Stop();
  dispatcher.StopClaiming();
  (*provider)->Stop(std::max(deadline - absl::Now(), absl::ZeroDuration()));
  dispatcher.Stop();
  reporter.Stop();
  LogInfo("herald stopped");
  return 0;
}

}  // namespace
}  // namespace herald

int main(int argc, char** argv) {
  // Block the shutdown signals in every thread; Serve() waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's lock
  // order graph on: every lock and unlock then updates a global graph (a
  // few percent of the CPU per request in profiles). The unit tests keep it
  // on to catch lock-order mistakes; the server runs without it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<herald::Config> config = herald::ParseConfig(argc, argv);
  if (!config.ok()) {
    std::fprintf(stderr, "herald: %s\nRun `herald --help` for the flags.\n",
                 std::string(config.status().message()).c_str());
    return 2;
  }
  herald::SetLogLevel(config->log_level);
  herald::SetLogFormat(config->log_format);
  if (config->command == "version") {
    std::printf("herald %s\n", std::string(herald::HeraldVersion()).c_str());
    return 0;
  }
  if (config->command == "migrate") return herald::Migrate(*config);
  if (config->command == herald::kCommandKeys) return herald::RunKeys(*config);
  return herald::Serve(*config);
}
