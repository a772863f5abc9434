// The MQTT payloads of commands and presence (PRODUCT.md section 2): what
// Herald publishes to a device's command topic, and how it reads what
// devices publish on their response and presence topics. Pure functions over
// Protobuf's JSON utilities (google::protobuf::Struct), so that every
// malformed input is refused with a reason rather than half-read.
//
//   std::string json = EncodeCommandPayload(request_id, "on", params, absl::Now());
//   absl::StatusOr<CommandResponse> response = ParseCommandResponse(payload, correlation_data);
//   if (!response.ok()) LogWarning("malformed response", {{"error", response.status().message()}});
//   absl::StatusOr<bool> online = ParsePresencePayload("offline");  // false
//
// Thread-safe.
#ifndef HERALD_SERVICE_DISPATCH_COMMAND_PAYLOAD_H_
#define HERALD_SERVICE_DISPATCH_COMMAND_PAYLOAD_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/core/command.h"

namespace herald {

// Larger responses are refused as malformed: a device's answer is a status
// and a small result, and it is stored with the command.
inline constexpr size_t kMaxCommandResponseBytes = 256 * 1024;

// A request id (the payload's or the correlation data) must be 1 to this
// many printable ASCII characters: Herald's are UUIDs, and anything else
// would only travel on to the database and the log.
inline constexpr size_t kMaxRequestIdBytes = 128;

// Arrays and objects nested deeper than this inside a response's or
// presence message's object are refused as malformed: Protobuf cannot write
// such a "result" back as JSON, and its parser slows down with the square
// of the depth.
inline constexpr int kMaxPayloadNesting = 32;

// {"request_id","action","params":{...},"sent_at"} as UTF-8 JSON; sent_at in
// RFC 3339 UTC with milliseconds.
std::string EncodeCommandPayload(const std::string& request_id, const std::string& action,
                                 const std::map<std::string, std::string>& params,
                                 absl::Time sent_at);

// Reads a device's answer: a JSON object with "status" (a string, required),
// optionally "request_id" (a string), "result" (any JSON value) and "error"
// (a string; another JSON value is kept as its JSON text). The request id is
// the payload's, else `correlation_data` (the MQTT 5 property, which Herald
// sets to the request id on every command). kInvalidArgument, with a reason
// fit for a log line, for anything else: not JSON, not an object, a field of
// the wrong type, no request id at all or one that is not 1 to
// kMaxRequestIdBytes printable ASCII characters, values nested deeper than
// kMaxPayloadNesting, or more than kMaxCommandResponseBytes.
absl::StatusOr<CommandResponse> ParseCommandResponse(std::string_view payload,
                                                     std::string_view correlation_data);

// Reads a presence message: a JSON object whose "online" is a boolean (other
// fields ignored, so HomeSync's {"online": false, "reason": ...} works), or
// one of the bare words online / offline / true / false (any case, also
// JSON-quoted, surrounding white space ignored), as Shelly devices publish.
// kInvalidArgument, with the reason, for anything else, the empty payload
// included (that clears a retained message; it says nothing about presence).
absl::StatusOr<bool> ParsePresencePayload(std::string_view payload);

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_COMMAND_PAYLOAD_H_
