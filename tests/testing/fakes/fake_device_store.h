// FakeDeviceStore: an in-memory DeviceStore for unit tests. It keeps the
// interface's contracts as PgDeviceStore does (kAlreadyExists, kNotFound,
// pages ordered by device id with page tokens from core/page_token.h,
// ResolveTargets returning enabled devices only), so code tested against it
// behaves the same against PostgreSQL.
//
//   herald::testing::FakeDeviceStore devices;
//   devices.CreateDevice({.tenant_id = "default", .device_id = "s1", .owner_id = "alice"});
//   devices.FailNextCalls(absl::UnavailableError("db down"), 1, "ResolveTargets");
#ifndef HERALD_TESTS_TESTING_FAKES_FAKE_DEVICE_STORE_H_
#define HERALD_TESTS_TESTING_FAKES_FAKE_DEVICE_STORE_H_

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "service/core/device_store.h"
#include "service/core/types.h"
#include "tests/testing/fakes/fault_injector.h"

namespace herald::testing {

// Thread-safe.
class FakeDeviceStore final : public DeviceStore {
 public:
  // `clock` sets create_time and update_time; null means a fixed kFakeEpoch.
  explicit FakeDeviceStore(std::function<absl::Time()> clock = nullptr);

  // DeviceStore. Page sizes as PgDeviceStore: <= 0 means 50, at most 1000.
  absl::StatusOr<Device> CreateDevice(const Device& device) override;
  absl::StatusOr<Device> GetDevice(const std::string& tenant_id,
                                   const std::string& device_id) override;
  absl::StatusOr<Page<Device>> ListDevices(const std::string& tenant_id,
                                           const DeviceFilter& filter, int page_size,
                                           const std::string& page_token) override;
  absl::StatusOr<Device> UpdateDevice(const Device& device,
                                      const std::vector<DeviceField>& mask) override;
  absl::Status DeleteDevice(const std::string& tenant_id, const std::string& device_id) override;
  // kInvalidArgument for a kTopic target, as PgDeviceStore.
  absl::StatusOr<std::vector<Device>> ResolveTargets(const std::string& tenant_id,
                                                     const TargetSelector& target) override;
  // The rules of PgDeviceStore: expected values must match, older updates
  // never overwrite newer ones; update_time is not touched.
  absl::StatusOr<std::vector<std::string>> UpdatePresence(
      const std::string& tenant_id, const std::vector<PresenceUpdate>& updates) override;

  // Test controls.

  // The next `n` calls (of `method` only, when given) fail with `status`.
  void FailNextCalls(absl::Status status, int n, std::string method = "") {
    faults_.FailNextCalls(std::move(status), n, std::move(method));
  }

  // Sets presence fields directly (what the presence feature would do).
  // kNotFound if there is no such device.
  absl::Status SetOnline(const std::string& tenant_id, const std::string& device_id, bool online,
                         absl::Time last_seen);

  // Devices of all tenants.
  size_t size() const;
  // How many times UpdatePresence ran (injected failures included).
  int presence_calls() const;
  // How many times ResolveTargets ran (injected failures included).
  int resolve_calls() const;

 private:
  using Key = std::pair<std::string, std::string>;  // tenant, device id

  absl::Time Now() const { return clock_(); }

  const std::function<absl::Time()> clock_;
  FaultInjector faults_;
  mutable absl::Mutex mu_;
  std::map<Key, Device> devices_ ABSL_GUARDED_BY(mu_);  // ordered by tenant, then device id
  int resolve_calls_ ABSL_GUARDED_BY(mu_) = 0;
  int presence_calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_FAKE_DEVICE_STORE_H_
