#include "service/auth/tenant.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace herald {

absl::Status ValidateTenantId(absl::string_view tenant_id, absl::string_view field) {
  const auto allowed = [](char c) {
    return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'z') || c == '_' || c == '-';
  };
  bool valid = !tenant_id.empty() && tenant_id.size() <= 64 && absl::ascii_isalnum(tenant_id[0]);
  for (char c : tenant_id) valid = valid && allowed(c);
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": a tenant id is 1-64 characters of a-z, 0-9, '_' and '-', starting with a "
               "letter or digit"));
  }
  return absl::OkStatus();
}

absl::Status ValidateTenantTopicPrefix(absl::string_view prefix, absl::string_view field) {
  const auto allowed = [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.';
  };
  bool valid = !prefix.empty() && prefix.size() <= 64;
  for (char c : prefix) valid = valid && allowed(c);
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": a tenant's topic prefix is one topic level of 1-64 characters of A-Z, a-z, "
               "0-9, '_', '-' and '.' (no '/', '+', '#' or '$')"));
  }
  return absl::OkStatus();
}

}  // namespace herald
