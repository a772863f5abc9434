// Validation of what callers send: devices and notification requests. Every
// error is kInvalidArgument and names the field (as the API spells it) and
// the rule, so a caller can fix the request without reading Herald's code.
// Pure functions: the API layer calls them before anything is stored.
//
//   absl::Status status = ValidateDevice(device, "device");
//   absl::Status status = ValidateNotificationRequest(request, limits);
#ifndef HERALD_SERVICE_CORE_VALIDATION_H_
#define HERALD_SERVICE_CORE_VALIDATION_H_

#include <cstddef>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "service/core/types.h"

namespace herald {

inline constexpr size_t kMaxIdBytes = 128;
inline constexpr size_t kMaxGroupsPerDevice = 64;
inline constexpr size_t kMaxGroupBytes = 255;
inline constexpr size_t kMaxMetadataEntries = 64;
inline constexpr size_t kMaxMetadataKeyBytes = 64;
inline constexpr size_t kMaxMetadataValueBytes = 1024;
inline constexpr size_t kMaxDataEntries = 256;
inline constexpr size_t kMaxOwnersOrGroupsPerRequest = 1000;
inline constexpr size_t kMaxIdempotencyKeyBytes = 128;

// Limits that come from configuration.
struct RequestLimits {
  size_t max_targets_per_request = 10000;  // device ids in one request
};

// Device and owner ids: 1-128 characters of [A-Za-z0-9._:-], so that they
// can stand as a topic level.
absl::Status ValidateId(absl::string_view id, absl::string_view field);

// A device to create or the masked fields of an update. `field` prefixes the
// field names in errors ("device" gives "device.device_id: ...").
absl::Status ValidateDevice(const Device& device, absl::string_view field);

// Everything that can be checked before the targets are resolved.
absl::Status ValidateNotificationRequest(const NotificationRequest& request,
                                         const RequestLimits& limits);

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_VALIDATION_H_
