#include "service/api/metrics_interceptor.h"

#include <string>
#include <string_view>

#include "absl/time/clock.h"

namespace herald::api {
namespace {

using grpc::experimental::InterceptionHookPoints;

std::string_view RpcTypeName(grpc::experimental::ServerRpcInfo::Type type) {
  using Type = grpc::experimental::ServerRpcInfo::Type;
  switch (type) {
    case Type::UNARY: return "unary";
    case Type::CLIENT_STREAMING: return "client_stream";
    case Type::SERVER_STREAMING: return "server_stream";
    case Type::BIDI_STREAMING: return "bidi_stream";
  }
  return "unary";
}

std::string_view CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::OK: return "OK";
    case grpc::CANCELLED: return "CANCELLED";
    case grpc::UNKNOWN: return "UNKNOWN";
    case grpc::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND: return "NOT_FOUND";
    case grpc::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::ABORTED: return "ABORTED";
    case grpc::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::INTERNAL: return "INTERNAL";
    case grpc::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::DATA_LOSS: return "DATA_LOSS";
    case grpc::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN";
  }
}

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(HeraldMetrics& metrics, grpc::experimental::ServerRpcInfo* info)
      : metrics_(metrics), type_(RpcTypeName(info->type())), start_(absl::Now()) {
    // "/herald.v1.DeviceService/CreateDevice" -> service and method.
    const std::string_view full = info->method() != nullptr ? info->method() : "";
    const size_t slash = full.rfind('/');
    if (slash != std::string_view::npos && slash > 0) {
      service_ = std::string(full.substr(1, slash - 1));
      method_ = std::string(full.substr(slash + 1));
    } else {
      service_ = "unknown";
      method_ = std::string(full);
    }
    metrics_.RpcStarted(type_, service_, method_);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      metrics_.RpcHandled(type_, service_, method_, CodeName(methods->GetSendStatus().error_code()),
                          absl::Now() - start_);
    }
    methods->Proceed();
  }

 private:
  HeraldMetrics& metrics_;
  std::string_view type_;
  std::string service_;
  std::string method_;
  absl::Time start_;
};

}  // namespace

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(metrics_, info);
}

}  // namespace herald::api
