// The clock every benchmark process stamps with: CLOCK_MONOTONIC in
// nanoseconds. All processes of a run share one machine and one kernel, so
// a time taken in the load generator (carried in the payload) and a time
// taken in the subscriber are directly comparable, and neither jumps with
// NTP.
//
//   const int64_t start = herald::bench::MonotonicNs();
//   ...
//   const double ms = herald::bench::NsToMs(herald::bench::MonotonicNs() - start);
//
// Thread-safe.
#ifndef HERALD_BENCH_COMMON_BENCH_CLOCK_H_
#define HERALD_BENCH_COMMON_BENCH_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace herald::bench {

inline int64_t MonotonicNs() {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

inline double NsToMs(int64_t ns) { return static_cast<double>(ns) / 1e6; }
inline double NsToSeconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace herald::bench

#endif  // HERALD_BENCH_COMMON_BENCH_CLOCK_H_
