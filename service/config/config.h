// Herald's configuration: command-line flags, HERALD_* environment variables
// and secret files, turned into one validated Config value.
//
// Every flag --X can also be set with the environment variable HERALD_<X in
// upper case> (--database_url <- HERALD_DATABASE_URL); a flag given on the
// command line wins over the environment. Secrets come from files
// (--database_url_file, --mqtt_password_file, --mqtt_key_password_file) so a
// Kubernetes Secret can be mounted, or the MQTT password from the
// HERALD_MQTT_PASSWORD variable; there is deliberately no --mqtt_password
// flag, because a command line is visible to every user through `ps`.
//
// main() calls ParseConfig once; the smaller steps it is made of
// (ApplyEnvironment, ConfigFromFlags, ValidateConfig) are public so that
// tests can drive them without a real process environment.
//
//   absl::StatusOr<herald::Config> config = herald::ParseConfig(argc, argv);
//   if (!config.ok()) {
//     std::cerr << "herald: " << config.status().message() << "\n";
//     return 2;
//   }
//   herald::LogInfo("starting", {{"config", herald::DescribeConfig(*config)}});
#ifndef HERALD_SERVICE_CONFIG_CONFIG_H_
#define HERALD_SERVICE_CONFIG_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "providers/mqtt/mqtt_options.h"
#include "service/core/logging.h"

namespace herald {

// The subcommands, the first positional argument of `herald`.
inline constexpr char kCommandServe[] = "serve";      // the default
inline constexpr char kCommandMigrate[] = "migrate";
inline constexpr char kCommandVersion[] = "version";
inline constexpr char kCommandKeys[] = "keys";  // herald keys create|list|revoke

// Everything the composition root needs to build the service. A plain value:
// copy it freely. Holds secrets (database_url, mqtt.password,
// mqtt.key_password, grpc_tls_key_pem): log it only through DescribeConfig.
struct Config {
  // "serve" (run the service), "migrate" (apply migrations and exit) or
  // "version" (print the version and exit).
  std::string command = kCommandServe;

  std::string grpc_address = "0.0.0.0:50051";    // HOST:PORT or unix:PATH
  std::string metrics_address = "0.0.0.0:9464";  // HOST:PORT; /metrics is served there

  // TLS on the gRPC port. With a certificate and its key the port speaks TLS
  // only; with a client CA as well, callers must present a certificate that
  // CA signed (mutual TLS). The paths are the flags' values; for `serve`,
  // ConfigFromFlags reads the files into the *_pem fields (the key is a
  // secret: never log it). All empty: plaintext.
  std::string grpc_tls_cert_file;       // PEM certificate chain, the server's first
  std::string grpc_tls_key_file;        // PEM private key of that certificate
  std::string grpc_tls_client_ca_file;  // PEM CA certificate(s) that sign client certificates
  std::string grpc_tls_cert_pem;
  std::string grpc_tls_key_pem;
  std::string grpc_tls_client_ca_pem;

  // A libpq connection string ("host=db dbname=herald user=herald") or a
  // postgresql:// URL. May hold a password: log RedactDatabaseUrl(url) only
  // (service/core/database_url.h).
  std::string database_url;
  int database_pool_size = 8;
  bool migrate_on_start = false;  // --migrate: `serve` applies migrations first

  MqttOptions mqtt;

  // Topic templates over {device_id}, {owner_id}, {platform}, {meta.KEY}.
  std::string notification_topic_template = "devices/{device_id}/notifications";
  std::string command_topic_template = "devices/{device_id}/commands";
  std::string response_topic_template = "devices/{device_id}/responses";
  std::string presence_topic_template = "devices/{device_id}/status/online";
  std::string receipt_topic_template = "devices/{device_id}/receipts";

  // Commands (CommandService.SendCommand).
  int max_pending_commands = 256;  // SendCommand calls waiting at once on a replica
  absl::Duration command_backoff_initial = absl::Milliseconds(500);  // between attempts
  absl::Duration command_backoff_max = absl::Seconds(5);
  // Under MQTT 5: how often a waiting command re-reads its row, in case the
  // notification that another replica stored the response was lost.
  absl::Duration command_poll_interval = absl::Seconds(1);
  // The MQTT 5 shared subscription group of the command responses
  // ("$share/<group>/..."): replicas of one deployment share it.
  std::string mqtt_share_group = "herald";

  // Callers (docs/security.md). Authentication is on unless
  // --insecure_disable_auth; then every call acts for the default tenant.
  bool auth_enabled = true;
  // Per tenant: calls (a SendNotifications batch: its entries) per second on
  // average, and at once. 0 = unlimited.
  double tenant_rate_limit = 5000;
  double tenant_rate_burst = 10000;

  // `herald keys create|list|revoke [KEY_ID]`.
  std::string keys_action;
  std::string keys_key_id;                   // revoke's argument
  std::string keys_tenant = "default";       // --tenant
  std::vector<std::string> keys_scopes;      // --scopes
  std::string keys_name;                     // --key_name
  std::string keys_topic_prefix;             // --topic_prefix; "" = the tenant id

  // The delivery pipeline.
  int delivery_workers = 2;
  int delivery_batch_size = 500;  // deliveries claimed per database round trip
  absl::Duration delivery_lease = absl::Seconds(30);  // a claim expires after this
  absl::Duration delivery_poll_interval = absl::Milliseconds(250);
  int max_delivery_attempts = 5;
  // MQTT 5: each notification carries the content type and a
  // notification_id user property (PRODUCT.md). Off, the same payload goes
  // without them: up to a third less of Herald's CPU per delivery.
  bool mqtt_notification_properties = true;
  absl::Duration retry_backoff_initial = absl::Seconds(1);
  absl::Duration retry_backoff_max = absl::Seconds(60);

  // Request limits.
  int64_t max_payload_bytes = 65536;  // encoded MQTT payload of one notification
  int max_targets_per_request = 10000;
  int max_batch_notifications = 500;  // notifications in one SendNotifications
  int64_t grpc_max_message_bytes = 4 * 1024 * 1024;
  int grpc_max_threads = 1024;  // threads of the sync gRPC server, waiting calls included

  absl::Duration shutdown_grace = absl::Seconds(20);
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kText;
};

// Thread safety: ParseConfig, ApplyEnvironment and ConfigFromFlags read or
// change process-wide flag state; call them from one thread at start-up. The
// other functions are pure and thread-safe.

// Looks up an environment variable: nullptr when it is not set. ParseConfig
// uses std::getenv; tests pass a map.
using EnvLookup = std::function<const char*(const char*)>;

// Parses `herald [serve|migrate|version] [flags]`: applies the HERALD_*
// environment to the flags, parses the command line (which wins), reads the
// secret files and validates the result (ValidateConfig).
//
// Repeated --mqtt_uri flags are merged into one comma-separated list
// (--mqtt_uri=a --mqtt_uri=b means both brokers). A secret given on the
// command line wins over the environment's other form of it: with
// --database_url_file on the command line HERALD_DATABASE_URL is ignored,
// with --database_url HERALD_DATABASE_URL_FILE, and with
// --mqtt_password_file HERALD_MQTT_PASSWORD.
//
// Returns kInvalidArgument, with a message naming the flag or variable and
// the rule, for a bad environment value, an unknown subcommand, a stray
// positional argument, an attempted --mqtt_password, an unreadable secret
// file or a value that breaks a rule. Like absl::ParseCommandLine, which it calls, it prints help and exits
// the process for --help, --helpfull and --version, and prints an error and
// exits for an unknown or malformed command-line flag.
//
// REQUIRES: called once, from main, before other threads start (it changes
// process-wide flag state).
absl::StatusOr<Config> ParseConfig(int argc, char** argv);

// Sets each Herald flag X whose variable HERALD_<X upper-cased> is set and
// non-empty (an empty variable counts as unset, as compose files and
// Kubernetes manifests often leave them) to that variable's value. Call it
// before absl::ParseCommandLine so the command line overrides it.
// kInvalidArgument naming the variable and the flag if a value does not
// parse (e.g. HERALD_DELIVERY_WORKERS=two).
absl::Status ApplyEnvironment(const EnvLookup& getenv);

// Builds a Config from the current flag values for `command` and resolves
// the secrets: --database_url_file (for serve and migrate), and
// --mqtt_password_file or HERALD_MQTT_PASSWORD and --mqtt_key_password_file
// (for serve only, so that a migration job needs no MQTT secret), and the
// --grpc_tls_* files (for serve only; PEM, at most 1 MiB each). Converts
// --mqtt_uri, --mqtt_version, --log_level and --log_format. Does not check
// ranges: see ValidateConfig.
//
// A secret and its file exclude each other: --database_url and
// --database_url_file both set, or HERALD_MQTT_PASSWORD and
// --mqtt_password_file, is kInvalidArgument. (ParseConfig lets the command
// line win: a flag given there hides the environment's other half.)
//
// kInvalidArgument, naming the flag and the path but never the content, when
// a secret or --grpc_tls_* file cannot be read or is empty, or a --grpc_tls_*
// file holds no PEM block.
absl::StatusOr<Config> ConfigFromFlags(std::string command, const EnvLookup& getenv);

// OK if `config` can run its command; otherwise kInvalidArgument listing
// every broken rule, each naming its flag, e.g.
// "--database_url: required for `herald serve`; --delivery_workers: must be
// between 1 and 64, got 0". `version` needs nothing; `migrate` needs only the
// database settings; `serve` checks everything, the MQTT options through
// ValidateMqttOptions and the topic templates through ValidateTopicTemplate
// (the response and presence templates also through TopicPattern::Compile,
// the presence template must contain {device_id}), and the gRPC TLS files:
// --grpc_tls_cert_file and --grpc_tls_key_file both or neither,
// --grpc_tls_client_ca_file only with them. (Whether the PEM parses and the
// key fits the certificate is checked where the credentials are built,
// service/api/server_credentials.h.)
absl::Status ValidateConfig(const Config& config);

// Reads a secret from the file at `path` for the flag `flag` (e.g.
// "--mqtt_password_file") and strips trailing line breaks ("\n", "\r\n"),
// which editors and `echo` add. kInvalidArgument naming the flag and the path
// (never the content) if the file cannot be read, is empty, or is larger
// than 64 KiB.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path, std::string_view flag);

// A one-line key=value summary of `config` for the start-up log: every
// setting an operator may want to check, with passwords redacted and other
// secrets reported only as "set" or "unset".
std::string DescribeConfig(const Config& config);

// The names of Herald's flags (without "--"), each also settable through
// EnvironmentVariableFor(name).
const std::vector<std::string>& ConfigFlagNames();

// "HERALD_" + `flag` in upper case: EnvironmentVariableFor("mqtt_uri") ==
// "HERALD_MQTT_URI".
std::string EnvironmentVariableFor(std::string_view flag);

// Herald's version ("0.1.0"), from the CMake project version.
std::string_view HeraldVersion();

}  // namespace herald

#endif  // HERALD_SERVICE_CONFIG_CONFIG_H_
