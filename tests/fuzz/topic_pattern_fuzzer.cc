// Fuzzes TopicPattern, which maps the topic of every message arriving on
// the response and presence subscriptions back to a device: arbitrary
// topics against fixed templates (the defaults, HomeSync's and Shelly's
// layouts, repeated and prefixed placeholders), and arbitrary templates.
// Nothing may crash, and:
//   * a compiled template's filter is a valid subscription filter;
//   * a topic that matches lies inside the filter, names a non-empty
//     device id (when the template has {device_id}) and values that are
//     each one non-empty topic level, and expanding the template with those
//     values gives back the topic;
//   * every topic expanded for a device matches and names that device.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "providers/mqtt/topic_filter.h"
#include "service/core/topic.h"
#include "service/core/topic_pattern.h"

namespace {

struct Compiled {
  std::string topic_template;
  herald::TopicPattern pattern;
};

const std::vector<Compiled>& FixedPatterns() {
  static const auto* const patterns = [] {
    auto* compiled = new std::vector<Compiled>();
    for (const char* topic_template : {
             herald::kDefaultResponseTopicTemplate,
             herald::kDefaultPresenceTopicTemplate,
             "homesync/{meta.home_id}/nodes/{device_id}/status/online",
             "homesync/{meta.home_id}/nodes/{device_id}/response/command",
             "shelly-{device_id}",
             "shellies/shellyplus1pm-{device_id}/online",
             "{device_id}/rpc-{owner_id}.out/{platform}",
             "fleet/{owner_id}/{device_id}/x/{device_id}",
             "a//{meta.room}/{device_id}-state/",
         }) {
      absl::StatusOr<herald::TopicPattern> pattern =
          herald::TopicPattern::Compile(topic_template, "template");
      if (!pattern.ok()) std::abort();
      compiled->push_back({topic_template, *std::move(pattern)});
    }
    return compiled;
  }();
  return *patterns;
}

bool IsTopicLevel(const std::string& value) {
  return herald::ValidateTopicLevel(value, "value").ok();
}

// The checks for a topic that `pattern`, compiled from `topic_template`,
// matched.
void CheckMatch(const std::string& topic_template, const herald::TopicPattern& pattern,
                const std::string& topic, const herald::TopicMatch& match) {
  if (!herald::TopicFilterMatches(pattern.filter(), topic)) std::abort();
  if (pattern.has_device_id() == match.device_id.empty()) std::abort();
  if (absl::StrContains(match.device_id, '/')) std::abort();
  herald::Device device;
  device.device_id = match.device_id;
  device.owner_id = match.owner_id;
  device.platform = match.platform;
  device.metadata = match.metadata;
  for (const std::string* value : {&match.owner_id, &match.platform}) {
    if (absl::StrContains(*value, '/')) std::abort();
  }
  for (const auto& [key, value] : match.metadata) {
    if (value.empty() || absl::StrContains(value, '/')) std::abort();
  }
  if (!match.MatchesDevice(device)) std::abort();
  // The values are what the template's placeholders stood for; values that
  // Herald could not store (a NUL, invalid UTF-8, a wildcard) make the
  // expansion fail, and are refused when the device is registered.
  const bool storable = (match.device_id.empty() || IsTopicLevel(match.device_id)) &&
                        (match.owner_id.empty() || IsTopicLevel(match.owner_id)) &&
                        (match.platform.empty() || IsTopicLevel(match.platform));
  absl::StatusOr<std::string> expanded = herald::ExpandTopicTemplate(topic_template, device);
  if (expanded.ok() && *expanded != topic) std::abort();
  if (storable && herald::ValidatePublishTopic(topic, "topic").ok() && !expanded.ok()) {
    bool metadata_storable = true;
    for (const auto& [key, value] : match.metadata) metadata_storable &= IsTopicLevel(value);
    if (metadata_storable) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const std::vector<Compiled>& fixed = FixedPatterns();
  const uint8_t mode = input.ConsumeIntegral<uint8_t>();

  if (mode < 96) {
    // An arbitrary incoming topic against every fixed template.
    const std::string topic = input.ConsumeRemainingBytesAsString();
    for (const Compiled& compiled : fixed) {
      const std::optional<herald::TopicMatch> match = compiled.pattern.Match(topic);
      if (match.has_value()) CheckMatch(compiled.topic_template, compiled.pattern, topic, *match);
      // A tenant's topic: one prefix level (never "$..." or empty) before a
      // topic of the template, or the template's own topic with no prefix.
      const std::optional<herald::TenantTopicMatch> tenant =
          herald::MatchInAnyTenant(compiled.pattern, topic);
      if (tenant.has_value()) {
        if (tenant->topic_prefix.empty()) {
          if (!match.has_value()) std::abort();
        } else {
          if (match.has_value() || absl::StartsWith(tenant->topic_prefix, "$") ||
              tenant->topic_prefix.find('/') != std::string::npos ||
              !absl::StartsWith(topic, tenant->topic_prefix + "/")) {
            std::abort();
          }
          const std::string rest = topic.substr(tenant->topic_prefix.size() + 1);
          CheckMatch(compiled.topic_template, compiled.pattern, rest, tenant->match);
        }
      }
    }
    return 0;
  }

  // A device's topic, expanded from a fixed or an arbitrary template, must
  // map back to the device.
  std::string topic_template;
  std::optional<herald::TopicPattern> pattern;
  if (mode < 192) {
    const Compiled& compiled = fixed[input.ConsumeIntegralInRange<size_t>(0, fixed.size() - 1)];
    topic_template = compiled.topic_template;
    pattern = compiled.pattern;
  } else {
    topic_template = input.ConsumeRandomLengthString(256);
    absl::StatusOr<herald::TopicPattern> compiled =
        herald::TopicPattern::Compile(topic_template, "template");
    if (!compiled.ok()) {
      if (compiled.status().code() != absl::StatusCode::kInvalidArgument) std::abort();
      return 0;
    }
    if (!herald::ValidateTopicTemplate(topic_template, "template").ok()) std::abort();
    if (!herald::ValidateTopicFilter(compiled->filter()).ok()) std::abort();
    if (compiled->has_device_id() != absl::StrContains(topic_template, "{device_id}")) {
      std::abort();
    }
    pattern = *std::move(compiled);
  }
  herald::Device device;
  device.device_id = input.ConsumeRandomLengthString(32);
  device.owner_id = input.ConsumeRandomLengthString(32);
  device.platform = input.ConsumeRandomLengthString(16);
  for (const char* key : {"home_id", "room"}) {
    device.metadata[key] = input.ConsumeRandomLengthString(32);
  }
  device.metadata[input.ConsumeRandomLengthString(16)] = input.ConsumeRandomLengthString(32);
  absl::StatusOr<std::string> topic = herald::ExpandTopicTemplate(topic_template, device);
  if (topic.ok()) {
    const std::optional<herald::TopicMatch> match = pattern->Match(*topic);
    if (!match.has_value()) std::abort();
    if (!match->MatchesDevice(device)) std::abort();
    if (pattern->has_device_id() && match->device_id != device.device_id) std::abort();
    CheckMatch(topic_template, *pattern, *topic, *match);
  }
  // And an arbitrary topic against the same template.
  const std::string other = input.ConsumeRemainingBytesAsString();
  if (const std::optional<herald::TopicMatch> match = pattern->Match(other); match.has_value()) {
    CheckMatch(topic_template, *pattern, other, *match);
  }
  return 0;
}
