// A gRPC server interceptor that counts every RPC and measures its latency
// as grpc_server_started_total, grpc_server_handled_total and
// grpc_server_handling_seconds (the names existing gRPC dashboards use),
// for every service including health and reflection.
//
//   std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
//   f.push_back(std::make_unique<MetricsInterceptorFactory>(metrics));
//   builder.experimental().SetInterceptorCreators(std::move(f));
#ifndef HERALD_SERVICE_API_METRICS_INTERCEPTOR_H_
#define HERALD_SERVICE_API_METRICS_INTERCEPTOR_H_

#include "grpcpp/support/server_interceptor.h"
#include "service/metrics/herald_metrics.h"

namespace herald::api {

// Thread-safe: one interceptor is created per call.
class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(HeraldMetrics& metrics) : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  HeraldMetrics& metrics_;
};

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_METRICS_INTERCEPTOR_H_
