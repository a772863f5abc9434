// Figures shared by the benchmark's programs: latency percentiles, the
// process's own CPU time, and writing results as JSON.
//
//   std::vector<int64_t> latencies_ns = ...;
//   ResultWriter out;
//   out.Set("rpc_latency_ms", LatencySummary(latencies_ns));
//   out.Set("cpu_seconds", ProcessCpuSeconds());
//   if (!out.WriteTo(path).ok()) ...
//
// Not thread-safe: build results on one thread, after the measurement.
#ifndef HERALD_BENCH_COMMON_BENCH_STATS_H_
#define HERALD_BENCH_COMMON_BENCH_STATS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/struct.pb.h"

namespace herald::bench {

// User plus system CPU seconds this process has used so far (getrusage).
double ProcessCpuSeconds();

// The nearest-rank percentile (0 < p <= 100) of `sorted` (ascending); 0 if
// it is empty.
int64_t Percentile(const std::vector<int64_t>& sorted, double p);

// {"count", "p50", "p99", "p999", "max", "mean"} in milliseconds, of
// latencies in nanoseconds. Sorts `ns` in place.
google::protobuf::Struct LatencySummary(std::vector<int64_t>& ns);

// A JSON object built field by field, written to a file or stdout.
class ResultWriter {
 public:
  void Set(const std::string& key, double value);
  void Set(const std::string& key, const std::string& value);
  void Set(const std::string& key, const char* value) { Set(key, std::string(value)); }
  void Set(const std::string& key, bool value);
  void Set(const std::string& key, google::protobuf::Struct value);

  // Pretty-printed JSON. kInternal if the file cannot be written; "-"
  // writes to stdout.
  absl::Status WriteTo(const std::string& path) const;

 private:
  google::protobuf::Struct root_;
};

}  // namespace herald::bench

#endif  // HERALD_BENCH_COMMON_BENCH_STATS_H_
