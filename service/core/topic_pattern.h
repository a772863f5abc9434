// TopicPattern: a topic template (see topic.h) read the other way round:
// the MQTT subscription filter that covers every device's topic, and, for a
// topic a message arrived on, which device it belongs to.
//
// Herald subscribes to the response and presence topics of all devices with
// one filter each and must map every incoming topic back to a device. The
// rule, level by level ('/' separates levels):
//   * a level without placeholders must equal the topic's level;
//   * a level with one placeholder, e.g. "{device_id}" or
//     "shelly-{device_id}", becomes '+' in the filter; the topic's level must
//     start and end with the literal text around the placeholder, and what
//     lies between (at least one character) is the placeholder's value;
//   * {device_id} yields the device; {owner_id}, {platform} and {meta.KEY}
//     yield values the device must have (TopicMatch), so that with
//     "homesync/{meta.home_id}/nodes/{device_id}/status/online" a message
//     from home "abc" about node-001 applies only if node-001's metadata
//     says home_id = abc;
//   * a placeholder used twice must have the same value both times;
//   * a level with two or more placeholders cannot be split unambiguously
//     and is refused by Compile.
//
//   absl::StatusOr<TopicPattern> pattern = TopicPattern::Compile(
//       "homesync/{meta.home_id}/nodes/{device_id}/status/online", "--presence_topic_template");
//   pattern->filter();  // "homesync/+/nodes/+/status/online"
//   std::optional<TopicMatch> m = pattern->Match("homesync/abc/nodes/node-001/status/online");
//   // m->device_id == "node-001", m->metadata == {{"home_id", "abc"}}
//
// Immutable after Compile: thread-safe.
#ifndef HERALD_SERVICE_CORE_TOPIC_PATTERN_H_
#define HERALD_SERVICE_CORE_TOPIC_PATTERN_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "service/core/types.h"

namespace herald {

// What a topic says about the device it belongs to. Empty fields (and
// absent metadata keys) are unconstrained: the template had no such
// placeholder.
struct TopicMatch {
  std::string device_id;
  std::string owner_id;
  std::string platform;
  std::map<std::string, std::string> metadata;

  // Whether `device` has every value this match requires (device_id
  // included, when set).
  bool MatchesDevice(const Device& device) const;
};

class TopicPattern {
 public:
  // kInvalidArgument, naming `field`, for a template that ValidateTopicTemplate
  // refuses or that puts two placeholders into one level.
  static absl::StatusOr<TopicPattern> Compile(absl::string_view topic_template,
                                              absl::string_view field);

  // The subscription filter: the template with each placeholder-bearing
  // level replaced by '+'.
  const std::string& filter() const { return filter_; }

  // Whether the template names {device_id}: only then can a topic be mapped
  // to one device.
  bool has_device_id() const { return has_device_id_; }

  // What `topic` says, or nullopt if it does not fit the template (a topic
  // starting with '$', reserved for the broker, never does).
  std::optional<TopicMatch> Match(absl::string_view topic) const;

 private:
  enum class Kind { kDeviceId, kOwnerId, kPlatform, kMeta };
  struct Level {
    std::string prefix;  // the whole level when !has_placeholder
    std::string suffix;
    bool has_placeholder = false;
    Kind kind = Kind::kDeviceId;
    std::string meta_key;
  };

  TopicPattern() = default;

  std::vector<Level> levels_;
  std::string filter_;
  bool has_device_id_ = false;
};

// A topic in the default topic space or in a tenant's (one prefix level
// before what the pattern covers, see service/auth/tenant.h): what it says
// about the device, and the prefix ("" for the default space). Unambiguous,
// since a tenant's topic has one level more than the pattern.
struct TenantTopicMatch {
  std::string topic_prefix;
  TopicMatch match;
};
std::optional<TenantTopicMatch> MatchInAnyTenant(const TopicPattern& pattern,
                                                 absl::string_view topic);

// The filter covering every tenant's topics of `pattern`: "+/<filter>".
std::string AnyTenantFilter(const TopicPattern& pattern);

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_TOPIC_PATTERN_H_
