#include "service/core/page_token.h"

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace herald {
namespace {

// FNV-1a: a stable checksum (absl::Hash is seeded per process, and tokens
// must survive a restart and travel between replicas).
uint64_t Fnv1a(absl::string_view text) {
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

constexpr char kVersion[] = "v1";

}  // namespace

std::string EncodePageToken(absl::string_view list_name, absl::string_view position) {
  const std::string body = absl::StrCat(kVersion, ":", list_name, ":", position);
  const uint64_t checksum = Fnv1a(absl::StrCat("herald-page-token:", body));
  return absl::WebSafeBase64Escape(absl::StrCat(body, ":", absl::Hex(checksum)));
}

absl::StatusOr<std::string> DecodePageToken(absl::string_view list_name, absl::string_view token) {
  const auto invalid = [] {
    return absl::InvalidArgumentError(
        "page_token: not a token issued by this list method; pass the next_page_token of the "
        "previous response, or an empty token for the first page");
  };
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return invalid();
  const size_t last_colon = raw.rfind(':');
  if (last_colon == std::string::npos) return invalid();
  const std::string body = raw.substr(0, last_colon);
  const std::string checksum = raw.substr(last_colon + 1);
  if (checksum != absl::StrCat(absl::Hex(Fnv1a(absl::StrCat("herald-page-token:", body))))) {
    return invalid();
  }
  const std::string prefix = absl::StrCat(kVersion, ":", list_name, ":");
  if (body.rfind(prefix, 0) != 0) return invalid();
  return body.substr(prefix.size());
}

}  // namespace herald
