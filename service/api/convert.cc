#include "service/api/convert.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace herald::api {
namespace {

using google::protobuf::util::TimeUtil;

absl::Time FromTimestamp(const google::protobuf::Timestamp& proto) {
  return absl::FromUnixSeconds(proto.seconds()) + absl::Nanoseconds(proto.nanos());
}

absl::Duration FromDuration(const google::protobuf::Duration& proto) {
  return absl::Seconds(proto.seconds()) + absl::Nanoseconds(proto.nanos());
}

void SetDuration(absl::Duration duration, google::protobuf::Duration* proto) {
  const int64_t nanos = absl::ToInt64Nanoseconds(duration);
  proto->set_seconds(nanos / 1000000000);
  proto->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

v1::Priority PriorityToProto(Priority priority) {
  switch (priority) {
    case Priority::kLow: return v1::LOW;
    case Priority::kNormal: return v1::NORMAL;
    case Priority::kHigh: return v1::HIGH;
    case Priority::kUrgent: return v1::URGENT;
  }
  return v1::NORMAL;
}

v1::DeliveryState DeliveryStateToProto(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending: return v1::PENDING;
    case DeliveryState::kDelivered: return v1::DELIVERED_TO_BROKER;
    case DeliveryState::kNoSubscriber: return v1::NO_SUBSCRIBER;
    case DeliveryState::kReceived: return v1::RECEIVED;
    case DeliveryState::kFailed: return v1::DELIVERY_FAILED;
    case DeliveryState::kExpired: return v1::DELIVERY_EXPIRED;
    case DeliveryState::kCancelled: return v1::DELIVERY_CANCELLED;
  }
  return v1::DELIVERY_STATE_UNSPECIFIED;
}

void TargetToProto(const TargetSelector& target, v1::Target* proto) {
  auto fill = [&](v1::Target::StringList* list) {
    for (const std::string& value : target.values) list->add_values(value);
  };
  switch (target.kind) {
    case TargetKind::kDeviceIds: fill(proto->mutable_device_ids()); break;
    case TargetKind::kOwnerIds: fill(proto->mutable_owner_ids()); break;
    case TargetKind::kGroups: fill(proto->mutable_groups()); break;
    case TargetKind::kTopic:
      proto->set_topic(target.values.empty() ? "" : target.values[0]);
      break;
  }
}

}  // namespace

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* proto) {
  const timespec ts = absl::ToTimespec(time);
  proto->set_seconds(ts.tv_sec);
  proto->set_nanos(static_cast<int32_t>(ts.tv_nsec));
}

Device DeviceFromProto(const v1::Device& proto, const std::string& tenant_id) {
  Device device;
  device.tenant_id = tenant_id;
  device.device_id = proto.device_id();
  device.owner_id = proto.owner_id();
  device.platform = proto.platform().empty() ? "mqtt" : proto.platform();
  device.topic = proto.topic();
  device.groups.assign(proto.groups().begin(), proto.groups().end());
  device.metadata.insert(proto.metadata().begin(), proto.metadata().end());
  device.enabled = proto.has_enabled() ? proto.enabled() : true;
  return device;
}

void DeviceToProto(const Device& device, v1::Device* proto) {
  proto->set_device_id(device.device_id);
  proto->set_owner_id(device.owner_id);
  proto->set_platform(device.platform);
  proto->set_topic(device.topic);
  for (const std::string& group : device.groups) proto->add_groups(group);
  proto->mutable_metadata()->insert(device.metadata.begin(), device.metadata.end());
  proto->set_enabled(device.enabled);
  proto->set_online(device.online);
  if (device.last_seen_time.has_value()) {
    SetTimestamp(*device.last_seen_time, proto->mutable_last_seen_time());
  }
  SetTimestamp(device.create_time, proto->mutable_create_time());
  SetTimestamp(device.update_time, proto->mutable_update_time());
}

absl::StatusOr<std::vector<DeviceField>> DeviceFieldsFromMask(
    const google::protobuf::FieldMask& mask) {
  if (mask.paths().empty()) {
    return std::vector<DeviceField>{DeviceField::kOwnerId, DeviceField::kPlatform,
                                    DeviceField::kTopic,   DeviceField::kGroups,
                                    DeviceField::kMetadata, DeviceField::kEnabled};
  }
  std::vector<DeviceField> fields;
  for (const std::string& path : mask.paths()) {
    if (path == "owner_id") {
      fields.push_back(DeviceField::kOwnerId);
    } else if (path == "platform") {
      fields.push_back(DeviceField::kPlatform);
    } else if (path == "topic") {
      fields.push_back(DeviceField::kTopic);
    } else if (path == "groups") {
      fields.push_back(DeviceField::kGroups);
    } else if (path == "metadata") {
      fields.push_back(DeviceField::kMetadata);
    } else if (path == "enabled") {
      fields.push_back(DeviceField::kEnabled);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "update_mask: \"", path,
          "\" cannot be updated; use owner_id, platform, topic, groups, metadata or enabled"));
    }
  }
  return fields;
}

absl::StatusOr<NotificationRequest> NotificationRequestFromProto(
    const v1::SendNotificationRequest& proto, const std::string& tenant_id) {
  NotificationRequest request;
  request.tenant_id = tenant_id;
  request.validate_only = proto.validate_only();
  const v1::Target& target = proto.target();
  auto take = [&](TargetKind kind, const v1::Target::StringList& list) {
    request.target.kind = kind;
    request.target.values.assign(list.values().begin(), list.values().end());
  };
  switch (target.kind_case()) {
    case v1::Target::kDeviceIds: take(TargetKind::kDeviceIds, target.device_ids()); break;
    case v1::Target::kOwnerIds: take(TargetKind::kOwnerIds, target.owner_ids()); break;
    case v1::Target::kGroups: take(TargetKind::kGroups, target.groups()); break;
    case v1::Target::kTopic:
      request.target.kind = TargetKind::kTopic;
      request.target.values = {target.topic()};
      break;
    case v1::Target::KIND_NOT_SET:
      return absl::InvalidArgumentError(
          "target: exactly one of device_ids, owner_ids, groups or topic is required");
  }

  const v1::NotificationContent& content = proto.content();
  request.content.title = content.title();
  request.content.body = content.body();
  request.content.data.insert(content.data().begin(), content.data().end());
  switch (content.priority()) {
    case v1::PRIORITY_UNSPECIFIED:
    case v1::NORMAL: request.content.priority = Priority::kNormal; break;
    case v1::LOW: request.content.priority = Priority::kLow; break;
    case v1::HIGH: request.content.priority = Priority::kHigh; break;
    case v1::URGENT: request.content.priority = Priority::kUrgent; break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "content.priority: unknown value ", static_cast<int>(content.priority()),
          "; use LOW, NORMAL, HIGH or URGENT"));
  }

  const v1::DeliveryOptions& options = proto.options();
  request.options.qos = options.has_qos() ? options.qos() : 1;
  request.options.retain = options.retain();
  if (options.has_ttl()) {
    if (options.ttl().seconds() < TimeUtil::kDurationMinSeconds ||
        options.ttl().seconds() > TimeUtil::kDurationMaxSeconds ||
        std::abs(options.ttl().nanos()) >= 1000000000) {
      return absl::InvalidArgumentError("options.ttl: not a valid duration");
    }
    request.options.ttl = FromDuration(options.ttl());
  }
  if (options.has_send_time()) {
    if (options.send_time().seconds() < TimeUtil::kTimestampMinSeconds ||
        options.send_time().seconds() > TimeUtil::kTimestampMaxSeconds ||
        options.send_time().nanos() < 0 || options.send_time().nanos() >= 1000000000) {
      return absl::InvalidArgumentError("options.send_time: not a valid timestamp");
    }
    request.options.send_time = FromTimestamp(options.send_time());
  }
  request.options.idempotency_key = options.idempotency_key();
  return request;
}

v1::NotificationState NotificationStateToProto(NotificationState state) {
  switch (state) {
    case NotificationState::kScheduled: return v1::SCHEDULED;
    case NotificationState::kAccepted: return v1::ACCEPTED;
    case NotificationState::kDelivering: return v1::DELIVERING;
    case NotificationState::kDelivered: return v1::DELIVERED;
    case NotificationState::kPartiallyDelivered: return v1::PARTIALLY_DELIVERED;
    case NotificationState::kFailed: return v1::FAILED;
    case NotificationState::kExpired: return v1::EXPIRED;
    case NotificationState::kCancelled: return v1::CANCELLED;
  }
  return v1::NOTIFICATION_STATE_UNSPECIFIED;
}

void NotificationToProto(const NotificationRecord& record, v1::Notification* proto) {
  proto->set_notification_id(record.notification_id);
  TargetToProto(record.target, proto->mutable_target());
  v1::NotificationContent* content = proto->mutable_content();
  content->set_title(record.content.title);
  content->set_body(record.content.body);
  content->mutable_data()->insert(record.content.data.begin(), record.content.data.end());
  content->set_priority(PriorityToProto(record.content.priority));
  v1::DeliveryOptions* options = proto->mutable_options();
  options->set_qos(record.options.qos);
  options->set_retain(record.options.retain);
  if (record.options.ttl.has_value()) SetDuration(*record.options.ttl, options->mutable_ttl());
  if (record.options.send_time.has_value()) {
    SetTimestamp(*record.options.send_time, options->mutable_send_time());
  }
  options->set_idempotency_key(record.options.idempotency_key);
  proto->set_state(NotificationStateToProto(record.state));
  proto->set_target_count(record.counts.Total());
  proto->set_delivered_count(record.counts.Succeeded());
  proto->set_failed_count(record.counts.failed + record.counts.expired);
  proto->set_pending_count(record.counts.pending);
  SetTimestamp(record.create_time, proto->mutable_create_time());
  if (record.expire_time.has_value()) {
    SetTimestamp(*record.expire_time, proto->mutable_expire_time());
  }
}

void DeliveryToProto(const DeliveryRecord& record, v1::Delivery* proto) {
  proto->set_device_id(record.device_id);
  proto->set_topic(record.topic);
  proto->set_state(DeliveryStateToProto(record.state));
  proto->set_attempts(record.attempts);
  proto->set_last_error(record.last_error);
  if (record.last_attempt_time.has_value()) {
    SetTimestamp(*record.last_attempt_time, proto->mutable_last_attempt_time());
  }
  if (record.complete_time.has_value()) {
    SetTimestamp(*record.complete_time, proto->mutable_complete_time());
  }
}

}  // namespace herald::api
