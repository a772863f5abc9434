#include "service/admin/keys_command.h"

#include <optional>

#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "service/auth/api_key.h"
#include "service/auth/tenant.h"
#include "service/core/types.h"

namespace herald {
namespace {

std::string TimeText(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

int Create(const KeysCommand& command, AuthStore& store, std::ostream& out, std::ostream& err) {
  if (absl::Status valid = ValidateTenantId(command.tenant_id, "--tenant"); !valid.ok()) {
    err << "herald keys create: " << valid.message() << "\n";
    return 2;
  }
  absl::StatusOr<ScopeSet> scopes = ParseScopes(command.scopes, "--scopes");
  if (!scopes.ok()) {
    err << "herald keys create: " << scopes.status().message() << "\n";
    return 2;
  }
  std::optional<std::string> prefix;
  if (!command.topic_prefix.empty()) {
    if (command.tenant_id == kDefaultTenant) {
      err << "herald keys create: --topic_prefix: the tenant \"default\" has the whole topic "
             "space and no prefix\n";
      return 2;
    }
    if (absl::Status valid = ValidateTenantTopicPrefix(command.topic_prefix, "--topic_prefix");
        !valid.ok()) {
      err << "herald keys create: " << valid.message() << "\n";
      return 2;
    }
    prefix = command.topic_prefix;
  } else if (command.tenant_id != kDefaultTenant) {
    // The tenant id is a valid prefix unless it is too special; say so.
    if (absl::Status valid = ValidateTenantTopicPrefix(command.tenant_id, "--topic_prefix");
        !valid.ok()) {
      err << "herald keys create: " << valid.message() << "\n";
      return 2;
    }
  }
  absl::StatusOr<GeneratedApiKey> key = GenerateApiKey();
  if (!key.ok()) {
    err << "herald keys create: " << key.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<ApiKeyRecord> stored = store.CreateApiKey({.key_id = key->key_id,
                                                            .tenant_id = command.tenant_id,
                                                            .name = command.name,
                                                            .scopes = *scopes,
                                                            .secret_sha256 = key->secret_sha256,
                                                            .topic_prefix = prefix});
  if (!stored.ok()) {
    err << "herald keys create: " << stored.status().message() << "\n";
    return absl::IsUnavailable(stored.status()) || absl::IsInternal(stored.status()) ? 1 : 2;
  }
  err << "API key " << stored->key_id << " for tenant \"" << stored->tenant_id << "\" (topic "
      << (stored->topic_prefix.empty() ? std::string("space: all topics")
                                       : "prefix: " + stored->topic_prefix + "/")
      << "; scopes: " << absl::StrJoin(stored->scopes.Names(), ",")
      << "). It is shown only now; store it as a secret:\n";
  out << key->token << "\n";
  return 0;
}

int List(const KeysCommand& command, AuthStore& store, std::ostream& out, std::ostream& err) {
  std::optional<std::string> tenant;
  if (command.tenant_id != kDefaultTenant) tenant = command.tenant_id;
  absl::StatusOr<std::vector<ApiKeyRecord>> keys = store.ListApiKeys(tenant);
  if (!keys.ok()) {
    err << "herald keys list: " << keys.status().message() << "\n";
    return 1;
  }
  out << "KEY_ID\tTENANT\tTOPIC_PREFIX\tSCOPES\tNAME\tCREATED\tREVOKED\n";
  for (const ApiKeyRecord& key : *keys) {
    out << key.key_id << "\t" << key.tenant_id << "\t"
        << (key.topic_prefix.empty() ? "-" : key.topic_prefix) << "\t"
        << absl::StrJoin(key.scopes.Names(), ",") << "\t" << (key.name.empty() ? "-" : key.name)
        << "\t" << TimeText(key.create_time) << "\t"
        << (key.revoke_time.has_value() ? TimeText(*key.revoke_time) : "-") << "\n";
  }
  return 0;
}

int Revoke(const KeysCommand& command, AuthStore& store, std::ostream& out, std::ostream& err) {
  // Accept the whole key too, but only ever print its id.
  std::string key_id = command.key_id;
  if (absl::StatusOr<ParsedApiKey> parsed = ParseApiKey(key_id); parsed.ok()) {
    key_id = parsed->key_id;
  }
  if (absl::Status revoked = store.RevokeApiKey(key_id); !revoked.ok()) {
    err << "herald keys revoke: " << revoked.message() << "\n";
    return absl::IsNotFound(revoked) ? 2 : 1;
  }
  out << "API key " << key_id
      << " revoked; replicas refuse it within 10 seconds (their key cache)\n";
  return 0;
}

}  // namespace

int RunKeysCommand(const KeysCommand& command, AuthStore& store, std::ostream& out,
                   std::ostream& err) {
  if (command.action == "create") return Create(command, store, out, err);
  if (command.action == "list") return List(command, store, out, err);
  if (command.action == "revoke") return Revoke(command, store, out, err);
  err << "herald keys: expected create, list or revoke KEY_ID\n";
  return 2;
}

}  // namespace herald
