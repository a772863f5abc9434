// A minimal reader for one string field of a JSON payload (payload_fields.h).
#include "bench/common/payload_fields.h"

#include <string>

#include "absl/strings/numbers.h"

namespace herald::bench {
namespace {

size_t SkipSpace(std::string_view text, size_t at) {
  while (at < text.size() &&
         (text[at] == ' ' || text[at] == '\t' || text[at] == '\n' || text[at] == '\r')) {
    ++at;
  }
  return at;
}

}  // namespace

std::optional<std::string_view> FindJsonString(std::string_view json, std::string_view key) {
  std::string quoted;
  quoted.reserve(key.size() + 2);
  quoted.append("\"").append(key).append("\"");
  size_t from = 0;
  while (true) {
    const size_t at = json.find(quoted, from);
    if (at == std::string_view::npos) return std::nullopt;
    from = at + quoted.size();
    size_t next = SkipSpace(json, from);
    // A value equal to the key would match too: only a key is followed by ':'.
    if (next >= json.size() || json[next] != ':') continue;
    next = SkipSpace(json, next + 1);
    if (next >= json.size() || json[next] != '"') return std::nullopt;
    const size_t end = json.find('"', next + 1);
    if (end == std::string_view::npos) return std::nullopt;
    return json.substr(next + 1, end - next - 1);
  }
}

std::optional<int64_t> FindJsonInt(std::string_view json, std::string_view key) {
  const std::optional<std::string_view> text = FindJsonString(json, key);
  int64_t value = 0;
  if (!text.has_value() || !absl::SimpleAtoi(absl::string_view(text->data(), text->size()), &value)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace herald::bench
