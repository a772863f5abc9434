#include "service/dispatch/payload.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "service/core/json_text.h"

namespace herald {
namespace {

uint64_t Fnv1a(std::string_view text, uint64_t seed) {
  uint64_t hash = seed;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return hash;
}

// Appends a length-prefixed field so that no two requests serialize alike.
void AppendField(std::string* out, std::string_view value) {
  absl::StrAppend(out, value.size(), ":");
  out->append(value);
  out->append(";");
}

}  // namespace

std::string FormatRfc3339(absl::Time time) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

std::string EncodeNotificationPayload(const std::string& notification_id,
                                      const NotificationContent& content, absl::Time sent_at,
                                      std::optional<absl::Time> expires_at) {
  // Written directly, in the documented order: building a protobuf Struct
  // and printing it through reflection took ten times as long, for every
  // notification accepted.
  size_t size = 160 + notification_id.size() + content.title.size() + content.body.size();
  for (const auto& [key, value] : content.data) size += key.size() + value.size() + 6;
  std::string json;
  json.reserve(size);
  const auto append_string = [&json](std::string_view text) {
    json.push_back('"');
    AppendJsonEscaped(text, &json);
    json.push_back('"');
  };
  json.append("{\"id\":");
  append_string(notification_id);
  json.append(",\"title\":");
  append_string(content.title);
  json.append(",\"body\":");
  append_string(content.body);
  json.append(",\"data\":{");
  bool first = true;
  for (const auto& [key, value] : content.data) {
    if (!first) json.push_back(',');
    first = false;
    append_string(key);
    json.push_back(':');
    append_string(value);
  }
  json.append("},\"priority\":");
  append_string(PriorityName(content.priority));
  json.append(",\"sent_at\":");
  append_string(FormatRfc3339(sent_at));
  if (expires_at.has_value()) {
    json.append(",\"expires_at\":");
    append_string(FormatRfc3339(*expires_at));
  }
  json.push_back('}');
  return json;
}

std::string RequestFingerprint(const NotificationRequest& request) {
  std::string canonical = "herald-notification-v1;";
  // The lists are preceded by their lengths: with a mere separator, a free
  // text value equal to it (a group may be any string) would let fields
  // shift between the lists and the content.
  AppendField(&canonical, TargetKindName(request.target.kind));
  AppendField(&canonical, absl::StrCat(request.target.values.size()));
  for (const std::string& value : request.target.values) AppendField(&canonical, value);
  AppendField(&canonical, request.content.title);
  AppendField(&canonical, request.content.body);
  AppendField(&canonical, absl::StrCat(request.content.data.size()));
  for (const auto& [key, value] : request.content.data) {
    AppendField(&canonical, key);
    AppendField(&canonical, value);
  }
  AppendField(&canonical, PriorityName(request.content.priority));
  const DeliveryOptions& options = request.options;
  AppendField(&canonical, absl::StrCat(options.qos, options.retain ? "r" : "-"));
  AppendField(&canonical, options.ttl ? absl::FormatDuration(*options.ttl) : "");
  AppendField(&canonical, options.send_time ? FormatRfc3339(*options.send_time) : "");
  return absl::StrFormat("%016x%016x", Fnv1a(canonical, 1469598103934665603ULL),
                         Fnv1a(canonical, 0x84222325cbf29ce4ULL));
}

}  // namespace herald
