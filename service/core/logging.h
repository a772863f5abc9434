// Herald's structured log: one line per event on stderr, as text or JSON
// (--log_format), filtered by level (--log_level), written through spdlog.
// Debian's Abseil has no absl/log; this thin layer adds the key/value fields
// that log processors index, and keeps spdlog out of every other header.
//
//   LogInfo("mqtt connected", {{"uri", uri}, {"session_present", "true"}});
//   LogWarning("malformed response", {{"topic", topic}});
//
// Never pass a secret as a field: logs leave the process.
#ifndef HERALD_SERVICE_CORE_LOGGING_H_
#define HERALD_SERVICE_CORE_LOGGING_H_

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/string_view.h"

namespace herald {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class LogFormat { kText, kJson };

// A field value: any string-like value (std::string, literals, and both
// std::string_view and Abseil's own string_view, which Debian's Abseil keeps
// distinct).
class LogValue {
 public:
  LogValue(const char* text) : text_(text) {}                           // NOLINT
  LogValue(const std::string& text) : text_(text) {}                    // NOLINT
  LogValue(std::string_view text) : text_(text) {}                      // NOLINT
  LogValue(absl::string_view text) : text_(text.data(), text.size()) {}  // NOLINT
  std::string_view view() const { return text_; }

 private:
  std::string_view text_;
};

using LogField = std::pair<std::string_view, LogValue>;

// Thread-safe; takes effect for every later log line.
void SetLogLevel(LogLevel level);
void SetLogFormat(LogFormat format);

std::optional<LogLevel> ParseLogLevel(std::string_view name);
std::optional<LogFormat> ParseLogFormat(std::string_view name);

bool LogEnabled(LogLevel level);

// Writes one line (atomically with respect to other log lines).
void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields = {});

inline void LogDebug(std::string_view message, std::initializer_list<LogField> fields = {}) {
  if (LogEnabled(LogLevel::kDebug)) Log(LogLevel::kDebug, message, fields);
}
inline void LogInfo(std::string_view message, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, message, fields);
}
inline void LogWarning(std::string_view message, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarning, message, fields);
}
inline void LogError(std::string_view message, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, message, fields);
}

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_LOGGING_H_
