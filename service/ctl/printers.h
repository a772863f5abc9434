// How heraldctl shows Herald's API messages: as readable text (tables and
// "key: value" lines) or as protobuf JSON (--json), one function per kind of
// answer. Needs the generated messages, not gRPC.
//
//   std::cout << herald::ctl::DeviceTable(response.devices());
//   std::cout << herald::ctl::ToJson(response);
#ifndef HERALD_SERVICE_CTL_PRINTERS_H_
#define HERALD_SERVICE_CTL_PRINTERS_H_

#include <string>
#include <vector>

#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "herald/v1/command.pb.h"
#include "herald/v1/device.pb.h"
#include "herald/v1/notification.pb.h"
#include "herald/v1/stats.pb.h"

namespace herald::ctl {

// Protobuf's canonical JSON (lowerCamelCase names, enums by name, 64-bit
// integers as strings), indented, with fields at their default values
// included so that scripts find every field; ends in '\n'.
std::string ToJson(const google::protobuf::Message& message);

// One line per device: DEVICE OWNER PLATFORM TOPIC GROUPS ENABLED ONLINE LAST SEEN.
std::string DeviceTable(const google::protobuf::RepeatedPtrField<v1::Device>& devices);

// Every field of one device.
std::string DeviceFields(const v1::Device& device);

// The answer to SendNotification: id, state, targets, unresolved ids (and
// with validate_only, the topics that would be published to).
std::string SendResultText(const v1::SendNotificationResponse& response);

// A notification's summary and its deliveries; `unresolved` (the ids that
// SendNotification could not resolve) are listed when given.
std::string NotificationText(const v1::Notification& notification,
                             const std::vector<std::string>& unresolved = {});

// One line per notification: ID STATE TARGETS DELIVERED FAILED PENDING CREATED TITLE.
std::string NotificationTable(
    const google::protobuf::RepeatedPtrField<v1::Notification>& notifications);

// Totals, per QoS and per provider, and each provider's connection.
std::string StatsText(const v1::GetStatsResponse& stats);

// Every field of one command.
std::string CommandText(const v1::Command& command);

// "2026-01-24T10:30:00Z", or "-" for an unset timestamp.
std::string FormatTime(const google::protobuf::Timestamp& time);

// "1.5s", or "-" for an unset duration.
std::string FormatDuration(const google::protobuf::Duration& duration);

}  // namespace herald::ctl

#endif  // HERALD_SERVICE_CTL_PRINTERS_H_
