// Commands: request/response with one device over MQTT (PRODUCT.md section
// 1, "Commands"). The value types shared by the API layer, the Commander
// (service/dispatch) and the CommandStore, and the validation of a caller's
// request. Std and Abseil only.
//
//   CommandRequest request{.tenant_id = kDefaultTenant, .device_id = "node-001",
//                          .action = "on", .timeout = absl::Seconds(2)};
//   if (absl::Status valid = ValidateCommandRequest(request); !valid.ok()) return valid;
//   ...
//   if (record.state == CommandState::kSucceeded) Use(record.result_json);
//
// Pure functions and plain structs: thread-compatible.
#ifndef HERALD_SERVICE_CORE_COMMAND_H_
#define HERALD_SERVICE_CORE_COMMAND_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace herald {

// Limits of a SendCommand request; errors name them.
inline constexpr size_t kMaxCommandActionBytes = 64;
inline constexpr size_t kMaxCommandParams = 64;
inline constexpr size_t kMaxCommandParamKeyBytes = 64;
inline constexpr size_t kMaxCommandParamValueBytes = 4096;
inline constexpr absl::Duration kMinCommandTimeout = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxCommandTimeout = absl::Seconds(60);
inline constexpr int kMaxCommandRetries = 10;

// Defaults of the optional request fields (PRODUCT.md section 1).
inline constexpr int kDefaultCommandQos = 1;
inline constexpr absl::Duration kDefaultCommandTimeout = absl::Seconds(5);
inline constexpr int kDefaultCommandRetries = 3;

// A command as a caller asks for it, before validation.
struct CommandRequest {
  std::string tenant_id;
  std::string topic_prefix;  // the tenant's: command and response topics go under it
  std::string device_id;
  std::string action;                         // e.g. "on", "off", "reboot"
  std::map<std::string, std::string> params;  // sent as the payload's "params" object
  int qos = kDefaultCommandQos;               // MQTT QoS of the command message
  absl::Duration timeout = kDefaultCommandTimeout;  // per attempt
  int max_retries = kDefaultCommandRetries;         // attempts = max_retries + 1
  bool send_if_offline = false;  // send even to a device whose presence says offline
};

// Where a command is in its life. Only kPending changes; the others are final.
enum class CommandState {
  kPending,    // published (or about to be), waiting for the device
  kSucceeded,  // the device answered with status "success"
  kError,      // the device answered with any other status
  kTimedOut,   // no answer after every attempt (or the wait was abandoned)
};

// Stable lower-case names ("pending", "succeeded", "error", "timed_out"), as
// stored in the database and used in logs.
std::string_view CommandStateName(CommandState state);
std::optional<CommandState> CommandStateFromName(std::string_view name);

// What a device answered (PRODUCT.md section 2, "Command response").
struct CommandResponse {
  // The request id the answer refers to: the payload's "request_id" or,
  // under MQTT 5, the correlation data. Never empty once matched.
  std::string request_id;
  std::string status;       // "success", "error" or the device's own word
  std::string result_json;  // the "result" value as JSON text; empty when absent
  std::string error;        // the device's "error" text, if any
};

// A stored command and its outcome.
struct CommandRecord {
  std::string tenant_id;
  std::string command_id;  // the resource id (GetCommand)
  std::string request_id;  // on the wire; the same for every attempt
  std::string device_id;
  std::string action;
  std::map<std::string, std::string> params;
  int qos = kDefaultCommandQos;
  std::string topic;           // where the command is published
  std::string response_topic;  // where the device is told to answer (MQTT 5)
  CommandState state = CommandState::kPending;
  int attempts = 0;                     // publishes made so far
  int max_attempts = 1;                 // max_retries + 1
  absl::Duration attempt_timeout = kDefaultCommandTimeout;
  std::string status;                   // the device's status, once answered
  std::string result_json;              // the device's result as JSON; empty = none
  std::string error;                    // the device's error, or why Herald gave up
  std::optional<absl::Duration> round_trip;  // first publish -> response
  absl::Time create_time = absl::InfinitePast();
  std::optional<absl::Time> first_sent_time;
  std::optional<absl::Time> last_attempt_time;
  std::optional<absl::Time> response_time;
  std::optional<absl::Time> complete_time;
  // When the waiting caller gives up at the latest. A row still pending well
  // after it was abandoned (its replica stopped) and reads as timed out.
  absl::Time expire_time = absl::InfinitePast();

  bool IsFinal() const { return state != CommandState::kPending; }
};

// The state a device's status maps to: "success" is kSucceeded, anything
// else kError.
CommandState StateForDeviceStatus(std::string_view status);

// kInvalidArgument naming the field (as the API spells it) and the rule
// unless `request` can be sent: device_id a valid id; action 1-64 bytes of
// printable UTF-8 (no control characters); at most 64 params with keys of
// 1-64 bytes and values of at most 4,096 bytes, without NUL; qos 0-2;
// timeout 100 ms to 60 s; max_retries 0 to 10.
absl::Status ValidateCommandRequest(const CommandRequest& request);

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_COMMAND_H_
