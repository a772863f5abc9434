// The caller's deadline of a gRPC call as an absl::Time (InfiniteFuture when
// the caller set none), for work that should stop once the caller has given
// up: a command's wait, a notification still queued to be stored.
//
//   absl::Time deadline = DeadlineOf(*context);
#ifndef HERALD_SERVICE_API_CALL_DEADLINE_H_
#define HERALD_SERVICE_API_CALL_DEADLINE_H_

#include <chrono>

#include "absl/time/time.h"
#include "grpcpp/server_context.h"

namespace herald::api {

inline absl::Time DeadlineOf(const grpc::ServerContextBase& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_CALL_DEADLINE_H_
