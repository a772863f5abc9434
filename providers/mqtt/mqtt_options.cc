#include "providers/mqtt/mqtt_options.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "providers/mqtt/mqtt_uri.h"

namespace herald {
namespace {

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

constexpr int64_t kMaxKeepAliveSeconds = 65535;  // a 16-bit field in CONNECT
constexpr int kMaxInFlightLimit = 65535;         // MQTT packet identifiers are 16-bit

// Appends an error unless `path` names a readable regular file.
void CheckReadableFile(std::string_view flag, const std::string& path,
                       std::vector<std::string>& errors) {
  std::error_code error;
  const std::filesystem::file_status status = std::filesystem::status(path, error);
  if (error && status.type() != std::filesystem::file_type::not_found) {
    errors.push_back(absl::StrCat(Av(flag), ": cannot access \"", path, "\": ", error.message()));
  } else if (!std::filesystem::exists(status)) {
    errors.push_back(absl::StrCat(Av(flag), ": \"", path, "\" does not exist"));
  } else if (!std::filesystem::is_regular_file(status)) {
    errors.push_back(absl::StrCat(Av(flag), ": \"", path, "\" is not a regular file"));
  } else if (!std::ifstream(path)) {
    errors.push_back(absl::StrCat(Av(flag), ": cannot read \"", path, "\""));
  }
}

void CheckDurationRange(std::string_view flag, absl::Duration value, absl::Duration min,
                        std::vector<std::string>& errors) {
  if (value == absl::InfiniteDuration() || value < min) {
    errors.push_back(absl::StrCat(Av(flag), ": must be at least ", absl::FormatDuration(min),
                                  ", got ", absl::FormatDuration(value)));
  }
}

}  // namespace

absl::Status ValidateMqttOptions(const MqttOptions& options) {
  std::vector<std::string> errors;

  bool tls = false;
  if (options.server_uris.empty()) {
    errors.push_back("--mqtt_uri: at least one broker URI is required");
  }
  for (const std::string& uri : options.server_uris) {
    absl::StatusOr<MqttUri> parsed = ParseMqttUri(uri);
    if (!parsed.ok()) {
      errors.push_back(absl::StrCat("--mqtt_uri: ", parsed.status().message()));
    } else {
      tls = tls || parsed->tls;
    }
  }

  if (options.mqtt_version != 4 && options.mqtt_version != 5) {
    errors.push_back(absl::StrCat("--mqtt_version: must be 3.1.1 (protocol level 4) or 5, got ",
                                  options.mqtt_version));
  }

  if (options.client_id.size() > 65535 ||
      options.client_id.find('\0') != std::string::npos) {
    errors.push_back("--mqtt_client_id: must be at most 65535 bytes without NUL characters");
  }
  if (options.username.find('\0') != std::string::npos) {
    errors.push_back("--mqtt_username: must not contain NUL characters");
  }
  if (options.mqtt_version == 4 && options.username.empty() && !options.password.empty()) {
    errors.push_back(
        "--mqtt_password_file: MQTT 3.1.1 does not allow a password without --mqtt_username");
  }

  // TLS material: only meaningful with a TLS URI, and must be readable.
  const std::pair<std::string_view, const std::string*> tls_files[] = {
      {"--mqtt_ca_file", &options.ca_file},
      {"--mqtt_cert_file", &options.cert_file},
      {"--mqtt_key_file", &options.key_file},
  };
  for (const auto& [flag, path] : tls_files) {
    if (path->empty()) continue;
    if (!tls && !options.server_uris.empty()) {
      errors.push_back(absl::StrCat(
          Av(flag), ": set, but no --mqtt_uri uses TLS (ssl://, mqtts:// or wss://); the connection "
                "would not be encrypted"));
    }
    CheckReadableFile(flag, *path, errors);
  }
  if (!options.cert_file.empty() && options.key_file.empty()) {
    errors.push_back("--mqtt_cert_file: requires --mqtt_key_file (the certificate's private key)");
  }
  if (options.cert_file.empty() && !options.key_file.empty()) {
    errors.push_back("--mqtt_key_file: requires --mqtt_cert_file (the client certificate)");
  }
  if (!options.key_password.empty() && options.key_file.empty()) {
    errors.push_back("--mqtt_key_password_file: requires --mqtt_key_file");
  }

  const absl::Duration keep_alive = options.keep_alive;
  if (keep_alive < absl::ZeroDuration() || keep_alive > absl::Seconds(kMaxKeepAliveSeconds) ||
      keep_alive != absl::Seconds(absl::ToInt64Seconds(keep_alive))) {
    errors.push_back(absl::StrCat(
        "--mqtt_keepalive: must be a whole number of seconds between 0s (off) and ",
        kMaxKeepAliveSeconds, "s, got ", absl::FormatDuration(keep_alive)));
  }
  CheckDurationRange("--mqtt_connect_timeout", options.connect_timeout, absl::Seconds(1), errors);
  CheckDurationRange("--mqtt_reconnect_min", options.reconnect_min, absl::Milliseconds(10),
                     errors);
  if (options.reconnect_max == absl::InfiniteDuration() ||
      options.reconnect_max < options.reconnect_min) {
    errors.push_back(absl::StrCat("--mqtt_reconnect_max: must be finite and at least "
                                  "--mqtt_reconnect_min (",
                                  absl::FormatDuration(options.reconnect_min), "), got ",
                                  absl::FormatDuration(options.reconnect_max)));
  }
  if (options.max_in_flight < 1 || options.max_in_flight > kMaxInFlightLimit) {
    errors.push_back(absl::StrCat("--mqtt_max_in_flight: must be between 1 and ",
                                  kMaxInFlightLimit, ", got ", options.max_in_flight));
  }

  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

}  // namespace herald
