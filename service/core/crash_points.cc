#include "service/core/crash_points.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "service/core/logging.h"

namespace herald {
namespace {

struct CrashConfig {
  std::string point;  // empty: off
  int hit = 1;
};

const CrashConfig& Config() {
  static const CrashConfig config = [] {
    CrashConfig parsed;
    const char* value = std::getenv("HERALD_TEST_CRASH_AT");
    if (value == nullptr || *value == '\0') return parsed;
    std::string text(value);
    const size_t colon = text.find(':');
    parsed.point = text.substr(0, colon);
    if (colon != std::string::npos &&
        (!absl::SimpleAtoi(text.substr(colon + 1), &parsed.hit) || parsed.hit < 1)) {
      parsed.hit = 1;
    }
    LogWarning("crash point armed (a fault-injection test hook)",
               {{"point", parsed.point}, {"hit", std::to_string(parsed.hit)}});
    return parsed;
  }();
  return config;
}

std::atomic<int> g_hits{0};

}  // namespace

bool CrashPointsEnabled() { return !Config().point.empty(); }

void CrashPoint(std::string_view name) {
  const CrashConfig& config = Config();
  if (config.point.empty() || name != config.point) return;
  if (g_hits.fetch_add(1) + 1 != config.hit) return;
  LogWarning("crash point reached: SIGKILL", {{"point", std::string(name)}});
  kill(getpid(), SIGKILL);
}

}  // namespace herald
