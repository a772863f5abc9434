// LogLimiter: keeps a misbehaving device from flooding the log. Herald logs
// every malformed response or presence message with its topic, which is
// what an operator needs to find the faulty firmware; a device that sends
// garbage a hundred times a second would otherwise bury everything else.
// The limiter lets a burst of lines through per window and counts the rest,
// so the next line that gets through says how many were left out (the
// metrics count every one of them regardless).
//
//   LogLimiter limiter(/*burst=*/10, absl::Seconds(10));
//   int64_t suppressed = 0;
//   if (limiter.Allow(&suppressed)) {
//     LogWarning("malformed command response skipped",
//                {{"topic", topic}, {"suppressed", absl::StrCat(suppressed)}});
//   }
//
// Thread-safe.
#ifndef HERALD_SERVICE_DISPATCH_LOG_LIMITER_H_
#define HERALD_SERVICE_DISPATCH_LOG_LIMITER_H_

#include <cstdint>
#include <functional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace herald {

class LogLimiter {
 public:
  // At most `burst` lines per `window`; `clock` is for tests (null: real).
  LogLimiter(int burst, absl::Duration window, std::function<absl::Time()> clock = nullptr)
      : burst_(burst),
        window_(window),
        clock_(clock ? std::move(clock) : [] { return absl::Now(); }) {}

  // True if this line may be written; then `*suppressed` is the number of
  // lines refused since the last one allowed (0 usually).
  bool Allow(int64_t* suppressed) {
    const absl::Time now = clock_();
    absl::MutexLock lock(&mu_);
    if (now >= window_start_ + window_) {
      window_start_ = now;
      allowed_in_window_ = 0;
    }
    if (allowed_in_window_ >= burst_) {
      ++suppressed_;
      return false;
    }
    ++allowed_in_window_;
    *suppressed = suppressed_;
    suppressed_ = 0;
    return true;
  }

 private:
  const int burst_;
  const absl::Duration window_;
  const std::function<absl::Time()> clock_;
  absl::Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int allowed_in_window_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald

#endif  // HERALD_SERVICE_DISPATCH_LOG_LIMITER_H_
