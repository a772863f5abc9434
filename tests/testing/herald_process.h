// HeraldProcess: the real herald binary, run as a child process for
// end-to-end tests. It listens on free ports, logs to a file that a failing
// test prints, and stops with SIGTERM like Kubernetes stops it.
//
// Before its first start it applies the migrations and makes an API key
// for the default tenant with every scope (with the real `herald keys
// create`), unless the arguments switch authentication off;
// NewChannel() sends that key with every call.
//
//   HeraldProcess herald({"--database_url=" + url, "--mqtt_uri=" + mqtt_uri});
//   ASSERT_TRUE(herald.Start().ok());
//   auto channel = herald.NewChannel();
//   int exit_code = herald.Stop();  // SIGTERM, waits for exit
#ifndef HERALD_TESTS_TESTING_HERALD_PROCESS_H_
#define HERALD_TESTS_TESTING_HERALD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace herald::testing {

// The herald binary under test: $HERALD_BINARY, else the one of this build.
std::string HeraldBinary();

// Runs `herald args...` to completion; returns its exit code and fills
// `output` with what it printed (stdout and stderr).
absl::StatusOr<int> RunHerald(const std::vector<std::string>& args, std::string* output,
                              absl::Duration timeout = absl::Seconds(60));

// Not thread-safe; one test drives it.
class HeraldProcess {
 public:
  // `args` are the flags after `serve`; gRPC and metrics addresses default
  // to 127.0.0.1:0 (free ports, read back from the log).
  explicit HeraldProcess(std::vector<std::string> args);
  ~HeraldProcess();

  // Sets an environment variable for the next Start (e.g. a crash point);
  // an empty value removes it again.
  void SetEnv(const std::string& name, const std::string& value);

  // Starts the process and waits until it logs that it serves. May be called
  // again after Stop, Kill or a crash: the new process logs to a new file.
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));

  // True while the process runs; reaps it (and records its exit) if not.
  bool Running();

  // How the last process that was reaped ended: its exit code, or 128 +
  // signal; -1 if none was reaped yet.
  int last_exit_code() const { return last_exit_code_; }

  pid_t pid() const { return pid_; }

  // Sends SIGTERM and waits for the exit; returns the exit code (or 128 +
  // signal). Kills it with SIGKILL after `timeout`.
  int Stop(absl::Duration timeout = absl::Seconds(30));

  // Sends SIGKILL and reaps the process.
  void Kill();

  std::string grpc_target() const { return "127.0.0.1:" + std::to_string(grpc_port_); }

  // The API key made before the first start ("" if authentication is off or
  // the arguments name no --database_url).
  const std::string& api_key() const { return api_key_; }
  // A plaintext channel to grpc_target() that sends api_key().
  std::shared_ptr<grpc::Channel> NewChannel() const;
  int metrics_port() const { return metrics_port_; }
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  std::vector<std::string> args_;
  std::vector<std::pair<std::string, std::string>> env_;
  std::string api_key_;
  bool key_made_ = false;
  std::string log_path_;
  pid_t pid_ = -1;
  int last_exit_code_ = -1;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};


}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_HERALD_PROCESS_H_
