#include "service/core/logging.h"

#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/str_format.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "service/core/json_text.h"

namespace herald {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

bool NeedsQuotes(std::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) return true;
  }
  return false;
}


spdlog::level::level_enum SpdlogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarning: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
  }
  return spdlog::level::info;
}

std::unique_ptr<spdlog::formatter> FormatterFor(LogFormat format) {
  // Times in UTC with milliseconds; spdlog's level names (debug, info, warning, error).
  const char* pattern = format == LogFormat::kJson
                            ? "{\"time\":\"%Y-%m-%dT%H:%M:%S.%eZ\",\"level\":\"%l\",%v}"
                            : "%Y-%m-%dT%H:%M:%S.%eZ %l %v";
  return std::make_unique<spdlog::pattern_formatter>(pattern, spdlog::pattern_time_type::utc,
                                                     std::string("\n"));
}

// One logger for the process, writing to stderr (containers collect it).
spdlog::logger& Logger() {
  static spdlog::logger* const logger = [] {
    auto* created =
        new spdlog::logger("herald", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    created->set_level(spdlog::level::trace);  // LogEnabled filters first
    created->flush_on(spdlog::level::trace);   // a crash must not eat the last lines
    created->set_formatter(FormatterFor(LogFormat::kText));
    return created;
  }();
  return *logger;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
void SetLogFormat(LogFormat format) {
  g_format.store(static_cast<int>(format));
  Logger().set_formatter(FormatterFor(format));
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warning" || name == "warn") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return std::nullopt;
}

std::optional<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return std::nullopt;
}

bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void Log(LogLevel level, std::string_view message, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  // The line's text after the time and level; spdlog adds those, writes the
  // line atomically and flushes it.
  std::string line;
  if (static_cast<LogFormat>(g_format.load()) == LogFormat::kJson) {
    line = "\"msg\":\"" + JsonEscape(message) + "\"";
    for (const auto& [key, value] : fields) {
      line += ",\"" + JsonEscape(key) + "\":\"" + JsonEscape(value.view()) + "\"";
    }
  } else {
    line = std::string(message);
    for (const auto& [key, value] : fields) {
      line += " " + std::string(key) + "=";
      if (NeedsQuotes(value.view())) {
        line += "\"" + JsonEscape(value.view()) + "\"";
      } else {
        line += std::string(value.view());
      }
    }
  }
  Logger().log(SpdlogLevel(level), line);
}

}  // namespace herald
