// MetricsServer: serves a prometheus::Registry as Prometheus text at
// http://ADDRESS/metrics for as long as the object lives. A thin wrapper of
// prometheus::Exposer (civetweb) that turns its exceptions into absl::Status
// and reports the port actually bound, so tests and e2e runs can ask for
// port 0.
//
//   absl::StatusOr<std::unique_ptr<herald::MetricsServer>> server =
//       herald::MetricsServer::Start("0.0.0.0:9464", registry);
//   if (!server.ok()) return server.status();
//   herald::LogInfo("metrics listening", {{"port", absl::StrCat((*server)->port())}});
#ifndef HERALD_SERVICE_METRICS_METRICS_SERVER_H_
#define HERALD_SERVICE_METRICS_METRICS_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace prometheus {
class Exposer;
class Registry;
}  // namespace prometheus

namespace herald {

// Thread-safe: immutable once started. Destroying it stops the HTTP server
// (waiting for in-progress scrapes).
class MetricsServer {
 public:
  // Listens on `address` ("HOST:PORT", "[IPV6]:PORT"; port 0 picks a free
  // port) and serves `registry` at /metrics, keeping the registry alive.
  // kInvalidArgument if `address` is not HOST:PORT; kUnavailable if it
  // cannot be bound (port in use, address not local, permission denied).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);

  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The TCP port listened on (the one chosen when `address` said port 0).
  int port() const { return port_; }

 private:
  MetricsServer(std::unique_ptr<prometheus::Exposer> exposer,
                std::shared_ptr<prometheus::Registry> registry, std::string local_host,
                int port);

  // The exposer holds only a weak_ptr to the registry; registry_ keeps it
  // alive while it is served. Declared first so it is destroyed last.
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string local_host_;  // where this process reaches the listener
  int port_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_METRICS_METRICS_SERVER_H_
