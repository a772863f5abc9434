// PgDeviceStore: the device registry in PostgreSQL (table `devices`,
// migrations/0001_initial.sql).
//
//   PgDeviceStore devices(pool.get(), &query_metrics);
//   absl::StatusOr<Device> created = devices.CreateDevice(
//       {.tenant_id = kDefaultTenant, .device_id = "sensor-001", .owner_id = "home-7"});
//   absl::StatusOr<std::vector<Device>> targets = devices.ResolveTargets(
//       kDefaultTenant, {.kind = TargetKind::kGroups, .values = {"factory/floor-3"}});
#ifndef HERALD_SERVICE_STORE_PG_DEVICE_STORE_H_
#define HERALD_SERVICE_STORE_PG_DEVICE_STORE_H_

#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "service/core/device_store.h"
#include "service/core/query_observer.h"
#include "service/core/types.h"
#include "service/store/pg_connection_pool.h"

namespace herald {

// Thread-safe: every call borrows its own pooled connection. Operation names
// reported to the observer: create_device, get_device, list_devices,
// update_device, delete_device, resolve_targets, update_presence.
class PgDeviceStore final : public DeviceStore {
 public:
  // `pool` must outlive the store. `observer` may be null (nothing is
  // reported); otherwise it too must outlive the store.
  PgDeviceStore(PgConnectionPool* pool, QueryObserver* observer);

  // `device.create_time`/`update_time` are ignored: the database sets both.
  absl::StatusOr<Device> CreateDevice(const Device& device) override;
  absl::StatusOr<Device> GetDevice(const std::string& tenant_id,
                                   const std::string& device_id) override;
  // page_size <= 0 means 50; at most 1,000 per page.
  absl::StatusOr<Page<Device>> ListDevices(const std::string& tenant_id, const DeviceFilter& filter,
                                           int page_size, const std::string& page_token) override;
  // An empty mask changes nothing and returns the device as stored.
  absl::StatusOr<Device> UpdateDevice(const Device& device,
                                      const std::vector<DeviceField>& mask) override;
  absl::Status DeleteDevice(const std::string& tenant_id, const std::string& device_id) override;
  // Ordered by device id. kInvalidArgument for a kTopic target, which names
  // no devices.
  //
  // Group lookup: concurrent device_ids lookups of one tenant share a query,
  // the way concurrent inserts share a commit (PgNotificationStore): a call
  // that finds fewer than two lookups running runs whatever is queued (up
  // to 10,000 ids) as one `device_id = ANY(...)`; alone, a call is a query
  // of its own, so nothing waits for company.
  absl::StatusOr<std::vector<Device>> ResolveTargets(const std::string& tenant_id,
                                                     const TargetSelector& target) override;
  // One UPDATE ... FROM unnest(...) for the whole batch; update_time is not
  // touched (presence is not an edit of the device).
  absl::StatusOr<std::vector<std::string>> UpdatePresence(
      const std::string& tenant_id, const std::vector<PresenceUpdate>& updates) override;

 private:
  struct PendingResolve {
    const std::string* tenant_id;
    const std::vector<std::string>* device_ids;
    std::optional<absl::StatusOr<std::vector<Device>>> result;
  };

  absl::StatusOr<std::vector<Device>> ResolveDeviceIds(const std::string& tenant_id,
                                                       const std::vector<std::string>& ids);
  // One query for every entry of `batch` (one tenant); fills their results.
  void ResolveBatch(const std::vector<PendingResolve*>& batch);

  PgConnectionPool* const pool_;
  QueryObserver* const observer_;

  absl::Mutex resolve_mu_;
  absl::CondVar resolve_done_;
  std::deque<PendingResolve*> resolve_queue_ ABSL_GUARDED_BY(resolve_mu_);
  int running_resolves_ ABSL_GUARDED_BY(resolve_mu_) = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_STORE_PG_DEVICE_STORE_H_
