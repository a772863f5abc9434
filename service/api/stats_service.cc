#include "service/api/stats_service.h"

#include "service/api/convert.h"
#include "service/api/grpc_status.h"

namespace herald::api {
namespace {

void CountsToProto(const DeliveryTotals& totals, v1::DeliveryCounts* proto) {
  proto->set_sent(totals.sent);
  proto->set_succeeded(totals.succeeded);
  proto->set_failed(totals.failed);
  proto->set_expired(totals.expired);
  proto->set_cancelled(totals.cancelled);
  proto->set_pending(totals.pending);
}

}  // namespace

grpc::Status StatsServiceImpl::GetStats(grpc::ServerContext* context,
                                        const v1::GetStatsRequest* /*request*/,
                                        v1::GetStatsResponse* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kStats);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<StoredStats> stats = store_.GetStats(caller->tenant_id);
  if (!stats.ok()) return ToGrpcStatus(stats.status());
  CountsToProto(stats->total, response->mutable_total());
  for (const auto& [qos, totals] : stats->by_qos) {
    CountsToProto(totals, &(*response->mutable_by_qos())[qos]);
  }
  for (const auto& [provider, totals] : stats->by_provider) {
    CountsToProto(totals, &(*response->mutable_by_provider())[provider]);
  }
  if (stats->last_sent_time.has_value()) {
    SetTimestamp(*stats->last_sent_time, response->mutable_last_sent_time());
  }
  response->set_notifications(stats->notifications);
  response->set_devices(stats->devices);
  response->set_backlog(stats->total.pending);
  for (Provider* provider : providers_) {
    const ConnectionStatus status = provider->GetConnectionStatus();
    v1::ProviderStatus* out = response->add_providers();
    out->set_provider(std::string(provider->Name()));
    out->set_state(std::string(ConnectionStateName(status.state)));
    out->set_server_uri(status.server_uri);
    out->set_connections(status.connections);
    out->set_reconnects(status.reconnects);
    out->set_in_flight(status.in_flight);
    if (status.last_connect_time.has_value()) {
      SetTimestamp(*status.last_connect_time, out->mutable_last_connect_time());
    }
    out->set_last_error(status.last_error);
  }
  return grpc::Status::OK;
}

}  // namespace herald::api
