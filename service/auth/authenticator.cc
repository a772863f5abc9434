#include "service/auth/authenticator.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace herald {

Authenticator::Authenticator(AuthStore& store, AuthenticatorOptions options)
    : store_(store),
      options_(std::move(options)),
      lookups_({.rate = options_.max_lookups_per_second,
                .burst = options_.max_lookup_burst,
                .clock = options_.clock}) {}

absl::StatusOr<std::optional<ApiKeyRecord>> Authenticator::Lookup(const std::string& key_id) {
  const absl::Time now = options_.clock();
  {
    absl::MutexLock lock(&mu_);
    if (auto it = cache_.find(key_id); it != cache_.end() &&
                                       now - it->second.fetched < options_.cache_ttl) {
      return it->second.record;
    }
  }
  if (absl::Duration retry_after; !lookups_.TryAcquire("", 1, &retry_after)) {
    return absl::UnavailableError(absl::StrCat(
        "too many unknown API keys are being tried; retry in ",
        absl::ToInt64Milliseconds(retry_after), " ms"));
  }
  absl::StatusOr<ApiKeyRecord> stored = store_.GetApiKey(key_id);
  std::optional<ApiKeyRecord> record;
  if (stored.ok()) {
    record = *std::move(stored);
  } else if (!absl::IsNotFound(stored.status())) {
    return absl::UnavailableError(
        absl::StrCat("cannot check the API key now: ", stored.status().message()));
  }
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= options_.max_cached_keys) cache_.clear();
  cache_[key_id] = CachedKey{.record = record, .fetched = now};
  return record;
}

absl::StatusOr<Caller> Authenticator::Authenticate(absl::string_view authorization) {
  authorization = absl::StripAsciiWhitespace(authorization);
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing API key: send the metadata \"authorization: Bearer <API key>\" (keys are made "
        "with `herald keys create`)");
  }
  constexpr absl::string_view kBearer = "bearer ";
  if (authorization.size() <= kBearer.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kBearer.size()), kBearer)) {
    return absl::UnauthenticatedError(
        "authorization: expected \"Bearer <API key>\"");
  }
  absl::StatusOr<ParsedApiKey> parsed =
      ParseApiKey(absl::StripLeadingAsciiWhitespace(authorization.substr(kBearer.size())));
  if (!parsed.ok()) return parsed.status();

  absl::StatusOr<std::optional<ApiKeyRecord>> record = Lookup(parsed->key_id);
  if (!record.ok()) return record.status();
  // One message for unknown and wrong keys: which one it was is no business
  // of a caller who has neither.
  if (!record->has_value() || !SecretMatches(parsed->secret, (*record)->secret_sha256)) {
    return absl::UnauthenticatedError(
        absl::StrCat("invalid API key (key id ", parsed->key_id, ")"));
  }
  if ((*record)->revoke_time.has_value()) {
    return absl::UnauthenticatedError(
        absl::StrCat("API key ", parsed->key_id, " was revoked"));
  }
  return Caller{.tenant_id = (*record)->tenant_id,
                .topic_prefix = (*record)->topic_prefix,
                .key_id = (*record)->key_id,
                .scopes = (*record)->scopes};
}

}  // namespace herald
