#include "service/api/server_shutdown.h"

#include "absl/time/clock.h"
#include "grpc/grpc.h"

namespace herald::api {
namespace {

// Lives exactly as long as its call: gRPC creates one per call and deletes
// it with the call's context, after the status is sent.
class LiveCallInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit LiveCallInterceptor(LiveCalls& calls) : calls_(calls) { calls_.Started(); }
  ~LiveCallInterceptor() override { calls_.Ended(); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    methods->Proceed();
  }

 private:
  LiveCalls& calls_;
};

class LiveCallInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit LiveCallInterceptorFactory(LiveCalls& calls) : calls_(calls) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* /*info*/) override {
    return new LiveCallInterceptor(calls_);
  }

 private:
  LiveCalls& calls_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
LiveCalls::NewInterceptorFactory() {
  return std::make_unique<LiveCallInterceptorFactory>(*this);
}

bool LiveCalls::WaitForNone(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  const auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&none), deadline);
}

void LiveCalls::Started() {
  absl::MutexLock lock(&mu_);
  ++live_;
}

void LiveCalls::Ended() {
  absl::MutexLock lock(&mu_);
  --live_;
}

void ShutdownServer(grpc::Server& server, const LiveCalls& live, absl::Time deadline) {
  // The first shutdown request sends GOAWAY and refuses new calls; Shutdown
  // below makes a second one, which core allows, and waits for both.
  grpc_completion_queue* notified = grpc_completion_queue_create_for_pluck(nullptr);
  int shutdown_tag = 0;
  grpc_server_shutdown_and_notify(server.c_server(), notified, &shutdown_tag);
  // What is left once no call runs are idle connections: close them now,
  // as Shutdown would at the deadline. (A call that arrived a moment before
  // the GOAWAY but has not reached its handler yet fails with them, as at
  // the deadline: its client sees UNAVAILABLE, and nothing of it was done.)
  if (live.WaitForNone(deadline)) grpc_server_cancel_all_calls(server.c_server());
  server.Shutdown(absl::ToChronoTime(deadline));
  grpc_completion_queue_pluck(notified, &shutdown_tag, gpr_inf_future(GPR_CLOCK_REALTIME),
                              nullptr);
  grpc_completion_queue_shutdown(notified);  // its one event was taken: nothing left to drain
  grpc_completion_queue_destroy(notified);
}

}  // namespace herald::api
