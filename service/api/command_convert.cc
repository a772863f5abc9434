#include "service/api/command_convert.h"

#include <cstdint>
#include <cstdlib>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "service/api/convert.h"

namespace herald::api {
namespace {

constexpr int64_t kNanosPerSecond = 1000000000;

void SetDuration(absl::Duration duration, google::protobuf::Duration* proto) {
  const int64_t nanos = absl::ToInt64Nanoseconds(duration);
  proto->set_seconds(nanos / kNanosPerSecond);
  proto->set_nanos(static_cast<int32_t>(nanos % kNanosPerSecond));
}

}  // namespace

absl::StatusOr<CommandRequest> CommandRequestFromProto(const v1::SendCommandRequest& proto,
                                                       const std::string& tenant_id) {
  CommandRequest request;
  request.tenant_id = tenant_id;
  request.device_id = proto.device_id();
  request.action = proto.action();
  request.params.insert(proto.params().begin(), proto.params().end());
  if (proto.has_qos()) request.qos = proto.qos();
  if (proto.has_timeout()) {
    const google::protobuf::Duration& timeout = proto.timeout();
    if (std::llabs(timeout.nanos()) >= kNanosPerSecond ||
        (timeout.seconds() > 0 && timeout.nanos() < 0) ||
        (timeout.seconds() < 0 && timeout.nanos() > 0)) {
      return absl::InvalidArgumentError(
          "timeout: not a valid google.protobuf.Duration (nanos out of range or of another "
          "sign than seconds)");
    }
    request.timeout = absl::Seconds(timeout.seconds()) + absl::Nanoseconds(timeout.nanos());
  }
  if (proto.has_max_retries()) request.max_retries = proto.max_retries();
  request.send_if_offline = proto.send_if_offline();
  return request;
}

v1::CommandState CommandStateToProto(CommandState state) {
  switch (state) {
    case CommandState::kPending: return v1::COMMAND_PENDING;
    case CommandState::kSucceeded: return v1::COMMAND_SUCCEEDED;
    case CommandState::kError: return v1::COMMAND_ERROR;
    case CommandState::kTimedOut: return v1::COMMAND_TIMED_OUT;
  }
  return v1::COMMAND_STATE_UNSPECIFIED;
}

void CommandToProto(const CommandRecord& record, v1::Command* proto) {
  proto->set_command_id(record.command_id);
  proto->set_request_id(record.request_id);
  proto->set_device_id(record.device_id);
  proto->set_action(record.action);
  proto->mutable_params()->insert(record.params.begin(), record.params.end());
  proto->set_state(CommandStateToProto(record.state));
  proto->set_attempts(record.attempts);
  proto->set_status(record.status);
  if (!record.result_json.empty()) {
    google::protobuf::Value* result = proto->mutable_result();
    if (!google::protobuf::util::JsonStringToMessage(record.result_json, result).ok()) {
      result->set_string_value(record.result_json);
    }
  }
  proto->set_error(record.error);
  if (record.round_trip.has_value()) SetDuration(*record.round_trip, proto->mutable_round_trip());
  if (record.create_time != absl::InfinitePast()) {
    SetTimestamp(record.create_time, proto->mutable_create_time());
  }
  if (record.complete_time.has_value()) {
    SetTimestamp(*record.complete_time, proto->mutable_complete_time());
  }
}

}  // namespace herald::api
