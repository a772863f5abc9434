// herald.v1.StatsService: delivery totals from the database (so every
// replica gives the same answer) plus this replica's provider connection.
//
//   StatsServiceImpl stats(notification_store, {&provider});
#ifndef HERALD_SERVICE_API_STATS_SERVICE_H_
#define HERALD_SERVICE_API_STATS_SERVICE_H_

#include <vector>

#include "service/api/call_guard.h"
#include "herald/v1/stats.grpc.pb.h"
#include "providers/provider.h"
#include "service/core/notification_store.h"

namespace herald::api {

// Thread-safe.
class StatsServiceImpl final : public v1::StatsService::Service {
 public:
  StatsServiceImpl(NotificationStore& store, CallGuard& guard, std::vector<Provider*> providers)
      : store_(store), guard_(guard), providers_(std::move(providers)) {}

  grpc::Status GetStats(grpc::ServerContext* context, const v1::GetStatsRequest* request,
                        v1::GetStatsResponse* response) override;

 private:
  NotificationStore& store_;
  CallGuard& guard_;
  std::vector<Provider*> providers_;
};

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_STATS_SERVICE_H_
