#include "service/api/call_guard.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "service/core/types.h"

namespace herald::api {

CallGuard::CallGuard(Authenticator* authenticator, TenantRateLimiter& limiter,
                     HeraldMetrics& metrics)
    : authenticator_(authenticator), limiter_(limiter), metrics_(metrics) {}

absl::StatusOr<Caller> CallGuard::Admit(grpc::ServerContextBase* context, Scope scope,
                                        double cost) {
  Caller caller;
  if (authenticator_ == nullptr) {
    caller = Caller{.tenant_id = kDefaultTenant, .topic_prefix = "", .key_id = "",
                    .scopes = ScopeSet::All()};
  } else {
    const auto& metadata = context->client_metadata();
    const auto found = metadata.find("authorization");
    const absl::string_view authorization =
        found == metadata.end() ? absl::string_view()
                                : absl::string_view(found->second.data(), found->second.size());
    absl::StatusOr<Caller> authenticated = authenticator_->Authenticate(authorization);
    if (!authenticated.ok()) {
      metrics_.CallAdmitted(absl::IsUnavailable(authenticated.status()) ? kAuthUnavailable
                                                                        : kAuthUnauthenticated);
      return authenticated.status();
    }
    caller = *std::move(authenticated);
    if (!caller.scopes.Contains(scope)) {
      metrics_.CallAdmitted(kAuthPermissionDenied);
      return absl::PermissionDeniedError(absl::StrCat(
          "API key ", caller.key_id, " lacks the scope \"", ScopeName(scope),
          "\" that this method needs (it has: ",
          caller.scopes.empty() ? "none" : absl::StrJoin(caller.scopes.Names(), ", "), ")"));
    }
  }
  absl::Duration retry_after;
  if (!limiter_.TryAcquire(caller.tenant_id, cost, &retry_after)) {
    metrics_.CallAdmitted(kAuthRateLimited);
    const int64_t retry_ms = absl::ToInt64Milliseconds(retry_after);
    context->AddTrailingMetadata(kRetryAfterMetadata, absl::StrCat(retry_ms));
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant \"", caller.tenant_id, "\" is over its rate limit (--tenant_rate_limit); retry "
        "in ", retry_ms, " ms"));
  }
  metrics_.CallAdmitted(kAuthAccepted);
  return caller;
}

}  // namespace herald::api
