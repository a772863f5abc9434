// Percentiles, CPU time and JSON results for the benchmark (bench_stats.h).
#include "bench/common/bench_stats.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace herald::bench {
namespace {

double TimevalSeconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

void SetNumber(google::protobuf::Struct& s, const std::string& key, double value) {
  (*s.mutable_fields())[key].set_number_value(value);
}

}  // namespace

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return TimevalSeconds(usage.ru_utime) + TimevalSeconds(usage.ru_stime);
}

int64_t Percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = std::ceil(p / 100.0 * static_cast<double>(sorted.size()));
  const size_t index = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(sorted.size()))) - 1;
  return sorted[index];
}

google::protobuf::Struct LatencySummary(std::vector<int64_t>& ns) {
  std::sort(ns.begin(), ns.end());
  google::protobuf::Struct out;
  const auto ms = [](int64_t v) { return std::round(static_cast<double>(v) / 1e3) / 1e3; };
  SetNumber(out, "count", static_cast<double>(ns.size()));
  SetNumber(out, "p50", ms(Percentile(ns, 50)));
  SetNumber(out, "p99", ms(Percentile(ns, 99)));
  SetNumber(out, "p999", ms(Percentile(ns, 99.9)));
  SetNumber(out, "max", ms(ns.empty() ? 0 : ns.back()));
  const double mean =
      ns.empty() ? 0 : std::accumulate(ns.begin(), ns.end(), 0.0) / static_cast<double>(ns.size());
  SetNumber(out, "mean", std::round(mean / 1e3) / 1e3);
  return out;
}

void ResultWriter::Set(const std::string& key, double value) {
  (*root_.mutable_fields())[key].set_number_value(value);
}

void ResultWriter::Set(const std::string& key, const std::string& value) {
  (*root_.mutable_fields())[key].set_string_value(value);
}

void ResultWriter::Set(const std::string& key, bool value) {
  (*root_.mutable_fields())[key].set_bool_value(value);
}

void ResultWriter::Set(const std::string& key, google::protobuf::Struct value) {
  *(*root_.mutable_fields())[key].mutable_struct_value() = std::move(value);
}

absl::Status ResultWriter::WriteTo(const std::string& path) const {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(root_, &json, options).ok()) {
    return absl::InternalError("cannot encode the results as JSON");
  }
  if (path == "-") {
    std::cout << json << std::flush;
    return absl::OkStatus();
  }
  std::ofstream out(path);
  out << json;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace herald::bench
