// MQTT topic rules and topic templates.
//
// Publish topics built from request input must be safe: no wildcards, no
// NUL, no leading '$' (broker-internal topics), valid UTF-8, at most 65,535
// bytes. Templates such as "homesync/{meta.home_id}/nodes/{device_id}/command"
// are expanded per device; a value substituted into a template must be a
// single non-empty topic level.
//
//   absl::Status ok = ValidatePublishTopic(topic, "target.topic");
//   absl::StatusOr<std::string> t = ExpandTopicTemplate(kDefaultNotificationTopic, device);
#ifndef HERALD_SERVICE_CORE_TOPIC_H_
#define HERALD_SERVICE_CORE_TOPIC_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/status/statusor.h"
#include "service/core/types.h"

namespace herald {

inline constexpr size_t kMaxTopicBytes = 65535;
inline constexpr char kDefaultNotificationTopicTemplate[] = "devices/{device_id}/notifications";
inline constexpr char kDefaultCommandTopicTemplate[] = "devices/{device_id}/commands";
inline constexpr char kDefaultResponseTopicTemplate[] = "devices/{device_id}/responses";
inline constexpr char kDefaultPresenceTopicTemplate[] = "devices/{device_id}/status/online";
inline constexpr char kDefaultReceiptTopicTemplate[] = "devices/{device_id}/receipts";

// kInvalidArgument, naming `field`, unless `topic` is a valid topic to publish
// to: non-empty, at most 65,535 bytes of UTF-8 without NUL, no '+' or '#', no
// leading '$'. Empty levels ("a//b") are allowed, as MQTT allows them.
absl::Status ValidatePublishTopic(absl::string_view topic, absl::string_view field);

// kInvalidArgument, naming `field`, unless `value` can stand as one topic
// level: non-empty UTF-8 without NUL, '/', '+' or '#'.
absl::Status ValidateTopicLevel(absl::string_view value, absl::string_view field);

// kInvalidArgument unless `topic_template` is well formed: balanced braces,
// placeholders among {device_id}, {owner_id}, {platform}, {meta.KEY} (KEY
// UTF-8 without '/', '{', '+', '#' or NUL), and the literal parts valid in a
// publish topic.
absl::Status ValidateTopicTemplate(absl::string_view topic_template, absl::string_view field);

// Expands `topic_template` for `device`. kFailedPrecondition if a
// placeholder's value is missing (empty owner, no such metadata key) or is
// not a valid topic level.
absl::StatusOr<std::string> ExpandTopicTemplate(absl::string_view topic_template,
                                                const Device& device);

// The topic a notification for `device` is published to: its own topic, or
// else the expanded template.
absl::StatusOr<std::string> NotificationTopicFor(const Device& device,
                                                 absl::string_view topic_template);

// Tenant topic spaces (service/auth/tenant.h): a tenant's prefix is one
// topic level; "" is the whole topic space.
//
// Whether `topic` lies in the topic space of `prefix`: any topic for "",
// else the prefix's own level followed by at least one more.
bool TopicWithinPrefix(absl::string_view topic, absl::string_view prefix);

// `topic` under `prefix` ("acme" + "devices/x" = "acme/devices/x");
// `topic` itself for the empty prefix.
std::string TopicUnderPrefix(absl::string_view prefix, absl::string_view topic);

// kPermissionDenied for a topic outside `tenant_id`'s prefix, naming `field`.
absl::Status TopicOutsidePrefixError(absl::string_view field, absl::string_view topic,
                                     absl::string_view tenant_id, absl::string_view prefix);

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_TOPIC_H_
