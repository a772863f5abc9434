#include "service/metrics/metrics_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

namespace herald {
namespace {

// civetweb's listening_ports also accepts lists ("80,443s"), bare ports and
// flags ("8443s" = TLS, "80r" = redirect); Herald promises only HOST:PORT,
// so anything else is refused before civetweb reinterprets it.
absl::Status CheckAddress(absl::string_view address) {
  auto invalid = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address \"", address, "\": must be HOST:PORT, e.g. 0.0.0.0:9464 or [::]:9464"));
  };
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return invalid();
  absl::string_view host = address.substr(0, colon);
  absl::string_view port = address.substr(colon + 1);
  if (absl::StartsWith(host, "[") != absl::EndsWith(host, "]")) return invalid();
  if (!absl::StartsWith(host, "[") && absl::StrContains(host, ':')) return invalid();
  for (char c : host) {
    if (c == ',' || absl::ascii_isspace(static_cast<unsigned char>(c))) return invalid();
  }
  int port_number = 0;
  if (port.empty() || port.size() > 5 || !absl::SimpleAtoi(port, &port_number) ||
      port_number < 0 || port_number > 65535 ||
      port.find_first_not_of("0123456789") != absl::string_view::npos) {
    return invalid();
  }
  return absl::OkStatus();
}

// Where a local client reaches a server listening on `address` (checked
// HOST:PORT): the host itself, or loopback for a wildcard.
std::string LocalHostOf(absl::string_view address) {
  absl::string_view host = address.substr(0, address.rfind(':'));
  if (absl::StartsWith(host, "[")) host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0" || host == "localhost") return "127.0.0.1";
  if (host == "::") return "::1";
  return std::string(host);
}

// Opens and at once closes a TCP connection to host:port; errors ignored.
// Numeric hosts only: a stop must not wait for a name lookup.
void Knock(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), absl::StrCat(port).c_str(), &hints, &found) != 0) return;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const bool connected = connect(fd, a->ai_addr, a->ai_addrlen) == 0;
    close(fd);
    if (connected) break;
  }
  freeaddrinfo(found);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) {
    return absl::InvalidArgumentError("MetricsServer::Start: registry is null");
  }
  if (absl::Status status = CheckAddress(address); !status.ok()) return status;

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    // Two threads suffice for a scraper or two; the timeout frees a thread
    // held by a client that stops reading.
    exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
        "listening_ports", address, "num_threads", "2", "request_timeout_ms", "10000"});
  } catch (const std::exception& e) {
    // civetweb explains the cause on stderr; its exception says only that
    // the server did not start.
    return absl::UnavailableError(absl::StrCat("cannot listen for metrics on ", address,
                                               " (port in use or address not local?): ",
                                               e.what()));
  }
  exposer->RegisterCollectable(registry);

  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen for metrics on ", address, ": no port bound"));
  }
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(std::move(exposer), std::move(registry), LocalHostOf(address),
                        ports.front()));
}

MetricsServer::MetricsServer(std::unique_ptr<prometheus::Exposer> exposer,
                             std::shared_ptr<prometheus::Registry> registry,
                             std::string local_host, int port)
    : registry_(std::move(registry)),
      exposer_(std::move(exposer)),
      local_host_(std::move(local_host)),
      port_(port) {}

MetricsServer::~MetricsServer() {
  // civetweb's stop waits for its listening thread, which reads the stop
  // flag only between polls of up to 2 s: every Herald stop lasted up to
  // 2 s longer. A connection ends the poll at once, so knock until stopped.
  std::atomic<bool> stopped = false;
  std::thread knocker([this, &stopped] {
    while (!stopped.load()) {
      Knock(local_host_, port_);
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  exposer_.reset();
  stopped = true;
  knocker.join();
}

}  // namespace herald
