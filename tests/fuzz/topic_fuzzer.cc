// Fuzzes topic validation and topic template expansion: nothing may crash,
// and a topic that expansion produces must always be a valid publish topic
// (a template or device value must never smuggle in a wildcard, a NUL or an
// extra level).
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <string>

#include "service/core/topic.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const std::string topic_template = input.ConsumeRandomLengthString(512);
  herald::Device device;
  device.device_id = input.ConsumeRandomLengthString(64);
  device.owner_id = input.ConsumeRandomLengthString(64);
  device.platform = input.ConsumeRandomLengthString(16);
  const std::string key = input.ConsumeRandomLengthString(16);
  device.metadata[key] = input.ConsumeRandomLengthString(64);
  device.topic = input.ConsumeRemainingBytesAsString();

  (void)herald::ValidatePublishTopic(device.topic, "topic");
  (void)herald::ValidateTopicLevel(device.device_id, "device_id");
  const bool template_ok = herald::ValidateTopicTemplate(topic_template, "template").ok();
  absl::StatusOr<std::string> expanded = herald::ExpandTopicTemplate(topic_template, device);
  if (expanded.ok()) {
    if (!herald::ValidatePublishTopic(*expanded, "expanded").ok()) std::abort();
    if (!template_ok) std::abort();  // an invalid template must never expand
  }
  absl::StatusOr<std::string> notification_topic =
      herald::NotificationTopicFor(device, topic_template);
  if (notification_topic.ok() && device.topic.empty() &&
      !herald::ValidatePublishTopic(*notification_topic, "topic").ok()) {
    std::abort();
  }
  return 0;
}
