// herald.v1.DeviceService over a DeviceStore: register, read, list, update
// and delete devices. Validates every request before it reaches the store.
//
//   DeviceServiceImpl devices(device_store);
//   builder.RegisterService(&devices);
#ifndef HERALD_SERVICE_API_DEVICE_SERVICE_H_
#define HERALD_SERVICE_API_DEVICE_SERVICE_H_

#include "service/api/call_guard.h"
#include "herald/v1/device.grpc.pb.h"
#include "service/core/device_store.h"

namespace herald::api {

// Thread-safe.
class DeviceServiceImpl final : public v1::DeviceService::Service {
 public:
  DeviceServiceImpl(DeviceStore& store, CallGuard& guard) : store_(store), guard_(guard) {}

  grpc::Status CreateDevice(grpc::ServerContext* context, const v1::CreateDeviceRequest* request,
                            v1::Device* response) override;
  grpc::Status GetDevice(grpc::ServerContext* context, const v1::GetDeviceRequest* request,
                         v1::Device* response) override;
  grpc::Status ListDevices(grpc::ServerContext* context, const v1::ListDevicesRequest* request,
                           v1::ListDevicesResponse* response) override;
  grpc::Status UpdateDevice(grpc::ServerContext* context, const v1::UpdateDeviceRequest* request,
                            v1::Device* response) override;
  grpc::Status DeleteDevice(grpc::ServerContext* context, const v1::DeleteDeviceRequest* request,
                            google::protobuf::Empty* response) override;

 private:
  DeviceStore& store_;
  CallGuard& guard_;
};

}  // namespace herald::api

#endif  // HERALD_SERVICE_API_DEVICE_SERVICE_H_
