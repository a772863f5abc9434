// Stopping the gRPC server without waiting on idle clients.
//
// grpc::Server::Shutdown(deadline) refuses new calls (GOAWAY), lets running
// calls finish, and then also waits for every client to close its
// connection: a client that keeps an idle channel open, as long-lived
// backends do, held every stop for 4.4 s (gRPC's own wait for it, or the
// deadline when that comes first) although nothing ran.
// ShutdownServer stops the same way but drops the remaining connections as
// soon as no call is live; LiveCalls counts the live calls, with a server
// interceptor, from a call's start until gRPC destroys it (status sent,
// every callback done).
//
//   LiveCalls live;
//   interceptors.push_back(live.NewInterceptorFactory());  // before BuildAndStart
//   ...
//   ShutdownServer(*server, live, absl::Now() + absl::Seconds(5));
#ifndef HERALD_SERVICE_API_SERVER_SHUTDOWN_H_
#define HERALD_SERVICE_API_SERVER_SHUTDOWN_H_

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "grpcpp/support/server_interceptor.h"

namespace herald::api {

// Thread-safe. Must outlive the server whose calls it counts.
class LiveCalls {
 public:
  LiveCalls() = default;
  LiveCalls(const LiveCalls&) = delete;
  LiveCalls& operator=(const LiveCalls&) = delete;

  // A factory for ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewInterceptorFactory();

  // Blocks until no call is live (true) or `deadline` passes (false).
  bool WaitForNone(absl::Time deadline) const;

  // For the interceptor: a call began or was destroyed.
  void Started();
  void Ended();

 private:
  mutable absl::Mutex mu_;
  int64_t live_ ABSL_GUARDED_BY(mu_) = 0;
};

// Shuts `server` down: no new call from now on; running calls finish until
// `deadline` and are cancelled after it; the clients' connections are
// closed once no call in `live` (which must count every call of `server`)
// remains. Returns when the server has stopped.
void ShutdownServer(grpc::Server& server, const LiveCalls& live, absl::Time deadline);

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_SERVER_SHUTDOWN_H_
