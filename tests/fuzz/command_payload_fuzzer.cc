// Fuzzes the parsing of what devices publish on their response and presence
// topics (ParseCommandResponse, ParsePresencePayload): any bytes, with any
// MQTT 5 correlation data, must be read or refused with kInvalidArgument,
// never crash. What is accepted must be usable: a response always has a
// request id and a status, and its result is valid JSON; a refusal's reason
// is one line (it goes to a log line); white space around a payload changes
// nothing. A second half builds well-formed responses from the input (with
// results nested up to 70 levels) and checks that Herald reads them as
// Protobuf's JSON parser does, refusing only what is nested too deeply.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/json_util.h"
#include "service/dispatch/command_payload.h"

namespace {

bool IsPlausibleRequestId(const std::string& id) {
  if (id.empty() || id.size() > herald::kMaxRequestIdBytes) return false;
  for (const unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

// The reasons end up in log lines, one per message.
void CheckRefusal(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) std::abort();
  if (status.message().empty() || absl::StrContains(status.message(), "\n")) std::abort();
}

void CheckResponse(const absl::StatusOr<herald::CommandResponse>& response) {
  if (!response.ok()) {
    CheckRefusal(response.status());
    return;
  }
  if (response->status.empty()) std::abort();
  // Bounded and printable: it goes to the database and into log lines.
  if (!IsPlausibleRequestId(response->request_id)) std::abort();
  if (!response->result_json.empty()) {
    // Stored in a jsonb column: it must be JSON.
    google::protobuf::Value value;
    if (!google::protobuf::util::JsonStringToMessage(response->result_json, &value).ok()) {
      std::abort();
    }
  }
}

// Nested arrays and objects, `depth` levels deep, around a number: JSON
// that Protobuf reads up to about 60 levels but writes up to about 32.
std::string NestedJson(FuzzedDataProvider& input, int depth) {
  std::string open;
  std::string close;
  for (int level = 0; level < depth; ++level) {
    const bool array = input.ConsumeBool();
    open += array ? "[" : "{\"k\":";
    close.insert(0, array ? "]" : "}");
  }
  return open + std::to_string(input.ConsumeIntegral<int>()) + close;
}

// Builds {"request_id","status"[,"error"][,"result"]} from the input and
// checks that Herald reads it as Protobuf's JSON parser does.
void RoundTrip(FuzzedDataProvider& input) {
  const std::string correlation_data = input.ConsumeRandomLengthString(48);
  google::protobuf::Struct payload;
  auto& fields = *payload.mutable_fields();
  fields["request_id"].set_string_value(input.ConsumeRandomLengthString(48));
  fields["status"].set_string_value(input.ConsumeRandomLengthString(16));
  if (input.ConsumeBool()) fields["error"].set_string_value(input.ConsumeRandomLengthString(48));
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(payload, &json).ok()) return;
  if (input.ConsumeBool()) {
    json.pop_back();  // the closing brace
    json += ",\"result\":" + NestedJson(input, input.ConsumeIntegralInRange(0, 70)) + "}";
  }
  const absl::StatusOr<herald::CommandResponse> response =
      herald::ParseCommandResponse(json, correlation_data);
  CheckResponse(response);
  // Protobuf writes strings that are not UTF-8 (mangled), and refuses them
  // when it reads; what it reads back is what Herald must see.
  google::protobuf::Struct reread;
  if (!google::protobuf::util::JsonStringToMessage(json, &reread).ok()) {
    if (response.ok()) std::abort();
    return;
  }
  const auto& read = reread.fields();
  const std::string& request_id = read.at("request_id").string_value();
  const std::string& status = read.at("status").string_value();
  const bool has_id = IsPlausibleRequestId(request_id.empty() ? correlation_data : request_id);
  if (!response.ok()) {
    // Refused, though well formed: only for a result too deep to store.
    if (has_id && !status.empty() &&
        !absl::StrContains(response.status().message(), "nested too deeply")) {
      std::abort();
    }
    return;
  }
  if (!has_id || status.empty()) std::abort();
  if (response->request_id != (request_id.empty() ? correlation_data : request_id)) std::abort();
  if (response->status != status) std::abort();
  const std::string error = read.contains("error") ? read.at("error").string_value() : "";
  if (response->error != error) std::abort();
  if (read.contains("result") == response->result_json.empty()) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  // Protobuf logs each string that is not UTF-8 it writes; the logs would
  // drown libFuzzer's.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  if (input.ConsumeBool()) {
    RoundTrip(input);
    return 0;
  }
  const std::string correlation_data = input.ConsumeRandomLengthString(64);
  const std::string payload = input.ConsumeRemainingBytesAsString();

  const absl::StatusOr<herald::CommandResponse> response =
      herald::ParseCommandResponse(payload, correlation_data);
  CheckResponse(response);
  const absl::StatusOr<bool> online = herald::ParsePresencePayload(payload);
  if (!online.ok()) CheckRefusal(online.status());

  // Surrounding white space never changes the verdict (below the size limit).
  const std::string padded = " \n" + payload + "\t ";
  if (padded.size() > herald::kMaxCommandResponseBytes) return 0;
  const absl::StatusOr<herald::CommandResponse> padded_response =
      herald::ParseCommandResponse(padded, correlation_data);
  if (padded_response.ok() != response.ok() ||
      (response.ok() && (padded_response->request_id != response->request_id ||
                         padded_response->result_json != response->result_json))) {
    std::abort();
  }
  const absl::StatusOr<bool> padded_online = herald::ParsePresencePayload(padded);
  if (padded_online.ok() != online.ok() || (online.ok() && *padded_online != *online)) {
    std::abort();
  }
  return 0;
}
