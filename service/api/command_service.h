// herald.v1.CommandService: send a command to a device and wait for its
// answer (SendCommand), read a command and its outcome (GetCommand), and
// follow it until it ends (WatchCommand). Sending and waiting are the
// Commander's; this class translates, and passes the call's deadline and
// cancellation on so that a caller who gives up frees its thread at once.
//
// SendCommand blocks its handler thread while it waits for the device (the
// sync server's threads are what --max_pending_commands bounds).
//
//   CommandServiceImpl commands(commander, command_store, {});
//   builder.RegisterService(&commands);
#ifndef HERALD_SERVICE_API_COMMAND_SERVICE_H_
#define HERALD_SERVICE_API_COMMAND_SERVICE_H_

#include "service/api/call_guard.h"
#include "absl/time/time.h"
#include "herald/v1/command.grpc.pb.h"
#include "service/core/command_store.h"
#include "service/dispatch/commander.h"

namespace herald::api {

struct CommandServiceOptions {
  absl::Duration watch_poll_interval = absl::Milliseconds(200);
};

// Thread-safe.
class CommandServiceImpl final : public v1::CommandService::Service {
 public:
  CommandServiceImpl(Commander& commander, CommandStore& store, CallGuard& guard,
                     CommandServiceOptions options)
      : commander_(commander), store_(store), guard_(guard), options_(options) {}

  // The Command with the device's status and result when it answered
  // (COMMAND_SUCCEEDED or COMMAND_ERROR); the error codes of Commander::Send
  // otherwise.
  grpc::Status SendCommand(grpc::ServerContext* context, const v1::SendCommandRequest* request,
                           v1::Command* response) override;
  // NOT_FOUND for an unknown command id.
  grpc::Status GetCommand(grpc::ServerContext* context, const v1::GetCommandRequest* request,
                          v1::Command* response) override;
  // Streams the command now and whenever its state or attempts change, and
  // ends once it is final.
  grpc::Status WatchCommand(grpc::ServerContext* context, const v1::WatchCommandRequest* request,
                            grpc::ServerWriter<v1::Command>* writer) override;

 private:
  Commander& commander_;
  CommandStore& store_;
  CallGuard& guard_;
  const CommandServiceOptions options_;
};

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_COMMAND_SERVICE_H_
