#include "service/core/topic_pattern.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "service/core/topic.h"

namespace herald {

bool TopicMatch::MatchesDevice(const Device& device) const {
  if (!device_id.empty() && device.device_id != device_id) return false;
  if (!owner_id.empty() && device.owner_id != owner_id) return false;
  if (!platform.empty() && device.platform != platform) return false;
  for (const auto& [key, value] : metadata) {
    const auto it = device.metadata.find(key);
    if (it == device.metadata.end() || it->second != value) return false;
  }
  return true;
}

absl::StatusOr<TopicPattern> TopicPattern::Compile(absl::string_view topic_template,
                                                   absl::string_view field) {
  // Braces, placeholder names and the literal parts are checked there.
  if (absl::Status valid = ValidateTopicTemplate(topic_template, field); !valid.ok()) {
    return valid;
  }
  TopicPattern pattern;
  std::vector<std::string> filter_levels;
  for (absl::string_view text : absl::StrSplit(topic_template, '/')) {
    Level level;
    const size_t open = text.find('{');
    if (open == absl::string_view::npos) {
      level.prefix = std::string(text);
      filter_levels.push_back(level.prefix);
      pattern.levels_.push_back(std::move(level));
      continue;
    }
    const size_t close = text.find('}', open);  // present: the template is valid
    if (text.find('{', close) != absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": the topic level \"", text,
          "\" holds two placeholders; Herald can map a topic back to a device only with at "
          "most one placeholder per level"));
    }
    level.has_placeholder = true;
    level.prefix = std::string(text.substr(0, open));
    level.suffix = std::string(text.substr(close + 1));
    const absl::string_view name = text.substr(open + 1, close - open - 1);
    if (name == "device_id") {
      level.kind = Kind::kDeviceId;
      pattern.has_device_id_ = true;
    } else if (name == "owner_id") {
      level.kind = Kind::kOwnerId;
    } else if (name == "platform") {
      level.kind = Kind::kPlatform;
    } else {  // meta.KEY, as ValidateTopicTemplate ensured
      level.kind = Kind::kMeta;
      level.meta_key = std::string(name.substr(5));
    }
    filter_levels.push_back("+");
    pattern.levels_.push_back(std::move(level));
  }
  pattern.filter_ = absl::StrJoin(filter_levels, "/");
  return pattern;
}

std::optional<TopicMatch> TopicPattern::Match(absl::string_view topic) const {
  // No expansion of a template starts with '$' (broker topics such as
  // $SYS/...), and the filter does not receive them (MQTT 4.7.2).
  if (absl::StartsWith(topic, "$")) return std::nullopt;
  const std::vector<absl::string_view> parts = absl::StrSplit(topic, '/');
  if (parts.size() != levels_.size()) return std::nullopt;
  TopicMatch match;
  // Sets `slot` to `value`, or checks that a repeated placeholder agrees.
  const auto capture = [](std::string& slot, absl::string_view value) {
    if (slot.empty()) {
      slot = std::string(value);
      return true;
    }
    return slot == value;
  };
  for (size_t i = 0; i < parts.size(); ++i) {
    const Level& level = levels_[i];
    const absl::string_view part = parts[i];
    if (!level.has_placeholder) {
      if (part != level.prefix) return std::nullopt;
      continue;
    }
    if (part.size() <= level.prefix.size() + level.suffix.size() ||
        !absl::StartsWith(part, level.prefix) || !absl::EndsWith(part, level.suffix)) {
      return std::nullopt;
    }
    const absl::string_view value = part.substr(
        level.prefix.size(), part.size() - level.prefix.size() - level.suffix.size());
    bool consistent = true;
    switch (level.kind) {
      case Kind::kDeviceId: consistent = capture(match.device_id, value); break;
      case Kind::kOwnerId: consistent = capture(match.owner_id, value); break;
      case Kind::kPlatform: consistent = capture(match.platform, value); break;
      case Kind::kMeta: consistent = capture(match.metadata[level.meta_key], value); break;
    }
    if (!consistent) return std::nullopt;
  }
  return match;
}

std::optional<TenantTopicMatch> MatchInAnyTenant(const TopicPattern& pattern,
                                                 absl::string_view topic) {
  if (std::optional<TopicMatch> match = pattern.Match(topic); match.has_value()) {
    return TenantTopicMatch{.topic_prefix = "", .match = *std::move(match)};
  }
  const size_t slash = topic.find('/');
  if (slash == 0 || slash == absl::string_view::npos || topic[0] == '$') return std::nullopt;
  std::optional<TopicMatch> match = pattern.Match(topic.substr(slash + 1));
  if (!match.has_value()) return std::nullopt;
  return TenantTopicMatch{.topic_prefix = std::string(topic.substr(0, slash)),
                          .match = *std::move(match)};
}

std::string AnyTenantFilter(const TopicPattern& pattern) {
  return absl::StrCat("+/", pattern.filter());
}

}  // namespace herald
