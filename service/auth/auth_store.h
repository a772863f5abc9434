// AuthStore: where tenants and API keys live (PostgreSQL in production,
// service/store/pg_auth_store.h; a fake in unit tests). The seam between
// authentication and the database.
#ifndef HERALD_SERVICE_AUTH_AUTH_STORE_H_
#define HERALD_SERVICE_AUTH_AUTH_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/auth/tenant.h"

namespace herald {

// What `herald keys create` asks for: a key of `tenant_id`, made if it does
// not exist yet.
struct NewApiKey {
  std::string key_id;
  std::string tenant_id;
  std::string name;
  ScopeSet scopes;
  std::string secret_sha256;
  // The tenant's topic prefix. A new tenant gets this one (the tenant id
  // when unset); for an existing tenant it must match, if set.
  std::optional<std::string> topic_prefix;
};

class AuthStore {
 public:
  virtual ~AuthStore() = default;

  // The key with this id, revoked or not, with its tenant's prefix.
  // kNotFound if there is none; kUnavailable if the database is away.
  virtual absl::StatusOr<ApiKeyRecord> GetApiKey(const std::string& key_id) = 0;

  // Stores a key (and its tenant, when new). kFailedPrecondition when the
  // tenant exists with another prefix; kAlreadyExists when another tenant
  // has the prefix. Returns the stored record.
  virtual absl::StatusOr<ApiKeyRecord> CreateApiKey(const NewApiKey& key) = 0;

  // Every key (of `tenant_id`, if set), oldest first.
  virtual absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys(
      const std::optional<std::string>& tenant_id) = 0;

  // Marks the key revoked from now on. kNotFound if there is no such key;
  // revoking a revoked key is fine.
  virtual absl::Status RevokeApiKey(const std::string& key_id) = 0;

  // The tenant whose topic prefix is `prefix`. kNotFound if none.
  virtual absl::StatusOr<std::string> TenantForTopicPrefix(const std::string& prefix) = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_AUTH_AUTH_STORE_H_
