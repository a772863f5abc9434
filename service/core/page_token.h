// Opaque page tokens for List methods. A token carries the position after
// which the next page starts plus a checksum and the name of the list it
// belongs to, so a token that Herald never issued (or issued for another
// list) is refused with kInvalidArgument instead of silently misread.
//
//   std::string token = EncodePageToken("devices", last_device_id);
//   absl::StatusOr<std::string> position = DecodePageToken("devices", token);
#ifndef HERALD_SERVICE_CORE_PAGE_TOKEN_H_
#define HERALD_SERVICE_CORE_PAGE_TOKEN_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace herald {

std::string EncodePageToken(absl::string_view list_name, absl::string_view position);

// The position encoded in `token`. kInvalidArgument naming `page_token` if
// the token is malformed, tampered with, or belongs to another list.
absl::StatusOr<std::string> DecodePageToken(absl::string_view list_name, absl::string_view token);

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_PAGE_TOKEN_H_
