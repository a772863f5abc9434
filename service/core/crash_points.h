// Crash points: named places in the delivery path where the fault-injection
// tests make Herald die with SIGKILL, to prove that nothing acknowledged is
// lost whatever the moment of the crash. Off unless the environment variable
// HERALD_TEST_CRASH_AT names a point ("after_commit", "after_claim",
// "after_ack"), optionally with the hit that crashes ("after_claim:3" = the
// third time). There is no flag for it: it is a test hook, not a feature.
//
//   HERALD_CRASH_POINT("after_commit");  // between the commit and the reply
#ifndef HERALD_SERVICE_CORE_CRASH_POINTS_H_
#define HERALD_SERVICE_CORE_CRASH_POINTS_H_

#include <string_view>

namespace herald {

// True when HERALD_TEST_CRASH_AT is set (read once, at first use).
bool CrashPointsEnabled();

// Kills the process with SIGKILL if `name` is the configured point and this
// is the configured hit. Thread-safe.
void CrashPoint(std::string_view name);

}  // namespace herald

// Costs one predictable branch when crash points are off.
#define HERALD_CRASH_POINT(name)                          \
  do {                                                    \
    if (::herald::CrashPointsEnabled()) ::herald::CrashPoint(name); \
  } while (false)

#endif  // HERALD_SERVICE_CORE_CRASH_POINTS_H_
