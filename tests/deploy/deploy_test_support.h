// Helpers of the deploy tests that run real programs: a child process with a
// log (Prometheus), running a command to completion with its output
// (heraldctl), a small HTTP client with status codes (Prometheus' API), JSON
// through protobuf's google.protobuf.Value, and the metric names a PromQL
// expression uses.
//
//   ChildProcess prometheus({"prometheus", "--config.file=" + config, ...}, log_path);
//   ASSERT_TRUE(prometheus.Start().ok());
//   absl::StatusOr<HttpResponse> answer = HttpGetFull(port, "/api/v1/query?query=" + UrlEncode(q));
//   absl::StatusOr<CommandResult> ran = RunCommand({heraldctl, "stats"}, absl::Seconds(30));
#ifndef HERALD_TESTS_DEPLOY_DEPLOY_TEST_SUPPORT_H_
#define HERALD_TESTS_DEPLOY_DEPLOY_TEST_SUPPORT_H_

#include <sys/types.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/testing/http_get.h"
#include "google/protobuf/struct.pb.h"

namespace herald::testing {

// A program run in the background with its stdout and stderr in a log file.
// Not thread-safe. The destructor kills a process that is still running.
class ChildProcess {
 public:
  // argv[0] is looked up in PATH.
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();

  absl::Status Start();
  // True while the process runs (reaps it otherwise).
  bool Running();
  // SIGTERM, then SIGKILL after `timeout`; returns the exit code or 128 + signal.
  int Stop(absl::Duration timeout = absl::Seconds(20));
  std::string ReadLog() const;

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

struct CommandResult {
  int exit_code = -1;  // or 128 + signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv (argv[0] a path or a name in PATH) to completion with no input;
// kDeadlineExceeded (after killing it) when it runs longer than `timeout`.
// `env` entries ("NAME=value") are added to the environment.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout,
                                         const std::vector<std::string>& env = {});

// Percent-encodes everything but unreserved characters (RFC 3986).
std::string UrlEncode(const std::string& text);

// A free TCP port on 127.0.0.1 (bound and released: race-prone only with
// other processes picking ports the same way).
int FreeLoopbackPort();

// Any JSON text as a google.protobuf.Value.
absl::StatusOr<google::protobuf::Value> ParseJson(const std::string& json);

// The Herald metric names (herald_* and grpc_server_*) in a PromQL
// expression or Grafana query, e.g. {"herald_deliveries_total"}.
std::set<std::string> HeraldMetricNames(const std::string& expression);

// The metric family a sample name belongs to, given the families of a
// scrape: "x_bucket" -> "x" for a histogram family "x"; otherwise the name
// itself. Empty when no family has it.
std::string FamilyOf(const std::string& name, const std::set<std::string>& families);

// Families ("# TYPE name type" lines) of a Prometheus text exposition.
std::set<std::string> ScrapedFamilies(const std::string& exposition);

// The file's content; empty when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

// A fresh directory under $TMPDIR (or /tmp) named after `prefix`.
std::string MakeTempDir(const std::string& prefix);

}  // namespace herald::testing

#endif  // HERALD_TESTS_DEPLOY_DEPLOY_TEST_SUPPORT_H_
