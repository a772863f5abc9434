#include "service/core/validation.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "service/core/topic.h"

namespace herald {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

bool IsIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' ||
         c == '-';
}

// Free text stored and echoed back: any UTF-8 without NUL, up to `max` bytes.
absl::Status ValidateText(absl::string_view text, size_t max, absl::string_view field) {
  if (text.size() > max) {
    return Invalid(field, absl::StrCat("must be at most ", max, " bytes (is ", text.size(), ")"));
  }
  if (text.find('\0') != absl::string_view::npos) return Invalid(field, "must not contain NUL");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateId(absl::string_view id, absl::string_view field) {
  if (id.empty()) return Invalid(field, "is required");
  if (id.size() > kMaxIdBytes) {
    return Invalid(field, absl::StrCat("must be at most ", kMaxIdBytes, " characters"));
  }
  for (char c : id) {
    if (!IsIdChar(c)) {
      return Invalid(field, absl::StrCat("\"", id,
                                         "\" may contain only letters, digits and . _ : - "
                                         "(it forms an MQTT topic level)"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDevice(const Device& device, absl::string_view field) {
  if (absl::Status s = ValidateId(device.device_id, absl::StrCat(field, ".device_id")); !s.ok()) {
    return s;
  }
  if (!device.owner_id.empty()) {
    if (absl::Status s = ValidateId(device.owner_id, absl::StrCat(field, ".owner_id")); !s.ok()) {
      return s;
    }
  }
  if (device.platform != "mqtt") {
    return Invalid(absl::StrCat(field, ".platform"),
                   absl::StrCat("\"", device.platform, "\" is not supported; use \"mqtt\""));
  }
  if (!device.topic.empty()) {
    if (absl::Status s = ValidatePublishTopic(device.topic, absl::StrCat(field, ".topic"));
        !s.ok()) {
      return s;
    }
  }
  if (device.groups.size() > kMaxGroupsPerDevice) {
    return Invalid(absl::StrCat(field, ".groups"),
                   absl::StrCat("at most ", kMaxGroupsPerDevice, " groups per device"));
  }
  for (size_t i = 0; i < device.groups.size(); ++i) {
    const std::string name = absl::StrCat(field, ".groups[", i, "]");
    if (device.groups[i].empty()) return Invalid(name, "must not be empty");
    if (absl::Status s = ValidateText(device.groups[i], kMaxGroupBytes, name); !s.ok()) return s;
  }
  if (device.metadata.size() > kMaxMetadataEntries) {
    return Invalid(absl::StrCat(field, ".metadata"),
                   absl::StrCat("at most ", kMaxMetadataEntries, " entries"));
  }
  for (const auto& [key, value] : device.metadata) {
    const std::string name = absl::StrCat(field, ".metadata[\"", key, "\"]");
    if (key.empty() || key.size() > kMaxMetadataKeyBytes) {
      return Invalid(absl::StrCat(field, ".metadata"),
                     absl::StrCat("keys must be 1-", kMaxMetadataKeyBytes, " characters"));
    }
    for (char c : key) {
      if (!IsIdChar(c)) {
        return Invalid(name, "keys may contain only letters, digits and . _ : -");
      }
    }
    if (absl::Status s = ValidateText(value, kMaxMetadataValueBytes, name); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidateNotificationRequest(const NotificationRequest& request,
                                         const RequestLimits& limits) {
  const TargetSelector& target = request.target;
  const std::string target_field = absl::StrCat("target.", std::string(TargetKindName(target.kind)));
  if (target.kind == TargetKind::kTopic) {
    if (target.values.size() != 1) return Invalid("target.topic", "must be one topic");
    if (absl::Status s = ValidatePublishTopic(target.values[0], "target.topic"); !s.ok()) return s;
  } else {
    if (target.values.empty()) {
      return Invalid(target_field, "must list at least one value");
    }
    const size_t limit = target.kind == TargetKind::kDeviceIds ? limits.max_targets_per_request
                                                               : kMaxOwnersOrGroupsPerRequest;
    if (target.values.size() > limit) {
      return Invalid(target_field, absl::StrCat("at most ", limit, " values per request (got ",
                                                target.values.size(), ")"));
    }
    for (size_t i = 0; i < target.values.size(); ++i) {
      const std::string name = absl::StrCat(target_field, "[", i, "]");
      if (target.kind == TargetKind::kGroups) {
        if (target.values[i].empty()) return Invalid(name, "must not be empty");
        if (absl::Status s = ValidateText(target.values[i], kMaxGroupBytes, name); !s.ok()) {
          return s;
        }
      } else if (absl::Status s = ValidateId(target.values[i], name); !s.ok()) {
        return s;
      }
    }
  }

  const NotificationContent& content = request.content;
  if (content.title.empty() && content.body.empty()) {
    return Invalid("content", "title and body must not both be empty");
  }
  if (absl::Status s = ValidateText(content.title, 65536, "content.title"); !s.ok()) return s;
  if (absl::Status s = ValidateText(content.body, 1 << 20, "content.body"); !s.ok()) return s;
  if (content.data.size() > kMaxDataEntries) {
    return Invalid("content.data", absl::StrCat("at most ", kMaxDataEntries, " entries"));
  }
  for (const auto& [key, value] : content.data) {
    if (key.empty()) return Invalid("content.data", "keys must not be empty");
    if (absl::Status s = ValidateText(key, 256, "content.data key"); !s.ok()) return s;
    if (absl::Status s = ValidateText(value, 1 << 20, absl::StrCat("content.data[\"", key, "\"]"));
        !s.ok()) {
      return s;
    }
  }

  const DeliveryOptions& options = request.options;
  if (options.qos < 0 || options.qos > 2) {
    return Invalid("options.qos", absl::StrCat("must be 0, 1 or 2 (got ", options.qos, ")"));
  }
  if (options.ttl.has_value() && *options.ttl <= absl::ZeroDuration()) {
    return Invalid("options.ttl", "must be positive when set");
  }
  if (options.ttl.has_value() && *options.ttl > absl::Hours(24 * 365)) {
    return Invalid("options.ttl", "must be at most one year");
  }
  if (options.idempotency_key.size() > kMaxIdempotencyKeyBytes) {
    return Invalid("options.idempotency_key",
                   absl::StrCat("must be at most ", kMaxIdempotencyKeyBytes, " bytes"));
  }
  for (char c : options.idempotency_key) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Invalid("options.idempotency_key", "must not contain control characters");
    }
  }
  return absl::OkStatus();
}

}  // namespace herald
