// QueryObserver: how the stores report the latency of each database
// operation without depending on the metrics library.
//
//   observer->ObserveQuery("claim_deliveries", elapsed, /*ok=*/true);
#ifndef HERALD_SERVICE_CORE_QUERY_OBSERVER_H_
#define HERALD_SERVICE_CORE_QUERY_OBSERVER_H_

#include <string_view>

#include "absl/time/time.h"

namespace herald {

// Implementations must be thread-safe and cheap: they run on every query.
class QueryObserver {
 public:
  virtual ~QueryObserver() = default;
  virtual void ObserveQuery(std::string_view operation, absl::Duration elapsed, bool ok) = 0;
};

// Ignores everything; for tools and tests that do not measure.
class NullQueryObserver final : public QueryObserver {
 public:
  void ObserveQuery(std::string_view, absl::Duration, bool) override {}
};

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_QUERY_OBSERVER_H_
