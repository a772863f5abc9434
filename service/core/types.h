// Herald's value types: devices, notifications, deliveries and their states.
//
// Plain structs shared by the API layer, the stores and the delivery pipeline;
// they depend on the standard library and Abseil only, so every module can use
// them without pulling in gRPC, libpqxx or Paho.
//
//   herald::Device device{.tenant_id = "default", .device_id = "sensor-001"};
//   herald::TargetSelector target{.kind = TargetKind::kGroups, .values = {"floor-3"}};
#ifndef HERALD_SERVICE_CORE_TYPES_H_
#define HERALD_SERVICE_CORE_TYPES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace herald {

// The tenant every row belongs to until caller authentication lands.
inline constexpr char kDefaultTenant[] = "default";

// A device registered with Herald.
struct Device {
  std::string tenant_id;
  std::string device_id;
  std::string owner_id;
  std::string platform = "mqtt";
  std::string topic;  // notification topic; empty = derived from the template
  std::vector<std::string> groups;
  std::map<std::string, std::string> metadata;
  bool enabled = true;
  bool online = false;
  std::optional<absl::Time> last_seen_time;
  absl::Time create_time = absl::InfinitePast();
  absl::Time update_time = absl::InfinitePast();
};

// The fields that UpdateDevice may change.
enum class DeviceField { kOwnerId, kPlatform, kTopic, kGroups, kMetadata, kEnabled };

// Filters of ListDevices; unset fields match everything.
struct DeviceFilter {
  std::string owner_id;
  std::string group;
  std::string platform;
  std::optional<bool> online;
};

// A page of results and the token of the next one (empty on the last page).
template <typename T>
struct Page {
  std::vector<T> items;
  std::string next_page_token;
};

enum class TargetKind { kDeviceIds, kOwnerIds, kGroups, kTopic };

// Who a notification goes to: exactly one kind with its values
// (for kTopic, one value: the raw topic).
struct TargetSelector {
  TargetKind kind = TargetKind::kDeviceIds;
  std::vector<std::string> values;
};

enum class Priority { kLow, kNormal, kHigh, kUrgent };

struct NotificationContent {
  std::string title;
  std::string body;
  std::map<std::string, std::string> data;
  Priority priority = Priority::kNormal;
};

struct DeliveryOptions {
  int qos = 1;  // MQTT QoS 0, 1 or 2
  bool retain = false;
  std::optional<absl::Duration> ttl;
  std::optional<absl::Time> send_time;
  std::string idempotency_key;
};

// A notification as a caller asks for it, before validation and resolution.
struct NotificationRequest {
  std::string tenant_id;
  // The tenant's topic prefix (service/auth/tenant.h): template topics go
  // under it, and raw and device topics must lie within it. "" = unrestricted.
  std::string topic_prefix;
  TargetSelector target;
  NotificationContent content;
  DeliveryOptions options;
  bool validate_only = false;
};

// One resolved recipient of a notification: a device and its topic, or a raw
// topic with an empty device id.
struct ResolvedTarget {
  std::string device_id;
  std::string topic;
};

enum class NotificationState {
  kScheduled,
  kAccepted,
  kDelivering,
  kDelivered,
  kPartiallyDelivered,
  kFailed,
  kExpired,
  kCancelled,
};

enum class DeliveryState {
  kPending,
  kDelivered,
  kNoSubscriber,
  kReceived,
  kFailed,
  kExpired,
  kCancelled,
};

// Stable lower-case names, used in the database, logs and metric labels.
std::string_view DeliveryStateName(DeliveryState state);
std::optional<DeliveryState> DeliveryStateFromName(std::string_view name);
std::string_view NotificationStateName(NotificationState state);
std::string_view PriorityName(Priority priority);
std::string_view TargetKindName(TargetKind kind);
std::optional<TargetKind> TargetKindFromName(std::string_view name);

// How many of a notification's deliveries are in each state.
struct DeliveryStateCounts {
  int64_t pending = 0;
  int64_t pending_attempted = 0;  // pending deliveries published at least once
  int64_t delivered = 0;
  int64_t no_subscriber = 0;
  int64_t received = 0;
  int64_t failed = 0;
  int64_t expired = 0;
  int64_t cancelled = 0;

  int64_t Total() const {
    return pending + delivered + no_subscriber + received + failed + expired + cancelled;
  }
  int64_t Succeeded() const { return delivered + no_subscriber + received; }
};

// A notification's state follows from its deliveries (never stored, so it
// cannot disagree with them). `scheduled` is true while its send time is in
// the future.
NotificationState DeriveNotificationState(const DeliveryStateCounts& counts, bool scheduled);

// A stored notification and the totals of its deliveries.
struct NotificationRecord {
  std::string tenant_id;
  std::string notification_id;
  TargetSelector target;
  NotificationContent content;
  DeliveryOptions options;
  std::string payload;                // the exact bytes published to every target
  std::string request_fingerprint;    // identifies the request; only with an idempotency key
  absl::Time create_time = absl::InfinitePast();
  std::optional<absl::Time> expire_time;
  DeliveryStateCounts counts;
  NotificationState state = NotificationState::kAccepted;
};

// One target of a notification and what happened to it.
struct DeliveryRecord {
  int64_t delivery_id = 0;
  std::string device_id;
  std::string topic;
  int qos = 1;
  DeliveryState state = DeliveryState::kPending;
  int attempts = 0;
  std::string last_error;
  std::optional<absl::Time> last_attempt_time;
  std::optional<absl::Time> complete_time;
};

// A delivery claimed by a worker: everything needed to publish it.
struct ClaimedDelivery {
  int64_t delivery_id = 0;
  std::string notification_id;
  std::string topic;
  int qos = 1;
  bool retain = false;
  // Shared by the deliveries of one notification (a fan-out holds up to
  // 100,000 of them in memory, ready to publish); never null.
  std::shared_ptr<const std::string> payload = std::make_shared<const std::string>();
  int attempts = 0;  // including this one
  absl::Time accept_time = absl::InfinitePast();
  std::optional<absl::Time> expire_time;
};

// The result of one publish attempt, as the pipeline reports it to the store.
struct DeliveryOutcome {
  int64_t delivery_id = 0;
  // kDelivered or kNoSubscriber when acknowledged; kPending to retry after
  // `retry_after`; kFailed when out of attempts or rejected for good.
  DeliveryState state = DeliveryState::kDelivered;
  absl::Duration retry_after = absl::ZeroDuration();
  std::string error;
};

// Delivery totals in one bucket of GetStats.
struct DeliveryTotals {
  int64_t sent = 0;
  int64_t succeeded = 0;
  int64_t failed = 0;
  int64_t expired = 0;
  int64_t cancelled = 0;
  int64_t pending = 0;
};

// Database-wide statistics of one tenant.
struct StoredStats {
  DeliveryTotals total;
  std::map<int, DeliveryTotals> by_qos;
  std::map<std::string, DeliveryTotals> by_provider;
  std::optional<absl::Time> last_sent_time;
  int64_t notifications = 0;
  int64_t devices = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_TYPES_H_
