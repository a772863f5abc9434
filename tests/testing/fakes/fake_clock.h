// FakeClock: a settable clock for tests, so that nothing that a test asserts
// on depends on the wall clock. The fakes take a clock as a plain function;
// AsFunction() adapts a FakeClock to that.
//
//   herald::testing::FakeClock clock;                   // starts at kFakeEpoch
//   herald::testing::FakeNotificationStore store(clock.AsFunction());
//   clock.Advance(absl::Seconds(30));                   // leases run out
#ifndef HERALD_TESTS_TESTING_FAKES_FAKE_CLOCK_H_
#define HERALD_TESTS_TESTING_FAKES_FAKE_CLOCK_H_

#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace herald::testing {

// 2026-01-24T10:30:00Z: a fixed, recognisable start for fake clocks.
inline const absl::Time kFakeEpoch = absl::FromUnixSeconds(1769250600);

// Thread-safe. Only moves when the test moves it.
class FakeClock {
 public:
  explicit FakeClock(absl::Time start = kFakeEpoch) : now_(start) {}

  absl::Time Now() const {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  void Advance(absl::Duration duration) {
    absl::MutexLock lock(&mu_);
    now_ += duration;
  }

  void Set(absl::Time time) {
    absl::MutexLock lock(&mu_);
    now_ = time;
  }

  // A function reading this clock. REQUIRES: the clock outlives its uses.
  std::function<absl::Time()> AsFunction() const {
    return [this] { return Now(); };
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_FAKE_CLOCK_H_
