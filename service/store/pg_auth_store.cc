#include "service/store/pg_auth_store.h"

#include <pqxx/pqxx>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/store/pg_array.h"
#include "service/store/pg_session.h"

namespace herald {
namespace {

const std::string& KeyColumns() {
  static const std::string* const columns = new std::string(absl::StrCat(
      "k.key_id, k.tenant_id, t.topic_prefix, k.name, k.scopes, k.secret_sha256, ",
      MicrosSql("k.create_time"), " AS create_us, ", MicrosSql("k.revoke_time"),
      " AS revoke_us"));
  return *columns;
}

const PgStatement& GetKeyStatement() {
  static const PgStatement* const statement = new PgStatement{
      "herald_get_api_key",
      absl::StrCat("SELECT ", KeyColumns(),
                   " FROM api_keys k JOIN tenants t USING (tenant_id) WHERE k.key_id = $1")};
  return *statement;
}

ApiKeyRecord ApiKeyOf(const pqxx::row& row) {
  ApiKeyRecord record;
  record.key_id = TextOf(row["key_id"]);
  record.tenant_id = TextOf(row["tenant_id"]);
  record.topic_prefix = TextOf(row["topic_prefix"]);
  record.name = TextOf(row["name"]);
  // Names this version does not know (from a newer one) grant nothing.
  for (const std::string& name : TextArrayOf(row["scopes"])) {
    for (Scope scope : kAllScopes) {
      if (name == ScopeName(scope)) record.scopes.Add(scope);
    }
  }
  record.secret_sha256 = BytesOf(row["secret_sha256"]);
  record.create_time = TimeOf(row["create_us"]);
  record.revoke_time = OptionalTimeOf(row["revoke_us"]);
  return record;
}

}  // namespace

PgAuthStore::PgAuthStore(PgConnectionPool* pool, QueryObserver* observer)
    : pool_(pool), observer_(observer) {}

absl::StatusOr<ApiKeyRecord> PgAuthStore::GetApiKey(const std::string& key_id) {
  return RunPgOperation(
      *pool_, observer_, "get_api_key", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<ApiKeyRecord> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = tx.exec_prepared(session.Prepare(GetKeyStatement()), key_id);
        if (rows.empty()) return absl::NotFoundError(absl::StrCat("no API key ", key_id));
        return ApiKeyOf(rows[0]);
      });
}

absl::StatusOr<ApiKeyRecord> PgAuthStore::CreateApiKey(const NewApiKey& key) {
  // One transaction: the tenant (if new) and its key appear together.
  return RunPgOperation(
      *pool_, observer_, "create_api_key", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<ApiKeyRecord> {
        pqxx::work tx(session.connection());
        const std::string prefix = key.topic_prefix.value_or(key.tenant_id);
        pqxx::result tenant = tx.exec_params(
            "SELECT topic_prefix FROM tenants WHERE tenant_id = $1", key.tenant_id);
        if (tenant.empty()) {
          pqxx::result owner =
              tx.exec_params("SELECT tenant_id FROM tenants WHERE topic_prefix = $1", prefix);
          if (!owner.empty()) {
            return absl::AlreadyExistsError(absl::StrCat(
                "--topic_prefix: \"", prefix, "\" is the topic prefix of tenant \"",
                TextOf(owner[0][0]), "\"; every tenant needs its own"));
          }
          tx.exec_params("INSERT INTO tenants (tenant_id, topic_prefix) VALUES ($1, $2)",
                         key.tenant_id, prefix);
        } else if (key.topic_prefix.has_value() && TextOf(tenant[0][0]) != *key.topic_prefix) {
          return absl::FailedPreconditionError(absl::StrCat(
              "--topic_prefix: tenant \"", key.tenant_id, "\" exists with the topic prefix \"",
              TextOf(tenant[0][0]), "\"; a tenant's prefix does not change"));
        }
        std::vector<std::string> scopes = key.scopes.Names();
        const pqxx::binarystring hash(key.secret_sha256.data(), key.secret_sha256.size());
        tx.exec_params(
            "INSERT INTO api_keys (key_id, tenant_id, name, scopes, secret_sha256) "
            "VALUES ($1, $2, $3, $4::text[], $5)",
            key.key_id, key.tenant_id, key.name, PgTextArrayLiteral(scopes), hash);
        const pqxx::result rows = tx.exec_params(
            absl::StrCat("SELECT ", KeyColumns(),
                         " FROM api_keys k JOIN tenants t USING (tenant_id) WHERE k.key_id = $1"),
            key.key_id);
        tx.commit();
        return ApiKeyOf(rows[0]);
      });
}

absl::StatusOr<std::vector<ApiKeyRecord>> PgAuthStore::ListApiKeys(
    const std::optional<std::string>& tenant_id) {
  return RunPgOperation(
      *pool_, observer_, "list_api_keys", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<std::vector<ApiKeyRecord>> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = tx.exec_params(
            absl::StrCat("SELECT ", KeyColumns(),
                         " FROM api_keys k JOIN tenants t USING (tenant_id)"
                         " WHERE $1::text IS NULL OR k.tenant_id = $1"
                         " ORDER BY k.create_time, k.key_id"),
            tenant_id);
        std::vector<ApiKeyRecord> keys;
        keys.reserve(rows.size());
        for (const pqxx::row& row : rows) keys.push_back(ApiKeyOf(row));
        return keys;
      });
}

absl::Status PgAuthStore::RevokeApiKey(const std::string& key_id) {
  return RunPgOperation(
      *pool_, observer_, "revoke_api_key", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::Status {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows = tx.exec_params(
            "UPDATE api_keys SET revoke_time = coalesce(revoke_time, now()) WHERE key_id = $1 "
            "RETURNING key_id",
            key_id);
        if (rows.empty()) return absl::NotFoundError(absl::StrCat("no API key ", key_id));
        return absl::OkStatus();
      });
}

absl::StatusOr<std::string> PgAuthStore::TenantForTopicPrefix(const std::string& prefix) {
  return RunPgOperation(
      *pool_, observer_, "tenant_for_topic_prefix", PgRetry::kOnLostConnection,
      [&](PgSession& session) -> absl::StatusOr<std::string> {
        pqxx::nontransaction tx(session.connection());
        const pqxx::result rows =
            tx.exec_params("SELECT tenant_id FROM tenants WHERE topic_prefix = $1", prefix);
        if (rows.empty()) {
          return absl::NotFoundError(absl::StrCat("no tenant has the topic prefix \"", prefix,
                                                  "\""));
        }
        return TextOf(rows[0][0]);
      });
}

}  // namespace herald
