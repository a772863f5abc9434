#include "tests/testing/fakes/fake_device_store.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "service/core/page_token.h"
#include "tests/testing/fakes/fake_clock.h"

namespace herald::testing {
namespace {

// The list name in page tokens, as PgDeviceStore spells it.
constexpr char kDevicesList[] = "devices";

int EffectivePageSize(int page_size) {
  if (page_size <= 0) return 50;
  return std::min(page_size, 1000);
}

absl::Status DeviceNotFound(const std::string& device_id) {
  return absl::NotFoundError(absl::StrCat("device_id: no device \"", device_id, "\""));
}

bool Contains(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

bool Matches(const Device& device, const DeviceFilter& filter) {
  if (!filter.owner_id.empty() && device.owner_id != filter.owner_id) return false;
  if (!filter.group.empty() && !Contains(device.groups, filter.group)) return false;
  if (!filter.platform.empty() && device.platform != filter.platform) return false;
  if (filter.online.has_value() && device.online != *filter.online) return false;
  return true;
}

}  // namespace

FakeDeviceStore::FakeDeviceStore(std::function<absl::Time()> clock)
    : clock_(clock ? std::move(clock) : [] { return kFakeEpoch; }) {}

absl::StatusOr<Device> FakeDeviceStore::CreateDevice(const Device& device) {
  if (absl::Status fault = faults_.Check("CreateDevice"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  Device stored = device;
  stored.create_time = now;
  stored.update_time = now;
  const auto [it, inserted] = devices_.try_emplace({device.tenant_id, device.device_id}, stored);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("device_id: device \"", device.device_id, "\" already exists"));
  }
  return it->second;
}

absl::StatusOr<Device> FakeDeviceStore::GetDevice(const std::string& tenant_id,
                                                  const std::string& device_id) {
  if (absl::Status fault = faults_.Check("GetDevice"); !fault.ok()) return fault;
  absl::MutexLock lock(&mu_);
  const auto it = devices_.find({tenant_id, device_id});
  if (it == devices_.end()) return DeviceNotFound(device_id);
  return it->second;
}

absl::StatusOr<Page<Device>> FakeDeviceStore::ListDevices(const std::string& tenant_id,
                                                          const DeviceFilter& filter,
                                                          int page_size,
                                                          const std::string& page_token) {
  if (absl::Status fault = faults_.Check("ListDevices"); !fault.ok()) return fault;
  std::string after;
  if (!page_token.empty()) {
    absl::StatusOr<std::string> position = DecodePageToken(kDevicesList, page_token);
    if (!position.ok()) return position.status();
    after = *std::move(position);
  }
  const size_t limit = static_cast<size_t>(EffectivePageSize(page_size));
  absl::MutexLock lock(&mu_);
  Page<Device> page;
  for (auto it = devices_.upper_bound({tenant_id, after});
       it != devices_.end() && it->first.first == tenant_id; ++it) {
    if (!Matches(it->second, filter)) continue;
    if (page.items.size() == limit) {
      // Another matching device follows: the page gets a token.
      page.next_page_token = EncodePageToken(kDevicesList, page.items.back().device_id);
      break;
    }
    page.items.push_back(it->second);
  }
  return page;
}

absl::StatusOr<Device> FakeDeviceStore::UpdateDevice(const Device& device,
                                                     const std::vector<DeviceField>& mask) {
  if (absl::Status fault = faults_.Check("UpdateDevice"); !fault.ok()) return fault;
  const absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  const auto it = devices_.find({device.tenant_id, device.device_id});
  if (it == devices_.end()) return DeviceNotFound(device.device_id);
  if (mask.empty()) return it->second;
  Device& stored = it->second;
  for (DeviceField field : mask) {
    switch (field) {
      case DeviceField::kOwnerId: stored.owner_id = device.owner_id; break;
      case DeviceField::kPlatform: stored.platform = device.platform; break;
      case DeviceField::kTopic: stored.topic = device.topic; break;
      case DeviceField::kGroups: stored.groups = device.groups; break;
      case DeviceField::kMetadata: stored.metadata = device.metadata; break;
      case DeviceField::kEnabled: stored.enabled = device.enabled; break;
    }
  }
  stored.update_time = now;
  return stored;
}

absl::Status FakeDeviceStore::DeleteDevice(const std::string& tenant_id,
                                           const std::string& device_id) {
  if (absl::Status fault = faults_.Check("DeleteDevice"); !fault.ok()) return fault;
  absl::MutexLock lock(&mu_);
  if (devices_.erase({tenant_id, device_id}) == 0) return DeviceNotFound(device_id);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Device>> FakeDeviceStore::ResolveTargets(
    const std::string& tenant_id, const TargetSelector& target) {
  {
    absl::MutexLock lock(&mu_);
    ++resolve_calls_;
  }
  if (absl::Status fault = faults_.Check("ResolveTargets"); !fault.ok()) return fault;
  if (target.kind == TargetKind::kTopic) {
    return absl::InvalidArgumentError(
        "target: a raw topic names no devices; publish to it without resolving");
  }
  const std::set<std::string> wanted(target.values.begin(), target.values.end());
  absl::MutexLock lock(&mu_);
  std::vector<Device> devices;  // in device id order, each device once
  for (auto it = devices_.lower_bound({tenant_id, ""});
       it != devices_.end() && it->first.first == tenant_id; ++it) {
    const Device& device = it->second;
    if (!device.enabled) continue;
    bool match = false;
    switch (target.kind) {
      case TargetKind::kDeviceIds: match = wanted.contains(device.device_id); break;
      case TargetKind::kOwnerIds: match = wanted.contains(device.owner_id); break;
      case TargetKind::kGroups:
        match = std::any_of(device.groups.begin(), device.groups.end(),
                            [&](const std::string& group) { return wanted.contains(group); });
        break;
      case TargetKind::kTopic: break;
    }
    if (match) devices.push_back(device);
  }
  return devices;
}

absl::Status FakeDeviceStore::SetOnline(const std::string& tenant_id, const std::string& device_id,
                                        bool online, absl::Time last_seen) {
  absl::MutexLock lock(&mu_);
  const auto it = devices_.find({tenant_id, device_id});
  if (it == devices_.end()) return DeviceNotFound(device_id);
  it->second.online = online;
  it->second.last_seen_time = last_seen;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FakeDeviceStore::UpdatePresence(
    const std::string& tenant_id, const std::vector<PresenceUpdate>& updates) {
  {
    absl::MutexLock lock(&mu_);
    ++presence_calls_;
  }
  if (absl::Status fault = faults_.Check("UpdatePresence"); !fault.ok()) return fault;
  absl::MutexLock lock(&mu_);
  std::vector<std::string> changed;
  for (const PresenceUpdate& update : updates) {
    const auto it = devices_.find({tenant_id, update.device_id});
    if (it == devices_.end()) continue;
    Device& device = it->second;
    if (!update.expected_owner_id.empty() && device.owner_id != update.expected_owner_id) continue;
    if (!update.expected_platform.empty() && device.platform != update.expected_platform) continue;
    bool metadata_matches = true;
    for (const auto& [key, value] : update.expected_metadata) {
      const auto found = device.metadata.find(key);
      if (found == device.metadata.end() || found->second != value) metadata_matches = false;
    }
    if (!metadata_matches) continue;
    if (device.last_seen_time.has_value() && *device.last_seen_time > update.seen_time) continue;
    device.online = update.online;
    device.last_seen_time = update.seen_time;
    changed.push_back(update.device_id);
  }
  return changed;
}

int FakeDeviceStore::presence_calls() const {
  absl::MutexLock lock(&mu_);
  return presence_calls_;
}

size_t FakeDeviceStore::size() const {
  absl::MutexLock lock(&mu_);
  return devices_.size();
}

int FakeDeviceStore::resolve_calls() const {
  absl::MutexLock lock(&mu_);
  return resolve_calls_;
}

}  // namespace herald::testing
