#include "service/auth/api_key.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace herald {
namespace {

constexpr char kBase64Url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64UrlNoPadding(const unsigned char* bytes, size_t size) {
  std::string out;
  out.reserve((size * 4 + 2) / 3);
  uint32_t buffer = 0;
  int bits = 0;
  for (size_t i = 0; i < size; ++i) {
    buffer = (buffer << 8) | bytes[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(buffer << (6 - bits)) & 0x3f]);
  return out;
}

bool IsLowerHex(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isdigit(c) && !(c >= 'a' && c <= 'f')) return false;
  }
  return true;
}

bool IsBase64Url(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isalnum(c) && c != '-' && c != '_') return false;
  }
  return true;
}

}  // namespace

absl::string_view ScopeName(Scope scope) {
  switch (scope) {
    case Scope::kNotify: return "notify";
    case Scope::kCommand: return "command";
    case Scope::kDevicesWrite: return "devices:write";
    case Scope::kDevicesRead: return "devices:read";
    case Scope::kStats: return "stats";
  }
  return "unknown";
}

ScopeSet ScopeSet::All() {
  ScopeSet all;
  for (Scope scope : kAllScopes) all.Add(scope);
  return all;
}

std::vector<std::string> ScopeSet::Names() const {
  std::vector<std::string> names;
  for (Scope scope : kAllScopes) {
    if (Contains(scope)) names.emplace_back(ScopeName(scope));
  }
  return names;
}

absl::StatusOr<ScopeSet> ParseScopes(const std::vector<std::string>& names,
                                     absl::string_view field) {
  ScopeSet scopes;
  for (const std::string& raw : names) {
    const absl::string_view name = absl::StripAsciiWhitespace(raw);
    if (name.empty()) continue;
    if (name == "all") {
      scopes = ScopeSet::All();
      continue;
    }
    bool known = false;
    for (Scope scope : kAllScopes) {
      if (name == ScopeName(scope)) {
        scopes.Add(scope);
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": unknown scope \"", name, "\"; expected ",
          absl::StrJoin(ScopeSet::All().Names(), ", "), " or all"));
    }
  }
  if (scopes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": at least one scope is required (", absl::StrJoin(ScopeSet::All().Names(), ", "),
        " or all)"));
  }
  return scopes;
}

absl::StatusOr<GeneratedApiKey> GenerateApiKey() {
  unsigned char id_bytes[kApiKeyIdLength / 2];
  unsigned char secret_bytes[32];
  if (RAND_bytes(id_bytes, sizeof(id_bytes)) != 1 ||
      RAND_bytes(secret_bytes, sizeof(secret_bytes)) != 1) {
    return absl::InternalError("the random source (OpenSSL RAND_bytes) failed");
  }
  GeneratedApiKey key;
  constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char byte : id_bytes) {
    key.key_id.push_back(kHex[byte >> 4]);
    key.key_id.push_back(kHex[byte & 0xf]);
  }
  key.secret = Base64UrlNoPadding(secret_bytes, sizeof(secret_bytes));
  OPENSSL_cleanse(secret_bytes, sizeof(secret_bytes));
  key.token = absl::StrCat(kApiKeyPrefix, key.key_id, "_", key.secret);
  key.secret_sha256 = HashApiKeySecret(key.secret);
  return key;
}

absl::StatusOr<ParsedApiKey> ParseApiKey(absl::string_view token) {
  const size_t expected = sizeof(kApiKeyPrefix) - 1 + kApiKeyIdLength + 1 + kApiKeySecretLength;
  if (token.size() != expected || !absl::StartsWith(token, kApiKeyPrefix)) {
    return absl::UnauthenticatedError(
        "authorization: not a Herald API key (expected \"Bearer hk_<id>_<secret>\")");
  }
  token.remove_prefix(sizeof(kApiKeyPrefix) - 1);
  const absl::string_view key_id = token.substr(0, kApiKeyIdLength);
  const absl::string_view separator = token.substr(kApiKeyIdLength, 1);
  const absl::string_view secret = token.substr(kApiKeyIdLength + 1);
  if (separator != "_" || !IsLowerHex(key_id) || !IsBase64Url(secret)) {
    return absl::UnauthenticatedError(
        "authorization: not a Herald API key (expected \"Bearer hk_<id>_<secret>\")");
  }
  return ParsedApiKey{.key_id = std::string(key_id), .secret = std::string(secret)};
}

std::string HashApiKeySecret(absl::string_view secret) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

bool SecretMatches(absl::string_view secret, absl::string_view secret_sha256) {
  const std::string digest = HashApiKeySecret(secret);
  if (secret_sha256.size() != digest.size()) return false;
  return CRYPTO_memcmp(digest.data(), secret_sha256.data(), digest.size()) == 0;
}

}  // namespace herald
