// FaultInjector: makes chosen calls of a fake fail, in the spirit of
// LevelDB's fault-injecting Env. The fakes own one and consult it at the top
// of every interface method; tests reach it through the fake's
// FailNextCalls.
//
//   store.FailNextCalls(absl::UnavailableError("db down"), 2);                   // any method
//   store.FailNextCalls(absl::UnavailableError("db down"), 1, "RecordOutcomes"); // one method
#ifndef HERALD_TESTS_TESTING_FAKES_FAULT_INJECTOR_H_
#define HERALD_TESTS_TESTING_FAKES_FAULT_INJECTOR_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace herald::testing {

// Thread-safe.
class FaultInjector {
 public:
  // The next `n` calls of the method named `method` (the interface's method
  // name, e.g. "ClaimDueDeliveries"; empty = any method) fail with `status`,
  // which must not be OK. Rules queue up: a call uses the first rule that
  // matches it and still has calls left.
  void FailNextCalls(absl::Status status, int n, std::string method = "") {
    absl::MutexLock lock(&mu_);
    rules_.push_back({std::move(status), n, std::move(method)});
  }

  // The injected failure for this call of `method`, counting it, or OK.
  absl::Status Check(std::string_view method) {
    absl::MutexLock lock(&mu_);
    for (Rule& rule : rules_) {
      if (rule.remaining > 0 && (rule.method.empty() || rule.method == method)) {
        --rule.remaining;
        ++failures_;
        return rule.status;
      }
    }
    return absl::OkStatus();
  }

  // Calls failed so far by injection.
  int failures() const {
    absl::MutexLock lock(&mu_);
    return failures_;
  }

 private:
  struct Rule {
    absl::Status status;
    int remaining;
    std::string method;
  };

  mutable absl::Mutex mu_;
  std::vector<Rule> rules_ ABSL_GUARDED_BY(mu_);
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_FAKES_FAULT_INJECTOR_H_
