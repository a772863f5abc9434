// absl::Status -> grpc::Status. Only the API layer builds grpc::Status; the
// canonical codes are the same numbers, so the mapping is one to one.
//
//   return ToGrpcStatus(store.DeleteDevice(tenant, id));
#ifndef HERALD_SERVICE_API_GRPC_STATUS_H_
#define HERALD_SERVICE_API_GRPC_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace herald::api {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_GRPC_STATUS_H_
