// FakeAuthStore: tenants and API keys in memory, for unit tests of the
// Authenticator, the keys command and the call guard. Counts GetApiKey
// calls (to test caching) and can be made to fail (the database is away).
#ifndef HERALD_TESTS_TESTING_FAKES_FAKE_AUTH_STORE_H_
#define HERALD_TESTS_TESTING_FAKES_FAKE_AUTH_STORE_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "service/auth/auth_store.h"

namespace herald::testing {

// Thread-safe.
class FakeAuthStore final : public AuthStore {
 public:
  FakeAuthStore() { tenants_["default"] = ""; }

  absl::StatusOr<ApiKeyRecord> GetApiKey(const std::string& key_id) override {
    absl::MutexLock lock(&mu_);
    ++get_calls_;
    if (!unavailable_.ok()) return unavailable_;
    auto it = keys_.find(key_id);
    if (it == keys_.end()) return absl::NotFoundError(absl::StrCat("no API key ", key_id));
    ApiKeyRecord record = it->second;
    record.topic_prefix = tenants_[record.tenant_id];
    return record;
  }

  absl::StatusOr<ApiKeyRecord> CreateApiKey(const NewApiKey& key) override {
    absl::MutexLock lock(&mu_);
    if (!unavailable_.ok()) return unavailable_;
    const std::string prefix = key.topic_prefix.value_or(key.tenant_id);
    if (auto tenant = tenants_.find(key.tenant_id); tenant == tenants_.end()) {
      for (const auto& [id, existing] : tenants_) {
        if (existing == prefix) return absl::AlreadyExistsError("prefix taken by " + id);
      }
      tenants_[key.tenant_id] = prefix;
    } else if (key.topic_prefix.has_value() && tenant->second != *key.topic_prefix) {
      return absl::FailedPreconditionError("tenant exists with another prefix");
    }
    ApiKeyRecord record{.key_id = key.key_id,
                        .tenant_id = key.tenant_id,
                        .topic_prefix = tenants_[key.tenant_id],
                        .name = key.name,
                        .scopes = key.scopes,
                        .secret_sha256 = key.secret_sha256,
                        .create_time = absl::Now()};
    keys_[key.key_id] = record;
    return record;
  }

  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys(
      const std::optional<std::string>& tenant_id) override {
    absl::MutexLock lock(&mu_);
    if (!unavailable_.ok()) return unavailable_;
    std::vector<ApiKeyRecord> keys;
    for (const auto& [id, key] : keys_) {
      if (!tenant_id.has_value() || key.tenant_id == *tenant_id) keys.push_back(key);
    }
    return keys;
  }

  absl::Status RevokeApiKey(const std::string& key_id) override {
    absl::MutexLock lock(&mu_);
    if (!unavailable_.ok()) return unavailable_;
    auto it = keys_.find(key_id);
    if (it == keys_.end()) return absl::NotFoundError(absl::StrCat("no API key ", key_id));
    if (!it->second.revoke_time.has_value()) it->second.revoke_time = absl::Now();
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> TenantForTopicPrefix(const std::string& prefix) override {
    absl::MutexLock lock(&mu_);
    if (!unavailable_.ok()) return unavailable_;
    for (const auto& [id, existing] : tenants_) {
      if (existing == prefix) return id;
    }
    return absl::NotFoundError("no tenant has the prefix " + prefix);
  }

  // Every call fails with `status` until it is set back to OK.
  void SetUnavailable(absl::Status status) {
    absl::MutexLock lock(&mu_);
    unavailable_ = std::move(status);
  }

  int get_calls() const {
    absl::MutexLock lock(&mu_);
    return get_calls_;
  }

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::string> tenants_ ABSL_GUARDED_BY(mu_);  // id -> prefix
  std::map<std::string, ApiKeyRecord> keys_ ABSL_GUARDED_BY(mu_);
  absl::Status unavailable_ ABSL_GUARDED_BY(mu_);
  int get_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_FAKE_AUTH_STORE_H_
