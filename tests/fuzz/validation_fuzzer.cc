// Fuzzes request validation with arbitrary devices and notification
// requests: it must never crash, and whatever it accepts must satisfy the
// rules the rest of Herald relies on (ids usable as one topic level, QoS in
// range, a raw topic that is a valid publish topic).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>

#include "service/core/topic.h"
#include "service/core/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);

  herald::Device device;
  device.device_id = input.ConsumeRandomLengthString(160);
  device.owner_id = input.ConsumeRandomLengthString(160);
  device.platform = input.ConsumeBool() ? "mqtt" : input.ConsumeRandomLengthString(8);
  device.topic = input.ConsumeRandomLengthString(256);
  for (int i = input.ConsumeIntegralInRange(0, 4); i > 0; --i) {
    device.groups.push_back(input.ConsumeRandomLengthString(64));
  }
  for (int i = input.ConsumeIntegralInRange(0, 4); i > 0; --i) {
    device.metadata[input.ConsumeRandomLengthString(32)] = input.ConsumeRandomLengthString(64);
  }
  if (herald::ValidateDevice(device, "device").ok()) {
    if (!herald::ValidateTopicLevel(device.device_id, "device_id").ok()) std::abort();
    if (!device.topic.empty() && !herald::ValidatePublishTopic(device.topic, "topic").ok()) {
      std::abort();
    }
  }

  herald::NotificationRequest request;
  request.target.kind = static_cast<herald::TargetKind>(input.ConsumeIntegralInRange(0, 3));
  for (int i = input.ConsumeIntegralInRange(0, 5); i > 0; --i) {
    request.target.values.push_back(input.ConsumeRandomLengthString(64));
  }
  request.content.title = input.ConsumeRandomLengthString(128);
  request.content.body = input.ConsumeRandomLengthString(256);
  for (int i = input.ConsumeIntegralInRange(0, 3); i > 0; --i) {
    request.content.data[input.ConsumeRandomLengthString(16)] = input.ConsumeRandomLengthString(64);
  }
  request.options.qos = input.ConsumeIntegral<int>();
  if (input.ConsumeBool()) request.options.ttl = absl::Seconds(input.ConsumeIntegral<int32_t>());
  request.options.idempotency_key = input.ConsumeRemainingBytesAsString();
  herald::RequestLimits limits;
  limits.max_targets_per_request = 3;
  if (herald::ValidateNotificationRequest(request, limits).ok()) {
    if (request.options.qos < 0 || request.options.qos > 2) std::abort();
    if (request.target.kind == herald::TargetKind::kTopic &&
        !herald::ValidatePublishTopic(request.target.values.at(0), "topic").ok()) {
      std::abort();
    }
    if (request.target.kind == herald::TargetKind::kDeviceIds) {
      for (const std::string& id : request.target.values) {
        if (!herald::ValidateTopicLevel(id, "id").ok()) std::abort();
      }
    }
  }
  return 0;
}
