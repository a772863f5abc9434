#include "providers/mqtt/mqtt_uri.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace herald {
namespace {

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

bool IsKnownScheme(std::string_view scheme) {
  return scheme == "tcp" || scheme == "mqtt" || scheme == "ssl" || scheme == "mqtts" ||
         scheme == "ws" || scheme == "wss";
}

// The URI as it may appear in an error message: user information (which may
// hold a password) is replaced.
std::string Printable(std::string_view uri) {
  const size_t scheme_end = uri.find("://");
  const size_t authority_start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const size_t at = uri.find('@', authority_start);
  const size_t slash = uri.find('/', authority_start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) {
    return absl::StrCat("\"", Av(uri), "\"");
  }
  return absl::StrCat("\"", Av(uri.substr(0, authority_start)), "REDACTED@",
                      Av(uri.substr(at + 1)), "\"");
}

}  // namespace

std::string MqttUri::PahoUri() const {
  std::string paho_scheme = scheme;
  if (scheme == "mqtt") paho_scheme = "tcp";
  if (scheme == "mqtts") paho_scheme = "ssl";
  const bool ipv6 = host.find(':') != std::string::npos;
  return absl::StrCat(paho_scheme, "://", ipv6 ? "[" : "", host, ipv6 ? "]" : "", ":", port,
                      path);
}

absl::StatusOr<MqttUri> ParseMqttUri(std::string_view uri) {
  auto fail = [&](std::string_view rule) {
    return absl::InvalidArgumentError(absl::StrCat(Printable(uri), ": ", Av(rule)));
  };
  if (uri.empty()) return absl::InvalidArgumentError("empty URI");
  for (char c : uri) {
    if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
        static_cast<unsigned char>(c) < 0x20) {
      return fail("must not contain spaces or control characters");
    }
  }
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) {
    return fail("missing scheme (expected e.g. tcp://broker:1883 or ssl://broker:8883)");
  }
  MqttUri parsed;
  parsed.scheme = std::string(uri.substr(0, scheme_end));
  if (!IsKnownScheme(parsed.scheme)) {
    return fail(absl::StrCat("unsupported scheme \"", parsed.scheme,
                             "\" (use tcp, mqtt, ssl, mqtts, ws or wss)"));
  }
  parsed.tls = parsed.scheme == "ssl" || parsed.scheme == "mqtts" || parsed.scheme == "wss";
  const bool websocket = parsed.scheme == "ws" || parsed.scheme == "wss";

  std::string_view authority = uri.substr(scheme_end + 3);
  if (const size_t slash = authority.find('/'); slash != std::string_view::npos) {
    parsed.path = std::string(authority.substr(slash));
    authority = authority.substr(0, slash);
  }
  if (authority.find('@') != std::string_view::npos) {
    return fail(
        "user name and password in the URI are not supported (use --mqtt_username and "
        "--mqtt_password_file)");
  }
  if (!parsed.path.empty() && !websocket) {
    return fail(
        absl::StrCat("a path is only allowed for ws:// and wss://, got \"", parsed.path, "\""));
  }

  const std::string_view default_port = parsed.tls ? "8883" : "1883";
  std::string_view host;
  std::string_view port;
  if (authority.starts_with("[")) {  // [IPv6]:port
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return fail("unterminated IPv6 address (expected [address]:port)");
    }
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.starts_with(":")) {
      return fail(absl::StrCat("missing port (e.g. ", parsed.scheme, "://[", Av(host), "]:",
                               Av(default_port), ")"));
    }
    port = after.substr(1);
  } else {
    const size_t colon = authority.rfind(':');
    if (colon == std::string_view::npos) {
      return fail(absl::StrCat("missing port (e.g. ", parsed.scheme, "://", Av(authority), ":",
                               Av(default_port), ")"));
    }
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return fail("an IPv6 address must be in brackets (e.g. tcp://[::1]:1883)");
    }
  }
  if (host.empty()) return fail("missing host");
  if (port.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(port.front())) ||
      !absl::SimpleAtoi(Av(port), &parsed.port) || parsed.port < 1 || parsed.port > 65535) {
    return fail(
        absl::StrCat("port must be a number between 1 and 65535, got \"", Av(port), "\""));
  }
  parsed.host = std::string(host);
  return parsed;
}

}  // namespace herald
