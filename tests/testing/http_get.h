// A minimal HTTP/1.0 GET over loopback for tests: /metrics scrapes and
// Prometheus' API. Tests only; production code serves HTTP through
// prometheus-cpp and never acts as a client.
//
//   absl::StatusOr<std::string> metrics = HttpGet(port, "/metrics");
//   absl::StatusOr<HttpResponse> answer = HttpGetFull(port, "/api/v1/query?query=up");
#ifndef HERALD_TESTS_TESTING_HTTP_GET_H_
#define HERALD_TESTS_TESTING_HTTP_GET_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace herald::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET http://127.0.0.1:port<target> (target = path and query). kUnavailable
// when nothing listens or the answer does not come within `timeout`.
absl::StatusOr<HttpResponse> HttpGetFull(int port, const std::string& target,
                                         absl::Duration timeout = absl::Seconds(10));

// The body of a 200 answer; kInternal naming the status otherwise.
absl::StatusOr<std::string> HttpGet(int port, const std::string& target);

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_HTTP_GET_H_
