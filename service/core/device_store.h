// DeviceStore: the device registry, the seam between Herald's logic and its
// database. PgDeviceStore (service/store) implements it over PostgreSQL;
// tests use FakeDeviceStore (tests/testing).
//
//   absl::StatusOr<Device> device = store.Get(kDefaultTenant, "sensor-001");
//   if (absl::IsNotFound(device.status())) ...
#ifndef HERALD_SERVICE_CORE_DEVICE_STORE_H_
#define HERALD_SERVICE_CORE_DEVICE_STORE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "service/core/types.h"

namespace herald {

// One presence message, mapped to its device (see TopicPattern).
struct PresenceUpdate {
  std::string device_id;
  bool online = false;
  absl::Time seen_time = absl::InfinitePast();  // when the message arrived
  // Values the device must have for the update to apply, as the presence
  // topic states them ({owner_id}, {platform}, {meta.KEY} levels); empty =
  // unconstrained.
  std::string expected_owner_id;
  std::string expected_platform;
  std::map<std::string, std::string> expected_metadata;
};

// Implementations are thread-safe. Every method is scoped to one tenant and
// never sees another tenant's rows. Errors: kUnavailable when the database
// cannot be reached, kInternal for anything unexpected, plus those named below.
class DeviceStore {
 public:
  virtual ~DeviceStore() = default;

  // Stores a new device and returns it with its times set.
  // kAlreadyExists if the tenant already has a device with this id.
  virtual absl::StatusOr<Device> CreateDevice(const Device& device) = 0;

  // kNotFound if there is no such device.
  virtual absl::StatusOr<Device> GetDevice(const std::string& tenant_id,
                                           const std::string& device_id) = 0;

  // Devices ordered by device id, at most `page_size`, after the position
  // encoded in `page_token` (empty = from the start).
  // kInvalidArgument if the token was not issued by this method.
  virtual absl::StatusOr<Page<Device>> ListDevices(const std::string& tenant_id,
                                                   const DeviceFilter& filter, int page_size,
                                                   const std::string& page_token) = 0;

  // Overwrites the fields in `mask` of the device named by
  // device.tenant_id/device.device_id and returns the result.
  // kNotFound if there is no such device.
  virtual absl::StatusOr<Device> UpdateDevice(const Device& device,
                                              const std::vector<DeviceField>& mask) = 0;

  // kNotFound if there is no such device. Past deliveries keep their record.
  virtual absl::Status DeleteDevice(const std::string& tenant_id,
                                    const std::string& device_id) = 0;

  // The enabled devices that `target` names (kDeviceIds, kOwnerIds or
  // kGroups), in one database round trip. Unknown ids are simply absent.
  // Each carries what its notification topic is built from (tenant, id,
  // owner, platform, topic, and its metadata when it has no topic of its
  // own); the other fields may be left empty, as reading them for every
  // target of a fan-out would cost the database more than the topic does.
  virtual absl::StatusOr<std::vector<Device>> ResolveTargets(const std::string& tenant_id,
                                                             const TargetSelector& target) = 0;

  // Sets `online` and `last_seen_time` = seen_time of each update's device,
  // in one database round trip, and returns the ids of the devices that
  // changed. An update does not apply (and its id is absent) when the tenant
  // has no such device, the device lacks an expected value, or the device
  // was last seen after seen_time (an older message never overwrites a
  // newer one, whichever replica writes first). REQUIRES: at most one
  // update per device id.
  virtual absl::StatusOr<std::vector<std::string>> UpdatePresence(
      const std::string& tenant_id, const std::vector<PresenceUpdate>& updates) = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_DEVICE_STORE_H_
