// PgAuthStore: tenants and API keys in PostgreSQL (tables `tenants` and
// `api_keys`, migrations/0003_tenants_and_api_keys.sql).
//
//   PgAuthStore auth(pool.get(), &query_metrics);
//   absl::StatusOr<ApiKeyRecord> key = auth.GetApiKey("3f9a0c1d2e4b");
#ifndef HERALD_SERVICE_STORE_PG_AUTH_STORE_H_
#define HERALD_SERVICE_STORE_PG_AUTH_STORE_H_

#include <optional>
#include <string>
#include <vector>

#include "service/auth/auth_store.h"
#include "service/core/query_observer.h"
#include "service/store/pg_connection_pool.h"

namespace herald {

// Thread-safe: every call borrows its own pooled connection. Operation names
// reported to the observer: get_api_key, create_api_key, list_api_keys,
// revoke_api_key, tenant_for_topic_prefix.
class PgAuthStore final : public AuthStore {
 public:
  // `pool` (and `observer`, unless null) must outlive the store.
  PgAuthStore(PgConnectionPool* pool, QueryObserver* observer);

  absl::StatusOr<ApiKeyRecord> GetApiKey(const std::string& key_id) override;
  absl::StatusOr<ApiKeyRecord> CreateApiKey(const NewApiKey& key) override;
  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys(
      const std::optional<std::string>& tenant_id) override;
  absl::Status RevokeApiKey(const std::string& key_id) override;
  absl::StatusOr<std::string> TenantForTopicPrefix(const std::string& prefix) override;

 private:
  PgConnectionPool* const pool_;
  QueryObserver* const observer_;
};

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_AUTH_STORE_H_
