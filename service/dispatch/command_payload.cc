#include "service/dispatch/command_payload.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "service/dispatch/payload.h"

namespace herald {
namespace {

absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

absl::Status Malformed(absl::string_view reason) {
  return absl::InvalidArgumentError(std::string(reason));
}

// A JSON object, or a reason why `payload` is not one.
absl::StatusOr<google::protobuf::Struct> ParseObject(std::string_view payload) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(Av(payload));
  if (trimmed.empty()) return Malformed("empty payload");
  if (trimmed.front() != '{') return Malformed("not a JSON object");
  google::protobuf::Struct object;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(trimmed.data(), trimmed.size()), &object);
  if (!status.ok()) {
    // Protobuf appends the offending input on the next lines; the first
    // line says what is wrong without echoing the device's payload.
    const auto message = status.message();
    absl::string_view reason(message.data(), message.size());
    reason = reason.substr(0, reason.find('\n'));
    return Malformed(absl::StrCat("not valid JSON: ", reason));
  }
  return object;
}

std::string KindName(google::protobuf::Value::KindCase kind) {
  switch (kind) {
    case google::protobuf::Value::kNullValue: return "null";
    case google::protobuf::Value::kNumberValue: return "a number";
    case google::protobuf::Value::kStringValue: return "a string";
    case google::protobuf::Value::kBoolValue: return "a boolean";
    case google::protobuf::Value::kStructValue: return "an object";
    case google::protobuf::Value::kListValue: return "an array";
    default: return "empty";
  }
}

std::string ToJson(const google::protobuf::Value& value) {
  std::string json;
  // Serializing a parsed Value cannot fail.
  (void)google::protobuf::util::MessageToJsonString(value, &json);
  return json;
}

std::optional<bool> PresenceWord(absl::string_view word) {
  const std::string lower = absl::AsciiStrToLower(word);
  if (lower == "online" || lower == "true") return true;
  if (lower == "offline" || lower == "false") return false;
  return std::nullopt;
}

}  // namespace

std::string EncodeCommandPayload(const std::string& request_id, const std::string& action,
                                 const std::map<std::string, std::string>& params,
                                 absl::Time sent_at) {
  google::protobuf::Struct payload;
  auto& fields = *payload.mutable_fields();
  fields["request_id"].set_string_value(request_id);
  fields["action"].set_string_value(action);
  auto& out_params = *fields["params"].mutable_struct_value()->mutable_fields();
  for (const auto& [key, value] : params) out_params[key].set_string_value(value);
  fields["sent_at"].set_string_value(FormatRfc3339(sent_at));
  std::string json;
  // A Struct of valid UTF-8 strings (the API's protos guarantee UTF-8)
  // always serializes.
  (void)google::protobuf::util::MessageToJsonString(payload, &json);
  return json;
}

absl::StatusOr<CommandResponse> ParseCommandResponse(std::string_view payload,
                                                     std::string_view correlation_data) {
  if (payload.size() > kMaxCommandResponseBytes) {
    return Malformed(absl::StrCat("payload of ", payload.size(), " bytes exceeds the limit of ",
                                  kMaxCommandResponseBytes));
  }
  absl::StatusOr<google::protobuf::Struct> object = ParseObject(payload);
  if (!object.ok()) return object.status();
  const auto& fields = object->fields();
  CommandResponse response;

  if (const auto it = fields.find("request_id"); it != fields.end()) {
    if (it->second.kind_case() != google::protobuf::Value::kStringValue) {
      return Malformed(absl::StrCat("\"request_id\" must be a string, not ",
                                    KindName(it->second.kind_case())));
    }
    response.request_id = it->second.string_value();
  }
  if (response.request_id.empty()) response.request_id = std::string(correlation_data);
  if (response.request_id.empty()) {
    return Malformed("no \"request_id\" (and no MQTT 5 correlation data)");
  }

  const auto status = fields.find("status");
  if (status == fields.end()) return Malformed("no \"status\" (\"success\" or \"error\")");
  if (status->second.kind_case() != google::protobuf::Value::kStringValue) {
    return Malformed(absl::StrCat("\"status\" must be a string, not ",
                                  KindName(status->second.kind_case())));
  }
  response.status = status->second.string_value();
  if (response.status.empty()) return Malformed("\"status\" must not be empty");

  if (const auto it = fields.find("result"); it != fields.end()) {
    response.result_json = ToJson(it->second);
  }
  if (const auto it = fields.find("error"); it != fields.end()) {
    if (it->second.kind_case() == google::protobuf::Value::kStringValue) {
      response.error = it->second.string_value();
    } else if (it->second.kind_case() != google::protobuf::Value::kNullValue) {
      response.error = ToJson(it->second);
    }
  }
  return response;
}

absl::StatusOr<bool> ParsePresencePayload(std::string_view payload) {
  if (payload.size() > kMaxCommandResponseBytes) {
    return Malformed(absl::StrCat("payload of ", payload.size(), " bytes is too large"));
  }
  absl::string_view trimmed = absl::StripAsciiWhitespace(Av(payload));
  if (trimmed.empty()) return Malformed("empty payload");
  if (trimmed.size() >= 2 && trimmed.front() == '"' && trimmed.back() == '"') {
    trimmed = trimmed.substr(1, trimmed.size() - 2);
  }
  if (std::optional<bool> word = PresenceWord(trimmed); word.has_value()) return *word;
  if (trimmed.front() != '{') {
    return Malformed(
        "expected {\"online\": true|false} or one of online, offline, true, false");
  }
  absl::StatusOr<google::protobuf::Struct> object = ParseObject(payload);
  if (!object.ok()) return object.status();
  const auto it = object->fields().find("online");
  if (it == object->fields().end()) return Malformed("no \"online\" field");
  if (it->second.kind_case() != google::protobuf::Value::kBoolValue) {
    return Malformed(absl::StrCat("\"online\" must be a boolean, not ",
                                  KindName(it->second.kind_case())));
  }
  return it->second.bool_value();
}

}  // namespace herald
