#include "service/config/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "service/core/database_url.h"
#include "service/core/topic.h"
#include "service/core/topic_pattern.h"

#ifndef HERALD_VERSION
#error "HERALD_VERSION must be defined by the build (service/config/CMakeLists.txt)"
#endif

namespace herald {
namespace {

// The defaults of every flag come from Config and MqttOptions, so that the
// struct, the flags and `herald --help` cannot disagree.
const Config& Defaults() {
  static const Config* const defaults = new Config();
  return *defaults;
}

std::string MqttVersionName(int version) { return version == 4 ? "3.1.1" : "5"; }

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "info";
}

const char* LogFormatName(LogFormat format) {
  return format == LogFormat::kJson ? "json" : "text";
}

}  // namespace
}  // namespace herald

// Flags. Each help text ends with its environment variable; the unit test
// checks that every flag in ConfigFlagNames() says so.

ABSL_FLAG(std::string, grpc_address, herald::Defaults().grpc_address,
          "Address the gRPC API listens on: HOST:PORT (port 0 picks a free port) or "
          "unix:PATH. Env HERALD_GRPC_ADDRESS.");
ABSL_FLAG(std::string, metrics_address, herald::Defaults().metrics_address,
          "Address of the Prometheus endpoint (/metrics): HOST:PORT. "
          "Env HERALD_METRICS_ADDRESS.");

ABSL_FLAG(std::string, database_url, "",
          "PostgreSQL to use, as a libpq connection string (\"host=db dbname=herald "
          "user=herald\") or a postgresql:// URL. Required by `serve` and `migrate`. It may "
          "hold a password: prefer --database_url_file or the environment to the command "
          "line. Env HERALD_DATABASE_URL.");
ABSL_FLAG(std::string, database_url_file, "",
          "File holding --database_url (e.g. a mounted Kubernetes Secret); trailing line "
          "breaks are ignored. Env HERALD_DATABASE_URL_FILE.");
ABSL_FLAG(int32_t, database_pool_size, herald::Defaults().database_pool_size,
          "PostgreSQL connections Herald keeps open, 1 to 256. Env HERALD_DATABASE_POOL_SIZE.");
ABSL_FLAG(bool, migrate, herald::Defaults().migrate_on_start,
          "`serve` applies pending database migrations before it starts serving. "
          "Env HERALD_MIGRATE.");

ABSL_FLAG(std::vector<std::string>, mqtt_uri, herald::Defaults().mqtt.server_uris,
          "MQTT broker URI(s): tcp://, mqtt://, ssl://, mqtts://, ws:// or wss://HOST:PORT. "
          "Several, comma-separated or by repeating the flag, are tried in turn (failover). "
          "Env HERALD_MQTT_URI (comma-separated).");
ABSL_FLAG(std::string, mqtt_client_id, herald::Defaults().mqtt.client_id,
          "MQTT client id; empty picks \"herald-\" + host name + a random suffix, which is "
          "what several replicas need. Env HERALD_MQTT_CLIENT_ID.");
ABSL_FLAG(std::string, mqtt_username, herald::Defaults().mqtt.username,
          "MQTT user name. Env HERALD_MQTT_USERNAME.");
ABSL_FLAG(std::string, mqtt_password_file, "",
          "File holding the MQTT password; trailing line breaks are ignored. The password "
          "can also come from the HERALD_MQTT_PASSWORD variable; there is no --mqtt_password "
          "flag, since command lines are visible to all users. "
          "Env HERALD_MQTT_PASSWORD_FILE.");
ABSL_FLAG(std::string, mqtt_ca_file, herald::Defaults().mqtt.ca_file,
          "PEM bundle of the CAs trusted to sign the broker's certificate (ssl://, wss://); "
          "empty uses the system's. Env HERALD_MQTT_CA_FILE.");
ABSL_FLAG(std::string, mqtt_cert_file, herald::Defaults().mqtt.cert_file,
          "PEM client certificate, for brokers that authenticate clients by certificate. "
          "Env HERALD_MQTT_CERT_FILE.");
ABSL_FLAG(std::string, mqtt_key_file, herald::Defaults().mqtt.key_file,
          "PEM private key of --mqtt_cert_file. Env HERALD_MQTT_KEY_FILE.");
ABSL_FLAG(std::string, mqtt_key_password_file, "",
          "File holding the passphrase of an encrypted --mqtt_key_file. "
          "Env HERALD_MQTT_KEY_PASSWORD_FILE.");
ABSL_FLAG(bool, mqtt_tls_verify, herald::Defaults().mqtt.tls_verify,
          "Verify the broker's certificate and host name. Turn off only for tests. "
          "Env HERALD_MQTT_TLS_VERIFY.");
ABSL_FLAG(std::string, mqtt_version, herald::MqttVersionName(herald::Defaults().mqtt.mqtt_version),
          "MQTT protocol version: \"5\" or \"3.1.1\". Version 5 adds no-subscriber detection, "
          "message expiry and response topics. Env HERALD_MQTT_VERSION.");
ABSL_FLAG(absl::Duration, mqtt_keepalive, herald::Defaults().mqtt.keep_alive,
          "MQTT keep-alive interval, e.g. 60s. Env HERALD_MQTT_KEEPALIVE.");
ABSL_FLAG(bool, mqtt_clean_session, herald::Defaults().mqtt.clean_session,
          "Start a clean MQTT session (clean start under v5) instead of resuming the "
          "broker's session and its queued messages. On by default: resuming a session "
          "makes Debian's Paho C 1.3 resend MQTT 5 publishes the broker refuses as "
          "malformed; the outbox retries unacknowledged publishes anyway. "
          "Env HERALD_MQTT_CLEAN_SESSION.");
ABSL_FLAG(absl::Duration, mqtt_connect_timeout, herald::Defaults().mqtt.connect_timeout,
          "Time allowed for one connection attempt to the broker. "
          "Env HERALD_MQTT_CONNECT_TIMEOUT.");
ABSL_FLAG(absl::Duration, mqtt_reconnect_min, herald::Defaults().mqtt.reconnect_min,
          "First delay before reconnecting after the connection is lost; it doubles on each "
          "failure up to --mqtt_reconnect_max. Env HERALD_MQTT_RECONNECT_MIN.");
ABSL_FLAG(absl::Duration, mqtt_reconnect_max, herald::Defaults().mqtt.reconnect_max,
          "Longest delay between reconnection attempts. Env HERALD_MQTT_RECONNECT_MAX.");
ABSL_FLAG(int32_t, mqtt_max_in_flight, herald::Defaults().mqtt.max_in_flight,
          "Publishes awaiting the broker's acknowledgement, at most. "
          "Env HERALD_MQTT_MAX_IN_FLIGHT.");
ABSL_FLAG(bool, mqtt_notification_properties, herald::Defaults().mqtt_notification_properties,
          "With MQTT 5, send each notification with the content type application/json and a "
          "notification_id user property. Off, the same payload (whose id field holds the same "
          "id) goes without them, which saves Herald up to a third of its CPU per delivery "
          "(most at QoS 1); the message expiry from the TTL is sent either way. "
          "Env HERALD_MQTT_NOTIFICATION_PROPERTIES.");

ABSL_FLAG(std::string, notification_topic_template,
          herald::Defaults().notification_topic_template,
          "Topic of a device's notifications when the device has no topic of its own. "
          "Placeholders: {device_id}, {owner_id}, {platform}, {meta.KEY}. "
          "Env HERALD_NOTIFICATION_TOPIC_TEMPLATE.");
ABSL_FLAG(std::string, command_topic_template, herald::Defaults().command_topic_template,
          "Topic commands are published to (placeholders as in "
          "--notification_topic_template). Env HERALD_COMMAND_TOPIC_TEMPLATE.");
ABSL_FLAG(std::string, response_topic_template, herald::Defaults().response_topic_template,
          "Topic devices answer commands on. Env HERALD_RESPONSE_TOPIC_TEMPLATE.");
ABSL_FLAG(std::string, presence_topic_template, herald::Defaults().presence_topic_template,
          "Topic devices report online/offline on (usually their retained Last Will). "
          "Env HERALD_PRESENCE_TOPIC_TEMPLATE.");
ABSL_FLAG(std::string, receipt_topic_template, herald::Defaults().receipt_topic_template,
          "Topic devices confirm received notifications on ({\"id\": \"...\"}). "
          "Env HERALD_RECEIPT_TOPIC_TEMPLATE.");

ABSL_FLAG(int32_t, max_pending_commands, herald::Defaults().max_pending_commands,
          "SendCommand calls that may wait for their device at once on this replica, 1 to "
          "100000; each holds a gRPC thread, and more are refused with RESOURCE_EXHAUSTED. "
          "Env HERALD_MAX_PENDING_COMMANDS.");
ABSL_FLAG(absl::Duration, command_backoff_initial, herald::Defaults().command_backoff_initial,
          "Pause before a command's first retry (after an attempt's timeout); it doubles per "
          "retry up to --command_backoff_max. Answers are still taken meanwhile. "
          "Env HERALD_COMMAND_BACKOFF_INITIAL.");
ABSL_FLAG(absl::Duration, command_backoff_max, herald::Defaults().command_backoff_max,
          "Longest pause between a command's attempts. Env HERALD_COMMAND_BACKOFF_MAX.");
ABSL_FLAG(absl::Duration, command_poll_interval, herald::Defaults().command_poll_interval,
          "With MQTT 5, how often a waiting command re-reads its database row in case the "
          "notification that another replica received the answer was lost, 10ms to 1m. "
          "Env HERALD_COMMAND_POLL_INTERVAL.");
ABSL_FLAG(bool, insecure_disable_auth, false,
          "Switch caller authentication off: every call, without an API key, acts for the "
          "tenant \"default\" with every scope. For local development only; Herald warns at "
          "start. Env HERALD_INSECURE_DISABLE_AUTH.");
ABSL_FLAG(double, tenant_rate_limit, herald::Defaults().tenant_rate_limit,
          "Calls per second one tenant may make on average (a SendNotifications batch counts "
          "its entries); beyond it RESOURCE_EXHAUSTED with a retry hint. 0 = unlimited. "
          "Env HERALD_TENANT_RATE_LIMIT.");
ABSL_FLAG(double, tenant_rate_burst, herald::Defaults().tenant_rate_burst,
          "Calls one tenant may make at once above its rate (the token bucket's size). "
          "Env HERALD_TENANT_RATE_BURST.");
ABSL_FLAG(std::string, tenant, herald::Defaults().keys_tenant,
          "herald keys create/list: the tenant (made by `keys create` if new). Env HERALD_TENANT.");
ABSL_FLAG(std::vector<std::string>, scopes, {},
          "herald keys create: what the key may do, comma-separated: notify, command, "
          "devices:write, devices:read, stats, or all. Env HERALD_SCOPES.");
ABSL_FLAG(std::string, key_name, "",
          "herald keys create: what the key is for, e.g. billing-backend. Env HERALD_KEY_NAME.");
ABSL_FLAG(std::string, topic_prefix, "",
          "herald keys create: the topic prefix (one topic level) of a new tenant; its topics "
          "all lie under it. Default: the tenant id. Env HERALD_TOPIC_PREFIX.");
ABSL_FLAG(std::string, mqtt_share_group, herald::Defaults().mqtt_share_group,
          "MQTT 5 shared subscription group for command responses ($share/GROUP/...): the "
          "broker gives each response to one replica of the group. Give each deployment "
          "that shares a broker its own. Env HERALD_MQTT_SHARE_GROUP.");

ABSL_FLAG(int32_t, delivery_workers, herald::Defaults().delivery_workers,
          "Delivery workers, each claiming and publishing batches of pending deliveries, "
          "1 to 64. Env HERALD_DELIVERY_WORKERS.");
ABSL_FLAG(int32_t, delivery_batch_size, herald::Defaults().delivery_batch_size,
          "Deliveries a worker claims per database round trip, 1 to 10000. "
          "Env HERALD_DELIVERY_BATCH_SIZE.");
ABSL_FLAG(absl::Duration, delivery_lease, herald::Defaults().delivery_lease,
          "How long a claimed delivery stays with its replica; after that another replica "
          "may take it over (e.g. after a crash). 1s to 1h. Env HERALD_DELIVERY_LEASE.");
ABSL_FLAG(absl::Duration, delivery_poll_interval, herald::Defaults().delivery_poll_interval,
          "How often an idle worker looks for due deliveries (scheduled, retried, or left "
          "by another replica), 1ms to 1m. Env HERALD_DELIVERY_POLL_INTERVAL.");
ABSL_FLAG(int32_t, max_delivery_attempts, herald::Defaults().max_delivery_attempts,
          "Publish attempts per target before it is marked failed, 1 to 100. "
          "Env HERALD_MAX_DELIVERY_ATTEMPTS.");
ABSL_FLAG(absl::Duration, retry_backoff_initial, herald::Defaults().retry_backoff_initial,
          "Delay before the first retry of a failed delivery; it doubles per attempt up to "
          "--retry_backoff_max. Env HERALD_RETRY_BACKOFF_INITIAL.");
ABSL_FLAG(absl::Duration, retry_backoff_max, herald::Defaults().retry_backoff_max,
          "Longest delay between delivery retries. Env HERALD_RETRY_BACKOFF_MAX.");

ABSL_FLAG(int64_t, max_payload_bytes, herald::Defaults().max_payload_bytes,
          "Largest encoded MQTT payload of a notification or command, in bytes; larger "
          "requests are rejected with INVALID_ARGUMENT. Env HERALD_MAX_PAYLOAD_BYTES.");
ABSL_FLAG(int32_t, max_targets_per_request, herald::Defaults().max_targets_per_request,
          "Most devices one notification may resolve to. Env HERALD_MAX_TARGETS_PER_REQUEST.");
ABSL_FLAG(int32_t, max_batch_notifications, herald::Defaults().max_batch_notifications,
          "Most notifications in one SendNotifications call. "
          "Env HERALD_MAX_BATCH_NOTIFICATIONS.");
ABSL_FLAG(int64_t, grpc_max_message_bytes, herald::Defaults().grpc_max_message_bytes,
          "Largest gRPC message accepted or sent, in bytes. Env HERALD_GRPC_MAX_MESSAGE_BYTES.");
ABSL_FLAG(int32_t, grpc_max_threads, herald::Defaults().grpc_max_threads,
          "Most threads the gRPC server runs calls on (each running call, waiting SendCommand "
          "and open Watch stream holds one); beyond it new calls are RESOURCE_EXHAUSTED, so a "
          "flood of connections cannot exhaust memory. Env HERALD_GRPC_MAX_THREADS.");
ABSL_FLAG(std::string, grpc_tls_cert_file, "",
          "PEM certificate chain (the server's certificate first) for TLS on the gRPC port; with "
          "--grpc_tls_key_file the port speaks TLS only. Read at start. "
          "Env HERALD_GRPC_TLS_CERT_FILE.");
ABSL_FLAG(std::string, grpc_tls_key_file, "",
          "PEM private key (unencrypted) of --grpc_tls_cert_file. Read at start. "
          "Env HERALD_GRPC_TLS_KEY_FILE.");
ABSL_FLAG(std::string, grpc_tls_client_ca_file, "",
          "PEM CA certificate(s): callers must present a certificate signed by one of them "
          "(mutual TLS). Needs --grpc_tls_cert_file and --grpc_tls_key_file. Read at start. "
          "Env HERALD_GRPC_TLS_CLIENT_CA_FILE.");
ABSL_FLAG(absl::Duration, shutdown_grace, herald::Defaults().shutdown_grace,
          "On SIGTERM, time allowed for in-flight RPCs and publishes to finish before Herald "
          "exits anyway. Env HERALD_SHUTDOWN_GRACE.");
ABSL_FLAG(std::string, log_level, std::string(herald::LogLevelName(herald::Defaults().log_level)),
          "Least severe log level written: debug, info, warning or error. "
          "Env HERALD_LOG_LEVEL.");
ABSL_FLAG(std::string, log_format, std::string(herald::LogFormatName(herald::Defaults().log_format)),
          "Log line format: text (key=value) or json (one object per line). "
          "Env HERALD_LOG_FORMAT.");

namespace herald {
namespace {

constexpr char kMqttPasswordVariable[] = "HERALD_MQTT_PASSWORD";
constexpr size_t kMaxSecretFileBytes = 64 * 1024;
constexpr char kRedacted[] = "REDACTED";

constexpr char kUsage[] =
    "herald [serve|migrate|version|keys] [flags]\n"
    "\n"
    "Herald sends notifications and commands to MQTT devices on behalf of other\n"
    "backends, through a gRPC API.\n"
    "\n"
    "Commands:\n"
    "  serve    run the gRPC API and the delivery workers (the default)\n"
    "  migrate  apply pending database migrations, then exit\n"
    "  version  print the version, then exit\n"
    "  keys create --tenant=T --scopes=notify,... [--key_name=N] [--topic_prefix=P]\n"
    "           make an API key (printed once); keys list [--tenant=T];\n"
    "           keys revoke KEY_ID\n"
    "\n"
    "Every flag --X can also be set by the environment variable HERALD_X (upper case,\n"
    "e.g. HERALD_DATABASE_URL); the command line wins. Secrets can come from files:\n"
    "--database_url_file, --mqtt_password_file, --mqtt_key_password_file; the MQTT\n"
    "password also from HERALD_MQTT_PASSWORD.";

// Debian's absl::string_view is not std::string_view: convert at the API.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

bool IsCommand(absl::string_view command) {
  return command == kCommandServe || command == kCommandMigrate || command == kCommandVersion ||
         command == kCommandKeys;
}

absl::CommandLineFlag& FlagNamed(absl::string_view name) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  // Every name passed here is one of this file's flags.
  if (flag == nullptr) std::abort();
  return *flag;
}

std::string Quote(absl::string_view value) { return absl::StrCat("\"", value, "\""); }

// The non-empty value of the variable `name`, if set.
std::optional<std::string> NonEmptyEnv(const EnvLookup& getenv, const std::string& name) {
  const char* value = getenv(name.c_str());
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

absl::Status BothSet(absl::string_view first, absl::string_view second) {
  return absl::InvalidArgumentError(
      absl::StrCat(first, " and ", second, " are both set; set only one of them"));
}

// A secret and the file holding it exclude each other. When one of them is on
// the command line, the environment's other one is hidden (the command line
// wins), so that only a pair from the same source is ambiguous.
struct ShadowedVariable {
  absl::string_view flag;      // given on the command line ...
  absl::string_view variable;  // ... hides this variable
};
constexpr ShadowedVariable kShadowedVariables[] = {
    {"database_url", "HERALD_DATABASE_URL_FILE"},
    {"database_url_file", "HERALD_DATABASE_URL"},
    {"mqtt_password_file", kMqttPasswordVariable},
};

// The names of the flags in `args` (argv[0] and everything after "--"
// excluded): "--name=value", "-name=value", "--name value", "--noname".
absl::flat_hash_set<std::string> FlagNamesIn(const std::vector<std::string>& args) {
  absl::flat_hash_set<std::string> names;
  for (size_t i = 1; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "-")) continue;
    absl::ConsumePrefix(&arg, "-");
    names.emplace(arg.substr(0, arg.find('=')));
  }
  return names;
}

// argv with every --mqtt_uri merged into one comma-separated --mqtt_uri, so
// that repeating the flag adds brokers (absl alone keeps the last value).
// Accepts the forms --mqtt_uri=V, -mqtt_uri=V, --mqtt_uri V and -mqtt_uri V,
// and stops at "--" like absl.
std::vector<std::string> MergeRepeatedMqttUri(int argc, char** argv) {
  std::vector<std::string> out;
  std::vector<std::string> values;
  std::optional<size_t> first_position;
  bool end_of_flags = false;
  for (int i = 0; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (i == 0 || end_of_flags) {
      out.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      end_of_flags = true;
      out.emplace_back(arg);
      continue;
    }
    absl::string_view name = arg;
    if (absl::StartsWith(name, "--")) {
      name.remove_prefix(2);
    } else if (absl::StartsWith(name, "-")) {
      name.remove_prefix(1);
    } else {
      out.emplace_back(arg);
      continue;
    }
    std::optional<std::string> value;
    if (name == "mqtt_uri" && i + 1 < argc) {
      value = argv[++i];
    } else if (absl::StartsWith(name, "mqtt_uri=")) {
      value = std::string(name.substr(std::strlen("mqtt_uri=")));
    }
    if (!value.has_value()) {
      out.emplace_back(arg);
      continue;
    }
    if (!first_position.has_value()) {
      first_position = out.size();
      out.emplace_back();  // filled in below
    }
    values.push_back(*std::move(value));
  }
  if (first_position.has_value()) {
    out[*first_position] = absl::StrCat("--mqtt_uri=", absl::StrJoin(values, ","));
  }
  return out;
}

// Listen addresses: HOST:PORT, [IPV6]:PORT, or (gRPC only) unix:PATH.
absl::Status ValidateListenAddress(absl::string_view address, absl::string_view flag,
                                   bool allow_unix) {
  const std::string expected =
      allow_unix ? "HOST:PORT (e.g. 0.0.0.0:50051) or unix:PATH" : "HOST:PORT (e.g. 0.0.0.0:9464)";
  auto invalid = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": must be ", expected, ", got ", Quote(address)));
  };
  if (allow_unix && absl::StartsWith(address, "unix:")) {
    return address.size() > 5 ? absl::OkStatus() : invalid();
  }
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return invalid();
  absl::string_view host = address.substr(0, colon);
  absl::string_view port = address.substr(colon + 1);
  if (absl::StartsWith(host, "[")) {
    if (!absl::EndsWith(host, "]") || host.size() < 3) return invalid();
  } else if (absl::StrContains(host, ':') || absl::StrContains(host, ']')) {
    return invalid();  // a bare IPv6 address needs brackets
  }
  for (char c : host) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) || c == ',') return invalid();
  }
  int port_number = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(port, &port_number) ||
      port_number > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": the port must be 0 to 65535, got ",
                                                   Quote(address)));
  }
  return absl::OkStatus();
}

// The host and port of a HOST:PORT address already validated; nullopt for
// unix:PATH.
std::optional<std::pair<absl::string_view, absl::string_view>> SplitHostPort(
    absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) return std::nullopt;
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return std::nullopt;
  return std::make_pair(address.substr(0, colon), address.substr(colon + 1));
}

bool IsWildcardHost(absl::string_view host) {
  return host == "0.0.0.0" || host == "[::]" || host == "*" || host.empty();
}

void CheckRange(std::vector<std::string>& errors, absl::string_view flag, int64_t value,
                int64_t min, int64_t max) {
  if (value < min || value > max) {
    errors.push_back(
        absl::StrCat("--", flag, ": must be between ", min, " and ", max, ", got ", value));
  }
}

void CheckRange(std::vector<std::string>& errors, absl::string_view flag, absl::Duration value,
                absl::Duration min, absl::Duration max) {
  if (value < min || value > max) {
    errors.push_back(absl::StrCat("--", flag, ": must be between ", absl::FormatDuration(min),
                                  " and ", absl::FormatDuration(max), ", got ",
                                  absl::FormatDuration(value)));
  }
}

void AddError(std::vector<std::string>& errors, const absl::Status& status) {
  if (!status.ok()) errors.emplace_back(status.message());
}

bool IsUrlForm(absl::string_view url) {
  return absl::StartsWithIgnoreCase(url, "postgresql://") ||
         absl::StartsWithIgnoreCase(url, "postgres://");
}

bool IsSecretKey(absl::string_view key) {
  return absl::EqualsIgnoreCase(key, "password") || absl::EqualsIgnoreCase(key, "sslpassword");
}

std::string RedactUrl(absl::string_view url) {
  const size_t scheme_end = url.find("://") + 3;
  absl::string_view rest = url.substr(scheme_end);
  std::string out(url.substr(0, scheme_end));

  // The user information ends at the last '@' of the authority. A password
  // with a raw '/' or '?' in it (it should be percent-encoded) would end the
  // authority early, so the search reaches past them: over-redacting a
  // strange URL is harmless, leaking part of a password is not.
  const size_t query = rest.find('?');
  size_t at = rest.substr(0, query).rfind('@');
  if (at == absl::string_view::npos) at = rest.find('@');
  if (at != absl::string_view::npos) {
    absl::string_view userinfo = rest.substr(0, at);
    const size_t colon = userinfo.find(':');
    if (colon != absl::string_view::npos) {
      absl::StrAppend(&out, userinfo.substr(0, colon), ":", kRedacted);
    } else {
      absl::StrAppend(&out, userinfo);
    }
    rest.remove_prefix(at);  // keeps the '@'
  }

  // Query parameters may hold any connection setting, passwords included.
  const size_t query_start = rest.find('?');
  if (query_start == absl::string_view::npos) {
    absl::StrAppend(&out, rest);
    return out;
  }
  absl::StrAppend(&out, rest.substr(0, query_start + 1));
  std::vector<std::string> parameters;
  for (absl::string_view parameter : absl::StrSplit(rest.substr(query_start + 1), '&')) {
    const size_t equals = parameter.find('=');
    if (equals != absl::string_view::npos && IsSecretKey(parameter.substr(0, equals))) {
      parameters.push_back(absl::StrCat(parameter.substr(0, equals), "=", kRedacted));
    } else {
      parameters.emplace_back(parameter);
    }
  }
  absl::StrAppend(&out, absl::StrJoin(parameters, "&"));
  return out;
}

// The PEM file of a --grpc_tls_* flag, read like a secret (the key is one).
// Its content is checked in depth where the credentials are built; here
// only that it is PEM at all, so that a DER file or a wrong path reads as
// such.
void ReadPemFile(const std::string& path, absl::string_view flag, std::string& pem,
                 std::vector<std::string>& errors) {
  if (path.empty()) return;
  const std::string flag_name = absl::StrCat("--", flag);
  absl::StatusOr<std::string> read = ReadSecretFile(path, flag_name);
  if (!read.ok()) {
    errors.emplace_back(read.status().message());
  } else if (!absl::StrContains(*read, "-----BEGIN ")) {
    errors.push_back(absl::StrCat(flag_name, ": ", Quote(path),
                                  " holds no PEM block (\"-----BEGIN ...\"); is it DER, or the "
                                  "wrong file?"));
  } else {
    pem = *std::move(read);
  }
}

}  // namespace

std::string_view HeraldVersion() { return HERALD_VERSION; }

std::string EnvironmentVariableFor(std::string_view flag) {
  return absl::StrCat("HERALD_", absl::AsciiStrToUpper(Av(flag)));
}

const std::vector<std::string>& ConfigFlagNames() {
  static const auto* const names = new std::vector<std::string>{
      "grpc_address",
      "metrics_address",
      "database_url",
      "database_url_file",
      "database_pool_size",
      "migrate",
      "mqtt_uri",
      "mqtt_client_id",
      "mqtt_username",
      "mqtt_password_file",
      "mqtt_ca_file",
      "mqtt_cert_file",
      "mqtt_key_file",
      "mqtt_key_password_file",
      "mqtt_tls_verify",
      "mqtt_version",
      "mqtt_keepalive",
      "mqtt_clean_session",
      "mqtt_connect_timeout",
      "mqtt_reconnect_min",
      "mqtt_reconnect_max",
      "mqtt_max_in_flight",
      "mqtt_notification_properties",
      "notification_topic_template",
      "command_topic_template",
      "response_topic_template",
      "presence_topic_template",
      "receipt_topic_template",
      "max_pending_commands",
      "command_backoff_initial",
      "command_backoff_max",
      "command_poll_interval",
      "mqtt_share_group",
      "insecure_disable_auth",
      "tenant_rate_limit",
      "tenant_rate_burst",
      "tenant",
      "scopes",
      "key_name",
      "topic_prefix",
      "delivery_workers",
      "delivery_batch_size",
      "delivery_lease",
      "delivery_poll_interval",
      "max_delivery_attempts",
      "retry_backoff_initial",
      "retry_backoff_max",
      "max_payload_bytes",
      "max_targets_per_request",
      "max_batch_notifications",
      "grpc_max_message_bytes",
      "grpc_max_threads",
      "grpc_tls_cert_file",
      "grpc_tls_key_file",
      "grpc_tls_client_ca_file",
      "shutdown_grace",
      "log_level",
      "log_format",
  };
  return *names;
}

absl::Status ApplyEnvironment(const EnvLookup& getenv) {
  std::vector<std::string> errors;
  for (const std::string& name : ConfigFlagNames()) {
    const std::string variable = EnvironmentVariableFor(name);
    std::optional<std::string> value = NonEmptyEnv(getenv, variable);
    if (!value.has_value()) continue;
    std::string error;
    if (!FlagNamed(name).ParseFrom(*value, &error)) {
      // String flags (the only ones that may hold a secret) always parse, so
      // the value is safe to quote here.
      errors.push_back(absl::StrCat(variable, ": not a valid value for --", name, ": ", error));
    }
  }
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path, std::string_view flag_name) {
  const absl::string_view flag = Av(flag_name);
  // Not required to be a regular file: a pipe (--mqtt_password_file=<(...))
  // is a fine source. A directory opens but reads as nothing.
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": ", Quote(path), " is a directory, not a file"));
  }
  errno = 0;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    const int error = errno;
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": cannot read ", Quote(path), ": ",
        error != 0 ? std::strerror(error) : "cannot open the file"));
  }
  std::string content;
  char buffer[4096];
  while (file.read(buffer, sizeof(buffer)) || file.gcount() > 0) {
    content.append(buffer, static_cast<size_t>(file.gcount()));
    if (content.size() > kMaxSecretFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(flag, ": ", Quote(path), " is larger than ",
                                                     kMaxSecretFileBytes,
                                                     " bytes; is it the right file?"));
    }
  }
  if (file.bad()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": cannot read ", Quote(path)));
  }
  while (!content.empty() && (content.back() == '\n' || content.back() == '\r')) {
    content.pop_back();
  }
  if (content.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", Quote(path), " is empty"));
  }
  return content;
}

absl::StatusOr<Config> ConfigFromFlags(std::string command, const EnvLookup& getenv) {
  if (!IsCommand(command)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command ", Quote(command),
                                                   "; expected serve, migrate, version or keys"));
  }
  Config config;
  config.command = std::move(command);
  if (config.command == kCommandVersion) return config;
  const bool serve = config.command == kCommandServe;

  std::vector<std::string> errors;
  config.grpc_address = absl::GetFlag(FLAGS_grpc_address);
  config.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  config.database_pool_size = absl::GetFlag(FLAGS_database_pool_size);
  config.migrate_on_start = absl::GetFlag(FLAGS_migrate);
  config.auth_enabled = !absl::GetFlag(FLAGS_insecure_disable_auth);
  config.tenant_rate_limit = absl::GetFlag(FLAGS_tenant_rate_limit);
  config.tenant_rate_burst = absl::GetFlag(FLAGS_tenant_rate_burst);
  config.keys_tenant = absl::GetFlag(FLAGS_tenant);
  config.keys_scopes = absl::GetFlag(FLAGS_scopes);
  config.keys_name = absl::GetFlag(FLAGS_key_name);
  config.keys_topic_prefix = absl::GetFlag(FLAGS_topic_prefix);

  // The database URL, directly or from its file.
  config.database_url = absl::GetFlag(FLAGS_database_url);
  const std::string database_url_file = absl::GetFlag(FLAGS_database_url_file);
  if (!database_url_file.empty()) {
    if (!config.database_url.empty()) {
      errors.emplace_back(BothSet("--database_url", "--database_url_file").message());
    } else {
      absl::StatusOr<std::string> url = ReadSecretFile(database_url_file, "--database_url_file");
      if (url.ok()) {
        config.database_url = *std::move(url);
      } else {
        errors.emplace_back(url.status().message());
      }
    }
  }

  MqttOptions& mqtt = config.mqtt;
  mqtt.server_uris.clear();
  for (const std::string& uri : absl::GetFlag(FLAGS_mqtt_uri)) {
    absl::string_view trimmed = absl::StripAsciiWhitespace(uri);
    if (!trimmed.empty()) mqtt.server_uris.emplace_back(trimmed);
  }
  mqtt.client_id = absl::GetFlag(FLAGS_mqtt_client_id);
  mqtt.username = absl::GetFlag(FLAGS_mqtt_username);
  mqtt.ca_file = absl::GetFlag(FLAGS_mqtt_ca_file);
  mqtt.cert_file = absl::GetFlag(FLAGS_mqtt_cert_file);
  mqtt.key_file = absl::GetFlag(FLAGS_mqtt_key_file);
  mqtt.tls_verify = absl::GetFlag(FLAGS_mqtt_tls_verify);
  const std::string mqtt_version = absl::GetFlag(FLAGS_mqtt_version);
  if (mqtt_version == "5") {
    mqtt.mqtt_version = 5;
  } else if (mqtt_version == "3.1.1") {
    mqtt.mqtt_version = 4;
  } else {
    errors.push_back(
        absl::StrCat("--mqtt_version: must be \"5\" or \"3.1.1\", got ", Quote(mqtt_version)));
  }
  mqtt.keep_alive = absl::GetFlag(FLAGS_mqtt_keepalive);
  mqtt.clean_session = absl::GetFlag(FLAGS_mqtt_clean_session);
  mqtt.connect_timeout = absl::GetFlag(FLAGS_mqtt_connect_timeout);
  mqtt.reconnect_min = absl::GetFlag(FLAGS_mqtt_reconnect_min);
  mqtt.reconnect_max = absl::GetFlag(FLAGS_mqtt_reconnect_max);
  mqtt.max_in_flight = absl::GetFlag(FLAGS_mqtt_max_in_flight);
  config.mqtt_notification_properties = absl::GetFlag(FLAGS_mqtt_notification_properties);

  // MQTT secrets: only `serve` talks to the broker.
  if (serve) {
    const std::string password_file = absl::GetFlag(FLAGS_mqtt_password_file);
    std::optional<std::string> password = NonEmptyEnv(getenv, kMqttPasswordVariable);
    if (!password_file.empty() && password.has_value()) {
      errors.emplace_back(BothSet(kMqttPasswordVariable,
                                  "--mqtt_password_file (HERALD_MQTT_PASSWORD_FILE)")
                              .message());
    } else if (!password_file.empty()) {
      absl::StatusOr<std::string> read = ReadSecretFile(password_file, "--mqtt_password_file");
      if (read.ok()) {
        mqtt.password = *std::move(read);
      } else {
        errors.emplace_back(read.status().message());
      }
    } else if (password.has_value()) {
      mqtt.password = *std::move(password);
    }

    const std::string key_password_file = absl::GetFlag(FLAGS_mqtt_key_password_file);
    if (!key_password_file.empty()) {
      absl::StatusOr<std::string> read =
          ReadSecretFile(key_password_file, "--mqtt_key_password_file");
      if (read.ok()) {
        mqtt.key_password = *std::move(read);
      } else {
        errors.emplace_back(read.status().message());
      }
    }
  }

  config.notification_topic_template = absl::GetFlag(FLAGS_notification_topic_template);
  config.command_topic_template = absl::GetFlag(FLAGS_command_topic_template);
  config.response_topic_template = absl::GetFlag(FLAGS_response_topic_template);
  config.presence_topic_template = absl::GetFlag(FLAGS_presence_topic_template);
  config.receipt_topic_template = absl::GetFlag(FLAGS_receipt_topic_template);

  config.max_pending_commands = absl::GetFlag(FLAGS_max_pending_commands);
  config.command_backoff_initial = absl::GetFlag(FLAGS_command_backoff_initial);
  config.command_backoff_max = absl::GetFlag(FLAGS_command_backoff_max);
  config.command_poll_interval = absl::GetFlag(FLAGS_command_poll_interval);
  config.mqtt_share_group = absl::GetFlag(FLAGS_mqtt_share_group);

  config.delivery_workers = absl::GetFlag(FLAGS_delivery_workers);
  config.delivery_batch_size = absl::GetFlag(FLAGS_delivery_batch_size);
  config.delivery_lease = absl::GetFlag(FLAGS_delivery_lease);
  config.delivery_poll_interval = absl::GetFlag(FLAGS_delivery_poll_interval);
  config.max_delivery_attempts = absl::GetFlag(FLAGS_max_delivery_attempts);
  config.retry_backoff_initial = absl::GetFlag(FLAGS_retry_backoff_initial);
  config.retry_backoff_max = absl::GetFlag(FLAGS_retry_backoff_max);
  config.max_payload_bytes = absl::GetFlag(FLAGS_max_payload_bytes);
  config.max_targets_per_request = absl::GetFlag(FLAGS_max_targets_per_request);
  config.max_batch_notifications = absl::GetFlag(FLAGS_max_batch_notifications);
  config.grpc_max_message_bytes = absl::GetFlag(FLAGS_grpc_max_message_bytes);
  config.grpc_max_threads = absl::GetFlag(FLAGS_grpc_max_threads);
  config.grpc_tls_cert_file = absl::GetFlag(FLAGS_grpc_tls_cert_file);
  config.grpc_tls_key_file = absl::GetFlag(FLAGS_grpc_tls_key_file);
  config.grpc_tls_client_ca_file = absl::GetFlag(FLAGS_grpc_tls_client_ca_file);
  if (serve) {  // only `serve` listens
    ReadPemFile(config.grpc_tls_cert_file, "grpc_tls_cert_file", config.grpc_tls_cert_pem, errors);
    ReadPemFile(config.grpc_tls_key_file, "grpc_tls_key_file", config.grpc_tls_key_pem, errors);
    ReadPemFile(config.grpc_tls_client_ca_file, "grpc_tls_client_ca_file",
                config.grpc_tls_client_ca_pem, errors);
  }
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);

  const std::string log_level = absl::GetFlag(FLAGS_log_level);
  if (std::optional<LogLevel> level = ParseLogLevel(log_level); level.has_value()) {
    config.log_level = *level;
  } else {
    errors.push_back(absl::StrCat("--log_level: must be debug, info, warning or error, got ",
                                  Quote(log_level)));
  }
  const std::string log_format = absl::GetFlag(FLAGS_log_format);
  if (std::optional<LogFormat> format = ParseLogFormat(log_format); format.has_value()) {
    config.log_format = *format;
  } else {
    errors.push_back(
        absl::StrCat("--log_format: must be text or json, got ", Quote(log_format)));
  }

  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return config;
}

absl::Status ValidateConfig(const Config& config) {
  if (!IsCommand(config.command)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command ", Quote(config.command),
                                                   "; expected serve, migrate, version or keys"));
  }
  if (config.command == kCommandVersion) return absl::OkStatus();
  const bool serve = config.command == kCommandServe;

  std::vector<std::string> errors;
  if (config.database_url.empty()) {
    errors.push_back(absl::StrCat("--database_url: required for `herald ", config.command,
                                  "` (or --database_url_file, or HERALD_DATABASE_URL)"));
  } else if (!IsUrlForm(config.database_url) &&
             !absl::StrContains(config.database_url, '=')) {
    // Not quoted: a malformed value may still hold a password.
    errors.push_back(
        "--database_url: must be a libpq connection string (\"host=db dbname=herald\") or a "
        "postgresql:// URL");
  }
  CheckRange(errors, "database_pool_size", config.database_pool_size, 1, 256);

  if (serve) {
    AddError(errors, ValidateListenAddress(config.grpc_address, "grpc_address", true));
    AddError(errors, ValidateListenAddress(config.metrics_address, "metrics_address", false));
    const auto grpc = SplitHostPort(config.grpc_address);
    const auto metrics = SplitHostPort(config.metrics_address);
    if (grpc.has_value() && metrics.has_value() && grpc->second == metrics->second &&
        grpc->second != "0" &&
        (grpc->first == metrics->first || IsWildcardHost(grpc->first) ||
         IsWildcardHost(metrics->first))) {
      errors.push_back(absl::StrCat("--metrics_address: must not use the port of --grpc_address (",
                                    grpc->second, ")"));
    }

    AddError(errors, ValidateMqttOptions(config.mqtt));
    if (config.tenant_rate_limit < 0 || config.tenant_rate_burst < 0) {
      errors.push_back("--tenant_rate_limit, --tenant_rate_burst: must be >= 0 (0 = unlimited)");
    }

    const std::pair<absl::string_view, const std::string*> templates[] = {
        {"--notification_topic_template", &config.notification_topic_template},
        {"--command_topic_template", &config.command_topic_template},
        {"--response_topic_template", &config.response_topic_template},
        {"--presence_topic_template", &config.presence_topic_template},
        {"--receipt_topic_template", &config.receipt_topic_template},
    };
    for (const auto& [flag, value] : templates) {
      AddError(errors, ValidateTopicTemplate(*value, flag));
    }
    // Herald subscribes to these and maps each topic back to its device.
    if (ValidateTopicTemplate(config.response_topic_template, "").ok()) {
      AddError(errors, TopicPattern::Compile(config.response_topic_template,
                                             "--response_topic_template")
                           .status());
    }
    if (ValidateTopicTemplate(config.presence_topic_template, "").ok()) {
      absl::StatusOr<TopicPattern> presence =
          TopicPattern::Compile(config.presence_topic_template, "--presence_topic_template");
      if (!presence.ok()) {
        AddError(errors, presence.status());
      } else if (!presence->has_device_id()) {
        errors.push_back(
            "--presence_topic_template: must contain {device_id}, to tell which device a "
            "presence message is about");
      }
    }

    CheckRange(errors, "max_pending_commands", config.max_pending_commands, 1, 100000);
    CheckRange(errors, "command_backoff_initial", config.command_backoff_initial,
               absl::Milliseconds(1), absl::Minutes(1));
    CheckRange(errors, "command_backoff_max", config.command_backoff_max, absl::Milliseconds(1),
               absl::Minutes(10));
    if (config.command_backoff_max < config.command_backoff_initial) {
      errors.push_back(absl::StrCat(
          "--command_backoff_max: must be at least --command_backoff_initial (",
          absl::FormatDuration(config.command_backoff_initial), "), got ",
          absl::FormatDuration(config.command_backoff_max)));
    }
    CheckRange(errors, "command_poll_interval", config.command_poll_interval,
               absl::Milliseconds(10), absl::Minutes(1));
    if (config.mqtt_share_group.empty() ||
        config.mqtt_share_group.find_first_of("/+#") != std::string::npos ||
        config.mqtt_share_group.size() > 256) {
      errors.push_back(absl::StrCat(
          "--mqtt_share_group: must be 1-256 characters without '/', '+' or '#' (one topic "
          "level), got ",
          Quote(config.mqtt_share_group)));
    }

    CheckRange(errors, "delivery_workers", config.delivery_workers, 1, 64);
    CheckRange(errors, "delivery_batch_size", config.delivery_batch_size, 1, 10000);
    CheckRange(errors, "delivery_lease", config.delivery_lease, absl::Seconds(1), absl::Hours(1));
    CheckRange(errors, "delivery_poll_interval", config.delivery_poll_interval,
               absl::Milliseconds(1), absl::Minutes(1));
    CheckRange(errors, "max_delivery_attempts", config.max_delivery_attempts, 1, 100);
    CheckRange(errors, "retry_backoff_initial", config.retry_backoff_initial,
               absl::Milliseconds(1), absl::Hours(1));
    CheckRange(errors, "retry_backoff_max", config.retry_backoff_max, absl::Milliseconds(1),
               absl::Hours(24));
    if (config.retry_backoff_max < config.retry_backoff_initial) {
      errors.push_back(absl::StrCat("--retry_backoff_max: must be at least --retry_backoff_initial (",
                                    absl::FormatDuration(config.retry_backoff_initial), "), got ",
                                    absl::FormatDuration(config.retry_backoff_max)));
    }
    // 268,435,455 bytes is the largest MQTT packet.
    CheckRange(errors, "max_payload_bytes", config.max_payload_bytes, 1, 268435455);
    CheckRange(errors, "max_targets_per_request", config.max_targets_per_request, 1, 1000000);
    CheckRange(errors, "max_batch_notifications", config.max_batch_notifications, 1, 10000);
    CheckRange(errors, "grpc_max_message_bytes", config.grpc_max_message_bytes, 1024,
               int64_t{1} << 30);
    CheckRange(errors, "grpc_max_threads", config.grpc_max_threads, 16, 100000);
    const bool tls_cert = !config.grpc_tls_cert_file.empty();
    const bool tls_key = !config.grpc_tls_key_file.empty();
    if (tls_cert && !tls_key) {
      errors.push_back(
          "--grpc_tls_key_file: required with --grpc_tls_cert_file (TLS needs the certificate's "
          "private key)");
    } else if (tls_key && !tls_cert) {
      errors.push_back(
          "--grpc_tls_cert_file: required with --grpc_tls_key_file (TLS needs the certificate "
          "of the key)");
    }
    if (!config.grpc_tls_client_ca_file.empty() && !tls_cert) {
      errors.push_back(
          "--grpc_tls_client_ca_file: mutual TLS needs TLS: set --grpc_tls_cert_file and "
          "--grpc_tls_key_file too");
    }
    CheckRange(errors, "shutdown_grace", config.shutdown_grace, absl::ZeroDuration(),
               absl::Minutes(10));
  }

  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseConfig(int argc, char** argv) {
  static std::once_flag usage_once;
  std::call_once(usage_once, [] {
    absl::SetProgramUsageMessage(kUsage);
    absl::FlagsUsageConfig usage;
    // absl lists by default only the flags of the file named after the
    // binary; Herald's flags live in this file, so list every flag but
    // Abseil's own (those stay in --helpfull).
    usage.contains_help_flags = [](absl::string_view file) {
      return !absl::StrContains(file, "absl/");
    };
    usage.contains_helpshort_flags = usage.contains_help_flags;
    usage.contains_helppackage_flags = usage.contains_help_flags;
    // "Flags from service/config/config.cc", without the build's path.
    usage.normalize_filename = [](absl::string_view file) {
      const size_t service = file.rfind("service/");
      return std::string(service == absl::string_view::npos ? file : file.substr(service));
    };
    usage.version_string = [] { return absl::StrCat("herald ", Av(HeraldVersion()), "\n"); };
    absl::SetFlagsUsageConfig(std::move(usage));
  });

  std::vector<std::string> args = MergeRepeatedMqttUri(argc, argv);
  const absl::flat_hash_set<std::string> on_command_line = FlagNamesIn(args);
  if (on_command_line.contains("mqtt_password")) {
    return absl::InvalidArgumentError(
        "there is no --mqtt_password flag, because a command line is visible to every user "
        "(ps, /proc): use --mqtt_password_file or the HERALD_MQTT_PASSWORD variable");
  }
  absl::flat_hash_set<std::string> hidden;
  for (const ShadowedVariable& shadow : kShadowedVariables) {
    if (on_command_line.contains(shadow.flag)) hidden.emplace(shadow.variable);
  }
  const EnvLookup env = [&hidden](const char* name) -> const char* {
    return hidden.contains(name) ? nullptr : std::getenv(name);
  };
  if (absl::Status status = ApplyEnvironment(env); !status.ok()) return status;

  std::vector<char*> arg_pointers;
  arg_pointers.reserve(args.size() + 1);
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  const std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(args.size()), arg_pointers.data());

  std::string command = kCommandServe;
  if (positional.size() > 1) command = positional[1];
  if (!IsCommand(command)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command ", Quote(command),
                                                   "; expected serve, migrate, version or keys "
                                                   "(see herald --help)"));
  }
  std::string keys_action;
  std::string keys_key_id;
  if (command == kCommandKeys) {
    keys_action = positional.size() > 2 ? positional[2] : "";
    const size_t expected = keys_action == "revoke" ? 4 : 3;
    if (keys_action != "create" && keys_action != "list" && keys_action != "revoke") {
      return absl::InvalidArgumentError(
          "herald keys: expected create, list or revoke KEY_ID (see herald --help)");
    }
    if (keys_action == "revoke" && positional.size() < 4) {
      return absl::InvalidArgumentError("herald keys revoke: the key id to revoke is missing");
    }
    if (keys_action == "revoke") keys_key_id = positional[3];
    if (positional.size() > expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unexpected argument ", Quote(positional[expected]), " after `herald keys ",
          keys_action, "`"));
    }
  } else if (positional.size() > 2) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument ", Quote(positional[2]),
                                                   " after `herald ", command, "`"));
  }
  absl::StatusOr<Config> config = ConfigFromFlags(std::move(command), env);
  if (!config.ok()) return config.status();
  config->keys_action = std::move(keys_action);
  config->keys_key_id = std::move(keys_key_id);
  if (absl::Status status = ValidateConfig(*config); !status.ok()) return status;
  return config;
}

std::string DescribeConfig(const Config& config) {
  const MqttOptions& mqtt = config.mqtt;
  std::vector<std::string> uris;
  uris.reserve(mqtt.server_uris.size());
  // A broker URI may carry user:password@ too.
  for (const std::string& uri : mqtt.server_uris) {
    uris.push_back(absl::StrContains(uri, "://") ? RedactUrl(uri) : uri);
  }
  auto set_or_unset = [](const std::string& secret) { return secret.empty() ? "unset" : "set"; };
  auto quoted_or_dash = [](const std::string& value) {
    return value.empty() ? std::string("-") : value;
  };
  return absl::StrCat(
      "command=", config.command, " version=", Av(HeraldVersion()),
      " grpc_address=", config.grpc_address, " metrics_address=", config.metrics_address,
      " database_url=", Quote(RedactDatabaseUrl(config.database_url)),
      " database_pool_size=", config.database_pool_size,
      " migrate=", config.migrate_on_start ? "true" : "false",
      " mqtt_uri=", absl::StrJoin(uris, ","),
      " mqtt_version=", MqttVersionName(mqtt.mqtt_version),
      " mqtt_client_id=", quoted_or_dash(mqtt.client_id),
      " mqtt_username=", quoted_or_dash(mqtt.username),
      " mqtt_password=", set_or_unset(mqtt.password),
      " mqtt_ca_file=", quoted_or_dash(mqtt.ca_file),
      " mqtt_cert_file=", quoted_or_dash(mqtt.cert_file),
      " mqtt_key_file=", quoted_or_dash(mqtt.key_file),
      " mqtt_key_password=", set_or_unset(mqtt.key_password),
      " mqtt_tls_verify=", mqtt.tls_verify ? "true" : "false",
      " mqtt_keepalive=", absl::FormatDuration(mqtt.keep_alive),
      " mqtt_clean_session=", mqtt.clean_session ? "true" : "false",
      " mqtt_connect_timeout=", absl::FormatDuration(mqtt.connect_timeout),
      " mqtt_reconnect=", absl::FormatDuration(mqtt.reconnect_min), "..",
      absl::FormatDuration(mqtt.reconnect_max),
      " mqtt_max_in_flight=", mqtt.max_in_flight,
      " mqtt_notification_properties=", config.mqtt_notification_properties ? "true" : "false",
      " notification_topic_template=", config.notification_topic_template,
      " command_topic_template=", config.command_topic_template,
      " response_topic_template=", config.response_topic_template,
      " presence_topic_template=", config.presence_topic_template,
      " receipt_topic_template=", config.receipt_topic_template,
      " max_pending_commands=", config.max_pending_commands,
      " command_backoff=", absl::FormatDuration(config.command_backoff_initial), "..",
      absl::FormatDuration(config.command_backoff_max),
      " command_poll_interval=", absl::FormatDuration(config.command_poll_interval),
      " mqtt_share_group=", config.mqtt_share_group,
      " auth=", config.auth_enabled ? "api_key" : "DISABLED",
      " tenant_rate_limit=", config.tenant_rate_limit, "/s burst ", config.tenant_rate_burst,
      " delivery_workers=", config.delivery_workers,
      " delivery_batch_size=", config.delivery_batch_size,
      " delivery_lease=", absl::FormatDuration(config.delivery_lease),
      " delivery_poll_interval=", absl::FormatDuration(config.delivery_poll_interval),
      " max_delivery_attempts=", config.max_delivery_attempts,
      " retry_backoff=", absl::FormatDuration(config.retry_backoff_initial), "..",
      absl::FormatDuration(config.retry_backoff_max),
      " max_payload_bytes=", config.max_payload_bytes,
      " max_targets_per_request=", config.max_targets_per_request,
      " max_batch_notifications=", config.max_batch_notifications,
      " grpc_max_message_bytes=", config.grpc_max_message_bytes,
      " grpc_max_threads=", config.grpc_max_threads,
      // Paths only: the key file's content is a secret.
      " grpc_tls=", config.grpc_tls_cert_file.empty()        ? "off"
                    : config.grpc_tls_client_ca_file.empty() ? "tls"
                                                             : "mtls",
      " grpc_tls_cert_file=", quoted_or_dash(config.grpc_tls_cert_file),
      " grpc_tls_key_file=", quoted_or_dash(config.grpc_tls_key_file),
      " grpc_tls_client_ca_file=", quoted_or_dash(config.grpc_tls_client_ca_file),
      " shutdown_grace=", absl::FormatDuration(config.shutdown_grace),
      " log_level=", LogLevelName(config.log_level),
      " log_format=", LogFormatName(config.log_format));
}

}  // namespace herald
