#include "service/api/command_service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "service/api/call_deadline.h"
#include "service/api/command_convert.h"
#include "service/api/grpc_status.h"

namespace herald::api {
namespace {

absl::Status ValidateCommandId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("command_id: is required");
  if (id.size() > 64) {
    return absl::InvalidArgumentError("command_id: is not a command id (too long)");
  }
  return absl::OkStatus();
}

}  // namespace

grpc::Status CommandServiceImpl::SendCommand(grpc::ServerContext* context,
                                             const v1::SendCommandRequest* request,
                                             v1::Command* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kCommand);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<CommandRequest> converted = CommandRequestFromProto(*request, caller->tenant_id);
  if (!converted.ok()) return ToGrpcStatus(converted.status());
  converted->topic_prefix = caller->topic_prefix;
  CallContext call{.deadline = DeadlineOf(*context),
                   .cancelled = [context] { return context->IsCancelled(); }};
  absl::StatusOr<CommandRecord> done = commander_.Send(*converted, call);
  if (!done.ok()) return ToGrpcStatus(done.status());
  CommandToProto(*done, response);
  return grpc::Status::OK;
}

grpc::Status CommandServiceImpl::GetCommand(grpc::ServerContext* context,
                                            const v1::GetCommandRequest* request,
                                            v1::Command* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kCommand);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid = ValidateCommandId(request->command_id()); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  absl::StatusOr<CommandRecord> record =
      store_.GetCommand(caller->tenant_id, request->command_id());
  if (!record.ok()) return ToGrpcStatus(record.status());
  CommandToProto(*record, response);
  return grpc::Status::OK;
}

grpc::Status CommandServiceImpl::WatchCommand(grpc::ServerContext* context,
                                              const v1::WatchCommandRequest* request,
                                              grpc::ServerWriter<v1::Command>* writer) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kCommand);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid = ValidateCommandId(request->command_id()); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  const std::string& tenant = caller->tenant_id;
  bool first = true;
  CommandState last_state = CommandState::kPending;
  int last_attempts = -1;
  while (!context->IsCancelled()) {
    absl::StatusOr<CommandRecord> record = store_.GetCommand(tenant, request->command_id());
    if (!record.ok()) return ToGrpcStatus(record.status());
    if (first || record->state != last_state || record->attempts != last_attempts) {
      v1::Command command;
      CommandToProto(*record, &command);
      if (!writer->Write(command)) return grpc::Status::OK;  // the client went away
      first = false;
      last_state = record->state;
      last_attempts = record->attempts;
    }
    if (record->IsFinal()) return grpc::Status::OK;
    absl::SleepFor(options_.watch_poll_interval);
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the watch");
}

}  // namespace herald::api
