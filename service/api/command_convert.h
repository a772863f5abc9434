// Translation between herald.v1 command messages and the core command
// types. The generated proto types stop here.
//
//   absl::StatusOr<CommandRequest> request = CommandRequestFromProto(proto, tenant);
//   CommandToProto(record, &proto_command);
#ifndef HERALD_SERVICE_API_COMMAND_CONVERT_H_
#define HERALD_SERVICE_API_COMMAND_CONVERT_H_

#include <string>

#include "absl/status/statusor.h"
#include "herald/v1/command.pb.h"
#include "service/core/command.h"

namespace herald::api {

// Applies the defaults of the optional fields (qos 1, timeout 5 s,
// max_retries 3). kInvalidArgument naming `timeout` for a Duration that is
// not one (seconds and nanos of different signs, nanos out of range); range
// rules are ValidateCommandRequest's, which the Commander applies.
absl::StatusOr<CommandRequest> CommandRequestFromProto(const v1::SendCommandRequest& proto,
                                                       const std::string& tenant_id);

// The device's result (stored as JSON text) becomes a google.protobuf.Value;
// text that is not JSON (never written by Herald) is passed on as a string.
void CommandToProto(const CommandRecord& record, v1::Command* proto);

v1::CommandState CommandStateToProto(CommandState state);

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_COMMAND_CONVERT_H_
