#include "service/ctl/printers.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "service/ctl/cli.h"

namespace herald::ctl {
namespace {

std::string YesNo(bool value) { return value ? "yes" : "no"; }

std::string MapText(const google::protobuf::Map<std::string, std::string>& map) {
  // Sorted, so that the output is stable.
  std::map<std::string, std::string> sorted(map.begin(), map.end());
  std::vector<std::string> pairs;
  for (const auto& [key, value] : sorted) pairs.push_back(absl::StrCat(key, "=", value));
  return JoinOrDash(pairs);
}

std::string TargetText(const v1::Target& target) {
  switch (target.kind_case()) {
    case v1::Target::kDeviceIds:
      return absl::StrCat("devices ", absl::StrJoin(target.device_ids().values(), ", "));
    case v1::Target::kOwnerIds:
      return absl::StrCat("owners ", absl::StrJoin(target.owner_ids().values(), ", "));
    case v1::Target::kGroups:
      return absl::StrCat("groups ", absl::StrJoin(target.groups().values(), ", "));
    case v1::Target::kTopic:
      return absl::StrCat("topic ", target.topic());
    case v1::Target::KIND_NOT_SET:
      break;
  }
  return "-";
}

std::string QosText(const v1::DeliveryOptions& options) {
  return options.has_qos() ? absl::StrCat(options.qos()) : "1";
}

std::string ValueJson(const google::protobuf::Value& value) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(value, &json).ok()) return "?";
  return json;
}

void AddCountsRow(Table& table, const std::string& name, const v1::DeliveryCounts& counts) {
  table.AddRow({name, absl::StrCat(counts.sent()), absl::StrCat(counts.succeeded()),
                absl::StrCat(counts.failed()), absl::StrCat(counts.expired()),
                absl::StrCat(counts.cancelled()), absl::StrCat(counts.pending())});
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  std::string json;
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) return absl::StrCat("{\"error\": \"cannot print as JSON\"}\n");
  if (json.empty() || json.back() != '\n') json.push_back('\n');
  return json;
}

std::string FormatTime(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "-";
  const absl::Time at = absl::FromUnixSeconds(time.seconds()) + absl::Nanoseconds(time.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone());
}

std::string FormatDuration(const google::protobuf::Duration& duration) {
  if (duration.seconds() == 0 && duration.nanos() == 0) return "-";
  return absl::FormatDuration(absl::Seconds(duration.seconds()) +
                              absl::Nanoseconds(duration.nanos()));
}

std::string DeviceTable(const google::protobuf::RepeatedPtrField<v1::Device>& devices) {
  Table table({"DEVICE", "OWNER", "PLATFORM", "TOPIC", "GROUPS", "ENABLED", "ONLINE", "LAST SEEN"});
  for (const v1::Device& device : devices) {
    table.AddRow({device.device_id(), device.owner_id().empty() ? "-" : device.owner_id(),
                  device.platform().empty() ? "mqtt" : device.platform(),
                  device.topic().empty() ? "(template)" : device.topic(),
                  JoinOrDash({device.groups().begin(), device.groups().end()}),
                  YesNo(!device.has_enabled() || device.enabled()), YesNo(device.online()),
                  FormatTime(device.last_seen_time())});
  }
  return table.Render();
}

std::string DeviceFields(const v1::Device& device) {
  Fields fields;
  fields.Add("device", device.device_id());
  fields.Add("owner", device.owner_id());
  fields.Add("platform", device.platform().empty() ? "mqtt" : device.platform());
  fields.Add("topic", device.topic().empty() ? "(from the notification topic template)"
                                             : device.topic());
  fields.Add("groups", JoinOrDash({device.groups().begin(), device.groups().end()}));
  fields.Add("metadata", MapText(device.metadata()));
  fields.Add("enabled", YesNo(!device.has_enabled() || device.enabled()));
  fields.Add("online", YesNo(device.online()));
  fields.Add("last seen", FormatTime(device.last_seen_time()));
  fields.Add("created", FormatTime(device.create_time()));
  fields.Add("updated", FormatTime(device.update_time()));
  return fields.Render();
}

std::string SendResultText(const v1::SendNotificationResponse& response) {
  Fields fields;
  fields.Add("notification", response.notification_id().empty() ? "(not stored: validate only)"
                                                                : response.notification_id());
  fields.Add("state", v1::NotificationState_Name(response.state()));
  fields.Add("targets", absl::StrCat(response.target_count()));
  fields.Add("unresolved", JoinOrDash({response.unresolved_device_ids().begin(),
                                       response.unresolved_device_ids().end()}));
  if (response.duplicate()) fields.Add("duplicate", "yes: an earlier request had this key");
  std::string out = fields.Render();
  if (!response.targets().empty()) {
    Table table({"DEVICE", "TOPIC"});
    for (const v1::ResolvedTarget& target : response.targets()) {
      table.AddRow({target.device_id().empty() ? "-" : target.device_id(), target.topic()});
    }
    absl::StrAppend(&out, "\n", table.Render());
  }
  return out;
}

std::string NotificationText(const v1::Notification& notification,
                             const std::vector<std::string>& unresolved) {
  Fields fields;
  fields.Add("notification", notification.notification_id());
  fields.Add("state", v1::NotificationState_Name(notification.state()));
  fields.Add("target", TargetText(notification.target()));
  fields.Add("title", notification.content().title());
  fields.Add("body", notification.content().body());
  fields.Add("data", MapText(notification.content().data()));
  fields.Add("priority", v1::Priority_Name(notification.content().priority()));
  fields.Add("qos", QosText(notification.options()));
  fields.Add("targets", absl::StrCat(notification.target_count()));
  fields.Add("delivered", absl::StrCat(notification.delivered_count()));
  fields.Add("failed", absl::StrCat(notification.failed_count()));
  fields.Add("pending", absl::StrCat(notification.pending_count()));
  if (!unresolved.empty()) fields.Add("unresolved", JoinOrDash(unresolved));
  fields.Add("created", FormatTime(notification.create_time()));
  fields.Add("expires", FormatTime(notification.expire_time()));
  std::string out = fields.Render();
  if (!notification.deliveries().empty()) {
    Table table({"DEVICE", "TOPIC", "STATE", "ATTEMPTS", "LAST ATTEMPT", "COMPLETED", "LAST ERROR"});
    for (const v1::Delivery& delivery : notification.deliveries()) {
      table.AddRow({delivery.device_id().empty() ? "-" : delivery.device_id(), delivery.topic(),
                    v1::DeliveryState_Name(delivery.state()), absl::StrCat(delivery.attempts()),
                    FormatTime(delivery.last_attempt_time()), FormatTime(delivery.complete_time()),
                    delivery.last_error().empty() ? "-" : delivery.last_error()});
    }
    absl::StrAppend(&out, "\n", table.Render());
    if (!notification.next_delivery_page_token().empty()) {
      absl::StrAppend(&out, "(more deliveries: --page_token=",
                      notification.next_delivery_page_token(), ")\n");
    }
  }
  return out;
}

std::string NotificationTable(
    const google::protobuf::RepeatedPtrField<v1::Notification>& notifications) {
  Table table({"NOTIFICATION", "STATE", "TARGETS", "DELIVERED", "FAILED", "PENDING", "CREATED",
               "TITLE"});
  for (const v1::Notification& notification : notifications) {
    table.AddRow({notification.notification_id(), v1::NotificationState_Name(notification.state()),
                  absl::StrCat(notification.target_count()),
                  absl::StrCat(notification.delivered_count()),
                  absl::StrCat(notification.failed_count()),
                  absl::StrCat(notification.pending_count()),
                  FormatTime(notification.create_time()), notification.content().title()});
  }
  return table.Render();
}

std::string StatsText(const v1::GetStatsResponse& stats) {
  Fields fields;
  fields.Add("notifications", absl::StrCat(stats.notifications()));
  fields.Add("devices", absl::StrCat(stats.devices()));
  fields.Add("backlog", absl::StrCat(stats.backlog()));
  fields.Add("last sent", FormatTime(stats.last_sent_time()));
  std::string out = fields.Render();

  Table deliveries({"DELIVERIES", "SENT", "SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED", "PENDING"});
  AddCountsRow(deliveries, "total", stats.total());
  std::map<int, v1::DeliveryCounts> by_qos(stats.by_qos().begin(), stats.by_qos().end());
  for (const auto& [qos, counts] : by_qos) AddCountsRow(deliveries, absl::StrCat("qos ", qos), counts);
  std::map<std::string, v1::DeliveryCounts> by_provider(stats.by_provider().begin(),
                                                        stats.by_provider().end());
  for (const auto& [provider, counts] : by_provider) AddCountsRow(deliveries, provider, counts);
  absl::StrAppend(&out, "\n", deliveries.Render());

  if (!stats.providers().empty()) {
    Table providers({"PROVIDER", "STATE", "SERVER", "CONNECTIONS", "RECONNECTS", "IN FLIGHT",
                     "LAST CONNECT", "LAST ERROR"});
    for (const v1::ProviderStatus& provider : stats.providers()) {
      providers.AddRow({provider.provider(), provider.state(),
                        provider.server_uri().empty() ? "-" : provider.server_uri(),
                        absl::StrCat(provider.connections()), absl::StrCat(provider.reconnects()),
                        absl::StrCat(provider.in_flight()), FormatTime(provider.last_connect_time()),
                        provider.last_error().empty() ? "-" : provider.last_error()});
    }
    absl::StrAppend(&out, "\n", providers.Render());
  }
  return out;
}

std::string CommandText(const v1::Command& command) {
  Fields fields;
  fields.Add("command", command.command_id());
  fields.Add("request", command.request_id());
  fields.Add("device", command.device_id());
  fields.Add("action", command.action());
  fields.Add("params", MapText(command.params()));
  fields.Add("state", v1::CommandState_Name(command.state()));
  fields.Add("attempts", absl::StrCat(command.attempts()));
  fields.Add("status", command.status());
  fields.Add("result", command.has_result() ? ValueJson(command.result()) : "");
  fields.Add("error", command.error());
  fields.Add("round trip", FormatDuration(command.round_trip()));
  fields.Add("created", FormatTime(command.create_time()));
  fields.Add("completed", FormatTime(command.complete_time()));
  return fields.Render();
}

}  // namespace herald::ctl
