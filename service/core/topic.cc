#include "service/core/topic.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace herald {
namespace {

// True if `text` is well-formed UTF-8 (no overlong forms or surrogates).
bool IsValidUtf8(absl::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    size_t length;
    uint32_t code_point;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      length = 2;
      code_point = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      code_point = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      code_point = c & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (size_t k = 1; k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code_point = (code_point << 6) | (next & 0x3F);
    }
    if ((length == 2 && code_point < 0x80) || (length == 3 && code_point < 0x800) ||
        (length == 4 && (code_point < 0x10000 || code_point > 0x10FFFF)) ||
        (code_point >= 0xD800 && code_point <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

enum class Placeholder { kDeviceId, kOwnerId, kPlatform, kMeta };

// Parses the placeholder name between braces; sets `meta_key` for {meta.KEY}.
std::optional<Placeholder> ParsePlaceholder(absl::string_view name, std::string* meta_key) {
  if (name == "device_id") return Placeholder::kDeviceId;
  if (name == "owner_id") return Placeholder::kOwnerId;
  if (name == "platform") return Placeholder::kPlatform;
  if (absl::StartsWith(name, "meta.") && name.size() > 5) {
    *meta_key = std::string(name.substr(5));
    return Placeholder::kMeta;
  }
  return std::nullopt;
}

// Walks `topic_template`, calling `literal(text)` and `placeholder(kind, key)`.
template <typename LiteralFn, typename PlaceholderFn>
absl::Status WalkTemplate(absl::string_view topic_template, absl::string_view field,
                          LiteralFn literal, PlaceholderFn placeholder) {
  size_t i = 0;
  while (i < topic_template.size()) {
    const size_t open = topic_template.find_first_of("{}", i);
    if (open == absl::string_view::npos) {
      literal(topic_template.substr(i));
      break;
    }
    if (topic_template[open] == '}') return Invalid(field, "unbalanced '}' in topic template");
    literal(topic_template.substr(i, open - i));
    const size_t close = topic_template.find('}', open);
    if (close == absl::string_view::npos) return Invalid(field, "unclosed '{' in topic template");
    const absl::string_view name = topic_template.substr(open + 1, close - open - 1);
    std::string meta_key;
    const std::optional<Placeholder> kind = ParsePlaceholder(name, &meta_key);
    if (!kind.has_value()) {
      return Invalid(field, absl::StrCat("unknown placeholder {", name,
                                         "}; use {device_id}, {owner_id}, {platform} or "
                                         "{meta.KEY}"));
    }
    // A key with '/' would spread one placeholder over two topic levels (and
    // one with '{' hide a second placeholder in it): TopicPattern could not
    // map such a topic back to its device.
    if (*kind == Placeholder::kMeta &&
        (meta_key.find_first_of("/{+#\0", 0, 5) != std::string::npos ||
         !IsValidUtf8(meta_key))) {
      return Invalid(field, absl::StrCat("the key of the placeholder {", name,
                                         "} must be UTF-8 without '/', '{', '+', '#' or NUL"));
    }
    if (absl::Status status = placeholder(*kind, meta_key); !status.ok()) return status;
    i = close + 1;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidatePublishTopic(absl::string_view topic, absl::string_view field) {
  if (topic.empty()) return Invalid(field, "must not be empty");
  if (topic.size() > kMaxTopicBytes) {
    return Invalid(field, absl::StrCat("must be at most ", kMaxTopicBytes, " bytes (is ",
                                       topic.size(), ")"));
  }
  if (topic.find('\0') != absl::string_view::npos) return Invalid(field, "must not contain NUL");
  if (topic.find_first_of("+#") != absl::string_view::npos) {
    return Invalid(field, "must not contain the wildcards '+' or '#' (a publish topic)");
  }
  if (topic.front() == '$') {
    return Invalid(field, "must not start with '$' (reserved for broker topics)");
  }
  if (!IsValidUtf8(topic)) return Invalid(field, "must be valid UTF-8");
  return absl::OkStatus();
}

absl::Status ValidateTopicLevel(absl::string_view value, absl::string_view field) {
  if (value.empty()) return Invalid(field, "must not be empty (it forms a topic level)");
  if (value.size() > kMaxTopicBytes) return Invalid(field, "is too long for a topic level");
  if (value.find_first_of(absl::string_view("\0/+#", 4)) != absl::string_view::npos) {
    return Invalid(field, "must not contain '/', '+', '#' or NUL (it forms one topic level)");
  }
  if (!IsValidUtf8(value)) return Invalid(field, "must be valid UTF-8");
  return absl::OkStatus();
}

absl::Status ValidateTopicTemplate(absl::string_view topic_template, absl::string_view field) {
  if (topic_template.empty()) return Invalid(field, "must not be empty");
  std::string skeleton;  // the template with each placeholder replaced by "x"
  absl::Status status = WalkTemplate(
      topic_template, field, [&](absl::string_view text) { skeleton.append(text.data(), text.size()); },
      [&](Placeholder, const std::string&) {
        skeleton.append("x");
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  return ValidatePublishTopic(skeleton, field);
}

absl::StatusOr<std::string> ExpandTopicTemplate(absl::string_view topic_template,
                                                const Device& device) {
  std::string topic;
  absl::Status status = WalkTemplate(
      topic_template, "topic template", [&](absl::string_view text) { topic.append(text.data(), text.size()); },
      [&](Placeholder kind, const std::string& meta_key) -> absl::Status {
        absl::string_view value;
        std::string what;
        switch (kind) {
          case Placeholder::kDeviceId: value = device.device_id; what = "device_id"; break;
          case Placeholder::kOwnerId: value = device.owner_id; what = "owner_id"; break;
          case Placeholder::kPlatform: value = device.platform; what = "platform"; break;
          case Placeholder::kMeta: {
            what = absl::StrCat("metadata[\"", meta_key, "\"]");
            const auto it = device.metadata.find(meta_key);
            if (it == device.metadata.end()) {
              return absl::FailedPreconditionError(
                  absl::StrCat("device ", device.device_id, ": the topic template needs ", what,
                               ", which the device does not have"));
            }
            value = it->second;
            break;
          }
        }
        if (absl::Status level = ValidateTopicLevel(value, what); !level.ok()) {
          return absl::FailedPreconditionError(
              absl::StrCat("device ", device.device_id, ": cannot build its topic: ",
                           level.message()));
        }
        topic.append(value.data(), value.size());
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (absl::Status valid = ValidatePublishTopic(topic, "topic"); !valid.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("device ", device.device_id, ": ", valid.message()));
  }
  return topic;
}

absl::StatusOr<std::string> NotificationTopicFor(const Device& device,
                                                 absl::string_view topic_template) {
  if (!device.topic.empty()) return device.topic;
  return ExpandTopicTemplate(topic_template, device);
}

bool TopicWithinPrefix(absl::string_view topic, absl::string_view prefix) {
  if (prefix.empty()) return true;
  return topic.size() > prefix.size() + 1 && absl::StartsWith(topic, prefix) &&
         topic[prefix.size()] == '/';
}

std::string TopicUnderPrefix(absl::string_view prefix, absl::string_view topic) {
  if (prefix.empty()) return std::string(topic);
  return absl::StrCat(prefix, "/", topic);
}

absl::Status TopicOutsidePrefixError(absl::string_view field, absl::string_view topic,
                                     absl::string_view tenant_id, absl::string_view prefix) {
  return absl::PermissionDeniedError(absl::StrCat(
      field, ": topic \"", topic, "\" is outside the topic space of tenant \"", tenant_id,
      "\"; its topics start with \"", prefix, "/\""));
}

}  // namespace herald
