#include "service/api/device_service.h"

#include "absl/strings/str_cat.h"
#include "service/api/convert.h"
#include "service/api/grpc_status.h"
#include "service/core/topic.h"
#include "service/core/validation.h"

namespace herald::api {
namespace {

constexpr int kDefaultPageSize = 100;
constexpr int kMaxPageSize = 1000;

// A device's own topic must lie in its tenant's topic space (a template
// topic is put there by the Notifier).
absl::Status CheckTopicWithinTenant(const Device& device, const Caller& caller) {
  if (device.topic.empty() || TopicWithinPrefix(device.topic, caller.topic_prefix)) {
    return absl::OkStatus();
  }
  return TopicOutsidePrefixError("device.topic", device.topic, caller.tenant_id,
                                 caller.topic_prefix);
}

}  // namespace

grpc::Status DeviceServiceImpl::CreateDevice(grpc::ServerContext* context,
                                             const v1::CreateDeviceRequest* request,
                                             v1::Device* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kDevicesWrite);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!request->has_device()) {
    return ToGrpcStatus(absl::InvalidArgumentError("device: is required"));
  }
  const Device device = DeviceFromProto(request->device(), caller->tenant_id);
  if (absl::Status valid = ValidateDevice(device, "device"); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  if (absl::Status within = CheckTopicWithinTenant(device, *caller); !within.ok()) {
    return ToGrpcStatus(within);
  }
  absl::StatusOr<Device> created = store_.CreateDevice(device);
  if (!created.ok()) return ToGrpcStatus(created.status());
  DeviceToProto(*created, response);
  return grpc::Status::OK;
}

grpc::Status DeviceServiceImpl::GetDevice(grpc::ServerContext* context,
                                          const v1::GetDeviceRequest* request,
                                          v1::Device* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kDevicesRead);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid = ValidateId(request->device_id(), "device_id"); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  absl::StatusOr<Device> device = store_.GetDevice(caller->tenant_id, request->device_id());
  if (!device.ok()) return ToGrpcStatus(device.status());
  DeviceToProto(*device, response);
  return grpc::Status::OK;
}

grpc::Status DeviceServiceImpl::ListDevices(grpc::ServerContext* context,
                                            const v1::ListDevicesRequest* request,
                                            v1::ListDevicesResponse* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kDevicesRead);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (request->page_size() < 0 || request->page_size() > kMaxPageSize) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("page_size: must be between 0 and ", kMaxPageSize, " (0 means ",
                     kDefaultPageSize, ")")));
  }
  if (!request->owner_id().empty()) {
    if (absl::Status valid = ValidateId(request->owner_id(), "owner_id"); !valid.ok()) {
      return ToGrpcStatus(valid);
    }
  }
  DeviceFilter filter;
  filter.owner_id = request->owner_id();
  filter.group = request->group();
  filter.platform = request->platform();
  if (request->has_online()) filter.online = request->online();
  const int page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
  absl::StatusOr<Page<Device>> page =
      store_.ListDevices(caller->tenant_id, filter, page_size, request->page_token());
  if (!page.ok()) return ToGrpcStatus(page.status());
  for (const Device& device : page->items) DeviceToProto(device, response->add_devices());
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status DeviceServiceImpl::UpdateDevice(grpc::ServerContext* context,
                                             const v1::UpdateDeviceRequest* request,
                                             v1::Device* response) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kDevicesWrite);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!request->has_device()) {
    return ToGrpcStatus(absl::InvalidArgumentError("device: is required"));
  }
  const std::string& tenant = caller->tenant_id;
  if (absl::Status valid = ValidateId(request->device().device_id(), "device.device_id");
      !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  absl::StatusOr<std::vector<DeviceField>> fields = DeviceFieldsFromMask(request->update_mask());
  if (!fields.ok()) return ToGrpcStatus(fields.status());

  // Validate the device as it will be after the update.
  absl::StatusOr<Device> current = store_.GetDevice(tenant, request->device().device_id());
  if (!current.ok()) return ToGrpcStatus(current.status());
  const Device patch = DeviceFromProto(request->device(), tenant);
  Device updated = *current;
  for (DeviceField field : *fields) {
    switch (field) {
      case DeviceField::kOwnerId: updated.owner_id = patch.owner_id; break;
      case DeviceField::kPlatform: updated.platform = patch.platform; break;
      case DeviceField::kTopic: updated.topic = patch.topic; break;
      case DeviceField::kGroups: updated.groups = patch.groups; break;
      case DeviceField::kMetadata: updated.metadata = patch.metadata; break;
      case DeviceField::kEnabled: updated.enabled = patch.enabled; break;
    }
  }
  if (absl::Status valid = ValidateDevice(updated, "device"); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  if (absl::Status within = CheckTopicWithinTenant(updated, *caller); !within.ok()) {
    return ToGrpcStatus(within);
  }
  absl::StatusOr<Device> stored = store_.UpdateDevice(updated, *fields);
  if (!stored.ok()) return ToGrpcStatus(stored.status());
  DeviceToProto(*stored, response);
  return grpc::Status::OK;
}

grpc::Status DeviceServiceImpl::DeleteDevice(grpc::ServerContext* context,
                                             const v1::DeleteDeviceRequest* request,
                                             google::protobuf::Empty* /*response*/) {
  absl::StatusOr<Caller> caller = guard_.Admit(context, Scope::kDevicesWrite);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status valid = ValidateId(request->device_id(), "device_id"); !valid.ok()) {
    return ToGrpcStatus(valid);
  }
  return ToGrpcStatus(store_.DeleteDevice(caller->tenant_id, request->device_id()));
}

}  // namespace herald::api
