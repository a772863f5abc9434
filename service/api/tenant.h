// Which tenant a call acts for. Until caller authentication lands every
// call belongs to the default tenant; every store call already takes the
// tenant, so isolation then needs no other change.
#ifndef HERALD_SERVICE_API_TENANT_H_
#define HERALD_SERVICE_API_TENANT_H_

#include <string>

#include "grpcpp/server_context.h"
#include "service/core/types.h"

namespace herald::api {

inline std::string TenantOf(const grpc::ServerContext& /*context*/) { return kDefaultTenant; }

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_TENANT_H_
