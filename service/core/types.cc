#include "service/core/types.h"

namespace herald {

std::string_view DeliveryStateName(DeliveryState state) {
  switch (state) {
    case DeliveryState::kPending: return "pending";
    case DeliveryState::kDelivered: return "delivered";
    case DeliveryState::kNoSubscriber: return "no_subscriber";
    case DeliveryState::kReceived: return "received";
    case DeliveryState::kFailed: return "failed";
    case DeliveryState::kExpired: return "expired";
    case DeliveryState::kCancelled: return "cancelled";
  }
  return "pending";
}

std::optional<DeliveryState> DeliveryStateFromName(std::string_view name) {
  for (DeliveryState state :
       {DeliveryState::kPending, DeliveryState::kDelivered, DeliveryState::kNoSubscriber,
        DeliveryState::kReceived, DeliveryState::kFailed, DeliveryState::kExpired,
        DeliveryState::kCancelled}) {
    if (DeliveryStateName(state) == name) return state;
  }
  return std::nullopt;
}

std::string_view NotificationStateName(NotificationState state) {
  switch (state) {
    case NotificationState::kScheduled: return "scheduled";
    case NotificationState::kAccepted: return "accepted";
    case NotificationState::kDelivering: return "delivering";
    case NotificationState::kDelivered: return "delivered";
    case NotificationState::kPartiallyDelivered: return "partially_delivered";
    case NotificationState::kFailed: return "failed";
    case NotificationState::kExpired: return "expired";
    case NotificationState::kCancelled: return "cancelled";
  }
  return "accepted";
}

std::string_view PriorityName(Priority priority) {
  switch (priority) {
    case Priority::kLow: return "low";
    case Priority::kNormal: return "normal";
    case Priority::kHigh: return "high";
    case Priority::kUrgent: return "urgent";
  }
  return "normal";
}

std::string_view TargetKindName(TargetKind kind) {
  switch (kind) {
    case TargetKind::kDeviceIds: return "device_ids";
    case TargetKind::kOwnerIds: return "owner_ids";
    case TargetKind::kGroups: return "groups";
    case TargetKind::kTopic: return "topic";
  }
  return "device_ids";
}

std::optional<TargetKind> TargetKindFromName(std::string_view name) {
  for (TargetKind kind :
       {TargetKind::kDeviceIds, TargetKind::kOwnerIds, TargetKind::kGroups, TargetKind::kTopic}) {
    if (TargetKindName(kind) == name) return kind;
  }
  return std::nullopt;
}

NotificationState DeriveNotificationState(const DeliveryStateCounts& counts, bool scheduled) {
  if (counts.pending > 0) {
    if (counts.pending_attempted > 0 || counts.Total() > counts.pending) {
      return NotificationState::kDelivering;
    }
    return scheduled ? NotificationState::kScheduled : NotificationState::kAccepted;
  }
  const int64_t total = counts.Total();
  const int64_t succeeded = counts.Succeeded();
  if (total > 0 && succeeded == total) return NotificationState::kDelivered;
  if (succeeded > 0) return NotificationState::kPartiallyDelivered;
  if (counts.cancelled > 0) return NotificationState::kCancelled;
  if (total > 0 && counts.expired == total) return NotificationState::kExpired;
  if (counts.failed > 0) return NotificationState::kFailed;
  if (counts.expired > 0) return NotificationState::kExpired;
  return NotificationState::kAccepted;
}

}  // namespace herald
