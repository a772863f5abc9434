// Translation between the public API (herald.v1 protos) and Herald's core
// types. The generated proto types stop here: everything behind the API
// layer works on service/core types.
//
//   absl::StatusOr<NotificationRequest> request = FromProto(proto_request, tenant);
//   ToProto(device, &proto_device);
#ifndef HERALD_SERVICE_API_CONVERT_H_
#define HERALD_SERVICE_API_CONVERT_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "herald/v1/device.pb.h"
#include "herald/v1/notification.pb.h"
#include "herald/v1/stats.pb.h"
#include "service/core/types.h"

namespace herald::api {

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* proto);

// The device fields of `proto` (output-only fields ignored; `enabled`
// defaults to true).
Device DeviceFromProto(const v1::Device& proto, const std::string& tenant_id);
void DeviceToProto(const Device& device, v1::Device* proto);

// The update mask's paths as fields. kInvalidArgument naming update_mask
// for an unknown or output-only path. An empty mask means every field.
absl::StatusOr<std::vector<DeviceField>> DeviceFieldsFromMask(
    const google::protobuf::FieldMask& mask);

// kInvalidArgument naming the field for requests that cannot be represented
// (no target, an unknown priority, a ttl or send_time outside the proto's
// valid range). Range rules (qos 0-2, a positive ttl) are left to
// ValidateNotificationRequest, which the Notifier applies.
absl::StatusOr<NotificationRequest> NotificationRequestFromProto(
    const v1::SendNotificationRequest& proto, const std::string& tenant_id);

void NotificationToProto(const NotificationRecord& record, v1::Notification* proto);
void DeliveryToProto(const DeliveryRecord& record, v1::Delivery* proto);
v1::NotificationState NotificationStateToProto(NotificationState state);

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_CONVERT_H_
