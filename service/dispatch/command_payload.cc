#include "service/dispatch/command_payload.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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

// Whether `json` nests arrays and objects more than `max_depth` levels deep
// (brackets inside strings do not count). Linear, and it does not need
// `json` to be well formed.
bool NestedDeeperThan(absl::string_view json, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

// A JSON object, or a reason why `payload` is not one.
absl::StatusOr<google::protobuf::Struct> ParseObject(std::string_view payload) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(Av(payload));
  if (trimmed.empty()) return Malformed("empty payload");
  if (trimmed.front() != '{') return Malformed("not a JSON object");
  // Checked first: Protobuf's parser takes time quadratic in the depth (a
  // payload of 200 KB of brackets kept it busy for over a minute, on the
  // thread that delivers every MQTT message).
  if (NestedDeeperThan(trimmed, kMaxPayloadNesting + 1)) {
    return Malformed(absl::StrCat("JSON nested too deeply (more than ", kMaxPayloadNesting,
                                  " levels of arrays and objects inside the payload's object)"));
  }
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

// `value` (the payload's `field`) as JSON text. Protobuf reads deeper
// nesting than it writes back (33 to 61 levels of arrays); ParseObject's
// limit stays within what it writes, and should writing fail all the same,
// the response is refused rather than stored with broken JSON.
absl::StatusOr<std::string> ToJson(const google::protobuf::Value& value,
                                   absl::string_view field) {
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(value, &json).ok()) {
    return Malformed(absl::StrCat("\"", field, "\" is nested too deeply to be stored"));
  }
  return json;
}

bool IsPlausibleRequestId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (const unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
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
  const bool from_payload = !response.request_id.empty();
  if (!from_payload) response.request_id = std::string(correlation_data);
  if (response.request_id.empty()) {
    return Malformed("no \"request_id\" (and no MQTT 5 correlation data)");
  }
  if (!IsPlausibleRequestId(response.request_id)) {
    // Not echoed: it may be anything, of any length.
    return Malformed(absl::StrCat(
        from_payload ? "\"request_id\"" : "the request id in the MQTT 5 correlation data",
        " must be 1 to ", kMaxRequestIdBytes, " printable ASCII characters (is ",
        response.request_id.size(), " bytes)"));
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
    absl::StatusOr<std::string> result = ToJson(it->second, "result");
    if (!result.ok()) return result.status();
    response.result_json = *std::move(result);
  }
  if (const auto it = fields.find("error"); it != fields.end()) {
    if (it->second.kind_case() == google::protobuf::Value::kStringValue) {
      response.error = it->second.string_value();
    } else if (it->second.kind_case() != google::protobuf::Value::kNullValue) {
      absl::StatusOr<std::string> error = ToJson(it->second, "error");
      if (!error.ok()) return error.status();
      response.error = *std::move(error);
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
  // `trimmed` is empty for the payload "" (two quotes).
  if (!absl::StartsWith(trimmed, "{")) {
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
