// Reading Prometheus values back in tests: collects a prometheus::Registry
// (a fresh one per test, handed to HeraldMetrics) and returns the value of a
// family's children whose labels include the given ones.
//
//   prometheus::Registry registry;
//   herald::HeraldMetrics metrics(registry, "test");
//   ...
//   EXPECT_EQ(herald::testing::MetricValue(registry, "herald_deliveries_total",
//                                          {{"outcome", "delivered"}}), 3);
#ifndef HERALD_TESTS_TESTING_FAKES_METRICS_READER_H_
#define HERALD_TESTS_TESTING_FAKES_METRICS_READER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "prometheus/metric_family.h"
#include "prometheus/registry.h"

namespace herald::testing {

using MetricLabels = std::map<std::string, std::string>;

namespace metrics_reader_internal {

inline bool HasLabels(const prometheus::ClientMetric& metric, const MetricLabels& labels) {
  for (const auto& [name, value] : labels) {
    bool found = false;
    for (const prometheus::ClientMetric::Label& label : metric.label) {
      if (label.name == name && label.value == value) found = true;
    }
    if (!found) return false;
  }
  return true;
}

// Calls `visit(family_type, metric)` for each child of `name` with `labels`;
// returns how many there were.
template <typename Visit>
int ForEachChild(const prometheus::Registry& registry, std::string_view name,
                 const MetricLabels& labels, Visit visit) {
  int children = 0;
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      if (!HasLabels(metric, labels)) continue;
      ++children;
      visit(family.type, metric);
    }
  }
  return children;
}

}  // namespace metrics_reader_internal

// The sum over the children of counter or gauge family `name` whose labels
// include `labels` (0 when there is none).
inline double MetricValue(const prometheus::Registry& registry, std::string_view name,
                          const MetricLabels& labels = {}) {
  double sum = 0;
  metrics_reader_internal::ForEachChild(
      registry, name, labels,
      [&](prometheus::MetricType type, const prometheus::ClientMetric& metric) {
        if (type == prometheus::MetricType::Counter) sum += metric.counter.value;
        if (type == prometheus::MetricType::Gauge) sum += metric.gauge.value;
      });
  return sum;
}

// The number of observations in the children of histogram family `name`
// whose labels include `labels`.
inline uint64_t HistogramCount(const prometheus::Registry& registry, std::string_view name,
                               const MetricLabels& labels = {}) {
  uint64_t count = 0;
  metrics_reader_internal::ForEachChild(
      registry, name, labels, [&](prometheus::MetricType, const prometheus::ClientMetric& metric) {
        count += metric.histogram.sample_count;
      });
  return count;
}

// True if family `name` has a child whose labels include `labels`.
inline bool HasMetric(const prometheus::Registry& registry, std::string_view name,
                      const MetricLabels& labels = {}) {
  return metrics_reader_internal::ForEachChild(
             registry, name, labels,
             [](prometheus::MetricType, const prometheus::ClientMetric&) {}) > 0;
}

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_METRICS_READER_H_
