// Authenticator: turns the `authorization` metadata of a call into the
// Caller it acts for, or a refusal (issue 6).
//
// Keys are looked up in the AuthStore and cached for `cache_ttl` (10 s by
// default), so an authenticated call costs a hash and a map lookup, not a
// query; a revoked key stops working within that time on every replica.
// Unknown key ids are cached too (negatively), so a flood of made-up keys
// cannot turn into a flood of queries; and the queries for keys not in the
// cache are themselves rate-limited (made-up key ids are free to invent),
// beyond which calls with such keys are UNAVAILABLE for a moment. The cache
// is bounded: when it is full it is cleared, which only costs queries.
//
//   Authenticator auth(store, {});
//   absl::StatusOr<Caller> caller = auth.Authenticate("Bearer hk_...");
//
// Thread-safe.
#ifndef HERALD_SERVICE_AUTH_AUTHENTICATOR_H_
#define HERALD_SERVICE_AUTH_AUTHENTICATOR_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "service/auth/auth_store.h"
#include "service/auth/rate_limiter.h"
#include "service/auth/tenant.h"

namespace herald {

struct AuthenticatorOptions {
  absl::Duration cache_ttl = absl::Seconds(10);
  size_t max_cached_keys = 10000;
  // Database lookups of keys not in the cache, per second and at once.
  double max_lookups_per_second = 200;
  double max_lookup_burst = 1000;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class Authenticator {
 public:
  Authenticator(AuthStore& store, AuthenticatorOptions options);

  // `authorization` is the metadata value ("Bearer <key>"; empty when the
  // call had none). kUnauthenticated, with a message that never repeats the
  // key, when it is missing, malformed, unknown, wrong or revoked;
  // kUnavailable when the key is not cached and the database is away.
  absl::StatusOr<Caller> Authenticate(absl::string_view authorization);

 private:
  struct CachedKey {
    std::optional<ApiKeyRecord> record;  // nullopt: no such key
    absl::Time fetched;
  };

  absl::StatusOr<std::optional<ApiKeyRecord>> Lookup(const std::string& key_id);

  AuthStore& store_;
  const AuthenticatorOptions options_;
  TenantRateLimiter lookups_;  // one bucket, for every uncached lookup
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, CachedKey> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald

#endif  // HERALD_SERVICE_AUTH_AUTHENTICATOR_H_
