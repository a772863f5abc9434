#include "providers/mqtt/topic_filter.h"

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace herald {
namespace {

// Debian's Abseil has its own string_view, distinct from std::string_view.
absl::string_view Av(std::string_view text) { return absl::string_view(text.data(), text.size()); }

bool Contains(std::string_view text, char c) { return text.find(c) != std::string_view::npos; }

constexpr size_t kMaxTopicBytes = 65535;
constexpr std::string_view kSharePrefix = "$share/";

// Shortens long topics in error messages.
std::string Quoted(std::string_view text) {
  constexpr size_t kMaxShown = 200;
  if (text.size() <= kMaxShown) return absl::StrCat("\"", Av(text), "\"");
  return absl::StrCat("\"", Av(text.substr(0, kMaxShown)), "...\" (", text.size(), " bytes)");
}

absl::Status ValidatePlainFilter(std::string_view filter, std::string_view whole) {
  if (filter.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic filter ", Quoted(whole), ": the filter after the share group is empty"));
  }
  size_t level_start = 0;
  while (true) {
    const size_t slash = filter.find('/', level_start);
    const bool last = slash == std::string_view::npos;
    const std::string_view level =
        filter.substr(level_start, last ? std::string_view::npos : slash - level_start);
    if (level.size() > 1 && (Contains(level, '+') || Contains(level, '#'))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic filter ", Quoted(whole), ": '+' and '#' must stand alone in a level, got \"",
          Av(level), "\""));
    }
    if (level == "#" && !last) {
      return absl::InvalidArgumentError(
          absl::StrCat("topic filter ", Quoted(whole), ": '#' is only allowed as the last level"));
    }
    if (last) break;
    level_start = slash + 1;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateTopicFilter(std::string_view filter) {
  if (filter.empty()) return absl::InvalidArgumentError("topic filter is empty");
  if (filter.size() > kMaxTopicBytes) {
    return absl::InvalidArgumentError(absl::StrCat("topic filter ", Quoted(filter),
                                                   ": longer than 65535 bytes"));
  }
  if (Contains(filter, '\0')) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic filter ", Quoted(filter), ": contains a NUL character"));
  }
  if (filter.starts_with(kSharePrefix)) {
    const std::string_view rest = filter.substr(kSharePrefix.size());
    const size_t slash = rest.find('/');
    const std::string_view group = rest.substr(0, slash);
    if (slash == std::string_view::npos || group.empty() || Contains(group, '+') ||
        Contains(group, '#')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "topic filter ", Quoted(filter),
          ": a shared subscription must be $share/GROUP/FILTER with a non-empty GROUP "
          "without '+' or '#'"));
    }
    return ValidatePlainFilter(rest.substr(slash + 1), filter);
  }
  return ValidatePlainFilter(filter, filter);
}

std::string_view StripSharedSubscription(std::string_view filter) {
  if (!filter.starts_with(kSharePrefix)) return filter;
  const std::string_view rest = filter.substr(kSharePrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return filter;
  return rest.substr(slash + 1);
}

bool TopicFilterMatches(std::string_view filter, std::string_view topic) {
  // MQTT 4.7.2: wildcards at the first level do not match "$SYS/..." etc.
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  size_t f = 0;  // start of the current filter level
  size_t t = 0;  // start of the current topic level
  while (true) {
    const size_t f_end = std::min(filter.find('/', f), filter.size());
    const std::string_view f_level = filter.substr(f, f_end - f);
    if (f_level == "#") return true;  // matches this level, the parent and all below

    const size_t t_end = std::min(topic.find('/', t), topic.size());
    if (f_level != "+" && f_level != topic.substr(t, t_end - t)) return false;

    const bool filter_done = f_end == filter.size();
    const bool topic_done = t_end == topic.size();
    if (filter_done || topic_done) {
      if (filter_done && topic_done) return true;
      // "a/#" also matches "a": the topic ended and only "/#" is left.
      return topic_done && filter.substr(f_end) == "/#";
    }
    f = f_end + 1;
    t = t_end + 1;
  }
}

}  // namespace herald
