// CallGuard: the door every herald.v1 call passes before it does anything:
// who is calling (the API key in `authorization: Bearer ...`), may it do
// this (the method's scope), and has its tenant budget left (the rate
// limit). It replaces the "every call is the default tenant" stand-in that
// the services used before authentication existed.
//
//   absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kNotify);
//   if (!caller.ok()) return ToGrpcStatus(caller.status());
//   store_.GetNotification(caller->tenant_id, id);
//
// Health and reflection are other services and never pass here, so probes
// need no key.
//
// Thread-safe.
#ifndef HERALD_SERVICE_API_CALL_GUARD_H_
#define HERALD_SERVICE_API_CALL_GUARD_H_

#include "absl/status/statusor.h"
#include "grpcpp/server_context.h"
#include "service/auth/authenticator.h"
#include "service/auth/rate_limiter.h"
#include "service/auth/tenant.h"
#include "service/metrics/herald_metrics.h"

namespace herald::api {

// The trailing metadata key of a RESOURCE_EXHAUSTED from the rate limit:
// milliseconds to wait before retrying (also said in the message).
inline constexpr char kRetryAfterMetadata[] = "retry-after-ms";

class CallGuard {
 public:
  // `authenticator` null: authentication is off (--insecure_disable_auth)
  // and every call acts for the default tenant with every scope. All
  // arguments must outlive the guard.
  CallGuard(Authenticator* authenticator, TenantRateLimiter& limiter, HeraldMetrics& metrics);

  // The caller, if it may spend `cost` units of its tenant's rate on a call
  // needing `scope`. kUnauthenticated (no, malformed, unknown or revoked
  // key), kPermissionDenied (the key lacks the scope), kUnavailable (the key
  // cannot be checked now), kResourceExhausted (over the rate limit; the
  // retry hint is in the message and in the retry-after-ms trailer).
  absl::StatusOr<Caller> Admit(grpc::ServerContextBase* context, Scope scope, double cost = 1);

 private:
  Authenticator* const authenticator_;
  TenantRateLimiter& limiter_;
  HeraldMetrics& metrics_;
};

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_CALL_GUARD_H_
